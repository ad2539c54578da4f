//! What every `teep` end-to-end test needs: the built binary and the repository's vectors.
#![allow(dead_code)] // each test binary uses a subset

use std::process::Command;

/// The built `teep` binary, ready for arguments (with the default log filter: a RUST_LOG
/// of the test run does not leak in).
pub fn teep() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_teep"));
    command.env_remove("RUST_LOG");
    command
}

/// The standard output of a command that must have succeeded (else its standard error is
/// the failure message).
pub fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Path of a file under tests/vectors.
pub fn vector(rel: &str) -> String {
    format!("{}/../../tests/vectors/{rel}", env!("CARGO_MANIFEST_DIR"))
}

pub mod deployment;
/// `teep ARGS` run in `dir`; its standard output (it must succeed).
pub fn run(args: &[&str], dir: &std::path::Path) -> String {
    ok(teep().args(args).current_dir(dir).output().unwrap())
}

/// Spawns `teep ARGS` and reads its standard output until a line starts with `ready`;
/// returns the child and the lines read.
pub fn spawn_until(
    args: &[&str],
    dir: &std::path::Path,
    ready: &str,
) -> (std::process::Child, Vec<String>) {
    use std::io::BufRead as _;
    let mut child = teep()
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "{args:?} exited early"
        );
        let done = line.starts_with(ready);
        lines.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    // Keep reading in the background so that the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (child, lines)
}

/// The rest of the line read that starts with `prefix`.
pub fn after<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {lines:?}"))
}

/// SIGTERM, and the process must exit cleanly.
pub fn stop(mut child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

/// A component ID in its canonical text form (what the admin API and `teep device` take).
pub fn id_text(segments: &[&str]) -> String {
    teep_suit::ComponentId::from_strs(segments).to_string()
}

/// `teep suit create` (component `segments`, sequence `seq`, `extra` options, `payload`)
/// signed with `signer.key` in `dir` into `out`.
pub fn signed_tc(
    dir: &std::path::Path,
    segments: &[&str],
    seq: &str,
    extra: &[&str],
    payload: &str,
    out: &str,
) {
    let mut args = vec!["suit", "create"];
    for s in segments {
        args.extend(["--component-id", s]);
    }
    args.extend(extra);
    args.extend(["--seq", seq, "--payload", payload, "--out", "unsigned"]);
    run(&args, dir);
    run(
        &[
            "suit",
            "sign",
            "--key",
            "signer.key",
            "unsigned",
            "--out",
            out,
        ],
        dir,
    );
}

/// A Verifier policy endorsing exactly the device of `identity` (`teep device identity
/// --json`): its attestation key for its ueid, and its claims as reference values.
pub fn endorsing_policy(identity: &serde_json::Value) -> serde_json::Value {
    let claims = &identity["claims"];
    serde_json::json!({
        "policy_id": "policy:lifecycle",
        "endorsements": [ { "key": identity["attestation_key"]["pem"], "ueid": identity["ueid"] } ],
        "reference_values": {
            "oemids": [claims["oemid"]],
            "hwmodels": [claims["hwmodel"]],
            "hwversions": [claims["hwversion"][0]],
            "tc_digests": claims["manifests"].as_array().unwrap().iter()
                .map(|m| m["sha256"].clone()).collect::<Vec<_>>(),
        },
    })
}

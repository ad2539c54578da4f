//! `teep tam serve` with its admin API, driven end to end by the admin commands: the token
//! file, signer anchors, TC upload (and a refused rollback), listing, policy, revocation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{ok, teep};

/// Runs `teep tam ARGS --admin-url URL --data-dir DATA` (token from the data directory).
fn admin(url: &str, data: &Path, args: &[&str]) -> Output {
    teep()
        .arg("tam")
        .args(args)
        .args(["--admin-url", url, "--data-dir"])
        .arg(data)
        .env_remove("TEEP_TAM_ADMIN_TOKEN")
        .output()
        .unwrap()
}

fn failed(out: Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn run(args: &[&str], dir: &Path) {
    let out = teep().args(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn admin_commands_drive_a_running_tam() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tam");
    let mut child = teep()
        .args([
            "tam",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut url, mut token) = (None, None);
    loop {
        let mut line = String::new();
        assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "exited early");
        let line = line.trim();
        if let Some(t) = line.strip_prefix("admin token (printed once): ") {
            token = Some(t.to_owned());
        }
        if let Some(a) = line.strip_prefix("admin API on ") {
            url = Some(a.to_owned());
        }
        if line.starts_with("listening on http://") {
            break;
        }
    }
    let (url, token) = (url.unwrap(), token.unwrap());
    let token_file = data.join("admin.token");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let work = dir.path();
    std::fs::write(work.join("app.bin"), b"the app").unwrap();
    run(&["keys", "generate", "--out", "signer.key"], work);
    let create = |seq: &str, out: &str| {
        run(
            &[
                "suit",
                "create",
                "--component-id",
                "TEEP-Device",
                "--component-id",
                "app",
                "--component-id",
                "ta",
                "--seq",
                seq,
                "--payload",
                "app.bin",
                "--out",
                out,
            ],
            work,
        );
    };
    create("1", "app1.unsigned");
    run(
        &[
            "suit",
            "sign",
            "--key",
            "signer.key",
            "app1.unsigned",
            "--out",
            "app1.suit",
        ],
        work,
    );
    let app = "/TEEP-Device/app/suit".to_owned();

    // Without a signer anchor the envelope is refused.
    let env1 = work.join("app1.suit");
    let env1 = env1.to_str().unwrap();
    let err = failed(admin(&url, &data, &["tc", "add", env1]));
    assert!(
        err.contains("422") && err.contains("envelope refused"),
        "{err}"
    );

    let key = work.join("signer.key.pub");
    let out = ok(admin(
        &url,
        &data,
        &[
            "signer",
            "add",
            "--name",
            "vendor",
            "--key",
            key.to_str().unwrap(),
        ],
    ));
    assert_eq!(out.trim(), "signer vendor added");
    assert_eq!(
        ok(admin(&url, &data, &["signer", "list"])).trim(),
        "vendor key scope=*"
    );

    let out = ok(admin(&url, &data, &["tc", "add", env1]));
    assert_eq!(out.trim(), format!("added {app} sequence 1"));
    let err = failed(admin(&url, &data, &["tc", "add", env1]));
    assert!(
        err.contains("409") && err.contains("not above the latest"),
        "{err}"
    );

    let list: serde_json::Value =
        serde_json::from_str(&ok(admin(&url, &data, &["tc", "list", "--json"]))).unwrap();
    assert_eq!(list[0]["manifest_id"], app.as_str());
    assert_eq!(list[0]["versions"].as_array().unwrap().len(), 1);
    assert_eq!(
        ok(admin(&url, &data, &["tc", "list"])).trim(),
        format!("{app} versions 1")
    );

    let out = ok(admin(
        &url,
        &data,
        &["policy", "set", "--class", "phone", "--tc", &app],
    ));
    assert_eq!(out.trim(), "policy of class phone set");
    let policy: serde_json::Value =
        serde_json::from_str(&ok(admin(&url, &data, &["policy", "show"]))).unwrap();
    assert_eq!(policy["classes"]["phone"]["install"][0], app.as_str());
    let err = failed(admin(
        &url,
        &data,
        &["policy", "set", "--class", "phone", "--tc", "/ff"],
    ));
    assert!(err.contains("400"), "{err}");

    assert_eq!(ok(admin(&url, &data, &["devices", "--json"])).trim(), "[]");
    let err = failed(admin(&url, &data, &["device", "revoke", &"00".repeat(32)]));
    assert!(err.contains("404"), "{err}");

    assert_eq!(
        ok(admin(&url, &data, &["tc", "revoke", &app])).trim(),
        format!("revoked {app}")
    );
    assert_eq!(
        ok(admin(&url, &data, &["tc", "list"])).trim(),
        format!("{app} versions 1 revoked")
    );
    assert_eq!(
        ok(admin(&url, &data, &["signer", "remove", "vendor"])).trim(),
        "signer vendor removed"
    );

    // A wrong token (flag or environment) is refused.
    let err = failed(admin(&url, &data, &["tc", "list", "--admin-token", "nope"]));
    assert!(err.contains("401"), "{err}");
    let out = teep()
        .args(["tam", "devices", "--admin-url", &url])
        .env("TEEP_TAM_ADMIN_TOKEN", "nope")
        .output()
        .unwrap();
    assert!(failed(out).contains("401"));

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

/// Spawns `teep ARGS`, reads its standard output up to a line starting with `until`, and
/// returns the child with the lines read.
#[allow(
    clippy::zombie_processes,
    reason = "the caller waits for the child it is handed; a panic here fails the test"
)]
fn spawn_until(args: &[&str], until: &str) -> (std::process::Child, Vec<String>) {
    let mut child = teep()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "{args:?} exited early"
        );
        let line = line.trim().to_owned();
        let done = line.starts_with(until);
        lines.push(line);
        if done {
            return (child, lines);
        }
    }
}

fn interrupt(mut child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

/// The TAM writes its public keys for `teep tee serve --trust-tam`; a software TEE takes
/// one; `teep device identity --json` registers that device through `teep tam device add`;
/// the class is set, the default class applies, a CA anchor is added, and `teep tam audit`
/// shows what each call affected.
#[test]
fn a_device_identity_registers_through_device_add() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let data = work.join("tam");
    let data_s = data.to_str().unwrap().to_owned();
    let (tam, lines) = spawn_until(
        &[
            "tam",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--default-class",
            "fleet",
            "--data-dir",
            &data_s,
        ],
        "listening on http://",
    );
    let url = lines
        .iter()
        .find_map(|l| l.strip_prefix("admin API on "))
        .unwrap()
        .to_owned();
    assert!(
        lines.iter().any(|l| l == "default class: fleet"),
        "{lines:?}"
    );
    let public: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("public key (for teep tee serve --trust-tam): "))
        .collect();
    assert_eq!(public.len(), 2, "{lines:?}");
    for path in &public {
        let pem = std::fs::read_to_string(path).unwrap();
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----"),
            "{path}: {pem}"
        );
        assert!(!pem.contains("PRIVATE"));
    }
    // The public file names the TAM's key: same thumbprint as the private key file.
    let thumb = |file: &str| {
        let out = teep().args(["keys", "thumbprint", file]).output().unwrap();
        ok(out).trim().to_owned()
    };
    assert_eq!(
        thumb(public[0]),
        thumb(data.join("tam-esp256.key").to_str().unwrap())
    );

    // A software TEE trusting the TAM by its public key file, and its identity.
    let tee_dir = work.join("tee");
    let tee_dir_s = tee_dir.to_str().unwrap().to_owned();
    let socket = work.join("tee.sock");
    let (tee, _) = spawn_until(
        &[
            "tee",
            "serve",
            "--state-dir",
            &tee_dir_s,
            "--socket",
            socket.to_str().unwrap(),
            "--trust-tam",
            public[0],
        ],
        "tee socket: ",
    );
    // Only its identity file is needed; how it exits is the lifecycle test's business.
    let mut tee = tee;
    tee.kill().unwrap();
    tee.wait().unwrap();
    let identity = ok(teep()
        .args(["device", "identity", "--json", "--tee-dir", &tee_dir_s])
        .output()
        .unwrap());
    let id_json: serde_json::Value = serde_json::from_str(&identity).unwrap();
    let device_id = id_json["teep_key"]["thumbprint"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(work.join("identity.json"), &identity).unwrap();
    let summary = ok(teep()
        .args(["device", "identity", "--tee-dir", &tee_dir_s])
        .output()
        .unwrap());
    std::fs::write(work.join("identity.txt"), &summary).unwrap();

    // The summary's PEM is the attestation key: refused, nothing registered.
    let txt = work.join("identity.txt");
    let err = failed(admin(
        &url,
        &data,
        &["device", "add", "--key", txt.to_str().unwrap()],
    ));
    assert!(err.contains("--json"), "{err}");
    assert_eq!(ok(admin(&url, &data, &["devices", "--json"])).trim(), "[]");

    let json_file = work.join("identity.json");
    let out = ok(admin(
        &url,
        &data,
        &[
            "device",
            "add",
            "--key",
            json_file.to_str().unwrap(),
            "--attestation-exempt",
        ],
    ));
    assert_eq!(out.trim(), format!("device {device_id} registered"));
    let devices: serde_json::Value =
        serde_json::from_str(&ok(admin(&url, &data, &["devices", "--json"]))).unwrap();
    assert_eq!(devices[0]["id"], device_id.as_str());
    assert_eq!(devices[0]["attestation_exempt"], true);
    assert_eq!(devices[0]["class"], serde_json::Value::Null);
    let out = ok(admin(
        &url,
        &data,
        &["device", "class", &device_id, "fleet"],
    ));
    assert_eq!(out.trim(), format!("device {device_id} class fleet"));
    let devices: serde_json::Value =
        serde_json::from_str(&ok(admin(&url, &data, &["devices", "--json"]))).unwrap();
    assert_eq!(devices[0]["class"], "fleet");
    let err = failed(admin(
        &url,
        &data,
        &["device", "class", &"00".repeat(32), "x"],
    ));
    assert!(err.contains("404"), "{err}");

    // A CA anchor from `teep keys ca`; a leaf certificate is refused as one.
    run(&["keys", "ca", "--out", "ca"], work);
    let ca_pem = work.join("ca").join("ca.pem");
    let out = ok(admin(
        &url,
        &data,
        &[
            "signer",
            "add",
            "--name",
            "vendor-ca",
            "--ca",
            ca_pem.to_str().unwrap(),
            "--scope",
            "/TEEP-Device/app",
        ],
    ));
    assert_eq!(out.trim(), "signer vendor-ca added");
    assert_eq!(
        ok(admin(&url, &data, &["signer", "list"])).trim(),
        "vendor-ca ca scope=/TEEP-Device/app"
    );
    run(&["keys", "generate", "--out", "leaf.key"], work);
    run(
        &[
            "keys",
            "certify",
            "--ca",
            "ca",
            "leaf.key.pub",
            "--out",
            "leaf.pem",
        ],
        work,
    );
    let leaf = work.join("leaf.pem");
    let err = failed(admin(
        &url,
        &data,
        &[
            "signer",
            "add",
            "--name",
            "x",
            "--ca",
            leaf.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("400") && err.contains("not a CA"), "{err}");

    // The audit log says what each call affected, and why the refused ones were refused.
    let audit = ok(admin(&url, &data, &["audit"]));
    assert!(
        audit.contains(&format!("device {device_id} registered")),
        "{audit}"
    );
    assert!(
        audit.contains(&format!("device {device_id} class fleet")),
        "{audit}"
    );
    assert!(audit.contains("signer vendor-ca CA sha256:"), "{audit}");
    assert!(audit.contains("refused not_found"), "{audit}");
    let lines: serde_json::Value =
        serde_json::from_str(&ok(admin(&url, &data, &["audit", "--json"]))).unwrap();
    assert!(
        lines
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["detail"] == format!("device {device_id} class fleet"))
    );
    interrupt(tam);
}

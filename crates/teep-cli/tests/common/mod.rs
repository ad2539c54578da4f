//! What every `teep` end-to-end test needs: the built binary and the repository's vectors.
#![allow(dead_code)] // each test binary uses a subset

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

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

/// Spawns `teep ARGS` and reads its standard output until a line starts with `ready`;
/// returns the child and the lines read.
pub fn spawn_until(args: &[&str], dir: &Path, ready: &str) -> (Child, Vec<String>) {
    let mut child = teep()
        .args(args)
        .current_dir(dir)
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
pub fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

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

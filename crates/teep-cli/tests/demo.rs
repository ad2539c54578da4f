//! `teep demo`: the README's main job runs to the end (every step line, exit 0, the
//! sequence diagram drawn from what was exchanged), and Ctrl-C stops it without leaving a
//! process behind.
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
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::teep;

const STEPS: [&str; 12] = [
    "keys of every role",
    "start the Verifier, the TAM and the TEE",
    "start the Broker: attestation",
    "package and register the TA and its encrypted personalization data",
    "install",
    "invoke the TA",
    "update to v2",
    "invoke again",
    "rollback attempt",
    "delete through a policy change",
    "invoke after the delete",
    "message sequence",
];

/// The processes whose working directory is `dir` (every process the demo starts runs
/// there).
fn processes_in(dir: &Path) -> Vec<String> {
    let dir = dir.canonicalize().unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == dir) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    found
}

#[test]
fn the_demo_runs_every_step_and_draws_what_was_exchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = teep()
        .args(["demo", "--dir", dir.to_str().unwrap()])
        // The caller's environment must not steer the demo's roles: a database elsewhere,
        // or a log filter that hides the lines the diagram is drawn from.
        .env("TEEP_TAM_DATABASE", "sqlite:/nonexistent/tam.sqlite3")
        .env("TEEP_TAM_VERIFIER_POLICY", "/nonexistent/policy.json")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for (n, title) in STEPS.iter().enumerate() {
        let line = format!("[{}/12] {title} ... ok", n + 1);
        assert!(
            stdout.lines().any(|l| l == line),
            "no {line:?} in\n{stdout}"
        );
    }
    // What the steps checked, as the demo saw it.
    assert!(
        stdout.contains("the TA answered \"Hello from the TAM, call #1\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("v2 answered \"v2: HELLO FROM THE TAM, call #3\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("sequence number 1 is not above the latest, 2"),
        "{stdout}"
    );
    assert!(stdout.contains("unknown_ta"), "{stdout}");

    // The diagram comes from the roles' logs: each TAM message line is in it.
    let mermaid = std::fs::read_to_string(dir.join("sequence.mmd")).unwrap();
    assert!(mermaid.starts_with("sequenceDiagram\n"), "{mermaid}");
    let tam_log = std::fs::read_to_string(dir.join("logs/tam.log")).unwrap();
    let tokens: Vec<&str> = tam_log
        .lines()
        .filter(|l| l.contains(" teep message "))
        .filter_map(|l| l.split(" token=").nth(1)?.split(' ').next())
        .collect();
    assert!(tokens.len() >= 10, "{tam_log}");
    for token in tokens {
        assert!(
            mermaid.contains(&format!("token {token}")),
            "{token} not in\n{mermaid}"
        );
    }
    let updates = mermaid
        .lines()
        .filter(|l| l.contains("T->>A: Update ("))
        .count();
    let successes = mermaid
        .lines()
        .filter(|l| l.contains("A->>T: Success ["))
        .count();
    assert_eq!(
        (updates, successes),
        (3, 3),
        "install, update, delete:\n{mermaid}"
    );
    assert!(
        mermaid.contains("Update (manifests: 0, unlinked: 2)"),
        "{mermaid}"
    );
    assert!(mermaid.contains("V->>T: EAR: affirming"), "{mermaid}");
    assert!(processes_in(&dir).is_empty(), "{:?}", processes_in(&dir));
}

#[test]
fn sigint_stops_the_demo_and_every_process_it_started() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let mut demo = teep()
        .args(["demo", "--dir", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until the Broker runs: then the Verifier, the TAM, the TEE and the Broker are up.
    let mut stdout = BufReader::new(demo.stdout.take().unwrap());
    let mut pids = Vec::new();
    loop {
        let mut line = String::new();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "the demo ended early"
        );
        if let Some(rest) = line.split(" pid ").nth(1) {
            pids.push(rest.split_whitespace().next().unwrap().to_owned());
        }
        if line.trim_start().starts_with("broker ") {
            break;
        }
    }
    assert_eq!(pids.len(), 4, "{pids:?}");
    for pid in &pids {
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} not running"
        );
    }
    assert!(!processes_in(&dir).is_empty());

    let status = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut demo.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    for pid in &pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} still there"
        );
    }
    assert!(processes_in(&dir).is_empty(), "{:?}", processes_in(&dir));
}

//! `teep trace` over hostile logs: garbage, lines cut short, binary bytes, colour codes and
//! forged fields give only the arrows of whole TAM message lines, never a failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::{ok, teep};

const QR: &str = r#"2026-12-02T04:42:50.330004Z  INFO teep_tam::driver: teep message kind="connect" device= token=5226ee13 outcome=QueryRequestSent"#;
const RESP: &str = r#"2026-12-02T04:42:50.541405Z  INFO teep_tam::driver: teep message kind="query-response" device=9078d0671787a0c7 token=5226ee13 outcome=UpdateSent { manifests: 2, unlinked: 0, err_code: None }"#;
const ERR: &str = r#"2026-12-02T04:42:50.606568Z  INFO teep_tam::driver: teep message kind="error" device=9078d0671787a0c7 token=8e0762c0 outcome=AgentError { code: ManifestProcessingFailed }"#;

fn trace(log: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam.log");
    std::fs::write(&path, log).unwrap();
    ok(teep().arg("trace").arg(&path).output().unwrap())
}

fn types(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace().skip(1);
            let shaft = words.next()?;
            shaft
                .starts_with(['<', '-'])
                .then(|| words.next().map(str::to_owned))
                .flatten()
        })
        .collect()
}

#[test]
fn a_session_with_an_agent_error() {
    let out = trace(format!("{QR}\n{RESP}\n{ERR}\n").as_bytes());
    assert_eq!(
        types(&out),
        ["QueryRequest", "QueryResponse", "Update", "Error"]
    );
    assert!(out.contains("err-code ManifestProcessingFailed"), "{out}");
    assert!(
        out.contains("Update (token 8e0762c0.., manifests 2"),
        "{out}"
    );
}

#[test]
fn hostile_lines_are_skipped() {
    let cut = &RESP[..RESP.find("kind=").unwrap() + 8]; // inside the quoted kind
    let mut log = Vec::new();
    for line in [
        "garbage",
        "",
        " teep message ",
        " teep message kind=",
        " teep message kind=\"",
        cut,
        " teep message =====",
        " teep message kind=\"success\" outcome=",
        &"x".repeat(100_000),
        &format!("\u{1b}[2m{QR}\u{1b}[0m"),
        r#"T teep message kind="connect" dropped=store: ; # injected"#,
    ] {
        log.extend_from_slice(line.as_bytes());
        log.push(b'\n');
    }
    log.extend_from_slice(&[0xff, 0xfe, 0x00, b'\n']);
    log.extend_from_slice(&RESP.as_bytes()[..40]); // the last line cut short, no newline
    let out = trace(&log);
    // The coloured QueryRequest reads, the forged connect is a dropped arrow, the bare
    // `kind="success" outcome=` is an arrow with nothing more: no line made the command fail.
    assert_eq!(types(&out), ["Success", "QueryRequest", "connect"], "{out}");
}

#[test]
fn mermaid_labels_cannot_break_out() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tam.log");
    let mmd = dir.path().join("t.mmd");
    std::fs::write(
        &log,
        "T teep message kind=\"error\" device=a;b#c token=00 dropped=x;\nend\n",
    )
    .unwrap();
    ok(teep()
        .arg("trace")
        .arg(&log)
        .arg("--mermaid")
        .arg(&mmd)
        .output()
        .unwrap());
    let m = std::fs::read_to_string(&mmd).unwrap();
    assert_eq!(m.lines().count(), 4, "{m}");
    assert!(!m.contains(';') && !m.contains('#'), "{m}");
}

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

use common::{ok, run, teep};

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
        "T teep message kind=\"error\" device=a;b#c<i>&amp;`q'\" token=0<b>0 \
         dropped=x; <img src=x onerror=\"alert('1')\"> & `code` 'q' #;\nend\n",
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
    // Nor markup or quoting: HTML, entities, code spans, quotes (a `dropped=` reason is the
    // sender's), while the arrow is still drawn with what is left of the reason.
    for c in ['<', '>', '&', '`', '"', '\''] {
        assert!(!m.contains(c), "{c:?} in {m}");
    }
    assert!(
        m.contains("A1-xTAM: Error (token 0_b_0.., dropped: x_ _img src=x"),
        "{m}"
    );
}

/// `(type, token)` of each TEEP message arrow of a text diagram (`TIME SHAFT TYPE (token
/// T.., ...)`); the capture's empty POSTs and session ends are not TEEP messages.
fn messages(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace().skip(1);
            let shaft = words.next()?;
            let kind = words.next()?;
            let teep = [
                "QueryRequest",
                "QueryResponse",
                "Update",
                "Success",
                "Error",
            ];
            (shaft.starts_with(['<', '-']) && teep.contains(&kind)).then(|| {
                let token = l
                    .split_once("(token ")
                    .and_then(|(_, t)| t.split_once(".."))
                    .map_or("", |(t, _)| t);
                (kind.to_owned(), token.to_owned())
            })
        })
        .collect()
}

/// A real session (attestation, then an install of a TA and its personalization TC)
/// captured by the Broker: `teep trace --capture` draws the same messages with the same
/// tokens as the TAM's log, and names the manifests and the Evidence on its arrows.
#[test]
fn a_captured_session_draws_the_tam_logs_messages_with_their_contents() {
    use common::deployment::{Deployment, id_text};
    let d = Deployment::new();
    d.upload_counter(1);
    d.upload_greeting(1, 1);
    let ta = id_text(&["TEEP-Device", "counter", "suit"]);
    let perso = id_text(&["TEEP-Device", "counter", "greeting.suit"]);
    d.set_policy(&[&ta, &perso]);
    let tee = d.start_tee();
    let mut once = d.once_args().to_vec();
    once.extend(["--capture", "cap"]);
    let out = d.run(&once);
    assert!(out.contains("1 TAM exchange(s) completed"), "{out}");
    let installed = d.tam_installed();
    assert!(installed.contains(&(ta.clone(), 1)), "{installed:?}");

    // The index: a POST and its answer, alternately, owner-only files.
    let cap = d.work().join("cap");
    let index = std::fs::read_to_string(cap.join("index.jsonl")).unwrap();
    let entries: Vec<serde_json::Value> = index
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let directions: Vec<&str> = entries
        .iter()
        .map(|e| e["direction"].as_str().unwrap())
        .collect();
    assert_eq!(
        directions,
        [
            "to-tam", "from-tam", "to-tam", "from-tam", "to-tam", "from-tam"
        ],
        "{index}"
    );
    assert_eq!(entries[0]["len"], 0, "the empty POST");
    assert_eq!(entries[5]["status"], 204, "{index}");
    assert_eq!(entries[1]["media_type"], "application/teep+cbor");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cap), 0o700);
    let first = cap.join(entries[1]["file"].as_str().unwrap());
    assert_eq!(mode(&first), 0o600);

    let captured = d.run(&["trace", "--capture", "cap", "--mermaid", "cap.mmd"]);
    let log = d.tam_log().to_str().unwrap().to_owned();
    let logged = d.run(&["trace", &log, "--device", &d.device_id]);
    let from_capture = messages(&captured);
    assert_eq!(
        from_capture
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>(),
        ["QueryRequest", "QueryResponse", "Update", "Success"],
        "{captured}"
    );
    assert_eq!(from_capture, messages(&logged), "{captured}\n{logged}");
    assert!(from_capture.iter().all(|(_, t)| t.len() == 8), "{captured}");
    assert!(captured.starts_with("decoded from a capture WITHOUT verifying"));
    assert!(
        captured.contains(&format!("manifest-list [{ta}@1 {perso}@1]")),
        "{captured}"
    );
    assert!(captured.contains("attestation "), "{captured}");
    assert!(captured.contains("empty POST") && captured.contains("HTTP 204, session ends"));
    // The arrows are on the lane of the device the TAM knows.
    assert!(captured.contains(&d.device_id[..16]), "{captured}");
    let mermaid = std::fs::read_to_string(d.work().join("cap.mmd")).unwrap();
    assert_eq!(
        mermaid.lines().filter(|l| l.contains("->>")).count(),
        6,
        "{mermaid}"
    );
    // The device holds what the capture says was installed.
    let broker = d.start_broker(300);
    assert_eq!(
        d.listed_sequence(&["TEEP-Device", "counter", "ta"]),
        Some(1)
    );
    broker.stop();
    tee.stop();
}

/// A hostile capture: an index line that is not an entry, a file name escaping the
/// directory, a garbage body, a body over the size limit, and a signed message whose
/// component ID and attestation format carry markup: each is skipped or drawn as
/// undecodable, the markup reduced to safe characters, never a failure.
#[test]
fn a_hostile_capture_is_skipped_or_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("cap");
    std::fs::create_dir(&cap).unwrap();
    let work = dir.path();
    run(&["keys", "generate", "--out", "k.key"], work);
    let view = serde_json::json!({"cose": "COSE_Sign1", "tagged": true, "protected": {"alg": -9},
        "payload": {"type": "query-response", "token": "0102030405060708",
            "unneeded-manifest-list": [[hex::encode("<b>;#x"), hex::encode("\n`|")]],
            "attestation-payload-format": "text/x;<b>#\n", "attestation-payload": "00"}});
    std::fs::write(work.join("m.json"), view.to_string()).unwrap();
    run(
        &[
            "encode",
            "--key",
            "k.key",
            "m.json",
            "--out",
            "cap/markup.cbor",
        ],
        work,
    );
    std::fs::write(cap.join("garbage.cbor"), b"\xff\x00garbage").unwrap();
    let huge = std::fs::File::create(cap.join("huge.cbor")).unwrap();
    huge.set_len(9 * 1024 * 1024).unwrap();
    std::fs::write(dir.path().join("secret"), b"outside").unwrap();
    let entry = |file: &str| {
        serde_json::json!({"n": 1, "direction": "to-tam", "tam": "http://t", "time_ms": 0,
            "status": null, "media_type": null, "len": 1, "file": file, "error": null})
        .to_string()
    };
    let index = [
        "garbage".to_owned(),
        "{\"n\": 1}".to_owned(),
        entry("../secret"),
        entry("garbage.cbor"),
        entry("huge.cbor"),
        entry("markup.cbor"),
        entry("missing.cbor"),
    ]
    .join("\n");
    std::fs::write(cap.join("index.jsonl"), index).unwrap();
    let out = run(&["trace", "--capture", "cap", "--mermaid", "t.mmd"], work);
    assert_eq!(
        types(&out),
        [
            "unreadable",
            "undecodable",
            "unreadable",
            "QueryResponse",
            "unreadable"
        ],
        "{out}"
    );
    assert!(out.contains("not a plain file name"), "{out}");
    assert!(out.contains("over the limit"), "{out}");
    // The component ID's bytes are percent-encoded, the format string's reduced.
    assert!(
        out.contains("unneeded-manifest-list [/%3Cb%3E%3B%23x/%0A%60%7C]"),
        "{out}"
    );
    assert!(out.contains("attestation text/x__b___ (1 bytes)"), "{out}");
    let m = std::fs::read_to_string(work.join("t.mmd")).unwrap();
    assert_eq!(m.lines().count(), 3 + 5, "{m}");
    assert!(
        !m.contains(';') && !m.contains('#') && !m.contains('<') && !m.contains('`'),
        "{m}"
    );
}

/// A capture directory that cannot be made stops `teep device run` at start (with the
/// option named), before any TAM is contacted.
#[test]
fn an_unwritable_capture_directory_is_an_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let out = teep()
        .args(["device", "run", "--once", "--allow-plain-http", "--tam"])
        .arg("http://127.0.0.1:9/tam")
        .args(["--state-dir", "dev", "--capture", "file/cap"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--capture file/cap"), "{err}");
    assert!(!err.contains("exchange starts"), "{err}");
}

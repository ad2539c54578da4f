//! `teep tam serve` end to end: the binary starts, makes its data directory and keys,
//! answers an empty POST with a QueryRequest, and stops cleanly on SIGINT.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::teep;

#[test]
fn serve_answers_an_empty_post_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tam");
    let mut child = teep()
        .args(["tam", "serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let url = loop {
        let mut line = String::new();
        assert_ne!(
            stdout.read_line(&mut line).unwrap(),
            0,
            "exited early: {printed}"
        );
        printed.push_str(&line);
        if let Some(url) = line.trim().strip_prefix("listening on http://") {
            break url.to_owned();
        }
    };
    assert!(printed.contains("tam.sqlite3"), "{printed}");
    assert!(
        data.join("tam.sqlite3").is_file(),
        "the SQLite store is in the data directory"
    );
    for key in ["tam-esp256.key", "tam-ed25519.key", "verifier.key"] {
        assert!(data.join(key).is_file(), "{key}");
        assert!(printed.contains(key), "{printed}");
    }
    let (addr, path) = url.split_once('/').unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /{path} HTTP/1.1\r\nHost: t\r\nAccept: application/teep+cbor\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/teep+cbor"),
        "{text}"
    );

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.contains("teep message") && log.contains("connect"),
        "{log}"
    );
    assert!(log.contains("shutting down"), "{log}");
}

#[test]
fn tls_cert_is_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let out = teep()
        .args([
            "tam",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "cert.pem",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS is not supported yet"), "{err}");
}

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
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::teep;

/// A running `teep tam serve`: the process, what it printed up to its address, and the
/// address (`HOST:PORT/PATH`, after the scheme).
struct Tam {
    child: Child,
    printed: String,
    url: String,
}

impl Drop for Tam {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `teep tam serve` as `cmd` describes; returns once it listens.
fn start(mut cmd: Command) -> Tam {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let url = loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("exited early: {printed}\n{err}");
        }
        printed.push_str(&line);
        if let Some((_, url)) = line.trim().split_once("listening on ") {
            break url.split_once("://").unwrap().1.to_owned();
        }
    };
    Tam {
        child,
        printed,
        url,
    }
}

fn serve_cmd() -> Command {
    let mut cmd = teep();
    cmd.args(["tam", "serve"]);
    for (name, _) in std::env::vars() {
        if name.starts_with("TEEP_TAM_") {
            cmd.env_remove(name);
        }
    }
    // Tests run in parallel: the admin API on a port of its own, not the fixed default.
    cmd.env("TEEP_TAM_ADMIN_LISTEN", "127.0.0.1:0");
    cmd
}

#[test]
fn serve_answers_an_empty_post_and_stops_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tam");
    let mut cmd = serve_cmd();
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data);
    let mut tam = start(cmd);
    let (printed, url) = (tam.printed.clone(), tam.url.clone());
    assert!(printed.contains("tam.sqlite3"), "{printed}");
    assert!(printed.contains("verifier: in-process"), "{printed}");
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
        .args(["-INT", &tam.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tam.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let mut log = String::new();
    tam.child
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

/// `teep tam serve ARGS` that must refuse to start; its standard error.
fn refused(args: &[&str], dir: &Path) -> String {
    let out = serve_cmd()
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("tam"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn inconsistent_or_unknown_options_are_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let err = refused(&["--tls-cert", "cert.pem"], dir.path());
    assert!(err.contains("tls-cert needs tls-key"), "{err}");
    let err = refused(&["--verifier", "http://127.0.0.1:1"], dir.path());
    assert!(err.contains("go together"), "{err}");
    std::fs::write(
        dir.path().join("tam.toml"),
        "listen = \"127.0.0.1:0\"\nbody_limit = 5\n",
    )
    .unwrap();
    let err = refused(&["--config", "tam.toml"], dir.path());
    assert!(
        err.contains("tam.toml") && err.contains("body_limit"),
        "{err}"
    );
    assert!(!dir.path().join("tam").exists(), "nothing was created");
}

#[test]
fn flags_beat_environment_beat_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tam.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\npath = \"/from-file\"\ndata-dir = {:?}\n",
            dir.path().join("from-file")
        ),
    )
    .unwrap();
    let url = |env: Option<&str>, flag: Option<&str>| {
        let mut cmd = serve_cmd();
        cmd.arg("--config").arg(&config);
        if let Some(env) = env {
            cmd.env("TEEP_TAM_PATH", env);
        }
        if let Some(flag) = flag {
            cmd.args(["--path", flag]);
        }
        let tam = start(cmd);
        tam.url.split_once('/').unwrap().1.to_owned()
    };
    assert_eq!(url(None, None), "from-file");
    assert_eq!(url(Some("/from-env"), None), "from-env");
    assert_eq!(url(Some("/from-env"), Some("/from-flag")), "from-flag");
    assert!(
        dir.path()
            .join("from-file")
            .join("tam-esp256.key")
            .is_file()
    );
}

#[test]
fn tls_options_serve_https() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("c.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("k.pem"), key.serialize_pem()).unwrap();
    let mut cmd = serve_cmd();
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("tam"))
        .env("TEEP_TAM_TLS_CERT", dir.path().join("c.pem"))
        .env("TEEP_TAM_TLS_KEY", dir.path().join("k.pem"));
    let tam = start(cmd);
    assert!(
        tam.printed.contains("listening on https://"),
        "{}",
        tam.printed
    );
    // A plain-HTTP request to the TLS port gets no HTTP answer.
    let mut stream = TcpStream::connect(tam.url.split_once('/').unwrap().0).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /tam HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    assert!(!raw.starts_with(b"HTTP/"), "{raw:?}");
}

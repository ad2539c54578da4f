//! HTTPS on loopback: the TAM server with a fresh rcgen certificate, a reqwest client that
//! trusts it, one that does not, a client speaking plain HTTP to the TLS port and one that
//! never finishes its handshake.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
#![cfg(feature = "server")]

mod common;

use std::path::Path;
use std::time::Duration;

use common::serving::{Running, start};
use teep_cose::Curve;
use teep_proto::{Message, Numbering, Unverified};
use teep_tam::http::{ServerConfig, TlsError, tls_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A self-signed certificate for `localhost` and its key, as PEM files in `dir`; returns
/// the paths and the certificate (DER).
fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.join("tam.crt"), dir.join("tam.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, cert.der().to_vec())
}

/// A TLS TAM with `header_timeout`, and the certificate its clients must trust.
async fn tls_tam(header_timeout: Duration) -> (Running, Vec<u8>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = certificate(dir.path());
    let config = ServerConfig {
        tls: Some(tls_config(&cert, &key).unwrap()),
        header_timeout,
        ..ServerConfig::default()
    };
    (start(config).await, der, dir)
}

/// A client that trusts only `roots`, with timeouts so that a hung server fails the test.
fn client(roots: &[Vec<u8>]) -> reqwest::Client {
    let roots: Vec<_> = roots
        .iter()
        .map(|der| reqwest::Certificate::from_der(der).unwrap())
        .collect();
    reqwest::Client::builder()
        .tls_certs_only(roots)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn url(tam: &Running) -> String {
    format!("https://localhost:{}/tam", tam.addr.port())
}

async fn open_session(client: &reqwest::Client, url: &str) -> reqwest::Result<reqwest::Response> {
    client
        .post(url)
        .header("accept", "application/teep+cbor")
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trusting_the_certificate_gets_a_query_request_over_tls() {
    let (tam, der, _dir) = tls_tam(Duration::from_secs(10)).await;
    let resp = open_session(&client(std::slice::from_ref(&der)), &url(&tam))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let body = resp.bytes().await.unwrap();
    let parsed = Unverified::parse(&body, Numbering::Draft26).unwrap();
    assert!(matches!(parsed.message(), Message::QueryRequest(q) if q.token.is_some()));
    assert_eq!(tam.store().snapshot().sessions.len(), 1);

    // The whole attested first contact over TLS.
    let agent = tam.world.agent(Curve::P256);
    let qr = agent.read_query(&body);
    let challenge = qr.challenge.clone().unwrap();
    let resp = client(&[der])
        .post(url(&tam))
        .header("accept", "application/teep+cbor")
        .header("content-type", "application/teep+cbor")
        .body(agent.attested_response(&qr, &challenge))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(tam.store().snapshot().devices.contains_key(&agent.id()));
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_certificate_is_refused_and_nothing_changes() {
    let (tam, _der, _dir) = tls_tam(Duration::from_secs(10)).await;
    let (_other_dir, other) = {
        let d = tempfile::tempdir().unwrap();
        let (_, _, der) = certificate(d.path());
        (d, der)
    };
    let err = open_session(&client(&[other]), &url(&tam))
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    assert!(tam.store().snapshot().sessions.is_empty());
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_the_tls_port_gets_no_http_answer() {
    let (tam, der, _dir) = tls_tam(Duration::from_secs(10)).await;
    let mut stream = TcpStream::connect(tam.addr).await.unwrap();
    stream
        .write_all(b"POST /tam HTTP/1.1\r\nHost: x\r\nAccept: application/teep+cbor\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server kept a non-TLS connection open")
        .ok();
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    assert!(tam.store().snapshot().sessions.is_empty());
    // The server still serves TLS clients.
    let resp = open_session(&client(&[der]), &url(&tam)).await.unwrap();
    assert_eq!(resp.status(), 200);
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handshake_that_never_finishes_is_cut() {
    let (tam, der, _dir) = tls_tam(Duration::from_millis(300)).await;
    // Connects and sends half a ClientHello record header, then nothing.
    let mut stream = TcpStream::connect(tam.addr).await.unwrap();
    stream.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
        .await
        .expect("the server kept a stalled handshake open");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let resp = open_session(&client(&[der]), &url(&tam)).await.unwrap();
    assert_eq!(resp.status(), 200);
    tam.stop().await;
}

#[test]
fn unusable_pem_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path());
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    assert!(matches!(
        tls_config(&empty, &key),
        Err(TlsError::Certificate { .. })
    ));
    assert!(matches!(
        tls_config(&cert, &empty),
        Err(TlsError::Key { .. })
    ));
    assert!(matches!(
        tls_config(&dir.path().join("missing.pem"), &key),
        Err(TlsError::Certificate { .. })
    ));
    // A key that is not the certificate's.
    let (_, other_key, _) = {
        let d = dir.path().join("other");
        std::fs::create_dir(&d).unwrap();
        certificate(&d)
    };
    assert!(matches!(
        tls_config(&cert, &other_key),
        Err(TlsError::Config(_))
    ));
}

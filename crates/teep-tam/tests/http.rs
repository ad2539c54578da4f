//! TEEP over HTTP on loopback: the server in front of the engine, driven by a raw HTTP/1.1
//! client so that each test controls every byte (and every pause) a hostile client sends.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
#![cfg(feature = "server")]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::provider;
use common::serving::start;
use teep_cose::{Curve, PrivateKey};
use teep_proto::{CoseStructure, Message, Numbering, QueryResponse, Unverified};
use teep_tam::http::{RateLimit, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response as it came off the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The three headers otrp-over-http §5 asks for, and no Cache-Control.
    fn assert_security_headers(&self) {
        assert_eq!(
            self.header("x-content-type-options"),
            Some("nosniff"),
            "{self:?}"
        );
        assert_eq!(
            self.header("content-security-policy"),
            Some("default-src 'none'"),
            "{self:?}"
        );
        assert_eq!(
            self.header("referrer-policy"),
            Some("no-referrer"),
            "{self:?}"
        );
        assert_eq!(self.header("cache-control"), None, "{self:?}");
        assert_eq!(self.header("location"), None, "{self:?}");
    }
}

fn parse(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let head = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Reply {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    }
}

/// Sends `head` (request line and headers, without the blank line) and `body` on a new
/// connection that closes after the response, and reads the response.
async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{head}\r\nHost: tam.test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    parse(&raw)
}

/// A TEEP POST: `Accept` and, for a non-empty body, `Content-Type` as a Broker sends them.
async fn post(addr: SocketAddr, body: &[u8]) -> Reply {
    let head = if body.is_empty() {
        "POST /tam HTTP/1.1\r\nAccept: application/teep+cbor"
    } else {
        "POST /tam HTTP/1.1\r\nAccept: application/teep+cbor\r\nContent-Type: application/teep+cbor"
    };
    exchange(addr, head, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_post_gets_a_query_request_signed_with_both_tam_keys() {
    let tam = start(ServerConfig::default()).await;
    let reply = post(tam.addr, b"").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/teep+cbor"));
    reply.assert_security_headers();
    let parsed = Unverified::parse(&reply.body, Numbering::Draft26).unwrap();
    assert_eq!(parsed.cose().structure, CoseStructure::Sign);
    assert_eq!(parsed.cose().signatures.len(), 2);
    assert!(matches!(parsed.message(), Message::QueryRequest(q) if q.token.is_some()));
    for key in [&tam.world.tam_esp256, &tam.world.tam_ed25519] {
        let verified = Unverified::parse(&reply.body, Numbering::Draft26)
            .unwrap()
            .verify_with_key(provider(), key)
            .unwrap();
        assert_eq!(verified.signer(), key);
    }
    let stranger = PrivateKey::generate(Curve::P256).unwrap();
    assert!(
        Unverified::parse(&reply.body, Numbering::Draft26)
            .unwrap()
            .verify_with_key(provider(), stranger.public_key())
            .is_err()
    );
    assert_eq!(tam.store().snapshot().sessions.len(), 1);
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attested_device_with_nothing_to_install_gets_204() {
    let tam = start(ServerConfig::default()).await;
    let agent = tam.world.agent(Curve::P256);
    let qr = agent.read_query(&post(tam.addr, b"").await.body);
    let challenge = qr.challenge.clone().unwrap();
    let reply = post(tam.addr, &agent.attested_response(&qr, &challenge)).await;
    assert_eq!(reply.status, 204, "{reply:?}");
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("content-type"), None);
    reply.assert_security_headers();
    let state = tam.store().snapshot();
    assert!(
        state.devices.contains_key(&agent.id()),
        "the device was recorded"
    );
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_change_nothing_and_the_server_keeps_answering() {
    let config = ServerConfig {
        body_limit: 1024,
        rate: RateLimit {
            burst: 100,
            ..RateLimit::default()
        },
        ..ServerConfig::default()
    };
    let tam = start(config).await;
    let qr_bytes = post(tam.addr, b"").await.body;
    let agent = tam.world.agent(Curve::P256);
    let qr = agent.read_query(&qr_bytes);
    // A QueryResponse for a token the TAM never issued.
    let forged = agent.sign(Message::QueryResponse(QueryResponse {
        token: Some(vec![0x55; 16]),
        ..agent.response_with(&qr, None)
    }));
    let before = tam.store().snapshot();
    let accept = "POST /tam HTTP/1.1\r\nAccept: application/teep+cbor";
    let typed = "POST /tam HTTP/1.1\r\nAccept: application/teep+cbor\r\nContent-Type: application/teep+cbor";
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("not CBOR", typed, b"\xff\x00garbage".to_vec(), 204),
        (
            "truncated COSE",
            typed,
            qr_bytes[..qr_bytes.len() / 2].to_vec(),
            204,
        ),
        ("unknown token", typed, forged, 204),
        ("oversize", typed, vec![0x84; 1025], 413),
        ("no content type", accept, b"\x84\x40\xa0\x40".to_vec(), 415),
        (
            "wrong content type",
            "POST /tam HTTP/1.1\r\nAccept: */*\r\nContent-Type: application/cbor",
            qr_bytes.clone(),
            415,
        ),
        (
            "no accept",
            "POST /tam HTTP/1.1\r\nContent-Type: application/teep+cbor",
            qr_bytes.clone(),
            406,
        ),
        (
            "accept excludes",
            "POST /tam HTTP/1.1\r\nAccept: application/json, application/teep+cbor;q=0",
            Vec::new(),
            406,
        ),
        ("get", "GET /tam HTTP/1.1\r\nAccept: */*", Vec::new(), 405),
        (
            "other path",
            "POST /other HTTP/1.1\r\nAccept: */*",
            Vec::new(),
            404,
        ),
    ];
    for (what, head, body, status) in cases {
        let reply = exchange(tam.addr, head, &body).await;
        assert_eq!(reply.status, status, "{what}: {reply:?}");
        assert!(reply.body.is_empty(), "{what}");
        reply.assert_security_headers();
        assert_eq!(tam.store().snapshot(), before, "{what} changed the store");
    }
    // The QueryRequest's own session still answers.
    let challenge = qr.challenge.clone().unwrap();
    let reply = post(tam.addr, &agent.attested_response(&qr, &challenge)).await;
    assert_eq!(reply.status, 204);
    assert_ne!(tam.store().snapshot(), before);
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_is_405_with_allow_post() {
    let tam = start(ServerConfig::default()).await;
    for method in ["GET", "PUT", "DELETE", "HEAD"] {
        let reply = exchange(
            tam.addr,
            &format!("{method} /tam HTTP/1.1\r\nAccept: application/teep+cbor"),
            b"",
        )
        .await;
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("POST"), "{method}");
        reply.assert_security_headers();
    }
    assert!(tam.store().snapshot().sessions.is_empty());
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_type_parameters_and_case_are_accepted() {
    let tam = start(ServerConfig::default()).await;
    let reply = exchange(
        tam.addr,
        "POST /tam HTTP/1.1\r\nAccept: text/plain, Application/TEEP+CBOR; q=0.5\r\nContent-Type: APPLICATION/teep+cbor ; foo=bar",
        b"\xff",
    )
    .await;
    assert_eq!(
        reply.status, 204,
        "past the media checks to the engine, which drops it"
    );
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let config = ServerConfig {
        rate: RateLimit {
            per_second: 0.1,
            burst: 2,
            max_clients: 16,
        },
        ..ServerConfig::default()
    };
    let tam = start(config).await;
    assert_eq!(post(tam.addr, b"").await.status, 200);
    assert_eq!(post(tam.addr, b"").await.status, 200);
    let before = tam.store().snapshot();
    let limited = post(tam.addr, b"").await;
    assert_eq!(limited.status, 429);
    limited.assert_security_headers();
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "retry after {retry}");
    assert_eq!(
        tam.store().snapshot(),
        before,
        "a limited request opens no session"
    );
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_cut_off() {
    let config = ServerConfig {
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let tam = start(config).await;
    // Slowloris: the head never ends; the server closes the connection.
    let mut stream = TcpStream::connect(tam.addr).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"POST /tam HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw)).await;
    assert!(read.is_ok(), "the connection was not closed");
    assert!(started.elapsed() >= Duration::from_millis(250));
    // A body that stops halfway: 408.
    let mut stream = TcpStream::connect(tam.addr).await.unwrap();
    stream
        .write_all(
            b"POST /tam HTTP/1.1\r\nHost: t\r\nAccept: application/teep+cbor\r\nContent-Type: application/teep+cbor\r\nContent-Length: 100\r\n\r\n\x84\x40",
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("no answer to a stalled body")
        .unwrap();
    raw.extend_from_slice(&buf[..n]);
    let reply = parse(&raw);
    assert_eq!(reply.status, 408);
    reply.assert_security_headers();
    assert!(tam.store().snapshot().sessions.is_empty());
    tam.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_request_in_flight_finish() {
    let tam = start(ServerConfig::default()).await;
    let mut stream = TcpStream::connect(tam.addr).await.unwrap();
    stream
        .write_all(
            b"POST /tam HTTP/1.1\r\nHost: t\r\nAccept: application/teep+cbor\r\nContent-Length: 0",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let addr = tam.addr;
    let stopping = tokio::spawn(tam.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no new connection is accepted while stopping"
    );
    stream.write_all(b"\r\n\r\n").await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    assert_eq!(parse(&raw).status, 200);
    stopping.await.unwrap();
}

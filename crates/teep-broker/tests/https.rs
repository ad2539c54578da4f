//! HTTPS with server authentication, against a TLS TAM on loopback with a fresh self-signed
//! certificate: trusted when given as an extra root, refused otherwise, refused for the
//! wrong name.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use teep_broker::{
    AgentCall, Broker, BrokerConfig, BrokerError, Outcome, ScriptedAgent, TransportError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A TLS server for `names` that answers every request with 204; returns its `https://`
/// URI, its certificate (DER), how many requests it answered and how many connections it
/// accepted (handshakes tried).
async fn tls_tam(names: &[&str]) -> (String, Vec<u8>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let der = cert.der().to_vec();
    let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = loopback_listener().await;
    let uri = format!("https://{}/tam", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    let accepted = Arc::new(AtomicUsize::new(0));
    let connections = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            connections.fetch_add(1, Ordering::SeqCst);
            let (acceptor, count) = (acceptor.clone(), count.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (uri, der, answered, accepted)
}

/// The default configuration (HTTPS only) plus `roots`, without retries.
fn https_broker(uri: &str, roots: Vec<Vec<u8>>) -> Broker<ScriptedAgent> {
    let mut cfg = BrokerConfig::default();
    cfg.http.extra_roots_der = roots;
    cfg.http.retries = 0;
    Broker::new(ScriptedAgent::new().on_request_ta(contact(uri)), cfg).unwrap()
}

#[tokio::test]
async fn tam_with_a_trusted_certificate_is_reached() {
    let (uri, der, answered, _) = tls_tam(&["127.0.0.1"]).await;
    let broker = https_broker(&uri, vec![der]);

    assert_eq!(
        broker.request_ta(wants_ta(None)).await,
        Ok(Outcome::Completed { exchanges: 1 })
    );
    assert_eq!(answered.load(Ordering::SeqCst), 1);
}

/// Not trusted at all, or trusted but issued for another name: no request is sent, and
/// although retries are configured the handshake is tried exactly once (retrying cannot
/// make the certificate trusted); the Agent is told through ProcessError with `Tls`.
#[tokio::test]
async fn tam_without_a_valid_certificate_is_refused() {
    for (names, trusted) in [(["127.0.0.1"], false), (["tam.example"], true)] {
        let (uri, der, answered, accepted) = tls_tam(&names).await;
        let roots = if trusted { vec![der] } else { Vec::new() };
        let mut cfg = BrokerConfig::default();
        cfg.http.extra_roots_der = roots;
        cfg.http.retries = 3;
        let broker = Broker::new(ScriptedAgent::new().on_request_ta(contact(&uri)), cfg).unwrap();

        let result = broker.request_ta(wants_ta(None)).await;
        assert!(
            matches!(result, Err(BrokerError::Transport(TransportError::Tls(_)))),
            "{names:?}: {result:?}"
        );
        assert_eq!(answered.load(Ordering::SeqCst), 0, "{names:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "{names:?}");
        assert!(
            matches!(
                &broker.agent().calls()[1],
                AgentCall::ProcessError {
                    error: TransportError::Tls(_),
                    ..
                }
            ),
            "{:?}",
            broker.agent().calls()
        );
    }
}

/// A server that hangs up during the handshake is a network failure, not an untrusted
/// certificate: still `Connect`, still retried.
#[tokio::test]
async fn a_handshake_cut_by_the_network_is_still_retried() {
    let (uri, accepted) = hang_up_server().await;
    let uri = uri.replacen("http://", "https://", 1);
    let broker = broker(ScriptedAgent::new().on_request_ta(contact(&uri)));

    assert_not_connected(&broker.request_ta(wants_ta(None)).await);
    assert_eq!(accepted.load(Ordering::SeqCst), 1 + 2);
}

#[test]
fn a_bad_extra_root_is_a_build_error() {
    let mut cfg = BrokerConfig::default();
    cfg.http.extra_roots_der = vec![b"not a certificate".to_vec()];
    assert!(matches!(
        Broker::new(ScriptedAgent::new(), cfg),
        Err(teep_broker::BuildError::Client(_))
    ));
}

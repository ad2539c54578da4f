//! The one log line per message: its kind, device, token prefix and outcome, and never the
//! Evidence, the EAR or a key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use teep_cose::Curve;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn one_line_per_message_without_evidence_or_keys() {
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let evidence;
    let token;
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        let qr = agent.read_query(&w.connect());
        token = qr.token.clone().unwrap();
        evidence = agent.evidence(qr.challenge.as_deref().unwrap());
        let resp = agent.attested_response(&qr, qr.challenge.as_deref().unwrap());
        w.post(&resp).unwrap();
        let _ = w.post(&resp); // replayed: dropped, and logged as such
    }
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].contains("kind=\"connect\""), "{}", lines[0]);
    let prefix = hex::encode(&token[..4]);
    assert!(
        lines[1].contains(&prefix) && lines[1].contains("UpToDate"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains(&agent.id().to_string()), "{}", lines[1]);
    assert!(lines[2].contains("token already used"), "{}", lines[2]);
    // Nothing secret or bulky: no Evidence, no key, not even the full token.
    let key = hex::encode(agent.key.public_key().to_cose_key_bytes());
    for secret in [hex::encode(&evidence), key, hex::encode(&token)] {
        assert!(!text.contains(&secret[..32]), "{text}");
    }
    assert!(!text.contains(&format!("{:?}", &evidence[..8])), "{text}");
}

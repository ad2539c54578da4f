//! Evidence and SUIT reports encrypted to the TAM (draft-ietf-teep-protocol-26 §12): the
//! TAM opens them with its P-256 key; one encrypted to another key, or sent to a TAM
//! without one, is dropped with the store unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::*;
use teep_attest::{EVIDENCE_FORMAT, encrypt_evidence};
use teep_cose::{Curve, PrivateKey, PublicKey};
use teep_proto::{Message, QueryRequest};
use teep_suit::report::Report;
use teep_tam::report::ReportError;
use teep_tam::{Dropped, Event, Tam, TamConfig};

/// A signed QueryResponse whose Evidence (nonce: the challenge) is encrypted to `to`.
fn encrypted_response(agent: &Agent, qr: &QueryRequest, to: &PublicKey) -> Vec<u8> {
    let evidence = agent.evidence(qr.challenge.as_deref().unwrap());
    let sealed = encrypt_evidence(provider(), &evidence, to).unwrap();
    let resp = agent.response_with(qr, Some((EVIDENCE_FORMAT, sealed)));
    agent.sign(Message::QueryResponse(resp))
}

/// A SUIT report for `digest` with `nonce`, encrypted to `to`.
fn encrypted_report(digest: [u8; 32], nonce: &[u8], to: &PublicKey) -> Vec<u8> {
    Report {
        reference_uri: None,
        manifest_digest: teep_suit::Digest::sha256(digest),
        nonce: Some(nonce.to_vec()),
        records: Vec::new(),
        result: Ok(()),
        capabilities: false,
    }
    .encrypt(provider(), to)
    .unwrap()
}

#[test]
fn encrypted_evidence_and_reports_install_a_tc() {
    let mut w = World::new();
    let app = w.release("app", 1, &[]);
    w.class_policy(&["app"], &[]);
    let agent = w.agent(Curve::P256);
    let tam_key = w.tam_encryption.public_key().clone();
    let qr = agent.read_query(&w.connect());
    let reply = w.post(&encrypted_response(&agent, &qr, &tam_key)).unwrap();
    let u = update(agent.read(&reply.reply.unwrap()));
    assert_eq!(u.manifest_list, Some(vec![app.envelope.to_vec()]));
    assert_eq!(w.device(&agent).unwrap().attested_at, Some(NOW));
    let token = u.token.unwrap();
    let report = encrypted_report(app.digest, &token, &tam_key);
    let done = w.post(&agent.success(&token, Some(vec![report]))).unwrap();
    assert_eq!(
        done.event,
        Event::Installed {
            manifests: 1,
            unlinked: 0
        }
    );
    let installed = w.device(&agent).unwrap().installed;
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0].digest, app.digest);
}

#[test]
fn evidence_encrypted_to_another_key_is_dropped() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let stranger = PrivateKey::generate(Curve::P256).unwrap();
    let qr = agent.read_query(&w.connect());
    let err = w.post_dropped(&encrypted_response(&agent, &qr, stranger.public_key()));
    assert!(matches!(err, Dropped::EvidenceDecryption(_)), "{err:?}");
}

#[test]
fn a_tagged_cose_encrypt_of_garbage_is_dropped() {
    // Tag 96 over a 4-element array of junk, written by hand: not a COSE_Encrypt that opens.
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    let junk = vec![0xd8, 0x60, 0x84, 0x40, 0xa0, 0x40, 0x80];
    let resp = agent.response_with(&qr, Some((EVIDENCE_FORMAT, junk)));
    let err = w.post_dropped(&agent.sign(Message::QueryResponse(resp)));
    assert!(matches!(err, Dropped::EvidenceDecryption(_)), "{err:?}");
}

#[test]
fn a_tam_without_an_encryption_key_drops_encrypted_evidence() {
    let mut w = World::new();
    w.tam = Tam::new(TamConfig {
        encryption_key: None,
        ..w.replica_config()
    });
    let agent = w.agent(Curve::P256);
    let some_key = PrivateKey::generate(Curve::P256).unwrap();
    let qr = agent.read_query(&w.connect());
    let err = w.post_dropped(&encrypted_response(&agent, &qr, some_key.public_key()));
    assert!(matches!(err, Dropped::NoEncryptionKey), "{err:?}");
}

#[test]
fn a_report_encrypted_to_another_key_is_dropped() {
    let mut w = World::new();
    let app = w.release("app", 1, &[]);
    w.class_policy(&["app"], &[]);
    let agent = w.agent(Curve::P256);
    let token = w.first_update_token(&agent);
    let stranger = PrivateKey::generate(Curve::P256).unwrap();
    let report = encrypted_report(app.digest, &token, stranger.public_key());
    let err = w.post_dropped(&agent.success(&token, Some(vec![report])));
    assert!(
        matches!(err, Dropped::Report(ReportError::Undecryptable(_))),
        "{err:?}"
    );
}

#[test]
fn a_report_signed_with_a_key_of_the_devices_own_is_read() {
    // RFC 9124 lets the device sign reports with a report key the TAM does not know; the
    // TEEP signature around it authenticates the bytes.
    let mut w = World::new();
    let app = w.release("app", 1, &[]);
    w.class_policy(&["app"], &[]);
    let agent = w.agent(Curve::P256);
    let token = w.first_update_token(&agent);
    let report_key = PrivateKey::generate(Curve::P256).unwrap();
    let signed = Report {
        reference_uri: None,
        manifest_digest: teep_suit::Digest::sha256(app.digest),
        nonce: Some(token.clone()),
        records: Vec::new(),
        result: Ok(()),
        capabilities: false,
    }
    .sign(signer(&report_key).as_ref())
    .unwrap();
    let done = w.post(&agent.success(&token, Some(vec![signed]))).unwrap();
    assert!(matches!(done.event, Event::Installed { manifests: 1, .. }));
}

#[test]
fn a_report_naming_its_manifest_by_sha384_is_dropped() {
    // {2: token, 3: [], 4: true, 99: [[-43, h'07'*48]]}, by hand: the TAM records
    // SHA-256 digests only, so it cannot match this report to what it sent.
    let mut w = World::new();
    w.release("app", 1, &[]);
    w.class_policy(&["app"], &[]);
    let agent = w.agent(Curve::P256);
    let token = w.first_update_token(&agent);
    let mut raw = vec![0xa4, 0x02, 0x50];
    raw.extend(&token);
    raw.extend([
        0x03, 0x80, 0x04, 0xf5, 0x18, 0x63, 0x81, 0x82, 0x38, 0x2a, 0x58, 0x30,
    ]);
    raw.extend([7; 48]);
    let err = w.post_dropped(&agent.success(&token, Some(vec![raw])));
    assert!(
        matches!(err, Dropped::Report(ReportError::NotSha256)),
        "{err:?}"
    );
}

#[test]
fn a_report_with_a_repeated_key_is_dropped() {
    // {2: token, 2: token, 3: [], 4: true, 99: ...}: two readers could see two nonces.
    let mut w = World::new();
    let app = w.release("app", 1, &[]);
    w.class_policy(&["app"], &[]);
    let agent = w.agent(Curve::P256);
    let token = w.first_update_token(&agent);
    let mut raw = vec![0xa5, 0x02, 0x50];
    raw.extend(&token);
    raw.extend([0x02, 0x50]);
    raw.extend(&token);
    raw.extend([
        0x03, 0x80, 0x04, 0xf5, 0x18, 0x63, 0x81, 0x82, 0x2f, 0x58, 0x20,
    ]);
    raw.extend(app.digest);
    let err = w.post_dropped(&agent.success(&token, Some(vec![raw])));
    assert!(
        matches!(err, Dropped::Report(ReportError::Malformed(_))),
        "{err:?}"
    );
}

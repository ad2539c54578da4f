//! Negotiation Errors from an Agent the TAM does not know yet are not verified (there is no
//! key to verify them with). They are bounded instead: the offer only ever narrows, strictly,
//! to a subset of what the TAM is configured with. Forged Errors, made by hand, try to widen
//! the offer and to keep the session renegotiating; both are dropped with the store
//! unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::*;
use teep_cose::Curve;
use teep_proto::{CipherSuite, ErrCode, ErrorMessage};
use teep_tam::{Dropped, Event};

#[test]
fn a_negotiation_error_that_removes_nothing_is_dropped() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    // Lists every suite offered (and one more): nothing to narrow.
    let mut listed = qr.supported_teep_cipher_suites.clone();
    listed.push(CipherSuite::sign1(-35));
    let err = ErrorMessage {
        token: qr.token.clone(),
        supported_teep_cipher_suites: Some(listed),
        ..ErrorMessage::new(ErrCode::UnsupportedCipherSuites)
    };
    assert!(matches!(
        w.post_dropped(&agent.error(err)),
        Dropped::NegotiationFailed
    ));
}

#[test]
fn forged_errors_cannot_widen_the_offer_or_loop() {
    let mut w = World::new();
    let agent = w.agent(Curve::P256);
    let qr = agent.read_query(&w.connect());
    let configured = qr.supported_teep_cipher_suites.clone();
    assert!(configured.len() >= 2, "{configured:?}");
    // One suite we offer and one we do not have.
    let ours = configured[0].clone();
    let err = ErrorMessage {
        token: qr.token.clone(),
        supported_teep_cipher_suites: Some(vec![CipherSuite::sign1(-35), ours.clone()]),
        ..ErrorMessage::new(ErrCode::UnsupportedCipherSuites)
    };
    let done = w.post(&agent.error(err)).unwrap();
    assert_eq!(done.event, Event::QueryRequestSent);
    let retry = agent.read_query(&done.reply.unwrap());
    assert_eq!(retry.supported_teep_cipher_suites, vec![ours.clone()]);
    // The same Error again, on the new token: nothing left to narrow, so no new round.
    let again = ErrorMessage {
        token: retry.token.clone(),
        supported_teep_cipher_suites: Some(vec![CipherSuite::sign1(-35), ours]),
        ..ErrorMessage::new(ErrCode::UnsupportedCipherSuites)
    };
    assert!(matches!(
        w.post_dropped(&agent.error(again)),
        Dropped::NegotiationFailed
    ));
}

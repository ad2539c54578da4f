//! The TAM engine under attack: one message into a TAM whose store stands at one step of a
//! device's first contact (`teep_fuzz::tam`), through `driver::drive` as the HTTP front
//! end calls it.
//!
//! Input: a selector byte (stage in bits 0-1, mode in bits 2-4, bit 7: pass the device id
//! as the front end's hint), then the body or what the harness makes it from
//! (`teep_fuzz::tam::Mode`): as it is; a TEEP message signed with the device's or a
//! stranger's key; EAT claims signed as endorsed Evidence inside a QueryResponse for the
//! stage's token, signed by the device or the stranger (at the stage waiting on Evidence,
//! the session is opened afresh and the claims' challenge placeholder replaced by the
//! Verifier's new challenge); a SUIT report inside the device's Success for the stage's
//! token.
//!
//! Asserted:
//! * no panic;
//! * a dropped message changes nothing, except one appraisal outcome appended for a
//!   known device (what the operator's console shows);
//! * a reply is a TEEP message of the -26 numbering signed by a TAM key, a QueryRequest or
//!   an Update;
//! * a device record is created or changed only by a message signed with that device's
//!   own key (what the stage's session bound, or the `cnf` of Evidence it signed), never
//!   by an unsigned body;
//! * a device's record names a manifest at a non-zero sequence number only as a release
//!   has it (a tc-list entry of a digest the TAM does not know is recorded at 0);
//! * an accepted non-empty message, sent again, is dropped and changes nothing.
#![no_main]

use std::cell::OnceCell;

use libfuzzer_sys::fuzz_target;
use teep_attest::EVIDENCE_FORMAT;
use teep_cose::{SignOptions, TrustStore, VerifyContext};
use teep_fuzz::tam::{Fixture, Mode, common::provider};
use teep_proto::{Message, Numbering, QueryResponse, Success, Unverified};
use teep_tam::store::MemoryState;

thread_local! {
    static FIXTURE: OnceCell<Fixture> = const { OnceCell::new() };
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    FIXTURE.with(|cell| exchange(cell.get_or_init(Fixture::new), selector, rest));
});

fn exchange(f: &Fixture, selector: u8, rest: &[u8]) {
    let stage = &f.stages[usize::from(selector & 3)];
    let mode = Mode::of(selector);
    let hint = (selector & 0x80 != 0).then(|| f.device_id());
    let sign1 = |agent: &teep_fuzz::tam::common::Agent, payload: &[u8]| {
        teep_cose::sign1(agent.signer.as_ref(), payload, &SignOptions::default())
            .expect("the harness signs")
    };
    let token = stage.token.clone().or_else(|| Some(vec![0; 16]));
    // A stage waiting on Evidence is opened afresh, and the seed's placeholder becomes the
    // Verifier's new challenge; any other stage is put back as it was recorded.
    let evidence = matches!(mode, Mode::Evidence | Mode::EvidenceByStranger);
    let (before, rest) = match (evidence, &stage.challenge) {
        (true, Some(_)) => {
            let (state, challenge) = f.fresh_challenge();
            (state, replace(rest, &f.challenge_placeholder(), &challenge))
        }
        _ => {
            f.restore(stage);
            (stage.state.clone(), rest.to_vec())
        }
    };
    let rest = rest.as_slice();
    let body = match mode {
        Mode::Raw => rest.to_vec(),
        Mode::Device => sign1(&f.device, rest),
        Mode::Stranger => sign1(&f.stranger, rest),
        Mode::Evidence | Mode::EvidenceByStranger => {
            let evidence = teep_cose::sign1(
                f.device.attestation.as_ref(),
                rest,
                &SignOptions {
                    tagged: false,
                    ..SignOptions::default()
                },
            )
            .expect("the harness signs");
            let response = QueryResponse {
                token,
                attestation_payload_format: Some(EVIDENCE_FORMAT.into()),
                attestation_payload: Some(evidence),
                tc_list: Some(Vec::new()),
                ..QueryResponse::default()
            };
            let payload = Message::QueryResponse(response)
                .encode(Numbering::Draft26)
                .expect("encodes");
            let by = if mode == Mode::Evidence {
                &f.device
            } else {
                &f.stranger
            };
            sign1(by, &payload)
        }
        Mode::Report => {
            let success = Success {
                token,
                suit_reports: Some(vec![rest.to_vec()]),
                ..Success::default()
            };
            let payload = Message::Success(success)
                .encode(Numbering::Draft26)
                .expect("encodes");
            sign1(&f.device, &payload)
        }
    };
    let before = &before;
    let outcome = f.world.borrow_mut().post_hint(&body, hint.clone());
    let after = f.world.borrow().snapshot();
    let Ok(handled) = outcome else {
        unchanged_but_an_outcome(before, &after, "a dropped message");
        return;
    };
    if let Some(reply) = &handled.reply {
        is_a_tam_message(f, reply);
    }
    let signer = match mode {
        Mode::Device | Mode::Evidence | Mode::Report => Some(&f.device),
        Mode::Stranger | Mode::EvidenceByStranger => Some(&f.stranger),
        Mode::Raw => None,
    };
    for (id, device) in &after.devices {
        if before.devices.get(id) == Some(device) {
            continue;
        }
        let signer = signer.unwrap_or_else(|| {
            panic!(
                "an unsigned body changed device {id:?}: {:?}",
                handled.event
            )
        });
        assert_eq!(
            *id,
            signer.id(),
            "a message signed by one key changed another device's record"
        );
        assert_eq!(
            device.key,
            signer.key.public_key().to_cose_key_bytes(),
            "a device's recorded key is not the key that signed"
        );
    }
    for device in after.devices.values() {
        for held in &device.installed {
            let released = after.releases.iter().any(|r| {
                r.manifest_id == held.manifest_id
                    && r.digest == held.digest
                    && r.sequence == held.sequence
            });
            assert!(
                released || held.sequence == 0,
                "a device is recorded at a sequence number no release of that digest has"
            );
        }
    }
    if body.is_empty() {
        return;
    }
    let again = f.world.borrow_mut().post_hint(&body, hint);
    let replayed = f.world.borrow().snapshot();
    assert!(
        again.is_err(),
        "an accepted message was accepted again: {:?}",
        handled.event
    );
    unchanged_but_an_outcome(&after, &replayed, "a replayed message");
}

/// `bytes` with every occurrence of `from` (not empty) replaced by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at..].starts_with(from) {
            out.extend_from_slice(to);
            at += from.len();
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    out
}

/// `after` is `before`, or `before` with one appraisal outcome more.
fn unchanged_but_an_outcome(before: &MemoryState, after: &MemoryState, what: &str) {
    if after == before {
        return;
    }
    let mut trimmed = after.clone();
    let added = trimmed.outcomes.len() == before.outcomes.len() + 1 && {
        let outcome = trimmed.outcomes.pop().expect("one more");
        before.devices.contains_key(&outcome.device)
    };
    assert!(added && trimmed == *before, "{what} changed the store");
}

/// `reply` is a QueryRequest or an Update of the -26 numbering that a TAM key signed.
fn is_a_tam_message(f: &Fixture, reply: &[u8]) {
    let mut trust = TrustStore::new();
    for key in &f.device.tam_keys {
        trust.add_key(key.clone());
    }
    let message = Unverified::parse(reply, Numbering::Draft26)
        .expect("a reply parses")
        .verify(&VerifyContext::new(provider(), &trust))
        .expect("a reply verifies under the TAM's keys")
        .into_message();
    assert!(
        matches!(message, Message::QueryRequest(_) | Message::Update(_)),
        "the TAM sent {message:?}"
    );
}

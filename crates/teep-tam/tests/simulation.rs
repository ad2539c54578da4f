//! Seeded runs of a TAM and a test Agent over a link that drops and duplicates messages
//! (quinn's `Pair` idea): after every delivery the store's invariants hold, and once the
//! link behaves the device converges to its policy. A failing seed is replayed by number.
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
use teep_proto::Message;
use teep_tam::store::SessionState;

/// A small deterministic generator (xorshift), so each seed replays exactly.
struct Link(u64);

impl Link {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// How many copies of a message arrive: 0 (lost), 1, or 2 (duplicated).
    fn copies(&mut self, lossy: bool) -> usize {
        if !lossy {
            return 1;
        }
        match self.next() % 6 {
            0 => 0,
            1 => 2,
            _ => 1,
        }
    }
}

/// The invariants: at most one outstanding Update per session, and installed sequence
/// numbers never go down.
fn check(w: &World, agent: &Agent, installed_before: &mut u64) {
    let state = w.snapshot();
    let mut sessions: Vec<_> = state
        .sessions
        .values()
        .filter(|s| !s.consumed && matches!(s.state, SessionState::ExpectSuccess(_)))
        .map(|s| s.session)
        .collect();
    let n = sessions.len();
    sessions.dedup();
    assert_eq!(sessions.len(), n, "two outstanding Updates in one session");
    let seq = w
        .device(agent)
        .and_then(|d| d.installed.iter().map(|i| i.sequence).max())
        .unwrap_or(0);
    assert!(seq >= *installed_before, "installed sequence went down");
    *installed_before = seq;
}

/// One session: connect, answer, install; each message may be lost or duplicated.
fn session(w: &mut World, agent: &Agent, link: &mut Link, lossy: bool, seq: &mut u64) {
    let hint = w.device(agent).map(|d| d.id);
    let qr_bytes = w.post_hint(&[], hint).unwrap().reply.unwrap();
    check(w, agent, seq);
    for _ in 0..link.copies(lossy) {
        let qr = agent.read_query(&qr_bytes);
        let resp = match qr.challenge.as_deref() {
            Some(c) => agent.attested_response(&qr, c),
            None => agent.plain_response(&qr),
        };
        for _ in 0..link.copies(lossy) {
            let Ok(handled) = w.post(&resp) else {
                check(w, agent, seq);
                continue;
            };
            check(w, agent, seq);
            let Some(reply) = handled.reply else { continue };
            let Message::Update(u) = agent.read(&reply) else {
                panic!("TAM sent something other than an Update")
            };
            let success = agent.success(u.token.as_ref().unwrap(), None);
            for _ in 0..link.copies(lossy) {
                let _ = w.post(&success);
                check(w, agent, seq);
            }
        }
    }
}

#[test]
fn lossy_duplicating_link_keeps_invariants_and_converges() {
    for seed in 1..=24u64 {
        let mut w = World::new();
        w.release("lib", 1, &[]);
        w.release("app", 1, &["lib"]);
        w.class_policy(&["app"], &[]);
        let agent = w.agent(Curve::P256);
        let mut link = Link(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut seq = 0;
        for round in 0..6 {
            if round == 3 {
                w.release("app", 2, &["lib"]);
            }
            w.now += 600;
            session(&mut w, &agent, &mut link, true, &mut seq);
        }
        // The link heals: one clean session brings the device to its policy.
        w.now += 600;
        session(&mut w, &agent, &mut link, false, &mut seq);
        let mut installed: Vec<_> = w
            .device(&agent)
            .unwrap_or_else(|| panic!("seed {seed}: device never attested"))
            .installed
            .into_iter()
            .map(|i| (i.manifest_id.0, i.sequence))
            .collect();
        installed.sort();
        assert_eq!(
            installed,
            vec![(manifest_id("app").0, 2), (manifest_id("lib").0, 1)],
            "seed {seed}"
        );
    }
}

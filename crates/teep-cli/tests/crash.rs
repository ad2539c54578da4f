//! The software TEE killed with SIGKILL, as a real process, in the middle of installs,
//! updates and deletes driven by the real TAM and Broker processes: after each restart the
//! sealed state opens (no StateTampered, no StateRolledBack: `teep tee serve` would exit),
//! each manifest is exactly its old or its new version (what `teep device list --json`
//! shows and what the TA answers `teep device invoke` agree), and the next policy check
//! converges to what the TAM's policy says on the device (the TAM's record is compared and
//! its staleness counted: see docs/security.md).
//!
//! The kill delays are a fixed schedule of fractions of a clean exchange's measured length,
//! so the kills spread over the whole exchange (attestation, the TAM's Update, the Agent's
//! install with its sealed writes, renames and fsyncs, the Success) on any machine.
//!
//! Also: a fake TEE socket that answers garbage; the Broker reports a clear error to the
//! app, neither process panics, and the Broker keeps serving.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::io::{Read as _, Write as _};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::deployment::{Deployment, id_json, id_text, signal, spawn_until};
use common::teep;

const TA: [&str; 3] = ["TEEP-Device", "counter", "ta"];
const GREETING: [&str; 3] = ["TEEP-Device", "counter", "greeting"];

/// What the operator changes before the exchange that is cut.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// Into the policy (from absent).
    Install,
    /// A release with the next sequence number.
    Update,
    /// Out of the policy.
    Delete,
}

/// The device's view: the sequence numbers of the TA's and its greeting's manifests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct View {
    ta: Option<u64>,
    greeting: Option<u64>,
}

impl View {
    const ABSENT: Self = Self {
        ta: None,
        greeting: None,
    };

    fn at(ta: u64, greeting: u64) -> Self {
        Self {
            ta: Some(ta),
            greeting: Some(greeting),
        }
    }
}

/// One `teep device list --json`.
fn view(d: &Deployment) -> View {
    let listed = d.listed();
    let find = |segments: &[&str]| {
        let id = id_json(segments);
        listed
            .iter()
            .find_map(|(c, seq)| (*c == id).then_some(*seq))
    };
    View {
        ta: find(&TA),
        greeting: find(&GREETING),
    }
}

/// Waits for `child` (at most a minute: the killed exchange must not hang), and it must not
/// have panicked, whatever its exit status.
fn reap(mut child: Child, log: &std::path::Path, what: &str) {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} hangs after the TEE was killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let err = std::fs::read_to_string(log).unwrap_or_default();
    assert!(!err.contains("panicked"), "{what}: {err}");
}

/// The TA's answer agrees with the listed version: v1 for odd sequence numbers, v2 for even
/// (`Deployment::upload_counter`). A TA listed without its greeting fails cleanly (status 1:
/// no perso), never with a panic.
fn check_invoke(d: &Deployment, v: View, when: &str) {
    let Some(seq) = v.ta else {
        let out = d.invoke_counter();
        assert!(!out.status.success(), "{when}: an absent TA answered");
        return;
    };
    let out = d.invoke_counter();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{when}: {stderr}");
    if v.greeting.is_none() {
        assert!(!out.status.success(), "{when}: {stdout}");
        return;
    }
    assert!(out.status.success(), "{when}: {v:?}: {stderr}");
    let prefix = if seq % 2 == 1 {
        "Hello from the TAM, call #"
    } else {
        "v2: HELLO FROM THE TAM, call #"
    };
    assert!(
        stdout.starts_with(prefix),
        "{when}: {v:?} answered {stdout}"
    );
}

/// Per manifest, old or new: the TA at its old or new sequence (or absent on that side),
/// the greeting likewise.
fn allowed(old: View, new: View, got: View) -> bool {
    let ta_ok = got.ta == old.ta || got.ta == new.ta;
    let greeting_ok = got.greeting == old.greeting || got.greeting == new.greeting;
    // The greeting depends on the TA: it is never there without it.
    let dependency_ok = got.greeting.is_none() || got.ta.is_some();
    ta_ok && greeting_ok && dependency_ok
}

#[test]
fn sigkill_of_the_tee_during_installs_updates_and_deletes_leaves_old_or_new() {
    let d = Deployment::new();
    let ta_manifest = id_text(&["TEEP-Device", "counter", "suit"]);
    let perso_manifest = id_text(&["TEEP-Device", "counter", "greeting.suit"]);
    d.upload_counter(1);
    d.upload_greeting(1, 1);
    let mut tee = d.start_tee();
    // The apps' Broker: its own policy check runs once at start (with nothing in the policy
    // yet); its timer never fires again during the test.
    let broker = d.start_broker(3600);
    let started = Instant::now();
    while !std::fs::read_to_string(&broker.log)
        .unwrap()
        .contains("policy check")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no first check"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(view(&d), View::ABSENT);

    // One clean install, timed: the length the kill delays are fractions of.
    d.set_policy(&[&ta_manifest, &perso_manifest]);
    let clean = Instant::now();
    d.policy_check();
    let exchange = clean.elapsed();
    assert_eq!(view(&d), View::at(1, 1));

    // The schedule: each change in turn, each at every fraction of the clean exchange.
    let fractions = [0.1, 0.3, 0.5, 0.7, 0.9, 1.2];
    let (mut seq, mut greeting_seq) = (1, 1);
    let mut current = View::at(1, 1);
    let mut outcomes = std::collections::BTreeMap::<&str, u32>::new();
    let mut stale_records = 0;
    for (i, fraction) in fractions.iter().enumerate() {
        for change in [Change::Update, Change::Delete, Change::Install] {
            let old = current;
            let new = match change {
                Change::Update => {
                    seq += 1;
                    d.upload_counter(seq);
                    View::at(seq, greeting_seq)
                }
                Change::Delete => {
                    d.set_policy(&[]);
                    View::ABSENT
                }
                Change::Install => {
                    // The device keeps the deleted manifests' sequence numbers: a
                    // reinstall is a newer release of both.
                    seq += 1;
                    greeting_seq += 1;
                    d.upload_counter(seq);
                    d.upload_greeting(greeting_seq, seq);
                    d.set_policy(&[&ta_manifest, &perso_manifest]);
                    View::at(seq, greeting_seq)
                }
            };
            let when = format!("{change:?} killed at {fraction} x {exchange:?} (round {i})");
            let log = d.log("once");
            let once = teep()
                .args(d.once_args())
                .current_dir(d.work())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            std::thread::sleep(exchange.mul_f64(*fraction));
            tee.kill();
            reap(once, &log, &when);

            // The state opens again (spawn_until shows the TEE's error if it does not).
            tee = d.start_tee();
            let got = view(&d);
            assert!(
                allowed(old, new, got),
                "{when}: {got:?} is neither {old:?} nor {new:?}"
            );
            check_invoke(&d, got, &when);
            let outcome = if got == old {
                "old"
            } else if got == new {
                "new"
            } else {
                "per-manifest mix"
            };
            *outcomes.entry(outcome).or_default() += 1;

            // The next policy check converges, on the device and in the TAM's record.
            d.policy_check();
            assert_eq!(
                view(&d),
                new,
                "{when}: did not converge; TEE log: {}",
                std::fs::read_to_string(&tee.log).unwrap()
            );
            let mut recorded = d.tam_installed();
            recorded.sort();
            let mut expected = match (new.ta, new.greeting) {
                (Some(t), Some(g)) => vec![(ta_manifest.clone(), t), (perso_manifest.clone(), g)],
                _ => vec![],
            };
            expected.sort();
            // Known gap (docs/security.md): the TAM plans from its record and never reads
            // the attested tc-list, so a kill after the device's commit and before its
            // Success leaves the record stale. Counted and printed, not yet asserted.
            if recorded != expected {
                eprintln!("{when}: the TAM's record {recorded:?}, the device {expected:?}");
                stale_records += 1;
            }
            current = new;
        }
    }
    eprintln!(
        "clean exchange {exchange:?}; outcomes after a kill: {outcomes:?}; \
         stale TAM records after convergence: {stale_records}"
    );
    // The schedule did cut exchanges before and after the commit.
    assert!(
        outcomes.get("old").copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );
    assert!(
        outcomes.get("new").copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );
    broker.stop();
    tee.stop();
}

/// A peer on the TEE socket that is not the TEE: each connection gets a different kind of
/// garbage (a well-framed non-CBOR body, CBOR of the wrong shape, a frame header claiming
/// 4 GiB, a close without answer).
fn fake_tee(path: &std::path::Path) {
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let answers: [&[u8]; 4] = [
            &[0, 0, 0, 4, 0xff, 0x00, 0x13, 0x37],
            &[0, 0, 0, 3, 0x82, 0x01, 0x02],
            &[0xff, 0xff, 0xff, 0xff, 0xa0],
            &[],
        ];
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut header = [0u8; 4];
            if stream.read_exact(&mut header).is_err() {
                continue;
            }
            let mut body = vec![0u8; u32::from_be_bytes(header).min(1 << 20) as usize];
            let _ = stream.read_exact(&mut body);
            let _ = stream.write_all(answers[n % answers.len()]);
        }
    });
}

#[test]
fn a_fake_tee_answering_garbage_gives_the_app_a_clear_error_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("device");
    std::fs::create_dir(&dev).unwrap();
    fake_tee(&dev.join("tee.sock"));
    let dev = dev.to_str().unwrap();
    let log = dir.path().join("broker.log");
    let broker = spawn_until(
        &[
            "device",
            "run",
            "--allow-plain-http",
            "--tam",
            "http://127.0.0.1:9/tam",
            "--state-dir",
            dev,
            "--interval",
            "3600",
        ],
        dir.path(),
        "api socket: ",
        &log,
    );
    for round in 0..8 {
        let args: &[&str] = if round % 2 == 0 {
            &["device", "list", "--state-dir", dev]
        } else {
            &[
                "device",
                "invoke",
                "/TEEP-Device/counter/ta",
                "--input",
                "hi",
                "--state-dir",
                dev,
            ]
        };
        let out = teep().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "round {round}: garbage accepted");
        assert!(err.contains("the Broker answered"), "round {round}: {err}");
        assert!(!err.contains("panicked"), "round {round}: {err}");
    }
    // A policy check by `--once` against the same peer fails cleanly too.
    let out = teep()
        .args([
            "device",
            "run",
            "--once",
            "--allow-plain-http",
            "--tam",
            "http://127.0.0.1:9/tam",
            "--state-dir",
            dev,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains("panicked"), "{err}");
    // The Broker is still up and stops cleanly; its log has no panic.
    signal(&broker.child, "0");
    let log_text = std::fs::read_to_string(&broker.log).unwrap();
    assert!(!log_text.contains("panicked"), "{log_text}");
    broker.stop();
}

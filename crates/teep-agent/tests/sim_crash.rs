//! Crash consistency of the SimTee: for install, update and delete of a TC (and a TA
//! invocation that writes its store), an I/O failure or a power loss at every durable step
//! N, from the first until the operation completes, leaves (after reopening) exactly the
//! old state or the new one, with no leftover file of the failed commit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod sim_common;

use sim_common::*;
use teep_agent::sim::SimTee;
use teep_agent::sim::fault::{FaultMode, Faults};
use teep_suit::storage::State;

type Snapshot = [State<Vec<u8>>; 2];

type Op<'a> = &'a dyn Fn(&Fixture, &mut SimTee) -> bool;

/// What differs between states, short enough to read in a failure message.
fn summary(s: &Snapshot) -> Vec<(String, usize)> {
    s.iter()
        .flat_map(|st| st.data.iter())
        .map(|(id, v)| (id.to_string(), v.len()))
        .collect()
}

fn snapshot(fx: &Fixture) -> Snapshot {
    fx.open().snapshot().unwrap()
}

/// No `index.tmp`, no `.tmp` file, no object the index does not name.
fn assert_clean(fx: &Fixture, state: &Snapshot, what: &str) {
    for file in files(fx.dir.path()) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".tmp"),
            "{what}: leftover {}",
            file.display()
        );
    }
    for (store, s) in ["suit", "tee"].iter().zip(state) {
        let objects = std::fs::read_dir(fx.state_dir().join(store).join("objects"))
            .unwrap()
            .count();
        assert_eq!(objects, s.data.len(), "{what}: {store} objects");
    }
}

/// Runs `op` (which reports whether it succeeded) on copies of `start` failing at every
/// step in turn, until a run completes without reaching the fault.
fn every_step(start: &Fixture, op: Op<'_>, mode: FaultMode) -> usize {
    let old = snapshot(start);
    let new = {
        let fx = start.copy();
        let mut tee = fx.open();
        assert!(op(&fx, &mut tee), "the operation succeeds without faults");
        drop(tee);
        snapshot(&fx)
    };
    assert_ne!(old, new);
    for n in 1.. {
        let fx = start.copy();
        let faults = Faults::new(n, mode);
        let wrap = |dir| Box::new(faults.wrap(Box::new(dir))) as Box<_>;
        let mut view = None;
        let succeeded = match SimTee::open_with_backend(&fx.config, &wrap) {
            Ok(mut tee) => {
                let ok = op(&fx, &mut tee);
                if mode == FaultMode::Fail && !ok {
                    // The process lives on: its view is what the next start finds (the
                    // old state, or the new one when only durability failed after the
                    // commit point).
                    view = Some(tee.snapshot().unwrap());
                }
                ok
            }
            Err(_) => false,
        };
        let what = format!("{mode:?} at step {n}");
        let after = snapshot(&fx);
        if let Some(view) = view {
            assert_eq!(view, after, "{what}: in-process view");
        }
        assert!(
            after == old || after == new,
            "{what}: neither old nor new:\n{:?}\n{:?}\n{:?}",
            summary(&old),
            summary(&new),
            summary(&after)
        );
        if succeeded {
            assert_eq!(after, new, "{what}: reported success");
        }
        assert_clean(&fx, &after, &what);
        if !faults.tripped() {
            assert!(succeeded);
            return n;
        }
    }
    unreachable!()
}

fn installed_v1() -> Fixture {
    let fx = Fixture::new();
    let mut tee = fx.open();
    let ta = fx.envelope(&ta_id("app"), 1, COUNTER_V1);
    fx.install(&mut tee, &ta).result.unwrap();
    let perso = fx.perso_envelope(&greeting_id("app"), 1, GREETING, &ta);
    fx.install(&mut tee, &perso).result.unwrap();
    drop(tee);
    fx
}

fn check_all(mode: FaultMode) {
    let start = installed_v1();
    // Envelopes are built once: signatures are randomized, states are compared bytewise.
    let other = start.envelope(&ta_id("other"), 1, COUNTER_V2);
    let v2 = start.envelope(&ta_id("app"), 2, COUNTER_V2);
    let install = |fx: &Fixture, tee: &mut SimTee| fx.install(tee, &other).result.is_ok();
    let update = |fx: &Fixture, tee: &mut SimTee| fx.install(tee, &v2).result.is_ok();
    let delete = |fx: &Fixture, tee: &mut SimTee| {
        fx.uninstall(tee, &perso_manifest_id(&greeting_id("app")))
            .result
            .is_ok()
    };
    let invoke = |_: &Fixture, tee: &mut SimTee| tee.invoke(&ta_id("app"), b"").is_ok();
    for (what, op) in [
        ("install", &install as Op<'_>),
        ("update", &update),
        ("delete", &delete),
        ("invoke", &invoke),
    ] {
        let steps = every_step(&start, op, mode);
        assert!(steps > 3, "{what}: only {steps} steps");
    }
}

#[test]
fn a_crash_at_any_step_leaves_the_old_or_the_new_state() {
    check_all(FaultMode::Crash);
}

#[test]
fn a_failure_at_any_step_leaves_the_old_or_the_new_state() {
    check_all(FaultMode::Fail);
}

/// A first start cut at any step leaves a device that starts, and an identity once made
/// is the one every later start has.
#[test]
fn a_first_start_cut_at_any_step_leaves_a_device_that_starts() {
    for mode in [FaultMode::Crash, FaultMode::Fail] {
        for n in 1.. {
            let fx = Fixture::new();
            let faults = Faults::new(n, mode);
            let wrap = |dir| Box::new(faults.wrap(Box::new(dir))) as Box<_>;
            let first = SimTee::open_with_backend(&fx.config, &wrap).map(|t| t.ueid().to_vec());
            let again = fx.open();
            if let Ok(ueid) = &first {
                assert_eq!(again.ueid(), ueid.as_slice(), "{mode:?} at {n}");
            }
            let state = again.snapshot().unwrap();
            drop(again);
            assert_clean(&fx, &state, &format!("{mode:?} at {n}"));
            if !faults.tripped() {
                assert!(first.is_ok() && n > 3, "{mode:?}: {n} steps");
                break;
            }
        }
    }
}

fn objects_on_disk(fx: &Fixture) -> usize {
    std::fs::read_dir(fx.state_dir().join("suit").join("objects"))
        .unwrap()
        .count()
}

/// The dead objects of a commit are handed to a background removal after the commit point
/// (the last two steps of an update: its old image and manifest). Power lost there leaves
/// them on disk beside the new state: the next start has the new state and collects them.
#[test]
fn a_crash_between_the_commit_and_the_background_removal_leaves_the_new_state_and_no_garbage() {
    let start = installed_v1();
    let v2 = start.envelope(&ta_id("app"), 2, COUNTER_V2);
    let update = |fx: &Fixture, tee: &mut SimTee| fx.install(tee, &v2).result.is_ok();
    let new = {
        let fx = start.copy();
        let mut tee = fx.open();
        assert!(update(&fx, &mut tee));
        drop(tee);
        snapshot(&fx)
    };
    // The steps of opening and updating, counted on a run that never fails.
    let total = {
        let fx = start.copy();
        let faults = Faults::new(0, FaultMode::Crash);
        let wrap = |dir| Box::new(faults.wrap(Box::new(dir))) as Box<_>;
        let mut tee = SimTee::open_with_backend(&fx.config, &wrap).unwrap();
        let before = faults.steps();
        assert!(update(&fx, &mut tee));
        assert!(faults.steps() - before > 2);
        faults.steps()
    };
    let live = new[0].data.len();
    for removals_done in [0, 1] {
        let fx = start.copy();
        let faults = Faults::new(total - 1 + removals_done, FaultMode::Crash);
        let wrap = |dir| Box::new(faults.wrap(Box::new(dir))) as Box<_>;
        let mut tee = SimTee::open_with_backend(&fx.config, &wrap).unwrap();
        // The commit happened: a lost removal is not the update's failure.
        assert!(update(&fx, &mut tee));
        assert!(faults.tripped());
        drop(tee);
        let what = format!("power lost after {removals_done} removals");
        assert_eq!(objects_on_disk(&fx), live + 2 - removals_done, "{what}");
        let after = snapshot(&fx);
        assert_eq!(after, new, "{what}");
        assert_clean(&fx, &after, &what);
    }
}

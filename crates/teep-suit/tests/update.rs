//! The TEEP lifecycle on builder-made manifests: a TC and personalization data depending
//! on it are installed, invoked, updated and deleted; an Update of unneeded and new
//! manifests is one transaction; a tampered storage location is not run as another manifest.

mod common;

use common::*;
use teep_cose::{Algorithm, CryptoProvider, PrivateKey};
use teep_suit::builder::{self, DependencySpec, ManifestSpec};
use teep_suit::processor::{Invocation, Processor};
use teep_suit::storage::{MemoryStorage, Storage};
use teep_suit::{ComponentId, SuitError};

fn example_key() -> PrivateKey {
    private_key("keys/suit-example-signer-p256.cose-key-private.hex")
}

fn other_key() -> PrivateKey {
    private_key("keys/fwenc-dependent-signer-p256.cose-key-private.hex")
}

fn signed_by(spec: &ManifestSpec, key: &PrivateKey) -> Vec<u8> {
    let built = builder::build(spec, &PROVIDER).unwrap();
    let signer = PROVIDER.signer(key, Algorithm::Esp256).unwrap();
    builder::sign(&built.envelope, signer.as_ref(), &PROVIDER).unwrap()
}

/// The TC `name` at `seq`, signed by the example signer.
fn tc(name: &str, seq: u64, payload: &[u8]) -> Vec<u8> {
    signed_by(&spec(name, seq, payload), &example_key())
}

/// Personalization data `name` depending on the TC manifest `tc` (TEEP Example 3's shape).
fn perso(name: &str, seq: u64, tc: &[u8]) -> Vec<u8> {
    let mut s = spec(name, seq, b"{\"config\":1}");
    s.dependencies = vec![DependencySpec {
        envelope: tc.to_vec(),
    }];
    signed_by(&s, &example_key())
}

fn data(s: &impl Storage, id: &ComponentId) -> Option<Vec<u8>> {
    s.read(id).unwrap().map(|c| c.into_owned())
}

fn invoked(p: &Processor<'_>, store: &mut MemoryStorage, id: &ComponentId) -> Vec<Invocation> {
    let out = p.invoke(store, id, None);
    out.result.unwrap_or_else(|f| panic!("{f:?}")).invocations
}

fn invocation(name: &str) -> Vec<Invocation> {
    vec![Invocation {
        component: app(name),
        args: None,
    }]
}

// ---- 1. invocation of a manifest with a dependency ----

/// Invocation runs validate, which processes the dependency: its digest must come from the
/// shared sequence, not from dependency-resolution (which Invocation does not run).
#[test]
fn a_personalization_manifest_and_its_tc_invoke_without_changing_storage() {
    let s = TeepSetup::new();
    let p = s.processor();
    let mut store = MemoryStorage::new();
    let out = p.install(
        &mut store,
        &perso("cfg", 1, &tc("lib", 1, b"library")),
        None,
    );
    assert!(out.result.is_ok(), "{:?}", out.result);
    let before = store.clone();
    assert_eq!(
        invoked(&p, &mut store, &app_manifest("cfg")),
        invocation("cfg")
    );
    assert_eq!(
        invoked(&p, &mut store, &app_manifest("lib")),
        invocation("lib")
    );
    assert_eq!(store, before);

    // The dependent's validate really checks its dependency: a changed TC image fails it.
    store.data.insert(app("lib"), b"changed".to_vec());
    let before = store.clone();
    let f = p
        .invoke(&mut store, &app_manifest("cfg"), None)
        .result
        .unwrap_err();
    assert_eq!(f.error, SuitError::ConditionFailed { condition: 3 });
    assert_eq!(f.record.manifest_id, vec![0]);
    assert_eq!(store, before);
}

// ---- 2. updating a TC another manifest depends on ----

#[test]
fn a_tc_that_personalization_depends_on_updates_in_place() {
    let s = TeepSetup::new();
    let p = s.processor();
    let mut store = MemoryStorage::new();
    let v1 = tc("lib", 1, b"library v1");
    for env in [v1.clone(), perso("cfg", 1, &v1)] {
        let out = p.install(&mut store, &env, None);
        assert!(out.result.is_ok(), "{:?}", out.result);
    }
    let links = [app_manifest("cfg"), app_manifest("lib")].into();
    assert_eq!(store.owners(&app_manifest("lib")).unwrap(), links);

    let out = p.install(&mut store, &tc("lib", 2, b"library v2"), None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(data(&store, &app("lib")).unwrap(), b"library v2");
    assert_eq!(store.sequence_numbers[&app_manifest("lib")], 2);
    // The dependent's link stays; the dependent stays installed.
    assert_eq!(store.owners(&app_manifest("lib")).unwrap(), links);
    assert!(data(&store, &app("cfg")).is_some());
    assert!(data(&store, &app_manifest("cfg")).is_some());
    assert_eq!(
        invoked(&p, &mut store, &app_manifest("lib")),
        invocation("lib")
    );
    // The dependent pinned v1's digest: its dependency check fails when it next runs.
    let before = store.clone();
    let f = p
        .invoke(&mut store, &app_manifest("cfg"), None)
        .result
        .unwrap_err();
    assert_eq!(f.error, SuitError::DependencyDigestMismatch);
    assert_eq!(store, before);

    // v1 again is a rollback; another signer's v3 is no update of this manifest.
    assert_eq!(
        p.install(&mut store, &v1, None).result.unwrap_err().error,
        SuitError::Rollback {
            installed: 2,
            offered: 1
        }
    );
    let foreign = signed_by(&spec("lib", 3, b"library v3"), &other_key());
    assert_eq!(
        p.install(&mut store, &foreign, None)
            .result
            .unwrap_err()
            .error,
        SuitError::SignerMismatch(app_manifest("lib"))
    );
    assert_eq!(store, before);

    // Deleting the dependent drops its link only; the TC goes with its own root link.
    assert!(
        p.uninstall(&mut store, &app_manifest("cfg"), None)
            .result
            .is_ok()
    );
    assert_eq!(data(&store, &app("lib")).unwrap(), b"library v2");
    assert!(
        p.uninstall(&mut store, &app_manifest("lib"), None)
            .result
            .is_ok()
    );
    assert!(store.data.is_empty(), "{:?}", store.data.keys());
}

// ---- 4. a stored manifest that is another location's manifest ----

/// Storage holding, at `a.suit`, the manifest of `b` (both installed, same signer).
fn swapped_storage(p: &Processor<'_>) -> MemoryStorage {
    let mut store = MemoryStorage::new();
    for env in [tc("a", 1, b"app a"), tc("b", 1, b"app b")] {
        assert!(p.install(&mut store, &env, None).result.is_ok());
    }
    let b = data(&store, &app_manifest("b")).unwrap();
    store.data.insert(app_manifest("a"), b);
    store
}

#[test]
fn invoking_a_location_holding_another_manifest_is_a_mismatch() {
    let s = TeepSetup::new();
    let p = s.processor();
    let mut store = swapped_storage(&p);
    let before = store.clone();
    let out = p.invoke(&mut store, &app_manifest("a"), None);
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::StoredManifestMismatch(app_manifest("a"))
    );
    assert!(out.report.records.is_empty());
    assert_eq!(store, before);
}

/// Uninstalling it deletes the location plainly: b's uninstall sequence does not run as
/// `a`'s (no records), and b stays installed.
#[test]
fn uninstalling_a_location_holding_another_manifest_removes_it_plainly() {
    let s = TeepSetup::new();
    let p = s.processor();
    let mut store = swapped_storage(&p);
    let out = p.uninstall(&mut store, &app_manifest("a"), None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert!(out.report.records.is_empty(), "{:?}", out.report.records);
    assert_eq!(data(&store, &app_manifest("a")), None);
    assert_eq!(data(&store, &app("a")), None);
    assert_eq!(data(&store, &app("b")).unwrap(), b"app b");
    assert!(data(&store, &app_manifest("b")).is_some());
    assert!(
        store
            .owners(&app("b"))
            .unwrap()
            .contains(&app_manifest("b"))
    );
}

//! Processor behaviour on manifests made by the builder (and hand-made sequences):
//! update and rollback, try-each, soft failure, unknown commands, component index lists,
//! dependencies shared by two manifests, encrypted payloads, invocation, atomic directory
//! storage, reports, and the TEEP D.4 manifest's older layout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::*;
use minicbor::Encoder;
use teep_cose::encrypt::DecryptionKey;
use teep_cose::{Algorithm, CryptoProvider, Curve, PrivateKey, Signer};
use teep_suit::builder::{self, DependencySpec, ManifestSpec};
use teep_suit::dir::DirStorage;
use teep_suit::processor::{DeviceIdentity, KeyDecryptor, Policy, Processor};
use teep_suit::storage::{Changes, MemoryStorage, Storage};
use teep_suit::{ComponentId, Section, SuitError};

fn signer() -> Box<dyn Signer> {
    let key = private_key("keys/suit-example-signer-p256.cose-key-private.hex");
    PROVIDER.signer(&key, Algorithm::Esp256).unwrap()
}

fn signed(spec: &ManifestSpec) -> Vec<u8> {
    let built = builder::build(spec, &PROVIDER).unwrap();
    builder::sign(&built.envelope, signer().as_ref(), &PROVIDER).unwrap()
}

fn data(s: &impl Storage, id: &ComponentId) -> Option<Vec<u8>> {
    s.read(id).unwrap().map(|c| c.into_owned())
}

#[test]
fn update_to_a_higher_sequence_number_then_rollback_refused_with_nothing_changed() {
    let trust = vector_trust();
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    assert!(
        p.install(&mut store, &signed(&spec("a", 1, b"one")), None)
            .result
            .is_ok()
    );
    assert_eq!(data(&store, &app("a")).unwrap(), b"one");
    let out = p.install(&mut store, &signed(&spec("a", 2, b"two")), None);
    assert_eq!(out.result.unwrap().sequence_number, 2);
    assert_eq!(data(&store, &app("a")).unwrap(), b"two");
    let before = store.clone();
    for seq in [1, 2] {
        let out = p.install(&mut store, &signed(&spec("a", seq, b"old")), None);
        assert_eq!(
            out.result.unwrap_err().error,
            SuitError::Rollback {
                installed: 2,
                offered: seq
            }
        );
        assert_eq!(store, before);
    }
}

// ---- hand-made sequences ----

/// Signs a manifest with the given components and install sequence.
fn custom(components: &[&str], install: Vec<u8>) -> Vec<u8> {
    custom_at(components, 20, install)
}

/// Signs a manifest with the given components and one sequence under manifest key `key`.
fn custom_at(components: &[&str], key: u8, sequence: Vec<u8>) -> Vec<u8> {
    let mut common = Vec::new();
    let mut e = Encoder::new(&mut common);
    e.map(1)
        .unwrap()
        .u8(2)
        .unwrap()
        .array(components.len() as u64)
        .unwrap();
    for c in components {
        e.array(1).unwrap().bytes(c.as_bytes()).unwrap();
    }
    let mut m = Vec::new();
    let mut e = Encoder::new(&mut m);
    e.map(5).unwrap();
    e.u8(1).unwrap().u8(1).unwrap();
    e.u8(2).unwrap().u8(1).unwrap();
    e.u8(3).unwrap().bytes(&common).unwrap();
    e.u8(5)
        .unwrap()
        .array(1)
        .unwrap()
        .bytes(b"custom.suit")
        .unwrap();
    e.u8(key).unwrap().bytes(&sequence).unwrap();
    let env = builder::unsigned_envelope(&m, &[], &PROVIDER).unwrap();
    builder::sign(&env, signer().as_ref(), &PROVIDER).unwrap()
}

fn run_custom(
    components: &[&str],
    install: Vec<u8>,
) -> (MemoryStorage, teep_suit::processor::Outcome) {
    let trust = vector_trust();
    let device = DeviceIdentity::default();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    let out = p.install(&mut store, &custom(components, install), Some(b"n"));
    (store, out)
}

#[test]
fn try_each_falls_back_to_the_next_alternative() {
    let first = Seq::new().rep(14).set_content(b"A").rep(18); // abort: fails softly
    let second = Seq::new().set_content(b"B").rep(18);
    let install = Seq::new().cmd(15, |e| {
        e.array(2)
            .unwrap()
            .bytes(&first.bytes())
            .unwrap()
            .bytes(&second.bytes())
            .unwrap();
    });
    let (store, out) = run_custom(&["x"], install.bytes());
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(data(&store, &ComponentId::from_strs(&["x"])).unwrap(), b"B");
}

#[test]
fn try_each_with_every_alternative_failing() {
    let fail = || Seq::new().rep(14).bytes();
    let install = Seq::new().cmd(15, |e| {
        e.array(2)
            .unwrap()
            .bytes(&fail())
            .unwrap()
            .bytes(&fail())
            .unwrap();
    });
    let (store, out) = run_custom(&["x"], install.bytes());
    assert_eq!(out.result.unwrap_err().error, SuitError::TryEachExhausted);
    assert_eq!(store, MemoryStorage::new());
    // A trailing nil makes "all failed" acceptable.
    let install = Seq::new()
        .cmd(15, |e| {
            e.array(3)
                .unwrap()
                .bytes(&fail())
                .unwrap()
                .bytes(&fail())
                .unwrap()
                .null()
                .unwrap();
        })
        .set_content(b"C")
        .rep(18);
    let (store, out) = run_custom(&["x"], install.bytes());
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(data(&store, &ComponentId::from_strs(&["x"])).unwrap(), b"C");
}

#[test]
fn soft_failure_ends_a_run_sequence_quietly_and_is_scoped() {
    let soft_body = Seq::new()
        .cmd(20, |e| {
            e.map(1).unwrap().u8(13).unwrap().bool(true).unwrap();
        })
        .rep(14)
        .set_content(b"never")
        .rep(18);
    let install = Seq::new()
        .cmd(32, nested(soft_body))
        .set_content(b"after")
        .rep(18);
    let (store, out) = run_custom(&["x"], install.bytes());
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(
        data(&store, &ComponentId::from_strs(&["x"])).unwrap(),
        b"after"
    );

    // Without soft-failure the same condition aborts the procedure.
    let install = Seq::new()
        .cmd(32, nested(Seq::new().rep(14)))
        .set_content(b"after")
        .rep(18);
    let (store, out) = run_custom(&["x"], install.bytes());
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::ConditionFailed { condition: 14 }
    );
    assert_eq!(store, MemoryStorage::new());

    // Setting soft-failure at the top level is refused.
    let install = Seq::new().cmd(20, |e| {
        e.map(1).unwrap().u8(13).unwrap().bool(true).unwrap();
    });
    let (_, out) = run_custom(&["x"], install.bytes());
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::SoftFailureNotAllowed
    );
}

#[test]
fn a_failing_directive_is_never_soft() {
    // write without content inside try-each: a directive failure aborts at once.
    let bad = Seq::new().rep(18);
    let good = Seq::new().set_content(b"B").rep(18);
    let install = Seq::new().cmd(15, |e| {
        e.array(2)
            .unwrap()
            .bytes(&bad.bytes())
            .unwrap()
            .bytes(&good.bytes())
            .unwrap();
    });
    let (store, out) = run_custom(&["x"], install.bytes());
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::MissingParameter(18)
    );
    assert_eq!(store, MemoryStorage::new());
}

#[test]
fn unknown_commands_and_parameters_fail_with_their_reasons() {
    let (store, out) = run_custom(&["x"], Seq::new().set_content(b"A").rep(18).rep(99).bytes());
    let f = out.result.unwrap_err();
    assert_eq!(f.error, SuitError::UnsupportedCommand(99));
    assert_eq!(f.error.report_reason(), 5);
    // The report then tells the author what we support.
    assert!(out.report.capabilities);
    let json = teep_suit::json::report(&out.report);
    assert_eq!(
        json["suit-report-capability-report"]["command-capabilities"][0],
        1
    );
    // Parsed before anything runs: the write before it did not happen either.
    assert_eq!(store, MemoryStorage::new());
    let install = Seq::new().cmd(20, |e| {
        e.map(1).unwrap().u8(99).unwrap().u8(1).unwrap();
    });
    let (_, out) = run_custom(&["x"], install.bytes());
    let f = out.result.unwrap_err();
    assert_eq!(f.error, SuitError::UnsupportedParameter(99));
    assert_eq!(f.error.report_reason(), 8);
}

#[test]
fn component_index_true_and_lists_loop_over_components() {
    let install = Seq::new()
        .cmd(12, |e| {
            e.bool(true).unwrap();
        })
        .set_content(b"all")
        .rep(18)
        .cmd(12, |e| {
            e.array(2).unwrap().u8(0).unwrap().u8(2).unwrap();
        })
        .set_content(b"some")
        .rep(18);
    let (store, out) = run_custom(&["a", "b", "c"], install.bytes());
    assert!(out.result.is_ok(), "{:?}", out.result);
    let get = |n: &str| data(&store, &ComponentId::from_strs(&[n])).unwrap();
    assert_eq!(
        (get("a"), get("b"), get("c")),
        (b"some".to_vec(), b"all".to_vec(), b"some".to_vec())
    );
    // An index beyond the components is refused.
    let install = Seq::new().cmd(12, |e| {
        e.u8(3).unwrap();
    });
    let (_, out) = run_custom(&["a", "b", "c"], install.bytes());
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::ComponentIndexOutOfRange(3)
    );
}

#[test]
fn check_content_compares_the_stored_bytes() {
    let install = Seq::new().set_content(b"same").rep(18).rep(6);
    let (_, out) = run_custom(&["x"], install.bytes());
    assert!(out.result.is_ok(), "{:?}", out.result);
    let install = Seq::new()
        .set_content(b"same")
        .rep(18)
        .set_content(b"other")
        .rep(6);
    let (_, out) = run_custom(&["x"], install.bytes());
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::ConditionFailed { condition: 6 }
    );
}

#[test]
fn two_manifests_share_a_dependency_until_both_are_unlinked() {
    let trust = vector_trust();
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let lib = signed(&spec("lib", 1, b"library"));
    let mut a = spec("a", 1, b"app a");
    a.dependencies = vec![DependencySpec {
        envelope: lib.clone(),
    }];
    let mut b = spec("b", 1, b"app b");
    b.dependencies = vec![DependencySpec { envelope: lib }];
    let mut store = MemoryStorage::new();
    assert!(p.install(&mut store, &signed(&a), None).result.is_ok());
    let out = p.install(&mut store, &signed(&b), None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(data(&store, &app("lib")).unwrap(), b"library");
    assert_eq!(store.owners(&app_manifest("lib")).unwrap().len(), 2);

    assert!(
        p.uninstall(&mut store, &app_manifest("a"), None)
            .result
            .is_ok()
    );
    assert!(data(&store, &app("a")).is_none());
    assert_eq!(data(&store, &app("lib")).unwrap(), b"library");
    assert!(
        p.uninstall(&mut store, &app_manifest("b"), None)
            .result
            .is_ok()
    );
    assert!(
        store.data.is_empty(),
        "{:?}",
        store.data.keys().collect::<Vec<_>>()
    );
    assert!(store.owners.is_empty());
}

/// TEEP Appendix E Example 3: personalization data depends on a TC that is already
/// installed as a manifest of its own. The dependency is the same manifest (same digest),
/// so it is linked, not refused as "referenced by another manifest".
#[test]
fn an_installed_manifest_can_become_a_dependency() {
    let trust = vector_trust();
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let lib = signed(&spec("lib", 1, b"library"));
    let mut store = MemoryStorage::new();
    assert!(p.install(&mut store, &lib, None).result.is_ok());

    let mut a = spec("a", 1, b"app a");
    a.dependencies = vec![DependencySpec { envelope: lib }];
    let out = p.install(&mut store, &signed(&a), None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(store.owners(&app_manifest("lib")).unwrap().len(), 2);

    assert!(
        p.uninstall(&mut store, &app_manifest("a"), None)
            .result
            .is_ok()
    );
    assert_eq!(data(&store, &app("lib")).unwrap(), b"library");
}

/// Two data files beside each other (TEEP Example 3's `config.json` convention) get
/// manifests of their own, `a.suit` and `b.suit`, instead of one shared ID.
#[test]
fn data_files_side_by_side_get_manifests_of_their_own() {
    let trust = vector_trust();
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let file = |name: &str| {
        ComponentId(vec![
            b"TEEP-Device".to_vec(),
            b"SecureFS".to_vec(),
            name.as_bytes().to_vec(),
        ])
    };
    let mut store = MemoryStorage::new();
    for (name, body) in [("a", b"{\"a\":1}"), ("b", b"{\"b\":2}")] {
        let mut s = spec(name, 1, body);
        s.component_id = file(&format!("{name}.json"));
        let out = p.install(&mut store, &signed(&s), None);
        assert!(out.result.is_ok(), "{:?}", out.result);
        assert_eq!(
            out.result.unwrap().manifest_id,
            file(&format!("{name}.json.suit"))
        );
    }
    assert_eq!(data(&store, &file("a.json")).unwrap(), b"{\"a\":1}");
    assert_eq!(data(&store, &file("b.json")).unwrap(), b"{\"b\":2}");
}

#[test]
fn encrypted_payload_round_trip_and_invocation() {
    let trust = vector_trust();
    let device = teep_device();
    let tee_key = PrivateKey::generate(Curve::P256).unwrap();
    let mut s = spec("enc", 1, b"secret trusted app");
    s.encrypt_to = Some(tee_key.public_key().clone());
    let env = signed(&s);
    assert!(!env.windows(18).any(|w| w == b"secret trusted app"));
    let dec = KeyDecryptor {
        provider: &PROVIDER,
        keys: vec![DecryptionKey::EcdhEs(
            PrivateKey::from_cose_key_bytes(&tee_key.to_cose_key_bytes()).unwrap(),
        )],
    };
    let mut p = Processor::new(&PROVIDER, &trust, &device);
    p.decryptor = Some(&dec);
    let mut store = MemoryStorage::new();
    let out = p.install(&mut store, &env, None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(data(&store, &app("enc")).unwrap(), b"secret trusted app");

    let out = p.invoke(&mut store, &app_manifest("enc"), None);
    let done = out.result.unwrap();
    assert_eq!(done.invocations.len(), 1);
    assert_eq!(done.invocations[0].component, app("enc"));

    assert!(
        p.uninstall(&mut store, &app_manifest("enc"), None)
            .result
            .is_ok()
    );
    assert!(store.data.is_empty());
}

#[test]
fn compatibility_check_policy_is_a_switch() {
    let trust = vector_trust();
    let device = teep_device();
    let mut p = Processor::new(&PROVIDER, &trust, &device);
    p.policy = Policy {
        require_compatibility_check: true,
        ..Policy::default()
    };
    let mut store = MemoryStorage::new();
    // td-ex0 has no vendor/class checks at all.
    let out = p.install(
        &mut store,
        &hex_file("suit/trust-domains/td-ex0-dependency.hex"),
        None,
    );
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::MissingCompatibilityCheck
    );
    assert!(
        p.install(
            &mut store,
            &hex_file("suit/teep/teep-tc-integrated.hex"),
            None
        )
        .result
        .is_ok()
    );
    // With the policy off, td-ex0 installs.
    p.policy = Policy::default();
    let mut store = MemoryStorage::new();
    assert!(
        p.install(
            &mut store,
            &hex_file("suit/trust-domains/td-ex0-dependency.hex"),
            None
        )
        .result
        .is_ok()
    );
}

/// The manifest inside the TEEP D.4 Update example.
fn d4_manifest() -> Vec<u8> {
    let update = hex_file("teep/update.hex");
    let mut d = minicbor::Decoder::new(&update);
    d.array().unwrap();
    assert_eq!(d.u8().unwrap(), 3);
    let n = d.map().unwrap().unwrap();
    for _ in 0..n {
        if d.u8().unwrap() == 9 {
            d.array().unwrap();
            return d.bytes().unwrap().to_vec();
        }
        d.skip().unwrap();
    }
    panic!("no manifest-list");
}

#[test]
fn teep_d4_manifest_authenticates_but_its_key_9_is_invoke_so_update_refuses_it() {
    let teep = TeepSetup::new();
    let p = teep.processor();
    let env = d4_manifest();
    let a = teep_suit::verify::authenticate(
        &env,
        &PROVIDER,
        &teep_suit::verify::Anchors {
            signers: teep.trust.store(),
            mac_keys: &[],
            now: None,
        },
    )
    .unwrap();
    assert_eq!(
        a.manifest.sections(),
        vec![Section::Shared, Section::Invoke]
    );
    let mut store = MemoryStorage::new();
    let out = p.install(&mut store, &env, None);
    assert_eq!(out.result.unwrap_err().error, SuitError::NothingToUpdate);
    assert_eq!(store, MemoryStorage::new());
}

/// A storage that loses power after writing the new objects but before the index.
struct PowerLoss(DirStorage);

impl Storage for PowerLoss {
    fn read(&self, id: &ComponentId) -> Result<Option<std::borrow::Cow<'_, [u8]>>, SuitError> {
        self.0.read(id)
    }
    fn owners(
        &self,
        id: &ComponentId,
    ) -> Result<std::collections::BTreeSet<ComponentId>, SuitError> {
        self.0.owners(id)
    }
    fn linked_by(&self, owner: &ComponentId) -> Result<Vec<ComponentId>, SuitError> {
        self.0.linked_by(owner)
    }
    fn sequence_number(&self, id: &ComponentId) -> Result<Option<u64>, SuitError> {
        self.0.sequence_number(id)
    }
    fn signer(&self, id: &ComponentId) -> Result<Option<teep_suit::trust::SignerId>, SuitError> {
        self.0.signer(id)
    }
    fn manifest_ids(&self) -> Result<Vec<ComponentId>, SuitError> {
        self.0.manifest_ids()
    }
    fn commit(&mut self, changes: Changes) -> Result<(), SuitError> {
        let staged = self.0.stage(changes)?;
        drop(staged);
        Err(SuitError::Storage("power lost".into()))
    }
}

#[test]
fn directory_storage_is_atomic_across_an_interrupted_update() {
    let dir = tempfile::tempdir().unwrap();
    let trust = vector_trust();
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = DirStorage::open(dir.path()).unwrap();
    assert!(
        p.install(&mut store, &signed(&spec("a", 1, b"one")), None)
            .result
            .is_ok()
    );
    drop(store);

    let mut crashing = PowerLoss(DirStorage::open(dir.path()).unwrap());
    let out = p.install(&mut crashing, &signed(&spec("a", 2, b"two")), None);
    assert!(matches!(
        out.result.unwrap_err().error,
        SuitError::Storage(_)
    ));
    drop(crashing);

    let mut store = DirStorage::open(dir.path()).unwrap();
    assert_eq!(data(&store, &app("a")).unwrap(), b"one");
    assert_eq!(store.sequence_number(&app_manifest("a")).unwrap(), Some(1));
    // Leftover objects of the lost commit were collected.
    assert_eq!(
        std::fs::read_dir(dir.path().join("objects"))
            .unwrap()
            .count(),
        2
    );
    // The update goes through after restart, and survives another reopen.
    assert!(
        p.install(&mut store, &signed(&spec("a", 2, b"two")), None)
            .result
            .is_ok()
    );
    drop(store);
    let store = DirStorage::open(dir.path()).unwrap();
    assert_eq!(data(&store, &app("a")).unwrap(), b"two");
}

#[test]
fn report_cbor_carries_nonce_result_and_failing_record() {
    let (_, ok) = run_custom(&["x"], Seq::new().set_content(b"A").rep(18).bytes());
    let cbor = ok.report.to_cbor().unwrap();
    let mut d = minicbor::Decoder::new(&cbor);
    assert_eq!(d.map().unwrap(), Some(4));
    assert_eq!(d.u8().unwrap(), 2);
    assert_eq!(d.bytes().unwrap(), b"n");
    assert_eq!(d.u8().unwrap(), 3);
    // rep-policy 15 on write: a success record.
    assert_eq!(d.array().unwrap(), Some(1));
    d.skip().unwrap();
    assert_eq!(d.u8().unwrap(), 4);
    assert!(d.bool().unwrap());
    assert_eq!(d.u8().unwrap(), 99);
    assert_eq!(d.array().unwrap(), Some(1)); // no reference-uri in this manifest
    d.skip().unwrap();
    assert_eq!(d.position(), cbor.len());

    let (_, bad) = run_custom(
        &["x"],
        Seq::new().set_content(b"A").rep(18).rep(6).rep(14).bytes(),
    );
    let f = bad.report.result.clone().unwrap_err();
    assert_eq!(f.error, SuitError::ConditionFailed { condition: 14 });
    assert_eq!(f.record.section, 20);
    // offset of `14, 15` in [20, {18: 'A'}, 18, 15, 6, 15, 14, 15]: the array head (1),
    // then 20 (1), a1 12 41 41 (4), 18 (1), 15 (1), 6 (1), 15 (1).
    assert_eq!(f.record.offset, 10);
    let cbor = bad.report.to_cbor().unwrap();
    let mut d = minicbor::Decoder::new(&cbor);
    d.map().unwrap();
    for _ in 0..2 {
        d.u8().unwrap();
        d.skip().unwrap();
    }
    assert_eq!(d.u8().unwrap(), 4);
    assert_eq!(d.map().unwrap(), Some(3));
    assert_eq!(d.u8().unwrap(), 5);
    assert_eq!(d.i64().unwrap(), f.error.code());
    assert_eq!(d.u8().unwrap(), 6);
    assert_eq!(d.array().unwrap(), Some(5));
    assert_eq!(d.array().unwrap(), Some(0));
    assert_eq!(
        (d.u64().unwrap(), d.u64().unwrap(), d.u64().unwrap()),
        (20, 10, 0)
    );
    d.skip().unwrap();
    assert_eq!(d.u8().unwrap(), 7);
    assert_eq!(d.u8().unwrap(), 10);
}

#[test]
fn deleting_a_manifest_without_an_uninstall_sequence_leaves_no_orphans() {
    let trust = vector_trust();
    let device = DeviceIdentity::default();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    let out = p.install(
        &mut store,
        &custom(
            &["x", "y"],
            Seq::new()
                .cmd(12, |e| {
                    e.bool(true).unwrap();
                })
                .set_content(b"data")
                .rep(18)
                .bytes(),
        ),
        None,
    );
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(store.data.len(), 3); // x, y and the manifest
    let out = p.uninstall(&mut store, &ComponentId::from_strs(&["custom.suit"]), None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert!(store.data.is_empty());
    assert!(store.owners.is_empty());
}

#[test]
fn candidate_verification_at_key_18_runs_in_the_update_procedure() {
    // trust-domains lists key 18 among the manifest members but its CDDL adds no choice
    // for it; we accept it like the other severable sequences (spec digest §21.4).
    let trust = vector_trust();
    let device = DeviceIdentity::default();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    let env = custom_at(
        &["x"],
        18,
        Seq::new().set_content(b"checked").rep(18).bytes(),
    );
    let out = p.install(&mut store, &env, None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(
        data(&store, &ComponentId::from_strs(&["x"])).unwrap(),
        b"checked"
    );
}

#[test]
fn an_unsupported_digest_algorithm_fails() {
    // image-digest with SHA-384 (-43): we implement SHA-256 only.
    let digest = [0x82, 0x38, 0x2a, 0x41, 0x00]; // [-43, h'00']
    let install = Seq::new()
        .set_content(b"A")
        .rep(18)
        .cmd(20, |e| {
            e.map(1).unwrap().u8(3).unwrap().bytes(&digest).unwrap();
        })
        .rep(3);
    let (store, out) = run_custom(&["x"], install.bytes());
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::UnsupportedDigestAlgorithm(-43)
    );
    assert_eq!(store, MemoryStorage::new());
}

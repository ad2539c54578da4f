//! Attacks on the processor's ownership, rollback, scope and deletion rules (issue 7),
//! with manifests written by hand (raw minicbor) where the builder would refuse them.
//! Every refusal is checked for its typed error and for state left as it was.
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
use teep_cose::{Algorithm, CryptoProvider, Curve, PrivateKey, TrustStore};
use teep_suit::builder::{self, DependencySpec};
use teep_suit::dir::DirStorage;
use teep_suit::processor::{DeviceIdentity, Policy, Processor, UpdateItem};
use teep_suit::storage::{MemoryStorage, Storage};
use teep_suit::trust::{SignerId, TrustAnchor, TrustAnchors};
use teep_suit::{ComponentId, Section, SuitError, parse_sequence};

/// A hand-written manifest: anything the CDDL shape allows, checks or not.
#[derive(Default)]
struct Hand {
    seq: u64,
    components: Vec<ComponentId>,
    /// (index, prefix)
    dependencies: Vec<(u64, ComponentId)>,
    manifest_id: Option<ComponentId>,
    shared: Option<Vec<u8>>,
    /// (manifest key, sequence), ascending keys.
    sections: Vec<(u8, Vec<u8>)>,
    integrated: Vec<(String, Vec<u8>)>,
}

fn encode_id(e: &mut Encoder<&mut Vec<u8>>, id: &ComponentId) {
    e.array(id.0.len() as u64).unwrap();
    for s in &id.0 {
        e.bytes(s).unwrap();
    }
}

impl Hand {
    fn manifest(&self) -> Vec<u8> {
        let mut common = Vec::new();
        let mut e = Encoder::new(&mut common);
        let n = 1 + u64::from(!self.dependencies.is_empty()) + u64::from(self.shared.is_some());
        e.map(n).unwrap();
        if !self.dependencies.is_empty() {
            e.u8(1)
                .unwrap()
                .map(self.dependencies.len() as u64)
                .unwrap();
            for (i, prefix) in &self.dependencies {
                e.u64(*i).unwrap().map(1).unwrap().u8(1).unwrap();
                encode_id(&mut e, prefix);
            }
        }
        e.u8(2)
            .unwrap()
            .array(self.components.len() as u64)
            .unwrap();
        for c in &self.components {
            encode_id(&mut e, c);
        }
        if let Some(shared) = &self.shared {
            e.u8(4).unwrap().bytes(shared).unwrap();
        }
        let mut m = Vec::new();
        let mut e = Encoder::new(&mut m);
        e.map(3 + u64::from(self.manifest_id.is_some()) + self.sections.len() as u64)
            .unwrap();
        e.u8(1).unwrap().u8(1).unwrap();
        e.u8(2).unwrap().u64(self.seq).unwrap();
        e.u8(3).unwrap().bytes(&common).unwrap();
        if let Some(id) = &self.manifest_id {
            e.u8(5).unwrap();
            encode_id(&mut e, id);
        }
        for (key, seq) in &self.sections {
            e.u8(*key).unwrap().bytes(seq).unwrap();
        }
        m
    }

    fn signed(&self, key: &PrivateKey) -> Vec<u8> {
        let env =
            builder::unsigned_envelope(&self.manifest(), &self.integrated, &PROVIDER).unwrap();
        sign_with(&env, key)
    }
}

fn sign_with(envelope: &[u8], key: &PrivateKey) -> Vec<u8> {
    let signer = PROVIDER.signer(key, Algorithm::Esp256).unwrap();
    builder::sign(envelope, signer.as_ref(), &PROVIDER).unwrap()
}

/// A builder-made TC manifest (a legitimate one) signed by `key`.
fn tc(name: &str, seq: u64, payload: &[u8], key: &PrivateKey) -> Vec<u8> {
    let built = builder::build(&spec(name, seq, payload), &PROVIDER).unwrap();
    sign_with(&built.envelope, key)
}

fn key() -> PrivateKey {
    PrivateKey::generate(Curve::P256).unwrap()
}

fn unscoped(keys: &[&PrivateKey]) -> TrustAnchors {
    let mut store = TrustStore::new();
    for k in keys {
        store.add_key(k.public_key().clone());
    }
    TrustAnchors::unscoped(store)
}

/// One generated signer key, trusted unscoped, and a device identity.
struct Single {
    key: PrivateKey,
    trust: TrustAnchors,
    device: DeviceIdentity,
}

impl Single {
    fn new(device: DeviceIdentity) -> Self {
        let key = key();
        let trust = unscoped(&[&key]);
        Self { key, trust, device }
    }

    fn processor(&self) -> Processor<'_> {
        Processor::new(&PROVIDER, &self.trust, &self.device)
    }
}

fn data(s: &impl Storage, id: &ComponentId) -> Option<Vec<u8>> {
    s.read(id).unwrap().map(|c| c.into_owned())
}

fn id(s: &str) -> ComponentId {
    ComponentId::from_strs(&[s])
}

/// `set-component-index i`
fn index(seq: Seq, i: u64) -> Seq {
    seq.cmd(12, |e| {
        e.u64(i).unwrap();
    })
}

/// `override-parameters {uri}`
fn uri(seq: Seq, uri: &str) -> Seq {
    seq.cmd(20, |e| {
        e.map(1).unwrap().u8(21).unwrap().str(uri).unwrap();
    })
}

/// `override-parameters {image-digest}`
fn digest(seq: Seq, manifest_digest: [u8; 32]) -> Seq {
    let mut d = Vec::new();
    Encoder::new(&mut d)
        .array(2)
        .unwrap()
        .i8(-16)
        .unwrap()
        .bytes(&manifest_digest)
        .unwrap();
    seq.cmd(20, |e| {
        e.map(1).unwrap().u8(3).unwrap().bytes(&d).unwrap();
    })
}

/// SHA-256 of an envelope's bstr-wrapped manifest (what a dependent's image-digest names).
fn manifest_digest(envelope: &[u8]) -> [u8; 32] {
    let env = teep_suit::Envelope::decode(envelope).unwrap();
    PROVIDER.sha256(env.manifest_bstr)
}

/// A dependent at `depending.suit` (component `own`) that integrates `dependency` at
/// index 1 with `prefix`: fetch and process it in `process_in` sections, then write its
/// own component in install.
fn dependent(dependency: &[u8], prefix: &ComponentId, process_in: &[u8]) -> Hand {
    let fetch = uri(index(Seq::new(), 1), "#dep").rep(21);
    let fetch = digest(fetch, manifest_digest(dependency));
    let mut resolution = fetch;
    if process_in.contains(&15) {
        resolution = resolution.rep(11);
    }
    let mut install = Seq::new();
    if process_in.contains(&20) {
        install = index(install, 1).rep(11);
    }
    let install = index(install, 0).set_content(b"own").rep(18);
    Hand {
        seq: 1,
        components: vec![id("own")],
        dependencies: vec![(1, prefix.clone())],
        manifest_id: Some(id("depending.suit")),
        sections: vec![(15, resolution.bytes()), (20, install.bytes())],
        integrated: vec![("#dep".into(), dependency.to_vec())],
        ..Hand::default()
    }
}

/// A manifest (component `x`, stored at `attack.suit`) whose install fetches `bytes` into a
/// dependency at `prefix` and never processes it; with the fetch command's offset.
fn fetch_into_dependency(prefix: ComponentId, bytes: &[u8]) -> (Hand, u64) {
    let install = uri(index(Seq::new(), 1), "#evil").rep(21).bytes();
    let fetch = parse_sequence(&install, 0).unwrap()[2].offset as u64;
    let m = Hand {
        seq: 1,
        components: vec![id("x")],
        dependencies: vec![(1, prefix)],
        manifest_id: Some(id("attack.suit")),
        sections: vec![(20, install)],
        integrated: vec![("#evil".into(), bytes.to_vec())],
        ..Hand::default()
    };
    (m, fetch)
}

fn install(p: &Processor<'_>, store: &mut dyn Storage, env: &[u8]) -> Result<(), SuitError> {
    p.install(store, env, None)
        .result
        .map(|_| ())
        .map_err(|f| f.error)
}

// ---- 1. one ownership check for every write ----

#[test]
fn a_fetch_into_a_dependency_slot_cannot_replace_another_manifests_ta() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &tc("lib", 1, b"library", a)).unwrap();
    let before = store.clone();
    // The dependency "slot" is the lib's TA; the fetched bytes are no manifest at all, and
    // nothing processes them.
    let (attack, fetch) = fetch_into_dependency(app("lib"), b"unsigned TA");
    let out = p.install(&mut store, &attack.signed(a), None);
    let f = out.result.unwrap_err();
    assert_eq!(f.error, SuitError::ComponentReferenced(app("lib")));
    // The report names the fetch.
    assert_eq!((f.record.section, f.record.offset), (20, fetch));
    assert_eq!(store, before);
    assert_eq!(data(&store, &app("lib")).unwrap(), b"library");
}

#[test]
fn a_dependency_slot_filled_but_never_processed_is_not_committed() {
    let s = Single::new(DeviceIdentity::default());
    let a = &s.key;
    let p = s.processor();
    let mut store = MemoryStorage::new();
    let (attack, fetch) = fetch_into_dependency(id("fresh.suit"), b"not a manifest");
    let f = p
        .install(&mut store, &attack.signed(a), None)
        .result
        .unwrap_err();
    assert_eq!(f.error, SuitError::DependencyNotProcessed(id("fresh.suit")));
    assert_eq!((f.record.section, f.record.offset), (20, fetch));
    assert_eq!(store, MemoryStorage::new());
}

#[test]
fn a_write_or_copy_into_another_manifests_component_is_referenced() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &tc("lib", 1, b"library", a)).unwrap();
    let before = store.clone();
    let write = Hand {
        seq: 1,
        components: vec![app("lib")],
        manifest_id: Some(id("attack.suit")),
        sections: vec![(20, Seq::new().set_content(b"evil").rep(18).bytes())],
        ..Hand::default()
    };
    assert_eq!(
        install(&p, &mut store, &write.signed(a)),
        Err(SuitError::ComponentReferenced(app("lib")))
    );
    // An image written over a stored manifest.
    let over_manifest = Hand {
        components: vec![app_manifest("lib")],
        ..write
    };
    assert_eq!(
        install(&p, &mut store, &over_manifest.signed(a)),
        Err(SuitError::ComponentReferenced(app_manifest("lib")))
    );
    assert_eq!(store, before);
}

#[test]
fn a_dependency_whose_install_is_skipped_fails_the_lockstep_rule() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let lib = tc("lib", 1, b"library", a);
    // Processed in dependency-resolution only: the lib's install never runs.
    let skip = dependent(&lib, &app_manifest("lib"), &[15]);
    let mut store = MemoryStorage::new();
    let f = p
        .install(&mut store, &skip.signed(a), None)
        .result
        .unwrap_err();
    assert_eq!(
        f.error,
        SuitError::DependencySectionSkipped {
            dependency: app_manifest("lib"),
            section: Section::Install.key(),
        }
    );
    assert_eq!(f.record.section, Section::Install.key());
    assert_eq!(store, MemoryStorage::new());
    // Processed in install too: the lib is installed with it.
    let both = dependent(&lib, &app_manifest("lib"), &[15, 20]);
    install(&p, &mut store, &both.signed(a)).unwrap();
    assert_eq!(data(&store, &app("lib")).unwrap(), b"library");
}

#[test]
fn dependency_commands_on_a_plain_component_are_not_a_dependency() {
    let s = Single::new(DeviceIdentity::default());
    let a = &s.key;
    let p = s.processor();
    for command in [7, 11] {
        let m = Hand {
            components: vec![id("x")],
            manifest_id: Some(id("m.suit")),
            sections: vec![(20, Seq::new().rep(command).bytes())],
            ..Hand::default()
        };
        let mut store = MemoryStorage::new();
        assert_eq!(
            install(&p, &mut store, &m.signed(a)),
            Err(SuitError::NotADependency(0)),
            "command {command}"
        );
        assert_eq!(store, MemoryStorage::new());
    }
}

#[test]
fn nesting_beyond_the_policy_depth_is_too_deep() {
    let s = Single::new(DeviceIdentity::default());
    let a = &s.key;
    let mut p = s.processor();
    p.policy = Policy {
        max_depth: 4,
        ..Policy::default()
    };
    // install > run-sequence > run-sequence > ... (5 levels of sequences)
    let mut inner = Seq::new().set_content(b"deep").rep(18);
    for _ in 0..4 {
        inner = Seq::new().cmd(32, nested(inner));
    }
    let m = Hand {
        components: vec![id("x")],
        manifest_id: Some(id("m.suit")),
        sections: vec![(20, inner.bytes())],
        ..Hand::default()
    };
    let mut store = MemoryStorage::new();
    assert_eq!(
        install(&p, &mut store, &m.signed(a)),
        Err(SuitError::TooDeep)
    );
    assert_eq!(store, MemoryStorage::new());
    // One level less fits.
    p.policy.max_depth = 5;
    install(&p, &mut store, &m.signed(a)).unwrap();
}

#[test]
fn more_components_than_the_policy_allows_are_refused() {
    let s = Single::new(DeviceIdentity::default());
    let a = &s.key;
    let mut p = s.processor();
    p.policy = Policy {
        max_components: 2,
        ..Policy::default()
    };
    // Two listed components, but a dependency index of 9 makes the index space 10.
    let m = Hand {
        components: vec![id("x"), id("y")],
        dependencies: vec![(9, id("d.suit"))],
        manifest_id: Some(id("m.suit")),
        sections: vec![(20, Seq::new().set_content(b"x").rep(18).bytes())],
        ..Hand::default()
    };
    let mut store = MemoryStorage::new();
    assert_eq!(
        install(&p, &mut store, &m.signed(a)),
        Err(SuitError::TooManyComponents(10))
    );
    assert_eq!(store, MemoryStorage::new());
}

#[test]
fn a_write_in_the_shared_sequence_is_not_allowed() {
    let s = Single::new(DeviceIdentity::default());
    let a = &s.key;
    let p = s.processor();
    let m = Hand {
        components: vec![id("x")],
        manifest_id: Some(id("m.suit")),
        shared: Some(Seq::new().set_content(b"x").rep(18).bytes()),
        sections: vec![(20, Seq::new().rep(6).bytes())],
        ..Hand::default()
    };
    let mut store = MemoryStorage::new();
    let f = p
        .install(&mut store, &m.signed(a), None)
        .result
        .unwrap_err();
    assert_eq!(f.error, SuitError::NotAllowedInShared(18));
    assert_eq!(f.record.section, Section::Shared.key());
    assert_eq!(store, MemoryStorage::new());
}

// ---- 2. rollback keys on the dependency's signed manifest-component-id ----

#[test]
fn a_deleted_tc_cannot_come_back_at_an_old_version_under_a_fresh_prefix() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let mut store = MemoryStorage::new();
    let v1 = tc("lib", 1, b"v1", a);
    install(&p, &mut store, &v1).unwrap();
    install(&p, &mut store, &tc("lib", 2, b"v2", a)).unwrap();
    assert!(
        p.uninstall(&mut store, &app_manifest("lib"), None)
            .result
            .is_ok()
    );
    let before = store.clone();
    let fresh = ComponentId::from_strs(&["elsewhere", "lib.suit"]);
    let attack = dependent(&v1, &fresh, &[15, 20]);
    assert_eq!(
        install(&p, &mut store, &attack.signed(a)),
        Err(SuitError::DependencyLocation {
            prefix: fresh,
            manifest_id: app_manifest("lib"),
        })
    );
    // At its own location the stored high-water mark refuses it.
    let attack = dependent(&v1, &app_manifest("lib"), &[15, 20]);
    assert_eq!(
        install(&p, &mut store, &attack.signed(a)),
        Err(SuitError::Rollback {
            installed: 2,
            offered: 1
        })
    );
    assert_eq!(store, before);
}

// ---- 3. scoped TC-signer anchors ----

fn scoped(key: &PrivateKey, prefix: &[&str]) -> TrustAnchor {
    TrustAnchor::scoped(
        key.public_key().clone(),
        vec![ComponentId::from_strs(prefix)],
    )
}

#[test]
fn a_signer_cannot_install_outside_its_scope() {
    let a = key();
    let mut trust = TrustAnchors::new();
    trust.add(scoped(&a, &["TEEP-Device", "SecureFS", "a"]));
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &tc("a", 1, b"mine", &a)).unwrap();
    let before = store.clone();
    assert_eq!(
        install(&p, &mut store, &tc("b", 1, b"not mine", &a)),
        Err(SuitError::OutOfScope(app_manifest("b")))
    );
    // A manifest stored inside the scope that lists a component outside it.
    let reach = Hand {
        components: vec![app("b")],
        manifest_id: Some(ComponentId::from_strs(&[
            "TEEP-Device",
            "SecureFS",
            "a",
            "x",
        ])),
        sections: vec![(20, Seq::new().set_content(b"x").rep(18).bytes())],
        ..Hand::default()
    };
    assert_eq!(
        install(&p, &mut store, &reach.signed(&a)),
        Err(SuitError::OutOfScope(app("b")))
    );
    assert_eq!(store, before);
}

#[test]
fn a_dependency_outside_its_signers_scope_fails_inside_an_in_scope_dependent() {
    let (tam, dev) = (key(), key());
    let mut trust = TrustAnchors::new();
    trust.add(TrustAnchor::scoped(
        tam.public_key().clone(),
        vec![id("depending.suit"), id("own")],
    ));
    trust.add(scoped(&dev, &["TEEP-Device", "SecureFS", "a"]));
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    let lib = tc("lib", 1, b"library", &dev);
    let d = dependent(&lib, &app_manifest("lib"), &[15, 20]);
    let f = p
        .install(&mut store, &d.signed(&tam), None)
        .result
        .unwrap_err();
    assert_eq!(f.error, SuitError::OutOfScope(app_manifest("lib")));
    // The report names the dependent's process-dependency (the last command of its
    // dependency-resolution).
    let resolution = &d.sections[0].1;
    let process = parse_sequence(resolution, 0)
        .unwrap()
        .last()
        .unwrap()
        .offset;
    assert_eq!(f.record.manifest_id, Vec::<u64>::new());
    assert_eq!(
        (f.record.section, f.record.offset),
        (Section::DependencyResolution.key(), process as u64)
    );
    assert_eq!(store, MemoryStorage::new());
    // Within the developer's scope the same dependency is accepted.
    let lib = tc("a", 1, b"app", &dev);
    let d = dependent(&lib, &app_manifest("a"), &[15, 20]);
    install(&p, &mut store, &d.signed(&tam)).unwrap();
    assert_eq!(
        store.signers[&app_manifest("a")],
        SignerId::Anchor(hex::encode(dev.public_key().thumbprint()))
    );
}

#[test]
fn another_trusted_signer_cannot_take_over_a_manifest_component_id() {
    let (a, b) = (key(), key());
    let trust = unscoped(&[&a, &b]);
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &tc("a", 1, b"one", &a)).unwrap();
    let before = store.clone();
    assert_eq!(
        install(&p, &mut store, &tc("a", u64::MAX, b"hijack", &b)),
        Err(SuitError::SignerMismatch(app_manifest("a")))
    );
    assert_eq!(store, before);
    // The rightful signer's next update still goes through.
    install(&p, &mut store, &tc("a", 2, b"two", &a)).unwrap();
    assert_eq!(data(&store, &app("a")).unwrap(), b"two");
}

#[test]
fn an_anchor_holding_both_keys_may_update_with_either() {
    let (old, new) = (key(), key());
    let mut trust = TrustAnchors::new();
    trust.add(TrustAnchor {
        name: "vendor".into(),
        keys: vec![old.public_key().clone(), new.public_key().clone()],
        cas: Vec::new(),
        scope: vec![ComponentId::from_strs(&["TEEP-Device"])],
    });
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &tc("a", 1, b"one", &old)).unwrap();
    install(&p, &mut store, &tc("a", 2, b"two", &new)).unwrap();
    assert_eq!(data(&store, &app("a")).unwrap(), b"two");
    assert_eq!(
        store.signers[&app_manifest("a")],
        SignerId::Anchor("vendor".into())
    );
}

#[test]
fn a_signer_cannot_copy_another_signers_data() {
    let (a, b) = (key(), key());
    let trust = unscoped(&[&a, &b]);
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &tc("a", 1, b"personal data", &a)).unwrap();
    let before = store.clone();
    let copy = index(Seq::new(), 1)
        .cmd(20, |e| {
            e.map(1).unwrap().u8(22).unwrap().u8(0).unwrap();
        })
        .rep(22)
        .bytes();
    let steal = Hand {
        components: vec![app("a"), id("loot")],
        manifest_id: Some(id("steal.suit")),
        sections: vec![(20, copy)],
        ..Hand::default()
    };
    assert_eq!(
        install(&p, &mut store, &steal.signed(&b)),
        Err(SuitError::ForeignComponent(app("a")))
    );
    assert_eq!(store, before);
    // The owner's own signer may copy it.
    let mine = Hand {
        manifest_id: Some(ComponentId::from_strs(&["mine.suit"])),
        ..steal
    };
    install(&p, &mut store, &mine.signed(&a)).unwrap();
    assert_eq!(data(&store, &id("loot")).unwrap(), b"personal data");
}

// ---- 4. deleting a TC whose signer is no longer trusted ----

#[test]
fn a_tc_of_a_removed_signer_is_removed_plainly() {
    let (tam, dev) = (key(), key());
    let device = teep_device();
    let mut store = MemoryStorage::new();
    {
        let trust = unscoped(&[&tam, &dev]);
        let p = Processor::new(&PROVIDER, &trust, &device);
        install(&p, &mut store, &tc("a", 1, b"app", &dev)).unwrap();
        let lib = tc("lib", 1, b"library", &dev);
        let d = dependent(&lib, &app_manifest("lib"), &[15, 20]);
        install(&p, &mut store, &d.signed(&tam)).unwrap();
    }
    // The developer's key is compromised: its anchor goes.
    let trust = unscoped(&[&tam]);
    let p = Processor::new(&PROVIDER, &trust, &device);
    // Its manifests can no longer be invoked...
    assert!(matches!(
        p.invoke(&mut store, &app_manifest("a"), None)
            .result
            .unwrap_err()
            .error,
        SuitError::Authentication(_)
    ));
    // ...but they can be deleted, with everything they linked.
    let out = p.uninstall(&mut store, &app_manifest("a"), None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert!(data(&store, &app("a")).is_none());
    assert!(data(&store, &app_manifest("a")).is_none());
    // A dependency of a trusted dependent goes with it, its sequence not run either.
    let out = p.uninstall(&mut store, &id("depending.suit"), None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert!(store.data.is_empty(), "{:?}", store.data.keys());
    assert!(store.owners.is_empty());
    // Rollback protection and signer records survive.
    assert_eq!(store.sequence_numbers[&app_manifest("lib")], 1);
    assert!(store.signers.contains_key(&app_manifest("a")));
}

// ---- 5. idempotent re-delivery ----

#[test]
fn the_same_envelope_again_is_success_with_nothing_changed() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let mut store = MemoryStorage::new();
    let v2 = tc("a", 2, b"two", a);
    install(&p, &mut store, &v2).unwrap();
    let before = store.clone();
    let out = p.install(&mut store, &v2, Some(b"again"));
    let done = out.result.unwrap();
    assert_eq!(
        (done.manifest_id, done.sequence_number),
        (app_manifest("a"), 2)
    );
    assert!(out.report.result.is_ok());
    assert_eq!(store, before);
    // Another manifest at the same number, or a lower one, stays a rollback.
    for (seq, body) in [(2, &b"other"[..]), (1, b"one")] {
        assert_eq!(
            install(&p, &mut store, &tc("a", seq, body, a)),
            Err(SuitError::Rollback {
                installed: 2,
                offered: seq
            })
        );
    }
    assert_eq!(store, before);
}

#[test]
fn a_manifest_stored_as_a_dependency_delivered_as_root_gains_its_root_link() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let lib = tc("lib", 1, b"library", a);
    let mut dep = spec("x", 1, b"x");
    dep.dependencies = vec![DependencySpec {
        envelope: lib.clone(),
    }];
    let built = builder::build(&dep, &PROVIDER).unwrap();
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &sign_with(&built.envelope, a)).unwrap();
    assert!(!store.owners[&app_manifest("lib")].contains(&app_manifest("lib")));
    install(&p, &mut store, &lib).unwrap();
    assert!(store.owners[&app_manifest("lib")].contains(&app_manifest("lib")));
    // Now the x manifest goes and the lib stays, installed in its own right.
    assert!(
        p.uninstall(&mut store, &app_manifest("x"), None)
            .result
            .is_ok()
    );
    assert_eq!(data(&store, &app("lib")).unwrap(), b"library");
}

// ---- 10a. what the CDDL forbids ----

#[test]
fn an_empty_component_index_list_is_refused_at_decode() {
    let bytes = Seq::new()
        .cmd(12, |e| {
            e.array(0).unwrap();
        })
        .rep(3)
        .bytes();
    assert_eq!(
        parse_sequence(&bytes, 0).unwrap_err(),
        SuitError::EmptyComponentIndexList
    );
    let s = Single::new(DeviceIdentity::default());
    let a = &s.key;
    let p = s.processor();
    let m = Hand {
        components: vec![id("x")],
        manifest_id: Some(id("m.suit")),
        sections: vec![(20, bytes)],
        ..Hand::default()
    };
    let mut store = MemoryStorage::new();
    assert_eq!(
        install(&p, &mut store, &m.signed(a)),
        Err(SuitError::EmptyComponentIndexList)
    );
    assert_eq!(store, MemoryStorage::new());
}

// ---- storage: signers persist, old indexes still open ----

#[test]
fn directory_storage_keeps_signers_across_reopen_and_reads_format_1() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (key(), key());
    let trust = unscoped(&[&a, &b]);
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = DirStorage::open(dir.path()).unwrap();
    install(&p, &mut store, &tc("a", 1, b"one", &a)).unwrap();
    drop(store);
    let mut store = DirStorage::open(dir.path()).unwrap();
    let out = p.install(&mut store, &tc("a", 9, b"hijack", &b), None);
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::SignerMismatch(app_manifest("a"))
    );

    // A format-1 index (no signers) written by the previous release.
    let old = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(old.path().join("objects")).unwrap();
    std::fs::write(old.path().join("objects/1-1"), b"legacy").unwrap();
    let mut index = Vec::new();
    let mut e = Encoder::new(&mut index);
    e.array(4).unwrap().u64(1).unwrap();
    e.array(1).unwrap().array(2).unwrap();
    encode_id(&mut e, &id("legacy"));
    e.str("1-1").unwrap();
    e.array(0).unwrap();
    e.array(1).unwrap().array(2).unwrap();
    encode_id(&mut e, &id("legacy.suit"));
    e.u64(7).unwrap();
    std::fs::write(old.path().join("index"), &index).unwrap();
    let store = DirStorage::open(old.path()).unwrap();
    assert_eq!(data(&store, &id("legacy")).unwrap(), b"legacy");
    assert_eq!(store.sequence_number(&id("legacy.suit")).unwrap(), Some(7));
    assert_eq!(store.signer(&id("legacy.suit")).unwrap(), None);
    drop(store);

    // A format this code does not know is refused, not guessed at.
    let mut future = Vec::new();
    let mut e = Encoder::new(&mut future);
    e.array(6).unwrap().u64(3).unwrap().u64(1).unwrap();
    for _ in 0..4 {
        e.array(0).unwrap();
    }
    std::fs::write(old.path().join("index"), &future).unwrap();
    assert!(matches!(
        DirStorage::open(old.path()).unwrap_err(),
        SuitError::Malformed {
            what: "unknown index format",
            ..
        }
    ));
}

#[test]
fn a_dependency_filled_during_invocation_is_not_committed_either() {
    let s = Single::new(DeviceIdentity::default());
    let a = &s.key;
    // The stored manifest has lost its integrated payloads: the bytes come from the network.
    let mut fetcher = MapFetcher::default();
    fetcher
        .0
        .insert("https://x/evil".into(), b"not a manifest".to_vec());
    let mut p = s.processor();
    p.fetcher = &fetcher;
    let m = Hand {
        components: vec![id("x")],
        dependencies: vec![(1, id("fresh.suit"))],
        manifest_id: Some(id("m.suit")),
        sections: vec![
            (
                9,
                uri(index(Seq::new(), 1), "https://x/evil").rep(21).bytes(),
            ),
            (20, Seq::new().set_content(b"x").rep(18).bytes()),
        ],
        ..Hand::default()
    };
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &m.signed(a)).unwrap();
    let before = store.clone();
    let f = p
        .invoke(&mut store, &id("m.suit"), None)
        .result
        .unwrap_err();
    assert_eq!(f.error, SuitError::DependencyNotProcessed(id("fresh.suit")));
    assert_eq!(f.record.section, Section::Invoke.key());
    assert_eq!(store, before);
}

// ---- issue 8: an Update of several manifests is atomic as a whole ----

/// A builder-made TC manifest that integrates and processes `dependencies`.
fn tc_depending(name: &str, payload: &[u8], dependencies: &[&[u8]], key: &PrivateKey) -> Vec<u8> {
    let mut m = spec(name, 1, payload);
    m.dependencies = dependencies
        .iter()
        .map(|d| DependencySpec {
            envelope: d.to_vec(),
        })
        .collect();
    sign_with(&builder::build(&m, &PROVIDER).unwrap().envelope, key)
}

/// Every file under `root` with its bytes.
fn tree(root: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Memory storage that counts commits and can be told to fail reads or commits.
#[derive(Default)]
struct Counting {
    inner: MemoryStorage,
    commits: usize,
    fail_lookups: bool,
    fail_commit: bool,
}

impl Counting {
    fn lookup(&self) -> Result<(), SuitError> {
        if self.fail_lookups {
            return Err(SuitError::Storage("read failed".into()));
        }
        Ok(())
    }
}

impl Storage for Counting {
    fn read(&self, id: &ComponentId) -> Result<Option<std::borrow::Cow<'_, [u8]>>, SuitError> {
        self.lookup()?;
        self.inner.read(id)
    }
    fn owners(
        &self,
        id: &ComponentId,
    ) -> Result<std::collections::BTreeSet<ComponentId>, SuitError> {
        self.inner.owners(id)
    }
    fn linked_by(&self, owner: &ComponentId) -> Result<Vec<ComponentId>, SuitError> {
        self.inner.linked_by(owner)
    }
    fn sequence_number(&self, manifest: &ComponentId) -> Result<Option<u64>, SuitError> {
        self.lookup()?;
        self.inner.sequence_number(manifest)
    }
    fn signer(&self, manifest: &ComponentId) -> Result<Option<SignerId>, SuitError> {
        self.inner.signer(manifest)
    }
    fn manifest_ids(&self) -> Result<Vec<ComponentId>, SuitError> {
        self.inner.manifest_ids()
    }
    fn commit(&mut self, changes: teep_suit::storage::Changes) -> Result<(), SuitError> {
        if self.fail_commit {
            return Err(SuitError::Storage("disk full".into()));
        }
        self.commits += 1;
        self.inner.commit(changes)
    }
}

#[test]
fn an_update_whose_second_manifest_fails_leaves_storage_byte_identical() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let dir = tempfile::tempdir().unwrap();
    let mut store = DirStorage::open(dir.path()).unwrap();
    install(&p, &mut store, &tc("old", 1, b"installed before", a)).unwrap();
    let before = tree(dir.path());
    // The second manifest is an update of "old" at the same number with other contents.
    let list = [
        tc("one", 1, b"first", a),
        tc("old", 1, b"not a re-delivery", a),
        tc("three", 1, b"third", a),
    ];
    let out = p.install_all(&mut store, &list, Some(b"token"));
    let failure = out.result.clone().unwrap_err();
    assert_eq!(failure.item, Some(UpdateItem::Manifest(1)));
    assert_eq!(
        failure.failure.error,
        SuitError::Rollback {
            installed: 1,
            offered: 1
        }
    );
    assert_eq!(
        out.teep_err_code(),
        Some(teep_suit::TeepErrCode::ManifestProcessingFailed)
    );
    let errors: Vec<SuitError> = out
        .outcomes
        .iter()
        .map(|o| o.result.clone().unwrap_err().error)
        .collect();
    assert_eq!(
        errors,
        [
            SuitError::OtherManifestFailed(1),
            failure.failure.error.clone(),
            SuitError::OtherManifestFailed(1),
        ]
    );
    // Every report names its own manifest, carries the nonce and a failure.
    for (o, envelope) in out.outcomes.iter().zip(&list) {
        assert_eq!(o.report.manifest_digest.bytes, manifest_digest(envelope));
        assert_eq!(o.report.nonce.as_deref(), Some(&b"token"[..]));
        assert!(o.report.result.is_err());
    }
    // Nothing was committed: the directory is byte for byte as before, and reopens so.
    assert_eq!(tree(dir.path()), before);
    drop(store);
    let store = DirStorage::open(dir.path()).unwrap();
    assert!(data(&store, &app("one")).is_none());
    assert_eq!(data(&store, &app("old")).unwrap(), b"installed before");
}

#[test]
fn an_update_whose_manifests_all_succeed_commits_once_with_later_ones_seeing_earlier_ones() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let lib = tc("lib", 1, b"library", a);
    // The second and third depend on the first: they find it installed by this Update.
    let list = [
        lib.clone(),
        tc_depending("app", b"application", &[&lib], a),
        tc_depending("tool", b"tool", &[&lib], a),
    ];
    let mut store = Counting::default();
    let out = p.install_all(&mut store, &list, None);
    assert_eq!(out.result, Ok(()));
    assert_eq!(store.commits, 1);
    let ids: Vec<ComponentId> = out
        .outcomes
        .iter()
        .map(|o| o.result.clone().unwrap().manifest_id)
        .collect();
    assert_eq!(
        ids,
        [
            app_manifest("lib"),
            app_manifest("app"),
            app_manifest("tool")
        ]
    );
    assert!(out.outcomes.iter().all(|o| o.report.result.is_ok()));
    assert_eq!(out.teep_err_code(), None);
    // The same state as installing them one by one.
    let mut one_by_one = MemoryStorage::new();
    for envelope in &list {
        install(&p, &mut one_by_one, envelope).unwrap();
    }
    assert_eq!(store.inner, one_by_one);
    assert_eq!(store.inner.owners(&app_manifest("lib")).unwrap().len(), 3);
}

#[test]
fn an_update_failing_on_storage_is_a_temporary_error_and_a_failed_commit_commits_nothing() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let list = [tc("one", 1, b"first", a), tc("two", 1, b"second", a)];
    let mut store = Counting {
        fail_lookups: true,
        ..Counting::default()
    };
    let out = p.install_all(&mut store, &list, None);
    assert_eq!(
        out.result.clone().unwrap_err().item,
        Some(UpdateItem::Manifest(0))
    );
    assert_eq!(
        out.teep_err_code(),
        Some(teep_suit::TeepErrCode::TemporaryError)
    );
    assert_eq!(store.inner, MemoryStorage::new());

    // Every manifest succeeds, the commit fails: no manifest is to blame, every report
    // carries the storage error.
    let mut store = Counting {
        fail_commit: true,
        ..Counting::default()
    };
    let out = p.install_all(&mut store, &list, None);
    let failure = out.result.clone().unwrap_err();
    assert_eq!(failure.item, None);
    assert_eq!(
        failure.failure.error,
        SuitError::Storage("disk full".into())
    );
    assert!(
        out.outcomes
            .iter()
            .all(|o| o.result.as_ref().unwrap_err().error == failure.failure.error)
    );
    assert_eq!(
        out.teep_err_code(),
        Some(teep_suit::TeepErrCode::TemporaryError)
    );
    assert_eq!((store.commits, store.inner), (0, MemoryStorage::new()));
}

#[test]
fn an_empty_update_commits_nothing_and_succeeds() {
    let s = Single::new(teep_device());
    let mut store = Counting::default();
    let out = s.processor().install_all::<&[u8]>(&mut store, &[], None);
    assert_eq!((out.outcomes.len(), out.result), (0, Ok(())));
    assert_eq!(store.commits, 0);
}

/// Two dependencies of one manifest share a dependency: the second fetches and processes
/// the very manifest the first processed at the same sequence number, which is no rollback.
#[test]
fn two_dependencies_sharing_a_dependency_install_in_one_procedure() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let base = tc("base", 1, b"base", a);
    let left = tc_depending("left", b"left", &[&base], a);
    let right = tc_depending("right", b"right", &[&base], a);
    let top = tc_depending("top", b"top", &[&left, &right], a);
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &top).unwrap();
    assert_eq!(data(&store, &app("base")).unwrap(), b"base");
    assert_eq!(
        store.owners(&app_manifest("base")).unwrap(),
        [app_manifest("left"), app_manifest("right")].into()
    );
    // A different manifest at that number is still refused.
    let other = tc("base", 1, b"other base", a);
    let left = tc_depending("left", b"left", &[&base], a);
    let right = tc_depending("right", b"right", &[&other], a);
    let top = tc_depending("top2", b"top", &[&left, &right], a);
    let mut fresh = MemoryStorage::new();
    let f = p.install(&mut fresh, &top, None).result.unwrap_err();
    assert_eq!(
        f.error,
        SuitError::ComponentReferenced(app_manifest("base"))
    );
    assert_eq!(fresh, MemoryStorage::new());
}

/// The depth a frame carries is left behind with it: a try-each whose first alternative
/// fails (an early return) any number of times at one level never adds up to TooDeep.
#[test]
fn early_returns_from_nested_sequences_do_not_accumulate_depth() {
    let s = Single::new(DeviceIdentity::default());
    let a = &s.key;
    let mut p = s.processor();
    p.policy.max_depth = 2;
    let mut section = Seq::new();
    for _ in 0..8 {
        let abort = Seq::new().rep(14);
        let write = Seq::new().set_content(b"x").rep(18);
        section = section.cmd(15, |e| {
            e.array(2).unwrap();
            e.bytes(&abort.bytes()).unwrap();
            e.bytes(&write.bytes()).unwrap();
        });
    }
    let m = Hand {
        components: vec![id("x")],
        manifest_id: Some(id("m.suit")),
        sections: vec![(20, section.bytes())],
        ..Hand::default()
    };
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &m.signed(a)).unwrap();
    assert_eq!(data(&store, &id("x")).unwrap(), b"x");
}

/// A processor and its parts go to another thread (as into `spawn_blocking`).
#[test]
fn a_processor_runs_on_another_thread() {
    let s = Single::new(teep_device());
    let envelope = tc("t", 1, b"threaded", &s.key);
    let p = s.processor();
    let mut store = MemoryStorage::new();
    std::thread::scope(|scope| {
        scope
            .spawn(|| install(&p, &mut store, &envelope))
            .join()
            .unwrap()
            .unwrap();
    });
    assert_eq!(data(&store, &app("t")).unwrap(), b"threaded");
}

/// Within one Update, a later manifest is checked against what the earlier ones did, as if
/// they were committed: it cannot roll back, take over or fill unprocessed what they left.
#[test]
fn a_later_manifest_of_an_update_meets_the_earlier_ones_state() {
    let (a, b) = (key(), key());
    let mut both = TrustAnchors::new();
    both.add(TrustAnchor::unscoped(a.public_key().clone()));
    both.add(TrustAnchor::unscoped(b.public_key().clone()));
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &both, &device);
    let attempts = [
        // Back to the number before, in the same list.
        (
            [tc("x", 2, b"new", &a), tc("x", 1, b"old", &a)],
            SuitError::Rollback {
                installed: 2,
                offered: 1,
            },
        ),
        // Another anchor taking over what the first manifest installed.
        (
            [tc("x", 1, b"mine", &a), tc("x", 2, b"yours", &b)],
            SuitError::SignerMismatch(app_manifest("x")),
        ),
    ];
    for (list, error) in attempts {
        let mut store = MemoryStorage::new();
        let out = p.install_all(&mut store, &list, None);
        let failure = out.result.unwrap_err();
        assert_eq!(
            (failure.item, failure.failure.error),
            (Some(UpdateItem::Manifest(1)), error)
        );
        assert_eq!(store, MemoryStorage::new());
    }
}

// ---- a TEEP Update: unneeded-manifest-list and manifest-list in one transaction ----

/// The errors of an Update's reports, unlinks first.
fn errors(out: &teep_suit::processor::UpdateOutcome) -> Vec<Option<SuitError>> {
    out.unlinked
        .iter()
        .chain(&out.outcomes)
        .map(|o| o.result.as_ref().err().map(|f| f.error.clone()))
        .collect()
}

#[test]
fn an_update_unlinks_and_installs_in_one_commit() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let mut store = Counting::default();
    install(&p, &mut store, &tc("old", 1, b"old", a)).unwrap();
    // "old" is unlinked first, then installed again at a higher number, beside "new".
    let list = [tc("new", 1, b"new", a), tc("old", 2, b"old again", a)];
    let out = p.update(&mut store, &[app_manifest("old")], &list, Some(b"t"));
    assert_eq!(out.result, Ok(()));
    assert_eq!(errors(&out), [None, None, None]);
    assert_eq!(store.commits, 2);
    assert!(
        out.unlinked
            .iter()
            .chain(&out.outcomes)
            .all(|o| o.report.nonce.as_deref() == Some(&b"t"[..]))
    );
    assert_eq!(data(&store, &app("new")).unwrap(), b"new");
    assert_eq!(data(&store, &app("old")).unwrap(), b"old again");
    // Only the unlink: one commit, "old" gone.
    let out = p.update::<&[u8]>(&mut store, &[app_manifest("old")], &[], None);
    assert_eq!((out.result, store.commits), (Ok(()), 3));
    assert_eq!(data(&store, &app("old")), None);
}

#[test]
fn a_failing_install_leaves_the_unlinks_of_its_update_uncommitted() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let mut store = Counting::default();
    install(&p, &mut store, &tc("old", 1, b"old", a)).unwrap();
    install(&p, &mut store, &tc("keep", 1, b"keep", a)).unwrap();
    let before = store.inner.clone();
    // The second envelope rolls "keep" back to its own number with other contents.
    let list = [tc("new", 1, b"new", a), tc("keep", 1, b"other", a)];
    let out = p.update(&mut store, &[app_manifest("old")], &list, None);
    let failure = out.result.clone().unwrap_err();
    assert_eq!(failure.item, Some(UpdateItem::Manifest(1)));
    let rollback = SuitError::Rollback {
        installed: 1,
        offered: 1,
    };
    assert_eq!(failure.failure.error, rollback);
    assert_eq!(
        errors(&out),
        [
            Some(SuitError::OtherManifestFailed(1)),
            Some(SuitError::OtherManifestFailed(1)),
            Some(rollback),
        ]
    );
    assert_eq!(store.commits, 2);
    assert!(store.inner == before);
}

/// The draft: the Agent answers with an Error if unlinking failed. An ID with no root
/// manifest installed there is such a failure: nothing commits and no manifest of the
/// list runs (so a TAM cannot delete a dependency from under its dependent either).
#[test]
fn an_unneeded_id_without_an_installed_root_manifest_fails_the_whole_update() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let mut store = Counting::default();
    install(&p, &mut store, &tc("old", 1, b"old", a)).unwrap();
    let lib = tc("lib", 1, b"library", a);
    install(&p, &mut store, &tc_depending("app", b"app", &[&lib], a)).unwrap();
    let before = store.inner.clone();
    let list = [tc("new", 1, b"new", a)];
    // Never installed; only a dependency of "app"; an image, not a manifest.
    for unknown in [id("nowhere.suit"), app_manifest("lib"), app("old")] {
        let unneeded = [app_manifest("old"), unknown.clone()];
        let out = p.update(&mut store, &unneeded, &list, None);
        let failure = out.result.clone().unwrap_err();
        assert_eq!(failure.item, Some(UpdateItem::Unneeded(1)));
        let not_installed = SuitError::NotInstalled(unknown);
        assert_eq!(failure.failure.error, not_installed);
        assert_eq!(
            errors(&out),
            [
                Some(SuitError::UnneededManifestFailed(1)),
                Some(not_installed),
                Some(SuitError::UnneededManifestFailed(1)),
            ]
        );
        // The manifest that did not run is named by the digest it claims.
        assert_eq!(
            out.outcomes[0].report.manifest_digest.bytes,
            manifest_digest(&list[0])
        );
        assert_eq!(store.commits, 2);
        assert!(store.inner == before);
    }
}

/// Invocation of a dependent checks its dependency and commits nothing at all.
#[test]
fn invoking_a_dependent_commits_nothing() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let mut store = Counting::default();
    let lib = tc("lib", 1, b"library", a);
    install(&p, &mut store, &tc_depending("app", b"app", &[&lib], a)).unwrap();
    let out = p.invoke(&mut store, &app_manifest("app"), None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(store.commits, 1);
}

/// A manifest's own update keeps off an image that another manifest links too: the other
/// one (which wrote the same bytes there) cannot be told from the image's first writer.
#[test]
fn an_update_cannot_change_an_image_another_manifest_also_links() {
    let s = Single::new(DeviceIdentity::default());
    let a = &s.key;
    let p = s.processor();
    let writer = |manifest: &str, seq: u64, content: &[u8]| Hand {
        seq,
        components: vec![id("shared")],
        manifest_id: Some(id(manifest)),
        sections: vec![(20, Seq::new().set_content(content).rep(18).bytes())],
        ..Hand::default()
    };
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &writer("x.suit", 1, b"same").signed(a)).unwrap();
    install(&p, &mut store, &writer("y.suit", 1, b"same").signed(a)).unwrap();
    let before = store.clone();
    assert_eq!(
        install(&p, &mut store, &writer("x.suit", 2, b"other").signed(a)),
        Err(SuitError::ComponentReferenced(id("shared")))
    );
    assert!(store == before);
}

/// A manifest whose manifest-component-id is another manifest's image location: storing
/// it there would overwrite that TA. Links on a manifest are references an update may
/// leave; an image linked by another manifest is that manifest's.
#[test]
fn a_manifest_cannot_be_stored_over_another_manifests_image() {
    let s = Single::new(teep_device());
    let a = &s.key;
    let p = s.processor();
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &tc("lib", 1, b"library", a)).unwrap();
    let before = store.clone();
    let mut over = spec("evil", 1, b"evil");
    over.manifest_component_id = Some(app("lib"));
    let built = builder::build(&over, &PROVIDER).unwrap();
    assert_eq!(
        install(&p, &mut store, &sign_with(&built.envelope, a)),
        Err(SuitError::ComponentReferenced(app("lib")))
    );
    assert!(store == before);
    assert_eq!(data(&store, &app("lib")).unwrap(), b"library");
}

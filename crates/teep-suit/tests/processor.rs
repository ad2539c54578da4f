//! The processor on the published vectors: installs, dependencies, decryption, uninstall
//! with shared dependencies, and the negative vectors' failures with nothing changed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::*;
use teep_cose::encrypt::DecryptionKey;
use teep_suit::processor::{KeyDecryptor, Processor};
use teep_suit::storage::{MemoryStorage, Storage};
use teep_suit::{ComponentId, Condition, Section, SuitError, parse_sequence};

fn decryptor() -> KeyDecryptor<'static> {
    KeyDecryptor {
        provider: &PROVIDER,
        keys: vec![
            DecryptionKey::EcdhEs(private_key(
                "keys/fwenc-receiver-esdh-p256.cose-key-private.hex",
            )),
            DecryptionKey::A128Kw {
                kek: zeroize::Zeroizing::new(symmetric_key("keys/fwenc-kek-a128kw.cose-key.hex")),
                kid: None,
            },
        ],
    }
}

fn read(s: &MemoryStorage, id: &ComponentId) -> Option<Vec<u8>> {
    s.read(id).unwrap().map(|c| c.into_owned())
}

#[test]
fn teep_tc_uri_installs_from_the_fetcher_and_reports_the_nonce() {
    let teep = TeepSetup::new();
    let p = teep.processor();
    let mut store = MemoryStorage::new();
    let env = hex_file("suit/teep/teep-tc-uri.hex");
    let out = p.install(&mut store, &env, Some(b"token-1"));
    let done = out.result.unwrap();
    assert_eq!(done.manifest_id, tc_manifest_id());
    assert_eq!(done.sequence_number, 3);
    assert_eq!(
        read(&store, &tc_component()),
        Some(hex_file("suit/teep/teep-tc-binary.hex"))
    );
    assert_eq!(store.sequence_numbers[&tc_manifest_id()], 3);
    assert_eq!(out.report.nonce.as_deref(), Some(&b"token-1"[..]));
    assert!(out.report.result.is_ok());
    assert_eq!(
        hex::encode(&out.report.manifest_digest.bytes),
        "b39b52b0b747ea79588c190f567bfc2c8437ba8a73f7ea983182e79f0148d59b"
    );
}

/// A manifest by a signer the device does not trust is reported under its own digest
/// (the one its sender computed), not an all-zero one: the TAM can then tell which of the
/// manifests it sent failed, and why.
#[test]
fn an_untrusted_signers_manifest_is_reported_under_its_digest() {
    let device = teep_device();
    let trust = teep_suit::trust::TrustAnchors::unscoped(teep_cose::TrustStore::new());
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    let env = hex_file("suit/teep/teep-tc-uri.hex");
    let out = p.install(&mut store, &env, Some(b"token-1"));
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::Authentication(teep_cose::CoseError::UntrustedSigner)
    );
    assert_eq!(
        hex::encode(&out.report.manifest_digest.bytes),
        "b39b52b0b747ea79588c190f567bfc2c8437ba8a73f7ea983182e79f0148d59b"
    );
    assert_eq!(out.report.nonce.as_deref(), Some(&b"token-1"[..]));
    assert_eq!(out.report.result.unwrap_err().error.report_reason(), 4);
    assert_eq!(store, MemoryStorage::new());
}

#[test]
fn teep_tc_integrated_installs_without_network() {
    let trust = vector_trust();
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    let out = p.install(&mut store, &hex_file("teep/suit_integrated.hex"), None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(
        read(&store, &tc_component()).unwrap(),
        b"Hello, Secure World!"
    );
}

#[test]
fn tampered_integrated_payload_fails_image_match_at_its_offset_and_changes_nothing() {
    let trust = vector_trust();
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    let env = hex_file("suit/negative/teep-tc-integrated.payload-tampered.hex");
    let out = p.install(&mut store, &env, None);
    let failure = out.result.unwrap_err();
    assert_eq!(failure.error, SuitError::ConditionFailed { condition: 3 });
    assert_eq!(failure.error.report_reason(), 10);
    assert_eq!(failure.record.section, Section::Install.key());
    // The offset is the image-match command's position in the install sequence.
    let a = teep_suit::verify::authenticate(
        &env,
        &PROVIDER,
        &teep_suit::verify::Anchors {
            signers: trust.store(),
            mac_keys: &[],
            now: None,
        },
    )
    .unwrap();
    let install = teep_suit::verify::section_bytes(&a, Section::Install, &PROVIDER)
        .unwrap()
        .unwrap();
    let steps = parse_sequence(install, 0).unwrap();
    let im = steps
        .iter()
        .find(|s| {
            matches!(
                s.command,
                teep_suit::Command::Condition(Condition::ImageMatch, _)
            )
        })
        .unwrap();
    assert_eq!(failure.record.offset, im.offset as u64);
    // The measured digest of the tampered payload is in the record.
    assert_eq!(
        hex::encode(
            &failure
                .record
                .properties
                .image_digest
                .as_ref()
                .unwrap()
                .bytes
        )[..8],
        *"0e164300"
    );
    assert_eq!(store, MemoryStorage::new());
}

#[test]
fn tampered_manifest_is_rejected_before_anything_runs() {
    let teep = TeepSetup::new();
    let p = teep.processor();
    let mut store = MemoryStorage::new();
    for (f, want) in [
        (
            "suit/negative/teep-tc-uri.seq-tampered.hex",
            SuitError::ManifestDigestMismatch,
        ),
        (
            "suit/negative/teep-tc-uri.seq-tampered-redigested.hex",
            // The vectors carry no kid: a signature no anchor verifies is, for teep-cose,
            // indistinguishable from one by an unknown key.
            SuitError::Authentication(teep_cose::CoseError::UntrustedSigner),
        ),
    ] {
        let out = p.install(&mut store, &hex_file(f), None);
        assert_eq!(out.result.unwrap_err().error, want, "{f}");
        assert_eq!(out.report.result.unwrap_err().error.report_reason(), 4);
    }
    assert_eq!(store, MemoryStorage::new());
}

#[test]
fn rollback_to_an_equal_sequence_number_is_refused_with_nothing_changed() {
    let teep = TeepSetup::new();
    let p = teep.processor();
    let mut store = MemoryStorage::new();
    assert!(
        p.install(&mut store, &hex_file("suit/teep/teep-tc-uri.hex"), None)
            .result
            .is_ok()
    );
    let before = store.clone();
    // Same manifest component ID, same sequence number 3.
    let out = p.install(
        &mut store,
        &hex_file("suit/teep/teep-tc-integrated.hex"),
        None,
    );
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::Rollback {
            installed: 3,
            offered: 3
        }
    );
    assert_eq!(store, before);
}

#[test]
fn wrong_vendor_id_fails_the_shared_sequence() {
    let trust = vector_trust();
    let mut device = teep_device();
    device.vendor_ids = vec![teep_suit::VendorId::Uuid(vec![0; 16])];
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    let out = p.install(
        &mut store,
        &hex_file("suit/teep/teep-tc-integrated.hex"),
        None,
    );
    let f = out.result.unwrap_err();
    assert_eq!(f.error, SuitError::ConditionFailed { condition: 1 });
    assert_eq!(f.record.section, Section::Shared.key());
    assert_eq!(store, MemoryStorage::new());
}

#[test]
fn personalization_decrypts_its_config_and_processes_the_tc_dependency() {
    let trust = vector_trust();
    let device = teep_device();
    let fetcher = teep_fetcher();
    let dec = decryptor();
    let mut p = Processor::new(&PROVIDER, &trust, &device);
    p.fetcher = &fetcher;
    p.decryptor = Some(&dec);
    let mut store = MemoryStorage::new();
    let out = p.install(
        &mut store,
        &hex_file("suit/teep/teep-personalization.hex"),
        Some(b"t"),
    );
    assert!(out.result.is_ok(), "{:?}", out.result);
    let config = ComponentId::from_strs(&["TEEP-Device", "SecureFS", "config.json"]);
    let config_suit = ComponentId::from_strs(&["TEEP-Device", "SecureFS", "config.suit"]);
    assert_eq!(
        read(&store, &config),
        Some(hex_file("suit/teep/teep-personalization.plaintext.hex"))
    );
    // The dependency was processed: its TC is installed and linked by the dependent only.
    assert_eq!(
        read(&store, &tc_component()),
        Some(hex_file("suit/teep/teep-tc-binary.hex"))
    );
    assert_eq!(
        store
            .owners(&tc_manifest_id())
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![config_suit.clone()]
    );
    assert_eq!(store.sequence_numbers[&tc_manifest_id()], 3);

    // Uninstalling the personalization releases the TC dependency: everything goes.
    let out = p.uninstall(&mut store, &config_suit, None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert!(
        store.data.is_empty(),
        "{:?}",
        store.data.keys().collect::<Vec<_>>()
    );
    assert!(store.owners.is_empty());
    // Rollback protection survives deletion.
    assert_eq!(store.sequence_numbers[&config_suit], 3);
}

#[test]
fn a_shared_dependency_stays_until_every_user_unlinked_it() {
    let trust = vector_trust();
    let device = teep_device();
    let fetcher = teep_fetcher();
    let dec = decryptor();
    let mut p = Processor::new(&PROVIDER, &trust, &device);
    p.fetcher = &fetcher;
    p.decryptor = Some(&dec);
    let mut store = MemoryStorage::new();
    // The TC installed on its own, then the personalization depending on it.
    assert!(
        p.install(&mut store, &hex_file("suit/teep/teep-tc-uri.hex"), None)
            .result
            .is_ok()
    );
    let out = p.install(
        &mut store,
        &hex_file("suit/teep/teep-personalization.hex"),
        None,
    );
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(store.owners(&tc_manifest_id()).unwrap().len(), 2);

    // The TAM no longer needs the TC: it stays, the personalization still uses it.
    let out = p.uninstall(&mut store, &tc_manifest_id(), None);
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert!(read(&store, &tc_component()).is_some());
    assert_eq!(store.owners(&tc_manifest_id()).unwrap().len(), 1);
    // Unlinking the root twice is refused, not a second decrement.
    let out = p.uninstall(&mut store, &tc_manifest_id(), None);
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::NotInstalled(tc_manifest_id())
    );

    // The last user goes: the TC goes too.
    let config_suit = ComponentId::from_strs(&["TEEP-Device", "SecureFS", "config.suit"]);
    assert!(p.uninstall(&mut store, &config_suit, None).result.is_ok());
    assert!(store.data.is_empty());
}

#[test]
fn trust_domains_dependency_fetched_and_integrated() {
    let trust = vector_trust();
    let device = teep_device();
    let mut fetcher = MapFetcher::default();
    fetcher.0.insert(
        "http://example.com/dependent.suit".into(),
        hex_file("suit/trust-domains/td-ex0-dependency.hex"),
    );
    let mut p = Processor::new(&PROVIDER, &trust, &device);
    p.fetcher = &fetcher;
    for f in [
        "suit/trust-domains/td-ex1-process-dependency.hex",
        "suit/trust-domains/td-ex2-integrated-dependency.hex",
    ] {
        let mut store = MemoryStorage::new();
        let out = p.install(&mut store, &hex_file(f), None);
        assert!(out.result.is_ok(), "{f}: {:?}", out.result);
        assert_eq!(
            read(&store, &ComponentId::from_strs(&["00"])).unwrap(),
            b"hello world"
        );
        assert_eq!(
            read(&store, &ComponentId::from_strs(&["10"])).unwrap(),
            b" in multiple trust domains"
        );
    }
}

#[test]
fn tampered_integrated_dependency_fails_its_digest_check() {
    let trust = vector_trust();
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    let out = p.install(
        &mut store,
        &hex_file("suit/negative/td-ex2.integrated-dependency-tampered.hex"),
        None,
    );
    let f = out.result.unwrap_err();
    assert_eq!(f.error, SuitError::ConditionFailed { condition: 3 });
    assert_eq!(f.record.section, Section::DependencyResolution.key());
    assert_eq!(
        hex::encode(&f.record.properties.image_digest.as_ref().unwrap().bytes)[..8],
        *"9856e3e7"
    );
    assert_eq!(store, MemoryStorage::new());
}

#[test]
fn firmware_encryption_manifests_decrypt_to_the_plaintext() {
    let trust = vector_trust();
    let macs = mac_keys();
    let device = teep_device();
    let dec = decryptor();
    let mut fetcher = MapFetcher::default();
    fetcher.0.insert(
        "coaps://example.com/encrypted-firmware".into(),
        hex_file("suit/firmware-encryption/fwenc-ciphertext-aeskw-a128gcm.hex"),
    );
    let mut p = Processor::new(&PROVIDER, &trust, &device);
    p.mac_keys = &macs;
    p.decryptor = Some(&dec);
    p.fetcher = &fetcher;
    let plaintext = hex_file("suit/firmware-encryption/fwenc-plaintext.hex");
    for (f, component) in [
        ("fwenc-manifest-aeskw-write.hex", "plaintext-firmware"),
        ("fwenc-manifest-aeskw-fetch-copy.hex", "plaintext-firmware"),
        ("fwenc-manifest-esdh-write.hex", "decrypted-firmware"),
        ("fwenc-manifest-esdh-dependency.hex", "decrypted-firmware"),
    ] {
        let mut store = MemoryStorage::new();
        let out = p.install(
            &mut store,
            &hex_file(&format!("suit/firmware-encryption/{f}")),
            None,
        );
        assert!(out.result.is_ok(), "{f}: {:?}", out.result);
        assert_eq!(
            read(&store, &ComponentId::from_strs(&[component])).unwrap(),
            plaintext,
            "{f}"
        );
    }
    let mut store = MemoryStorage::new();
    let out = p.install(
        &mut store,
        &hex_file("suit/firmware-encryption/fwenc-manifest-aeskw-slot.hex"),
        None,
    );
    assert!(out.result.is_ok(), "{:?}", out.result);
    assert_eq!(
        read(&store, &ComponentId(vec![vec![0]])).unwrap(),
        plaintext
    );
}

#[test]
fn encrypted_content_without_a_key_fails_with_nothing_changed() {
    let teep = TeepSetup::new();
    let p = teep.processor();
    let mut store = MemoryStorage::new();
    let out = p.install(
        &mut store,
        &hex_file("suit/teep/teep-personalization.hex"),
        None,
    );
    assert_eq!(out.result.unwrap_err().error, SuitError::NoDecryptor);
    assert_eq!(store, MemoryStorage::new());
}

#[test]
fn severed_install_must_be_present_and_intact() {
    let trust = vector_trust();
    let device = DeviceIdentity::default();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    let out = p.install(
        &mut store,
        &hex_file("suit/manifest/manifest-ex2-severable-text.severed.hex"),
        None,
    );
    let f = out.result.unwrap_err();
    assert_eq!(f.error, SuitError::SeveredElementMissing(20));
    assert_eq!(f.error.report_reason(), 9);
    let out = p.install(
        &mut store,
        &hex_file("suit/negative/manifest-ex2.install-element-tampered.hex"),
        None,
    );
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::SeveredElementDigestMismatch(20)
    );
    assert_eq!(store, MemoryStorage::new());
}

use teep_suit::processor::DeviceIdentity;

#[test]
fn core_example_with_placeholder_digest_fails_image_match_in_install() {
    let trust = vector_trust();
    let device = DeviceIdentity {
        vendor_ids: vec![teep_suit::VendorId::Uuid(
            hex::decode("fa6b4a53d5ad5fdfbe9de663e4d41ffe").unwrap(),
        )],
        class_ids: vec![hex::decode("1492af1425695e48bf429b2d51f2ab45").unwrap()],
        ..DeviceIdentity::default()
    };
    let mut fetcher = MapFetcher::default();
    fetcher
        .0
        .insert("http://example.com/file.bin".into(), vec![0; 34768]);
    let mut p = Processor::new(&PROVIDER, &trust, &device);
    p.fetcher = &fetcher;
    let mut store = MemoryStorage::new();
    let out = p.install(
        &mut store,
        &hex_file("suit/manifest/manifest-ex1-download-install.hex"),
        None,
    );
    let f = out.result.unwrap_err();
    assert_eq!(f.error, SuitError::ConditionFailed { condition: 3 });
    assert_eq!(f.record.section, 20);
    assert_eq!(store, MemoryStorage::new());
}

#[test]
fn a_failure_inside_a_dependency_is_located_in_it() {
    let trust = vector_trust();
    let device = teep_device();
    // The TC binary is missing: the dependency's own fetch fails.
    let mut fetcher = MapFetcher::default();
    fetcher.0.insert(
        TC_MANIFEST_URI.to_string(),
        hex_file("suit/teep/teep-tc-uri.hex"),
    );
    let dec = decryptor();
    let mut p = Processor::new(&PROVIDER, &trust, &device);
    p.fetcher = &fetcher;
    p.decryptor = Some(&dec);
    let mut store = MemoryStorage::new();
    let out = p.install(
        &mut store,
        &hex_file("suit/teep/teep-personalization.hex"),
        Some(b"tok"),
    );
    let f = out.result.unwrap_err();
    assert!(matches!(f.error, SuitError::Fetch { .. }), "{:?}", f.error);
    // First (only) dependency of the root, in its install section.
    assert_eq!(f.record.manifest_id, vec![0]);
    assert_eq!(f.record.section, Section::Install.key());
    assert_eq!(store, MemoryStorage::new());
}

#[test]
fn signed_report_verifies_and_carries_the_report() {
    let trust = vector_trust();
    let device = teep_device();
    let p = Processor::new(&PROVIDER, &trust, &device);
    let mut store = MemoryStorage::new();
    let out = p.install(
        &mut store,
        &hex_file("suit/teep/teep-tc-integrated.hex"),
        Some(b"token"),
    );
    let key = teep_cose::PrivateKey::generate(teep_cose::Curve::P256).unwrap();
    let signer =
        teep_cose::CryptoProvider::signer(&PROVIDER, &key, teep_cose::Algorithm::Esp256).unwrap();
    let signed = out.report.sign(signer.as_ref()).unwrap();
    let mut anchors = teep_cose::TrustStore::new();
    anchors.add_key(key.public_key().clone());
    let cx = teep_cose::VerifyContext::new(&PROVIDER, &anchors);
    let verified = teep_cose::verify_sign1(&signed, &cx).unwrap();
    assert_eq!(verified.payload, out.report.to_cbor().unwrap());
}

#[test]
fn a_dependency_by_an_untrusted_signer_is_refused() {
    // The outer manifest's signer is trusted, the dependency's (the example signer) not.
    let mut store = teep_cose::TrustStore::new();
    store.add_key(dependent_signer());
    let trust = teep_suit::trust::TrustAnchors::unscoped(store);
    let device = teep_device();
    let dec = decryptor();
    let mut p = Processor::new(&PROVIDER, &trust, &device);
    p.decryptor = Some(&dec);
    let mut store = MemoryStorage::new();
    let env = hex_file("suit/firmware-encryption/fwenc-manifest-esdh-dependency.hex");
    let out = p.install(&mut store, &env, None);
    assert_eq!(
        out.result.unwrap_err().error,
        SuitError::Authentication(teep_cose::CoseError::UntrustedSigner)
    );
    assert_eq!(store, MemoryStorage::new());
}

/// Serves a fixed image for every URI and remembers what was asked.
struct Recording(std::sync::Mutex<Vec<String>>);

impl teep_suit::processor::Fetcher for Recording {
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, String> {
        self.0.lock().unwrap().push(uri.to_string());
        Ok(vec![0; 16])
    }
}

#[test]
fn ab_images_pick_the_alternative_for_the_device_slot() {
    let trust = vector_trust();
    let env = hex_file("suit/manifest/manifest-ex3-ab-images.hex");
    for (slot, uri) in [
        (0, "http://example.com/file1.bin"),
        (1, "http://example.com/file2.bin"),
    ] {
        let device = DeviceIdentity {
            vendor_ids: vec![teep_suit::VendorId::Uuid(
                hex::decode("fa6b4a53d5ad5fdfbe9de663e4d41ffe").unwrap(),
            )],
            class_ids: vec![hex::decode("1492af1425695e48bf429b2d51f2ab45").unwrap()],
            slots: vec![(ComponentId(vec![vec![0]]), slot)],
            ..DeviceIdentity::default()
        };
        let fetcher = Recording(Default::default());
        let mut p = Processor::new(&PROVIDER, &trust, &device);
        p.fetcher = &fetcher;
        let mut store = MemoryStorage::new();
        let out = p.install(&mut store, &env, None);
        assert_eq!(*fetcher.0.lock().unwrap(), vec![uri.to_string()]);
        // The images are not published (placeholder digests): image-match fails after.
        assert_eq!(
            out.result.unwrap_err().error,
            SuitError::ConditionFailed { condition: 3 }
        );
        // Install records: the passing component-slot check (policy 5: record on success)
        // and the failing image-match (policy 15); the failing slot check of the other
        // alternative asks for no record, neither does the fetch (policy 2, it succeeded).
        let install_records = out
            .report
            .records
            .iter()
            .filter(|e| matches!(e, teep_suit::report::Entry::Record(r) if r.section == Section::Install.key()))
            .count();
        assert_eq!(install_records, 2);
        assert_eq!(store, MemoryStorage::new());
    }
}

// ---- issue 8: reasons, err-codes and command numbers stated once ----

/// Every `SuitError` variant (one value each; `code()` is unique per variant, so the codes
/// 1..=48 prove the table complete) with its report reason and TEEP err-code.
#[test]
fn every_error_maps_onto_its_report_reason_and_teep_err_code() {
    use teep_cose::CoseError;
    use teep_suit::{ReportReason as R, TeepErrCode as T};
    let c = || ComponentId::from_strs(&["c"]);
    let table: Vec<(SuitError, R, T)> = vec![
        (
            SuitError::Malformed {
                what: "x",
                offset: 0,
            },
            R::CborParse,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::UnsupportedMember {
                container: "x",
                key: 9,
            },
            R::ParameterUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::UnsupportedVersion(2),
            R::ConditionFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::UnsupportedDigestAlgorithm(-44),
            R::AlgUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::NoAuthenticationBlock,
            R::Unauthorised,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::UnsupportedAuthenticationBlock(98),
            R::CoseUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::Authentication(CoseError::UntrustedSigner),
            R::Unauthorised,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::ManifestDigestMismatch,
            R::Unauthorised,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::SeveredElementMissing(17),
            R::SeveringUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::SeveredElementDigestMismatch(17),
            R::SeveringUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::Rollback {
                installed: 2,
                offered: 1,
            },
            R::ConditionFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::UnsupportedCommand(99),
            R::CommandUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::UnsupportedParameter(99),
            R::ParameterUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::ComponentIndexOutOfRange(5),
            R::ComponentUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::TooManyComponents(99),
            R::ComponentUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::TooDeep,
            R::OperationFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::MissingParameter(3),
            R::OperationFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::ConditionFailed { condition: 3 },
            R::ConditionFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::TryEachExhausted,
            R::ConditionFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::SoftFailureNotAllowed,
            R::OperationFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::NotAllowedInShared(18),
            R::CommandUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::MissingCompatibilityCheck,
            R::ConditionFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::NotADependency(0),
            R::ComponentUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::DependencyDigestMismatch,
            R::Unauthorised,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::ComponentReferenced(c()),
            R::ComponentUnauthorised,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::NotInstalled(c()),
            R::ComponentUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::NoManifestComponentId,
            R::ComponentUnsupported,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::ComponentEmpty(c()),
            R::OperationFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::Fetch {
                uri: "u".into(),
                reason: "timeout".into(),
            },
            R::OperationFailed,
            T::TemporaryError,
        ),
        (
            SuitError::Decryption(CoseError::BadSignature),
            R::OperationFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::NoDecryptor,
            R::OperationFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::Storage("io".into()),
            R::OperationFailed,
            T::TemporaryError,
        ),
        (
            SuitError::NothingToUpdate,
            R::OperationFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::EmptyComponentIndexList,
            R::CborParse,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::DependencyNotProcessed(c()),
            R::OperationFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::DependencySectionSkipped {
                dependency: c(),
                section: 20,
            },
            R::OperationFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::DependencyLocation {
                prefix: c(),
                manifest_id: c(),
            },
            R::ComponentUnauthorised,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::OutOfScope(c()),
            R::ComponentUnauthorised,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::SignerMismatch(c()),
            R::Unauthorised,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::ForeignComponent(c()),
            R::ComponentUnauthorised,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::StoredManifestMismatch(c()),
            R::OperationFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::OtherManifestFailed(1),
            R::OperationFailed,
            T::ManifestProcessingFailed,
        ),
        // Sealed storage (the device's state failed, not the manifest) and the TAM's
        // report decoder.
        (
            SuitError::StateTampered("index".into()),
            R::OperationFailed,
            T::TemporaryError,
        ),
        (
            SuitError::StateRolledBack {
                found: 1,
                expected: 2,
            },
            R::OperationFailed,
            T::TemporaryError,
        ),
        (
            SuitError::UnsignedReport,
            R::Unauthorised,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::UnneededManifestFailed(0),
            R::OperationFailed,
            T::ManifestProcessingFailed,
        ),
        (
            SuitError::Encode(teep_cbor::write::EncodeError::Entry { index: 0 }),
            R::OperationFailed,
            T::TemporaryError,
        ),
        (
            SuitError::ComponentRejected {
                component: c(),
                reason: "not a module".into(),
            },
            R::ComponentUnsupported,
            T::ManifestProcessingFailed,
        ),
    ];
    let mut codes: Vec<i64> = table.iter().map(|(e, ..)| e.code()).collect();
    codes.sort_unstable();
    assert_eq!(codes, (1..=48).collect::<Vec<_>>(), "one row per variant");
    for (error, reason, err_code) in &table {
        assert_eq!(
            (error.reason(), error.teep_err_code()),
            (*reason, *err_code),
            "{error:?}"
        );
        assert_eq!(error.report_reason(), reason.number());
    }
    // The one refinement inside a variant: an algorithm the COSE layer lacks.
    assert_eq!(
        SuitError::Authentication(CoseError::UnsupportedAlgorithm(-47)).reason(),
        R::AlgUnsupported
    );
    // The draft's numbers (draft-ietf-teep-protocol-26 §6.9, draft-ietf-suit-report).
    assert_eq!(
        (
            T::TemporaryError.number(),
            T::ManifestProcessingFailed.number()
        ),
        (10, 11)
    );
    let numbers: Vec<u8> = R::ALL.iter().map(|r| r.number()).collect();
    assert_eq!(numbers, (0..=12).collect::<Vec<_>>());
    assert_eq!(R::OperationFailed.name(), "operation-failed");
}

/// The capability list is the command enum, and decoding accepts exactly those numbers.
#[test]
fn the_command_capability_list_is_the_command_enum_and_what_decoding_accepts() {
    use teep_suit::command::{COMMANDS, CommandNumber};
    let from_enum: Vec<i64> = CommandNumber::ALL.iter().map(|c| c.number()).collect();
    assert_eq!(COMMANDS, from_enum.as_slice());
    assert!(COMMANDS.windows(2).all(|w| w[0] < w[1]), "ascending");
    // The capability report advertises this list: `report::COMMANDS` is a re-export of it.
    for n in -40..=80i64 {
        assert_eq!(
            CommandNumber::from_number(n).map(CommandNumber::number),
            COMMANDS.contains(&n).then_some(n)
        );
        // [n, 0]: an unsupported number fails as such; a supported one gets past it.
        let mut seq = Vec::new();
        minicbor::Encoder::new(&mut seq)
            .array(2)
            .unwrap()
            .i64(n)
            .unwrap()
            .u8(0)
            .unwrap();
        let unsupported = parse_sequence(&seq, 0) == Err(SuitError::UnsupportedCommand(n));
        assert_eq!(unsupported, !COMMANDS.contains(&n), "command {n}");
    }
}

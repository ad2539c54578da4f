//! What a TAM reads from SUIT: `Envelope::summary` of the envelopes it holds, and
//! `ReceivedReport::decode` of the reports devices send (plain, signed, encrypted), with
//! hand-written CBOR for what a device or an attacker on the path could send instead.
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
use proptest::prelude::*;
use teep_cose::encrypt::{ContentAlgorithm, SUIT_REPORT_ENCRYPTION, encrypt_esdh};
use teep_cose::{CoseError, CryptoProvider, Curve, PrivateKey, TrustStore};
use teep_suit::builder::{self, PayloadLocation};
use teep_suit::command::{Parameters, param};
use teep_suit::model::{Digest, Envelope, ManifestUri, Summary};
use teep_suit::report::{
    Entry, Failure, Protection, ReceivedFailure, ReceivedReport, Record, Report, ReportKeys,
    SystemProperties,
};
use teep_suit::{ComponentId, SuitError};

struct Keys {
    device: PrivateKey,
    trusted: TrustStore,
    tam: PrivateKey,
}

impl Keys {
    fn new() -> Self {
        let device = PrivateKey::generate(Curve::P256).unwrap();
        let mut trusted = TrustStore::new();
        trusted.add_key(device.public_key().clone());
        Self {
            device,
            trusted,
            tam: PrivateKey::generate(Curve::P256).unwrap(),
        }
    }

    fn report_keys(&self) -> ReportKeys<'_> {
        ReportKeys {
            provider: &PROVIDER,
            device: &self.trusted,
            tam: Some(&self.tam),
            require_signature: false,
        }
    }

    fn sign(&self, report: &Report) -> Vec<u8> {
        let signer = PROVIDER
            .signer(&self.device, teep_cose::Algorithm::Esp256)
            .unwrap();
        report.sign(signer.as_ref()).unwrap()
    }
}

fn digest_properties() -> Parameters {
    Parameters {
        image_digest: Some(Digest::sha256([7; 32])),
        image_size: Some(42),
        ..Parameters::default()
    }
}

fn failure_record() -> Record {
    Record {
        manifest_id: vec![1, 0],
        section: 20,
        offset: 9,
        component_index: 2,
        properties: digest_properties(),
    }
}

/// A failed report as our processor makes them: records of both kinds, a failure.
fn failed() -> Report {
    Report {
        reference_uri: Some("https://tam.example/a.suit".into()),
        manifest_digest: Digest::sha256([0xa5; 32]),
        nonce: Some(b"teep-token".to_vec()),
        records: vec![
            Entry::Record(failure_record()),
            Entry::System(SystemProperties {
                component: app("a"),
                properties: digest_properties(),
            }),
        ],
        result: Err(Failure {
            error: SuitError::ConditionFailed { condition: 3 },
            record: failure_record(),
        }),
        capabilities: true,
    }
}

fn succeeded() -> Report {
    Report {
        reference_uri: None,
        nonce: None,
        records: vec![],
        result: Ok(()),
        capabilities: false,
        ..failed()
    }
}

/// What the TAM must read back from `report`, protected as `protection`.
fn expected(report: &Report, protection: Protection) -> ReceivedReport {
    ReceivedReport {
        nonce: report.nonce.clone(),
        manifest_uri: report.reference_uri.clone(),
        manifest_digest: report.manifest_digest.clone(),
        records: report.records.clone(),
        result: report
            .result
            .as_ref()
            .map(|_| ())
            .map_err(|f| ReceivedFailure {
                code: f.error.code(),
                reason: f.error.report_reason().into(),
                record: f.record.clone(),
            }),
        capabilities: None,
        protection,
    }
}

fn plain() -> Protection {
    Protection {
        signer: None,
        encrypted: false,
    }
}

fn decode(bytes: &[u8], keys: &Keys) -> Result<ReceivedReport, SuitError> {
    ReceivedReport::decode(bytes, &keys.report_keys())
}

/// The decoded report without its raw capability report (checked separately).
fn without_capabilities(mut r: ReceivedReport) -> ReceivedReport {
    r.capabilities = None;
    r
}

#[test]
fn plain_signed_and_encrypted_reports_decode_to_what_the_device_reported() {
    let keys = Keys::new();
    let device = Some(keys.device.public_key().clone());
    for report in [failed(), succeeded()] {
        let signed = keys.sign(&report);
        let encrypted = report.encrypt(&PROVIDER, keys.tam.public_key()).unwrap();
        let signed_then_encrypted = encrypt_esdh(
            &PROVIDER,
            keys.tam.public_key(),
            ContentAlgorithm::A128Gcm,
            &signed,
            SUIT_REPORT_ENCRYPTION,
        )
        .unwrap();
        for (bytes, protection) in [
            (report.to_cbor().unwrap(), plain()),
            (
                signed,
                Protection {
                    signer: device.clone(),
                    encrypted: false,
                },
            ),
            (
                encrypted,
                Protection {
                    signer: None,
                    encrypted: true,
                },
            ),
            (
                signed_then_encrypted,
                Protection {
                    signer: device.clone(),
                    encrypted: true,
                },
            ),
        ] {
            let got = decode(&bytes, &keys).unwrap();
            assert_eq!(got.capabilities.is_some(), report.capabilities);
            assert_eq!(
                without_capabilities(got),
                expected(&report, protection.clone())
            );
        }
    }
    // The nonce is exposed; whether it is the token the TAM sent is the caller's check.
    let got = decode(&failed().to_cbor().unwrap(), &keys).unwrap();
    assert_eq!(got.nonce.as_deref(), Some(&b"teep-token"[..]));
    assert_ne!(got.nonce.as_deref(), Some(&b"other-token"[..]));
}

#[test]
fn a_report_from_a_real_install_decodes() {
    let s = TeepSetup::new();
    let mut store = teep_suit::storage::MemoryStorage::new();
    let out = s.processor().install(
        &mut store,
        &hex_file("suit/teep/teep-tc-integrated.hex"),
        Some(b"token"),
    );
    out.result.as_ref().unwrap();
    let keys = Keys::new();
    let got = decode(&out.report.to_cbor().unwrap(), &keys).unwrap();
    assert_eq!(without_capabilities(got), expected(&out.report, plain()));
}

#[test]
fn a_report_signed_by_another_key_or_changed_is_refused() {
    let keys = Keys::new();
    let stranger = Keys::new();
    assert_eq!(
        decode(&stranger.sign(&failed()), &keys).unwrap_err(),
        SuitError::Authentication(CoseError::UntrustedSigner)
    );
    // The signed bytes turned from failure into success (same length: the result's
    // reason 10 becomes 11 in place). The signature no longer verifies.
    let signed = keys.sign(&failed());
    // `7: 10` then the capability report's key 8.
    let reason = signed
        .windows(3)
        .position(|w| w == [0x07, 0x0a, 0x08])
        .unwrap()
        + 1;
    let mut changed = signed.clone();
    changed[reason] = 0x0b;
    assert!(matches!(
        decode(&changed, &keys).unwrap_err(),
        SuitError::Authentication(_)
    ));
    // Encrypted to another TAM, or with no TAM key at hand.
    let elsewhere = failed()
        .encrypt(&PROVIDER, stranger.tam.public_key())
        .unwrap();
    assert_eq!(
        decode(&elsewhere, &keys).unwrap_err(),
        SuitError::Decryption(CoseError::DecryptionFailed)
    );
    let no_tam = ReportKeys {
        tam: None,
        ..keys.report_keys()
    };
    assert_eq!(
        ReceivedReport::decode(&elsewhere, &no_tam).unwrap_err(),
        SuitError::NoDecryptor
    );
}

#[test]
fn a_report_without_the_device_signature_is_refused_when_one_is_required() {
    let keys = Keys::new();
    let strict = ReportKeys {
        require_signature: true,
        ..keys.report_keys()
    };
    let encrypted = failed().encrypt(&PROVIDER, keys.tam.public_key()).unwrap();
    for unsigned in [failed().to_cbor().unwrap(), encrypted] {
        assert_eq!(
            ReceivedReport::decode(&unsigned, &strict).unwrap_err(),
            SuitError::UnsignedReport
        );
    }
    let signed = ReceivedReport::decode(&keys.sign(&failed()), &strict).unwrap();
    assert_eq!(
        signed.protection.signer.as_ref(),
        Some(keys.device.public_key())
    );
}

/// A SUIT_Report map from raw (key, encoded value) entries.
fn report_map(entries: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out);
    e.map(entries.len() as u64).unwrap();
    for (k, v) in entries {
        e.i64(*k).unwrap();
        e.writer_mut().extend_from_slice(v);
    }
    out
}

fn cbor(f: impl FnOnce(&mut Encoder<&mut Vec<u8>>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut Encoder::new(&mut out));
    out
}

/// `[digest]`: a reference without URI.
fn reference() -> Vec<u8> {
    cbor(|e| {
        e.array(1).unwrap().array(2).unwrap();
        e.i64(-16).unwrap().bytes(&[1; 32]).unwrap();
    })
}

/// `[[], 20, 3, 0, {}]` with `members` members (the first five as shown, then uints).
fn record(members: u64, section: i64, properties: &[u8]) -> Vec<u8> {
    cbor(|e| {
        e.array(members).unwrap().array(0).unwrap();
        e.i64(section).unwrap().u8(3).unwrap().u8(0).unwrap();
        e.writer_mut().extend_from_slice(properties);
        for i in 5..members {
            e.u64(i).unwrap();
        }
    })
}

fn records(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = cbor(|e| {
        e.array(items.len() as u64).unwrap();
    });
    for i in items {
        out.extend_from_slice(i);
    }
    out
}

fn failure(members: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = cbor(|e| {
        e.map(members.len() as u64).unwrap();
    });
    for (k, v) in members {
        out.push(*k);
        out.extend_from_slice(v);
    }
    out
}

const TRUE: &[u8] = &[0xf5];
const EMPTY_MAP: &[u8] = &[0xa0];

fn good_record() -> Vec<u8> {
    record(5, 20, EMPTY_MAP)
}

fn good_failure() -> Vec<u8> {
    failure(&[(5, vec![0x0b]), (6, good_record()), (7, vec![0x0a])])
}

#[test]
fn hand_written_reports_decode_and_extensions_are_skipped() {
    let keys = Keys::new();
    let bytes = report_map(&[
        (
            2,
            cbor(|e| {
                e.bytes(b"n").unwrap();
            }),
        ),
        (3, records(&[record(7, 20, EMPTY_MAP)])),
        (4, good_failure()),
        (99, reference()),
        // An extension this decoder does not know.
        (
            100,
            cbor(|e| {
                e.array(1).unwrap().str("x").unwrap();
            }),
        ),
    ]);
    let got = decode(&bytes, &keys).unwrap();
    let r = Record {
        section: 20,
        offset: 3,
        ..Record::default()
    };
    assert_eq!(got.nonce.as_deref(), Some(&b"n"[..]));
    assert_eq!(got.manifest_uri, None);
    assert_eq!(got.records, vec![Entry::Record(r.clone())]);
    assert_eq!(
        got.result,
        Err(ReceivedFailure {
            code: 11,
            reason: 10,
            record: r,
        })
    );
}

#[test]
fn malformed_reports_are_refused_with_their_reason() {
    let keys = Keys::new();
    let ok = || vec![(3, records(&[])), (4, TRUE.to_vec()), (99, reference())];
    let with = |key: i64, value: Vec<u8>| {
        let mut entries: Vec<(i64, Vec<u8>)> =
            ok().into_iter().filter(|(k, _)| *k != key).collect();
        entries.push((key, value));
        report_map(&entries)
    };
    let without = |key: i64| {
        let entries: Vec<_> = ok().into_iter().filter(|(k, _)| *k != key).collect();
        report_map(&entries)
    };
    let mut duplicate = ok();
    duplicate.push((3, records(&[])));
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a record of four members",
            with(3, records(&[record(4, 20, EMPTY_MAP)])),
            "SUIT_Record needs five members",
        ),
        (
            "a negative section",
            with(3, records(&[record(5, -1, EMPTY_MAP)])),
            "suit-record-manifest-section",
        ),
        (
            "properties that are no map",
            with(3, records(&[record(5, 20, &[0x80])])),
            "SUIT_Parameters",
        ),
        (
            "a claim without component",
            with(3, records(&[vec![0xa1, 0x0e, 0x01]])),
            "system-component-id missing",
        ),
        (
            "a record that is a string",
            with(3, records(&[vec![0x61, b'x']])),
            "SUIT_Record",
        ),
        (
            "result false",
            with(4, vec![0xf4]),
            "suit-report-result is true or a map",
        ),
        (
            "a failure without reason",
            with(4, failure(&[(5, vec![0x0b]), (6, good_record())])),
            "suit-report-result lacks code, record or reason",
        ),
        (
            "a failure with an unknown member",
            with(
                4,
                failure(&[
                    (5, vec![0x0b]),
                    (6, good_record()),
                    (7, vec![0x0a]),
                    (8, vec![0]),
                ]),
            ),
            "unknown suit-report-result member",
        ),
        (
            "a failing record of four members",
            with(
                4,
                failure(&[
                    (5, vec![0x0b]),
                    (6, record(4, 20, EMPTY_MAP)),
                    (7, vec![0x0a]),
                ]),
            ),
            "SUIT_Record needs five members",
        ),
        (
            "a reference of three members",
            with(99, vec![0x83, 0x60, 0x80, 0x80]),
            "SUIT_Reference needs [? uri, digest]",
        ),
        (
            "no reference",
            without(99),
            "SUIT_Report lacks reference, records or result",
        ),
        (
            "no records",
            without(3),
            "SUIT_Report lacks reference, records or result",
        ),
        (
            "no result",
            without(4),
            "SUIT_Report lacks reference, records or result",
        ),
        (
            "a repeated key",
            report_map(&duplicate),
            "duplicate map key",
        ),
        (
            "a text key",
            [&[0xa4, 0x61, b'k', 0x00][..], &report_map(&ok())[1..]].concat(),
            "SUIT_Report key",
        ),
        (
            "trailing bytes",
            [report_map(&ok()), vec![0x00]].concat(),
            "bytes after the SUIT_Report",
        ),
        (
            "an indefinite map",
            [&[0xbf][..], &report_map(&ok())[1..], &[0xff]].concat(),
            "SUIT_Report",
        ),
    ];
    // Values the decoder skips (capability report, extensions) may not repeat keys either.
    let repeated = vec![0xa2, 0x01, 0x00, 0x01, 0x00];
    cases.push((
        "a capability report with a repeated key",
        with(8, repeated.clone()),
        "SUIT_Report is not well-formed CBOR",
    ));
    cases.push((
        "an extension with a repeated key",
        with(100, repeated),
        "SUIT_Report is not well-formed CBOR",
    ));
    for (name, bytes, what) in cases {
        match decode(&bytes, &keys) {
            Err(SuitError::Malformed { what: got, .. }) => assert_eq!(got, what, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    // The well-formed base decodes, so each case fails for its own change.
    assert!(decode(&report_map(&ok()), &keys).is_ok());
    // A parameter this implementation does not know, inside a record.
    assert_eq!(
        decode(
            &with(3, records(&[record(5, 20, &[0xa1, 0x18, 0x63, 0x00])])),
            &keys
        )
        .unwrap_err(),
        SuitError::UnsupportedParameter(99)
    );
    // A COSE_Mac0 or another COSE structure is not a report container we take.
    let mac0 = [&[0xd1][..], &[0x84, 0x40, 0xa0], &[0x41, 0xa0], &[0x40]].concat();
    assert_eq!(
        decode(&mac0, &keys).unwrap_err(),
        SuitError::UnsupportedAuthenticationBlock(17)
    );
}

#[test]
fn system_property_claims_keep_their_component_and_parameters() {
    let keys = Keys::new();
    // {0: ["a"], 14: 42, 3: bstr(digest)}: parameters in any order after the component.
    let digest = Digest::sha256([7; 32]).to_cbor();
    let claim = cbor(|e| {
        e.map(3).unwrap().u8(0).unwrap();
        e.array(1).unwrap().bytes(b"a").unwrap();
        e.u8(param::IMAGE_SIZE).unwrap().u8(42).unwrap();
        e.u8(param::IMAGE_DIGEST).unwrap().bytes(&digest).unwrap();
    });
    let bytes = report_map(&[
        (3, records(&[claim])),
        (4, TRUE.to_vec()),
        (99, reference()),
    ]);
    assert_eq!(
        decode(&bytes, &keys).unwrap().records,
        vec![Entry::System(SystemProperties {
            component: ComponentId::from_strs(&["a"]),
            properties: digest_properties(),
        })]
    );
}

#[test]
fn the_summary_names_id_sequence_number_digest_and_where_the_uri_came_from() {
    let mut with_reference = spec("a", 5, b"tc");
    with_reference.manifest_component_id = Some(app_manifest("a"));
    let env = builder::build(&with_reference, &PROVIDER).unwrap().envelope;
    let decoded = Envelope::decode(&env).unwrap();
    assert_eq!(
        decoded.summary().unwrap(),
        Summary {
            manifest_component_id: Some(app_manifest("a")),
            sequence_number: 5,
            digest: decoded.authentication.digest.clone(),
            uri: Some(ManifestUri::Reference("https://tam.example/a.suit".into())),
            components: vec![app("a")],
            dependencies: vec![],
        }
    );
    // No reference URI: the payload URI the install sequence sets.
    let mut fetched = spec("b", 2, b"tc");
    fetched.reference_uri = None;
    fetched.location = PayloadLocation::Uri("https://cdn.example/b.ta".into());
    let env = builder::build(&fetched, &PROVIDER).unwrap().envelope;
    let summary = Envelope::decode(&env).unwrap().summary().unwrap();
    assert_eq!(
        summary.uri,
        Some(ManifestUri::Install("https://cdn.example/b.ta".into()))
    );
    // The builder names the manifest after its component.
    assert_eq!(summary.manifest_component_id, Some(app_manifest("b")));
    // An integrated payload's URI is its fragment-only key in the envelope, as set.
    let mut integrated = spec("c", 1, b"tc");
    integrated.reference_uri = None;
    let env = builder::build(&integrated, &PROVIDER).unwrap().envelope;
    assert_eq!(
        Envelope::decode(&env).unwrap().summary().unwrap().uri,
        Some(ManifestUri::Install("#tc".into()))
    );
}

#[test]
fn the_summary_names_what_the_manifest_writes_and_its_dependencies() {
    // From the builder: a dependent names its dependency by the dependency's manifest ID.
    let dependency = builder::build(&spec("b", 1, b"lib"), &PROVIDER)
        .unwrap()
        .envelope;
    let mut dependent = spec("a", 1, b"tc");
    dependent.dependencies = vec![builder::DependencySpec {
        envelope: dependency,
    }];
    let env = builder::build(&dependent, &PROVIDER).unwrap().envelope;
    let summary = Envelope::decode(&env).unwrap().summary().unwrap();
    assert_eq!(summary.components, vec![app("a")]);
    assert_eq!(summary.dependencies, vec![app_manifest("b")]);

    // By hand: a dependency inside the components list (no prefix: the listed ID), one
    // beyond it with a prefix, one beyond it without (not addressable: left out).
    let id = |segments: &[&[u8]]| ComponentId(segments.iter().map(|s| s.to_vec()).collect());
    let common = cbor(|e| {
        e.map(2).unwrap();
        e.u8(1).unwrap().map(3).unwrap();
        e.u8(1).unwrap().map(0).unwrap();
        e.u8(5).unwrap().map(1).unwrap().u8(1).unwrap();
        e.array(2)
            .unwrap()
            .bytes(b"dep")
            .unwrap()
            .bytes(b"b")
            .unwrap();
        e.u8(7).unwrap().map(0).unwrap();
        e.u8(2).unwrap().array(3).unwrap();
        e.array(1).unwrap().bytes(b"a").unwrap();
        e.array(2)
            .unwrap()
            .bytes(b"dep")
            .unwrap()
            .bytes(b"a")
            .unwrap();
        e.array(1).unwrap().bytes(&[0xff]).unwrap();
    });
    let manifest = cbor(|e| {
        e.map(3).unwrap();
        e.u8(1).unwrap().u8(1).unwrap();
        e.u8(2).unwrap().u8(3).unwrap();
        e.u8(3).unwrap().bytes(&common).unwrap();
    });
    let env = builder::unsigned_envelope(&manifest, &[], &PROVIDER).unwrap();
    let summary = Envelope::decode(&env).unwrap().summary().unwrap();
    assert_eq!(summary.components, vec![id(&[b"a"]), id(&[&[0xff]])]);
    assert_eq!(
        summary.dependencies,
        vec![id(&[b"dep", b"a"]), id(&[b"dep", b"b"])]
    );
}

/// A manifest by hand: `install` under key 20, present or severed.
fn hand_envelope(install: &[u8], severed: bool) -> Vec<u8> {
    let common = cbor(|e| {
        e.map(1).unwrap().u8(2).unwrap();
        e.array(1).unwrap().array(1).unwrap().bytes(b"x").unwrap();
    });
    let install_digest = Digest::sha256(PROVIDER.sha256(&cbor(|e| {
        e.bytes(install).unwrap();
    })));
    let manifest = cbor(|e| {
        e.map(4).unwrap();
        e.u8(1).unwrap().u8(1).unwrap();
        e.u8(2).unwrap().u8(9).unwrap();
        e.u8(3).unwrap().bytes(&common).unwrap();
        e.u8(20).unwrap();
        if severed {
            e.array(2).unwrap().i64(-16).unwrap();
            e.bytes(&install_digest.bytes).unwrap();
        } else {
            e.bytes(install).unwrap();
        }
    });
    let env = builder::unsigned_envelope(&manifest, &[], &PROVIDER).unwrap();
    if !severed {
        return env;
    }
    let d = Envelope::decode(&env).unwrap();
    let mut out = vec![0xa3, 0x02];
    out.extend_from_slice(d.authentication_bstr);
    out.push(0x03);
    out.extend_from_slice(d.manifest_bstr);
    out.push(0x14);
    out.extend_from_slice(&cbor(|e| {
        e.bytes(install).unwrap();
    }));
    out
}

/// `[set-component-index 0]`
fn plain_branch() -> Seq {
    Seq::new().cmd(12, |e| {
        e.u8(0).unwrap();
    })
}

fn plain_branch_bytes() -> Vec<u8> {
    plain_branch().bytes()
}

#[test]
fn the_install_uri_is_found_in_nested_and_severed_sequences() {
    // try-each [ [set-component-index 0], [override {uri}, fetch] ]
    let uri_branch = Seq::new()
        .cmd(20, |e| {
            e.map(1).unwrap().u8(param::URI).unwrap();
            e.str("https://x/nested").unwrap();
        })
        .rep(21);
    let plain_branch = plain_branch();
    let install = Seq::new()
        .cmd(15, |e| {
            e.array(2).unwrap();
            e.bytes(&plain_branch.bytes()).unwrap();
            e.bytes(&uri_branch.bytes()).unwrap();
        })
        .bytes();
    for severed in [false, true] {
        let env = hand_envelope(&install, severed);
        let summary = Envelope::decode(&env).unwrap().summary().unwrap();
        assert_eq!(
            summary.uri,
            Some(ManifestUri::Install("https://x/nested".into())),
            "severed: {severed}"
        );
        assert_eq!(summary.sequence_number, 9);
        assert_eq!(summary.manifest_component_id, None);
    }
    // No URI parameter at all: none.
    let env = hand_envelope(&plain_branch_bytes(), false);
    assert_eq!(Envelope::decode(&env).unwrap().summary().unwrap().uri, None);
    // A severed install the envelope does not carry gives no URI, not an error.
    let env = hand_envelope(&install, true);
    let d = Envelope::decode(&env).unwrap();
    let mut cut = vec![0xa2, 0x02];
    cut.extend_from_slice(d.authentication_bstr);
    cut.push(0x03);
    cut.extend_from_slice(d.manifest_bstr);
    assert_eq!(Envelope::decode(&cut).unwrap().summary().unwrap().uri, None);
    // A malformed install sequence is an error, not a silent "no URI".
    let env = hand_envelope(&[0x81, 0x01], false);
    assert!(matches!(
        Envelope::decode(&env).unwrap().summary().unwrap_err(),
        SuitError::Malformed { .. }
    ));
}

fn keys() -> &'static Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(Keys::new)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_reports_never_panic(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        let keys = keys();
        prop_assert!(ReceivedReport::decode(&input, &keys.report_keys()).is_err());
    }

    #[test]
    fn truncated_reports_are_refused(cut in 0usize..100) {
        let keys = keys();
        let bytes = failed().to_cbor().unwrap();
        let cut = cut.min(bytes.len() - 1);
        prop_assert!(decode(&bytes[..cut], keys).is_err());
    }
}

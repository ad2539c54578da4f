//! Encrypted SUIT reports and Evidence (draft-ietf-teep-protocol §12) as the TAM opens them,
//! with the TAM's key, so the inner parsers are reached. The first byte picks the mode:
//! 0: the rest is a SUIT_Report plaintext, encrypted here under "SUIT Report Encryption",
//! then `teep_suit::report::decrypt_report`; 1: the rest is an EAT claims-set, signed by the
//! device key and encrypted here under "EAT Encryption", then `decrypt_evidence` and
//! `verify_evidence`; 2: the rest is the COSE_Encrypt itself (an attacker's outer layers)
//! for both decryptors. Bit 7 first asks for A128CTR, which an attached ciphertext may no
//! longer use (`encrypt_esdh` must refuse it), then encrypts under A128GCM as usual.
//!
//! Asserts: no panic; A128CTR is refused for attached ciphertexts; what decrypts is exactly
//! what was encrypted; the TAM's own key always opens it; a report never opens as Evidence nor Evidence as a report; a
//! report `decrypt_report` accepts is well-formed CBOR; Evidence that decrypts verifies to
//! exactly the claims `EatClaims::from_cbor` decodes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use teep_attest::{EatClaims, EvidenceError, decrypt_evidence, verify_evidence};
use teep_cose::encrypt::{ContentAlgorithm, EAT_ENCRYPTION, SUIT_REPORT_ENCRYPTION, encrypt_esdh};
use teep_cose::{AwsLcProvider, CoseError, SignOptions, VerifyContext};
use teep_fuzz::{TamAndDevice, tam_and_device};
use teep_suit::report::decrypt_report;

static PROVIDER: AwsLcProvider = AwsLcProvider;

type Fixture = TamAndDevice;

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| tam_and_device(&PROVIDER))
}

/// Encrypts to the TAM under A128GCM; with `ctr_first`, first checks that A128CTR (no
/// AEAD) is refused for this attached ciphertext.
fn encrypt(f: &Fixture, ctr_first: bool, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
    let with = |alg| encrypt_esdh(&PROVIDER, f.tam.public_key(), alg, plaintext, context);
    if ctr_first {
        assert!(
            matches!(
                with(ContentAlgorithm::A128Ctr),
                Err(CoseError::UnauthenticatedContent { .. })
            ),
            "A128CTR accepted for an attached ciphertext"
        );
    }
    with(ContentAlgorithm::A128Gcm).expect("encrypts")
}

/// A report that `decrypt_report` returns must be what was sealed and well-formed CBOR.
fn check_report(f: &Fixture, encrypted: &[u8], sealed: Option<&[u8]>) {
    if let Ok(report) = decrypt_report(&PROVIDER, encrypted, &f.tam) {
        if let Some(sealed) = sealed {
            assert_eq!(report, sealed, "decrypted report differs");
        }
        assert_eq!(
            teep_cbor::check(&report, &teep_cbor::Profile::TEEP),
            Ok(()),
            "accepted report is not well-formed"
        );
    }
}

/// Evidence that decrypts verifies to the claims the claims parser decodes.
fn check_evidence(f: &Fixture, encrypted: &[u8]) -> Result<Vec<u8>, EvidenceError> {
    let signed = decrypt_evidence(&PROVIDER, encrypted, &f.tam)?;
    let cx = VerifyContext::new(&PROVIDER, &f.trust);
    if let Ok((claims, verified)) = verify_evidence(&signed, &cx) {
        assert_eq!(
            Ok(&claims),
            EatClaims::from_cbor(&verified.payload).as_ref(),
            "verified claims differ from the decoded payload"
        );
    }
    Ok(signed)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let ctr_first = mode & 0x80 != 0;
    match mode & 0x7f {
        0 => {
            let encrypted = encrypt(f, ctr_first, rest, SUIT_REPORT_ENCRYPTION);
            check_report(f, &encrypted, Some(rest));
            let opened = teep_cose::encrypt::decrypt(
                &PROVIDER,
                &encrypted,
                None,
                &[teep_cose::encrypt::DecryptionKey::EcdhEs(f.tam.clone())],
                SUIT_REPORT_ENCRYPTION,
            );
            assert_eq!(opened.as_deref().map(Vec::as_slice), Ok(rest));
            assert!(
                decrypt_evidence(&PROVIDER, &encrypted, &f.tam).is_err(),
                "a report opened as Evidence"
            );
        }
        1 => {
            let opts = SignOptions {
                tagged: false,
                ..SignOptions::default()
            };
            let signed = teep_cose::sign1(f.device.as_ref(), rest, &opts).expect("signs");
            let encrypted = encrypt(f, ctr_first, &signed, EAT_ENCRYPTION);
            match check_evidence(f, &encrypted) {
                Ok(opened) => assert_eq!(opened, signed, "decrypted Evidence differs"),
                Err(e) => panic!("own Evidence did not open: {e:?}"),
            }
            assert!(
                decrypt_report(&PROVIDER, &encrypted, &f.tam).is_err(),
                "Evidence opened as a report"
            );
        }
        2 => {
            check_report(f, rest, None);
            let _ = check_evidence(f, rest);
        }
        _ => {}
    }
});

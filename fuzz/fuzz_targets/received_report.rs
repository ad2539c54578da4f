//! SUIT reports as a TAM receives them: `teep_suit::report::ReceivedReport::decode`.
//! The first byte is the mode. Low two bits: (0) the rest as it came; (1) the rest is a
//! SUIT_Report the harness signs with the device key (COSE_Sign1); (2) a SUIT_Report the
//! harness encrypts to the TAM key; (3) signed, then encrypted. Bit 2: signed by a key the
//! TAM does not know; bit 3: tagged COSE_Sign1; bit 4: `require_signature`; bit 5: the TAM
//! has no decryption key.
//!
//! Asserts: no panic; an accepted report names the protection the harness applied (the
//! device key as signer exactly when signed by it, `encrypted` exactly when encrypted);
//! nothing signed by an unknown key, nothing unsigned under `require_signature` and nothing
//! encrypted without a TAM key is accepted; an accepted SUIT_Report is well-formed TEEP
//! CBOR; the protection layers change nothing else (the same plaintext decoded as it
//! came gives the same report).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use teep_cose::encrypt::{ContentAlgorithm, SUIT_REPORT_ENCRYPTION, encrypt_esdh};
use teep_cose::{Algorithm, AwsLcProvider, CryptoProvider, Curve, PrivateKey, SignOptions, Signer};
use teep_fuzz::{TamAndDevice, tam_and_device};
use teep_suit::SuitError;
use teep_suit::report::{Protection, ReceivedReport, ReportKeys};

static PROVIDER: AwsLcProvider = AwsLcProvider;

struct Fixture {
    keys: TamAndDevice,
    stranger: Box<dyn Signer>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let stranger = PrivateKey::from_bytes(Curve::Ed25519, &[0x99; 32]).expect("key");
        Fixture {
            keys: tam_and_device(&PROVIDER),
            stranger: PROVIDER
                .signer(&stranger, Algorithm::Ed25519)
                .expect("stranger signer"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, report)) = data.split_first() else {
        return;
    };
    let Fixture {
        keys: f,
        stranger: other,
    } = fixture();
    let (sign, encrypt) = (mode & 1 != 0, mode & 2 != 0);
    let stranger = mode & 4 != 0;
    let keys = ReportKeys {
        provider: &PROVIDER,
        device: &f.trust,
        tam: (mode & 0x20 == 0).then_some(&f.tam),
        require_signature: mode & 0x10 != 0,
    };

    let mut wire = report.to_vec();
    if sign {
        let signer = if stranger { other } else { &f.device };
        let opts = SignOptions {
            tagged: mode & 8 != 0,
            ..SignOptions::default()
        };
        wire = teep_cose::sign1(signer.as_ref(), &wire, &opts).expect("signs");
    }
    if encrypt {
        wire = encrypt_esdh(
            &PROVIDER,
            f.tam.public_key(),
            ContentAlgorithm::A128Gcm,
            &wire,
            SUIT_REPORT_ENCRYPTION,
        )
        .expect("encrypts");
    }

    let decoded = ReceivedReport::decode(&wire, &keys);
    if encrypt && keys.tam.is_none() {
        assert!(
            matches!(decoded, Err(SuitError::NoDecryptor)),
            "encrypted report without a TAM key: {decoded:?}"
        );
    } else if sign && stranger {
        assert!(
            matches!(decoded, Err(SuitError::Authentication(_))),
            "a report signed by an unknown key: {decoded:?}"
        );
    }
    let Ok(received) = decoded else {
        return;
    };
    if keys.require_signature {
        assert!(
            received.protection.signer.is_some(),
            "unsigned report accepted"
        );
    }
    if mode & 3 == 0 {
        // As it came: whatever the protection says, its SUIT_Report is the inner payload.
        return;
    }
    assert_eq!(
        received.protection,
        Protection {
            signer: sign.then(|| f.device.public_key().clone()),
            encrypted: encrypt,
        },
        "protection differs from what was applied"
    );
    assert_eq!(
        teep_cbor::check(report, &teep_cbor::Profile::TEEP),
        Ok(()),
        "accepted SUIT_Report is not well-formed"
    );
    let plain_keys = ReportKeys {
        require_signature: false,
        ..keys
    };
    let plain = ReceivedReport::decode(report, &plain_keys).expect("the plaintext decodes alone");
    assert_eq!(
        ReceivedReport {
            protection: received.protection.clone(),
            ..plain
        },
        received,
        "protection changed the decoded report"
    );
});

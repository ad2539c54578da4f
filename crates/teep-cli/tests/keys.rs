//! `teep keys` end to end: the built binary in temporary directories.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
use std::path::Path;

mod common;
use common::{teep, vector};

use teep_cose::{
    PrivateKey, PublicKey, SignOptions, TrustStore, VerifyContext, certificates_from_pem,
    default_provider, sign1, verify_sign1,
};

const APPENDIX_E_THUMBPRINT: &str =
    "ca9e35f23b2b525fb4fc83f512b0dcac4ac29e457e873a5d6a7313f71690b33c";

/// Runs `teep keys ARGS`, asserts success and returns stdout.
fn teep_keys(args: &[&dyn AsRef<std::ffi::OsStr>]) -> String {
    let output = teep()
        .arg("keys")
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "teep keys failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn generate_prints_the_thumbprint_of_both_files() {
    let dir = tempfile::tempdir().unwrap();
    for alg in ["esp256", "ed25519", "es384"] {
        let key = dir.path().join(format!("{alg}.cose_key"));
        let printed = teep_keys(&[&"generate", &"--alg", &alg, &"--out", &key]);
        let printed = printed.trim();
        assert_eq!(printed.len(), 64, "{alg}: {printed}");
        assert_eq!(teep_keys(&[&"thumbprint", &key]).trim(), printed);
        let public = dir.path().join(format!("{alg}.cose_key.pub"));
        assert_eq!(teep_keys(&[&"thumbprint", &public]).trim(), printed);
        // The files are COSE_Keys: private with d, public without.
        let private = PrivateKey::from_cose_key_bytes(&std::fs::read(&key).unwrap()).unwrap();
        let public = PublicKey::from_cose_key_bytes(&std::fs::read(&public).unwrap()).unwrap();
        assert_eq!(private.public_key(), &public);
        assert!(PrivateKey::from_cose_key_bytes(&public.to_cose_key_bytes()).is_err());
    }
}

/// Symmetric keys: one owner-only COSE_Key {kty 4, alg, k} of the algorithm's size, no
/// `.pub`, nothing printed; two keys differ.
#[test]
fn generate_symmetric_keys() {
    use teep_cose::coset::{CborSerializable as _, CoseKey, KeyType, Label, iana};
    let dir = tempfile::tempdir().unwrap();
    for (alg, cose_alg, len) in [
        ("hmac256", iana::Algorithm::HMAC_256_256, 32),
        ("a128kw", iana::Algorithm::A128KW, 16),
    ] {
        let mut ks = Vec::new();
        for n in 0..2 {
            let path = dir.path().join(format!("{alg}-{n}"));
            assert_eq!(
                teep_keys(&[&"generate", &"--alg", &alg, &"--out", &path]),
                ""
            );
            assert!(!dir.path().join(format!("{alg}-{n}.pub")).exists());
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{alg}");
            }
            let key = CoseKey::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            assert_eq!(key.kty, KeyType::Assigned(iana::KeyType::Symmetric));
            assert_eq!(
                key.alg,
                Some(teep_cose::coset::Algorithm::Assigned(cose_alg))
            );
            let k = key
                .params
                .iter()
                .find(|(l, _)| *l == Label::Int(-1))
                .and_then(|(_, v)| v.as_bytes().cloned())
                .unwrap();
            assert_eq!(k.len(), len, "{alg}");
            ks.push(k);
        }
        assert_ne!(ks[0], ks[1], "{alg}");
    }
}

#[test]
fn import_pem_of_the_appendix_e_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("signer.cose_key");
    let pem = vector("teep/keys/suit_signer_p256.priv.pem");
    let printed = teep_keys(&[&"import-pem", &pem, &"--out", &out]);
    assert_eq!(printed.trim(), APPENDIX_E_THUMBPRINT);
    assert_eq!(
        teep_keys(&[&"thumbprint", &out]).trim(),
        APPENDIX_E_THUMBPRINT
    );
    assert!(dir.path().join("signer.cose_key.pub").exists());
    // Public PEM, PEM read directly, and the hex COSE_Key of the same key.
    let pub_out = dir.path().join("public.cose_key");
    let pub_pem = vector("teep/keys/suit_signer_p256.pub.pem");
    assert_eq!(
        teep_keys(&[&"import-pem", &pub_pem, &"--out", &pub_out]).trim(),
        APPENDIX_E_THUMBPRINT
    );
    assert!(!dir.path().join("public.cose_key.pub").exists());
    for file in [
        pem,
        pub_pem,
        vector("suit/keys/suit-example-signer-p256.cose-key-public.hex"),
    ] {
        assert_eq!(
            teep_keys(&[&"thumbprint", &file]).trim(),
            APPENDIX_E_THUMBPRINT
        );
    }
}

#[test]
fn a_certified_key_verifies_with_the_ca_as_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    teep_keys(&[
        &"ca", &"--out", &ca_dir, &"--name", &"test CA", &"--days", &"30",
    ]);
    for alg in ["esp256", "ed25519"] {
        let key = dir.path().join(format!("{alg}.cose_key"));
        teep_keys(&[&"generate", &"--alg", &alg, &"--out", &key]);
        let cert = dir.path().join(format!("{alg}.pem"));
        let public = dir.path().join(format!("{alg}.cose_key.pub"));
        teep_keys(&[
            &"certify", &"--ca", &ca_dir, &public, &"--out", &cert, &"--days", &"10",
        ]);
        // The certificate names the key.
        assert_eq!(
            teep_keys(&[&"thumbprint", &cert]),
            teep_keys(&[&"thumbprint", &key])
        );
        let private = PrivateKey::from_any(&std::fs::read(&key).unwrap()).unwrap();
        let signer = default_provider()
            .signer(&private, private.default_algorithm())
            .unwrap();
        let opts = SignOptions {
            x5chain: certificates_from_pem(&read_text(&cert)).unwrap(),
            ..SignOptions::default()
        };
        let cose = sign1(signer.as_ref(), b"payload", &opts).unwrap();
        let mut trust = TrustStore::new();
        trust
            .add_ca_pem(&read_text(&ca_dir.join("ca.pem")))
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let cx = VerifyContext {
            now: Some(now),
            ..VerifyContext::new(default_provider(), &trust)
        };
        let verified = verify_sign1(&cose, &cx).unwrap();
        assert_eq!(&verified.signer, private.public_key());
    }
}

#[test]
fn unreadable_keys_fail_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a key at all").unwrap();
    let output = teep()
        .args(["keys", "thumbprint"])
        .arg(&junk)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("junk"));
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// A PKCS#8 key under the SEC1 label `EC PRIVATE KEY` (what libcsuit ships) is read, and
/// every command that takes it says so on stderr; a correctly labelled key says nothing.
#[test]
fn a_mislabelled_pem_key_is_used_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let pem = read_text(Path::new(&vector(
        "suit/keys/suit-example-signer-p256.private.pem",
    )));
    assert!(pem.contains("-----BEGIN PRIVATE KEY-----"));
    let mislabelled = dir.path().join("mislabelled.pem");
    std::fs::write(&mislabelled, pem.replace("PRIVATE KEY", "EC PRIVATE KEY")).unwrap();
    let out_key = dir.path().join("k.cose_key");
    let unsigned = dir.path().join("u.suit");
    std::fs::write(dir.path().join("p.bin"), b"payload").unwrap();
    let create = teep()
        .args([
            "suit",
            "create",
            "--component-id",
            "D",
            "--component-id",
            "x.bin",
            "--seq",
            "1",
        ])
        .arg("--payload")
        .arg(dir.path().join("p.bin"))
        .arg("--out")
        .arg(&unsigned)
        .output()
        .unwrap();
    assert!(create.status.success());
    let signed = dir.path().join("s.suit");
    let commands: [Vec<&dyn AsRef<std::ffi::OsStr>>; 3] = [
        vec![&"keys", &"import-pem", &mislabelled, &"--out", &out_key],
        vec![&"keys", &"thumbprint", &mislabelled],
        vec![
            &"suit",
            &"sign",
            &"--key",
            &mislabelled,
            &unsigned,
            &"--out",
            &signed,
        ],
    ];
    for args in &commands {
        let out = teep()
            .args(args.iter().map(|a| a.as_ref()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("warning")
                && stderr.contains("mislabelled.pem")
                && stderr.contains("PKCS#8"),
            "{stderr}"
        );
        if args[1].as_ref() != "sign" {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                APPENDIX_E_THUMBPRINT
            );
        }
    }
    let good = teep()
        .args(["keys", "thumbprint"])
        .arg(vector("suit/keys/suit-example-signer-p256.private.pem"))
        .output()
        .unwrap();
    assert!(good.status.success());
    assert_eq!(String::from_utf8_lossy(&good.stderr), "");
}

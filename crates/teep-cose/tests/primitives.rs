//! Provider primitives against published test vectors, run for every compiled provider,
//! and agreement between providers on random inputs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
mod common;

use common::providers;
use teep_cose::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn sha256_and_hmac_match_published_vectors() {
    for p in providers() {
        assert_eq!(
            p.sha256(b"abc").to_vec(),
            h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            "{}",
            p.name()
        );
        // RFC 4231 test case 1.
        assert_eq!(
            p.hmac_sha256(&[0x0b; 20], b"Hi There").to_vec(),
            h("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            "{}",
            p.name()
        );
    }
}

#[test]
fn hkdf_matches_rfc5869_case_1() {
    for p in providers() {
        let mut okm = [0u8; 42];
        p.hkdf_sha256(
            &[0x0b; 22],
            &h("000102030405060708090a0b0c"),
            &h("f0f1f2f3f4f5f6f7f8f9"),
            &mut okm,
        )
        .unwrap();
        assert_eq!(
            okm.to_vec(),
            h(
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
            ),
            "{}",
            p.name()
        );
        let mut too_long = vec![0u8; 255 * 32 + 1];
        assert!(matches!(
            p.hkdf_sha256(b"ikm", b"", b"", &mut too_long),
            Err(CoseError::Crypto(_))
        ));
    }
}

#[test]
fn aes_key_wrap_matches_rfc3394() {
    for p in providers() {
        let kek = h("000102030405060708090A0B0C0D0E0F");
        let key = h("00112233445566778899AABBCCDDEEFF");
        let wrapped = p.aes_kw_wrap(&kek, &key).unwrap();
        assert_eq!(
            wrapped,
            h("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"),
            "{}",
            p.name()
        );
        assert_eq!(p.aes_kw_unwrap(&kek, &wrapped).unwrap().to_vec(), key);
        // RFC 3394 §4.6: 256-bit KEK, 256-bit key.
        let kek256 = h("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        let key256 = h("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
        assert_eq!(
            p.aes_kw_wrap(&kek256, &key256).unwrap(),
            h("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
        );
        let mut tampered = wrapped.clone();
        tampered[3] ^= 1;
        assert!(matches!(
            p.aes_kw_unwrap(&kek, &tampered),
            Err(CoseError::Crypto(_))
        ));
        assert!(matches!(
            p.aes_kw_unwrap(&kek, &[0; 4]),
            Err(CoseError::Crypto(_))
        ));
        assert!(matches!(
            p.aes_kw_wrap(&[0; 24], &key),
            Err(CoseError::Crypto(_))
        ));
    }
}

#[test]
fn aes_ctr_matches_sp800_38a() {
    for p in providers() {
        // SP 800-38A F.5.1 (CTR-AES128.Encrypt), first two blocks.
        let mut data = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let iv = h("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        p.aes_ctr_apply(&h("2b7e151628aed2a6abf7158809cf4f3c"), &iv, &mut data)
            .unwrap();
        assert_eq!(
            data,
            h("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"),
            "{}",
            p.name()
        );
        // F.5.5 (CTR-AES256.Encrypt), first block.
        let mut block = h("6bc1bee22e409f96e93d7e117393172a");
        let key256 = h("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        p.aes_ctr_apply(&key256, &iv, &mut block).unwrap();
        assert_eq!(block, h("601ec313775789a5b7a7f504bbf3d228"));
        assert!(matches!(
            p.aes_ctr_apply(&key256, &iv[..8], &mut block),
            Err(CoseError::Crypto(_))
        ));
    }
}

#[test]
fn aes_gcm_matches_published_vectors() {
    for p in providers() {
        // McGrew & Viega GCM spec, test case 2 (AES-128, zero key, zero IV).
        let sealed = p.aes_gcm_seal(&[0; 16], &[0; 12], b"", &[0; 16]).unwrap();
        assert_eq!(
            sealed,
            h("0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf"),
            "{}",
            p.name()
        );
        assert_eq!(
            p.aes_gcm_open(&[0; 16], &[0; 12], b"", &sealed).unwrap(),
            vec![0; 16]
        );
        // With AAD, AES-256: round trip and AAD binding.
        let sealed = p
            .aes_gcm_seal(&[7; 32], &[1; 12], b"aad", b"secret")
            .unwrap();
        assert_eq!(
            p.aes_gcm_open(&[7; 32], &[1; 12], b"aad", &sealed).unwrap(),
            b"secret"
        );
        assert!(matches!(
            p.aes_gcm_open(&[7; 32], &[1; 12], b"other", &sealed),
            Err(CoseError::Crypto(_))
        ));
        assert!(matches!(
            p.aes_gcm_seal(&[7; 32], &[1; 8], b"", b""),
            Err(CoseError::Crypto(_))
        ));
    }
}

#[test]
fn ecdh_is_symmetric_and_providers_agree() {
    let a = PrivateKey::generate(Curve::P256).unwrap();
    let b = PrivateKey::generate(Curve::P256).unwrap();
    let mut secrets = Vec::new();
    for p in providers() {
        let ab = p.ecdh_p256(&a, b.public_key()).unwrap();
        let ba = p.ecdh_p256(&b, a.public_key()).unwrap();
        assert_eq!(*ab, *ba, "{}", p.name());
        secrets.push(*ab);
        let ed = PrivateKey::generate(Curve::Ed25519).unwrap();
        assert!(matches!(
            p.ecdh_p256(&ed, a.public_key()),
            Err(CoseError::InvalidKey(_))
        ));
    }
    assert!(secrets.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn providers_agree_on_random_inputs() {
    let all = providers();
    let mut data = vec![0u8; 100];
    all[0].fill_random(&mut data).unwrap();
    assert_ne!(data, vec![0u8; 100]);
    for p in &all[1..] {
        assert_eq!(p.sha256(&data), all[0].sha256(&data));
        assert_eq!(
            p.hmac_sha256(&data[..50], &data[50..]),
            all[0].hmac_sha256(&data[..50], &data[50..])
        );
        let mut x = data.clone();
        let mut y = data.clone();
        p.aes_ctr_apply(&data[..16], &data[16..32], &mut x).unwrap();
        all[0]
            .aes_ctr_apply(&data[..16], &data[16..32], &mut y)
            .unwrap();
        assert_eq!(x, y);
    }
}

//! Shared helpers for the provider-generic integration tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a failure here is a failed test"
)]
#![allow(dead_code)]

use teep_cose::coset::cbor::value::Value;
use teep_cose::coset::{
    self, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, ProtectedHeader,
    TaggedCborSerializable,
};
use teep_cose::*;

pub const ALL_ALGS: [Algorithm; 5] = [
    Algorithm::Esp256,
    Algorithm::Es256,
    Algorithm::Ed25519,
    Algorithm::EdDsa,
    Algorithm::Es384,
];

/// The providers compiled into this test build, to run every suite against each.
pub fn providers() -> Vec<&'static dyn CryptoProvider> {
    vec![
        &RustCryptoProvider,
        #[cfg(feature = "aws-lc")]
        &AwsLcProvider,
    ]
}

pub fn key_and_signer(p: &dyn CryptoProvider, alg: Algorithm) -> (PrivateKey, Box<dyn Signer>) {
    let key = PrivateKey::generate(alg.curve()).unwrap();
    let signer = p.signer(&key, alg).unwrap();
    (key, signer)
}

pub fn trusting(keys: &[&PublicKey]) -> TrustStore {
    let mut trust = TrustStore::new();
    for k in keys {
        trust.add_key((*k).clone());
    }
    trust
}

/// A COSE_Sign1 built by coset with the given buckets, signed by `signer` over the real
/// Sig_structure, so only the header under test is "wrong".
pub fn custom_sign1(
    signer: &dyn Signer,
    protected: ProtectedHeader,
    unprotected: coset::Header,
    payload: &[u8],
) -> Vec<u8> {
    CoseSign1Builder::new()
        .protected(protected.header.clone())
        .unprotected(unprotected)
        .payload(payload.to_vec())
        .create_signature(b"", |tbs| signer.sign(tbs).unwrap())
        .build()
        .to_tagged_vec()
        .unwrap()
}

/// A COSE_Sign1 whose protected bucket is exactly `protected_bytes` (e.g. an alg coset
/// itself refuses), signed over the matching Sig_structure.
pub fn raw_protected_sign1(signer: &dyn Signer, protected_bytes: &[u8], payload: &[u8]) -> Vec<u8> {
    let tbs = Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected_bytes.to_vec()),
        Value::Bytes(vec![]),
        Value::Bytes(payload.to_vec()),
    ]);
    let mut tbs_bytes = Vec::new();
    coset::cbor::ser::into_writer(&tbs, &mut tbs_bytes).unwrap();
    let sig = signer.sign(&tbs_bytes).unwrap();
    let value = Value::Tag(
        18,
        Box::new(Value::Array(vec![
            Value::Bytes(protected_bytes.to_vec()),
            Value::Map(vec![(
                Value::Integer(4.into()),
                Value::Bytes(signer.public_key().thumbprint().to_vec()),
            )]),
            Value::Bytes(payload.to_vec()),
            Value::Bytes(sig),
        ])),
    );
    let mut out = Vec::new();
    coset::cbor::ser::into_writer(&value, &mut out).unwrap();
    out
}

pub fn alg_header(alg: Algorithm) -> HeaderBuilder {
    HeaderBuilder::new().algorithm_label(coset::RegisteredLabelWithPrivate::Assigned(
        coset::iana::Algorithm::from_i64(alg.cose_id()).unwrap(),
    ))
}

pub fn parse(cose: &[u8]) -> CoseSign1 {
    CoseSign1::from_tagged_slice(cose)
        .or_else(|_| CoseSign1::from_slice(cose))
        .unwrap()
}

use coset::iana::EnumI64 as _;

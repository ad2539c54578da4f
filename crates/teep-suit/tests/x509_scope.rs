//! Scoped CA anchors: certificate-chain signers are identified by the CA their `x5chain`
//! verified to, so a leaf of one CA can neither write under another CA's prefixes nor
//! update a TC that another CA's leaf installed. Certificates are made by rcgen; the
//! envelopes are assembled by hand around a COSE_Sign1 carrying the x5chain.
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
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use teep_cose::{Algorithm, CaCertificate, CryptoProvider, Curve, PrivateKey, SignOptions};
use teep_suit::builder;
use teep_suit::processor::{Clock, DeviceIdentity, Processor};
use teep_suit::storage::{MemoryStorage, Storage};
use teep_suit::trust::{SignerId, TrustAnchor, TrustAnchors};
use teep_suit::{ComponentId, Envelope, SuitError};

/// 2025-06-01T00:00:00Z, inside the certificates' validity.
struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> Option<u64> {
        Some(1_748_736_000)
    }
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert: CaCertificate,
}

fn make_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Ca {
        issuer: Issuer::new(params, key),
        cert: CaCertificate::from_der(der).unwrap(),
    }
}

/// A signing key and its leaf certificate issued by `ca`.
struct Leaf {
    key: PrivateKey,
    der: Vec<u8>,
}

fn make_leaf(ca: &Ca) -> Leaf {
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "TC signer");
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    let public = KeyPair::from_pem(&key.to_pkcs8_pem()).unwrap();
    let der = params
        .signed_by(&public, &ca.issuer)
        .unwrap()
        .der()
        .to_vec();
    Leaf { key, der }
}

/// The TC `name` signed by `leaf` with its certificate in the protected `x5chain`.
fn certified_tc(name: &str, seq: u64, payload: &[u8], leaf: &Leaf) -> Vec<u8> {
    let built = builder::build(&spec(name, seq, payload), &PROVIDER).unwrap();
    let env = Envelope::decode(&built.envelope).unwrap();
    let signer = PROVIDER.signer(&leaf.key, Algorithm::Esp256).unwrap();
    let opts = SignOptions {
        detached: true,
        kid: false,
        x5chain: vec![leaf.der.clone()],
        ..SignOptions::default()
    };
    let block = teep_cose::sign1(signer.as_ref(), env.authentication.digest_cbor, &opts).unwrap();
    let mut auth = Vec::new();
    Encoder::new(&mut auth)
        .array(2)
        .unwrap()
        .bytes(env.authentication.digest_cbor)
        .unwrap()
        .bytes(&block)
        .unwrap();
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out);
    e.map(2 + env.integrated.len() as u64).unwrap();
    e.u8(2).unwrap().bytes(&auth).unwrap();
    e.u8(3).unwrap();
    out.extend_from_slice(env.manifest_bstr);
    let mut e = Encoder::new(&mut out);
    for (k, v) in &env.integrated {
        e.str(k).unwrap().bytes(v).unwrap();
    }
    out
}

fn install(p: &Processor<'_>, store: &mut dyn Storage, env: &[u8]) -> Result<(), SuitError> {
    p.install(store, env, None)
        .result
        .map(|_| ())
        .map_err(|f| f.error)
}

fn prefix(name: &str) -> Vec<ComponentId> {
    vec![ComponentId::from_strs(&["TEEP-Device", "SecureFS", name])]
}

/// Two CAs scoped to `a` and `b`, a leaf of each.
struct TwoCas {
    trust: TrustAnchors,
    a: Leaf,
    b: Leaf,
    ca_a: CaCertificate,
}

fn two_cas(scope_b: Vec<ComponentId>) -> TwoCas {
    let (ca_a, ca_b) = (make_ca("CA A"), make_ca("CA B"));
    let (a, b) = (make_leaf(&ca_a), make_leaf(&ca_b));
    let mut trust = TrustAnchors::new();
    trust.add(TrustAnchor::ca(ca_a.cert.clone(), prefix("a")));
    trust.add(TrustAnchor::ca(ca_b.cert, scope_b));
    TwoCas {
        trust,
        a,
        b,
        ca_a: ca_a.cert,
    }
}

/// A processor with a clock, as certificate chains need one.
fn processor<'a>(trust: &'a TrustAnchors, device: &'a DeviceIdentity) -> Processor<'a> {
    let mut p = Processor::new(&PROVIDER, trust, device);
    p.clock = &Fixed;
    p
}

#[test]
fn a_leaf_of_another_ca_cannot_install_under_its_prefix() {
    let cas = two_cas(prefix("b"));
    let device = teep_device();
    let p = processor(&cas.trust, &device);
    let mut store = MemoryStorage::new();
    // B's leaf is in scope for its own prefix ...
    install(&p, &mut store, &certified_tc("b", 1, b"b's", &cas.b)).unwrap();
    let before = store.clone();
    // ... but not for A's.
    assert_eq!(
        install(&p, &mut store, &certified_tc("a", 1, b"hijack", &cas.b)),
        Err(SuitError::OutOfScope(app_manifest("a")))
    );
    assert_eq!(store, before);
    // A's own leaf installs there, and is stored under A's CA identity.
    install(&p, &mut store, &certified_tc("a", 1, b"a's", &cas.a)).unwrap();
    assert_eq!(
        store.signers[&app_manifest("a")],
        SignerId::Anchor(hex::encode(cas.ca_a.fingerprint()))
    );
}

#[test]
fn a_leaf_of_another_ca_cannot_update_its_tc_even_with_an_overlapping_scope() {
    // B may write everywhere, A's TC included, yet it did not install it.
    let cas = two_cas(vec![ComponentId::default()]);
    let device = teep_device();
    let p = processor(&cas.trust, &device);
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &certified_tc("a", 1, b"one", &cas.a)).unwrap();
    let before = store.clone();
    assert_eq!(
        install(
            &p,
            &mut store,
            &certified_tc("a", u64::MAX, b"hijack", &cas.b)
        ),
        Err(SuitError::SignerMismatch(app_manifest("a")))
    );
    assert_eq!(store, before);
    // Another leaf of CA A is the same signer and may update it.
    install(&p, &mut store, &certified_tc("a", 2, b"two", &cas.a)).unwrap();
}

#[test]
fn unscoped_cas_are_separate_signers() {
    let (ca_a, ca_b) = (make_ca("CA A"), make_ca("CA B"));
    let (a, b) = (make_leaf(&ca_a), make_leaf(&ca_b));
    let mut store_cas = teep_cose::TrustStore::new();
    store_cas.add_ca(ca_a.cert);
    store_cas.add_ca(ca_b.cert);
    let trust = TrustAnchors::unscoped(store_cas);
    let device = teep_device();
    let p = processor(&trust, &device);
    let mut store = MemoryStorage::new();
    install(&p, &mut store, &certified_tc("a", 1, b"one", &a)).unwrap();
    let before = store.clone();
    assert_eq!(
        install(&p, &mut store, &certified_tc("a", 2, b"hijack", &b)),
        Err(SuitError::SignerMismatch(app_manifest("a")))
    );
    assert_eq!(store, before);
}

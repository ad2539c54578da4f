//! Fixtures shared by the fuzz targets and the seed writers (`examples/`).

pub mod tam;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber, date_time_ymd,
};
use teep_cose::{Algorithm, CryptoProvider, Curve, PrivateKey, Signer, TrustStore};

/// A fixed clock (2026-01-01T00:00:00Z), inside the chain's validity (2024 to 2036).
pub const NOW: u64 = 1_767_225_600;

/// A CA -> intermediate -> leaf chain (DER). CA and intermediate keys are Ed25519, whose
/// signatures are deterministic, so the same bytes come out on every run and a reproducer
/// that patches a certificate stays one; the leaf key is P-256 (it signs COSE messages).
pub struct Chain {
    pub ca: Vec<u8>,
    pub intermediate: Vec<u8>,
    pub leaf: Vec<u8>,
    pub leaf_key: PrivateKey,
}

fn key_pair(key: &PrivateKey) -> KeyPair {
    KeyPair::from_pem(&key.to_pkcs8_pem()).expect("rcgen reads our PKCS#8")
}

fn params(name: &str, serial: u64, ca: bool) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2036, 1, 1);
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    }
    params
}

/// The chain; its certificates are the same bytes on every call.
pub fn chain() -> Chain {
    let fixed = |curve, byte| PrivateKey::from_bytes(curve, &[byte; 32]).expect("fixed key");
    let ca_key = key_pair(&fixed(Curve::Ed25519, 0xca));
    let int_key = key_pair(&fixed(Curve::Ed25519, 0x1c));
    let leaf_key = fixed(Curve::P256, 0x1f);

    let ca_params = params("teep-fuzz CA", 1, true);
    let ca = ca_params.self_signed(&ca_key).expect("CA").der().to_vec();
    let ca_issuer = Issuer::new(ca_params, ca_key);
    let int_params = params("teep-fuzz intermediate", 2, true);
    let intermediate = int_params
        .signed_by(&int_key, &ca_issuer)
        .expect("intermediate")
        .der()
        .to_vec();
    let int_issuer = Issuer::new(int_params, int_key);
    let leaf = params("teep-fuzz TC signer", 3, false)
        .signed_by(&key_pair(&leaf_key), &int_issuer)
        .expect("leaf")
        .der()
        .to_vec();
    Chain {
        ca,
        intermediate,
        leaf,
        leaf_key,
    }
}

/// The keys of a TAM receiving reports and Evidence: its own P-256 key (what they are
/// encrypted to) and a device's P-256 signing key (ESP256), which `trust` holds.
pub struct TamAndDevice {
    pub tam: PrivateKey,
    pub device: Box<dyn Signer>,
    pub trust: TrustStore,
}

/// The same keys on every call (`encrypted_decrypt`, `received_report`).
pub fn tam_and_device(provider: &dyn CryptoProvider) -> TamAndDevice {
    let tam = PrivateKey::from_bytes(Curve::P256, &[0x5a; 32]).expect("TAM key");
    let device_key = PrivateKey::from_bytes(Curve::P256, &[0x44; 32]).expect("device key");
    let device = provider
        .signer(&device_key, Algorithm::Esp256)
        .expect("device signer");
    let mut trust = TrustStore::new();
    trust.add_key(device_key.public_key().clone());
    TamAndDevice { tam, device, trust }
}

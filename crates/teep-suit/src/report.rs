//! SUIT reports (draft-ietf-suit-report): what the processor did, where it failed, and the
//! caller's nonce (TEEP puts its token there).
//!
//! Wire format: the -18 labels (`suit-reference` 99, nonce 2, records 3, result 4, result
//! code/record/reason 5/6/7). The newest suit-wg/suit-report CDDL we could read (repository
//! commit 1823a772; we could not confirm it is exactly -20) keeps every label and makes
//! two changes: the manifest URI inside `SUIT_Reference` becomes optional, and the
//! extension sockets become `*` groups. We follow it: the URI is omitted when the manifest
//! has no `suit-reference-uri` (under -18 it was a mandatory tstr).

use alloc::string::String;
use alloc::vec::Vec;

use minicbor::Encoder;
use teep_cose::encrypt::{ContentAlgorithm, DecryptionKey, SUIT_REPORT_ENCRYPTION};
use teep_cose::{CoseError, CryptoProvider, PrivateKey, PublicKey};

use crate::cbor::{Reader, int_key};
use crate::command::Parameters;
use crate::error::{SuitError, malformed};
use crate::model::{ComponentId, Digest};

/// Where a command sat: manifest path from the root, section key, byte offset in the
/// section, component index in force. Section 0 marks failures before any sequence ran
/// (envelope, authentication, rollback, policy).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub manifest_id: Vec<u64>,
    pub section: u64,
    pub offset: u64,
    pub component_index: u64,
    /// The measured values that made the command fail (e.g. the actual digest).
    pub properties: Parameters,
}

/// `system-property-claims`: measured properties of one component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemProperties {
    pub component: ComponentId,
    pub properties: Parameters,
}

/// One entry of `suit-report-records`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Record(Record),
    System(SystemProperties),
}

/// `suit-report-result` when the procedure failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub error: SuitError,
    pub record: Record,
}

/// A SUIT_Report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub reference_uri: Option<String>,
    /// Digest of the root manifest (its authenticated digest); all zeros when the
    /// envelope was not authenticated.
    pub manifest_digest: Digest,
    pub nonce: Option<Vec<u8>>,
    pub records: Vec<Entry>,
    pub result: Result<(), Failure>,
    /// Carry `suit-report-capability-report` (set when a manifest used a command,
    /// parameter, algorithm or COSE structure we lack, so its author can see what we do).
    pub capabilities: bool,
}

/// Commands this processor implements (capability report).
pub const COMMANDS: &[i64] = &[
    1, 2, 3, 5, 6, 7, 8, 11, 12, 14, 15, 18, 19, 20, 21, 22, 23, 24, 31, 32, 33,
];
/// Parameters this processor implements (capability report).
pub const PARAMETERS: &[i64] = &[1, 2, 3, 5, 12, 13, 14, 18, 19, 21, 22, 23, 24, 25];
/// COSE algorithms: SHA-256; ES256, ESP256, EdDSA, Ed25519, ES384; HMAC 256/256; A128KW,
/// ECDH-ES+A128KW; A128GCM, A128CTR.
pub const ALGORITHMS: &[i64] = &[-16, -7, -9, -8, -19, -35, 5, -3, -29, 1, -65534];

fn encode_ints(e: &mut Encoder<&mut Vec<u8>>, v: &[i64]) {
    let _ = e.array(v.len() as u64);
    for i in v {
        let _ = e.i64(*i);
    }
}

fn encode_record(e: &mut Encoder<&mut Vec<u8>>, r: &Record) {
    let _ = e.array(5);
    let _ = e.array(r.manifest_id.len() as u64);
    for i in &r.manifest_id {
        let _ = e.u64(*i);
    }
    let _ = e.u64(r.section);
    let _ = e.u64(r.offset);
    let _ = e.u64(r.component_index);
    r.properties.encode(e);
}

impl Report {
    /// The report as `SUIT_Report_Protected`: a tagged COSE_Sign1 carrying the report, with
    /// the signer's kid. TEEP wants a report key other than the one signing the TEEP
    /// message; choosing it is the caller's business.
    pub fn sign(&self, signer: &dyn teep_cose::Signer) -> Result<Vec<u8>, SuitError> {
        teep_cose::sign1(signer, &self.to_cbor(), &teep_cose::SignOptions::default())
            .map_err(SuitError::Authentication)
    }

    /// The report encrypted to the TAM (draft-ietf-teep-protocol §12): a tagged, attached
    /// COSE_Encrypt of the `SUIT_Report` CBOR under ECDH-ES+A128KW and A128GCM, KDF `other`
    /// = "SUIT Report Encryption". It goes as one bstr of TEEP `suit-reports`; the TEEP
    /// message signature authenticates the sender, GCM the content. A report that must
    /// carry its own signature is signed first ([`Report::sign`]) and the COSE_Sign1 is
    /// then encrypted with `teep_cose::encrypt::encrypt_esdh` directly.
    ///
    /// # Errors
    /// The TAM key is not P-256, or the provider failed (RNG).
    pub fn encrypt(
        &self,
        provider: &dyn CryptoProvider,
        tam_key: &PublicKey,
    ) -> Result<Vec<u8>, CoseError> {
        teep_cose::encrypt::encrypt_esdh(
            provider,
            tam_key,
            ContentAlgorithm::default(),
            &self.to_cbor(),
            SUIT_REPORT_ENCRYPTION,
        )
    }

    /// The report as `SUIT_Report` CBOR (deterministic: keys in ascending order).
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out);
        let fields = 3 + u64::from(self.nonce.is_some()) + u64::from(self.capabilities);
        let _ = e.map(fields);
        if let Some(nonce) = &self.nonce {
            let _ = e.u8(2).and_then(|e| e.bytes(nonce));
        }
        let _ = e.u8(3).and_then(|e| e.array(self.records.len() as u64));
        for entry in &self.records {
            match entry {
                Entry::Record(r) => encode_record(&mut e, r),
                Entry::System(s) => {
                    let n = s.properties.count() as u64 + 1;
                    let _ = e.map(n).and_then(|e| e.u8(0));
                    s.component.encode(&mut e);
                    s.properties.encode_fields(&mut e);
                }
            }
        }
        let _ = e.u8(4);
        match &self.result {
            Ok(()) => {
                let _ = e.bool(true);
            }
            Err(f) => {
                let _ = e
                    .map(3)
                    .and_then(|e| e.u8(5))
                    .and_then(|e| e.i64(f.error.code()));
                let _ = e.u8(6);
                encode_record(&mut e, &f.record);
                let _ = e.u8(7).and_then(|e| e.u8(f.error.report_reason()));
            }
        }
        if self.capabilities {
            // Any component ([true] = every path), then commands, parameters, algorithms.
            let _ = e.u8(8).and_then(|e| e.map(4)).and_then(|e| e.u8(1));
            let _ = e
                .array(1)
                .and_then(|e| e.array(1))
                .and_then(|e| e.bool(true));
            let _ = e.u8(2);
            encode_ints(&mut e, COMMANDS);
            let _ = e.u8(3);
            encode_ints(&mut e, PARAMETERS);
            let _ = e.u8(4);
            encode_ints(&mut e, ALGORITHMS);
        }
        let _ = e.u8(99);
        let _ = e.array(1 + u64::from(self.reference_uri.is_some()));
        if let Some(uri) = &self.reference_uri {
            let _ = e.str(uri);
        }
        let _ = e.array(2);
        let _ = e.i64(self.manifest_digest.algorithm);
        let _ = e.bytes(&self.manifest_digest.bytes);
        out
    }
}

/// TAM side of [`Report::encrypt`]: decrypts a `suit-reports` entry with the TAM's P-256 key
/// and returns the `SUIT_Report` CBOR, checked to be one definite-length map with integer
/// keys, no repeats, holding the mandatory `suit-reference` (99), `suit-report-records` (3)
/// and `suit-report-result` (4). It is not decoded into a [`Report`]: that type carries the
/// processor's own [`SuitError`], which a peer's result code cannot be turned back into.
///
/// # Errors
/// [`SuitError::Decryption`] when the COSE_Encrypt is malformed or does not open with
/// `tam_key` under the "SUIT Report Encryption" context (wrong key, an EAT, tampering);
/// [`SuitError::Malformed`] when the plaintext is no SUIT_Report.
pub fn decrypt_report(
    provider: &dyn CryptoProvider,
    encrypted: &[u8],
    tam_key: &PrivateKey,
) -> Result<Vec<u8>, SuitError> {
    let keys = [DecryptionKey::EcdhEs(tam_key.clone())];
    let mut plain =
        teep_cose::encrypt::decrypt(provider, encrypted, None, &keys, SUIT_REPORT_ENCRYPTION)
            .map_err(SuitError::Decryption)?;
    let report = core::mem::take(&mut *plain);
    check_report_shape(&report)?;
    Ok(report)
}

/// The structural check of [`decrypt_report`].
fn check_report_shape(bytes: &[u8]) -> Result<(), SuitError> {
    const REQUIRED: [i64; 3] = [99, 3, 4];
    let mut r = Reader::new(bytes);
    let entries = r.map("SUIT_Report")?;
    let mut seen = Vec::new();
    for _ in 0..entries {
        int_key(&mut r, &mut seen, "SUIT_Report key")?;
        r.skip("SUIT_Report value")?;
    }
    r.finish("bytes after the SUIT_Report")?;
    if REQUIRED.iter().all(|k| seen.contains(k)) {
        Ok(())
    } else {
        Err(malformed(
            "SUIT_Report lacks reference, records or result",
            0,
        ))
    }
}

//! Reading a SUIT report from a `suit-reports` entry, TAM side: only what the TAM checks
//! (the nonce, the manifest digest named by `suit-reference`, and whether it succeeded).
//!
//! The report itself is decoded by teep-suit's strict reader
//! ([`teep_suit::report::ReceivedReport`]): a plain `SUIT_Report`, one encrypted to the
//! TAM's key (§12), or a COSE_Sign1 over one. A report sits inside a TEEP message whose
//! signature the engine has verified, and that signature authenticates it: a COSE_Sign1
//! report made with a report key the TAM does not know is opened without checking its own
//! signature, as RFC 9124 lets a device sign reports with a key of its own.

use teep_cose::{CryptoProvider, PrivateKey, TrustStore};
use teep_suit::SuitError;
use teep_suit::report::{ReceivedReport, ReportKeys};

/// COSE's SHA-256.
const SHA256: i64 = -16;

/// What the TAM reads from one report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportFacts {
    /// `suit-report-nonce`.
    pub nonce: Option<Vec<u8>>,
    /// The SHA-256 manifest digest from `suit-reference`.
    pub manifest_digest: [u8; 32],
    /// `suit-report-result` is `true`.
    pub success: bool,
    /// Where a failed procedure failed, as text for the operator: the manifest section
    /// and the byte offset of the command in it, the component, the reason and code.
    pub failure: Option<String>,
}

/// Why a report was not readable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Not a SUIT_Report (or a COSE_Sign1 or COSE_Encrypt holding one).
    #[error("malformed SUIT report: {0}")]
    Malformed(SuitError),
    /// Encrypted to a key this TAM does not hold (or it has none configured).
    #[error("SUIT report encrypted to a key this TAM does not hold: {0}")]
    Undecryptable(SuitError),
    /// `suit-reference` names the manifest by a digest other than SHA-256.
    #[error("SUIT report names its manifest by a digest other than SHA-256")]
    NotSha256,
}

/// The keys the TAM reads reports with.
#[derive(Clone, Copy)]
pub struct ReportReader<'a> {
    /// Crypto for decryption.
    pub provider: &'a dyn CryptoProvider,
    /// The TAM's key that Agents encrypt reports to, if it has one.
    pub tam_key: Option<&'a PrivateKey>,
}

impl ReportReader<'_> {
    /// Reads one `suit-reports` entry.
    pub fn read(&self, entry: &[u8]) -> Result<ReportFacts, ReportError> {
        let plain = ReportKeys {
            provider: self.provider,
            device: &TrustStore::new(),
            tam: self.tam_key,
            require_signature: false,
        };
        let report = match ReceivedReport::decode(entry, &plain) {
            // Signed with a key of the device's own: authenticated by the TEEP message
            // around it, so read its payload (which must itself be a plain report).
            Err(SuitError::Authentication(e)) => {
                let unreadable = || ReportError::Malformed(SuitError::Authentication(e.clone()));
                let cose = teep_proto::decode_unverified_cose(entry).map_err(|_| unreadable())?;
                let payload = cose
                    .payload
                    .filter(|_| cose.structure == teep_proto::CoseStructure::Sign1)
                    .ok_or_else(unreadable)?;
                ReceivedReport::decode(&payload, &plain).map_err(ReportError::Malformed)?
            }
            Err(e @ (SuitError::Decryption(_) | SuitError::NoDecryptor)) => {
                return Err(ReportError::Undecryptable(e));
            }
            Err(e) => return Err(ReportError::Malformed(e)),
            Ok(report) => report,
        };
        let digest = report.manifest_digest;
        let manifest_digest = (digest.algorithm == SHA256)
            .then(|| <[u8; 32]>::try_from(digest.bytes.as_slice()).ok())
            .flatten()
            .ok_or(ReportError::NotSha256)?;
        Ok(ReportFacts {
            nonce: report.nonce,
            manifest_digest,
            success: report.result.is_ok(),
            failure: report.result.err().map(|f| {
                let r = &f.record;
                format!(
                    "section {} command at offset {} component {} (manifest {:?}): reason {} code {}",
                    r.section, r.offset, r.component_index, r.manifest_id, f.reason, f.code
                )
            }),
        })
    }
}

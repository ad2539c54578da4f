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

use crate::command::Parameters;
use crate::error::SuitError;
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
    /// Digest of the root manifest (its authenticated digest); empty when the envelope
    /// could not even be decoded.
    pub manifest_digest: Digest,
    pub nonce: Option<Vec<u8>>,
    pub records: Vec<Entry>,
    pub result: Result<(), Failure>,
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

    /// The report as `SUIT_Report` CBOR (deterministic: keys in ascending order).
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out);
        let fields = 3 + u64::from(self.nonce.is_some());
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

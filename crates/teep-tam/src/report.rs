//! Reading a SUIT report from a `suit-reports` entry, TAM side: only what the TAM checks
//! (the nonce, the manifest digest named by `suit-reference`, and whether it succeeded).
//!
//! teep-suit writes reports but has no reader yet; this small one stays here until it has.
//! A report sits inside a TEEP message whose signature the engine has verified, so a
//! `SUIT_Report_Protected` COSE_Sign1 is opened without checking its own signature (the
//! TAM holds no report keys yet); encrypted reports are refused.

use minicbor::Decoder;
use minicbor::data::Type;

/// What the TAM reads from one report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportFacts {
    /// `suit-report-nonce`.
    pub nonce: Option<Vec<u8>>,
    /// The SHA-256 manifest digest from `suit-reference`.
    pub manifest_digest: [u8; 32],
    /// `suit-report-result` is `true`.
    pub success: bool,
}

/// Why a report was not readable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Not a SUIT_Report (or a COSE_Sign1 holding one).
    #[error("malformed SUIT report: {0}")]
    Malformed(&'static str),
}

const SHA256: i64 = -16;
const KEY_NONCE: i64 = 2;
const KEY_RESULT: i64 = 4;
const KEY_REFERENCE: i64 = 99;

/// Reads one `suit-reports` entry: a SUIT_Report map, or a COSE_Sign1 (tagged or not)
/// whose payload is one.
pub fn read_report(entry: &[u8]) -> Result<ReportFacts, ReportError> {
    let payload;
    let report = if entry.first().is_some_and(|b| *b >> 5 == 5) {
        entry
    } else {
        let cose = teep_proto::decode_unverified_cose(entry)
            .map_err(|_| ReportError::Malformed("neither a map nor a COSE_Sign1"))?;
        if cose.structure != teep_proto::CoseStructure::Sign1 {
            return Err(ReportError::Malformed("not a COSE_Sign1"));
        }
        payload = cose
            .payload
            .ok_or(ReportError::Malformed("detached report"))?;
        &payload[..]
    };
    parse_map(report).map_err(|_| ReportError::Malformed("not a SUIT_Report"))
}

fn parse_map(bytes: &[u8]) -> Result<ReportFacts, minicbor::decode::Error> {
    let bad = minicbor::decode::Error::message;
    let mut d = Decoder::new(bytes);
    let n = d.map()?.ok_or_else(|| bad("indefinite map"))?;
    let (mut nonce, mut digest, mut success) = (None, None, None);
    for _ in 0..n {
        match d.i64()? {
            KEY_NONCE if nonce.is_none() => nonce = Some(d.bytes()?.to_vec()),
            KEY_RESULT if success.is_none() => {
                success = Some(if d.datatype()? == Type::Bool {
                    d.bool()?
                } else {
                    d.skip()?;
                    false
                });
            }
            KEY_REFERENCE if digest.is_none() => digest = Some(reference_digest(&mut d)?),
            KEY_NONCE | KEY_RESULT | KEY_REFERENCE => return Err(bad("duplicate key")),
            _ => d.skip()?,
        }
    }
    if d.position() != bytes.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(ReportFacts {
        nonce,
        manifest_digest: digest.ok_or_else(|| bad("no suit-reference"))?,
        success: success.ok_or_else(|| bad("no suit-report-result"))?,
    })
}

/// `suit-reference = [? uri, [alg, digest]]`, SHA-256 only.
fn reference_digest(d: &mut Decoder<'_>) -> Result<[u8; 32], minicbor::decode::Error> {
    let bad = minicbor::decode::Error::message;
    let n = d.array()?.ok_or_else(|| bad("indefinite array"))?;
    match n {
        1 => {}
        2 => {
            d.str()?;
        }
        _ => return Err(bad("suit-reference length")),
    }
    if d.array()? != Some(2) || d.i64()? != SHA256 {
        return Err(bad("not a SHA-256 SUIT_Digest"));
    }
    d.bytes()?.try_into().map_err(|_| bad("digest length"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use teep_suit::Digest;
    use teep_suit::report::Report;

    fn report(nonce: Option<&[u8]>) -> Report {
        Report {
            reference_uri: Some("https://tc.example/a.suit".into()),
            manifest_digest: Digest::sha256([7; 32]),
            nonce: nonce.map(<[u8]>::to_vec),
            records: Vec::new(),
            result: Ok(()),
            capabilities: false,
        }
    }

    #[test]
    fn reads_what_teep_suit_writes() {
        let facts = read_report(&report(Some(&[1; 16])).to_cbor().unwrap()).unwrap();
        assert_eq!(
            facts,
            ReportFacts {
                nonce: Some(vec![1; 16]),
                manifest_digest: [7; 32],
                success: true
            }
        );
    }

    #[test]
    fn rejects_duplicate_nonce_and_trailing_bytes() {
        // {2: h'01', 2: h'02', 4: true, 99: [[-16, h'07'*32]]}, written by hand.
        let mut dup = vec![0xa4, 0x02, 0x41, 0x01, 0x02, 0x41, 0x02, 0x04, 0xf5];
        dup.extend([0x18, 0x63, 0x81, 0x82, 0x2f, 0x58, 0x20]);
        dup.extend([7; 32]);
        assert_eq!(
            read_report(&dup),
            Err(ReportError::Malformed("not a SUIT_Report"))
        );
        let mut trailing = report(None).to_cbor().unwrap();
        trailing.push(0);
        assert_eq!(
            read_report(&trailing),
            Err(ReportError::Malformed("not a SUIT_Report"))
        );
    }
}

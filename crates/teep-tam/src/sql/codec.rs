//! The CBOR the SQL store keeps in its few structured columns (component ids, lists of
//! them, a cipher suite, the rest of a session state). Written and read only by this
//! module; a column that does not decode is reported as a backend error, never a panic.

use minicbor::{Decoder, Encoder};
use teep_proto::{
    CipherOperation, CipherSuite, ComponentId, DataItemRequested, FreshnessMechanism,
    SuitCoseProfile,
};

use crate::store::{ExpectQueryResponse, ExpectSuccess, Failed, Offer, SentManifest, StoreError};

type Enc = Encoder<Vec<u8>>;
type EncResult = Result<(), minicbor::encode::Error<core::convert::Infallible>>;
type DecResult<T> = Result<T, minicbor::decode::Error>;

/// Encodes with `f` into a fresh buffer.
fn encode(f: impl FnOnce(&mut Enc) -> EncResult) -> Result<Vec<u8>, StoreError> {
    let mut e = Encoder::new(Vec::new());
    f(&mut e).map_err(|err| StoreError::Backend(format!("encoding a column: {err}")))?;
    Ok(e.into_writer())
}

/// Decodes all of `bytes` with `f` (trailing bytes are an error too).
fn decode<T>(
    bytes: &[u8],
    f: impl FnOnce(&mut Decoder<'_>) -> DecResult<T>,
) -> Result<T, StoreError> {
    let mut d = Decoder::new(bytes);
    let corrupt = |what: String| StoreError::Backend(format!("corrupt column: {what}"));
    let value = f(&mut d).map_err(|err| corrupt(err.to_string()))?;
    if d.position() != bytes.len() {
        return Err(corrupt("trailing bytes".into()));
    }
    Ok(value)
}

/// `len` as a CBOR array length.
fn len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn list<T>(e: &mut Enc, items: &[T], mut f: impl FnMut(&mut Enc, &T) -> EncResult) -> EncResult {
    e.array(len(items.len()))?;
    items.iter().try_for_each(|item| f(e, item))
}

/// A definite array of items decoded by `f` (no preallocation from the length).
fn items<'b, T>(
    d: &mut Decoder<'b>,
    mut f: impl FnMut(&mut Decoder<'b>) -> DecResult<T>,
) -> DecResult<Vec<T>> {
    let n = d
        .array()?
        .ok_or_else(|| minicbor::decode::Error::message("indefinite array"))?;
    (0..n).map(|_| f(d)).collect()
}

fn digest(d: &mut Decoder<'_>) -> DecResult<[u8; 32]> {
    d.bytes()?
        .try_into()
        .map_err(|_| minicbor::decode::Error::message("digest is not 32 bytes"))
}

fn put_id(e: &mut Enc, id: &ComponentId) -> EncResult {
    list(e, &id.0, |e, part| e.bytes(part).map(drop))
}

fn get_id(d: &mut Decoder<'_>) -> DecResult<ComponentId> {
    items(d, |d| d.bytes().map(<[u8]>::to_vec)).map(ComponentId)
}

fn put_suite(e: &mut Enc, suite: &CipherSuite) -> EncResult {
    list(e, suite.operations(), |e, op| {
        e.array(2)?.u64(op.cose_type)?.i64(op.alg).map(drop)
    })
}

fn get_suite(d: &mut Decoder<'_>) -> DecResult<CipherSuite> {
    let ops = items(d, |d| {
        d.array()?;
        Ok(CipherOperation {
            cose_type: d.u64()?,
            alg: d.i64()?,
        })
    })?;
    Ok(CipherSuite::new(ops))
}

/// A component id as a column (also the key releases and policies are looked up by).
pub(super) fn component_id(id: &ComponentId) -> Vec<u8> {
    id.to_cbor()
}

/// A component-id column.
pub(super) fn to_component_id(bytes: &[u8]) -> Result<ComponentId, StoreError> {
    ComponentId::from_cbor(bytes)
        .map_err(|err| StoreError::Backend(format!("corrupt column: {err}")))
}

/// A list of component ids as a column.
pub(super) fn component_ids(ids: &[ComponentId]) -> Result<Vec<u8>, StoreError> {
    encode(|e| list(e, ids, put_id))
}

/// A column holding a list of component ids.
pub(super) fn to_component_ids(bytes: &[u8]) -> Result<Vec<ComponentId>, StoreError> {
    decode(bytes, |d| items(d, get_id))
}

/// A device's failed releases as a column: `[* [manifest-id, digest, failures, at]]`.
pub(super) fn failed(failed: &[Failed]) -> Result<Vec<u8>, StoreError> {
    encode(|e| {
        list(e, failed, |e, f| {
            e.array(4)?;
            put_id(e, &f.manifest_id)?;
            e.bytes(&f.digest)?.u32(f.failures)?.u64(f.at).map(drop)
        })
    })
}

/// A column holding a device's failed releases.
pub(super) fn to_failed(bytes: &[u8]) -> Result<Vec<Failed>, StoreError> {
    decode(bytes, |d| {
        items(d, |d| {
            if d.array()? != Some(4) {
                return Err(minicbor::decode::Error::message(
                    "a failed release is [manifest-id, digest, failures, at]",
                ));
            }
            Ok(Failed {
                manifest_id: get_id(d)?,
                digest: digest(d)?,
                failures: d.u32()?,
                at: d.u64()?,
            })
        })
    })
}

/// A cipher suite as a column.
pub(super) fn suite(suite: &CipherSuite) -> Result<Vec<u8>, StoreError> {
    encode(|e| put_suite(e, suite))
}

/// A cipher-suite column.
pub(super) fn to_suite(bytes: &[u8]) -> Result<CipherSuite, StoreError> {
    decode(bytes, get_suite)
}

/// An ExpectQueryResponse without its challenge (which has a column of its own):
/// `[requested, [* version], [* suite], [* profile], [* freshness], ? tam-attested]`
/// (the flag only when set, so rows written before it existed still read).
pub(super) fn expect_query_response(s: &ExpectQueryResponse) -> Result<Vec<u8>, StoreError> {
    let o = &s.offer;
    encode(|e| {
        e.array(if s.tam_attested { 6 } else { 5 })?
            .u64(s.requested.0)?;
        list(e, &o.versions, |e, v| e.u32(*v).map(drop))?;
        list(e, &o.suites, put_suite)?;
        list(e, &o.profiles, |e, p| {
            list(e, &p.0, |e, alg| e.i64(*alg).map(drop))
        })?;
        list(e, &o.freshness, |e, f| e.u64(f.0).map(drop))?;
        if s.tam_attested {
            e.bool(true)?;
        }
        Ok(())
    })
}

/// The inverse of [`expect_query_response`], with the challenge column put back.
pub(super) fn to_expect_query_response(
    bytes: &[u8],
    challenge: Option<Vec<u8>>,
) -> Result<ExpectQueryResponse, StoreError> {
    decode(bytes, |d| {
        let len = d.array()?;
        let requested = DataItemRequested(d.u64()?);
        let versions = items(d, Decoder::u32)?;
        let suites = items(d, get_suite)?;
        let profiles = items(d, |d| {
            let algs = items(d, Decoder::i64)?;
            algs.try_into()
                .map(SuitCoseProfile)
                .map_err(|_| minicbor::decode::Error::message("profile is not 4 algorithms"))
        })?;
        let freshness = items(d, |d| d.u64().map(FreshnessMechanism))?;
        let tam_attested = match len {
            Some(5) => false,
            Some(6) => d.bool()?,
            _ => {
                return Err(minicbor::decode::Error::message(
                    "session state is not 5 or 6 items",
                ));
            }
        };
        Ok(ExpectQueryResponse {
            tam_attested,
            challenge,
            requested,
            offer: Offer {
                versions,
                suites,
                profiles,
                freshness,
            },
        })
    })
}

/// An ExpectSuccess: `[[* [manifest-id, sequence, digest]], [* manifest-id]]`.
pub(super) fn expect_success(s: &ExpectSuccess) -> Result<Vec<u8>, StoreError> {
    encode(|e| {
        e.array(2)?;
        list(e, &s.sent_manifests, |e, m| {
            e.array(3)?;
            put_id(e, &m.manifest_id)?;
            e.u64(m.sequence)?.bytes(&m.digest).map(drop)
        })?;
        list(e, &s.unneeded, put_id)
    })
}

/// The inverse of [`expect_success`].
pub(super) fn to_expect_success(bytes: &[u8]) -> Result<ExpectSuccess, StoreError> {
    decode(bytes, |d| {
        d.array()?;
        let sent_manifests = items(d, |d| {
            d.array()?;
            Ok(SentManifest {
                manifest_id: get_id(d)?,
                sequence: d.u64()?,
                digest: digest(d)?,
            })
        })?;
        Ok(ExpectSuccess {
            sent_manifests,
            unneeded: items(d, get_id)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_states_round_trip_and_corrupt_columns_are_errors() {
        let q = ExpectQueryResponse {
            challenge: Some(vec![7; 8]),
            requested: DataItemRequested(9),
            offer: Offer {
                versions: vec![0, 1],
                suites: vec![
                    CipherSuite::SIGN1_ESP256,
                    CipherSuite::new(vec![
                        CipherOperation {
                            cose_type: 18,
                            alg: -7,
                        },
                        CipherOperation {
                            cose_type: 98,
                            alg: -8,
                        },
                    ]),
                ],
                profiles: SuitCoseProfile::ALL_MTI.to_vec(),
                freshness: vec![FreshnessMechanism::NONCE],
            },
            tam_attested: false,
        };
        let bytes = expect_query_response(&q).unwrap();
        assert_eq!(
            to_expect_query_response(&bytes, q.challenge.clone()).unwrap(),
            q
        );
        // The flag round-trips; a seventh item is refused.
        let flagged = ExpectQueryResponse {
            tam_attested: true,
            ..q.clone()
        };
        let bytes = expect_query_response(&flagged).unwrap();
        assert_eq!(bytes.first(), Some(&0x86));
        assert_eq!(
            to_expect_query_response(&bytes, q.challenge.clone()).unwrap(),
            flagged
        );
        let mut seven = bytes.clone();
        seven[0] = 0x87;
        seven.push(0xf5);
        assert!(matches!(
            to_expect_query_response(&seven, None),
            Err(StoreError::Backend(_))
        ));
        let s = ExpectSuccess {
            sent_manifests: vec![SentManifest {
                manifest_id: ComponentId(vec![b"tc".to_vec()]),
                sequence: u64::MAX,
                digest: [3; 32],
            }],
            unneeded: vec![ComponentId(vec![b"old".to_vec(), vec![]])],
        };
        let bytes = expect_success(&s).unwrap();
        assert_eq!(to_expect_success(&bytes).unwrap(), s);
        // Truncated, extended, and a digest one byte short: errors, not panics.
        for bad in [
            &bytes[..bytes.len() - 1],
            &[bytes.as_slice(), &[0]].concat(),
            &[0x82, 0x81, 0x83, 0x80, 0x01, 0x58, 31][..],
        ] {
            assert!(matches!(
                to_expect_success(bad),
                Err(StoreError::Backend(_))
            ));
        }
        // An indefinite array is refused.
        assert!(matches!(
            to_component_id(&[0x9f, 0xff]),
            Err(StoreError::Backend(_))
        ));
    }
}

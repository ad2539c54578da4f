//! SUIT reports (draft-ietf-suit-report): what the processor did, where it failed, and the
//! caller's nonce (TEEP puts its token there). The device makes a [`Report`] (plain,
//! signed or encrypted to the TAM); the TAM reads what it receives with
//! [`ReceivedReport::decode`].
//!
//! Wire format: the -18 labels (`suit-reference` 99, nonce 2, records 3, result 4, result
//! code/record/reason 5/6/7). The newest suit-wg/suit-report CDDL we could read (repository
//! commit 1823a772; we could not confirm it is exactly -20) keeps every label and makes
//! two changes: the manifest URI inside `SUIT_Reference` becomes optional, and the
//! extension sockets become `*` groups. We follow it: the URI is omitted when the manifest
//! has no `suit-reference-uri` (under -18 it was a mandatory tstr).

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use alloc::format;

use minicbor::data::Type;
use teep_cbor::write::{ArrayEncoder, ArrayKind, EncodeError, MapEncoder, MapKind, encode_vec};
use teep_cose::encrypt::{ContentAlgorithm, DecryptionKey, SUIT_REPORT_ENCRYPTION};
use teep_cose::{CoseError, CryptoProvider, PrivateKey, PublicKey, TrustStore, VerifyContext};

use crate::cbor::{Reader, SuitRead, appended, bstr, int_key};
use crate::command::{Command, Parameters, Step, parse_sequence};
use crate::error::{SuitError, malformed};
use crate::model::{ComponentId, Digest};

/// Where a command sat: manifest path from the root, section key, byte offset in the
/// section, component index in force. Section 0 marks failures before any sequence ran
/// (envelope, authentication, rollback, policy).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// `suit-record-manifest-id`: indices from the root manifest down the dependencies.
    pub manifest_id: Vec<u64>,
    /// `suit-record-manifest-section`: the manifest key of the section (0: none ran).
    pub section: u64,
    /// `suit-record-section-offset`: byte offset of the command in the section.
    pub offset: u64,
    /// `suit-record-component-index`: the component index in force.
    pub component_index: u64,
    /// The measured values that made the command fail (e.g. the actual digest).
    pub properties: Parameters,
}

/// `system-property-claims`: measured properties of one component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemProperties {
    /// `system-component-id`: the component measured.
    pub component: ComponentId,
    /// The measured values, as `SUIT_Parameters`.
    pub properties: Parameters,
}

/// One entry of `suit-report-records`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A `SUIT_Record` of a command that ran.
    Record(Record),
    /// `system-property-claims` of a component.
    System(SystemProperties),
}

/// `suit-report-result` when the procedure failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The error; `suit-report-result-code` and `-reason` are derived from it.
    pub error: SuitError,
    /// `suit-report-result-record`: where it failed.
    pub record: Record,
}

/// A SUIT_Report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// `suit-report-manifest-uri`: the root manifest's reference URI, if it has one.
    pub reference_uri: Option<String>,
    /// Digest of the root manifest (its authenticated digest; for a manifest that failed
    /// authentication, the digest of the manifest the envelope carries); all zeros only
    /// when there was no manifest to digest.
    pub manifest_digest: Digest,
    /// `suit-report-nonce`: the TEEP token the report answers, if any.
    pub nonce: Option<Vec<u8>>,
    /// `suit-report-records`: what ran (and measured properties).
    pub records: Vec<Entry>,
    /// `suit-report-result`: `Ok` for `true`, else the failure.
    pub result: Result<(), Failure>,
    /// Carry `suit-report-capability-report` (set when a manifest used a command,
    /// parameter, algorithm or COSE structure we lack, so its author can see what we do).
    pub capabilities: bool,
}

/// Commands this processor implements (capability report): the command enum's list,
/// stated once in [`crate::command`].
pub use crate::command::COMMANDS;
/// Parameters this processor implements (capability report).
pub const PARAMETERS: &[i64] = &[1, 2, 3, 5, 12, 13, 14, 18, 19, 21, 22, 23, 24, 25];
/// COSE algorithms: SHA-256; ES256, ESP256, EdDSA, Ed25519, ES384; HMAC 256/256; A128KW,
/// ECDH-ES+A128KW; A128GCM, A128CTR.
pub const ALGORITHMS: &[i64] = &[-16, -7, -9, -8, -19, -35, 5, -3, -29, 1, -65534];

/// The elements of an integer list (written in place by `entry_nested`).
fn ints(a: &mut ArrayEncoder, v: &[i64]) -> Result<(), EncodeError> {
    v.iter().try_for_each(|i| a.item(*i).map(drop))
}

/// The five members of a `SUIT_Record`.
fn record_items(a: &mut ArrayEncoder, r: &Record) -> Result<(), EncodeError> {
    a.item_nested::<ArrayKind>(|ids| {
        r.manifest_id
            .iter()
            .try_for_each(|i| ids.item(*i).map(drop))
    })?
    .item(r.section)?
    .item(r.offset)?
    .item(r.component_index)?
    .item_nested::<MapKind>(|m| r.properties.encode_entries(m))?;
    Ok(())
}

impl Report {
    /// The report as `SUIT_Report_Protected`: a tagged COSE_Sign1 carrying the report, with
    /// the signer's kid. TEEP wants a report key other than the one signing the TEEP
    /// message; choosing it is the caller's business.
    pub fn sign(&self, signer: &dyn teep_cose::Signer) -> Result<Vec<u8>, SuitError> {
        teep_cose::sign1(signer, &self.to_cbor()?, &teep_cose::SignOptions::default())
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
    /// The TAM key is not P-256, or the provider failed (RNG); `CoseError::Malformed`
    /// if the report does not encode ([`Report::to_cbor`], a bug).
    pub fn encrypt(
        &self,
        provider: &dyn CryptoProvider,
        tam_key: &PublicKey,
    ) -> Result<Vec<u8>, CoseError> {
        teep_cose::encrypt::encrypt_esdh(
            provider,
            tam_key,
            ContentAlgorithm::default(),
            &self
                .to_cbor()
                .map_err(|e| CoseError::Malformed(format!("SUIT_Report: {e}")))?,
            SUIT_REPORT_ENCRYPTION,
        )
    }

    /// The report as `SUIT_Report` CBOR (deterministic: keys in ascending order).
    ///
    /// # Errors
    /// [`SuitError::Encode`] only if this encoder writes an entry of the wrong shape (a
    /// bug): the report is made of typed values that always encode.
    pub fn to_cbor(&self) -> Result<Vec<u8>, SuitError> {
        Ok(encode_vec(|e| {
            MapEncoder::write_to(e, |m| self.entries(m))
        })?)
    }

    /// The report's map entries, keys ascending.
    fn entries(&self, m: &mut MapEncoder) -> Result<(), EncodeError> {
        if let Some(nonce) = &self.nonce {
            m.entry(2, bstr(nonce))?;
        }
        m.entry_nested::<ArrayKind, _>(3, |a| {
            for entry in &self.records {
                match entry {
                    Entry::Record(r) => a.item_nested::<ArrayKind>(|a| record_items(a, r))?,
                    Entry::System(s) => a.item_nested::<MapKind>(|m| {
                        m.entry_with(0, appended(|out| s.component.encode(out)))?;
                        s.properties.encode_entries(m)
                    })?,
                };
            }
            Ok(())
        })?;
        match &self.result {
            Ok(()) => m.entry(4, true)?,
            Err(f) => m.entry_nested::<MapKind, _>(4, |r| {
                r.entry(5, f.error.code())?
                    .entry_nested::<ArrayKind, _>(6, |a| record_items(a, &f.record))?
                    .entry(7, f.error.report_reason())?;
                Ok(())
            })?,
        };
        if self.capabilities {
            m.entry_nested::<MapKind, _>(8, |c| {
                // Any component ([true] = every path), then commands, parameters, algorithms.
                c.entry_nested::<ArrayKind, _>(1, |a| {
                    a.item_nested::<ArrayKind>(|path| path.item(true).map(drop))
                        .map(drop)
                })?
                .entry_nested::<ArrayKind, _>(2, |a| ints(a, COMMANDS))?
                .entry_nested::<ArrayKind, _>(3, |a| ints(a, PARAMETERS))?
                .entry_nested::<ArrayKind, _>(4, |a| ints(a, ALGORITHMS))?;
                Ok(())
            })?;
        }
        m.entry_nested::<ArrayKind, _>(99, |a| {
            if let Some(uri) = &self.reference_uri {
                a.item(uri.as_str())?;
            }
            a.item_with(appended(|out| self.manifest_digest.encode(out)))
                .map(drop)
        })?;
        Ok(())
    }
}

/// TAM side of [`Report::encrypt`]: decrypts a `suit-reports` entry with the TAM's P-256 key
/// and returns the `SUIT_Report` CBOR, checked to decode as a SUIT_Report (as
/// [`ReceivedReport::decode`] reads it). [`ReceivedReport::decode`] also gives the decoded
/// report, and takes signed reports too.
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
    let report = decrypt_to_tam(provider, encrypted, tam_key)?;
    decode_report(&report)?;
    Ok(report)
}

/// Opens a COSE_Encrypt made by [`Report::encrypt`] (or over a signed report).
fn decrypt_to_tam(
    provider: &dyn CryptoProvider,
    encrypted: &[u8],
    tam_key: &PrivateKey,
) -> Result<Vec<u8>, SuitError> {
    let keys = [DecryptionKey::EcdhEs(tam_key.clone())];
    let mut plain =
        teep_cose::encrypt::decrypt(provider, encrypted, None, &keys, SUIT_REPORT_ENCRYPTION)
            .map_err(SuitError::Decryption)?;
    Ok(core::mem::take(&mut *plain))
}

/// What a TAM knows to check a device's reports with.
#[derive(Clone, Copy)]
pub struct ReportKeys<'a> {
    /// Crypto for the signature check and the report decryption.
    pub provider: &'a dyn CryptoProvider,
    /// The device's report-signing keys: a COSE_Sign1 report must verify with one.
    pub device: &'a TrustStore,
    /// The TAM's P-256 key for reports encrypted to it (`None`: encrypted reports fail).
    pub tam: Option<&'a PrivateKey>,
    /// Refuse a report without the device's signature (plain, or encrypted only). A plain
    /// report inside a signed TEEP message is authenticated by that message's signature.
    pub require_signature: bool,
}

/// How a received report was protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Protection {
    /// The device key whose COSE_Sign1 verified (`None`: not signed).
    pub signer: Option<PublicKey>,
    /// Whether it came encrypted to the TAM.
    pub encrypted: bool,
}

/// `suit-report-result` of a failed procedure, as the device sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedFailure {
    /// `suit-report-result-code` (implementation specific; ours is [`SuitError::code`]).
    pub code: i64,
    /// `suit-report-result-reason` (draft-ietf-suit-report's table).
    pub reason: u64,
    /// Where it failed.
    pub record: Record,
}

/// A SUIT report received from a device (TEEP `suit-reports`), decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedReport {
    /// `suit-report-nonce`: checking that it is the token the TAM sent is the caller's
    /// business.
    pub nonce: Option<Vec<u8>>,
    /// The manifest's reference URI, when the device sent one.
    pub manifest_uri: Option<String>,
    /// The root manifest's digest (all zeros when the device had no manifest to digest).
    pub manifest_digest: Digest,
    /// `suit-report-records`, decoded.
    pub records: Vec<Entry>,
    /// `suit-report-result`: `Ok` for `true`.
    pub result: Result<(), ReceivedFailure>,
    /// The encoded `suit-report-capability-report`, when present.
    pub capabilities: Option<Vec<u8>>,
    /// How the report was protected (signed, encrypted).
    pub protection: Protection,
}

impl ReceivedReport {
    /// Decodes a report that is plain `SUIT_Report` CBOR, a COSE_Sign1 over it with a key
    /// of `keys.device` (tagged or not), or a COSE_Encrypt to `keys.tam` of either.
    ///
    /// # Errors
    /// [`SuitError::Authentication`] (signature does not verify with a device key),
    /// [`SuitError::Decryption`], [`SuitError::NoDecryptor`] (encrypted, no TAM key),
    /// [`SuitError::UnsignedReport`] (`require_signature`), [`SuitError::Malformed`] (no
    /// SUIT_Report, or a COSE structure other than these).
    pub fn decode(bytes: &[u8], keys: &ReportKeys<'_>) -> Result<Self, SuitError> {
        let mut encrypted = false;
        let decrypted;
        let mut bytes = bytes;
        if cose_tag(bytes)? == Some(TAG_ENCRYPT) {
            let tam = keys.tam.ok_or(SuitError::NoDecryptor)?;
            decrypted = decrypt_to_tam(keys.provider, bytes, tam)?;
            bytes = &decrypted;
            encrypted = true;
        }
        let signed = match cose_tag(bytes)? {
            Some(TAG_SIGN1) => true,
            None => Reader::new(bytes).next_type()? == Type::Array,
            Some(tag) => return Err(SuitError::UnsupportedAuthenticationBlock(tag)),
        };
        let (payload, signer) = if signed {
            let cx = VerifyContext::new(keys.provider, keys.device);
            let verified =
                teep_cose::verify_sign1(bytes, &cx).map_err(SuitError::Authentication)?;
            (Cow::Owned(verified.payload), Some(verified.signer))
        } else {
            (Cow::Borrowed(bytes), None)
        };
        if keys.require_signature && signer.is_none() {
            return Err(SuitError::UnsignedReport);
        }
        let mut report = decode_report(&payload)?;
        report.protection = Protection { signer, encrypted };
        Ok(report)
    }
}

const TAG_SIGN1: u64 = 18;
const TAG_ENCRYPT: u64 = 96;

/// The CBOR tag an item starts with, if any.
fn cose_tag(bytes: &[u8]) -> Result<Option<u64>, SuitError> {
    let mut r = Reader::new(bytes);
    if r.next_type()? == Type::Tag {
        Ok(Some(r.tag("COSE tag")?))
    } else {
        Ok(None)
    }
}

/// Decodes `SUIT_Report` CBOR: one definite map with integer keys, no repeats (at any
/// depth), holding `suit-reference` (99), `suit-report-records` (3) and
/// `suit-report-result` (4); unknown keys are extensions and are skipped.
fn decode_report(bytes: &[u8]) -> Result<ReceivedReport, SuitError> {
    let mut r = Reader::new(bytes);
    let entries = r.map("SUIT_Report")?;
    let mut seen = Vec::new();
    let (mut reference, mut records, mut result) = (None, None, None);
    let (mut nonce, mut capabilities) = (None, None);
    for _ in 0..entries {
        match int_key(&mut r, &mut seen, "SUIT_Report key")? {
            99 => reference = Some(decode_reference(&mut r)?),
            2 => nonce = Some(r.bytes("suit-report-nonce")?.to_vec()),
            3 => {
                let mut list = Vec::new();
                for _ in 0..r.array("suit-report-records")? {
                    list.push(if r.next_type()? == Type::Map {
                        Entry::System(decode_system_properties(&mut r)?)
                    } else {
                        Entry::Record(decode_record(&mut r)?)
                    });
                }
                records = Some(list);
            }
            4 => result = Some(decode_result(&mut r)?),
            8 => capabilities = Some(r.item("suit-report-capability-report")?.to_vec()),
            _ => {
                r.item("SUIT_Report extension")?;
            }
        }
    }
    r.expect_empty("bytes after the SUIT_Report")?;
    // What was skipped (capability report, extensions) is held to the TEEP profile too:
    // no repeated key anywhere, so no two readers see two different reports.
    teep_cbor::check(bytes, &teep_cbor::Profile::TEEP)
        .map_err(|e| malformed("SUIT_Report is not well-formed CBOR", e.offset))?;
    let (Some((manifest_uri, manifest_digest)), Some(records), Some(result)) =
        (reference, records, result)
    else {
        return Err(malformed(
            "SUIT_Report lacks reference, records or result",
            0,
        ));
    };
    Ok(ReceivedReport {
        nonce,
        manifest_uri,
        manifest_digest,
        records,
        result,
        capabilities,
        protection: Protection {
            signer: None,
            encrypted: false,
        },
    })
}

/// `SUIT_Reference`: `[? uri, digest]` (the URI is optional in the newest CDDL).
fn decode_reference(r: &mut Reader<'_>) -> Result<(Option<String>, Digest), SuitError> {
    let uri = match r.array("SUIT_Reference")? {
        1 => None,
        2 => Some(String::from(r.str("suit-report-manifest-uri")?)),
        _ => {
            return Err(malformed(
                "SUIT_Reference needs [? uri, digest]",
                r.position(),
            ));
        }
    };
    Ok((uri, Digest::decode(r)?))
}

fn decode_record(r: &mut Reader<'_>) -> Result<Record, SuitError> {
    let at = r.position();
    let n = r.array("SUIT_Record")?;
    if n < 5 {
        return Err(malformed("SUIT_Record needs five members", at));
    }
    let mut manifest_id = Vec::new();
    for _ in 0..r.array("suit-record-manifest-id")? {
        manifest_id.push(r.u64("suit-record-manifest-id")?);
    }
    let record = Record {
        manifest_id,
        section: r.u64("suit-record-manifest-section")?,
        offset: r.u64("suit-record-section-offset")?,
        component_index: r.u64("suit-record-component-index")?,
        properties: parameters(r.item("suit-record-properties")?)?,
    };
    for _ in 5..n {
        r.item("SUIT_Record extension")?;
    }
    Ok(record)
}

/// `system-property-claims`: the component ID under key 0, parameters under the rest.
fn decode_system_properties(r: &mut Reader<'_>) -> Result<SystemProperties, SuitError> {
    let at = r.position();
    let n = r.map("system-property-claims")?;
    let mut seen = Vec::new();
    let mut component = None;
    let mut rest = MapEncoder::new();
    for _ in 0..n {
        match int_key(r, &mut seen, "system-property-claims key")? {
            0 => component = Some(ComponentId::decode(r)?),
            key => {
                let value_at = r.position();
                let value = r.item("system property")?;
                rest.entry_with(key, |e| {
                    e.writer_mut().extend_from_slice(value);
                    Ok(())
                })
                .map_err(|_| malformed("system property", value_at))?;
            }
        }
    }
    let component = component.ok_or_else(|| malformed("system-component-id missing", at))?;
    let map = encode_vec(|e| rest.finish(e))?;
    Ok(SystemProperties {
        component,
        properties: parameters(&map)?,
    })
}

/// `SUIT_Parameters` of a report, decoded as the argument of override-parameters (the
/// one decoder of that map, so a report's parameters read as a manifest's do).
fn parameters(map: &[u8]) -> Result<Parameters, SuitError> {
    let sequence = [&[0x82, 0x14][..], map].concat();
    match parse_sequence(&sequence, 0)?.pop() {
        Some(Step {
            command: Command::OverrideParameters(p),
            ..
        }) => Ok(p),
        _ => Err(malformed("record properties", 0)),
    }
}

fn decode_result(r: &mut Reader<'_>) -> Result<Result<(), ReceivedFailure>, SuitError> {
    let at = r.position();
    if r.next_type()? == Type::Bool {
        return if r.bool("suit-report-result")? {
            Ok(Ok(()))
        } else {
            Err(malformed("suit-report-result is true or a map", at))
        };
    }
    let n = r.map("suit-report-result")?;
    let mut seen = Vec::new();
    let (mut code, mut record, mut reason) = (None, None, None);
    for _ in 0..n {
        match int_key(r, &mut seen, "suit-report-result key")? {
            5 => code = Some(r.i64("suit-report-result-code")?),
            6 => record = Some(decode_record(r)?),
            7 => reason = Some(r.u64("suit-report-result-reason")?),
            _ => return Err(malformed("unknown suit-report-result member", at)),
        }
    }
    match (code, record, reason) {
        (Some(code), Some(record), Some(reason)) => Ok(Err(ReceivedFailure {
            code,
            reason,
            record,
        })),
        _ => Err(malformed(
            "suit-report-result lacks code, record or reason",
            at,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report with one `suit-report-records` entry, `record` (hand-built bytes).
    fn with_record(record: &[u8]) -> Vec<u8> {
        // {3: [record], 4: true, 99: [[-16, h'']]}
        [
            &[0xa3, 0x03, 0x81][..],
            record,
            &[0x04, 0xf5, 0x18, 0x63, 0x81, 0x82, 0x2f, 0x40],
        ]
        .concat()
    }

    #[test]
    fn system_properties_are_re_encoded_as_the_map_they_came_in() {
        // {0: [h'61'], 2: h'cc..', 21: "u"}: the parameters come back as sent.
        let mut claims = alloc::vec![0xa3, 0x00, 0x81, 0x41, 0x61, 0x02, 0x50];
        claims.extend_from_slice(&[0xcc; 16]);
        claims.extend_from_slice(&[0x15, 0x61, b'u']);
        let got = decode_report(&with_record(&claims)).unwrap();
        let Some(Entry::System(s)) = got.records.first() else {
            panic!("{:?}", got.records);
        };
        assert_eq!(s.component, ComponentId::from_strs(&["a"]));
        assert_eq!(s.properties.class_id.as_deref(), Some(&[0xcc; 16][..]));
        assert_eq!(s.properties.uri.as_deref(), Some("u"));
        assert_eq!(s.properties.count(), 2);
    }

    #[test]
    fn system_properties_that_would_re_encode_wrongly_are_malformed() {
        for (claims, what) in [
            // A repeated parameter key.
            (
                &[0xa3, 0x00, 0x80, 0x0e, 0x01, 0x0e, 0x02][..],
                "duplicate map key",
            ),
            // No component ID: the remaining map would be counted n - 1 from nothing.
            (&[0xa1, 0x0e, 0x01], "system-component-id missing"),
            // A value with an indefinite head, and one holding an indefinite array.
            (&[0xa2, 0x00, 0x80, 0x0e, 0x9f, 0xff], "indefinite length"),
            (&[0xa2, 0x00, 0x80, 0x0e, 0x81, 0x9f, 0xff], "image size"),
        ] {
            match decode_report(&with_record(claims)) {
                Err(SuitError::Malformed { what: got, .. }) => {
                    assert_eq!(got, what, "{claims:02x?}");
                }
                other => panic!("{claims:02x?}: {other:?}"),
            }
        }
    }
}

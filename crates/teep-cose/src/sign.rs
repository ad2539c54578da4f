//! COSE_Sign1 and COSE_Sign (RFC 9052 §4) production and verification.
//!
//! Producing is done by hand-written deterministic CBOR (one exact-size allocation for the
//! Sig_structure and one for the output); parsing is done by `coset`, which keeps the
//! original protected-header bytes the signature covers. On top of coset this module
//! enforces: `alg` protected and fitting the key, `crit` understood, no header label in both
//! buckets, tagged or untagged input, no trailing bytes, and trust-anchor key selection.
//!
//! Choices pinned here (TEEP leaves tagging and key identification open, digest §16 item 14;
//! each has a test in `tests/sign_verify.rs` or `tests/x509.rs`):
//! - Output is tagged (18 / 98) by default; input may be tagged or untagged; any other tag
//!   is `Malformed`.
//! - kid = RFC 9679 thumbprint, written in the UNPROTECTED bucket; read from either.
//! - `x5chain` is written in the PROTECTED bucket (read from either) and, when present, wins
//!   over kid: the leaf must chain to a CA anchor, a trusted raw key does not stand in.
//! - A kid matching no anchor is `UntrustedSigner`; with no kid every trusted key fitting the
//!   alg is tried and none verifying is also `UntrustedSigner` (a forged signature and an
//!   unknown signer cannot be told apart without a kid).
//! - `crit` may name alg, crit, content type, kid and x5chain; anything else is
//!   `UnknownCriticalHeader`; `crit` in the unprotected bucket is `Malformed`.
//! - An alg coset cannot even represent (unregistered, non-private) is still reported as
//!   `UnsupportedAlgorithm(id)`, and in a COSE_Sign only its signature is skipped (the
//!   message parses, see [`parse_signed`]); a text alg is `Malformed`.
//! - COSE_Sign body headers must not carry `alg`; a COSE_Sign verifies when any signature by
//!   a trusted key verifies, else the most telling failure is returned (bad signature >
//!   certificate > alg/key mismatch or key_ops refusal > untrusted > unknown crit > other).
//! - A trust anchor's own COSE_Key `alg` and `key_ops` restrict what it verifies (see
//!   `KeyUse`): selected by kid it fails with `AlgorithmKeyMismatch` / `KeyOpNotPermitted`;
//!   without a kid it is not tried.
use alloc::string::ToString;
use alloc::vec::Vec;
use core::ops::Range;

use coset::cbor::value::Value;
use coset::{CoseSign, CoseSign1, Header, Label, RegisteredLabelWithPrivate};

use crate::alg::Algorithm;
use crate::error::CoseError;
use crate::key::PublicKey;
use crate::provider::Signer;
use crate::trust::{CaCertificate, VerifyContext};
use teep_cbor::encode::{self, Major};

/// CBOR tag of COSE_Sign1.
const TAG_SIGN1: u64 = 18;
/// CBOR tag of COSE_Sign.
const TAG_SIGN: u64 = 98;
const LABEL_ALG: i64 = 1;
const LABEL_KID: i64 = 4;
/// RFC 9360 `x5chain`.
const LABEL_X5CHAIN: i64 = 33;
const KID_LEN: usize = 32;
/// The simple value `null` (payload of a detached COSE_Sign1).
const NULL: u8 = 0xf6;

/// Header labels this library understands, hence may appear in `crit`: alg, crit, content
/// type, kid, x5chain.
const UNDERSTOOD: [i64; 5] = [1, 2, 3, 4, LABEL_X5CHAIN];

/// Options for producing COSE_Sign1 / COSE_Sign.
#[derive(Clone, Debug)]
pub struct SignOptions {
    /// Emit the CBOR tag (18 / 98). Default true.
    pub tagged: bool,
    /// Payload nil on the wire (carried elsewhere). Default false.
    pub detached: bool,
    /// Unprotected kid = RFC 9679 thumbprint of the signer's key. Default true.
    pub kid: bool,
    /// DER certificates, leaf first; put in the PROTECTED header (label 33) so the chain
    /// cannot be swapped. Empty (default) omits the header. In a COSE_Sign it goes to the
    /// first signer only, whose key must be the leaf's.
    pub x5chain: Vec<Vec<u8>>,
    /// Externally supplied data covered by the signature. Default empty.
    pub external_aad: Vec<u8>,
}

impl Default for SignOptions {
    fn default() -> Self {
        Self {
            tagged: true,
            detached: false,
            kid: true,
            x5chain: Vec::new(),
            external_aad: Vec::new(),
        }
    }
}

/// What the verifier checked and found.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The payload the signature covers (for a detached COSE_Sign1, the one given).
    pub payload: Vec<u8>,
    /// The key the signature verified with (a trusted raw key or a certified leaf key).
    pub signer: PublicKey,
    /// The CA anchor the `x5chain` verified to; `None` when a raw key verified.
    pub ca: Option<CaCertificate>,
    /// The protected `alg` of the signature that verified.
    pub alg: Algorithm,
    /// The `kid` that signature carried, if any (from either header bucket).
    pub kid: Option<Vec<u8>>,
}

/// A protected header bucket, either as received or to be written.
enum Protected<'a> {
    Received(&'a [u8]),
    Fresh {
        alg: Algorithm,
        x5chain: &'a [Vec<u8>],
    },
}

impl Protected<'_> {
    /// Length of the serialized header map (the content of the protected bstr).
    fn len(&self) -> usize {
        match self {
            Self::Received(bytes) => bytes.len(),
            Self::Fresh { alg, x5chain } => {
                let alg_len = 1 + encode::int_len(alg.cose_id());
                match x5chain_len(x5chain) {
                    0 => 1 + alg_len,
                    chain => 1 + alg_len + encode::int_len(LABEL_X5CHAIN) + chain,
                }
            }
        }
    }

    /// Writes the protected bstr (head and content).
    fn write(&self, out: &mut Vec<u8>) {
        encode::write_head(Major::Bytes, self.len() as u64, out);
        match self {
            Self::Received(bytes) => out.extend_from_slice(bytes),
            Self::Fresh { alg, x5chain } => {
                let with_chain = !x5chain.is_empty();
                encode::write_head(Major::Map, 1 + u64::from(with_chain), out);
                encode::write_int(LABEL_ALG, out);
                encode::write_int(alg.cose_id(), out);
                if with_chain {
                    encode::write_int(LABEL_X5CHAIN, out);
                    write_x5chain(out, x5chain);
                }
            }
        }
    }
}

/// RFC 9360: a single certificate is a bstr, several are an array of bstr.
fn x5chain_len(chain: &[Vec<u8>]) -> usize {
    match chain {
        [] => 0,
        [one] => encode::bytes_len(one.len()),
        many => {
            encode::head_len(many.len() as u64)
                + many
                    .iter()
                    .map(|c| encode::bytes_len(c.len()))
                    .sum::<usize>()
        }
    }
}

fn write_x5chain(out: &mut Vec<u8>, chain: &[Vec<u8>]) {
    match chain {
        [] => {}
        [one] => encode::write_bytes(one, out),
        many => {
            encode::write_head(Major::Array, many.len() as u64, out);
            for cert in many {
                encode::write_bytes(cert, out);
            }
        }
    }
}

/// Builds the Sig_structure in one exact-size allocation; returns it with the byte range of
/// the signer's protected bstr inside it (so the producer can copy it to the output).
///
/// `body_protected` is `Some` for COSE_Sign ("Signature"), `None` for COSE_Sign1.
fn sig_structure(
    body_protected: Option<&[u8]>,
    sign_protected: &Protected<'_>,
    external_aad: &[u8],
    payload: &[u8],
) -> (Vec<u8>, Range<usize>) {
    let (mut out, range) = sig_structure_head(
        body_protected,
        sign_protected,
        external_aad,
        encode::bytes_len(payload.len()),
    );
    encode::write_bytes(payload, &mut out);
    (out, range)
}

/// The Sig_structure up to its payload's bstr (with `room` bytes reserved after it), and
/// the byte range of the signer's protected bstr inside it.
fn sig_structure_head(
    body_protected: Option<&[u8]>,
    sign_protected: &Protected<'_>,
    external_aad: &[u8],
    room: usize,
) -> (Vec<u8>, Range<usize>) {
    let context: &str = if body_protected.is_some() {
        "Signature"
    } else {
        "Signature1"
    };
    let len = 1
        + 1
        + context.len()
        + body_protected.map_or(0, |b| encode::bytes_len(b.len()))
        + encode::bytes_len(sign_protected.len())
        + encode::bytes_len(external_aad.len())
        + room;
    let mut out = Vec::with_capacity(len);
    encode::write_head(
        Major::Array,
        4 + u64::from(body_protected.is_some()),
        &mut out,
    );
    encode::write_text(context, &mut out);
    if let Some(body) = body_protected {
        encode::write_bytes(body, &mut out);
    }
    let start = out.len();
    sign_protected.write(&mut out);
    let range = start..out.len();
    encode::write_bytes(external_aad, &mut out);
    (out, range)
}

/// Unprotected bucket of a produced signature: `{4: kid}` or `{}`.
fn unprotected_len(kid: bool) -> usize {
    if kid {
        1 + 1 + encode::bytes_len(KID_LEN)
    } else {
        1
    }
}

fn write_unprotected(out: &mut Vec<u8>, kid: Option<&[u8; KID_LEN]>) {
    match kid {
        Some(kid) => {
            encode::write_head(Major::Map, 1, out);
            encode::write_int(LABEL_KID, out);
            encode::write_bytes(kid, out);
        }
        None => encode::write_head(Major::Map, 0, out),
    }
}

fn payload_len(payload: &[u8], detached: bool) -> usize {
    if detached {
        1
    } else {
        encode::bytes_len(payload.len())
    }
}

fn write_payload(out: &mut Vec<u8>, payload: &[u8], detached: bool) {
    if detached {
        out.push(NULL);
    } else {
        encode::write_bytes(payload, out);
    }
}

/// Produces a COSE_Sign1 with `alg` protected and (by default) the signer's thumbprint as
/// unprotected kid.
pub fn sign1(
    signer: &dyn Signer,
    payload: &[u8],
    opts: &SignOptions,
) -> Result<Vec<u8>, CoseError> {
    sign1_with(signer, opts, payload.len(), |out| {
        out.extend_from_slice(payload);
        Ok(())
    })
}

/// Room for the longest signature bstr (ES512: 132 bytes and a two-byte head).
const SIGNATURE_ROOM: usize = 2 + 132;

/// [`sign1`] over the payload `write` appends to the buffer it is given (`capacity`: the
/// payload's expected size). One buffer serves throughout: the payload is written once,
/// signed in place behind the Sig_structure's head, and the COSE_Sign1's head then takes
/// that head's place in front of it. Encoding a payload and then calling [`sign1`] takes
/// three buffers of the payload's size, each fresh memory: for an Update carrying a
/// 64 KiB TC that was a sixth of the TAM's own work per session, most of it page faults.
///
/// # Errors
/// What `write` returns, or the signer's error.
pub fn sign1_with<E: From<CoseError>>(
    signer: &dyn Signer,
    opts: &SignOptions,
    capacity: usize,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    let protected = Protected::Fresh {
        alg: signer.algorithm(),
        x5chain: &opts.x5chain,
    };
    // Sig_structure = ["Signature1", protected, external_aad, payload]: its head up to the
    // payload's bstr head.
    let (tbs_head, protected_range) = sig_structure_head(None, &protected, &opts.external_aad, 0);
    let protected_bytes = tbs_head
        .get(protected_range)
        .ok_or(CoseError::Crypto("Sig_structure layout"))?;
    // COSE_Sign1 = [protected, unprotected, payload, signature], tagged by default.
    let kid = opts.kid.then(|| signer.public_key().thumbprint());
    let mut cose_head = Vec::with_capacity(2 + protected_bytes.len() + unprotected_len(opts.kid));
    if opts.tagged {
        encode::write_head(Major::Tag, TAG_SIGN1, &mut cose_head);
    }
    encode::write_head(Major::Array, 4, &mut cose_head);
    cose_head.extend_from_slice(protected_bytes);
    write_unprotected(&mut cose_head, kid.as_ref());
    // The payload goes after room for the longer head and the longest bstr head.
    let room = tbs_head.len().max(cose_head.len()) + encode::head_len(u64::MAX);
    let mut buf = Vec::with_capacity(room + capacity + SIGNATURE_ROOM);
    buf.resize(room, 0);
    write(&mut buf)?;
    let payload_len = buf.len() - room;
    let tbs_at = put_before(&mut buf, room, &tbs_head, payload_len)?;
    let tbs = buf
        .get(tbs_at..)
        .ok_or(CoseError::Crypto("Sig_structure layout"))?;
    let signature = signer.sign(tbs)?;
    if opts.detached {
        let mut out = Vec::with_capacity(cose_head.len() + 1 + SIGNATURE_ROOM);
        out.extend_from_slice(&cose_head);
        write_payload(&mut out, &[], true);
        encode::write_bytes(&signature, &mut out);
        return Ok(out);
    }
    let cose_at = put_before(&mut buf, room, &cose_head, payload_len)?;
    encode::write_bytes(&signature, &mut buf);
    buf.drain(..cose_at);
    Ok(buf)
}

/// Writes `head` and the bstr head of a `payload_len`-byte payload into `buf` so that they
/// end at `at`, where the payload starts; returns where they start.
fn put_before(
    buf: &mut [u8],
    at: usize,
    head: &[u8],
    payload_len: usize,
) -> Result<usize, CoseError> {
    let mut prefix = Vec::with_capacity(head.len() + encode::head_len(u64::MAX));
    prefix.extend_from_slice(head);
    encode::write_head(Major::Bytes, payload_len as u64, &mut prefix);
    let start = at
        .checked_sub(prefix.len())
        .ok_or(CoseError::Crypto("COSE_Sign1 layout"))?;
    buf.get_mut(start..at)
        .ok_or(CoseError::Crypto("COSE_Sign1 layout"))?
        .copy_from_slice(&prefix);
    Ok(start)
}

/// Produces a COSE_Sign with one COSE_Signature per signer (empty body headers).
pub fn sign(
    signers: &[&dyn Signer],
    payload: &[u8],
    opts: &SignOptions,
) -> Result<Vec<u8>, CoseError> {
    if signers.is_empty() {
        return Err(CoseError::malformed("COSE_Sign needs at least one signer"));
    }
    let mut signatures = Vec::with_capacity(signers.len());
    for (i, signer) in signers.iter().enumerate() {
        let protected = Protected::Fresh {
            alg: signer.algorithm(),
            x5chain: if i == 0 { &opts.x5chain } else { &[] },
        };
        let (tbs, range) = sig_structure(Some(&[]), &protected, &opts.external_aad, payload);
        let signature = signer.sign(&tbs)?;
        let kid = opts.kid.then(|| signer.public_key().thumbprint());
        let mut entry = Vec::with_capacity(
            1 + range.len() + unprotected_len(opts.kid) + encode::bytes_len(signature.len()),
        );
        encode::write_head(Major::Array, 3, &mut entry);
        entry.extend_from_slice(
            tbs.get(range)
                .ok_or(CoseError::Crypto("Sig_structure layout"))?,
        );
        write_unprotected(&mut entry, kid.as_ref());
        encode::write_bytes(&signature, &mut entry);
        signatures.push(entry);
    }
    let mut out = Vec::with_capacity(
        3 + 1
            + 2
            + payload_len(payload, opts.detached)
            + encode::head_len(signers.len() as u64)
            + signatures.iter().map(Vec::len).sum::<usize>(),
    );
    if opts.tagged {
        encode::write_head(Major::Tag, TAG_SIGN, &mut out);
    }
    encode::write_head(Major::Array, 4, &mut out);
    encode::write_bytes(&[], &mut out);
    encode::write_head(Major::Map, 0, &mut out);
    write_payload(&mut out, payload, opts.detached);
    encode::write_head(Major::Array, signers.len() as u64, &mut out);
    for entry in &signatures {
        out.extend_from_slice(entry);
    }
    Ok(out)
}

/// The verified facts of one signer's header buckets.
struct SignerHeaders<'a> {
    alg: Algorithm,
    kid: Option<&'a [u8]>,
    x5chain: Option<Vec<&'a [u8]>>,
}

/// Label of a header entry, for `crit` and duplicate checks.
fn header_labels(header: &Header) -> Vec<Label> {
    let mut labels = Vec::new();
    if header.alg.is_some() {
        labels.push(Label::Int(LABEL_ALG));
    }
    if !header.crit.is_empty() {
        labels.push(Label::Int(2));
    }
    if header.content_type.is_some() {
        labels.push(Label::Int(3));
    }
    if !header.key_id.is_empty() {
        labels.push(Label::Int(LABEL_KID));
    }
    if !header.iv.is_empty() {
        labels.push(Label::Int(5));
    }
    if !header.partial_iv.is_empty() {
        labels.push(Label::Int(6));
    }
    if !header.counter_signatures.is_empty() {
        labels.push(Label::Int(7));
    }
    labels.extend(header.rest.iter().map(|(l, _)| l.clone()));
    labels
}

/// Checks rules common to every bucket pair: no label in both buckets, `crit` only in the
/// protected bucket and naming only labels we understand.
fn check_buckets(protected: &Header, unprotected: &Header) -> Result<(), CoseError> {
    if !unprotected.crit.is_empty() {
        return Err(CoseError::malformed("crit in the unprotected header"));
    }
    let in_protected = header_labels(protected);
    if header_labels(unprotected)
        .iter()
        .any(|l| in_protected.contains(l))
    {
        return Err(CoseError::malformed(
            "header label in both protected and unprotected buckets",
        ));
    }
    for label in &protected.crit {
        let understood = match label {
            RegisteredLabelWithPrivate::Assigned(p) => UNDERSTOOD.contains(&(*p as i64)),
            RegisteredLabelWithPrivate::PrivateUse(_) | RegisteredLabelWithPrivate::Text(_) => {
                false
            }
        };
        if !understood {
            let name = match label {
                RegisteredLabelWithPrivate::Assigned(p) => (*p as i64).to_string(),
                RegisteredLabelWithPrivate::PrivateUse(i) => i.to_string(),
                RegisteredLabelWithPrivate::Text(t) => t.clone(),
            };
            return Err(CoseError::UnknownCriticalHeader(name));
        }
    }
    Ok(())
}

fn signer_headers<'a>(
    protected: &'a Header,
    unprotected: &'a Header,
) -> Result<SignerHeaders<'a>, CoseError> {
    check_buckets(protected, unprotected)?;
    let alg = match &protected.alg {
        None => return Err(CoseError::MissingAlgorithm),
        Some(RegisteredLabelWithPrivate::Assigned(a)) => {
            let id = *a as i64;
            Algorithm::from_cose_id(id).ok_or(CoseError::UnsupportedAlgorithm(id))?
        }
        Some(RegisteredLabelWithPrivate::PrivateUse(id)) => {
            return Err(CoseError::UnsupportedAlgorithm(*id));
        }
        // Pinned: text algorithm names are not COSE-registered; treated as malformed.
        Some(RegisteredLabelWithPrivate::Text(_)) => {
            return Err(CoseError::malformed("text alg label"));
        }
    };
    let kid = [&protected.key_id, &unprotected.key_id]
        .into_iter()
        .find(|k| !k.is_empty())
        .map(Vec::as_slice);
    let x5chain = protected
        .rest
        .iter()
        .chain(&unprotected.rest)
        .find(|(l, _)| *l == Label::Int(LABEL_X5CHAIN))
        .map(|(_, v)| parse_x5chain(v))
        .transpose()?;
    Ok(SignerHeaders { alg, kid, x5chain })
}

fn parse_x5chain(value: &Value) -> Result<Vec<&[u8]>, CoseError> {
    match value {
        Value::Bytes(cert) => Ok(alloc::vec![cert.as_slice()]),
        Value::Array(certs) if !certs.is_empty() => certs
            .iter()
            .map(|c| {
                c.as_bytes()
                    .map(Vec::as_slice)
                    .ok_or_else(|| CoseError::malformed("x5chain entry is not a bstr"))
            })
            .collect(),
        _ => Err(CoseError::malformed(
            "x5chain is not a bstr or array of bstr",
        )),
    }
}

/// Picks the key per the trust rules and verifies `signature` over `tbs` with it; returns
/// the key and, for a certificate chain, the CA anchor it verified to.
fn verify_with_trusted_key(
    headers: &SignerHeaders<'_>,
    tbs: &[u8],
    signature: &[u8],
    cx: &VerifyContext<'_>,
) -> Result<(PublicKey, Option<CaCertificate>), CoseError> {
    let alg = headers.alg;
    cx.allow(alg)?;
    if let Some(chain) = &headers.x5chain {
        let (leaf, ca) = certified_key(chain, cx)?;
        cx.provider.verify(&leaf, alg, tbs, signature)?;
        return Ok((leaf, Some(ca)));
    }
    if let Some(kid) = headers.kid {
        let key = cx.trust.key_by_kid(kid).ok_or(CoseError::UntrustedSigner)?;
        cx.provider.verify(key, alg, tbs, signature)?;
        return Ok((key.clone(), None));
    }
    // Without a kid a signature that verifies with no anchor is indistinguishable from one
    // by an unknown key, so that is what it is called.
    cx.trust
        .keys()
        .iter()
        .filter(|k| k.accepts(alg))
        .find(|k| cx.provider.verify(k, alg, tbs, signature).is_ok())
        .map(|k| (k.clone(), None))
        .ok_or(CoseError::UntrustedSigner)
}

#[cfg(feature = "x509")]
fn certified_key(
    chain: &[&[u8]],
    cx: &VerifyContext<'_>,
) -> Result<(PublicKey, CaCertificate), CoseError> {
    crate::x509::verify_chain(chain, cx)
}

/// Without X.509 support a certificate chain can never be trusted.
#[cfg(not(feature = "x509"))]
fn certified_key(
    _chain: &[&[u8]],
    _cx: &VerifyContext<'_>,
) -> Result<(PublicKey, CaCertificate), CoseError> {
    Err(crate::error::CertificateError::Unsupported("built without the x509 feature".into()).into())
}

/// Which COSE structure a byte string holds, judged from its tag.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Structure {
    Sign1,
    Sign,
    Untagged,
}

/// Reads the leading tag (if any); other tags are rejected.
fn structure_of(cose: &[u8]) -> Result<Structure, CoseError> {
    match cose {
        [0xd2, ..] => Ok(Structure::Sign1),
        [0xd8, 0x62, ..] => Ok(Structure::Sign),
        [first, ..] if first >> 5 == Major::Tag as u8 => Err(CoseError::malformed(
            "unexpected CBOR tag on a COSE signed structure",
        )),
        [_, ..] => Ok(Structure::Untagged),
        [] => Err(CoseError::malformed("empty input")),
    }
}

/// A protected bucket whose `alg` coset could not represent, taken out before coset parsed
/// the structure and put back afterwards.
struct TakenAlg {
    id: i64,
    original: Vec<u8>,
}

/// The scratch buffer ciborium reads strings through by default.
const SCRATCH: usize = 4096;

/// Decodes exactly one CBOR item (no trailing bytes). A longer item gets a scratch buffer
/// as long as itself, so that each of its strings is read in one piece: through the
/// default 4 KiB one, an Update's 64 KiB payload was pulled in chunks into a growing
/// buffer (copied about three times, with a reallocation per doubling).
fn decode_item(bytes: &[u8]) -> Option<Value> {
    let mut rest = bytes;
    let value = if bytes.len() <= SCRATCH {
        coset::cbor::de::from_reader(&mut rest)
    } else {
        coset::cbor::de::from_reader_with_buffer(&mut rest, &mut alloc::vec![0; bytes.len()])
    }
    .ok()?;
    rest.is_empty().then_some(value)
}

/// If the protected bucket `bucket` (a bstr) holds exactly one `alg`, an integer coset has
/// no name for (neither registered nor private use), replaces the bucket by one without it
/// and returns the id and the original bytes. Anything else is left for coset to judge.
fn take_unregistered_alg(bucket: &mut Value) -> Option<TakenAlg> {
    use coset::iana::{EnumI64, WithPrivateRange};
    let Value::Bytes(original) = bucket else {
        return None;
    };
    let Some(Value::Map(entries)) = decode_item(original) else {
        return None;
    };
    let is_alg = |k: &Value| k.as_integer() == Some(LABEL_ALG.into());
    let mut algs = entries.iter().filter(|(k, _)| is_alg(k));
    let (Some((_, alg)), None) = (algs.next(), algs.next()) else {
        return None;
    };
    let id = i64::try_from(alg.as_integer()?).ok()?;
    if coset::iana::Algorithm::from_i64(id).is_some() || coset::iana::Algorithm::is_private(id) {
        return None;
    }
    let rest = entries.into_iter().filter(|(k, _)| !is_alg(k)).collect();
    let mut stripped = Vec::new();
    coset::cbor::ser::into_writer(&Value::Map(rest), &mut stripped).ok()?;
    let original = core::mem::replace(original, stripped);
    Some(TakenAlg { id, original })
}

/// Puts a taken bucket back: the original bytes (which the signature covers) and the `alg`
/// as `PrivateUse(id)`, coset's only variant for a number it does not know, so that
/// `signer_headers` reports it as `UnsupportedAlgorithm(id)`.
fn restore(protected: &mut coset::ProtectedHeader, taken: TakenAlg) {
    protected.original_data = Some(taken.original);
    protected.header.alg = Some(RegisteredLabelWithPrivate::PrivateUse(taken.id));
}

/// Parses a COSE structure with coset. coset refuses a whole structure when one `alg` is
/// an unregistered number (`UnregisteredIanaNonPrivateValue`, or inside a COSE_Sign just
/// "not a signature"), which would make a COSE_Sign unreadable because one signature
/// uses a suite added after this build (TEEP: the Agent verifies the signature whose
/// algorithm it supports). So on that refusal the parse is redone with such `alg`s taken
/// out of the signer buckets `buckets` selects, and put back with [`restore`]. Any other
/// refusal (including an unregistered `crit` label) stays `Malformed`.
fn parse_structure<T: coset::AsCborValue>(
    cose: &[u8],
    tagged: bool,
    buckets: fn(&mut [Value]) -> Vec<(usize, &mut Value)>,
    protected_of: fn(&mut T, usize) -> Option<&mut coset::ProtectedHeader>,
) -> Result<T, CoseError> {
    let malformed = |e: coset::CoseError| CoseError::Malformed(alloc::format!("{e}"));
    // coset reports an unregistered `alg` inside a COSE_Signature as a generic "not a
    // signature", so any refusal looks for one (cold path: decode again rather than keep a
    // copy of every message).
    let e = match T::from_cbor_value(structure_value(cose, tagged)?) {
        Ok(parsed) => return Ok(parsed),
        Err(e) => e,
    };
    let mut value = structure_value(cose, tagged)?;
    let Value::Array(items) = &mut value else {
        return Err(malformed(e));
    };
    let taken: Vec<(usize, TakenAlg)> = buckets(items)
        .into_iter()
        .filter_map(|(i, bucket)| Some((i, take_unregistered_alg(bucket)?)))
        .collect();
    if taken.is_empty() {
        return Err(malformed(e));
    }
    let mut parsed = T::from_cbor_value(value).map_err(malformed)?;
    for (i, alg) in taken {
        let protected =
            protected_of(&mut parsed, i).ok_or(CoseError::Crypto("COSE bucket layout"))?;
        restore(protected, alg);
    }
    Ok(parsed)
}

/// The CBOR item of a COSE structure, its tag (already checked by `structure_of`) removed.
fn structure_value(cose: &[u8], tagged: bool) -> Result<Value, CoseError> {
    match (tagged, decode_item(cose)) {
        (true, Some(Value::Tag(_, inner))) => Ok(*inner),
        (false, Some(value)) => Ok(value),
        (true, Some(_)) => Err(CoseError::malformed("missing COSE tag")),
        (_, None) => Err(CoseError::malformed("not one well-formed CBOR item")),
    }
}

/// The protected bucket of a COSE_Sign1 (index 0 of its array).
fn sign1_bucket(items: &mut [Value]) -> Vec<(usize, &mut Value)> {
    items.first_mut().map(|b| (0, b)).into_iter().collect()
}

/// The protected bucket of each COSE_Signature of a COSE_Sign (never the body's, where
/// `alg` has no place).
fn signature_buckets(items: &mut [Value]) -> Vec<(usize, &mut Value)> {
    match items.get_mut(3) {
        Some(Value::Array(signatures)) => signatures
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Value::Array(parts) => Some((i, parts.first_mut()?)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn parse_sign1(cose: &[u8]) -> Result<CoseSign1, CoseError> {
    let tagged = match structure_of(cose)? {
        Structure::Sign1 => true,
        Structure::Untagged => false,
        Structure::Sign => return Err(CoseError::malformed("COSE_Sign where COSE_Sign1 expected")),
    };
    parse_structure(cose, tagged, sign1_bucket, |s: &mut CoseSign1, _| {
        Some(&mut s.protected)
    })
}

fn parse_sign(cose: &[u8]) -> Result<CoseSign, CoseError> {
    let tagged = match structure_of(cose)? {
        Structure::Sign => true,
        Structure::Untagged => false,
        Structure::Sign1 => {
            return Err(CoseError::malformed("COSE_Sign1 where COSE_Sign expected"));
        }
    };
    parse_structure(cose, tagged, signature_buckets, |s: &mut CoseSign, i| {
        s.signatures.get_mut(i).map(|sig| &mut sig.protected)
    })
}

/// A COSE_Sign1 or COSE_Sign as read, before any signature is checked.
#[derive(Clone, Debug)]
pub enum ParsedSigned {
    /// A single-signer COSE_Sign1 (RFC 9052 §4.2).
    Sign1 {
        /// The message as `coset` parsed it; nothing in it is verified yet.
        message: CoseSign1,
        /// Whether the CBOR tag (18) was present.
        tagged: bool,
    },
    /// A multi-signer COSE_Sign (RFC 9052 §4.1).
    Sign {
        /// The message as `coset` parsed it; nothing in it is verified yet.
        message: CoseSign,
        /// Whether the CBOR tag (98) was present.
        tagged: bool,
    },
}

/// Reads a COSE_Sign1 or COSE_Sign (tagged or not; any other tag, trailing bytes or a
/// structure coset refuses is `Malformed`) WITHOUT checking any signature or header rule:
/// the typed parse every verification starts with, for callers that look before they
/// trust. An integer `alg` coset has no name for is carried as
/// `RegisteredLabelWithPrivate::PrivateUse(id)`; verification reports such a signature as
/// `UnsupportedAlgorithm(id)` and, in a COSE_Sign, skips it for the others.
pub fn parse_signed(cose: &[u8]) -> Result<ParsedSigned, CoseError> {
    match structure_of(cose)? {
        Structure::Sign1 => Ok(ParsedSigned::Sign1 {
            message: parse_sign1(cose)?,
            tagged: true,
        }),
        Structure::Sign => Ok(ParsedSigned::Sign {
            message: parse_sign(cose)?,
            tagged: true,
        }),
        // A COSE_Sign1 ends in a bstr, a COSE_Sign in an array: try the common one first.
        Structure::Untagged => match parse_sign1(cose) {
            Ok(message) => Ok(ParsedSigned::Sign1 {
                message,
                tagged: false,
            }),
            Err(sign1_err) => parse_sign(cose)
                .map(|message| ParsedSigned::Sign {
                    message,
                    tagged: false,
                })
                .map_err(|_| sign1_err),
        },
    }
}

fn protected_bytes(protected: &coset::ProtectedHeader) -> &[u8] {
    protected.original_data.as_deref().unwrap_or(&[])
}

fn verify_parsed_sign1(
    sign1: CoseSign1,
    payload: &[u8],
    cx: &VerifyContext<'_>,
) -> Result<Verified, CoseError> {
    let headers = signer_headers(&sign1.protected.header, &sign1.unprotected)?;
    let protected = Protected::Received(protected_bytes(&sign1.protected));
    let (tbs, _) = sig_structure(None, &protected, cx.external_aad, payload);
    let (signer, ca) = verify_with_trusted_key(&headers, &tbs, &sign1.signature, cx)?;
    Ok(Verified {
        payload: Vec::new(),
        signer,
        ca,
        alg: headers.alg,
        kid: headers.kid.map(<[u8]>::to_vec),
    })
}

/// Verifies a COSE_Sign1 (tagged or not) carrying its payload.
pub fn verify_sign1(cose: &[u8], cx: &VerifyContext<'_>) -> Result<Verified, CoseError> {
    verify_attached_sign1(parse_sign1(cose)?, cx)
}

fn verify_attached_sign1(
    mut sign1: CoseSign1,
    cx: &VerifyContext<'_>,
) -> Result<Verified, CoseError> {
    let payload = sign1
        .payload
        .take()
        .ok_or_else(|| CoseError::malformed("detached payload; use verify_sign1_detached"))?;
    let verified = verify_parsed_sign1(sign1, &payload, cx)?;
    Ok(Verified {
        payload,
        ..verified
    })
}

/// Verifies a COSE_Sign1 whose payload is nil on the wire and given here.
pub fn verify_sign1_detached(
    cose: &[u8],
    payload: &[u8],
    cx: &VerifyContext<'_>,
) -> Result<Verified, CoseError> {
    let sign1 = parse_sign1(cose)?;
    if sign1.payload.is_some() {
        return Err(CoseError::malformed(
            "payload present where detached expected",
        ));
    }
    let verified = verify_parsed_sign1(sign1, payload, cx)?;
    Ok(Verified {
        payload: payload.to_vec(),
        ..verified
    })
}

/// Verifies a COSE_Sign: accepts when at least one signature by a trusted key (or certified
/// key) verifies. Signatures we cannot use (unsupported alg, untrusted key, unknown crit) are
/// skipped; if none verifies, the error of the most telling failure is returned.
pub fn verify_sign(cose: &[u8], cx: &VerifyContext<'_>) -> Result<Verified, CoseError> {
    verify_parsed_sign(parse_sign(cose)?, cx)
}

fn verify_parsed_sign(sign: CoseSign, cx: &VerifyContext<'_>) -> Result<Verified, CoseError> {
    let body = &sign.protected.header;
    check_buckets(body, &sign.unprotected)?;
    if body.alg.is_some() || sign.unprotected.alg.is_some() {
        return Err(CoseError::malformed("alg in the COSE_Sign body headers"));
    }
    let payload = sign
        .payload
        .ok_or_else(|| CoseError::malformed("COSE_Sign without payload"))?;
    let body_protected = protected_bytes(&sign.protected);
    let mut best: Option<CoseError> = None;
    for signature in &sign.signatures {
        let attempt = signer_headers(&signature.protected.header, &signature.unprotected).and_then(
            |headers| {
                let protected = Protected::Received(protected_bytes(&signature.protected));
                let (tbs, _) =
                    sig_structure(Some(body_protected), &protected, cx.external_aad, &payload);
                let (signer, ca) =
                    verify_with_trusted_key(&headers, &tbs, &signature.signature, cx)?;
                Ok((signer, ca, headers.alg, headers.kid.map(<[u8]>::to_vec)))
            },
        );
        match attempt {
            Ok((signer, ca, alg, kid)) => {
                return Ok(Verified {
                    payload,
                    signer,
                    ca,
                    alg,
                    kid,
                });
            }
            Err(e) => {
                if best.as_ref().is_none_or(|b| severity(&e) > severity(b)) {
                    best = Some(e);
                }
            }
        }
    }
    Err(best.unwrap_or(CoseError::UntrustedSigner))
}

/// Ranks why a COSE_Sign signature failed: a signature that was checked and failed says more
/// than one we could not use at all.
fn severity(e: &CoseError) -> u8 {
    match e {
        CoseError::BadSignature => 5,
        CoseError::Certificate(_) => 4,
        CoseError::AlgorithmKeyMismatch { .. } | CoseError::KeyOpNotPermitted(_) => 3,
        CoseError::UntrustedSigner => 2,
        CoseError::UnknownCriticalHeader(_) => 1,
        CoseError::Malformed(_)
        | CoseError::UnsupportedAlgorithm(_)
        | CoseError::DisallowedAlgorithm(_)
        | CoseError::MissingAlgorithm
        | CoseError::InvalidKey(_)
        | CoseError::DecryptionFailed
        | CoseError::UnauthenticatedContent { .. }
        | CoseError::Crypto(_) => 0,
    }
}

/// Verifies either structure (detects COSE_Sign1 vs COSE_Sign, tagged or not).
pub fn verify_signed(cose: &[u8], cx: &VerifyContext<'_>) -> Result<Verified, CoseError> {
    match parse_signed(cose)? {
        ParsedSigned::Sign1 { message, .. } => verify_attached_sign1(message, cx),
        ParsedSigned::Sign { message, .. } => verify_parsed_sign(message, cx),
    }
}

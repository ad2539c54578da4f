//! The engine's own persistent state and its sealed encoding.
//!
//! What must survive a restart besides the SUIT storage: the TAs apps asked for and no
//! longer need (they feed `requested-tc-list` / `unneeded-manifest-list` until a TAM acts
//! on them), what the Agent knows of each TAM it answered (the key that verified, for the
//! unsolicited-QueryResponse rule of §11), the tokens already answered (replay), and which
//! TAM installed each manifest (a TAM manages only the TCs it installed: RFC 9397 §4.4, "ACLs
//! per TAM key"). The TEE seals the bytes; the encoding is a small CBOR array, versioned:
//!
//! ```text
//! [ 3, [* [component-id, tam-uri / null]], [* component-id],
//!   [* [tam-uri, key-thumbprint, plain-query, error-since-response, applied-since-response]],
//!   [* token], passport-ear / null, [* [manifest-id, tam-key-thumbprint]] ]
//! ```
//!
//! Versions 1 (without `passport-ear` and the owners), 2 (without the owners) and 3
//! (without `applied-since-response`, read as false) are still read, so a device keeps its
//! state across the upgrade; their manifests have no recorded owner (any trusted TAM may
//! manage them, and the next one that installs one owns it).

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use minicbor::data::Type;
use minicbor::{Decoder, Encoder};
use teep_suit::ComponentId;

/// Version of the encoding written by [`AgentState::encode`].
const VERSION: u64 = 4;

/// A TA an app asked for (RequestTA) that is not installed yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Requested {
    pub component: ComponentId,
    pub tam_uri: Option<String>,
}

/// What the Agent remembers of a TAM it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KnownTam {
    pub uri: String,
    /// RFC 9679 thumbprint of the TAM key that verified its last QueryRequest.
    pub key: [u8; 32],
    /// That QueryRequest had neither token nor challenge (§11 condition 1).
    pub plain_query: bool,
    /// ProcessError was called for this TAM since our last QueryResponse (§11 condition 2).
    pub error_since_response: bool,
    /// An Update from this TAM was committed since our last QueryResponse to it: a further
    /// Update answers a QueryResponse that no longer describes the device, and is refused.
    pub applied_since_response: bool,
}

/// Everything the engine persists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AgentState {
    pub requested: Vec<Requested>,
    pub unneeded: Vec<ComponentId>,
    pub tams: Vec<KnownTam>,
    /// Tokens already answered, oldest first (bounded by the engine).
    pub tokens: VecDeque<Vec<u8>>,
    /// The Attestation Result the Agent presents in passport mode (COSE_Sign1 EAR).
    pub passport: Option<Vec<u8>>,
    /// The TAM (RFC 9679 thumbprint of the key its Update verified with) that installed
    /// each installed manifest, by manifest component ID; one entry per manifest.
    pub owners: Vec<(ComponentId, [u8; 32])>,
}

/// The sealed state does not decode (damaged or from a newer version).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the Agent's persistent state does not decode")]
pub struct StateDecodeError;

type Enc = Encoder<Vec<u8>>;
type EncResult = Result<(), minicbor::encode::Error<core::convert::Infallible>>;

fn put_cid(e: &mut Enc, id: &ComponentId) -> EncResult {
    e.array(id.0.len() as u64)?;
    for s in &id.0 {
        e.bytes(s)?;
    }
    Ok(())
}

fn get_cid(d: &mut Decoder<'_>) -> Result<ComponentId, minicbor::decode::Error> {
    let n = definite(d.array()?)?;
    let mut segments = Vec::new();
    for _ in 0..n {
        segments.push(d.bytes()?.to_vec());
    }
    Ok(ComponentId(segments))
}

fn definite(n: Option<u64>) -> Result<u64, minicbor::decode::Error> {
    n.ok_or_else(|| minicbor::decode::Error::message("indefinite length"))
}

impl AgentState {
    /// The sealed-state encoding.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new(Vec::new());
        // Writing into a Vec cannot fail.
        let _ = self.write(&mut e);
        e.into_writer()
    }

    fn write(&self, e: &mut Enc) -> EncResult {
        e.array(7)?.u64(VERSION)?;
        e.array(self.requested.len() as u64)?;
        for r in &self.requested {
            e.array(2)?;
            put_cid(e, &r.component)?;
            match &r.tam_uri {
                Some(uri) => e.str(uri)?,
                None => e.null()?,
            };
        }
        e.array(self.unneeded.len() as u64)?;
        for id in &self.unneeded {
            put_cid(e, id)?;
        }
        e.array(self.tams.len() as u64)?;
        for t in &self.tams {
            e.array(5)?
                .str(&t.uri)?
                .bytes(&t.key)?
                .bool(t.plain_query)?
                .bool(t.error_since_response)?
                .bool(t.applied_since_response)?;
        }
        e.array(self.tokens.len() as u64)?;
        for t in &self.tokens {
            e.bytes(t)?;
        }
        match &self.passport {
            Some(ear) => e.bytes(ear)?,
            None => e.null()?,
        };
        e.array(self.owners.len() as u64)?;
        for (manifest, tam) in &self.owners {
            e.array(2)?;
            put_cid(e, manifest)?;
            e.bytes(tam)?;
        }
        Ok(())
    }

    /// Reads what [`Self::encode`] wrote; anything else is [`StateDecodeError`].
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StateDecodeError> {
        let mut d = Decoder::new(bytes);
        let state = Self::read(&mut d).map_err(|_| StateDecodeError)?;
        if d.position() != bytes.len() {
            return Err(StateDecodeError);
        }
        Ok(state)
    }

    fn read(d: &mut Decoder<'_>) -> Result<Self, minicbor::decode::Error> {
        let bad = minicbor::decode::Error::message;
        let version = match (definite(d.array()?)?, d.u64()?) {
            (5, 1) => 1,
            (6, 2) => 2,
            (7, 3) => 3,
            (7, VERSION) => VERSION,
            _ => return Err(bad("unknown state version")),
        };
        let mut state = Self::default();
        for _ in 0..definite(d.array()?)? {
            if definite(d.array()?)? != 2 {
                return Err(bad("requested entry"));
            }
            let component = get_cid(d)?;
            let tam_uri = if d.datatype()? == Type::Null {
                d.skip()?;
                None
            } else {
                Some(String::from(d.str()?))
            };
            state.requested.push(Requested { component, tam_uri });
        }
        for _ in 0..definite(d.array()?)? {
            state.unneeded.push(get_cid(d)?);
        }
        for _ in 0..definite(d.array()?)? {
            let fields = if version >= 4 { 5 } else { 4 };
            if definite(d.array()?)? != fields {
                return Err(bad("tam entry"));
            }
            let uri = String::from(d.str()?);
            let key = <[u8; 32]>::try_from(d.bytes()?).map_err(|_| bad("thumbprint"))?;
            state.tams.push(KnownTam {
                uri,
                key,
                plain_query: d.bool()?,
                error_since_response: d.bool()?,
                applied_since_response: version >= 4 && d.bool()?,
            });
        }
        for _ in 0..definite(d.array()?)? {
            state.tokens.push_back(d.bytes()?.to_vec());
        }
        if version >= 2 {
            state.passport = if d.datatype()? == Type::Null {
                d.skip()?;
                None
            } else {
                Some(d.bytes()?.to_vec())
            };
        }
        if version >= 3 {
            for _ in 0..definite(d.array()?)? {
                if definite(d.array()?)? != 2 {
                    return Err(bad("owner entry"));
                }
                let manifest = get_cid(d)?;
                let tam = <[u8; 32]>::try_from(d.bytes()?).map_err(|_| bad("thumbprint"))?;
                state.owners.push((manifest, tam));
            }
        }
        Ok(state)
    }

    /// The record of the TAM at `uri`, if the Agent ever answered it.
    pub(crate) fn tam(&self, uri: &str) -> Option<&KnownTam> {
        self.tams.iter().find(|t| t.uri == uri)
    }

    /// Inserts or replaces the record of `tam.uri`.
    pub(crate) fn remember_tam(&mut self, tam: KnownTam) {
        match self.tams.iter_mut().find(|t| t.uri == tam.uri) {
            Some(t) => *t = tam,
            None => self.tams.push(tam),
        }
    }

    /// The TAM that installed `manifest`, if one is recorded.
    pub(crate) fn owner(&self, manifest: &ComponentId) -> Option<&[u8; 32]> {
        self.owners
            .iter()
            .find_map(|(m, tam)| (m == manifest).then_some(tam))
    }

    /// Records `tam` as the installer of `manifest` (replacing any earlier record).
    pub(crate) fn set_owner(&mut self, manifest: &ComponentId, tam: [u8; 32]) {
        self.owners.retain(|(m, _)| m != manifest);
        self.owners.push((manifest.clone(), tam));
    }

    /// Records an answered token, forgetting the oldest beyond `limit`.
    pub(crate) fn remember_token(&mut self, token: &[u8], limit: usize) {
        self.tokens.push_back(token.to_vec());
        while self.tokens.len() > limit {
            self.tokens.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> AgentState {
        let mut s = AgentState::default();
        s.requested.push(Requested {
            component: ComponentId::from_strs(&["TEEP-Device", "a"]),
            tam_uri: Some("https://tam.example/tam".into()),
        });
        s.requested.push(Requested {
            component: ComponentId::from_strs(&["b"]),
            tam_uri: None,
        });
        s.unneeded.push(ComponentId::from_strs(&["c", "suit"]));
        s.remember_tam(KnownTam {
            uri: "https://tam.example/tam".into(),
            key: [7; 32],
            plain_query: true,
            error_since_response: false,
            applied_since_response: true,
        });
        s.remember_token(&[1; 16], 2);
        s.remember_token(&[2; 16], 2);
        s.remember_token(&[3; 16], 2);
        s.passport = Some(vec![0xd2, 0x84]);
        s.set_owner(&ComponentId::from_strs(&["c", "suit"]), [9; 32]);
        s
    }

    #[test]
    fn state_round_trips_and_tokens_are_bounded() {
        let s = sample();
        assert_eq!(s.tokens, VecDeque::from([vec![2; 16], vec![3; 16]]));
        assert_eq!(AgentState::decode(&s.encode()), Ok(s));
    }

    #[test]
    fn damaged_state_is_an_error_not_a_panic() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert_eq!(AgentState::decode(&bytes[..cut]), Err(StateDecodeError));
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(AgentState::decode(&trailing), Err(StateDecodeError));
        let mut other_version = bytes;
        other_version[1] = 5;
        assert_eq!(AgentState::decode(&other_version), Err(StateDecodeError));
    }

    #[test]
    fn version_3_is_read_with_no_update_applied_since_a_response() {
        let mut s = sample();
        s.tams[0].applied_since_response = false;
        let mut v3 = s.encode();
        v3[1] = 3;
        // The TAM entry: [uri, key (34 bytes encoded), bool, bool] without the third bool.
        let uri = s.tams[0].uri.as_bytes();
        // The last occurrence: a requested entry names the same URI earlier.
        let at = v3.windows(uri.len()).rposition(|w| w == uri).unwrap();
        assert_eq!(v3[at - 2], 0x85);
        v3[at - 2] = 0x84;
        v3.remove(at + uri.len() + 34 + 2);
        assert_eq!(AgentState::decode(&v3), Ok(s));
    }

    #[test]
    fn versions_1_and_2_are_still_read_without_owners() {
        let mut s = sample();
        s.passport = None;
        s.owners.clear();
        // Versions 1 and 2 have 4-element TAM entries (like version 3).
        s.tams.clear();
        let v3 = s.encode();
        // v3 ends with the passport (null) and the empty owner list.
        assert_eq!(&v3[v3.len() - 2..], &[0xf6, 0x80]);
        // v2: a 6-element array with version 2, no owner list.
        let mut v2 = vec![0x86, 0x02];
        v2.extend_from_slice(&v3[2..v3.len() - 1]);
        assert_eq!(AgentState::decode(&v2), Ok(s.clone()));
        // v1: a 5-element array with version 1, no passport element either.
        let mut v1 = vec![0x85, 0x01];
        v1.extend_from_slice(&v3[2..v3.len() - 2]);
        assert_eq!(AgentState::decode(&v1), Ok(s));
    }

    #[test]
    fn owners_are_one_per_manifest() {
        let mut s = AgentState::default();
        let m = ComponentId::from_strs(&["m", "suit"]);
        assert_eq!(s.owner(&m), None);
        s.set_owner(&m, [1; 32]);
        s.set_owner(&m, [2; 32]);
        assert_eq!(s.owner(&m), Some(&[2; 32]));
        assert_eq!(s.owners.len(), 1);
    }
}

//! The TAM's own attestation (spec §5, §10 Error handling, §11 QueryRequest step 1): an
//! Attestation Result about the TAM, from a Verifier the Agent trusts, whose `cnf` is the
//! TAM's TEEP key. An Agent that demands it refuses a QueryRequest without it with
//! ERR_ATTESTATION_REQUIRED; the TAM then re-sends the QueryRequest carrying it.
//!
//! The engine asks an [`OwnAttestation`] source for the current result and never checks
//! it itself: the source hands out only results that verify (signature from the
//! configured Verifier key, `cnf` one of the TAM's keys, `iat` within the max age), so an
//! expired or foreign result is never sent. [`FileAttestation`] is the source for a result
//! kept in a file (re-read when the file changes); the result carries no nonce, so the
//! Agent takes it under the timestamp freshness mechanism.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use teep_attest::{ATTESTATION_RESULT_FORMAT, Ear, ResultCheck, verify_ear};
use teep_cose::{CryptoProvider, PublicKey, TrustStore};

/// An Attestation Result about the TAM, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnEar {
    /// The signed EAR (COSE_Sign1), the `attestation-payload`.
    pub ear: Vec<u8>,
    /// Its `attestation-payload-format`.
    pub format: String,
    /// The TAM key its `cnf` binds: the QueryRequest carrying it is signed with that key.
    pub key: PublicKey,
}

/// Where the TAM's current Attestation Result comes from. `Send + Sync`: one source
/// serves every request handler.
pub trait OwnAttestation: Send + Sync {
    /// The result valid at `now` (Unix seconds), or `None` (none yet, expired, or not
    /// verifying; the source logs why).
    fn current(&self, now: u64) -> Option<OwnEar>;
}

/// How the TAM attests itself.
pub struct SelfAttestation {
    /// The source of its Attestation Result.
    pub source: Box<dyn OwnAttestation>,
    /// Also send the result in a session's first QueryRequest, for Agents that demand it
    /// up front; otherwise only after ERR_ATTESTATION_REQUIRED.
    pub up_front: bool,
}

/// The `cnf` key of an EAR, read without checking the EAR: callers then check it with
/// [`verify_ear`] for exactly that key, so nothing rests on the unchecked read.
pub(crate) fn ear_cnf_key(ear: &[u8]) -> Option<PublicKey> {
    let payload = teep_proto::decode_unverified_cose(ear).ok()?.payload?;
    Ear::from_cbor(&payload).ok()?.cnf?.public_key().ok()
}

/// An Attestation Result kept in a file (made by `teep attest verify --ear-out`, or put
/// there by a Verifier client), re-read whenever its modification time or size changes
/// and checked on every use.
pub struct FileAttestation {
    path: PathBuf,
    provider: &'static dyn CryptoProvider,
    verifiers: TrustStore,
    tam_keys: Vec<PublicKey>,
    max_age: u64,
    cache: Mutex<Option<Cached>>,
}

struct Cached {
    stamp: (Option<SystemTime>, u64),
    bytes: Vec<u8>,
}

impl FileAttestation {
    /// The result in `path`, accepted when signed by one of `verifiers`, bound to one of
    /// `tam_keys` and at most `max_age` seconds old (by its `iat`).
    pub fn new(
        path: PathBuf,
        provider: &'static dyn CryptoProvider,
        verifiers: TrustStore,
        tam_keys: Vec<PublicKey>,
        max_age: u64,
    ) -> Self {
        Self {
            path,
            provider,
            verifiers,
            tam_keys,
            max_age,
            cache: Mutex::new(None),
        }
    }

    /// The file's bytes, from the cache unless the file changed.
    fn bytes(&self) -> Result<Vec<u8>, String> {
        let meta = std::fs::metadata(&self.path).map_err(|e| e.to_string())?;
        let stamp = (meta.modified().ok(), meta.len());
        // The cache is replaced whole, so a poisoned lock holds a consistent value.
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cache.as_ref().filter(|c| c.stamp == stamp) {
            return Ok(c.bytes.clone());
        }
        let bytes = std::fs::read(&self.path).map_err(|e| e.to_string())?;
        tracing::info!(path = %self.path.display(), "TAM attestation result (re)read");
        *cache = Some(Cached {
            stamp,
            bytes: bytes.clone(),
        });
        Ok(bytes)
    }

    fn check(&self, now: u64) -> Result<OwnEar, String> {
        let ear = self.bytes()?;
        let cnf = ear_cnf_key(&ear).ok_or("no cnf key")?;
        let key = self
            .tam_keys
            .iter()
            .find(|k| k.thumbprint() == cnf.thumbprint())
            .ok_or("cnf is not a TAM key")?;
        let check = ResultCheck {
            provider: self.provider,
            verifiers: &self.verifiers,
            nonce: None,
            now,
            max_age: self.max_age,
            teep_key: key,
        };
        verify_ear(&ear, &check).map_err(|e| e.to_string())?;
        Ok(OwnEar {
            ear,
            format: ATTESTATION_RESULT_FORMAT.into(),
            key: key.clone(),
        })
    }
}

impl OwnAttestation for FileAttestation {
    fn current(&self, now: u64) -> Option<OwnEar> {
        self.check(now)
            .map_err(|why| {
                tracing::warn!(path = %self.path.display(), %why, "TAM attestation result not usable");
            })
            .ok()
    }
}

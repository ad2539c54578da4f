//! The TAM's own attestation (spec §5, §10 Error handling, §11 QueryRequest step 1): an
//! Attestation Result about the TAM, from a Verifier the Agent trusts, whose `cnf` is the
//! TAM's TEEP key. An Agent that demands it refuses a QueryRequest without it with
//! ERR_ATTESTATION_REQUIRED; the TAM then re-sends the QueryRequest carrying it.
//!
//! The engine asks an [`OwnAttestation`] source for the current result and never checks
//! it itself: the source hands out only results that verify (signature from the
//! configured Verifier key, `cnf` one of the TAM's keys, `iat` within the max age), so an
//! expired or foreign result is never sent. [`FileAttestation`] is the source for a result
//! kept in a file (re-read when the file changes); [`RemoteAttestation`] gets it from a
//! remote Verifier and keeps it current in the background. Either way the result carries
//! no nonce of the Agent's, so the Agent takes it under the timestamp freshness mechanism.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use teep_attest::claims::TEEP_EAT_PROFILE;
use teep_attest::{
    ATTESTATION_RESULT_FORMAT, Appraiser, Cnf, Ear, EatClaims, ResultCheck, sign_evidence,
    verify_ear,
};
use teep_cose::{CryptoProvider, PublicKey, Signer, TrustStore};

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
    check: EarCheck,
    cache: Mutex<Option<Cached>>,
}

/// What an Attestation Result about the TAM must satisfy before the TAM sends it, whatever
/// its source: signed by one of `verifiers`, `cnf` one of `tam_keys`, `iat` at most
/// `max_age` seconds from now, affirming.
pub struct EarCheck {
    /// Crypto provider.
    pub provider: &'static dyn CryptoProvider,
    /// The Verifier keys trusted for results about the TAM.
    pub verifiers: TrustStore,
    /// The TAM's TEEP keys.
    pub tam_keys: Vec<PublicKey>,
    /// Seconds after its `iat` a result stops being sent.
    pub max_age: u64,
}

impl EarCheck {
    /// `ear` ready to send at `now`, carrying `nonce` as `eat_nonce` when given.
    fn ear(&self, ear: Vec<u8>, nonce: Option<&[u8]>, now: u64) -> Result<OwnEar, String> {
        let cnf = ear_cnf_key(&ear).ok_or("no cnf key")?;
        let key = self
            .tam_keys
            .iter()
            .find(|k| k.thumbprint() == cnf.thumbprint())
            .ok_or("cnf is not a TAM key")?;
        let check = ResultCheck {
            provider: self.provider,
            verifiers: &self.verifiers,
            nonce,
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

struct Cached {
    stamp: (Option<SystemTime>, u64),
    bytes: Vec<u8>,
}

impl FileAttestation {
    /// The result in `path`, sent when it passes `check`.
    pub fn new(path: PathBuf, check: EarCheck) -> Self {
        Self {
            path,
            check,
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
        self.check.ear(self.bytes()?, None, now)
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

/// An [`OwnAttestation`] shared with the task that keeps it current.
impl<T: OwnAttestation + ?Sized> OwnAttestation for Arc<T> {
    fn current(&self, now: u64) -> Option<OwnEar> {
        (**self).current(now)
    }
}

/// Why one refresh of a [`RemoteAttestation`] failed; the last valid result is kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The Verifier gave no challenge or no appraisal (down, busy, refused our token).
    #[error("Verifier: {0}")]
    Verifier(Box<dyn std::error::Error + Send + Sync>),
    /// Our Evidence could not be made (the attestation key cannot sign).
    #[error("cannot make the TAM's Evidence: {0}")]
    Evidence(#[from] teep_attest::EvidenceError),
    /// The Verifier's answer is not a result the TAM may send (not from the configured
    /// Verifier key, another `cnf`, stale, another nonce, not affirming).
    #[error("the Verifier's result is not usable: {0}")]
    Result(String),
}

/// The TAM attests itself to a remote Verifier (any [`Appraiser`]: `teep verifier serve`
/// through `teep_verifier::Client`) and keeps the newest result that passes its
/// [`EarCheck`]. Evidence: `claims` (the TAM platform's oemid, hwmodel, ... as the
/// Verifier's policy expects them) with `ueid`, `cnf` = the TAM's TEEP key, `eat_nonce` =
/// the Verifier's challenge and `iat` = now, signed by the TAM's attestation key.
///
/// Request handlers only read the kept result ([`OwnAttestation::current`], checked again
/// at each use, so it stops being sent when it expires); [`RemoteAttestation::refresh`] is
/// the only thing that waits on the Verifier, called by [`RemoteAttestation::run`] in the
/// background.
pub struct RemoteAttestation<A> {
    appraiser: A,
    attester: Box<dyn Signer>,
    claims: EatClaims,
    teep_key: PublicKey,
    check: EarCheck,
    last: Mutex<Option<Vec<u8>>>,
}

/// Longest wait between two attempts while the Verifier fails.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

impl<A: Appraiser> RemoteAttestation<A> {
    /// Attests `teep_key` (one of `check.tam_keys`) with `attester` under `claims`
    /// (whose `ueid` it keeps; its `nonce`, `cnf`, `iat` and `eat_profile` are replaced).
    pub fn new(
        appraiser: A,
        attester: Box<dyn Signer>,
        claims: EatClaims,
        teep_key: PublicKey,
        check: EarCheck,
    ) -> Self {
        Self {
            appraiser,
            attester,
            claims,
            teep_key,
            check,
            last: Mutex::new(None),
        }
    }

    /// One round with the Verifier: challenge, Evidence, EAR; a result that passes the
    /// check (with the challenge as its nonce) replaces the kept one, anything else leaves
    /// it as it was.
    pub async fn refresh(&self, now: u64) -> Result<(), RefreshError> {
        let verifier = |e: A::Error| RefreshError::Verifier(Box::new(e));
        let challenge = self.appraiser.challenge(now).await.map_err(verifier)?;
        let claims = EatClaims {
            profile: Some(TEEP_EAT_PROFILE.into()),
            nonce: Some(challenge.nonce.clone()),
            cnf: Some(Cnf::CoseKey(self.teep_key.to_cose_key_bytes())),
            iat: i64::try_from(now).ok(),
            ..self.claims.clone()
        };
        let evidence = sign_evidence(&claims, self.attester.as_ref())?;
        let ear = self
            .appraiser
            .appraise(&evidence, now)
            .await
            .map_err(verifier)?;
        let ear = self
            .check
            .ear(ear, Some(&challenge.nonce), now)
            .map_err(RefreshError::Result)?
            .ear;
        // Replaced whole, so a poisoned lock holds a consistent value.
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(ear);
        Ok(())
    }

    /// Keeps the result current for as long as the future runs: a refresh at once, then
    /// one when half the max age has passed; after a failure, retries after
    /// [`retry_delay`] (the kept result is sent meanwhile, until it expires). `clock` is
    /// Unix seconds.
    #[cfg(feature = "server")]
    pub async fn run(&self, clock: fn() -> u64) {
        let mut failures = 0;
        loop {
            let delay = match self.refresh(clock()).await {
                Ok(()) => {
                    failures = 0;
                    tracing::info!("TAM attestation result refreshed from the Verifier");
                    Duration::from_secs((self.check.max_age / 2).max(1))
                }
                Err(why) => {
                    failures += 1;
                    let delay = retry_delay(failures);
                    tracing::warn!(%why, failures, retry_in = ?delay, "TAM attestation result not refreshed");
                    delay
                }
            };
            tokio::time::sleep(delay).await;
        }
    }
}

/// The wait after `failures` failed refreshes in a row: 1 s, doubling, at most
/// [`MAX_RETRY_DELAY`], so a Verifier that comes back is used soon without being hammered
/// while it is down.
pub fn retry_delay(failures: u32) -> Duration {
    let secs = 1u64
        .checked_shl(failures.saturating_sub(1))
        .unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(MAX_RETRY_DELAY)
}

impl<A: Appraiser + Send + Sync> OwnAttestation for RemoteAttestation<A> {
    fn current(&self, now: u64) -> Option<OwnEar> {
        let ear = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        // The nonce was checked when the result came; here only its age can have changed.
        self.check
            .ear(ear, None, now)
            .map_err(
                |why| tracing::warn!(%why, "TAM attestation result from the Verifier not usable"),
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use teep_attest::appraiser::{Challenge, InProcess, InProcessError};
    use teep_attest::claims::{Manifest, Oemid, Version};
    use teep_attest::policy::{DEFAULT_CLOCK_SKEW, Endorsement, EndorsementScope};
    use teep_attest::{Policy, ReferenceValues, SigningVerifier, Verifier, VerifierId};
    use teep_cose::{Curve, PrivateKey, default_provider};

    use super::*;

    const NOW: u64 = 1_800_000_000;
    const MAX_AGE: u64 = 600;
    const UEID: [u8; 17] = [1; 17];

    fn signer(k: &PrivateKey) -> Box<dyn Signer> {
        default_provider().signer(k, k.default_algorithm()).unwrap()
    }

    /// The TAM platform's claims, as the Verifier's policy expects them.
    fn claims() -> EatClaims {
        EatClaims {
            ueid: Some(UEID.to_vec()),
            oemid: Some(Oemid::Pen(32473)),
            hwmodel: Some(b"teep tam host".to_vec()),
            hwversion: Some(Version {
                version: "1".into(),
                scheme: Some(1),
            }),
            manifests: Some(vec![Manifest::suit_reference("urn:teep:tam", [0xab; 32])]),
            ..EatClaims::default()
        }
    }

    /// An in-process Verifier endorsing `attester` for [`UEID`], signing with `key`, that
    /// can be taken down.
    struct Remote {
        verifier: InProcess,
        down: AtomicBool,
    }

    impl Remote {
        fn new(attester: &PrivateKey, key: &PrivateKey) -> Self {
            let policy = Policy {
                id: None,
                endorsements: vec![Endorsement {
                    key: attester.public_key().clone(),
                    scope: EndorsementScope::Ueid(UEID.to_vec()),
                }],
                reference: ReferenceValues {
                    oemids: vec![Oemid::Pen(32473)],
                    hwmodels: vec![b"teep tam host".to_vec()],
                    tc_digests: vec![vec![0xab; 32]],
                    ..ReferenceValues::default()
                },
                freshness_window: 300,
                clock_skew: DEFAULT_CLOCK_SKEW,
            };
            let id = VerifierId {
                developer: "test".into(),
                build: "test".into(),
            };
            Self {
                verifier: InProcess::new(SigningVerifier::new(
                    Verifier::new(policy, id),
                    signer(key),
                    default_provider(),
                )),
                down: AtomicBool::new(false),
            }
        }

        fn up(&self) -> Result<(), InProcessError> {
            if self.down.load(Ordering::SeqCst) {
                // What the HTTP client reports is another type; any error will do here.
                return Err(InProcessError::Sign(teep_cose::CoseError::BadSignature));
            }
            Ok(())
        }
    }

    impl Appraiser for Remote {
        type Error = InProcessError;

        async fn challenge(&self, now: u64) -> Result<Challenge, InProcessError> {
            self.up()?;
            self.verifier.issue(now)
        }

        async fn appraise(&self, evidence: &[u8], now: u64) -> Result<Vec<u8>, InProcessError> {
            self.up()?;
            self.verifier
                .appraise_now(evidence, now)
                .signed
                .map_err(InProcessError::Sign)
        }
    }

    struct Setup {
        tam: PrivateKey,
        attester: PrivateKey,
        verifier: PrivateKey,
    }

    impl Setup {
        fn new() -> Self {
            let k = || PrivateKey::generate(Curve::P256).unwrap();
            Self {
                tam: k(),
                attester: k(),
                verifier: k(),
            }
        }

        /// The source attesting `teep_key` to a Verifier signing with `signing`, trusting
        /// `self.verifier` for results bound to `self.tam`.
        fn source(&self, teep_key: &PublicKey, signing: &PrivateKey) -> RemoteAttestation<Remote> {
            let mut verifiers = TrustStore::new();
            verifiers.add_key(self.verifier.public_key().clone());
            RemoteAttestation::new(
                Remote::new(&self.attester, signing),
                signer(&self.attester),
                claims(),
                teep_key.clone(),
                EarCheck {
                    provider: default_provider(),
                    verifiers,
                    tam_keys: vec![self.tam.public_key().clone()],
                    max_age: MAX_AGE,
                },
            )
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_fresh_result_is_sent_until_it_expires() {
        let s = Setup::new();
        let source = s.source(s.tam.public_key(), &s.verifier);
        assert_eq!(
            source.current(NOW),
            None,
            "nothing before the first refresh"
        );
        block_on(source.refresh(NOW)).unwrap();
        let got = source.current(NOW + 10).unwrap();
        assert_eq!(&got.key, s.tam.public_key());
        assert_eq!(got.format, ATTESTATION_RESULT_FORMAT);
        assert_eq!(ear_cnf_key(&got.ear).as_ref(), Some(s.tam.public_key()));
        assert!(source.current(NOW + MAX_AGE).is_some());
        assert_eq!(source.current(NOW + MAX_AGE + 1), None, "expired");
    }

    #[test]
    fn a_result_bound_to_a_foreign_key_is_refused_and_the_last_one_kept() {
        let s = Setup::new();
        let good = s.source(s.tam.public_key(), &s.verifier);
        block_on(good.refresh(NOW)).unwrap();
        let kept = good.current(NOW).unwrap();
        // The Verifier affirms Evidence about another key: a genuine result, foreign cnf.
        let stranger = PrivateKey::generate(Curve::P256).unwrap();
        let foreign = RemoteAttestation {
            last: Mutex::new(Some(kept.ear.clone())),
            ..s.source(stranger.public_key(), &s.verifier)
        };
        let err = block_on(foreign.refresh(NOW + 5)).unwrap_err();
        assert!(
            matches!(&err, RefreshError::Result(why) if why.contains("not a TAM key")),
            "{err}"
        );
        assert_eq!(foreign.current(NOW + 5), Some(kept), "unchanged");
    }

    #[test]
    fn a_result_signed_by_another_verifier_key_is_refused() {
        let s = Setup::new();
        let rogue = PrivateKey::generate(Curve::P256).unwrap();
        let source = s.source(s.tam.public_key(), &rogue);
        let err = block_on(source.refresh(NOW)).unwrap_err();
        assert!(
            matches!(&err, RefreshError::Result(why) if why.contains("trusted Verifier")),
            "{err}"
        );
        assert_eq!(source.current(NOW), None);
    }

    #[test]
    fn a_result_for_an_unendorsed_attestation_key_is_refused() {
        let s = Setup::new();
        let source = RemoteAttestation {
            attester: signer(&PrivateKey::generate(Curve::P256).unwrap()),
            ..s.source(s.tam.public_key(), &s.verifier)
        };
        // Not affirmed, so the Verifier binds no key: nothing to send.
        let err = block_on(source.refresh(NOW)).unwrap_err();
        assert!(
            matches!(&err, RefreshError::Result(why) if why.contains("no cnf")),
            "{err}"
        );
        assert_eq!(source.current(NOW), None);
    }

    #[test]
    fn while_the_verifier_is_down_the_last_result_is_kept_until_it_expires() {
        let s = Setup::new();
        let source = s.source(s.tam.public_key(), &s.verifier);
        block_on(source.refresh(NOW)).unwrap();
        let kept = source.current(NOW).unwrap();
        source.appraiser.down.store(true, Ordering::SeqCst);
        let err = block_on(source.refresh(NOW + MAX_AGE / 2)).unwrap_err();
        assert!(matches!(err, RefreshError::Verifier(_)), "{err}");
        assert_eq!(source.current(NOW + MAX_AGE / 2), Some(kept.clone()));
        assert_eq!(source.current(NOW + MAX_AGE + 1), None, "expired");
        // Back up: the next refresh brings a new result.
        source.appraiser.down.store(false, Ordering::SeqCst);
        block_on(source.refresh(NOW + MAX_AGE + 2)).unwrap();
        let new = source.current(NOW + MAX_AGE + 2).unwrap();
        assert_ne!(new.ear, kept.ear);
    }

    #[test]
    fn retries_back_off_to_a_cap() {
        let secs: Vec<u64> = [1, 2, 3, 6, 7, 40, u32::MAX]
            .map(|n| retry_delay(n).as_secs())
            .into();
        assert_eq!(secs, [1, 2, 4, 32, 60, 60, 60]);
    }
}

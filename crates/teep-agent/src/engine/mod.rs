//! The TEEP Agent engine (draft-ietf-teep-protocol §11), sans-IO: bytes, time and fresh
//! random bytes in, bytes out. It never reads a clock or an RNG itself and never logs
//! (`tracing` is std-only): every call returns a typed [`Event`] or answer that the shell
//! logs.
//!
//! * [`Agent::handle`] is ProcessTeepMessage: a TAM message in, the reply to POST back
//!   (QueryResponse, Success, or an Error for anything invalid, signed).
//! * [`Agent::request_ta`], [`Agent::unrequest_ta`], [`Agent::policy_check`],
//!   [`Agent::process_error`] are the other Broker calls of RFC 9397 §6.2.1, each giving an
//!   [`Answer`] (nothing, or a TAM to contact with an optional first message), mirroring
//!   `teep_broker::agent::AgentAnswer`.
//! * [`Agent::list_tas`] and [`Agent::invoke_ta`] are what apps call at run time.
//!
//! Every refused message leaves the TEE exactly as it was: the SUIT processor commits an
//! Update all or nothing, and the engine's own state is saved (and adopted) only on the
//! paths that answer successfully.

mod broker;
mod query;
mod state;
mod update;

use alloc::string::String;
use alloc::vec::Vec;

use teep_cose::{Algorithm, CryptoProvider, PublicKey, SignOptions, TrustStore, VerifyContext};
use teep_proto::{
    CipherSuite, ErrCode, ErrorMessage, FreshnessMechanism, Message, Numbering, ProtoError,
    SuitCoseProfile, Unverified, VerifiedMessage, sign_message,
};
use teep_suit::processor::DeviceIdentity;
use teep_suit::trust::TrustAnchors;

use crate::tee::{Tee, TeeError};
pub use broker::{Answer, TaInfo};
use state::AgentState;
pub use state::StateDecodeError;

/// The TEEP versions this Agent speaks (version 0 = the draft).
pub const VERSIONS: [u32; 1] = [0];

/// The freshness mechanisms this Agent supports: the mandatory nonce only.
pub const FRESHNESS: [FreshnessMechanism; 1] = [FreshnessMechanism::NONCE];

/// Bounds that protect the TEE's resources (§11 "limit number/size of manifests").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most envelopes in one `manifest-list`.
    pub max_manifests: usize,
    /// Most bytes of all envelopes of one `manifest-list` together.
    pub max_update_bytes: usize,
    /// Most entries of one `unneeded-manifest-list`.
    pub max_unneeded: usize,
    /// How many answered tokens are remembered for replay detection.
    pub remembered_tokens: usize,
    /// Most TAs an app may have requested and not yet received.
    pub max_requested: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_manifests: 16,
            max_update_bytes: 4 << 20,
            max_unneeded: 64,
            remembered_tokens: 256,
            max_requested: 64,
        }
    }
}

/// Demanding attestation of the TAM (§11 QueryRequest step 1).
#[derive(Clone, Debug)]
pub struct TamAttestation {
    /// Verifiers whose Attestation Results about a TAM the Agent accepts.
    pub verifiers: TrustStore,
    /// Oldest accepted Attestation Result, by its `iat`, in seconds.
    pub max_age: u64,
    /// Also accept a result without `eat_nonce`, fresh by its `iat` alone (the timestamp
    /// mechanism, §4: a TAM whose result comes from a file or a cache cannot carry our
    /// challenge). A result that carries a nonce must still carry our challenge.
    pub timestamp: bool,
}

/// Passport-model attestation of the Agent (RFC 9334 §5.1), for TAMs that take only an
/// Attestation Result (older TAMs): the device obtains an EAR for its Evidence from a
/// Verifier ahead of time ([`Agent::passport_evidence`], [`Agent::store_passport`]), the
/// engine keeps it in its sealed state and, when a QueryRequest asks for attestation,
/// sends it (format [`teep_attest::ATTESTATION_RESULT_FORMAT`]) instead of Evidence while
/// it is fresh; without a fresh one it sends no attestation payload (the TAM decides).
#[derive(Clone, Debug)]
pub struct Passport {
    /// The Verifiers whose EARs the engine keeps: one by another key is refused on store.
    pub verifiers: TrustStore,
    /// Oldest EAR sent, by its `iat`, in seconds (the TAM applies its own limit too).
    pub max_age: u64,
}

/// How the Agent is set up: who it trusts, what it supports, its limits.
pub struct AgentConfig {
    /// Crypto for verification, digests and encryption.
    pub provider: &'static dyn CryptoProvider,
    /// The wire numbering of the TAMs this Agent talks to (`Pre26` for older TAMs).
    pub numbering: Numbering,
    /// The TAM trust anchors: raw keys or CAs. A TAM message verifies against these only.
    pub tam_trust: TrustStore,
    /// The TAMs this Agent may contact, by URI; the first is the default.
    pub tam_uris: Vec<String>,
    /// TC Signer trust anchors with their scopes (SUIT).
    pub tc_trust: TrustAnchors,
    /// What the device asserts for the SUIT identifier conditions.
    pub device: DeviceIdentity,
    /// The SUIT COSE profiles this Agent supports (at least one).
    pub suit_cose_profiles: Vec<SuitCoseProfile>,
    /// Demand attestation of the TAM; `None`: a TAM's own attestation payload is ignored.
    pub tam_attestation: Option<TamAttestation>,
    /// The TAM's encryption key (P-256, §12): when set, Evidence and SUIT reports are
    /// encrypted to it.
    pub tam_encryption_key: Option<PublicKey>,
    /// Per-TAM encryption keys, by the thumbprint of the TAM key that verified its message:
    /// with several TAMs, each gets Evidence and reports only it can decrypt. A TAM not
    /// listed gets [`Self::tam_encryption_key`].
    pub tam_encryption_keys: Vec<([u8; 32], PublicKey)>,
    /// Resource limits.
    pub limits: Limits,
    /// What the Agent presents when a QueryRequest asks for attestation.
    pub attestation: Attestation,
}

/// What the Agent presents when a QueryRequest asks for attestation.
#[derive(Clone, Debug, Default)]
pub enum Attestation {
    /// Evidence signed by the TEE's attestation key (background check, or passport with the
    /// token as nonce, as the QueryRequest says).
    #[default]
    Evidence,
    /// An Attestation Result obtained ahead of time ([`Passport`]).
    Passport(Passport),
    /// Nothing (an older Agent that cannot attest): the TAM serves it only if its operator
    /// registered the key as exempt from attestation.
    None,
}

/// Per-call input: the time and fresh randomness (the engine has no clock or RNG).
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// Unix time in seconds (Evidence `iat`, certificate validity, Attestation Result age).
    pub now: u64,
    /// 32 bytes from a cryptographically secure source, used as a challenge when the
    /// Agent asks a TAM to attest.
    pub random: [u8; 32],
}

/// Why the engine refused a TAM message; each maps onto the err-code it answers with.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The bytes are not a valid signed TEEP message, or its signature did not verify
    /// against the TAM trust anchors (the code comes from [`ProtoError::err_code`]).
    #[error("{0}")]
    Message(ProtoError),
    /// No offered TEEP cipher suite is ours, or the signature that verified is not of it.
    #[error("no supported TEEP cipher suite")]
    CipherSuite,
    /// None of the offered TEEP versions is ours.
    #[error("no supported TEEP version")]
    Version,
    /// Attestation was requested with a freshness mechanism we do not support.
    #[error("no supported freshness mechanism")]
    Freshness,
    /// None of the offered SUIT COSE profiles is ours.
    #[error("no supported SUIT COSE profile")]
    SuitProfile,
    /// This Agent demands attestation of the TAM and the QueryRequest has none.
    #[error("TAM attestation required")]
    AttestationRequired,
    /// The TAM's attestation payload did not validate (§7.4).
    #[error("TAM attestation rejected")]
    TamAttestation,
    /// The token was already answered.
    #[error("token already answered")]
    Replay,
    /// Attestation was requested with neither challenge nor token to put in `eat_nonce`,
    /// or the nonce does not fit `eat_nonce` (8..64 bytes).
    #[error("no usable nonce for Evidence")]
    Nonce,
    /// A message type a TAM never sends (QueryResponse, Success, Error).
    #[error("not a TAM message")]
    NotFromTam,
    /// The Update exceeds [`Limits`].
    #[error("update over the Agent's limits")]
    OverLimits,
    /// The Update lists the same envelope twice (a repeated install).
    #[error("manifest listed twice")]
    Repeated,
    /// The Update installs or unlinks, but an Update from the same TAM was committed since
    /// the Agent's last QueryResponse to it: it answers a QueryResponse that a later
    /// exchange superseded (a late or held-back copy), planned from a state the device no
    /// longer has. The TAM plans again from the device's next QueryResponse.
    #[error("update answers a superseded QueryResponse")]
    Superseded,
    /// The Update unlinks or replaces a manifest that another TAM installed: a TAM
    /// manages only the TCs it installed (RFC 9397 §4.4; ACLs per TAM key, protocol §10).
    #[error("manifest installed by another TAM")]
    NotOwner,
    /// The TEE failed (signing Evidence, storage, saving state): retry later.
    #[error("TEE failure")]
    Tee,
}

impl Refusal {
    /// The err-code of the Error answering this refusal.
    pub fn err_code(&self) -> ErrCode {
        match self {
            Self::Message(e) => e.err_code(),
            Self::CipherSuite => ErrCode::UnsupportedCipherSuites,
            Self::Version => ErrCode::UnsupportedMsgVersion,
            Self::Freshness => ErrCode::UnsupportedFreshnessMechanisms,
            Self::SuitProfile => ErrCode::UnsupportedSuitReport,
            Self::AttestationRequired | Self::TamAttestation => ErrCode::AttestationRequired,
            Self::Replay | Self::Nonce | Self::NotFromTam | Self::Repeated | Self::Superseded => {
                ErrCode::PermanentError
            }
            Self::OverLimits | Self::NotOwner => ErrCode::ManifestProcessingFailed,
            Self::Tee => ErrCode::TemporaryError,
        }
    }
}

/// What a handled message did, for the shell to log (never keys or Evidence).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A QueryRequest was answered with a QueryResponse.
    QueryAnswered {
        /// Evidence was included.
        attested: bool,
        /// Entries of the tc-list sent (0 when not asked for).
        tcs: usize,
    },
    /// An Update was processed and committed; Success sent.
    UpdateApplied {
        /// Envelopes installed (or re-delivered).
        installed: usize,
        /// Manifests unlinked.
        unlinked: usize,
    },
    /// An Update failed as a whole; nothing was committed; Error sent.
    UpdateFailed {
        /// The err-code sent.
        err_code: ErrCode,
        /// `Some(k)`: the k-th envelope of manifest-list failed; `None`: an unlink or the
        /// commit failed.
        manifest: Option<usize>,
    },
    /// An Update carrying only the TAM's err-code: acknowledged with Success (spec
    /// ambiguity §16.7), nothing changed.
    TamReported {
        /// The TAM's err-code.
        err_code: ErrCode,
    },
    /// The message was refused; an Error was sent (unless signing it failed).
    Refused(Refusal),
    /// The TEE committed an Update but could not save the engine's state afterwards (the
    /// requested/unneeded lists are stale until the next successful save).
    StateNotSaved,
}

/// The result of [`Agent::handle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    /// The message to send back to the TAM; `None` only when the TEE could not sign.
    pub reply: Option<Vec<u8>>,
    /// What happened.
    pub event: Event,
}

/// Why a Broker call failed (never reaches a TAM).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// The TEE failed.
    #[error("TEE: {0}")]
    Tee(#[from] TeeError),
    /// The sealed SUIT storage failed.
    #[error("SUIT storage: {0}")]
    Storage(teep_suit::SuitError),
    /// The engine's persistent state is damaged.
    #[error(transparent)]
    State(#[from] StateDecodeError),
    /// No TAM URI is configured, so there is nobody to ask.
    #[error("no TAM configured")]
    NoTam,
    /// No such TA is installed.
    #[error("no installed TA with that component id")]
    UnknownTa,
    /// Too many TAs requested and not yet installed ([`Limits::max_requested`]).
    #[error("too many pending TA requests")]
    TooManyRequests,
    /// A TEEP message for the TAM could not be built or signed.
    #[error("message: {0}")]
    Message(ProtoError),
    /// Evidence for a Verifier could not be made (the nonce does not fit `eat_nonce`, or
    /// the TEE failed to sign).
    #[error("Evidence: {0}")]
    Evidence(teep_attest::EvidenceError),
    /// Passport mode is not configured ([`AgentConfig::attestation`]).
    #[error("passport attestation is not configured")]
    NoPassport,
    /// The Attestation Result given to keep does not verify for this Agent: not by a
    /// configured Verifier, stale, not affirming, or its `cnf` is another key.
    #[error("attestation result refused: {0}")]
    Passport(teep_attest::ResultError),
}

/// A refusal and the token to echo (only from a verified message).
pub(crate) struct Rejection {
    token: Option<Vec<u8>>,
    refusal: Refusal,
    /// For ERR_ATTESTATION_REQUIRED: the challenge for the TAM's Evidence.
    challenge: Option<Vec<u8>>,
}

impl From<Refusal> for Rejection {
    fn from(refusal: Refusal) -> Self {
        Self {
            token: None,
            refusal,
            challenge: None,
        }
    }
}

impl Rejection {
    fn with_token(refusal: Refusal, token: Option<&[u8]>) -> Self {
        Self {
            token: token.map(<[u8]>::to_vec),
            refusal,
            challenge: None,
        }
    }
}

/// The TEEP Agent engine over a TEE.
pub struct Agent<T: Tee> {
    cfg: AgentConfig,
    /// The TAM anchors a message may verify with: [`AgentConfig::tam_trust`] restricted to
    /// keys usable with our algorithm, so that a COSE_Sign verifies through the signature
    /// in our suite (with CA anchors, the whole store; the suite is checked afterwards).
    tam_trust: TrustStore,
    tee: T,
    state: AgentState,
    /// Challenges sent with ERR_ATTESTATION_REQUIRED, by TAM URI (transient).
    challenges: Vec<(String, Vec<u8>)>,
    /// TAM URIs already returned in the current RequestPolicyCheck round.
    policy_round: Vec<String>,
}

impl<T: Tee> Agent<T> {
    /// An engine over `tee`, with the state the TEE saved last.
    ///
    /// # Errors
    /// The TEE cannot load the state, or it does not decode.
    pub fn new(cfg: AgentConfig, tee: T) -> Result<Self, AgentError> {
        let state = match tee.load_state()? {
            Some(bytes) => AgentState::decode(&bytes)?,
            None => AgentState::default(),
        };
        let alg = tee.teep_signer().algorithm();
        let tam_trust = if cfg.tam_trust.cas().is_empty() {
            let mut t = TrustStore::new();
            for k in cfg.tam_trust.keys().iter().filter(|k| k.accepts(alg)) {
                t.add_key(k.clone());
            }
            t
        } else {
            cfg.tam_trust.clone()
        };
        Ok(Self {
            cfg,
            tam_trust,
            tee,
            state,
            challenges: Vec::new(),
            policy_round: Vec::new(),
        })
    }

    /// The TEE (read only: tests snapshot it).
    pub const fn tee(&self) -> &T {
        &self.tee
    }

    /// Gives the TEE back (shutdown).
    pub fn into_tee(self) -> T {
        self.tee
    }

    /// The key to encrypt Evidence and SUIT reports to (§12) for the TAM whose key has
    /// thumbprint `tam`: its own when mapped, else the default one, else none (plain).
    pub(super) fn encryption_key(&self, tam: &[u8; 32]) -> Option<&PublicKey> {
        self.cfg
            .tam_encryption_keys
            .iter()
            .find(|(t, _)| t == tam)
            .map(|(_, key)| key)
            .or(self.cfg.tam_encryption_key.as_ref())
    }

    /// The one TEEP cipher suite this Agent signs with (its TEEP key's algorithm).
    pub fn cipher_suites(&self) -> Vec<CipherSuite> {
        alloc::vec![CipherSuite::sign1(
            self.tee.teep_signer().algorithm().cose_id()
        )]
    }

    /// ProcessTeepMessage: a message from the TAM at `tam_uri`; the reply goes back to it.
    pub fn handle(&mut self, tam_uri: &str, message: &[u8], cx: Context) -> Handled {
        let result = self.verify(message, cx.now).and_then(|verified| {
            let token = verified.message().token().map(<[u8]>::to_vec);
            let signer = verified.signer().clone();
            match verified.into_message() {
                Message::QueryRequest(q) => self.on_query(tam_uri, &signer, q, cx),
                Message::Update(u) => self.on_update(tam_uri, u, signer.thumbprint()),
                _ => Err(Rejection::with_token(Refusal::NotFromTam, token.as_deref())),
            }
        });
        match result {
            Ok(handled) => handled,
            Err(rejection) => {
                if rejection.refusal == Refusal::AttestationRequired
                    && let Some(challenge) = &rejection.challenge
                    && self.is_configured(tam_uri)
                {
                    self.challenges.retain(|(uri, _)| uri != tam_uri);
                    self.challenges.push((tam_uri.into(), challenge.clone()));
                }
                self.error_reply(rejection)
            }
        }
    }

    /// Whether `tam_uri` is one of [`AgentConfig::tam_uris`] (the Broker names the TAM of
    /// each exchange; only configured ones are remembered).
    fn is_configured(&self, tam_uri: &str) -> bool {
        self.cfg.tam_uris.iter().any(|u| u == tam_uri)
    }

    /// Parses and verifies a TAM message (§3): only against the TAM trust anchors, and
    /// only through a signature in our cipher suite.
    fn verify(&self, bytes: &[u8], now: u64) -> Result<VerifiedMessage, Rejection> {
        let unverified = Unverified::parse(bytes, self.cfg.numbering).map_err(Refusal::Message)?;
        let ours = self.tee.teep_signer().algorithm().curve();
        let of_another_suite = |alg: Option<i64>| {
            alg.and_then(Algorithm::from_cose_id)
                .is_some_and(|a| a.curve() != ours)
        };
        let only_other_suites = unverified
            .cose()
            .signatures
            .iter()
            .all(|s| of_another_suite(s.alg));
        let cx = VerifyContext {
            now: Some(now),
            ..VerifyContext::new(self.cfg.provider, &self.tam_trust)
        };
        match unverified.verify(&cx) {
            Ok(v) if v.alg().curve() == ours => Ok(v),
            Ok(v) => Err(Rejection::with_token(
                Refusal::CipherSuite,
                v.message().token(),
            )),
            Err(_) if only_other_suites => Err(Refusal::CipherSuite.into()),
            Err(e) => Err(Refusal::Message(e).into()),
        }
    }

    /// Signs `message` with the TEEP key.
    fn sign(&self, message: &Message) -> Result<Vec<u8>, ProtoError> {
        sign_message(
            message,
            self.cfg.numbering,
            self.tee.teep_signer(),
            &SignOptions::default(),
        )
    }

    /// The signed Error for `rejection`, with the lists its code must carry (§9).
    fn error_reply(&self, rejection: Rejection) -> Handled {
        let code = rejection.refusal.err_code();
        let mut error = ErrorMessage {
            token: rejection.token,
            err_msg: Some(err_msg(&alloc::format!("{}", rejection.refusal))),
            ..ErrorMessage::new(code)
        };
        match code {
            ErrCode::UnsupportedCipherSuites => {
                error.supported_teep_cipher_suites = Some(self.cipher_suites());
            }
            ErrCode::UnsupportedFreshnessMechanisms => {
                error.supported_freshness_mechanisms = Some(FRESHNESS.to_vec());
            }
            ErrCode::UnsupportedMsgVersion => error.versions = Some(VERSIONS.to_vec()),
            ErrCode::UnsupportedSuitReport => {
                error.supported_suit_cose_profiles = Some(self.cfg.suit_cose_profiles.clone());
            }
            ErrCode::AttestationRequired => {
                let timestamp = self
                    .cfg
                    .tam_attestation
                    .as_ref()
                    .is_some_and(|p| p.timestamp);
                let mut mechanisms = FRESHNESS.to_vec();
                if timestamp {
                    mechanisms.push(FreshnessMechanism::TIMESTAMP);
                }
                error.supported_freshness_mechanisms = Some(mechanisms);
                error.challenge = rejection.challenge;
            }
            _ => {}
        }
        Handled {
            reply: self.sign(&Message::Error(error)).ok(),
            event: Event::Refused(rejection.refusal),
        }
    }

    /// Saves `next` through the TEE and adopts it; on failure the old state stays.
    fn commit_state(&mut self, next: AgentState) -> Result<(), TeeError> {
        self.tee.save_state(&next.encode())?;
        self.state = next;
        Ok(())
    }
}

/// `err-msg` text within its 128-byte limit, cut on a character boundary.
fn err_msg(text: &str) -> String {
    let mut end = text.len().min(128);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.get(..end).unwrap_or_default();
    if cut.is_empty() {
        String::from("error")
    } else {
        String::from(cut)
    }
}

/// The engine moves to the task that serves the Broker: it must be `Send`; the software
/// TEE's engine is shared behind a lock, so with a `Sync` TEE it is `Sync` too.
const _: fn() = || {
    fn send<X: Send>() {}
    fn sync<X: Sync>() {}
    send::<Agent<crate::memory::MemoryTee>>();
    sync::<Agent<crate::memory::MemoryTee>>();
    send::<Handled>();
    sync::<AgentConfig>();
};

#[cfg(test)]
mod tests {
    use super::err_msg;

    #[test]
    fn err_msg_is_cut_to_128_bytes_on_a_char_boundary() {
        let long = "é".repeat(100);
        let cut = err_msg(&long);
        assert_eq!(cut.len(), 128);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(err_msg(""), "error");
        assert_eq!(err_msg("short"), "short");
    }
}

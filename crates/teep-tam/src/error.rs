//! What handling a message ends in: [`Handled`] (a reply and changes to commit, with a
//! typed [`Event`]) or [`Dropped`] (why the message was ignored; nothing to commit).
//!
//! The TAM never sends a TEEP Error (spec §1): a message it cannot accept is dropped with
//! a logged reason, and problems in a valid QueryResponse go back inside an Update.

use teep_attest::{EvidenceError, ResultError};
use teep_cose::CoseError;
use teep_proto::{ErrCode, ProtoError};

use crate::report::ReportError;
use crate::store::Changes;

/// A message was accepted: what to send and what to commit.
#[derive(Debug)]
pub struct Handled {
    /// The signed reply (QueryRequest or Update); `None` for an HTTP 204.
    pub reply: Option<Vec<u8>>,
    /// The changes to commit before the reply is sent.
    pub changes: Changes,
    /// What happened.
    pub event: Event,
}

/// What an accepted message led to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A session was opened (or renegotiated) with a QueryRequest.
    QueryRequestSent,
    /// An Update was sent.
    UpdateSent {
        /// Manifests it carries.
        manifests: usize,
        /// Manifests it unlinks.
        unlinked: usize,
        /// The err-code it carries, if the QueryResponse was wanting.
        err_code: Option<ErrCode>,
    },
    /// The device holds what policy wants: no Update.
    UpToDate,
    /// The Agent installed what the Update carried.
    Installed {
        /// Manifests now installed.
        manifests: usize,
        /// Manifests unlinked.
        unlinked: usize,
    },
    /// The Agent answered with an Error.
    AgentError {
        /// Its err-code.
        code: ErrCode,
    },
}

/// Why a message was dropped. Nothing of it is committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Dropped {
    /// Not a valid signed TEEP message.
    #[error("malformed: {0}")]
    Malformed(ProtoError),
    /// The message carries no token, so it answers nothing the TAM sent.
    #[error("no token")]
    NoToken,
    /// The token was never issued (or was purged).
    #[error("unknown token")]
    UnknownToken,
    /// The token was already answered.
    #[error("token already used")]
    TokenReused,
    /// The token expired.
    #[error("token expired")]
    TokenExpired,
    /// The token belongs to a state that does not take this message.
    #[error("{got} while in {expected}")]
    WrongState {
        /// The state the token's session is in.
        expected: &'static str,
        /// The message type received.
        got: &'static str,
    },
    /// No key to verify the message: the Agent is unknown and did not attest.
    #[error("unknown Agent and no attestation")]
    UnknownAgent,
    /// The signature does not verify with the key the message claims (or `cnf` binds).
    #[error("signature: {0}")]
    BadSignature(ProtoError),
    /// The message answers an Update sent to another device.
    #[error("not signed by the device the Update went to: {0}")]
    WrongDevice(ProtoError),
    /// Another device attested in a session opened for a known device.
    #[error("attested device is not the one the session was opened for")]
    NotSessionDevice,
    /// The attestation result has no usable `cnf` key.
    #[error("attestation result binds no key")]
    NoCnfKey,
    /// The Evidence came encrypted (§12) but the TAM has no encryption key.
    #[error("encrypted Evidence and no TAM encryption key")]
    NoEncryptionKey,
    /// The encrypted Evidence does not open with the TAM's key.
    #[error("encrypted Evidence: {0}")]
    EvidenceDecryption(EvidenceError),
    /// The attestation result was rejected.
    #[error("attestation: {0}")]
    Attestation(ResultError),
    /// The operator revoked the device.
    #[error("device revoked")]
    Revoked,
    /// A SUIT report could not be read.
    #[error("{0}")]
    Report(ReportError),
    /// A SUIT report's nonce is not the token of the Update it answers.
    #[error("SUIT report nonce is not the token")]
    ReportNonce,
    /// A SUIT report names a manifest the Update did not carry.
    #[error("SUIT report for a manifest that was not sent")]
    ReportForUnsentManifest,
    /// The Agent and the TAM share no version, suite, profile or freshness mechanism.
    #[error("negotiation failed: nothing in common")]
    NegotiationFailed,
    /// Another replica answered this token first (the commit lost the compare-and-set).
    #[error("token consumed by another replica")]
    Conflict,
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
    /// The Verifier gave no answer.
    #[error("verifier: {0}")]
    Verifier(String),
    /// No randomness for a token.
    #[error("random source: {0}")]
    Random(CoseError),
    /// A reply could not be signed.
    #[error("signing the reply: {0}")]
    Sign(ProtoError),
    /// No TAM key for the Agent's cipher suite.
    #[error("no TAM key for the Agent's cipher suite")]
    NoSignerForSuite,
    /// The Agent demands the TAM's attestation and the TAM has no usable Attestation
    /// Result about itself (none configured, expired, or not verifying).
    #[error("Agent demands TAM attestation and the TAM has no attestation result")]
    NoTamAttestation,
    /// The Agent demands the TAM's attestation again after a QueryRequest that carried it
    /// (it refused the result): not answered, so no loop.
    #[error("Agent refused the TAM's attestation result")]
    TamAttestationRefused,
    /// The shell answered a step with the wrong kind of answer (a shell bug).
    #[error("the shell's answer does not fit the step")]
    ShellMismatch,
}

//! One seam between a relying party (the TAM) and its Verifier, wherever the Verifier runs.
//!
//! The relying party needs two things from a Verifier (background-check model, RFC 9334
//! §5.2): a challenge to put in a QueryRequest, and an appraisal of the Evidence that came
//! back, as a signed EAR it then checks with [`crate::verify_ear`]. [`Appraiser`] is that
//! pair of requests. It is implemented by [`InProcess`] (this crate's [`Verifier`] in the
//! relying party's own process) and by `teep_verifier::Client` (the HTTP Verifier), so the
//! TAM does not know which one it talks to.
//!
//! Why one async trait and not a sync and an async one: the HTTP client cannot answer
//! synchronously, while the in-process appraiser can answer at once; an async trait whose
//! in-process futures are complete when made (`core::future::ready`) serves both without a
//! blanket impl or two method sets with the same names. A sans-IO engine emits an
//! [`AppraisalRequest`] and takes back the [`AppraisalResponse`]; its driver fulfils the
//! request through any [`Appraiser`] ([`Appraiser::fulfil`]). Code that must stay
//! synchronous (a test, a single-threaded tool) calls [`InProcess::issue`] and
//! [`InProcess::appraise_now`] directly.

use alloc::{boxed::Box, vec::Vec};

use teep_cose::{CoseError, CryptoProvider, Signer};

use crate::{
    freshness::Redeem,
    result::sign_ear,
    verifier::{Context, Freshness, Outcome, Verifier},
};

/// A challenge issued by the Verifier, for the QueryRequest `challenge`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The nonce the Evidence must carry as `eat_nonce`.
    pub nonce: Vec<u8>,
    /// Seconds the Verifier accepts Evidence for it.
    pub expires_in: u64,
}

/// What a relying party asks of its Verifier.
///
/// `now` is the relying party's clock (Unix seconds); an in-process Verifier appraises at
/// that time, a remote one at its own clock.
pub trait Appraiser {
    /// Why the Verifier gave no answer (busy, unreachable, refused). A non-affirming
    /// appraisal is not an error: the EAR says so.
    type Error: core::error::Error + Send + Sync + 'static;

    /// Asks for a fresh challenge.
    fn challenge(&self, now: u64) -> impl Future<Output = Result<Challenge, Self::Error>> + Send;

    /// Appraises Evidence that carries a challenge from [`Appraiser::challenge`]; answers
    /// the EAR signed by the Verifier (COSE_Sign1), to be checked with [`crate::verify_ear`].
    fn appraise(
        &self,
        evidence: &[u8],
        now: u64,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send;

    /// Fulfils one request of a sans-IO engine.
    fn fulfil(
        &self,
        request: AppraisalRequest,
        now: u64,
    ) -> impl Future<Output = Result<AppraisalResponse, Self::Error>> + Send
    where
        Self: Sync,
    {
        async move {
            Ok(match request {
                AppraisalRequest::Challenge => {
                    AppraisalResponse::Challenge(self.challenge(now).await?)
                }
                AppraisalRequest::Appraise(evidence) => {
                    AppraisalResponse::Ear(self.appraise(&evidence, now).await?)
                }
            })
        }
    }
}

/// A request to the Verifier, as a sans-IO engine emits it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppraisalRequest {
    /// Issue a challenge.
    Challenge,
    /// Appraise this Evidence.
    Appraise(Vec<u8>),
}

/// The Verifier's answer to an [`AppraisalRequest`] of the same name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppraisalResponse {
    /// The challenge issued.
    Challenge(Challenge),
    /// The signed EAR.
    Ear(Vec<u8>),
}

/// A [`Verifier`] with the key that signs its EARs: the appraisal both [`InProcess`] and
/// the HTTP service run.
pub struct SigningVerifier {
    verifier: Verifier,
    signer: Box<dyn Signer>,
    provider: &'static dyn CryptoProvider,
}

/// One appraisal: its outcome (with the findings, for logs) and the signed EAR.
pub struct Appraised {
    /// The unsigned result and why.
    pub outcome: Outcome,
    /// The EAR as COSE_Sign1, or why it could not be signed.
    pub signed: Result<Vec<u8>, CoseError>,
}

impl SigningVerifier {
    /// `verifier` signing its EARs with `signer`; `provider` checks signatures and supplies
    /// randomness for challenges.
    pub fn new(
        verifier: Verifier,
        signer: Box<dyn Signer>,
        provider: &'static dyn CryptoProvider,
    ) -> Self {
        Self {
            verifier,
            signer,
            provider,
        }
    }

    /// The appraiser.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The crypto provider.
    pub fn provider(&self) -> &'static dyn CryptoProvider {
        self.provider
    }

    /// Appraises Evidence whose nonce must be redeemed from `challenges`, and signs the EAR.
    pub fn appraise(&self, evidence: &[u8], now: u64, challenges: &mut dyn Redeem) -> Appraised {
        let mut cx = Context {
            now,
            freshness: Freshness::Issued(challenges),
            teep_key: None,
        };
        let outcome = self.verifier.appraise(self.provider, evidence, &mut cx);
        let signed = sign_ear(&outcome.ear, self.signer.as_ref());
        Appraised { outcome, signed }
    }
}

#[cfg(feature = "std")]
pub use in_process::{InProcess, InProcessError};

#[cfg(feature = "std")]
mod in_process {
    use alloc::vec::Vec;
    use core::future::ready;
    use std::sync::{Mutex, MutexGuard, PoisonError};

    use teep_cose::CoseError;

    use super::{Appraised, Appraiser, Challenge, SigningVerifier};
    use crate::freshness::{ChallengeError, Challenges, FreshnessError, Redeem};

    /// The Verifier in the relying party's process, with its own challenge store.
    pub struct InProcess {
        verifier: SigningVerifier,
        challenges: Mutex<Challenges>,
    }

    /// Why the in-process Verifier gave no answer.
    #[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
    #[non_exhaustive]
    pub enum InProcessError {
        /// No challenge could be issued (too many outstanding, or no randomness).
        #[error("cannot issue a challenge: {0}")]
        Challenge(ChallengeError),
        /// The EAR could not be signed.
        #[error("cannot sign the EAR: {0}")]
        Sign(CoseError),
    }

    /// A store shared between threads, locked only while one challenge is redeemed, so
    /// appraisals (signature checks) run in parallel. A redemption is one remove and one
    /// insert, so a panic elsewhere cannot leave the store half-updated and a poisoned lock
    /// is safe to keep using.
    impl<R: Redeem> Redeem for &Mutex<R> {
        fn redeem(&mut self, nonce: &[u8], now: u64) -> Result<(), FreshnessError> {
            lock(self).redeem(nonce, now)
        }
    }

    /// See the `Redeem` impl above for why a poisoned lock is kept.
    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    impl InProcess {
        /// An appraiser whose challenges live as long as the policy's freshness window.
        pub fn new(verifier: SigningVerifier) -> Self {
            let lifetime = verifier.verifier().policy().freshness_window;
            Self {
                verifier,
                challenges: Mutex::new(Challenges::new(lifetime)),
            }
        }

        /// Issues a challenge, synchronously.
        pub fn issue(&self, now: u64) -> Result<Challenge, InProcessError> {
            let nonce = lock(&self.challenges)
                .issue(self.verifier.provider(), now)
                .map_err(InProcessError::Challenge)?;
            Ok(Challenge {
                nonce,
                expires_in: self.verifier.verifier().policy().freshness_window,
            })
        }

        /// Appraises Evidence carrying one of this appraiser's challenges, synchronously;
        /// the outcome says why, for logs.
        pub fn appraise_now(&self, evidence: &[u8], now: u64) -> Appraised {
            self.verifier.appraise(evidence, now, &mut &self.challenges)
        }
    }

    impl Appraiser for InProcess {
        type Error = InProcessError;

        fn challenge(
            &self,
            now: u64,
        ) -> impl Future<Output = Result<Challenge, InProcessError>> + Send {
            ready(self.issue(now))
        }

        fn appraise(
            &self,
            evidence: &[u8],
            now: u64,
        ) -> impl Future<Output = Result<Vec<u8>, InProcessError>> + Send {
            ready(
                self.appraise_now(evidence, now)
                    .signed
                    .map_err(InProcessError::Sign),
            )
        }
    }
}

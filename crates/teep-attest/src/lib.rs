//! RATS for TEEP: EAT Evidence with the TEEP profile (build, parse, verify), the Verifier
//! (appraisal against endorsements, reference values and freshness) and EAR attestation
//! results (draft-ietf-rats-ear), signed as COSE_Sign1 through `teep-cose`.
//!
//! Nothing here knows about transport: the HTTP Verifier lives in `teep-verifier`.
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

/// The serde_json of the JSON views: [`Ear::to_json`] returns its `Value`. A deliberate
/// public dependency (serde_json 1 is the common currency for JSON in Rust); name it through
/// this re-export to stay on the same version.
#[cfg(feature = "json")]
pub use serde_json;

pub mod appraiser;
pub use appraiser::{
    AppraisalRequest, AppraisalResponse, Appraised, Appraiser, Challenge, SigningVerifier,
};
/// The in-process Verifier (the `Appraiser` a TAM uses without a Verifier service).
#[cfg(feature = "std")]
pub use appraiser::{InProcess, InProcessError};
mod cbor;
pub mod claims;

#[cfg(feature = "json")]
pub use claims::ClaimsJsonError;
pub use claims::{
    ClaimReason, ClaimsError, Cnf, CnfKeyError, DebugStatus, EatClaims, Manifest, ManifestBody,
    Oemid, SuitDigest, SuitReference, Version,
};
pub mod ear;

pub use ear::{Ear, EarAppraisal, EarDecodeError, Status, TrustVector, VerifierId};
pub mod evidence;
pub mod freshness;
pub mod policy;
pub mod result;
pub mod verifier;

pub use evidence::{
    ATTESTATION_RESULT_FORMAT, EVIDENCE_FORMAT, EvidenceError, PayloadKind, decrypt_evidence,
    encrypt_evidence, payload_kind, sign_evidence, verify_evidence,
};
pub use freshness::{
    CHALLENGE_LEN, ChallengeError, Challenges, FreshnessError, Redeem, SeenEvidence,
    check_validity, new_challenge,
};
pub use policy::{Endorsement, EndorsementScope, Policy, PolicyError, ReferenceValues};
pub use result::{ResultCheck, ResultError, sign_ear, verify_ear};
pub use verifier::{Claim, Context, Finding, Freshness, Outcome, TrustClaim, Verifier};

/// The TAM and the Verifier service hold these across `.await` (behind an `Arc`, in tasks on
/// a multi-threaded runtime) and send them between tasks: all must stay `Send + Sync`, so a
/// field that is not (an `Rc`, a `Cell`, a non-`Sync` trait object) fails the build here
/// rather than in a downstream crate's async code.
const _: fn() = || {
    fn send_sync<T: Send + Sync + ?Sized>() {}
    send_sync::<Verifier>();
    send_sync::<SigningVerifier>();
    send_sync::<Policy>();
    send_sync::<Endorsement>();
    send_sync::<ReferenceValues>();
    send_sync::<Challenges>();
    send_sync::<SeenEvidence>();
    send_sync::<Challenge>();
    send_sync::<AppraisalRequest>();
    send_sync::<AppraisalResponse>();
    send_sync::<Appraised>();
    send_sync::<Outcome>();
    send_sync::<Finding>();
    send_sync::<Ear>();
    send_sync::<EarAppraisal>();
    send_sync::<EatClaims>();
    send_sync::<EvidenceError>();
    send_sync::<ClaimsError>();
    send_sync::<PolicyError>();
    send_sync::<ResultError>();
    send_sync::<FreshnessError>();
    send_sync::<ChallengeError>();
    send_sync::<EarDecodeError>();
    #[cfg(feature = "std")]
    send_sync::<InProcess>();
    #[cfg(feature = "std")]
    send_sync::<InProcessError>();
    #[cfg(feature = "json")]
    send_sync::<ClaimsJsonError>();
};

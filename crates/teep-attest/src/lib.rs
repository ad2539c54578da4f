//! RATS for TEEP: EAT Evidence with the TEEP profile (build, parse, verify), the Verifier
//! (appraisal against endorsements, reference values and freshness) and EAR attestation
//! results (draft-ietf-rats-ear), signed as COSE_Sign1 through `teep-cose`.
//!
//! Nothing here knows about transport: the HTTP Verifier lives in `teep-verifier`.
#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod appraiser;
pub use appraiser::{
    AppraisalRequest, AppraisalResponse, Appraised, Appraiser, Challenge, SigningVerifier,
};
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

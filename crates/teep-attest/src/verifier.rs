//! The Verifier: appraises Evidence against a [`Policy`] and says so in an EAR.
//!
//! Every check sets one AR4SI trustworthiness claim, and every failed check is also
//! reported as a typed [`Finding`]. The mapping (also in `docs/verifier-policy.md`):
//!
//! | check | good | finding -> claim value |
//! |---|---|---|
//! | COSE_Sign1 and claims decode | | `Malformed` -> instance-identity 1 (unexpected evidence) |
//! | signature by an endorsed key | instance-identity 2 | `BadSignature` -> 99, `UnknownAttestationKey` -> 97 |
//! | key endorsed for this device (class or ueid) | | `KeyNotEndorsedForDevice`, missing ueid -> instance-identity 96 / 97 |
//! | eat_profile is the TEEP profile (when present) | | `WrongProfile` -> instance-identity 1 |
//! | validity: exp / nbf against the clock (with the policy's skew) | | `Freshness(Expired / NotYetValid)` -> instance-identity 96 |
//! | freshness: nonce / challenge / iat | | `Freshness(..)`, missing nonce or iat -> instance-identity 96 |
//! | cnf matches the TEEP key | | `CnfMismatch`, missing cnf -> instance-identity 96 |
//! | oemid, hwmodel | hardware 2 | not accepted or missing -> hardware 97 |
//! | hwversion | | not accepted -> hardware 32; missing -> 97 |
//! | dbgstat, secure boot | configuration 2 | too open / off -> configuration 96; missing -> 36 |
//! | manifests: SHA-256 digests of installed TCs | executables 2 | unknown digest, other algorithm or missing -> executables 33 |
//!
//! Freshness state (challenges, the replay cache) moves only when every identity check
//! before it passed, so a rejected input leaves it unchanged.
//!
//! `ear.status` is the worst tier in the vector, and contraindicated whenever
//! instance-identity is not affirming: without a trustworthy instance nothing else counts.

use alloc::{collections::BTreeMap, string::String, vec::Vec};

use teep_cose::{CoseError, CryptoProvider, PublicKey, TrustStore, Verified, VerifyContext};

use crate::{
    claims::{Cnf, CnfKeyError, DebugStatus, EatClaims, SHA256_ALG, TEEP_EAT_PROFILE, key},
    ear::{EAR_PROFILE, Ear, EarAppraisal, Status, TEE_SUBMOD, TrustVector, VerifierId, trust},
    evidence::{EvidenceError, verify_evidence},
    freshness::{FreshnessError, Redeem, SeenEvidence, check_validity},
    policy::{EndorsementScope, Policy},
};

/// A claim the appraisal needed but the Evidence lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Claim {
    /// eat_nonce.
    Nonce,
    /// iat.
    Iat,
    /// ueid.
    Ueid,
    /// oemid.
    Oemid,
    /// hwmodel.
    HwModel,
    /// hwversion.
    HwVersion,
    /// manifests.
    Manifests,
    /// cnf.
    Cnf,
    /// dbgstat.
    DbgStat,
    /// oemboot (secure boot).
    SecBoot,
}

impl Claim {
    /// The CWT claim key.
    pub const fn key(self) -> i64 {
        match self {
            Self::Nonce => key::NONCE,
            Self::Iat => key::IAT,
            Self::Ueid => key::UEID,
            Self::Oemid => key::OEMID,
            Self::HwModel => key::HWMODEL,
            Self::HwVersion => key::HWVERSION,
            Self::Manifests => key::MANIFESTS,
            Self::Cnf => key::CNF,
            Self::DbgStat => key::DBGSTAT,
            Self::SecBoot => key::SECBOOT,
        }
    }
}

/// Which trustworthiness claim a finding lowers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrustClaim {
    /// instance-identity.
    InstanceIdentity,
    /// configuration.
    Configuration,
    /// executables.
    Executables,
    /// hardware.
    Hardware,
}

/// One reason the Evidence is less than fully trustworthy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Finding {
    /// Not a COSE_Sign1, or its claims are not a valid TEEP EAT claims-set.
    #[error("malformed Evidence: {0}")]
    Malformed(EvidenceError),
    /// The signature does not verify with the key it names.
    #[error("Evidence signature does not verify")]
    BadSignature,
    /// No endorsed attestation key matches the Evidence's signer.
    #[error("Evidence is signed by an attestation key with no endorsement")]
    UnknownAttestationKey,
    /// The key is endorsed, but for other devices than the one the claims describe.
    #[error("the attestation key is not endorsed for this device")]
    KeyNotEndorsedForDevice,
    /// `eat_profile` names another profile.
    #[error("eat_profile is not the TEEP EAT profile")]
    WrongProfile,
    /// A claim the appraisal needs is absent.
    #[error("claim {0:?} is missing")]
    MissingClaim(Claim),
    /// Freshness failed.
    #[error("{0}")]
    Freshness(FreshnessError),
    /// `cnf` does not name the key that signed the TEEP message.
    #[error("cnf does not match the TEEP message signer")]
    CnfMismatch,
    /// `oemid` not in the reference values.
    #[error("oemid not accepted")]
    OemidNotAccepted,
    /// `hwmodel` not in the reference values.
    #[error("hwmodel not accepted")]
    HwModelNotAccepted,
    /// `hwversion` not in the reference values.
    #[error("hwversion not accepted")]
    HwVersionNotAccepted,
    /// `dbgstat` is more open than the policy allows.
    #[error("debug status {0:?} is more open than the policy allows")]
    DebugNotLocked(DebugStatus),
    /// Secure boot is off.
    #[error("secure boot is off")]
    SecureBootOff,
    /// A manifest with a digest not in the reference values (empty: the entry had no
    /// SUIT_Reference digest).
    #[error("installed component not recognized")]
    UnknownComponent(Vec<u8>),
}

impl Finding {
    /// The trustworthiness claim this finding sets, and to what.
    pub fn effect(&self) -> (TrustClaim, i8) {
        use TrustClaim::*;
        match self {
            Self::Malformed(_) | Self::WrongProfile => {
                (InstanceIdentity, trust::UNEXPECTED_EVIDENCE)
            }
            Self::BadSignature => (InstanceIdentity, trust::CRYPTO_FAILED),
            Self::UnknownAttestationKey | Self::MissingClaim(Claim::Ueid) => {
                (InstanceIdentity, trust::UNRECOGNIZED_INSTANCE)
            }
            Self::KeyNotEndorsedForDevice
            | Self::Freshness(_)
            | Self::CnfMismatch
            | Self::MissingClaim(Claim::Nonce | Claim::Iat | Claim::Cnf) => {
                (InstanceIdentity, trust::UNTRUSTWORTHY_INSTANCE)
            }
            Self::OemidNotAccepted
            | Self::HwModelNotAccepted
            | Self::MissingClaim(Claim::Oemid | Claim::HwModel | Claim::HwVersion) => {
                (Hardware, trust::UNRECOGNIZED_HARDWARE)
            }
            Self::HwVersionNotAccepted => (Hardware, trust::UNSAFE_HARDWARE),
            Self::DebugNotLocked(_) | Self::SecureBootOff => {
                (Configuration, trust::UNSUPPORTABLE_CONFIG)
            }
            Self::MissingClaim(Claim::DbgStat | Claim::SecBoot) => {
                (Configuration, trust::UNAVAILABLE_CONFIG)
            }
            Self::UnknownComponent(_) | Self::MissingClaim(Claim::Manifests) => {
                (Executables, trust::UNRECOGNIZED_RUNTIME)
            }
        }
    }
}

/// How the Evidence must prove it is fresh.
pub enum Freshness<'a> {
    /// `eat_nonce` must equal the relying party's challenge (a TAM's QueryRequest
    /// `challenge`, or its `token` in the passport model). The relying party retires it.
    Nonce(&'a [u8]),
    /// `eat_nonce` must be a challenge this Verifier issued; it is redeemed once.
    Issued(&'a mut dyn Redeem),
    /// `iat` within the policy's window, and this Evidence not seen before.
    Timestamp(&'a mut SeenEvidence),
}

/// What one appraisal knows besides the Evidence.
pub struct Context<'a> {
    /// Unix time, seconds.
    pub now: u64,
    /// The freshness mechanism in use.
    pub freshness: Freshness<'a>,
    /// The key that verified the TEEP message carrying the Evidence, if the Verifier is
    /// told; otherwise `cnf` is only carried into the EAR for the relying party to check.
    pub teep_key: Option<&'a PublicKey>,
}

/// The result of one appraisal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The attestation result (unsigned; see [`crate::result::sign_ear`]).
    pub ear: Ear,
    /// Why it is not affirming, check by check.
    pub findings: Vec<Finding>,
    /// The Evidence's claims, when its signature verified.
    pub claims: Option<EatClaims>,
}

impl Outcome {
    /// The overall status.
    pub fn status(&self) -> Status {
        self.ear.status()
    }

    /// The key `cnf` confirms, for verifying the TEEP message (QueryResponse) that carried
    /// the Evidence. Only Evidence signed by an endorsed key yields one; the caller still
    /// checks [`Self::status`] before trusting the device.
    ///
    /// # Errors
    /// [`CnfKeyError::Unverified`] when the Evidence did not verify, otherwise as
    /// [`EatClaims::cnf_key`].
    pub fn cnf_key(&self) -> Result<PublicKey, CnfKeyError> {
        self.claims
            .as_ref()
            .ok_or(CnfKeyError::Unverified)?
            .cnf_key()
    }
}

/// An appraiser with a fixed policy.
pub struct Verifier {
    policy: Policy,
    trust: TrustStore,
    id: VerifierId,
}

/// Lowers a trustworthiness claim to a finding's `value` unless it already says something
/// worse. A finding is never good news, so its "none" tier value (unexpected evidence) still
/// replaces an affirming one.
fn lower(slot: &mut i8, value: i8) {
    let severity = |v: i8| match Status::of_claim(v) {
        Status::Affirming => 0,
        Status::None => 1,
        Status::Warning => 2,
        Status::Contraindicated => 3,
    };
    if *slot == trust::NO_CLAIM || severity(value) >= severity(*slot) {
        *slot = value;
    }
}

/// The trustworthiness vector and the findings while an appraisal runs.
#[derive(Default)]
struct Report {
    tv: TrustVector,
    findings: Vec<Finding>,
}

impl Report {
    fn find(&mut self, finding: Finding) {
        self.findings.push(finding);
    }
}

impl Verifier {
    /// A Verifier for `policy`, reporting itself as `id`.
    pub fn new(policy: Policy, id: VerifierId) -> Self {
        let mut trust = TrustStore::new();
        for e in &policy.endorsements {
            trust.add_key(e.key.clone());
        }
        Self { policy, trust, id }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Who this Verifier says it is in its EARs.
    pub fn id(&self) -> &VerifierId {
        &self.id
    }

    /// Appraises one Evidence. Never fails: whatever is wrong is in the EAR and the findings.
    pub fn appraise(
        &self,
        provider: &dyn CryptoProvider,
        evidence: &[u8],
        cx: &mut Context<'_>,
    ) -> Outcome {
        let mut report = Report::default();
        let verify_cx = VerifyContext::new(provider, &self.trust);
        let checked = match verify_evidence(evidence, &verify_cx) {
            Ok((claims, verified)) => Some((claims, verified)),
            Err(EvidenceError::Cose(CoseError::BadSignature)) => {
                report.find(Finding::BadSignature);
                None
            }
            // Endorsements are raw keys, and no clock is passed for certificate expiry: a
            // signer named by a certificate chain is not an endorsed key.
            Err(EvidenceError::Cose(CoseError::UntrustedSigner | CoseError::Certificate(_))) => {
                report.find(Finding::UnknownAttestationKey);
                None
            }
            Err(e) => {
                report.find(Finding::Malformed(e));
                None
            }
        };
        let (nonce, cnf, claims) = match checked {
            Some((claims, verified)) => {
                self.check(provider, &claims, &verified, cx, &mut report);
                (claims.nonce.clone(), claims.cnf.clone(), Some(claims))
            }
            None => (None, None, None),
        };
        let Report { mut tv, findings } = report;
        for f in &findings {
            let (claim, value) = f.effect();
            let slot = match claim {
                TrustClaim::InstanceIdentity => &mut tv.instance_identity,
                TrustClaim::Configuration => &mut tv.configuration,
                TrustClaim::Executables => &mut tv.executables,
                TrustClaim::Hardware => &mut tv.hardware,
            };
            lower(slot, value);
        }
        let mut status = tv.worst_tier();
        if Status::of_claim(tv.instance_identity) != Status::Affirming {
            status = Status::Contraindicated;
        }
        let appraisal = EarAppraisal {
            status,
            trust_vector: tv,
            policy_id: self.policy.id.clone(),
        };
        let ear = Ear {
            profile: EAR_PROFILE.into(),
            iat: i64::try_from(cx.now).unwrap_or(i64::MAX),
            verifier_id: self.id.clone(),
            nonce,
            cnf,
            submods: BTreeMap::from([(String::from(TEE_SUBMOD), appraisal)]),
        };
        Outcome {
            ear,
            findings,
            claims,
        }
    }

    /// The checks on Evidence whose signature verified with an endorsed key. Sets the
    /// "good" value of each claim it checks; findings lower them afterwards.
    fn check(
        &self,
        provider: &dyn CryptoProvider,
        claims: &EatClaims,
        verified: &Verified,
        cx: &mut Context<'_>,
        report: &mut Report,
    ) {
        report.tv.instance_identity = trust::TRUSTWORTHY_INSTANCE;
        if claims
            .profile
            .as_deref()
            .is_some_and(|p| p != TEEP_EAT_PROFILE)
        {
            report.find(Finding::WrongProfile);
        }
        self.check_endorsement(claims, &verified.signer, report);
        // Freshness state (a challenge redeemed, the replay cache) moves only for Evidence
        // that is this device's and within exp/nbf: a rejected input leaves it as it was.
        match check_validity(claims.exp, claims.nbf, cx.now, self.policy.clock_skew) {
            Err(e) => report.find(Finding::Freshness(e)),
            Ok(()) if !report.findings.is_empty() => {}
            Ok(()) => check_freshness(
                provider,
                &verified.payload,
                claims,
                cx,
                self.policy.freshness_window,
                report,
            ),
        }
        match (&claims.cnf, cx.teep_key) {
            (None, _) => report.find(Finding::MissingClaim(Claim::Cnf)),
            (Some(cnf), Some(key)) if !cnf_matches(cnf, key) => report.find(Finding::CnfMismatch),
            _ => {}
        }
        self.check_hardware(claims, report);
        self.check_configuration(claims, report);
        self.check_executables(claims, report);
    }

    fn check_endorsement(&self, claims: &EatClaims, signer: &PublicKey, report: &mut Report) {
        let Some(ueid) = &claims.ueid else {
            report.find(Finding::MissingClaim(Claim::Ueid));
            return;
        };
        let endorsed = self
            .policy
            .endorsements
            .iter()
            .filter(|e| &e.key == signer)
            .any(|e| match &e.scope {
                EndorsementScope::Ueid(u) => u == ueid,
                EndorsementScope::DeviceClass { oemid, hwmodel } => {
                    claims.oemid.as_ref() == Some(oemid) && claims.hwmodel.as_ref() == Some(hwmodel)
                }
            });
        if !endorsed {
            report.find(Finding::KeyNotEndorsedForDevice);
        }
    }

    fn check_hardware(&self, claims: &EatClaims, report: &mut Report) {
        let r = &self.policy.reference;
        report.tv.hardware = trust::GENUINE_HARDWARE;
        match &claims.oemid {
            None => report.find(Finding::MissingClaim(Claim::Oemid)),
            Some(o) if !r.oemids.contains(o) => report.find(Finding::OemidNotAccepted),
            Some(_) => {}
        }
        match &claims.hwmodel {
            None => report.find(Finding::MissingClaim(Claim::HwModel)),
            Some(m) if !r.hwmodels.contains(m) => report.find(Finding::HwModelNotAccepted),
            Some(_) => {}
        }
        match &claims.hwversion {
            None => report.find(Finding::MissingClaim(Claim::HwVersion)),
            Some(v) if !r.hwversions.is_empty() && !r.hwversions.contains(&v.version) => {
                report.find(Finding::HwVersionNotAccepted);
            }
            Some(_) => {}
        }
    }

    fn check_configuration(&self, claims: &EatClaims, report: &mut Report) {
        let r = &self.policy.reference;
        if r.min_dbgstat.is_none() && !r.require_secboot {
            return;
        }
        report.tv.configuration = trust::APPROVED_CONFIG;
        if let Some(min) = r.min_dbgstat {
            match claims.dbgstat {
                None => report.find(Finding::MissingClaim(Claim::DbgStat)),
                Some(found) if found < min => report.find(Finding::DebugNotLocked(found)),
                Some(_) => {}
            }
        }
        if r.require_secboot {
            match claims.secboot {
                None => report.find(Finding::MissingClaim(Claim::SecBoot)),
                Some(false) => report.find(Finding::SecureBootOff),
                Some(true) => {}
            }
        }
    }

    fn check_executables(&self, claims: &EatClaims, report: &mut Report) {
        report.tv.executables = trust::APPROVED_RUNTIME;
        let Some(manifests) = &claims.manifests else {
            report.find(Finding::MissingClaim(Claim::Manifests));
            return;
        };
        for m in manifests {
            let digest = m.digest();
            // Reference digests are SHA-256: the same bytes under another algorithm are a
            // different statement and match nothing.
            let known = digest.is_some_and(|d| {
                d.algorithm == SHA256_ALG && self.policy.reference.tc_digests.contains(&d.bytes)
            });
            if !known {
                report.find(Finding::UnknownComponent(
                    digest.map(|d| d.bytes.clone()).unwrap_or_default(),
                ));
            }
        }
    }
}

/// `payload` is the signed claims-set: replays are recognised by what the Evidence says,
/// whatever COSE envelope (tag, unprotected headers, signature encoding) it came in.
fn check_freshness(
    provider: &dyn CryptoProvider,
    payload: &[u8],
    claims: &EatClaims,
    cx: &mut Context<'_>,
    window: u64,
    report: &mut Report,
) {
    let result = match &mut cx.freshness {
        Freshness::Nonce(expected) => match &claims.nonce {
            None => return report.find(Finding::MissingClaim(Claim::Nonce)),
            Some(n) if n != expected => Err(FreshnessError::NonceMismatch),
            Some(_) => Ok(()),
        },
        Freshness::Issued(challenges) => match &claims.nonce {
            None => return report.find(Finding::MissingClaim(Claim::Nonce)),
            Some(n) => challenges.redeem(n, cx.now),
        },
        Freshness::Timestamp(seen) => match claims.iat {
            None => return report.find(Finding::MissingClaim(Claim::Iat)),
            Some(iat) => seen.accept(provider.sha256(payload), iat, cx.now, window),
        },
    };
    if let Err(e) = result {
        report.find(Finding::Freshness(e));
    }
}

/// Does `cnf` name `key`? A kid is compared with the key's RFC 9679 thumbprint (SHA-256, the
/// digest of the SUIT profiles we support), a full COSE_Key by its value.
pub fn cnf_matches(cnf: &Cnf, key: &PublicKey) -> bool {
    match cnf {
        Cnf::Kid(kid) => kid.as_slice() == key.thumbprint().as_slice(),
        Cnf::CoseKey(bytes) => PublicKey::from_cose_key_bytes(bytes).is_ok_and(|k| &k == key),
    }
}

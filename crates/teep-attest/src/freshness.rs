//! Freshness state: challenges a Verifier issued, and Evidence it has already accepted.
//!
//! Sans-IO like the rest of the crate: the caller passes the time (Unix seconds) and the
//! crypto provider that supplies randomness.

use alloc::{
    collections::{BTreeMap, VecDeque},
    vec::Vec,
};

use teep_cose::{CoseError, CryptoProvider};

use crate::claims::{EAT_NONCE_MAX, EAT_NONCE_MIN};

/// Length of the challenges our Verifier and TAM issue. A TEEP `challenge` may be 8..=512
/// bytes, but the Agent must return it as `eat_nonce`, which holds 8..=64: 32 random bytes
/// fit, and are far beyond guessing.
pub const CHALLENGE_LEN: usize = 32;

const _: () = assert!(CHALLENGE_LEN >= EAT_NONCE_MIN && CHALLENGE_LEN <= EAT_NONCE_MAX);

/// A fresh random challenge of [`CHALLENGE_LEN`] bytes: what a TAM puts in a QueryRequest's
/// `challenge` and what the Verifier's [`Challenges::issue`] hands out, so that every
/// challenge we issue fits back into `eat_nonce`.
///
/// # Errors
/// The provider's random source failed.
pub fn new_challenge(provider: &dyn CryptoProvider) -> Result<Vec<u8>, CoseError> {
    let mut nonce = alloc::vec![0u8; CHALLENGE_LEN];
    provider.fill_random(&mut nonce)?;
    Ok(nonce)
}

/// At most this many challenges (or remembered Evidence digests) are held at once, so that a
/// client asking for challenges in a loop cannot grow the Verifier's memory without bound.
pub const MAX_TRACKED: usize = 65_536;

/// Why the Evidence is not fresh.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FreshnessError {
    /// `eat_nonce` is not the challenge the relying party issued.
    #[error("eat_nonce does not match the challenge")]
    NonceMismatch,
    /// `eat_nonce` is no challenge this Verifier issued (or it expired and was forgotten).
    #[error("eat_nonce is not a challenge this Verifier issued")]
    UnknownChallenge,
    /// The challenge was already used by an earlier Evidence, or this exact Evidence was
    /// already accepted.
    #[error("replayed Evidence")]
    Replayed,
    /// The challenge expired, or `iat` is outside the freshness window.
    #[error("stale Evidence (issued at {issued}, now {now})")]
    Stale {
        /// When the challenge or the Evidence was issued.
        issued: i64,
        /// The Verifier's time.
        now: u64,
    },
    /// Too many challenges outstanding.
    #[error("too many outstanding challenges")]
    Busy,
    /// `exp` has passed (by more than the allowed clock skew).
    #[error("expired Evidence (exp {exp}, now {now})")]
    Expired {
        /// The Evidence's `exp`.
        exp: i64,
        /// The Verifier's time.
        now: u64,
    },
    /// `nbf` is still ahead (by more than the allowed clock skew).
    #[error("Evidence not yet valid (nbf {nbf}, now {now})")]
    NotYetValid {
        /// The Evidence's `nbf`.
        nbf: i64,
        /// The Verifier's time.
        now: u64,
    },
}

/// Checks `exp` and `nbf` against the Verifier's clock (RFC 8392 §3.1.4-3.1.5: valid from
/// `nbf` inclusive until `exp` exclusive), each widened by `skew` seconds.
pub fn check_validity(
    exp: Option<i64>,
    nbf: Option<i64>,
    now: u64,
    skew: u64,
) -> Result<(), FreshnessError> {
    // i128 holds every i64 + u64 sum, so no bound can wrap around.
    let (now_w, skew_w) = (i128::from(now), i128::from(skew));
    if let Some(exp) = exp
        && now_w >= i128::from(exp) + skew_w
    {
        return Err(FreshnessError::Expired { exp, now });
    }
    if let Some(nbf) = nbf
        && now_w + skew_w < i128::from(nbf)
    {
        return Err(FreshnessError::NotYetValid { nbf, now });
    }
    Ok(())
}

/// Where issued challenges are redeemed. [`Challenges`] is the store; a service that shares
/// one between threads implements this on a handle that locks only for the redemption, so
/// appraisals (signature checks) run in parallel.
pub trait Redeem {
    /// Redeems a challenge found in Evidence: it must be outstanding and unexpired, and can be
    /// redeemed once.
    fn redeem(&mut self, nonce: &[u8], now: u64) -> Result<(), FreshnessError>;
}

/// Challenges issued by this Verifier (background-check model over its challenge/verify API).
///
/// At most [`MAX_TRACKED`] are outstanding: when full, issuing one forgets the oldest, so a
/// client asking for challenges in a loop (every empty POST to a TAM is one) pushes out its
/// own but never stops anyone else from getting one, and each issue costs the same however
/// many are held (a full set was pruned by a walk of all of it on every issue, and then
/// refused every new challenge until the oldest expired).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenges {
    /// Challenge -> Unix time it was issued.
    outstanding: BTreeMap<Vec<u8>, u64>,
    /// The outstanding challenges in the order issued, with that time: the oldest goes first.
    /// One redeemed since stays here until it reaches the front (or a compaction).
    order: VecDeque<(u64, Vec<u8>)>,
    /// Redeemed challenge -> Unix time it was issued (kept until it would have expired).
    spent: BTreeMap<Vec<u8>, u64>,
    /// The redeemed challenges in the order redeemed, to forget them once expired.
    spent_order: VecDeque<(u64, Vec<u8>)>,
    lifetime: u64,
}

impl Challenges {
    /// An empty set whose challenges stay valid `lifetime` seconds.
    pub fn new(lifetime: u64) -> Self {
        Self {
            outstanding: BTreeMap::new(),
            order: VecDeque::new(),
            spent: BTreeMap::new(),
            spent_order: VecDeque::new(),
            lifetime,
        }
    }

    /// Forgets the challenges (outstanding and spent) that expired before `now`, oldest
    /// first, stopping at the first live one.
    fn forget_expired(&mut self, now: u64) {
        let lifetime = self.lifetime;
        let expired = |issued: u64| issued.saturating_add(lifetime) < now;
        while let Some((issued, nonce)) = self.order.front() {
            if !expired(*issued) {
                break;
            }
            if self.outstanding.get(nonce) == Some(issued) {
                self.outstanding.remove(nonce);
            }
            self.order.pop_front();
        }
        while let Some((issued, nonce)) = self.spent_order.front() {
            if !expired(*issued) {
                break;
            }
            self.spent.remove(nonce);
            self.spent_order.pop_front();
        }
    }

    /// Forgets the oldest outstanding challenge.
    fn forget_oldest(&mut self) {
        while let Some((issued, nonce)) = self.order.pop_front() {
            if self.outstanding.get(&nonce) == Some(&issued) {
                self.outstanding.remove(&nonce);
                return;
            }
        }
    }

    /// Issues a fresh random challenge; when [`MAX_TRACKED`] are outstanding, the oldest is
    /// forgotten. Refused only when as many are spent and unexpired: each of those took an
    /// Evidence that verified.
    pub fn issue(
        &mut self,
        provider: &dyn CryptoProvider,
        now: u64,
    ) -> Result<Vec<u8>, ChallengeError> {
        self.forget_expired(now);
        if self.spent.len() >= MAX_TRACKED {
            return Err(ChallengeError::Busy);
        }
        let nonce = new_challenge(provider).map_err(ChallengeError::Random)?;
        if self.outstanding.len() >= MAX_TRACKED {
            self.forget_oldest();
        }
        // Redeemed challenges leave entries behind in `order`: dropped when they outnumber
        // the outstanding ones, so the queue stays within twice the bound.
        if self.order.len() >= 2 * MAX_TRACKED {
            let outstanding = &self.outstanding;
            self.order
                .retain(|(issued, n)| outstanding.get(n) == Some(issued));
        }
        self.outstanding.insert(nonce.clone(), now);
        self.order.push_back((now, nonce.clone()));
        Ok(nonce)
    }
}

impl Redeem for Challenges {
    fn redeem(&mut self, nonce: &[u8], now: u64) -> Result<(), FreshnessError> {
        if self.spent.contains_key(nonce) {
            return Err(FreshnessError::Replayed);
        }
        let issued = self
            .outstanding
            .remove(nonce)
            .ok_or(FreshnessError::UnknownChallenge)?;
        if issued.saturating_add(self.lifetime) < now {
            return Err(FreshnessError::Stale {
                issued: i64::try_from(issued).unwrap_or(i64::MAX),
                now,
            });
        }
        self.spent.insert(nonce.to_vec(), issued);
        self.spent_order.push_back((issued, nonce.to_vec()));
        Ok(())
    }
}

/// Why a challenge could not be issued.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// Too many challenges outstanding.
    #[error("too many outstanding challenges")]
    Busy,
    /// The random source failed.
    #[error("random source failed: {0}")]
    Random(CoseError),
}

/// Digests of Evidence accepted under the timestamp mechanism, so the same Evidence cannot be
/// presented twice within the window. The digest is over the signed claims-set, not the wire
/// bytes: a copy re-tagged, with other unprotected headers or another valid signature over
/// the same claims (ECDSA's high-S twin) says the same thing and is the same Evidence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeenEvidence {
    /// SHA-256 of the Evidence's signed payload -> its `iat`.
    seen: BTreeMap<[u8; 32], i64>,
}

impl SeenEvidence {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks `iat` against the window and records the Evidence; a second call with the same
    /// digest inside the window is a replay.
    pub fn accept(
        &mut self,
        digest: [u8; 32],
        iat: i64,
        now: u64,
        window: u64,
    ) -> Result<(), FreshnessError> {
        let now_i = i64::try_from(now).unwrap_or(i64::MAX);
        let window_i = i64::try_from(window).unwrap_or(i64::MAX);
        if iat.abs_diff(now_i) > window {
            return Err(FreshnessError::Stale { issued: iat, now });
        }
        if self.seen.contains_key(&digest) {
            return Err(FreshnessError::Replayed);
        }
        if self.seen.len() >= MAX_TRACKED {
            self.seen
                .retain(|_, seen_iat| seen_iat.saturating_add(window_i) >= now_i);
            if self.seen.len() >= MAX_TRACKED {
                return Err(FreshnessError::Busy);
            }
        }
        self.seen.insert(digest, iat);
        Ok(())
    }
}

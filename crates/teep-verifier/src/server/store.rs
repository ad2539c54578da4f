//! Per-relying-party state: outstanding challenges (bounded, oldest evicted) and the rate
//! limiter.

use std::{
    collections::VecDeque,
    num::{NonZeroU32, NonZeroUsize},
    time::{Duration, Instant},
};

use teep_attest::{FreshnessError, Redeem, new_challenge};
use teep_cose::{CoseError, CryptoProvider};

/// Challenges issued to one relying party, in the order issued.
///
/// At most `bound` are outstanding: a new one evicts the oldest, which then redeems as
/// unknown. Redeemed ones are remembered (as many, also oldest first) only to answer
/// `Replayed` rather than `UnknownChallenge`; a redeemed challenge is never outstanding
/// again, so forgetting it cannot make a replay succeed.
pub(crate) struct Outstanding {
    lifetime: u64,
    bound: NonZeroUsize,
    issued: VecDeque<(Vec<u8>, u64)>,
    spent: VecDeque<Vec<u8>>,
}

impl Outstanding {
    pub(crate) fn new(lifetime: u64, bound: NonZeroUsize) -> Self {
        Self {
            lifetime,
            bound,
            issued: VecDeque::new(),
            spent: VecDeque::new(),
        }
    }

    /// Issues a fresh random challenge, dropping expired ones and, when full, the oldest.
    pub(crate) fn issue(
        &mut self,
        provider: &dyn CryptoProvider,
        now: u64,
    ) -> Result<Vec<u8>, CoseError> {
        let nonce = new_challenge(provider)?;
        let lifetime = self.lifetime;
        self.issued
            .retain(|(_, issued)| issued.saturating_add(lifetime) >= now);
        if self.issued.len() >= self.bound.get() {
            self.issued.pop_front();
        }
        self.issued.push_back((nonce.clone(), now));
        Ok(nonce)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.issued.len()
    }
}

impl Redeem for Outstanding {
    fn redeem(&mut self, nonce: &[u8], now: u64) -> Result<(), FreshnessError> {
        if self.spent.iter().any(|s| s == nonce) {
            return Err(FreshnessError::Replayed);
        }
        let at = self
            .issued
            .iter()
            .position(|(n, _)| n == nonce)
            .ok_or(FreshnessError::UnknownChallenge)?;
        let (nonce, issued) = self
            .issued
            .remove(at)
            .ok_or(FreshnessError::UnknownChallenge)?;
        if issued.saturating_add(self.lifetime) < now {
            return Err(FreshnessError::Stale {
                issued: i64::try_from(issued).unwrap_or(i64::MAX),
                now,
            });
        }
        if self.spent.len() >= self.bound.get() {
            self.spent.pop_front();
        }
        self.spent.push_back(nonce);
        Ok(())
    }
}

/// A request rate: one request per `interval` on average, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Time one request's allowance takes to come back.
    pub interval: Duration,
    /// Requests allowed back to back after a quiet spell.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// `per_second` requests a second on average, `burst` at once.
    pub fn per_second(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.get(),
            burst,
        }
    }
}

/// A generic cell rate algorithm (GCRA) limiter: a token bucket kept as one instant, the
/// time the bucket will be full again.
#[derive(Default)]
pub(crate) struct Limiter {
    /// Theoretical arrival time of the next request; `None` before the first.
    tat: Option<Instant>,
}

impl Limiter {
    /// Admits one request at `now`, or says how long until one would be admitted.
    pub(crate) fn admit(&mut self, limit: &RateLimit, now: Instant) -> Result<(), Duration> {
        let tat = self.tat.map_or(now, |t| t.max(now));
        let tolerance = limit.interval.saturating_mul(limit.burst.get() - 1);
        let ahead = tat.saturating_duration_since(now);
        if ahead > tolerance {
            return Err(ahead.saturating_sub(tolerance));
        }
        self.tat = Some(tat.checked_add(limit.interval).unwrap_or(tat));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: usize) -> NonZeroUsize {
        NonZeroUsize::new(n).unwrap()
    }

    #[test]
    fn the_oldest_challenge_is_evicted_and_then_unknown() {
        let p = teep_cose::default_provider();
        let mut s = Outstanding::new(60, nz(2));
        let first = s.issue(p, 100).unwrap();
        let second = s.issue(p, 100).unwrap();
        let third = s.issue(p, 101).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.redeem(&first, 102), Err(FreshnessError::UnknownChallenge));
        assert_eq!(s.redeem(&second, 102), Ok(()));
        assert_eq!(s.redeem(&second, 102), Err(FreshnessError::Replayed));
        assert_eq!(s.redeem(&third, 102), Ok(()));
        // A third redemption pushes the first spent one out: a replay of it is still
        // refused, only as unknown.
        let fourth = s.issue(p, 103).unwrap();
        assert_eq!(s.redeem(&fourth, 103), Ok(()));
        assert_eq!(
            s.redeem(&second, 103),
            Err(FreshnessError::UnknownChallenge)
        );
        assert_eq!(s.redeem(&fourth, 103), Err(FreshnessError::Replayed));
    }

    #[test]
    fn an_expired_challenge_is_stale_then_forgotten() {
        let p = teep_cose::default_provider();
        let mut s = Outstanding::new(60, nz(4));
        let old = s.issue(p, 100).unwrap();
        assert_eq!(
            s.redeem(&old, 161),
            Err(FreshnessError::Stale {
                issued: 100,
                now: 161
            })
        );
        assert_eq!(s.redeem(&old, 161), Err(FreshnessError::UnknownChallenge));
        s.issue(p, 100).unwrap();
        s.issue(p, 200).unwrap();
        assert_eq!(s.len(), 1, "issuing drops expired challenges");
        assert_eq!(
            s.redeem(&[0; 8], 200),
            Err(FreshnessError::UnknownChallenge)
        );
    }

    #[test]
    fn the_limiter_allows_a_burst_then_one_per_interval() {
        let limit = RateLimit {
            interval: Duration::from_secs(10),
            burst: NonZeroU32::new(3).unwrap(),
        };
        let t0 = Instant::now();
        let mut l = Limiter::default();
        for _ in 0..3 {
            assert_eq!(l.admit(&limit, t0), Ok(()));
        }
        assert_eq!(l.admit(&limit, t0), Err(Duration::from_secs(10)));
        let t = t0 + Duration::from_secs(4);
        assert_eq!(l.admit(&limit, t), Err(Duration::from_secs(6)));
        let t = t0 + Duration::from_secs(10);
        assert_eq!(l.admit(&limit, t), Ok(()));
        assert_eq!(l.admit(&limit, t), Err(Duration::from_secs(10)));
        // After a long quiet spell the whole burst is back, not more.
        let t = t0 + Duration::from_secs(1000);
        for _ in 0..3 {
            assert_eq!(l.admit(&limit, t), Ok(()));
        }
        assert!(l.admit(&limit, t).is_err());
        assert_eq!(
            RateLimit::per_second(NonZeroU32::new(4).unwrap(), NonZeroU32::new(1).unwrap())
                .interval,
            Duration::from_millis(250)
        );
    }
}

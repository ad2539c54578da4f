//! A token bucket per client IP address, in a bounded table: the cost of a request is paid
//! before its body is read.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How many requests one client IP may send: `burst` back to back, then `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Requests a second, on average (more than zero).
    pub per_second: f64,
    /// Requests back to back (at least one).
    pub burst: u32,
    /// Client addresses tracked at once. When the table is full, clients whose bucket has
    /// refilled are forgotten (they are indistinguishable from new ones); if none has, a
    /// new client is refused until one does.
    pub max_clients: usize,
}

impl Default for RateLimit {
    /// Ten requests back to back and two a second: a device's session is a handful of
    /// requests, and an Agent that retries waits for `Retry-After`.
    fn default() -> Self {
        Self {
            per_second: 2.0,
            burst: 10,
            max_clients: 65_536,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets.
#[derive(Debug, Default)]
pub(super) struct Limiter {
    buckets: HashMap<IpAddr, Bucket>,
}

impl Limiter {
    /// Takes one token for `ip`, or says how long to wait for one.
    pub(super) fn admit(
        &mut self,
        rate: &RateLimit,
        ip: IpAddr,
        now: Instant,
    ) -> Result<(), Duration> {
        let per_second = rate.per_second.max(f64::MIN_POSITIVE);
        let burst = f64::from(rate.burst.max(1));
        let refill = |b: &Bucket| {
            let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
            (b.tokens + elapsed * per_second).min(burst)
        };
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= rate.max_clients {
            self.buckets.retain(|_, b| refill(b) < burst);
            if self.buckets.len() >= rate.max_clients {
                return Err(Duration::from_secs(1));
            }
        }
        let bucket = self.buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let tokens = refill(bucket);
        bucket.at = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Ok(())
        } else {
            bucket.tokens = tokens;
            Err(Duration::from_secs_f64((1.0 - tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    fn rate(max_clients: usize) -> RateLimit {
        RateLimit {
            per_second: 1.0,
            burst: 2,
            max_clients,
        }
    }

    #[test]
    fn burst_then_refill() {
        let (mut l, r, t) = (Limiter::default(), rate(8), Instant::now());
        assert_eq!(l.admit(&r, A, t), Ok(()));
        assert_eq!(l.admit(&r, A, t), Ok(()));
        let wait = l.admit(&r, A, t).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        assert_eq!(
            l.admit(&r, B, t),
            Ok(()),
            "another client has its own bucket"
        );
        assert_eq!(l.admit(&r, A, t + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn table_is_bounded() {
        let (mut l, r, t) = (Limiter::default(), rate(1), Instant::now());
        assert_eq!(l.admit(&r, A, t), Ok(()));
        assert!(l.admit(&r, B, t).is_err(), "table full of a busy client");
        assert_eq!(l.buckets.len(), 1);
        let later = t + Duration::from_secs(5);
        assert_eq!(
            l.admit(&r, B, later),
            Ok(()),
            "A refilled and was forgotten"
        );
        assert_eq!(l.buckets.len(), 1);
    }
}

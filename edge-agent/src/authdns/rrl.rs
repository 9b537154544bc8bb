//! Response-rate limiting (sans I/O, time passed in), so the edge is not
//! an amplifier for forged-source floods: a token bucket per client
//! prefix (IPv4 /24 and IPv6 /56 by default). Within the rate a response
//! is sent; beyond it, every `slip`-th response goes out empty with TC=1
//! (a real client behind that prefix retries over TCP, which is never
//! limited here since its source cannot be forged) and the others are
//! dropped. The table of prefixes is bounded: when full, idle prefixes
//! are forgotten, and a new prefix that still finds no room is only ever
//! slipped, never answered in full.

use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

/// The limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Responses per second per client prefix.
    pub responses_per_second: u32,
    /// Responses a prefix may get at once after being quiet (the bucket's
    /// size; at least 1).
    pub burst: u32,
    /// Every n-th limited response is sent truncated instead of dropped;
    /// 0: all are dropped.
    pub slip: u32,
    /// The IPv4 prefix length clients are grouped by.
    pub ipv4_prefix: u8,
    /// The IPv6 prefix length clients are grouped by.
    pub ipv6_prefix: u8,
    /// The most prefixes tracked at once.
    pub max_prefixes: usize,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            responses_per_second: 200,
            burst: 200,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            max_prefixes: 65_536,
        }
    }
}

/// What to do with one response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit: send it.
    Send,
    /// Over the limit: send it empty with TC=1.
    Slip,
    /// Over the limit: send nothing.
    Drop,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
    limited: u32,
}

/// The per-prefix buckets.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: HashMap<(bool, u128), Bucket>,
}

impl RateLimiter {
    /// A limiter with no history.
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: HashMap::new(),
        }
    }

    /// The limits.
    pub fn limit(&self) -> &RateLimit {
        &self.limit
    }

    /// How many prefixes are tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    /// The verdict for one response to `client` at `now`.
    pub fn check(&mut self, client: IpAddr, now: Instant) -> Verdict {
        let key = self.key(client);
        let rate = f64::from(self.limit.responses_per_second);
        let burst = f64::from(self.limit.burst.max(1));
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.limit.max_prefixes {
            self.forget_idle(now);
            if self.buckets.len() >= self.limit.max_prefixes {
                return if self.limit.slip > 0 {
                    Verdict::Slip
                } else {
                    Verdict::Drop
                };
            }
        }
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
            limited: 0,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Send;
        }
        bucket.limited = bucket.limited.wrapping_add(1);
        if self.limit.slip > 0 && bucket.limited.is_multiple_of(self.limit.slip) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    /// Forgets the prefixes whose bucket has refilled (they would start
    /// afresh anyway).
    fn forget_idle(&mut self, now: Instant) {
        let rate = f64::from(self.limit.responses_per_second.max(1));
        let refill = Duration::from_secs_f64(f64::from(self.limit.burst.max(1)) / rate);
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.at) < refill);
    }

    fn key(&self, client: IpAddr) -> (bool, u128) {
        match client {
            IpAddr::V4(a) => {
                let len = u32::from(self.limit.ipv4_prefix.min(32));
                let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                (false, u128::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                // An IPv4-mapped client is grouped as IPv4.
                if let Some(v4) = a.to_ipv4_mapped() {
                    return self.key(IpAddr::V4(v4));
                }
                let len = u32::from(self.limit.ipv6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                (true, u128::from(a) & mask)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rps: u32, burst: u32, slip: u32) -> RateLimiter {
        RateLimiter::new(RateLimit {
            responses_per_second: rps,
            burst,
            slip,
            ..RateLimit::default()
        })
    }

    fn verdicts(l: &mut RateLimiter, client: &str, now: Instant, n: usize) -> Vec<Verdict> {
        let client: IpAddr = client.parse().unwrap();
        (0..n).map(|_| l.check(client, now)).collect()
    }

    #[test]
    fn a_burst_is_sent_then_every_slip_th_is_truncated() {
        let mut l = limiter(10, 3, 2);
        let now = Instant::now();
        let v = verdicts(&mut l, "198.51.100.7", now, 7);
        use Verdict::*;
        assert_eq!(v, [Send, Send, Send, Drop, Slip, Drop, Slip]);
    }

    #[test]
    fn tokens_come_back_at_the_rate() {
        let mut l = limiter(10, 1, 0);
        let t0 = Instant::now();
        assert_eq!(
            verdicts(&mut l, "198.51.100.7", t0, 2),
            [Verdict::Send, Verdict::Drop]
        );
        // 50 ms = half a token: still limited.
        let t1 = t0 + Duration::from_millis(50);
        assert_eq!(verdicts(&mut l, "198.51.100.7", t1, 1), [Verdict::Drop]);
        let t2 = t0 + Duration::from_millis(101);
        assert_eq!(
            verdicts(&mut l, "198.51.100.7", t2, 2),
            [Verdict::Send, Verdict::Drop]
        );
        // A long pause refills to the burst, no more.
        let t3 = t2 + Duration::from_secs(60);
        assert_eq!(
            verdicts(&mut l, "198.51.100.7", t3, 2),
            [Verdict::Send, Verdict::Drop]
        );
    }

    #[test]
    fn clients_are_grouped_by_prefix() {
        let mut l = limiter(1, 1, 0);
        let now = Instant::now();
        assert_eq!(verdicts(&mut l, "198.51.100.7", now, 1), [Verdict::Send]);
        // Same /24: the same bucket.
        assert_eq!(verdicts(&mut l, "198.51.100.200", now, 1), [Verdict::Drop]);
        // Another /24 is not affected.
        assert_eq!(verdicts(&mut l, "198.51.101.7", now, 1), [Verdict::Send]);
        // IPv6: the same /56 shares, another /56 does not.
        assert_eq!(verdicts(&mut l, "2001:db8:0:1::1", now, 1), [Verdict::Send]);
        assert_eq!(
            verdicts(&mut l, "2001:db8:0:ff::2", now, 1),
            [Verdict::Drop]
        );
        assert_eq!(
            verdicts(&mut l, "2001:db8:0:100::1", now, 1),
            [Verdict::Send]
        );
        // An IPv4-mapped address is its IPv4 prefix.
        assert_eq!(
            verdicts(&mut l, "::ffff:198.51.101.9", now, 1),
            [Verdict::Drop]
        );
    }

    #[test]
    fn a_full_table_forgets_idle_prefixes_and_never_answers_in_full_beyond_it() {
        let mut l = RateLimiter::new(RateLimit {
            responses_per_second: 10,
            burst: 1,
            slip: 2,
            max_prefixes: 2,
            ..RateLimit::default()
        });
        let t0 = Instant::now();
        assert_eq!(verdicts(&mut l, "198.51.1.1", t0, 1), [Verdict::Send]);
        assert_eq!(verdicts(&mut l, "198.51.2.1", t0, 1), [Verdict::Send]);
        // Full, nobody idle: a third prefix is only slipped.
        assert_eq!(verdicts(&mut l, "198.51.3.1", t0, 1), [Verdict::Slip]);
        assert_eq!(l.tracked(), 2);
        // After the buckets refilled, they are forgotten and there is room.
        let t1 = t0 + Duration::from_millis(150);
        assert_eq!(verdicts(&mut l, "198.51.3.1", t1, 1), [Verdict::Send]);
        assert_eq!(l.tracked(), 1);
    }

    #[test]
    fn prefix_lengths_at_the_edges() {
        let mut l = RateLimiter::new(RateLimit {
            responses_per_second: 1,
            burst: 1,
            slip: 0,
            ipv4_prefix: 0,
            ipv6_prefix: 128,
            ..RateLimit::default()
        });
        let now = Instant::now();
        assert_eq!(verdicts(&mut l, "10.0.0.1", now, 1), [Verdict::Send]);
        assert_eq!(verdicts(&mut l, "192.0.2.1", now, 1), [Verdict::Drop]);
        assert_eq!(verdicts(&mut l, "2001:db8::1", now, 1), [Verdict::Send]);
        assert_eq!(verdicts(&mut l, "2001:db8::2", now, 1), [Verdict::Send]);
    }
}

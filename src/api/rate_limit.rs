//! Per-key request rate limiting: a token bucket per API key, refilled at the team's
//! requests-per-second with a burst of one second's worth.
//!
//! Written here rather than taken from a crate because each key has its own quota (team overrides)
//! and the response must say how many requests remain, which the keyed limiters on crates.io do not
//! expose together. Buckets live in this process: with several replicas each enforces the limit on
//! the requests it serves.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until a request would be allowed (only when refused).
    pub retry_after_secs: u64,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

/// Buckets idle this long are full again and can be forgotten.
const IDLE: Duration = Duration::from_secs(120);

impl RateLimiter {
    pub fn check(&self, key: Uuid, limit: u32, now: Instant) -> Decision {
        let limit = limit.max(1);
        let capacity = f64::from(limit);
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.updated) < IDLE);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * capacity).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision {
                allowed: true,
                limit,
                remaining: bucket.tokens as u32,
                retry_after_secs: 0,
            }
        } else {
            let wait = (1.0 - bucket.tokens) / capacity;
            Decision {
                allowed: false,
                limit,
                remaining: 0,
                retry_after_secs: wait.ceil().max(1.0) as u64,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_refuses_then_refills() {
        let rl = RateLimiter::default();
        let key = Uuid::now_v7();
        let t0 = Instant::now();
        for i in 0..5 {
            let d = rl.check(key, 5, t0);
            assert!(d.allowed);
            assert_eq!(d.remaining, 4 - i);
        }
        let refused = rl.check(key, 5, t0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        assert!(rl.check(key, 5, t0 + Duration::from_millis(250)).allowed);
        assert!(!rl.check(key, 5, t0 + Duration::from_millis(250)).allowed);
    }

    #[test]
    fn keys_are_independent() {
        let rl = RateLimiter::default();
        let t0 = Instant::now();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(rl.check(a, 1, t0).allowed);
        assert!(!rl.check(a, 1, t0).allowed);
        assert!(rl.check(b, 1, t0).allowed);
    }
}

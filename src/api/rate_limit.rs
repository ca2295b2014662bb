//! Request rate limiting: a token bucket per key, refilled at the key's rate per second with a
//! burst of one second's worth. Keys are teams (all of a team's API keys share its limit), hooks
//! (per automation) and client addresses (requests that fail authentication).
//!
//! Written here rather than taken from a crate because each key has its own quota (team overrides)
//! and the response must say how many requests remain, which the keyed limiters on crates.io do not
//! expose together. Buckets live in this process: with several replicas each enforces the limit on
//! the requests it serves.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request},
    http::HeaderName,
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

pub struct RateLimiter<K = Uuid> {
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K> Default for RateLimiter<K> {
    fn default() -> Self {
        RateLimiter {
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

/// Buckets idle this long are full again and can be forgotten.
const IDLE: Duration = Duration::from_secs(120);

impl<K: Hash + Eq> RateLimiter<K> {
    /// Takes a token when there is one.
    pub fn check(&self, key: K, limit: u32, now: Instant) -> Decision {
        self.decide(key, limit, now, true)
    }

    /// Whether a request would be allowed, taking nothing.
    pub fn peek(&self, key: K, limit: u32, now: Instant) -> Decision {
        self.decide(key, limit, now, false)
    }

    fn decide(&self, key: K, limit: u32, now: Instant, take: bool) -> Decision {
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
            if take {
                bucket.tokens -= 1.0;
            }
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

/// Where a request comes from, as a rate-limiting key: the address the connection came from, or
/// with `trusted_header` (set when a proxy is in front) the last address in that header, which is
/// the one the proxy saw. IPv6 clients are keyed by their /64, which one host usually holds whole.
/// Unknown (no connection info, a bad header): one shared key.
pub fn client_key(req: &Request, trusted_header: Option<&HeaderName>) -> IpAddr {
    let ip = match trusted_header {
        Some(h) => req
            .headers()
            .get_all(h)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|last| {
                let last = last.trim();
                last.parse::<IpAddr>()
                    .ok()
                    .or_else(|| last.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
            }),
        None => req
            .extensions()
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip()),
    };
    match ip {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        Some(v4) => v4,
        None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
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
    fn peeking_takes_nothing() {
        let rl = RateLimiter::default();
        let t0 = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            assert!(rl.peek(ip, 2, t0).allowed);
        }
        assert!(rl.check(ip, 2, t0).allowed);
        assert!(rl.check(ip, 2, t0).allowed);
        assert!(!rl.peek(ip, 2, t0).allowed);
    }

    #[test]
    fn client_keys_from_the_connection_or_a_trusted_header() {
        let header = HeaderName::from_static("x-forwarded-for");
        let req = |xff: Option<&str>, peer: Option<&str>| {
            let mut b = axum::http::Request::builder();
            if let Some(v) = xff {
                b = b.header("x-forwarded-for", v);
            }
            let mut r = b.body(axum::body::Body::empty()).unwrap();
            if let Some(p) = peer {
                r.extensions_mut()
                    .insert(ConnectInfo(p.parse::<std::net::SocketAddr>().unwrap()));
            }
            r
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Without a trusted header the header is ignored: a client cannot pick its own key.
        assert_eq!(
            client_key(&req(Some("203.0.113.9"), Some("198.51.100.1:5000")), None),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_key(
                &req(Some("10.0.0.1, 203.0.113.9"), Some("127.0.0.1:5000")),
                Some(&header)
            ),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_key(&req(Some("[2001:db8::1]:443"), None), Some(&header)),
            ip("2001:db8::")
        );
        assert_eq!(
            client_key(&req(None, Some("[2001:db8:1:2:3:4:5:6]:1")), None),
            ip("2001:db8:1:2::")
        );
        assert_eq!(client_key(&req(Some("junk"), None), Some(&header)), ip("0.0.0.0"));
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

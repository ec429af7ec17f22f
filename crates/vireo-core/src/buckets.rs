//! Token buckets for rate limits, one per key (an API key in a namespace, a function), each with
//! the limit its owner configured; a changed limit starts a fresh bucket.

use std::collections::HashMap;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::tenancy::RateLimit;

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// What a bucket said about one request; either way the caller can be told where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed {
        limit: RateLimit,
        remaining: u32,
    },
    Limited {
        limit: RateLimit,
        retry_after: Duration,
    },
}

pub struct Buckets<K> {
    clock: DefaultClock,
    limiters: Mutex<HashMap<K, (RateLimit, Arc<Limiter>)>>,
}

impl<K: Hash + Eq + Clone> Default for Buckets<K> {
    fn default() -> Self {
        Self {
            clock: DefaultClock::default(),
            limiters: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// Takes one token from `key`'s bucket, which refills at `limit`.
    pub fn check(&self, key: &K, limit: RateLimit) -> Verdict {
        let limiter = {
            let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
            match limiters.get(key) {
                Some((configured, limiter)) if *configured == limit => limiter.clone(),
                _ => {
                    let limiter = Arc::new(
                        RateLimiter::direct_with_clock(quota(limit), self.clock.clone())
                            .with_middleware::<StateInformationMiddleware>(),
                    );
                    limiters.insert(key.clone(), (limit, limiter.clone()));
                    limiter
                }
            }
        };
        match limiter.check() {
            Ok(state) => Verdict::Allowed {
                limit,
                remaining: state.remaining_burst_capacity(),
            },
            Err(not_until) => Verdict::Limited {
                limit,
                retry_after: not_until.wait_time_from(self.clock.now()),
            },
        }
    }

    /// Drops the buckets `keep` says no, so removed keys and functions do not pile up.
    pub fn retain(&self, mut keep: impl FnMut(&K) -> bool) {
        let mut limiters = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        limiters.retain(|key, _| keep(key));
    }
}

fn quota(limit: RateLimit) -> Quota {
    let nonzero = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(nonzero(limit.per_second)).allow_burst(nonzero(limit.burst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_limits_then_a_new_limit_starts_afresh() {
        let buckets = Buckets::default();
        let limit = RateLimit {
            per_second: 1,
            burst: 3,
        };
        let remaining: Vec<u32> = (0..3)
            .map(|_| match buckets.check(&"k", limit) {
                Verdict::Allowed { remaining, .. } => remaining,
                limited => panic!("{limited:?}"),
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        match buckets.check(&"k", limit) {
            Verdict::Limited { retry_after, .. } => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1))
            }
            allowed => panic!("{allowed:?}"),
        }
        assert!(matches!(
            buckets.check(&"other", limit),
            Verdict::Allowed { .. }
        ));
        let raised = RateLimit {
            per_second: 1,
            burst: 5,
        };
        assert!(matches!(
            buckets.check(&"k", raised),
            Verdict::Allowed { remaining: 4, .. }
        ));
    }
}

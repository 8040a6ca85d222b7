//! Budgets in this process: one keyed GCRA limiter of the governor crate
//! per budget. Keys whose bucket has refilled are indistinguishable from
//! new ones, so `sweep` drops them and memory follows the active keys.

use std::{collections::HashMap, num::NonZeroU32};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::NoOpMiddleware,
    state::keyed::DashMapStateStore,
};

use super::{Bucket, Budgets, Key, LimitId, Rate, Refusal};

/// The least wait a refusal names.
const MIN_RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(1);

type Keyed<C> = RateLimiter<Key, DashMapStateStore<Key>, C, NoOpMiddleware<<C as Clock>::Instant>>;

pub struct LocalLimits<C: Clock = DefaultClock> {
    limiters: HashMap<LimitId, (Rate, Keyed<C>)>,
    clock: C,
}

/// governor's quota for `rate`; `None` only for a zero interval.
pub(super) fn quota(rate: Rate) -> Option<Quota> {
    let burst = NonZeroU32::new(rate.burst.max(1))?;
    Some(Quota::with_period(rate.emission_interval())?.allow_burst(burst))
}

impl LocalLimits<DefaultClock> {
    /// Every budget of `budgets`, scaled by `share`.
    pub fn new(budgets: &Budgets, share: f64) -> Self {
        Self::with_clock(budgets, share, DefaultClock::default())
    }
}

impl<C: Clock + Clone> LocalLimits<C> {
    pub fn with_clock(budgets: &Budgets, share: f64, clock: C) -> Self {
        let limiters = budgets
            .iter()
            .filter_map(|(id, rate)| {
                let rate = rate.scaled(share);
                let limiter = RateLimiter::dashmap_with_clock(quota(rate)?, clock.clone());
                Some((id, (rate, limiter)))
            })
            .collect();
        Self { limiters, clock }
    }

    /// Spends one cell of each bucket in order; the first that has none
    /// refuses. Buckets of unknown budgets are not limited.
    pub fn check(&self, buckets: &[Bucket]) -> Result<(), Refusal> {
        for b in buckets {
            let Some((rate, limiter)) = self.limiters.get(&b.id) else {
                continue;
            };
            if let Err(not_until) = limiter.check_key(&b.key) {
                return Err(Refusal {
                    id: b.id,
                    rate: *rate,
                    // The clock moved on since the decision: never 0.
                    retry_after: not_until
                        .wait_time_from(self.clock.now())
                        .max(MIN_RETRY_AFTER),
                });
            }
        }
        Ok(())
    }

    /// Drops the keys whose buckets are full again and returns how many
    /// keys are left.
    pub fn sweep(&self) -> usize {
        for (_, limiter) in self.limiters.values() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.len()
    }

    pub fn len(&self) -> usize {
        self.limiters.values().map(|(_, l)| l.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;

    use super::*;
    use crate::limits::key_of;
    use crate::limits::settings::{LimitsConfig, RateConfig};
    use crate::method;

    const GET: &str = method::GET_USER_POOL_MFA_CONFIG.name;

    fn limits(per_second: f64, burst: u32) -> (LocalLimits<FakeRelativeClock>, FakeRelativeClock) {
        let c = LimitsConfig {
            default: RateConfig { per_second, burst },
            ..LimitsConfig::default()
        };
        let clock = FakeRelativeClock::default();
        let budgets = Budgets::new(&c, false);
        (LocalLimits::with_clock(&budgets, 1.0, clock.clone()), clock)
    }

    fn caller(principal: &str) -> [Bucket; 1] {
        [Bucket {
            id: LimitId::Caller(GET),
            key: key_of(&[principal]),
        }]
    }

    #[test]
    fn a_burst_then_one_cell_per_interval() {
        let (l, clock) = limits(10.0, 3);
        for _ in 0..3 {
            assert!(l.check(&caller("a")).is_ok());
        }
        let refused = l.check(&caller("a")).expect_err("the burst is spent");
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        assert_eq!(refused.id, LimitId::Caller(GET));
        // Another caller has its own bucket.
        assert!(l.check(&caller("b")).is_ok());
        clock.advance(Duration::from_millis(99));
        assert_eq!(
            l.check(&caller("a")).expect_err("not yet").retry_after,
            Duration::from_millis(1)
        );
        clock.advance(Duration::from_millis(1));
        assert!(l.check(&caller("a")).is_ok());
        assert!(l.check(&caller("a")).is_err());
    }

    #[test]
    fn the_admitted_rate_is_the_configured_one_with_no_window_edge() {
        // Offered 10x the rate for 10 s of fake time, in 1 ms steps.
        let (l, clock) = limits(50.0, 5);
        let mut admitted = 0u32;
        for _ in 0..10_000 {
            for _ in 0..1 {
                if l.check(&caller("a")).is_ok() {
                    admitted += 1;
                }
            }
            clock.advance(Duration::from_millis(1));
        }
        // The burst of 5 at 0 ms, then one every 20 ms: 20, 40, ..., 9980.
        assert_eq!(admitted, 5 + 499);
        // Never more than burst + rate * t in any window: a 1 s window
        // anywhere admits at most 50 + 5 (no 2x at a boundary).
        let (l, clock) = limits(50.0, 5);
        let mut times = Vec::new();
        for ms in 0..5_000u64 {
            if l.check(&caller("a")).is_ok() {
                times.push(ms);
            }
            clock.advance(Duration::from_millis(1));
        }
        for (i, start) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|t| **t < start + 1000).count();
            assert!(
                in_window <= 55,
                "{in_window} admitted in the second from {start} ms"
            );
        }
    }

    #[test]
    fn refilled_keys_are_swept() {
        let (l, clock) = limits(100.0, 10);
        for i in 0..100_000 {
            assert!(l.check(&caller(&format!("p{i}"))).is_ok());
        }
        assert_eq!(l.len(), 100_000);
        // Still draining: nothing may be dropped yet.
        assert_eq!(l.sweep(), 100_000);
        // governor keeps a key one emission interval past its refill.
        clock.advance(Duration::from_millis(10));
        assert_eq!(l.sweep(), 100_000);
        clock.advance(Duration::from_millis(10));
        assert_eq!(l.sweep(), 0, "a refilled bucket equals a new one");
        // A key that is still limited survives the sweep.
        for _ in 0..10 {
            assert!(l.check(&caller("busy")).is_ok());
        }
        clock.advance(Duration::from_millis(10));
        assert_eq!(l.sweep(), 1);
        clock.advance(Duration::from_millis(100));
        assert_eq!(l.sweep(), 0);
    }

    #[test]
    fn a_share_scales_the_budget() {
        let c = LimitsConfig {
            default: RateConfig {
                per_second: 100.0,
                burst: 10,
            },
            ..LimitsConfig::default()
        };
        let budgets = Budgets::new(&c, false);
        let clock = FakeRelativeClock::default();
        let l = LocalLimits::with_clock(&budgets, 0.5, clock.clone());
        let mut admitted = 0;
        for _ in 0..10 {
            if l.check(&caller("a")).is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 5);
        assert_eq!(
            l.check(&caller("a")).expect_err("spent").retry_after,
            Duration::from_millis(20)
        );
    }
}

//! The budget of calls refused before authentication, per peer IP address
//! (`[limits.unauthenticated]`). Within it, each refusal is answered
//! UNAUTHENTICATED and audited; past it, RESOURCE_EXHAUSTED without a
//! record of its own, and the refusals suppressed are counted per peer and
//! reported in one summary record per peer per interval, so brute force
//! still shows in the audit trail at a volume the attacker cannot choose.
//!
//! A peer is an IPv4 address or an IPv6 /64 (one host's usual allocation,
//! so a host cannot mint a fresh budget per address). Across all peers a
//! global budget (`global_per_second`, `global_burst`) bounds the audit
//! volume of many peers at once. State is bounded: at most `max_peers`
//! peers are tracked (buckets and suppressed counts both); a peer beyond
//! that shares one overflow key.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr},
    num::NonZeroU32,
    sync::Mutex,
    time::Duration,
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::NoOpMiddleware,
    state::{InMemoryState, NotKeyed, keyed::DashMapStateStore},
};

use super::settings::UnauthenticatedConfig;

/// A peer's key: an IPv4 address as it is, an IPv6 address by its /64
/// (an IPv4-mapped one as the IPv4 address it is).
pub fn peer_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// The key of every peer past `max_peers` (0.0.0.0 is no real peer).
const OVERFLOW: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

type Keyed<C> =
    RateLimiter<IpAddr, DashMapStateStore<IpAddr>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// What to do with one refusal.
#[derive(Debug, PartialEq, Eq)]
pub enum Door {
    /// Within the budget: refuse as usual, with a record.
    Audit,
    /// Past it: refuse with RESOURCE_EXHAUSTED, no record; retry after this.
    Suppress(Duration),
}

type Global<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;

pub struct DoorBudget<C: Clock = DefaultClock> {
    limiter: Keyed<C>,
    global: Global<C>,
    clock: C,
    max_peers: usize,
    suppressed: Mutex<HashMap<IpAddr, u64>>,
    pub summary_interval: Duration,
}

/// The GCRA quota of a budget, the same as every other limiter's.
fn quota(per_second: f64, burst: u32) -> Quota {
    super::local::quota(super::Rate { per_second, burst })
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
}

impl DoorBudget<DefaultClock> {
    pub fn new(config: &UnauthenticatedConfig) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> DoorBudget<C> {
    pub fn with_clock(config: &UnauthenticatedConfig, clock: C) -> Self {
        Self {
            limiter: RateLimiter::dashmap_with_clock(
                quota(config.per_second, config.burst),
                clock.clone(),
            ),
            global: RateLimiter::direct_with_clock(
                quota(config.global_per_second, config.global_burst),
                clock.clone(),
            ),
            clock,
            max_peers: config.max_peers,
            suppressed: Mutex::new(HashMap::new()),
            summary_interval: Duration::from_secs(config.summary_interval_seconds),
        }
    }

    /// Spends one refusal of `peer`'s budget (no peer: the overflow key).
    pub fn refusal(&self, peer: Option<IpAddr>) -> Door {
        let mut key = peer.map_or(OVERFLOW, peer_key);
        if self.limiter.len() >= self.max_peers {
            self.limiter.retain_recent();
            if self.limiter.len() >= self.max_peers {
                key = OVERFLOW;
            }
        }
        let decision = self
            .limiter
            .check_key(&key)
            .and_then(|()| self.global.check());
        match decision {
            Ok(()) => Door::Audit,
            Err(not_until) => {
                let mut suppressed = self.suppressed.lock().unwrap_or_else(|e| e.into_inner());
                let slot = if suppressed.len() >= self.max_peers && !suppressed.contains_key(&key) {
                    OVERFLOW
                } else {
                    key
                };
                *suppressed.entry(slot).or_default() += 1;
                Door::Suppress(
                    not_until
                        .wait_time_from(self.clock.now())
                        .max(Duration::from_millis(1)),
                )
            }
        }
    }

    /// The suppressed counts since the last call, per peer, for the
    /// summary records; forgets them, and drops idle buckets.
    pub fn take_suppressed(&self) -> Vec<(IpAddr, u64)> {
        self.limiter.retain_recent();
        let mut suppressed = self.suppressed.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(IpAddr, u64)> = suppressed.drain().collect();
        suppressed.shrink_to(1024);
        out.sort();
        out
    }

    /// Peers tracked now (buckets not yet refilled).
    pub fn peers(&self) -> usize {
        self.limiter.len()
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn config(per_second: f64, burst: u32, max_peers: usize) -> UnauthenticatedConfig {
        UnauthenticatedConfig {
            per_second,
            burst,
            max_peers,
            ..UnauthenticatedConfig::default()
        }
    }

    #[test]
    fn ipv6_peers_are_keyed_by_their_64_and_many_peers_share_the_global_budget() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap_or(OVERFLOW);
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap_or(OVERFLOW);
        assert_eq!(peer_key(a), peer_key(b));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap_or(OVERFLOW);
        assert_eq!(peer_key(mapped), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let c = UnauthenticatedConfig {
            global_burst: 500,
            global_per_second: 1.0,
            ..config(10.0, 100, 100_000)
        };
        let door = DoorBudget::with_clock(&c, FakeRelativeClock::default());
        let audited = (0..20_000)
            .filter(|n| door.refusal(ip(*n)) == Door::Audit)
            .count();
        assert_eq!(audited, 500, "20,000 peers, one global budget");
    }

    fn ip(n: u32) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)))
    }

    #[test]
    fn a_peer_gets_its_burst_then_refill_and_the_rest_is_counted() {
        let clock = FakeRelativeClock::default();
        let door = DoorBudget::with_clock(&config(10.0, 100, 100), clock.clone());
        let audited = (0..3000)
            .filter(|_| door.refusal(ip(1)) == Door::Audit)
            .count();
        assert_eq!(audited, 100);
        assert_eq!(door.refusal(ip(2)), Door::Audit, "another peer has its own");
        clock.advance(Duration::from_secs(1));
        let audited = (0..100)
            .filter(|_| door.refusal(ip(1)) == Door::Audit)
            .count();
        assert_eq!(audited, 10, "10 per second");
        assert_eq!(
            door.take_suppressed(),
            vec![(ip(1).unwrap_or(OVERFLOW), 2990)]
        );
        assert!(door.take_suppressed().is_empty(), "counted once");
    }

    #[test]
    fn peers_past_max_peers_share_the_overflow_budget() {
        let door = DoorBudget::with_clock(&config(1.0, 1, 10), FakeRelativeClock::default());
        for n in 0..10_000 {
            door.refusal(ip(n));
        }
        assert!(door.peers() <= 11, "{} peers tracked", door.peers());
        let summary = door.take_suppressed();
        assert!(summary.len() <= 11, "{}", summary.len());
        assert!(summary.iter().any(|(k, _)| *k == OVERFLOW));
    }
}

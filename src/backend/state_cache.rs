//! The pre-flight's read of a pool's state (DescribeUserPool), kept for a
//! short while by the cognito backend. DescribeUserPool's quota is 15 calls
//! a second per account (UserPoolRead), shared with every other tool that
//! reads pools; a burst of changes to one pool reads it once. The facade's
//! own change of a pool forgets that pool at once; a change made elsewhere
//! is seen after at most the TTL (`backend.pool_state_ttl_ms`).
//!
//! Bounded: at most `backend.max_pool_states` pools are kept; when full,
//! the expired go first, then everything (a flood of pool ids costs reads,
//! never memory).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::domain::PoolState;

/// Pools' states as last read, each for `ttl`; at most `max` pools.
pub struct StateCache {
    ttl: Duration,
    max: usize,
    states: Mutex<HashMap<String, (Instant, PoolState)>>,
}

impl StateCache {
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max: max.max(1),
            states: Mutex::new(HashMap::new()),
        }
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, PoolState)>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pool's state if it was read less than the TTL ago.
    pub fn cached(&self, pool: &str) -> Option<PoolState> {
        let states = self.states();
        let (at, state) = states.get(pool)?;
        (at.elapsed() < self.ttl).then(|| state.clone())
    }

    /// Forgets the pool: the facade has just changed it.
    pub fn forget(&self, pool: &str) {
        self.states().remove(pool);
    }

    /// Keeps a state just read (only states read: an unknown pool's
    /// error is never kept).
    pub fn keep(&self, pool: &str, state: &PoolState) {
        let mut states = self.states();
        if states.len() >= self.max && !states.contains_key(pool) {
            let ttl = self.ttl;
            states.retain(|_, (at, _)| at.elapsed() < ttl);
            if states.len() >= self.max {
                states.clear();
            }
        }
        states.insert(pool.to_owned(), (Instant::now(), state.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(mode: crate::domain::MfaMode) -> PoolState {
        PoolState {
            mfa_configuration: Some(mode),
            ..PoolState::default()
        }
    }

    #[test]
    fn a_state_is_kept_for_the_ttl_and_forgotten_on_demand() {
        let cache = StateCache::new(Duration::from_secs(60), 10);
        assert_eq!(cache.cached("us-east-1_A"), None);
        cache.keep("us-east-1_A", &state(crate::domain::MfaMode::Off));
        assert_eq!(
            cache.cached("us-east-1_A"),
            Some(state(crate::domain::MfaMode::Off))
        );
        cache.forget("us-east-1_A");
        assert_eq!(cache.cached("us-east-1_A"), None);
        let expired = StateCache::new(Duration::ZERO, 10);
        expired.keep("us-east-1_A", &state(crate::domain::MfaMode::Off));
        assert_eq!(
            expired.cached("us-east-1_A"),
            None,
            "a TTL of 0 keeps nothing"
        );
    }

    #[test]
    fn it_holds_at_most_max_pools() {
        let cache = StateCache::new(Duration::from_secs(60), 2);
        for i in 0..5 {
            cache.keep(&format!("us-east-1_P{i}"), &PoolState::default());
            assert!(cache.states().len() <= 2);
        }
        assert!(cache.cached("us-east-1_P4").is_some());
    }
}

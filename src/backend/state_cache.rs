//! The pre-flight's read of a pool's state (DescribeUserPool), kept for a
//! short while in front of a backend. DescribeUserPool's quota is 15 calls
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
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;

use super::Backend;
use crate::domain::{
    AccessToken, AssociatedToken, CredentialsPage, MfaPreference, PoolMfaConfig, PoolState, Secret,
    TokenAuth, TokenVerification, UserAuthFactors, UserMfaSettings, UserRef, UsersPage,
};
use crate::error::Result;

pub struct StateCache {
    inner: Arc<dyn Backend>,
    ttl: Duration,
    max: usize,
    states: Mutex<HashMap<String, (Instant, PoolState)>>,
}

impl StateCache {
    pub fn wrap(inner: Arc<dyn Backend>, ttl: Duration, max: usize) -> Arc<dyn Backend> {
        Arc::new(Self {
            inner,
            ttl,
            max: max.max(1),
            states: Mutex::new(HashMap::new()),
        })
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, PoolState)>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, pool: &str) -> Option<PoolState> {
        let states = self.states();
        let (at, state) = states.get(pool)?;
        (at.elapsed() < self.ttl).then(|| state.clone())
    }

    fn forget(&self, pool: &str) {
        self.states().remove(pool);
    }

    fn keep(&self, pool: &str, state: &PoolState) {
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

#[async_trait]
impl Backend for StateCache {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn default_region(&self) -> Option<&str> {
        self.inner.default_region()
    }

    fn placement(
        &self,
        user_pool_id: Option<&str>,
        principal: Option<&str>,
    ) -> Option<crate::backend::Placement> {
        self.inner.placement(user_pool_id, principal)
    }

    fn acts_for_callers(&self) -> bool {
        self.inner.acts_for_callers()
    }

    async fn ready(&self) -> std::result::Result<(), String> {
        self.inner.ready().await
    }

    async fn account_health(&self) -> Vec<(String, std::result::Result<(), String>)> {
        self.inner.account_health().await
    }

    async fn get_user_pool_mfa_config(&self, user_pool_id: &str) -> Result<PoolMfaConfig> {
        self.inner.get_user_pool_mfa_config(user_pool_id).await
    }

    async fn pool_state(&self, user_pool_id: &str) -> Result<PoolState> {
        if let Some(state) = self.cached(user_pool_id) {
            return Ok(state);
        }
        let state = self.inner.pool_state(user_pool_id).await?;
        self.keep(user_pool_id, &state);
        Ok(state)
    }

    async fn set_user_pool_mfa_config(
        &self,
        user_pool_id: &str,
        config: &PoolMfaConfig,
    ) -> Result<PoolMfaConfig> {
        // Whatever the answer: a write that failed half-way may have changed it.
        let stored = self
            .inner
            .set_user_pool_mfa_config(user_pool_id, config)
            .await;
        self.forget(user_pool_id);
        stored
    }

    async fn set_user_mfa_preference(
        &self,
        user: &UserRef,
        preference: &MfaPreference,
    ) -> Result<()> {
        self.inner.set_user_mfa_preference(user, preference).await
    }

    async fn associate_software_token(&self, auth: &TokenAuth) -> Result<AssociatedToken> {
        self.inner.associate_software_token(auth).await
    }

    async fn verify_software_token(
        &self,
        auth: &TokenAuth,
        user_code: &Secret,
        friendly_device_name: Option<&str>,
    ) -> Result<TokenVerification> {
        self.inner
            .verify_software_token(auth, user_code, friendly_device_name)
            .await
    }

    async fn get_user_mfa_settings(&self, user: &UserRef) -> Result<UserMfaSettings> {
        self.inner.get_user_mfa_settings(user).await
    }

    async fn admin_delete_software_token(&self, user_pool_id: &str, username: &str) -> Result<()> {
        self.inner
            .admin_delete_software_token(user_pool_id, username)
            .await
    }

    async fn get_user_auth_factors(&self, user: &UserRef) -> Result<UserAuthFactors> {
        self.inner.get_user_auth_factors(user).await
    }

    async fn list_web_authn_credentials(
        &self,
        token: &AccessToken,
        next_token: Option<&str>,
        max_results: Option<i32>,
    ) -> Result<CredentialsPage> {
        self.inner
            .list_web_authn_credentials(token, next_token, max_results)
            .await
    }

    async fn delete_web_authn_credential(
        &self,
        token: &AccessToken,
        credential_id: &str,
    ) -> Result<()> {
        self.inner
            .delete_web_authn_credential(token, credential_id)
            .await
    }

    async fn list_users(
        &self,
        user_pool_id: &str,
        filter: &str,
        pagination_token: Option<&str>,
        limit: i32,
    ) -> Result<UsersPage> {
        self.inner
            .list_users(user_pool_id, filter, pagination_token, limit)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::{LocalBackend, store::FeaturePlan};

    async fn local() -> (tempfile::TempDir, Arc<LocalBackend>, String) {
        let dir = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalBackend::open(&dir.path().join("d.json"), "us-east-1").unwrap());
        let pool = local
            .create_user_pool("p", FeaturePlan::Essentials, Default::default())
            .await
            .unwrap();
        (dir, local, pool)
    }

    #[tokio::test]
    async fn a_state_is_kept_for_the_ttl_and_forgotten_by_a_write() {
        let (_dir, local, pool) = local().await;
        let cache = StateCache::wrap(local.clone(), Duration::from_secs(60), 10);
        let first = cache.pool_state(&pool).await.unwrap();
        assert_eq!(first.mfa_configuration, Some(crate::domain::MfaMode::Off));
        // Changed behind the cache's back: still the kept state.
        local
            .set_user_pool_mfa_config(
                &pool,
                &PoolMfaConfig {
                    mode: Some(crate::domain::MfaMode::Optional),
                    software_token: Some(crate::domain::SoftwareTokenMfaConfig {
                        enabled: Some(true),
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(cache.pool_state(&pool).await.unwrap(), first);
        // Through the cache: forgotten, read again.
        let config = cache.get_user_pool_mfa_config(&pool).await.unwrap();
        cache
            .set_user_pool_mfa_config(&pool, &config)
            .await
            .unwrap();
        assert_eq!(
            cache.pool_state(&pool).await.unwrap().mfa_configuration,
            Some(crate::domain::MfaMode::Optional)
        );
    }

    #[tokio::test]
    async fn it_holds_at_most_max_pools_and_unknown_pools_are_not_kept() {
        let (_dir, local, pool) = local().await;
        let cache = StateCache {
            inner: local,
            ttl: Duration::from_secs(60),
            max: 2,
            states: Mutex::new(HashMap::new()),
        };
        for _ in 0..3 {
            assert!(cache.pool_state("us-east-1_Nope00000").await.is_err());
        }
        for i in 0..5 {
            cache.keep(&format!("us-east-1_P{i}"), &PoolState::default());
            assert!(cache.states().len() <= 2);
        }
        cache.pool_state(&pool).await.unwrap();
        assert!(cache.states().len() <= 2 && cache.states().contains_key(&pool));
    }
}

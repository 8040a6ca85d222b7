//! Changes of a pool's MFA configuration made behind the facade's back
//! (the console, IaC, another tool): noticed, and recorded once each as an
//! external change in the pool's history (issue 36).
//!
//! What the facade knows of a pool is its history's newest entry. It
//! notices a difference two ways:
//! - **on a read**: every call that reads a pool's configuration
//!   (Get, Check, and the read before a Set, Update or Restore) hands it to
//!   [`Drift::observed`]; a configuration whose etag is not the last one
//!   known schedules a check of that pool after `history.grace_ms` (so a
//!   change another replica is making has its history entry by then), one
//!   at a time per pool;
//! - **by a paced watch**: every `history.check_seconds`, each pool of the
//!   history that `history.watch_pools` names.
//!
//! A check reads the newest entry and the pool (GetUserPoolMfaConfig, paced
//! within `limits.drift.share` of its quota category, so callers are never
//! starved) and, when they differ, claims the change (`History::claim`:
//! across a fleet, the one replica whose marker object lands) and writes
//! one `external_change` record — before: the newest entry's
//! configuration; after: what it read; the guardrails of
//! SetUserPoolMfaConfig that cover the pool and do not hold — indexed as a
//! history entry; counts it in `mfa_facade_pool_drift_total` by the glob
//! that covers the pool, and logs each `warn` guardrail. A pool with no
//! history has nothing to differ from: it is not checked.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::audit::{Auditor, ChangeRecord, history::History, settings::HistoryConfig};
use crate::auth::SharedAuth;
use crate::auth::guardrails::{Changed, Subject};
use crate::backend::Backend;
use crate::domain::{PoolMfaConfig, etag};
use crate::limits::{CognitoOp, Limiter};

use super::Target;

/// Pools whose last known etag is kept at most (then forgotten together:
/// a forgotten pool is only checked once more).
const MAX_KNOWN: usize = 100_000;
/// Checks scheduled by reads and not yet run, at most.
const MAX_PENDING: usize = 1_024;

/// The principal an external change's guardrails see, and the name its
/// Cognito read is made under (`backend.source_identity`).
pub const EXTERNAL_PRINCIPAL: &str = "(external)";

/// What a check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// The pool has no history: nothing to compare.
    NoHistory,
    /// The pool is as its newest entry says.
    Same,
    /// A difference, recorded by this process.
    Recorded,
    /// A difference another replica claimed.
    ClaimedElsewhere,
}

pub struct Drift {
    history: History,
    auditor: Arc<Auditor>,
    backend: Arc<dyn Backend>,
    limiter: Arc<Limiter>,
    auth: SharedAuth,
    config: HistoryConfig,
    /// Each pool's last known etag.
    known: Mutex<HashMap<String, String>>,
    pending: Mutex<HashSet<String>>,
}

impl Drift {
    pub fn new(
        history: History,
        auditor: Arc<Auditor>,
        backend: Arc<dyn Backend>,
        limiter: Arc<Limiter>,
        auth: SharedAuth,
        config: HistoryConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            history,
            auditor,
            backend,
            limiter,
            auth,
            config,
            known: Mutex::default(),
            pending: Mutex::default(),
        })
    }

    fn know(&self, pool: &str, etag: String) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= MAX_KNOWN && !known.contains_key(pool) {
            known.clear();
        }
        known.insert(pool.to_owned(), etag);
    }

    /// A change this process made: the etag of its configuration (its
    /// record's) is the one known.
    pub fn made(&self, pool: &str, etag: String) {
        self.know(pool, etag);
    }

    /// A read of `pool` answered `config`: a check follows when it is not
    /// the configuration last known.
    pub fn observed(self: &Arc<Self>, pool: &str, config: &PoolMfaConfig) {
        let seen = etag::of(config);
        {
            let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            if known.get(pool) == Some(&seen) {
                return;
            }
        }
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.len() >= MAX_PENDING || !pending.insert(pool.to_owned()) {
                return;
            }
        }
        let this = self.clone();
        let pool = pool.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(this.config.grace_ms)).await;
            if let Err(e) = this.check(&pool).await {
                crate::events::PoolDriftCheckFailed {
                    user_pool_id: &pool,
                    error: &e,
                }
                .emit();
            }
            this.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pool);
        });
    }

    /// The glob of `watch_pools` that covers `pool`, for the metric.
    fn label(&self, pool: &str) -> String {
        self.config
            .watch_pools
            .iter()
            .find(|g| crate::glob::glob_match(g, pool, None))
            .cloned()
            .unwrap_or_else(|| "(unwatched)".to_owned())
    }

    /// Takes the watch's cells for one read of `pool`, waiting while refused.
    async fn pace(&self, pool: &str) {
        let call = Target::Pool(pool).call(CognitoOp::GetUserPoolMfaConfig);
        let buckets = self.limiter.budgets().drift_buckets(&call);
        self.limiter.wait(&buckets, |_| {}).await;
    }

    /// Compares `pool` with its history's newest entry; records a
    /// difference once.
    pub async fn check(&self, pool: &str) -> Result<Checked, String> {
        let Some(newest) = self.history.newest(pool).await? else {
            return Ok(Checked::NoHistory);
        };
        self.pace(pool).await;
        let read = crate::upstream::act_for(
            Some(Arc::from(EXTERNAL_PRINCIPAL)),
            self.backend.get_user_pool_mfa_config(pool),
        )
        .await
        .map_err(|e| format!("reading the pool: {e}"))?;
        let seen = etag::of(&read);
        if seen == newest.etag {
            self.know(pool, seen);
            return Ok(Checked::Same);
        }
        if !self
            .history
            .claim(pool, &format!("{}-{seen}", newest.revision))
            .await?
        {
            self.know(pool, seen);
            return Ok(Checked::ClaimedElsewhere);
        }
        let after = self.auditor.value(&read);
        let before_config: PoolMfaConfig =
            serde_json::from_value(newest.after.clone()).unwrap_or_default();
        let after_config: PoolMfaConfig = serde_json::from_value(after.clone()).unwrap_or_default();
        let changed_fields = super::ops::pool::changed_fields(&before_config, &after_config);
        let guardrails = self.guardrails(pool, &before_config, &read);
        let found = (!guardrails.is_empty()).then(|| self.auditor.value(&guardrails));
        crate::audit::external_change(
            &self.auditor,
            pool,
            &newest.revision,
            ChangeRecord {
                before: newest.after.clone(),
                after,
                etag: seen.clone(),
                changed_fields: changed_fields.clone(),
                restored_from: None,
            },
            found,
        )
        .await?;
        crate::meters::pool_drift(self.label(pool));
        crate::events::PoolDriftRecorded {
            user_pool_id: pool,
            known_revision: &newest.revision,
            changed_fields: &changed_fields,
        }
        .emit();
        for f in guardrails.iter().filter(|f| f.warns()) {
            crate::events::PoolDriftGuardrail {
                user_pool_id: pool,
                guardrail: &f.guardrail,
                message: &f.detail(),
            }
            .emit();
        }
        self.know(pool, seen);
        Ok(Checked::Recorded)
    }

    /// The guardrails of SetUserPoolMfaConfig covering `pool` that the
    /// change does not satisfy (nothing to deny: it was made; their warn
    /// and audit actions apply).
    fn guardrails(
        &self,
        pool: &str,
        before: &PoolMfaConfig,
        after: &PoolMfaConfig,
    ) -> Vec<crate::auth::guardrails::Finding> {
        let method = crate::method::SET_USER_POOL_MFA_CONFIG.name;
        let rails = &self.auth.load().guardrails;
        rails.check(
            method,
            &Subject {
                method,
                user_pool_id: pool,
                validate_only: false,
                principal: (EXTERNAL_PRINCIPAL, "none"),
                change: Changed::Pool { before, after },
                state: None,
            },
        )
    }

    /// The paced watch of `history.watch_pools`: every `check_seconds`,
    /// each pool of the history a glob names. Runs until the task is
    /// dropped.
    pub async fn watch(self: Arc<Self>) {
        if self.config.watch_pools.is_empty() {
            return;
        }
        let mut every = tokio::time::interval(Duration::from_secs(self.config.check_seconds));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let pools = match self.history.pools().await {
                Ok(p) => p,
                Err(e) => {
                    crate::events::PoolDriftCheckFailed {
                        user_pool_id: "*",
                        error: &e,
                    }
                    .emit();
                    continue;
                }
            };
            for pool in pools.iter().filter(|p| {
                self.config
                    .watch_pools
                    .iter()
                    .any(|g| crate::glob::glob_match(g, p, None))
            }) {
                if let Err(e) = self.check(pool).await {
                    crate::events::PoolDriftCheckFailed {
                        user_pool_id: pool,
                        error: &e,
                    }
                    .emit();
                }
            }
        }
    }
}

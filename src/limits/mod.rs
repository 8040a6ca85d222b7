//! Rate limits (DESIGN.md §5): GCRA budgets per (principal, method), and a
//! quota guard that spends Cognito's request-rate quotas before Cognito
//! does, so the fleet sheds load instead of being throttled.
//!
//! One decision covers every bucket a call needs and is all or nothing in
//! fleet mode (one Lua script in Redis); in this process the buckets are
//! checked in order and a refusal by a later one leaves the earlier ones
//! charged, which only errs on the strict side.
//!
//! - `local`: governor's keyed GCRA limiters, swept of idle keys.
//! - `fleet`: the same budgets in Redis for every replica, with a short
//!   timeout per decision and a fall back to `local` while Redis is away.
//! - `quota`: which Cognito calls a facade call makes.
//! - `door`: the budget of refusals before authentication, per peer.
//! - `overload`: connections and calls in flight, process-wide.

pub mod door;
pub mod fleet;
pub mod local;
pub mod overload;
pub mod quota;
pub mod settings;

use std::{collections::HashMap, sync::Arc, time::Duration};

use settings::LimitsConfig;

pub use fleet::Fleet;
pub use local::LocalLimits;
pub use quota::{Access, Category, CognitoOp, UpstreamCall};

/// A budget: what it limits. Each has one rate and many keyed buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitId {
    /// One caller on one method; keyed by principal.
    Caller(&'static str),
    /// A Cognito quota category, account-wide; one bucket.
    Category(Category),
    /// One Cognito operation on one user pool; keyed by pool.
    PoolOperation(CognitoOp),
    /// Writes about one end user; keyed by user.
    UserWrite,
    /// Reads about one end user; keyed by user.
    UserRead,
    /// The coverage walks' share of a quota category, all walks together
    /// (`limits.walk.share`); one bucket.
    Walk(Category),
    /// The drift watch's share of a quota category (`limits.drift.share`).
    Drift(Category),
}

impl LimitId {
    /// A short stable name: a metric label, a Redis key part, an error's.
    pub fn name(&self) -> String {
        match self {
            LimitId::Caller(method) => format!("caller:{}", short_method(method)),
            LimitId::Category(c) => format!("cognito:{}", c.name()),
            LimitId::PoolOperation(op) => format!("cognito_pool:{}", op.name()),
            LimitId::UserWrite => "cognito_user:write".into(),
            LimitId::UserRead => "cognito_user:read".into(),
            LimitId::Walk(c) => format!("walk:{}", c.name()),
            LimitId::Drift(c) => format!("drift:{}", c.name()),
        }
    }

    /// What a refused caller is told about the budget.
    pub fn describe(&self, rate: Rate) -> String {
        let r = rate.per_second;
        match self {
            LimitId::Caller(method) => format!(
                "this caller's budget for {method}: {r}/s, burst {}",
                rate.burst
            ),
            LimitId::Category(c) => {
                format!("Cognito's {} quota for the whole account: {r}/s", c.name())
            }
            LimitId::PoolOperation(op) => {
                format!("Cognito's limit on {} per user pool: {r}/s", op.name())
            }
            LimitId::UserWrite => format!("Cognito's limit on writes per end user: {r}/s"),
            LimitId::UserRead => format!("Cognito's limit on reads per end user: {r}/s"),
            LimitId::Walk(c) => format!(
                "the coverage walks' share of Cognito's {} quota: {r}/s",
                c.name()
            ),
            LimitId::Drift(c) => format!(
                "the drift watch's share of Cognito's {} quota: {r}/s",
                c.name()
            ),
        }
    }
}

fn short_method(method: &str) -> &str {
    method.rsplit('/').next().unwrap_or(method)
}

/// A bucket's key: 128 bits of SHA-256 over its parts, so that every key
/// has the same small size and no principal or username is stored.
pub type Key = [u8; 16];

pub use crate::hash::key_of;

/// The key of the buckets that no principal or pool divides (Cognito's
/// per-account categories).
fn account_key() -> Key {
    static KEY: std::sync::LazyLock<Key> = std::sync::LazyLock::new(|| key_of(&[]));
    *KEY
}

/// One bucket a call spends a cell of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bucket {
    pub id: LimitId,
    pub key: Key,
}

/// A GCRA rate: `per_second` on average, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    /// A Cognito quota: a burst of one second's worth.
    fn quota(per_second: f64) -> Self {
        Self {
            per_second,
            burst: per_second.ceil().max(1.0) as u32,
        }
    }

    /// This rate scaled by `share` (0 < share <= 1), burst at least 1.
    pub fn scaled(self, share: f64) -> Self {
        Self {
            per_second: self.per_second * share,
            burst: ((f64::from(self.burst) * share).round() as u32).max(1),
        }
    }

    /// The time one cell takes to replenish.
    pub fn emission_interval(self) -> Duration {
        // The config's bounds keep it finite; a year stands in for "never".
        Duration::try_from_secs_f64(1.0 / self.per_second)
            .unwrap_or(Duration::from_secs(crate::settings::MAX_SECONDS))
    }
}

/// Every budget and its rate, resolved from `[limits]`.
#[derive(Clone, Debug)]
pub struct Budgets {
    rates: HashMap<LimitId, Rate>,
    quota_enabled: bool,
    /// `[limits.walk]`: how many coverage walks at once, and for how long.
    pub walk: settings::WalkConfig,
    /// The Region of calls that name no pool (an MFA_SETUP session): the
    /// cognito backend's default Region. Cognito's quotas are per account
    /// and Region, so the category buckets are keyed by the call's Region.
    default_region: Option<String>,
    /// `[[backend.accounts]]` by name and pool globs: Cognito's quotas are
    /// per account too, so a pool an account serves has buckets of its own.
    accounts: Vec<(String, Vec<String>)>,
}

impl Budgets {
    /// `quota_by_default`: the Cognito-quota guard is on unless
    /// `limits.quota.enabled` says otherwise (true for the cognito backend).
    pub fn new(config: &LimitsConfig, quota_by_default: bool) -> Self {
        let mut rates = HashMap::new();
        for method in crate::method::names() {
            let r = config.methods.get(method).unwrap_or(&config.default);
            rates.insert(
                LimitId::Caller(method),
                Rate {
                    per_second: r.per_second,
                    burst: r.burst,
                },
            );
        }
        let q = &config.quota;
        for (c, r) in [
            (
                Category::UserPoolResourceUpdate,
                q.user_pool_resource_update,
            ),
            (Category::UserPoolResourceRead, q.user_pool_resource_read),
            (Category::UserPoolRead, q.user_pool_read),
            (Category::UserResourceUpdate, q.user_resource_update),
            (Category::UserRead, q.user_read),
            (Category::UserList, q.user_list),
            (Category::UserResourceRead, q.user_resource_read),
            (Category::UserUpdate, q.user_update),
        ] {
            rates.insert(LimitId::Category(c), Rate::quota(r));
            if matches!(c, Category::UserRead | Category::UserList) {
                rates.insert(LimitId::Walk(c), Rate::quota(r).scaled(config.walk.share));
            }
            if c == Category::UserPoolResourceRead {
                rates.insert(LimitId::Drift(c), Rate::quota(r).scaled(config.drift.share));
            }
        }
        for op in CognitoOp::PER_POOL {
            rates.insert(
                LimitId::PoolOperation(op),
                Rate::quota(q.per_pool_operation),
            );
        }
        rates.insert(LimitId::UserWrite, Rate::quota(q.per_user_write));
        rates.insert(LimitId::UserRead, Rate::quota(q.per_user_read));
        Self {
            rates,
            quota_enabled: q.enabled.unwrap_or(quota_by_default),
            walk: config.walk.clone(),
            default_region: None,
            accounts: Vec::new(),
        }
    }

    /// The accounts (name, pool globs) pools may be served through.
    pub fn with_accounts(mut self, accounts: Vec<(String, Vec<String>)>) -> Self {
        self.accounts = accounts;
        self
    }

    /// Calls that name no pool count toward `region`'s quotas.
    pub fn with_default_region(mut self, region: &str) -> Self {
        self.default_region = Some(region.to_owned());
        self
    }

    /// The key of a call's quota-category buckets: its Region's (from its
    /// pool, else the default Region); one account-wide key when neither
    /// is known.
    fn category_key(&self, call: &UpstreamCall) -> Key {
        let region = call
            .pool
            .as_deref()
            .map(crate::domain::region_of)
            .or(self.default_region.as_deref());
        let account = call.pool.as_deref().and_then(|pool| {
            self.accounts
                .iter()
                .find(|(_, globs)| globs.iter().any(|g| crate::glob::glob_match(g, pool, None)))
                .map(|(name, _)| name.as_str())
        });
        match (account, region) {
            (Some(a), Some(r)) => key_of(&["account", a, "region", r]),
            (None, Some(r)) => key_of(&["region", r]),
            _ => account_key(),
        }
    }

    pub fn rate(&self, id: LimitId) -> Option<Rate> {
        self.rates.get(&id).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (LimitId, Rate)> + '_ {
        self.rates.iter().map(|(id, r)| (*id, *r))
    }

    pub fn quota_enabled(&self) -> bool {
        self.quota_enabled
    }

    /// The buckets one call spends: the caller's on this method, then, when
    /// the quota guard is on, per Cognito call its category, its pool
    /// operation and its end user.
    /// `caller` is the principal's key (`Principal::budget_key`, over how it
    /// was proven and its name): an API key and a bearer token that name the
    /// same principal never share a budget.
    pub fn buckets(
        &self,
        caller: Key,
        method: &'static str,
        upstream: &[UpstreamCall],
    ) -> Vec<Bucket> {
        let mut out = vec![Bucket {
            id: LimitId::Caller(method),
            key: caller,
        }];
        if !self.quota_enabled {
            return out;
        }
        for call in upstream {
            if let Some(user) = &call.end_user {
                let id = match call.op.access() {
                    Some(Access::Read) => LimitId::UserRead,
                    _ => LimitId::UserWrite,
                };
                out.push(Bucket {
                    id,
                    key: key_of(&[call.pool.as_deref().unwrap_or(""), user]),
                });
            }
            if call.op.per_pool()
                && let Some(pool) = &call.pool
            {
                out.push(Bucket {
                    id: LimitId::PoolOperation(call.op),
                    key: key_of(&[pool]),
                });
            }
            out.push(Bucket {
                id: LimitId::Category(call.op.category()),
                key: self.category_key(call),
            });
        }
        out.dedup();
        out
    }
}

impl Budgets {
    /// The buckets one Cognito call of a coverage walk spends: the walks'
    /// share of its category, always (the walk is the one bulk reader,
    /// paced with the quota guard on or off); with the guard on, the call's
    /// own buckets too, so the walk and every other caller draw on the one
    /// quota.
    pub fn walk_buckets(&self, call: &UpstreamCall) -> Vec<Bucket> {
        self.share_buckets(LimitId::Walk(call.op.category()), call)
    }

    /// As [`Budgets::walk_buckets`], for the drift watch's reads.
    pub fn drift_buckets(&self, call: &UpstreamCall) -> Vec<Bucket> {
        self.share_buckets(LimitId::Drift(call.op.category()), call)
    }

    fn share_buckets(&self, share: LimitId, call: &UpstreamCall) -> Vec<Bucket> {
        let mut out = vec![Bucket {
            id: share,
            key: self.category_key(call),
        }];
        if self.quota_enabled {
            let caller = account_key();
            out.extend(
                self.buckets(caller, "", std::slice::from_ref(call))
                    .into_iter()
                    .skip(1),
            );
        }
        out
    }
}

/// A refused decision: which budget, and when a retry may pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub id: LimitId,
    pub rate: Rate,
    pub retry_after: Duration,
}

/// The rate-limit stage: fleet-wide through Redis when configured and
/// reachable, else in this process.
pub struct Limiter {
    budgets: Arc<Budgets>,
    local: LocalLimits,
    fleet: Option<Arc<Fleet>>,
}

impl Limiter {
    /// Limits in this process only; no task is started.
    pub fn local(budgets: Budgets) -> Self {
        let local = LocalLimits::new(&budgets, 1.0);
        Self {
            budgets: Arc::new(budgets),
            local,
            fleet: None,
        }
    }

    /// The limiter `[limits]` describes. With `[limits.redis]`, connects
    /// (a failure only starts it on local limits) and starts the task that
    /// brings Redis back. Starts the sweeper of idle keys. Needs a runtime.
    pub async fn start(config: &LimitsConfig, quota_by_default: bool) -> Arc<Self> {
        Self::start_with(Budgets::new(config, quota_by_default), config).await
    }

    /// [`Limiter::start`] with budgets made by the caller (a default Region).
    pub async fn start_with(budgets: Budgets, config: &LimitsConfig) -> Arc<Self> {
        let budgets = Arc::new(budgets);
        let (local, fleet) = match &config.redis {
            None => (LocalLimits::new(&budgets, 1.0), None),
            Some(r) => (
                LocalLimits::new(&budgets, r.fallback_share),
                Some(Fleet::start(r, budgets.clone()).await),
            ),
        };
        let limiter = Arc::new(Self {
            budgets,
            local,
            fleet,
        });
        spawn_sweeper(
            Arc::downgrade(&limiter),
            Duration::from_secs(config.sweep_interval_seconds),
        );
        limiter
    }

    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Spends a cell of every bucket, waiting out each refusal (`waited`
    /// hears it first) until they pass: for work that paces itself rather
    /// than fail; its caller bounds the wait.
    pub async fn wait(&self, buckets: &[Bucket], mut waited: impl FnMut(&Refusal)) {
        while let Err(refusal) = self.check(buckets).await {
            waited(&refusal);
            tokio::time::sleep(refusal.retry_after).await;
        }
    }

    /// Spends a cell of every bucket, or refuses naming the budget that
    /// needs the longest wait.
    pub async fn check(&self, buckets: &[Bucket]) -> Result<(), Refusal> {
        if let Some(fleet) = &self.fleet
            && let Some(decision) = fleet.decide(buckets).await
        {
            return decision;
        }
        self.local.check(buckets)
    }

    /// Whether decisions are made in Redis right now.
    pub fn fleet_healthy(&self) -> Option<bool> {
        self.fleet.as_ref().map(|f| f.healthy())
    }

    /// Drops keys whose buckets are full again; returns the keys left.
    pub fn sweep(&self) -> usize {
        self.local.sweep()
    }

    /// Keys held in this process.
    pub fn keys(&self) -> usize {
        self.local.len()
    }
}

fn spawn_sweeper(limiter: std::sync::Weak<Limiter>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(limiter) = limiter.upgrade() else {
                return;
            };
            let left = limiter.sweep();
            crate::meters::ratelimit_keys(left);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method;

    fn budgets(quota: Option<bool>) -> Budgets {
        let mut c = LimitsConfig::default();
        c.quota.enabled = quota;
        Budgets::new(&c, false)
    }

    #[test]
    fn the_quota_guard_follows_the_backend_unless_told() {
        let c = LimitsConfig::default();
        assert!(Budgets::new(&c, true).quota_enabled());
        assert!(!Budgets::new(&c, false).quota_enabled());
        assert!(budgets(Some(true)).quota_enabled());
    }

    #[test]
    fn defaults_are_cognitos_quotas() {
        let b = budgets(Some(true));
        let rate = |id| b.rate(id).map(|r: Rate| r.per_second);
        assert_eq!(
            rate(LimitId::Category(Category::UserPoolResourceUpdate)),
            Some(15.0)
        );
        assert_eq!(
            rate(LimitId::Category(Category::UserPoolResourceRead)),
            Some(20.0)
        );
        assert_eq!(
            rate(LimitId::Category(Category::UserResourceUpdate)),
            Some(25.0)
        );
        assert_eq!(rate(LimitId::Category(Category::UserRead)), Some(120.0));
        assert_eq!(rate(LimitId::Category(Category::UserPoolRead)), Some(15.0));
        assert_eq!(
            rate(LimitId::PoolOperation(CognitoOp::SetUserPoolMfaConfig)),
            Some(5.0)
        );
        assert_eq!(rate(LimitId::UserWrite), Some(10.0));
        assert_eq!(
            rate(LimitId::Caller(method::GET_USER_POOL_MFA_CONFIG.name)),
            Some(50.0)
        );
    }

    #[test]
    fn a_pool_update_spends_read_and_write_quotas_of_its_pool() {
        let b = budgets(Some(true));
        let calls = [
            UpstreamCall::pool(CognitoOp::GetUserPoolMfaConfig, "us-east-1_A"),
            UpstreamCall::pool(CognitoOp::SetUserPoolMfaConfig, "us-east-1_A"),
        ];
        let ids: Vec<String> = b
            .buckets(
                key_of(&["api_key", "svc"]),
                method::UPDATE_USER_POOL_MFA_CONFIG.name,
                &calls,
            )
            .iter()
            .map(|b| b.id.name())
            .collect();
        assert_eq!(
            ids,
            [
                "caller:UpdateUserPoolMfaConfig",
                "cognito_pool:GetUserPoolMfaConfig",
                "cognito:UserPoolResourceRead",
                "cognito_pool:SetUserPoolMfaConfig",
                "cognito:UserPoolResourceUpdate"
            ]
        );
        // Without the guard only the caller's budget is spent.
        assert_eq!(
            budgets(Some(false))
                .buckets(
                    key_of(&["api_key", "svc"]),
                    method::UPDATE_USER_POOL_MFA_CONFIG.name,
                    &calls
                )
                .len(),
            1
        );
    }

    /// Cognito's quotas are per account and Region: a call spends its
    /// pool's Region's category bucket; a call naming no pool, the default
    /// Region's.
    #[test]
    fn quota_categories_are_keyed_by_region() {
        let b = budgets(Some(true)).with_default_region("us-east-1");
        let category = |pool: Option<&str>| {
            b.buckets(
                key_of(&["api_key", "svc"]),
                method::GET_USER_POOL_MFA_CONFIG.name,
                &[UpstreamCall::user(
                    CognitoOp::AdminGetUser,
                    pool.map(str::to_owned),
                    None,
                )],
            )
            .into_iter()
            .find(|b| b.id == LimitId::Category(Category::UserRead))
            .expect("the category bucket")
            .key
        };
        assert_eq!(category(Some("us-east-1_A")), category(Some("us-east-1_B")));
        assert_ne!(category(Some("us-east-1_A")), category(Some("eu-west-1_A")));
        assert_eq!(category(None), category(Some("us-east-1_Z")));
        // A pool another account serves: that account's buckets.
        let b = b.with_accounts(vec![("prod".into(), vec!["us-east-1_Prod*".into()])]);
        let key = |pool: &str| {
            b.buckets(
                key_of(&["api_key", "svc"]),
                method::GET_USER_POOL_MFA_CONFIG.name,
                &[UpstreamCall::pool(CognitoOp::GetUserPoolMfaConfig, pool)],
            )
            .into_iter()
            .find(|b| b.id == LimitId::Category(Category::UserPoolResourceRead))
            .expect("the category bucket")
            .key
        };
        assert_ne!(key("us-east-1_Prod1"), key("us-east-1_Dev1"));
        assert_eq!(key("us-east-1_Prod1"), key("us-east-1_Prod2"));
    }

    #[test]
    fn end_users_are_keyed_within_their_pool() {
        let b = budgets(Some(true));
        let call = |pool: &str, user: &str| {
            b.buckets(
                key_of(&["api_key", "svc"]),
                method::ADMIN_SET_USER_MFA_PREFERENCE.name,
                &[UpstreamCall::user(
                    CognitoOp::AdminSetUserMfaPreference,
                    Some(pool.into()),
                    Some(user.into()),
                )],
            )[1]
        };
        assert_eq!(call("p1", "alice").id, LimitId::UserWrite);
        assert_eq!(call("p1", "alice"), call("p1", "alice"));
        assert_ne!(call("p1", "alice").key, call("p2", "alice").key);
        // No ambiguity from concatenation.
        assert_ne!(key_of(&["ab", "c"]), key_of(&["a", "bc"]));
    }
}

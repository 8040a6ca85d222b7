//! `[limits]`: the caller, Cognito-quota and unauthenticated budgets, and the fleet store.

use std::{collections::BTreeMap, path::PathBuf};

use serde::Deserialize;

use crate::settings::{MAX_RATE_PER_SECOND, MIN_RATE_PER_SECOND};

impl LimitsConfig {
    pub(crate) fn validate(&self, err: &mut impl FnMut(&str, String)) {
        for method in self.methods.keys() {
            let key = format!("limits.methods.\"{method}\"");
            if crate::method::find(method).is_none() {
                err(
                    &key,
                    format!(
                        "{method:?} is not a method of this service; known: {}",
                        crate::method::names().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
        }
        if let Some(r) = &self.redis {
            let tls = r.url.starts_with("rediss://");
            if !r.url.starts_with("redis://") && !tls {
                err(
                    "limits.redis.url",
                    "must be a redis:// or rediss:// URL (redis://[user:password@]host:port[/db])"
                        .into(),
                );
            } else if redis::Client::open(r.url.as_str()).is_err() {
                err("limits.redis.url", "is not a valid redis:// URL".into());
            }
            if r.ca_file.is_some() && !tls {
                err(
                    "limits.redis.ca_file",
                    "needs a rediss:// url (a CA file means TLS)".into(),
                );
            }
            for (key, path) in [
                ("limits.redis.ca_file", &r.ca_file),
                ("limits.redis.username_file", &r.username_file),
                ("limits.redis.password_file", &r.password_file),
            ] {
                if let Some(path) = path
                    && !path.is_file()
                {
                    err(key, format!("{} is not a readable file", path.display()));
                }
            }
            if r.username_file.is_some() && r.password_file.is_none() {
                err(
                    "limits.redis.username_file",
                    "needs limits.redis.password_file (AUTH takes both)".into(),
                );
            }
            if r.key_prefix.is_empty() || r.key_prefix.contains(['{', '}']) {
                err(
                    "limits.redis.key_prefix",
                    "must be non-empty and without braces (it becomes a hash tag)".into(),
                );
            }
        }
    }
}

/// `[limits]`: GCRA budgets per (principal, method), the quota guard in
/// front of Cognito, and where the budgets live (this process, or Redis for
/// the whole fleet).
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// `[limits.default]`: each (principal, method) without its own entry.
    pub default: RateConfig,
    /// `[limits.methods."cognito.mfa.v1.Service/Method"]`: per method.
    pub methods: BTreeMap<String, RateConfig>,
    /// `[limits.quota]`: Cognito's request-rate quotas (COGNITO.md §4).
    pub quota: QuotaConfig,
    /// `[limits.redis]`: the budgets shared by every replica.
    #[schemars(extend("x-production" = "one budget for the fleet: without it N replicas admit N times every rate"))]
    pub redis: Option<RedisConfig>,
    /// How often keys whose bucket has refilled are dropped, so that
    /// memory follows the callers active now, not every caller ever seen.
    #[schemars(range(min = 1, max = 3600))]
    pub sweep_interval_seconds: u64,
    /// `[limits.unauthenticated]`: the budget of refusals before
    /// authentication, per peer address.
    pub unauthenticated: UnauthenticatedConfig,
    /// `[limits.walk]`: the pace and bounds of ListUserMfaStatus.
    pub walk: WalkConfig,
    /// `[limits.drift]`: the pace of the watch for external changes.
    pub drift: DriftConfig,
}

/// The coverage walk (ListUserMfaStatus): its share of the UserList and
/// UserRead quotas, how many run at once, and how long one may run.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WalkConfig {
    /// The share of `limits.quota.user_list` and `limits.quota.user_read`
    /// that all walks together may spend (0 < share <= 1). The rest is
    /// left to other callers; a walk waits for its share, it never fails
    /// for want of it.
    #[schemars(range(max = 1.0), extend("exclusiveMinimum" = 0.0))]
    pub share: f64,
    /// Walks in flight in this process; one more is refused as
    /// RESOURCE_EXHAUSTED.
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrent: usize,
    /// The longest one walk streams; then it ends with DEADLINE_EXCEEDED
    /// and its last message's page_token resumes it.
    #[schemars(range(min = 1, max = MAX_WALK_SECONDS))]
    pub max_seconds: u64,
}

/// The watch for pool changes made behind the facade's back (`[history]`):
/// its share of the quota of the read it makes (GetUserPoolMfaConfig,
/// UserPoolResourceRead).
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DriftConfig {
    /// The share of `limits.quota.user_pool_resource_read` the watch may
    /// spend (0 < share <= 1): it waits for its share, so it never starves
    /// callers.
    #[schemars(range(max = 1.0), extend("exclusiveMinimum" = 0.0))]
    pub share: f64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self { share: 0.1 }
    }
}

/// The longest `limits.walk.max_seconds` may be: a day.
pub const MAX_WALK_SECONDS: u64 = 86_400;

impl Default for WalkConfig {
    fn default() -> Self {
        Self {
            share: 0.5,
            max_concurrent: 2,
            max_seconds: 3_600,
        }
    }
}

/// Calls refused before authentication (no or wrong credentials), per peer
/// (an IPv4 address, or an IPv6 /64) and across all peers. Within the budget each refusal is UNAUTHENTICATED with an
/// audit record; past it the refusal is RESOURCE_EXHAUSTED with RetryInfo
/// and no record of its own, and one summary record per peer per
/// `summary_interval_seconds` counts what was suppressed. Calls with valid
/// credentials never spend it and are never refused by it.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UnauthenticatedConfig {
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub per_second: f64,
    #[schemars(range(min = 1, max = 1_000_000))]
    pub burst: u32,
    /// Peers tracked at once; a new peer past it shares one overflow budget.
    #[schemars(range(min = 1, max = 10_000_000))]
    pub max_peers: usize,
    /// All peers together: what bounds the audit volume of many at once.
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub global_per_second: f64,
    #[schemars(range(min = 1, max = 10_000_000))]
    pub global_burst: u32,
    #[schemars(range(min = 1, max = 86_400))]
    pub summary_interval_seconds: u64,
}

impl Default for UnauthenticatedConfig {
    fn default() -> Self {
        Self {
            per_second: 10.0,
            burst: 100,
            max_peers: 10_000,
            global_per_second: 200.0,
            global_burst: 1000,
            summary_interval_seconds: 60,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            default: RateConfig {
                per_second: 50.0,
                burst: 100,
            },
            methods: BTreeMap::new(),
            quota: QuotaConfig::default(),
            redis: None,
            sweep_interval_seconds: 10,
            unauthenticated: UnauthenticatedConfig::default(),
            walk: WalkConfig::default(),
            drift: DriftConfig::default(),
        }
    }
}

/// A GCRA budget: `per_second` on average, `burst` at once after idling.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub per_second: f64,
    #[schemars(range(min = 1))]
    pub burst: u32,
}

/// The quota guard: budgets per Cognito quota category, per operation per
/// user pool, and per end user, each with a burst of one second's worth.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Unset: on with the cognito backend, off with the local one (which
    /// has no quota to protect; set `true` to rehearse throttling locally).
    pub enabled: Option<bool>,
    /// SetUserPoolMfaConfig, account-wide.
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub user_pool_resource_update: f64,
    /// GetUserPoolMfaConfig, account-wide.
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub user_pool_resource_read: f64,
    /// DescribeUserPool (the pre-flight of a pool change), account-wide.
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub user_pool_read: f64,
    /// Set/AdminSetUserMFAPreference, Associate/VerifySoftwareToken,
    /// AdminDeleteSoftwareToken, DeleteWebAuthnCredential,
    /// AdminForgetDevice, AdminUpdateDeviceStatus, ForgetDevice,
    /// account-wide.
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub user_resource_update: f64,
    /// GetUser, AdminGetUser, Get/AdminGetUserAuthFactors,
    /// ListWebAuthnCredentials, account-wide.
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub user_read: f64,
    /// ListUsers (the coverage walk), account-wide.
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub user_list: f64,
    /// AdminListDevices, AdminGetDevice, ListDevices, account-wide (their
    /// category is our reading of the quotas page: docs/differences.md).
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub user_resource_read: f64,
    /// AdminUpdateUserAttributes, AdminUserGlobalSignOut, GlobalSignOut,
    /// account-wide (their category is our reading of the quotas page).
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub user_update: f64,
    /// Each UserPoolResource* operation on one user pool.
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub per_pool_operation: f64,
    /// Writes about one end user (username, or the access token's sub).
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub per_user_write: f64,
    /// Reads about one end user.
    #[schemars(range(min = MIN_RATE_PER_SECOND, max = MAX_RATE_PER_SECOND))]
    pub per_user_read: f64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            user_pool_resource_update: 15.0,
            user_pool_resource_read: 20.0,
            user_pool_read: 15.0,
            user_resource_update: 25.0,
            user_read: 120.0,
            user_list: 30.0,
            user_resource_read: 50.0,
            user_update: 25.0,
            per_pool_operation: 5.0,
            per_user_write: 10.0,
            per_user_read: 10.0,
        }
    }
}

/// Fleet mode: every decision is one Lua script in this Redis.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS.
    pub url: String,
    /// rediss: CA certificates (PEM) the server's certificate must chain
    /// to. Unset: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// A file holding the AUTH user name (ACL), read at start-up and on reload.
    pub username_file: Option<PathBuf>,
    /// A file holding the AUTH password.
    pub password_file: Option<PathBuf>,
    /// The longest a decision waits for Redis before this process decides
    /// on its own (at most 50).
    #[serde(default = "default_redis_timeout_ms")]
    #[schemars(range(min = 1, max = MAX_REDIS_TIMEOUT_MS))]
    pub timeout_ms: u64,
    /// Multiplexed connections, used in turn.
    #[serde(default = "default_redis_pool_size")]
    #[schemars(range(min = 1, max = 64))]
    pub pool_size: usize,
    /// Prefix of every key; keys carry it as a hash tag, so one script's
    /// keys share a Redis Cluster slot.
    #[serde(default = "default_redis_key_prefix")]
    pub key_prefix: String,
    /// While Redis is unreachable, how often it is tried again.
    #[serde(default = "default_redis_probe_interval_ms")]
    #[schemars(range(min = 10, max = 60_000))]
    pub probe_interval_ms: u64,
    /// While Redis is unreachable, the share of each budget this process
    /// admits on its own: 1 / replicas keeps the fleet within its budgets,
    /// 1.0 (the default) keeps every replica able to serve alone.
    #[serde(default = "default_fallback_share")]
    #[schemars(range(min = 0.001, max = 1.0))]
    pub fallback_share: f64,
}

/// The longest `limits.redis.timeout_ms` may be.
pub const MAX_REDIS_TIMEOUT_MS: u64 = 50;

fn default_redis_timeout_ms() -> u64 {
    25
}
fn default_redis_pool_size() -> usize {
    4
}
fn default_redis_key_prefix() -> String {
    "mfa-facade".into()
}
fn default_redis_probe_interval_ms() -> u64 {
    250
}
fn default_fallback_share() -> f64 {
    1.0
}

#[cfg(test)]
mod defaults {
    use super::*;

    /// One set of defaults: an empty `[limits]` (and each of its tables) is
    /// `LimitsConfig::default()`, a key given keeps the others' defaults,
    /// and a typo is still refused.
    #[test]
    fn serde_and_default_agree() {
        crate::settings::assert_one_set_of_defaults::<LimitsConfig>("[walk]\nmax_concurent = 3");
        let one: LimitsConfig = toml::from_str("[walk]\nmax_concurrent = 3").expect("one key");
        assert_eq!(one.walk.max_concurrent, 3);
        assert_eq!(
            format!("{:?}", one.quota),
            format!("{:?}", QuotaConfig::default())
        );
    }
}

//! `[limits]`: the caller, Cognito-quota and unauthenticated budgets, and the fleet store.

use std::{collections::BTreeMap, path::PathBuf};

use serde::Deserialize;

use crate::settings::{check_range, check_rate};

impl LimitsConfig {
    pub(crate) fn validate(&self, err: &mut impl FnMut(&str, String)) {
        fn rate(err: &mut impl FnMut(&str, String), key: &str, r: &RateConfig) {
            check_rate(err, &format!("{key}.per_second"), r.per_second);
            if r.burst == 0 {
                err(&format!("{key}.burst"), "must be at least 1".into());
            }
        }
        rate(err, "limits.default", &self.default);
        for (method, r) in &self.methods {
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
            rate(err, &key, r);
        }
        let q = &self.quota;
        for (key, value) in [
            (
                "limits.quota.user_pool_resource_update",
                q.user_pool_resource_update,
            ),
            (
                "limits.quota.user_pool_resource_read",
                q.user_pool_resource_read,
            ),
            ("limits.quota.user_pool_read", q.user_pool_read),
            ("limits.quota.user_resource_update", q.user_resource_update),
            ("limits.quota.user_read", q.user_read),
            ("limits.quota.user_list", q.user_list),
            ("limits.quota.per_pool_operation", q.per_pool_operation),
            ("limits.quota.per_user_write", q.per_user_write),
            ("limits.quota.per_user_read", q.per_user_read),
        ] {
            check_rate(err, key, value);
        }
        let w = &self.walk;
        if !(w.share > 0.0 && w.share <= 1.0) {
            err(
                "limits.walk.share",
                format!("{} must be more than 0 and at most 1", w.share),
            );
        }
        check_range(err, "limits.walk.max_concurrent", w.max_concurrent, 1, 64);
        check_range(
            err,
            "limits.walk.max_seconds",
            w.max_seconds,
            1,
            MAX_WALK_SECONDS,
        );
        let u = &self.unauthenticated;
        check_rate(err, "limits.unauthenticated.per_second", u.per_second);
        check_range(err, "limits.unauthenticated.burst", u.burst, 1, 1_000_000);
        check_rate(
            err,
            "limits.unauthenticated.global_per_second",
            u.global_per_second,
        );
        check_range(
            err,
            "limits.unauthenticated.global_burst",
            u.global_burst,
            1,
            10_000_000,
        );
        check_range(
            err,
            "limits.unauthenticated.max_peers",
            u.max_peers,
            1,
            10_000_000,
        );
        check_range(
            err,
            "limits.unauthenticated.summary_interval_seconds",
            u.summary_interval_seconds,
            1,
            86_400,
        );
        if self.sweep_interval_seconds == 0 || self.sweep_interval_seconds > 3600 {
            err(
                "limits.sweep_interval_seconds",
                format!("{} must be between 1 and 3600", self.sweep_interval_seconds),
            );
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
            if r.timeout_ms == 0 || r.timeout_ms > MAX_REDIS_TIMEOUT_MS {
                err(
                    "limits.redis.timeout_ms",
                    format!(
                        "{} must be between 1 and {MAX_REDIS_TIMEOUT_MS}: a decision never waits longer for Redis",
                        r.timeout_ms
                    ),
                );
            }
            check_range(err, "limits.redis.pool_size", r.pool_size, 1, 64);
            if r.key_prefix.is_empty() || r.key_prefix.contains(['{', '}']) {
                err(
                    "limits.redis.key_prefix",
                    "must be non-empty and without braces (it becomes a hash tag)".into(),
                );
            }
            if !(10..=60_000).contains(&r.probe_interval_ms) {
                err(
                    "limits.redis.probe_interval_ms",
                    format!("{} must be between 10 and 60000", r.probe_interval_ms),
                );
            }
            if !(0.001..=1.0).contains(&r.fallback_share) {
                err(
                    "limits.redis.fallback_share",
                    format!("{} must be from 0.001 to 1", r.fallback_share),
                );
            }
        }
    }
}

/// `[limits]`: GCRA budgets per (principal, method), the quota guard in
/// front of Cognito, and where the budgets live (this process, or Redis for
/// the whole fleet).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// `[limits.default]`: each (principal, method) without its own entry.
    pub default: RateConfig,
    /// `[limits.methods."cognito.mfa.v1.Service/Method"]`: per method.
    pub methods: BTreeMap<String, RateConfig>,
    /// `[limits.quota]`: Cognito's request-rate quotas (COGNITO.md §4).
    pub quota: QuotaConfig,
    /// `[limits.redis]`: the budgets shared by every replica.
    pub redis: Option<RedisConfig>,
    /// How often keys whose bucket has refilled are dropped, so that
    /// memory follows the callers active now, not every caller ever seen.
    pub sweep_interval_seconds: u64,
    /// `[limits.unauthenticated]`: the budget of refusals before
    /// authentication, per peer address.
    pub unauthenticated: UnauthenticatedConfig,
    /// `[limits.walk]`: the pace and bounds of ListUserMfaStatus.
    pub walk: WalkConfig,
}

/// The coverage walk (ListUserMfaStatus): its share of the UserList and
/// UserRead quotas, how many run at once, and how long one may run.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalkConfig {
    /// The share of `limits.quota.user_list` and `limits.quota.user_read`
    /// that all walks together may spend (0 < share <= 1). The rest is
    /// left to other callers; a walk waits for its share, it never fails
    /// for want of it.
    pub share: f64,
    /// Walks in flight in this process; one more is refused as
    /// RESOURCE_EXHAUSTED.
    pub max_concurrent: usize,
    /// The longest one walk streams; then it ends with DEADLINE_EXCEEDED
    /// and its last message's page_token resumes it.
    pub max_seconds: u64,
}

/// The longest `limits.walk.max_seconds` may be: a day.
pub const MAX_WALK_SECONDS: u64 = 86_400;

impl Default for WalkConfig {
    fn default() -> Self {
        Self {
            share: default_walk_share(),
            max_concurrent: default_walk_max_concurrent(),
            max_seconds: default_walk_max_seconds(),
        }
    }
}

fn default_walk_share() -> f64 {
    0.5
}
fn default_walk_max_concurrent() -> usize {
    2
}
fn default_walk_max_seconds() -> u64 {
    3_600
}

/// Calls refused before authentication (no or wrong credentials), per peer
/// (an IPv4 address, or an IPv6 /64) and across all peers. Within the budget each refusal is UNAUTHENTICATED with an
/// audit record; past it the refusal is RESOURCE_EXHAUSTED with RetryInfo
/// and no record of its own, and one summary record per peer per
/// `summary_interval_seconds` counts what was suppressed. Calls with valid
/// credentials never spend it and are never refused by it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnauthenticatedConfig {
    pub per_second: f64,
    pub burst: u32,
    /// Peers tracked at once; a new peer past it shares one overflow budget.
    pub max_peers: usize,
    /// All peers together: what bounds the audit volume of many at once.
    pub global_per_second: f64,
    pub global_burst: u32,
    pub summary_interval_seconds: u64,
}

impl Default for UnauthenticatedConfig {
    fn default() -> Self {
        Self {
            per_second: default_unauthenticated_per_second(),
            burst: default_unauthenticated_burst(),
            max_peers: default_unauthenticated_max_peers(),
            global_per_second: default_unauthenticated_global_per_second(),
            global_burst: default_unauthenticated_global_burst(),
            summary_interval_seconds: default_unauthenticated_summary_interval_seconds(),
        }
    }
}

fn default_unauthenticated_per_second() -> f64 {
    10.0
}
fn default_unauthenticated_burst() -> u32 {
    100
}
fn default_unauthenticated_max_peers() -> usize {
    10_000
}
fn default_unauthenticated_global_per_second() -> f64 {
    200.0
}
fn default_unauthenticated_global_burst() -> u32 {
    1000
}
fn default_unauthenticated_summary_interval_seconds() -> u64 {
    60
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            default: default_rate(),
            methods: BTreeMap::new(),
            quota: QuotaConfig::default(),
            redis: None,
            sweep_interval_seconds: default_sweep_interval_seconds(),
            unauthenticated: UnauthenticatedConfig::default(),
            walk: WalkConfig::default(),
        }
    }
}

/// A GCRA budget: `per_second` on average, `burst` at once after idling.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    pub per_second: f64,
    pub burst: u32,
}

fn default_rate() -> RateConfig {
    RateConfig {
        per_second: 50.0,
        burst: 100,
    }
}
fn default_sweep_interval_seconds() -> u64 {
    10
}

/// The quota guard: budgets per Cognito quota category, per operation per
/// user pool, and per end user, each with a burst of one second's worth.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Unset: on with the cognito backend, off with the local one (which
    /// has no quota to protect; set `true` to rehearse throttling locally).
    pub enabled: Option<bool>,
    /// SetUserPoolMfaConfig, account-wide.
    pub user_pool_resource_update: f64,
    /// GetUserPoolMfaConfig, account-wide.
    pub user_pool_resource_read: f64,
    /// DescribeUserPool (the pre-flight of a pool change), account-wide.
    pub user_pool_read: f64,
    /// Set/AdminSetUserMFAPreference, Associate/VerifySoftwareToken,
    /// AdminDeleteSoftwareToken, account-wide.
    pub user_resource_update: f64,
    /// GetUser, AdminGetUser, Get/AdminGetUserAuthFactors,
    /// ListWebAuthnCredentials, account-wide.
    pub user_read: f64,
    /// ListUsers (the coverage walk), account-wide.
    pub user_list: f64,
    /// Each UserPoolResource* operation on one user pool.
    pub per_pool_operation: f64,
    /// Writes about one end user (username, or the access token's sub).
    pub per_user_write: f64,
    /// Reads about one end user.
    pub per_user_read: f64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            user_pool_resource_update: default_user_pool_resource_update(),
            user_pool_resource_read: default_user_pool_resource_read(),
            user_pool_read: default_user_pool_read(),
            user_resource_update: default_user_resource_update(),
            user_read: default_user_read(),
            user_list: default_user_list(),
            per_pool_operation: default_per_pool_operation(),
            per_user_write: default_per_user(),
            per_user_read: default_per_user(),
        }
    }
}

fn default_user_pool_resource_update() -> f64 {
    15.0
}
fn default_user_pool_resource_read() -> f64 {
    20.0
}
fn default_user_pool_read() -> f64 {
    15.0
}
fn default_user_resource_update() -> f64 {
    25.0
}
fn default_user_read() -> f64 {
    120.0
}
fn default_user_list() -> f64 {
    30.0
}
fn default_per_pool_operation() -> f64 {
    5.0
}
fn default_per_user() -> f64 {
    10.0
}

/// Fleet mode: every decision is one Lua script in this Redis.
#[derive(Clone, Debug, Deserialize)]
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
    pub timeout_ms: u64,
    /// Multiplexed connections, used in turn.
    #[serde(default = "default_redis_pool_size")]
    pub pool_size: usize,
    /// Prefix of every key; keys carry it as a hash tag, so one script's
    /// keys share a Redis Cluster slot.
    #[serde(default = "default_redis_key_prefix")]
    pub key_prefix: String,
    /// While Redis is unreachable, how often it is tried again.
    #[serde(default = "default_redis_probe_interval_ms")]
    pub probe_interval_ms: u64,
    /// While Redis is unreachable, the share of each budget this process
    /// admits on its own: 1 / replicas keeps the fleet within its budgets,
    /// 1.0 (the default) keeps every replica able to serve alone.
    #[serde(default = "default_fallback_share")]
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

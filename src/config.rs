//! The typed configuration: a TOML file, then `MFA_FACADE_*` environment
//! overrides, validated at start-up with errors that name the key.
//!
//! The key names are the operator contract of DESIGN.md §8: keep them.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

/// Default gRPC address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default Prometheus address.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
/// Default AWS Region when neither the file nor the AWS environment names one.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Time to open a TCP/TLS connection to Cognito.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3_100;
/// Time for one attempt of one Cognito call.
pub const DEFAULT_ATTEMPT_TIMEOUT_MS: u64 = 5_000;
/// Time for one Cognito call, all retries included.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 15_000;
/// Attempts per Cognito call, the first included (the SDK's standard retry
/// with its token-bucket retry budget).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The prefix of environment overrides: `MFA_FACADE_LISTEN`,
/// `MFA_FACADE_BACKEND_ENDPOINT_URL`, ...
pub const ENV_PREFIX: &str = "MFA_FACADE_";

/// The keys an environment variable may override, dotted. The variable's name
/// is the prefix plus the key, upper-cased, with dots as underscores.
pub const ENV_KEYS: &[&str] = &[
    "listen",
    "metrics_listen",
    "backend.kind",
    "backend.data_file",
    "backend.region",
    "backend.endpoint_url",
    "backend.connect_timeout_ms",
    "backend.attempt_timeout_ms",
    "backend.call_timeout_ms",
    "backend.max_attempts",
    "limits.redis.url",
];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// gRPC listen address.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Prometheus listen address.
    #[serde(default = "default_metrics_listen")]
    pub metrics_listen: SocketAddr,
    #[serde(default)]
    pub backend: BackendConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `[tls]`: serve gRPC over TLS; with `client_ca_file`, accept client
    /// certificates (mTLS) as a way in.
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[audit]`: who changed what, in a hash chain. Unset: no audit.
    pub audit: Option<AuditConfig>,
    #[serde(default)]
    pub server: ServerConfig,
}

/// The longest any `*_seconds` setting may be: a year. Longer is a typo,
/// and durations near `u64::MAX` overflow the clock arithmetic they feed.
pub const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// `[server]`: connections, transport limits and shutdown. Each limit is
/// what one peer, authenticated or not, can make the process hold.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// A connection is asked to go (GOAWAY) after this long, so that HTTP/2
    /// clients spread over new replicas behind a Kubernetes Service.
    #[serde(default = "default_max_connection_age_seconds")]
    pub max_connection_age_seconds: u64,
    /// How long calls on an aged connection may still take.
    #[serde(default = "default_max_connection_age_grace_seconds")]
    pub max_connection_age_grace_seconds: u64,
    /// After SIGTERM/SIGINT: health turns NOT_SERVING, and the server keeps
    /// accepting for this long, so load balancers see it before it goes.
    #[serde(default)]
    pub drain_delay_ms: u64,
    /// Then in-flight calls get this long to finish before the process exits.
    #[serde(default = "default_drain_timeout_seconds")]
    pub drain_timeout_seconds: u64,
    /// SETTINGS_MAX_CONCURRENT_STREAMS: calls open at once on one connection.
    #[serde(default = "default_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
    /// Streams the server itself resets for a protocol error before it
    /// sends GOAWAY (the MadeYouReset defence, CVE-2025-8671). h2 counts
    /// them for the connection's whole life (`max_connection_age_seconds`
    /// bounds that), and a stream refused for `max_concurrent_streams`
    /// counts too: hyper's own default, which tonic turns off unless set.
    #[serde(default = "default_max_local_error_reset_streams")]
    pub max_local_error_reset_streams: usize,
    /// Streams a client opened and reset that wait to be accepted (the
    /// Rapid Reset defence, CVE-2023-44487).
    #[serde(default = "default_max_pending_accept_reset_streams")]
    pub max_pending_accept_reset_streams: usize,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: the metadata of one call, in bytes.
    #[serde(default = "default_max_header_list_bytes")]
    pub max_header_list_bytes: u32,
    /// HTTP/2 flow control: what one stream may send before the server reads.
    #[serde(default = "default_initial_stream_window_bytes")]
    pub initial_stream_window_bytes: u32,
    /// HTTP/2 flow control: what one connection may send before the server reads.
    #[serde(default = "default_initial_connection_window_bytes")]
    pub initial_connection_window_bytes: u32,
    /// The decode limit of the API services, in bytes: the largest valid
    /// request (SetUserPoolMfaConfig with every 131,072-character field of
    /// Cognito's StringType at its maximum, in 3-byte characters) is about
    /// 2.4 MB; a larger message is refused before it is decoded.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// The decode limit of health and reflection, whose requests are a name.
    #[serde(default = "default_ops_max_message_bytes")]
    pub ops_max_message_bytes: usize,
    /// Calls in flight in the whole process; past it a call is refused at
    /// once with RESOURCE_EXHAUSTED (load shedding, never a queue). Health
    /// is not counted, so probes still answer under load.
    #[serde(default = "default_max_concurrent_calls")]
    pub max_concurrent_calls: usize,
    /// Open connections at once; one more is closed as it is accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The time a call may take in the facade, Cognito's retries included;
    /// then it ends with DEADLINE_EXCEEDED (and its audit record says so).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// HTTP/2 PING every this long on an idle connection...
    #[serde(default = "default_keepalive_interval_seconds")]
    pub keepalive_interval_seconds: u64,
    /// ...and the connection is closed if the answer takes longer than this.
    #[serde(default = "default_keepalive_timeout_seconds")]
    pub keepalive_timeout_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connection_age_seconds: default_max_connection_age_seconds(),
            max_connection_age_grace_seconds: default_max_connection_age_grace_seconds(),
            drain_delay_ms: 0,
            drain_timeout_seconds: default_drain_timeout_seconds(),
            max_concurrent_streams: default_max_concurrent_streams(),
            max_local_error_reset_streams: default_max_local_error_reset_streams(),
            max_pending_accept_reset_streams: default_max_pending_accept_reset_streams(),
            max_header_list_bytes: default_max_header_list_bytes(),
            initial_stream_window_bytes: default_initial_stream_window_bytes(),
            initial_connection_window_bytes: default_initial_connection_window_bytes(),
            max_message_bytes: default_max_message_bytes(),
            ops_max_message_bytes: default_ops_max_message_bytes(),
            max_concurrent_calls: default_max_concurrent_calls(),
            max_connections: default_max_connections(),
            request_timeout_ms: default_request_timeout_ms(),
            keepalive_interval_seconds: default_keepalive_interval_seconds(),
            keepalive_timeout_seconds: default_keepalive_timeout_seconds(),
        }
    }
}

fn default_max_connection_age_seconds() -> u64 {
    300
}
fn default_max_connection_age_grace_seconds() -> u64 {
    30
}
fn default_drain_timeout_seconds() -> u64 {
    20
}
/// Envoy's edge recommendation (PRECEDENTS.md §8a).
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 100;
fn default_max_concurrent_streams() -> u32 {
    DEFAULT_MAX_CONCURRENT_STREAMS
}
fn default_max_local_error_reset_streams() -> usize {
    1024
}
fn default_max_pending_accept_reset_streams() -> usize {
    20
}
fn default_max_header_list_bytes() -> u32 {
    16 * 1024
}
fn default_initial_stream_window_bytes() -> u32 {
    64 * 1024
}
fn default_initial_connection_window_bytes() -> u32 {
    1024 * 1024
}
/// See [`ServerConfig::max_message_bytes`].
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 2560 * 1024;
fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}
fn default_ops_max_message_bytes() -> usize {
    4096
}
fn default_max_concurrent_calls() -> usize {
    1024
}
fn default_max_connections() -> usize {
    1024
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_keepalive_interval_seconds() -> u64 {
    60
}
fn default_keepalive_timeout_seconds() -> u64 {
    20
}

/// `value` must lie in `range`; the error names the key and the range.
fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    err: &mut impl FnMut(&str, String),
    key: &str,
    value: T,
    min: T,
    max: T,
) {
    if value < min || value > max {
        err(key, format!("{value} must be between {min} and {max}"));
    }
}

impl ServerConfig {
    fn validate(&self, err: &mut impl FnMut(&str, String)) {
        check_range(
            err,
            "server.max_connection_age_seconds",
            self.max_connection_age_seconds,
            1,
            MAX_SECONDS,
        );
        check_range(
            err,
            "server.max_connection_age_grace_seconds",
            self.max_connection_age_grace_seconds,
            0,
            MAX_SECONDS,
        );
        check_range(err, "server.drain_delay_ms", self.drain_delay_ms, 0, 60_000);
        check_range(
            err,
            "server.drain_timeout_seconds",
            self.drain_timeout_seconds,
            1,
            600,
        );
        check_range(
            err,
            "server.max_concurrent_streams",
            self.max_concurrent_streams,
            1,
            10_000,
        );
        check_range(
            err,
            "server.max_local_error_reset_streams",
            self.max_local_error_reset_streams,
            1,
            100_000,
        );
        check_range(
            err,
            "server.max_pending_accept_reset_streams",
            self.max_pending_accept_reset_streams,
            1,
            100_000,
        );
        check_range(
            err,
            "server.max_header_list_bytes",
            self.max_header_list_bytes,
            1024,
            1024 * 1024,
        );
        // RFC 9113 §6.5.2: a window is at most 2^31-1; below 64 KiB - 1 is
        // smaller than HTTP/2's own initial window.
        for (key, value) in [
            (
                "server.initial_stream_window_bytes",
                self.initial_stream_window_bytes,
            ),
            (
                "server.initial_connection_window_bytes",
                self.initial_connection_window_bytes,
            ),
        ] {
            check_range(err, key, value, 65_535, i32::MAX as u32);
        }
        check_range(
            err,
            "server.max_message_bytes",
            self.max_message_bytes,
            1024,
            64 * 1024 * 1024,
        );
        check_range(
            err,
            "server.ops_max_message_bytes",
            self.ops_max_message_bytes,
            256,
            1024 * 1024,
        );
        check_range(
            err,
            "server.max_concurrent_calls",
            self.max_concurrent_calls,
            1,
            1_000_000,
        );
        check_range(
            err,
            "server.max_connections",
            self.max_connections,
            1,
            1_000_000,
        );
        check_range(
            err,
            "server.request_timeout_ms",
            self.request_timeout_ms,
            1,
            600_000,
        );
        check_range(
            err,
            "server.keepalive_interval_seconds",
            self.keepalive_interval_seconds,
            1,
            MAX_SECONDS,
        );
        check_range(
            err,
            "server.keepalive_timeout_seconds",
            self.keepalive_timeout_seconds,
            1,
            3600,
        );
    }
}

/// How much of a call an audit record holds (Kubernetes' audit levels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditLevel {
    /// No record at all.
    None,
    /// Who, what method, which pool and user, the outcome.
    Metadata,
    /// And the request, redacted.
    Request,
    /// And the response, redacted.
    RequestResponse,
}

/// When file records reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// fsync after every record.
    Record,
    /// fsync once per group: every `group_commit_ms` or
    /// `group_commit_records` records, whichever comes first.
    Group,
}

/// How usernames appear in records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsernameHandling {
    /// As sent: an audit trail must say whose MFA changed.
    Clear,
    /// As a keyed fingerprint, for deployments whose audit store may not
    /// hold personal data.
    Fingerprint,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Append-only JSON lines, rotated by size.
    pub file: Option<PathBuf>,
    /// JSON lines on standard output.
    #[serde(default)]
    pub stdout: bool,
    /// A mutating call reaches the backend only after its "received" record
    /// is durable, and answers only after its "completed" record is; a sink
    /// failure answers UNAVAILABLE and changes nothing.
    #[serde(default = "default_true")]
    pub fail_closed: bool,
    #[serde(default = "default_fsync")]
    pub fsync: FsyncPolicy,
    #[serde(default = "default_group_commit_ms")]
    pub group_commit_ms: u64,
    #[serde(default = "default_group_commit_records")]
    pub group_commit_records: usize,
    /// The file is rotated before it grows past this.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Rotated files kept beside the live one; the oldest beyond this are
    /// deleted (after the rotation that made one more is durable). Retention
    /// is at most (`max_files` + 1) x `max_file_bytes`.
    #[serde(default = "default_max_files")]
    pub max_files: usize,
    /// Bytes of records waiting for the writer at most; a record past it is
    /// dropped (counted), and a waiting change is refused (`fail_closed`).
    #[serde(default = "default_max_queue_bytes")]
    pub max_queue_bytes: usize,
    /// How often the chain's head (seq and hash) is printed to stdout, as
    /// the outside anchor that catches a cut-off tail.
    #[serde(default = "default_anchor_interval_seconds")]
    pub anchor_interval_seconds: u64,
    /// A file holding the per-deployment key of the fingerprints (at least
    /// 16 bytes). Unset: a random key per process, so fingerprints follow a
    /// token within one process's records only.
    pub fingerprint_key_file: Option<PathBuf>,
    #[serde(default = "default_usernames")]
    pub usernames: UsernameHandling,
    /// The level of changes (writes) no rule matches; they leave a
    /// "received" and a "completed" record.
    #[serde(default = "default_audit_level")]
    pub default_level: AuditLevel,
    /// The level of reads no rule matches; they leave one record, at
    /// completion (DESIGN.md §5).
    #[serde(default = "default_read_level")]
    pub read_level: AuditLevel,
    /// `[[audit.rules]]`: the first rule whose globs match the method sets
    /// its level (and, with `stages`, its records).
    #[serde(default)]
    pub rules: Vec<AuditRuleConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRuleConfig {
    /// Globs over `package.Service/Method`.
    pub methods: Vec<String>,
    pub level: AuditLevel,
    /// Which records: `completed` (one) or `both` (received and completed).
    /// Unset: both for a change, one for a read.
    pub stages: Option<AuditStages>,
}

/// The records of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditStages {
    /// One record, when the call completes.
    Completed,
    /// A "received" record before the backend, and a "completed" one.
    Both,
}

fn default_fsync() -> FsyncPolicy {
    FsyncPolicy::Group
}
fn default_group_commit_ms() -> u64 {
    5
}
fn default_group_commit_records() -> usize {
    256
}
fn default_max_file_bytes() -> u64 {
    100 * 1024 * 1024
}
fn default_max_files() -> usize {
    50
}
fn default_max_queue_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_anchor_interval_seconds() -> u64 {
    60
}
fn default_usernames() -> UsernameHandling {
    UsernameHandling::Clear
}
fn default_audit_level() -> AuditLevel {
    AuditLevel::Request
}
fn default_read_level() -> AuditLevel {
    AuditLevel::Metadata
}

impl AuditConfig {
    fn validate(&self, err: &mut impl FnMut(&str, String)) {
        if self.file.is_none() && !self.stdout {
            err(
                "audit",
                "names no sink: set audit.file, audit.stdout = true, or both".into(),
            );
        }
        if !(1..=1000).contains(&self.group_commit_ms) {
            err(
                "audit.group_commit_ms",
                format!("{} must be between 1 and 1000", self.group_commit_ms),
            );
        }
        if !(1..=65_536).contains(&self.group_commit_records) {
            err(
                "audit.group_commit_records",
                format!("{} must be between 1 and 65536", self.group_commit_records),
            );
        }
        if self.max_file_bytes < 4096 {
            err(
                "audit.max_file_bytes",
                format!("{} must be at least 4096", self.max_file_bytes),
            );
        }
        check_range(
            err,
            "audit.anchor_interval_seconds",
            self.anchor_interval_seconds,
            1,
            MAX_SECONDS,
        );
        check_range(err, "audit.max_files", self.max_files, 1, 1_000_000);
        check_range(
            err,
            "audit.max_queue_bytes",
            self.max_queue_bytes,
            1024 * 1024,
            16 * 1024 * 1024 * 1024,
        );
        if let Some(k) = &self.fingerprint_key_file {
            match std::fs::metadata(k) {
                Ok(m) if m.len() >= 16 => {}
                Ok(_) => err(
                    "audit.fingerprint_key_file",
                    format!("{} holds fewer than 16 bytes", k.display()),
                ),
                Err(e) => err(
                    "audit.fingerprint_key_file",
                    format!("{} is not readable: {e}", k.display()),
                ),
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            if r.methods.is_empty() || r.methods.iter().any(|g| g.is_empty()) {
                err(
                    &format!("audit.rules[{i}].methods"),
                    "must list at least one non-empty glob (\"*\" for all)".into(),
                );
            }
        }
    }
}

/// The most a budget may admit per second; more is a typo, not a limit.
pub const MAX_RATE_PER_SECOND: f64 = 1_000_000.0;
/// The least: one call per 1,000 s. Less is a typo, and a rate near 0 makes
/// an emission interval no clock can hold.
pub const MIN_RATE_PER_SECOND: f64 = 0.001;

fn check_rate(err: &mut impl FnMut(&str, String), key: &str, per_second: f64) {
    if !(per_second.is_finite()
        && (MIN_RATE_PER_SECOND..=MAX_RATE_PER_SECOND).contains(&per_second))
    {
        err(
            key,
            format!(
                "{per_second:?} must be a number of calls per second from {MIN_RATE_PER_SECOND} to {MAX_RATE_PER_SECOND}"
            ),
        );
    }
}

impl LimitsConfig {
    fn validate(&self, err: &mut impl FnMut(&str, String)) {
        fn rate(err: &mut impl FnMut(&str, String), key: &str, r: &RateConfig) {
            check_rate(err, &format!("{key}.per_second"), r.per_second);
            if r.burst == 0 {
                err(&format!("{key}.burst"), "must be at least 1".into());
            }
        }
        rate(err, "limits.default", &self.default);
        for (method, r) in &self.methods {
            let key = format!("limits.methods.\"{method}\"");
            if !crate::call::ops::method::ALL.contains(&method.as_str()) {
                err(
                    &key,
                    format!(
                        "{method:?} is not a method of this service; known: {}",
                        crate::call::ops::method::ALL.join(", ")
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
            ("limits.quota.user_resource_update", q.user_resource_update),
            ("limits.quota.user_read", q.user_read),
            ("limits.quota.per_pool_operation", q.per_pool_operation),
            ("limits.quota.per_user_write", q.per_user_write),
            ("limits.quota.per_user_read", q.per_user_read),
        ] {
            check_rate(err, key, value);
        }
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
            if !(1..=64).contains(&r.pool_size) {
                err(
                    "limits.redis.pool_size",
                    format!("{} must be between 1 and 64", r.pool_size),
                );
            }
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
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// `[limits.default]`: each (principal, method) without its own entry.
    #[serde(default = "default_rate")]
    pub default: RateConfig,
    /// `[limits.methods."cognito.mfa.v1.Service/Method"]`: per method.
    #[serde(default)]
    pub methods: BTreeMap<String, RateConfig>,
    /// `[limits.quota]`: Cognito's request-rate quotas (COGNITO.md §4).
    #[serde(default)]
    pub quota: QuotaConfig,
    /// `[limits.redis]`: the budgets shared by every replica.
    pub redis: Option<RedisConfig>,
    /// How often keys whose bucket has refilled are dropped, so that
    /// memory follows the callers active now, not every caller ever seen.
    #[serde(default = "default_sweep_interval_seconds")]
    pub sweep_interval_seconds: u64,
    /// `[limits.unauthenticated]`: the budget of refusals before
    /// authentication, per peer address.
    #[serde(default)]
    pub unauthenticated: UnauthenticatedConfig,
}

/// Calls refused before authentication (no or wrong credentials), per peer
/// (an IPv4 address, or an IPv6 /64) and across all peers. Within the budget each refusal is UNAUTHENTICATED with an
/// audit record; past it the refusal is RESOURCE_EXHAUSTED with RetryInfo
/// and no record of its own, and one summary record per peer per
/// `summary_interval_seconds` counts what was suppressed. Calls with valid
/// credentials never spend it and are never refused by it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnauthenticatedConfig {
    #[serde(default = "default_unauthenticated_per_second")]
    pub per_second: f64,
    #[serde(default = "default_unauthenticated_burst")]
    pub burst: u32,
    /// Peers tracked at once; a new peer past it shares one overflow budget.
    #[serde(default = "default_unauthenticated_max_peers")]
    pub max_peers: usize,
    /// All peers together: what bounds the audit volume of many at once.
    #[serde(default = "default_unauthenticated_global_per_second")]
    pub global_per_second: f64,
    #[serde(default = "default_unauthenticated_global_burst")]
    pub global_burst: u32,
    #[serde(default = "default_unauthenticated_summary_interval_seconds")]
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
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Unset: on with the cognito backend, off with the local one (which
    /// has no quota to protect; set `true` to rehearse throttling locally).
    pub enabled: Option<bool>,
    /// SetUserPoolMfaConfig, account-wide.
    #[serde(default = "default_user_pool_resource_update")]
    pub user_pool_resource_update: f64,
    /// GetUserPoolMfaConfig, account-wide.
    #[serde(default = "default_user_pool_resource_read")]
    pub user_pool_resource_read: f64,
    /// Set/AdminSetUserMFAPreference, Associate/VerifySoftwareToken,
    /// AdminDeleteSoftwareToken, account-wide.
    #[serde(default = "default_user_resource_update")]
    pub user_resource_update: f64,
    /// GetUser, AdminGetUser, account-wide.
    #[serde(default = "default_user_read")]
    pub user_read: f64,
    /// Each UserPoolResource* operation on one user pool.
    #[serde(default = "default_per_pool_operation")]
    pub per_pool_operation: f64,
    /// Writes about one end user (username, or the access token's sub).
    #[serde(default = "default_per_user")]
    pub per_user_write: f64,
    /// Reads about one end user.
    #[serde(default = "default_per_user")]
    pub per_user_read: f64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            user_pool_resource_update: default_user_pool_resource_update(),
            user_pool_resource_read: default_user_pool_resource_read(),
            user_resource_update: default_user_resource_update(),
            user_read: default_user_read(),
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
fn default_user_resource_update() -> f64 {
    25.0
}
fn default_user_read() -> f64 {
    120.0
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

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM.
    pub cert_file: PathBuf,
    /// The server's private key, PEM.
    pub key_file: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to.
    pub client_ca_file: Option<PathBuf>,
    /// Refuse connections without a client certificate (at the handshake).
    /// False: a client certificate is one way in among the others.
    #[serde(default)]
    pub client_cert_required: bool,
    /// Put before every principal a client certificate proves (its SPIFFE
    /// ID or CN), e.g. `mtls:`; policy rules name the prefixed form.
    #[serde(default)]
    pub principal_prefix: String,
    /// Take the subject CN as the principal even when the certificate has
    /// SANs. False (the default): the CN only of a certificate with no SAN.
    #[serde(default)]
    pub cn_with_sans: bool,
}

/// Who may call: `[auth]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `[[auth.api_keys]]`: callers proven by the `x-api-key` header.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// Server reflection without credentials (grpcurl list/describe). Health
    /// is always open.
    #[serde(default = "default_true")]
    pub open_reflection: bool,
    /// `[auth.jwt]`: callers proven by a JWT bearer token.
    pub jwt: Option<JwtConfig>,
    /// More `[[api_keys]]` in a file of their own (e.g. a Kubernetes
    /// Secret), added to the ones above.
    pub api_keys_file: Option<PathBuf>,
    /// How often the config file, the keys file and the JWKS file are
    /// checked for changes; SIGHUP reloads at once.
    #[serde(default = "default_reload_interval_seconds")]
    pub reload_interval_seconds: u64,
}

fn default_reload_interval_seconds() -> u64 {
    2
}

/// The keys file: `[[api_keys]]` entries and nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeysFile {
    #[serde(default)]
    api_keys: Vec<ApiKeyConfig>,
}

/// JWT bearer tokens checked against a JWKS.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// A JWKS file (e.g. the cluster's /openid/v1/jwks, mounted).
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL, e.g. https://kubernetes.default.svc/openid/v1/jwks.
    /// https, or http to a loopback address only.
    pub jwks_url: Option<String>,
    /// Extra CA certificates (PEM) to trust for `jwks_url`, e.g. the
    /// cluster's /var/run/secrets/kubernetes.io/serviceaccount/ca.crt.
    pub jwks_ca_file: Option<PathBuf>,
    /// A file whose content is sent as `Authorization: Bearer` when fetching
    /// `jwks_url` (the pod's own service-account token, re-read each fetch).
    pub jwks_bearer_token_file: Option<PathBuf>,
    /// Required `iss`.
    pub issuer: String,
    /// Accepted `aud` values; a token must carry one of them.
    pub audiences: Vec<String>,
    /// The claim that names the principal.
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    /// Allowed algorithms: asymmetric only (RS*, PS*, ES256, ES384, EdDSA).
    #[serde(default = "default_jwt_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on exp and nbf, at most 300 s.
    #[serde(default = "default_leeway_seconds")]
    pub leeway_seconds: u64,
    /// How often the JWKS is re-read.
    #[serde(default = "default_refresh_seconds")]
    pub refresh_seconds: u64,
    /// The least time between two re-reads caused by unknown kids.
    #[serde(default = "default_min_refetch_seconds")]
    pub min_refetch_seconds: u64,
    /// Put before every principal a token proves, e.g. `oidc:` (as
    /// Kubernetes' `--oidc-username-prefix`); policy rules name the
    /// prefixed form.
    #[serde(default)]
    pub principal_prefix: String,
    /// Accepted header `typ` values, compared without case and without an
    /// `application/` prefix (e.g. `["at+jwt"]`). Empty (the default): any,
    /// or none.
    #[serde(default)]
    pub allowed_types: Vec<String>,
    /// Claims a token must carry with exactly these string values, e.g.
    /// `{ token_use = "access" }` for Cognito-style access tokens.
    #[serde(default)]
    pub required_claims: BTreeMap<String, String>,
    /// The largest JWKS document read (from the file or the URL).
    #[serde(default = "default_max_jwks_bytes")]
    pub max_jwks_bytes: usize,
    /// How long the last good JWKS keeps verifying tokens while every
    /// refresh fails; past it, bearer tokens are refused.
    #[serde(default = "default_max_stale_seconds")]
    pub max_stale_seconds: u64,
}

/// Default `auth.jwt.max_jwks_bytes`.
pub const DEFAULT_MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Default `auth.jwt.max_stale_seconds`.
pub const DEFAULT_MAX_STALE_SECONDS: u64 = 24 * 3600;

fn default_max_jwks_bytes() -> usize {
    DEFAULT_MAX_JWKS_BYTES
}
fn default_max_stale_seconds() -> u64 {
    DEFAULT_MAX_STALE_SECONDS
}

/// Default clock-skew leeway for JWT exp/nbf.
pub const DEFAULT_JWT_LEEWAY_SECONDS: u64 = 30;
/// The largest leeway a configuration may set.
pub const MAX_JWT_LEEWAY_SECONDS: u64 = 300;

fn default_principal_claim() -> String {
    "sub".into()
}
fn default_jwt_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}
fn default_leeway_seconds() -> u64 {
    DEFAULT_JWT_LEEWAY_SECONDS
}
fn default_refresh_seconds() -> u64 {
    300
}
fn default_min_refetch_seconds() -> u64 {
    30
}

impl Default for JwtConfig {
    /// Every default, with no JWKS, issuer or audience: a base for code
    /// that builds a configuration (tests); a file must name all three.
    fn default() -> Self {
        Self {
            jwks_file: None,
            jwks_url: None,
            jwks_ca_file: None,
            jwks_bearer_token_file: None,
            issuer: String::new(),
            audiences: Vec::new(),
            principal_claim: default_principal_claim(),
            algorithms: default_jwt_algorithms(),
            leeway_seconds: default_leeway_seconds(),
            refresh_seconds: default_refresh_seconds(),
            min_refetch_seconds: default_min_refetch_seconds(),
            principal_prefix: String::new(),
            allowed_types: Vec::new(),
            required_claims: BTreeMap::new(),
            max_jwks_bytes: DEFAULT_MAX_JWKS_BYTES,
            max_stale_seconds: DEFAULT_MAX_STALE_SECONDS,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            api_keys: Vec::new(),
            open_reflection: true,
            jwt: None,
            api_keys_file: None,
            reload_interval_seconds: default_reload_interval_seconds(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The caller's name, as policy rules and audit records see it.
    pub principal: String,
    /// Lower-case hex SHA-256 of the key (`mfa-facade hash-key` prints it).
    pub sha256: String,
}

/// What callers may do: `[policy]`. Deny by default.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub rules: Vec<PolicyRuleConfig>,
}

/// `[[policy.rules]]`: grants every principal matching `principals` every
/// method matching `methods` on every user pool matching `user_pools`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRuleConfig {
    pub principals: Vec<String>,
    pub methods: Vec<String>,
    pub user_pools: Vec<String>,
    /// How the principal must have been proven: any of `api_key`, `jwt`,
    /// `mtls`. Empty (the default): any of them.
    #[serde(default)]
    pub proven_by: Vec<String>,
}

/// The names `policy.rules[].proven_by` takes.
pub const PROVEN_BY: [&str; 3] = ["api_key", "jwt", "mtls"];

fn default_true() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The embedded backend: Cognito's rules, state in `data_file`.
    #[default]
    Local,
    /// Amazon Cognito through the AWS SDK.
    Cognito,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    #[serde(default)]
    pub kind: BackendKind,
    /// local backend: where pools, users and settings persist.
    #[serde(default = "default_data_file")]
    pub data_file: PathBuf,
    /// cognito: the AWS Region. Unset: the SDK's chain (AWS_REGION, profile),
    /// then [`DEFAULT_REGION`]. local: the Region in the ids of new pools
    /// (default [`DEFAULT_REGION`]).
    pub region: Option<String>,
    /// cognito: another endpoint, e.g. a local emulator. Unset: AWS's own.
    pub endpoint_url: Option<String>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_attempt_timeout_ms")]
    pub attempt_timeout_ms: u64,
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// local: the most user pools the data file holds (fixtures CreateUserPool).
    #[serde(default = "default_max_pools")]
    pub max_pools: usize,
    /// local: the most users one pool holds (fixtures CreateUser).
    #[serde(default = "default_max_users_per_pool")]
    pub max_users_per_pool: usize,
    /// local: the most attributes one user carries.
    #[serde(default = "default_max_user_attributes")]
    pub max_user_attributes: usize,
    /// local: the most bytes of one user's attribute names and values together.
    #[serde(default = "default_max_user_attribute_bytes")]
    pub max_user_attribute_bytes: usize,
    /// local: the most MFA_SETUP sessions alive at once (each lives 180 s).
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
}

/// Default `backend.max_pools`.
pub const DEFAULT_MAX_POOLS: usize = 1_000;
/// Default `backend.max_users_per_pool`.
pub const DEFAULT_MAX_USERS_PER_POOL: usize = 10_000;
/// Default `backend.max_user_attributes` (Cognito: 50 custom beside ~20 standard).
pub const DEFAULT_MAX_USER_ATTRIBUTES: usize = 100;
/// Default `backend.max_user_attribute_bytes`.
pub const DEFAULT_MAX_USER_ATTRIBUTE_BYTES: usize = 16 * 1024;
/// Default `backend.max_sessions`.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;

fn default_max_pools() -> usize {
    DEFAULT_MAX_POOLS
}
fn default_max_users_per_pool() -> usize {
    DEFAULT_MAX_USERS_PER_POOL
}
fn default_max_user_attributes() -> usize {
    DEFAULT_MAX_USER_ATTRIBUTES
}
fn default_max_user_attribute_bytes() -> usize {
    DEFAULT_MAX_USER_ATTRIBUTE_BYTES
}
fn default_max_sessions() -> usize {
    DEFAULT_MAX_SESSIONS
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            kind: BackendKind::default(),
            data_file: default_data_file(),
            region: None,
            endpoint_url: None,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            attempt_timeout_ms: DEFAULT_ATTEMPT_TIMEOUT_MS,
            call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_pools: DEFAULT_MAX_POOLS,
            max_users_per_pool: DEFAULT_MAX_USERS_PER_POOL,
            max_user_attributes: DEFAULT_MAX_USER_ATTRIBUTES,
            max_user_attribute_bytes: DEFAULT_MAX_USER_ATTRIBUTE_BYTES,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }
}

impl BackendConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn attempt_timeout(&self) -> Duration {
        Duration::from_millis(self.attempt_timeout_ms)
    }
    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 50051)))
}
fn default_metrics_listen() -> SocketAddr {
    DEFAULT_METRICS_LISTEN
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9464)))
}
fn default_data_file() -> PathBuf {
    PathBuf::from("mfa-facade-data.json")
}
fn default_connect_timeout_ms() -> u64 {
    DEFAULT_CONNECT_TIMEOUT_MS
}
fn default_attempt_timeout_ms() -> u64 {
    DEFAULT_ATTEMPT_TIMEOUT_MS
}
fn default_call_timeout_ms() -> u64 {
    DEFAULT_CALL_TIMEOUT_MS
}
fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}

/// One problem with the configuration, with the key it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            metrics_listen: default_metrics_listen(),
            backend: BackendConfig::default(),
            auth: AuthConfig::default(),
            policy: PolicyConfig::default(),
            tls: None,
            limits: LimitsConfig::default(),
            audit: None,
            server: ServerConfig::default(),
        }
    }
}

impl Config {
    /// Parses TOML text, applies the overrides in `env`, and validates.
    /// Returns every problem found, each naming its key.
    pub fn from_toml_and_env<I>(text: &str, env: I) -> Result<Config, Vec<ConfigError>>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut value: toml::Table = toml::from_str(text).map_err(|e| {
            vec![ConfigError {
                key: "(file)".into(),
                message: e.message().to_owned(),
            }]
        })?;
        apply_env(&mut value, env)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(value)).map_err(|e| {
                let key = e.path().to_string();
                vec![ConfigError {
                    key: if key == "." {
                        "(top level)".into()
                    } else {
                        key
                    },
                    message: e.into_inner().to_string(),
                }]
            })?;
        let errors = config.validate();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    /// Reads `path` (or nothing, for the defaults), the process
    /// environment, and `auth.api_keys_file` if set.
    pub fn load(path: Option<&std::path::Path>) -> Result<Config, Vec<ConfigError>> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| {
                vec![ConfigError {
                    key: "(file)".into(),
                    message: format!("cannot read {}: {e}", p.display()),
                }]
            })?,
            None => String::new(),
        };
        let mut config = Self::from_toml_and_env(&text, std::env::vars())?;
        if let Some(keys_path) = config.auth.api_keys_file.clone() {
            let keys_error = |message: String| {
                vec![ConfigError {
                    key: "auth.api_keys_file".into(),
                    message,
                }]
            };
            let text = std::fs::read_to_string(&keys_path)
                .map_err(|e| keys_error(format!("cannot read {}: {e}", keys_path.display())))?;
            let file: ApiKeysFile = toml::from_str(&text)
                .map_err(|e| keys_error(format!("{}: {}", keys_path.display(), e.message())))?;
            config.auth.api_keys.extend(file.api_keys);
            let errors = config.validate();
            if !errors.is_empty() {
                return Err(errors);
            }
        }
        Ok(config)
    }

    /// The files whose change reloads keys, JWKS and policy.
    pub fn watched_files(&self, config_path: &std::path::Path) -> Vec<PathBuf> {
        let mut files = vec![config_path.to_owned()];
        files.extend(self.auth.api_keys_file.clone());
        files.extend(self.auth.jwt.as_ref().and_then(|j| j.jwks_file.clone()));
        files
    }

    /// The rules serde cannot express.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut err = |key: &str, message: String| {
            errors.push(ConfigError {
                key: key.into(),
                message,
            })
        };
        let b = &self.backend;
        if let Some(region) = &b.region
            && (region.is_empty()
                || !region
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            err(
                "backend.region",
                format!("{region:?} is not an AWS Region name (e.g. us-east-1)"),
            );
        }
        if let Some(url) = &b.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            err(
                "backend.endpoint_url",
                format!("{url:?} must be an http:// or https:// URL"),
            );
        }
        for (key, value) in [
            ("backend.connect_timeout_ms", b.connect_timeout_ms),
            ("backend.attempt_timeout_ms", b.attempt_timeout_ms),
            ("backend.call_timeout_ms", b.call_timeout_ms),
        ] {
            if value == 0 || value > 600_000 {
                err(
                    key,
                    format!("{value} must be between 1 and 600000 milliseconds"),
                );
            }
        }
        if b.attempt_timeout_ms > b.call_timeout_ms {
            err(
                "backend.attempt_timeout_ms",
                format!(
                    "{} is longer than backend.call_timeout_ms ({}): no attempt could use it",
                    b.attempt_timeout_ms, b.call_timeout_ms
                ),
            );
        }
        for (key, value, max) in [
            ("backend.max_pools", b.max_pools, 100_000),
            (
                "backend.max_users_per_pool",
                b.max_users_per_pool,
                1_000_000,
            ),
            ("backend.max_user_attributes", b.max_user_attributes, 1_000),
            (
                "backend.max_user_attribute_bytes",
                b.max_user_attribute_bytes,
                1024 * 1024,
            ),
            ("backend.max_sessions", b.max_sessions, 1_000_000),
        ] {
            check_range(&mut err, key, value, 1, max);
        }
        if !(1..=10).contains(&b.max_attempts) {
            err(
                "backend.max_attempts",
                format!("{} must be between 1 and 10", b.max_attempts),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (i, k) in self.auth.api_keys.iter().enumerate() {
            if k.principal.trim().is_empty() {
                err(
                    &format!("auth.api_keys[{i}].principal"),
                    "must name the caller".into(),
                );
            }
            let is_hash = k.sha256.len() == 64
                && k.sha256
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
            if !is_hash {
                err(
                    &format!("auth.api_keys[{i}].sha256"),
                    "must be 64 lower-case hex characters (`mfa-facade hash-key` prints it)".into(),
                );
            } else if !seen.insert(k.sha256.clone()) {
                err(
                    &format!("auth.api_keys[{i}].sha256"),
                    "the same key is configured twice".into(),
                );
            }
        }
        if let Some(j) = &self.auth.jwt {
            match (&j.jwks_file, &j.jwks_url) {
                (Some(_), Some(_)) => {
                    err("auth.jwt", "give jwks_file or jwks_url, not both".into())
                }
                (None, None) => err(
                    "auth.jwt.jwks_file",
                    "is required (the JWKS to verify tokens with)".into(),
                ),
                (None, Some(url)) => {
                    if let Err(why) = crate::auth::jwt::check_jwks_url(url) {
                        err("auth.jwt.jwks_url", why);
                    }
                }
                (Some(_), None) => {}
            }
            if j.issuer.trim().is_empty() {
                err("auth.jwt.issuer", "is required".into());
            }
            if j.audiences.is_empty() || j.audiences.iter().any(|a| a.is_empty()) {
                err(
                    "auth.jwt.audiences",
                    "must list at least one audience; tokens without one are refused".into(),
                );
            }
            if j.principal_claim.is_empty() {
                err("auth.jwt.principal_claim", "must name a claim".into());
            }
            if j.algorithms.is_empty() {
                err(
                    "auth.jwt.algorithms",
                    "must allow at least one algorithm".into(),
                );
            }
            for a in &j.algorithms {
                if crate::auth::jwt::parse_algorithm(a).is_none() {
                    err(
                        "auth.jwt.algorithms",
                        format!(
                            "{a:?} is not allowed: only asymmetric algorithms ({}); never none or HS*",
                            crate::auth::jwt::ASYMMETRIC.join(", ")
                        ),
                    );
                }
            }
            if j.leeway_seconds > MAX_JWT_LEEWAY_SECONDS {
                err(
                    "auth.jwt.leeway_seconds",
                    format!("{} is more than {MAX_JWT_LEEWAY_SECONDS}", j.leeway_seconds),
                );
            }
            check_range(
                &mut err,
                "auth.jwt.refresh_seconds",
                j.refresh_seconds,
                10,
                MAX_SECONDS,
            );
            check_range(
                &mut err,
                "auth.jwt.min_refetch_seconds",
                j.min_refetch_seconds,
                1,
                MAX_SECONDS,
            );
            check_range(
                &mut err,
                "auth.jwt.max_jwks_bytes",
                j.max_jwks_bytes,
                1024,
                16 * 1024 * 1024,
            );
            check_range(
                &mut err,
                "auth.jwt.max_stale_seconds",
                j.max_stale_seconds,
                0,
                MAX_SECONDS,
            );
            if j.principal_prefix.len() > 64 {
                err(
                    "auth.jwt.principal_prefix",
                    "is at most 64 characters".into(),
                );
            }
            if j.allowed_types.iter().any(|t| t.trim().is_empty()) {
                err(
                    "auth.jwt.allowed_types",
                    "must not hold an empty type".into(),
                );
            }
            for (claim, value) in &j.required_claims {
                if claim.is_empty() || value.is_empty() {
                    err(
                        "auth.jwt.required_claims",
                        format!("{claim:?} = {value:?}: claim and value must not be empty"),
                    );
                }
            }
        }
        if let Some(t) = &self.tls {
            for (key, path) in [
                ("tls.cert_file", Some(&t.cert_file)),
                ("tls.key_file", Some(&t.key_file)),
                ("tls.client_ca_file", t.client_ca_file.as_ref()),
            ] {
                if let Some(path) = path
                    && !path.is_file()
                {
                    err(key, format!("{} is not a readable file", path.display()));
                }
            }
            if t.client_cert_required && t.client_ca_file.is_none() {
                err(
                    "tls.client_cert_required",
                    "needs tls.client_ca_file".into(),
                );
            }
            if t.principal_prefix.len() > 64 {
                err("tls.principal_prefix", "is at most 64 characters".into());
            }
        }
        check_range(
            &mut err,
            "auth.reload_interval_seconds",
            self.auth.reload_interval_seconds,
            1,
            MAX_SECONDS,
        );
        for (i, r) in self.policy.rules.iter().enumerate() {
            for (name, globs) in [
                ("principals", &r.principals),
                ("methods", &r.methods),
                ("user_pools", &r.user_pools),
            ] {
                if globs.is_empty() || globs.iter().any(|g| g.is_empty()) {
                    err(
                        &format!("policy.rules[{i}].{name}"),
                        "must list at least one non-empty glob (\"*\" for all)".into(),
                    );
                }
            }
            for p in &r.proven_by {
                if !PROVEN_BY.contains(&p.as_str()) {
                    err(
                        &format!("policy.rules[{i}].proven_by"),
                        format!("{p:?} is not one of {}", PROVEN_BY.join(", ")),
                    );
                }
            }
        }
        self.limits.validate(&mut err);
        if let Some(a) = &self.audit {
            a.validate(&mut err);
        }
        self.server.validate(&mut err);
        errors
    }
}

impl Config {
    /// Grants that may reach further than they read, for `check-config` and
    /// the start-up log: a rule granting an API key's principal name also
    /// grants a bearer token or a client certificate that proves the same
    /// name, unless a prefix or the rule's `proven_by` keeps them apart.
    pub fn warnings(&self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        let jwt = self.auth.jwt.as_ref().map(|j| {
            (
                j.principal_prefix.as_str(),
                format!("a bearer token whose {} claim is", j.principal_claim),
            )
        });
        let mtls = self
            .tls
            .as_ref()
            .filter(|t| t.client_ca_file.is_some())
            .map(|t| {
                (
                    t.principal_prefix.as_str(),
                    "a client certificate naming".to_owned(),
                )
            });
        for (i, r) in self.policy.rules.iter().enumerate() {
            for k in &self.auth.api_keys {
                if !r
                    .principals
                    .iter()
                    .any(|g| crate::glob::glob_match(g, &k.principal, None))
                {
                    continue;
                }
                for (proof, other) in [("jwt", &jwt), ("mtls", &mtls)] {
                    let Some((prefix, what)) = other else {
                        continue;
                    };
                    if !r.proven_by.is_empty() && !r.proven_by.iter().any(|p| p == proof) {
                        continue;
                    }
                    if let Some(rest) = k.principal.strip_prefix(prefix) {
                        out.push(ConfigError {
                            key: format!("policy.rules[{i}].principals"),
                            message: format!(
                                "grants the API key principal {:?}; {what} {rest:?} is the same principal and gets the same grant: set proven_by = [\"api_key\"] on the rule, or a principal_prefix for {proof}",
                                k.principal
                            ),
                        });
                    }
                }
            }
        }
        out
    }
}

/// Sets each overridable key whose variable is present. A value that parses
/// as a TOML scalar (number, boolean) is taken as one, else as a string.
fn apply_env<I>(table: &mut toml::Table, env: I) -> Result<(), Vec<ConfigError>>
where
    I: IntoIterator<Item = (String, String)>,
{
    let env: std::collections::HashMap<String, String> = env.into_iter().collect();
    for key in ENV_KEYS {
        let var = format!("{ENV_PREFIX}{}", key.replace('.', "_").to_uppercase());
        let Some(raw) = env.get(&var) else { continue };
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(|v| !v.is_table() && !v.is_array())
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut node = &mut *table;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_owned(), value.clone());
                break;
            }
            let child = node
                .entry(part.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = child.as_table_mut().ok_or_else(|| {
                vec![ConfigError {
                    key: part.to_owned(),
                    message: format!("must be a table for {var} to override {key}"),
                }]
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let c = Config::from_toml_and_env("", no_env()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.metrics_listen.to_string(), DEFAULT_METRICS_LISTEN);
        assert_eq!(c.backend.kind, BackendKind::Local);
        assert_eq!(c.backend.max_attempts, DEFAULT_MAX_ATTEMPTS);
    }

    #[test]
    fn the_operator_contract_keys_parse() {
        let text = r#"
            listen = "127.0.0.1:6000"
            metrics_listen = "127.0.0.1:6001"
            [backend]
            kind = "cognito"
            data_file = "x.json"
            region = "eu-west-1"
            endpoint_url = "http://127.0.0.1:5000"
        "#;
        let c = Config::from_toml_and_env(text, no_env()).unwrap();
        assert_eq!(c.listen.port(), 6000);
        assert_eq!(c.backend.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            c.backend.endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
    }

    #[test]
    fn limits_parse_and_every_bad_key_is_named() {
        let text = r#"
            [limits.default]
            per_second = 50
            burst = 100
            [limits.methods."cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig"]
            per_second = 0.5
            burst = 1
            [limits.quota]
            enabled = true
            [limits.redis]
            url = "redis://127.0.0.1:6379/0"
        "#;
        let c = Config::from_toml_and_env(text, no_env()).unwrap();
        assert_eq!(c.limits.default.per_second, 50.0);
        assert_eq!(c.limits.quota.user_pool_resource_update, 15.0);
        assert_eq!(c.limits.quota.enabled, Some(true));
        let redis = c.limits.redis.as_ref().unwrap();
        assert_eq!((redis.timeout_ms, redis.fallback_share), (25, 1.0));

        let env = vec![(
            "MFA_FACADE_LIMITS_REDIS_URL".to_owned(),
            "redis://10.0.0.5:6379".to_owned(),
        )];
        let c = Config::from_toml_and_env("", env).unwrap();
        assert_eq!(c.limits.redis.unwrap().url, "redis://10.0.0.5:6379");

        let bad = r#"
            [limits.default]
            per_second = 0
            burst = 0
            [limits.methods."cognito.mfa.v1.UserPoolMfaService/Nope"]
            per_second = 1
            burst = 1
            [limits.quota]
            user_read = -1
            [limits.redis]
            url = "http://127.0.0.1:6379"
            timeout_ms = 100
            fallback_share = 2
        "#;
        let keys: Vec<String> = Config::from_toml_and_env(bad, no_env())
            .unwrap_err()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            keys,
            [
                "limits.default.per_second",
                "limits.default.burst",
                "limits.methods.\"cognito.mfa.v1.UserPoolMfaService/Nope\"",
                "limits.quota.user_read",
                "limits.redis.url",
                "limits.redis.timeout_ms",
                "limits.redis.fallback_share",
            ]
        );
    }

    #[test]
    fn audit_parses_and_every_bad_key_is_named() {
        let text = r#"
            [audit]
            file = "audit.jsonl"
            fsync = "record"
            [[audit.rules]]
            methods = ["cognito.mfa.v1.UserMfaService/*Get*"]
            level = "metadata"
        "#;
        let c = Config::from_toml_and_env(text, no_env()).unwrap();
        let a = c.audit.unwrap();
        assert_eq!(a.fsync, FsyncPolicy::Record);
        assert!(a.fail_closed, "fail_closed defaults to true");
        assert_eq!(a.default_level, AuditLevel::Request);
        assert_eq!(
            a.read_level,
            AuditLevel::Metadata,
            "reads: metadata by default"
        );
        assert_eq!(a.rules[0].level, AuditLevel::Metadata);
        assert_eq!(a.rules[0].stages, None);
        let raised = text.replace(
            "level = \"metadata\"",
            "level = \"request\"\nstages = \"both\"",
        );
        let c = Config::from_toml_and_env(&raised, no_env()).unwrap();
        assert_eq!(c.audit.unwrap().rules[0].stages, Some(AuditStages::Both));

        let bad = r#"
            [audit]
            group_commit_ms = 0
            max_file_bytes = 10
            fingerprint_key_file = "/nonexistent/key"
            [[audit.rules]]
            methods = []
            level = "metadata"
        "#;
        let keys: Vec<String> = Config::from_toml_and_env(bad, no_env())
            .unwrap_err()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            keys,
            [
                "audit",
                "audit.group_commit_ms",
                "audit.max_file_bytes",
                "audit.fingerprint_key_file",
                "audit.rules[0].methods",
            ]
        );
        let unknown = "[audit]\nfile = \"a\"\nlevel = \"everything\"\n";
        assert!(Config::from_toml_and_env(unknown, no_env()).is_err());
    }

    #[test]
    fn env_overrides_the_file() {
        let env = vec![
            ("MFA_FACADE_LISTEN".to_owned(), "127.0.0.1:7000".to_owned()),
            ("MFA_FACADE_BACKEND_MAX_ATTEMPTS".to_owned(), "5".to_owned()),
            (
                "MFA_FACADE_BACKEND_ENDPOINT_URL".to_owned(),
                "http://127.0.0.1:9".to_owned(),
            ),
        ];
        let c = Config::from_toml_and_env("listen = \"127.0.0.1:1\"", env).unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.backend.max_attempts, 5);
        assert_eq!(
            c.backend.endpoint_url.as_deref(),
            Some("http://127.0.0.1:9")
        );
    }

    #[test]
    fn auth_and_policy_parse_and_are_checked() {
        let text = r#"
            [[auth.api_keys]]
            principal = "billing-svc"
            sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            [[policy.rules]]
            principals = ["billing-svc"]
            methods = ["cognito.mfa.v1.UserPoolMfaService/*"]
            user_pools = ["us-east-1_*"]
        "#;
        let c = Config::from_toml_and_env(text, no_env()).unwrap();
        assert_eq!(c.auth.api_keys[0].principal, "billing-svc");
        assert!(c.auth.open_reflection);
        assert_eq!(c.policy.rules[0].user_pools, ["us-east-1_*"]);

        let bad = r#"
            [[auth.api_keys]]
            principal = ""
            sha256 = "not-hex"
            [[policy.rules]]
            principals = ["x"]
            methods = []
            user_pools = ["*"]
        "#;
        let keys: Vec<_> = Config::from_toml_and_env(bad, no_env())
            .unwrap_err()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            keys,
            [
                "auth.api_keys[0].principal",
                "auth.api_keys[0].sha256",
                "policy.rules[0].methods"
            ]
        );
        let missing_pools = "[[policy.rules]]\nprincipals = [\"x\"]\nmethods = [\"*\"]\n";
        let e = Config::from_toml_and_env(missing_pools, no_env()).unwrap_err();
        assert!(e[0].key.starts_with("policy.rules"), "{e:?}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml_and_env("[backend]\nregoin = \"x\"", no_env()).unwrap_err();
        assert_eq!(e[0].key, "backend.regoin");
        assert!(e[0].message.contains("regoin"), "{e:?}");

        let e = Config::from_toml_and_env("listen = \"not an address\"", no_env()).unwrap_err();
        assert_eq!(e[0].key, "listen");

        let text = "[backend]\nendpoint_url = \"127.0.0.1:5000\"\nmax_attempts = 0\nattempt_timeout_ms = 0";
        let e = Config::from_toml_and_env(text, no_env()).unwrap_err();
        let keys: Vec<_> = e.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "backend.endpoint_url",
                "backend.attempt_timeout_ms",
                "backend.max_attempts"
            ]
        );

        let e = Config::from_toml_and_env("[backend]\nkind = \"dynamo\"", no_env()).unwrap_err();
        assert_eq!(e[0].key, "backend.kind");
    }
}

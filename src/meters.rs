//! Every metric the service exports, in one place: its name, its labels
//! and what it means. Stages record through the functions here, never
//! through the `metrics` macros themselves (a test holds that), so the list
//! below is the whole of `/metrics`; [`describe`] gives each its `# HELP`.
//!
//! Labels are bounded by construction: `method` is a served method's name
//! (or `unknown`), `code` a gRPC code, `limit` a configured limit's name,
//! `backend` a backend's name, `exception` a Cognito exception name, and
//! `reason` one of a fixed few.

use metrics::{Counter, Histogram, counter, gauge, histogram};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One exported metric.
#[derive(Clone, Copy, Debug)]
pub struct Meter {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

const fn meter(name: &'static str, kind: Kind, help: &'static str) -> Meter {
    Meter { name, kind, help }
}

pub const GRPC_CALLS: Meter = meter(
    "mfa_facade_grpc_calls_total",
    Kind::Counter,
    "Calls answered, by method and gRPC code.",
);
pub const GRPC_SECONDS: Meter = meter(
    "mfa_facade_grpc_server_seconds",
    Kind::Histogram,
    "Seconds from a call's arrival to the end of its response stream, by method.",
);
pub const RATE_LIMITED: Meter = meter(
    "mfa_facade_rate_limited_total",
    Kind::Counter,
    "Calls refused by a rate limit, by method and limit.",
);
pub const QUOTA_WAITS: Meter = meter(
    "mfa_facade_quota_waits_total",
    Kind::Counter,
    "Waits for Cognito's quota by a call that paces the Cognito calls it finds it must make (AdminResetUserMfa's devices), by method and limit.",
);
pub const POOL_DRIFT: Meter = meter(
    "mfa_facade_pool_drift_total",
    Kind::Counter,
    "Changes of a pool's MFA configuration made behind the facade's back and recorded as external changes, by the [history] watch_pools glob that covers the pool (\"(unwatched)\" for a pool no glob names: seen on a read).",
);
pub const GRPC_WEB_REFUSED: Meter = meter(
    "mfa_facade_grpc_web_refused_total",
    Kind::Counter,
    "Browser requests refused before authentication by [server.grpc_web]: reason origin (a call from an origin not on allowed_origins), preflight_origin (its preflight), headers (HTTP/1.1 headers past server.max_header_list_bytes).",
);
pub const UPSTREAM_SECONDS: Meter = meter(
    "mfa_facade_upstream_seconds",
    Kind::Histogram,
    "Seconds in the backend per call, by method and backend.",
);
pub const UPSTREAM_THROTTLED: Meter = meter(
    "mfa_facade_upstream_throttled_total",
    Kind::Counter,
    "Calls Cognito throttled, by method and Cognito exception.",
);
pub const CONNECTIONS_OPEN: Meter = meter(
    "mfa_facade_connections_open",
    Kind::Gauge,
    "Connections open now.",
);
pub const CONNECTIONS_REFUSED: Meter = meter(
    "mfa_facade_connections_refused_total",
    Kind::Counter,
    "Connections closed at once because server.max_connections were open.",
);
pub const CALLS_SHED: Meter = meter(
    "mfa_facade_calls_shed_total",
    Kind::Counter,
    "Calls refused because server.max_concurrent_calls were in flight.",
);
pub const UNAUTHENTICATED_SUPPRESSED: Meter = meter(
    "mfa_facade_unauthenticated_suppressed_total",
    Kind::Counter,
    "Refusals before authentication past a peer's budget, summarized instead of recorded one by one.",
);
pub const RATELIMIT_KEYS: Meter = meter(
    "mfa_facade_ratelimit_keys",
    Kind::Gauge,
    "Rate-limit buckets held in this process.",
);
pub const REDIS_FALLBACK: Meter = meter(
    "mfa_facade_ratelimit_redis_fallback",
    Kind::Gauge,
    "1 while Redis is unavailable and limits are decided in this process.",
);
pub const REDIS_FALLBACKS: Meter = meter(
    "mfa_facade_ratelimit_redis_fallbacks_total",
    Kind::Counter,
    "Times Redis was lost and limits fell back to this process.",
);
pub const JWKS_KEYS: Meter = meter(
    "mfa_facade_jwks_keys",
    Kind::Gauge,
    "Keys in the last JWKS read.",
);
pub const JWKS_LAST_SUCCESS: Meter = meter(
    "mfa_facade_jwks_last_success_timestamp_seconds",
    Kind::Gauge,
    "Unix time of the last successful JWKS read.",
);
pub const JWKS_STALE: Meter = meter(
    "mfa_facade_jwks_stale",
    Kind::Gauge,
    "1 while the JWKS could not be refreshed and the last good one is used.",
);
pub const JWKS_REFRESH_FAILURES: Meter = meter(
    "mfa_facade_jwks_refresh_failures_total",
    Kind::Counter,
    "JWKS reads that failed.",
);
pub const JWKS_REFETCHES: Meter = meter(
    "mfa_facade_jwks_refetches_total",
    Kind::Counter,
    "JWKS reads made early, for a token naming an unknown kid.",
);
pub const JWKS_STALE_VERIFICATIONS: Meter = meter(
    "mfa_facade_jwks_stale_verifications_total",
    Kind::Counter,
    "Tokens verified against a stale JWKS.",
);
pub const AUDIT_WRITER_UP: Meter = meter(
    "mfa_facade_audit_writer_up",
    Kind::Gauge,
    "1 while the audit writer runs.",
);
pub const AUDIT_WRITER_STOPPED: Meter = meter(
    "mfa_facade_audit_writer_stopped_total",
    Kind::Counter,
    "Times the audit writer stopped other than at exit, by reason.",
);
pub const AUDIT_DROPPED: Meter = meter(
    "mfa_facade_audit_dropped_total",
    Kind::Counter,
    "Audit records refused because the writer was overloaded or stopped.",
);
pub const AUDIT_WAIT_TIMED_OUT: Meter = meter(
    "mfa_facade_audit_wait_timed_out_total",
    Kind::Counter,
    "Waits for a durable audit record that reached the call's deadline.",
);
pub const AUDIT_FILES_DELETED: Meter = meter(
    "mfa_facade_audit_files_deleted_total",
    Kind::Counter,
    "Audit files deleted past audit.max_files.",
);
pub const AUDIT_RECORDS: Meter = meter(
    "mfa_facade_audit_records_total",
    Kind::Counter,
    "Audit records written.",
);
pub const AUDIT_WRITE_SECONDS: Meter = meter(
    "mfa_facade_audit_write_seconds",
    Kind::Histogram,
    "Seconds to write (and sync, as audit.fsync says) one batch of audit records.",
);
pub const AUDIT_FAILURES: Meter = meter(
    "mfa_facade_audit_failures_total",
    Kind::Counter,
    "Audit records that could not be written.",
);

/// Every metric, for [`describe`] and the docs.
pub const ALL: &[Meter] = &[
    GRPC_CALLS,
    GRPC_SECONDS,
    RATE_LIMITED,
    QUOTA_WAITS,
    POOL_DRIFT,
    GRPC_WEB_REFUSED,
    UPSTREAM_SECONDS,
    UPSTREAM_THROTTLED,
    CONNECTIONS_OPEN,
    CONNECTIONS_REFUSED,
    CALLS_SHED,
    UNAUTHENTICATED_SUPPRESSED,
    RATELIMIT_KEYS,
    REDIS_FALLBACK,
    REDIS_FALLBACKS,
    JWKS_KEYS,
    JWKS_LAST_SUCCESS,
    JWKS_STALE,
    JWKS_REFRESH_FAILURES,
    JWKS_REFETCHES,
    JWKS_STALE_VERIFICATIONS,
    AUDIT_WRITER_UP,
    AUDIT_WRITER_STOPPED,
    AUDIT_DROPPED,
    AUDIT_WAIT_TIMED_OUT,
    AUDIT_FILES_DELETED,
    AUDIT_RECORDS,
    AUDIT_WRITE_SECONDS,
    AUDIT_FAILURES,
];

/// The upper bounds, in seconds, of every histogram's buckets (all three
/// measure seconds): from half a millisecond (a local read) to 30 s (the
/// server's deadline). Buckets, not quantile summaries: a fleet's replicas'
/// buckets add up (`histogram_quantile(0.99, sum by (le) (rate(..._bucket[5m])))`),
/// their summaries' quantiles cannot be combined; and a sample costs a bucket
/// increment where a summary's sketch takes a logarithm.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Gives every metric its help text (once the recorder is installed).
pub fn describe() {
    for m in ALL {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.help),
        }
    }
}

// ---- calls ---------------------------------------------------------------

/// The handle counting `method`'s calls answered with `code`.
pub fn grpc_calls(method: &'static str, code: &'static str) -> Counter {
    counter!(GRPC_CALLS.name, "method" => method, "code" => code)
}

/// The handle timing `method`'s calls.
pub fn grpc_seconds(method: &'static str) -> Histogram {
    histogram!(GRPC_SECONDS.name, "method" => method)
}

pub fn rate_limited(method: &'static str, limit: String) {
    counter!(RATE_LIMITED.name, "method" => method, "limit" => limit).increment(1);
}

pub fn quota_waited(method: &'static str, limit: String) {
    counter!(QUOTA_WAITS.name, "method" => method, "limit" => limit).increment(1);
}

pub fn grpc_web_refused(reason: &'static str) {
    counter!(GRPC_WEB_REFUSED.name, "reason" => reason).increment(1);
}

pub fn pool_drift(pools: String) {
    counter!(POOL_DRIFT.name, "pools" => pools).increment(1);
}

pub fn upstream_seconds(method: &'static str, backend: &'static str, seconds: f64) {
    // The handle of each (method, backend) pair, kept per thread: the macro
    // would build and look up its labelled key on every call. Found by the
    // labels' addresses (both are static; an equal label at another address
    // only adds an entry for the same series), so the few entries stay few.
    type Handles = std::cell::RefCell<Vec<(&'static str, &'static str, Histogram)>>;
    thread_local! {
        static HANDLES: Handles = const { std::cell::RefCell::new(Vec::new()) };
    }
    HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        let found = handles
            .iter()
            .find(|(m, b, _)| std::ptr::eq(*m, method) && std::ptr::eq(*b, backend));
        match found {
            Some((_, _, h)) => h.record(seconds),
            None => {
                let h = histogram!(UPSTREAM_SECONDS.name, "method" => method, "backend" => backend);
                h.record(seconds);
                handles.push((method, backend, h));
            }
        }
    });
}

pub fn upstream_throttled(method: &'static str, exception: String) {
    counter!(UPSTREAM_THROTTLED.name, "method" => method, "exception" => exception).increment(1);
}

// ---- transport and overload ------------------------------------------------

pub fn connection_opened() {
    gauge!(CONNECTIONS_OPEN.name).increment(1.0);
}

pub fn connection_closed() {
    gauge!(CONNECTIONS_OPEN.name).decrement(1.0);
}

pub fn connection_refused() {
    counter!(CONNECTIONS_REFUSED.name).increment(1);
}

pub fn call_shed() {
    counter!(CALLS_SHED.name).increment(1);
}

pub fn unauthenticated_suppressed() {
    counter!(UNAUTHENTICATED_SUPPRESSED.name).increment(1);
}

// ---- rate limits -----------------------------------------------------------

pub fn ratelimit_keys(keys: usize) {
    gauge!(RATELIMIT_KEYS.name).set(keys as f64);
}

/// Redis lost (`true`) or back (`false`).
pub fn redis_fallback(active: bool) {
    gauge!(REDIS_FALLBACK.name).set(if active { 1.0 } else { 0.0 });
}

pub fn redis_fallback_started() {
    counter!(REDIS_FALLBACKS.name).increment(1);
}

// ---- JWKS ------------------------------------------------------------------

/// A JWKS read that succeeded with `keys` keys.
pub fn jwks_loaded(keys: usize) {
    gauge!(JWKS_KEYS.name).set(keys as f64);
    gauge!(JWKS_LAST_SUCCESS.name).set(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    );
    gauge!(JWKS_STALE.name).set(0.0);
}

pub fn jwks_refresh_failed() {
    counter!(JWKS_REFRESH_FAILURES.name).increment(1);
    gauge!(JWKS_STALE.name).set(1.0);
}

pub fn jwks_refetched() {
    counter!(JWKS_REFETCHES.name).increment(1);
}

pub fn jwks_stale_verification() {
    counter!(JWKS_STALE_VERIFICATIONS.name).increment(1);
}

// ---- audit -----------------------------------------------------------------

pub fn audit_writer_up(up: bool) {
    gauge!(AUDIT_WRITER_UP.name).set(if up { 1.0 } else { 0.0 });
}

pub fn audit_writer_stopped(reason: &'static str) {
    counter!(AUDIT_WRITER_STOPPED.name, "reason" => reason).increment(1);
}

pub fn audit_dropped() {
    counter!(AUDIT_DROPPED.name).increment(1);
}

pub fn audit_wait_timed_out() {
    counter!(AUDIT_WAIT_TIMED_OUT.name).increment(1);
}

pub fn audit_file_deleted() {
    counter!(AUDIT_FILES_DELETED.name).increment(1);
}

/// A batch of `records` written in `seconds`.
pub fn audit_written(records: usize, seconds: f64) {
    counter!(AUDIT_RECORDS.name).increment(records as u64);
    histogram!(AUDIT_WRITE_SECONDS.name).record(seconds);
}

pub fn audit_failed(records: usize) {
    counter!(AUDIT_FAILURES.name).increment(records as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are unique, Prometheus-shaped, counters end in `_total`;
    /// and no file but this one records a metric directly.
    #[test]
    fn every_metric_is_listed_here_once() {
        let mut names: Vec<&str> = ALL.iter().map(|m| m.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a name listed twice");
        for m in ALL {
            assert!(m.name.starts_with("mfa_facade_"), "{}", m.name);
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
            assert!(!m.help.is_empty(), "{}", m.name);
        }
        let mut all = Vec::new();
        crate::layers::rust_files(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut all,
        );
        for f in all {
            if f.ends_with("meters.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            for mac in ["counter!(", "gauge!(", "histogram!("] {
                assert!(
                    !text.contains(&format!("metrics::{mac}")),
                    "{} records a metric itself ({mac}); add it to src/meters.rs",
                    f.display()
                );
            }
            // Nor names one: the names live here.
            for m in ALL {
                assert!(
                    !text.contains(&format!("\"{}\"", m.name)),
                    "{} names {}; record it through src/meters.rs",
                    f.display(),
                    m.name
                );
            }
        }
    }
}

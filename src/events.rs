//! Every line the service logs, in one place and in one voice. Each is a
//! struct named for what happened; its `emit` writes one JSON line —
//! `event` (a stable snake_case name, for alerts, dashboards and tests),
//! `message` (a sentence, for people), then its fields — and counts it where
//! a metric counts it (through [`crate::meters`]), so the log and the
//! metrics cannot tell two stories. A line's `target` is the stage the
//! event belongs to, for `RUST_LOG` filters (`RUST_LOG=mfa_facade::limits=debug`).
//!
//! Nothing outside this file calls `tracing`'s macros (a test holds that:
//! clippy's `disallowed-macros` cannot be allowed for this file alone, it
//! reports the macros inside `line!`'s expansion whatever the `allow`), so
//! [`NAMES`] is the log's whole vocabulary. No field here carries a
//! secret: a token, a key or a code never reaches an event.

use std::{fmt::Display, net::SocketAddr, path::Path, time::Duration};

use crate::error::Error;

/// Writes one line: `event`, `message`, then the fields as given.
macro_rules! line {
    ($level:ident, $target:literal, $event:expr, $message:literal $(, $($field:tt)+)?) => {
        tracing::$level!(target: $target, event = $event, message = $message $(, $($field)+)?)
    };
}

/// Every event name, once.
pub const NAMES: &[&str] = &[
    "call_completed",
    "call_failed",
    "call_refused",
    "call_unauthenticated",
    "call_unauthenticated_suppressed",
    "call_denied",
    "audit_completed_not_durable",
    "connection_refused",
    "ratelimit_redis_invalid",
    "ratelimit_redis_connected",
    "ratelimit_redis_restored",
    "ratelimit_fallback",
    "jwks_loaded",
    "jwks_refresh_failed",
    "config_warning",
    "config_reloaded",
    "config_reload_refused",
    "no_callers",
    "cognito_client_built",
    "cognito_unknown_mfa_mode",
    "audit_off",
    "audit_random_fingerprint_key",
    "audit_writer_stopped",
    "audit_torn_tail",
    "audit_file_mode",
    "audit_file_deleted",
    "audit_file_delete_failed",
    "audit_write_failed",
    "audit_flush_failed",
    "metrics_serving",
    "metrics_server_failed",
    "serving",
    "ready",
    "tracing_exporting",
    "not_ready",
    "account_credentials",
    "not_serving_audit_stopped",
    "not_serving_audit_stalled",
    "serving_audit_recovered",
    "deployment_secret_of_this_process",
    "call_abandoned",
    "audit_signing_key_made",
    "audit_object_put_failed",
    "audit_checkpoint_not_signed",
    "shutdown_signal",
    "draining",
    "drain_timeout",
    "stopped",
    "stopped_with_error",
];

// ---- calls -----------------------------------------------------------------

/// The outcome of one call, logged once by the call pipeline: completed
/// (OK), refused (the caller's error: info) or failed (the service's or
/// Cognito's: warn, with the detail the caller was not given).
pub struct CallCompleted<'a> {
    pub method: &'static str,
    pub request_id: &'a str,
    pub principal: &'a str,
    pub backend: &'static str,
    pub result: Result<(), &'a Error>,
    pub latency: Duration,
    /// The call's trace (`telemetry::trace`): the caller's or ours.
    pub trace_id: Option<&'a str>,
    /// Our server span's, when the call was sampled.
    pub span_id: Option<&'a str>,
}

impl CallCompleted<'_> {
    pub fn emit(self) {
        let latency_ms = self.latency.as_secs_f64() * 1000.0;
        let Err(error) = self.result else {
            line!(
                info,
                "mfa_facade::call",
                "call_completed",
                "Call completed.",
                method = self.method,
                request_id = self.request_id,
                principal = self.principal,
                backend = self.backend,
                code = "OK",
                latency_ms,
                trace_id = self.trace_id,
                span_id = self.span_id
            );
            return;
        };
        let code = crate::error::code_name(error.code());
        let cognito_exception = error.cognito_exception().unwrap_or("");
        if matches!(
            error,
            Error::Internal(_) | Error::Unavailable(_) | Error::UpstreamFailed { .. }
        ) {
            line!(warn, "mfa_facade::call", "call_failed", "Call failed.",
                method = self.method, request_id = self.request_id, principal = self.principal,
                backend = self.backend, code, cognito_exception, latency_ms, %error,
                detail = error.log_detail().unwrap_or(""), trace_id = self.trace_id,
                span_id = self.span_id);
        } else {
            line!(info, "mfa_facade::call", "call_refused", "Call refused.",
                method = self.method, request_id = self.request_id, principal = self.principal,
                backend = self.backend, code, cognito_exception, latency_ms, %error,
                trace_id = self.trace_id, span_id = self.span_id);
        }
    }
}

/// A call without valid credentials, refused at the door and audited.
pub struct CallUnauthenticated<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub reason: &'a str,
    pub trace_id: Option<&'a str>,
}

impl CallUnauthenticated<'_> {
    pub fn emit(self) {
        line!(
            info,
            "mfa_facade::call",
            "call_unauthenticated",
            "Call unauthenticated.",
            request_id = self.request_id,
            method = self.method,
            code = "UNAUTHENTICATED",
            reason = self.reason,
            trace_id = self.trace_id
        );
    }
}

/// A call without valid credentials from a peer past its budget of them:
/// refused without an audit record (at debug: a flood writes no log either).
pub struct CallUnauthenticatedSuppressed<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
}

impl CallUnauthenticatedSuppressed<'_> {
    pub fn emit(self) {
        crate::meters::unauthenticated_suppressed();
        line!(
            debug,
            "mfa_facade::call",
            "call_unauthenticated_suppressed",
            "Call unauthenticated; the peer is past its budget, so it is not audited.",
            request_id = self.request_id,
            method = self.method,
            code = "RESOURCE_EXHAUSTED"
        );
    }
}

/// An authenticated call to a method its principal may not call (a method
/// that names no pool; the pipeline decides the others).
pub struct CallDenied<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub principal: &'a str,
    pub trace_id: Option<&'a str>,
}

impl CallDenied<'_> {
    pub fn emit(self) {
        line!(
            info,
            "mfa_facade::call",
            "call_denied",
            "Call denied.",
            request_id = self.request_id,
            method = self.method,
            principal = self.principal,
            code = "PERMISSION_DENIED",
            trace_id = self.trace_id
        );
    }
}

/// A change was made and answered, but its completed record did not
/// become durable.
pub struct AuditCompletedNotDurable<'a> {
    pub method: &'static str,
    pub request_id: &'a str,
    pub error: &'a dyn Display,
}

impl AuditCompletedNotDurable<'_> {
    pub fn emit(self) {
        line!(error, "mfa_facade::call", "audit_completed_not_durable",
            "The call's completed audit record could not be made durable.",
            method = self.method, request_id = self.request_id, error = %self.error);
    }
}

/// A call that ended before its completed record was written (its record
/// was written as it was dropped).
pub struct CallAbandoned<'a> {
    pub call_id: &'a str,
    pub code: &'static str,
}

impl CallAbandoned<'_> {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::audit",
            "call_abandoned",
            "A call ended before it completed (client gone, deadline, drain or panic); its completed record says so.",
            call_id = self.call_id,
            code = self.code
        );
    }
}

/// A checkpoint could not be signed (KMS unreachable): skipped; the next
/// one seals the head.
pub struct AuditCheckpointNotSigned<'a> {
    pub error: &'a str,
}

impl AuditCheckpointNotSigned<'_> {
    pub fn emit(self) {
        line!(
            error,
            "mfa_facade::audit",
            "audit_checkpoint_not_signed",
            "A checkpoint could not be signed and was skipped; the next one seals the chain.",
            error = self.error
        );
    }
}

/// A put into `[audit.s3]` failed; the writer tries again (backoff).
pub struct AuditS3PutFailed<'a> {
    pub error: &'a str,
}

impl AuditS3PutFailed<'_> {
    pub fn emit(self) {
        line!(
            error,
            "mfa_facade::audit",
            "audit_object_put_failed",
            "A put of audit records into S3 failed; it is tried again until it lands.",
            error = self.error
        );
    }
}

/// Development: `[audit.signing]` without a key on the local backend.
pub struct AuditSigningKeyMade<'a> {
    pub path: &'a std::path::Path,
    pub key_id: &'a str,
}

impl AuditSigningKeyMade<'_> {
    pub fn emit(self) {
        let path = self.path.display().to_string();
        line!(
            warn,
            "mfa_facade::audit",
            "audit_signing_key_made",
            "Development: made an audit signing key beside the data file (its public key is PATH.pub); production names key_file.",
            path,
            key_id = self.key_id
        );
    }
}

/// No `[server] secret_file` and no local data file to derive one from.
pub struct DeploymentSecretOfThisProcess;

impl DeploymentSecretOfThisProcess {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::server",
            "deployment_secret_of_this_process",
            "No [server] secret_file: walk cursors resume only on this replica, and etags leave the ExternalId's value out. Give every replica the same secret_file."
        );
    }
}

// ---- limits ----------------------------------------------------------------

/// A connection past `server.max_connections`, closed at accept.
pub struct ConnectionRefused {
    pub peer: Option<SocketAddr>,
    pub max_connections: usize,
}

impl ConnectionRefused {
    pub fn emit(self) {
        crate::meters::connection_refused();
        let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
        line!(
            warn,
            "mfa_facade::limits",
            "connection_refused",
            "Connection refused: server.max_connections are open.",
            peer,
            max_connections = self.max_connections
        );
    }
}

/// `limits.redis.url` cannot be used at all.
pub struct RedisInvalid<'a> {
    pub redis: &'a str,
    pub error: &'a dyn Display,
}

impl RedisInvalid<'_> {
    pub fn emit(self) {
        line!(error, "mfa_facade::limits", "ratelimit_redis_invalid",
            "limits.redis.url is unusable; limits are decided in this process only.",
            redis = self.redis, error = %self.error);
    }
}

/// Redis answers: at start (`restored: false`) or back after a fallback.
pub struct RedisConnected<'a> {
    pub redis: &'a str,
    pub restored: bool,
}

impl RedisConnected<'_> {
    pub fn emit(self) {
        crate::meters::redis_fallback(false);
        let event = if self.restored {
            "ratelimit_redis_restored"
        } else {
            "ratelimit_redis_connected"
        };
        line!(
            info,
            "mfa_facade::limits",
            event,
            "Rate limits are decided in Redis, for the whole fleet.",
            redis = self.redis
        );
    }
}

/// Redis is unavailable: limits are decided in this process. `started`:
/// it was answering until now (the fallbacks counter counts these).
pub struct RedisFallback<'a> {
    pub redis: &'a str,
    pub reason: &'a str,
    pub started: bool,
}

impl RedisFallback<'_> {
    pub fn emit(self) {
        if self.started {
            crate::meters::redis_fallback_started();
        }
        crate::meters::redis_fallback(true);
        line!(
            warn,
            "mfa_facade::limits",
            "ratelimit_fallback",
            "Redis is unavailable; rate limits are decided in this process until it is back.",
            redis = self.redis,
            reason = self.reason
        );
    }
}

// ---- auth and configuration --------------------------------------------------

/// The JWKS was read.
pub struct JwksLoaded {
    pub keys: usize,
}

impl JwksLoaded {
    pub fn emit(self) {
        crate::meters::jwks_loaded(self.keys);
        line!(
            debug,
            "mfa_facade::auth",
            "jwks_loaded",
            "JWKS loaded.",
            keys = self.keys
        );
    }
}

/// The JWKS could not be read; the last good one stays.
pub struct JwksRefreshFailed<'a> {
    pub error: &'a str,
}

impl JwksRefreshFailed<'_> {
    pub fn emit(self) {
        crate::meters::jwks_refresh_failed();
        line!(
            warn,
            "mfa_facade::auth",
            "jwks_refresh_failed",
            "JWKS could not be read; keeping the last good one.",
            error = self.error
        );
    }
}

/// A configuration that loads, with a key worth a second look.
pub struct ConfigWarning<'a> {
    pub key: &'a str,
    pub warning: &'a str,
}

impl ConfigWarning<'_> {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::config",
            "config_warning",
            "Configuration warning.",
            key = self.key,
            warning = self.warning
        );
    }
}

/// Keys, JWKS and policy reloaded (SIGHUP or a watched file changed).
pub struct ConfigReloaded<'a> {
    pub why: &'a str,
    pub api_keys: usize,
    pub policy_rules: usize,
}

impl ConfigReloaded<'_> {
    pub fn emit(self) {
        line!(
            info,
            "mfa_facade::config",
            "config_reloaded",
            "Keys, JWKS and policy reloaded.",
            why = self.why,
            api_keys = self.api_keys,
            policy_rules = self.policy_rules
        );
    }
}

/// A reload refused: the file has errors, the last good state stays.
pub struct ConfigReloadRefused<'a> {
    pub why: &'a str,
    pub errors: &'a str,
}

impl ConfigReloadRefused<'_> {
    pub fn emit(self) {
        line!(
            error,
            "mfa_facade::config",
            "config_reload_refused",
            "Reload refused: the configuration has errors; the last good keys and policy stay.",
            why = self.why,
            errors = self.errors
        );
    }
}

/// No API key and no JWT issuer: only health can be called.
pub struct NoCallers;

impl NoCallers {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::auth",
            "no_callers",
            "No callers are configured: every call except health will be refused. Add [[auth.api_keys]] and [[policy.rules]]."
        );
    }
}

// ---- backend -------------------------------------------------------------------

/// The cognito backend's SDK client, as built.
pub struct CognitoClientBuilt<'a> {
    pub region: &'a str,
    pub endpoint_url: &'a str,
    pub max_attempts: u32,
}

impl CognitoClientBuilt<'_> {
    pub fn emit(self) {
        line!(
            info,
            "mfa_facade::backend",
            "cognito_client_built",
            "Cognito client built.",
            region = self.region,
            endpoint_url = self.endpoint_url,
            max_attempts = self.max_attempts
        );
    }
}

/// Cognito answered with an MFA mode this build does not know.
pub struct CognitoUnknownMfaMode<'a> {
    pub value: &'a str,
}

impl CognitoUnknownMfaMode<'_> {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::backend",
            "cognito_unknown_mfa_mode",
            "Cognito returned an unknown MFA mode.",
            value = self.value
        );
    }
}

// ---- audit ---------------------------------------------------------------------

/// `[audit]` is not configured.
pub struct AuditOff;

impl AuditOff {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::audit",
            "audit_off",
            "[audit] is not configured: calls are not audited."
        );
    }
}

/// No `audit.fingerprint_key_file`: a random key for this process.
pub struct AuditRandomFingerprintKey;

impl AuditRandomFingerprintKey {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::audit",
            "audit_random_fingerprint_key",
            "audit.fingerprint_key_file is not set: fingerprints follow a token only within this process's records."
        );
    }
}

/// The audit writer thread ended (`reason`: `panicked` or `ended`).
pub struct AuditWriterStopped {
    pub reason: &'static str,
}

impl AuditWriterStopped {
    pub fn emit(self) {
        crate::meters::audit_writer_stopped(self.reason);
        line!(
            error,
            "mfa_facade::audit",
            "audit_writer_stopped",
            "The audit writer thread stopped: no record can be written.",
            reason = self.reason
        );
    }
}

/// At start: the file ended in a record whose write never finished (never
/// acknowledged); it is cut off.
pub struct AuditTornTail {
    pub bytes: u64,
}

impl AuditTornTail {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::audit",
            "audit_torn_tail",
            "Cutting off an unfinished last audit record.",
            bytes = self.bytes
        );
    }
}

/// The audit file can be read by others than its owner.
pub struct AuditFileMode<'a> {
    pub path: &'a Path,
}

impl AuditFileMode<'_> {
    pub fn emit(self) {
        line!(warn, "mfa_facade::audit", "audit_file_mode",
            "The audit file can be read by others than its owner (expected 0600).",
            path = %self.path.display());
    }
}

/// A rotated audit file past `audit.max_files`, deleted.
pub struct AuditFileDeleted<'a> {
    pub path: &'a Path,
    pub max_files: usize,
}

impl AuditFileDeleted<'_> {
    pub fn emit(self) {
        crate::meters::audit_file_deleted();
        line!(info, "mfa_facade::audit", "audit_file_deleted",
            "Deleted an audit file past audit.max_files.",
            path = %self.path.display(), max_files = self.max_files);
    }
}

/// A rotated audit file past `audit.max_files` that could not be deleted.
pub struct AuditFileDeleteFailed<'a> {
    pub path: &'a Path,
    pub error: &'a dyn Display,
}

impl AuditFileDeleteFailed<'_> {
    pub fn emit(self) {
        line!(warn, "mfa_facade::audit", "audit_file_delete_failed",
            "Cannot delete an audit file past audit.max_files.",
            path = %self.path.display(), error = %self.error);
    }
}

/// A batch of records that could not be written (the chain's head stays).
pub struct AuditWriteFailed<'a> {
    pub records: usize,
    pub error: &'a dyn Display,
}

impl AuditWriteFailed<'_> {
    pub fn emit(self) {
        crate::meters::audit_failed(self.records);
        line!(error, "mfa_facade::audit", "audit_write_failed",
            "Audit records could not be written.", records = self.records, error = %self.error);
    }
}

/// At exit: the last records could not be flushed.
pub struct AuditFlushFailed<'a> {
    pub error: &'a dyn Display,
}

impl AuditFlushFailed<'_> {
    pub fn emit(self) {
        line!(error, "mfa_facade::audit", "audit_flush_failed",
            "The last audit records may not be durable.", error = %self.error);
    }
}

// ---- the server's life ----------------------------------------------------------

/// `/metrics` is served.
pub struct MetricsServing<'a> {
    pub metrics_listen: &'a dyn Display,
}

impl MetricsServing<'_> {
    pub fn emit(self) {
        line!(info, "mfa_facade::telemetry", "metrics_serving", "Serving Prometheus metrics.",
            metrics_listen = %self.metrics_listen, path = "/metrics");
    }
}

/// The `/metrics` server stopped.
pub struct MetricsServerFailed<'a> {
    pub error: &'a dyn Display,
}

impl MetricsServerFailed<'_> {
    pub fn emit(self) {
        line!(error, "mfa_facade::telemetry", "metrics_server_failed",
            "The /metrics server stopped.", error = %self.error);
    }
}

/// gRPC is served.
pub struct Serving<'a> {
    pub listen: &'a dyn Display,
    pub backend: &'static str,
}

impl Serving<'_> {
    pub fn emit(self) {
        line!(info, "mfa_facade::server", "serving", "Serving gRPC.",
            listen = %self.listen, backend = self.backend);
    }
}

/// Health: SERVING (the backend answered).
pub struct Ready {
    pub backend: &'static str,
}

impl Ready {
    pub fn emit(self) {
        line!(
            info,
            "mfa_facade::server",
            "ready",
            "Health: SERVING.",
            backend = self.backend
        );
    }
}

/// `[tracing]` is set: spans go to this collector (host and port only:
/// an endpoint's user info is not logged).
pub struct TracingExporting<'a> {
    pub collector: &'a str,
    pub sampling_ratio: f64,
    pub parent_based: bool,
}

impl TracingExporting<'_> {
    pub fn emit(self) {
        line!(
            info,
            "mfa_facade::telemetry",
            "tracing_exporting",
            "Tracing: exporting spans over OTLP/gRPC.",
            collector = self.collector,
            sampling_ratio = self.sampling_ratio,
            parent_based = self.parent_based
        );
    }
}

/// Health: NOT_SERVING, the backend is not ready; tried again in 1 s.
pub struct NotReady<'a> {
    pub backend: &'static str,
    pub reason: &'a dyn Display,
}

impl NotReady<'_> {
    pub fn emit(self) {
        line!(warn, "mfa_facade::server", "not_ready",
            "Health: NOT_SERVING; trying again in 1 s.",
            backend = self.backend, reason = %self.reason);
    }
}

/// An account of `[[backend.accounts]]` gained or lost its credentials
/// (its role could, or could no longer, be assumed).
pub struct AccountCredentials<'a> {
    pub account: &'a str,
    pub result: Result<(), &'a str>,
}

impl AccountCredentials<'_> {
    pub fn emit(self) {
        match self.result {
            Ok(()) => line!(
                info,
                "mfa_facade::server",
                "account_credentials",
                "An account's role was assumed; its health is SERVING.",
                account = self.account,
                ok = true
            ),
            Err(reason) => line!(
                warn,
                "mfa_facade::server",
                "account_credentials",
                "An account's role could not be assumed; its health is NOT_SERVING.",
                account = self.account,
                ok = false,
                reason = reason
            ),
        }
    }
}

/// Health: NOT_SERVING for good, the audit writer stopped.
pub struct NotServingAuditStopped<'a> {
    pub reason: &'a str,
}

impl NotServingAuditStopped<'_> {
    pub fn emit(self) {
        line!(
            error,
            "mfa_facade::server",
            "not_serving_audit_stopped",
            "Health: NOT_SERVING; the audit writer stopped.",
            reason = self.reason
        );
    }
}

/// The audit writer has made nothing durable for `audit.stall_seconds`.
pub struct NotServingAuditStalled<'a> {
    pub reason: &'a str,
}

impl NotServingAuditStalled<'_> {
    pub fn emit(self) {
        line!(
            error,
            "mfa_facade::server",
            "not_serving_audit_stalled",
            "Health: NOT_SERVING; the audit writer has made nothing durable for audit.stall_seconds.",
            reason = self.reason
        );
    }
}

/// The audit writer writes again after a stall.
pub struct ServingAuditRecovered;

impl ServingAuditRecovered {
    pub fn emit(self) {
        line!(
            info,
            "mfa_facade::server",
            "serving_audit_recovered",
            "The audit writer makes records durable again; health follows the backend again."
        );
    }
}

/// SIGTERM or SIGINT.
pub struct ShutdownSignal;

impl ShutdownSignal {
    pub fn emit(self) {
        line!(
            info,
            "mfa_facade::server",
            "shutdown_signal",
            "Shutdown signal received; draining."
        );
    }
}

/// Health: NOT_SERVING, draining: new calls still served for the delay.
pub struct Draining {
    pub drain_delay: Duration,
}

impl Draining {
    pub fn emit(self) {
        let drain_delay_ms = u64::try_from(self.drain_delay.as_millis()).unwrap_or(u64::MAX);
        line!(
            info,
            "mfa_facade::server",
            "draining",
            "Health: NOT_SERVING; draining.",
            drain_delay_ms
        );
    }
}

/// The drain's time is up with connections still open.
pub struct DrainTimeout {
    pub drain_timeout: Duration,
}

impl DrainTimeout {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::server",
            "drain_timeout",
            "Drain time is up; exiting with connections still open.",
            drain_timeout_s = self.drain_timeout.as_secs()
        );
    }
}

/// The server stopped: cleanly, or with an error.
pub struct Stopped<'a> {
    pub error: Option<&'a dyn Display>,
}

impl Stopped<'_> {
    pub fn emit(self) {
        match self.error {
            None => line!(info, "mfa_facade::server", "stopped", "Server stopped."),
            Some(error) => line!(error, "mfa_facade::server", "stopped_with_error",
                "Server stopped with an error.", error = %error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NAMES;

    /// Names are unique and snake_case; every name is emitted here and no
    /// file but this one writes a log line itself.
    #[test]
    fn every_event_is_here_once() {
        let mut names = NAMES.to_vec();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "an event listed twice");
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let this = std::fs::read_to_string(src.join("events.rs")).unwrap();
        let code = this.split("#[cfg(test)]\nmod tests {").next().unwrap();
        for name in NAMES {
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            // Once in NAMES, once where it is written.
            let uses = code.matches(&format!("\"{name}\"")).count();
            assert!(uses >= 2, "{name} is never written");
        }
        let mut all = Vec::new();
        crate::layers::rust_files(&src, &mut all);
        // Every event's type is used outside this file: each name is
        // written by a `pub struct`'s emit, and that struct is built
        // somewhere (tests aside), else the event is never emitted.
        let elsewhere: String = all
            .iter()
            .filter(|f| !f.ends_with("events.rs"))
            .map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                text.split("#[cfg(test)]\nmod tests {")
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let mut emitted = 0;
        for part in code.split("\npub struct ").skip(1) {
            let ty: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let names: Vec<&str> = NAMES
                .iter()
                .copied()
                .filter(|n| part.contains(&format!("\"{n}\"")))
                .collect();
            assert!(!names.is_empty(), "{ty} writes no event of NAMES");
            let built = [" {", ".emit()", "\n"]
                .iter()
                .any(|after| elsewhere.contains(&format!("events::{ty}{after}")))
                || elsewhere.contains(&format!("{ty} {{"));
            assert!(
                built,
                "{ty} ({names:?}) is never emitted outside src/events.rs"
            );
            emitted += names.len();
        }
        assert!(
            emitted >= NAMES.len(),
            "every name belongs to an event type"
        );
        for f in all {
            if f.ends_with("events.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            // Tests may log to see how a line is written.
            let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
            for level in ["trace", "debug", "info", "warn", "error", "event"] {
                assert!(
                    !code.contains(&format!("tracing::{level}!(")),
                    "{} logs a line itself (tracing::{level}!); add an event to src/events.rs",
                    f.display()
                );
            }
        }
    }
}

//! Events: the server's life.

use super::*;

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

//! Events: calls.

use super::*;

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

//! Events: audit.

use super::*;

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

/// A change of a pool's MFA configuration made behind the facade's back
/// was recorded (`revision`: the history entry the facade knew before it).
pub struct PoolDriftRecorded<'a> {
    pub user_pool_id: &'a str,
    pub known_revision: &'a str,
    pub changed_fields: &'a [String],
}

impl PoolDriftRecorded<'_> {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::audit",
            "pool_drift_recorded",
            "A pool's MFA configuration was changed behind the facade's back; recorded as an external change in its history.",
            user_pool_id = self.user_pool_id,
            known_revision = self.known_revision,
            changed_fields = self.changed_fields.join(",").as_str()
        );
    }
}

/// An external change does not satisfy a guardrail whose action is warn.
pub struct PoolDriftGuardrail<'a> {
    pub user_pool_id: &'a str,
    pub guardrail: &'a str,
    pub message: &'a str,
}

impl PoolDriftGuardrail<'_> {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::audit",
            "pool_drift_guardrail",
            "A change made behind the facade's back does not satisfy a guardrail.",
            user_pool_id = self.user_pool_id,
            guardrail = self.guardrail,
            guardrail_message = self.message
        );
    }
}

/// A drift check of a pool could not finish (the history or Cognito could
/// not be read); the next check tries again.
pub struct PoolDriftCheckFailed<'a> {
    pub user_pool_id: &'a str,
    pub error: &'a str,
}

impl PoolDriftCheckFailed<'_> {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::audit",
            "pool_drift_check_failed",
            "A drift check of a pool could not finish; the next one tries again.",
            user_pool_id = self.user_pool_id,
            error = self.error
        );
    }
}

/// At start, history records of the audit file's last batch that its index
/// lacked (the last run was killed between them) were indexed.
pub struct AuditHistoryRepaired {
    pub entries: usize,
}

impl AuditHistoryRepaired {
    pub fn emit(self) {
        line!(
            warn,
            "mfa_facade::audit",
            "audit_history_repaired",
            "History records the last run wrote but did not index (it was killed between them) were indexed.",
            entries = self.entries
        );
    }
}

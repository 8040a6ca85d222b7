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

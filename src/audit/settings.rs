//! `[audit]`: where records go, how durable, how much they hold.

use std::path::PathBuf;

use serde::Deserialize;

use crate::settings::MAX_SECONDS;

/// How much of a call an audit record holds (Kubernetes' audit levels).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
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
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// fsync after every record.
    Record,
    /// fsync once per group: every `group_commit_ms` or
    /// `group_commit_records` records, whichever comes first. A record a
    /// caller waits for (a change under `fail_closed`) is not held for the
    /// group: it is synced with whatever is queued when it arrives, and the
    /// records that arrive during that fsync make the next group.
    Group,
}

/// How usernames appear in records.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UsernameHandling {
    /// As sent: an audit trail must say whose MFA changed.
    Clear,
    /// As a keyed fingerprint, for deployments whose audit store may not
    /// hold personal data.
    Fingerprint,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Append-only JSON lines, rotated by size.
    pub file: Option<PathBuf>,
    /// JSON lines on standard output.
    pub stdout: bool,
    /// The replica's name in every record and checkpoint (`source`): unset,
    /// `MFA_FACADE_AUDIT_SOURCE` (the manifests set it from the pod name),
    /// else the hostname. Letters, digits, `.`, `_` and `-`, at most 128.
    pub source: Option<String>,
    /// `[audit.signing]`: checkpoints signed with a key the log pipeline
    /// never sees. Unset: checkpoints are written unsigned.
    #[schemars(extend("x-production" = "signed checkpoints: a rewrite of the trail is detected"))]
    pub signing: Option<SigningConfig>,
    /// `[audit.s3]`: the fleet's shared sink, which acknowledges: records
    /// as objects never overwritten, in a bucket with Object Lock.
    #[schemars(extend("x-production" = "records leave the node, under Object Lock, before a change is answered: a dead node loses none"))]
    pub s3: Option<S3Config>,
    /// A mutating call reaches the backend only after its "received" record
    /// is durable, and answers only after its "completed" record is; a sink
    /// failure answers UNAVAILABLE and changes nothing.
    #[schemars(extend("x-production" = "a change is answered only once its record is durable"))]
    pub fail_closed: bool,
    pub fsync: FsyncPolicy,
    #[schemars(range(min = 1, max = 1000))]
    pub group_commit_ms: u64,
    #[schemars(range(min = 1, max = 65_536))]
    pub group_commit_records: usize,
    /// The file is rotated before it grows past this.
    #[schemars(range(min = 4096))]
    pub max_file_bytes: u64,
    /// Rotated files kept beside the live one; the oldest beyond this are
    /// deleted (after the rotation that made one more is durable). Retention
    /// is at most (`max_files` + 1) x `max_file_bytes`.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_files: usize,
    /// Bytes of records waiting for the writer at most; a record past it is
    /// dropped (counted), and a waiting change is refused (`fail_closed`).
    #[schemars(range(min = 1024 * 1024, max = 16 * 1024 * 1024 * 1024_u64))]
    pub max_queue_bytes: usize,
    /// How often the chain's head (seq and hash) is printed to stdout, as
    /// the outside anchor that catches a cut-off tail.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub anchor_interval_seconds: u64,
    /// A file holding the per-deployment key of the fingerprints (at least
    /// 16 bytes). Unset: a random key per process, so fingerprints follow a
    /// token within one process's records only.
    pub fingerprint_key_file: Option<PathBuf>,
    pub usernames: UsernameHandling,
    /// The level of changes (writes) no rule matches; they leave a
    /// "received" and a "completed" record.
    pub default_level: AuditLevel,
    /// The level of reads no rule matches; they leave one record, at
    /// completion (DESIGN.md §5).
    pub read_level: AuditLevel,
    /// Health turns NOT_SERVING (and `mfa_facade_audit_writer_up` 0) while
    /// the writer has made nothing durable for this long: one write that
    /// does not return (a stdout nobody reads), or every write failing.
    /// Both recover by themselves.
    #[schemars(range(min = 1, max = 3600))]
    pub stall_seconds: u64,
    /// `[[audit.rules]]`: the first rule whose globs match the method sets
    /// its level (and, with `stages`, its records).
    pub rules: Vec<AuditRuleConfig>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            file: None,
            stdout: false,
            source: None,
            signing: None,
            s3: None,
            fail_closed: true,
            fsync: FsyncPolicy::Group,
            group_commit_ms: 5,
            group_commit_records: 256,
            max_file_bytes: 100 * 1024 * 1024,
            max_files: 50,
            max_queue_bytes: 64 * 1024 * 1024,
            anchor_interval_seconds: 60,
            fingerprint_key_file: None,
            usernames: UsernameHandling::Clear,
            default_level: AuditLevel::Request,
            read_level: AuditLevel::Metadata,
            stall_seconds: DEFAULT_STALL_SECONDS,
            rules: Vec::new(),
        }
    }
}

/// `[history]`: a pool's MFA history (ListUserPoolMfaConfigHistory,
/// RestoreUserPoolMfaConfig; served from the audit store, so it needs
/// `[audit] file` or `[audit.s3]`) and the watch for changes made behind
/// the facade's back.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Pools (globs over pool ids, e.g. `eu-west-1_*`) whose configuration
    /// is read every `check_seconds` and compared with their history's
    /// newest entry; a difference is recorded once as an external change.
    /// Only pools with a history are watched (nothing is known of the
    /// others). Empty: no paced check; reads still notice a difference.
    #[schemars(length(max = 256))]
    pub watch_pools: Vec<String>,
    /// How often the watched pools are read.
    #[schemars(range(min = 1, max = 86_400))]
    pub check_seconds: u64,
    /// How long after a read that saw a configuration other than the one
    /// known the pool is read again and compared (a change another replica
    /// is making has its history entry by then).
    #[schemars(range(min = 0, max = 600_000))]
    pub grace_ms: u64,
}

/// `history.check_seconds` by default.
pub const DEFAULT_HISTORY_CHECK_SECONDS: u64 = 300;

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            watch_pools: Vec::new(),
            check_seconds: DEFAULT_HISTORY_CHECK_SECONDS,
            grace_ms: 5_000,
        }
    }
}

impl HistoryConfig {
    pub(crate) fn validate(&self, err: &mut impl FnMut(&str, String)) {
        if self
            .watch_pools
            .iter()
            .any(|g| g.is_empty() || g.len() > 128)
        {
            err(
                "history.watch_pools",
                "each glob must be 1 to 128 characters".into(),
            );
        }
    }
}

/// `[audit.signing]`.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SigningConfig {
    /// An Ed25519 private key, PKCS#8 PEM (e.g. from a Kubernetes Secret;
    /// `mfa-facade audit keygen FILE` makes one). Unset with the local
    /// backend: a key made beside its data file (development).
    pub key_file: Option<PathBuf>,
    /// An AWS KMS asymmetric key (ECC_NIST_P256, SIGN_VERIFY; its id, ARN
    /// or alias): each checkpoint is signed by KMS Sign (ECDSA_SHA_256), so
    /// the private key never leaves KMS. Needs `kms:Sign` and
    /// `kms:GetPublicKey` on it.
    pub kms_key_id: Option<String>,
    /// KMS's Region, when it is not the SDK's (AWS_REGION, the profile).
    pub region: Option<String>,
    /// A KMS-compatible endpoint instead of AWS (tests: moto).
    pub endpoint_url: Option<String>,
    /// A checkpoint seals the chain at least this often while it grows
    /// (and at start, at rotation and at drain).
    #[schemars(range(min = 1, max = 3600))]
    pub checkpoint_seconds: u64,
}

impl Default for SigningConfig {
    fn default() -> Self {
        Self {
            key_file: None,
            kms_key_id: None,
            region: None,
            endpoint_url: None,
            checkpoint_seconds: DEFAULT_CHECKPOINT_SECONDS,
        }
    }
}

/// `[audit.s3]`.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// A bucket with Object Lock on (compliance mode, a default retention
    /// the operator chooses): no one can delete or replace what is in it.
    pub bucket: String,
    /// Where under the bucket: `<prefix>records/…` and `<prefix>checkpoints/…`.
    #[serde(default = "default_s3_prefix")]
    pub prefix: String,
    /// Unset: the SDK's (AWS_REGION, the profile).
    pub region: Option<String>,
    /// An S3-compatible endpoint instead of AWS (tests: moto).
    pub endpoint_url: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), for endpoints that
    /// serve no virtual hosts (moto, MinIO).
    #[serde(default)]
    pub force_path_style: bool,
    /// Records no caller waits for (reads, refusals) are put within this
    /// long of their arrival, together; a change's record goes at once.
    #[serde(default = "default_flush_ms")]
    #[schemars(range(min = 1, max = 10_000))]
    pub flush_ms: u64,
    /// Records in one object at most (a put costs the same whatever it
    /// holds: at 256 a group, reads ran 0.64x the file sink's rate; at
    /// 4,096, 0.95x — bench/audit_s3.sh). Replaces `group_commit_records`
    /// with this sink.
    #[serde(default = "default_s3_group_records")]
    #[schemars(range(min = 1, max = 65_536))]
    pub group_records: usize,
}

/// `audit.s3.group_records` by default.
pub const DEFAULT_S3_GROUP_RECORDS: usize = 4096;
fn default_s3_group_records() -> usize {
    DEFAULT_S3_GROUP_RECORDS
}

/// `audit.s3.prefix` by default.
pub const DEFAULT_S3_PREFIX: &str = "mfa-facade/";
fn default_s3_prefix() -> String {
    DEFAULT_S3_PREFIX.to_owned()
}
/// `audit.s3.flush_ms` by default.
pub const DEFAULT_FLUSH_MS: u64 = 200;
fn default_flush_ms() -> u64 {
    DEFAULT_FLUSH_MS
}

/// `audit.signing.checkpoint_seconds` by default.
pub const DEFAULT_CHECKPOINT_SECONDS: u64 = 60;

/// The most bytes of a `source`.
pub const MAX_SOURCE_BYTES: usize = 128;
/// The environment variable a `source` comes from when the file sets none.
pub const SOURCE_ENV: &str = "MFA_FACADE_AUDIT_SOURCE";

/// Whether `s` can name a replica (it becomes part of object keys).
pub fn valid_source(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SOURCE_BYTES
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl AuditConfig {
    /// The replica's name: `source`, else `MFA_FACADE_AUDIT_SOURCE`, else
    /// the hostname, else "mfa-facade".
    pub fn resolved_source(&self) -> String {
        self.source
            .clone()
            .or_else(|| std::env::var(SOURCE_ENV).ok().filter(|s| !s.is_empty()))
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| valid_source(h))
            })
            .unwrap_or_else(|| "mfa-facade".to_owned())
    }
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
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
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AuditStages {
    /// One record, when the call completes.
    Completed,
    /// A "received" record before the backend, and a "completed" one.
    Both,
}

/// `audit.stall_seconds` by default.
pub const DEFAULT_STALL_SECONDS: u64 = 10;

impl AuditConfig {
    pub(crate) fn validate(&self, err: &mut impl FnMut(&str, String)) {
        if self.file.is_none() && !self.stdout && self.s3.is_none() {
            err(
                "audit",
                "names no sink: set audit.file, audit.stdout = true, [audit.s3], or several".into(),
            );
        }
        if let Some(s3) = &self.s3 {
            let bucket_ok = (3..=63).contains(&s3.bucket.len())
                && s3.bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                });
            if !bucket_ok {
                err(
                    "audit.s3.bucket",
                    format!(
                        "{:?} is not an S3 bucket name (3 to 63 of a-z, 0-9, '-', '.')",
                        s3.bucket
                    ),
                );
            }
            if !(s3.prefix.is_empty() || s3.prefix.ends_with('/')) || s3.prefix.len() > 256 {
                err(
                    "audit.s3.prefix",
                    format!(
                        "{:?} must be empty or end with '/', at most 256 bytes",
                        s3.prefix
                    ),
                );
            }
        }
        let source = self.resolved_source();
        if !valid_source(&source) {
            err(
                "audit.source",
                format!(
                    "{source:?} (or {SOURCE_ENV}) must be 1 to {MAX_SOURCE_BYTES} letters, digits, '.', '_' or '-'"
                ),
            );
        }
        if let Some(s) = &self.signing {
            if s.kms_key_id.is_some() && s.key_file.is_some() {
                err(
                    "audit.signing",
                    "names both key_file and kms_key_id: one key signs the checkpoints".into(),
                );
            }
            if s.kms_key_id
                .as_deref()
                .is_some_and(|k| k.is_empty() || k.len() > 2048)
            {
                err(
                    "audit.signing.kms_key_id",
                    "must be a KMS key id, ARN or alias (1 to 2,048 characters)".into(),
                );
            }
            if let Some(k) = &s.key_file
                && let Err(e) = super::seal::Signer::from_pem_file(k)
            {
                err("audit.signing.key_file", e);
            }
        }
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

#[cfg(test)]
mod defaults {
    use super::*;

    /// One set of defaults: an empty `[audit]` and `[audit.signing]` are
    /// their `Default`, and a typo is still refused.
    #[test]
    fn serde_and_default_agree() {
        crate::settings::assert_one_set_of_defaults::<AuditConfig>("stdot = true");
        crate::settings::assert_one_set_of_defaults::<SigningConfig>("checkpoint_secs = 1");
    }
}

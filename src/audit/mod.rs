//! Audit (DESIGN.md §5), in a SHA-256 hash chain, to a file and/or
//! stdout: a change leaves a "received" record (once it has passed
//! authorization, validation and its limits, before the backend) and a
//! "completed" one; a read, and a refusal at any stage, leave one
//! "completed" record ([`Auditor::plan`]; `[[audit.rules]]` may say
//! otherwise per method).
//!
//! - `chain`: canonical form, sealing, `audit verify`.
//! - `redact`: fingerprints and masks.
//! - `sink`: the writer thread, rotation, fsync policies.
//!
//! A record holds: `seq`, `prev_hash`, `hash`, `id`, `time`, `stage`
//! (received | completed), `call_id` (the same in both records of a change),
//! `request_id`, `principal` and `proven_by`, `peer`, `method`, `user_pool`,
//! `target_user`, `level`, then by level the redacted `request` and
//! `response`; a completed record adds `outcome` (`code`, `message`,
//! `cognito_error`, `aws_request_id`), `latency_us`, and for pool changes
//! `before` and `after`. A call refused by authentication has one record,
//! `completed`, without a principal.

mod aws;
pub mod bound;
pub mod chain;
pub mod history;
pub mod kms;
pub mod redact;
pub mod s3;
pub mod seal;
pub mod settings;
pub mod sink;
pub mod verify;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::domain::secret::{self, Fingerprinter as _};
use crate::error::{Error, code_name};
use crate::glob::any_method;
use chain::{Fields, key};
pub use redact::Redactor;
use settings::{AuditConfig, AuditLevel, AuditStages, UsernameHandling};
use sink::{Ack, Sink};

pub struct Auditor {
    sink: Option<Sink>,
    /// `audit.stall_seconds`.
    stall: Duration,
    /// The chain every record names: the replica and this process's run.
    source: String,
    run: String,
    /// The most bytes of a record: 64 KiB, or under 16 KiB when records go
    /// to stdout (container runtimes split longer lines).
    max_record: usize,
    redactor: Arc<Redactor>,
    rules: Vec<(Vec<String>, AuditLevel, Option<AuditStages>)>,
    default_level: AuditLevel,
    read_level: AuditLevel,
    fail_closed: bool,
    /// Where pools' MFA histories are read: the S3 sink, else the file's
    /// index; none with stdout alone.
    history: Option<history::History>,
}

/// What one call leaves: its level, and whether a "received" record
/// comes before the backend (writes) or only a "completed" one (reads,
/// and every refusal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub level: AuditLevel,
    pub received: bool,
}

/// The answer of one record's write, when someone waits for it.
pub struct Pending(Option<oneshot::Receiver<Ack>>);

impl Pending {
    /// Waits until the record is durable; `Ok` at once when nothing waits.
    pub async fn durable(self) -> Ack {
        match self.0 {
            None => Ok(()),
            Some(rx) => rx
                .await
                .unwrap_or_else(|_| Err("the audit writer stopped".into())),
        }
    }

    /// As [`Pending::durable`], giving up at `deadline`: no wait for a
    /// record is without a bound (a stalled sink, a stdout nobody reads).
    pub async fn durable_by(self, deadline: tokio::time::Instant) -> Ack {
        if self.0.is_none() {
            return Ok(());
        }
        tokio::time::timeout_at(deadline, self.durable())
            .await
            .unwrap_or_else(|_| {
                crate::meters::audit_wait_timed_out();
                Err("the record was not durable within the call's deadline".into())
            })
    }
}

impl Auditor {
    /// No audit.
    pub fn off() -> Arc<Self> {
        Arc::new(Self {
            sink: None,
            stall: Duration::from_secs(settings::DEFAULT_STALL_SECONDS),
            source: String::new(),
            run: String::new(),
            max_record: bound::MAX_RECORD_BYTES,
            redactor: Arc::new(Redactor::random(UsernameHandling::Clear)),
            rules: Vec::new(),
            default_level: AuditLevel::None,
            read_level: AuditLevel::None,
            fail_closed: false,
            history: None,
        })
    }

    /// Opens the sinks of `[audit]` and starts the writer.
    pub fn start(config: &AuditConfig) -> std::io::Result<Arc<Self>> {
        let redactor = match &config.fingerprint_key_file {
            Some(path) => Redactor::new(std::fs::read(path)?, config.usernames),
            None => {
                crate::events::AuditRandomFingerprintKey.emit();
                Redactor::random(config.usernames)
            }
        };
        let signer = signer_of(config).map_err(std::io::Error::other)?;
        let source = config.resolved_source();
        // 64 random bits, 16 hex digits: unique among a source's runs, and
        // short (every record carries it, and every byte is hashed).
        let run = crate::hash::hex(&uuid::Uuid::new_v4().as_bytes()[..8]);
        let sealer = seal::Sealer::new(source.clone(), run.clone(), signer);
        let index = match &config.file {
            Some(path) => {
                let index = history::FileIndex::open(path)?;
                // The last batch of a run killed before its index.
                let batch = config
                    .group_commit_records
                    .max(config.s3.as_ref().map_or(0, |s| s.group_records));
                let added = index.repair(path, batch.saturating_add(bound::MAX_TRAILING_LINES))?;
                if added > 0 {
                    crate::events::AuditHistoryRepaired { entries: added }.emit();
                }
                Some(Arc::new(index))
            }
            None => None,
        };
        let history = match (&config.s3, &index) {
            (Some(s3), _) => Some(history::History::S3(Arc::new(s3::S3History::new(s3)))),
            (None, Some(index)) => Some(history::History::File(index.clone(), Arc::default())),
            (None, None) => None,
        };
        Ok(Arc::new(Self {
            sink: Some(Sink::start(config, sealer, index)?),
            history,
            stall: Duration::from_secs(config.stall_seconds),
            source,
            run,
            max_record: if config.stdout {
                bound::MAX_STDOUT_RECORD_BYTES
            } else {
                bound::MAX_RECORD_BYTES
            },
            redactor: Arc::new(redactor),
            rules: config
                .rules
                .iter()
                .map(|r| (r.methods.clone(), r.level, r.stages))
                .collect(),
            default_level: config.default_level,
            read_level: config.read_level,
            fail_closed: config.fail_closed,
        }))
    }

    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// A typed value as a record holds it ([`CallAudit::value`]).
    pub fn value(&self, value: &impl Serialize) -> Value {
        let by: Arc<dyn secret::Fingerprinter> = self.redactor.clone();
        let mut v =
            secret::fingerprinted(by, || serde_json::to_value(value)).unwrap_or(Value::Null);
        bound::value(&mut v);
        v
    }

    /// Where pools' MFA histories are read, when the sinks keep one.
    pub fn history(&self) -> Option<&history::History> {
        self.history.as_ref()
    }

    /// Why the writer thread ended, if it ended other than at exit.
    pub fn writer_stopped(&self) -> Option<String> {
        self.sink.as_ref().and_then(Sink::stopped)
    }

    /// Why the writer has made nothing durable for `audit.stall_seconds`,
    /// while it has not (health is NOT_SERVING meanwhile).
    pub fn stalled(&self) -> Option<String> {
        self.sink.as_ref().and_then(|s| s.stalled(self.stall))
    }

    pub fn fail_closed(&self) -> bool {
        self.sink.is_some() && self.fail_closed
    }

    /// The records of `method`: the first matching rule's level and
    /// stages, else `default_level` and two records for a change,
    /// `read_level` and one record for a read.
    pub fn plan(&self, method: &str, mutating: bool) -> Plan {
        if self.sink.is_none() {
            return Plan {
                level: AuditLevel::None,
                received: false,
            };
        }
        let rule = self
            .rules
            .iter()
            .find(|(globs, _, _)| any_method(globs, method));
        let level = match rule {
            Some((_, level, _)) => *level,
            None if mutating => self.default_level,
            None => self.read_level,
        };
        let received = match rule.and_then(|(_, _, stages)| *stages) {
            Some(stages) => stages == AuditStages::Both,
            None => mutating,
        };
        Plan { level, received }
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Queues a record; `wait` asks for its durability. Its fields were
    /// serialized as they were added, here on the caller's thread (values
    /// that may hold secrets redacted first, by [`CallAudit`]): the one
    /// writer thread only orders, hashes and copies bytes.
    /// `parts` are a record's fields in the order added: the call's shared
    /// ones, then the record's own.
    fn submit(&self, parts: &[&Fields], wait: bool, index: Option<history::IndexNote>) -> Pending {
        let Some(sink) = &self.sink else {
            return Pending(None);
        };
        let max = self.max_record - bound::SEAL_ROOM;
        let record = if parts.iter().map(|f| f.size()).sum::<usize>() <= max {
            chain::Unsealed::from_parts(parts)
        } else {
            // Too large: the largest fields give way, wherever they are.
            let mut all = Fields::default();
            for part in parts {
                all.extend(part);
            }
            all.shrink_to(max);
            chain::Unsealed::from_fields(all)
        };
        if wait {
            let (tx, rx) = oneshot::channel();
            sink.send(record, Some(tx), index);
            Pending(Some(rx))
        } else {
            sink.send(record, None, index);
            Pending(None)
        }
    }

    /// At exit: writes what is queued, prints the chain's final anchor and
    /// stops the writer. Records submitted afterwards are refused.
    pub fn close(&self) {
        if let Some(sink) = &self.sink {
            sink.close();
        }
    }

    /// Waits until every record so far is durable (at shutdown).
    pub async fn flush(&self) -> Ack {
        match &self.sink {
            Some(sink) => sink.flush().await,
            None => Ok(()),
        }
    }
}

/// The checkpoints' signer of `[audit.signing]`: its key file's Ed25519
/// key, or its KMS key; none without the table.
fn signer_of(config: &AuditConfig) -> Result<Option<Box<dyn seal::CheckpointSigner>>, String> {
    let Some(s) = &config.signing else {
        return Ok(None);
    };
    Ok(match (&s.key_file, &s.kms_key_id) {
        (Some(path), _) => Some(Box::new(seal::Signer::from_pem_file(path)?)),
        (None, Some(key)) => Some(Box::new(kms::KmsSigner::connect(
            key,
            s.region.as_deref(),
            s.endpoint_url.as_deref(),
        )?)),
        (None, None) => None,
    })
}

/// Who called, from where, with what: the fields both records share.
pub struct Caller<'a> {
    pub request_id: &'a str,
    pub principal: Option<(&'a str, &'static str)>,
    pub peer: Option<SocketAddr>,
}

/// `a.b.c.d:port` without the fmt machinery (IPv4, every call's case);
/// IPv6 as `Display` writes it.
fn peer_text(peer: SocketAddr, buf: &mut [u8; 64]) -> &str {
    use std::io::Write as _;
    let mut out = &mut buf[..];
    let written = match peer {
        SocketAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            v4.ip()
                .octets()
                .into_iter()
                .enumerate()
                .try_for_each(|(i, octet)| {
                    if i > 0 {
                        out.write_all(b".")?;
                    }
                    out.write_all(digits.format(octet).as_bytes())
                })
                .and_then(|()| out.write_all(b":"))
                .and_then(|()| out.write_all(digits.format(v4.port()).as_bytes()))
        }
        // At most 58 characters, with a scope id.
        SocketAddr::V6(_) => write!(out, "{peer}"),
    };
    let left = out.len();
    let len = if written.is_ok() { buf.len() - left } else { 0 };
    std::str::from_utf8(&buf[..len]).unwrap_or_default()
}

/// The records of one call.
pub struct CallAudit {
    auditor: Arc<Auditor>,
    plan: Plan,
    /// The fields every record shares, serialized once.
    base: Fields,
    /// The redacted request, at `request` level and up, for the record
    /// that carries it: "received" if there is one, else "completed".
    request: Option<Value>,
    /// The record's `call_id`, for the log line of an abandoned call.
    call_id: uuid::Uuid,
    /// The record's `user_pool`, for a history record's index.
    pool: Option<Box<str>>,
    /// The completed record was written: a call dropped before that (the
    /// client went away, its deadline passed, a panic, the drain's end)
    /// writes it in `drop`.
    done: bool,
}

/// A fresh uuid (v4) as text, without an allocation; returns it.
fn uuid_field(fields: &mut Fields, key: chain::Key) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    let mut buf = uuid::Uuid::encode_buffer();
    fields.put_plain(key, id.hyphenated().encode_lower(&mut buf));
    id
}

impl CallAudit {
    pub fn new(
        auditor: Arc<Auditor>,
        caller: &Caller<'_>,
        method: &str,
        mutating: bool,
        user_pool: Option<&str>,
        target_user: Option<&str>,
    ) -> Self {
        let plan = auditor.plan(method, mutating);
        let level = plan.level;
        let mut base = Fields::default();
        let mut call_id = uuid::Uuid::nil();
        if level != AuditLevel::None {
            base = Fields::with_capacity(384);
            // In key order, so that sealing finds them sorted. Every string
            // a caller chose is bounded (`bound`).
            call_id = uuid_field(&mut base, key!(call_id));
            base.put_plain(key!(level), level_name(level));
            base.put_str(key!(method), Some(&bound::text(method)));
            // A field with no value (no peer, no principal, no user) is
            // left out rather than written as null: smaller records, one
            // SHA-256 block fewer for most calls.
            let mut peer = [0u8; 64];
            if let Some(p) = caller.peer {
                base.put_plain(key!(peer), peer_text(p, &mut peer));
            }
            let (principal, proven_by) = caller.principal.unzip();
            if let Some(p) = principal {
                base.put_str(key!(principal), Some(&bound::text(p)));
            }
            if let Some(proven_by) = proven_by {
                base.put_plain(key!(proven_by), proven_by);
            }
            base.put_str(key!(request_id), Some(&bound::text(caller.request_id)));
            base.put_plain(key!(run), &auditor.run);
            base.put_str(key!(source), Some(&auditor.source));
            if let Some(u) = target_user.map(|u| auditor.redactor().username(u)) {
                base.put_str(key!(target_user), Some(&bound::text(&u)));
            }
            if let Some(pool) = user_pool {
                base.put_str(key!(user_pool), Some(&bound::text(pool)));
            }
        }
        Self {
            auditor,
            plan,
            base,
            request: None,
            call_id,
            pool: user_pool.filter(|_| mutating).map(Into::into),
            done: false,
        }
    }

    pub fn level(&self) -> AuditLevel {
        self.plan.level
    }

    /// Where the call goes upstream, for cognito calls: the AWS account
    /// (the `[[backend.accounts]]` name, or "default") and the Region.
    /// Where a cognito call goes: its account, Region, and the STS
    /// SourceIdentity it is made under (`backend.source_identity`).
    pub fn placement(&mut self, account: &str, region: &str, source_identity: Option<&str>) {
        if self.plan.level != AuditLevel::None {
            self.base
                .put_str(key!(account), Some(&bound::text(account)));
            self.base.put_str(key!(region), Some(&bound::text(region)));
            if let Some(source_identity) = source_identity {
                self.base
                    .put_str(key!(source_identity), Some(&bound::text(source_identity)));
            }
        }
    }

    /// Takes the request, built only when the level wants it, before the
    /// operation is consumed: a refusal's one record carries it too.
    pub fn request<R: Serialize>(&mut self, request: impl FnOnce() -> R) {
        if matches!(
            self.plan.level,
            AuditLevel::Request | AuditLevel::RequestResponse
        ) {
            self.request = Some(self.value(&request()));
        }
    }

    /// A typed value as a record holds it: each secret its fingerprint (by
    /// its type, [`crate::domain::secret`]), keys sorted at every depth as
    /// the chain's canonical form wants, every string and array bounded.
    pub fn value(&self, value: &impl Serialize) -> Value {
        self.auditor.value(value)
    }

    /// A record's own fields before `stage` and `time`, which sort last:
    /// its `id`. (Each record adds its fields in key order, so that sealing
    /// finds them sorted; in any order they would still seal the same.)
    fn own() -> Fields {
        let mut r = Fields::with_capacity(256);
        uuid_field(&mut r, key!(id));
        r
    }

    /// A record's last own fields, `stage` and `time`, and its submission.
    fn submit(&mut self, own: Fields, stage: &'static str, wait: bool) -> Pending {
        self.submit_indexed(own, stage, wait, false)
    }

    /// As `submit`; `indexed`: a history record, indexed under its pool.
    fn submit_indexed(
        &mut self,
        mut own: Fields,
        stage: &'static str,
        wait: bool,
        indexed: bool,
    ) -> Pending {
        if stage == "completed" {
            self.done = true;
        }
        own.put_plain(key!(stage), stage);
        let time = crate::timefmt::now();
        own.put_plain(key!(time), &time);
        let index = match (&self.pool, indexed) {
            (Some(pool), true) => history::micros_of_time(&time).map(|micros| history::IndexNote {
                pool: pool.to_string(),
                micros,
            }),
            _ => None,
        };
        self.auditor.submit(&[&self.base, &own], wait, index)
    }

    /// Whether the plan has a "received" record (for the call's trace).
    pub fn has_received(&self) -> bool {
        self.plan.level != AuditLevel::None && self.plan.received
    }

    /// The "received" record, when the plan has one: written once the call
    /// has passed authorization, validation and its limits, before the
    /// backend.
    pub fn received(&mut self, wait: bool) -> Pending {
        if self.plan.level == AuditLevel::None || !self.plan.received {
            return Pending(None);
        }
        let mut r = Self::own();
        if let Some(request) = self.request.take() {
            r.put_value(key!(request), &request);
        }
        self.submit(r, "received", wait)
    }

    /// The "completed" record with the outcome.
    pub fn completed(&mut self, done: Completed<'_>, wait: bool) -> Pending {
        if self.plan.level == AuditLevel::None {
            self.done = true;
            return Pending(None);
        }
        let mut r = Fields::with_capacity(256);
        if let Some(c) = &done.change {
            c.put(&mut r);
        }
        if let Some(found) = &done.guardrails {
            r.put_value(key!(guardrails), found);
        }
        uuid_field(&mut r, key!(id));
        r.put_value(
            key!(latency_us),
            &u64::try_from(done.latency.as_micros()).unwrap_or(u64::MAX),
        );
        put_outcome(&mut r, done.error);
        // Not taken by a "received" record (a read, or a refusal before it).
        if let Some(request) = self.request.take() {
            r.put_value(key!(request), &request);
        }
        if self.plan.level == AuditLevel::RequestResponse
            && let Some(response) = &done.response
        {
            r.put_value(key!(response), response);
        }
        // A change that was made: the pool's history has a new entry.
        let indexed = done.change.is_some() && done.error.is_none();
        self.submit_indexed(r, "completed", wait, indexed)
    }
}

impl Drop for CallAudit {
    /// The completed record of a call that ended before it was written:
    /// dropped because the client went away or its deadline passed (tonic
    /// drops the call), at the drain's end, or by a panic. Whether a change
    /// reached the backend is then unknown to the record: its "received"
    /// record says it was about to.
    fn drop(&mut self) {
        if self.done || self.plan.level == AuditLevel::None {
            return;
        }
        let (code, message) = if std::thread::panicking() {
            (
                tonic::Code::Internal,
                "the call panicked before it completed",
            )
        } else {
            (
                tonic::Code::Cancelled,
                "the call ended before it completed: the client went away, its deadline \
                 passed, or the server stopped; a change may or may not have been made",
            )
        };
        let mut r = Self::own();
        r.put_value(
            key!(outcome),
            &json!({"code": code_name(code), "message": message}),
        );
        if let Some(request) = self.request.take() {
            r.put_value(key!(request), &request);
        }
        let _ = self.submit(r, "completed", false);
        let mut buf = uuid::Uuid::encode_buffer();
        crate::events::CallAbandoned {
            call_id: self.call_id.hyphenated().encode_lower(&mut buf),
            code: code_name(code),
        }
        .emit();
    }
}

/// What a completed record says; `change` and `response` as
/// [`CallAudit::value`] made them.
pub struct Completed<'a> {
    pub error: Option<&'a Error>,
    pub latency: Duration,
    /// A pool change that was made: what its history entry holds.
    pub change: Option<ChangeRecord>,
    /// The guardrails the change did not satisfy (warn, audit; or deny,
    /// for a refusal): name, message, actions.
    pub guardrails: Option<Value>,
    pub response: Option<Value>,
}

/// What a completed record says of a pool change that was made (and so
/// what its history entry holds): the configuration before and after
/// ([`CallAudit::value`]'s), the etag of the one after, the fields that
/// changed, and for a restore the revision it restored.
pub struct ChangeRecord {
    pub before: Value,
    pub after: Value,
    pub etag: String,
    pub changed_fields: Vec<String>,
    pub restored_from: Option<String>,
}

impl ChangeRecord {
    /// Its fields in a completed record (and so in a history entry).
    fn put(&self, r: &mut Fields) {
        r.put_value(key!(after), &self.after);
        r.put_value(key!(before), &self.before);
        r.put_value(key!(changed_fields), &self.changed_fields);
        r.put_str(key!(etag), Some(&self.etag));
        if let Some(from) = &self.restored_from {
            r.put_str(key!(restored_from), Some(from));
        }
    }
}

/// A failed call's `outcome`: its fields in canonical (sorted) order, so
/// it is written as it serializes (a test holds the order).
#[derive(Serialize)]
struct Failure<'a> {
    aws_request_id: Option<std::borrow::Cow<'a, str>>,
    code: &'static str,
    cognito_error: Option<std::borrow::Cow<'a, str>>,
    message: String,
}

impl<'a> Failure<'a> {
    fn of(e: &'a Error) -> Self {
        let (exception, request_id) = match e {
            Error::Cognito(c) => (Some(c.exception.as_str()), c.request_id.as_deref()),
            _ => (None, None),
        };
        Self {
            aws_request_id: request_id.map(bound::text),
            code: code_name(e.code()),
            cognito_error: exception.map(bound::text),
            message: bound::text(&e.to_string()).into_owned(),
        }
    }
}

/// The `outcome` of a call: `{"code":"OK"}`, or what failed.
fn put_outcome(r: &mut Fields, error: Option<&Error>) {
    match error {
        None => r.put_raw(key!(outcome), br#"{"code":"OK"}"#),
        Some(e) => r.put_value(key!(outcome), &Failure::of(e)),
    }
}

pub fn level_name(level: AuditLevel) -> &'static str {
    match level {
        AuditLevel::None => "none",
        AuditLevel::Metadata => "metadata",
        AuditLevel::Request => "request",
        AuditLevel::RequestResponse => "request_response",
    }
}

/// The single record of a call refused by the auth layer (no credentials,
/// or a principal not granted a service that names no pool).
pub fn refused_at_the_door(
    auditor: &Arc<Auditor>,
    request_id: &str,
    principal: Option<(&str, &'static str)>,
    peer: Option<SocketAddr>,
    method: &str,
    code: tonic::Code,
    message: &str,
) {
    let caller = Caller {
        request_id,
        principal,
        peer,
    };
    let Some(mut call) = door_call(auditor, &caller, method) else {
        return;
    };
    let mut r = CallAudit::own();
    r.put_value(
        key!(outcome),
        &json!({"code": code_name(code), "message": bound::text(message)}),
    );
    call.submit(r, "completed", false);
}

/// The record of a change of `pool`'s MFA configuration that the facade
/// saw but did not make (console, IaC, another tool): one completed record,
/// method [`history::EXTERNAL_METHOD`], no principal, before (what the
/// facade knew, by its revision `known`) and after (what it read), and the
/// guardrails the change does not satisfy; indexed as a history entry.
/// Returns when it is durable (or why not).
pub async fn external_change(
    auditor: &Arc<Auditor>,
    pool: &str,
    known: &str,
    change: ChangeRecord,
    guardrails: Option<Value>,
) -> Ack {
    let caller = Caller {
        request_id: "",
        principal: None,
        peer: None,
    };
    let mut call = CallAudit::new(
        auditor.clone(),
        &caller,
        history::EXTERNAL_METHOD,
        true,
        Some(pool),
        None,
    );
    if call.plan.level == AuditLevel::None {
        call.done = true;
        return Err("the audit level of (external change) is none".into());
    }
    let mut r = Fields::with_capacity(512);
    change.put(&mut r);
    if let Some(found) = &guardrails {
        r.put_value(key!(guardrails), found);
    }
    uuid_field(&mut r, key!(id));
    r.put_str(key!(known_revision), Some(known));
    r.put_raw(key!(outcome), br#"{"code":"OK"}"#);
    call.submit_indexed(r, "completed", true, true)
        .durable()
        .await
}

/// The one `completed` record of a call that names no pool, unless the
/// audit level of `method` is none.
fn door_call(auditor: &Arc<Auditor>, caller: &Caller<'_>, method: &str) -> Option<CallAudit> {
    // As a change's level (the rule's, else default_level): a refusal at
    // the door is recorded as it was before reads had a level of their own.
    let call = CallAudit::new(auditor.clone(), caller, method, true, None, None);
    (call.plan.level != AuditLevel::None).then_some(call)
}

/// The summary record of one peer's refusals before authentication that
/// were past its budget (the door budget of `[limits.unauthenticated]`) and so had no record.
pub fn refusals_suppressed(
    auditor: &Arc<Auditor>,
    peer: std::net::IpAddr,
    suppressed: u64,
    interval: Duration,
) {
    let caller = Caller {
        request_id: "",
        principal: None,
        peer: Some(SocketAddr::new(peer, 0)),
    };
    let Some(mut call) = door_call(auditor, &caller, SUPPRESSED_METHOD) else {
        return;
    };
    let mut r = CallAudit::own();
    r.put_value(
        key!(outcome),
        &json!({
            "code": code_name(tonic::Code::Unauthenticated),
            "message": format!(
                "{suppressed} call(s) from this address were refused before authentication \
                 past its [limits.unauthenticated] budget and not recorded one by one"
            ),
        }),
    );
    r.put_value(key!(suppressed), &suppressed);
    r.put_value(key!(interval_seconds), &interval.as_secs());
    call.submit(r, "completed", false);
}

/// The `method` of a summary record: no real method, so rules name it exactly.
pub const SUPPRESSED_METHOD: &str = "(refusals suppressed)";

#[cfg(test)]
mod tests {
    use super::*;

    fn auditor(rules: Vec<(Vec<String>, AuditLevel, Option<AuditStages>)>) -> Auditor {
        let dir = tempfile::tempdir().expect("dir");
        let config: AuditConfig = toml::from_str(&format!(
            "file = \"{}\"",
            dir.path().join("a.jsonl").display()
        ))
        .expect("config");
        let mut a = Arc::into_inner(Auditor::start(&config).expect("start")).expect("one");
        a.rules = rules;
        a
    }

    /// Every call leaves its completed record however it ends: one dropped
    /// mid-way (the client went away, its deadline) says CANCELLED, one
    /// that panicked says INTERNAL; one that completed writes no second.
    #[test]
    fn a_call_dropped_before_its_end_still_leaves_its_completed_record() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a.jsonl");
        let config: AuditConfig =
            toml::from_str(&format!("file = \"{}\"", path.display())).expect("config");
        let auditor = Auditor::start(&config).expect("start");
        let caller = Caller {
            request_id: "rid",
            principal: Some(("svc", "api_key")),
            peer: None,
        };
        let set = "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig";
        drop(CallAudit::new(
            auditor.clone(),
            &caller,
            set,
            true,
            Some("p"),
            None,
        ));
        let a = auditor.clone();
        let panicked = std::thread::spawn(move || {
            let caller = Caller {
                request_id: "rid-2",
                principal: None,
                peer: None,
            };
            let _call = CallAudit::new(a, &caller, set, true, Some("p"), None);
            panic!("the call panics");
        })
        .join();
        assert!(panicked.is_err());
        let mut done = CallAudit::new(auditor.clone(), &caller, set, true, Some("p"), None);
        let _ = done.completed(
            Completed {
                error: None,
                latency: Duration::ZERO,
                change: None,
                guardrails: None,
                response: None,
            },
            false,
        );
        drop(done);
        auditor.close();
        let codes: Vec<String> = std::fs::read_to_string(&path)
            .expect("read")
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("json"))
            .filter_map(|r| r["outcome"]["code"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(codes, ["CANCELLED", "INTERNAL", "OK"]);
    }

    #[test]
    fn peers_read_as_display_writes_them() {
        for p in [
            "127.0.0.1:50051",
            "10.200.3.4:0",
            "[::1]:443",
            "255.255.255.255:65535",
        ] {
            let addr: SocketAddr = p.parse().expect("addr");
            assert_eq!(peer_text(addr, &mut [0u8; 64]), addr.to_string());
        }
        // The longest: a full IPv6 address with the largest scope id.
        let longest = SocketAddr::V6(std::net::SocketAddrV6::new(
            std::net::Ipv6Addr::from([0xffff; 8]),
            65535,
            0,
            u32::MAX,
        ));
        assert_eq!(peer_text(longest, &mut [0u8; 64]), longest.to_string());
    }

    /// An outcome is written as it serializes: its keys must already be in
    /// the chain's canonical order, or `audit verify` would refuse it.
    #[test]
    fn a_failure_serializes_in_canonical_order() {
        let e = Error::Cognito(crate::error::CognitoError {
            exception: "LimitExceededException".into(),
            message: "slow down".into(),
            request_id: Some("req-1".into()),
            http_status: Some(400),
        });
        let direct = serde_json::to_string(&Failure::of(&e)).expect("json");
        let mut canonical = String::new();
        chain::canonical(
            &serde_json::from_str(&direct).expect("parse"),
            &mut canonical,
        );
        assert_eq!(direct, canonical);
        assert!(direct.contains("LimitExceededException"), "{direct}");
    }

    #[test]
    fn reads_leave_one_metadata_record_and_changes_two() {
        let plan = |a: &Auditor, m: &str, w| a.plan(m, w);
        let a = auditor(Vec::new());
        let get = "cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig";
        let set = "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig";
        assert_eq!(
            plan(&a, get, false),
            Plan {
                level: AuditLevel::Metadata,
                received: false
            }
        );
        assert_eq!(
            plan(&a, set, true),
            Plan {
                level: AuditLevel::Request,
                received: true
            }
        );
        // A rule raises a read to its request and both records.
        let a = auditor(vec![(
            vec![get.to_owned()],
            AuditLevel::Request,
            Some(AuditStages::Both),
        )]);
        assert_eq!(
            plan(&a, get, false),
            Plan {
                level: AuditLevel::Request,
                received: true
            }
        );
        // A rule without stages keeps the kind's records.
        let a = auditor(vec![(vec!["*".to_owned()], AuditLevel::None, None)]);
        assert_eq!(plan(&a, set, true).level, AuditLevel::None);
        // No sink, no records.
        assert_eq!(
            Auditor::off().plan(set, true),
            Plan {
                level: AuditLevel::None,
                received: false
            }
        );
    }
}

//! A pool's MFA history (issue 36): ListUserPoolMfaConfigHistory, served
//! from the audit store (`audit::history`), and RestoreUserPoolMfaConfig,
//! a past revision written through the whole change path of
//! SetUserPoolMfaConfig (read, etag, pre-flight, guardrails, write, audit).

use serde::Serialize;

use crate::audit::history::{self, Entry, History};
use crate::backend::Backend;
use crate::domain::{
    PoolMfaConfig, Secret,
    rules::{self, Violations},
};
use crate::error::{Error, Result};
use crate::hash::HmacKey;
use crate::limits::UpstreamCall;
use crate::method::{self, Method};

use super::super::{Change, Operation, Plan, Ran, Target};
use super::pool::{
    Admission, PoolSteps, VersionedConfig, changed_fields, check_etag, check_etag_format,
};

/// The label of the page tokens' key, derived from the deployment secret.
pub const PAGE_KEY_LABEL: &str = "mfa-facade history page v1";

/// Entries per page: by default, and at most.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 60;
/// The longest page_token taken.
pub const MAX_PAGE_TOKEN: usize = 512;

fn no_history() -> Error {
    Error::FailedPrecondition {
        reason: "NO_HISTORY",
        message: "a pool's history is read from the audit store, and this deployment keeps none \
                  that can be read back: set [audit] file or [audit.s3]"
            .into(),
    }
}

fn unavailable(e: String) -> Error {
    Error::HistoryUnavailable(e)
}

/// One revision as the API answers it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Revision {
    pub revision: String,
    /// The configuration after the change, every ExternalId left out.
    pub config: PoolMfaConfig,
    /// The configuration had an ExternalId (never shown).
    pub external_id_set: bool,
    pub etag: String,
    pub time: String,
    pub micros: u64,
    pub external: bool,
    pub method: String,
    pub principal: String,
    pub proven_by: String,
    pub request_id: String,
    pub changed_fields: Vec<String>,
    pub restored_from: String,
    pub source: String,
    pub run: String,
    pub seq: u64,
    pub hash: String,
}

/// The configuration an entry holds, each ExternalId (a fingerprint in
/// the record) dropped; and whether there was one.
fn config_of(entry: &Entry) -> Option<(PoolMfaConfig, bool)> {
    let mut config: PoolMfaConfig = serde_json::from_value(entry.after.clone()).ok()?;
    let mut had = false;
    if let Some(s) = config
        .sms
        .as_mut()
        .and_then(|s| s.sms_configuration.as_mut())
    {
        had |= s.external_id.take().is_some();
        if let Some(e) = s.eums_sms.as_mut() {
            had |= e.external_id.take().is_some();
        }
    }
    Some((config, had))
}

impl Revision {
    fn of(e: Entry) -> Option<Self> {
        let (config, external_id_set) = config_of(&e)?;
        Some(Self {
            config,
            external_id_set,
            revision: e.revision,
            etag: e.etag,
            time: e.time,
            micros: e.micros,
            external: e.external,
            method: e.method.rsplit('/').next().unwrap_or_default().to_owned(),
            principal: e.principal.unwrap_or_default(),
            proven_by: e.proven_by.unwrap_or_default(),
            request_id: e.request_id.unwrap_or_default(),
            changed_fields: e.changed_fields,
            restored_from: e.restored_from.unwrap_or_default(),
            source: e.source,
            run: e.run,
            seq: e.seq,
            hash: e.hash,
        })
    }
}

/// Where a page starts: after a revision of a pool, none older than `since`.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, Serialize)]
struct PageCursor {
    p: String,
    a: String,
    s: Option<u64>,
}

impl PageCursor {
    fn encode(&self, key: &HmacKey) -> String {
        key.seal_token(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// The cursor of `token` if this deployment made it for `pool`; the MAC
    /// is checked before anything of the token is parsed.
    fn decode(v: &mut Violations, key: &HmacKey, token: &str, pool: &str) -> Option<Self> {
        if token.len() > MAX_PAGE_TOKEN {
            v.add(
                "page_token",
                format!("at most {MAX_PAGE_TOKEN} characters (is {})", token.len()),
            );
            return None;
        }
        let cursor = key
            .open_token(token)
            .and_then(|b| serde_json::from_slice::<PageCursor>(&b).ok())
            .filter(|c| history::valid_revision(&c.a));
        match cursor {
            None => {
                v.add(
                    "page_token",
                    "is not a next_page_token of ListUserPoolMfaConfigHistory made by this \
                     deployment, or was changed",
                );
                None
            }
            Some(c) if c.p != pool => {
                v.add("page_token", "belongs to the history of another user pool");
                None
            }
            Some(c) => Some(c),
        }
    }
}

/// A page of history.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryPage {
    pub revisions: Vec<Revision>,
    pub next_page_token: String,
}

pub struct ListUserPoolMfaConfigHistory {
    pub user_pool_id: String,
    /// 0: [`DEFAULT_PAGE_SIZE`].
    pub page_size: u32,
    pub page_token: String,
    /// Microseconds since the epoch: no entry older.
    pub since: Option<u64>,
    /// The page tokens' key ([`crate::call::Facade::history_key`]).
    pub key: HmacKey,
}

impl ListUserPoolMfaConfigHistory {
    fn cursor(&self, v: &mut Violations) -> Option<PageCursor> {
        (!self.page_token.is_empty())
            .then(|| PageCursor::decode(v, &self.key, &self.page_token, &self.user_pool_id))
            .flatten()
    }
}

impl Operation for ListUserPoolMfaConfigHistory {
    type Output = HistoryPage;

    fn method(&self) -> &'static Method {
        &method::LIST_USER_POOL_MFA_CONFIG_HISTORY
    }

    fn target(&self) -> Target<'_> {
        Target::Pool(&self.user_pool_id)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user_pool_id: &'a str,
            page_size: u32,
            paged: bool,
            since: Option<u64>,
        }
        Request {
            user_pool_id: &self.user_pool_id,
            page_size: self.page_size,
            paged: !self.page_token.is_empty(),
            since: self.since,
        }
    }

    fn reads_history(&self) -> bool {
        true
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        if self.page_size > MAX_PAGE_SIZE {
            v.add(
                "page_size",
                format!("at most {MAX_PAGE_SIZE} (0: {DEFAULT_PAGE_SIZE})"),
            );
        }
        let _ = self.cursor(v);
    }

    async fn run(self, _: &dyn Backend, plan: &Plan) -> Result<Ran<HistoryPage>> {
        let store = plan.history.as_ref().ok_or_else(no_history)?;
        let mut v = Violations::default();
        let cursor = self.cursor(&mut v);
        v.into_result()?;
        let since = cursor.as_ref().map_or(self.since, |c| c.s);
        let size = if self.page_size == 0 {
            DEFAULT_PAGE_SIZE
        } else {
            self.page_size
        } as usize;
        let page = store
            .page(
                &self.user_pool_id,
                cursor.as_ref().map(|c| c.a.as_str()),
                since,
                size,
            )
            .await
            .map_err(unavailable)?;
        let next_page_token = match (page.more, page.entries.last()) {
            (true, Some(last)) => PageCursor {
                p: self.user_pool_id.clone(),
                a: last.revision.clone(),
                s: since,
            }
            .encode(&self.key),
            _ => String::new(),
        };
        Ok(HistoryPage {
            revisions: page.entries.into_iter().filter_map(Revision::of).collect(),
            next_page_token,
        }
        .into())
    }
}

/// A revision's configuration as it can be written again.
pub(super) struct Restorable {
    pub(super) config: PoolMfaConfig,
    /// Which ExternalId each one of the revision's is.
    pub(super) notes: Vec<String>,
    /// The ExternalIds that could not be resolved (the role differs and
    /// none was given): the error a restore answers, one per field.
    pub(super) missing: Vec<(String, String)>,
}

impl Restorable {
    /// FAILED_PRECONDITION for the first ExternalId that is missing.
    pub(super) fn whole(self) -> Result<(PoolMfaConfig, Vec<String>)> {
        match self.missing.into_iter().next() {
            Some((_, message)) => Err(Error::FailedPrecondition {
                reason: "EXTERNAL_ID_REQUIRED",
                message,
            }),
            None => Ok((self.config, self.notes)),
        }
    }
}

/// The configuration of `revision` of `pool`, as it can be written again:
/// each ExternalId the revision had is the pool's current one when the
/// role it goes with is the same, else `given`; notes say which.
pub(super) async fn restorable(
    store: Option<&History>,
    pool: &str,
    revision: &str,
    current: &PoolMfaConfig,
    given: Option<&Secret>,
) -> Result<Restorable> {
    let store = store.ok_or_else(no_history)?;
    let entry = store
        .get(pool, revision)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| Error::NotFound {
            reason: "REVISION_NOT_FOUND",
            message: format!(
                "user pool {pool} has no revision {revision} in its history (ListUserPoolMfaConfigHistory lists them)"
            ),
        })?;
    let mut config: PoolMfaConfig =
        serde_json::from_value(entry.after.clone()).map_err(|_| Error::FailedPrecondition {
            reason: "REVISION_NOT_RESTORABLE",
            message: format!(
                "revision {revision}'s record does not hold a whole configuration (its record was cut to its bound)"
            ),
        })?;
    let mut notes = Vec::new();
    let mut missing = Vec::new();
    let now = current
        .sms
        .as_ref()
        .and_then(|s| s.sms_configuration.as_ref());
    if let Some(sms) = config
        .sms
        .as_mut()
        .and_then(|s| s.sms_configuration.as_mut())
    {
        let sns_now = now.filter(|n| n.sns_caller_arn == sms.sns_caller_arn);
        resolve(
            &mut sms.external_id,
            sns_now.and_then(|n| n.external_id.as_ref()),
            given,
            "sms_mfa_configuration.sms_configuration.external_id",
            "SNS role (sns_caller_arn)",
            &mut notes,
            &mut missing,
        );
        if let Some(eums) = sms.eums_sms.as_mut() {
            let eums_now = now
                .and_then(|n| n.eums_sms.as_ref())
                .filter(|n| n.caller_arn == eums.caller_arn);
            resolve(
                &mut eums.external_id,
                eums_now.and_then(|n| n.external_id.as_ref()),
                given,
                "sms_mfa_configuration.sms_configuration.eums_sms.external_id",
                "End User Messaging role (caller_arn)",
                &mut notes,
                &mut missing,
            );
        }
    }
    if given.is_some() && notes.iter().all(|n| !n.contains("the external_id given")) {
        notes.push("external_id was given but not needed: the revision's roles are the pool's, whose ExternalId is kept".into());
    }
    Ok(Restorable {
        config,
        notes,
        missing,
    })
}

/// One ExternalId of a revision (its fingerprint in the record): the
/// pool's current one for the same role, else the caller's, else refused.
fn resolve(
    id: &mut Option<Secret>,
    current: Option<&Secret>,
    given: Option<&Secret>,
    field: &str,
    role: &str,
    notes: &mut Vec<String>,
    missing: &mut Vec<(String, String)>,
) {
    if id.is_none() {
        return;
    }
    *id = match (current, given) {
        (Some(now), _) => {
            notes.push(format!(
                "{field}: the pool's current ExternalId is kept (the revision's {role} is the pool's)"
            ));
            Some(now.clone())
        }
        (None, Some(given)) => {
            notes.push(format!("{field}: the external_id given"));
            Some(given.clone())
        }
        (None, None) => {
            missing.push((
                field.to_owned(),
                format!(
                    "the revision's {role} is not the pool's now, and its ExternalId was never \
                     stored in the clear: give external_id ({field})"
                ),
            ));
            None
        }
    };
}

/// A restore's answer.
#[derive(Clone, Debug, Serialize)]
pub struct Restored {
    pub config: VersionedConfig,
    pub revision: String,
    pub changed_fields: Vec<String>,
    /// What the caller should know: which ExternalId was written.
    pub notes: Vec<String>,
}

pub struct RestoreUserPoolMfaConfig {
    pub user_pool_id: String,
    pub revision: String,
    pub etag: Option<String>,
    pub validate_only: bool,
    /// The ExternalId to write when the revision's role is not the pool's.
    pub external_id: Option<Secret>,
}

impl RestoreUserPoolMfaConfig {
    fn steps(&self, plan: &Plan) -> PoolSteps {
        PoolSteps::read_first(plan, self.validate_only)
    }
}

impl Operation for RestoreUserPoolMfaConfig {
    type Output = Restored;

    fn method(&self) -> &'static Method {
        &method::RESTORE_USER_POOL_MFA_CONFIG
    }

    fn target(&self) -> Target<'_> {
        Target::Pool(&self.user_pool_id)
    }

    fn upstream(&self, plan: &Plan) -> Vec<UpstreamCall> {
        self.steps(plan).calls(&self.user_pool_id)
    }

    fn dry_run(&self) -> bool {
        self.validate_only
    }

    /// A restore is a SetUserPoolMfaConfig of a past configuration: Set's
    /// guardrails hold it, and its own method's too.
    fn guarded_as(&self) -> Option<&'static Method> {
        Some(&method::SET_USER_POOL_MFA_CONFIG)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user_pool_id: &'a str,
            revision: &'a str,
            etag: Option<&'a str>,
            validate_only: bool,
            external_id: Option<&'a Secret>,
        }
        Request {
            user_pool_id: &self.user_pool_id,
            revision: &self.revision,
            etag: self.etag.as_deref(),
            validate_only: self.validate_only,
            external_id: self.external_id.as_ref(),
        }
    }

    fn reads_history(&self) -> bool {
        true
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        if !history::valid_revision(&self.revision) {
            v.add(
                "revision",
                "must be a revision of ListUserPoolMfaConfigHistory",
            );
        }
        check_etag_format(v, self.etag.as_deref());
        if let Some(id) = &self.external_id {
            rules::string(v, "external_id", id.expose());
        }
    }

    async fn run(self, backend: &dyn Backend, plan: &Plan) -> Result<Ran<Restored>> {
        let current = backend.get_user_pool_mfa_config(&self.user_pool_id).await?;
        let current_etag = check_etag(self.etag.as_deref(), &current)?;
        let (config, notes) = restorable(
            plan.history.as_ref(),
            &self.user_pool_id,
            &self.revision,
            &current,
            self.external_id.as_ref(),
        )
        .await?
        .whole()?;
        let findings = Admission {
            backend,
            pool: &self.user_pool_id,
            check_state: plan.check_state,
            guard: plan.guard.as_ref(),
            validate_only: self.validate_only,
        }
        .admit(Some(&current), &config)
        .await?;
        let changed = changed_fields(&current, &config);
        if !self.steps(plan).write {
            let _ = current_etag;
            return Ok(Ran {
                output: Restored {
                    config: VersionedConfig::of(config),
                    revision: self.revision,
                    changed_fields: changed,
                    notes,
                },
                change: None,
                findings,
                observed: Some(current),
            });
        }
        let stored = backend
            .set_user_pool_mfa_config(&self.user_pool_id, &config)
            .await?;
        Ok(Ran {
            output: Restored {
                config: VersionedConfig::of(stored.clone()),
                revision: self.revision.clone(),
                changed_fields: changed,
                notes,
            },
            change: plan.capture_before.then_some(Change {
                before: current,
                after: stored,
                restored_from: Some(self.revision),
            }),
            findings,
            observed: None,
        })
    }
}

//! The pool's MFA configuration (`cognito.mfa.v1.UserPoolMfaService`):
//! read, replace, and the read-merge-write of an update, with etags.

use serde::Serialize;

use crate::backend::Backend;
use crate::domain::{
    MfaMode, PoolMfaConfig, etag,
    mask::{self, MaskError},
    pool_state,
    rules::{self, Violations},
};
use crate::error::{Error, Result};
use crate::limits::{CognitoOp, UpstreamCall};
use crate::method::{self, Method};

use super::super::{Change, Guard, Operation, Plan, Proposed, Ran, Target};

/// A pool configuration and its etag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionedConfig {
    pub config: PoolMfaConfig,
    pub etag: String,
}

impl VersionedConfig {
    pub(super) fn of(config: PoolMfaConfig) -> Self {
        let etag = etag::of(&config);
        Self { config, etag }
    }
}

/// A pool change's answer: the stored configuration, what it was before
/// when that was read (for the audit record), and the guardrails it passed
/// without satisfying.
fn changed(
    before: Option<PoolMfaConfig>,
    stored: PoolMfaConfig,
    findings: Vec<crate::auth::guardrails::Finding>,
) -> Ran<VersionedConfig> {
    let change = before.map(|before| Change {
        before,
        after: stored.clone(),
        restored_from: None,
    });
    Ran {
        output: VersionedConfig::of(stored),
        change,
        findings,
        observed: None,
    }
}

/// A dry run's answer: the configuration the pool would have.
fn would_be(
    config: PoolMfaConfig,
    etag: String,
    findings: Vec<crate::auth::guardrails::Finding>,
    observed: Option<PoolMfaConfig>,
) -> Ran<VersionedConfig> {
    Ran {
        output: VersionedConfig { config, etag },
        change: None,
        findings,
        observed,
    }
}

pub(super) fn check_etag_format(v: &mut Violations, etag: Option<&str>) {
    if let Some(e) = etag
        && (e.len() != 32 || !e.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        v.add(
            "etag",
            "must be an etag returned by this service (32 hex characters)",
        );
    }
}

/// What a change must pass before it is written, in this order: the
/// pre-flight (FAILED_PRECONDITION with every rule the pool's state
/// breaks), then the guardrails (FAILED_PRECONDITION naming those that
/// deny). Gives the guardrails that only warn or audit.
pub(super) struct Admission<'a> {
    pub(super) backend: &'a dyn Backend,
    pub(super) pool: &'a str,
    pub(super) check_state: bool,
    pub(super) guard: Option<&'a Guard>,
    pub(super) validate_only: bool,
}

impl Admission<'_> {
    pub(super) async fn admit(
        &self,
        before: Option<&PoolMfaConfig>,
        after: &PoolMfaConfig,
    ) -> Result<Vec<crate::auth::guardrails::Finding>> {
        // Cognito's rules refuse; the advice goes with the answer as a
        // warning (`advice.<RULE>`), as a guardrail's warn does.
        let mut advice = Vec::new();
        let state = if self.check_state {
            let state = self.backend.pool_state(self.pool).await?;
            let (refused, advised): (Vec<_>, Vec<_>) = pool_state::preflight(&state, after)
                .into_iter()
                .partition(pool_state::Precondition::refused);
            if !refused.is_empty() {
                return Err(Error::PoolState(refused));
            }
            advice = advised
                .into_iter()
                .map(|p| crate::auth::guardrails::Finding {
                    guardrail: format!("advice.{}", p.rule),
                    message: p.description,
                    actions: vec![crate::auth::settings::GuardrailAction::Warn],
                    error: None,
                })
                .collect();
            Some(state)
        } else {
            None
        };
        let mut found = match self.guard {
            None => Vec::new(),
            Some(g) => {
                let none = PoolMfaConfig::default();
                g.check(&Proposed {
                    user_pool_id: self.pool,
                    validate_only: self.validate_only,
                    before: before.unwrap_or(&none),
                    after,
                    state: state.as_ref(),
                })?
            }
        };
        found.extend(advice);
        Ok(found)
    }
}

/// ABORTED unless `expected` is absent or equals the etag of `current`.
pub(super) fn check_etag(expected: Option<&str>, current: &PoolMfaConfig) -> Result<String> {
    let now = etag::of(current);
    match expected {
        Some(e) if !e.eq_ignore_ascii_case(&now) => Err(Error::Aborted {
            reason: "ETAG_MISMATCH",
            message: format!(
                "the pool's MFA configuration changed since etag {e} was read (it is now {now}); read it again and retry"
            ),
        }),
        _ => Ok(now),
    }
}

/// The pool calls of a change, as both `upstream` and `run` take them.
pub(super) struct PoolSteps {
    /// Read the configuration first (to compare an etag, capture it for
    /// audit, or prove the pool exists for a dry run).
    pub(super) read: bool,
    /// Read the pool's state and apply the pre-flight's rules to the
    /// configuration it would have (DescribeUserPool).
    pub(super) state: bool,
    /// Then write it.
    pub(super) write: bool,
}

impl PoolSteps {
    /// A change that always reads the configuration first (an update, a
    /// restore), the pool's state when the pre-flight is on, and writes
    /// unless it is a dry run.
    pub(super) fn read_first(plan: &Plan, validate_only: bool) -> Self {
        Self {
            read: true,
            state: plan.check_state,
            write: !validate_only,
        }
    }

    pub(super) fn calls(&self, pool: &str) -> Vec<UpstreamCall> {
        let target = Target::Pool(pool);
        let mut calls = Vec::with_capacity(3);
        if self.read {
            calls.push(target.call(CognitoOp::GetUserPoolMfaConfig));
        }
        if self.state {
            calls.push(target.call(CognitoOp::DescribeUserPool));
        }
        if self.write {
            calls.push(target.call(CognitoOp::SetUserPoolMfaConfig));
        }
        calls
    }
}

pub struct GetUserPoolMfaConfig {
    pub user_pool_id: String,
}

impl Operation for GetUserPoolMfaConfig {
    type Output = VersionedConfig;

    fn method(&self) -> &'static Method {
        &method::GET_USER_POOL_MFA_CONFIG
    }

    fn target(&self) -> Target<'_> {
        Target::Pool(&self.user_pool_id)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user_pool_id: &'a str,
        }
        Request {
            user_pool_id: &self.user_pool_id,
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<VersionedConfig>> {
        let config = backend.get_user_pool_mfa_config(&self.user_pool_id).await?;
        let mut ran: Ran<_> = VersionedConfig::of(config.clone()).into();
        ran.observed = Some(config);
        Ok(ran)
    }
}

pub struct SetUserPoolMfaConfig {
    pub user_pool_id: String,
    pub config: PoolMfaConfig,
    pub validate_only: bool,
    pub etag: Option<String>,
}

impl SetUserPoolMfaConfig {
    fn steps(&self, plan: &Plan) -> PoolSteps {
        PoolSteps {
            read: self.validate_only
                || self.etag.is_some()
                || plan.capture_before
                || plan.guard.is_some(),
            state: plan.check_state,
            write: !self.validate_only,
        }
    }
}

impl Operation for SetUserPoolMfaConfig {
    type Output = VersionedConfig;

    fn method(&self) -> &'static Method {
        &method::SET_USER_POOL_MFA_CONFIG
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

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user_pool_id: &'a str,
            config: &'a PoolMfaConfig,
            validate_only: bool,
            etag: Option<&'a str>,
        }
        Request {
            user_pool_id: &self.user_pool_id,
            config: &self.config,
            validate_only: self.validate_only,
            etag: self.etag.as_deref(),
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        rules::pool_mfa_config(v, "", &self.config);
        check_etag_format(v, self.etag.as_deref());
    }

    async fn run(self, backend: &dyn Backend, plan: &Plan) -> Result<Ran<VersionedConfig>> {
        let steps = self.steps(plan);
        let admission = Admission {
            backend,
            pool: &self.user_pool_id,
            check_state: steps.state,
            guard: plan.guard.as_ref(),
            validate_only: self.validate_only,
        };
        let mut before = None;
        let mut current_etag = None;
        if steps.read {
            // Reading proves the pool exists and gives the etag to compare.
            let current = backend.get_user_pool_mfa_config(&self.user_pool_id).await?;
            current_etag = Some(check_etag(self.etag.as_deref(), &current)?);
            before = Some(current);
        }
        let findings = admission.admit(before.as_ref(), &self.config).await?;
        if !steps.write {
            return Ok(would_be(
                self.config,
                current_etag.unwrap_or_default(),
                findings,
                before,
            ));
        }
        let stored = backend
            .set_user_pool_mfa_config(&self.user_pool_id, &self.config)
            .await?;
        Ok(changed(
            before.filter(|_| plan.capture_before),
            stored,
            findings,
        ))
    }
}

/// Unknown and repeated paths, each kind reported once with a count and the
/// first example (cut short): never one violation per path.
fn mask_paths(v: &mut Violations, paths: &[String]) {
    let mut unknown = (0usize, None::<&str>);
    let mut repeated = (0usize, None::<&str>);
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        if !mask::is_known(path) {
            unknown.0 += 1;
            unknown.1.get_or_insert(path);
        } else if !seen.insert(path.as_str()) {
            repeated.0 += 1;
            repeated.1.get_or_insert(path);
        }
    }
    let example = |p: Option<&str>| crate::domain::text::truncate(p.unwrap_or(""), 64).into_owned();
    if unknown.0 > 0 {
        v.add(
            "update_mask",
            format!(
                "{} unknown path(s), the first {:?}; known paths: {}",
                unknown.0,
                example(unknown.1),
                mask::PATHS.join(", ")
            ),
        );
    }
    if repeated.0 > 0 {
        v.add(
            "update_mask",
            format!(
                "{} repeated path(s), the first {:?}: name each path once",
                repeated.0,
                example(repeated.1)
            ),
        );
    }
}

pub struct UpdateUserPoolMfaConfig {
    pub user_pool_id: String,
    pub patch: PoolMfaConfig,
    pub update_mask: Vec<String>,
    pub etag: Option<String>,
    pub validate_only: bool,
}

impl UpdateUserPoolMfaConfig {
    /// An update always reads, to merge into what is there.
    fn steps(&self, plan: &Plan) -> PoolSteps {
        PoolSteps::read_first(plan, self.validate_only)
    }
}

impl Operation for UpdateUserPoolMfaConfig {
    type Output = VersionedConfig;

    fn method(&self) -> &'static Method {
        &method::UPDATE_USER_POOL_MFA_CONFIG
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

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user_pool_id: &'a str,
            config: PoolMfaConfig,
            update_mask: &'a [String],
            validate_only: bool,
            etag: Option<&'a str>,
        }
        Request {
            user_pool_id: &self.user_pool_id,
            config: mask::masked_part(&self.patch, &self.update_mask),
            update_mask: &self.update_mask,
            validate_only: self.validate_only,
            etag: self.etag.as_deref(),
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        check_etag_format(v, self.etag.as_deref());
        if self.update_mask.is_empty() {
            v.add(
                "update_mask",
                "must name at least one field; use SetUserPoolMfaConfig to replace the whole configuration",
            );
        }
        mask_paths(v, &self.update_mask);
        // The fields this update sets, checked before anything is read.
        rules::pool_mfa_config_fields(
            v,
            "config",
            &mask::masked_part(&self.patch, &self.update_mask),
        );
    }

    async fn run(self, backend: &dyn Backend, plan: &Plan) -> Result<Ran<VersionedConfig>> {
        let current = backend.get_user_pool_mfa_config(&self.user_pool_id).await?;
        let current_etag = check_etag(self.etag.as_deref(), &current)?;
        let mut merged = current.clone();
        mask::apply(&mut merged, &self.patch, &self.update_mask).map_err(|e| match e {
            MaskError::UnknownPath(p) => Error::InvalidArgument(vec![rules::FieldViolation {
                field: "update_mask".into(),
                description: format!("unknown path {p:?}"),
            }]),
            MaskError::BlockNotSet { path, block } => Error::FailedPrecondition {
                reason: "FACTOR_BLOCK_NOT_SET",
                message: format!(
                    "{path} edits {block}, which this pool does not have; to turn that factor on, \
                     put {block} itself in update_mask with the whole block in config"
                ),
            },
        })?;
        let mut v = Violations::default();
        rules::pool_mfa_config(&mut v, "config", &merged);
        v.into_result()?;
        let findings = Admission {
            backend,
            pool: &self.user_pool_id,
            check_state: plan.check_state,
            guard: plan.guard.as_ref(),
            validate_only: self.validate_only,
        }
        .admit(Some(&current), &merged)
        .await?;
        if !self.steps(plan).write {
            return Ok(would_be(merged, current_etag, findings, Some(current)));
        }
        let stored = backend
            .set_user_pool_mfa_config(&self.user_pool_id, &merged)
            .await?;
        Ok(changed(
            plan.capture_before.then_some(current),
            stored,
            findings,
        ))
    }
}

/// What a change would meet: one kind per stage that could refuse it, and
/// the guardrails that let it through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    InvalidArgument,
    PoolState,
    /// A pre-flight rule of kind advice: Cognito accepts the change.
    Advice,
    GuardrailDeny,
    GuardrailWarn,
    GuardrailAudit,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckFinding {
    pub kind: FindingKind,
    /// The pre-flight rule or the guardrail; empty for an input rule.
    pub rule: String,
    /// The field (input) or the pool property (pool state).
    pub subject: String,
    pub description: String,
}

/// The answer of CheckUserPoolMfaConfig.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub allowed: bool,
    pub findings: Vec<CheckFinding>,
    pub before: VersionedConfig,
    pub after: PoolMfaConfig,
    pub changed_fields: Vec<String>,
}

/// Checks a change (the whole configuration, or with `update_mask` an
/// update) against every stage that could refuse it, and reports them all.
pub struct CheckUserPoolMfaConfig {
    pub user_pool_id: String,
    pub patch: PoolMfaConfig,
    /// `None`: a Set of `patch`; `Some`: an Update of these paths.
    pub update_mask: Option<Vec<String>>,
    /// A RestoreUserPoolMfaConfig of this revision instead (`patch` and
    /// `update_mask` unused).
    pub restore_revision: Option<String>,
}

/// The paths whose values differ between `a` and `b`: a factor block
/// turned on or off as the block, a block present on both sides by the
/// leaves that changed in it.
pub fn changed_fields(a: &PoolMfaConfig, b: &PoolMfaConfig) -> Vec<String> {
    let part = |c: &PoolMfaConfig, p: &str| mask::masked_part(c, &[p.to_owned()]);
    let none = PoolMfaConfig::default();
    let present = |c: &PoolMfaConfig, p: &str| part(c, p) != part(&none, p);
    let below =
        |p: &str, q: &str| q.len() > p.len() && q.starts_with(p) && q.as_bytes()[p.len()] == b'.';
    let mut out: Vec<String> = Vec::new();
    for p in mask::PATHS.iter().copied() {
        if out.iter().any(|q| below(q, p)) || part(a, p) == part(b, p) {
            continue;
        }
        let block = mask::PATHS.iter().any(|q| below(p, q));
        if block && present(a, p) && present(b, p) {
            continue; // its leaves say what changed
        }
        out.push(p.to_owned());
    }
    out
}

impl Operation for CheckUserPoolMfaConfig {
    type Output = CheckReport;

    fn method(&self) -> &'static Method {
        &method::CHECK_USER_POOL_MFA_CONFIG
    }

    fn target(&self) -> Target<'_> {
        Target::Pool(&self.user_pool_id)
    }

    fn upstream(&self, plan: &Plan) -> Vec<UpstreamCall> {
        PoolSteps {
            read: true,
            state: plan.check_state,
            write: false,
        }
        .calls(&self.user_pool_id)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user_pool_id: &'a str,
            config: PoolMfaConfig,
            update_mask: Option<&'a [String]>,
            restore_revision: Option<&'a str>,
        }
        Request {
            user_pool_id: &self.user_pool_id,
            config: match &self.update_mask {
                Some(m) => mask::masked_part(&self.patch, m),
                None => self.patch.clone(),
            },
            update_mask: self.update_mask.as_deref(),
            restore_revision: self.restore_revision.as_deref(),
        }
    }

    /// The guardrails of the call the change would be: Set or Update.
    fn guarded_as(&self) -> Option<&'static Method> {
        Some(if self.update_mask.is_some() {
            &method::UPDATE_USER_POOL_MFA_CONFIG
        } else {
            &method::SET_USER_POOL_MFA_CONFIG
        })
    }

    fn reads_history(&self) -> bool {
        self.restore_revision.is_some()
    }

    /// Only what makes the change impossible to state: the pool id and
    /// the mask's paths. The configuration's own rules are findings.
    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        if let Some(r) = &self.restore_revision {
            if !crate::audit::history::valid_revision(r) {
                v.add(
                    "restore_revision",
                    "must be a revision of ListUserPoolMfaConfigHistory",
                );
            }
            if self.update_mask.is_some() {
                v.add(
                    "update_mask",
                    "must be left out when restore_revision checks a restore",
                );
            }
        }
        if let Some(m) = &self.update_mask {
            if m.is_empty() {
                v.add(
                    "update_mask",
                    "must name at least one field, or be left out to check a whole configuration",
                );
            }
            mask_paths(v, m);
        }
    }

    async fn run(self, backend: &dyn Backend, plan: &Plan) -> Result<Ran<CheckReport>> {
        let current = backend.get_user_pool_mfa_config(&self.user_pool_id).await?;
        let mut inputs = Violations::default();
        // validate refuses a mask with a restore: a mask means an Update.
        let mut after = match (&self.update_mask, &self.restore_revision) {
            (None, Some(revision)) => {
                let restorable = super::history::restorable(
                    plan.history.as_ref(),
                    &self.user_pool_id,
                    revision,
                    &current,
                    None,
                )
                .await?;
                for (field, message) in restorable.missing {
                    inputs.add(field, message);
                }
                restorable.config
            }
            (None, None) => {
                rules::pool_mfa_config(&mut inputs, "config", &self.patch);
                self.patch.clone()
            }
            (Some(m), _) => {
                rules::pool_mfa_config_fields(
                    &mut inputs,
                    "config",
                    &mask::masked_part(&self.patch, m),
                );
                let mut merged = current.clone();
                if let Err(MaskError::BlockNotSet { path, block }) =
                    mask::apply(&mut merged, &self.patch, m)
                {
                    inputs.add(
                        "update_mask",
                        format!("{path} edits {block}, which this pool does not have; put {block} itself in update_mask"),
                    );
                }
                rules::pool_mfa_config(&mut inputs, "config", &merged);
                merged
            }
        };
        // Cognito reads a mode that is not sent as OFF.
        after.mode.get_or_insert(MfaMode::Off);
        let mut findings: Vec<CheckFinding> = inputs
            .into_vec()
            .into_iter()
            .map(|f| CheckFinding {
                kind: FindingKind::InvalidArgument,
                rule: String::new(),
                subject: f.field,
                description: f.description,
            })
            .collect();
        let state = if plan.check_state {
            Some(backend.pool_state(&self.user_pool_id).await?)
        } else {
            None
        };
        if let Some(state) = &state {
            findings.extend(pool_state::preflight(state, &after).into_iter().map(|p| {
                CheckFinding {
                    kind: if p.refused() {
                        FindingKind::PoolState
                    } else {
                        FindingKind::Advice
                    },
                    rule: p.rule.to_owned(),
                    subject: p.subject.to_owned(),
                    description: p.description,
                }
            }));
        }
        let mut passed = Vec::new();
        if let Some(g) = &plan.guard {
            let proposed = Proposed {
                user_pool_id: &self.user_pool_id,
                validate_only: true,
                before: &current,
                after: &after,
                state: state.as_ref(),
            };
            for f in g.findings(&proposed) {
                for action in &f.actions {
                    let kind = match action {
                        crate::auth::settings::GuardrailAction::Deny => FindingKind::GuardrailDeny,
                        crate::auth::settings::GuardrailAction::Warn => FindingKind::GuardrailWarn,
                        crate::auth::settings::GuardrailAction::Audit => {
                            FindingKind::GuardrailAudit
                        }
                    };
                    findings.push(CheckFinding {
                        kind,
                        rule: f.guardrail.clone(),
                        subject: String::new(),
                        description: f.detail(),
                    });
                }
                passed.push(f);
            }
        }
        let allowed = !findings.iter().any(|f| {
            matches!(
                f.kind,
                FindingKind::InvalidArgument | FindingKind::PoolState | FindingKind::GuardrailDeny
            )
        });
        let changed_fields = changed_fields(&current, &after);
        let observed = Some(current.clone());
        Ok(Ran {
            output: CheckReport {
                allowed,
                findings,
                before: VersionedConfig::of(current),
                after,
                changed_fields,
            },
            change: None,
            findings: passed,
            observed,
        })
    }
}

//! The way of a call, in one place (DESIGN.md §5).
//!
//! The auth layer ([`gate`]) has already decided who is calling. `api`
//! decodes a request — of either service, or of the local fixtures
//! ([`fixtures`]) — into an [`Operation`]. [`Facade::execute`] is the way
//! of a unary call after decoding, written once, in order; the coverage
//! walk's start ([`Facade::walk`]) opens its record and is admitted by the
//! same [`Facade::admit`]. What differs from call to call is data: the
//! operation, and the [`Plan`] the facade makes for it ([`Facade::plan`]).
//!
//! Validation runs before the rate-limit decision only so that one decision
//! covers the call: the caller's bucket is always spent (invalid requests
//! count against their sender), Cognito's quota buckets only when the
//! request is valid and so will reach Cognito. A call over its limit is
//! refused as RESOURCE_EXHAUSTED whether or not it was valid. A read, and
//! a refusal at any stage, leave only the completed record.

pub mod drift;
pub mod fixtures;
pub mod gate;
pub mod ops;
pub mod walk;

#[cfg(test)]
mod tests;

use std::{future::Future, sync::Arc, time::Instant};

use crate::audit::settings::AuditLevel;
use crate::audit::{Auditor, CallAudit, Caller, ChangeRecord, Completed};
use crate::auth::guardrails::{Changed, Finding, Guardrails, Subject};
use crate::auth::{Principal, SharedAuth, policy::Scope};
use crate::backend::Backend;
use crate::domain::{AccessToken, PoolMfaConfig, Secret, UserRef, rules::Violations};
use crate::error::{Error, Result};
use crate::limits::{CognitoOp, Limiter, Refusal, UpstreamCall, key_of};
use crate::method::Method;
use crate::telemetry::trace::{CallTrace, KeyValue};
use serde::Serialize;

/// `server.request_timeout_ms` by default: the stages after decoding, at most.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;

/// One decoded request, ready to run: what differs from call to call.
/// Everything else — who may call it, its budgets, its records, its log
/// line — follows from its row in the method table and its [`Target`].
pub trait Operation: Send + Sized {
    /// The answer; the audit record's `response` is it, serialized by type
    /// (each [`crate::domain::Secret`] as its fingerprint).
    type Output: Send + Serialize;

    /// The method's row in the table: name, service, whether it mutates,
    /// the Cognito calls it makes.
    fn method(&self) -> &'static Method;

    /// What the call acts on: for the policy, the budgets and the record.
    fn target(&self) -> Target<'_>;

    /// The Cognito calls `run` makes under `plan`, for the quota guard:
    /// by default each call of the method's row, keyed by the target. A
    /// method whose calls depend on the request or the plan (a conditional
    /// write, a pre-flight read) says which.
    fn upstream(&self, _plan: &Plan) -> Vec<UpstreamCall> {
        let target = self.target();
        self.method()
            .cognito
            .iter()
            .map(|op| target.call(*op))
            .collect()
    }

    /// A dry run (`validate_only`) of a mutating method: it changes nothing,
    /// so it is audited as a read.
    fn dry_run(&self) -> bool {
        false
    }

    /// The request as the audit record shows it; secrets by their type.
    fn audit_request(&self) -> impl Serialize;

    /// The method whose `[[guardrails]]` this call is held to: a change's
    /// own; a check's, the change it checks. `None`: no guardrail applies.
    fn guarded_as(&self) -> Option<&'static Method> {
        self.method().mutating.then(|| self.method())
    }

    /// Whether `run` reads pools' histories (`Plan::history`): handed only
    /// to the calls that do.
    fn reads_history(&self) -> bool {
        false
    }

    /// Cognito's input rules for this request; every bad field is added.
    fn validate(&self, violations: &mut Violations);

    /// Calls the backend, as `plan` says. Runs only when `validate` found
    /// nothing and the call was admitted.
    fn run(
        self,
        backend: &dyn Backend,
        plan: &Plan,
    ) -> impl Future<Output = Result<Ran<Self::Output>>> + Send;
}

/// What the facade decides about a call before it runs, from its
/// configuration and the call ([`Facade::plan`]); never filled in by the
/// API. Operations that neither read before writing nor change a pool
/// ignore it.
#[derive(Default)]
pub struct Plan {
    /// Read a pool's configuration before changing it, so that the audit
    /// record holds before and after (whenever the call is audited).
    pub capture_before: bool,
    /// `backend.preflight`: hold a pool change to the rules of the pool's
    /// own state (`domain::pool_state`), before writing and in a dry run.
    pub check_state: bool,
    /// The `[[guardrails]]` that cover the call (its `guarded_as` method
    /// on its pool), after the pre-flight, before writing and in a dry run.
    pub guard: Option<Guard>,
    /// For an operation whose Cognito calls depend on what it finds (a
    /// reset's second device): takes their quota as it makes them.
    pub pacer: Option<Pacer>,
    /// Where pools' MFA histories are read (the audit store), for the
    /// history calls; none without `[audit] file` or `[audit.s3]`.
    pub history: Option<crate::audit::history::History>,
}

/// Takes the quota of a Cognito call that admission could not charge (an
/// operation learns how many it makes only as it runs), with the same
/// buckets admission would have used; while refused it waits, until the
/// call's deadline ends the wait.
#[derive(Clone)]
pub struct Pacer {
    limiter: Arc<Limiter>,
    caller: [u8; 16],
    method: &'static str,
}

impl Pacer {
    pub async fn take(&self, call: UpstreamCall) {
        let buckets: Vec<_> = self
            .limiter
            .budgets()
            .buckets(self.caller, self.method, std::slice::from_ref(&call))
            .into_iter()
            // The caller's budget was charged once, at admission.
            .skip(1)
            .collect();
        if buckets.is_empty() {
            return;
        }
        self.limiter
            .wait(&buckets, |refusal| {
                crate::meters::quota_waited(self.method, refusal.id.name())
            })
            .await;
    }
}

/// What a call acts on.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// A pool, by id.
    Pool(&'a str),
    /// A pool the call creates: no id exists to authorize on, so only a
    /// grant over every pool (`user_pools = ["*"]`) allows it.
    NewPool,
    /// A user named by an admin: pool and username.
    User {
        user_pool_id: &'a str,
        username: &'a str,
    },
    /// The end user of an access token.
    Token(&'a AccessToken),
    /// A TOTP enrolment step: by access token, or by the session of an
    /// MFA_SETUP challenge.
    TokenOrSession(Option<&'a AccessToken>, Option<&'a Secret>),
}

impl<'a> Target<'a> {
    pub fn of_user(user: &'a UserRef) -> Self {
        match user {
            UserRef::AccessToken(t) => Target::Token(t),
            UserRef::Admin {
                user_pool_id,
                username,
            } => Target::User {
                user_pool_id,
                username,
            },
        }
    }

    /// The pool, for the policy: the request's `user_pool_id`, or for
    /// access-token calls the pool in the token's `iss` claim (unverified:
    /// routing only). `None` when it cannot be told: a session names no
    /// pool the facade can read, so only a "*" grant covers that flow.
    pub fn user_pool(&self) -> Option<&'a str> {
        match *self {
            Target::Pool(p)
            | Target::User {
                user_pool_id: p, ..
            } => Some(p),
            Target::NewPool | Target::TokenOrSession(None, _) => None,
            Target::Token(t) | Target::TokenOrSession(Some(t), _) => t.user_pool(),
        }
    }

    /// The end user, for the record: a username, or the access token's
    /// unverified `sub`.
    pub fn end_user(&self) -> Option<&'a str> {
        match *self {
            Target::User { username, .. } => Some(username),
            Target::Token(t) | Target::TokenOrSession(Some(t), _) => t.subject(),
            _ => None,
        }
    }

    /// One Cognito call about this target, keyed for the quotas: a pool by
    /// its id; a user by pool and username, or by a hash of the access
    /// token (never its unverified `sub`: a forged token must not spend its
    /// victim's budget), or by a fingerprint of the session.
    pub fn call(&self, op: CognitoOp) -> UpstreamCall {
        match *self {
            Target::Pool(p) => UpstreamCall::pool(op, p),
            Target::NewPool => UpstreamCall::user(op, None, None),
            Target::User {
                user_pool_id,
                username,
            } => UpstreamCall::user(op, Some(user_pool_id.into()), Some(username.into())),
            Target::Token(t) | Target::TokenOrSession(Some(t), _) => {
                UpstreamCall::user(op, t.user_pool().map(str::to_owned), Some(t.budget_key()))
            }
            Target::TokenOrSession(None, Some(s)) => UpstreamCall::user(
                op,
                None,
                Some(format!(
                    "session:{}",
                    crate::hash::hex(&key_of(&[s.expose()]))
                )),
            ),
            Target::TokenOrSession(None, None) => UpstreamCall::user(op, None, None),
        }
    }
}

/// What `run` gives: the answer, and for a pool change the configuration
/// before and after (the audit record's; the answer does not carry it) and
/// the guardrails it passed without satisfying (warn, audit).
pub struct Ran<T> {
    pub output: T,
    pub change: Option<Change>,
    pub findings: Vec<Finding>,
    /// The pool's configuration as Cognito answered a read of it, for the
    /// drift watch ([`drift::Drift::observed`]).
    pub observed: Option<PoolMfaConfig>,
}

impl<T> From<T> for Ran<T> {
    fn from(output: T) -> Self {
        Self {
            output,
            change: None,
            findings: Vec::new(),
            observed: None,
        }
    }
}

/// The guardrails that cover a change, and who makes it.
pub struct Guard {
    pub rails: Guardrails,
    pub method: &'static str,
    /// A call that is another's change too (a restore is a Set): its own
    /// method's guardrails hold it as well.
    pub also: Option<&'static str>,
    pub principal: (String, &'static str),
}

/// A change as the guardrails see it.
pub struct Proposed<'a> {
    pub user_pool_id: &'a str,
    pub validate_only: bool,
    pub before: &'a PoolMfaConfig,
    pub after: &'a PoolMfaConfig,
    pub state: Option<&'a crate::domain::PoolState>,
}

impl Guard {
    /// Every guardrail covering the change that does not hold.
    pub fn findings(&self, p: &Proposed<'_>) -> Vec<Finding> {
        let mut found = Vec::new();
        for method in std::iter::once(self.method).chain(self.also) {
            for f in self.rails.check(
                method,
                &Subject {
                    method,
                    user_pool_id: p.user_pool_id,
                    validate_only: p.validate_only,
                    principal: (&self.principal.0, self.principal.1),
                    change: Changed::Pool {
                        before: p.before,
                        after: p.after,
                    },
                    state: p.state,
                },
            ) {
                if !found.iter().any(|g: &Finding| g.guardrail == f.guardrail) {
                    found.push(f);
                }
            }
        }
        found
    }

    /// The findings of a change of one user (`auth::guardrails::USER_CHANGES`):
    /// as [`Guard::check`], the expression seeing `request.username`.
    pub fn check_user(
        &self,
        user_pool_id: &str,
        username: &str,
        validate_only: bool,
    ) -> Result<Vec<Finding>> {
        let found = self.rails.check(
            self.method,
            &Subject {
                method: self.method,
                user_pool_id,
                validate_only,
                principal: (&self.principal.0, self.principal.1),
                change: Changed::User { username },
                state: None,
            },
        );
        Self::verdict(found)
    }

    /// The findings of a change against the guardrails: an error when one
    /// that denies does not hold, else those that warn or audit, for the
    /// answer and the record.
    pub fn check(&self, p: &Proposed<'_>) -> Result<Vec<Finding>> {
        Self::verdict(self.findings(p))
    }

    fn verdict(found: Vec<Finding>) -> Result<Vec<Finding>> {
        let denied: Vec<(String, String)> = found
            .iter()
            .filter(|f| f.denies())
            .map(|f| (f.guardrail.clone(), f.detail()))
            .collect();
        if denied.is_empty() {
            Ok(found)
        } else {
            Err(Error::GuardrailDenied(denied))
        }
    }
}

/// A pool's MFA configuration before and after a change.
pub struct Change {
    pub before: PoolMfaConfig,
    pub after: PoolMfaConfig,
    /// A restore's revision.
    pub restored_from: Option<String>,
}

/// An operation as decoded from the wire, with what decoding found wrong
/// (an unknown enum value, say), reported together with `validate`'s findings.
pub struct Decoded<O> {
    pub op: O,
    pub violations: Violations,
}

impl<O> Decoded<O> {
    pub fn new(op: O, violations: Violations) -> Self {
        Self { op, violations }
    }
}

/// Who is calling and which call this is.
pub struct CallContext {
    pub request_id: String,
    /// Set by the auth layer; `None` only if the layer is missing.
    pub principal: Option<Principal>,
    /// Set by the trace layer when tracing is on; else by the gate when the
    /// caller sent a valid `traceparent` (then only its id, for the log line).
    pub trace: Option<CallTrace>,
    /// The caller's address.
    pub peer: Option<std::net::SocketAddr>,
    /// Messages of the `warn` guardrails the call passed, for the answer's
    /// `x-mfa-facade-warning` trailer.
    pub warnings: std::sync::Mutex<Vec<String>>,
    /// The caller's own deadline (its `grpc-timeout`), a little before it
    /// (`api`), so that the facade answers before tonic gives up on the call.
    pub deadline: Option<tokio::time::Instant>,
}

/// What every call passes through after decoding.
#[derive(Clone)]
pub struct Facade {
    backend: Arc<dyn Backend>,
    auth: SharedAuth,
    limiter: Arc<Limiter>,
    auditor: Arc<Auditor>,
    /// `server.request_timeout_ms`: the stages after decoding, at most.
    timeout: std::time::Duration,
    /// `backend.preflight`: pool changes check the pool's state first.
    preflight: bool,
    /// Coverage walks in flight (`limits.walk.max_concurrent`).
    walks: Arc<tokio::sync::Semaphore>,
    /// The walk cursors' MAC key, derived from the deployment secret.
    cursor_key: crate::hash::HmacKey,
    /// The history pages' MAC key, derived from the deployment secret.
    history_key: crate::hash::HmacKey,
    /// The drift watch, when the audit store keeps a history.
    drift: Option<Arc<drift::Drift>>,
}

impl Facade {
    pub fn new(
        backend: Arc<dyn Backend>,
        auth: SharedAuth,
        limiter: Arc<Limiter>,
        auditor: Arc<Auditor>,
    ) -> Self {
        let walks = Arc::new(tokio::sync::Semaphore::new(
            limiter.budgets().walk.max_concurrent,
        ));
        Self {
            backend,
            auth,
            limiter,
            auditor,
            timeout: std::time::Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS),
            preflight: true,
            walks,
            // Until `with_secret`: a key of this process alone.
            cursor_key: crate::hash::HmacKey::new(uuid::Uuid::new_v4().as_bytes()),
            history_key: crate::hash::HmacKey::new(uuid::Uuid::new_v4().as_bytes()),
            drift: None,
        }
    }

    /// The drift watch reads hand their configurations to.
    pub fn with_drift(mut self, drift: Option<Arc<drift::Drift>>) -> Self {
        self.drift = drift;
        self
    }

    /// The drift watch, when the audit store keeps a history.
    pub fn drift(&self) -> Option<&Arc<drift::Drift>> {
        self.drift.as_ref()
    }

    /// The key of ListUserPoolMfaConfigHistory's page tokens.
    pub fn history_key(&self) -> &crate::hash::HmacKey {
        &self.history_key
    }

    /// Keys what the facade hands out and takes back (the walk's cursors)
    /// with the deployment secret, so that any replica takes them back.
    pub fn with_secret(mut self, secret: &crate::hash::DeploymentSecret) -> Self {
        self.cursor_key = secret.derive(walk::CURSOR_KEY_LABEL);
        self.history_key = secret.derive(ops::history::PAGE_KEY_LABEL);
        self
    }

    pub fn with_preflight(mut self, preflight: bool) -> Self {
        self.preflight = preflight;
        self
    }

    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Deny by default: the principal needs a rule granting this method on
    /// this pool. The refusal never says whether the pool exists.
    fn authorize<'p>(
        &self,
        principal: Option<&'p Principal>,
        method: &str,
        pool: Option<&str>,
        creates_pool: bool,
    ) -> Result<&'p Principal> {
        let Some(principal) = principal else {
            return Err(Error::Unauthenticated("no credentials".into()));
        };
        let scope = if creates_pool {
            Scope::NewPool
        } else {
            Scope::Pool(pool.unwrap_or(""))
        };
        if self.auth.load().policy.allows(principal, method, scope) {
            Ok(principal)
        } else if creates_pool {
            Err(Error::PermissionDenied(format!(
                "{} may not call {method}: creating a user pool needs a grant over every pool (user_pools = [\"*\"])",
                principal.name
            )))
        } else {
            Err(Error::PermissionDenied(format!(
                "{} may not call {method} on user pool {}",
                principal.name,
                pool.unwrap_or("(unknown)")
            )))
        }
    }

    /// One decision for the caller's budget and, when the request will
    /// reach Cognito, the quota buckets of its Cognito calls.
    async fn limit(
        &self,
        principal: &Principal,
        method: &'static str,
        upstream: &[UpstreamCall],
    ) -> Result<()> {
        let buckets = self
            .limiter
            .budgets()
            .buckets(principal.budget_key, method, upstream);
        self.limiter.check(&buckets).await.map_err(|r: Refusal| {
            let limit = r.id.name();
            crate::meters::rate_limited(method, limit.clone());
            Error::RateLimited {
                description: r.id.describe(r.rate),
                limit,
                retry_after: r.retry_after,
            }
        })
    }

    /// The admission of every call, unary or the walk's start (DESIGN.md
    /// §5): authorize -> validate -> limits. `validate` adds what the
    /// request breaks (to what decoding found) and gives what it checked;
    /// `upstream` names the Cognito calls a valid request will make, for
    /// the quota buckets. A refusal is the call's error.
    #[allow(clippy::too_many_arguments)]
    async fn admit<'p, V>(
        &self,
        trace: Option<&CallTrace>,
        principal: Option<&'p Principal>,
        method: &'static str,
        target: Target<'_>,
        mut violations: Violations,
        validate: impl FnOnce(&mut Violations) -> V,
        upstream: impl FnOnce() -> Vec<UpstreamCall>,
    ) -> Result<(&'p Principal, V)> {
        let creates_pool = matches!(target, Target::NewPool);
        let principal = CallTrace::time(trace, "policy", || {
            self.authorize(principal, method, target.user_pool(), creates_pool)
        })?;
        let span = CallTrace::start_stage(trace, "validate");
        let checked = validate(&mut violations);
        span.end((!violations.is_empty()).then_some(tonic::Code::InvalidArgument));
        let upstream = if violations.is_empty() {
            upstream()
        } else {
            Vec::new()
        };
        CallTrace::time_async(trace, "limits", self.limit(principal, method, &upstream)).await?;
        violations.into_result()?;
        Ok((principal, checked))
    }

    /// What the facade decides about `op` before it runs (see [`Plan`]).
    fn plan<O: Operation>(&self, op: &O, audit: &CallAudit, ctx: &CallContext) -> Plan {
        let pool = op.target().user_pool();
        let guard = match (op.guarded_as(), &ctx.principal, pool) {
            (Some(as_method), Some(p), Some(pool)) => {
                let rails = &self.auth.load().guardrails;
                // A change guarded as another (a restore, as a Set) is held
                // to its own method's guardrails too.
                let own = op.method();
                let also = (own.mutating && own != as_method).then_some(own.name);
                (rails.apply_to(as_method.name, pool)
                    || also.is_some_and(|m| rails.apply_to(m, pool)))
                .then(|| Guard {
                    rails: rails.clone(),
                    method: as_method.name,
                    also,
                    principal: (p.name.clone(), p.proven_by.name()),
                })
            }
            _ => None,
        };
        Plan {
            capture_before: audit.level() != AuditLevel::None,
            check_state: self.preflight,
            guard,
            pacer: ctx.principal.as_ref().map(|p| Pacer {
                limiter: self.limiter.clone(),
                caller: p.budget_key,
                method: op.method().name,
            }),
            history: op
                .reads_history()
                .then(|| self.auditor.history().cloned())
                .flatten(),
        }
    }

    /// The call's record, opened before anything can refuse it: who
    /// calls, what, on which pool and user, and where the call goes
    /// (account, Region); the trace says who and which pool.
    fn open_record(
        &self,
        ctx: &CallContext,
        method: &'static str,
        mutating: bool,
        pool: Option<&str>,
        end_user: Option<&str>,
    ) -> CallAudit {
        let principal = ctx.principal.as_ref();
        let mut audit = CallAudit::new(
            self.auditor.clone(),
            &Caller {
                request_id: &ctx.request_id,
                principal: principal.map(|p| (p.name.as_str(), p.proven_by.name())),
                peer: ctx.peer,
            },
            method,
            mutating,
            pool,
            end_user,
        );
        if let Some(p) = self
            .backend
            .placement(pool, principal.map(|p| p.name.as_str()))
        {
            audit.placement(&p.account, &p.region, p.source_identity.as_deref());
        }
        if let Some(p) = principal.filter(|_| CallTrace::recording(ctx.trace.as_ref())) {
            let mut who = vec![KeyValue::new("mfa_facade.principal", p.name.clone())];
            if let Some(pool) = pool {
                // Not validated yet: bounded as Cognito's pool ids are (55).
                let pool = crate::domain::text::truncate(pool, 64).into_owned();
                who.push(KeyValue::new("mfa_facade.user_pool_id", pool));
            }
            CallTrace::annotate(ctx.trace.as_ref(), who);
        }
        audit
    }

    /// After admission: audit "received" (changes only; durable first when
    /// `wait`, by `deadline`), then the backend.
    #[allow(clippy::too_many_arguments)]
    async fn run<O: Operation>(
        &self,
        trace: Option<&CallTrace>,
        principal: &Principal,
        op: O,
        plan: &Plan,
        audit: &mut CallAudit,
        wait: bool,
        deadline: tokio::time::Instant,
    ) -> Result<Ran<O::Output>> {
        let method = op.method().name;
        let span = audit
            .has_received()
            .then(|| CallTrace::start_stage(trace, "audit received"));
        // Bounded by the call's deadline: a sink that cannot make the record
        // durable in time refuses the change, and the backend is not called.
        let durable = audit
            .received(wait)
            .durable_by(deadline)
            .await
            .map_err(Error::AuditUnavailable);
        if let Some(span) = span {
            span.end_with(&durable);
        }
        durable?;
        let started = Instant::now();
        let traced = CallTrace::clock(trace);
        let acting = self
            .backend
            .acts_for_callers()
            .then(|| Arc::<str>::from(principal.name.as_str()));
        let run = crate::upstream::act_for(acting, op.run(&*self.backend, plan));
        let result = match traced {
            // A traced call keeps its Cognito requests for the backend's span.
            Some(_) => {
                let requests = crate::upstream::Requests::default();
                let result = requests.scope(run).await;
                let code = result.as_ref().err().map(Error::code);
                CallTrace::backend(trace, self.backend.name(), traced, requests.take(), code);
                result
            }
            None => run.await,
        };
        crate::meters::upstream_seconds(
            method,
            self.backend.name(),
            started.elapsed().as_secs_f64(),
        );
        result
    }

    /// A unary call after decoding, the whole of DESIGN.md §5 in its
    /// order. Every wait ends by the call's deadline; a refusal at any
    /// stage leaves only the completed record.
    pub async fn execute<O: Operation>(
        &self,
        ctx: &CallContext,
        decoded: Decoded<O>,
    ) -> Result<O::Output> {
        let started = Instant::now();
        let Decoded { op, violations } = decoded;
        let method = op.method().name;
        let target = op.target();
        let target_pool = matches!(target, Target::Pool(_))
            .then(|| target.user_pool().map(str::to_owned))
            .flatten();
        let mutating = op.method().mutating && !op.dry_run();
        let mut audit =
            self.open_record(ctx, method, mutating, target.user_pool(), target.end_user());
        let plan = self.plan(&op, &audit, ctx);
        audit.request(|| op.audit_request());
        // fail_closed: a change waits for its records to be durable.
        let wait = mutating && self.auditor.fail_closed();
        // The call's deadline: server.request_timeout_ms, or the caller's
        // own when sooner. Every wait below ends by it.
        let now = tokio::time::Instant::now();
        let deadline = ctx
            .deadline
            .map_or(now + self.timeout, |d| d.min(now + self.timeout));
        let trace = ctx.trace.as_ref();
        // Inside the pipeline, not around it: a call cut off by the deadline
        // still gets its completed record.
        let stages = async {
            let (principal, ()) = self
                .admit(
                    trace,
                    ctx.principal.as_ref(),
                    method,
                    op.target(),
                    violations,
                    |v| op.validate(v),
                    || op.upstream(&plan),
                )
                .await?;
            self.run(trace, principal, op, &plan, &mut audit, wait, deadline)
                .await
        };
        let exceeded = || {
            Error::DeadlineExceeded(
                u64::try_from(deadline.saturating_duration_since(now).as_millis())
                    .unwrap_or(u64::MAX),
            )
        };
        // A call whose deadline has already passed is not started (a timer
        // is checked only after the work's first step, which may write).
        let result = if deadline <= now {
            drop(stages);
            Err(exceeded())
        } else {
            tokio::time::timeout_at(deadline, stages)
                .await
                .unwrap_or_else(|_| Err(exceeded()))
        };
        let ran = result.as_ref().ok();
        let change = ran.and_then(|r| r.change.as_ref()).map(|c| ChangeRecord {
            before: audit.value(&c.before),
            after: audit.value(&c.after),
            etag: crate::domain::etag::of(&c.after),
            changed_fields: ops::pool::changed_fields(&c.before, &c.after),
            restored_from: c.restored_from.clone(),
        });
        if let (Some(drift), Some(pool), Some(r)) = (&self.drift, target_pool.as_deref(), ran) {
            if let Some(c) = &change {
                drift.made(pool, c.etag.clone());
            } else if let Some(seen) = &r.observed {
                drift.observed(pool, seen);
            }
        }
        let response = ran
            .filter(|_| audit.level() == AuditLevel::RequestResponse)
            .map(|r| audit.value(&r.output));
        let findings = ran.map(|r| &r.findings).filter(|f| !f.is_empty());
        if let Some(found) = findings {
            let warnings = found.iter().filter(|f| f.warns()).map(Finding::describe);
            ctx.warnings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(warnings);
        }
        let guardrails = findings.map(|f| audit.value(f));
        let completed = audit.completed(
            Completed {
                error: result.as_ref().err(),
                latency: started.elapsed(),
                change,
                guardrails,
                response,
            },
            wait,
        );
        let mut result = result.map(|r| r.output);
        let audited = audit.level() != AuditLevel::None;
        let span = audited.then(|| CallTrace::start_stage(trace, "audit completed"));
        let durable = completed.durable_by(deadline).await;
        if let Some(span) = span {
            span.end(durable.as_ref().err().map(|_| tonic::Code::Unavailable));
        }
        CallTrace::set_status(
            trace,
            result.as_ref().err().map_or(tonic::Code::Ok, Error::code),
        );
        if let Err(e) = durable {
            crate::events::AuditCompletedNotDurable {
                method,
                request_id: &ctx.request_id,
                error: &e,
            }
            .emit();
            // fail_closed: a change is answered OK only once its outcome is
            // durable (as Vault answers no request it cannot log).
            if wait && result.is_ok() {
                result = Err(Error::AuditCompletedUnavailable(e));
            }
        }
        if let Err(e) = &result
            && e.code() == tonic::Code::ResourceExhausted
            && let Some(exception) = e.cognito_exception()
        {
            crate::meters::upstream_throttled(method, exception.to_owned());
        }
        self.log_completed(
            ctx,
            method,
            result.as_ref().map(|_| ()),
            started.elapsed(),
            trace.and_then(CallTrace::span_id),
        );
        result
    }

    /// The call's log line, after its completed record.
    fn log_completed(
        &self,
        ctx: &CallContext,
        method: &'static str,
        result: std::result::Result<(), &Error>,
        latency: std::time::Duration,
        span_id: Option<&str>,
    ) {
        crate::events::CallCompleted {
            method,
            request_id: &ctx.request_id,
            principal: ctx.principal.as_ref().map_or("", |p| p.name.as_str()),
            backend: self.backend.name(),
            result,
            latency,
            trace_id: ctx.trace.as_ref().map(CallTrace::trace_id),
            span_id,
        }
        .emit();
    }
}

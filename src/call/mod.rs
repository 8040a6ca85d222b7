//! The way of a call, in one place (DESIGN.md §5).
//!
//! The auth layer has already decided who is calling. `api` decodes a
//! request — of either service, or of the local fixtures ([`fixtures`]) —
//! into an [`Operation`]; [`Facade::execute`] then takes it through the
//! stages after decoding:
//!
//!   authorize (principal + proof, method, pool) -> validate -> rate limit
//!     -> audit "received" (changes only) -> backend -> audit "completed" -> log
//!
//! Validation runs before the rate-limit decision only so that one decision
//! covers the call: the caller's bucket is always spent (invalid requests
//! count against their sender), Cognito's quota buckets only when the
//! request is valid and so will reach Cognito. A call over its limit is
//! refused as RESOURCE_EXHAUSTED whether or not it was valid. A read, and
//! a refusal at any stage, leave only the completed record.

pub mod fixtures;
pub mod gate;
pub mod ops;

use std::{future::Future, sync::Arc, time::Instant};

use crate::audit::settings::AuditLevel;
use crate::audit::{Auditor, CallAudit, Caller, Completed};
use crate::auth::{Principal, SharedAuth, policy::Scope};
use crate::backend::Backend;
use crate::domain::rules::Violations;
use crate::error::{Error, Result};
use crate::limits::{Limiter, Refusal, UpstreamCall};
use crate::method::Method;
use crate::telemetry;

/// `server.request_timeout_ms` by default: the stages after decoding, at most.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;

/// One decoded request, ready to run.
pub trait Operation: Send + Sized {
    type Output: Send + AuditOutput;

    /// The method's row in the table: name, service, whether it mutates.
    fn method(&self) -> &'static Method;

    /// The user pool the call acts on, for the policy: the request's
    /// `user_pool_id`, or for access-token calls the pool in the token's
    /// `iss` claim (unverified: routing only). `None` when it cannot be told.
    fn user_pool(&self) -> Option<String>;

    /// The call creates a user pool: no id exists to authorize on, so only
    /// a grant over every pool (`user_pools = ["*"]`) allows it.
    fn creates_pool(&self) -> bool {
        false
    }

    /// The Cognito calls `run` makes, for the quota guard.
    fn upstream(&self) -> Vec<UpstreamCall>;

    /// A dry run (`validate_only`) of a mutating method: it changes nothing,
    /// so it is audited as a read.
    fn dry_run(&self) -> bool {
        false
    }

    /// The request as the audit record shows it. Secrets go under their
    /// own field names (`access_token`, `session`, `user_code`,
    /// `external_id`): the auditor replaces them by name.
    fn audit_request(&self) -> serde_json::Value;

    /// The end user the request names (a username, or the access token's
    /// unverified `sub`).
    fn target_user(&self) -> Option<String> {
        None
    }

    /// Pool changes: read the configuration before writing it, so that the
    /// audit record holds both.
    fn capture_before(&mut self) {}

    /// Cognito's input rules for this request; every bad field is added.
    fn validate(&self, violations: &mut Violations);

    /// Calls the backend. Runs only when `validate` found nothing.
    fn run(self, backend: &dyn Backend) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// What an operation's answer contributes to its audit record.
pub trait AuditOutput {
    /// The response (secrets under their field names, as for requests).
    fn audit_response(&self) -> serde_json::Value;
    /// A pool change: the configuration before and after.
    fn change(&self) -> Option<(serde_json::Value, serde_json::Value)> {
        None
    }
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
    /// The caller's address.
    pub peer: Option<std::net::SocketAddr>,
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
}

impl Facade {
    pub fn new(
        backend: Arc<dyn Backend>,
        auth: SharedAuth,
        limiter: Arc<Limiter>,
        auditor: Arc<Auditor>,
    ) -> Self {
        Self {
            backend,
            auth,
            limiter,
            auditor,
            timeout: std::time::Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS),
        }
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
        let buckets = self.limiter.budgets().buckets(
            &[principal.proven_by.name(), &principal.name],
            method,
            upstream,
        );
        self.limiter.check(&buckets).await.map_err(|r: Refusal| {
            let limit = r.id.name();
            metrics::counter!(
                "mfa_facade_rate_limited_total",
                "method" => method,
                "limit" => limit.clone()
            )
            .increment(1);
            Error::RateLimited {
                description: r.id.describe(r.rate),
                limit,
                retry_after: r.retry_after,
            }
        })
    }

    /// DESIGN.md §5 after decoding: authorize -> validate -> rate limit ->
    /// audit "received" (writes only; durable first when fail_closed) ->
    /// backend. A refusal at any of them leaves only the completed record.
    async fn stages<O: Operation>(
        &self,
        principal: Option<&Principal>,
        op: O,
        mut violations: Violations,
        pool: Option<&str>,
        audit: &mut CallAudit,
        wait: bool,
    ) -> Result<O::Output> {
        let method = op.method().name;
        let principal = self.authorize(principal, method, pool, op.creates_pool())?;
        op.validate(&mut violations);
        let upstream = if violations.is_empty() {
            op.upstream()
        } else {
            Vec::new()
        };
        self.limit(principal, method, &upstream).await?;
        violations.into_result()?;
        audit
            .received(wait)
            .durable()
            .await
            .map_err(Error::AuditUnavailable)?;
        let started = Instant::now();
        let result = op.run(&*self.backend).await;
        metrics::histogram!(
            "mfa_facade_upstream_seconds",
            "method" => method,
            "backend" => self.backend.name()
        )
        .record(started.elapsed().as_secs_f64());
        result
    }

    pub async fn execute<O: Operation>(
        &self,
        ctx: &CallContext,
        decoded: Decoded<O>,
    ) -> Result<O::Output> {
        let started = Instant::now();
        let Decoded { mut op, violations } = decoded;
        let method = op.method().name;
        let pool = op.user_pool();
        let mutating = op.method().mutating && !op.dry_run();
        let mut audit = CallAudit::new(
            self.auditor.clone(),
            &Caller {
                request_id: &ctx.request_id,
                principal: ctx
                    .principal
                    .as_ref()
                    .map(|p| (p.name.as_str(), p.proven_by.name())),
                peer: ctx.peer,
            },
            method,
            mutating,
            pool.as_deref(),
            || op.target_user(),
        );
        if audit.level() != AuditLevel::None {
            op.capture_before();
        }
        audit.request(|| op.audit_request());
        // fail_closed: a change waits for its records to be durable.
        let wait = mutating && self.auditor.fail_closed();
        // Inside the pipeline, not around it: a call cut off by the deadline
        // still gets its completed record.
        let result = tokio::time::timeout(
            self.timeout,
            self.stages(
                ctx.principal.as_ref(),
                op,
                violations,
                pool.as_deref(),
                &mut audit,
                wait,
            ),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Error::DeadlineExceeded(
                u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            ))
        });
        let level = audit.level();
        let completed = audit.completed(
            Completed {
                error: result.as_ref().err(),
                latency: started.elapsed(),
                change: result.as_ref().ok().and_then(AuditOutput::change),
                response: result
                    .as_ref()
                    .ok()
                    .filter(|_| level == AuditLevel::RequestResponse)
                    .map(AuditOutput::audit_response),
            },
            wait,
        );
        if let Err(e) = completed.durable().await {
            tracing::error!(event = "audit_completed_not_durable", method, request_id = %ctx.request_id, error = %e, "the call's completed audit record could not be made durable");
        }
        if let Err(e) = &result
            && e.code() == tonic::Code::ResourceExhausted
            && let Some(exception) = e.cognito_exception()
        {
            metrics::counter!(
                "mfa_facade_upstream_throttled_total",
                "method" => method,
                "exception" => exception.to_owned()
            )
            .increment(1);
        }
        telemetry::CallCompleted {
            method,
            request_id: &ctx.request_id,
            principal: ctx.principal.as_ref().map_or("", |p| p.name.as_str()),
            backend: self.backend.name(),
            result: result.as_ref().map(|_| ()),
            latency: started.elapsed(),
        }
        .emit();
        result
    }
}

//! The way of a call, in one place (DESIGN.md §5).
//!
//! The auth layer has already decided who is calling. `api` decodes a
//! request into an [`Operation`]; [`Facade::execute`] then takes it through
//! the stages after decoding:
//!
//!   authorize (method + pool) -> validate -> rate limit -> backend -> log
//!
//! Validation runs before the rate-limit decision only so that one decision
//! covers the call: the caller's bucket is always spent (invalid requests
//! count against their sender), Cognito's quota buckets only when the
//! request is valid and so will reach Cognito. A call over its limit is
//! refused as RESOURCE_EXHAUSTED whether or not it was valid. Audit slots
//! in around the backend.

pub mod ops;

use std::{future::Future, sync::Arc, time::Instant};

use crate::auth::{Principal, SharedAuth};
use crate::backend::Backend;
use crate::domain::rules::Violations;
use crate::error::{Error, Result};
use crate::limits::{Limiter, Refusal, UpstreamCall};
use crate::telemetry;

/// One decoded request, ready to run.
pub trait Operation: Send + Sized {
    type Output: Send;

    /// The full gRPC method, `package.Service/Method`.
    fn method(&self) -> &'static str;

    /// The user pool the call acts on, for the policy: the request's
    /// `user_pool_id`, or for access-token calls the pool in the token's
    /// `iss` claim (unverified: routing only). `None` when it cannot be told.
    fn user_pool(&self) -> Option<String>;

    /// The Cognito calls `run` makes, for the quota guard.
    fn upstream(&self) -> Vec<UpstreamCall>;

    /// Cognito's input rules for this request; every bad field is added.
    fn validate(&self, violations: &mut Violations);

    /// Calls the backend. Runs only when `validate` found nothing.
    fn run(self, backend: &dyn Backend) -> impl Future<Output = Result<Self::Output>> + Send;
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
}

/// What every call passes through after decoding.
#[derive(Clone)]
pub struct Facade {
    backend: Arc<dyn Backend>,
    auth: SharedAuth,
    limiter: Arc<Limiter>,
}

impl Facade {
    pub fn new(backend: Arc<dyn Backend>, auth: SharedAuth, limiter: Arc<Limiter>) -> Self {
        Self {
            backend,
            auth,
            limiter,
        }
    }

    /// Deny by default: the principal needs a rule granting this method on
    /// this pool. The refusal never says whether the pool exists.
    fn authorize<'p>(
        &self,
        principal: Option<&'p Principal>,
        method: &str,
        pool: Option<&str>,
    ) -> Result<&'p Principal> {
        let Some(principal) = principal else {
            return Err(Error::Unauthenticated("no credentials".into()));
        };
        if self
            .auth
            .load()
            .policy
            .allows(&principal.name, method, Some(pool.unwrap_or("")))
        {
            Ok(principal)
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
            .buckets(&principal.name, method, upstream);
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

    pub async fn execute<O: Operation>(
        &self,
        ctx: &CallContext,
        decoded: Decoded<O>,
    ) -> Result<O::Output> {
        let started = Instant::now();
        let Decoded { op, mut violations } = decoded;
        let method = op.method();
        let result = match self.authorize(ctx.principal.as_ref(), method, op.user_pool().as_deref())
        {
            Err(denied) => Err(denied),
            Ok(principal) => {
                op.validate(&mut violations);
                let upstream = if violations.is_empty() {
                    op.upstream()
                } else {
                    Vec::new()
                };
                match self.limit(principal, method, &upstream).await {
                    Err(limited) => Err(limited),
                    Ok(()) => match violations.into_result() {
                        Ok(()) => op.run(&*self.backend).await,
                        Err(invalid) => Err(invalid),
                    },
                }
            }
        };
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

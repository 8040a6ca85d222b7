//! The way of a call, in one place (DESIGN.md §5).
//!
//! The auth layer has already decided who is calling. `api` decodes a
//! request into an [`Operation`]; [`Facade::execute`] then takes it through
//! the stages after decoding: authorize (method + pool) -> validate ->
//! backend -> respond, logging the outcome. Rate limiting and audit slot in
//! here as stages of their own, after authorize and before validate, because
//! each needs the decoded target (pool, user).

pub mod ops;

use std::{future::Future, sync::Arc, time::Instant};

use crate::auth::{Principal, SharedAuth};
use crate::backend::Backend;
use crate::domain::rules::Violations;
use crate::error::{Error, Result};
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
}

impl Facade {
    pub fn new(backend: Arc<dyn Backend>, auth: SharedAuth) -> Self {
        Self { backend, auth }
    }

    /// Deny by default: the principal needs a rule granting this method on
    /// this pool. The refusal never says whether the pool exists.
    fn authorize(
        &self,
        principal: Option<&Principal>,
        method: &str,
        pool: Option<&str>,
    ) -> Result<()> {
        let Some(principal) = principal else {
            return Err(Error::Unauthenticated("no credentials".into()));
        };
        if self
            .auth
            .load()
            .policy
            .allows(&principal.name, method, Some(pool.unwrap_or("")))
        {
            Ok(())
        } else {
            Err(Error::PermissionDenied(format!(
                "{} may not call {method} on user pool {}",
                principal.name,
                pool.unwrap_or("(unknown)")
            )))
        }
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
            Ok(()) => {
                op.validate(&mut violations);
                match violations.into_result() {
                    Ok(()) => op.run(&*self.backend).await,
                    Err(invalid) => Err(invalid),
                }
            }
        };
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

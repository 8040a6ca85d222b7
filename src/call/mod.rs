//! The way of a call, in one place (DESIGN.md §5).
//!
//! `api` decodes a request into an [`Operation`]; [`Facade::execute`] then
//! takes it through the stages after decoding: validate -> backend ->
//! respond, logging the outcome. Authorization, rate limiting and audit slot
//! in here as stages of their own, in that order, between decode and
//! validate, because each needs the decoded target (pool, user).

pub mod ops;

use std::{future::Future, sync::Arc, time::Instant};

use crate::backend::Backend;
use crate::domain::rules::Violations;
use crate::error::Result;
use crate::telemetry;

/// One decoded request, ready to run.
pub trait Operation: Send + Sized {
    type Output: Send;

    /// The full gRPC method, `package.Service/Method`.
    fn method(&self) -> &'static str;

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

/// What every call passes through after decoding.
#[derive(Clone)]
pub struct Facade {
    backend: Arc<dyn Backend>,
}

impl Facade {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self { backend }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub async fn execute<O: Operation>(
        &self,
        request_id: &str,
        decoded: Decoded<O>,
    ) -> Result<O::Output> {
        let started = Instant::now();
        let Decoded { op, mut violations } = decoded;
        let method = op.method();
        op.validate(&mut violations);
        let result = match violations.into_result() {
            Ok(()) => op.run(&*self.backend).await,
            Err(invalid) => Err(invalid),
        };
        telemetry::CallCompleted {
            method,
            request_id,
            backend: self.backend.name(),
            result: result.as_ref().map(|_| ()),
            latency: started.elapsed(),
        }
        .emit();
        result
    }
}

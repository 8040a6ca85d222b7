//! The requests one call made to Cognito, as its backend reports them for
//! the call's trace (`telemetry::trace`): which operation, in which Region,
//! Cognito's request id, how many attempts the SDK's retries took, when.
//!
//! A leaf, so that the backend (a stage) can report without naming the
//! telemetry stage: the pipeline opens a [`Requests`] around the backend
//! of a call it traces ([`Requests::scope`], a task-local); the cognito
//! backend's SDK interceptor [`record`]s into it. Outside a scope — a call
//! not traced, tracing off — [`recording`] is false and nothing is kept.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The most requests one call keeps: a call makes a handful (a read, a
/// pre-flight, a write); a walk is not traced per page.
pub const MAX_REQUESTS_PER_CALL: usize = 32;

/// One request, once it ended (after every retry).
#[derive(Clone, Debug)]
pub struct Request {
    /// The API, as the SDK names it: `CognitoIdentityProvider`.
    pub service: String,
    /// The operation: `SetUserPoolMfaConfig`.
    pub operation: String,
    pub region: String,
    /// Cognito's `x-amzn-requestid` of the last attempt, if it answered.
    pub request_id: Option<String>,
    /// Attempts the SDK made (1 when no retry was needed).
    pub attempts: u32,
    /// The last attempt's HTTP status, if an answer came.
    pub http_status: Option<u16>,
    /// Whether the request ended in an error (a service error, a timeout,
    /// no connection).
    pub failed: bool,
    pub started: SystemTime,
    pub ended: SystemTime,
}

/// The requests of one call, shared by the pipeline and the interceptor.
#[derive(Clone, Debug, Default)]
pub struct Requests(Arc<Mutex<Vec<Request>>>);

tokio::task_local! {
    static CURRENT: Requests;
    static ACTING_FOR: Arc<str>;
}

/// Runs `f` acting for `principal` (as it is when `None`): the backend's
/// requests inside it read it with [`acting_for`] (the cognito backend's
/// `source_identity` sessions). Scoped only for backends that ask
/// (`Backend::acts_for_callers`).
pub async fn act_for<F: std::future::Future>(principal: Option<Arc<str>>, f: F) -> F::Output {
    match principal {
        Some(p) => ACTING_FOR.scope(p, f).await,
        None => f.await,
    }
}

/// The principal the running call acts for, if [`act_for`] set one.
pub fn acting_for() -> Option<Arc<str>> {
    ACTING_FOR.try_with(Arc::clone).ok()
}

impl Requests {
    /// Runs `f` with this call's requests open for [`record`].
    pub async fn scope<F: std::future::Future>(&self, f: F) -> F::Output {
        CURRENT.scope(self.clone(), f).await
    }

    /// What was recorded, in order; empties it.
    pub fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Whether the running call keeps its requests (a task-local lookup).
pub fn recording() -> bool {
    CURRENT.try_with(|_| ()).is_ok()
}

/// Keeps one request for the running call's trace, if it keeps any.
pub fn record(request: Request) {
    let _ = CURRENT.try_with(|r| {
        let mut kept = r.0.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < MAX_REQUESTS_PER_CALL {
            kept.push(request);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(op: &str) -> Request {
        Request {
            service: "CognitoIdentityProvider".into(),
            operation: op.into(),
            region: "us-east-1".into(),
            request_id: None,
            attempts: 1,
            http_status: Some(200),
            failed: false,
            started: SystemTime::now(),
            ended: SystemTime::now(),
        }
    }

    #[tokio::test]
    async fn only_a_scope_records_and_it_is_bounded() {
        assert!(!recording());
        record(request("Outside"));
        let requests = Requests::default();
        requests
            .scope(async {
                assert!(recording());
                for _ in 0..MAX_REQUESTS_PER_CALL + 5 {
                    record(request("GetUserPoolMfaConfig"));
                }
            })
            .await;
        let kept = requests.take();
        assert_eq!(kept.len(), MAX_REQUESTS_PER_CALL);
        assert!(kept.iter().all(|r| r.operation == "GetUserPoolMfaConfig"));
        assert!(requests.take().is_empty());
    }
}

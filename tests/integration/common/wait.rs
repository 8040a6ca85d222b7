//! The one way the integration tests wait for something: poll, bounded
//! in time, and name what never came. Every wait of the suite goes through
//! here, so none can hang and each failure says what it waited for.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is polled.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `ready` until it gives a value, for at most `within`; `None` when
/// it never did.
pub fn poll<T>(within: Duration, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = ready() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// [`poll`], failing the test with `what` when the value never came.
pub fn until<T>(what: &str, within: Duration, ready: impl FnMut() -> Option<T>) -> T {
    poll(within, ready).unwrap_or_else(|| panic!("waited {within:?} for {what}"))
}

/// [`until`] for a condition.
pub fn until_true(what: &str, within: Duration, mut ready: impl FnMut() -> bool) {
    until(what, within, || ready().then_some(()))
}

/// [`poll`] for an async check, without blocking the runtime's thread.
pub async fn poll_async<T, F>(within: Duration, mut ready: impl FnMut() -> F) -> Option<T>
where
    F: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = ready().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`poll_async`], failing the test with `what` when the value never came.
pub async fn until_async<T, F>(what: &str, within: Duration, ready: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    poll_async(within, ready)
        .await
        .unwrap_or_else(|| panic!("waited {within:?} for {what}"))
}

//! Every line the service logs, in one place and in one voice. Each is a
//! struct named for what happened; its `emit` writes one JSON line —
//! `event` (a stable snake_case name, for alerts, dashboards and tests),
//! `message` (a sentence, for people), then its fields — and counts it where
//! a metric counts it (through [`crate::meters`]), so the log and the
//! metrics cannot tell two stories. A line's `target` is the stage the
//! event belongs to, for `RUST_LOG` filters (`RUST_LOG=mfa_facade::limits=debug`).
//!
//! The events live by area in `events/` (calls, limits, auth, backend,
//! audit, the server's life); this file holds the macro and the names.
//! Nothing outside these files calls `tracing`'s macros (a test holds that:
//! clippy's `disallowed-macros` cannot be allowed for this file alone, it
//! reports the macros inside `line!`'s expansion whatever the `allow`), so
//! [`NAMES`] is the log's whole vocabulary. No field here carries a
//! secret: a token, a key or a code never reaches an event.

use std::{fmt::Display, net::SocketAddr, path::Path, time::Duration};

use crate::error::Error;

/// Writes one line: `event`, `message`, then the fields as given.
macro_rules! line {
    ($level:ident, $target:literal, $event:expr, $message:literal $(, $($field:tt)+)?) => {
        tracing::$level!(target: $target, event = $event, message = $message $(, $($field)+)?)
    };
}

/// Every event name, once.
pub const NAMES: &[&str] = &[
    "call_completed",
    "call_failed",
    "call_refused",
    "call_unauthenticated",
    "call_unauthenticated_suppressed",
    "call_denied",
    "audit_completed_not_durable",
    "connection_refused",
    "ratelimit_redis_invalid",
    "ratelimit_redis_connected",
    "ratelimit_redis_restored",
    "ratelimit_fallback",
    "jwks_loaded",
    "jwks_refresh_failed",
    "config_warning",
    "config_reloaded",
    "config_reload_refused",
    "no_callers",
    "cognito_client_built",
    "cognito_unknown_mfa_mode",
    "local_checkpoint_failed",
    "audit_off",
    "audit_random_fingerprint_key",
    "audit_writer_stopped",
    "audit_torn_tail",
    "audit_file_mode",
    "audit_file_deleted",
    "audit_file_delete_failed",
    "audit_write_failed",
    "audit_flush_failed",
    "metrics_serving",
    "metrics_server_failed",
    "serving",
    "ready",
    "tracing_exporting",
    "not_ready",
    "account_credentials",
    "not_serving_audit_stopped",
    "not_serving_audit_stalled",
    "serving_audit_recovered",
    "deployment_secret_of_this_process",
    "call_abandoned",
    "pool_drift_recorded",
    "audit_history_repaired",
    "pool_drift_guardrail",
    "pool_drift_check_failed",
    "audit_signing_key_made",
    "audit_object_put_failed",
    "audit_checkpoint_not_signed",
    "shutdown_signal",
    "draining",
    "drain_timeout",
    "stopped",
    "stopped_with_error",
];

mod audit;
mod auth;
mod backend;
mod calls;
mod life;
mod limits;

pub use audit::*;
pub use auth::*;
pub use backend::*;
pub use calls::*;
pub use life::*;
pub use limits::*;

#[cfg(test)]
mod tests {
    use super::NAMES;

    /// Names are unique and snake_case; every name is emitted here and no
    /// file but this one writes a log line itself.
    #[test]
    fn every_event_is_here_once() {
        let mut names = NAMES.to_vec();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "an event listed twice");
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        // The events' code: this file (its tests aside) and src/events/.
        let this = std::fs::read_to_string(src.join("events.rs")).unwrap();
        let mut code = this
            .split("#[cfg(test)]\nmod tests {")
            .next()
            .unwrap()
            .to_owned();
        let mut parts = Vec::new();
        crate::layers::rust_files(&src.join("events"), &mut parts);
        assert!(parts.len() >= 6, "the events by area: {parts:?}");
        for f in parts {
            code.push_str(&std::fs::read_to_string(f).unwrap());
        }
        let is_events =
            |f: &std::path::Path| f.ends_with("events.rs") || f.starts_with(src.join("events"));
        for name in NAMES {
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            // Once in NAMES, once where it is written.
            let uses = code.matches(&format!("\"{name}\"")).count();
            assert!(uses >= 2, "{name} is never written");
        }
        let mut all = Vec::new();
        crate::layers::rust_files(&src, &mut all);
        // Every event's type is used outside this file: each name is
        // written by a `pub struct`'s emit, and that struct is built
        // somewhere (tests aside), else the event is never emitted.
        let elsewhere: String = all
            .iter()
            .filter(|f| !is_events(f))
            .map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                text.split("#[cfg(test)]\nmod tests {")
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let mut emitted = 0;
        for part in code.split("\npub struct ").skip(1) {
            let ty: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let names: Vec<&str> = NAMES
                .iter()
                .copied()
                .filter(|n| part.contains(&format!("\"{n}\"")))
                .collect();
            assert!(!names.is_empty(), "{ty} writes no event of NAMES");
            let built = [" {", ".emit()", "\n"]
                .iter()
                .any(|after| elsewhere.contains(&format!("events::{ty}{after}")))
                || elsewhere.contains(&format!("{ty} {{"));
            assert!(
                built,
                "{ty} ({names:?}) is never emitted outside src/events"
            );
            emitted += names.len();
        }
        assert!(
            emitted >= NAMES.len(),
            "every name belongs to an event type"
        );
        for f in all {
            if is_events(&f) {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            // Tests may log to see how a line is written.
            let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
            for level in ["trace", "debug", "info", "warn", "error", "event"] {
                assert!(
                    !code.contains(&format!("tracing::{level}!(")),
                    "{} logs a line itself (tracing::{level}!); add an event to src/events/",
                    f.display()
                );
            }
        }
    }
}

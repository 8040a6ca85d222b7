//! Hot reload of keys, JWKS and policy: on SIGHUP, and when the config
//! file, the keys file or the JWKS file changes (checked every
//! `auth.reload_interval_seconds`). The new state replaces the old one
//! atomically; connections and in-flight calls are untouched. A file that
//! no longer parses is logged and the last good state stays: a bad edit or a
//! half-written Secret never opens the door or locks everyone out.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use super::Config;
use crate::auth::{AuthState, SharedAuth};

/// What the watched files hold now (missing files count as empty).
fn fingerprint(files: &[PathBuf]) -> [u8; 32] {
    let mut hash = crate::hash::Sha256::default();
    for f in files {
        hash.update(f.to_string_lossy().as_bytes());
        hash.update(&std::fs::read(f).unwrap_or_default());
    }
    hash.finish()
}

/// Loads the configuration again and swaps in its auth state. Returns the
/// files to watch from now on (they may have changed).
pub async fn reload(config_path: &Path, shared: &SharedAuth, why: &str) -> Option<Vec<PathBuf>> {
    match Config::load(Some(config_path)) {
        Ok(config) => {
            let state = AuthState::load(&config, Some(&shared.load_full())).await;
            let keys = config.auth.api_keys.len();
            let rules = config.policy.rules.len();
            shared.store(Arc::new(state));
            crate::events::ConfigReloaded {
                why,
                api_keys: keys,
                policy_rules: rules,
            }
            .emit();
            Some(config.watched_files(config_path))
        }
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            crate::events::ConfigReloadRefused {
                why,
                errors: &errors.join("; "),
            }
            .emit();
            None
        }
    }
}

/// Watches for SIGHUP and for changes of `files`, until the process ends.
pub fn spawn(config_path: PathBuf, mut files: Vec<PathBuf>, shared: SharedAuth, every: Duration) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut seen = fingerprint(&files);
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            #[cfg(unix)]
            let why = tokio::select! {
                _ = tick.tick() => "file change",
                Some(_) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
            };
            #[cfg(not(unix))]
            let why = {
                tick.tick().await;
                "file change"
            };
            let now = fingerprint(&files);
            if why == "file change" && now == seen {
                continue;
            }
            seen = now;
            if let Some(new_files) = reload(&config_path, &shared, why).await {
                files = new_files;
                seen = fingerprint(&files);
            }
        }
    });
}

//! Hot reload of keys, JWKS and policy: on SIGHUP, and when the config
//! file, the keys file or the JWKS file changes (checked every
//! `auth.reload_interval_seconds`). The new state replaces the old one
//! atomically; connections and in-flight calls are untouched. A file that
//! no longer parses is logged and the last good state stays: a bad edit or a
//! half-written Secret never opens the door or locks everyone out.
//!
//! A file rewritten in place (truncated, then written: an editor, `cat >`)
//! is seen between the two. So a change is loaded only once the files have
//! read the same twice, [`SETTLE`] apart; what is loaded is parsed from the
//! very bytes that were compared (the next change is measured against
//! them, so a write during a reload is never missed); and an empty file —
//! the moment after a truncation — is refused, never loaded as a config or
//! keys file without keys (which would admit no caller).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use super::Config;
use crate::auth::{AuthState, SharedAuth};

/// How long changed files must stay the same before they are loaded.
pub const SETTLE: Duration = Duration::from_millis(250);

/// Rounds of [`SETTLE`] a change waits for the files to stop changing
/// (5 s); then what is there is loaded (and checked as any file is).
pub const MAX_SETTLE_ROUNDS: u32 = 20;

/// What the watched files held at one moment (`None`: missing or
/// unreadable), and their fingerprint.
struct Snapshot {
    files: HashMap<PathBuf, Option<Vec<u8>>>,
    fingerprint: [u8; 32],
}

impl Snapshot {
    fn take(files: &[PathBuf]) -> Self {
        let mut hash = crate::hash::Sha256::default();
        let mut held = HashMap::with_capacity(files.len());
        for f in files {
            let bytes = std::fs::read(f).ok();
            hash.update(f.to_string_lossy().as_bytes());
            match &bytes {
                Some(b) => {
                    hash.update(&(b.len() as u64).to_le_bytes());
                    hash.update(b);
                }
                None => hash.update(b"missing"),
            }
            held.insert(f.clone(), bytes);
        }
        Self {
            files: held,
            fingerprint: hash.finish(),
        }
    }

    /// Once the files read the same twice in a row, [`SETTLE`] apart (at
    /// most [`MAX_SETTLE_ROUNDS`] rounds), starting from `first`.
    async fn settled(first: Self, files: &[PathBuf]) -> Self {
        let mut last = first;
        for _ in 0..MAX_SETTLE_ROUNDS {
            tokio::time::sleep(SETTLE).await;
            let now = Self::take(files);
            if now.fingerprint == last.fingerprint {
                return now;
            }
            last = now;
        }
        last
    }

    /// A file as this snapshot holds it; one it does not hold (a keys file
    /// the new configuration names) from the disk.
    fn read(&self, path: &Path) -> std::io::Result<String> {
        match self.files.get(path) {
            Some(Some(bytes)) => String::from_utf8(bytes.clone())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Some(None) => Err(std::io::ErrorKind::NotFound.into()),
            None => std::fs::read_to_string(path),
        }
    }
}

/// Loads the configuration again from `snapshot` and swaps in its auth
/// state. Returns the files to watch from now on (they may have changed).
async fn reload_from(
    config_path: &Path,
    snapshot: &Snapshot,
    shared: &SharedAuth,
    why: &str,
) -> Option<Vec<PathBuf>> {
    let refused = |errors: &str| {
        crate::events::ConfigReloadRefused { why, errors }.emit();
        None
    };
    if let Some(empty) = snapshot
        .files
        .iter()
        .find(|(_, bytes)| bytes.as_ref().is_some_and(Vec::is_empty))
        .map(|(path, _)| path)
    {
        return refused(&format!(
            "{} is empty (being rewritten in place?); the last good configuration stays",
            empty.display()
        ));
    }
    match Config::load_with(Some(config_path), &|p| snapshot.read(p)) {
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
            refused(&errors.join("; "))
        }
    }
}

/// Watches for SIGHUP and for changes of `files`, until the process ends.
pub fn spawn(config_path: PathBuf, mut files: Vec<PathBuf>, shared: SharedAuth, every: Duration) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut seen = Snapshot::take(&files).fingerprint;
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
            let now = Snapshot::take(&files);
            if why == "file change" && now.fingerprint == seen {
                continue;
            }
            let snapshot = Snapshot::settled(now, &files).await;
            // Measured against what was loaded (or refused): a change made
            // while this reload ran differs from it and is loaded next.
            seen = snapshot.fingerprint;
            if let Some(new_files) = reload_from(&config_path, &snapshot, &shared, why).await
                && new_files != files
            {
                // Files the new configuration names were read after the
                // snapshot: compare them afresh at the next tick (one more
                // reload, from a snapshot that holds them).
                files = new_files;
                seen = [0; 32];
            }
        }
    });
}

//! The local backend's data: pools, users, MFA settings, TOTP secrets,
//! sessions, kept in one JSON file that is replaced crash-safely (write a
//! temp file, fsync it, rename it over the old one, fsync the directory).
//! A change is applied to a copy and becomes visible, and its writer is
//! answered, only once it is on disk, so a failed write changes nothing.
//! Changes that arrive together share one write and one fsync ([`Store`]).

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::domain::pool_state::{AuthFactor, EmailSendingAccount, Recovery};
use crate::domain::{PoolMfaConfig, Secret, WebAuthnCredential};
use crate::error::{Error, Result};

/// The version of the file's layout; a file of another version is refused.
pub const FORMAT: u32 = 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FeaturePlan {
    Lite,
    #[default]
    Essentials,
    Plus,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    pub format: u32,
    /// The HMAC key that signs this file's access tokens.
    pub signing_key: Secret,
    pub pools: BTreeMap<String, Pool>,
    /// MFA_SETUP sessions, by session string.
    #[serde(default)]
    pub sessions: BTreeMap<String, Session>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub id: String,
    pub name: String,
    pub region: String,
    #[serde(default)]
    pub feature_plan: FeaturePlan,
    /// The rest of the pool's state the pre-flight reads (DescribeUserPool's
    /// members), as the fixtures set it.
    #[serde(default)]
    pub state: PoolSettings,
    pub mfa: PoolMfaConfig,
    pub users: BTreeMap<String, User>,
}

/// What a pool holds beside its MFA configuration that decides which
/// configuration it can take. The defaults are a new Cognito pool's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSettings {
    #[serde(default)]
    pub email_sending_account: EmailSendingAccount,
    #[serde(default)]
    pub sms_configuration_failure: Option<String>,
    #[serde(default)]
    pub email_configuration_failure: Option<String>,
    #[serde(default)]
    pub first_auth_factors: Vec<AuthFactor>,
    #[serde(default)]
    pub recovery: Vec<Recovery>,
    /// AliasAttributes: email, phone_number, preferred_username. A user
    /// can be named by a verified alias wherever Admin* calls take a
    /// username.
    #[serde(default)]
    pub alias_attributes: Vec<String>,
    /// AutoVerifiedAttributes: phone_number, email.
    #[serde(default)]
    pub auto_verified_attributes: Vec<String>,
    /// The pool's domain (Domain), if it has one.
    #[serde(default)]
    pub domain: Option<String>,
    /// UsernameConfiguration.CaseSensitive. False (Cognito's default for a
    /// new pool): `Alice` and `alice` are one user, wherever a username or
    /// an alias names one.
    #[serde(default)]
    pub case_sensitive: bool,
    /// UsernameAttributes: email, phone_number. A user is created with
    /// one of them as its username, held as the attribute, and gets its
    /// sub as its username; the value names the user in Admin* calls.
    #[serde(default)]
    pub username_attributes: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub username: String,
    pub sub: String,
    pub status: String,
    pub enabled: bool,
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub mfa: UserMfa,
    /// The user's passkeys, oldest first.
    #[serde(default)]
    pub web_authn_credentials: Vec<WebAuthnCredential>,
}

/// What one user has set up: Cognito's user-level MFA state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserMfa {
    pub sms_enabled: bool,
    pub software_token_enabled: bool,
    pub email_enabled: bool,
    pub web_authn_enabled: bool,
    pub preferred: Option<Factor>,
    /// The verified authenticator.
    pub software_token: Option<SoftwareToken>,
    /// A secret handed out by AssociateSoftwareToken, not yet verified; it
    /// replaces `software_token` only once verified.
    pub pending_secret: Option<Secret>,
    /// Wrong TOTP codes in a row; from the fifth on, each locks the user
    /// out of code checks for twice as long as the one before.
    #[serde(default)]
    pub totp_failures: u32,
    /// Unix seconds before which no TOTP code is checked.
    #[serde(default)]
    pub totp_locked_until: u64,
    /// Unix seconds of the last wrong code: 15 minutes later without
    /// another, the count resets.
    #[serde(default)]
    pub totp_last_failure: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftwareToken {
    pub secret: Secret,
    pub friendly_device_name: Option<String>,
    /// The time step of the last code accepted: a code of it or an
    /// earlier step is a replay (RFC 6238 §5.2).
    #[serde(default)]
    pub last_step: u64,
}

/// The factors a user can prefer, by Cognito's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Factor {
    #[serde(rename = "SMS_MFA")]
    Sms,
    #[serde(rename = "SOFTWARE_TOKEN_MFA")]
    SoftwareToken,
    #[serde(rename = "EMAIL_OTP")]
    Email,
}

impl Factor {
    pub fn cognito_name(self) -> &'static str {
        match self {
            Factor::Sms => "SMS_MFA",
            Factor::SoftwareToken => "SOFTWARE_TOKEN_MFA",
            Factor::Email => "EMAIL_OTP",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    pub user_pool_id: String,
    pub username: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// Why the data file could not be opened. Start-up stops on any of these:
/// the file is never reset silently.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read the local data file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the local data file {path} is corrupt ({source}); fix it or move it away to start afresh — it is never reset automatically"
    )]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the local data file {path} has format {found}, this build reads format {FORMAT}")]
    Format { path: PathBuf, found: u32 },
    #[error("cannot write the local data file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The file and the two states of its data: `committed`, what is on disk
/// and what readers see; `head`, committed plus every change accepted since
/// (the one being written and the ones queued behind it).
///
/// Group commit: a write applies its change to `head` (on a copy, so a
/// change that fails changes nothing) and waits; one flusher at a time
/// takes `head` as it is then, writes and fsyncs it once for every change
/// that arrived together, and only then makes it `committed` and answers
/// each of their writers. No lock is held across the fsync: changes keep
/// arriving and readers keep reading while it runs. If the write fails,
/// every change not yet durable fails with it (the later ones were built on
/// it) and `head` goes back to `committed`.
pub struct Store {
    path: PathBuf,
    state: Arc<std::sync::Mutex<State>>,
}

struct State {
    committed: Arc<Data>,
    head: Arc<Data>,
    /// Writers whose change is in `head` and waits for the next flush.
    queued: Vec<oneshot::Sender<std::result::Result<(), String>>>,
    /// A flusher is running; it takes `queued` when it starts its next batch.
    flushing: bool,
    stats: StoreStats,
}

/// How many files the store wrote, and for how many changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Writes of the file (each one fsync of it, one of its directory).
    pub flushes: u64,
    /// Changes those writes made durable.
    pub changes: u64,
    /// Reads of the data (each call's, and each step of one that reads
    /// more than once).
    pub reads: u64,
    /// Changes asked for (including those that failed their checks).
    pub writes: u64,
}

type Locked<'a> = std::sync::MutexGuard<'a, State>;

fn lock(state: &std::sync::Mutex<State>) -> Locked<'_> {
    // Nothing panics while holding it; if something did, the state is still
    // one of the two consistent ones.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Store {
    /// Opens the file at `path`, or creates it with a fresh signing key.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let data = match fs::read(path) {
            Ok(bytes) => {
                let data: Data =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                        path: path.to_owned(),
                        source,
                    })?;
                if data.format != FORMAT {
                    return Err(StoreError::Format {
                        path: path.to_owned(),
                        found: data.format,
                    });
                }
                data
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = super::random_bytes::<32>().map_err(|e| StoreError::Write {
                    path: path.to_owned(),
                    source: std::io::Error::other(e.to_string()),
                })?;
                let data = Data {
                    format: FORMAT,
                    signing_key: Secret::new(crate::hash::hex(&key)),
                    pools: BTreeMap::new(),
                    sessions: BTreeMap::new(),
                };
                persist(path, &data).map_err(|source| StoreError::Write {
                    path: path.to_owned(),
                    source,
                })?;
                data
            }
            Err(source) => {
                return Err(StoreError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let data = Arc::new(data);
        Ok(Self {
            path: path.to_owned(),
            state: Arc::new(std::sync::Mutex::new(State {
                committed: data.clone(),
                head: data,
                queued: Vec::new(),
                flushing: false,
                stats: StoreStats::default(),
            })),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> StoreStats {
        lock(&self.state).stats
    }

    /// Runs `f` on the committed data: what is on disk. Never waits for a
    /// write in progress.
    pub async fn read<T>(&self, f: impl FnOnce(&Data) -> Result<T>) -> Result<T> {
        let data = {
            let mut state = lock(&self.state);
            state.stats.reads = state.stats.reads.saturating_add(1);
            state.committed.clone()
        };
        f(&data)
    }

    /// Runs `f` on a copy of the newest data; if it succeeds, the copy
    /// becomes the newest and the call returns once it is on disk (with the
    /// other changes of its batch). Changes apply one after the other, each
    /// seeing the ones before it.
    pub async fn write<T>(&self, f: impl FnOnce(&mut Data) -> Result<T>) -> Result<T> {
        let (done, out) = {
            let mut state = lock(&self.state);
            state.stats.writes = state.stats.writes.saturating_add(1);
            let mut next = Data::clone(&state.head);
            let out = f(&mut next)?;
            state.head = Arc::new(next);
            let (tx, rx) = oneshot::channel();
            state.queued.push(tx);
            if !state.flushing {
                state.flushing = true;
                tokio::spawn(flush(self.path.clone(), self.state.clone()));
            }
            (rx, out)
        };
        done.await
            .map_err(|_| Error::Internal("the local data writer stopped".into()))?
            .map_err(Error::Internal)?;
        Ok(out)
    }
}

/// Writes batches until no change is queued: each batch is `head` as it is
/// when the batch starts, and the writers queued by then.
async fn flush(path: PathBuf, state: Arc<std::sync::Mutex<State>>) {
    loop {
        let (batch, writers) = {
            let mut s = lock(&state);
            if s.queued.is_empty() {
                s.flushing = false;
                return;
            }
            (s.head.clone(), std::mem::take(&mut s.queued))
        };
        let path = path.clone();
        let written = {
            let batch = batch.clone();
            tokio::task::spawn_blocking(move || persist(&path, &batch))
                .await
                .map_err(|e| format!("the local data writer failed: {e}"))
                .and_then(|r| r.map_err(|e| format!("cannot write the local data file: {e}")))
        };
        let failed_later = {
            let mut s = lock(&state);
            match &written {
                Ok(()) => {
                    s.committed = batch;
                    s.stats.flushes += 1;
                    s.stats.changes += writers.len() as u64;
                    Vec::new()
                }
                Err(_) => {
                    // The changes queued since were built on this batch.
                    s.head = s.committed.clone();
                    std::mem::take(&mut s.queued)
                }
            }
        };
        for w in writers.into_iter().chain(failed_later) {
            let _ = w.send(written.clone());
        }
    }
}

/// Replaces `path` with `data`, crash-safely.
fn persist(path: &Path, data: &Data) -> std::io::Result<()> {
    // The data file keeps the real secrets (TOTP keys, the signing key).
    let bytes = crate::domain::secret::exposed(|| serde_json::to_vec_pretty(data))
        .map_err(std::io::Error::other)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A name no one can guess, created new (O_EXCL) and never through a
    // link (O_NOFOLLOW): a file or symlink planted in the directory is
    // never written through, and the write never truncates another file.
    let suffix = crate::hash::hex(
        &super::random_bytes::<12>().map_err(|e| std::io::Error::other(e.to_string()))?,
    );
    let tmp = dir.join(format!(".{file_name}.tmp-{suffix}"));
    {
        // The file holds TOTP secrets and the token-signing key: owner only.
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        let mut f = options.open(&tmp)?;
        let written = f.write_all(&bytes).and_then(|()| f.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself must survive a crash too.
    fs::File::open(&dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn survives_reopen_and_a_failed_change_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.json");
        let store = Store::open(&path).unwrap();
        store
            .write(|d| {
                d.sessions.insert(
                    "s1".into(),
                    Session {
                        user_pool_id: "p".into(),
                        username: "u".into(),
                        expires_at: 1,
                    },
                );
                Ok(())
            })
            .await
            .unwrap();
        let failed: Result<()> = store
            .write(|d| {
                d.sessions.clear();
                Err(Error::Internal("refused".into()))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(store.read(|d| Ok(d.sessions.len())).await.unwrap(), 1);
        let key = store.read(|d| Ok(d.signing_key.clone())).await.unwrap();
        drop(store);

        let reopened = Store::open(&path).unwrap();
        assert_eq!(reopened.read(|d| Ok(d.sessions.len())).await.unwrap(), 1);
        assert_eq!(
            reopened.read(|d| Ok(d.signing_key.clone())).await.unwrap(),
            key
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left behind");
    }

    fn session(user: &str) -> Session {
        Session {
            user_pool_id: "p".into(),
            username: user.into(),
            expires_at: 1,
        }
    }

    /// 64 writers at once: each answered only once its change is on disk,
    /// and together in fewer writes of the file than changes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changes_that_arrive_together_share_one_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.json");
        let store = Arc::new(Store::open(&path).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64 {
            let store = store.clone();
            let path = path.clone();
            tasks.spawn(async move {
                let key = format!("s{i}");
                store
                    .write(|d| {
                        d.sessions.insert(key.clone(), session("u"));
                        Ok(())
                    })
                    .await
                    .unwrap();
                // Answered: so on disk already, and visible.
                let on_disk: Data = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
                assert!(
                    on_disk.sessions.contains_key(&key),
                    "{key} answered before durable"
                );
                assert!(
                    store
                        .read(|d| Ok(d.sessions.contains_key(&key)))
                        .await
                        .unwrap()
                );
            });
        }
        while let Some(t) = tasks.join_next().await {
            t.unwrap();
        }
        let stats = store.stats();
        assert_eq!(stats.changes, 64);
        assert!(stats.flushes < 64, "{stats:?}: no change shared a write");
        assert_eq!(store.read(|d| Ok(d.sessions.len())).await.unwrap(), 64);
    }

    /// A write of the file that fails fails every change not yet durable,
    /// and the data is as it was: the next change does not carry them.
    #[tokio::test]
    async fn a_failed_flush_fails_its_changes_and_keeps_the_committed_data() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("d");
        fs::create_dir(&sub).unwrap();
        let path = sub.join("data.json");
        let store = Store::open(&path).unwrap();
        store
            .write(|d| {
                d.sessions.insert("kept".into(), session("u"));
                Ok(())
            })
            .await
            .unwrap();
        // The directory goes away: no temp file can be created (as root too).
        fs::remove_dir_all(&sub).unwrap();
        let failed = store
            .write(|d| {
                d.sessions.insert("lost".into(), session("u"));
                Ok(())
            })
            .await;
        let err = failed.unwrap_err().to_string();
        assert!(err.contains("cannot write the local data file"), "{err}");
        assert!(
            !store
                .read(|d| Ok(d.sessions.contains_key("lost")))
                .await
                .unwrap()
        );
        fs::create_dir(&sub).unwrap();
        store
            .write(|d| {
                d.sessions.insert("next".into(), session("u"));
                Ok(())
            })
            .await
            .unwrap();
        let on_disk: Data = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let keys: Vec<_> = on_disk.sessions.keys().cloned().collect();
        assert_eq!(keys, ["kept", "next"]);
    }

    #[test]
    fn a_corrupt_or_foreign_file_stops_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.json");
        fs::write(&path, b"{\"format\": 1, \"signing_key\": ").unwrap();
        let err = Store::open(&path).err().unwrap();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("never reset"));
        assert_eq!(
            fs::read(&path).unwrap(),
            b"{\"format\": 1, \"signing_key\": ",
            "left as it was"
        );

        fs::write(&path, br#"{"format": 99, "signing_key": "k", "pools": {}}"#).unwrap();
        assert!(matches!(
            Store::open(&path),
            Err(StoreError::Format { found: 99, .. })
        ));
    }
}

//! The local backend's data: pools, users, MFA settings, TOTP secrets,
//! sessions, kept in one JSON file that is replaced crash-safely on every
//! change (write a temp file, fsync it, rename it over the old one, fsync
//! the directory). A change is applied to a copy and becomes visible only
//! once it is on disk, so a failed write changes nothing.

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::domain::{PoolMfaConfig, Secret};
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
    pub mfa: PoolMfaConfig,
    pub users: BTreeMap<String, User>,
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
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftwareToken {
    pub secret: Secret,
    pub friendly_device_name: Option<String>,
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

pub struct Store {
    path: PathBuf,
    data: Mutex<Data>,
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
                    signing_key: Secret::new(hex::encode(key)),
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
        Ok(Self {
            path: path.to_owned(),
            data: Mutex::new(data),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the current data.
    pub async fn read<T>(&self, f: impl FnOnce(&Data) -> Result<T>) -> Result<T> {
        let data = self.data.lock().await;
        f(&data)
    }

    /// Runs `f` on a copy of the data; if it succeeds, writes the copy to disk
    /// and only then makes it current. Writers are serialized.
    pub async fn write<T>(&self, f: impl FnOnce(&mut Data) -> Result<T>) -> Result<T> {
        let mut data = self.data.lock().await;
        let mut next = data.clone();
        let out = f(&mut next)?;
        let path = self.path.clone();
        let next = tokio::task::spawn_blocking(move || persist(&path, &next).map(|()| next))
            .await
            .map_err(|e| Error::Internal(format!("the local data writer failed: {e}")))?
            .map_err(|e| Error::Internal(format!("cannot write the local data file: {e}")))?;
        *data = next;
        Ok(out)
    }
}

/// Replaces `path` with `data`, crash-safely.
fn persist(path: &Path, data: &Data) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(data).map_err(std::io::Error::other)?;
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
    let suffix =
        hex::encode(super::random_bytes::<12>().map_err(|e| std::io::Error::other(e.to_string()))?);
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

//! The local backend's data in an embedded SQLite database (bundled with
//! the binary): pools, users, their attributes, MFA factors, passkeys and
//! MFA_SETUP sessions, one table each, with the indexes the calls use
//! (username, its folded key, sub, attribute values for aliases and
//! ListUsers, session expiry). docs/local-backend.md shows the layout.
//!
//! - **Durability**: WAL, `synchronous = FULL`. A change is answered only
//!   once the transaction that holds it has committed (fsync of the WAL).
//! - **Group commit**: the writes that arrive together run, each in a
//!   savepoint (a change that fails its checks changes nothing), inside one
//!   transaction on the writer's connection; one commit (one fsync) answers
//!   them all. Writers wait for the connection without blocking a thread;
//!   the commit runs on a blocking thread.
//! - **Readers never wait for a commit**: each read is a transaction on a
//!   connection of its own (at most [`READERS`]); WAL lets it read the last
//!   committed state while a commit runs.
//! - **A write costs what it touches**: a call loads and stores the rows
//!   of its pool and user, never the whole data set.
//! - **Upgrades**: `PRAGMA user_version` is the schema's version, migrated
//!   forward at open. A data file of the JSON store that came before is
//!   imported in one transaction at the first open and kept beside the
//!   database as `<data_file>.json-v1` ([`legacy_json`]).
//! - **The file** is created owner-only (0600; SQLite gives its `-wal` and
//!   `-shm` files the same mode) and never opened through a symbolic link.

mod account;
mod legacy_json;

pub use account::StoredDevice;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, oneshot};

use crate::domain::pool_state::{AuthFactor, EmailSendingAccount, Recovery};
use crate::domain::{PoolMfaConfig, Secret, WebAuthnCredential};
use crate::error::{Error, Result};

/// The schema's version (`PRAGMA user_version`); a database of a later
/// version is refused, an earlier one migrated.
pub const SCHEMA_VERSION: i32 = 2;

/// Read connections at most: each holds its own page cache, so their
/// number bounds memory; a read past them waits for one.
pub const READERS: usize = 4;

/// Each connection's page cache, in KiB.
const CACHE_KIB: i64 = 2048;

/// The database of schema version 1 (later versions add to it).
const SCHEMA_1: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE pools (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    feature_plan TEXT NOT NULL,
    settings TEXT NOT NULL,
    mfa TEXT NOT NULL,
    users INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX pools_name ON pools (name);
CREATE TABLE users (
    pool_id TEXT NOT NULL,
    username TEXT NOT NULL,
    name_key TEXT NOT NULL,
    sub TEXT NOT NULL,
    status TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    PRIMARY KEY (pool_id, username)
) WITHOUT ROWID;
CREATE UNIQUE INDEX users_name_key ON users (pool_id, name_key);
CREATE INDEX users_sub ON users (pool_id, sub);
CREATE TABLE attributes (
    pool_id TEXT NOT NULL,
    username TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    value_key TEXT NOT NULL,
    PRIMARY KEY (pool_id, username, name)
) WITHOUT ROWID;
CREATE INDEX attributes_value ON attributes (pool_id, name, value_key);
CREATE TABLE factors (
    pool_id TEXT NOT NULL,
    username TEXT NOT NULL,
    sms_enabled INTEGER NOT NULL DEFAULT 0,
    software_token_enabled INTEGER NOT NULL DEFAULT 0,
    email_enabled INTEGER NOT NULL DEFAULT 0,
    web_authn_enabled INTEGER NOT NULL DEFAULT 0,
    preferred TEXT,
    totp_secret TEXT,
    totp_device_name TEXT,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    pending_secret TEXT,
    totp_failures INTEGER NOT NULL DEFAULT 0,
    totp_locked_until INTEGER NOT NULL DEFAULT 0,
    totp_last_failure INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pool_id, username)
) WITHOUT ROWID;
CREATE TABLE passkeys (
    pool_id TEXT NOT NULL,
    username TEXT NOT NULL,
    position INTEGER NOT NULL,
    credential_id TEXT NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (pool_id, username, position)
) WITHOUT ROWID;
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    pool_id TEXT NOT NULL,
    username TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_expiry ON sessions (expires_at);
";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FeaturePlan {
    Lite,
    #[default]
    Essentials,
    Plus,
}

impl FeaturePlan {
    fn name(self) -> &'static str {
        match self {
            FeaturePlan::Lite => "LITE",
            FeaturePlan::Essentials => "ESSENTIALS",
            FeaturePlan::Plus => "PLUS",
        }
    }

    fn parse(name: &str) -> Self {
        match name {
            "LITE" => FeaturePlan::Lite,
            "PLUS" => FeaturePlan::Plus,
            _ => FeaturePlan::Essentials,
        }
    }
}

/// A user pool: its MFA configuration and the state beside it. Its users
/// are rows of their own ([`Data::user`]).
#[derive(Clone, Debug)]
pub struct Pool {
    pub id: String,
    pub name: String,
    pub region: String,
    pub feature_plan: FeaturePlan,
    /// The rest of the pool's state the pre-flight reads (DescribeUserPool's
    /// members), as the fixtures set it.
    pub state: PoolSettings,
    pub mfa: PoolMfaConfig,
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

    fn parse(name: &str) -> Option<Self> {
        [Factor::Sms, Factor::SoftwareToken, Factor::Email]
            .into_iter()
            .find(|f| f.cognito_name() == name)
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
        "the local data file {path} is corrupt ({reason}); fix it or move it away to start afresh — it is never reset automatically"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "the local data file {path} has schema version {found}, this build reads up to {SCHEMA_VERSION}"
    )]
    Format { path: PathBuf, found: i64 },
    #[error("cannot write the local data file {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// How much the store has done since it opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Commits (each one fsync of the WAL).
    pub flushes: u64,
    /// Changes those commits made durable.
    pub changes: u64,
    /// Reads of the data (each call's, and each step of one that reads
    /// more than once).
    pub reads: u64,
    /// Changes asked for (including those that failed their checks).
    pub writes: u64,
}

#[derive(Default)]
struct Counters {
    flushes: AtomicU64,
    changes: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    // Saturating: a counter never wraps to a small number.
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
        Some(n.saturating_add(by))
    });
}

type Ack = std::result::Result<(), String>;

/// The writer's connection and the batch its open transaction holds.
struct Writer {
    conn: Connection,
    /// A transaction is open with changes not yet committed.
    open: bool,
    /// The writers of those changes, answered at the commit.
    waiting: Vec<oneshot::Sender<Ack>>,
    /// A committer task is running.
    committing: bool,
    /// A change's savepoint is open: set while its closure runs, so that
    /// one that never finished (a panic) is rolled back by the next write
    /// instead of being committed with it.
    in_change: bool,
}

pub struct Store {
    path: PathBuf,
    signing_key: Secret,
    writer: Arc<tokio::sync::Mutex<Writer>>,
    readers: Mutex<Vec<Connection>>,
    reader_slots: Semaphore,
    counters: Arc<Counters>,
}

/// The data of one call, read or written through its connection: the
/// rows it asks for, loaded as it asks.
pub struct Data<'c> {
    conn: &'c Connection,
    signing_key: &'c Secret,
}

fn sql(e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && f.code == rusqlite::ErrorCode::DiskFull
    {
        return super::cognito_rules::cognito(
            "LimitExceededException",
            "the local data file is full ([backend] max_data_bytes)",
        );
    }
    Error::Internal(format!("the local data file: {e}"))
}

/// A value as the database keeps it: secrets (the ExternalId) in full,
/// as the data file is their store.
fn json<T: Serialize>(value: &T) -> Result<String> {
    crate::domain::secret::exposed(|| serde_json::to_string(value))
        .map_err(|e| Error::Internal(format!("the local data file: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Internal(format!("the local data file: {e}")))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A name's key in `pool`: as written when the pool is case sensitive,
/// else folded (Cognito's case-insensitive usernames and aliases).
fn key(pool: &Pool, name: &str) -> String {
    super::cognito_rules::name_key(pool, name)
}

impl Data<'_> {
    /// The connection, for a test to set what no call sets.
    #[cfg(test)]
    pub(crate) fn conn(&self) -> &Connection {
        self.conn
    }

    /// The HMAC key that signs this file's access tokens.
    pub fn signing_key(&self) -> &Secret {
        self.signing_key
    }

    pub fn pool(&self, id: &str) -> Result<Pool> {
        self.find_pool(id)?
            .ok_or_else(|| super::cognito_rules::pool_not_found(id))
    }

    pub fn find_pool(&self, id: &str) -> Result<Option<Pool>> {
        self.conn
            .prepare_cached(
                "SELECT id, name, region, feature_plan, settings, mfa FROM pools WHERE id = ?1",
            )
            .map_err(sql)?
            .query_row([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .optional()
            .map_err(sql)?
            .map(|(id, name, region, plan, settings, mfa)| {
                Ok(Pool {
                    id,
                    name,
                    region,
                    feature_plan: FeaturePlan::parse(&plan),
                    state: from_json(&settings)?,
                    mfa: from_json(&mfa)?,
                })
            })
            .transpose()
    }

    /// The id of the first pool (by id) named `name`.
    pub fn pool_named(&self, name: &str) -> Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT id FROM pools WHERE name = ?1 ORDER BY id LIMIT 1")
            .map_err(sql)?
            .query_row([name], |r| r.get(0))
            .optional()
            .map_err(sql)
    }

    pub fn pool_count(&self) -> Result<usize> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM pools")
            .map_err(sql)?
            .query_row([], |r| r.get(0))
            .map_err(sql)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub fn insert_pool(&self, pool: &Pool) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO pools (id, name, region, feature_plan, settings, mfa) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql)?
            .execute(params![
                pool.id,
                pool.name,
                pool.region,
                pool.feature_plan.name(),
                json(&pool.state)?,
                json(&pool.mfa)?
            ])
            .map_err(sql)?;
        Ok(())
    }

    pub fn put_pool_mfa(&self, id: &str, mfa: &PoolMfaConfig) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE pools SET mfa = ?2 WHERE id = ?1")
            .map_err(sql)?
            .execute(params![id, json(mfa)?])
            .map_err(sql)?;
        Ok(())
    }

    /// Users in the pool, kept as a count beside the pool (no scan).
    pub fn user_count(&self, pool_id: &str) -> Result<usize> {
        let n: Option<i64> = self
            .conn
            .prepare_cached("SELECT users FROM pools WHERE id = ?1")
            .map_err(sql)?
            .query_row([pool_id], |r| r.get(0))
            .optional()
            .map_err(sql)?;
        Ok(usize::try_from(n.unwrap_or(0)).unwrap_or(usize::MAX))
    }

    /// The user whose username is exactly `username`.
    pub fn user(&self, pool_id: &str, username: &str) -> Result<Option<User>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT username, sub, status, enabled FROM users WHERE pool_id = ?1 AND username = ?2",
            )
            .map_err(sql)?
            .query_row([pool_id, username], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                ))
            })
            .optional()
            .map_err(sql)?;
        let Some((username, sub, status, enabled)) = row else {
            return Ok(None);
        };
        Ok(Some(User {
            attributes: self.attributes(pool_id, &username)?,
            mfa: self.factors(pool_id, &username)?,
            web_authn_credentials: self.passkeys(pool_id, &username)?,
            username,
            sub,
            status,
            enabled,
        }))
    }

    fn attributes(&self, pool_id: &str, username: &str) -> Result<BTreeMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT name, value FROM attributes WHERE pool_id = ?1 AND username = ?2",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([pool_id, username], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql)
    }

    fn factors(&self, pool_id: &str, username: &str) -> Result<UserMfa> {
        self.conn
            .prepare_cached(
                "SELECT sms_enabled, software_token_enabled, email_enabled, web_authn_enabled, preferred,
                        totp_secret, totp_device_name, totp_last_step, pending_secret,
                        totp_failures, totp_locked_until, totp_last_failure
                 FROM factors WHERE pool_id = ?1 AND username = ?2",
            )
            .map_err(sql)?
            .query_row([pool_id, username], |r| {
                let secret: Option<String> = r.get(5)?;
                Ok(UserMfa {
                    sms_enabled: r.get(0)?,
                    software_token_enabled: r.get(1)?,
                    email_enabled: r.get(2)?,
                    web_authn_enabled: r.get(3)?,
                    preferred: r
                        .get::<_, Option<String>>(4)?
                        .as_deref()
                        .and_then(Factor::parse),
                    software_token: match secret {
                        Some(s) => Some(SoftwareToken {
                            secret: Secret::new(s),
                            friendly_device_name: r.get(6)?,
                            last_step: to_u64(r.get(7)?),
                        }),
                        None => None,
                    },
                    pending_secret: r.get::<_, Option<String>>(8)?.map(Secret::new),
                    totp_failures: u32::try_from(r.get::<_, i64>(9)?).unwrap_or(u32::MAX),
                    totp_locked_until: to_u64(r.get(10)?),
                    totp_last_failure: to_u64(r.get(11)?),
                })
            })
            .optional()
            .map_err(sql)
            .map(Option::unwrap_or_default)
    }

    fn passkeys(&self, pool_id: &str, username: &str) -> Result<Vec<WebAuthnCredential>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT description FROM passkeys WHERE pool_id = ?1 AND username = ?2 ORDER BY position",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map([pool_id, username], |r| r.get::<_, String>(0))
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(from_json(&row.map_err(sql)?)?);
        }
        Ok(out)
    }

    /// The username of the user an Admin* call names (see
    /// [`super::cognito_rules::resolve_username`] for the rules): found
    /// through the indexes, the first by username when several match.
    pub fn resolve_username(&self, pool: &Pool, name: &str) -> Result<Option<String>> {
        if self.user_exists(&pool.id, name)? {
            return Ok(Some(name.to_owned()));
        }
        let name_key = key(pool, name);
        let mut found: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT MIN(username) FROM users WHERE pool_id = ?1 AND (sub = ?2 OR name_key = ?3)",
            )
            .map_err(sql)?
            .query_row(params![pool.id, name, name_key], |r| r.get(0))
            .map_err(sql)?;
        let mut consider = |candidate: Option<String>| {
            if let Some(c) = candidate
                && found.as_ref().is_none_or(|f| c < *f)
            {
                found = Some(c);
            }
        };
        for attribute in &pool.state.alias_attributes {
            let verified = attribute != "preferred_username";
            consider(self.holder(pool, attribute, &name_key, verified)?);
        }
        for attribute in &pool.state.username_attributes {
            consider(self.holder(pool, attribute, &name_key, false)?);
        }
        Ok(found)
    }

    /// The first user (by username) whose `attribute` has the key
    /// `value_key`, with `<attribute>_verified = "true"` when `verified`.
    fn holder(
        &self,
        pool: &Pool,
        attribute: &str,
        value_key: &str,
        verified: bool,
    ) -> Result<Option<String>> {
        self.conn
            .prepare_cached(
                "SELECT MIN(a.username) FROM attributes a
                 WHERE a.pool_id = ?1 AND a.name = ?2 AND a.value_key = ?3
                   AND (?4 = 0 OR EXISTS (
                       SELECT 1 FROM attributes v
                       WHERE v.pool_id = a.pool_id AND v.username = a.username
                         AND v.name = a.name || '_verified' AND v.value = 'true'))",
            )
            .map_err(sql)?
            .query_row(params![pool.id, attribute, value_key, verified], |r| {
                r.get(0)
            })
            .map_err(sql)
    }

    pub fn user_exists(&self, pool_id: &str, username: &str) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM users WHERE pool_id = ?1 AND username = ?2")
            .map_err(sql)?
            .exists([pool_id, username])
            .map_err(sql)
    }

    /// Whether a username with this name's key is taken in the pool.
    pub fn name_taken(&self, pool: &Pool, name: &str) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM users WHERE pool_id = ?1 AND name_key = ?2")
            .map_err(sql)?
            .exists([pool.id.as_str(), key(pool, name).as_str()])
            .map_err(sql)
    }

    /// Whether some user's `attribute` has this value's key.
    pub fn value_taken(&self, pool: &Pool, attribute: &str, value: &str) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT 1 FROM attributes WHERE pool_id = ?1 AND name = ?2 AND value_key = ?3",
            )
            .map_err(sql)?
            .exists([pool.id.as_str(), attribute, key(pool, value).as_str()])
            .map_err(sql)
    }

    /// Adds a user (its attributes, factors and passkeys too).
    pub fn insert_user(&self, pool: &Pool, user: &User) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO users (pool_id, username, name_key, sub, status, enabled) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql)?
            .execute(params![
                pool.id,
                user.username,
                key(pool, &user.username),
                user.sub,
                user.status,
                user.enabled
            ])
            .map_err(sql)?;
        self.conn
            .prepare_cached("UPDATE pools SET users = users + 1 WHERE id = ?1")
            .map_err(sql)?
            .execute([&pool.id])
            .map_err(sql)?;
        self.put_attributes(pool, &user.username, &user.attributes)?;
        self.put_factors(&pool.id, &user.username, &user.mfa)?;
        self.put_passkeys(&pool.id, &user.username, &user.web_authn_credentials)
    }

    pub fn put_enabled(&self, pool_id: &str, username: &str, enabled: bool) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE users SET enabled = ?3 WHERE pool_id = ?1 AND username = ?2")
            .map_err(sql)?
            .execute(params![pool_id, username, enabled])
            .map_err(sql)?;
        Ok(())
    }

    pub fn put_attributes(
        &self,
        pool: &Pool,
        username: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM attributes WHERE pool_id = ?1 AND username = ?2")
            .map_err(sql)?
            .execute([&pool.id, username])
            .map_err(sql)?;
        let mut insert = self
            .conn
            .prepare_cached(
                "INSERT INTO attributes (pool_id, username, name, value, value_key) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(sql)?;
        for (name, value) in attributes {
            insert
                .execute(params![pool.id, username, name, value, key(pool, value)])
                .map_err(sql)?;
        }
        Ok(())
    }

    /// Stores a user's MFA state: the one row a factor or preference
    /// change writes.
    pub fn put_factors(&self, pool_id: &str, username: &str, m: &UserMfa) -> Result<()> {
        let token = m.software_token.as_ref();
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO factors (pool_id, username, sms_enabled, software_token_enabled,
                    email_enabled, web_authn_enabled, preferred, totp_secret, totp_device_name,
                    totp_last_step, pending_secret, totp_failures, totp_locked_until, totp_last_failure)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .map_err(sql)?
            .execute(params![
                pool_id,
                username,
                m.sms_enabled,
                m.software_token_enabled,
                m.email_enabled,
                m.web_authn_enabled,
                m.preferred.map(Factor::cognito_name),
                token.map(|t| t.secret.expose()),
                token.and_then(|t| t.friendly_device_name.as_deref()),
                to_i64(token.map_or(0, |t| t.last_step)),
                m.pending_secret.as_ref().map(Secret::expose),
                i64::from(m.totp_failures),
                to_i64(m.totp_locked_until),
                to_i64(m.totp_last_failure),
            ])
            .map_err(sql)?;
        Ok(())
    }

    pub fn put_passkeys(
        &self,
        pool_id: &str,
        username: &str,
        passkeys: &[WebAuthnCredential],
    ) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM passkeys WHERE pool_id = ?1 AND username = ?2")
            .map_err(sql)?
            .execute([pool_id, username])
            .map_err(sql)?;
        let mut insert = self
            .conn
            .prepare_cached(
                "INSERT INTO passkeys (pool_id, username, position, credential_id, description) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(sql)?;
        for (i, p) in passkeys.iter().enumerate() {
            insert
                .execute(params![
                    pool_id,
                    username,
                    i64::try_from(i).unwrap_or(i64::MAX),
                    p.credential_id,
                    json(p)?
                ])
                .map_err(sql)?;
        }
        Ok(())
    }

    /// Users after `after` in username order, at most `limit`, with their
    /// attributes (their factors and passkeys are not read: a listing
    /// does not show them).
    pub fn users_after(
        &self,
        pool_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<User>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT username, sub, status, enabled FROM users
                 WHERE pool_id = ?1 AND username > ?2 ORDER BY username LIMIT ?3",
            )
            .map_err(sql)?;
        let rows = stmt
            .query_map(
                params![
                    pool_id,
                    after.unwrap_or(""),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok(User {
                        username: r.get(0)?,
                        sub: r.get(1)?,
                        status: r.get(2)?,
                        enabled: r.get(3)?,
                        attributes: BTreeMap::new(),
                        mfa: UserMfa::default(),
                        web_authn_credentials: Vec::new(),
                    })
                },
            )
            .map_err(sql)?;
        let mut users = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)?;
        // The page's attributes in one range read.
        if let (Some(first), Some(last)) = (users.first(), users.last()) {
            let (first, last) = (first.username.clone(), last.username.clone());
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT username, name, value FROM attributes
                     WHERE pool_id = ?1 AND username >= ?2 AND username <= ?3
                     ORDER BY username",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![pool_id, first, last], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(sql)?;
            let mut at = 0;
            for row in rows {
                let (username, name, value) = row.map_err(sql)?;
                while at < users.len() && users[at].username < username {
                    at += 1;
                }
                if let Some(u) = users.get_mut(at).filter(|u| u.username == username) {
                    u.attributes.insert(name, value);
                }
            }
        }
        Ok(users)
    }

    pub fn session(&self, id: &str) -> Result<Option<Session>> {
        self.conn
            .prepare_cached("SELECT pool_id, username, expires_at FROM sessions WHERE id = ?1")
            .map_err(sql)?
            .query_row([id], |r| {
                Ok(Session {
                    user_pool_id: r.get(0)?,
                    username: r.get(1)?,
                    expires_at: to_u64(r.get(2)?),
                })
            })
            .optional()
            .map_err(sql)
    }

    pub fn session_count(&self) -> Result<usize> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM sessions")
            .map_err(sql)?
            .query_row([], |r| r.get(0))
            .map_err(sql)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Forgets the sessions expired at `now` and the one spent, if any.
    pub fn drop_sessions(&self, now: u64, spent: Option<&str>) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1 OR id = ?2")
            .map_err(sql)?
            .execute(params![to_i64(now), spent.unwrap_or("")])
            .map_err(sql)?;
        Ok(())
    }

    pub fn insert_session(&self, id: &str, s: &Session) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO sessions (id, pool_id, username, expires_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(sql)?
            .execute(params![
                id,
                s.user_pool_id,
                s.username,
                to_i64(s.expires_at)
            ])
            .map_err(sql)?;
        Ok(())
    }
}

/// Opens (creating it owner-only if missing) the database at `path`, never
/// through a symbolic link, with the pragmas every connection has.
fn connect(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW
        | OpenFlags::SQLITE_OPEN_URI;
    flags |= if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The WAL is folded into the database by the commits themselves
        // (every 1,000 pages), never by a reader.
        conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Creates `path` empty, owner-only, failing if anything (a file or a
/// link) is there: SQLite then makes its database in it, and its `-wal`
/// and `-shm` files take the same mode.
fn create_owner_only(path: &Path) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)?.sync_all()?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::File::open(dir)?.sync_all()
}

/// The files SQLite keeps beside the database: none may be a link.
fn refuse_links(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(std::io::Error::other(format!(
                "{} is a symbolic link; the data file and its -wal/-shm files are never opened through one",
                PathBuf::from(p).display()
            )));
        }
    }
    Ok(())
}

/// Brings a database to [`SCHEMA_VERSION`], each step in one transaction.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(corrupt)?;
    if version > i64::from(SCHEMA_VERSION) || version < 0 {
        return Err(StoreError::Format {
            path: path.to_owned(),
            found: version,
        });
    }
    if version == 0 {
        let tx = conn.transaction().map_err(corrupt)?;
        // A version-0 database must be empty: a file of another program
        // is refused, never written into.
        let tables: i64 = tx
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(corrupt)?;
        if tables != 0 {
            return Err(StoreError::Corrupt {
                path: path.to_owned(),
                reason: "a SQLite database of another program (no mfa-facade schema version)"
                    .into(),
            });
        }
        tx.execute_batch(SCHEMA_1).map_err(corrupt)?;
        tx.pragma_update(None, "user_version", 1).map_err(corrupt)?;
        tx.commit().map_err(corrupt)?;
    }
    // Each later version, one transaction each, in order.
    for (to, step) in [(2, account::SCHEMA_2)] {
        if version < to {
            let tx = conn.transaction().map_err(corrupt)?;
            tx.execute_batch(step).map_err(corrupt)?;
            tx.pragma_update(None, "user_version", to)
                .map_err(corrupt)?;
            tx.commit().map_err(corrupt)?;
        }
    }
    Ok(())
}

impl Store {
    /// Opens the database at `path`: creates it with a fresh signing key,
    /// imports a JSON data file found there, or migrates an older schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_limited(path, None)
    }

    /// [`Store::open`], the file bounded to `max_bytes` (a write past it is
    /// Cognito's LimitExceededException).
    pub fn open_limited(path: &Path, max_bytes: Option<u64>) -> Result<Self, StoreError> {
        let write_err = |reason: String| StoreError::Write {
            path: path.to_owned(),
            reason,
        };
        refuse_links(path).map_err(|e| write_err(e.to_string()))?;
        let head = match fs::File::open(path) {
            Ok(f) => {
                use std::io::Read;
                let mut head = Vec::with_capacity(16);
                f.take(16)
                    .read_to_end(&mut head)
                    .map_err(|source| StoreError::Read {
                        path: path.to_owned(),
                        source,
                    })?;
                Some(head)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(StoreError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        match &head {
            None => create_owner_only(path).map_err(|e| write_err(e.to_string()))?,
            Some(h) if legacy_json::looks_like_json(h) => import_json(path)?,
            Some(h) if h.is_empty() || h.starts_with(b"SQLite format 3\0") => {}
            Some(_) => {
                return Err(StoreError::Corrupt {
                    path: path.to_owned(),
                    reason: "neither a SQLite database nor a JSON data file".into(),
                });
            }
        }
        let mut writer = connect(path, false).map_err(|e| StoreError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        migrate(&mut writer, path)?;
        if let Some(max) = max_bytes {
            let page: i64 = writer
                .pragma_query_value(None, "page_size", |r| r.get(0))
                .map_err(|e| write_err(e.to_string()))?;
            let pages = to_i64(max) / page.max(512);
            writer
                .pragma_update(None, "max_page_count", pages.max(1))
                .map_err(|e| write_err(e.to_string()))?;
        }
        let signing_key = signing_key(&writer).map_err(|e| write_err(e.to_string()))?;
        Ok(Self {
            path: path.to_owned(),
            signing_key,
            writer: Arc::new(tokio::sync::Mutex::new(Writer {
                conn: writer,
                open: false,
                waiting: Vec::new(),
                committing: false,
                in_change: false,
            })),
            readers: Mutex::new(Vec::new()),
            reader_slots: Semaphore::new(READERS),
            counters: Arc::new(Counters::default()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        StoreStats {
            flushes: c.flushes.load(Ordering::Relaxed),
            changes: c.changes.load(Ordering::Relaxed),
            reads: c.reads.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
        }
    }

    /// Folds the WAL into the database file (a TRUNCATE checkpoint) once
    /// the last commit is done: the file alone then holds every change, as
    /// a copy of it after a stop does. Called when the server has drained;
    /// a failure leaves the WAL, which the next open reads.
    pub async fn checkpoint(&self) -> Result<()> {
        let w = self.writer.clone().lock_owned().await;
        if w.open {
            // A batch not yet committed: its commit checkpoints as it goes.
            return Ok(());
        }
        tokio::task::spawn_blocking(move || {
            w.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(sql)
                .and_then(|busy| {
                    if busy == 0 {
                        Ok(())
                    } else {
                        Err(Error::Internal(
                            "the checkpoint of the local data file was blocked by a reader".into(),
                        ))
                    }
                })
        })
        .await
        .map_err(|e| Error::Internal(format!("the local data checkpoint failed: {e}")))?
    }

    /// Runs `f` in a read transaction on the committed data: what is on
    /// disk. Never waits for a commit in progress.
    pub async fn read<T>(&self, f: impl FnOnce(&Data) -> Result<T>) -> Result<T> {
        bump(&self.counters.reads, 1);
        let _slot = self
            .reader_slots
            .acquire()
            .await
            .map_err(|_| Error::Internal("the local data file is closed".into()))?;
        let conn = match self.readers_lock().pop() {
            Some(c) => c,
            None => connect(&self.path, true).map_err(sql)?,
        };
        let out = (|| {
            conn.execute_batch("BEGIN").map_err(sql)?;
            let out = f(&Data {
                conn: &conn,
                signing_key: &self.signing_key,
            });
            conn.execute_batch("COMMIT").map_err(sql)?;
            out
        })();
        if conn.is_autocommit() {
            self.readers_lock().push(conn);
        }
        out
    }

    fn readers_lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // Nothing panics while holding it: a poisoned list is still a list.
        self.readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the newest data (the committed data and the changes of
    /// the batch before it) in a savepoint: if it fails, nothing it did is
    /// kept; if it succeeds, the call returns once the change is committed
    /// with the other changes of its batch. Changes apply one after the
    /// other, each seeing the ones before it.
    pub async fn write<T>(&self, f: impl FnOnce(&Data) -> Result<T>) -> Result<T> {
        bump(&self.counters.writes, 1);
        let (done, out) = {
            let mut w = self.writer.lock().await;
            if w.in_change {
                // The last change panicked inside its savepoint.
                w.conn
                    .execute_batch("ROLLBACK TO change; RELEASE change")
                    .map_err(sql)?;
                w.in_change = false;
            }
            if !w.open {
                w.conn.execute_batch("BEGIN IMMEDIATE").map_err(sql)?;
                w.open = true;
            }
            w.conn.execute_batch("SAVEPOINT change").map_err(sql)?;
            w.in_change = true;
            let out = f(&Data {
                conn: &w.conn,
                signing_key: &self.signing_key,
            });
            w.in_change = false;
            match out {
                Ok(out) => {
                    w.conn.execute_batch("RELEASE change").map_err(sql)?;
                    let (tx, rx) = oneshot::channel();
                    w.waiting.push(tx);
                    if !w.committing {
                        w.committing = true;
                        tokio::spawn(commit(self.writer.clone(), self.counters.clone()));
                    }
                    (rx, out)
                }
                Err(e) if w.conn.is_autocommit() => {
                    // SQLite rolled the whole transaction back (a full
                    // file, an I/O error): the batch's other changes are
                    // gone with it, and fail as a failed commit fails them.
                    w.open = false;
                    let lost = format!("cannot write the local data file: {e}");
                    for tx in std::mem::take(&mut w.waiting) {
                        let _ = tx.send(Err(lost.clone()));
                    }
                    return Err(e);
                }
                Err(e) => {
                    w.conn
                        .execute_batch("ROLLBACK TO change; RELEASE change")
                        .map_err(sql)?;
                    if w.waiting.is_empty() {
                        // No change of the batch waits for a commit: end
                        // the (empty) transaction here.
                        w.conn.execute_batch("ROLLBACK").map_err(sql)?;
                        w.open = false;
                    }
                    return Err(e);
                }
            }
        };
        done.await
            .map_err(|_| Error::Internal("the local data writer stopped".into()))?
            .map_err(Error::Internal)?;
        Ok(out)
    }
}

/// Commits batches until no change waits: each commit holds the changes
/// made since the last one, and answers their writers once durable.
async fn commit(writer: Arc<tokio::sync::Mutex<Writer>>, counters: Arc<Counters>) {
    loop {
        let mut w = writer.clone().lock_owned().await;
        if w.waiting.is_empty() {
            w.committing = false;
            return;
        }
        let waiting = std::mem::take(&mut w.waiting);
        let joined = tokio::task::spawn_blocking(move || {
            let result = w.conn.execute_batch("COMMIT").map_err(|e| e.to_string());
            if result.is_err() {
                // Nothing of the batch is kept; the next write begins anew.
                let _ = w.conn.execute_batch("ROLLBACK");
            }
            w.open = false;
            (w, result)
        })
        .await;
        let result = match joined {
            Ok((w, result)) => {
                drop(w);
                result
            }
            Err(e) => Err(format!("the local data writer failed: {e}")),
        };
        let result = result.map_err(|e| format!("cannot write the local data file: {e}"));
        if result.is_ok() {
            bump(&counters.flushes, 1);
            bump(&counters.changes, waiting.len() as u64);
        }
        for tx in waiting {
            let _ = tx.send(result.clone());
        }
    }
}

/// The signing key kept in `meta`, made on first use.
fn signing_key(conn: &Connection) -> std::result::Result<Secret, String> {
    let found: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'signing_key'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    if let Some(k) = found {
        return Ok(Secret::new(k));
    }
    let key = super::random_bytes::<32>().map_err(|e| e.to_string())?;
    let key = crate::hash::hex(&key);
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('signing_key', ?1)",
        [&key],
    )
    .map_err(|e| e.to_string())?;
    Ok(Secret::new(key))
}

/// Imports the JSON data file at `path` into a new database, in one
/// transaction, then puts the database in its place; the JSON file stays
/// beside it as `<path>.json-v1`. A crash at any step leaves either the
/// JSON file at `path` (imported again at the next start) or the database.
fn import_json(path: &Path) -> Result<(), StoreError> {
    let bytes = fs::read(path).map_err(|source| StoreError::Read {
        path: path.to_owned(),
        source,
    })?;
    let data: legacy_json::Data =
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if data.format != legacy_json::FORMAT {
        return Err(StoreError::Format {
            path: path.to_owned(),
            found: i64::from(data.format),
        });
    }
    let write_err = |reason: String| StoreError::Write {
        path: path.to_owned(),
        reason,
    };
    let with_suffix = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    let suffix = super::random_bytes::<8>()
        .map(|b| crate::hash::hex(&b))
        .map_err(|e| write_err(e.to_string()))?;
    let importing = with_suffix(&format!(".importing-{suffix}"));
    create_owner_only(&importing).map_err(|e| write_err(e.to_string()))?;
    let imported = (|| -> std::result::Result<(), String> {
        let mut conn = Connection::open_with_flags(
            &importing,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|e| e.to_string())?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| e.to_string())?;
        migrate(&mut conn, &importing).map_err(|e| e.to_string())?;
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('signing_key', ?1)",
            [data.signing_key.expose()],
        )
        .map_err(|e| e.to_string())?;
        {
            let view = Data {
                conn: &tx,
                signing_key: &data.signing_key,
            };
            for p in data.pools.values() {
                let pool = Pool {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    region: p.region.clone(),
                    feature_plan: p.feature_plan,
                    state: p.state.clone(),
                    mfa: p.mfa.clone(),
                };
                view.insert_pool(&pool).map_err(|e| e.to_string())?;
                for u in p.users.values() {
                    view.insert_user(&pool, u).map_err(|e| e.to_string())?;
                }
            }
            for (id, s) in &data.sessions {
                view.insert_session(id, s).map_err(|e| e.to_string())?;
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
        conn.close().map_err(|(_, e)| e.to_string())
    })();
    if let Err(e) = imported {
        let _ = fs::remove_file(&importing);
        return Err(write_err(format!("importing the JSON data file: {e}")));
    }
    let kept = with_suffix(".json-v1");
    let _ = fs::remove_file(&kept);
    let moved = fs::hard_link(path, &kept)
        .and_then(|()| fs::rename(&importing, path))
        .and_then(|()| sync_dir(path));
    if let Err(e) = moved {
        let _ = fs::remove_file(&importing);
        return Err(write_err(e.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

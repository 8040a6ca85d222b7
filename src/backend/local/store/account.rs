//! A user's account beside its MFA (schema 2): tracked devices, the
//! passkey registration under way (its challenge), the time of the user's
//! last global sign-out (tokens issued before it are revoked), and who else
//! holds an attribute value.

use rusqlite::{OptionalExtension, params};

use super::{Data, Pool, key, sql, to_i64, to_u64};
use crate::error::Result;

/// What schema 2 adds to schema 1.
pub(super) const SCHEMA_2: &str = "
CREATE TABLE devices (
    pool_id TEXT NOT NULL,
    username TEXT NOT NULL,
    device_key TEXT NOT NULL,
    name TEXT,
    remembered INTEGER NOT NULL,
    last_ip TEXT,
    created_at INTEGER NOT NULL,
    modified_at INTEGER NOT NULL,
    authenticated_at INTEGER,
    PRIMARY KEY (pool_id, username, device_key)
) WITHOUT ROWID;
CREATE INDEX devices_order ON devices (pool_id, username, created_at, device_key);
CREATE TABLE web_authn_challenges (
    pool_id TEXT NOT NULL,
    username TEXT NOT NULL,
    challenge TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (pool_id, username)
) WITHOUT ROWID;
CREATE TABLE sign_outs (
    pool_id TEXT NOT NULL,
    username TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (pool_id, username)
) WITHOUT ROWID;
";

/// One tracked device as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDevice {
    pub device_key: String,
    pub name: Option<String>,
    pub remembered: bool,
    pub last_ip: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    pub modified_at: u64,
    pub authenticated_at: Option<u64>,
}

const COLUMNS: &str =
    "device_key, name, remembered, last_ip, created_at, modified_at, authenticated_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredDevice> {
    Ok(StoredDevice {
        device_key: r.get(0)?,
        name: r.get(1)?,
        remembered: r.get(2)?,
        last_ip: r.get(3)?,
        created_at: to_u64(r.get(4)?),
        modified_at: to_u64(r.get(5)?),
        authenticated_at: r.get::<_, Option<i64>>(6)?.map(to_u64),
    })
}

impl Data<'_> {
    /// At most `limit` of the user's devices, oldest first, from `offset`.
    pub fn devices(
        &self,
        pool_id: &str,
        username: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<StoredDevice>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM devices WHERE pool_id = ?1 AND username = ?2 \
                 ORDER BY created_at, device_key LIMIT ?3 OFFSET ?4"
            ))
            .map_err(sql)?;
        let rows = stmt
            .query_map(
                params![
                    pool_id,
                    username,
                    to_i64(limit as u64),
                    to_i64(offset as u64)
                ],
                row,
            )
            .map_err(sql)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql)
    }

    pub fn device_count(&self, pool_id: &str, username: &str) -> Result<usize> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM devices WHERE pool_id = ?1 AND username = ?2")
            .map_err(sql)?
            .query_row(params![pool_id, username], |r| r.get(0))
            .map_err(sql)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub fn device(&self, pool_id: &str, username: &str, key: &str) -> Result<Option<StoredDevice>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM devices WHERE pool_id = ?1 AND username = ?2 AND device_key = ?3"
            ))
            .map_err(sql)?
            .query_row(params![pool_id, username, key], row)
            .optional()
            .map_err(sql)
    }

    pub fn insert_device(&self, pool_id: &str, username: &str, d: &StoredDevice) -> Result<()> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO devices (pool_id, username, {COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))
            .map_err(sql)?
            .execute(params![
                pool_id,
                username,
                d.device_key,
                d.name,
                d.remembered,
                d.last_ip,
                to_i64(d.created_at),
                to_i64(d.modified_at),
                d.authenticated_at.map(to_i64),
            ])
            .map_err(sql)?;
        Ok(())
    }

    /// Sets a device's remembered status; false when the user has no
    /// device of that key.
    pub fn put_device_remembered(
        &self,
        pool_id: &str,
        username: &str,
        key: &str,
        remembered: bool,
        now: u64,
    ) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE devices SET remembered = ?4, modified_at = ?5 \
                 WHERE pool_id = ?1 AND username = ?2 AND device_key = ?3",
            )
            .map_err(sql)?
            .execute(params![pool_id, username, key, remembered, to_i64(now)])
            .map_err(sql)?;
        Ok(n > 0)
    }

    /// Forgets a device; false when the user has no device of that key.
    pub fn delete_device(&self, pool_id: &str, username: &str, key: &str) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "DELETE FROM devices WHERE pool_id = ?1 AND username = ?2 AND device_key = ?3",
            )
            .map_err(sql)?
            .execute(params![pool_id, username, key])
            .map_err(sql)?;
        Ok(n > 0)
    }

    /// The Unix second of the user's last global sign-out (0: never).
    pub fn signed_out_at(&self, pool_id: &str, username: &str) -> Result<u64> {
        let at: Option<i64> = self
            .conn
            .prepare_cached("SELECT at FROM sign_outs WHERE pool_id = ?1 AND username = ?2")
            .map_err(sql)?
            .query_row(params![pool_id, username], |r| r.get(0))
            .optional()
            .map_err(sql)?;
        Ok(at.map_or(0, to_u64))
    }

    pub fn put_signed_out(&self, pool_id: &str, username: &str, at: u64) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO sign_outs (pool_id, username, at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (pool_id, username) DO UPDATE SET at = MAX(at, excluded.at)",
            )
            .map_err(sql)?
            .execute(params![pool_id, username, to_i64(at)])
            .map_err(sql)?;
        Ok(())
    }

    /// Whether a user other than `username` has `attribute` with this
    /// value's key (and, when `verified`, marked verified).
    pub fn value_held_by_other(
        &self,
        pool: &Pool,
        attribute: &str,
        value: &str,
        verified: bool,
        username: &str,
    ) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT 1 FROM attributes a
                 WHERE a.pool_id = ?1 AND a.name = ?2 AND a.value_key = ?3 AND a.username <> ?5
                   AND (?4 = 0 OR EXISTS (
                       SELECT 1 FROM attributes v
                       WHERE v.pool_id = a.pool_id AND v.username = a.username
                         AND v.name = a.name || '_verified' AND v.value = 'true'))",
            )
            .map_err(sql)?
            .exists(params![
                pool.id,
                attribute,
                key(pool, value),
                verified,
                username
            ])
            .map_err(sql)
    }

    /// Issues a registration challenge (base64url) for the user, replacing
    /// any before it: one registration at a time per user.
    pub fn put_challenge(
        &self,
        pool_id: &str,
        username: &str,
        challenge: &str,
        expires_at: u64,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO web_authn_challenges (pool_id, username, challenge, expires_at)                  VALUES (?1, ?2, ?3, ?4) ON CONFLICT (pool_id, username) DO UPDATE                  SET challenge = excluded.challenge, expires_at = excluded.expires_at",
            )
            .map_err(sql)?
            .execute(params![pool_id, username, challenge, to_i64(expires_at)])
            .map_err(sql)?;
        Ok(())
    }

    /// Takes (and forgets: a challenge is good once) the user's challenge
    /// and its expiry.
    pub fn take_challenge(&self, pool_id: &str, username: &str) -> Result<Option<(String, u64)>> {
        let found: Option<(String, i64)> = self
            .conn
            .prepare_cached(
                "DELETE FROM web_authn_challenges WHERE pool_id = ?1 AND username = ?2 \
                 RETURNING challenge, expires_at",
            )
            .map_err(sql)?
            .query_row(params![pool_id, username], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql)?;
        Ok(found.map(|(c, at)| (c, to_u64(at))))
    }
}

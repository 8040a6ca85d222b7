//! The data file of releases before the SQLite store: one JSON document
//! (format 1). Read once, at the first start of a release with the SQLite
//! store, and imported ([`super::Store::open`]); never written.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{FeaturePlan, PoolSettings, Session, User};
use crate::domain::{PoolMfaConfig, Secret};

/// The only layout of the JSON data file there was.
pub const FORMAT: u32 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    pub format: u32,
    pub signing_key: Secret,
    pub pools: BTreeMap<String, Pool>,
    #[serde(default)]
    pub sessions: BTreeMap<String, Session>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub id: String,
    pub name: String,
    pub region: String,
    #[serde(default)]
    pub feature_plan: FeaturePlan,
    #[serde(default)]
    pub state: PoolSettings,
    pub mfa: PoolMfaConfig,
    pub users: BTreeMap<String, User>,
}

/// Whether `bytes` begin as a JSON data file does (an object), after any
/// whitespace: what a SQLite database never does.
pub fn looks_like_json(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

//! The local fixtures (cognito.mfa.dev.v1.LocalFixturesService) on the
//! local backend: pools, users, access tokens and MFA_SETUP sessions, the
//! demo pool of a first run, and the caps that bound what they may add to
//! the data file.

use std::collections::BTreeMap;

use crate::domain::{MfaMode, PoolMfaConfig, Secret, rules};
use crate::error::{Error, Result};

use super::cognito_rules::{cognito, pool, pool_mut, user_not_found};
use super::store::{FeaturePlan, Pool, PoolSettings, User};
use super::{
    DEFAULT_TOKEN_TTL_SECONDS, DEMO_POOL_NAME, DEMO_USERNAME, LocalBackend, MAX_TOKEN_TTL_SECONDS,
    Target, random_alnum, token,
};

/// How much the data file may hold (`[backend] max_*`): every fixtures
/// write clones and rewrites the whole file, so its size is bounded.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    pub max_pools: usize,
    pub max_users_per_pool: usize,
    pub max_user_attributes: usize,
    pub max_user_attribute_bytes: usize,
    pub max_sessions: usize,
}

impl Caps {
    pub fn of(b: &crate::backend::settings::BackendConfig) -> Self {
        Self {
            max_pools: b.max_pools,
            max_users_per_pool: b.max_users_per_pool,
            max_user_attributes: b.max_user_attributes,
            max_user_attribute_bytes: b.max_user_attribute_bytes,
            max_sessions: b.max_sessions,
        }
    }
}

impl Default for Caps {
    fn default() -> Self {
        Self::of(&crate::backend::settings::BackendConfig::default())
    }
}

pub(super) fn limit_exceeded(what: String) -> Error {
    cognito("LimitExceededException", what)
}

impl LocalBackend {
    pub async fn create_user_pool(
        &self,
        name: &str,
        plan: FeaturePlan,
        state: PoolSettings,
    ) -> Result<String> {
        let mut v = rules::Violations::default();
        rules::pool_name(&mut v, "pool_name", name);
        v.into_result()?;
        let region = self.region.clone();
        let max_pools = self.caps.max_pools;
        self.store
            .write(|data| {
                if data.pools.len() >= max_pools {
                    return Err(limit_exceeded(format!(
                        "the local data file holds {max_pools} user pools, the most it may ([backend] max_pools)"
                    )));
                }
                let id = loop {
                    let id = format!("{region}_{}", random_alnum(9)?);
                    if !data.pools.contains_key(&id) {
                        break id;
                    }
                };
                data.pools.insert(
                    id.clone(),
                    Pool {
                        id: id.clone(),
                        name: name.to_owned(),
                        region: region.clone(),
                        feature_plan: plan,
                        state: state.clone(),
                        mfa: PoolMfaConfig {
                            mode: Some(MfaMode::Off),
                            ..Default::default()
                        },
                        users: BTreeMap::new(),
                    },
                );
                Ok(id)
            })
            .await
    }

    /// The rules of a fixture user's attributes: names, values, and the
    /// `[backend]` caps on their count and size.
    pub fn check_attributes(
        &self,
        v: &mut rules::Violations,
        attributes: &BTreeMap<String, String>,
    ) {
        for (name, value) in attributes {
            let field = format!("attributes[{name}]");
            if name.is_empty() || name.len() > 32 {
                v.add(&field, "attribute names are 1 to 32 characters");
            }
            if value.len() > 2048 {
                v.add(&field, "attribute values are at most 2048 characters");
            }
            if name == "phone_number"
                && !(value.starts_with('+')
                    && (5..=16).contains(&value.len())
                    && value[1..].bytes().all(|b| b.is_ascii_digit()))
            {
                v.add(&field, "must be an E.164 number such as +15555550100");
            }
            if name == "email" && !value.contains('@') {
                v.add(&field, "must be an email address");
            }
            if name == "sub" {
                v.add(&field, "sub is assigned by the pool");
            }
        }
        let caps = self.caps;
        if attributes.len() > caps.max_user_attributes {
            v.add(
                "attributes",
                format!(
                    "at most {} attributes ([backend] max_user_attributes; {} given)",
                    caps.max_user_attributes,
                    attributes.len()
                ),
            );
        }
        let bytes: usize = attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes > caps.max_user_attribute_bytes {
            v.add(
                "attributes",
                format!(
                    "names and values are at most {} bytes together ([backend] max_user_attribute_bytes; {bytes} given)",
                    caps.max_user_attribute_bytes
                ),
            );
        }
    }

    /// Creates a confirmed, enabled user; returns its sub.
    pub async fn create_user(
        &self,
        user_pool_id: &str,
        username: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<String> {
        let mut v = rules::Violations::default();
        rules::user_pool_id(&mut v, "user_pool_id", user_pool_id);
        rules::username(&mut v, "username", username);
        self.check_attributes(&mut v, &attributes);
        v.into_result()?;
        let caps = self.caps;
        let sub = uuid::Uuid::new_v4().to_string();
        self.store
            .write(|data| {
                let pool = pool_mut(data, user_pool_id)?;
                if pool.users.len() >= caps.max_users_per_pool {
                    return Err(limit_exceeded(format!(
                        "the user pool holds {} users, the most the local backend allows ([backend] max_users_per_pool)",
                        caps.max_users_per_pool
                    )));
                }
                if pool.users.contains_key(username) {
                    return Err(cognito(
                        "UsernameExistsException",
                        "User account already exists",
                    ));
                }
                pool.users.insert(
                    username.to_owned(),
                    User {
                        username: username.to_owned(),
                        sub: sub.clone(),
                        status: "CONFIRMED".into(),
                        enabled: true,
                        attributes,
                        mfa: Default::default(),
                    },
                );
                Ok(sub.clone())
            })
            .await
    }

    /// Signs an access token for the user, valid for `ttl_seconds`.
    pub async fn issue_access_token(
        &self,
        user_pool_id: &str,
        username: &str,
        ttl_seconds: Option<u32>,
    ) -> Result<(Secret, u32)> {
        let ttl = ttl_seconds.unwrap_or(DEFAULT_TOKEN_TTL_SECONDS);
        if !(1..=MAX_TOKEN_TTL_SECONDS).contains(&ttl) {
            return Err(Error::InvalidArgument(vec![rules::FieldViolation {
                field: "ttl_seconds".into(),
                description: format!("must be between 1 and {MAX_TOKEN_TTL_SECONDS}"),
            }]));
        }
        let now = self.now();
        self.store
            .read(|data| {
                let pool = pool(data, user_pool_id)?;
                let user = pool.users.get(username).ok_or_else(user_not_found)?;
                let claims = token::Claims {
                    sub: user.sub.clone(),
                    username: user.username.clone(),
                    client_id: token::LOCAL_CLIENT_ID.into(),
                    token_use: "access".into(),
                    scope: token::ADMIN_SCOPE.into(),
                    iss: token::issuer(&pool.region, &pool.id),
                    iat: now,
                    exp: now + u64::from(ttl),
                    jti: uuid::Uuid::new_v4().to_string(),
                };
                Ok((Secret::new(token::sign(&data.signing_key, &claims)?), ttl))
            })
            .await
    }

    /// A session as an MFA_SETUP challenge would hand out.
    pub async fn issue_mfa_setup_session(
        &self,
        user_pool_id: &str,
        username: &str,
    ) -> Result<Secret> {
        let now = self.now();
        self.store
            .write(|data| {
                pool(data, user_pool_id)?
                    .users
                    .get(username)
                    .ok_or_else(user_not_found)?;
                let target = Target {
                    user_pool_id: user_pool_id.to_owned(),
                    username: username.to_owned(),
                };
                self.new_session(data, &target, now)
            })
            .await
    }

    /// The demo pool and user of a first run, created if missing; returns the pool id.
    pub async fn ensure_demo(&self) -> Result<String> {
        let existing = self
            .store
            .read(|data| {
                Ok(data
                    .pools
                    .values()
                    .find(|p| p.name == DEMO_POOL_NAME)
                    .map(|p| p.id.clone()))
            })
            .await?;
        let pool_id = match existing {
            Some(id) => id,
            None => {
                self.create_user_pool(DEMO_POOL_NAME, FeaturePlan::Essentials, Default::default())
                    .await?
            }
        };
        let has_user = self
            .store
            .read(|data| Ok(pool(data, &pool_id)?.users.contains_key(DEMO_USERNAME)))
            .await?;
        if !has_user {
            let attributes = BTreeMap::from([
                ("email".to_owned(), "demo-user@example.com".to_owned()),
                ("phone_number".to_owned(), "+15555550100".to_owned()),
            ]);
            self.create_user(&pool_id, DEMO_USERNAME, attributes)
                .await?;
        }
        Ok(pool_id)
    }
}

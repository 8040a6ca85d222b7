//! The embedded local backend: Cognito's MFA rules on a laptop, with no AWS
//! account. Pools, users, their MFA settings, TOTP secrets and sessions live
//! in one crash-safe JSON file ([`store`]); access tokens are signed JWTs with
//! Cognito's claims ([`token`]). Errors carry Cognito's exception names, so
//! callers see the same gRPC codes as against the real service.

pub mod cognito_rules;
pub mod fixtures;
pub mod store;
pub mod token;

use cognito_rules::{
    apply_preference, check_pool_config, cognito, pool, pool_mut, settings_of, user_mut,
    user_not_found,
};
pub use fixtures::Caps;
use fixtures::limit_exceeded;

use std::{path::Path, sync::Arc};

use async_trait::async_trait;

use crate::backend::Backend;
use crate::domain::{
    AssociatedToken, MfaMode, MfaPreference, PoolMfaConfig, PoolState, Secret, TokenAuth,
    TokenVerification, UserMfaSettings, UserRef, VerifyStatus, totp,
};
use crate::error::{Error, Result};
use store::{Data, Factor, Session, SoftwareToken, Store, StoreError};

/// Seconds since the Unix epoch; injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How long an MFA_SETUP session lives (Cognito: 3 minutes).
pub const SESSION_TTL_SECONDS: u64 = 180;
/// Default access-token lifetime (Cognito's default: one hour).
pub const DEFAULT_TOKEN_TTL_SECONDS: u32 = 3_600;
/// Longest access-token lifetime the fixtures issue (Cognito's maximum: one day).
pub const MAX_TOKEN_TTL_SECONDS: u32 = 86_400;
/// The demo pool and user that a first run creates.
pub const DEMO_POOL_NAME: &str = "mfa-facade-demo";
pub const DEMO_USERNAME: &str = "demo-user";

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

/// Bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Internal(format!("the OS random generator failed: {e}")))?;
    Ok(bytes)
}

fn random_alnum(len: usize) -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    Ok(random_bytes::<32>()?
        .iter()
        .take(len)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

pub struct LocalBackend {
    store: Store,
    region: String,
    clock: Clock,
    caps: Caps,
}

/// Where a call's user lives.
struct Target {
    user_pool_id: String,
    username: String,
}

impl LocalBackend {
    /// Opens (or creates) the data file. Pools created here get ids in `region`.
    pub fn open(path: &Path, region: &str) -> Result<Self, StoreError> {
        Ok(Self {
            store: Store::open(path)?,
            region: region.to_owned(),
            clock: system_clock(),
            caps: Caps::default(),
        })
    }

    pub fn with_caps(mut self, caps: Caps) -> Self {
        self.caps = caps;
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn data_file(&self) -> &Path {
        self.store.path()
    }

    fn now(&self) -> u64 {
        (self.clock)()
    }

    /// The pool and user an access token names. Forged, expired, or naming a
    /// pool or user (by sub) that is gone: NotAuthorizedException.
    fn token_target(data: &Data, token: &Secret, now: u64) -> Result<Target> {
        let claims = token::verify(&data.signing_key, token.expose(), now)?;
        let invalid = || cognito("NotAuthorizedException", "Invalid Access Token");
        let pool_id = claims.iss.rsplit('/').next().unwrap_or_default();
        let pool = data.pools.get(pool_id).ok_or_else(invalid)?;
        if claims.iss != token::issuer(&pool.region, &pool.id) {
            return Err(invalid());
        }
        match pool.users.get(&claims.username) {
            Some(user) if user.sub == claims.sub => Ok(Target {
                user_pool_id: pool.id.clone(),
                username: user.username.clone(),
            }),
            Some(_) => Err(invalid()),
            None => Err(user_not_found()),
        }
    }

    fn user_target(data: &Data, user: &UserRef, now: u64) -> Result<Target> {
        match user {
            UserRef::AccessToken(token) => Self::token_target(data, token.secret(), now),
            UserRef::Admin {
                user_pool_id,
                username,
            } => {
                let pool = pool(data, user_pool_id)?;
                pool.users.get(username).ok_or_else(user_not_found)?;
                Ok(Target {
                    user_pool_id: user_pool_id.clone(),
                    username: username.clone(),
                })
            }
        }
    }

    fn auth_target(data: &Data, auth: &TokenAuth, now: u64) -> Result<Target> {
        match auth {
            TokenAuth::AccessToken(token) => Self::token_target(data, token.secret(), now),
            TokenAuth::Session(session) => match data.sessions.get(session.expose()) {
                Some(s) if s.expires_at > now => Ok(Target {
                    user_pool_id: s.user_pool_id.clone(),
                    username: s.username.clone(),
                }),
                _ => Err(cognito(
                    "NotAuthorizedException",
                    "Invalid session for the user.",
                )),
            },
        }
    }

    /// A new MFA_SETUP session for the user, replacing none of the others.
    fn new_session(&self, data: &mut Data, target: &Target, now: u64) -> Result<Secret> {
        data.sessions.retain(|_, s| s.expires_at > now);
        if data.sessions.len() >= self.caps.max_sessions {
            return Err(limit_exceeded(format!(
                "{} MFA_SETUP sessions are open, the most the local data file holds ([backend] max_sessions); each expires {SESSION_TTL_SECONDS} s after it was issued",
                self.caps.max_sessions
            )));
        }
        let id = base64_session()?;
        data.sessions.insert(
            id.clone(),
            Session {
                user_pool_id: target.user_pool_id.clone(),
                username: target.username.clone(),
                expires_at: now + SESSION_TTL_SECONDS,
            },
        );
        Ok(Secret::new(id))
    }
}

fn base64_session() -> Result<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<48>()?))
}

#[async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn get_user_pool_mfa_config(&self, user_pool_id: &str) -> Result<PoolMfaConfig> {
        self.store
            .read(|data| Ok(pool(data, user_pool_id)?.mfa.clone()))
            .await
    }

    async fn pool_state(&self, user_pool_id: &str) -> Result<PoolState> {
        self.store
            .read(|data| Ok(cognito_rules::pool_state(pool(data, user_pool_id)?)))
            .await
    }

    async fn set_user_pool_mfa_config(
        &self,
        user_pool_id: &str,
        config: &PoolMfaConfig,
    ) -> Result<PoolMfaConfig> {
        self.store
            .write(|data| {
                let pool = pool_mut(data, user_pool_id)?;
                check_pool_config(pool, config)?;
                let mut stored = config.clone();
                // Cognito reads a mode that is not sent as OFF.
                stored.mode.get_or_insert(MfaMode::Off);
                pool.mfa = stored.clone();
                Ok(stored)
            })
            .await
    }

    async fn set_user_mfa_preference(
        &self,
        user: &UserRef,
        preference: &MfaPreference,
    ) -> Result<()> {
        let now = self.now();
        self.store
            .write(|data| {
                let target = Self::user_target(data, user, now)?;
                let pool = pool_mut(data, &target.user_pool_id)?;
                let snapshot = pool.clone();
                let user = pool
                    .users
                    .get_mut(&target.username)
                    .ok_or_else(user_not_found)?;
                apply_preference(&snapshot, user, preference)
            })
            .await
    }

    async fn associate_software_token(&self, auth: &TokenAuth) -> Result<AssociatedToken> {
        let now = self.now();
        self.store
            .write(|data| {
                let target = Self::auth_target(data, auth, now)?;
                let totp_on = pool(data, &target.user_pool_id)?
                    .mfa
                    .software_token
                    .as_ref()
                    .is_some_and(|t| t.enabled == Some(true));
                if !totp_on {
                    return Err(cognito(
                        "SoftwareTokenMFANotFoundException",
                        "Software Token MFA has not been enabled by the userPool",
                    ));
                }
                let secret = Secret::new(totp::encode_base32(&random_bytes::<20>()?));
                user_mut(data, &target.user_pool_id, &target.username)?
                    .mfa
                    .pending_secret = Some(secret.clone());
                let session = match auth {
                    TokenAuth::Session(_) => Some(self.new_session(data, &target, now)?),
                    TokenAuth::AccessToken(_) => None,
                };
                Ok(AssociatedToken {
                    secret_code: secret,
                    session,
                })
            })
            .await
    }

    async fn verify_software_token(
        &self,
        auth: &TokenAuth,
        user_code: &Secret,
        friendly_device_name: Option<&str>,
    ) -> Result<TokenVerification> {
        let now = self.now();
        self.store
            .write(|data| {
                let target = Self::auth_target(data, auth, now)?;
                let user = user_mut(data, &target.user_pool_id, &target.username)?;
                let Some(pending) = user.mfa.pending_secret.clone() else {
                    return Err(cognito(
                        "SoftwareTokenMFANotFoundException",
                        "Software Token MFA does not exist for the user.",
                    ));
                };
                let key = totp::decode_base32(pending.expose())
                    .ok_or_else(|| Error::Internal("a stored TOTP secret is not base32".into()))?;
                if !totp::verify(&key, user_code.expose(), now) {
                    return Err(cognito(
                        "EnableSoftwareTokenMFAException",
                        "Code mismatch and fail enable Software Token MFA",
                    ));
                }
                // The new authenticator replaces the old one only now.
                user.mfa.software_token = Some(SoftwareToken {
                    secret: pending,
                    friendly_device_name: friendly_device_name.map(str::to_owned),
                });
                user.mfa.pending_secret = None;
                let session = match auth {
                    TokenAuth::Session(_) => Some(self.new_session(data, &target, now)?),
                    TokenAuth::AccessToken(_) => None,
                };
                Ok(TokenVerification {
                    status: Some(VerifyStatus::Success),
                    session,
                })
            })
            .await
    }

    async fn get_user_mfa_settings(&self, user: &UserRef) -> Result<UserMfaSettings> {
        let now = self.now();
        self.store
            .read(|data| {
                let target = Self::user_target(data, user, now)?;
                let user = pool(data, &target.user_pool_id)?
                    .users
                    .get(&target.username)
                    .ok_or_else(user_not_found)?;
                Ok(settings_of(user))
            })
            .await
    }

    async fn admin_delete_software_token(&self, user_pool_id: &str, username: &str) -> Result<()> {
        self.store
            .write(|data| {
                let user = user_mut(data, user_pool_id, username)?;
                user.mfa.software_token = None;
                user.mfa.pending_secret = None;
                user.mfa.software_token_enabled = false;
                if user.mfa.preferred == Some(Factor::SoftwareToken) {
                    user.mfa.preferred = None;
                }
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccessToken, FactorSettings, SmsMfaConfig, SoftwareTokenMfaConfig};
    use std::collections::BTreeMap;
    use store::FeaturePlan;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_are_all_kept_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.json");
        let local = Arc::new(LocalBackend::open(&path, "eu-west-1").unwrap());
        let pool = local
            .create_user_pool("p", FeaturePlan::Essentials, Default::default())
            .await
            .unwrap();
        assert!(pool.starts_with("eu-west-1_"));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (local, pool) = (local.clone(), pool.clone());
            tasks.push(tokio::spawn(async move {
                let name = format!("user{i}");
                let attrs =
                    BTreeMap::from([("phone_number".to_owned(), "+15555550100".to_owned())]);
                local.create_user(&pool, &name, attrs).await.unwrap();
                let user = UserRef::Admin {
                    user_pool_id: pool.clone(),
                    username: name,
                };
                let pref = MfaPreference {
                    sms: Some(FactorSettings {
                        enabled: Some(true),
                        preferred_mfa: Some(i % 2 == 0),
                    }),
                    ..Default::default()
                };
                local.set_user_mfa_preference(&user, &pref).await.unwrap();
                let config = PoolMfaConfig {
                    mode: Some(MfaMode::Optional),
                    software_token: Some(SoftwareTokenMfaConfig {
                        enabled: Some(true),
                    }),
                    sms: (i % 3 == 0).then(SmsMfaConfig::default),
                    ..Default::default()
                };
                local
                    .set_user_pool_mfa_config(&pool, &config)
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let final_config = local.get_user_pool_mfa_config(&pool).await.unwrap();
        drop(local);

        let reopened = LocalBackend::open(&path, "eu-west-1").unwrap();
        assert_eq!(
            reopened.get_user_pool_mfa_config(&pool).await.unwrap(),
            final_config
        );
        for i in 0..50 {
            let settings = reopened
                .get_user_mfa_settings(&UserRef::Admin {
                    user_pool_id: pool.clone(),
                    username: format!("user{i}"),
                })
                .await
                .unwrap();
            assert_eq!(settings.user_mfa_setting_list, ["SMS_MFA"], "user{i}");
            assert_eq!(
                settings.preferred_mfa_setting.is_some(),
                i % 2 == 0,
                "user{i}"
            );
        }
    }

    #[tokio::test]
    async fn tokens_follow_the_injected_clock() {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(std::sync::atomic::AtomicU64::new(1_000_000));
        let clock_now = now.clone();
        let local = LocalBackend::open(&dir.path().join("d.json"), "us-east-1")
            .unwrap()
            .with_clock(Arc::new(move || {
                clock_now.load(std::sync::atomic::Ordering::SeqCst)
            }));
        let pool = local
            .create_user_pool("p", FeaturePlan::Essentials, Default::default())
            .await
            .unwrap();
        local
            .create_user(&pool, "u", BTreeMap::new())
            .await
            .unwrap();
        let (token, ttl) = local
            .issue_access_token(&pool, "u", Some(60))
            .await
            .unwrap();
        assert_eq!(ttl, 60);
        let who = UserRef::AccessToken(AccessToken::new(token));
        assert_eq!(
            local.get_user_mfa_settings(&who).await.unwrap().username,
            "u"
        );
        now.fetch_add(60, std::sync::atomic::Ordering::SeqCst);
        let err = local.get_user_mfa_settings(&who).await.unwrap_err();
        assert_eq!(err.cognito_exception(), Some("NotAuthorizedException"));

        // A token of a user who was deleted and re-created (new sub) is refused.
        let (token, _) = local.issue_access_token(&pool, "u", None).await.unwrap();
        local
            .store
            .write(|d| {
                d.pools
                    .get_mut(&pool)
                    .unwrap()
                    .users
                    .get_mut("u")
                    .unwrap()
                    .sub = "other".into();
                Ok(())
            })
            .await
            .unwrap();
        let err = local
            .get_user_mfa_settings(&UserRef::AccessToken(AccessToken::new(token)))
            .await
            .unwrap_err();
        assert_eq!(err.cognito_exception(), Some("NotAuthorizedException"));
    }
}

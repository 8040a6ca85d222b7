//! The embedded local backend: Cognito's MFA rules on a laptop, with no AWS
//! account. Pools, users, their MFA settings, TOTP secrets and sessions live
//! in one crash-safe JSON file ([`store`]); access tokens are signed JWTs with
//! Cognito's claims ([`token`]). Errors carry Cognito's exception names, so
//! callers see the same gRPC codes as against the real service.

mod account;
pub mod cognito_rules;
pub mod fixtures;
mod page_token;
mod passkeys;
pub mod store;
pub mod token;
pub mod totp_checks;
pub mod webauthn;

pub use account::NewDevice;
use cognito_rules::{
    apply_preference, check_can_sign_in, check_pool_config, cognito, configured_factors,
    invalid_parameter, matches_filter, resolve_username, settings_of, user_not_found,
};
pub use fixtures::Caps;
use fixtures::limit_exceeded;
use page_token::{decode_offset, decode_page_token, encode_offset, encode_page_token};
use totp_checks::check_code;
pub use totp_checks::{
    MAX_TOTP_LOCKOUT_SECONDS, TOTP_FAILURE_RESET_SECONDS, TOTP_FAILURES_BEFORE_LOCKOUT,
    lockout_seconds,
};

use std::{path::Path, sync::Arc};

use async_trait::async_trait;

use crate::backend::Backend;
use crate::domain::{
    AccessToken, AssociatedToken, CredentialsPage, Device, DeviceStatus, DevicesPage, ListedUser,
    MfaMode, MfaPreference, PoolMfaConfig, PoolState, Secret, TokenAuth, TokenVerification,
    UserAttribute, UserAuthFactors, UserMfaSettings, UserRef, UsersPage, VerifyStatus, rules, totp,
};
use crate::error::{Error, Result};
use store::{Data, Factor, Session, Store, StoreError};

/// Seconds since the Unix epoch; injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

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
        Self::open_limited(path, region, None)
    }

    /// [`LocalBackend::open`], the data file bounded to `max_bytes`
    /// (`backend.max_data_bytes`).
    pub fn open_limited(
        path: &Path,
        region: &str,
        max_bytes: Option<u64>,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            store: Store::open_limited(path, max_bytes)?,
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

    /// What the store has done since it opened: reads, changes asked for,
    /// and what reached the disk. Every call of this backend reads or
    /// changes the store, so a count that did not move proves that no call
    /// reached it.
    pub fn store_stats(&self) -> store::StoreStats {
        self.store.stats()
    }

    fn now(&self) -> u64 {
        (self.clock)()
    }

    /// Folds the data file's WAL into it once the server has drained
    /// ([`store::Store::checkpoint`]).
    pub async fn checkpoint(&self) -> Result<()> {
        self.store.checkpoint().await
    }

    /// The pool and user an access token names. Forged, expired, or naming a
    /// pool or user (by sub) that is gone: NotAuthorizedException.
    fn token_target(data: &Data, token: &Secret, now: u64) -> Result<Target> {
        let claims = token::verify(data.signing_key(), token.expose(), now)?;
        let invalid = || cognito("NotAuthorizedException", "Invalid Access Token");
        let pool_id = claims.iss.rsplit('/').next().unwrap_or_default();
        let pool = data.find_pool(pool_id)?.ok_or_else(invalid)?;
        if claims.iss != token::issuer(&pool.region, &pool.id) {
            return Err(invalid());
        }
        match data.user(&pool.id, &claims.username)? {
            // AdminDisableUser revokes the user's access tokens.
            Some(user) if user.sub == claims.sub && !user.enabled => Err(cognito(
                "NotAuthorizedException",
                "Access Token has been revoked",
            )),
            // AdminUserGlobalSignOut and GlobalSignOut revoke the tokens
            // issued before them (a token of the same second too).
            Some(user)
                if user.sub == claims.sub
                    && claims.iat <= data.signed_out_at(&pool.id, &user.username)? =>
            {
                Err(cognito(
                    "NotAuthorizedException",
                    "Access Token has been revoked",
                ))
            }
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
                let pool = data.pool(user_pool_id)?;
                Ok(Target {
                    user_pool_id: user_pool_id.clone(),
                    username: resolve_username(data, &pool, username)?,
                })
            }
        }
    }

    fn auth_target(data: &Data, auth: &TokenAuth, now: u64) -> Result<Target> {
        match auth {
            TokenAuth::AccessToken(token) => Self::token_target(data, token.secret(), now),
            TokenAuth::Session(session) => {
                let invalid = || cognito("NotAuthorizedException", "Invalid session for the user.");
                let s = data
                    .session(session.expose())?
                    .filter(|s| s.expires_at > now)
                    .ok_or_else(invalid)?;
                data.pool(&s.user_pool_id)?;
                let user = data
                    .user(&s.user_pool_id, &s.username)?
                    .ok_or_else(invalid)?;
                check_can_sign_in(&user)?;
                Ok(Target {
                    user_pool_id: s.user_pool_id.clone(),
                    username: s.username.clone(),
                })
            }
        }
    }

    /// A new MFA_SETUP session for the user. `used`, the session the call
    /// came with, is spent: each session is good for one step.
    fn new_session(
        &self,
        data: &Data,
        target: &Target,
        now: u64,
        used: Option<&Secret>,
    ) -> Result<Secret> {
        data.drop_sessions(now, used.map(Secret::expose))?;
        if data.session_count()? >= self.caps.max_sessions {
            return Err(limit_exceeded(format!(
                "{} MFA_SETUP sessions are open, the most the local data file holds ([backend] max_sessions); each expires {} s after it was issued ([backend] mfa_setup_session_seconds)",
                self.caps.max_sessions, self.caps.session_seconds
            )));
        }
        let id = base64_session()?;
        data.insert_session(
            &id,
            &Session {
                user_pool_id: target.user_pool_id.clone(),
                username: target.username.clone(),
                expires_at: now.saturating_add(self.caps.session_seconds),
            },
        )?;
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
            .read(|data| Ok(data.pool(user_pool_id)?.mfa.clone()))
            .await
    }

    async fn pool_state(&self, user_pool_id: &str) -> Result<PoolState> {
        self.store
            .read(|data| Ok(cognito_rules::pool_state(&data.pool(user_pool_id)?)))
            .await
    }

    async fn set_user_pool_mfa_config(
        &self,
        user_pool_id: &str,
        config: &PoolMfaConfig,
    ) -> Result<PoolMfaConfig> {
        self.store
            .write(|data| {
                let pool = data.pool(user_pool_id)?;
                check_pool_config(&pool, config)?;
                let mut stored = config.clone();
                // Cognito reads a mode that is not sent as OFF.
                stored.mode.get_or_insert(MfaMode::Off);
                data.put_pool_mfa(user_pool_id, &stored)?;
                Ok(stored)
            })
            .await
    }

    async fn set_user_mfa_preference(
        &self,
        user: &UserRef,
        preference: &MfaPreference,
    ) -> Result<()> {
        let user_ref = user;
        let now = self.now();
        self.store
            .write(|data| {
                let target = Self::user_target(data, user, now)?;
                let pool = data.pool(&target.user_pool_id)?;
                let mut user = cognito_rules::user(data, &target.user_pool_id, &target.username)?;
                let own = matches!(user_ref, UserRef::AccessToken(_));
                apply_preference(&pool, &mut user, preference, own)?;
                data.put_factors(&target.user_pool_id, &target.username, &user.mfa)
            })
            .await
    }

    async fn associate_software_token(&self, auth: &TokenAuth) -> Result<AssociatedToken> {
        let now = self.now();
        self.store
            .write(|data| {
                let target = Self::auth_target(data, auth, now)?;
                let totp_on = data.pool(&target.user_pool_id)?.mfa.totp_enabled();
                if !totp_on {
                    return Err(cognito(
                        "SoftwareTokenMFANotFoundException",
                        "Software Token MFA has not been enabled by the userPool",
                    ));
                }
                let secret = Secret::new(totp::encode_base32(&random_bytes::<20>()?));
                let mut user = cognito_rules::user(data, &target.user_pool_id, &target.username)?;
                user.mfa.pending_secret = Some(secret.clone());
                data.put_factors(&target.user_pool_id, &target.username, &user.mfa)?;
                let session = match auth {
                    TokenAuth::Session(used) => {
                        Some(self.new_session(data, &target, now, Some(used))?)
                    }
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
        // A wrong code is an error that still changes the data (it counts
        // toward the lockout): the write commits and the error is returned.
        self.store
            .write(|data| {
                let target = Self::auth_target(data, auth, now)?;
                let required = data.pool(&target.user_pool_id)?.mfa.mode == Some(MfaMode::On);
                let mut user = cognito_rules::user(data, &target.user_pool_id, &target.username)?;
                let checked = check_code(&mut user, user_code, friendly_device_name, now)?;
                if let Err(wrong) = checked {
                    // A wrong code counts toward the lockout: kept.
                    data.put_factors(&target.user_pool_id, &target.username, &user.mfa)?;
                    return Ok(Err(wrong));
                }
                // Under MFA ON a user cannot turn factors on or off; a TOTP
                // app the user has just verified is its MFA from then on
                // (the developer guide: a user with a registered
                // authenticator is challenged with it).
                if required && !user.mfa.software_token_enabled {
                    user.mfa.software_token_enabled = true;
                    if user.mfa.preferred.is_none() {
                        user.mfa.preferred = Some(Factor::SoftwareToken);
                    }
                }
                data.put_factors(&target.user_pool_id, &target.username, &user.mfa)?;
                let session = match auth {
                    TokenAuth::Session(used) => {
                        Some(self.new_session(data, &target, now, Some(used))?)
                    }
                    TokenAuth::AccessToken(_) => None,
                };
                Ok(Ok(TokenVerification {
                    status: Some(VerifyStatus::Success),
                    session,
                }))
            })
            .await?
    }

    async fn get_user_mfa_settings(&self, user: &UserRef) -> Result<UserMfaSettings> {
        let now = self.now();
        self.store
            .read(|data| {
                let target = Self::user_target(data, user, now)?;
                Ok(settings_of(&cognito_rules::user(
                    data,
                    &target.user_pool_id,
                    &target.username,
                )?))
            })
            .await
    }

    async fn admin_delete_software_token(&self, user_pool_id: &str, username: &str) -> Result<()> {
        self.store
            .write(|data| {
                let username = resolve_username(data, &data.pool(user_pool_id)?, username)?;
                let mut user = cognito_rules::user(data, user_pool_id, &username)?;
                // The model lists UserNotConfirmedException for it; that
                // an UNCONFIRMED user is what raises it is our reading.
                if user.status == "UNCONFIRMED" {
                    return Err(cognito(
                        "UserNotConfirmedException",
                        "User is not confirmed.",
                    ));
                }
                let m = &mut user.mfa;
                m.software_token = None;
                m.pending_secret = None;
                m.software_token_enabled = false;
                m.totp_failures = 0;
                m.totp_locked_until = 0;
                if m.preferred == Some(Factor::SoftwareToken) {
                    m.preferred = None;
                }
                // WebAuthn MFA needs another factor beside the passkey.
                if !(m.sms_enabled || m.email_enabled) {
                    m.web_authn_enabled = false;
                }
                data.put_factors(user_pool_id, &username, &user.mfa)
            })
            .await
    }

    async fn get_user_auth_factors(&self, user: &UserRef) -> Result<UserAuthFactors> {
        let now = self.now();
        self.store
            .read(|data| {
                let target = Self::user_target(data, user, now)?;
                let pool = data.pool(&target.user_pool_id)?;
                let user = cognito_rules::user(data, &target.user_pool_id, &target.username)?;
                let settings = settings_of(&user);
                Ok(UserAuthFactors {
                    username: settings.username,
                    preferred_mfa_setting: settings.preferred_mfa_setting,
                    user_mfa_setting_list: settings.user_mfa_setting_list,
                    configured_user_auth_factors: configured_factors(&pool, &user),
                })
            })
            .await
    }

    async fn list_web_authn_credentials(
        &self,
        token: &AccessToken,
        next_token: Option<&str>,
        max_results: Option<i32>,
    ) -> Result<CredentialsPage> {
        let now = self.now();
        self.store
            .read(|data| {
                let target = Self::token_target(data, token.secret(), now)?;
                let all = cognito_rules::user(data, &target.user_pool_id, &target.username)?
                    .web_authn_credentials;
                let start = match next_token {
                    None => 0,
                    Some(t) => decode_offset(t)
                        .filter(|o| *o <= all.len())
                        .ok_or_else(|| invalid_parameter("Invalid NextToken"))?,
                };
                // MaxResults 0 (the model allows it) as the default, 20: a
                // guess (docs/differences.md).
                let take = match max_results {
                    None | Some(0) => rules::MAX_WEB_AUTHN_RESULTS,
                    Some(n) => n,
                };
                let take = usize::try_from(take).unwrap_or(1).max(1);
                let end = start.saturating_add(take).min(all.len());
                Ok(CredentialsPage {
                    credentials: all[start..end].to_vec(),
                    next_token: (end < all.len()).then(|| encode_offset(end)),
                })
            })
            .await
    }

    async fn delete_web_authn_credential(
        &self,
        token: &AccessToken,
        credential_id: &str,
    ) -> Result<()> {
        let now = self.now();
        self.store
            .write(|data| {
                let target = Self::token_target(data, token.secret(), now)?;
                let mut user = cognito_rules::user(data, &target.user_pool_id, &target.username)?;
                let before = user.web_authn_credentials.len();
                user.web_authn_credentials
                    .retain(|c| c.credential_id != credential_id);
                if user.web_authn_credentials.len() == before {
                    return Err(cognito(
                        "ResourceNotFoundException",
                        "The user has no passkey with this credential id.",
                    ));
                }
                // No passkey left: WebAuthn MFA has nothing to use.
                if user.web_authn_credentials.is_empty() {
                    user.mfa.web_authn_enabled = false;
                }
                data.put_passkeys(
                    &target.user_pool_id,
                    &target.username,
                    &user.web_authn_credentials,
                )?;
                data.put_factors(&target.user_pool_id, &target.username, &user.mfa)
            })
            .await
    }

    async fn list_users(
        &self,
        user_pool_id: &str,
        filter: &str,
        pagination_token: Option<&str>,
        limit: i32,
    ) -> Result<UsersPage> {
        let filter = match filter {
            "" => None,
            text => Some(
                rules::UserFilter::parse(text)
                    .ok_or_else(|| invalid_parameter("Invalid search filter"))?,
            ),
        };
        let after = pagination_token
            .map(|t| {
                decode_page_token(t).ok_or_else(|| invalid_parameter("Invalid pagination token"))
            })
            .transpose()?;
        let limit = usize::try_from(limit).unwrap_or(0).clamp(1, 60);
        self.store
            .read(|data| {
                data.pool(user_pool_id)?;
                // Pages through the users table in username order: what a
                // call holds is one chunk, whatever the pool's size.
                const CHUNK: usize = 256;
                let mut found: Vec<store::User> = Vec::new();
                let mut cursor = after.clone();
                let mut more = false;
                loop {
                    let chunk = data.users_after(user_pool_id, cursor.as_deref(), CHUNK)?;
                    let full = chunk.len() == CHUNK;
                    cursor = chunk.last().map(|u| u.username.clone());
                    for u in chunk {
                        if !matches_filter(&u, filter.as_ref()) {
                            continue;
                        }
                        if found.len() == limit {
                            more = true;
                            break;
                        }
                        found.push(u);
                    }
                    if more || !full {
                        break;
                    }
                }
                let users: Vec<ListedUser> = found
                    .into_iter()
                    .map(|u| ListedUser {
                        has_phone_number: u
                            .attributes
                            .get("phone_number")
                            .is_some_and(|v| !v.is_empty()),
                        has_email: u.attributes.get("email").is_some_and(|v| !v.is_empty()),
                        email_verified: u
                            .attributes
                            .get("email_verified")
                            .is_some_and(|v| v == "true"),
                        phone_number_verified: u
                            .attributes
                            .get("phone_number_verified")
                            .is_some_and(|v| v == "true"),
                        username: u.username,
                        sub: Some(u.sub),
                        status: Some(u.status),
                        enabled: u.enabled,
                    })
                    .collect();
                let next = users
                    .last()
                    .filter(|_| more)
                    .map(|last| encode_page_token(&last.username));
                Ok(UsersPage { users, next })
            })
            .await
    }

    async fn list_devices(
        &self,
        user: &UserRef,
        limit: Option<i32>,
        pagination_token: Option<&str>,
    ) -> Result<DevicesPage> {
        self.local_list_devices(user, limit, pagination_token).await
    }

    async fn admin_get_device(
        &self,
        user_pool_id: &str,
        username: &str,
        device_key: &str,
    ) -> Result<Device> {
        self.local_admin_get_device(user_pool_id, username, device_key)
            .await
    }

    async fn forget_device(&self, user: &UserRef, device_key: &str) -> Result<()> {
        self.local_forget_device(user, device_key).await
    }

    async fn admin_update_device_status(
        &self,
        user_pool_id: &str,
        username: &str,
        device_key: &str,
        status: Option<DeviceStatus>,
    ) -> Result<()> {
        self.local_admin_update_device_status(user_pool_id, username, device_key, status)
            .await
    }

    async fn global_sign_out(&self, user: &UserRef) -> Result<()> {
        self.local_global_sign_out(user).await
    }

    async fn admin_update_user_attributes(
        &self,
        user_pool_id: &str,
        username: &str,
        attributes: &[UserAttribute],
    ) -> Result<()> {
        self.local_admin_update_user_attributes(user_pool_id, username, attributes)
            .await
    }

    async fn start_web_authn_registration(&self, token: &AccessToken) -> Result<serde_json::Value> {
        self.local_start_web_authn_registration(token).await
    }

    async fn complete_web_authn_registration(
        &self,
        token: &AccessToken,
        credential: &serde_json::Value,
    ) -> Result<()> {
        self.local_complete_web_authn_registration(token, credential)
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
                d.conn()
                    .execute(
                        "UPDATE users SET sub = 'other' WHERE pool_id = ?1 AND username = 'u'",
                        [&pool],
                    )
                    .unwrap();
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

    /// The development key follows the data file: the same on a reopen,
    /// another for another file.
    #[tokio::test]
    async fn the_dev_api_key_is_the_data_file_s() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
        let key_a = LocalBackend::open(&a, "us-east-1")
            .unwrap()
            .dev_api_key()
            .await
            .unwrap();
        let again = LocalBackend::open(&a, "us-east-1")
            .unwrap()
            .dev_api_key()
            .await
            .unwrap();
        let key_b = LocalBackend::open(&b, "us-east-1")
            .unwrap()
            .dev_api_key()
            .await
            .unwrap();
        assert_eq!(key_a, again);
        assert_ne!(key_a, key_b);
        assert!(
            key_a.starts_with("mfa-dev-") && key_a.len() == 8 + 32,
            "{key_a}"
        );
    }

    /// A local backend whose clock the test moves.
    fn clocked() -> (
        tempfile::TempDir,
        LocalBackend,
        Arc<std::sync::atomic::AtomicU64>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(std::sync::atomic::AtomicU64::new(1_700_000_010));
        let clock_now = now.clone();
        let local = LocalBackend::open(&dir.path().join("d.json"), "us-east-1")
            .unwrap()
            .with_clock(Arc::new(move || {
                clock_now.load(std::sync::atomic::Ordering::SeqCst)
            }));
        (dir, local, now)
    }

    async fn totp_pool(local: &LocalBackend) -> String {
        let pool = local
            .create_user_pool("p", FeaturePlan::Essentials, Default::default())
            .await
            .unwrap();
        local
            .set_user_pool_mfa_config(
                &pool,
                &PoolMfaConfig {
                    software_token: Some(SoftwareTokenMfaConfig {
                        enabled: Some(true),
                    }),
                    mode: Some(MfaMode::Optional),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        pool
    }

    /// A TOTP pool, user "u" in it, and that user's pending
    /// AssociateSoftwareToken: the pool, the user's auth and the secret.
    async fn enrolling(local: &LocalBackend) -> (String, TokenAuth, Secret) {
        let pool = totp_pool(local).await;
        local
            .create_user(&pool, "u", BTreeMap::new())
            .await
            .unwrap();
        let (token, _) = local.issue_access_token(&pool, "u", None).await.unwrap();
        let auth = TokenAuth::AccessToken(AccessToken::new(token));
        let secret = local
            .associate_software_token(&auth)
            .await
            .unwrap()
            .secret_code;
        (pool, auth, secret)
    }

    fn code(secret: &Secret, at: u64) -> Secret {
        Secret::new(totp::code_at(
            &totp::decode_base32(secret.expose()).unwrap(),
            at,
        ))
    }

    fn wrong(secret: &Secret, at: u64) -> Secret {
        let right = code(secret, at);
        let first = right.expose().as_bytes()[0];
        let digit = if first == b'9' {
            '0'
        } else {
            (first + 1) as char
        };
        Secret::new(format!("{digit}{}", &right.expose()[1..]))
    }

    #[test]
    fn the_lockout_starts_at_the_fifth_failure_and_doubles_to_15_minutes() {
        let schedule: Vec<u64> = (0..=20).map(lockout_seconds).collect();
        assert_eq!(&schedule[..8], &[0, 0, 0, 0, 0, 1, 2, 4]);
        assert_eq!(lockout_seconds(14), 512);
        assert_eq!(lockout_seconds(15), MAX_TOTP_LOCKOUT_SECONDS);
        assert_eq!(lockout_seconds(u32::MAX), MAX_TOTP_LOCKOUT_SECONDS);
    }

    /// Five wrong codes, then the user is locked out even with the right
    /// code; each failure after doubles the lockout; a right code after it
    /// resets the count. The count survives the error that reports it.
    #[tokio::test]
    async fn wrong_codes_lock_the_user_out_with_exponential_back_off() {
        let (_dir, local, now) = clocked();
        let (pool, auth, secret) = enrolling(&local).await;
        let at = || now.load(std::sync::atomic::Ordering::SeqCst);
        for i in 1..=5 {
            let err = local
                .verify_software_token(&auth, &wrong(&secret, at()), None)
                .await
                .unwrap_err();
            assert_eq!(
                err.cognito_exception(),
                Some("EnableSoftwareTokenMFAException"),
                "failure {i}"
            );
        }
        let locked = local
            .verify_software_token(&auth, &code(&secret, at()), None)
            .await
            .unwrap_err();
        assert_eq!(locked.cognito_exception(), Some("NotAuthorizedException"));
        // 1 s from a failure somewhere within this second: until the end
        // of the next.
        assert!(locked.to_string().contains("try again in 2 s"), "{locked}");
        now.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let still = local
            .verify_software_token(&auth, &code(&secret, at()), None)
            .await
            .unwrap_err();
        assert!(still.to_string().contains("try again in 1 s"), "{still}");
        now.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // A sixth failure: locked for 2 s (and the rest of this one).
        local
            .verify_software_token(&auth, &wrong(&secret, at()), None)
            .await
            .unwrap_err();
        now.fetch_add(2, std::sync::atomic::Ordering::SeqCst);
        let still = local
            .verify_software_token(&auth, &code(&secret, at()), None)
            .await
            .unwrap_err();
        assert!(still.to_string().contains("try again in 1 s"), "{still}");
        now.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let ok = local
            .verify_software_token(&auth, &code(&secret, at()), None)
            .await
            .unwrap();
        assert_eq!(ok.status, Some(VerifyStatus::Success));
        let m = local
            .store
            .read(|d| Ok(d.user(&pool, "u")?.unwrap().mfa))
            .await
            .unwrap();
        assert_eq!((m.totp_failures, m.totp_locked_until), (0, 0));
    }

    /// Fifteen minutes without a failed attempt reset the count: four
    /// failures, a quarter of an hour, four more: no lockout; the fifth in a
    /// row then locks.
    #[tokio::test]
    async fn the_failure_count_resets_after_15_minutes_without_attempts() {
        let (_dir, local, now) = clocked();
        let (pool, auth, secret) = enrolling(&local).await;
        let at = || now.load(std::sync::atomic::Ordering::SeqCst);
        let fail = || async {
            local
                .verify_software_token(&auth, &wrong(&secret, at()), None)
                .await
                .unwrap_err()
        };
        for _ in 0..4 {
            fail().await;
        }
        now.fetch_add(
            TOTP_FAILURE_RESET_SECONDS - 1,
            std::sync::atomic::Ordering::SeqCst,
        );
        fail().await;
        let failures = || async {
            local
                .store
                .read(|d| Ok(d.user(&pool, "u")?.unwrap().mfa.totp_failures))
                .await
                .unwrap()
        };
        assert_eq!(
            failures().await,
            5,
            "a second short of 15 minutes: counted on"
        );
        now.fetch_add(
            TOTP_FAILURE_RESET_SECONDS + 60,
            std::sync::atomic::Ordering::SeqCst,
        );
        for _ in 0..4 {
            assert_eq!(
                fail().await.cognito_exception(),
                Some("EnableSoftwareTokenMFAException")
            );
        }
        assert_eq!(failures().await, 4, "the count started again");
        let ok = local
            .verify_software_token(&auth, &code(&secret, at()), None)
            .await
            .unwrap();
        assert_eq!(ok.status, Some(VerifyStatus::Success));
    }

    /// A code accepted once is refused when replayed, in its window and
    /// the one after; the next step's code passes.
    #[tokio::test]
    async fn a_code_already_accepted_is_refused_when_replayed() {
        let (_dir, local, now) = clocked();
        let (_, auth, secret) = enrolling(&local).await;
        let t = now.load(std::sync::atomic::Ordering::SeqCst);
        let first = code(&secret, t);
        local
            .verify_software_token(&auth, &first, None)
            .await
            .unwrap();
        for later in [0, 29] {
            now.store(t + later, std::sync::atomic::Ordering::SeqCst);
            let replay = local
                .verify_software_token(&auth, &first, None)
                .await
                .unwrap_err();
            assert_eq!(replay.cognito_exception(), Some("CodeMismatchException"));
            assert!(replay.to_string().contains("already been used"), "{replay}");
        }
        now.store(t + 30, std::sync::atomic::Ordering::SeqCst);
        local
            .verify_software_token(&auth, &code(&secret, t + 30), None)
            .await
            .unwrap();
    }

    /// A session is good for one step and lives `session_seconds`.
    #[tokio::test]
    async fn setup_sessions_are_single_use_and_expire_as_configured() {
        let (_dir, local, now) = clocked();
        let local = local.with_caps(Caps {
            session_seconds: 600,
            ..Caps::default()
        });
        let pool = totp_pool(&local).await;
        local
            .create_user(&pool, "u", BTreeMap::new())
            .await
            .unwrap();
        let session = local.issue_mfa_setup_session(&pool, "u").await.unwrap();
        let first = TokenAuth::Session(session.clone());
        let next = local
            .associate_software_token(&first)
            .await
            .unwrap()
            .session
            .unwrap();
        let spent = local.associate_software_token(&first).await.unwrap_err();
        assert_eq!(spent.cognito_exception(), Some("NotAuthorizedException"));
        now.fetch_add(599, std::sync::atomic::Ordering::SeqCst);
        let auth = TokenAuth::Session(next.clone());
        let secret = local.associate_software_token(&auth).await.unwrap();
        now.fetch_add(600, std::sync::atomic::Ordering::SeqCst);
        let t = now.load(std::sync::atomic::Ordering::SeqCst);
        let late = local
            .verify_software_token(
                &TokenAuth::Session(secret.session.unwrap()),
                &code(&secret.secret_code, t),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(
            late.to_string(),
            "Cognito NotAuthorizedException: Invalid session for the user."
        );
    }

    /// Admin calls find a user by sub and by a verified alias; an
    /// unverified alias, or an alias the pool does not use, finds no one.
    #[tokio::test]
    async fn admin_calls_find_users_by_sub_and_verified_alias() {
        let (_dir, local, _) = clocked();
        let pool = local
            .create_user_pool(
                "p",
                FeaturePlan::Essentials,
                store::PoolSettings {
                    alias_attributes: vec!["email".into(), "preferred_username".into()],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let attrs = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let sub = local
            .create_user(
                &pool,
                "ann",
                attrs(&[
                    ("email", "ann@example.com"),
                    ("email_verified", "true"),
                    ("phone_number", "+15555550100"),
                    ("phone_number_verified", "true"),
                ]),
            )
            .await
            .unwrap();
        local
            .create_user(
                &pool,
                "bob",
                attrs(&[
                    ("email", "bob@example.com"),
                    ("preferred_username", "bobby"),
                ]),
            )
            .await
            .unwrap();
        let admin = |name: &str| UserRef::Admin {
            user_pool_id: pool.clone(),
            username: name.into(),
        };
        for (name, found) in [
            ("ann", Some("ann")),
            (sub.as_str(), Some("ann")),
            ("ann@example.com", Some("ann")),
            ("bobby", Some("bob")),
            ("bob@example.com", None),
            ("+15555550100", None),
        ] {
            let got = local.get_user_mfa_settings(&admin(name)).await;
            match found {
                Some(u) => assert_eq!(got.unwrap().username, u, "{name}"),
                None => assert_eq!(
                    got.unwrap_err().cognito_exception(),
                    Some("UserNotFoundException"),
                    "{name}"
                ),
            }
        }
    }

    /// A disabled user's tokens are refused and no new one is issued; an
    /// unconfirmed user cannot sign in; admin reads still see both.
    #[tokio::test]
    async fn disabled_and_unconfirmed_users_are_refused_as_cognito_refuses_them() {
        let (_dir, local, _) = clocked();
        let pool = totp_pool(&local).await;
        local
            .create_user(&pool, "u", BTreeMap::new())
            .await
            .unwrap();
        let (token, _) = local.issue_access_token(&pool, "u", None).await.unwrap();
        local.set_user_enabled(&pool, "u", false).await.unwrap();
        let who = UserRef::AccessToken(AccessToken::new(token));
        let revoked = local.get_user_auth_factors(&who).await.unwrap_err();
        assert_eq!(
            revoked.to_string(),
            "Cognito NotAuthorizedException: Access Token has been revoked"
        );
        let refused = local
            .issue_access_token(&pool, "u", None)
            .await
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "Cognito NotAuthorizedException: User is disabled."
        );
        assert!(local.issue_mfa_setup_session(&pool, "u").await.is_err());
        local
            .create_users(
                &pool,
                vec![fixtures::NewUser {
                    username: "new".into(),
                    status: fixtures::UserStatus::Unconfirmed,
                    enabled: true,
                    ..Default::default()
                }],
            )
            .await
            .unwrap();
        let unconfirmed = local
            .issue_access_token(&pool, "new", None)
            .await
            .unwrap_err();
        assert_eq!(
            unconfirmed.cognito_exception(),
            Some("UserNotConfirmedException")
        );
        let admin = |name: &str| UserRef::Admin {
            user_pool_id: pool.clone(),
            username: name.into(),
        };
        local.get_user_auth_factors(&admin("u")).await.unwrap();
        local.get_user_auth_factors(&admin("new")).await.unwrap();
    }

    /// Removing the authenticator turns off what depended on it: TOTP MFA,
    /// its preference, and WebAuthn MFA when no other factor is left.
    #[tokio::test]
    async fn admin_delete_software_token_leaves_the_other_factors_consistent() {
        use crate::domain::{FactorConfiguration, WebAuthnConfig, WebAuthnMfaSettings};
        let (_dir, local, now) = clocked();
        let pool = totp_pool(&local).await;
        local
            .set_user_pool_mfa_config(
                &pool,
                &PoolMfaConfig {
                    software_token: Some(SoftwareTokenMfaConfig {
                        enabled: Some(true),
                    }),
                    web_authn: Some(WebAuthnConfig {
                        factor_configuration: Some(
                            FactorConfiguration::MultiFactorWithUserVerification,
                        ),
                        ..Default::default()
                    }),
                    mode: Some(MfaMode::Optional),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        local
            .create_user(&pool, "u", BTreeMap::new())
            .await
            .unwrap();
        let (token, _) = local.issue_access_token(&pool, "u", None).await.unwrap();
        let auth = TokenAuth::AccessToken(AccessToken::new(token));
        let secret = local
            .associate_software_token(&auth)
            .await
            .unwrap()
            .secret_code;
        let t = now.load(std::sync::atomic::Ordering::SeqCst);
        local
            .verify_software_token(&auth, &code(&secret, t), None)
            .await
            .unwrap();
        let admin = UserRef::Admin {
            user_pool_id: pool.clone(),
            username: "u".into(),
        };
        local
            .set_user_mfa_preference(
                &admin,
                &MfaPreference {
                    software_token: Some(FactorSettings {
                        enabled: Some(true),
                        preferred_mfa: Some(true),
                    }),
                    web_authn: Some(WebAuthnMfaSettings {
                        enabled: Some(true),
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let before = local.get_user_auth_factors(&admin).await.unwrap();
        assert!(
            before
                .configured_user_auth_factors
                .contains(&crate::domain::AuthFactor::SoftwareToken)
        );
        local.admin_delete_software_token(&pool, "u").await.unwrap();
        let after = local.get_user_auth_factors(&admin).await.unwrap();
        assert_eq!(after.preferred_mfa_setting, None);
        assert!(after.user_mfa_setting_list.is_empty());
        assert_eq!(
            after.configured_user_auth_factors,
            [crate::domain::AuthFactor::Password]
        );
        let m = local
            .store
            .read(|d| Ok(d.user(&pool, "u")?.unwrap().mfa))
            .await
            .unwrap();
        assert!(
            !m.web_authn_enabled,
            "WebAuthn MFA had no other factor left"
        );
    }

    /// ListUsers pages in username order, with filters, and its token
    /// resumes after the last user listed.
    #[tokio::test]
    async fn list_users_pages_and_filters() {
        let (_dir, local, _) = clocked();
        let pool = totp_pool(&local).await;
        let users = (0..130)
            .map(|i| fixtures::NewUser {
                username: format!("user{i:03}"),
                attributes: BTreeMap::from([("email".into(), format!("u{i}@example.com"))]),
                enabled: i % 10 != 0,
                ..Default::default()
            })
            .collect();
        local.create_users(&pool, users).await.unwrap();
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = local
                .list_users(&pool, "", token.as_deref(), 60)
                .await
                .unwrap();
            assert!(page.users.len() <= 60);
            seen.extend(page.users.into_iter().map(|u| u.username));
            match page.next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen.len(), 130);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        let disabled = local
            .list_users(&pool, "status = \"Disabled\"", None, 60)
            .await
            .unwrap();
        assert_eq!(disabled.users.len(), 13);
        let prefix = local
            .list_users(&pool, "username ^= \"user12\"", None, 60)
            .await
            .unwrap();
        assert_eq!(prefix.users.len(), 10);
        let email = local
            .list_users(&pool, "email = \"u7@example.com\"", None, 60)
            .await
            .unwrap();
        assert_eq!(email.users[0].username, "user007");
        // cognito:user_status matches whatever the case, as Cognito's does.
        let confirmed = local
            .list_users(&pool, "cognito:user_status = \"confirmed\"", None, 60)
            .await
            .unwrap();
        assert_eq!(confirmed.users.len(), 60);
        let none = local
            .list_users(&pool, "username = \"User007\"", None, 60)
            .await
            .unwrap();
        assert!(none.users.is_empty(), "usernames match as written here");
        let bad = local
            .list_users(&pool, "", Some("%%%"), 60)
            .await
            .unwrap_err();
        assert_eq!(bad.cognito_exception(), Some("InvalidParameterException"));
    }
}

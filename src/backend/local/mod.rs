//! The embedded local backend: Cognito's MFA rules on a laptop, with no AWS
//! account. Pools, users, their MFA settings, TOTP secrets and sessions live
//! in one crash-safe JSON file ([`store`]); access tokens are signed JWTs with
//! Cognito's claims ([`token`]). Errors carry Cognito's exception names, so
//! callers see the same gRPC codes as against the real service.

pub mod store;
pub mod token;

use std::{collections::BTreeMap, path::Path, sync::Arc};

use async_trait::async_trait;

use crate::backend::Backend;
use crate::domain::{
    AssociatedToken, FactorConfiguration, FactorSettings, MfaMode, MfaPreference, PoolMfaConfig,
    Secret, TokenAuth, TokenVerification, UserMfaSettings, UserRef, VerifyStatus, rules, totp,
};
use crate::error::{CognitoError, Error, Result};
use store::{Data, Factor, FeaturePlan, Pool, Session, SoftwareToken, Store, StoreError, User};

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

/// A Cognito exception, with a request id as Cognito's answers carry one.
fn cognito(exception: &str, message: impl Into<String>) -> Error {
    Error::Cognito(CognitoError {
        exception: exception.into(),
        message: message.into(),
        request_id: Some(format!("local-{}", uuid::Uuid::new_v4())),
        http_status: Some(400),
    })
}

fn invalid_parameter(message: impl Into<String>) -> Error {
    cognito("InvalidParameterException", message)
}

fn pool_not_found(id: &str) -> Error {
    cognito(
        "ResourceNotFoundException",
        format!("User pool {id} does not exist."),
    )
}

fn user_not_found() -> Error {
    cognito("UserNotFoundException", "User does not exist.")
}

fn pool<'a>(data: &'a Data, id: &str) -> Result<&'a Pool> {
    data.pools.get(id).ok_or_else(|| pool_not_found(id))
}

fn pool_mut<'a>(data: &'a mut Data, id: &str) -> Result<&'a mut Pool> {
    data.pools.get_mut(id).ok_or_else(|| pool_not_found(id))
}

fn user_mut<'a>(data: &'a mut Data, pool_id: &str, username: &str) -> Result<&'a mut User> {
    pool_mut(data, pool_id)?
        .users
        .get_mut(username)
        .ok_or_else(user_not_found)
}

pub struct LocalBackend {
    store: Store,
    region: String,
    clock: Clock,
    caps: Caps,
}

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

fn limit_exceeded(what: String) -> Error {
    cognito("LimitExceededException", what)
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

    // ---- fixtures (cognito.mfa.dev.v1.LocalFixturesService) ------------------

    pub async fn create_user_pool(&self, name: &str, plan: FeaturePlan) -> Result<String> {
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
                self.create_user_pool(DEMO_POOL_NAME, FeaturePlan::Essentials)
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

fn base64_session() -> Result<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<48>()?))
}

/// Cognito's state rules for a pool's new MFA configuration.
fn check_pool_config(pool: &Pool, config: &PoolMfaConfig) -> Result<()> {
    if pool.feature_plan == FeaturePlan::Lite {
        let mut features = Vec::new();
        if config.email.is_some() {
            features.push("Email MFA");
        }
        if config.web_authn.as_ref().is_some_and(|w| {
            w.factor_configuration == Some(FactorConfiguration::MultiFactorWithUserVerification)
        }) {
            features.push("WebAuthn MFA");
        }
        if !features.is_empty() {
            return Err(cognito(
                "FeatureUnavailableInTierException",
                format!(
                    "The following features need to be disabled for the LITE pricing tier configured: {}",
                    features.join(", ")
                ),
            ));
        }
    }
    if let Some(region) = config
        .sms
        .as_ref()
        .and_then(|s| s.sms_configuration.as_ref())
        .and_then(|c| c.eums_sms.as_ref())
        .and_then(|e| e.region.as_deref())
        && region != pool.region
    {
        return Err(invalid_parameter(format!(
            "EumsSms Region {region} must be the user pool's Region {}",
            pool.region
        )));
    }
    Ok(())
}

/// Applies one settings block to a user, with Cognito's preconditions.
struct FactorChange<'a> {
    factor: Factor,
    settings: FactorSettings,
    label: &'a str,
}

fn apply_preference(pool: &Pool, user: &mut User, preference: &MfaPreference) -> Result<()> {
    let changes = [
        (Factor::Sms, preference.sms, "SMS"),
        (
            Factor::SoftwareToken,
            preference.software_token,
            "SOFTWARE_TOKEN",
        ),
        (Factor::Email, preference.email, "EMAIL"),
    ];
    let changes: Vec<FactorChange> = changes
        .into_iter()
        .filter_map(|(factor, settings, label)| {
            settings.map(|settings| FactorChange {
                factor,
                settings,
                label,
            })
        })
        .collect();
    let mfa_required = pool.mfa.mode == Some(MfaMode::On);
    for c in &changes {
        let enable = c.settings.enabled == Some(true);
        let enabled_now = match c.factor {
            Factor::Sms => user.mfa.sms_enabled,
            Factor::SoftwareToken => user.mfa.software_token_enabled,
            Factor::Email => user.mfa.email_enabled,
        };
        if enable && !enabled_now {
            match c.factor {
                Factor::Sms if !user.attributes.contains_key("phone_number") => {
                    return Err(invalid_parameter(
                        "User does not have a phone_number set to turn on SMS MFA",
                    ));
                }
                Factor::SoftwareToken if user.mfa.software_token.is_none() => {
                    return Err(invalid_parameter(
                        "User has not verified software token mfa",
                    ));
                }
                Factor::Email if !user.attributes.contains_key("email") => {
                    return Err(invalid_parameter(
                        "User does not have an email set to turn on EMAIL MFA",
                    ));
                }
                Factor::Email if pool.mfa.email.is_none() => {
                    return Err(invalid_parameter(
                        "Email MFA is not enabled for the user pool",
                    ));
                }
                _ => {}
            }
        }
        if !enable && enabled_now && mfa_required {
            return Err(invalid_parameter(format!(
                "{} MFA cannot be turned off while MFA is required for the user pool; only the preferred factor can change",
                c.label
            )));
        }
    }
    for c in &changes {
        let enable = c.settings.enabled == Some(true);
        match c.factor {
            Factor::Sms => user.mfa.sms_enabled = enable,
            Factor::SoftwareToken => user.mfa.software_token_enabled = enable,
            Factor::Email => user.mfa.email_enabled = enable,
        }
        if c.settings.preferred_mfa == Some(true) {
            user.mfa.preferred = Some(c.factor);
        } else if user.mfa.preferred == Some(c.factor) {
            user.mfa.preferred = None;
        }
    }
    if let Some(web) = preference.web_authn {
        let enable = web.enabled == Some(true);
        if enable {
            let multi_factor = pool.mfa.web_authn.as_ref().is_some_and(|w| {
                w.factor_configuration == Some(FactorConfiguration::MultiFactorWithUserVerification)
            });
            if !multi_factor {
                return Err(invalid_parameter(
                    "WebAuthn MFA needs the user pool's WebAuthn FactorConfiguration MULTI_FACTOR_WITH_USER_VERIFICATION",
                ));
            }
            if !(user.mfa.sms_enabled || user.mfa.software_token_enabled || user.mfa.email_enabled)
            {
                return Err(invalid_parameter(
                    "WebAuthn MFA needs another MFA factor (SMS, TOTP or email) enabled for the user",
                ));
            }
        } else if user.mfa.web_authn_enabled && mfa_required {
            return Err(invalid_parameter(
                "WEB_AUTHN MFA cannot be turned off while MFA is required for the user pool",
            ));
        }
        user.mfa.web_authn_enabled = enable;
    }
    Ok(())
}

fn settings_of(user: &User) -> UserMfaSettings {
    let m = &user.mfa;
    let list = [
        (m.sms_enabled, Factor::Sms),
        (m.software_token_enabled, Factor::SoftwareToken),
        (m.email_enabled, Factor::Email),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| f.cognito_name().to_owned())
    .collect();
    UserMfaSettings {
        username: user.username.clone(),
        preferred_mfa_setting: m.preferred.map(|f| f.cognito_name().to_owned()),
        user_mfa_setting_list: list,
        mfa_options: Vec::new(),
    }
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
    use crate::domain::{AccessToken, SmsMfaConfig, SoftwareTokenMfaConfig};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_are_all_kept_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.json");
        let local = Arc::new(LocalBackend::open(&path, "eu-west-1").unwrap());
        let pool = local
            .create_user_pool("p", FeaturePlan::Essentials)
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
            .create_user_pool("p", FeaturePlan::Essentials)
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

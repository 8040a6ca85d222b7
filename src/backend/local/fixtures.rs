//! The local fixtures (cognito.mfa.dev.v1.LocalFixturesService) on the
//! local backend: pools, users, access tokens and MFA_SETUP sessions, the
//! demo pool of a first run, and the caps that bound what they may add to
//! the data file.

use super::webauthn::{ATTACHMENTS, TRANSPORTS};
use std::collections::BTreeMap;

use crate::domain::{AuthFactor, MfaMode, PoolMfaConfig, Secret, WebAuthnCredential, rules};
use crate::error::{Error, Result};

use super::cognito_rules::{check_can_sign_in, cognito, resolve_username, user};
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
    /// How long an MFA_SETUP session lives, in seconds.
    pub session_seconds: u64,
    pub max_web_authn_credentials: usize,
    pub max_devices_per_user: usize,
}

impl Caps {
    pub fn of(b: &crate::backend::settings::BackendConfig) -> Self {
        Self {
            max_pools: b.max_pools,
            max_users_per_pool: b.max_users_per_pool,
            max_user_attributes: b.max_user_attributes,
            max_user_attribute_bytes: b.max_user_attribute_bytes,
            max_sessions: b.max_sessions,
            session_seconds: b.mfa_setup_session_seconds,
            max_web_authn_credentials: b.max_web_authn_credentials,
            max_devices_per_user: b.max_devices_per_user,
        }
    }
}

impl Default for Caps {
    fn default() -> Self {
        Self::of(&crate::backend::settings::BackendConfig::default())
    }
}

/// The most users one fixtures CreateUsers call creates.
pub const MAX_USERS_PER_CALL: usize = 1_000;

/// UserStatusType, of the statuses a fixture user can be created in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserStatus {
    #[default]
    Confirmed,
    Unconfirmed,
    ResetRequired,
    ForceChangePassword,
}

impl UserStatus {
    pub fn cognito_name(self) -> &'static str {
        match self {
            UserStatus::Confirmed => "CONFIRMED",
            UserStatus::Unconfirmed => "UNCONFIRMED",
            UserStatus::ResetRequired => "RESET_REQUIRED",
            UserStatus::ForceChangePassword => "FORCE_CHANGE_PASSWORD",
        }
    }
}

/// A phone number as the fixtures take one: E.164, `+` and 4 to 15 digits.
pub(super) fn is_e164(value: &str) -> bool {
    value.starts_with('+')
        && (5..=16).contains(&value.len())
        && value[1..].bytes().all(|b| b.is_ascii_digit())
}

/// An email address as the fixtures take one: it has an `@`.
pub(super) fn is_email(value: &str) -> bool {
    value.contains('@')
}

/// The username and attributes a new user is stored with. In a pool with
/// username attributes the username given is the user's email address or
/// phone number: it becomes that attribute (an attribute given with another
/// value is refused), must be unique among the pool's values of it
/// (`taken`, as the pool compares them), and the user's username is its
/// `sub`. In any other pool, as given.
fn stored_name(
    data: &super::store::Data,
    pool: &Pool,
    username: String,
    mut attributes: BTreeMap<String, String>,
    sub: &str,
    taken: &mut std::collections::HashSet<(String, String)>,
) -> Result<(String, BTreeMap<String, String>)> {
    use super::cognito_rules::{name_key, same_name, username_attribute};
    let Some(attribute) = username_attribute(pool, &username)? else {
        return Ok((username, attributes));
    };
    if attributes
        .get(attribute)
        .is_some_and(|given| !same_name(pool, given, &username))
    {
        return Err(cognito(
            "InvalidParameterException",
            format!(
                "{attribute} differs from the username, which is the user's {attribute} in this pool"
            ),
        ));
    }
    if data.value_taken(pool, attribute, &username)?
        || !taken.insert((attribute.to_owned(), name_key(pool, &username)))
    {
        return Err(cognito(
            "UsernameExistsException",
            format!("An account with the given {attribute} already exists."),
        ));
    }
    attributes.insert(attribute.to_owned(), username);
    Ok((sub.to_owned(), attributes))
}

/// A user created by fixtures CreateUser / CreateUsers: its username (the
/// one asked for, or in a pool with username attributes its sub) and sub.
#[derive(Clone, Debug)]
pub struct CreatedUser {
    pub username: String,
    pub sub: String,
}

/// A user for fixtures CreateUser / CreateUsers.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub username: String,
    pub attributes: BTreeMap<String, String>,
    pub status: UserStatus,
    pub enabled: bool,
}

/// A passkey for fixtures RegisterWebAuthnCredential.
#[derive(Clone, Debug, Default)]
pub struct NewPasskey {
    pub friendly_credential_name: String,
    pub relying_party_id: String,
    pub authenticator_attachment: Option<String>,
    pub authenticator_transports: Vec<String>,
}

/// The demo pool's state: an Essentials pool that sends email through its
/// own SES identity (so email MFA can be turned on, which Cognito's own
/// sender refuses) and allows passkeys as a first factor, so the first
/// run's commands can turn on every factor: SMS, TOTP, email, WebAuthn.
fn demo_settings() -> PoolSettings {
    PoolSettings {
        email_sending_account: crate::domain::pool_state::EmailSendingAccount::Developer,
        first_auth_factors: vec![AuthFactor::Password, AuthFactor::WebAuthn],
        ..Default::default()
    }
}

pub(super) fn limit_exceeded(what: String) -> Error {
    cognito("LimitExceededException", what)
}

/// A user already holds `max` passkeys (`[backend] max_web_authn_credentials`).
pub(super) fn passkeys_full(max: usize) -> Error {
    limit_exceeded(format!(
        "the user holds {max} passkeys, the most the local backend allows ([backend] max_web_authn_credentials)"
    ))
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
                if data.pool_count()? >= max_pools {
                    return Err(limit_exceeded(format!(
                        "the local data file holds {max_pools} user pools, the most it may ([backend] max_pools)"
                    )));
                }
                let id = loop {
                    let id = format!("{region}_{}", random_alnum(9)?);
                    if data.find_pool(&id)?.is_none() {
                        break id;
                    }
                };
                data.insert_pool(&Pool {
                    id: id.clone(),
                    name: name.to_owned(),
                    region: region.clone(),
                    feature_plan: plan,
                    state: state.clone(),
                    mfa: PoolMfaConfig {
                        mode: Some(MfaMode::Off),
                        ..Default::default()
                    },
                })?;
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
            if name == "phone_number" && !is_e164(value) {
                v.add(&field, "must be an E.164 number such as +15555550100");
            }
            if name == "email" && !is_email(value) {
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

    /// The rules of fixture users: 1 to [`MAX_USERS_PER_CALL`] of them, each
    /// username and its attributes. `listed`: name the fields
    /// `users[i].username`, else `username`.
    pub fn check_new_users(&self, v: &mut rules::Violations, users: &[NewUser], listed: bool) {
        if users.is_empty() || users.len() > MAX_USERS_PER_CALL {
            v.add(
                "users",
                format!(
                    "1 to {MAX_USERS_PER_CALL} users a call ({} given)",
                    users.len()
                ),
            );
        }
        for (i, u) in users.iter().enumerate().take(MAX_USERS_PER_CALL) {
            let field = if listed {
                format!("users[{i}].username")
            } else {
                "username".to_owned()
            };
            rules::username(v, &field, &u.username);
            self.check_attributes(v, &u.attributes);
        }
    }

    /// Creates a confirmed, enabled user; returns its sub.
    pub async fn create_user(
        &self,
        user_pool_id: &str,
        username: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<String> {
        let created = self
            .create_users(
                user_pool_id,
                vec![NewUser {
                    username: username.to_owned(),
                    attributes,
                    status: UserStatus::Confirmed,
                    enabled: true,
                }],
            )
            .await?;
        created
            .into_iter()
            .next()
            .map(|c| c.sub)
            .ok_or_else(|| Error::Internal("create_users returned no sub".into()))
    }

    /// Creates users in one write of the data file (at most
    /// [`MAX_USERS_PER_CALL`]); all or none. Returns them in order.
    ///
    /// In a pool with username attributes a user's username is its email
    /// address or phone number, as SignUp and AdminCreateUser take it: the
    /// value becomes the attribute, unique in the pool (Cognito's
    /// UsernameExistsException), and the user's username is its sub.
    pub async fn create_users(
        &self,
        user_pool_id: &str,
        users: Vec<NewUser>,
    ) -> Result<Vec<CreatedUser>> {
        let mut v = rules::Violations::default();
        rules::user_pool_id(&mut v, "user_pool_id", user_pool_id);
        self.check_new_users(&mut v, &users, users.len() != 1);
        v.into_result()?;
        let caps = self.caps;
        let subs: Vec<String> = users
            .iter()
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        self.store
            .write(|data| {
                let pool = data.pool(user_pool_id)?;
                if data.user_count(user_pool_id)?.saturating_add(users.len())
                    > caps.max_users_per_pool
                {
                    return Err(limit_exceeded(format!(
                        "the user pool would hold more than {} users, the most the local backend allows ([backend] max_users_per_pool)",
                        caps.max_users_per_pool
                    )));
                }
                // Names and username-attribute values this call takes; the
                // ones taken before are in the database's indexes.
                let mut taken = std::collections::HashSet::new();
                let mut taken_values = std::collections::HashSet::new();
                let mut created = Vec::with_capacity(users.len());
                for (u, sub) in users.into_iter().zip(&subs) {
                    let (username, attributes) = stored_name(
                        data,
                        &pool,
                        u.username,
                        u.attributes,
                        sub,
                        &mut taken_values,
                    )?;
                    if data.name_taken(&pool, &username)?
                        || !taken.insert(super::cognito_rules::name_key(&pool, &username))
                    {
                        return Err(cognito(
                            "UsernameExistsException",
                            "User account already exists",
                        ));
                    }
                    created.push(CreatedUser {
                        username: username.clone(),
                        sub: sub.clone(),
                    });
                    data.insert_user(
                        &pool,
                        &User {
                            username,
                            sub: sub.clone(),
                            status: u.status.cognito_name().into(),
                            enabled: u.enabled,
                            attributes,
                            mfa: Default::default(),
                            web_authn_credentials: Vec::new(),
                        },
                    )?;
                }
                Ok(created)
            })
            .await
    }

    /// AdminEnableUser / AdminDisableUser: a disabled user's access
    /// tokens are refused from then on.
    pub async fn set_user_enabled(
        &self,
        user_pool_id: &str,
        username: &str,
        enabled: bool,
    ) -> Result<()> {
        self.store
            .write(|data| {
                let username = resolve_username(data, &data.pool(user_pool_id)?, username)?;
                data.put_enabled(user_pool_id, &username, enabled)
            })
            .await
    }

    /// Registers a passkey for a user as a completed
    /// StartWebAuthnRegistration / CompleteWebAuthnRegistration would,
    /// with those calls' rules: the pool must allow WEB_AUTHN as a first
    /// factor (WebAuthnNotEnabledException) on a plan above Lite
    /// (FeatureUnavailableInTierException), the relying party must be the
    /// pool's when it names one (WebAuthnRelyingPartyMismatchException),
    /// and a user holds at most `[backend] max_web_authn_credentials`.
    /// Returns the credential id.
    pub async fn register_web_authn_credential(
        &self,
        user_pool_id: &str,
        username: &str,
        passkey: NewPasskey,
    ) -> Result<String> {
        let mut v = rules::Violations::default();
        rules::user_pool_id(&mut v, "user_pool_id", user_pool_id);
        rules::username(&mut v, "username", username);
        for (field, value, max) in [
            (
                "friendly_credential_name",
                &passkey.friendly_credential_name,
                256,
            ),
            ("relying_party_id", &passkey.relying_party_id, 127),
        ] {
            if value.is_empty() || value.chars().count() > max {
                v.add(field, format!("1 to {max} characters"));
            }
        }
        if let Some(a) = &passkey.authenticator_attachment
            && !ATTACHMENTS.contains(&a.as_str())
        {
            v.add("authenticator_attachment", "platform or cross-platform");
        }
        if passkey.authenticator_transports.len() > 8 {
            v.add("authenticator_transports", "at most 8");
        }
        for t in &passkey.authenticator_transports {
            if !TRANSPORTS.contains(&t.as_str()) {
                v.add(
                    "authenticator_transports",
                    format!("each one of {}", TRANSPORTS.join(", ")),
                );
            }
        }
        v.into_result()?;
        let id = {
            use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
            URL_SAFE_NO_PAD.encode(super::random_bytes::<32>()?)
        };
        let now = self.now();
        let max = self.caps.max_web_authn_credentials;
        self.store
            .write(|data| {
                let pool = data.pool(user_pool_id)?;
                super::cognito_rules::check_passkeys_allowed(&pool)?;
                if let Some(rp) = pool
                    .mfa
                    .web_authn
                    .as_ref()
                    .and_then(|w| w.relying_party_id.as_deref())
                    && rp != passkey.relying_party_id
                {
                    return Err(cognito(
                        "WebAuthnRelyingPartyMismatchException",
                        "The relying party of the credential is not the user pool's",
                    ));
                }
                let username = resolve_username(data, &pool, username)?;
                let mut user = super::cognito_rules::user(data, user_pool_id, &username)?;
                if user.web_authn_credentials.len() >= max {
                    return Err(passkeys_full(max));
                }
                user.web_authn_credentials.push(WebAuthnCredential {
                    credential_id: id.clone(),
                    friendly_credential_name: passkey.friendly_credential_name,
                    relying_party_id: passkey.relying_party_id,
                    authenticator_attachment: passkey.authenticator_attachment,
                    authenticator_transports: passkey.authenticator_transports,
                    created_at_seconds: i64::try_from(now).unwrap_or(i64::MAX),
                    created_at_nanos: 0,
                });
                data.put_passkeys(user_pool_id, &username, &user.web_authn_credentials)?;
                Ok(id.clone())
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
                let pool = data.pool(user_pool_id)?;
                let user = user(data, user_pool_id, username)?;
                check_can_sign_in(&user)?;
                // A token of the second of a sign-out would be revoked
                // (iat <= the sign-out's second): one issued after it
                // carries the next second.
                let iat = now.max(
                    data.signed_out_at(user_pool_id, &user.username)?
                        .saturating_add(1),
                );
                let claims = token::Claims {
                    sub: user.sub.clone(),
                    username: user.username.clone(),
                    client_id: token::LOCAL_CLIENT_ID.into(),
                    token_use: "access".into(),
                    scope: token::ADMIN_SCOPE.into(),
                    iss: token::issuer(&pool.region, &pool.id),
                    iat,
                    exp: iat.saturating_add(u64::from(ttl)),
                    jti: uuid::Uuid::new_v4().to_string(),
                };
                Ok((Secret::new(token::sign(data.signing_key(), &claims)?), ttl))
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
                data.pool(user_pool_id)?;
                let user = user(data, user_pool_id, username)?;
                check_can_sign_in(&user)?;
                let target = Target {
                    user_pool_id: user_pool_id.to_owned(),
                    username: username.to_owned(),
                };
                self.new_session(data, &target, now, None)
            })
            .await
    }

    /// The development API key of this data file: derived from the file's
    /// own signing key (HMAC-SHA256 over a fixed label), so it stays the
    /// same across restarts of the same file and differs between files.
    /// Anyone who can read the data file can derive it, as they can sign
    /// its access tokens: the file is 0600, and development mode listens
    /// on loopback only.
    pub async fn dev_api_key(&self) -> Result<String> {
        self.store
            .read(|data| {
                let mac = crate::hash::HmacKey::new(data.signing_key().expose().as_bytes())
                    .sign(b"mfa-facade development API key v1");
                Ok(format!("mfa-dev-{}", crate::hash::hex(&mac[..16])))
            })
            .await
    }

    /// The deployment secret of a local backend with no `[server]
    /// secret_file`: derived from the data file's signing key, as the
    /// development key is, so walk cursors resume across restarts of the
    /// same file.
    pub async fn deployment_secret(&self) -> Result<crate::hash::DeploymentSecret> {
        self.store
            .read(|data| {
                let secret = crate::hash::HmacKey::new(data.signing_key().expose().as_bytes())
                    .sign(b"mfa-facade deployment secret v1");
                Ok(crate::hash::DeploymentSecret::shared(&secret))
            })
            .await
    }

    /// The demo pool and user of a first run, created if missing; returns the pool id.
    pub async fn ensure_demo(&self) -> Result<String> {
        let existing = self
            .store
            .read(|data| data.pool_named(DEMO_POOL_NAME))
            .await?;
        let pool_id = match existing {
            Some(id) => id,
            None => {
                self.create_user_pool(DEMO_POOL_NAME, FeaturePlan::Essentials, demo_settings())
                    .await?
            }
        };
        let has_user = self
            .store
            .read(|data| data.user_exists(&pool_id, DEMO_USERNAME))
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

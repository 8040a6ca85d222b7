//! The operations of both services, each with its rules and its way to the
//! backend. The read-compare-write logic of etag and partial updates lives
//! here, above the backend, so that it is the same for every backend.

use crate::backend::Backend;
use crate::domain::{
    AccessToken, AssociatedToken, MfaPreference, PoolMfaConfig, Secret, TokenAuth,
    TokenVerification, UserMfaSettings, UserRef, etag,
    mask::{self, MaskError},
    rules::{self, Violations},
};
use crate::error::{Error, Result};
use crate::limits::{CognitoOp, UpstreamCall, key_of};

use super::{AuditOutput, Operation};
use serde_json::json;

use crate::method::{self, Method};

/// A pool configuration and its etag; for a change, what it was before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedConfig {
    pub config: PoolMfaConfig,
    pub etag: String,
    /// Set by a change that was asked to capture it (for audit).
    pub before: Option<PoolMfaConfig>,
}

impl VersionedConfig {
    fn of(config: PoolMfaConfig) -> Self {
        let etag = etag::of(&config);
        Self {
            config,
            etag,
            before: None,
        }
    }

    fn changed(before: Option<PoolMfaConfig>, after: PoolMfaConfig) -> Self {
        Self {
            before,
            ..Self::of(after)
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

impl AuditOutput for VersionedConfig {
    fn audit_response(&self) -> serde_json::Value {
        json!({"config": to_json(&self.config), "etag": self.etag})
    }
    fn change(&self) -> Option<(serde_json::Value, serde_json::Value)> {
        self.before
            .as_ref()
            .map(|b| (to_json(b), to_json(&self.config)))
    }
}

impl AuditOutput for () {
    fn audit_response(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

impl AuditOutput for AssociatedToken {
    fn audit_response(&self) -> serde_json::Value {
        json!({
            "secret_code": self.secret_code.expose(),
            "session": self.session.as_ref().map(Secret::expose),
        })
    }
}

impl AuditOutput for TokenVerification {
    fn audit_response(&self) -> serde_json::Value {
        json!({
            "status": self.status.map(|s| format!("{s:?}")),
            "session": self.session.as_ref().map(Secret::expose),
        })
    }
}

impl AuditOutput for UserMfaSettings {
    fn audit_response(&self) -> serde_json::Value {
        to_json(self)
    }
}

/// The audit view of a user reference.
fn user_json(user: &UserRef) -> serde_json::Value {
    match user {
        UserRef::AccessToken(t) => json!({"access_token": t.expose()}),
        UserRef::Admin {
            user_pool_id,
            username,
        } => json!({"user_pool_id": user_pool_id, "username": username}),
    }
}

fn user_target(user: &UserRef) -> Option<String> {
    match user {
        UserRef::AccessToken(t) => t.subject().map(str::to_owned),
        UserRef::Admin { username, .. } => Some(username.clone()),
    }
}

fn check_etag_format(v: &mut Violations, etag: Option<&str>) {
    if let Some(e) = etag
        && (e.len() != 32 || !e.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        v.add(
            "etag",
            "must be an etag returned by this service (32 hex characters)",
        );
    }
}

/// ABORTED unless `expected` is absent or equals the etag of `current`.
fn check_etag(expected: Option<&str>, current: &PoolMfaConfig) -> Result<String> {
    let now = etag::of(current);
    match expected {
        Some(e) if !e.eq_ignore_ascii_case(&now) => Err(Error::Aborted {
            reason: "ETAG_MISMATCH",
            message: format!(
                "the pool's MFA configuration changed since etag {e} was read (it is now {now}); read it again and retry"
            ),
        }),
        _ => Ok(now),
    }
}

fn user_ref(v: &mut Violations, user: &UserRef) {
    match user {
        UserRef::AccessToken(t) => rules::access_token(v, "access_token", t.secret()),
        UserRef::Admin {
            user_pool_id,
            username,
        } => {
            rules::user_pool_id(v, "user_pool_id", user_pool_id);
            rules::username(v, "username", username);
        }
    }
}

/// The Cognito call about one user, keyed for the per-user quota by pool
/// and username, or by a hash of the access token (never its unverified
/// `sub`: a forged token must not spend its victim's budget).
fn user_call(user: &UserRef, by_token: CognitoOp, admin: CognitoOp) -> UpstreamCall {
    match user {
        UserRef::AccessToken(t) => UpstreamCall::user(
            by_token,
            t.user_pool().map(str::to_owned),
            Some(t.budget_key()),
        ),
        UserRef::Admin {
            user_pool_id,
            username,
        } => UpstreamCall::user(admin, Some(user_pool_id.clone()), Some(username.clone())),
    }
}

/// The pool of an enrolment step: the access token's. A session names no
/// pool the facade can read; only a "*" grant covers the session flow.
fn token_call_pool(access_token: Option<&AccessToken>) -> Option<String> {
    access_token.and_then(|t| t.user_pool().map(str::to_owned))
}

/// The Cognito call of an enrolment step: by access token (its pool and
/// a hash of the token), or by MFA_SETUP session (a fingerprint of it stands for the user).
fn token_or_session_call(
    op: CognitoOp,
    access_token: Option<&AccessToken>,
    session: Option<&Secret>,
) -> UpstreamCall {
    match (access_token, session) {
        (Some(t), _) => {
            UpstreamCall::user(op, t.user_pool().map(str::to_owned), Some(t.budget_key()))
        }
        (None, Some(s)) => UpstreamCall::user(
            op,
            None,
            Some(format!("session:{}", hex::encode(key_of(&[s.expose()])))),
        ),
        (None, None) => UpstreamCall::user(op, None, None),
    }
}

fn user_ref_pool(user: &UserRef) -> Option<String> {
    match user {
        UserRef::AccessToken(t) => t.user_pool().map(str::to_owned),
        UserRef::Admin { user_pool_id, .. } => Some(user_pool_id.clone()),
    }
}

fn token_auth(access_token: Option<AccessToken>, session: Option<Secret>) -> Result<TokenAuth> {
    match (access_token, session) {
        (Some(t), None) => Ok(TokenAuth::AccessToken(t)),
        (None, Some(s)) => Ok(TokenAuth::Session(s)),
        // validate() refuses both and neither before run() is reached.
        _ => Err(Error::Internal(
            "token_auth called without exactly one credential".into(),
        )),
    }
}

pub struct GetUserPoolMfaConfig {
    pub user_pool_id: String,
}

impl Operation for GetUserPoolMfaConfig {
    type Output = VersionedConfig;

    fn method(&self) -> &'static Method {
        &method::GET_USER_POOL_MFA_CONFIG
    }

    fn user_pool(&self) -> Option<String> {
        Some(self.user_pool_id.clone())
    }

    fn upstream(&self) -> Vec<UpstreamCall> {
        vec![UpstreamCall::pool(
            CognitoOp::GetUserPoolMfaConfig,
            &self.user_pool_id,
        )]
    }

    fn audit_request(&self) -> serde_json::Value {
        json!({"user_pool_id": self.user_pool_id})
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
    }

    async fn run(self, backend: &dyn Backend) -> Result<VersionedConfig> {
        Ok(VersionedConfig::of(
            backend.get_user_pool_mfa_config(&self.user_pool_id).await?,
        ))
    }
}

pub struct SetUserPoolMfaConfig {
    pub user_pool_id: String,
    pub config: PoolMfaConfig,
    pub validate_only: bool,
    pub etag: Option<String>,
    /// Read the configuration first, to report it (audit).
    pub capture_before: bool,
}

impl Operation for SetUserPoolMfaConfig {
    type Output = VersionedConfig;

    fn method(&self) -> &'static Method {
        &method::SET_USER_POOL_MFA_CONFIG
    }

    fn user_pool(&self) -> Option<String> {
        Some(self.user_pool_id.clone())
    }

    fn upstream(&self) -> Vec<UpstreamCall> {
        let read = UpstreamCall::pool(CognitoOp::GetUserPoolMfaConfig, &self.user_pool_id);
        let write = UpstreamCall::pool(CognitoOp::SetUserPoolMfaConfig, &self.user_pool_id);
        if self.validate_only {
            vec![read]
        } else if self.etag.is_some() || self.capture_before {
            vec![read, write]
        } else {
            vec![write]
        }
    }

    fn dry_run(&self) -> bool {
        self.validate_only
    }

    fn audit_request(&self) -> serde_json::Value {
        json!({
            "user_pool_id": self.user_pool_id,
            "config": to_json(&self.config),
            "validate_only": self.validate_only,
            "etag": self.etag,
        })
    }

    fn capture_before(&mut self) {
        self.capture_before = true;
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        rules::pool_mfa_config(v, "", &self.config);
        check_etag_format(v, self.etag.as_deref());
    }

    async fn run(self, backend: &dyn Backend) -> Result<VersionedConfig> {
        let mut before = None;
        if self.validate_only || self.etag.is_some() || self.capture_before {
            // Reading proves the pool exists and gives the etag to compare.
            let current = backend.get_user_pool_mfa_config(&self.user_pool_id).await?;
            let current_etag = check_etag(self.etag.as_deref(), &current)?;
            if self.validate_only {
                return Ok(VersionedConfig {
                    config: self.config,
                    etag: current_etag,
                    before: None,
                });
            }
            before = Some(current);
        }
        let stored = backend
            .set_user_pool_mfa_config(&self.user_pool_id, &self.config)
            .await?;
        Ok(VersionedConfig::changed(
            before.filter(|_| self.capture_before),
            stored,
        ))
    }
}

/// Unknown and repeated paths, each kind reported once with a count and the
/// first example (cut short): never one violation per path.
fn mask_paths(v: &mut Violations, paths: &[String]) {
    let mut unknown = (0usize, None::<&str>);
    let mut repeated = (0usize, None::<&str>);
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        if !mask::is_known(path) {
            unknown.0 += 1;
            unknown.1.get_or_insert(path);
        } else if !seen.insert(path.as_str()) {
            repeated.0 += 1;
            repeated.1.get_or_insert(path);
        }
    }
    let example = |p: Option<&str>| crate::domain::text::truncate(p.unwrap_or(""), 64).into_owned();
    if unknown.0 > 0 {
        v.add(
            "update_mask",
            format!(
                "{} unknown path(s), the first {:?}; known paths: {}",
                unknown.0,
                example(unknown.1),
                mask::PATHS.join(", ")
            ),
        );
    }
    if repeated.0 > 0 {
        v.add(
            "update_mask",
            format!(
                "{} repeated path(s), the first {:?}: name each path once",
                repeated.0,
                example(repeated.1)
            ),
        );
    }
}

pub struct UpdateUserPoolMfaConfig {
    pub user_pool_id: String,
    pub patch: PoolMfaConfig,
    pub update_mask: Vec<String>,
    pub etag: Option<String>,
    pub validate_only: bool,
    /// Report the configuration before the change (audit).
    pub capture_before: bool,
}

impl Operation for UpdateUserPoolMfaConfig {
    type Output = VersionedConfig;

    fn method(&self) -> &'static Method {
        &method::UPDATE_USER_POOL_MFA_CONFIG
    }

    fn user_pool(&self) -> Option<String> {
        Some(self.user_pool_id.clone())
    }

    fn upstream(&self) -> Vec<UpstreamCall> {
        let read = UpstreamCall::pool(CognitoOp::GetUserPoolMfaConfig, &self.user_pool_id);
        if self.validate_only {
            vec![read]
        } else {
            vec![
                read,
                UpstreamCall::pool(CognitoOp::SetUserPoolMfaConfig, &self.user_pool_id),
            ]
        }
    }

    fn dry_run(&self) -> bool {
        self.validate_only
    }

    fn audit_request(&self) -> serde_json::Value {
        json!({
            "user_pool_id": self.user_pool_id,
            "config": to_json(&mask::masked_part(&self.patch, &self.update_mask)),
            "update_mask": self.update_mask,
            "validate_only": self.validate_only,
            "etag": self.etag,
        })
    }

    fn capture_before(&mut self) {
        self.capture_before = true;
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        check_etag_format(v, self.etag.as_deref());
        if self.update_mask.is_empty() {
            v.add(
                "update_mask",
                "must name at least one field; use SetUserPoolMfaConfig to replace the whole configuration",
            );
        }
        mask_paths(v, &self.update_mask);
        // The fields this update sets, checked before anything is read.
        rules::pool_mfa_config_fields(
            v,
            "config",
            &mask::masked_part(&self.patch, &self.update_mask),
        );
    }

    async fn run(self, backend: &dyn Backend) -> Result<VersionedConfig> {
        let current = backend.get_user_pool_mfa_config(&self.user_pool_id).await?;
        let current_etag = check_etag(self.etag.as_deref(), &current)?;
        let before = self.capture_before.then(|| current.clone());
        let mut merged = current;
        mask::apply(&mut merged, &self.patch, &self.update_mask).map_err(|e| match e {
            MaskError::UnknownPath(p) => Error::InvalidArgument(vec![rules::FieldViolation {
                field: "update_mask".into(),
                description: format!("unknown path {p:?}"),
            }]),
            MaskError::BlockNotSet { path, block } => Error::FailedPrecondition {
                reason: "FACTOR_BLOCK_NOT_SET",
                message: format!(
                    "{path} edits {block}, which this pool does not have; to turn that factor on, \
                     put {block} itself in update_mask with the whole block in config"
                ),
            },
        })?;
        let mut v = Violations::default();
        rules::pool_mfa_config(&mut v, "config", &merged);
        v.into_result()?;
        if self.validate_only {
            return Ok(VersionedConfig {
                config: merged,
                etag: current_etag,
                before: None,
            });
        }
        let stored = backend
            .set_user_pool_mfa_config(&self.user_pool_id, &merged)
            .await?;
        Ok(VersionedConfig::changed(before, stored))
    }
}

/// SetUserMfaPreference (access token) and AdminSetUserMfaPreference (pool + username).
pub struct SetUserMfaPreference {
    pub user: UserRef,
    pub preference: MfaPreference,
}

impl Operation for SetUserMfaPreference {
    type Output = ();

    fn method(&self) -> &'static Method {
        match self.user {
            UserRef::AccessToken(_) => &method::SET_USER_MFA_PREFERENCE,
            UserRef::Admin { .. } => &method::ADMIN_SET_USER_MFA_PREFERENCE,
        }
    }

    fn user_pool(&self) -> Option<String> {
        user_ref_pool(&self.user)
    }

    fn upstream(&self) -> Vec<UpstreamCall> {
        vec![user_call(
            &self.user,
            CognitoOp::SetUserMfaPreference,
            CognitoOp::AdminSetUserMfaPreference,
        )]
    }

    fn audit_request(&self) -> serde_json::Value {
        json!({"user": user_json(&self.user), "preference": to_json(&self.preference)})
    }

    fn target_user(&self) -> Option<String> {
        user_target(&self.user)
    }

    fn validate(&self, v: &mut Violations) {
        user_ref(v, &self.user);
        rules::mfa_preference(v, &self.preference);
    }

    async fn run(self, backend: &dyn Backend) -> Result<()> {
        backend
            .set_user_mfa_preference(&self.user, &self.preference)
            .await
    }
}

pub struct AssociateSoftwareToken {
    pub access_token: Option<AccessToken>,
    pub session: Option<Secret>,
}

impl Operation for AssociateSoftwareToken {
    type Output = AssociatedToken;

    fn method(&self) -> &'static Method {
        &method::ASSOCIATE_SOFTWARE_TOKEN
    }

    fn user_pool(&self) -> Option<String> {
        token_call_pool(self.access_token.as_ref())
    }

    fn upstream(&self) -> Vec<UpstreamCall> {
        vec![token_or_session_call(
            CognitoOp::AssociateSoftwareToken,
            self.access_token.as_ref(),
            self.session.as_ref(),
        )]
    }

    fn audit_request(&self) -> serde_json::Value {
        json!({
            "access_token": self.access_token.as_ref().map(AccessToken::expose),
            "session": self.session.as_ref().map(Secret::expose),
        })
    }

    fn target_user(&self) -> Option<String> {
        self.access_token
            .as_ref()
            .and_then(|t| t.subject().map(str::to_owned))
    }

    fn validate(&self, v: &mut Violations) {
        rules::token_or_session(
            v,
            self.access_token.as_ref().map(AccessToken::secret),
            self.session.as_ref(),
        );
    }

    async fn run(self, backend: &dyn Backend) -> Result<AssociatedToken> {
        backend
            .associate_software_token(&token_auth(self.access_token, self.session)?)
            .await
    }
}

pub struct VerifySoftwareToken {
    pub access_token: Option<AccessToken>,
    pub session: Option<Secret>,
    pub user_code: Secret,
    pub friendly_device_name: Option<String>,
}

impl Operation for VerifySoftwareToken {
    type Output = TokenVerification;

    fn method(&self) -> &'static Method {
        &method::VERIFY_SOFTWARE_TOKEN
    }

    fn user_pool(&self) -> Option<String> {
        token_call_pool(self.access_token.as_ref())
    }

    fn upstream(&self) -> Vec<UpstreamCall> {
        vec![token_or_session_call(
            CognitoOp::VerifySoftwareToken,
            self.access_token.as_ref(),
            self.session.as_ref(),
        )]
    }

    fn audit_request(&self) -> serde_json::Value {
        json!({
            "access_token": self.access_token.as_ref().map(AccessToken::expose),
            "session": self.session.as_ref().map(Secret::expose),
            "user_code": self.user_code.expose(),
            "friendly_device_name": self.friendly_device_name,
        })
    }

    fn target_user(&self) -> Option<String> {
        self.access_token
            .as_ref()
            .and_then(|t| t.subject().map(str::to_owned))
    }

    fn validate(&self, v: &mut Violations) {
        rules::token_or_session(
            v,
            self.access_token.as_ref().map(AccessToken::secret),
            self.session.as_ref(),
        );
        rules::user_code(v, "user_code", &self.user_code);
        if let Some(name) = &self.friendly_device_name {
            rules::string(v, "friendly_device_name", name);
        }
    }

    async fn run(self, backend: &dyn Backend) -> Result<TokenVerification> {
        let auth = token_auth(self.access_token, self.session)?;
        backend
            .verify_software_token(&auth, &self.user_code, self.friendly_device_name.as_deref())
            .await
    }
}

/// GetUserMfaSettings (access token) and AdminGetUserMfaSettings (pool + username).
pub struct GetUserMfaSettings {
    pub user: UserRef,
}

impl Operation for GetUserMfaSettings {
    type Output = UserMfaSettings;

    fn method(&self) -> &'static Method {
        match self.user {
            UserRef::AccessToken(_) => &method::GET_USER_MFA_SETTINGS,
            UserRef::Admin { .. } => &method::ADMIN_GET_USER_MFA_SETTINGS,
        }
    }

    fn user_pool(&self) -> Option<String> {
        user_ref_pool(&self.user)
    }

    fn upstream(&self) -> Vec<UpstreamCall> {
        vec![user_call(
            &self.user,
            CognitoOp::GetUser,
            CognitoOp::AdminGetUser,
        )]
    }

    fn audit_request(&self) -> serde_json::Value {
        json!({"user": user_json(&self.user)})
    }

    fn target_user(&self) -> Option<String> {
        user_target(&self.user)
    }

    fn validate(&self, v: &mut Violations) {
        user_ref(v, &self.user);
    }

    async fn run(self, backend: &dyn Backend) -> Result<UserMfaSettings> {
        backend.get_user_mfa_settings(&self.user).await
    }
}

pub struct AdminDeleteSoftwareToken {
    pub user_pool_id: String,
    pub username: String,
}

impl Operation for AdminDeleteSoftwareToken {
    type Output = ();

    fn method(&self) -> &'static Method {
        &method::ADMIN_DELETE_SOFTWARE_TOKEN
    }

    fn user_pool(&self) -> Option<String> {
        Some(self.user_pool_id.clone())
    }

    fn upstream(&self) -> Vec<UpstreamCall> {
        vec![UpstreamCall::user(
            CognitoOp::AdminDeleteSoftwareToken,
            Some(self.user_pool_id.clone()),
            Some(self.username.clone()),
        )]
    }

    fn audit_request(&self) -> serde_json::Value {
        json!({"user_pool_id": self.user_pool_id, "username": self.username})
    }

    fn target_user(&self) -> Option<String> {
        Some(self.username.clone())
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        rules::username(v, "username", &self.username);
    }

    async fn run(self, backend: &dyn Backend) -> Result<()> {
        backend
            .admin_delete_software_token(&self.user_pool_id, &self.username)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::CognitoOp;

    fn admin() -> UserRef {
        UserRef::Admin {
            user_pool_id: "us-east-1_A".into(),
            username: "u".into(),
        }
    }

    fn token() -> AccessToken {
        AccessToken::new(Secret::new("a.b.c"))
    }

    /// The Cognito calls each operation plans, in every variant, are the
    /// ones its row in the method table lists, and together all of them:
    /// `upstream()` and the table cannot drift apart.
    #[test]
    fn every_planned_cognito_call_is_in_the_method_table() {
        fn planned<O: Operation>(ops: Vec<O>) -> (&'static Method, Vec<CognitoOp>) {
            let row = ops[0].method();
            let mut calls = Vec::new();
            for op in &ops {
                assert_eq!(op.method(), row, "one method per list");
                calls.extend(op.upstream().into_iter().map(|c| c.op));
            }
            (row, calls)
        }
        let pool = || "us-east-1_A".to_owned();
        let set = |validate_only, etag: Option<&str>, capture_before| SetUserPoolMfaConfig {
            user_pool_id: pool(),
            config: PoolMfaConfig::default(),
            validate_only,
            etag: etag.map(str::to_owned),
            capture_before,
        };
        let update = |validate_only| UpdateUserPoolMfaConfig {
            user_pool_id: pool(),
            patch: PoolMfaConfig::default(),
            update_mask: Vec::new(),
            etag: None,
            validate_only,
            capture_before: false,
        };
        let pref = |user| SetUserMfaPreference {
            user,
            preference: MfaPreference::default(),
        };
        let settings = |user| GetUserMfaSettings { user };
        let verify = |access_token, session| VerifySoftwareToken {
            access_token,
            session,
            user_code: Secret::new("123456"),
            friendly_device_name: None,
        };
        let session = || Some(Secret::new("s".repeat(20)));
        let rows = [
            planned(vec![GetUserPoolMfaConfig {
                user_pool_id: pool(),
            }]),
            planned(vec![
                set(true, None, false),
                set(false, None, false),
                set(false, Some("e"), true),
            ]),
            planned(vec![update(true), update(false)]),
            planned(vec![pref(UserRef::AccessToken(token()))]),
            planned(vec![pref(admin())]),
            planned(vec![
                AssociateSoftwareToken {
                    access_token: Some(token()),
                    session: None,
                },
                AssociateSoftwareToken {
                    access_token: None,
                    session: session(),
                },
            ]),
            planned(vec![verify(Some(token()), None), verify(None, session())]),
            planned(vec![settings(UserRef::AccessToken(token()))]),
            planned(vec![settings(admin())]),
            planned(vec![AdminDeleteSoftwareToken {
                user_pool_id: pool(),
                username: "u".into(),
            }]),
        ];
        for (row, calls) in rows {
            for c in &calls {
                assert!(
                    row.cognito.contains(c),
                    "{}: {c:?} is not in its row",
                    row.name
                );
            }
            for c in row.cognito {
                assert!(calls.contains(c), "{}: {c:?} is never planned", row.name);
            }
        }
    }
}

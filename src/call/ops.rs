//! The operations of both services: per call, only what differs — its
//! row in the method table, its target, its audit view, its rules and its
//! way to the backend. The read-compare-write logic of etag and partial
//! updates lives here, above the backend, so that it is the same for every
//! backend.

use serde::Serialize;

use crate::backend::Backend;
use crate::domain::{
    AccessToken, AssociatedToken, MfaPreference, PoolMfaConfig, Secret, TokenAuth,
    TokenVerification, UserMfaSettings, UserRef, etag,
    mask::{self, MaskError},
    rules::{self, Violations},
    secret,
};
use crate::error::{Error, Result};
use crate::limits::{CognitoOp, UpstreamCall};
use crate::method::{self, Method};

use super::{Change, Operation, Ran, Target};

/// A pool configuration and its etag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VersionedConfig {
    pub config: PoolMfaConfig,
    pub etag: String,
}

impl VersionedConfig {
    fn of(config: PoolMfaConfig) -> Self {
        let etag = etag::of(&config);
        Self { config, etag }
    }
}

/// A pool change's answer: the stored configuration, and what it was
/// before when that was read (for the audit record).
fn changed(before: Option<PoolMfaConfig>, stored: PoolMfaConfig) -> Ran<VersionedConfig> {
    let change = before.map(|before| Change {
        before,
        after: stored.clone(),
    });
    Ran {
        output: VersionedConfig::of(stored),
        change,
    }
}

/// A user reference as records show it: the access token (its
/// fingerprint), or the pool and username.
#[derive(Serialize)]
#[serde(untagged)]
enum UserView<'a> {
    Token {
        access_token: &'a AccessToken,
    },
    Admin {
        user_pool_id: &'a str,
        #[serde(serialize_with = "secret::username")]
        username: &'a str,
    },
}

impl<'a> UserView<'a> {
    fn of(user: &'a UserRef) -> Self {
        match user {
            UserRef::AccessToken(t) => UserView::Token { access_token: t },
            UserRef::Admin {
                user_pool_id,
                username,
            } => UserView::Admin {
                user_pool_id,
                username,
            },
        }
    }
}

/// The request of a call about one named user.
#[derive(Serialize)]
pub(super) struct UserRequest<'a> {
    pub user_pool_id: &'a str,
    #[serde(serialize_with = "secret::username")]
    pub username: &'a str,
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

/// The pool calls of a change, as both `upstream` and `run` take them.
struct PoolSteps {
    /// Read the configuration first (to compare an etag, capture it for
    /// audit, or prove the pool exists for a dry run).
    read: bool,
    /// Then write it.
    write: bool,
}

impl PoolSteps {
    fn calls(&self, pool: &str) -> Vec<UpstreamCall> {
        let target = Target::Pool(pool);
        let mut calls = Vec::with_capacity(2);
        if self.read {
            calls.push(target.call(CognitoOp::GetUserPoolMfaConfig));
        }
        if self.write {
            calls.push(target.call(CognitoOp::SetUserPoolMfaConfig));
        }
        calls
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

    fn target(&self) -> Target<'_> {
        Target::Pool(&self.user_pool_id)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user_pool_id: &'a str,
        }
        Request {
            user_pool_id: &self.user_pool_id,
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
    }

    async fn run(self, backend: &dyn Backend) -> Result<Ran<VersionedConfig>> {
        let config = backend.get_user_pool_mfa_config(&self.user_pool_id).await?;
        Ok(VersionedConfig::of(config).into())
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

impl SetUserPoolMfaConfig {
    fn steps(&self) -> PoolSteps {
        PoolSteps {
            read: self.validate_only || self.etag.is_some() || self.capture_before,
            write: !self.validate_only,
        }
    }
}

impl Operation for SetUserPoolMfaConfig {
    type Output = VersionedConfig;

    fn method(&self) -> &'static Method {
        &method::SET_USER_POOL_MFA_CONFIG
    }

    fn target(&self) -> Target<'_> {
        Target::Pool(&self.user_pool_id)
    }

    fn upstream(&self) -> Vec<UpstreamCall> {
        self.steps().calls(&self.user_pool_id)
    }

    fn dry_run(&self) -> bool {
        self.validate_only
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user_pool_id: &'a str,
            config: &'a PoolMfaConfig,
            validate_only: bool,
            etag: Option<&'a str>,
        }
        Request {
            user_pool_id: &self.user_pool_id,
            config: &self.config,
            validate_only: self.validate_only,
            etag: self.etag.as_deref(),
        }
    }

    fn capture_before(&mut self) {
        self.capture_before = true;
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        rules::pool_mfa_config(v, "", &self.config);
        check_etag_format(v, self.etag.as_deref());
    }

    async fn run(self, backend: &dyn Backend) -> Result<Ran<VersionedConfig>> {
        let steps = self.steps();
        let mut before = None;
        if steps.read {
            // Reading proves the pool exists and gives the etag to compare.
            let current = backend.get_user_pool_mfa_config(&self.user_pool_id).await?;
            let current_etag = check_etag(self.etag.as_deref(), &current)?;
            if !steps.write {
                return Ok(VersionedConfig {
                    config: self.config,
                    etag: current_etag,
                }
                .into());
            }
            before = Some(current);
        }
        let stored = backend
            .set_user_pool_mfa_config(&self.user_pool_id, &self.config)
            .await?;
        Ok(changed(before.filter(|_| self.capture_before), stored))
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

impl UpdateUserPoolMfaConfig {
    /// An update always reads, to merge into what is there.
    fn steps(&self) -> PoolSteps {
        PoolSteps {
            read: true,
            write: !self.validate_only,
        }
    }
}

impl Operation for UpdateUserPoolMfaConfig {
    type Output = VersionedConfig;

    fn method(&self) -> &'static Method {
        &method::UPDATE_USER_POOL_MFA_CONFIG
    }

    fn target(&self) -> Target<'_> {
        Target::Pool(&self.user_pool_id)
    }

    fn upstream(&self) -> Vec<UpstreamCall> {
        self.steps().calls(&self.user_pool_id)
    }

    fn dry_run(&self) -> bool {
        self.validate_only
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user_pool_id: &'a str,
            config: PoolMfaConfig,
            update_mask: &'a [String],
            validate_only: bool,
            etag: Option<&'a str>,
        }
        Request {
            user_pool_id: &self.user_pool_id,
            config: mask::masked_part(&self.patch, &self.update_mask),
            update_mask: &self.update_mask,
            validate_only: self.validate_only,
            etag: self.etag.as_deref(),
        }
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

    async fn run(self, backend: &dyn Backend) -> Result<Ran<VersionedConfig>> {
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
        if !self.steps().write {
            return Ok(VersionedConfig {
                config: merged,
                etag: current_etag,
            }
            .into());
        }
        let stored = backend
            .set_user_pool_mfa_config(&self.user_pool_id, &merged)
            .await?;
        Ok(changed(before, stored))
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

    fn target(&self) -> Target<'_> {
        Target::of_user(&self.user)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user: UserView<'a>,
            preference: &'a MfaPreference,
        }
        Request {
            user: UserView::of(&self.user),
            preference: &self.preference,
        }
    }

    fn validate(&self, v: &mut Violations) {
        user_ref(v, &self.user);
        rules::mfa_preference(v, &self.preference);
    }

    async fn run(self, backend: &dyn Backend) -> Result<Ran<()>> {
        backend
            .set_user_mfa_preference(&self.user, &self.preference)
            .await
            .map(Ran::from)
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

    fn target(&self) -> Target<'_> {
        Target::TokenOrSession(self.access_token.as_ref(), self.session.as_ref())
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            access_token: Option<&'a AccessToken>,
            session: Option<&'a Secret>,
        }
        Request {
            access_token: self.access_token.as_ref(),
            session: self.session.as_ref(),
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::token_or_session(
            v,
            self.access_token.as_ref().map(AccessToken::secret),
            self.session.as_ref(),
        );
    }

    async fn run(self, backend: &dyn Backend) -> Result<Ran<AssociatedToken>> {
        backend
            .associate_software_token(&token_auth(self.access_token, self.session)?)
            .await
            .map(Ran::from)
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

    fn target(&self) -> Target<'_> {
        Target::TokenOrSession(self.access_token.as_ref(), self.session.as_ref())
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            access_token: Option<&'a AccessToken>,
            session: Option<&'a Secret>,
            user_code: &'a Secret,
            friendly_device_name: Option<&'a str>,
        }
        Request {
            access_token: self.access_token.as_ref(),
            session: self.session.as_ref(),
            user_code: &self.user_code,
            friendly_device_name: self.friendly_device_name.as_deref(),
        }
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

    async fn run(self, backend: &dyn Backend) -> Result<Ran<TokenVerification>> {
        let auth = token_auth(self.access_token, self.session)?;
        backend
            .verify_software_token(&auth, &self.user_code, self.friendly_device_name.as_deref())
            .await
            .map(Ran::from)
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

    fn target(&self) -> Target<'_> {
        Target::of_user(&self.user)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user: UserView<'a>,
        }
        Request {
            user: UserView::of(&self.user),
        }
    }

    fn validate(&self, v: &mut Violations) {
        user_ref(v, &self.user);
    }

    async fn run(self, backend: &dyn Backend) -> Result<Ran<UserMfaSettings>> {
        backend
            .get_user_mfa_settings(&self.user)
            .await
            .map(Ran::from)
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

    fn target(&self) -> Target<'_> {
        Target::User {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
        }
    }

    fn audit_request(&self) -> impl Serialize {
        UserRequest {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        rules::username(v, "username", &self.username);
    }

    async fn run(self, backend: &dyn Backend) -> Result<Ran<()>> {
        backend
            .admin_delete_software_token(&self.user_pool_id, &self.username)
            .await
            .map(Ran::from)
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

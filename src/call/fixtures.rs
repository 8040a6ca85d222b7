//! The local fixtures (cognito.mfa.dev.v1.LocalFixturesService) as
//! operations: they take the same way as every other call — authorized
//! against the pool they name, validated, rate limited, audited — and reach
//! only the local backend, never Cognito.
//!
//! CreateUserPool names no pool that exists yet; the policy grants it only
//! through a rule over every pool (`user_pools = ["*"]`, see
//! `auth::policy::Scope::NewPool`).

use std::sync::Arc;

use serde::Serialize;

use super::ops::UserRequest;
use super::{Operation, Plan, Ran, Target};
use crate::backend::{
    Backend,
    local::{
        LocalBackend, NewDevice,
        fixtures::{NewPasskey, NewUser},
        store::{FeaturePlan, PoolSettings},
    },
};
use crate::domain::{
    Secret,
    pool_state::Recovery,
    rules::{self, Violations},
    secret,
};
use crate::error::{Error, Result};

/// The full gRPC method names, as policy, limits and audit see them.
use crate::method::{self, Method};

pub struct CreateUserPool {
    pub local: Arc<LocalBackend>,
    pub pool_name: String,
    pub plan: FeaturePlan,
    /// The rest of the state the pre-flight reads.
    pub state: PoolSettings,
}

/// The most characters of a fixture's SMS or email configuration failure.
pub const MAX_FAILURE_CHARS: usize = 256;

fn check_pool_settings(v: &mut Violations, s: &PoolSettings) {
    for (field, text) in [
        ("sms_configuration_failure", &s.sms_configuration_failure),
        (
            "email_configuration_failure",
            &s.email_configuration_failure,
        ),
    ] {
        if let Some(t) = text
            && (t.is_empty() || t.chars().count() > MAX_FAILURE_CHARS)
        {
            v.add(
                field,
                format!("must be 1 to {MAX_FAILURE_CHARS} characters"),
            );
        }
    }
    /// A list that must name each of its members once.
    fn once_each<T: PartialEq>(v: &mut Violations, field: &str, items: &[T], what: &str) {
        if items
            .iter()
            .enumerate()
            .any(|(i, x)| items[..i].contains(x))
        {
            v.add(field, format!("must name each {what} at most once"));
        }
    }
    once_each(
        v,
        "allowed_first_auth_factors",
        &s.first_auth_factors,
        "factor",
    );
    once_each(v, "alias_attributes", &s.alias_attributes, "attribute");
    once_each(
        v,
        "username_attributes",
        &s.username_attributes,
        "attribute",
    );
    if !s.username_attributes.is_empty() && !s.alias_attributes.is_empty() {
        // Cognito's CreateUserPool takes AliasAttributes or
        // UsernameAttributes, not both.
        v.add(
            "username_attributes",
            "cannot be set with alias_attributes (a Cognito pool has one or the other)",
        );
    }
    let auto = &s.auto_verified_attributes;
    for (i, a) in auto.iter().enumerate() {
        if a != "phone_number" && a != "email" {
            v.add(
                format!("auto_verified_attributes[{i}]"),
                "must be phone_number or email",
            );
        } else if auto[..i].contains(a) {
            v.add(
                "auto_verified_attributes",
                "must name each attribute at most once",
            );
        }
    }
    if let Some(d) = &s.domain {
        let b = d.as_bytes();
        let ok = (1..=63).contains(&b.len())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b.first() != Some(&b'-')
            && b.last() != Some(&b'-');
        if !ok {
            v.add(
                "domain",
                "must be 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'",
            );
        }
    }
    let recovery = &s.recovery;
    if recovery.len() > 2 {
        v.add("account_recovery", "must name one or two options");
    } else if recovery.len() == 2 && recovery[0] == recovery[1] {
        v.add("account_recovery", "must name each option at most once");
    } else if recovery.len() == 2 && recovery.contains(&Recovery::AdminOnly) {
        v.add("account_recovery", "ADMIN_ONLY must be the only option");
    }
}

pub struct CreateUser {
    pub local: Arc<LocalBackend>,
    pub user_pool_id: String,
    pub user: NewUser,
}

/// Fixtures CreateUsers: many users in one write.
pub struct CreateUsers {
    pub local: Arc<LocalBackend>,
    pub user_pool_id: String,
    pub users: Vec<NewUser>,
}

pub struct SetUserEnabled {
    pub local: Arc<LocalBackend>,
    pub user_pool_id: String,
    pub username: String,
    pub enabled: bool,
}

pub struct RememberDevice {
    pub local: Arc<LocalBackend>,
    pub user_pool_id: String,
    pub username: String,
    pub device: NewDevice,
}

pub struct RegisterWebAuthnCredential {
    pub local: Arc<LocalBackend>,
    pub user_pool_id: String,
    pub username: String,
    pub passkey: NewPasskey,
}

/// A user as records show it: the attribute names only, their values are
/// the end user's (email, phone).
#[derive(Serialize)]
struct UserView<'a> {
    #[serde(serialize_with = "secret::username")]
    username: &'a str,
    attribute_names: Vec<&'a String>,
    status: &'static str,
    enabled: bool,
}

impl<'a> UserView<'a> {
    fn of(u: &'a NewUser) -> Self {
        Self {
            username: &u.username,
            attribute_names: u.attributes.keys().collect(),
            status: u.status.cognito_name(),
            enabled: u.enabled,
        }
    }
}

pub struct IssueAccessToken {
    pub local: Arc<LocalBackend>,
    pub user_pool_id: String,
    pub username: String,
    pub ttl_seconds: Option<u32>,
}

pub struct IssueMfaSetupSession {
    pub local: Arc<LocalBackend>,
    pub user_pool_id: String,
    pub username: String,
}

/// A new pool's id.
#[derive(Serialize)]
pub struct CreatedPool {
    pub user_pool_id: String,
}
/// A new user's sub.
#[derive(Serialize)]
pub struct CreatedUser {
    #[serde(serialize_with = "secret::username")]
    pub username: String,
    pub sub: String,
}
/// An access token and its lifetime.
#[derive(Serialize)]
pub struct IssuedToken {
    pub access_token: Secret,
    pub expires_in: u32,
}
/// An MFA_SETUP session.
#[derive(Serialize)]
pub struct IssuedSession {
    pub session: Secret,
}

fn user(v: &mut Violations, user_pool_id: &str, username: &str) {
    rules::user_pool_id(v, "user_pool_id", user_pool_id);
    rules::username(v, "username", username);
}

impl Operation for CreateUserPool {
    type Output = CreatedPool;
    fn method(&self) -> &'static Method {
        &method::CREATE_USER_POOL
    }
    fn target(&self) -> Target<'_> {
        Target::NewPool
    }
    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            pool_name: &'a str,
            feature_plan: String,
            state: &'a PoolSettings,
        }
        Request {
            pool_name: &self.pool_name,
            feature_plan: format!("{:?}", self.plan),
            state: &self.state,
        }
    }
    fn validate(&self, v: &mut Violations) {
        rules::pool_name(v, "pool_name", &self.pool_name);
        check_pool_settings(v, &self.state);
    }
    async fn run(self, _: &dyn Backend, _: &Plan) -> Result<Ran<CreatedPool>> {
        let user_pool_id = self
            .local
            .create_user_pool(&self.pool_name, self.plan, self.state)
            .await?;
        Ok(CreatedPool { user_pool_id }.into())
    }
}

impl Operation for CreateUser {
    type Output = CreatedUser;
    fn method(&self) -> &'static Method {
        &method::CREATE_USER
    }
    fn target(&self) -> Target<'_> {
        Target::User {
            user_pool_id: &self.user_pool_id,
            username: &self.user.username,
        }
    }
    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user_pool_id: &'a str,
            #[serde(flatten)]
            user: UserView<'a>,
        }
        Request {
            user_pool_id: &self.user_pool_id,
            user: UserView::of(&self.user),
        }
    }
    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        self.local
            .check_new_users(v, std::slice::from_ref(&self.user), false);
    }
    async fn run(self, _: &dyn Backend, _: &Plan) -> Result<Ran<CreatedUser>> {
        let created = self
            .local
            .create_users(&self.user_pool_id, vec![self.user])
            .await?;
        let user = created
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("create_users returned no user".into()))?;
        Ok(CreatedUser {
            username: user.username,
            sub: user.sub,
        }
        .into())
    }
}

impl Operation for CreateUsers {
    type Output = Vec<CreatedUser>;
    fn method(&self) -> &'static Method {
        &method::CREATE_USERS
    }
    fn target(&self) -> Target<'_> {
        Target::Pool(&self.user_pool_id)
    }
    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user_pool_id: &'a str,
            users: Vec<UserView<'a>>,
        }
        Request {
            user_pool_id: &self.user_pool_id,
            users: self.users.iter().map(UserView::of).collect(),
        }
    }
    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        self.local.check_new_users(v, &self.users, true);
    }
    async fn run(self, _: &dyn Backend, _: &Plan) -> Result<Ran<Vec<CreatedUser>>> {
        let created = self
            .local
            .create_users(&self.user_pool_id, self.users)
            .await?;
        Ok(created
            .into_iter()
            .map(|c| CreatedUser {
                username: c.username,
                sub: c.sub,
            })
            .collect::<Vec<_>>()
            .into())
    }
}

impl Operation for SetUserEnabled {
    type Output = ();
    fn method(&self) -> &'static Method {
        &method::SET_USER_ENABLED
    }
    fn target(&self) -> Target<'_> {
        Target::User {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
        }
    }
    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            #[serde(flatten)]
            user: UserRequest<'a>,
            enabled: bool,
        }
        Request {
            user: UserRequest {
                user_pool_id: &self.user_pool_id,
                username: &self.username,
            },
            enabled: self.enabled,
        }
    }
    fn validate(&self, v: &mut Violations) {
        user(v, &self.user_pool_id, &self.username);
    }
    async fn run(self, _: &dyn Backend, _: &Plan) -> Result<Ran<()>> {
        self.local
            .set_user_enabled(&self.user_pool_id, &self.username, self.enabled)
            .await
            .map(Ran::from)
    }
}

/// A new passkey's id.
#[derive(Serialize)]
pub struct RegisteredPasskey {
    pub credential_id: String,
}

impl Operation for RegisterWebAuthnCredential {
    type Output = RegisteredPasskey;
    fn method(&self) -> &'static Method {
        &method::REGISTER_WEB_AUTHN_CREDENTIAL
    }
    fn target(&self) -> Target<'_> {
        Target::User {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
        }
    }
    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            #[serde(flatten)]
            user: UserRequest<'a>,
            relying_party_id: &'a str,
        }
        Request {
            user: UserRequest {
                user_pool_id: &self.user_pool_id,
                username: &self.username,
            },
            relying_party_id: &self.passkey.relying_party_id,
        }
    }
    fn validate(&self, v: &mut Violations) {
        user(v, &self.user_pool_id, &self.username);
    }
    async fn run(self, _: &dyn Backend, _: &Plan) -> Result<Ran<RegisteredPasskey>> {
        let credential_id = self
            .local
            .register_web_authn_credential(&self.user_pool_id, &self.username, self.passkey)
            .await?;
        Ok(RegisteredPasskey { credential_id }.into())
    }
}

#[derive(Serialize)]
pub struct RememberedDevice {
    pub device_key: String,
}

impl Operation for RememberDevice {
    type Output = RememberedDevice;
    fn method(&self) -> &'static Method {
        &method::REMEMBER_DEVICE
    }
    fn target(&self) -> Target<'_> {
        Target::User {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
        }
    }
    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            #[serde(flatten)]
            user: UserRequest<'a>,
            remembered: bool,
        }
        Request {
            user: UserRequest {
                user_pool_id: &self.user_pool_id,
                username: &self.username,
            },
            remembered: self.device.remembered,
        }
    }
    fn validate(&self, v: &mut Violations) {
        user(v, &self.user_pool_id, &self.username);
    }
    async fn run(self, _: &dyn Backend, _: &Plan) -> Result<Ran<RememberedDevice>> {
        let device_key = self
            .local
            .remember_device(&self.user_pool_id, &self.username, self.device)
            .await?;
        Ok(RememberedDevice { device_key }.into())
    }
}

impl Operation for IssueAccessToken {
    type Output = IssuedToken;
    fn method(&self) -> &'static Method {
        &method::ISSUE_ACCESS_TOKEN
    }
    fn target(&self) -> Target<'_> {
        Target::User {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
        }
    }
    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user_pool_id: &'a str,
            #[serde(serialize_with = "secret::username")]
            username: &'a str,
            ttl_seconds: Option<u32>,
        }
        Request {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
            ttl_seconds: self.ttl_seconds,
        }
    }
    fn validate(&self, v: &mut Violations) {
        user(v, &self.user_pool_id, &self.username);
    }
    async fn run(self, _: &dyn Backend, _: &Plan) -> Result<Ran<IssuedToken>> {
        let (access_token, expires_in) = self
            .local
            .issue_access_token(&self.user_pool_id, &self.username, self.ttl_seconds)
            .await?;
        Ok(IssuedToken {
            access_token,
            expires_in,
        }
        .into())
    }
}

impl Operation for IssueMfaSetupSession {
    type Output = IssuedSession;
    fn method(&self) -> &'static Method {
        &method::ISSUE_MFA_SETUP_SESSION
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
        user(v, &self.user_pool_id, &self.username);
    }
    async fn run(self, _: &dyn Backend, _: &Plan) -> Result<Ran<IssuedSession>> {
        let session = self
            .local
            .issue_mfa_setup_session(&self.user_pool_id, &self.username)
            .await?;
        Ok(IssuedSession { session }.into())
    }
}

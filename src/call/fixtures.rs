//! The local fixtures (cognito.mfa.dev.v1.LocalFixturesService) as
//! operations: they take the same way as every other call — authorized
//! against the pool they name, validated, rate limited, audited — and reach
//! only the local backend, never Cognito.
//!
//! CreateUserPool names no pool that exists yet; the policy grants it only
//! through a rule over every pool (`user_pools = ["*"]`, see
//! `auth::policy::Scope::NewPool`).

use std::{collections::BTreeMap, sync::Arc};

use serde_json::json;

use super::{AuditOutput, Operation};
use crate::backend::{
    Backend,
    local::{LocalBackend, store::FeaturePlan},
};
use crate::domain::{
    Secret,
    rules::{self, Violations},
};
use crate::error::Result;
use crate::limits::UpstreamCall;

/// The full gRPC method names, as policy, limits and audit see them.
use crate::method::{self, Method};

pub struct CreateUserPool {
    pub local: Arc<LocalBackend>,
    pub pool_name: String,
    pub plan: FeaturePlan,
}

pub struct CreateUser {
    pub local: Arc<LocalBackend>,
    pub user_pool_id: String,
    pub username: String,
    pub attributes: BTreeMap<String, String>,
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
pub struct CreatedPool(pub String);
/// A new user's sub.
pub struct CreatedUser {
    pub username: String,
    pub sub: String,
}
/// An access token and its lifetime.
pub struct IssuedToken(pub Secret, pub u32);
/// An MFA_SETUP session.
pub struct IssuedSession(pub Secret);

impl AuditOutput for CreatedPool {
    fn audit_response(&self) -> serde_json::Value {
        json!({ "user_pool_id": self.0 })
    }
}
impl AuditOutput for CreatedUser {
    fn audit_response(&self) -> serde_json::Value {
        json!({ "username": self.username, "sub": self.sub })
    }
}
impl AuditOutput for IssuedToken {
    fn audit_response(&self) -> serde_json::Value {
        json!({ "access_token": self.0.expose(), "expires_in": self.1 })
    }
}
impl AuditOutput for IssuedSession {
    fn audit_response(&self) -> serde_json::Value {
        json!({ "session": self.0.expose() })
    }
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
    fn user_pool(&self) -> Option<String> {
        None
    }
    fn creates_pool(&self) -> bool {
        true
    }
    fn upstream(&self) -> Vec<UpstreamCall> {
        Vec::new()
    }
    fn audit_request(&self) -> serde_json::Value {
        json!({ "pool_name": self.pool_name, "feature_plan": format!("{:?}", self.plan) })
    }
    fn validate(&self, v: &mut Violations) {
        rules::pool_name(v, "pool_name", &self.pool_name);
    }
    async fn run(self, _: &dyn Backend) -> Result<CreatedPool> {
        let id = self
            .local
            .create_user_pool(&self.pool_name, self.plan)
            .await?;
        Ok(CreatedPool(id))
    }
}

impl Operation for CreateUser {
    type Output = CreatedUser;
    fn method(&self) -> &'static Method {
        &method::CREATE_USER
    }
    fn user_pool(&self) -> Option<String> {
        Some(self.user_pool_id.clone())
    }
    fn upstream(&self) -> Vec<UpstreamCall> {
        Vec::new()
    }
    /// Attribute names only: their values are the end user's (email, phone).
    fn audit_request(&self) -> serde_json::Value {
        json!({
            "user_pool_id": self.user_pool_id,
            "username": self.username,
            "attribute_names": self.attributes.keys().collect::<Vec<_>>(),
        })
    }
    fn target_user(&self) -> Option<String> {
        Some(self.username.clone())
    }
    fn validate(&self, v: &mut Violations) {
        user(v, &self.user_pool_id, &self.username);
        self.local.check_attributes(v, &self.attributes);
    }
    async fn run(self, _: &dyn Backend) -> Result<CreatedUser> {
        let sub = self
            .local
            .create_user(&self.user_pool_id, &self.username, self.attributes)
            .await?;
        Ok(CreatedUser {
            username: self.username,
            sub,
        })
    }
}

impl Operation for IssueAccessToken {
    type Output = IssuedToken;
    fn method(&self) -> &'static Method {
        &method::ISSUE_ACCESS_TOKEN
    }
    fn user_pool(&self) -> Option<String> {
        Some(self.user_pool_id.clone())
    }
    fn upstream(&self) -> Vec<UpstreamCall> {
        Vec::new()
    }
    fn audit_request(&self) -> serde_json::Value {
        json!({
            "user_pool_id": self.user_pool_id,
            "username": self.username,
            "ttl_seconds": self.ttl_seconds,
        })
    }
    fn target_user(&self) -> Option<String> {
        Some(self.username.clone())
    }
    fn validate(&self, v: &mut Violations) {
        user(v, &self.user_pool_id, &self.username);
    }
    async fn run(self, _: &dyn Backend) -> Result<IssuedToken> {
        let (token, ttl) = self
            .local
            .issue_access_token(&self.user_pool_id, &self.username, self.ttl_seconds)
            .await?;
        Ok(IssuedToken(token, ttl))
    }
}

impl Operation for IssueMfaSetupSession {
    type Output = IssuedSession;
    fn method(&self) -> &'static Method {
        &method::ISSUE_MFA_SETUP_SESSION
    }
    fn user_pool(&self) -> Option<String> {
        Some(self.user_pool_id.clone())
    }
    fn upstream(&self) -> Vec<UpstreamCall> {
        Vec::new()
    }
    fn audit_request(&self) -> serde_json::Value {
        json!({ "user_pool_id": self.user_pool_id, "username": self.username })
    }
    fn target_user(&self) -> Option<String> {
        Some(self.username.clone())
    }
    fn validate(&self, v: &mut Violations) {
        user(v, &self.user_pool_id, &self.username);
    }
    async fn run(self, _: &dyn Backend) -> Result<IssuedSession> {
        let session = self
            .local
            .issue_mfa_setup_session(&self.user_pool_id, &self.username)
            .await?;
        Ok(IssuedSession(session))
    }
}

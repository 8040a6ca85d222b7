//! Where a call ends: the [`Backend`] trait and its implementations.
//! `cognito` calls Amazon Cognito through the official SDK; `local` keeps
//! Cognito's rules and state in a file, for laptops and tests.

pub mod cognito;
pub mod local;
pub mod settings;
pub mod state_cache;

use async_trait::async_trait;

use crate::domain::{
    AccessToken, AssociatedToken, CredentialsPage, Device, DeviceStatus, DevicesPage,
    MfaPreference, PoolMfaConfig, PoolState, Secret, TokenAuth, TokenVerification, UserAttribute,
    UserAuthFactors, UserMfaSettings, UserRef, UsersPage,
};
use crate::error::Result;

/// Where a call goes upstream, for its audit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The `[[backend.accounts]]` entry's name, or "default".
    pub account: String,
    pub region: String,
    /// With `backend.source_identity`: the STS SourceIdentity the call's
    /// Cognito requests carry, as CloudTrail shows it.
    pub source_identity: Option<String>,
}

/// The MFA operations of Cognito, in domain types. Implementations validate
/// nothing that the domain rules already checked, and never panic on any
/// answer from upstream.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// A short name for logs and metrics: "cognito" or "local".
    fn name(&self) -> &'static str;

    /// The Region of calls that name no pool (cognito: the default Region),
    /// for the quota buckets; `None` when Regions mean nothing here.
    fn default_region(&self) -> Option<&str> {
        None
    }

    /// Where a call about `user_pool_id` (`None`: a call that names no
    /// pool, a session's) goes upstream: the account — the name of its
    /// `[[backend.accounts]]` entry, or "default" for the base credentials —
    /// and the Region, for the audit record. `None` when that means
    /// nothing here (the local backend).
    fn placement(
        &self,
        _user_pool_id: Option<&str>,
        _principal: Option<&str>,
    ) -> Option<Placement> {
        None
    }

    /// Whether calls must run inside `crate::upstream::act_for` with their
    /// caller's principal (cognito with `backend.source_identity`).
    fn acts_for_callers(&self) -> bool {
        false
    }

    /// For each account served through an assumed role (cognito's
    /// `[[backend.accounts]]`), whether its credentials resolve now.
    async fn account_health(&self) -> Vec<(String, std::result::Result<(), String>)> {
        Vec::new()
    }

    /// Whether calls can be made now; health stays NOT_SERVING until it is.
    async fn ready(&self) -> std::result::Result<(), String> {
        Ok(())
    }

    async fn get_user_pool_mfa_config(&self, user_pool_id: &str) -> Result<PoolMfaConfig>;

    /// The pool's state where it decides what MFA configuration it can
    /// take (DescribeUserPool's members; the pre-flight reads it).
    async fn pool_state(&self, user_pool_id: &str) -> Result<PoolState>;

    /// Replaces the pool's whole MFA configuration; returns it as stored.
    async fn set_user_pool_mfa_config(
        &self,
        user_pool_id: &str,
        config: &PoolMfaConfig,
    ) -> Result<PoolMfaConfig>;

    async fn set_user_mfa_preference(
        &self,
        user: &UserRef,
        preference: &MfaPreference,
    ) -> Result<()>;

    async fn associate_software_token(&self, auth: &TokenAuth) -> Result<AssociatedToken>;

    async fn verify_software_token(
        &self,
        auth: &TokenAuth,
        user_code: &Secret,
        friendly_device_name: Option<&str>,
    ) -> Result<TokenVerification>;

    async fn get_user_mfa_settings(&self, user: &UserRef) -> Result<UserMfaSettings>;

    async fn admin_delete_software_token(&self, user_pool_id: &str, username: &str) -> Result<()>;

    /// GetUserAuthFactors (access token) / AdminGetUserAuthFactors.
    async fn get_user_auth_factors(&self, user: &UserRef) -> Result<UserAuthFactors>;

    /// One page of the access token's user's passkeys.
    async fn list_web_authn_credentials(
        &self,
        token: &AccessToken,
        next_token: Option<&str>,
        max_results: Option<i32>,
    ) -> Result<CredentialsPage>;

    async fn delete_web_authn_credential(
        &self,
        token: &AccessToken,
        credential_id: &str,
    ) -> Result<()>;

    /// One page of ListUsers: at most `limit` (1 to 60) users matching
    /// `filter` (ListUsers' syntax; empty: all), after `pagination_token`.
    async fn list_users(
        &self,
        user_pool_id: &str,
        filter: &str,
        pagination_token: Option<&str>,
        limit: i32,
    ) -> Result<UsersPage>;

    /// AdminListDevices (admin) / ListDevices (access token): one page of
    /// the user's tracked devices, at most `limit` (0 to 60; unset: 60).
    async fn list_devices(
        &self,
        user: &UserRef,
        limit: Option<i32>,
        pagination_token: Option<&str>,
    ) -> Result<DevicesPage>;

    async fn admin_get_device(
        &self,
        user_pool_id: &str,
        username: &str,
        device_key: &str,
    ) -> Result<Device>;

    /// AdminForgetDevice (admin) / ForgetDevice (access token).
    async fn forget_device(&self, user: &UserRef, device_key: &str) -> Result<()>;

    async fn admin_update_device_status(
        &self,
        user_pool_id: &str,
        username: &str,
        device_key: &str,
        status: Option<DeviceStatus>,
    ) -> Result<()>;

    /// AdminUserGlobalSignOut (admin) / GlobalSignOut (access token).
    async fn global_sign_out(&self, user: &UserRef) -> Result<()>;

    /// AdminUpdateUserAttributes with the attributes MFA needs only.
    async fn admin_update_user_attributes(
        &self,
        user_pool_id: &str,
        username: &str,
        attributes: &[UserAttribute],
    ) -> Result<()>;

    /// StartWebAuthnRegistration: the credential creation options (JSON).
    async fn start_web_authn_registration(&self, token: &AccessToken) -> Result<serde_json::Value>;

    /// CompleteWebAuthnRegistration with the browser's credential (JSON).
    async fn complete_web_authn_registration(
        &self,
        token: &AccessToken,
        credential: &serde_json::Value,
    ) -> Result<()>;
}

//! cognito.mfa.dev.v1.LocalFixturesService: state for other teams' tests,
//! over gRPC. Served only with the local backend. Each call is decoded into
//! an operation (`call::fixtures`) and takes the facade's way like any
//! other (`call::Facade::execute`).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::context;
use crate::backend::local::{
    LocalBackend,
    fixtures::{NewPasskey, NewUser, UserStatus},
    store::{FeaturePlan, PoolSettings},
};
use crate::call::{Decoded, Facade, fixtures as ops};
use crate::domain::pool_state::{AuthFactor, EmailSendingAccount, Recovery};
use crate::domain::{Secret, rules::Violations};
use crate::proto::dev::v1 as pb;

fn user_status(v: &mut Violations, field: &str, raw: i32) -> UserStatus {
    match pb::UserStatus::try_from(raw) {
        Ok(pb::UserStatus::Unspecified | pb::UserStatus::Confirmed) => UserStatus::Confirmed,
        Ok(pb::UserStatus::Unconfirmed) => UserStatus::Unconfirmed,
        Ok(pb::UserStatus::ResetRequired) => UserStatus::ResetRequired,
        Ok(pb::UserStatus::ForceChangePassword) => UserStatus::ForceChangePassword,
        Err(_) => {
            v.add(field, format!("unknown enum value {raw}"));
            UserStatus::Confirmed
        }
    }
}

pub struct FixturesApi {
    facade: Facade,
    local: Arc<LocalBackend>,
}

impl FixturesApi {
    pub fn new(facade: Facade, local: Arc<LocalBackend>) -> Self {
        Self { facade, local }
    }
}

#[tonic::async_trait]
impl pb::local_fixtures_service_server::LocalFixturesService for FixturesApi {
    async fn create_user_pool(
        &self,
        request: Request<pb::CreateUserPoolRequest>,
    ) -> Result<Response<pb::CreateUserPoolResponse>, Status> {
        let (ctx, r) = context(request);
        let mut violations = Violations::default();
        let plan = match pb::FeaturePlan::try_from(r.feature_plan) {
            Ok(pb::FeaturePlan::Lite) => FeaturePlan::Lite,
            Ok(pb::FeaturePlan::Plus) => FeaturePlan::Plus,
            Ok(pb::FeaturePlan::Essentials | pb::FeaturePlan::Unspecified) => {
                FeaturePlan::Essentials
            }
            Err(_) => {
                violations.add(
                    "feature_plan",
                    format!("unknown enum value {}", r.feature_plan),
                );
                FeaturePlan::Essentials
            }
        };
        let email_sending_account = match pb::EmailSendingAccount::try_from(r.email_sending_account)
        {
            Ok(pb::EmailSendingAccount::Developer) => EmailSendingAccount::Developer,
            Ok(_) => EmailSendingAccount::CognitoDefault,
            Err(_) => {
                violations.add(
                    "email_sending_account",
                    format!("unknown enum value {}", r.email_sending_account),
                );
                EmailSendingAccount::CognitoDefault
            }
        };
        let mut first_auth_factors = Vec::new();
        for (i, f) in r.allowed_first_auth_factors.iter().enumerate() {
            match pb::AuthFactor::try_from(*f) {
                Ok(pb::AuthFactor::Password) => first_auth_factors.push(AuthFactor::Password),
                Ok(pb::AuthFactor::EmailOtp) => first_auth_factors.push(AuthFactor::EmailOtp),
                Ok(pb::AuthFactor::SmsOtp) => first_auth_factors.push(AuthFactor::SmsOtp),
                Ok(pb::AuthFactor::WebAuthn) => first_auth_factors.push(AuthFactor::WebAuthn),
                Ok(pb::AuthFactor::Unspecified) | Err(_) => violations.add(
                    format!("allowed_first_auth_factors[{i}]"),
                    format!("unknown or unspecified factor {f}"),
                ),
            }
        }
        let mut recovery = Vec::new();
        for (i, o) in r.account_recovery.iter().enumerate() {
            match pb::RecoveryOption::try_from(*o) {
                Ok(pb::RecoveryOption::VerifiedEmail) => recovery.push(Recovery::VerifiedEmail),
                Ok(pb::RecoveryOption::VerifiedPhoneNumber) => {
                    recovery.push(Recovery::VerifiedPhoneNumber)
                }
                Ok(pb::RecoveryOption::AdminOnly) => recovery.push(Recovery::AdminOnly),
                Ok(pb::RecoveryOption::Unspecified) | Err(_) => violations.add(
                    format!("account_recovery[{i}]"),
                    format!("unknown or unspecified option {o}"),
                ),
            }
        }
        let mut alias_attributes = Vec::new();
        for (i, a) in r.alias_attributes.iter().enumerate() {
            match pb::AliasAttribute::try_from(*a) {
                Ok(pb::AliasAttribute::Email) => alias_attributes.push("email".to_owned()),
                Ok(pb::AliasAttribute::PhoneNumber) => {
                    alias_attributes.push("phone_number".to_owned())
                }
                Ok(pb::AliasAttribute::PreferredUsername) => {
                    alias_attributes.push("preferred_username".to_owned())
                }
                Ok(pb::AliasAttribute::Unspecified) | Err(_) => violations.add(
                    format!("alias_attributes[{i}]"),
                    format!("unknown or unspecified attribute {a}"),
                ),
            }
        }
        let mut username_attributes = Vec::new();
        for (i, a) in r.username_attributes.iter().enumerate() {
            match pb::UsernameAttribute::try_from(*a) {
                Ok(pb::UsernameAttribute::Email) => username_attributes.push("email".to_owned()),
                Ok(pb::UsernameAttribute::PhoneNumber) => {
                    username_attributes.push("phone_number".to_owned())
                }
                Ok(pb::UsernameAttribute::Unspecified) | Err(_) => violations.add(
                    format!("username_attributes[{i}]"),
                    format!("unknown or unspecified attribute {a}"),
                ),
            }
        }
        let op = ops::CreateUserPool {
            local: self.local.clone(),
            pool_name: r.pool_name,
            plan,
            state: PoolSettings {
                email_sending_account,
                sms_configuration_failure: r.sms_configuration_failure,
                email_configuration_failure: r.email_configuration_failure,
                first_auth_factors,
                recovery,
                alias_attributes,
                auto_verified_attributes: r.auto_verified_attributes,
                domain: r.domain,
                case_sensitive: r.case_sensitive.unwrap_or(false),
                username_attributes,
            },
        };
        let created = self
            .facade
            .execute(&ctx, Decoded::new(op, violations))
            .await?;
        Ok(Response::new(pb::CreateUserPoolResponse {
            user_pool_id: created.user_pool_id,
        }))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let (ctx, r) = context(request);
        let mut violations = Violations::default();
        let user = NewUser {
            username: r.username,
            attributes: r.attributes.into_iter().collect(),
            status: user_status(&mut violations, "status", r.status),
            enabled: r.enabled.unwrap_or(true),
        };
        let op = ops::CreateUser {
            local: self.local.clone(),
            user_pool_id: r.user_pool_id,
            user,
        };
        let created = self
            .facade
            .execute(&ctx, Decoded::new(op, violations))
            .await?;
        Ok(Response::new(pb::CreateUserResponse {
            username: created.username,
            sub: created.sub,
        }))
    }

    async fn create_users(
        &self,
        request: Request<pb::CreateUsersRequest>,
    ) -> Result<Response<pb::CreateUsersResponse>, Status> {
        let (ctx, r) = context(request);
        let mut violations = Violations::default();
        let users = r
            .users
            .into_iter()
            .enumerate()
            .map(|(i, u)| NewUser {
                username: u.username,
                attributes: u.attributes.into_iter().collect(),
                status: user_status(&mut violations, &format!("users[{i}].status"), u.status),
                enabled: u.enabled.unwrap_or(true),
            })
            .collect();
        let op = ops::CreateUsers {
            local: self.local.clone(),
            user_pool_id: r.user_pool_id,
            users,
        };
        let created = self
            .facade
            .execute(&ctx, Decoded::new(op, violations))
            .await?;
        Ok(Response::new(pb::CreateUsersResponse {
            users: created
                .into_iter()
                .map(|c| pb::CreateUserResponse {
                    username: c.username,
                    sub: c.sub,
                })
                .collect(),
        }))
    }

    async fn set_user_enabled(
        &self,
        request: Request<pb::SetUserEnabledRequest>,
    ) -> Result<Response<pb::SetUserEnabledResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::SetUserEnabled {
            local: self.local.clone(),
            user_pool_id: r.user_pool_id,
            username: r.username,
            enabled: r.enabled,
        };
        self.facade
            .execute(&ctx, Decoded::new(op, Violations::default()))
            .await?;
        Ok(Response::new(pb::SetUserEnabledResponse {}))
    }

    async fn register_web_authn_credential(
        &self,
        request: Request<pb::RegisterWebAuthnCredentialRequest>,
    ) -> Result<Response<pb::RegisterWebAuthnCredentialResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::RegisterWebAuthnCredential {
            local: self.local.clone(),
            user_pool_id: r.user_pool_id,
            username: r.username,
            passkey: NewPasskey {
                friendly_credential_name: r.friendly_credential_name,
                relying_party_id: r.relying_party_id,
                authenticator_attachment: r.authenticator_attachment,
                authenticator_transports: r.authenticator_transports,
            },
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Violations::default()))
            .await?;
        Ok(Response::new(pb::RegisterWebAuthnCredentialResponse {
            credential_id: out.credential_id,
        }))
    }

    async fn remember_device(
        &self,
        request: Request<pb::RememberDeviceRequest>,
    ) -> Result<Response<pb::RememberDeviceResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::RememberDevice {
            local: self.local.clone(),
            user_pool_id: r.user_pool_id,
            username: r.username,
            device: crate::backend::local::NewDevice {
                device_name: r.device_name,
                remembered: r.remembered,
                last_ip: r.last_ip,
            },
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Violations::default()))
            .await?;
        Ok(Response::new(pb::RememberDeviceResponse {
            device_key: out.device_key,
        }))
    }

    async fn issue_access_token(
        &self,
        request: Request<pb::IssueAccessTokenRequest>,
    ) -> Result<Response<pb::IssueAccessTokenResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::IssueAccessToken {
            local: self.local.clone(),
            user_pool_id: r.user_pool_id,
            username: r.username,
            ttl_seconds: r.ttl_seconds,
        };
        let ops::IssuedToken {
            access_token: token,
            expires_in,
        } = self
            .facade
            .execute(&ctx, Decoded::new(op, Violations::default()))
            .await?;
        Ok(Response::new(pb::IssueAccessTokenResponse {
            access_token: token.into_inner(),
            expires_in,
        }))
    }

    async fn issue_mfa_setup_session(
        &self,
        request: Request<pb::IssueMfaSetupSessionRequest>,
    ) -> Result<Response<pb::IssueMfaSetupSessionResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::IssueMfaSetupSession {
            local: self.local.clone(),
            user_pool_id: r.user_pool_id,
            username: r.username,
        };
        let ops::IssuedSession { session } = self
            .facade
            .execute(&ctx, Decoded::new(op, Violations::default()))
            .await?;
        Ok(Response::new(pb::IssueMfaSetupSessionResponse {
            session: Secret::into_inner(session),
        }))
    }
}

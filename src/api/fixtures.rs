//! cognito.mfa.dev.v1.LocalFixturesService: state for other teams' tests,
//! over gRPC. Served only with the local backend. Each call is decoded into
//! an operation (`call::fixtures`) and takes the facade's way like any
//! other: authorized on the pool it names, validated, rate limited, audited.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::context;
use crate::backend::local::{
    LocalBackend,
    store::{FeaturePlan, PoolSettings},
};
use crate::call::{Decoded, Facade, fixtures as ops};
use crate::domain::pool_state::{AuthFactor, EmailSendingAccount, Recovery};
use crate::domain::{Secret, rules::Violations};
use crate::proto::dev::v1 as pb;

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
        let op = ops::CreateUser {
            local: self.local.clone(),
            user_pool_id: r.user_pool_id,
            username: r.username,
            attributes: r.attributes.into_iter().collect(),
        };
        let created = self
            .facade
            .execute(&ctx, Decoded::new(op, Violations::default()))
            .await?;
        Ok(Response::new(pb::CreateUserResponse {
            username: created.username,
            sub: created.sub,
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

//! cognito.mfa.dev.v1.LocalFixturesService: state for other teams' tests,
//! over gRPC. Served only with the local backend. Each call is decoded into
//! an operation (`call::fixtures`) and takes the facade's way like any
//! other: authorized on the pool it names, validated, rate limited, audited.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::context;
use crate::backend::local::{LocalBackend, store::FeaturePlan};
use crate::call::{Decoded, Facade, fixtures as ops};
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
        let op = ops::CreateUserPool {
            local: self.local.clone(),
            pool_name: r.pool_name,
            plan,
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

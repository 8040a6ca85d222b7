//! cognito.mfa.dev.v1.LocalFixturesService: state for other teams' tests,
//! over gRPC. Served only with the local backend.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::backend::local::{LocalBackend, store::FeaturePlan};
use crate::domain::{Secret, rules::FieldViolation};
use crate::error::Error;
use crate::proto::dev::v1 as pb;

pub struct FixturesApi {
    local: Arc<LocalBackend>,
}

impl FixturesApi {
    pub fn new(local: Arc<LocalBackend>) -> Self {
        Self { local }
    }
}

#[tonic::async_trait]
impl pb::local_fixtures_service_server::LocalFixturesService for FixturesApi {
    async fn create_user_pool(
        &self,
        request: Request<pb::CreateUserPoolRequest>,
    ) -> Result<Response<pb::CreateUserPoolResponse>, Status> {
        let r = request.into_inner();
        let plan = match pb::FeaturePlan::try_from(r.feature_plan) {
            Ok(pb::FeaturePlan::Lite) => FeaturePlan::Lite,
            Ok(pb::FeaturePlan::Plus) => FeaturePlan::Plus,
            Ok(pb::FeaturePlan::Essentials | pb::FeaturePlan::Unspecified) => {
                FeaturePlan::Essentials
            }
            Err(_) => {
                return Err(Error::InvalidArgument(vec![FieldViolation {
                    field: "feature_plan".into(),
                    description: format!("unknown enum value {}", r.feature_plan),
                }])
                .into());
            }
        };
        let user_pool_id = self.local.create_user_pool(&r.pool_name, plan).await?;
        tracing::info!(message = "Fixture pool created.", user_pool_id);
        Ok(Response::new(pb::CreateUserPoolResponse { user_pool_id }))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let r = request.into_inner();
        let sub = self
            .local
            .create_user(
                &r.user_pool_id,
                &r.username,
                r.attributes.into_iter().collect(),
            )
            .await?;
        Ok(Response::new(pb::CreateUserResponse {
            username: r.username,
            sub,
        }))
    }

    async fn issue_access_token(
        &self,
        request: Request<pb::IssueAccessTokenRequest>,
    ) -> Result<Response<pb::IssueAccessTokenResponse>, Status> {
        let r = request.into_inner();
        let (token, expires_in) = self
            .local
            .issue_access_token(&r.user_pool_id, &r.username, r.ttl_seconds)
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
        let r = request.into_inner();
        let session = self
            .local
            .issue_mfa_setup_session(&r.user_pool_id, &r.username)
            .await?;
        Ok(Response::new(pb::IssueMfaSetupSessionResponse {
            session: Secret::into_inner(session),
        }))
    }
}

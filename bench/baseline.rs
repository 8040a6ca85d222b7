//! The baseline of bench/stack.sh: a bare tonic server answering the same
//! RPCs as the facade (GetUserPoolMfaConfig, SetUserPoolMfaConfig) with a
//! constant reply — no layers, no auth, no limits, no audit, no backend.
//!
//!   baseline --addr 127.0.0.1:PORT

use mfa_facade::proto::v1::{
    self as pb,
    user_pool_mfa_service_server::{UserPoolMfaService, UserPoolMfaServiceServer},
};
use tonic::{Request, Response, Status};

struct Constant;

fn reply() -> (Option<pb::SoftwareTokenMfaConfig>, i32, String) {
    (
        Some(pb::SoftwareTokenMfaConfig {
            enabled: Some(true),
        }),
        pb::MfaConfiguration::Optional as i32,
        "0123456789abcdef0123456789abcdef".into(),
    )
}

#[tonic::async_trait]
impl UserPoolMfaService for Constant {
    async fn get_user_pool_mfa_config(
        &self,
        _: Request<pb::GetUserPoolMfaConfigRequest>,
    ) -> Result<Response<pb::GetUserPoolMfaConfigResponse>, Status> {
        let (t, mode, etag) = reply();
        Ok(Response::new(pb::GetUserPoolMfaConfigResponse {
            software_token_mfa_configuration: t,
            mfa_configuration: mode,
            etag,
            ..Default::default()
        }))
    }

    async fn set_user_pool_mfa_config(
        &self,
        _: Request<pb::SetUserPoolMfaConfigRequest>,
    ) -> Result<Response<pb::SetUserPoolMfaConfigResponse>, Status> {
        let (t, mode, etag) = reply();
        Ok(Response::new(pb::SetUserPoolMfaConfigResponse {
            software_token_mfa_configuration: t,
            mfa_configuration: mode,
            etag,
            ..Default::default()
        }))
    }

    async fn check_user_pool_mfa_config(
        &self,
        _: Request<pb::CheckUserPoolMfaConfigRequest>,
    ) -> Result<Response<pb::CheckUserPoolMfaConfigResponse>, Status> {
        Err(Status::unimplemented("not in the baseline"))
    }

    async fn update_user_pool_mfa_config(
        &self,
        _: Request<pb::UpdateUserPoolMfaConfigRequest>,
    ) -> Result<Response<pb::UpdateUserPoolMfaConfigResponse>, Status> {
        Err(Status::unimplemented("not in the baseline"))
    }

    async fn list_user_pool_mfa_config_history(
        &self,
        _: Request<pb::ListUserPoolMfaConfigHistoryRequest>,
    ) -> Result<Response<pb::ListUserPoolMfaConfigHistoryResponse>, Status> {
        Err(Status::unimplemented("not in the baseline"))
    }

    async fn restore_user_pool_mfa_config(
        &self,
        _: Request<pb::RestoreUserPoolMfaConfigRequest>,
    ) -> Result<Response<pb::RestoreUserPoolMfaConfigResponse>, Status> {
        Err(Status::unimplemented("not in the baseline"))
    }

    type ListUserMfaStatusStream = mfa_facade::api::WalkStream;

    async fn list_user_mfa_status(
        &self,
        _: Request<pb::ListUserMfaStatusRequest>,
    ) -> Result<Response<Self::ListUserMfaStatusStream>, Status> {
        Err(Status::unimplemented("not in the baseline"))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = match (args.next().as_deref(), args.next()) {
        (Some("--addr"), Some(a)) => a.parse()?,
        _ => return Err("usage: baseline --addr HOST:PORT".into()),
    };
    tonic::transport::Server::builder()
        .add_service(UserPoolMfaServiceServer::new(Constant))
        .serve(addr)
        .await?;
    Ok(())
}

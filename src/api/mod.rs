//! The tonic services: decode the proto request into an operation, run it
//! through the [`Facade`], encode the answer. Nothing else happens here.

pub mod codec;
pub mod convert;
pub mod fixtures;
pub mod warnings;

use tonic::{Request, Response, Status};

use crate::auth::Principal;
use crate::call::{CallContext, Decoded, Facade, ops};
use crate::domain::{AccessToken, Secret, UserRef};
use crate::proto::v1 as pb;
use crate::telemetry::RequestId;
use convert::Decoder;

/// The request id, principal and trace that the layers put into the extensions
/// (taken out, not copied), the caller's address, and the message.
fn context<T>(request: Request<T>) -> (CallContext, T) {
    let peer = request.remote_addr();
    let deadline = request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(grpc_timeout)
        .map(|t| tokio::time::Instant::now() + ahead_of(t));
    let (_, mut extensions, message) = request.into_parts();
    let ctx = CallContext {
        request_id: extensions
            .remove::<RequestId>()
            .map(|r| r.0)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        principal: extensions.remove::<Principal>(),
        trace: extensions.remove::<crate::telemetry::trace::CallTrace>(),
        peer,
        warnings: Default::default(),
        deadline,
    };
    (ctx, message)
}

/// A `grpc-timeout` value (gRPC over HTTP/2: 1 to 8 digits and a unit, H M
/// S m u n); anything else is no timeout, as tonic reads it.
pub fn grpc_timeout(value: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // At most 99,999,999: no overflow in any unit below.
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The facade's own deadline for a caller's timeout `t`: a tenth (at most
/// 50 ms) before it, so that the facade's answer — AUDIT_UNAVAILABLE, say —
/// reaches the caller before tonic drops the call at `t`.
fn ahead_of(t: std::time::Duration) -> std::time::Duration {
    t.saturating_sub((t / 10).min(std::time::Duration::from_millis(50)))
}

/// The answer, with the warnings of the guardrails the call passed (for
/// the `x-mfa-facade-warning` trailer, [`warnings`]).
fn warned<T>(ctx: &CallContext, mut response: Response<T>) -> Response<T> {
    let warnings = std::mem::take(&mut *ctx.warnings.lock().unwrap_or_else(|e| e.into_inner()));
    if !warnings.is_empty() {
        response
            .extensions_mut()
            .insert(warnings::Warnings(warnings));
    }
    response
}

/// Both services share one facade.
#[derive(Clone)]
pub struct MfaApi {
    facade: Facade,
}

impl MfaApi {
    pub fn new(facade: Facade) -> Self {
        Self { facade }
    }
}

/// Builds one of the three pool-configuration responses, which share their fields.
macro_rules! versioned {
    ($ty:ident, $out:expr) => {{
        let out = $out;
        let c = convert::pool_config_to_pb(out.config);
        pb::$ty {
            sms_mfa_configuration: c.sms_mfa_configuration,
            software_token_mfa_configuration: c.software_token_mfa_configuration,
            email_mfa_configuration: c.email_mfa_configuration,
            mfa_configuration: c.mfa_configuration,
            web_authn_configuration: c.web_authn_configuration,
            etag: out.etag,
        }
    }};
}

/// Builds one of the two user-settings responses, which share their fields.
macro_rules! settings {
    ($ty:ident, $out:expr) => {{
        let p = convert::settings_parts($out);
        pb::$ty {
            username: p.username,
            preferred_mfa_setting: p.preferred_mfa_setting,
            user_mfa_setting_list: p.user_mfa_setting_list,
            mfa_options: p.mfa_options,
        }
    }};
}

/// The stream of a coverage walk, as the generated service wants it.
pub type WalkStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<pb::ListUserMfaStatusResponse, Status>> + Send>,
>;

/// Builds one of the two auth-factors responses, which share their fields.
macro_rules! auth_factors {
    ($ty:ident, $out:expr) => {{
        let out = $out;
        pb::$ty {
            username: out.username,
            preferred_mfa_setting: out.preferred_mfa_setting,
            user_mfa_setting_list: out.user_mfa_setting_list,
            configured_user_auth_factors: out
                .configured_user_auth_factors
                .into_iter()
                .map(|f| convert::auth_factor_to_pb(f) as i32)
                .collect(),
        }
    }};
}

#[tonic::async_trait]
impl pb::user_pool_mfa_service_server::UserPoolMfaService for MfaApi {
    type ListUserMfaStatusStream = WalkStream;

    async fn list_user_mfa_status(
        &self,
        request: Request<pb::ListUserMfaStatusRequest>,
    ) -> Result<Response<WalkStream>, Status> {
        use tokio_stream::StreamExt;
        let (ctx, r) = context(request);
        let op = crate::call::walk::ListUserMfaStatus {
            user_pool_id: r.user_pool_id,
            filter: r.filter,
            page_token: r.page_token,
        };
        let rx = self.facade.walk(&ctx, op).await?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
            .map(|item| item.map(convert::walk_item_to_pb).map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_user_pool_mfa_config(
        &self,
        request: Request<pb::GetUserPoolMfaConfigRequest>,
    ) -> Result<Response<pb::GetUserPoolMfaConfigResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::GetUserPoolMfaConfig {
            user_pool_id: r.user_pool_id,
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(versioned!(GetUserPoolMfaConfigResponse, out)))
    }

    async fn set_user_pool_mfa_config(
        &self,
        request: Request<pb::SetUserPoolMfaConfigRequest>,
    ) -> Result<Response<pb::SetUserPoolMfaConfigResponse>, Status> {
        let (ctx, r) = context(request);
        let mut d = Decoder::default();
        let config = d.pool_config(
            "",
            r.sms_mfa_configuration,
            r.software_token_mfa_configuration,
            r.email_mfa_configuration,
            r.mfa_configuration,
            r.web_authn_configuration,
        );
        let op = ops::SetUserPoolMfaConfig {
            user_pool_id: r.user_pool_id,
            config,
            validate_only: r.validate_only,
            etag: r.etag,
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, d.violations))
            .await?;
        Ok(warned(
            &ctx,
            Response::new(versioned!(SetUserPoolMfaConfigResponse, out)),
        ))
    }

    async fn check_user_pool_mfa_config(
        &self,
        request: Request<pb::CheckUserPoolMfaConfigRequest>,
    ) -> Result<Response<pb::CheckUserPoolMfaConfigResponse>, Status> {
        let (ctx, r) = context(request);
        let mut d = Decoder::default();
        let patch = d.user_pool_mfa_config("config", r.config.unwrap_or_default());
        let op = ops::CheckUserPoolMfaConfig {
            user_pool_id: r.user_pool_id,
            patch,
            update_mask: r.update_mask.map(|m| m.paths),
            restore_revision: (!r.restore_revision.is_empty()).then_some(r.restore_revision),
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, d.violations))
            .await?;
        Ok(Response::new(convert::check_report_to_pb(out)))
    }

    async fn list_user_pool_mfa_config_history(
        &self,
        request: Request<pb::ListUserPoolMfaConfigHistoryRequest>,
    ) -> Result<Response<pb::ListUserPoolMfaConfigHistoryResponse>, Status> {
        let (ctx, r) = context(request);
        let mut d = Decoder::default();
        let since = r.since.and_then(|t| d.micros("since", t));
        let op = ops::ListUserPoolMfaConfigHistory {
            user_pool_id: r.user_pool_id,
            page_size: r.page_size,
            page_token: r.page_token,
            since,
            key: self.facade.history_key().clone(),
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, d.violations))
            .await?;
        Ok(Response::new(convert::history_page_to_pb(out)))
    }

    async fn restore_user_pool_mfa_config(
        &self,
        request: Request<pb::RestoreUserPoolMfaConfigRequest>,
    ) -> Result<Response<pb::RestoreUserPoolMfaConfigResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::RestoreUserPoolMfaConfig {
            user_pool_id: r.user_pool_id,
            revision: r.revision,
            etag: r.etag,
            validate_only: r.validate_only,
            external_id: r.external_id.map(crate::domain::Secret::new),
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(warned(
            &ctx,
            Response::new(pb::RestoreUserPoolMfaConfigResponse {
                config: Some(convert::pool_config_to_pb(out.config.config)),
                etag: out.config.etag,
                revision: out.revision,
                changed_fields: out.changed_fields,
                notes: out.notes,
            }),
        ))
    }

    async fn update_user_pool_mfa_config(
        &self,
        request: Request<pb::UpdateUserPoolMfaConfigRequest>,
    ) -> Result<Response<pb::UpdateUserPoolMfaConfigResponse>, Status> {
        let (ctx, r) = context(request);
        let mut d = Decoder::default();
        let patch = d.user_pool_mfa_config("config", r.config.unwrap_or_default());
        let op = ops::UpdateUserPoolMfaConfig {
            user_pool_id: r.user_pool_id,
            patch,
            update_mask: r.update_mask.map(|m| m.paths).unwrap_or_default(),
            etag: r.etag,
            validate_only: r.validate_only,
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, d.violations))
            .await?;
        Ok(warned(
            &ctx,
            Response::new(versioned!(UpdateUserPoolMfaConfigResponse, out)),
        ))
    }
}

#[tonic::async_trait]
impl pb::user_mfa_service_server::UserMfaService for MfaApi {
    async fn set_user_mfa_preference(
        &self,
        request: Request<pb::SetUserMfaPreferenceRequest>,
    ) -> Result<Response<pb::SetUserMfaPreferenceResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::SetUserMfaPreference {
            user: UserRef::AccessToken(AccessToken::new(Secret::new(r.access_token))),
            preference: convert::preference(
                r.sms_mfa_settings,
                r.software_token_mfa_settings,
                r.email_mfa_settings,
                r.web_authn_mfa_settings,
            ),
        };
        self.facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::SetUserMfaPreferenceResponse {}))
    }

    async fn admin_set_user_mfa_preference(
        &self,
        request: Request<pb::AdminSetUserMfaPreferenceRequest>,
    ) -> Result<Response<pb::AdminSetUserMfaPreferenceResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::SetUserMfaPreference {
            user: UserRef::Admin {
                user_pool_id: r.user_pool_id,
                username: r.username,
            },
            preference: convert::preference(
                r.sms_mfa_settings,
                r.software_token_mfa_settings,
                r.email_mfa_settings,
                r.web_authn_mfa_settings,
            ),
        };
        self.facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::AdminSetUserMfaPreferenceResponse {}))
    }

    async fn associate_software_token(
        &self,
        request: Request<pb::AssociateSoftwareTokenRequest>,
    ) -> Result<Response<pb::AssociateSoftwareTokenResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::AssociateSoftwareToken {
            access_token: r.access_token.map(|t| AccessToken::new(Secret::from(t))),
            session: r.session.map(Secret::from),
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::AssociateSoftwareTokenResponse {
            secret_code: out.secret_code.into_inner(),
            session: out.session.map(Secret::into_inner),
        }))
    }

    async fn verify_software_token(
        &self,
        request: Request<pb::VerifySoftwareTokenRequest>,
    ) -> Result<Response<pb::VerifySoftwareTokenResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::VerifySoftwareToken {
            access_token: r.access_token.map(|t| AccessToken::new(Secret::from(t))),
            session: r.session.map(Secret::from),
            user_code: Secret::new(r.user_code),
            friendly_device_name: r.friendly_device_name,
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::VerifySoftwareTokenResponse {
            status: convert::verify_status_to_pb(out.status) as i32,
            session: out.session.map(Secret::into_inner),
        }))
    }

    async fn get_user_mfa_settings(
        &self,
        request: Request<pb::GetUserMfaSettingsRequest>,
    ) -> Result<Response<pb::GetUserMfaSettingsResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::GetUserMfaSettings {
            user: UserRef::AccessToken(AccessToken::new(Secret::new(r.access_token))),
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(settings!(GetUserMfaSettingsResponse, out)))
    }

    async fn admin_get_user_mfa_settings(
        &self,
        request: Request<pb::AdminGetUserMfaSettingsRequest>,
    ) -> Result<Response<pb::AdminGetUserMfaSettingsResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::GetUserMfaSettings {
            user: UserRef::Admin {
                user_pool_id: r.user_pool_id,
                username: r.username,
            },
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(settings!(
            AdminGetUserMfaSettingsResponse,
            out
        )))
    }

    async fn admin_delete_software_token(
        &self,
        request: Request<pb::AdminDeleteSoftwareTokenRequest>,
    ) -> Result<Response<pb::AdminDeleteSoftwareTokenResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::AdminDeleteSoftwareToken {
            user_pool_id: r.user_pool_id,
            username: r.username,
        };
        self.facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::AdminDeleteSoftwareTokenResponse {}))
    }

    async fn get_user_auth_factors(
        &self,
        request: Request<pb::GetUserAuthFactorsRequest>,
    ) -> Result<Response<pb::GetUserAuthFactorsResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::GetUserAuthFactors {
            user: UserRef::AccessToken(AccessToken::new(Secret::new(r.access_token))),
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(auth_factors!(
            GetUserAuthFactorsResponse,
            out
        )))
    }

    async fn admin_get_user_auth_factors(
        &self,
        request: Request<pb::AdminGetUserAuthFactorsRequest>,
    ) -> Result<Response<pb::AdminGetUserAuthFactorsResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::GetUserAuthFactors {
            user: UserRef::Admin {
                user_pool_id: r.user_pool_id,
                username: r.username,
            },
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(auth_factors!(
            AdminGetUserAuthFactorsResponse,
            out
        )))
    }

    async fn list_web_authn_credentials(
        &self,
        request: Request<pb::ListWebAuthnCredentialsRequest>,
    ) -> Result<Response<pb::ListWebAuthnCredentialsResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::ListWebAuthnCredentials {
            access_token: AccessToken::new(Secret::new(r.access_token)),
            next_token: r.next_token,
            max_results: r.max_results,
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::ListWebAuthnCredentialsResponse {
            credentials: out
                .credentials
                .into_iter()
                .map(convert::credential_to_pb)
                .collect(),
            next_token: out.next_token,
        }))
    }

    async fn delete_web_authn_credential(
        &self,
        request: Request<pb::DeleteWebAuthnCredentialRequest>,
    ) -> Result<Response<pb::DeleteWebAuthnCredentialResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::DeleteWebAuthnCredential {
            access_token: AccessToken::new(Secret::new(r.access_token)),
            credential_id: r.credential_id,
        };
        self.facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::DeleteWebAuthnCredentialResponse {}))
    }

    async fn admin_list_devices(
        &self,
        request: Request<pb::AdminListDevicesRequest>,
    ) -> Result<Response<pb::AdminListDevicesResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::ListDevices {
            user: UserRef::Admin {
                user_pool_id: r.user_pool_id,
                username: r.username,
            },
            limit: r.limit,
            pagination_token: r.pagination_token,
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        let (devices, pagination_token) = convert::devices_to_pb(out);
        Ok(Response::new(pb::AdminListDevicesResponse {
            devices,
            pagination_token,
        }))
    }

    async fn admin_get_device(
        &self,
        request: Request<pb::AdminGetDeviceRequest>,
    ) -> Result<Response<pb::AdminGetDeviceResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::AdminGetDevice {
            user_pool_id: r.user_pool_id,
            username: r.username,
            device_key: r.device_key,
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::AdminGetDeviceResponse {
            device: Some(convert::device_to_pb(out)),
        }))
    }

    async fn admin_forget_device(
        &self,
        request: Request<pb::AdminForgetDeviceRequest>,
    ) -> Result<Response<pb::AdminForgetDeviceResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::ForgetDevice {
            user: UserRef::Admin {
                user_pool_id: r.user_pool_id,
                username: r.username,
            },
            device_key: r.device_key,
        };
        self.facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::AdminForgetDeviceResponse {}))
    }

    async fn admin_update_device_status(
        &self,
        request: Request<pb::AdminUpdateDeviceStatusRequest>,
    ) -> Result<Response<pb::AdminUpdateDeviceStatusResponse>, Status> {
        let (ctx, r) = context(request);
        let mut violations = crate::domain::rules::Violations::default();
        let status = convert::device_status(
            &mut violations,
            "device_remembered_status",
            r.device_remembered_status,
        );
        let op = ops::AdminUpdateDeviceStatus {
            user_pool_id: r.user_pool_id,
            username: r.username,
            device_key: r.device_key,
            status,
        };
        self.facade
            .execute(&ctx, Decoded::new(op, violations))
            .await?;
        Ok(Response::new(pb::AdminUpdateDeviceStatusResponse {}))
    }

    async fn list_devices(
        &self,
        request: Request<pb::ListDevicesRequest>,
    ) -> Result<Response<pb::ListDevicesResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::ListDevices {
            user: UserRef::AccessToken(AccessToken::new(Secret::new(r.access_token))),
            limit: r.limit,
            pagination_token: r.pagination_token,
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        let (devices, pagination_token) = convert::devices_to_pb(out);
        Ok(Response::new(pb::ListDevicesResponse {
            devices,
            pagination_token,
        }))
    }

    async fn forget_device(
        &self,
        request: Request<pb::ForgetDeviceRequest>,
    ) -> Result<Response<pb::ForgetDeviceResponse>, Status> {
        let (ctx, r) = context(request);
        // Optional in Cognito's model; the facade needs the user: an
        // unset token is the empty one, which the rules refuse.
        let op = ops::ForgetDevice {
            user: UserRef::AccessToken(AccessToken::new(Secret::new(
                r.access_token.unwrap_or_default(),
            ))),
            device_key: r.device_key,
        };
        self.facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::ForgetDeviceResponse {}))
    }

    async fn admin_user_global_sign_out(
        &self,
        request: Request<pb::AdminUserGlobalSignOutRequest>,
    ) -> Result<Response<pb::AdminUserGlobalSignOutResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::GlobalSignOut {
            user: UserRef::Admin {
                user_pool_id: r.user_pool_id,
                username: r.username,
            },
        };
        self.facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::AdminUserGlobalSignOutResponse {}))
    }

    async fn global_sign_out(
        &self,
        request: Request<pb::GlobalSignOutRequest>,
    ) -> Result<Response<pb::GlobalSignOutResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::GlobalSignOut {
            user: UserRef::AccessToken(AccessToken::new(Secret::new(r.access_token))),
        };
        self.facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::GlobalSignOutResponse {}))
    }

    async fn admin_update_user_attributes(
        &self,
        request: Request<pb::AdminUpdateUserAttributesRequest>,
    ) -> Result<Response<pb::AdminUpdateUserAttributesResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::AdminUpdateUserAttributes {
            user_pool_id: r.user_pool_id,
            username: r.username,
            attributes: convert::attributes(r.user_attributes),
            client_metadata: r.client_metadata.len(),
        };
        self.facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::AdminUpdateUserAttributesResponse {}))
    }

    async fn admin_reset_user_mfa(
        &self,
        request: Request<pb::AdminResetUserMfaRequest>,
    ) -> Result<Response<pb::AdminResetUserMfaResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::AdminResetUserMfa {
            user_pool_id: r.user_pool_id,
            username: r.username,
            validate_only: r.validate_only,
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(convert::reset_to_pb(out)))
    }

    async fn start_web_authn_registration(
        &self,
        request: Request<pb::StartWebAuthnRegistrationRequest>,
    ) -> Result<Response<pb::StartWebAuthnRegistrationResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::StartWebAuthnRegistration {
            access_token: AccessToken::new(Secret::new(r.access_token)),
        };
        let out = self
            .facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::StartWebAuthnRegistrationResponse {
            credential_creation_options: out.0.to_string(),
        }))
    }

    async fn complete_web_authn_registration(
        &self,
        request: Request<pb::CompleteWebAuthnRegistrationRequest>,
    ) -> Result<Response<pb::CompleteWebAuthnRegistrationResponse>, Status> {
        let (ctx, r) = context(request);
        let op = ops::CompleteWebAuthnRegistration {
            access_token: AccessToken::new(Secret::new(r.access_token)),
            credential: r.credential,
        };
        self.facade
            .execute(&ctx, Decoded::new(op, Default::default()))
            .await?;
        Ok(Response::new(pb::CompleteWebAuthnRegistrationResponse {}))
    }
}

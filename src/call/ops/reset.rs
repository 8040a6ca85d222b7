//! AdminResetUserMfa, the facade's own call: a user who lost a phone or a
//! security key made safe in one call, in a fixed order, each step
//! reported (the answer and the call's one audit record hold them all).
//!
//! 1. `read_factors`: AdminGetUserAuthFactors — what is enabled, preferred
//!    and registered.
//! 2. `turn_off_mfa`: AdminSetUserMFAPreference with every enabled factor
//!    off and not preferred (and passkey MFA off). Not needed when no factor
//!    is enabled (passkey MFA needs another factor, so none is left on).
//! 3. `delete_software_token`: AdminDeleteSoftwareToken when a TOTP app is
//!    registered.
//! 4. `forget_devices`: AdminListDevices, then AdminForgetDevice for each
//!    device, page after page (at most [`MAX_RESET_DEVICES`] a call).
//! 5. `sign_out`: AdminUserGlobalSignOut, always (the facade cannot see
//!    which tokens are live).
//! 6. `passkeys`: Cognito has no admin call to delete a passkey; reported
//!    when the user has one (ConfiguredUserAuthFactors WEB_AUTHN).
//!
//! A step Cognito refuses for the pool's state (INVALID_ARGUMENT or
//! FAILED_PRECONDITION: a factor that cannot be turned off under MFA ON,
//! say) is REFUSED with Cognito's message and the next steps still run;
//! any other failure ends the call with its error, the steps before it
//! done. Every step is idempotent (nothing to do: NOT_NEEDED), so a retry
//! finishes the job.

use serde::Serialize;
use tonic::Code;

use crate::backend::Backend;
use crate::domain::{
    AuthFactor, FactorSettings, MfaPreference, ResetOutcome, ResetReport, ResetStep, UserRef,
    WebAuthnMfaSettings,
    rules::{self, Violations},
};
use crate::error::{Error, Result};
use crate::limits::CognitoOp;
use crate::method::{self, Method};

use super::super::{Operation, Plan, Ran, Target, UpstreamCall};
use super::UserRequest;

/// The most devices one reset forgets; more remain for the next call (the
/// step's detail says so).
pub const MAX_RESET_DEVICES: usize = 1_000;

pub struct AdminResetUserMfa {
    pub user_pool_id: String,
    pub username: String,
    pub validate_only: bool,
}

/// Whether an error is Cognito refusing the step for the user's or the
/// pool's state (the reset goes on) rather than a failure (it stops).
fn refused(e: &Error) -> bool {
    matches!(e, Error::Cognito(_))
        && matches!(e.code(), Code::InvalidArgument | Code::FailedPrecondition)
}

/// A refusal's text for the report: Cognito's exception and message,
/// bounded.
fn refusal(e: &Error) -> String {
    crate::domain::text::truncate(&e.to_string(), 512).into_owned()
}

fn step(
    step: &'static str,
    outcome: ResetOutcome,
    detail: impl Into<String>,
    cognito_calls: Vec<&'static str>,
) -> ResetStep {
    ResetStep {
        step,
        outcome,
        detail: detail.into(),
        cognito_calls,
    }
}

impl AdminResetUserMfa {
    fn user(&self) -> UserRef {
        UserRef::Admin {
            user_pool_id: self.user_pool_id.clone(),
            username: self.username.clone(),
        }
    }

    fn call(&self, op: CognitoOp) -> UpstreamCall {
        self.target().call(op)
    }

    async fn forget_devices(
        &self,
        backend: &dyn Backend,
        plan: &Plan,
        user: &UserRef,
    ) -> Result<ResetStep> {
        let mut calls = vec![CognitoOp::AdminListDevices.name()];
        let mut token: Option<String> = None;
        let mut found = 0usize;
        let mut forgotten = 0usize;
        let mut pages = 0usize;
        loop {
            // The first page's quota was taken at admission.
            if pages > 0
                && let Some(p) = &plan.pacer
            {
                p.take(self.call(CognitoOp::AdminListDevices)).await;
                calls.push(CognitoOp::AdminListDevices.name());
            }
            pages = pages.saturating_add(1);
            let page = backend
                .list_devices(user, Some(rules::MAX_DEVICES_PAGE), token.as_deref())
                .await?;
            found = found.saturating_add(page.devices.len());
            if !self.validate_only {
                for d in &page.devices {
                    if forgotten == MAX_RESET_DEVICES {
                        break;
                    }
                    if forgotten > 0
                        && let Some(p) = &plan.pacer
                    {
                        p.take(self.call(CognitoOp::AdminForgetDevice)).await;
                    }
                    backend.forget_device(user, &d.device_key).await?;
                    calls.push(CognitoOp::AdminForgetDevice.name());
                    forgotten = forgotten.saturating_add(1);
                }
            }
            token = page.pagination_token;
            let capped =
                self.validate_only && found >= MAX_RESET_DEVICES || forgotten >= MAX_RESET_DEVICES;
            if token.is_none() || capped {
                break;
            }
        }
        // Forgetting shifts the pages: what is left after the last page
        // is told by the next call, not here.
        let more = token.is_some();
        Ok(if self.validate_only {
            if found == 0 {
                step(
                    "forget_devices",
                    ResetOutcome::NotNeeded,
                    "no devices",
                    calls,
                )
            } else {
                step(
                    "forget_devices",
                    ResetOutcome::Planned,
                    format!(
                        "would forget {found}{} device(s)",
                        if more { " or more" } else { "" }
                    ),
                    calls,
                )
            }
        } else if forgotten == 0 {
            step(
                "forget_devices",
                ResetOutcome::NotNeeded,
                "no devices",
                calls,
            )
        } else {
            let rest = if more {
                format!(
                    "; more remain ({MAX_RESET_DEVICES} is the most one reset forgets): call again"
                )
            } else {
                String::new()
            };
            step(
                "forget_devices",
                ResetOutcome::Done,
                format!("forgot {forgotten} device(s){rest}"),
                calls,
            )
        })
    }
}

impl Operation for AdminResetUserMfa {
    type Output = ResetReport;

    fn method(&self) -> &'static Method {
        &method::ADMIN_RESET_USER_MFA
    }

    fn target(&self) -> Target<'_> {
        Target::User {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
        }
    }

    /// The reads always; a real reset's writes once each (a second device
    /// or page is paced as the reset finds it, `Plan::pacer`).
    fn upstream(&self, _plan: &Plan) -> Vec<UpstreamCall> {
        let ops: &[CognitoOp] = if self.validate_only {
            &[
                CognitoOp::AdminGetUserAuthFactors,
                CognitoOp::AdminListDevices,
            ]
        } else {
            self.method().cognito
        };
        ops.iter().map(|op| self.call(*op)).collect()
    }

    fn dry_run(&self) -> bool {
        self.validate_only
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            #[serde(flatten)]
            user: UserRequest<'a>,
            validate_only: bool,
        }
        Request {
            user: UserRequest {
                user_pool_id: &self.user_pool_id,
                username: &self.username,
            },
            validate_only: self.validate_only,
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        rules::username(v, "username", &self.username);
    }

    async fn run(self, backend: &dyn Backend, plan: &Plan) -> Result<Ran<ResetReport>> {
        // The guardrails that name the reset, before any call.
        let findings = match &plan.guard {
            Some(g) => g.check_user(&self.user_pool_id, &self.username, self.validate_only)?,
            None => Vec::new(),
        };
        let user = self.user();
        let dry = self.validate_only;
        let mut steps = Vec::with_capacity(6);

        // 1. What the user has.
        let factors = backend.get_user_auth_factors(&user).await?;
        steps.push(step(
            "read_factors",
            ResetOutcome::Done,
            format!(
                "MFA enabled: [{}]; preferred: {}; registered: [{}]",
                factors.user_mfa_setting_list.join(", "),
                factors.preferred_mfa_setting.as_deref().unwrap_or("none"),
                factors
                    .configured_user_auth_factors
                    .iter()
                    .map(|f| f.cognito_name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            vec![CognitoOp::AdminGetUserAuthFactors.name()],
        ));

        // 2. Every MFA preference off.
        let off = Some(FactorSettings {
            enabled: Some(false),
            preferred_mfa: Some(false),
        });
        let on = |name: &str| factors.enables(name);
        let preference = MfaPreference {
            sms: on("SMS_MFA").then_some(off).flatten(),
            software_token: on("SOFTWARE_TOKEN_MFA").then_some(off).flatten(),
            email: on("EMAIL_OTP").then_some(off).flatten(),
            web_authn: Some(WebAuthnMfaSettings {
                enabled: Some(false),
            }),
        };
        let enabled = factors.user_mfa_setting_list.join(", ");
        steps.push(if factors.user_mfa_setting_list.is_empty() {
            step(
                "turn_off_mfa",
                ResetOutcome::NotNeeded,
                "no MFA factor is enabled",
                vec![],
            )
        } else if dry {
            step(
                "turn_off_mfa",
                ResetOutcome::Planned,
                format!("would turn off {enabled}"),
                vec![],
            )
        } else {
            let calls = vec![CognitoOp::AdminSetUserMfaPreference.name()];
            match backend.set_user_mfa_preference(&user, &preference).await {
                Ok(()) => step(
                    "turn_off_mfa",
                    ResetOutcome::Done,
                    format!("turned off {enabled}"),
                    calls,
                ),
                Err(e) if refused(&e) => {
                    step("turn_off_mfa", ResetOutcome::Refused, refusal(&e), calls)
                }
                Err(e) => return Err(e),
            }
        });

        // 3. The TOTP authenticator.
        steps.push(if !factors.has_totp_app() {
            step(
                "delete_software_token",
                ResetOutcome::NotNeeded,
                "no TOTP authenticator is registered",
                vec![],
            )
        } else if dry {
            step(
                "delete_software_token",
                ResetOutcome::Planned,
                "would delete the TOTP authenticator",
                vec![],
            )
        } else {
            let calls = vec![CognitoOp::AdminDeleteSoftwareToken.name()];
            match backend
                .admin_delete_software_token(&self.user_pool_id, &self.username)
                .await
            {
                Ok(()) => step(
                    "delete_software_token",
                    ResetOutcome::Done,
                    "deleted the TOTP authenticator",
                    calls,
                ),
                Err(e) if refused(&e) => step(
                    "delete_software_token",
                    ResetOutcome::Refused,
                    refusal(&e),
                    calls,
                ),
                Err(e) => return Err(e),
            }
        });

        // 4. Every tracked device.
        steps.push(self.forget_devices(backend, plan, &user).await?);

        // 5. Every session.
        steps.push(if dry {
            step(
                "sign_out",
                ResetOutcome::Planned,
                "would revoke every token issued to the user",
                vec![],
            )
        } else {
            backend.global_sign_out(&user).await?;
            step(
                "sign_out",
                ResetOutcome::Done,
                "revoked every token issued to the user",
                vec![CognitoOp::AdminUserGlobalSignOut.name()],
            )
        });

        // 6. Passkeys: no admin call deletes them.
        let passkeys_remain = factors
            .configured_user_auth_factors
            .contains(&AuthFactor::WebAuthn);
        steps.push(if passkeys_remain {
            step(
                "passkeys",
                ResetOutcome::NeedsUserToken,
                "the user has passkeys; Cognito has no administrator call to delete them: with the user's own access token, ListWebAuthnCredentials then DeleteWebAuthnCredential",
                vec![],
            )
        } else {
            step("passkeys", ResetOutcome::NotNeeded, "no passkeys", vec![])
        });

        Ok(Ran {
            output: ResetReport {
                steps,
                passkeys_remain,
            },
            change: None,
            findings,
            observed: None,
        })
    }
}

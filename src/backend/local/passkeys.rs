//! StartWebAuthnRegistration and CompleteWebAuthnRegistration on the local
//! backend: the user's own access token, the pool's rules (plan, first
//! factors, relying party), one challenge per user that expires and is
//! good once, and a real check of the registration ([`super::webauthn`]).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde_json::Value;

use crate::domain::{AccessToken, WebAuthnCredential};
use crate::error::Result;

use super::cognito_rules::{check_passkeys_allowed, cognito};
use super::fixtures::passkeys_full;
use super::store::Pool;
use super::webauthn::{self, CHALLENGE_SECONDS, Ceremony};
use super::{LocalBackend, random_bytes};

/// The relying party of the pool's passkeys: its WebAuthn configuration's,
/// else its domain (a prefix domain's host,
/// `<prefix>.auth.<region>.amazoncognito.com`); neither is
/// WebAuthnConfigurationMissingException.
fn relying_party(pool: &Pool) -> Result<String> {
    pool.mfa
        .web_authn
        .as_ref()
        .and_then(|w| w.relying_party_id.clone())
        .or_else(|| {
            pool.state
                .domain
                .as_ref()
                .map(|prefix| format!("{prefix}.auth.{}.amazoncognito.com", pool.region))
        })
        .ok_or_else(|| {
            cognito(
                "WebAuthnConfigurationMissingException",
                "The user pool has no WebAuthn relying party id and no domain",
            )
        })
}

impl LocalBackend {
    pub(super) async fn local_start_web_authn_registration(
        &self,
        token: &AccessToken,
    ) -> Result<Value> {
        let now = self.now();
        let challenge = random_bytes::<32>()?;
        let max = self.caps.max_web_authn_credentials;
        self.store
            .write(|data| {
                let target = Self::token_target(data, token.secret(), now)?;
                let pool = data.pool(&target.user_pool_id)?;
                check_passkeys_allowed(&pool)?;
                let rp = relying_party(&pool)?;
                let user = super::cognito_rules::user(data, &pool.id, &target.username)?;
                if user.web_authn_credentials.len() >= max {
                    return Err(passkeys_full(max));
                }
                data.put_challenge(
                    &pool.id,
                    &target.username,
                    &B64.encode(challenge),
                    now.saturating_add(CHALLENGE_SECONDS),
                )?;
                let ceremony = Ceremony {
                    relying_party_id: &rp,
                    user_verification: pool
                        .mfa
                        .web_authn
                        .as_ref()
                        .and_then(|w| w.user_verification),
                    challenge: &challenge,
                };
                let exclude: Vec<String> = user
                    .web_authn_credentials
                    .iter()
                    .map(|c| c.credential_id.clone())
                    .collect();
                Ok(webauthn::creation_options(
                    &ceremony,
                    &user.sub,
                    &user.username,
                    &exclude,
                ))
            })
            .await
    }

    pub(super) async fn local_complete_web_authn_registration(
        &self,
        token: &AccessToken,
        credential: &Value,
    ) -> Result<()> {
        let now = self.now();
        let max = self.caps.max_web_authn_credentials;
        // The challenge is spent whatever the outcome: a failed check
        // commits its removal and then answers the error.
        self.store
            .write(|data| {
                let target = Self::token_target(data, token.secret(), now)?;
                let pool = data.pool(&target.user_pool_id)?;
                check_passkeys_allowed(&pool)?;
                let rp = relying_party(&pool)?;
                let challenge = data
                    .take_challenge(&pool.id, &target.username)?
                    .filter(|(_, expires)| *expires > now)
                    .and_then(|(c, _)| B64.decode(c).ok())
                    .ok_or_else(|| {
                        cognito(
                            "WebAuthnChallengeNotFoundException",
                            "No registration is under way for the user, or it expired: call StartWebAuthnRegistration",
                        )
                    });
                let challenge = match challenge {
                    Ok(c) => c,
                    Err(e) => return Ok(Err(e)),
                };
                let ceremony = Ceremony {
                    relying_party_id: &rp,
                    user_verification: pool.mfa.web_authn.as_ref().and_then(|w| w.user_verification),
                    challenge: &challenge,
                };
                let registered = match webauthn::verify(&ceremony, credential) {
                    Ok(r) => r,
                    Err(e) => return Ok(Err(e)),
                };
                let mut user = super::cognito_rules::user(data, &pool.id, &target.username)?;
                if user
                    .web_authn_credentials
                    .iter()
                    .any(|c| c.credential_id == registered.credential_id)
                {
                    return Ok(Err(super::cognito_rules::invalid_parameter(
                        "The credential is already registered for the user",
                    )));
                }
                if user.web_authn_credentials.len() >= max {
                    return Ok(Err(passkeys_full(max)));
                }
                let name = match registered.authenticator_attachment.as_deref() {
                    Some("platform") => "Passkey on this device",
                    Some("cross-platform") => "Security key",
                    _ => "Passkey",
                };
                user.web_authn_credentials.push(WebAuthnCredential {
                    credential_id: registered.credential_id,
                    friendly_credential_name: name.to_owned(),
                    relying_party_id: rp.clone(),
                    authenticator_attachment: registered.authenticator_attachment,
                    authenticator_transports: registered.transports,
                    created_at_seconds: i64::try_from(now).unwrap_or(i64::MAX),
                    created_at_nanos: 0,
                });
                data.put_passkeys(&pool.id, &target.username, &user.web_authn_credentials)?;
                Ok(Ok(()))
            })
            .await?
    }
}

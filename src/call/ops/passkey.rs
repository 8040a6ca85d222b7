//! Passkey enrolment with the user's own access token:
//! StartWebAuthnRegistration and CompleteWebAuthnRegistration.

use serde::Serialize;

use crate::backend::Backend;
use crate::domain::{
    AccessToken,
    rules::{self, Violations},
};
use crate::error::{Error, Result};
use crate::method::{self, Method};

use super::super::{Operation, Plan, Ran, Target};

/// The credential creation options (JSON) StartWebAuthnRegistration
/// answers. A record shows the relying party and how many credentials are
/// excluded, not the single-use challenge.
pub struct CreationOptions(pub serde_json::Value);

impl Serialize for CreationOptions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            relying_party_id: Option<&'a str>,
            exclude_credentials: usize,
        }
        View {
            relying_party_id: self
                .0
                .get("rp")
                .and_then(|r| r.get("id"))
                .and_then(serde_json::Value::as_str),
            exclude_credentials: self
                .0
                .get("excludeCredentials")
                .and_then(serde_json::Value::as_array)
                .map_or(0, Vec::len),
        }
        .serialize(s)
    }
}

pub struct StartWebAuthnRegistration {
    pub access_token: AccessToken,
}

impl Operation for StartWebAuthnRegistration {
    type Output = CreationOptions;

    fn method(&self) -> &'static Method {
        &method::START_WEB_AUTHN_REGISTRATION
    }

    fn target(&self) -> Target<'_> {
        Target::Token(&self.access_token)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            access_token: &'a AccessToken,
        }
        Request {
            access_token: &self.access_token,
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::access_token(v, "access_token", self.access_token.secret());
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<CreationOptions>> {
        backend
            .start_web_authn_registration(&self.access_token)
            .await
            .map(|o| Ran::from(CreationOptions(o)))
    }
}

pub struct CompleteWebAuthnRegistration {
    pub access_token: AccessToken,
    /// The credential's JSON text, as the client sent it.
    pub credential: String,
}

impl CompleteWebAuthnRegistration {
    /// The credential's id as the client names it, bounded, for the record.
    fn credential_id(&self) -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&self.credential).ok()?;
        let id = v.get("id")?.as_str()?;
        Some(crate::domain::text::truncate(id, 256).into_owned())
    }
}

impl Operation for CompleteWebAuthnRegistration {
    type Output = ();

    fn method(&self) -> &'static Method {
        &method::COMPLETE_WEB_AUTHN_REGISTRATION
    }

    fn target(&self) -> Target<'_> {
        Target::Token(&self.access_token)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            access_token: &'a AccessToken,
            credential_id: Option<String>,
        }
        Request {
            access_token: &self.access_token,
            credential_id: self.credential_id(),
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::access_token(v, "access_token", self.access_token.secret());
        rules::web_authn_credential_json(v, "credential", &self.credential);
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<()>> {
        // validate() refused anything that is not a JSON object.
        let credential: serde_json::Value = serde_json::from_str(&self.credential)
            .map_err(|e| Error::Internal(format!("credential JSON after validation: {e}")))?;
        backend
            .complete_web_authn_registration(&self.access_token, &credential)
            .await
            .map(Ran::from)
    }
}

//! A user's MFA (`cognito.mfa.v1.UserMfaService`): preferences, TOTP
//! enrolment, settings, removing an authenticator.

use serde::Serialize;

use crate::backend::Backend;
use crate::domain::{
    AccessToken, AssociatedToken, CredentialsPage, MfaPreference, Secret, TokenAuth,
    TokenVerification, UserAuthFactors, UserMfaSettings, UserRef,
    rules::{self, Violations},
    secret,
};
use crate::error::{Error, Result};
use crate::method::{self, Method};

use super::super::{Operation, Plan, Ran, Target};

/// A user reference as records show it: the access token (its
/// fingerprint), or the pool and username.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum UserView<'a> {
    Token {
        access_token: &'a AccessToken,
    },
    Admin {
        user_pool_id: &'a str,
        #[serde(serialize_with = "secret::username")]
        username: &'a str,
    },
}

impl<'a> UserView<'a> {
    pub(super) fn of(user: &'a UserRef) -> Self {
        match user {
            UserRef::AccessToken(t) => UserView::Token { access_token: t },
            UserRef::Admin {
                user_pool_id,
                username,
            } => UserView::Admin {
                user_pool_id,
                username,
            },
        }
    }
}

/// The request of a read that names only its user (GetUserMfaSettings,
/// GetUserAuthFactors and their Admin forms).
#[derive(Serialize)]
struct UserOnly<'a> {
    user: UserView<'a>,
}

/// The request of a call about one named user.
#[derive(Serialize)]
pub(in crate::call) struct UserRequest<'a> {
    pub user_pool_id: &'a str,
    #[serde(serialize_with = "secret::username")]
    pub username: &'a str,
}

/// The method of a call that names its user by access token or as an
/// admin: the two rows of one operation.
pub(super) fn by_user(
    user: &UserRef,
    token: &'static Method,
    admin: &'static Method,
) -> &'static Method {
    match user {
        UserRef::AccessToken(_) => token,
        UserRef::Admin { .. } => admin,
    }
}

pub(super) fn user_ref(v: &mut Violations, user: &UserRef) {
    match user {
        UserRef::AccessToken(t) => rules::access_token(v, "access_token", t.secret()),
        UserRef::Admin {
            user_pool_id,
            username,
        } => {
            rules::user_pool_id(v, "user_pool_id", user_pool_id);
            rules::username(v, "username", username);
        }
    }
}

fn token_auth(access_token: Option<AccessToken>, session: Option<Secret>) -> Result<TokenAuth> {
    match (access_token, session) {
        (Some(t), None) => Ok(TokenAuth::AccessToken(t)),
        (None, Some(s)) => Ok(TokenAuth::Session(s)),
        // validate() refuses both and neither before run() is reached.
        _ => Err(Error::Internal(
            "token_auth called without exactly one credential".into(),
        )),
    }
}

/// SetUserMfaPreference (access token) and AdminSetUserMfaPreference (pool + username).
pub struct SetUserMfaPreference {
    pub user: UserRef,
    pub preference: MfaPreference,
}

impl Operation for SetUserMfaPreference {
    type Output = ();

    fn method(&self) -> &'static Method {
        by_user(
            &self.user,
            &method::SET_USER_MFA_PREFERENCE,
            &method::ADMIN_SET_USER_MFA_PREFERENCE,
        )
    }

    fn target(&self) -> Target<'_> {
        Target::of_user(&self.user)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            user: UserView<'a>,
            preference: &'a MfaPreference,
        }
        Request {
            user: UserView::of(&self.user),
            preference: &self.preference,
        }
    }

    fn validate(&self, v: &mut Violations) {
        user_ref(v, &self.user);
        rules::mfa_preference(v, &self.preference);
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<()>> {
        backend
            .set_user_mfa_preference(&self.user, &self.preference)
            .await
            .map(Ran::from)
    }
}

pub struct AssociateSoftwareToken {
    pub access_token: Option<AccessToken>,
    pub session: Option<Secret>,
}

impl Operation for AssociateSoftwareToken {
    type Output = AssociatedToken;

    fn method(&self) -> &'static Method {
        &method::ASSOCIATE_SOFTWARE_TOKEN
    }

    fn target(&self) -> Target<'_> {
        Target::TokenOrSession(self.access_token.as_ref(), self.session.as_ref())
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            access_token: Option<&'a AccessToken>,
            session: Option<&'a Secret>,
        }
        Request {
            access_token: self.access_token.as_ref(),
            session: self.session.as_ref(),
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::token_or_session(
            v,
            self.access_token.as_ref().map(AccessToken::secret),
            self.session.as_ref(),
        );
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<AssociatedToken>> {
        backend
            .associate_software_token(&token_auth(self.access_token, self.session)?)
            .await
            .map(Ran::from)
    }
}

pub struct VerifySoftwareToken {
    pub access_token: Option<AccessToken>,
    pub session: Option<Secret>,
    pub user_code: Secret,
    pub friendly_device_name: Option<String>,
}

impl Operation for VerifySoftwareToken {
    type Output = TokenVerification;

    fn method(&self) -> &'static Method {
        &method::VERIFY_SOFTWARE_TOKEN
    }

    fn target(&self) -> Target<'_> {
        Target::TokenOrSession(self.access_token.as_ref(), self.session.as_ref())
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            access_token: Option<&'a AccessToken>,
            session: Option<&'a Secret>,
            user_code: &'a Secret,
            friendly_device_name: Option<&'a str>,
        }
        Request {
            access_token: self.access_token.as_ref(),
            session: self.session.as_ref(),
            user_code: &self.user_code,
            friendly_device_name: self.friendly_device_name.as_deref(),
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::token_or_session(
            v,
            self.access_token.as_ref().map(AccessToken::secret),
            self.session.as_ref(),
        );
        rules::user_code(v, "user_code", &self.user_code);
        if let Some(name) = &self.friendly_device_name {
            rules::string(v, "friendly_device_name", name);
        }
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<TokenVerification>> {
        let auth = token_auth(self.access_token, self.session)?;
        backend
            .verify_software_token(&auth, &self.user_code, self.friendly_device_name.as_deref())
            .await
            .map(Ran::from)
    }
}

/// GetUserMfaSettings (access token) and AdminGetUserMfaSettings (pool + username).
pub struct GetUserMfaSettings {
    pub user: UserRef,
}

impl Operation for GetUserMfaSettings {
    type Output = UserMfaSettings;

    fn method(&self) -> &'static Method {
        by_user(
            &self.user,
            &method::GET_USER_MFA_SETTINGS,
            &method::ADMIN_GET_USER_MFA_SETTINGS,
        )
    }

    fn target(&self) -> Target<'_> {
        Target::of_user(&self.user)
    }

    fn audit_request(&self) -> impl Serialize {
        UserOnly {
            user: UserView::of(&self.user),
        }
    }

    fn validate(&self, v: &mut Violations) {
        user_ref(v, &self.user);
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<UserMfaSettings>> {
        backend
            .get_user_mfa_settings(&self.user)
            .await
            .map(Ran::from)
    }
}

pub struct AdminDeleteSoftwareToken {
    pub user_pool_id: String,
    pub username: String,
}

impl Operation for AdminDeleteSoftwareToken {
    type Output = ();

    fn method(&self) -> &'static Method {
        &method::ADMIN_DELETE_SOFTWARE_TOKEN
    }

    fn target(&self) -> Target<'_> {
        Target::User {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
        }
    }

    fn audit_request(&self) -> impl Serialize {
        UserRequest {
            user_pool_id: &self.user_pool_id,
            username: &self.username,
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::user_pool_id(v, "user_pool_id", &self.user_pool_id);
        rules::username(v, "username", &self.username);
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<()>> {
        backend
            .admin_delete_software_token(&self.user_pool_id, &self.username)
            .await
            .map(Ran::from)
    }
}

/// GetUserAuthFactors (access token) and AdminGetUserAuthFactors (pool + username).
pub struct GetUserAuthFactors {
    pub user: UserRef,
}

impl Operation for GetUserAuthFactors {
    type Output = UserAuthFactors;

    fn method(&self) -> &'static Method {
        by_user(
            &self.user,
            &method::GET_USER_AUTH_FACTORS,
            &method::ADMIN_GET_USER_AUTH_FACTORS,
        )
    }

    fn target(&self) -> Target<'_> {
        Target::of_user(&self.user)
    }

    fn audit_request(&self) -> impl Serialize {
        UserOnly {
            user: UserView::of(&self.user),
        }
    }

    fn validate(&self, v: &mut Violations) {
        user_ref(v, &self.user);
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<UserAuthFactors>> {
        backend
            .get_user_auth_factors(&self.user)
            .await
            .map(Ran::from)
    }
}

pub struct ListWebAuthnCredentials {
    pub access_token: AccessToken,
    pub next_token: Option<String>,
    pub max_results: Option<i32>,
}

impl Operation for ListWebAuthnCredentials {
    type Output = CredentialsPage;

    fn method(&self) -> &'static Method {
        &method::LIST_WEB_AUTHN_CREDENTIALS
    }

    fn target(&self) -> Target<'_> {
        Target::Token(&self.access_token)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            access_token: &'a AccessToken,
            next_token: Option<&'a str>,
            max_results: Option<i32>,
        }
        Request {
            access_token: &self.access_token,
            next_token: self.next_token.as_deref(),
            max_results: self.max_results,
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::access_token(v, "access_token", self.access_token.secret());
        if let Some(t) = &self.next_token {
            rules::pagination_token(v, "next_token", t);
        }
        rules::web_authn_max_results(v, "max_results", self.max_results);
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<CredentialsPage>> {
        backend
            .list_web_authn_credentials(
                &self.access_token,
                self.next_token.as_deref(),
                self.max_results,
            )
            .await
            .map(Ran::from)
    }
}

pub struct DeleteWebAuthnCredential {
    pub access_token: AccessToken,
    pub credential_id: String,
}

impl Operation for DeleteWebAuthnCredential {
    type Output = ();

    fn method(&self) -> &'static Method {
        &method::DELETE_WEB_AUTHN_CREDENTIAL
    }

    fn target(&self) -> Target<'_> {
        Target::Token(&self.access_token)
    }

    fn audit_request(&self) -> impl Serialize {
        #[derive(Serialize)]
        struct Request<'a> {
            access_token: &'a AccessToken,
            credential_id: &'a str,
        }
        Request {
            access_token: &self.access_token,
            credential_id: &self.credential_id,
        }
    }

    fn validate(&self, v: &mut Violations) {
        rules::access_token(v, "access_token", self.access_token.secret());
        rules::credential_id(v, "credential_id", &self.credential_id);
    }

    async fn run(self, backend: &dyn Backend, _: &Plan) -> Result<Ran<()>> {
        backend
            .delete_web_authn_credential(&self.access_token, &self.credential_id)
            .await
            .map(Ran::from)
    }
}

//! Plain Rust types for Cognito MFA, and the rules every input must pass.
//!
//! This is the hub of the crate: `api` converts proto messages into these
//! types and `backend::cognito` converts them into SDK builders. Nothing here
//! knows about protobuf or the AWS SDK.

pub mod device;
pub mod etag;
pub mod mask;
pub mod pool_state;
pub mod rules;
pub mod secret;
pub mod text;
pub mod token;
pub mod totp;

pub use device::{
    Device, DeviceStatus, DevicesPage, ResetOutcome, ResetReport, ResetStep, UserAttribute,
};
pub use pool_state::{AuthFactor, PoolState};
pub use secret::Secret;
use serde::{Deserialize, Serialize};
pub use token::AccessToken;

/// The Region of a user pool id, `<region>_<id>` (the whole id when it has
/// no `_`, which validation refuses before any call).
pub fn region_of(user_pool_id: &str) -> &str {
    user_pool_id
        .split_once('_')
        .map_or(user_pool_id, |(region, _)| region)
}

/// UserPoolMfaType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MfaMode {
    Off,
    On,
    Optional,
}

/// UserVerificationType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserVerification {
    Required,
    Preferred,
}

/// WebAuthnFactorConfigurationType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FactorConfiguration {
    SingleFactor,
    MultiFactorWithUserVerification,
}

/// The MFA configuration of a user pool: what GetUserPoolMfaConfig returns
/// and what SetUserPoolMfaConfig replaces as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolMfaConfig {
    pub sms: Option<SmsMfaConfig>,
    pub software_token: Option<SoftwareTokenMfaConfig>,
    pub email: Option<EmailMfaConfig>,
    pub mode: Option<MfaMode>,
    pub web_authn: Option<WebAuthnConfig>,
}

impl PoolMfaConfig {
    /// True when the request turns SMS, TOTP or email MFA on: what Cognito
    /// needs before it accepts ON or OPTIONAL.
    pub fn has_mfa_factor(&self) -> bool {
        self.sms.is_some() || self.totp_enabled() || self.email.is_some()
    }

    /// Whether TOTP (software token) MFA is on.
    pub fn totp_enabled(&self) -> bool {
        self.software_token
            .as_ref()
            .is_some_and(|t| t.enabled == Some(true))
    }
}

/// SmsMfaConfigType.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsMfaConfig {
    pub sms_authentication_message: Option<String>,
    pub sms_configuration: Option<SmsConfiguration>,
}

/// SmsConfigurationType.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsConfiguration {
    pub sns_caller_arn: Option<String>,
    #[serde(serialize_with = "secret::masked")]
    pub external_id: Option<Secret>,
    pub sns_region: Option<String>,
    pub eums_sms: Option<EumsSmsConfig>,
}

/// EumsSmsConfigurationType.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EumsSmsConfig {
    pub caller_arn: String,
    #[serde(serialize_with = "secret::masked")]
    pub external_id: Option<Secret>,
    pub origination_identity: Option<String>,
    pub configuration_set_name: Option<String>,
    pub in_entity_id: Option<String>,
    pub in_template_id: Option<String>,
    pub region: Option<String>,
}

/// SoftwareTokenMfaConfigType.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareTokenMfaConfig {
    pub enabled: Option<bool>,
}

/// EmailMfaConfigType.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailMfaConfig {
    pub message: Option<String>,
    pub subject: Option<String>,
}

/// WebAuthnConfigurationType.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAuthnConfig {
    pub relying_party_id: Option<String>,
    pub user_verification: Option<UserVerification>,
    pub factor_configuration: Option<FactorConfiguration>,
}

/// SMSMfaSettingsType, SoftwareTokenMfaSettingsType and EmailMfaSettingsType
/// share this shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorSettings {
    pub enabled: Option<bool>,
    pub preferred_mfa: Option<bool>,
}

/// WebAuthnMfaSettingsType: no preferred flag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAuthnMfaSettings {
    pub enabled: Option<bool>,
}

/// The settings blocks of Set/AdminSetUserMFAPreference. A block that is
/// `None` leaves that factor unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaPreference {
    pub sms: Option<FactorSettings>,
    pub software_token: Option<FactorSettings>,
    pub email: Option<FactorSettings>,
    pub web_authn: Option<WebAuthnMfaSettings>,
}

/// DeliveryMediumType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryMedium {
    Sms,
    Email,
}

/// MFAOptionType (legacy).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaOption {
    pub delivery_medium: Option<DeliveryMedium>,
    pub attribute_name: Option<String>,
}

/// The MFA fields of GetUser / AdminGetUser.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMfaSettings {
    #[serde(serialize_with = "secret::username")]
    pub username: String,
    pub preferred_mfa_setting: Option<String>,
    pub user_mfa_setting_list: Vec<String>,
    pub mfa_options: Vec<MfaOption>,
}

/// Who a user-level call is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserRef {
    /// The end user's own access token; Cognito finds the pool and user.
    AccessToken(AccessToken),
    /// An admin naming the user.
    Admin {
        user_pool_id: String,
        username: String,
    },
}

/// How a TOTP enrolment call proves the user: an access token or the session
/// of an MFA_SETUP challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenAuth {
    AccessToken(AccessToken),
    Session(Secret),
}

/// The answer of AssociateSoftwareToken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssociatedToken {
    pub secret_code: Secret,
    pub session: Option<Secret>,
}

/// VerifySoftwareTokenResponseType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum VerifyStatus {
    Success,
    Error,
}

/// The answer of VerifySoftwareToken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenVerification {
    pub status: Option<VerifyStatus>,
    pub session: Option<Secret>,
}

/// GetUserAuthFactors / AdminGetUserAuthFactors: the MFA settings, and
/// every factor the user has set up, enabled for MFA or not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UserAuthFactors {
    #[serde(serialize_with = "secret::username")]
    pub username: String,
    pub preferred_mfa_setting: Option<String>,
    pub user_mfa_setting_list: Vec<String>,
    pub configured_user_auth_factors: Vec<AuthFactor>,
}

impl UserAuthFactors {
    /// Whether UserMFASettingList holds `name` (SMS_MFA, EMAIL_OTP, ...).
    pub fn enables(&self, name: &str) -> bool {
        self.user_mfa_setting_list.iter().any(|f| f == name)
    }

    /// Whether the user has a TOTP app: enabled for MFA, or registered.
    pub fn has_totp_app(&self) -> bool {
        self.enables("SOFTWARE_TOKEN_MFA")
            || self
                .configured_user_auth_factors
                .contains(&AuthFactor::SoftwareToken)
    }
}

/// WebAuthnCredentialDescription: one of a user's passkeys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebAuthnCredential {
    pub credential_id: String,
    pub friendly_credential_name: String,
    pub relying_party_id: String,
    pub authenticator_attachment: Option<String>,
    pub authenticator_transports: Vec<String>,
    /// Seconds since the Unix epoch, and the nanoseconds past them.
    pub created_at_seconds: i64,
    pub created_at_nanos: u32,
}

/// One page of ListWebAuthnCredentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CredentialsPage {
    pub credentials: Vec<WebAuthnCredential>,
    pub next_token: Option<String>,
}

/// A user as ListUsers lists it: what the coverage walk needs of UserType.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedUser {
    pub username: String,
    pub sub: Option<String>,
    /// UserStatusType as Cognito names it (CONFIRMED, UNCONFIRMED, ...).
    pub status: Option<String>,
    pub enabled: bool,
    /// Whether the user has a phone_number attribute (only whether: the
    /// value is not kept).
    pub has_phone_number: bool,
    /// Whether the user has an email attribute.
    pub has_email: bool,
    /// Whether `email_verified` / `phone_number_verified` is "true": what
    /// password recovery by that channel needs.
    pub email_verified: bool,
    pub phone_number_verified: bool,
}

/// One page of ListUsers, and the token of the next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsersPage {
    pub users: Vec<ListedUser>,
    pub next: Option<String>,
}

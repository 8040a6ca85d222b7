//! Domain types <-> AWS SDK types, member for member. The SDK edge of the
//! crate: no SDK type leaves this module's parent.
//!
//! Two SDK facts shape this file: `SmsConfigurationType::sns_caller_arn` is a
//! plain `String` that the SDK always sends (`""` when unset), and every MFA
//! boolean is a plain `bool` that the SDK always sends (`false` when unset).
//! Both match Cognito's model defaults, so nothing changes meaning; on the way
//! back an empty ARN reads as "not set".

use aws_sdk_cognitoidentityprovider::types as sdk;

use crate::domain::{AuthFactor, Device, DeviceStatus, ListedUser, WebAuthnCredential};
use crate::domain::{
    DeliveryMedium, EmailMfaConfig, EumsSmsConfig, FactorConfiguration, FactorSettings, MfaMode,
    MfaOption, MfaPreference, PoolMfaConfig, PoolState, Secret, SmsConfiguration, SmsMfaConfig,
    SoftwareTokenMfaConfig, UserVerification, VerifyStatus, WebAuthnConfig, WebAuthnMfaSettings,
};
use crate::error::{Error, Result};

// ---- a user's factors, passkeys, and the users of a pool --------------------

/// ConfiguredUserAuthFactors: values this build does not know are dropped
/// (an SDK upgrade that adds one fails `sdk_parity` first).
pub fn auth_factors_from_sdk(factors: &[sdk::AuthFactorType]) -> Vec<AuthFactor> {
    factors
        .iter()
        .filter_map(|f| AuthFactor::from_cognito(f.as_str()))
        .collect()
}

pub fn credential_from_sdk(c: &sdk::WebAuthnCredentialDescription) -> WebAuthnCredential {
    WebAuthnCredential {
        credential_id: c.credential_id().to_owned(),
        friendly_credential_name: c.friendly_credential_name().to_owned(),
        relying_party_id: c.relying_party_id().to_owned(),
        authenticator_attachment: c.authenticator_attachment().map(str::to_owned),
        authenticator_transports: c.authenticator_transports().to_vec(),
        created_at_seconds: c.created_at().secs(),
        created_at_nanos: c.created_at().subsec_nanos(),
    }
}

pub fn device_from_sdk(d: &sdk::DeviceType) -> Device {
    Device {
        device_key: d.device_key().unwrap_or_default().to_owned(),
        attributes: d
            .device_attributes()
            .iter()
            .map(|a| (a.name().to_owned(), a.value().map(str::to_owned)))
            .collect(),
        created_at: d.device_create_date().map_or(0, |t| t.secs()),
        last_modified_at: d.device_last_modified_date().map_or(0, |t| t.secs()),
        last_authenticated_at: d.device_last_authenticated_date().map(|t| t.secs()),
    }
}

pub fn device_status_to_sdk(s: DeviceStatus) -> sdk::DeviceRememberedStatusType {
    match s {
        DeviceStatus::Remembered => sdk::DeviceRememberedStatusType::Remembered,
        DeviceStatus::NotRemembered => sdk::DeviceRememberedStatusType::NotRemembered,
    }
}

pub fn attribute_to_sdk(a: &crate::domain::UserAttribute) -> Result<sdk::AttributeType> {
    sdk::AttributeType::builder()
        .name(&a.name)
        .value(&a.value)
        .build()
        .map_err(|e| Error::Internal(format!("AttributeType: {e}")))
}

/// Cognito's Document (the WebAuthn options and credential) as JSON.
pub fn document_to_json(d: &aws_smithy_types::Document) -> serde_json::Value {
    use aws_smithy_types::{Document as D, Number as N};
    use serde_json::Value as V;
    match d {
        D::Object(m) => V::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), document_to_json(v)))
                .collect(),
        ),
        D::Array(a) => V::Array(a.iter().map(document_to_json).collect()),
        D::Number(N::PosInt(n)) => V::from(*n),
        D::Number(N::NegInt(n)) => V::from(*n),
        D::Number(N::Float(f)) => serde_json::Number::from_f64(*f).map_or(V::Null, V::Number),
        D::String(s) => V::String(s.clone()),
        D::Bool(b) => V::Bool(*b),
        D::Null => V::Null,
    }
}

/// JSON as Cognito's Document.
pub fn json_to_document(v: &serde_json::Value) -> aws_smithy_types::Document {
    use aws_smithy_types::{Document as D, Number as N};
    use serde_json::Value as V;
    match v {
        V::Object(m) => D::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), json_to_document(v)))
                .collect(),
        ),
        V::Array(a) => D::Array(a.iter().map(json_to_document).collect()),
        V::Number(n) => D::Number(match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => N::PosInt(u),
            (None, Some(i)) => N::NegInt(i),
            _ => N::Float(n.as_f64().unwrap_or(0.0)),
        }),
        V::String(s) => D::String(s.clone()),
        V::Bool(b) => D::Bool(*b),
        V::Null => D::Null,
    }
}

pub fn listed_user_from_sdk(u: &sdk::UserType) -> ListedUser {
    let attribute = |name: &str| {
        u.attributes()
            .iter()
            .find(|a| a.name() == name)
            .and_then(|a| a.value())
    };
    let set = |name: &str| attribute(name).is_some_and(|v| !v.is_empty());
    ListedUser {
        username: u.username().unwrap_or_default().to_owned(),
        sub: attribute("sub").map(str::to_owned),
        status: u.user_status().map(|s| s.as_str().to_owned()),
        enabled: u.enabled(),
        has_phone_number: set("phone_number"),
        has_email: set("email"),
        email_verified: attribute("email_verified") == Some("true"),
        phone_number_verified: attribute("phone_number_verified") == Some("true"),
    }
}

// ---- pool configuration: domain -> SDK -------------------------------------

pub fn mode_to_sdk(mode: MfaMode) -> sdk::UserPoolMfaType {
    match mode {
        MfaMode::Off => sdk::UserPoolMfaType::Off,
        MfaMode::On => sdk::UserPoolMfaType::On,
        MfaMode::Optional => sdk::UserPoolMfaType::Optional,
    }
}

pub fn sms_mfa_to_sdk(c: &SmsMfaConfig) -> Result<sdk::SmsMfaConfigType> {
    Ok(sdk::SmsMfaConfigType::builder()
        .set_sms_authentication_message(c.sms_authentication_message.clone())
        .set_sms_configuration(
            c.sms_configuration
                .as_ref()
                .map(sms_configuration_to_sdk)
                .transpose()?,
        )
        .build())
}

pub fn sms_configuration_to_sdk(c: &SmsConfiguration) -> Result<sdk::SmsConfigurationType> {
    Ok(sdk::SmsConfigurationType::builder()
        .set_sns_caller_arn(c.sns_caller_arn.clone())
        .set_external_id(c.external_id.as_ref().map(|s| s.expose().to_owned()))
        .set_sns_region(c.sns_region.clone())
        .set_eums_sms(c.eums_sms.as_ref().map(eums_to_sdk).transpose()?)
        .build())
}

pub fn eums_to_sdk(c: &EumsSmsConfig) -> Result<sdk::EumsSmsConfigurationType> {
    sdk::EumsSmsConfigurationType::builder()
        .caller_arn(c.caller_arn.clone())
        .set_external_id(c.external_id.as_ref().map(|s| s.expose().to_owned()))
        .set_origination_identity(c.origination_identity.clone())
        .set_configuration_set_name(c.configuration_set_name.clone())
        .set_in_entity_id(c.in_entity_id.clone())
        .set_in_template_id(c.in_template_id.clone())
        .set_region(c.region.clone())
        .build()
        .map_err(|e| Error::Internal(format!("building EumsSmsConfigurationType: {e}")))
}

pub fn software_token_to_sdk(c: &SoftwareTokenMfaConfig) -> sdk::SoftwareTokenMfaConfigType {
    sdk::SoftwareTokenMfaConfigType::builder()
        .set_enabled(c.enabled)
        .build()
}

pub fn email_to_sdk(c: &EmailMfaConfig) -> sdk::EmailMfaConfigType {
    sdk::EmailMfaConfigType::builder()
        .set_message(c.message.clone())
        .set_subject(c.subject.clone())
        .build()
}

pub fn web_authn_to_sdk(c: &WebAuthnConfig) -> sdk::WebAuthnConfigurationType {
    sdk::WebAuthnConfigurationType::builder()
        .set_relying_party_id(c.relying_party_id.clone())
        .set_user_verification(c.user_verification.map(|u| match u {
            UserVerification::Required => sdk::UserVerificationType::Required,
            UserVerification::Preferred => sdk::UserVerificationType::Preferred,
        }))
        .set_factor_configuration(c.factor_configuration.map(|f| match f {
            FactorConfiguration::SingleFactor => sdk::WebAuthnFactorConfigurationType::SingleFactor,
            FactorConfiguration::MultiFactorWithUserVerification => {
                sdk::WebAuthnFactorConfigurationType::MultiFactorWithUserVerification
            }
        }))
        .build()
}

// ---- pool configuration: SDK -> domain -------------------------------------

pub fn mode_from_sdk(m: &sdk::UserPoolMfaType) -> Option<MfaMode> {
    match m {
        sdk::UserPoolMfaType::Off => Some(MfaMode::Off),
        sdk::UserPoolMfaType::On => Some(MfaMode::On),
        sdk::UserPoolMfaType::Optional => Some(MfaMode::Optional),
        other => {
            crate::events::CognitoUnknownMfaMode {
                value: other.as_str(),
            }
            .emit();
            None
        }
    }
}

pub fn sms_mfa_from_sdk(c: &sdk::SmsMfaConfigType) -> SmsMfaConfig {
    SmsMfaConfig {
        sms_authentication_message: c.sms_authentication_message.clone(),
        sms_configuration: c.sms_configuration.as_ref().map(sms_configuration_from_sdk),
    }
}

pub fn sms_configuration_from_sdk(c: &sdk::SmsConfigurationType) -> SmsConfiguration {
    SmsConfiguration {
        sns_caller_arn: Some(c.sns_caller_arn.clone()).filter(|a| !a.is_empty()),
        external_id: c.external_id.clone().map(Secret::from),
        sns_region: c.sns_region.clone(),
        eums_sms: c.eums_sms.as_ref().map(eums_from_sdk),
    }
}

pub fn eums_from_sdk(c: &sdk::EumsSmsConfigurationType) -> EumsSmsConfig {
    EumsSmsConfig {
        caller_arn: c.caller_arn.clone(),
        external_id: c.external_id.clone().map(Secret::from),
        origination_identity: c.origination_identity.clone(),
        configuration_set_name: c.configuration_set_name.clone(),
        in_entity_id: c.in_entity_id.clone(),
        in_template_id: c.in_template_id.clone(),
        region: c.region.clone(),
    }
}

pub fn software_token_from_sdk(c: &sdk::SoftwareTokenMfaConfigType) -> SoftwareTokenMfaConfig {
    SoftwareTokenMfaConfig {
        enabled: Some(c.enabled),
    }
}

pub fn email_from_sdk(c: &sdk::EmailMfaConfigType) -> EmailMfaConfig {
    EmailMfaConfig {
        message: c.message.clone(),
        subject: c.subject.clone(),
    }
}

pub fn web_authn_from_sdk(c: &sdk::WebAuthnConfigurationType) -> WebAuthnConfig {
    WebAuthnConfig {
        relying_party_id: c.relying_party_id.clone(),
        user_verification: c.user_verification.as_ref().and_then(|u| match u {
            sdk::UserVerificationType::Required => Some(UserVerification::Required),
            sdk::UserVerificationType::Preferred => Some(UserVerification::Preferred),
            _ => None,
        }),
        factor_configuration: c.factor_configuration.as_ref().and_then(|f| match f {
            sdk::WebAuthnFactorConfigurationType::SingleFactor => {
                Some(FactorConfiguration::SingleFactor)
            }
            sdk::WebAuthnFactorConfigurationType::MultiFactorWithUserVerification => {
                Some(FactorConfiguration::MultiFactorWithUserVerification)
            }
            _ => None,
        }),
    }
}

/// The five members shared by GetUserPoolMfaConfigOutput and
/// SetUserPoolMfaConfigOutput.
pub fn pool_config_from_sdk(
    sms: Option<&sdk::SmsMfaConfigType>,
    software_token: Option<&sdk::SoftwareTokenMfaConfigType>,
    email: Option<&sdk::EmailMfaConfigType>,
    mode: Option<&sdk::UserPoolMfaType>,
    web_authn: Option<&sdk::WebAuthnConfigurationType>,
) -> PoolMfaConfig {
    PoolMfaConfig {
        sms: sms.map(sms_mfa_from_sdk),
        software_token: software_token.map(software_token_from_sdk),
        email: email.map(email_from_sdk),
        mode: mode.and_then(mode_from_sdk),
        web_authn: web_authn.map(web_authn_from_sdk),
    }
}

// ---- user settings ----------------------------------------------------------

/// DescribeUserPool's members that the pre-flight reads. Values this build
/// does not know (a new factor, a new plan) are left out, so no rule fires
/// on them.
pub fn pool_state_from_sdk(p: &sdk::UserPoolType) -> PoolState {
    use crate::domain::pool_state::{EmailSendingAccount, Recovery, Tier};
    let tier = p
        .user_pool_tier
        .as_ref()
        .and_then(|t| Tier::from_cognito(t.as_str()));
    let developer = EmailSendingAccount::Developer;
    let email_sending_account = match p
        .email_configuration
        .as_ref()
        .and_then(|e| e.email_sending_account.as_ref())
    {
        Some(a) if a.as_str() == developer.cognito_name() => developer,
        _ => EmailSendingAccount::CognitoDefault,
    };
    let first_auth_factors = p
        .policies
        .as_ref()
        .and_then(|p| p.sign_in_policy.as_ref())
        .and_then(|s| s.allowed_first_auth_factors.as_ref())
        .map(|factors| {
            factors
                .iter()
                .filter_map(|f| AuthFactor::from_cognito(f.as_str()))
                .filter(|f| *f != AuthFactor::SoftwareToken)
                .collect()
        })
        .unwrap_or_default();
    let mut mechanisms: Vec<&sdk::RecoveryOptionType> = p
        .account_recovery_setting
        .as_ref()
        .and_then(|a| a.recovery_mechanisms.as_ref())
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    mechanisms.sort_by_key(|m| m.priority);
    let recovery = mechanisms
        .iter()
        .filter_map(|m| Recovery::from_cognito(m.name.as_str()))
        .collect();
    PoolState {
        tier,
        mfa_configuration: p.mfa_configuration.as_ref().and_then(mode_from_sdk),
        sms_configuration: p.sms_configuration.as_ref().map(sms_configuration_from_sdk),
        sms_configuration_failure: p
            .sms_configuration_failure
            .clone()
            .filter(|f| !f.is_empty()),
        email_sending_account,
        email_configuration_failure: p
            .email_configuration_failure
            .clone()
            .filter(|f| !f.is_empty()),
        first_auth_factors,
        recovery,
        auto_verified_attributes: p
            .auto_verified_attributes()
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        domain: p
            .domain()
            .or(p.custom_domain())
            .filter(|d| !d.is_empty())
            .map(|d| crate::domain::text::truncate(d, 256).into_owned()),
    }
}

pub fn sms_settings_to_sdk(s: &FactorSettings) -> sdk::SmsMfaSettingsType {
    sdk::SmsMfaSettingsType::builder()
        .set_enabled(s.enabled)
        .set_preferred_mfa(s.preferred_mfa)
        .build()
}

pub fn software_token_settings_to_sdk(s: &FactorSettings) -> sdk::SoftwareTokenMfaSettingsType {
    sdk::SoftwareTokenMfaSettingsType::builder()
        .set_enabled(s.enabled)
        .set_preferred_mfa(s.preferred_mfa)
        .build()
}

pub fn email_settings_to_sdk(s: &FactorSettings) -> sdk::EmailMfaSettingsType {
    sdk::EmailMfaSettingsType::builder()
        .set_enabled(s.enabled)
        .set_preferred_mfa(s.preferred_mfa)
        .build()
}

pub fn web_authn_settings_to_sdk(s: &WebAuthnMfaSettings) -> sdk::WebAuthnMfaSettingsType {
    sdk::WebAuthnMfaSettingsType::builder()
        .set_enabled(s.enabled)
        .build()
}

/// The four settings blocks of a preference, as the SDK wants them.
pub struct SdkPreference {
    pub sms: Option<sdk::SmsMfaSettingsType>,
    pub software_token: Option<sdk::SoftwareTokenMfaSettingsType>,
    pub email: Option<sdk::EmailMfaSettingsType>,
    pub web_authn: Option<sdk::WebAuthnMfaSettingsType>,
}

pub fn preference_to_sdk(p: &MfaPreference) -> SdkPreference {
    SdkPreference {
        sms: p.sms.as_ref().map(sms_settings_to_sdk),
        software_token: p
            .software_token
            .as_ref()
            .map(software_token_settings_to_sdk),
        email: p.email.as_ref().map(email_settings_to_sdk),
        web_authn: p.web_authn.as_ref().map(web_authn_settings_to_sdk),
    }
}

pub fn mfa_option_from_sdk(o: &sdk::MfaOptionType) -> MfaOption {
    MfaOption {
        delivery_medium: o.delivery_medium.as_ref().and_then(|d| match d {
            sdk::DeliveryMediumType::Sms => Some(DeliveryMedium::Sms),
            sdk::DeliveryMediumType::Email => Some(DeliveryMedium::Email),
            _ => None,
        }),
        attribute_name: o.attribute_name.clone(),
    }
}

/// PreferredMfaSetting: some endpoints (moto) send "" for "none preferred";
/// Cognito omits the member. Both mean no preferred factor.
pub fn preferred_from_sdk(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_owned)
}

pub fn verify_status_from_sdk(s: &sdk::VerifySoftwareTokenResponseType) -> Option<VerifyStatus> {
    match s {
        sdk::VerifySoftwareTokenResponseType::Success => Some(VerifyStatus::Success),
        sdk::VerifySoftwareTokenResponseType::Error => Some(VerifyStatus::Error),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! Round trips with every member set: a member that a conversion drops
    //! fails its test.
    use super::*;

    /// ListUsers' attributes: present and non-empty, and verified only
    /// when the flag is the string "true" (Cognito's attribute values are
    /// strings).
    #[test]
    fn a_listed_user_reads_its_channels_and_their_verified_flags() {
        let attribute = |name: &str, value: &str| {
            sdk::AttributeType::builder()
                .name(name)
                .value(value)
                .build()
                .expect("name is set")
        };
        let user = sdk::UserType::builder()
            .username("u")
            .enabled(true)
            .attributes(attribute("sub", "s-1"))
            .attributes(attribute("phone_number", "+15555550100"))
            .attributes(attribute("phone_number_verified", "true"))
            .attributes(attribute("email", ""))
            .attributes(attribute("email_verified", "false"))
            .build();
        let listed = listed_user_from_sdk(&user);
        assert_eq!(listed.sub.as_deref(), Some("s-1"));
        assert!(listed.has_phone_number && listed.phone_number_verified);
        assert!(!listed.has_email && !listed.email_verified);
    }

    fn full_sms() -> SmsMfaConfig {
        SmsMfaConfig {
            sms_authentication_message: Some("Code {####}".into()),
            sms_configuration: Some(SmsConfiguration {
                sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                external_id: Some(Secret::new("external-id")),
                sns_region: Some("us-east-1".into()),
                eums_sms: Some(full_eums()),
            }),
        }
    }

    fn full_eums() -> EumsSmsConfig {
        EumsSmsConfig {
            caller_arn: "arn:aws:iam::123456789012:role/eums".into(),
            external_id: Some(Secret::new("eums-external")),
            origination_identity: Some("+15555550100".into()),
            configuration_set_name: Some("set".into()),
            in_entity_id: Some("entity".into()),
            in_template_id: Some("template".into()),
            region: Some("ap-south-1".into()),
        }
    }

    #[test]
    fn mode_round_trip() {
        for m in [MfaMode::Off, MfaMode::On, MfaMode::Optional] {
            assert_eq!(mode_from_sdk(&mode_to_sdk(m)), Some(m));
        }
        assert_eq!(
            mode_from_sdk(&sdk::UserPoolMfaType::from("SOMETIMES")),
            None
        );
    }

    #[test]
    fn sms_mfa_config_round_trip() {
        let c = full_sms();
        assert_eq!(sms_mfa_from_sdk(&sms_mfa_to_sdk(&c).unwrap()), c);
    }

    #[test]
    fn sms_configuration_round_trip_and_empty_arn() {
        let c = full_sms().sms_configuration.unwrap();
        assert_eq!(
            sms_configuration_from_sdk(&sms_configuration_to_sdk(&c).unwrap()),
            c
        );
        let eums_only = SmsConfiguration {
            eums_sms: Some(full_eums()),
            ..Default::default()
        };
        let sdk_conf = sms_configuration_to_sdk(&eums_only).unwrap();
        assert_eq!(
            sdk_conf.sns_caller_arn, "",
            "the SDK always sends the member"
        );
        assert_eq!(sms_configuration_from_sdk(&sdk_conf), eums_only);
    }

    #[test]
    fn eums_round_trip() {
        let c = full_eums();
        assert_eq!(eums_from_sdk(&eums_to_sdk(&c).unwrap()), c);
    }

    #[test]
    fn software_token_email_web_authn_round_trip() {
        for enabled in [true, false] {
            let t = SoftwareTokenMfaConfig {
                enabled: Some(enabled),
            };
            assert_eq!(software_token_from_sdk(&software_token_to_sdk(&t)), t);
        }
        let e = EmailMfaConfig {
            message: Some("Code {####}".into()),
            subject: Some("Subject".into()),
        };
        assert_eq!(email_from_sdk(&email_to_sdk(&e)), e);
        for (uv, fc) in [
            (
                UserVerification::Required,
                FactorConfiguration::MultiFactorWithUserVerification,
            ),
            (
                UserVerification::Preferred,
                FactorConfiguration::SingleFactor,
            ),
        ] {
            let w = WebAuthnConfig {
                relying_party_id: Some("auth.example.com".into()),
                user_verification: Some(uv),
                factor_configuration: Some(fc),
            };
            assert_eq!(web_authn_from_sdk(&web_authn_to_sdk(&w)), w);
        }
    }

    #[test]
    fn settings_blocks_carry_both_flags() {
        let s = FactorSettings {
            enabled: Some(true),
            preferred_mfa: Some(true),
        };
        let p = preference_to_sdk(&MfaPreference {
            sms: Some(s),
            software_token: Some(s),
            email: Some(s),
            web_authn: Some(WebAuthnMfaSettings {
                enabled: Some(true),
            }),
        });
        let sms = p.sms.unwrap();
        let totp = p.software_token.unwrap();
        let email = p.email.unwrap();
        assert!(sms.enabled && sms.preferred_mfa);
        assert!(totp.enabled && totp.preferred_mfa);
        assert!(email.enabled && email.preferred_mfa);
        assert!(p.web_authn.unwrap().enabled);
        let none = preference_to_sdk(&MfaPreference::default());
        assert!(
            none.sms.is_none()
                && none.software_token.is_none()
                && none.email.is_none()
                && none.web_authn.is_none()
        );
    }

    #[test]
    fn mfa_option_and_verify_status() {
        let o = sdk::MfaOptionType::builder()
            .delivery_medium(sdk::DeliveryMediumType::Sms)
            .attribute_name("phone_number")
            .build();
        assert_eq!(
            mfa_option_from_sdk(&o),
            MfaOption {
                delivery_medium: Some(DeliveryMedium::Sms),
                attribute_name: Some("phone_number".into())
            }
        );
        assert_eq!(
            verify_status_from_sdk(&sdk::VerifySoftwareTokenResponseType::Success),
            Some(VerifyStatus::Success)
        );
        assert_eq!(
            verify_status_from_sdk(&sdk::VerifySoftwareTokenResponseType::Error),
            Some(VerifyStatus::Error)
        );
    }
}

//! Proto <-> domain, member for member. The proto edge of the crate: no
//! generated type goes further in than this module's parent.

use crate::domain::{
    DeliveryMedium, EmailMfaConfig, EumsSmsConfig, FactorConfiguration, FactorSettings, MfaMode,
    MfaOption, MfaPreference, PoolMfaConfig, Secret, SmsConfiguration, SmsMfaConfig,
    SoftwareTokenMfaConfig, UserMfaSettings, UserVerification, VerifyStatus, WebAuthnConfig,
    WebAuthnMfaSettings, rules::Violations,
};
use crate::proto::v1 as pb;

/// Collects what decoding finds wrong: enum numbers this version does not know.
#[derive(Default)]
pub struct Decoder {
    pub violations: Violations,
}

fn field(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

impl Decoder {
    /// A timestamp as microseconds since the epoch: from 1970 on, nanos
    /// within a second.
    pub fn micros(&mut self, name: &str, t: prost_types::Timestamp) -> Option<u64> {
        let micros = u64::try_from(t.seconds)
            .ok()
            .filter(|_| (0..1_000_000_000).contains(&t.nanos))
            .and_then(|s| s.checked_mul(1_000_000))
            .and_then(|m| m.checked_add(u64::try_from(t.nanos / 1_000).ok()?));
        if micros.is_none() {
            self.violations.add(
                name,
                "must be a time from 1970 on, with nanos from 0 to 999,999,999",
            );
        }
        micros
    }

    fn unknown_enum(&mut self, field: String, raw: i32) {
        self.violations
            .add(field, format!("unknown enum value {raw}"));
    }

    pub fn mode(&mut self, field: String, raw: i32) -> Option<MfaMode> {
        match pb::MfaConfiguration::try_from(raw) {
            Ok(pb::MfaConfiguration::Unspecified) => None,
            Ok(pb::MfaConfiguration::Off) => Some(MfaMode::Off),
            Ok(pb::MfaConfiguration::On) => Some(MfaMode::On),
            Ok(pb::MfaConfiguration::Optional) => Some(MfaMode::Optional),
            Err(_) => {
                self.unknown_enum(field, raw);
                None
            }
        }
    }

    /// The five configuration members, wherever they sit in a request.
    pub fn pool_config(
        &mut self,
        prefix: &str,
        sms: Option<pb::SmsMfaConfig>,
        software_token: Option<pb::SoftwareTokenMfaConfig>,
        email: Option<pb::EmailMfaConfig>,
        mode: i32,
        web_authn: Option<pb::WebAuthnConfiguration>,
    ) -> PoolMfaConfig {
        PoolMfaConfig {
            sms: sms.map(sms_from_pb),
            software_token: software_token.map(|t| SoftwareTokenMfaConfig { enabled: t.enabled }),
            email: email.map(|e| EmailMfaConfig {
                message: e.message,
                subject: e.subject,
            }),
            mode: self.mode(field(prefix, "mfa_configuration"), mode),
            web_authn: web_authn
                .map(|w| self.web_authn(&field(prefix, "web_authn_configuration"), w)),
        }
    }

    pub fn user_pool_mfa_config(
        &mut self,
        prefix: &str,
        c: pb::UserPoolMfaConfig,
    ) -> PoolMfaConfig {
        self.pool_config(
            prefix,
            c.sms_mfa_configuration,
            c.software_token_mfa_configuration,
            c.email_mfa_configuration,
            c.mfa_configuration,
            c.web_authn_configuration,
        )
    }

    fn web_authn(&mut self, prefix: &str, w: pb::WebAuthnConfiguration) -> WebAuthnConfig {
        let user_verification = match pb::UserVerification::try_from(w.user_verification) {
            Ok(pb::UserVerification::Unspecified) => None,
            Ok(pb::UserVerification::Required) => Some(UserVerification::Required),
            Ok(pb::UserVerification::Preferred) => Some(UserVerification::Preferred),
            Err(_) => {
                self.unknown_enum(field(prefix, "user_verification"), w.user_verification);
                None
            }
        };
        let factor_configuration =
            match pb::WebAuthnFactorConfiguration::try_from(w.factor_configuration) {
                Ok(pb::WebAuthnFactorConfiguration::Unspecified) => None,
                Ok(pb::WebAuthnFactorConfiguration::SingleFactor) => {
                    Some(FactorConfiguration::SingleFactor)
                }
                Ok(pb::WebAuthnFactorConfiguration::MultiFactorWithUserVerification) => {
                    Some(FactorConfiguration::MultiFactorWithUserVerification)
                }
                Err(_) => {
                    self.unknown_enum(
                        field(prefix, "factor_configuration"),
                        w.factor_configuration,
                    );
                    None
                }
            };
        WebAuthnConfig {
            relying_party_id: w.relying_party_id,
            user_verification,
            factor_configuration,
        }
    }
}

fn sms_from_pb(s: pb::SmsMfaConfig) -> SmsMfaConfig {
    SmsMfaConfig {
        sms_authentication_message: s.sms_authentication_message,
        sms_configuration: s.sms_configuration.map(|c| SmsConfiguration {
            sns_caller_arn: c.sns_caller_arn,
            external_id: c.external_id.map(Secret::from),
            sns_region: c.sns_region,
            eums_sms: c.eums_sms.map(|e| EumsSmsConfig {
                caller_arn: e.caller_arn,
                external_id: e.external_id.map(Secret::from),
                origination_identity: e.origination_identity,
                configuration_set_name: e.configuration_set_name,
                in_entity_id: e.in_entity_id,
                in_template_id: e.in_template_id,
                region: e.region,
            }),
        }),
    }
}

pub fn factor_settings(enabled: Option<bool>, preferred_mfa: Option<bool>) -> FactorSettings {
    FactorSettings {
        enabled,
        preferred_mfa,
    }
}

pub fn preference(
    sms: Option<pb::SmsMfaSettings>,
    software_token: Option<pb::SoftwareTokenMfaSettings>,
    email: Option<pb::EmailMfaSettings>,
    web_authn: Option<pb::WebAuthnMfaSettings>,
) -> MfaPreference {
    MfaPreference {
        sms: sms.map(|s| factor_settings(s.enabled, s.preferred_mfa)),
        software_token: software_token.map(|s| factor_settings(s.enabled, s.preferred_mfa)),
        email: email.map(|s| factor_settings(s.enabled, s.preferred_mfa)),
        web_authn: web_authn.map(|w| WebAuthnMfaSettings { enabled: w.enabled }),
    }
}

// ---- domain -> proto ---------------------------------------------------------

pub fn mode_to_pb(m: Option<MfaMode>) -> pb::MfaConfiguration {
    match m {
        None => pb::MfaConfiguration::Unspecified,
        Some(MfaMode::Off) => pb::MfaConfiguration::Off,
        Some(MfaMode::On) => pb::MfaConfiguration::On,
        Some(MfaMode::Optional) => pb::MfaConfiguration::Optional,
    }
}

pub fn sms_to_pb(s: SmsMfaConfig) -> pb::SmsMfaConfig {
    pb::SmsMfaConfig {
        sms_authentication_message: s.sms_authentication_message,
        sms_configuration: s.sms_configuration.map(|c| pb::SmsConfiguration {
            sns_caller_arn: c.sns_caller_arn,
            external_id: c.external_id.map(Secret::into_inner),
            sns_region: c.sns_region,
            eums_sms: c.eums_sms.map(|e| pb::EumsSmsConfiguration {
                caller_arn: e.caller_arn,
                external_id: e.external_id.map(Secret::into_inner),
                origination_identity: e.origination_identity,
                configuration_set_name: e.configuration_set_name,
                in_entity_id: e.in_entity_id,
                in_template_id: e.in_template_id,
                region: e.region,
            }),
        }),
    }
}

pub fn web_authn_to_pb(w: WebAuthnConfig) -> pb::WebAuthnConfiguration {
    pb::WebAuthnConfiguration {
        relying_party_id: w.relying_party_id,
        user_verification: match w.user_verification {
            None => pb::UserVerification::Unspecified,
            Some(UserVerification::Required) => pb::UserVerification::Required,
            Some(UserVerification::Preferred) => pb::UserVerification::Preferred,
        } as i32,
        factor_configuration: match w.factor_configuration {
            None => pb::WebAuthnFactorConfiguration::Unspecified,
            Some(FactorConfiguration::SingleFactor) => {
                pb::WebAuthnFactorConfiguration::SingleFactor
            }
            Some(FactorConfiguration::MultiFactorWithUserVerification) => {
                pb::WebAuthnFactorConfiguration::MultiFactorWithUserVerification
            }
        } as i32,
    }
}

pub fn pool_config_to_pb(c: PoolMfaConfig) -> pb::UserPoolMfaConfig {
    pb::UserPoolMfaConfig {
        sms_mfa_configuration: c.sms.map(sms_to_pb),
        software_token_mfa_configuration: c
            .software_token
            .map(|t| pb::SoftwareTokenMfaConfig { enabled: t.enabled }),
        email_mfa_configuration: c.email.map(|e| pb::EmailMfaConfig {
            message: e.message,
            subject: e.subject,
        }),
        mfa_configuration: mode_to_pb(c.mode) as i32,
        web_authn_configuration: c.web_authn.map(web_authn_to_pb),
    }
}

pub fn check_report_to_pb(r: crate::call::ops::CheckReport) -> pb::CheckUserPoolMfaConfigResponse {
    use crate::call::ops::FindingKind as K;
    use pb::check_finding::Kind;
    pb::CheckUserPoolMfaConfigResponse {
        allowed: r.allowed,
        findings: r
            .findings
            .into_iter()
            .map(|f| pb::CheckFinding {
                kind: match f.kind {
                    K::InvalidArgument => Kind::InvalidArgument,
                    K::PoolState => Kind::PoolState,
                    K::Advice => Kind::Advice,
                    K::GuardrailDeny => Kind::GuardrailDeny,
                    K::GuardrailWarn => Kind::GuardrailWarn,
                    K::GuardrailAudit => Kind::GuardrailAudit,
                } as i32,
                rule: f.rule,
                subject: f.subject,
                description: f.description,
            })
            .collect(),
        before: Some(pool_config_to_pb(r.before.config)),
        etag: r.before.etag,
        after: Some(pool_config_to_pb(r.after)),
        changed_fields: r.changed_fields,
    }
}

pub fn mfa_option_to_pb(o: MfaOption) -> pb::MfaOption {
    pb::MfaOption {
        delivery_medium: match o.delivery_medium {
            None => pb::DeliveryMedium::Unspecified,
            Some(DeliveryMedium::Sms) => pb::DeliveryMedium::Sms,
            Some(DeliveryMedium::Email) => pb::DeliveryMedium::Email,
        } as i32,
        attribute_name: o.attribute_name,
    }
}

pub fn verify_status_to_pb(s: Option<VerifyStatus>) -> pb::VerifySoftwareTokenStatus {
    match s {
        None => pb::VerifySoftwareTokenStatus::Unspecified,
        Some(VerifyStatus::Success) => pb::VerifySoftwareTokenStatus::Success,
        Some(VerifyStatus::Error) => pb::VerifySoftwareTokenStatus::Error,
    }
}

/// The fields shared by GetUserMfaSettingsResponse and AdminGetUserMfaSettingsResponse.
pub struct SettingsParts {
    pub username: String,
    pub preferred_mfa_setting: Option<String>,
    pub user_mfa_setting_list: Vec<String>,
    pub mfa_options: Vec<pb::MfaOption>,
}

pub fn settings_parts(s: UserMfaSettings) -> SettingsParts {
    SettingsParts {
        username: s.username,
        preferred_mfa_setting: s.preferred_mfa_setting,
        user_mfa_setting_list: s.user_mfa_setting_list,
        mfa_options: s.mfa_options.into_iter().map(mfa_option_to_pb).collect(),
    }
}

pub fn auth_factor_to_pb(f: crate::domain::AuthFactor) -> pb::AuthFactorType {
    use crate::domain::AuthFactor as F;
    match f {
        F::Password => pb::AuthFactorType::Password,
        F::EmailOtp => pb::AuthFactorType::EmailOtp,
        F::SmsOtp => pb::AuthFactorType::SmsOtp,
        F::WebAuthn => pb::AuthFactorType::WebAuthn,
        F::SoftwareToken => pb::AuthFactorType::SoftwareToken,
    }
}

pub fn credential_to_pb(c: crate::domain::WebAuthnCredential) -> pb::WebAuthnCredentialDescription {
    pb::WebAuthnCredentialDescription {
        credential_id: c.credential_id,
        friendly_credential_name: c.friendly_credential_name,
        relying_party_id: c.relying_party_id,
        authenticator_attachment: c.authenticator_attachment,
        authenticator_transports: c.authenticator_transports,
        created_at: Some(prost_types::Timestamp {
            seconds: c.created_at_seconds,
            nanos: i32::try_from(c.created_at_nanos).unwrap_or(0),
        }),
    }
}

pub fn history_page_to_pb(
    page: crate::call::ops::HistoryPage,
) -> pb::ListUserPoolMfaConfigHistoryResponse {
    pb::ListUserPoolMfaConfigHistoryResponse {
        revisions: page
            .revisions
            .into_iter()
            .map(|r| pb::MfaConfigRevision {
                revision: r.revision,
                config: Some(pool_config_to_pb(r.config)),
                external_id_set: r.external_id_set,
                etag: r.etag,
                time: Some(prost_types::Timestamp {
                    seconds: i64::try_from(r.micros / 1_000_000).unwrap_or(i64::MAX),
                    nanos: i32::try_from((r.micros % 1_000_000) * 1_000).unwrap_or(0),
                }),
                external: r.external,
                method: r.method,
                principal: r.principal,
                proven_by: r.proven_by,
                request_id: r.request_id,
                changed_fields: r.changed_fields,
                restored_from: r.restored_from,
                audit: Some(pb::AuditPosition {
                    source: r.source,
                    run: r.run,
                    seq: r.seq,
                    hash: r.hash,
                }),
            })
            .collect(),
        next_page_token: page.next_page_token,
    }
}

fn timestamp(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

pub fn device_to_pb(d: crate::domain::Device) -> pb::Device {
    pb::Device {
        device_key: d.device_key,
        device_attributes: d
            .attributes
            .into_iter()
            .map(|(name, value)| pb::Attribute { name, value })
            .collect(),
        device_create_date: Some(timestamp(d.created_at)),
        device_last_modified_date: Some(timestamp(d.last_modified_at)),
        device_last_authenticated_date: d.last_authenticated_at.map(timestamp),
    }
}

pub fn devices_to_pb(page: crate::domain::DevicesPage) -> (Vec<pb::Device>, Option<String>) {
    (
        page.devices.into_iter().map(device_to_pb).collect(),
        page.pagination_token,
    )
}

/// DeviceRememberedStatusType; unset (0) is `None`, an unknown value is a
/// violation of `field`.
pub fn device_status(
    v: &mut Violations,
    field: &str,
    value: i32,
) -> Option<crate::domain::DeviceStatus> {
    use crate::domain::DeviceStatus;
    match pb::DeviceRememberedStatus::try_from(value) {
        Ok(pb::DeviceRememberedStatus::Unspecified) => None,
        Ok(pb::DeviceRememberedStatus::Remembered) => Some(DeviceStatus::Remembered),
        Ok(pb::DeviceRememberedStatus::NotRemembered) => Some(DeviceStatus::NotRemembered),
        Err(_) => {
            v.add(
                field,
                format!("unknown DeviceRememberedStatus value {value}"),
            );
            None
        }
    }
}

/// Attributes as sent: a value that is not set is the empty string, which
/// the rules then refuse for every attribute the facade sets.
pub fn attributes(list: Vec<pb::Attribute>) -> Vec<crate::domain::UserAttribute> {
    list.into_iter()
        .map(|a| crate::domain::UserAttribute {
            name: a.name,
            value: a.value.unwrap_or_default(),
        })
        .collect()
}

pub fn reset_to_pb(r: crate::domain::ResetReport) -> pb::AdminResetUserMfaResponse {
    use crate::domain::ResetOutcome as O;
    pb::AdminResetUserMfaResponse {
        steps: r
            .steps
            .into_iter()
            .map(|s| pb::ResetStep {
                step: s.step.to_owned(),
                outcome: match s.outcome {
                    O::Done => pb::ResetOutcome::Done,
                    O::NotNeeded => pb::ResetOutcome::NotNeeded,
                    O::Planned => pb::ResetOutcome::Planned,
                    O::Refused => pb::ResetOutcome::Refused,
                    O::NeedsUserToken => pb::ResetOutcome::NeedsUserToken,
                } as i32,
                detail: s.detail,
                cognito_calls: s.cognito_calls.into_iter().map(str::to_owned).collect(),
            })
            .collect(),
        passkeys_remain: r.passkeys_remain,
    }
}

pub fn walk_item_to_pb(item: crate::call::walk::WalkItem) -> pb::ListUserMfaStatusResponse {
    use crate::call::walk::{IfOn, WalkItem};
    use pb::list_user_mfa_status_response::Item;
    let item = match item {
        WalkItem::User(u) => Item::User(pb::UserMfaStatus {
            index: u.index,
            username: u.username.unwrap_or_default(),
            sub: u.sub,
            user_status: u.user_status,
            enabled: u.enabled,
            preferred_mfa_setting: u.preferred_mfa_setting,
            user_mfa_setting_list: u.user_mfa_setting_list,
            page_token: u.page_token,
            configured_user_auth_factors: u
                .configured_user_auth_factors
                .into_iter()
                .map(str::to_owned)
                .collect(),
            if_mfa_on: match u.if_on {
                None => pb::IfMfaOn::Unspecified,
                Some(IfOn::Prompted) => pb::IfMfaOn::Prompted,
                Some(IfOn::Setup) => pb::IfMfaOn::Setup,
                Some(IfOn::CannotSignIn) => pb::IfMfaOn::CannotSignIn,
            } as i32,
            has_phone_number: u.has_phone_number,
            has_email: u.has_email,
            loses_recovery_if_on: u.loses_recovery_if_on,
        }),
        WalkItem::Summary(c) => Item::Summary(pb::UserMfaCoverage {
            users: c.users,
            enabled_factors: c.enabled_factors.into_iter().collect(),
            preferred_factors: c.preferred_factors.into_iter().collect(),
            without_mfa: c.without_mfa,
            setup_required_if_on: c.setup_required_if_on,
            disabled: c.disabled,
            vanished: c.vanished,
            configured_factors: c.configured_factors.into_iter().collect(),
            prompted_if_on: c.prompted_if_on,
            cannot_sign_in_if_on: c.cannot_sign_in_if_on,
            recovery_lost_if_on: c.recovery_lost_if_on,
        }),
    };
    pb::ListUserMfaStatusResponse { item: Some(item) }
}

#[cfg(test)]
mod tests {
    //! proto -> domain -> proto with every member set: nothing may be dropped.
    use super::*;

    fn full() -> pb::UserPoolMfaConfig {
        pb::UserPoolMfaConfig {
            sms_mfa_configuration: Some(pb::SmsMfaConfig {
                sms_authentication_message: Some("Code {####}".into()),
                sms_configuration: Some(pb::SmsConfiguration {
                    sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                    external_id: Some("ext".into()),
                    sns_region: Some("us-east-1".into()),
                    eums_sms: Some(pb::EumsSmsConfiguration {
                        caller_arn: "arn:aws:iam::123456789012:role/eums".into(),
                        external_id: Some("eums-ext".into()),
                        origination_identity: Some("+15555550100".into()),
                        configuration_set_name: Some("set".into()),
                        in_entity_id: Some("entity".into()),
                        in_template_id: Some("template".into()),
                        region: Some("ap-south-1".into()),
                    }),
                }),
            }),
            software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                enabled: Some(true),
            }),
            email_mfa_configuration: Some(pb::EmailMfaConfig {
                message: Some("Code {####}".into()),
                subject: Some("Subject".into()),
            }),
            mfa_configuration: pb::MfaConfiguration::Optional as i32,
            web_authn_configuration: Some(pb::WebAuthnConfiguration {
                relying_party_id: Some("auth.example.com".into()),
                user_verification: pb::UserVerification::Required as i32,
                factor_configuration:
                    pb::WebAuthnFactorConfiguration::MultiFactorWithUserVerification as i32,
            }),
        }
    }

    #[test]
    fn pool_config_round_trip() {
        let mut d = Decoder::default();
        let domain = d.user_pool_mfa_config("", full());
        assert!(d.violations.is_empty());
        assert_eq!(pool_config_to_pb(domain), full());
        let mut d = Decoder::default();
        let empty = d.user_pool_mfa_config("", pb::UserPoolMfaConfig::default());
        assert_eq!(empty, PoolMfaConfig::default());
        assert_eq!(pool_config_to_pb(empty), pb::UserPoolMfaConfig::default());
    }

    #[test]
    fn every_enum_value_round_trips() {
        for m in [
            pb::MfaConfiguration::Unspecified,
            pb::MfaConfiguration::Off,
            pb::MfaConfiguration::On,
            pb::MfaConfiguration::Optional,
        ] {
            let mut d = Decoder::default();
            assert_eq!(mode_to_pb(d.mode("m".into(), m as i32)), m);
        }
        let mut c = full();
        c.web_authn_configuration = Some(pb::WebAuthnConfiguration {
            relying_party_id: None,
            user_verification: pb::UserVerification::Preferred as i32,
            factor_configuration: pb::WebAuthnFactorConfiguration::SingleFactor as i32,
        });
        let mut d = Decoder::default();
        assert_eq!(pool_config_to_pb(d.user_pool_mfa_config("", c.clone())), c);
        assert_eq!(
            mfa_option_to_pb(MfaOption {
                delivery_medium: Some(DeliveryMedium::Email),
                attribute_name: None
            })
            .delivery_medium,
            pb::DeliveryMedium::Email as i32
        );
        assert_eq!(
            verify_status_to_pb(Some(VerifyStatus::Error)),
            pb::VerifySoftwareTokenStatus::Error
        );
    }

    #[test]
    fn unknown_enum_numbers_are_named() {
        let mut c = full();
        c.mfa_configuration = 9;
        c.web_authn_configuration
            .as_mut()
            .unwrap()
            .factor_configuration = 7;
        let mut d = Decoder::default();
        d.user_pool_mfa_config("config", c);
        let fields: Vec<_> = d
            .violations
            .into_vec()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "config.mfa_configuration",
                "config.web_authn_configuration.factor_configuration"
            ]
        );
    }

    #[test]
    fn preference_keeps_absent_blocks_absent() {
        let p = preference(
            Some(pb::SmsMfaSettings {
                enabled: Some(true),
                preferred_mfa: None,
            }),
            None,
            Some(pb::EmailMfaSettings {
                enabled: Some(false),
                preferred_mfa: Some(false),
            }),
            Some(pb::WebAuthnMfaSettings {
                enabled: Some(true),
            }),
        );
        assert_eq!(
            p.sms,
            Some(FactorSettings {
                enabled: Some(true),
                preferred_mfa: None
            })
        );
        assert_eq!(p.software_token, None);
        assert_eq!(
            p.email,
            Some(FactorSettings {
                enabled: Some(false),
                preferred_mfa: Some(false)
            })
        );
        assert_eq!(
            p.web_authn,
            Some(WebAuthnMfaSettings {
                enabled: Some(true)
            })
        );
    }
}

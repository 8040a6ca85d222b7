//! The proto mirrors every MFA member of the pinned SDK: each member of each
//! SDK shape (read from the SDK's own Smithy schemas) must be a field of the
//! matching proto message, named in snake_case, and each SDK enum value must
//! be a value of the matching proto enum. An SDK upgrade that adds a member
//! fails here until the proto has it.

use aws_sdk_cognitoidentityprovider::{operation as op, types as t};
use aws_smithy_schema::Schema;
use mfa_facade::proto::FILE_DESCRIPTOR_SET;
use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};

/// Cognito member name -> proto field name: `SMSMfaSettings` ->
/// `sms_mfa_settings`, `UserMFASettingList` -> `user_mfa_setting_list`.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn descriptors() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set")
}

fn message(set: &FileDescriptorSet, name: &str) -> DescriptorProto {
    set.file
        .iter()
        .filter(|f| f.package() == "cognito.mfa.v1")
        .flat_map(|f| f.message_type.iter())
        .find(|m| m.name() == name)
        .cloned()
        .unwrap_or_else(|| panic!("proto message cognito.mfa.v1.{name} is missing"))
}

fn enumeration(set: &FileDescriptorSet, name: &str) -> EnumDescriptorProto {
    set.file
        .iter()
        .flat_map(|f| f.enum_type.iter())
        .find(|e| e.name() == name)
        .cloned()
        .unwrap_or_else(|| panic!("proto enum {name} is missing"))
}

#[test]
fn snake_case_follows_the_design_examples() {
    assert_eq!(snake_case("UserPoolId"), "user_pool_id");
    assert_eq!(snake_case("SmsMfaConfiguration"), "sms_mfa_configuration");
    assert_eq!(snake_case("SMSMfaSettings"), "sms_mfa_settings");
    assert_eq!(
        snake_case("WebAuthnConfiguration"),
        "web_authn_configuration"
    );
    assert_eq!(snake_case("UserMFASettingList"), "user_mfa_setting_list");
    assert_eq!(snake_case("MFAOptions"), "mfa_options");
}

#[test]
fn every_sdk_member_has_its_proto_field() {
    // (SDK shape, proto message, SDK members that are deliberately not MFA fields)
    let pairs: &[(&Schema<'static>, &str, &[&str])] = &[
        (
            op::get_user_pool_mfa_config::GetUserPoolMfaConfigInput::SCHEMA,
            "GetUserPoolMfaConfigRequest",
            &[],
        ),
        (
            op::get_user_pool_mfa_config::GetUserPoolMfaConfigOutput::SCHEMA,
            "GetUserPoolMfaConfigResponse",
            &[],
        ),
        (
            op::set_user_pool_mfa_config::SetUserPoolMfaConfigInput::SCHEMA,
            "SetUserPoolMfaConfigRequest",
            &[],
        ),
        (
            op::set_user_pool_mfa_config::SetUserPoolMfaConfigOutput::SCHEMA,
            "SetUserPoolMfaConfigResponse",
            &[],
        ),
        (
            op::set_user_pool_mfa_config::SetUserPoolMfaConfigOutput::SCHEMA,
            "UserPoolMfaConfig",
            &[],
        ),
        (
            op::set_user_mfa_preference::SetUserMfaPreferenceInput::SCHEMA,
            "SetUserMfaPreferenceRequest",
            &[],
        ),
        (
            op::admin_set_user_mfa_preference::AdminSetUserMfaPreferenceInput::SCHEMA,
            "AdminSetUserMfaPreferenceRequest",
            &[],
        ),
        (
            op::associate_software_token::AssociateSoftwareTokenInput::SCHEMA,
            "AssociateSoftwareTokenRequest",
            &[],
        ),
        (
            op::associate_software_token::AssociateSoftwareTokenOutput::SCHEMA,
            "AssociateSoftwareTokenResponse",
            &[],
        ),
        (
            op::verify_software_token::VerifySoftwareTokenInput::SCHEMA,
            "VerifySoftwareTokenRequest",
            &[],
        ),
        (
            op::verify_software_token::VerifySoftwareTokenOutput::SCHEMA,
            "VerifySoftwareTokenResponse",
            &[],
        ),
        (
            op::get_user::GetUserInput::SCHEMA,
            "GetUserMfaSettingsRequest",
            &[],
        ),
        (
            op::get_user::GetUserOutput::SCHEMA,
            "GetUserMfaSettingsResponse",
            &["UserAttributes"],
        ),
        (
            op::admin_get_user::AdminGetUserInput::SCHEMA,
            "AdminGetUserMfaSettingsRequest",
            &[],
        ),
        (
            op::admin_get_user::AdminGetUserOutput::SCHEMA,
            "AdminGetUserMfaSettingsResponse",
            &[
                "UserAttributes",
                "UserCreateDate",
                "UserLastModifiedDate",
                "Enabled",
                "UserStatus",
            ],
        ),
        (
            op::admin_delete_software_token::AdminDeleteSoftwareTokenInput::SCHEMA,
            "AdminDeleteSoftwareTokenRequest",
            &[],
        ),
        (
            op::get_user_auth_factors::GetUserAuthFactorsInput::SCHEMA,
            "GetUserAuthFactorsRequest",
            &[],
        ),
        (
            op::get_user_auth_factors::GetUserAuthFactorsOutput::SCHEMA,
            "GetUserAuthFactorsResponse",
            &[],
        ),
        (
            op::admin_get_user_auth_factors::AdminGetUserAuthFactorsInput::SCHEMA,
            "AdminGetUserAuthFactorsRequest",
            &[],
        ),
        (
            op::admin_get_user_auth_factors::AdminGetUserAuthFactorsOutput::SCHEMA,
            "AdminGetUserAuthFactorsResponse",
            &[],
        ),
        (
            op::list_web_authn_credentials::ListWebAuthnCredentialsInput::SCHEMA,
            "ListWebAuthnCredentialsRequest",
            &[],
        ),
        (
            op::list_web_authn_credentials::ListWebAuthnCredentialsOutput::SCHEMA,
            "ListWebAuthnCredentialsResponse",
            &[],
        ),
        (
            op::delete_web_authn_credential::DeleteWebAuthnCredentialInput::SCHEMA,
            "DeleteWebAuthnCredentialRequest",
            &[],
        ),
        (
            t::WebAuthnCredentialDescription::SCHEMA,
            "WebAuthnCredentialDescription",
            &[],
        ),
        // The coverage walk pages ListUsers itself (60 a page, the sub
        // only); its page_token is its own cursor, not ListUsers' token.
        (
            op::list_users::ListUsersInput::SCHEMA,
            "ListUserMfaStatusRequest",
            &["AttributesToGet", "Limit", "PaginationToken"],
        ),
        // One user of the walk: ListUsers' UserType and AdminGetUser's MFA
        // members (attributes and dates are not MFA; MFAOptions is legacy).
        (
            t::UserType::SCHEMA,
            "UserMfaStatus",
            &[
                "Attributes",
                "UserCreateDate",
                "UserLastModifiedDate",
                "MFAOptions",
            ],
        ),
        (
            op::admin_get_user::AdminGetUserOutput::SCHEMA,
            "UserMfaStatus",
            &[
                "UserAttributes",
                "UserCreateDate",
                "UserLastModifiedDate",
                "MFAOptions",
            ],
        ),
        // Issue 35: devices, sessions, the attributes MFA needs.
        (
            op::admin_list_devices::AdminListDevicesInput::SCHEMA,
            "AdminListDevicesRequest",
            &[],
        ),
        (
            op::admin_list_devices::AdminListDevicesOutput::SCHEMA,
            "AdminListDevicesResponse",
            &[],
        ),
        (
            op::admin_get_device::AdminGetDeviceInput::SCHEMA,
            "AdminGetDeviceRequest",
            &[],
        ),
        (
            op::admin_get_device::AdminGetDeviceOutput::SCHEMA,
            "AdminGetDeviceResponse",
            &[],
        ),
        (
            op::admin_forget_device::AdminForgetDeviceInput::SCHEMA,
            "AdminForgetDeviceRequest",
            &[],
        ),
        (
            op::admin_update_device_status::AdminUpdateDeviceStatusInput::SCHEMA,
            "AdminUpdateDeviceStatusRequest",
            &[],
        ),
        (
            op::list_devices::ListDevicesInput::SCHEMA,
            "ListDevicesRequest",
            &[],
        ),
        (
            op::list_devices::ListDevicesOutput::SCHEMA,
            "ListDevicesResponse",
            &[],
        ),
        (
            op::forget_device::ForgetDeviceInput::SCHEMA,
            "ForgetDeviceRequest",
            &[],
        ),
        (
            op::admin_user_global_sign_out::AdminUserGlobalSignOutInput::SCHEMA,
            "AdminUserGlobalSignOutRequest",
            &[],
        ),
        (
            op::global_sign_out::GlobalSignOutInput::SCHEMA,
            "GlobalSignOutRequest",
            &[],
        ),
        (
            op::admin_update_user_attributes::AdminUpdateUserAttributesInput::SCHEMA,
            "AdminUpdateUserAttributesRequest",
            &[],
        ),
        (
            op::start_web_authn_registration::StartWebAuthnRegistrationInput::SCHEMA,
            "StartWebAuthnRegistrationRequest",
            &[],
        ),
        (
            op::start_web_authn_registration::StartWebAuthnRegistrationOutput::SCHEMA,
            "StartWebAuthnRegistrationResponse",
            &[],
        ),
        (
            op::complete_web_authn_registration::CompleteWebAuthnRegistrationInput::SCHEMA,
            "CompleteWebAuthnRegistrationRequest",
            &[],
        ),
        (t::DeviceType::SCHEMA, "Device", &[]),
        (t::AttributeType::SCHEMA, "Attribute", &[]),
        (t::SmsMfaConfigType::SCHEMA, "SmsMfaConfig", &[]),
        (t::SmsConfigurationType::SCHEMA, "SmsConfiguration", &[]),
        (
            t::EumsSmsConfigurationType::SCHEMA,
            "EumsSmsConfiguration",
            &[],
        ),
        (
            t::SoftwareTokenMfaConfigType::SCHEMA,
            "SoftwareTokenMfaConfig",
            &[],
        ),
        (t::EmailMfaConfigType::SCHEMA, "EmailMfaConfig", &[]),
        (
            t::WebAuthnConfigurationType::SCHEMA,
            "WebAuthnConfiguration",
            &[],
        ),
        (t::SmsMfaSettingsType::SCHEMA, "SmsMfaSettings", &[]),
        (
            t::SoftwareTokenMfaSettingsType::SCHEMA,
            "SoftwareTokenMfaSettings",
            &[],
        ),
        (t::EmailMfaSettingsType::SCHEMA, "EmailMfaSettings", &[]),
        (
            t::WebAuthnMfaSettingsType::SCHEMA,
            "WebAuthnMfaSettings",
            &[],
        ),
        (t::MfaOptionType::SCHEMA, "MfaOption", &[]),
    ];
    let set = descriptors();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (schema, proto, not_mfa) in pairs {
        let fields: Vec<String> = message(&set, proto)
            .field
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        assert!(
            !schema.members().is_empty(),
            "{proto}: the SDK schema has no members"
        );
        for member in schema.members() {
            let name = member.member_name().expect("member name");
            if not_mfa.contains(&name) {
                continue;
            }
            checked += 1;
            if !fields.contains(&snake_case(name)) {
                missing.push(format!("{proto}.{} (SDK member {name})", snake_case(name)));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "SDK members the proto lacks: {missing:#?}"
    );
    assert!(checked >= 60, "only {checked} members checked");
}

#[test]
fn every_sdk_enum_value_has_its_proto_value() {
    let pairs: &[(&[&str], &str, &str)] = &[
        (
            t::UserPoolMfaType::values(),
            "MfaConfiguration",
            "MFA_CONFIGURATION_",
        ),
        (
            t::UserVerificationType::values(),
            "UserVerification",
            "USER_VERIFICATION_",
        ),
        (
            t::WebAuthnFactorConfigurationType::values(),
            "WebAuthnFactorConfiguration",
            "WEB_AUTHN_FACTOR_CONFIGURATION_",
        ),
        (
            t::DeliveryMediumType::values(),
            "DeliveryMedium",
            "DELIVERY_MEDIUM_",
        ),
        (
            t::VerifySoftwareTokenResponseType::values(),
            "VerifySoftwareTokenStatus",
            "VERIFY_SOFTWARE_TOKEN_STATUS_",
        ),
        (
            t::AuthFactorType::values(),
            "AuthFactorType",
            "AUTH_FACTOR_TYPE_",
        ),
        (
            t::DeviceRememberedStatusType::values(),
            "DeviceRememberedStatus",
            "DEVICE_REMEMBERED_STATUS_",
        ),
    ];
    let set = descriptors();
    for (values, proto, prefix) in pairs {
        let names: Vec<String> = enumeration(&set, proto)
            .value
            .iter()
            .map(|v| v.name().to_owned())
            .collect();
        assert_eq!(
            names[0],
            format!("{prefix}UNSPECIFIED"),
            "{proto}: zero value"
        );
        for value in *values {
            let expected = format!("{prefix}{}", value.to_ascii_uppercase());
            assert!(
                names.contains(&expected),
                "{proto} lacks {expected} (SDK value {value})"
            );
        }
        assert_eq!(
            names.len(),
            values.len() + 1,
            "{proto} has values the SDK does not"
        );
    }
}

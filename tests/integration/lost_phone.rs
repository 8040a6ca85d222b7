//! Issue 35: a lost phone in one call. On the local backend the whole
//! story — a user with TOTP, SMS, a remembered device and a passkey; the
//! reset; the device forgotten, the old token refused, TOTP and SMS off,
//! the passkey named as the user's to delete; a new TOTP and a new passkey
//! — and the device calls with Cognito's rules. Against a scripted Cognito
//! (the stub), the reset's requests in their fixed order, a refused step
//! that does not stop the rest, and every device call's request and answer
//! (moto 5.2.5 has no device call and no AdminGetUserAuthFactors).

use crate::common;

use common::stub::{Reply, Stub};
use common::{Stack, now};
use mfa_facade::config::BackendConfig;
use mfa_facade::domain::totp;
use mfa_facade::proto::dev::v1 as dev;
use mfa_facade::proto::v1::{self as pb, user_mfa_service_client::UserMfaServiceClient};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

const RP: &str = "auth.example.com";

/// A pool with SMS, TOTP and passkeys (as a first factor and for MFA
/// configuration), MFA optional.
async fn pool(s: &Stack) -> String {
    let pool = s
        .local_fixtures()
        .create_user_pool(dev::CreateUserPoolRequest {
            pool_name: "lost-phone".into(),
            allowed_first_auth_factors: vec![
                dev::AuthFactor::Password as i32,
                dev::AuthFactor::WebAuthn as i32,
            ],
            ..Default::default()
        })
        .await
        .expect("pool")
        .into_inner()
        .user_pool_id;
    s.set_config(
        &pool,
        pb::SetUserPoolMfaConfigRequest {
            sms_mfa_configuration: Some(pb::SmsMfaConfig {
                sms_authentication_message: Some("Your code is {####}".into()),
                sms_configuration: Some(pb::SmsConfiguration {
                    sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                    external_id: Some("lost-phone-external".into()),
                    sns_region: Some("us-east-1".into()),
                    ..Default::default()
                }),
            }),
            software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                enabled: Some(true),
            }),
            web_authn_configuration: Some(pb::WebAuthnConfiguration {
                relying_party_id: Some(RP.into()),
                ..Default::default()
            }),
            mfa_configuration: pb::MfaConfiguration::Optional as i32,
            ..Default::default()
        },
    )
    .await
    .expect("config");
    pool
}

fn admin_list(pool: &str, user: &str) -> pb::AdminListDevicesRequest {
    pb::AdminListDevicesRequest {
        user_pool_id: pool.into(),
        username: user.into(),
        ..Default::default()
    }
}

fn reset(pool: &str, user: &str, validate_only: bool) -> pb::AdminResetUserMfaRequest {
    pb::AdminResetUserMfaRequest {
        user_pool_id: pool.into(),
        username: user.into(),
        validate_only,
    }
}

/// (step, outcome) of each step, in order.
fn outcomes(r: &pb::AdminResetUserMfaResponse) -> Vec<(String, pb::ResetOutcome)> {
    r.steps
        .iter()
        .map(|s| {
            (
                s.step.clone(),
                pb::ResetOutcome::try_from(s.outcome).expect("known outcome"),
            )
        })
        .collect()
}

fn steps(list: &[(&str, pb::ResetOutcome)]) -> Vec<(String, pb::ResetOutcome)> {
    list.iter().map(|(s, o)| (s.to_string(), *o)).collect()
}

async fn passkey(s: &Stack, pool: &str, user: &str, name: &str) -> String {
    s.local_fixtures()
        .register_web_authn_credential(dev::RegisterWebAuthnCredentialRequest {
            user_pool_id: pool.into(),
            username: user.into(),
            friendly_credential_name: name.into(),
            relying_party_id: RP.into(),
            authenticator_attachment: Some("cross-platform".into()),
            authenticator_transports: vec!["usb".into()],
        })
        .await
        .expect("passkey")
        .into_inner()
        .credential_id
}

async fn token(s: &Stack, pool: &str, user: &str) -> String {
    s.local_fixtures()
        .issue_access_token(dev::IssueAccessTokenRequest {
            user_pool_id: pool.into(),
            username: user.into(),
            ttl_seconds: None,
        })
        .await
        .expect("token")
        .into_inner()
        .access_token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_phone_is_reset_in_one_call_and_the_user_enrols_again() {
    use pb::ResetOutcome::*;
    let s = Stack::local().await;
    let pool = pool(&s).await;
    let mut users = s.users.clone();
    let old_token = s.create_user_with_token(&pool, "dana", &[]).await;

    // The phone number SMS MFA needs, set by an admin, verified.
    users
        .admin_update_user_attributes(pb::AdminUpdateUserAttributesRequest {
            user_pool_id: pool.clone(),
            username: "dana".into(),
            user_attributes: vec![
                pb::Attribute {
                    name: "phone_number".into(),
                    value: Some("+15555550123".into()),
                },
                pb::Attribute {
                    name: "phone_number_verified".into(),
                    value: Some("true".into()),
                },
            ],
            ..Default::default()
        })
        .await
        .expect("phone number");
    // TOTP enrolled on the phone, SMS on, TOTP preferred.
    let key = s.associate_totp(&old_token).await;
    s.verify_totp(&old_token, totp::code_at(&key, now()))
        .await
        .expect("verify");
    users
        .admin_set_user_mfa_preference(pb::AdminSetUserMfaPreferenceRequest {
            user_pool_id: pool.clone(),
            username: "dana".into(),
            sms_mfa_settings: Some(pb::SmsMfaSettings {
                enabled: Some(true),
                preferred_mfa: Some(false),
            }),
            software_token_mfa_settings: Some(pb::SoftwareTokenMfaSettings {
                enabled: Some(true),
                preferred_mfa: Some(true),
            }),
            ..Default::default()
        })
        .await
        .expect("preference");
    // The phone's browser remembered, and a security key.
    let device = s
        .local_fixtures()
        .remember_device(dev::RememberDeviceRequest {
            user_pool_id: pool.clone(),
            username: "dana".into(),
            device_name: Some("Dana's phone".into()),
            remembered: true,
            last_ip: Some("192.0.2.10".into()),
        })
        .await
        .expect("device")
        .into_inner()
        .device_key;
    assert!(device.starts_with("us-east-1_"), "{device}");
    let old_key = passkey(&s, &pool, "dana", "old key").await;
    let listed = users
        .admin_list_devices(admin_list(&pool, "dana"))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.devices.len(), 1);
    let attrs: Vec<(String, String)> = listed.devices[0]
        .device_attributes
        .iter()
        .map(|a| (a.name.clone(), a.value.clone().unwrap_or_default()))
        .collect();
    assert!(attrs.contains(&("dev:device_remembered_status".into(), "remembered".into())));
    assert!(attrs.contains(&("device_name".into(), "Dana's phone".into())));
    assert!(attrs.contains(&("last_ip_used".into(), "192.0.2.10".into())));

    // The plan changes nothing.
    let plan = users
        .admin_reset_user_mfa(reset(&pool, "dana", true))
        .await
        .expect("plan")
        .into_inner();
    assert_eq!(
        outcomes(&plan),
        steps(&[
            ("read_factors", Done),
            ("turn_off_mfa", Planned),
            ("delete_software_token", Planned),
            ("forget_devices", Planned),
            ("sign_out", Planned),
            ("passkeys", NeedsUserToken),
        ])
    );
    assert_eq!(plan.steps[3].detail, "would forget 1 device(s)");
    let unchanged = users
        .get_user_mfa_settings(pb::GetUserMfaSettingsRequest {
            access_token: old_token.clone(),
        })
        .await
        .expect("the token still works after a plan")
        .into_inner();
    assert_eq!(
        unchanged.user_mfa_setting_list,
        ["SMS_MFA", "SOFTWARE_TOKEN_MFA"]
    );

    // The reset.
    let done = users
        .admin_reset_user_mfa(reset(&pool, "dana", false))
        .await
        .expect("reset")
        .into_inner();
    assert_eq!(
        outcomes(&done),
        steps(&[
            ("read_factors", Done),
            ("turn_off_mfa", Done),
            ("delete_software_token", Done),
            ("forget_devices", Done),
            ("sign_out", Done),
            ("passkeys", NeedsUserToken),
        ]),
        "{done:#?}"
    );
    assert!(done.passkeys_remain);
    assert_eq!(done.steps[3].detail, "forgot 1 device(s)");
    assert_eq!(
        done.steps[3].cognito_calls,
        ["AdminListDevices", "AdminForgetDevice"]
    );
    // The device is forgotten, the old token refused, TOTP and SMS off.
    let listed = users
        .admin_list_devices(admin_list(&pool, "dana"))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.devices.is_empty());
    let refused = users
        .get_user_mfa_settings(pb::GetUserMfaSettingsRequest {
            access_token: old_token.clone(),
        })
        .await
        .expect_err("the old token is revoked");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("Access Token has been revoked"));
    let factors = users
        .admin_get_user_auth_factors(pb::AdminGetUserAuthFactorsRequest {
            user_pool_id: pool.clone(),
            username: "dana".into(),
        })
        .await
        .expect("factors")
        .into_inner();
    assert!(factors.user_mfa_setting_list.is_empty());
    assert_eq!(factors.preferred_mfa_setting, None);
    let configured: Vec<i32> = factors.configured_user_auth_factors.clone();
    assert!(!configured.contains(&(pb::AuthFactorType::SoftwareToken as i32)));
    assert!(configured.contains(&(pb::AuthFactorType::WebAuthn as i32)));

    // Again: nothing left to do but the sign-out.
    let again = users
        .admin_reset_user_mfa(reset(&pool, "dana", false))
        .await
        .expect("again")
        .into_inner();
    assert_eq!(
        outcomes(&again),
        steps(&[
            ("read_factors", Done),
            ("turn_off_mfa", NotNeeded),
            ("delete_software_token", NotNeeded),
            ("forget_devices", NotNeeded),
            ("sign_out", Done),
            ("passkeys", NeedsUserToken),
        ])
    );

    // The user signs in again: a new token works; the old passkey goes
    // with the user's own token; a new TOTP app and a new key.
    let new_token = token(&s, &pool, "dana").await;
    users
        .delete_web_authn_credential(pb::DeleteWebAuthnCredentialRequest {
            access_token: new_token.clone(),
            credential_id: old_key,
        })
        .await
        .expect("the user deletes the lost key");
    let key = s.associate_totp(&new_token).await;
    s.verify_totp(&new_token, totp::code_at(&key, now()))
        .await
        .expect("a new TOTP app");
    users
        .set_user_mfa_preference(pb::SetUserMfaPreferenceRequest {
            access_token: new_token.clone(),
            software_token_mfa_settings: Some(pb::SoftwareTokenMfaSettings {
                enabled: Some(true),
                preferred_mfa: Some(true),
            }),
            ..Default::default()
        })
        .await
        .expect("TOTP preferred");
    let new_key = common::soft_authn::SoftKey::new();
    enrol(&mut users, &new_token, &new_key, &Default::default())
        .await
        .expect("a new passkey, made by a software authenticator");
    let keys = users
        .list_web_authn_credentials(pb::ListWebAuthnCredentialsRequest {
            access_token: new_token.clone(),
            ..Default::default()
        })
        .await
        .expect("passkeys")
        .into_inner();
    let names: Vec<&str> = keys
        .credentials
        .iter()
        .map(|c| c.friendly_credential_name.as_str())
        .collect();
    assert_eq!(names, ["Security key"]);
    let whole = users
        .get_user_auth_factors(pb::GetUserAuthFactorsRequest {
            access_token: new_token,
        })
        .await
        .expect("factors")
        .into_inner();
    assert_eq!(whole.user_mfa_setting_list, ["SOFTWARE_TOKEN_MFA"]);
    assert_eq!(
        whole.preferred_mfa_setting.as_deref(),
        Some("SOFTWARE_TOKEN_MFA")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_calls_keep_cognito_s_rules_on_the_local_backend() {
    let s = Stack::local().await;
    let pool = pool(&s).await;
    let token = s.create_user_with_token(&pool, "eve", &[]).await;
    let mut keys = Vec::new();
    for i in 0..3 {
        keys.push(
            s.local_fixtures()
                .remember_device(dev::RememberDeviceRequest {
                    user_pool_id: pool.clone(),
                    username: "eve".into(),
                    device_name: Some(format!("device {i}")),
                    remembered: i != 1,
                    last_ip: None,
                })
                .await
                .expect("device")
                .into_inner()
                .device_key,
        );
    }
    let mut users = s.users.clone();
    // Pages of 2: the token leads to the third.
    let first = users
        .list_devices(pb::ListDevicesRequest {
            access_token: token.clone(),
            limit: Some(2),
            pagination_token: None,
        })
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(first.devices.len(), 2);
    let second = users
        .list_devices(pb::ListDevicesRequest {
            access_token: token.clone(),
            limit: Some(2),
            pagination_token: first.pagination_token.clone(),
        })
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(second.devices.len(), 1);
    assert_eq!(second.pagination_token, None);
    let mut seen: Vec<String> = first
        .devices
        .iter()
        .chain(&second.devices)
        .map(|d| d.device_key.clone())
        .collect();
    seen.sort();
    let mut all = keys.clone();
    all.sort();
    assert_eq!(seen, all);

    // Status, get, forget; a key the user does not have is NOT_FOUND.
    users
        .admin_update_device_status(pb::AdminUpdateDeviceStatusRequest {
            user_pool_id: pool.clone(),
            username: "eve".into(),
            device_key: keys[1].clone(),
            device_remembered_status: pb::DeviceRememberedStatus::Remembered as i32,
        })
        .await
        .expect("status");
    let got = users
        .admin_get_device(pb::AdminGetDeviceRequest {
            user_pool_id: pool.clone(),
            username: "eve".into(),
            device_key: keys[1].clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .device
        .expect("a device");
    assert!(
        got.device_attributes
            .iter()
            .any(|a| a.name == "dev:device_remembered_status"
                && a.value.as_deref() == Some("remembered"))
    );
    users
        .forget_device(pb::ForgetDeviceRequest {
            access_token: Some(token.clone()),
            device_key: keys[0].clone(),
        })
        .await
        .expect("forget");
    let missing = users
        .admin_forget_device(pb::AdminForgetDeviceRequest {
            user_pool_id: pool.clone(),
            username: "eve".into(),
            device_key: keys[0].clone(),
        })
        .await
        .expect_err("already forgotten");
    assert_eq!(missing.code(), Code::NotFound);
    // Bad input names the field and reaches nothing.
    let before = s.upstream_calls();
    let bad = users
        .admin_get_device(pb::AdminGetDeviceRequest {
            user_pool_id: pool.clone(),
            username: "eve".into(),
            device_key: "not a key".into(),
        })
        .await
        .expect_err("bad key");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let bad = users
        .forget_device(pb::ForgetDeviceRequest {
            access_token: None,
            device_key: keys[1].clone(),
        })
        .await
        .expect_err("no token");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let bad = users
        .admin_list_devices(pb::AdminListDevicesRequest {
            limit: Some(61),
            ..admin_list(&pool, "eve")
        })
        .await
        .expect_err("limit");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(s.upstream_calls(), before, "nothing reached the backend");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_are_limited_to_what_mfa_needs_and_keep_cognito_s_rules() {
    let s = Stack::local().await;
    let pool = s
        .local_fixtures()
        .create_user_pool(dev::CreateUserPoolRequest {
            pool_name: "aliases".into(),
            alias_attributes: vec![dev::AliasAttribute::Email as i32],
            ..Default::default()
        })
        .await
        .expect("pool")
        .into_inner()
        .user_pool_id;
    for user in ["fay", "gus"] {
        s.create_user_with_token(&pool, user, &[]).await;
    }
    let set = |user: &str, attrs: &[(&str, &str)]| pb::AdminUpdateUserAttributesRequest {
        user_pool_id: pool.clone(),
        username: user.into(),
        user_attributes: attrs
            .iter()
            .map(|(n, v)| pb::Attribute {
                name: n.to_string(),
                value: Some(v.to_string()),
            })
            .collect(),
        ..Default::default()
    };
    let mut users = s.users.clone();
    users
        .admin_update_user_attributes(set(
            "fay",
            &[("email", "fay@example.com"), ("email_verified", "true")],
        ))
        .await
        .expect("fay's email");
    // Fay is now found by her verified alias.
    users
        .admin_get_user_auth_factors(pb::AdminGetUserAuthFactorsRequest {
            user_pool_id: pool.clone(),
            username: "fay@example.com".into(),
        })
        .await
        .expect("by alias");
    // Another user cannot verify the same email: AliasExistsException.
    let taken = users
        .admin_update_user_attributes(set(
            "gus",
            &[("email", "FAY@example.com"), ("email_verified", "true")],
        ))
        .await
        .expect_err("taken");
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");
    assert!(
        taken.message().contains("AliasExistsException"),
        "{}",
        taken.message()
    );
    // Unverified it may hold it; a changed email is unverified.
    users
        .admin_update_user_attributes(set("gus", &[("email", "fay@example.com")]))
        .await
        .expect("unverified");
    users
        .admin_update_user_attributes(set("fay", &[("email", "fay@example.org")]))
        .await
        .expect("fay changes her email");
    let by_old = users
        .admin_get_user_auth_factors(pb::AdminGetUserAuthFactorsRequest {
            user_pool_id: pool.clone(),
            username: "fay@example.org".into(),
        })
        .await
        .expect_err("a changed email is no longer a verified alias");
    assert_eq!(by_old.code(), Code::NotFound);
    // Only the four attributes MFA needs; each rule names its field.
    let before = s.upstream_calls();
    let bad = users
        .admin_update_user_attributes(pb::AdminUpdateUserAttributesRequest {
            client_metadata: [("k".to_string(), "v".to_string())].into(),
            ..set(
                "fay",
                &[
                    ("given_name", "Fay"),
                    ("phone_number", "5555550123"),
                    ("email_verified", "yes"),
                ],
            )
        })
        .await
        .expect_err("refused");
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = bad
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
        .unwrap_or_default();
    assert_eq!(
        fields,
        [
            "user_attributes[0].name",
            "user_attributes[1].value",
            "user_attributes[2].value",
            "client_metadata"
        ]
    );
    assert_eq!(s.upstream_calls(), before, "nothing reached the backend");
}

/// StartWebAuthnRegistration, then the software key's registration made as
/// `bend` says, then CompleteWebAuthnRegistration.
async fn enrol(
    users: &mut common::UsersClient,
    token: &str,
    key: &common::soft_authn::SoftKey,
    bend: &common::soft_authn::Bend<'_>,
) -> Result<(), tonic::Status> {
    let options = users
        .start_web_authn_registration(pb::StartWebAuthnRegistrationRequest {
            access_token: token.into(),
        })
        .await?
        .into_inner()
        .credential_creation_options;
    let options: Value = serde_json::from_str(&options).expect("JSON options");
    users
        .complete_web_authn_registration(pb::CompleteWebAuthnRegistrationRequest {
            access_token: token.into(),
            credential: key.register(&options, bend).to_string(),
        })
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_made_by_a_software_authenticator_is_enrolled_and_every_check_holds() {
    use common::soft_authn::{Bend, SoftKey};
    let s = Stack::local().await;
    let pool = pool(&s).await;
    let token = s.create_user_with_token(&pool, "jo", &[]).await;
    let mut users = s.users.clone();

    // The options: the pool's relying party, a challenge, ES256.
    let options = users
        .start_web_authn_registration(pb::StartWebAuthnRegistrationRequest {
            access_token: token.clone(),
        })
        .await
        .expect("start")
        .into_inner()
        .credential_creation_options;
    let options: Value = serde_json::from_str(&options).expect("JSON");
    assert_eq!(options["rp"]["id"], RP);
    assert_eq!(options["pubKeyCredParams"][0]["alg"], -7);
    assert_eq!(options["user"]["name"], "jo");
    assert!(options["challenge"].as_str().is_some_and(|c| c.len() >= 40));

    // Packed self-attestation and attestation none both register.
    let packed = SoftKey::new();
    let registration = packed.register(&options, &Bend::default());
    users
        .complete_web_authn_registration(pb::CompleteWebAuthnRegistrationRequest {
            access_token: token.clone(),
            credential: registration.to_string(),
        })
        .await
        .expect("packed self-attestation");
    // The challenge was good once.
    let replay = users
        .complete_web_authn_registration(pb::CompleteWebAuthnRegistrationRequest {
            access_token: token.clone(),
            credential: registration.to_string(),
        })
        .await
        .expect_err("replayed");
    assert_eq!(replay.code(), Code::FailedPrecondition);
    assert!(
        replay
            .message()
            .contains("WebAuthnChallengeNotFoundException")
    );
    let none = SoftKey::new();
    enrol(
        &mut users,
        &token,
        &none,
        &Bend {
            fmt: "none",
            ..Default::default()
        },
    )
    .await
    .expect("attestation none");

    // What a browser cannot be made to send is refused, by Cognito's name.
    for (bend, code, exception) in [
        (
            Bend {
                tamper_signature: true,
                ..Default::default()
            },
            Code::InvalidArgument,
            "InvalidParameterException",
        ),
        (
            Bend {
                rp_id: "evil.example.com",
                ..Default::default()
            },
            Code::InvalidArgument,
            "WebAuthnRelyingPartyMismatchException",
        ),
        (
            Bend {
                origin: "https://auth.example.com.evil.test",
                ..Default::default()
            },
            Code::InvalidArgument,
            "WebAuthnOriginNotAllowedException",
        ),
        (
            // No user presence.
            Bend {
                flags: 0x44,
                ..Default::default()
            },
            Code::InvalidArgument,
            "InvalidParameterException",
        ),
        (
            Bend {
                fmt: "tpm",
                ..Default::default()
            },
            Code::InvalidArgument,
            "WebAuthnCredentialNotSupportedException",
        ),
    ] {
        let err = enrol(&mut users, &token, &SoftKey::new(), &bend)
            .await
            .expect_err(exception);
        assert_eq!(err.code(), code, "{exception}: {err:?}");
        assert!(err.message().contains(exception), "{}", err.message());
    }
    // A registration of another user's challenge is not this user's.
    let other = s.create_user_with_token(&pool, "kim", &[]).await;
    let theirs = users
        .start_web_authn_registration(pb::StartWebAuthnRegistrationRequest {
            access_token: other,
        })
        .await
        .expect("start")
        .into_inner()
        .credential_creation_options;
    let theirs: Value = serde_json::from_str(&theirs).expect("JSON");
    users
        .start_web_authn_registration(pb::StartWebAuthnRegistrationRequest {
            access_token: token.clone(),
        })
        .await
        .expect("start");
    let err = users
        .complete_web_authn_registration(pb::CompleteWebAuthnRegistrationRequest {
            access_token: token.clone(),
            credential: SoftKey::new()
                .register(&theirs, &Bend::default())
                .to_string(),
        })
        .await
        .expect_err("another user's challenge");
    assert!(
        err.message().contains("WebAuthnChallengeNotFoundException"),
        "{err:?}"
    );

    // Two passkeys, both in every read.
    let listed = users
        .list_web_authn_credentials(pb::ListWebAuthnCredentialsRequest {
            access_token: token.clone(),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let mut ids: Vec<String> = listed
        .credentials
        .iter()
        .map(|c| c.credential_id.clone())
        .collect();
    ids.sort();
    let mut expected = vec![
        base64_url(&packed.credential_id),
        base64_url(&none.credential_id),
    ];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(
        listed
            .credentials
            .iter()
            .all(|c| c.relying_party_id == RP && c.authenticator_transports == ["usb", "nfc"])
    );
    let factors = users
        .get_user_auth_factors(pb::GetUserAuthFactorsRequest {
            access_token: token.clone(),
        })
        .await
        .expect("factors")
        .into_inner();
    assert!(
        factors
            .configured_user_auth_factors
            .contains(&(pb::AuthFactorType::WebAuthn as i32))
    );

    // Bad input is refused at the edge and reaches nothing.
    let before = s.upstream_calls();
    for credential in ["", "[1]", "not json", &"x".repeat(70_000)] {
        let err = users
            .complete_web_authn_registration(pb::CompleteWebAuthnRegistrationRequest {
                access_token: token.clone(),
                credential: credential.into(),
            })
            .await
            .expect_err("bad credential");
        assert_eq!(err.code(), Code::InvalidArgument);
    }
    assert_eq!(s.upstream_calls(), before, "nothing reached the backend");
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The Cognito operation of a request (its x-amz-target) and its body.
fn operation(seen: &common::stub::Seen) -> (String, Value) {
    (
        seen.header("x-amz-target")
            .rsplit('.')
            .next()
            .unwrap_or("")
            .to_owned(),
        serde_json::from_str(&seen.body).unwrap_or(Value::Null),
    )
}

/// What a scripted Cognito was sent, in order.
fn requests(stub: &Stub) -> Vec<(String, Value)> {
    stub.seen().iter().map(operation).collect()
}

/// A scripted Cognito for the reset: answers by operation (x-amz-target).
async fn scripted(answer: impl Fn(&str, &Value) -> Reply + Send + Sync + 'static) -> Stub {
    Stub::start(move |_, seen| {
        let (op, body) = operation(seen);
        answer(&op, &body)
    })
    .await
}

async fn users_on(stub: &Stub) -> (mfa_facade::app::RunningServer, common::UsersClient) {
    let (started, channel) = common::start_cognito(BackendConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some(stub.url.clone()),
        max_attempts: 1,
        ..BackendConfig::default()
    })
    .await;
    let users =
        UserMfaServiceClient::with_interceptor(channel, common::ApiKey::new(common::TEST_KEY));
    (started.server, users)
}

fn ok(body: Value) -> Reply {
    Reply::cognito(200, body.to_string(), "stub-1")
}

fn device(key: &str) -> Value {
    json!({
        "DeviceKey": key,
        "DeviceAttributes": [
            {"Name": "device_status", "Value": "valid"},
            {"Name": "device_name", "Value": "phone"},
            {"Name": "dev:device_remembered_status", "Value": "remembered"}
        ],
        "DeviceCreateDate": 1715100742.022,
        "DeviceLastModifiedDate": 1723233651.167,
        "DeviceLastAuthenticatedDate": 1715100742.0
    })
}

const POOL: &str = "us-east-1_Reset1";
const K1: &str = "us-east-1_a1b2c3d4-5678-90ab-cdef-000000000001";
const K2: &str = "us-east-1_a1b2c3d4-5678-90ab-cdef-000000000002";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_goes_to_cognito_in_its_fixed_order_and_a_refused_step_does_not_stop_it() {
    let stub = scripted(|op, body| match op {
        "AdminGetUserAuthFactors" => ok(json!({
            "Username": "hal",
            "PreferredMfaSetting": "SOFTWARE_TOKEN_MFA",
            "UserMFASettingList": ["SMS_MFA", "SOFTWARE_TOKEN_MFA"],
            "ConfiguredUserAuthFactors": ["PASSWORD", "SOFTWARE_TOKEN", "WEB_AUTHN"]
        })),
        // Cognito refuses to turn the factors off (MFA ON, say).
        "AdminSetUserMFAPreference" => Reply::cognito(
            400,
            json!({"__type": "InvalidParameterException", "message": "MFA is required"})
                .to_string(),
            "stub-2",
        ),
        "AdminListDevices" if body.get("PaginationToken").is_none() => {
            ok(json!({"Devices": [device(K1)], "PaginationToken": "page-2"}))
        }
        "AdminListDevices" => ok(json!({"Devices": [device(K2)]})),
        _ => ok(json!({})),
    })
    .await;
    let (_server, mut users) = users_on(&stub).await;
    let out = users
        .admin_reset_user_mfa(reset(POOL, "hal", false))
        .await
        .expect("reset")
        .into_inner();
    use pb::ResetOutcome::*;
    assert_eq!(
        outcomes(&out),
        steps(&[
            ("read_factors", Done),
            ("turn_off_mfa", Refused),
            ("delete_software_token", Done),
            ("forget_devices", Done),
            ("sign_out", Done),
            ("passkeys", NeedsUserToken),
        ])
    );
    assert!(
        out.steps[1].detail.contains("MFA is required"),
        "{:?}",
        out.steps[1]
    );
    assert_eq!(out.steps[3].detail, "forgot 2 device(s)");
    let sent = requests(&stub);
    let user = json!({"UserPoolId": POOL, "Username": "hal"});
    let with = |extra: Value| {
        let mut v = user.clone();
        v.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        v
    };
    assert_eq!(
        sent,
        [
            ("AdminGetUserAuthFactors".to_owned(), user.clone()),
            (
                "AdminSetUserMFAPreference".to_owned(),
                with(json!({
                    "SMSMfaSettings": {"Enabled": false, "PreferredMfa": false},
                    "SoftwareTokenMfaSettings": {"Enabled": false, "PreferredMfa": false},
                    "WebAuthnMfaSettings": {"Enabled": false}
                }))
            ),
            ("AdminDeleteSoftwareToken".to_owned(), user.clone()),
            ("AdminListDevices".to_owned(), with(json!({"Limit": 60}))),
            (
                "AdminForgetDevice".to_owned(),
                with(json!({"DeviceKey": K1}))
            ),
            (
                "AdminListDevices".to_owned(),
                with(json!({"Limit": 60, "PaginationToken": "page-2"}))
            ),
            (
                "AdminForgetDevice".to_owned(),
                with(json!({"DeviceKey": K2}))
            ),
            ("AdminUserGlobalSignOut".to_owned(), user.clone()),
        ]
    );

    // A failure that is not a refusal ends the call with its error.
    let failing = scripted(|op, _| match op {
        "AdminGetUserAuthFactors" => ok(json!({"Username": "hal", "UserMFASettingList": []})),
        "AdminListDevices" => Reply::cognito(
            400,
            json!({"__type": "UserNotFoundException", "message": "User does not exist."})
                .to_string(),
            "stub-3",
        ),
        _ => ok(json!({})),
    })
    .await;
    let (_server2, mut users2) = users_on(&failing).await;
    let err = users2
        .admin_reset_user_mfa(reset(POOL, "hal", false))
        .await
        .expect_err("stops");
    assert_eq!(err.code(), Code::NotFound);
    let ops: Vec<String> = requests(&failing).into_iter().map(|(op, _)| op).collect();
    assert_eq!(ops, ["AdminGetUserAuthFactors", "AdminListDevices"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_calls_go_to_cognito_with_its_names_and_answers_come_back_whole() {
    let stub = scripted(|op, _| match op {
        "AdminListDevices" | "ListDevices" => {
            ok(json!({"Devices": [device(K1)], "PaginationToken": "next"}))
        }
        "AdminGetDevice" => ok(json!({"Device": device(K2)})),
        _ => ok(json!({})),
    })
    .await;
    let (_server, mut users) = users_on(&stub).await;
    let page = users
        .admin_list_devices(pb::AdminListDevicesRequest {
            user_pool_id: POOL.into(),
            username: "ida".into(),
            limit: Some(10),
            pagination_token: Some("from".into()),
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page.pagination_token.as_deref(), Some("next"));
    let d = &page.devices[0];
    assert_eq!(d.device_key, K1);
    assert_eq!(d.device_attributes.len(), 3);
    assert_eq!(
        d.device_create_date.as_ref().map(|t| t.seconds),
        Some(1715100742)
    );
    assert_eq!(
        d.device_last_modified_date.as_ref().map(|t| t.seconds),
        Some(1723233651)
    );
    let got = users
        .admin_get_device(pb::AdminGetDeviceRequest {
            user_pool_id: POOL.into(),
            username: "ida".into(),
            device_key: K2.into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.device.expect("device").device_key, K2);
    users
        .admin_update_device_status(pb::AdminUpdateDeviceStatusRequest {
            user_pool_id: POOL.into(),
            username: "ida".into(),
            device_key: K1.into(),
            device_remembered_status: pb::DeviceRememberedStatus::NotRemembered as i32,
        })
        .await
        .expect("status");
    users
        .admin_forget_device(pb::AdminForgetDeviceRequest {
            user_pool_id: POOL.into(),
            username: "ida".into(),
            device_key: K1.into(),
        })
        .await
        .expect("forget");
    users
        .admin_user_global_sign_out(pb::AdminUserGlobalSignOutRequest {
            user_pool_id: POOL.into(),
            username: "ida".into(),
        })
        .await
        .expect("sign out");
    let sent = requests(&stub);
    assert_eq!(
        sent,
        [
            (
                "AdminListDevices".to_owned(),
                json!({"UserPoolId": POOL, "Username": "ida", "Limit": 10, "PaginationToken": "from"})
            ),
            (
                "AdminGetDevice".to_owned(),
                json!({"UserPoolId": POOL, "Username": "ida", "DeviceKey": K2})
            ),
            (
                "AdminUpdateDeviceStatus".to_owned(),
                json!({"UserPoolId": POOL, "Username": "ida", "DeviceKey": K1, "DeviceRememberedStatus": "not_remembered"})
            ),
            (
                "AdminForgetDevice".to_owned(),
                json!({"UserPoolId": POOL, "Username": "ida", "DeviceKey": K1})
            ),
            (
                "AdminUserGlobalSignOut".to_owned(),
                json!({"UserPoolId": POOL, "Username": "ida"})
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_enrolment_goes_to_cognito_as_documents_and_back_as_json() {
    let stub = scripted(|op, _| match op {
        "StartWebAuthnRegistration" => ok(json!({"CredentialCreationOptions": {
            "rp": {"id": RP, "name": "Example"},
            "challenge": "Y2hhbGxlbmdl",
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
            "timeout": 60000
        }})),
        _ => ok(json!({})),
    })
    .await;
    let (_server, mut users) = users_on(&stub).await;
    let token = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2NvZ25pdG8taWRwLnVzLWVhc3QtMS5hbWF6b25hd3MuY29tL3VzLWVhc3QtMV9SZXNldDEiLCJzdWIiOiJzIn0.sig";
    let options = users
        .start_web_authn_registration(pb::StartWebAuthnRegistrationRequest {
            access_token: token.into(),
        })
        .await
        .expect("start")
        .into_inner()
        .credential_creation_options;
    let options: Value = serde_json::from_str(&options).expect("JSON");
    assert_eq!(options["rp"]["id"], RP);
    assert_eq!(options["pubKeyCredParams"][0]["alg"], -7);
    assert_eq!(options["timeout"], 60000);
    let credential = json!({"id": "abc", "rawId": "abc", "type": "public-key",
        "response": {"clientDataJSON": "e30", "attestationObject": "oA"}});
    users
        .complete_web_authn_registration(pb::CompleteWebAuthnRegistrationRequest {
            access_token: token.into(),
            credential: credential.to_string(),
        })
        .await
        .expect("complete");
    let seen = stub.seen();
    let bodies: Vec<Value> = seen
        .iter()
        .map(|s| serde_json::from_str(&s.body).unwrap_or(Value::Null))
        .collect();
    assert_eq!(bodies[0], json!({"AccessToken": token}));
    assert_eq!(
        bodies[1],
        json!({"AccessToken": token, "Credential": credential})
    );
}

/// Every step of a reset counts against Cognito's quota: with the quota
/// guard on and a per-user write budget of 5 a second, a reset that
/// forgets 8 devices waits for its budget (counted) rather than failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_waits_for_the_quota_of_each_device_it_forgets() {
    use common::procs::{Served, local_config, local_pool};
    let served = Served::start(&local_config(
        "ops",
        1000.0,
        1000,
        "[limits.quota]\nenabled = true\nper_user_write = 5.0\n",
    ));
    let ch = served.channel().await;
    let pool = local_pool(&ch, Some("lou")).await;
    let mut fixtures =
        dev::local_fixtures_service_client::LocalFixturesServiceClient::with_interceptor(
            ch.clone(),
            common::ApiKey::new(common::TEST_KEY),
        );
    for i in 0..8 {
        fixtures
            .remember_device(dev::RememberDeviceRequest {
                user_pool_id: pool.clone(),
                username: "lou".into(),
                device_name: Some(format!("device {i}")),
                remembered: true,
                last_ip: None,
            })
            .await
            .expect("device");
    }
    let mut users =
        UserMfaServiceClient::with_interceptor(ch.clone(), common::ApiKey::new(common::TEST_KEY));
    let out = users
        .admin_reset_user_mfa(reset(&pool, "lou", false))
        .await
        .expect("the reset waits, it does not fail")
        .into_inner();
    assert_eq!(out.steps[3].detail, "forgot 8 device(s)");
    let waits = served
        .metric(
            "mfa_facade_quota_waits_total",
            &["method=\"cognito.mfa.v1.UserMfaService/AdminResetUserMfa\""],
        )
        .unwrap_or(0.0);
    assert!(waits >= 1.0, "{}", served.metrics());
    let listed = users
        .admin_list_devices(admin_list(&pool, "lou"))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.devices.is_empty());
}

//! Cognito rules that moto cannot express, on the local backend alone, each
//! with the result COGNITO.md gives: email MFA, WebAuthn, the preference
//! rules, the TOTP lifecycle, sessions, expired tokens, feature plans.

use crate::common;

use std::time::Duration;

use common::{Stack, now};
use mfa_facade::domain::totp;
use mfa_facade::proto::{dev::v1 as dev, v1 as pb};
use tonic::Code;
use tonic_types::StatusExt;

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

fn on(preferred: bool) -> (Option<bool>, Option<bool>) {
    (Some(true), Some(preferred))
}

async fn admin_set(
    s: &Stack,
    pool: &str,
    user: &str,
    sms: Option<(Option<bool>, Option<bool>)>,
    totp_: Option<(Option<bool>, Option<bool>)>,
    email: Option<(Option<bool>, Option<bool>)>,
    web_authn: Option<bool>,
) -> Result<(), tonic::Status> {
    s.users
        .clone()
        .admin_set_user_mfa_preference(pb::AdminSetUserMfaPreferenceRequest {
            user_pool_id: pool.into(),
            username: user.into(),
            sms_mfa_settings: sms.map(|(enabled, preferred_mfa)| pb::SmsMfaSettings {
                enabled,
                preferred_mfa,
            }),
            software_token_mfa_settings: totp_.map(|(enabled, preferred_mfa)| {
                pb::SoftwareTokenMfaSettings {
                    enabled,
                    preferred_mfa,
                }
            }),
            email_mfa_settings: email.map(|(enabled, preferred_mfa)| pb::EmailMfaSettings {
                enabled,
                preferred_mfa,
            }),
            web_authn_mfa_settings: web_authn.map(|enabled| pb::WebAuthnMfaSettings {
                enabled: Some(enabled),
            }),
        })
        .await
        .map(|_| ())
}

async fn admin_get(s: &Stack, pool: &str, user: &str) -> pb::AdminGetUserMfaSettingsResponse {
    s.users
        .clone()
        .admin_get_user_mfa_settings(pb::AdminGetUserMfaSettingsRequest {
            user_pool_id: pool.into(),
            username: user.into(),
        })
        .await
        .expect("admin get")
        .into_inner()
}

fn email_block() -> pb::EmailMfaConfig {
    pb::EmailMfaConfig {
        message: Some("Your code is {####}".into()),
        subject: Some("Sign-in code".into()),
    }
}

fn totp_block() -> Option<pb::SoftwareTokenMfaConfig> {
    Some(pb::SoftwareTokenMfaConfig {
        enabled: Some(true),
    })
}

fn sms_block() -> Option<pb::SmsMfaConfig> {
    Some(pb::SmsMfaConfig {
        sms_authentication_message: Some("Code {####}".into()),
        sms_configuration: Some(pb::SmsConfiguration {
            sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
            ..Default::default()
        }),
    })
}

#[tokio::test]
async fn email_mfa_round_trips_and_a_user_with_an_email_can_prefer_it() {
    let s = Stack::local().await;
    let pool = s.create_email_pool().await;
    let req = pb::SetUserPoolMfaConfigRequest {
        email_mfa_configuration: Some(email_block()),
        mfa_configuration: pb::MfaConfiguration::Optional as i32,
        ..Default::default()
    };
    s.set_config(&pool, req).await.expect("set email MFA");
    let read = s
        .pools
        .clone()
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(read.email_mfa_configuration, Some(email_block()));

    s.create_user_with_token(&pool, "ann", &[("email", "ann@example.com")])
        .await;
    admin_set(&s, &pool, "ann", None, None, Some(on(true)), None)
        .await
        .expect("email MFA");
    let got = admin_get(&s, &pool, "ann").await;
    assert_eq!(got.user_mfa_setting_list, ["EMAIL_OTP"]);
    assert_eq!(got.preferred_mfa_setting.as_deref(), Some("EMAIL_OTP"));
}

#[tokio::test]
async fn email_mfa_needs_the_attribute_and_the_pool() {
    let s = Stack::local().await;
    let pool = s.create_email_pool().await;
    s.create_user_with_token(&pool, "ben", &[("email", "ben@example.com")])
        .await;
    s.create_user_with_token(&pool, "bea", &[]).await;
    // The pool has no email MFA yet.
    let err = admin_set(&s, &pool, "ben", None, None, Some(on(false)), None)
        .await
        .expect_err("no pool email");
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::InvalidArgument, "InvalidParameterException")
    );
    let req = pb::SetUserPoolMfaConfigRequest {
        email_mfa_configuration: Some(email_block()),
        mfa_configuration: pb::MfaConfiguration::Optional as i32,
        ..Default::default()
    };
    s.set_config(&pool, req).await.expect("pool email");
    let err = admin_set(&s, &pool, "bea", None, None, Some(on(false)), None)
        .await
        .expect_err("no email attribute");
    assert_eq!(reason(&err), "InvalidParameterException");
    assert!(err.message().contains("email"), "{}", err.message());
    admin_set(&s, &pool, "ben", None, None, Some(on(false)), None)
        .await
        .expect("now it works");
}

#[tokio::test]
async fn sms_mfa_needs_a_phone_number() {
    let s = Stack::local().await;
    let pool = s.create_pool().await;
    s.create_user_with_token(&pool, "cat", &[("email", "cat@example.com")])
        .await;
    let err = admin_set(&s, &pool, "cat", Some(on(true)), None, None, None)
        .await
        .expect_err("no phone");
    assert_eq!(reason(&err), "InvalidParameterException");
    assert_eq!(
        err.message(),
        "InvalidParameterException: User does not have a phone_number set to turn on SMS MFA"
    );
    assert!(
        admin_get(&s, &pool, "cat")
            .await
            .user_mfa_setting_list
            .is_empty(),
        "nothing changed"
    );
}

#[tokio::test]
async fn web_authn_round_trips_and_user_web_authn_needs_multi_factor_and_another_factor() {
    let s = Stack::local().await;
    let pool = s.create_pool().await;
    s.create_user_with_token(&pool, "dan", &[("phone_number", "+15555550111")])
        .await;
    let single = pb::SetUserPoolMfaConfigRequest {
        sms_mfa_configuration: sms_block(),
        mfa_configuration: pb::MfaConfiguration::Optional as i32,
        web_authn_configuration: Some(pb::WebAuthnConfiguration {
            relying_party_id: Some("auth.example.com".into()),
            user_verification: pb::UserVerification::Preferred as i32,
            factor_configuration: pb::WebAuthnFactorConfiguration::SingleFactor as i32,
        }),
        ..Default::default()
    };
    let out = s.set_config(&pool, single.clone()).await.expect("set");
    assert_eq!(out.web_authn_configuration, single.web_authn_configuration);
    admin_set(&s, &pool, "dan", Some(on(true)), None, None, None)
        .await
        .expect("sms");
    let err = admin_set(&s, &pool, "dan", None, None, None, Some(true))
        .await
        .expect_err("single factor pool");
    assert!(
        err.message()
            .contains("MULTI_FACTOR_WITH_USER_VERIFICATION"),
        "{}",
        err.message()
    );

    let multi = pb::SetUserPoolMfaConfigRequest {
        web_authn_configuration: Some(pb::WebAuthnConfiguration {
            factor_configuration: pb::WebAuthnFactorConfiguration::MultiFactorWithUserVerification
                as i32,
            ..single.web_authn_configuration.clone().expect("block")
        }),
        ..single
    };
    s.set_config(&pool, multi).await.expect("multi factor");
    admin_set(&s, &pool, "dan", None, None, None, Some(true))
        .await
        .expect("now allowed");

    s.create_user_with_token(&pool, "dee", &[]).await;
    let err = admin_set(&s, &pool, "dee", None, None, None, Some(true))
        .await
        .expect_err("no other factor");
    assert!(
        err.message().contains("another MFA factor"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn with_mfa_on_a_user_can_only_change_the_preferred_factor() {
    let s = Stack::local().await;
    let pool = s.create_email_pool().await;
    s.create_user_with_token(
        &pool,
        "eve",
        &[
            ("phone_number", "+15555550112"),
            ("email", "eve@example.com"),
        ],
    )
    .await;
    let req = pb::SetUserPoolMfaConfigRequest {
        sms_mfa_configuration: sms_block(),
        email_mfa_configuration: Some(email_block()),
        mfa_configuration: pb::MfaConfiguration::Optional as i32,
        ..Default::default()
    };
    s.set_config(&pool, req.clone()).await.expect("optional");
    admin_set(
        &s,
        &pool,
        "eve",
        Some(on(true)),
        None,
        Some(on(false)),
        None,
    )
    .await
    .expect("both on");
    let on_req = pb::SetUserPoolMfaConfigRequest {
        mfa_configuration: pb::MfaConfiguration::On as i32,
        ..req
    };
    s.set_config(&pool, on_req).await.expect("required");

    let err = admin_set(
        &s,
        &pool,
        "eve",
        Some((Some(false), Some(false))),
        None,
        None,
        None,
    )
    .await
    .expect_err("cannot switch SMS off");
    assert_eq!(reason(&err), "InvalidParameterException");
    admin_set(
        &s,
        &pool,
        "eve",
        Some(on(false)),
        None,
        Some(on(true)),
        None,
    )
    .await
    .expect("switch preference");
    let got = admin_get(&s, &pool, "eve").await;
    assert_eq!(got.user_mfa_setting_list, ["SMS_MFA", "EMAIL_OTP"]);
    assert_eq!(got.preferred_mfa_setting.as_deref(), Some("EMAIL_OTP"));
}

#[tokio::test]
async fn settings_reflect_only_what_the_user_set() {
    let s = Stack::local().await;
    let pool = s.create_pool().await;
    let req = pb::SetUserPoolMfaConfigRequest {
        sms_mfa_configuration: sms_block(),
        mfa_configuration: pb::MfaConfiguration::On as i32,
        ..Default::default()
    };
    s.set_config(&pool, req).await.expect("MFA required");
    let token = s
        .create_user_with_token(&pool, "fay", &[("phone_number", "+15555550113")])
        .await;
    let got = s
        .users
        .clone()
        .get_user_mfa_settings(pb::GetUserMfaSettingsRequest {
            access_token: token,
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.username, "fay");
    assert!(
        got.user_mfa_setting_list.is_empty(),
        "pool-required SMS is not a user-level setting"
    );
    assert_eq!(got.preferred_mfa_setting, None);
}

#[tokio::test]
async fn a_new_totp_secret_replaces_the_old_one_only_once_verified() {
    let s = Stack::local().await;
    let pool = s.pool_with_totp(pb::MfaConfiguration::Optional).await;
    let token = s.create_user_with_token(&pool, "gus", &[]).await;
    let first = s.associate_totp(&token).await;
    s.verify_totp(&token, totp::code_at(&first, now()))
        .await
        .expect("verify first");
    admin_set(&s, &pool, "gus", None, Some(on(true)), None, None)
        .await
        .expect("prefer TOTP");

    let second = s.associate_totp(&token).await;
    assert_eq!(
        (first.len(), second.len()),
        (20, 20),
        "160-bit secrets, as Cognito's"
    );
    assert_ne!(first, second);
    let got = admin_get(&s, &pool, "gus").await;
    assert_eq!(
        got.preferred_mfa_setting.as_deref(),
        Some("SOFTWARE_TOKEN_MFA"),
        "still on the first device"
    );
    // The pending secret is the second one: a code of the first does not verify it.
    let err = s
        .verify_totp(&token, totp::code_at(&first, now()))
        .await
        .expect_err("first secret's code");
    assert_eq!(reason(&err), "EnableSoftwareTokenMFAException");
    let ok = s
        .verify_totp(&token, totp::code_at(&second, now()))
        .await
        .expect("second verifies");
    assert_eq!(ok.status, pb::VerifySoftwareTokenStatus::Success as i32);
}

#[tokio::test]
async fn admin_delete_software_token_removes_the_authenticator() {
    let s = Stack::local().await;
    let pool = s.pool_with_totp(pb::MfaConfiguration::Optional).await;
    let token = s.create_user_with_token(&pool, "hal", &[]).await;
    let key = s.associate_totp(&token).await;
    s.verify_totp(&token, totp::code_at(&key, now()))
        .await
        .expect("verify");
    admin_set(&s, &pool, "hal", None, Some(on(true)), None, None)
        .await
        .expect("prefer");

    s.users
        .clone()
        .admin_delete_software_token(pb::AdminDeleteSoftwareTokenRequest {
            user_pool_id: pool.clone(),
            username: "hal".into(),
        })
        .await
        .expect("delete");
    let got = admin_get(&s, &pool, "hal").await;
    assert!(got.user_mfa_setting_list.is_empty());
    assert_eq!(got.preferred_mfa_setting, None);
    let err = admin_set(&s, &pool, "hal", None, Some(on(false)), None, None)
        .await
        .expect_err("no device now");
    assert_eq!(
        err.message(),
        "InvalidParameterException: User has not verified software token mfa"
    );

    let err = s
        .users
        .clone()
        .admin_delete_software_token(pb::AdminDeleteSoftwareTokenRequest {
            user_pool_id: pool,
            username: "nobody".into(),
        })
        .await
        .expect_err("unknown user");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn totp_enrolment_needs_the_pool_to_allow_totp() {
    let s = Stack::local().await;
    let pool = s.create_pool().await;
    let token = s.create_user_with_token(&pool, "ida", &[]).await;
    let err = s
        .users
        .clone()
        .associate_software_token(pb::AssociateSoftwareTokenRequest {
            access_token: Some(token),
            session: None,
        })
        .await
        .expect_err("pool TOTP off");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "SoftwareTokenMFANotFoundException");
}

#[tokio::test]
async fn the_mfa_setup_session_flow_enrols_totp() {
    let s = Stack::local().await;
    let pool = s.create_pool().await;
    let config = pb::SetUserPoolMfaConfigRequest {
        software_token_mfa_configuration: totp_block(),
        mfa_configuration: pb::MfaConfiguration::On as i32,
        ..Default::default()
    };
    s.set_config(&pool, config)
        .await
        .expect("pool TOTP required");
    s.create_user_with_token(&pool, "jo", &[]).await;
    let session = s
        .local_fixtures()
        .issue_mfa_setup_session(dev::IssueMfaSetupSessionRequest {
            user_pool_id: pool.clone(),
            username: "jo".into(),
        })
        .await
        .expect("session")
        .into_inner()
        .session;
    let assoc = s
        .users
        .clone()
        .associate_software_token(pb::AssociateSoftwareTokenRequest {
            access_token: None,
            session: Some(session),
        })
        .await
        .expect("associate by session")
        .into_inner();
    let next = assoc.session.expect("a session to continue with");
    let key = totp::decode_base32(&assoc.secret_code).expect("base32");
    let verified = s
        .users
        .clone()
        .verify_software_token(pb::VerifySoftwareTokenRequest {
            access_token: None,
            session: Some(next),
            user_code: totp::code_at(&key, now()),
            friendly_device_name: Some("jo's phone".into()),
        })
        .await
        .expect("verify by session")
        .into_inner();
    assert_eq!(
        verified.status,
        pb::VerifySoftwareTokenStatus::Success as i32
    );
    assert!(verified.session.is_some_and(|s| s.len() >= 20));

    let err = s
        .users
        .clone()
        .associate_software_token(pb::AssociateSoftwareTokenRequest {
            access_token: None,
            session: Some("x".repeat(40)),
        })
        .await
        .expect_err("unknown session");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "NotAuthorizedException: Invalid session for the user."
    );
}

#[tokio::test]
async fn an_expired_access_token_is_not_authorized() {
    let s = Stack::local().await;
    let pool = s.create_pool().await;
    s.create_user_with_token(&pool, "kim", &[]).await;
    let token = s
        .local_fixtures()
        .issue_access_token(dev::IssueAccessTokenRequest {
            user_pool_id: pool,
            username: "kim".into(),
            ttl_seconds: Some(1),
        })
        .await
        .expect("token")
        .into_inner();
    assert_eq!(token.expires_in, 1);
    // Expiry is checked to the second; this one sleep is bounded at 2.1 s.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let err = s
        .users
        .clone()
        .get_user_mfa_settings(pb::GetUserMfaSettingsRequest {
            access_token: token.access_token,
        })
        .await
        .expect_err("expired");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        err.message(),
        "NotAuthorizedException: Access Token has expired"
    );
}

#[tokio::test]
async fn lite_pools_refuse_email_mfa() {
    // As Cognito answers it: the facade's pre-flight is off, so the local
    // backend's own rule answers (tests/integration/preflight.rs has the
    // pre-flight's FAILED_PRECONDITION for the same pool).
    let s = Stack::local_without_preflight().await;
    let pool = s
        .local_fixtures()
        .create_user_pool(dev::CreateUserPoolRequest {
            pool_name: "lite".into(),
            feature_plan: dev::FeaturePlan::Lite as i32,
            email_sending_account: dev::EmailSendingAccount::Developer as i32,
            ..Default::default()
        })
        .await
        .expect("lite pool")
        .into_inner()
        .user_pool_id;
    let req = pb::SetUserPoolMfaConfigRequest {
        email_mfa_configuration: Some(email_block()),
        mfa_configuration: pb::MfaConfiguration::Optional as i32,
        ..Default::default()
    };
    let err = s.set_config(&pool, req).await.expect_err("LITE");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "FeatureUnavailableInTierException");
}

#[tokio::test]
async fn fixtures_check_their_input() {
    let s = Stack::local().await;
    let pool = s.create_pool().await;
    assert!(
        pool.starts_with("us-east-1_") && pool.len() == "us-east-1_".len() + 9,
        "{pool}"
    );
    let err = s
        .local_fixtures()
        .create_user(dev::CreateUserRequest {
            user_pool_id: pool.clone(),
            username: "bad name".into(),
            attributes: [("phone_number".to_owned(), "555-0100".to_owned())].into(),
            ..Default::default()
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = err
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["username", "attributes[phone_number]"]);
    s.create_user_with_token(&pool, "lee", &[]).await;
    let err = s
        .local_fixtures()
        .create_user(dev::CreateUserRequest {
            user_pool_id: pool.clone(),
            username: "lee".into(),
            attributes: Default::default(),
            ..Default::default()
        })
        .await
        .expect_err("exists");
    assert_eq!(err.code(), Code::AlreadyExists);
    assert_eq!(reason(&err), "UsernameExistsException");
    let err = s
        .local_fixtures()
        .issue_access_token(dev::IssueAccessTokenRequest {
            user_pool_id: pool,
            username: "lee".into(),
            ttl_seconds: Some(0),
        })
        .await
        .expect_err("ttl 0");
    assert_eq!(err.code(), Code::InvalidArgument);
}

/// Issue 32: under MFA ON a user cannot turn a factor on with its own
/// token (the developer guide: users "can't enable or disable any MFA
/// methods"); an administrator can; a TOTP app the user verifies under ON
/// is its MFA at once. AdminDeleteSoftwareToken answers
/// UserNotConfirmedException for an unconfirmed user (the model lists it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_mfa_on_users_do_not_change_their_factors_admins_do() {
    let s = Stack::local().await;
    let pool = s.create_pool().await;
    s.pools
        .clone()
        .set_user_pool_mfa_config(pb::SetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            sms_mfa_configuration: Some(pb::SmsMfaConfig {
                sms_authentication_message: None,
                sms_configuration: Some(pb::SmsConfiguration {
                    sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                    ..Default::default()
                }),
            }),
            software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                enabled: Some(true),
            }),
            mfa_configuration: pb::MfaConfiguration::On as i32,
            ..Default::default()
        })
        .await
        .expect("ON with SMS and TOTP");
    let token = s
        .create_user_with_token(&pool, "ida", &[("phone_number", "+15555550123")])
        .await;
    let own_sms = s
        .users
        .clone()
        .set_user_mfa_preference(pb::SetUserMfaPreferenceRequest {
            access_token: token.clone(),
            sms_mfa_settings: Some(pb::SmsMfaSettings {
                enabled: Some(true),
                preferred_mfa: Some(true),
            }),
            ..Default::default()
        })
        .await
        .expect_err("a user turns nothing on under ON");
    assert_eq!(own_sms.code(), Code::InvalidArgument, "{own_sms:?}");
    assert!(
        own_sms
            .message()
            .contains("cannot be turned on by the user"),
        "{}",
        own_sms.message()
    );
    admin_set(&s, &pool, "ida", Some(on(true)), None, None, None)
        .await
        .expect("an administrator can");
    // A TOTP app verified under ON is the user's MFA at once.
    let key = s.associate_totp(&token).await;
    s.verify_totp(&token, totp::code_at(&key, now()))
        .await
        .expect("verify");
    let settings = s
        .users
        .clone()
        .admin_get_user_mfa_settings(pb::AdminGetUserMfaSettingsRequest {
            user_pool_id: pool.clone(),
            username: "ida".into(),
        })
        .await
        .expect("settings")
        .into_inner();
    assert!(
        settings
            .user_mfa_setting_list
            .contains(&"SOFTWARE_TOKEN_MFA".to_owned()),
        "{settings:?}"
    );
    // An unconfirmed user: UserNotConfirmedException.
    s.local_fixtures()
        .create_user(dev::CreateUserRequest {
            user_pool_id: pool.clone(),
            username: "jon".into(),
            status: dev::UserStatus::Unconfirmed as i32,
            ..Default::default()
        })
        .await
        .expect("unconfirmed user");
    let err = s
        .users
        .clone()
        .admin_delete_software_token(pb::AdminDeleteSoftwareTokenRequest {
            user_pool_id: pool.clone(),
            username: "jon".into(),
        })
        .await
        .expect_err("unconfirmed");
    assert_eq!(reason(&err), "UserNotConfirmedException", "{err:?}");
}

/// Issue 32: usernames are case-insensitive by default, as in a new
/// Cognito pool (UsernameConfiguration.CaseSensitive false): `alice` names
/// `Alice`, and `ALICE` cannot be created beside her; a case-sensitive
/// pool keeps them apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_are_case_insensitive_unless_the_pool_says_otherwise() {
    let s = Stack::local().await;
    let mut f = s.local_fixtures();
    for case_sensitive in [None, Some(true)] {
        let pool = f
            .create_user_pool(dev::CreateUserPoolRequest {
                pool_name: format!("case-{case_sensitive:?}"),
                case_sensitive,
                ..Default::default()
            })
            .await
            .expect("pool")
            .into_inner()
            .user_pool_id;
        let new_user = |name: &str| dev::CreateUserRequest {
            user_pool_id: pool.clone(),
            username: name.into(),
            ..Default::default()
        };
        f.create_user(new_user("Alice")).await.expect("Alice");
        let lookup = s
            .users
            .clone()
            .admin_get_user_mfa_settings(pb::AdminGetUserMfaSettingsRequest {
                user_pool_id: pool.clone(),
                username: "alice".into(),
            })
            .await;
        let again = f.create_user(new_user("ALICE")).await;
        if case_sensitive == Some(true) {
            let err = lookup.expect_err("another user");
            assert_eq!(err.code(), Code::NotFound, "{err:?}");
            again.expect("a different user in a case-sensitive pool");
        } else {
            assert_eq!(
                lookup.expect("alice is Alice").into_inner().username,
                "Alice"
            );
            let err = again.expect_err("ALICE is Alice");
            assert_eq!(reason(&err), "UsernameExistsException", "{err:?}");
        }
    }
}

/// Issue 32: pools whose users sign in with their email address or phone
/// number (UsernameAttributes). The value given as the username becomes
/// the attribute and the user's username is its sub, as AdminCreateUser
/// answers; the value names the user in Admin* calls whatever its case; it
/// is unique in the pool; a username that is neither is refused in
/// SignUp's words; and a pool takes alias or username attributes, not both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_whose_users_sign_in_with_an_email_or_a_phone_number() {
    let s = Stack::local().await;
    let mut f = s.local_fixtures();
    let pool_with =
        |name: &str, attributes: &[dev::UsernameAttribute]| dev::CreateUserPoolRequest {
            pool_name: name.into(),
            username_attributes: attributes.iter().map(|a| *a as i32).collect(),
            ..Default::default()
        };
    let new_user = |pool: &str, name: &str| dev::CreateUserRequest {
        user_pool_id: pool.into(),
        username: name.into(),
        ..Default::default()
    };
    let settings = |pool: &str, name: &str| {
        let mut users = s.users.clone();
        let request = pb::AdminGetUserMfaSettingsRequest {
            user_pool_id: pool.into(),
            username: name.into(),
        };
        async move { users.admin_get_user_mfa_settings(request).await }
    };

    let email_pool = f
        .create_user_pool(pool_with("by-email", &[dev::UsernameAttribute::Email]))
        .await
        .expect("pool")
        .into_inner()
        .user_pool_id;
    let ann = f
        .create_user(new_user(&email_pool, "Ann@Example.com"))
        .await
        .expect("Ann")
        .into_inner();
    assert_eq!(ann.username, ann.sub, "the pool names her by her sub");
    assert!(uuid::Uuid::parse_str(&ann.username).is_ok(), "{ann:?}");
    for name in ["ann@example.com", "ANN@EXAMPLE.COM", ann.sub.as_str()] {
        let found = settings(&email_pool, name).await.expect(name).into_inner();
        assert_eq!(found.username, ann.username, "{name}");
    }
    let err = f
        .create_user(new_user(&email_pool, "ann@example.com"))
        .await
        .expect_err("taken");
    assert_eq!(reason(&err), "UsernameExistsException", "{err:?}");
    assert!(
        err.message()
            .contains("An account with the given email already exists."),
        "{err:?}"
    );
    let err = f
        .create_user(new_user(&email_pool, "bob"))
        .await
        .expect_err("not an email");
    assert_eq!(reason(&err), "InvalidParameterException", "{err:?}");
    assert!(
        err.message().contains("Username should be an email."),
        "{err:?}"
    );
    let err = settings(&email_pool, "nobody@example.com")
        .await
        .expect_err("no such user");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    let either_pool = f
        .create_user_pool(pool_with(
            "by-either",
            &[
                dev::UsernameAttribute::Email,
                dev::UsernameAttribute::PhoneNumber,
            ],
        ))
        .await
        .expect("pool")
        .into_inner()
        .user_pool_id;
    let phone = f
        .create_user(new_user(&either_pool, "+15555550123"))
        .await
        .expect("by phone")
        .into_inner();
    let found = settings(&either_pool, "+15555550123")
        .await
        .expect("by phone")
        .into_inner();
    assert_eq!(found.username, phone.username);
    let err = f
        .create_user(new_user(&either_pool, "carol"))
        .await
        .expect_err("neither");
    assert!(
        err.message()
            .contains("Username should be either an email or a phone number."),
        "{err:?}"
    );

    let err = f
        .create_user_pool(dev::CreateUserPoolRequest {
            alias_attributes: vec![dev::AliasAttribute::Email as i32],
            ..pool_with("both", &[dev::UsernameAttribute::Email])
        })
        .await
        .expect_err("one or the other");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("username_attributes"), "{err:?}");
}

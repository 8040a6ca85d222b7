//! The conformance suite: what every backend must answer, driven through the
//! real server and the generated tonic clients.
//!
//! Each case is a function over a [`common::MotoStack`]; the `cases!` macro at
//! the bottom turns every case into one test, so the runner's summary counts
//! the cases. Backends that can run a case share it.

use crate::common;

use common::{Stack, now};
use mfa_facade::domain::totp;
use mfa_facade::proto::v1 as pb;
use prost_types::FieldMask;
use tonic::{Code, Request};
use tonic_types::StatusExt;

const SNS_ROLE: &str = "arn:aws:iam::123456789012:role/cognito-sns";

fn totp_only(mode: pb::MfaConfiguration) -> pb::SetUserPoolMfaConfigRequest {
    pb::SetUserPoolMfaConfigRequest {
        software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
            enabled: Some(true),
        }),
        mfa_configuration: mode as i32,
        ..Default::default()
    }
}

fn sms_block(message: &str) -> pb::SmsMfaConfig {
    pb::SmsMfaConfig {
        sms_authentication_message: Some(message.into()),
        sms_configuration: Some(pb::SmsConfiguration {
            sns_caller_arn: Some(SNS_ROLE.into()),
            external_id: Some("ext-id-1234".into()),
            sns_region: Some("us-east-1".into()),
            eums_sms: None,
        }),
    }
}

async fn get(s: &Stack, pool: &str) -> pb::GetUserPoolMfaConfigResponse {
    s.pools
        .clone()
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.into(),
        })
        .await
        .expect("get config")
        .into_inner()
}

fn bad_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
        .unwrap_or_default()
}

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

// ---- pool configuration ---------------------------------------------------

async fn pool_totp_optional_round_trip(s: &Stack) {
    let pool = s.create_pool().await;
    let out = s
        .set_config(&pool, totp_only(pb::MfaConfiguration::Optional))
        .await
        .expect("set");
    assert_eq!(out.mfa_configuration, pb::MfaConfiguration::Optional as i32);
    assert_eq!(
        out.software_token_mfa_configuration,
        Some(pb::SoftwareTokenMfaConfig {
            enabled: Some(true)
        })
    );
    let read = get(s, &pool).await;
    assert_eq!(
        read.mfa_configuration,
        pb::MfaConfiguration::Optional as i32
    );
    assert_eq!(
        read.software_token_mfa_configuration,
        out.software_token_mfa_configuration
    );
    assert_eq!(read.sms_mfa_configuration, None);
    assert_eq!(
        read.etag, out.etag,
        "the etag of a write equals the etag of the next read"
    );
}

async fn pool_sms_with_sns_round_trip(s: &Stack) {
    let pool = s.create_pool().await;
    let req = pb::SetUserPoolMfaConfigRequest {
        sms_mfa_configuration: Some(sms_block("Your code is {####}")),
        mfa_configuration: pb::MfaConfiguration::On as i32,
        ..Default::default()
    };
    let out = s.set_config(&pool, req).await.expect("set");
    assert_eq!(
        out.sms_mfa_configuration,
        Some(sms_block("Your code is {####}"))
    );
    let read = get(s, &pool).await;
    assert_eq!(
        read.sms_mfa_configuration,
        Some(sms_block("Your code is {####}"))
    );
    assert_eq!(read.mfa_configuration, pb::MfaConfiguration::On as i32);
}

async fn every_mfa_mode(s: &Stack) {
    let pool = s.create_pool().await;
    for mode in [pb::MfaConfiguration::On, pb::MfaConfiguration::Optional] {
        s.set_config(&pool, totp_only(mode)).await.expect("set");
        assert_eq!(
            get(s, &pool).await.mfa_configuration,
            mode as i32,
            "{mode:?}"
        );
    }
    let off = pb::SetUserPoolMfaConfigRequest {
        mfa_configuration: pb::MfaConfiguration::Off as i32,
        ..Default::default()
    };
    s.set_config(&pool, off).await.expect("set OFF");
    let read = get(s, &pool).await;
    assert_eq!(read.mfa_configuration, pb::MfaConfiguration::Off as i32);
    assert_eq!(
        read.software_token_mfa_configuration, None,
        "OFF carries no factor"
    );
}

async fn set_replaces_the_whole_configuration(s: &Stack) {
    let pool = s.create_pool().await;
    let both = pb::SetUserPoolMfaConfigRequest {
        sms_mfa_configuration: Some(sms_block("Code {####}")),
        ..totp_only(pb::MfaConfiguration::Optional)
    };
    s.set_config(&pool, both).await.expect("set both");
    // Cognito's semantics, kept on purpose: the SMS block not sent is SMS off.
    s.set_config(&pool, totp_only(pb::MfaConfiguration::Optional))
        .await
        .expect("set TOTP only");
    let read = get(s, &pool).await;
    assert_eq!(read.sms_mfa_configuration, None);
    assert!(read.software_token_mfa_configuration.is_some());
}

async fn update_changes_only_the_masked_fields(s: &Stack) {
    let pool = s.create_pool().await;
    let both = pb::SetUserPoolMfaConfigRequest {
        sms_mfa_configuration: Some(sms_block("Old {####}")),
        ..totp_only(pb::MfaConfiguration::Optional)
    };
    let before = s.set_config(&pool, both).await.expect("set");
    let update = pb::UpdateUserPoolMfaConfigRequest {
        user_pool_id: pool.clone(),
        config: Some(pb::UserPoolMfaConfig {
            sms_mfa_configuration: Some(pb::SmsMfaConfig {
                sms_authentication_message: Some("New {####}".into()),
                sms_configuration: None,
            }),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["sms_mfa_configuration.sms_authentication_message".into()],
        }),
        etag: Some(before.etag.clone()),
        validate_only: false,
    };
    let out = s
        .pools
        .clone()
        .update_user_pool_mfa_config(update)
        .await
        .expect("update")
        .into_inner();
    assert_ne!(out.etag, before.etag);
    let read = get(s, &pool).await;
    assert_eq!(
        read.sms_mfa_configuration,
        Some(sms_block("New {####}")),
        "SNS settings kept"
    );
    assert_eq!(
        read.software_token_mfa_configuration,
        Some(pb::SoftwareTokenMfaConfig {
            enabled: Some(true)
        }),
        "TOTP kept"
    );
    assert_eq!(
        read.mfa_configuration,
        pb::MfaConfiguration::Optional as i32
    );
}

async fn update_refuses_unknown_paths_before_any_call(s: &Stack) {
    let calls = s.upstream_calls();
    let update = pb::UpdateUserPoolMfaConfigRequest {
        user_pool_id: "us-east-1_Unused1".into(),
        config: Some(pb::UserPoolMfaConfig::default()),
        update_mask: Some(FieldMask {
            paths: vec!["smsMfaConfiguration".into()],
        }),
        ..Default::default()
    };
    let err = s
        .pools
        .clone()
        .update_user_pool_mfa_config(update)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&err), ["update_mask"]);
    let empty = pb::UpdateUserPoolMfaConfigRequest {
        user_pool_id: "us-east-1_Unused1".into(),
        ..Default::default()
    };
    let err = s
        .pools
        .clone()
        .update_user_pool_mfa_config(empty)
        .await
        .expect_err("refused");
    assert_eq!(bad_fields(&err), ["update_mask"]);
    assert_eq!(s.upstream_calls(), calls, "nothing reached the backend");
    // The count can move: a valid call reaches the backend and is counted.
    let _ = s
        .pools
        .clone()
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: "us-east-1_Unused1".into(),
        })
        .await;
    assert!(s.upstream_calls() > calls, "a valid call is counted");
}

async fn update_will_not_switch_a_factor_on_by_a_leaf(s: &Stack) {
    let pool = s.create_pool().await;
    s.set_config(&pool, totp_only(pb::MfaConfiguration::Optional))
        .await
        .expect("set");
    let update = pb::UpdateUserPoolMfaConfigRequest {
        user_pool_id: pool.clone(),
        config: Some(pb::UserPoolMfaConfig {
            sms_mfa_configuration: Some(pb::SmsMfaConfig {
                sms_authentication_message: Some("Hi {####}".into()),
                sms_configuration: None,
            }),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["sms_mfa_configuration.sms_authentication_message".into()],
        }),
        ..Default::default()
    };
    let err = s
        .pools
        .clone()
        .update_user_pool_mfa_config(update)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "FACTOR_BLOCK_NOT_SET");
    assert_eq!(get(s, &pool).await.sms_mfa_configuration, None);
}

async fn a_stale_etag_aborts_and_writes_nothing(s: &Stack) {
    let pool = s.create_pool().await;
    let first = s
        .set_config(&pool, totp_only(pb::MfaConfiguration::Optional))
        .await
        .expect("set");
    s.set_config(&pool, totp_only(pb::MfaConfiguration::On))
        .await
        .expect("someone else writes");
    let writes = s.upstream_writes();
    let stale = pb::SetUserPoolMfaConfigRequest {
        etag: Some(first.etag.clone()),
        ..totp_only(pb::MfaConfiguration::Optional)
    };
    let err = s.set_config(&pool, stale).await.expect_err("aborted");
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(reason(&err), "ETAG_MISMATCH");
    assert_eq!(s.upstream_writes(), writes, "no write was sent");
    assert_eq!(
        get(s, &pool).await.mfa_configuration,
        pb::MfaConfiguration::On as i32
    );

    let current = get(s, &pool).await.etag;
    let fresh = pb::SetUserPoolMfaConfigRequest {
        etag: Some(current),
        ..totp_only(pb::MfaConfiguration::Optional)
    };
    s.set_config(&pool, fresh)
        .await
        .expect("a fresh etag writes");
    assert_eq!(
        get(s, &pool).await.mfa_configuration,
        pb::MfaConfiguration::Optional as i32
    );
}

async fn validate_only_changes_nothing(s: &Stack) {
    let pool = s.create_pool().await;
    let before = s
        .set_config(&pool, totp_only(pb::MfaConfiguration::Optional))
        .await
        .expect("set");
    let writes = s.upstream_writes();
    let dry = pb::SetUserPoolMfaConfigRequest {
        validate_only: true,
        ..totp_only(pb::MfaConfiguration::On)
    };
    let out = s.set_config(&pool, dry).await.expect("validate only");
    assert_eq!(
        out.mfa_configuration,
        pb::MfaConfiguration::On as i32,
        "the configuration as submitted"
    );
    assert_eq!(out.etag, before.etag, "the pool's etag, unchanged");
    assert_eq!(s.upstream_writes(), writes);
    assert_eq!(
        get(s, &pool).await.mfa_configuration,
        pb::MfaConfiguration::Optional as i32
    );
    // validate_only still checks that the pool exists.
    let missing = pb::SetUserPoolMfaConfigRequest {
        validate_only: true,
        ..totp_only(pb::MfaConfiguration::On)
    };
    let err = s
        .set_config("us-east-1_NoSuchPool9", missing)
        .await
        .expect_err("no pool");
    assert_eq!(err.code(), Code::NotFound);
}

async fn invalid_input_names_every_field_and_calls_nothing(s: &Stack) {
    let calls = s.upstream_calls();
    let bad_pool = pb::SetUserPoolMfaConfigRequest {
        user_pool_id: "not a pool id".into(),
        sms_mfa_configuration: Some(pb::SmsMfaConfig {
            sms_authentication_message: Some("no placeholder".into()),
            sms_configuration: Some(pb::SmsConfiguration {
                sns_caller_arn: Some("role".into()),
                ..Default::default()
            }),
        }),
        email_mfa_configuration: Some(pb::EmailMfaConfig {
            message: Some("short".into()),
            subject: None,
        }),
        mfa_configuration: pb::MfaConfiguration::Optional as i32,
        web_authn_configuration: Some(pb::WebAuthnConfiguration {
            relying_party_id: Some(String::new()),
            user_verification: 42,
            factor_configuration: 0,
        }),
        etag: Some("abc".into()),
        ..Default::default()
    };
    let err = s
        .pools
        .clone()
        .set_user_pool_mfa_config(bad_pool)
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut fields = bad_fields(&err);
    fields.sort();
    fields.dedup();
    assert_eq!(
        fields,
        [
            "email_mfa_configuration.message",
            "etag",
            "sms_mfa_configuration.sms_authentication_message",
            "sms_mfa_configuration.sms_configuration.sns_caller_arn",
            "user_pool_id",
            "web_authn_configuration.relying_party_id",
            "web_authn_configuration.user_verification",
        ]
    );

    let off_with_blocks = pb::SetUserPoolMfaConfigRequest {
        user_pool_id: "us-east-1_Abc123".into(),
        mfa_configuration: pb::MfaConfiguration::Off as i32,
        ..totp_only(pb::MfaConfiguration::Off)
    };
    let err = s
        .pools
        .clone()
        .set_user_pool_mfa_config(off_with_blocks)
        .await
        .expect_err("refused");
    assert_eq!(bad_fields(&err), ["software_token_mfa_configuration"]);

    let on_without_factor = pb::SetUserPoolMfaConfigRequest {
        user_pool_id: "us-east-1_Abc123".into(),
        mfa_configuration: pb::MfaConfiguration::On as i32,
        web_authn_configuration: Some(pb::WebAuthnConfiguration::default()),
        ..Default::default()
    };
    let err = s
        .pools
        .clone()
        .set_user_pool_mfa_config(on_without_factor)
        .await
        .expect_err("refused");
    assert_eq!(bad_fields(&err), ["mfa_configuration"]);

    let two_preferred = pb::AdminSetUserMfaPreferenceRequest {
        user_pool_id: "us-east-1_Abc123".into(),
        username: "has space".into(),
        sms_mfa_settings: Some(pb::SmsMfaSettings {
            enabled: Some(true),
            preferred_mfa: Some(true),
        }),
        software_token_mfa_settings: Some(pb::SoftwareTokenMfaSettings {
            enabled: Some(true),
            preferred_mfa: Some(true),
        }),
        email_mfa_settings: Some(pb::EmailMfaSettings {
            enabled: Some(false),
            preferred_mfa: Some(true),
        }),
        web_authn_mfa_settings: None,
    };
    let err = s
        .users
        .clone()
        .admin_set_user_mfa_preference(two_preferred)
        .await
        .expect_err("refused");
    let mut fields = bad_fields(&err);
    fields.sort();
    fields.dedup();
    assert_eq!(
        fields,
        [
            "email_mfa_settings.preferred_mfa",
            "sms_mfa_settings.preferred_mfa",
            "software_token_mfa_settings.preferred_mfa",
            "username"
        ]
    );

    let both = pb::VerifySoftwareTokenRequest {
        access_token: Some("abc.def".into()),
        session: Some("s".repeat(30)),
        user_code: "12345".into(),
        friendly_device_name: None,
    };
    let err = s
        .users
        .clone()
        .verify_software_token(both)
        .await
        .expect_err("refused");
    assert_eq!(bad_fields(&err), ["session", "user_code"]);
    assert!(
        !err.message().contains("abc.def"),
        "a token is never echoed"
    );

    let neither = pb::AssociateSoftwareTokenRequest::default();
    let err = s
        .users
        .clone()
        .associate_software_token(neither)
        .await
        .expect_err("refused");
    assert_eq!(bad_fields(&err), ["access_token"]);

    let err = s
        .users
        .clone()
        .get_user_mfa_settings(pb::GetUserMfaSettingsRequest {
            access_token: "bad token!".into(),
        })
        .await
        .expect_err("refused");
    assert_eq!(bad_fields(&err), ["access_token"]);

    let err = s
        .users
        .clone()
        .admin_delete_software_token(pb::AdminDeleteSoftwareTokenRequest::default())
        .await
        .expect_err("refused");
    assert_eq!(bad_fields(&err), ["user_pool_id", "username"]);

    assert_eq!(
        s.upstream_calls(),
        calls,
        "no invalid request reached the backend"
    );
}

// ---- users ----------------------------------------------------------------

async fn preference_through_the_users_own_token(s: &Stack) {
    let pool = s.create_pool().await;
    let token = s
        .create_user_with_token(
            &pool,
            "alice",
            &[
                ("phone_number", "+15555550100"),
                ("email", "alice@example.com"),
            ],
        )
        .await;
    let req = pb::SetUserMfaPreferenceRequest {
        access_token: token.clone(),
        sms_mfa_settings: Some(pb::SmsMfaSettings {
            enabled: Some(true),
            preferred_mfa: Some(true),
        }),
        ..Default::default()
    };
    s.users
        .clone()
        .set_user_mfa_preference(req)
        .await
        .expect("set preference");
    let out = s
        .users
        .clone()
        .get_user_mfa_settings(pb::GetUserMfaSettingsRequest {
            access_token: token,
        })
        .await
        .expect("get settings")
        .into_inner();
    assert_eq!(out.username, "alice");
    assert_eq!(out.preferred_mfa_setting.as_deref(), Some("SMS_MFA"));
    assert_eq!(out.user_mfa_setting_list, ["SMS_MFA"]);
}

async fn admin_preference_and_settings(s: &Stack) {
    let pool = s.create_pool().await;
    s.create_user_with_token(&pool, "bob", &[("phone_number", "+15555550101")])
        .await;
    let req = pb::AdminSetUserMfaPreferenceRequest {
        user_pool_id: pool.clone(),
        username: "bob".into(),
        sms_mfa_settings: Some(pb::SmsMfaSettings {
            enabled: Some(true),
            preferred_mfa: Some(false),
        }),
        ..Default::default()
    };
    s.users
        .clone()
        .admin_set_user_mfa_preference(req)
        .await
        .expect("admin set");
    let out = s
        .users
        .clone()
        .admin_get_user_mfa_settings(pb::AdminGetUserMfaSettingsRequest {
            user_pool_id: pool,
            username: "bob".into(),
        })
        .await
        .expect("admin get")
        .into_inner();
    assert_eq!(out.username, "bob");
    assert_eq!(out.user_mfa_setting_list, ["SMS_MFA"]);
    assert_eq!(out.preferred_mfa_setting, None, "enabled but not preferred");
}

/// A pool with TOTP on, a user in it, and an associated (not yet verified)
/// software token: the user's access token and the TOTP key.
async fn user_with_associated_totp(s: &Stack, username: &str) -> (String, Vec<u8>) {
    let pool = s.pool_with_totp(pb::MfaConfiguration::Optional).await;
    let token = s.create_user_with_token(&pool, username, &[]).await;
    let key = s.associate_totp(&token).await;
    (token, key)
}

async fn totp_enrolment_with_a_real_code(s: &Stack) {
    let (token, key) = user_with_associated_totp(s, "carol").await;

    // Preferring TOTP before the token is verified is refused by Cognito.
    let prefer = pb::SetUserMfaPreferenceRequest {
        access_token: token.clone(),
        software_token_mfa_settings: Some(pb::SoftwareTokenMfaSettings {
            enabled: Some(true),
            preferred_mfa: Some(true),
        }),
        ..Default::default()
    };
    let err = s
        .users
        .clone()
        .set_user_mfa_preference(prefer.clone())
        .await
        .expect_err("not verified");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(reason(&err), "InvalidParameterException");

    let verified = s
        .verify_totp(&token, totp::code_at(&key, now()))
        .await
        .expect("verify");
    assert_eq!(
        verified.status,
        pb::VerifySoftwareTokenStatus::Success as i32
    );

    s.users
        .clone()
        .set_user_mfa_preference(prefer)
        .await
        .expect("prefer TOTP");
    let out = s
        .users
        .clone()
        .get_user_mfa_settings(pb::GetUserMfaSettingsRequest {
            access_token: token,
        })
        .await
        .expect("settings")
        .into_inner();
    assert_eq!(
        out.preferred_mfa_setting.as_deref(),
        Some("SOFTWARE_TOKEN_MFA")
    );
    assert_eq!(out.user_mfa_setting_list, ["SOFTWARE_TOKEN_MFA"]);
}

async fn a_wrong_totp_code_is_refused(s: &Stack) {
    let (token, key) = user_with_associated_totp(s, "dave").await;
    // A code from ten minutes ago: well outside the ±30 s window.
    let err = s
        .verify_totp(&token, totp::code_at(&key, now() - 600))
        .await
        .expect_err("mismatch");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        ["CodeMismatchException", "EnableSoftwareTokenMFAException"]
            .contains(&reason(&err).as_str()),
        "{err:?}"
    );
}

// ---- errors -----------------------------------------------------------------

async fn an_unknown_pool_is_not_found_with_error_info(s: &Stack) {
    let err = s
        .pools
        .clone()
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: "us-east-1_DoesNotExist".into(),
        })
        .await
        .expect_err("not found");
    assert_eq!(err.code(), Code::NotFound);
    let info = err.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "ResourceNotFoundException");
    assert_eq!(info.domain, "cognito-idp.amazonaws.com");
    assert!(
        info.metadata
            .get("aws_request_id")
            .is_some_and(|id| !id.is_empty()),
        "{info:?}"
    );
}

async fn an_unknown_user_is_not_found(s: &Stack) {
    let pool = s.create_pool().await;
    let err = s
        .users
        .clone()
        .admin_get_user_mfa_settings(pb::AdminGetUserMfaSettingsRequest {
            user_pool_id: pool,
            username: "nobody".into(),
        })
        .await
        .expect_err("not found");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "UserNotFoundException");
}

async fn a_bad_access_token_is_permission_denied(s: &Stack) {
    let forged = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    let err = s
        .users
        .clone()
        .get_user_mfa_settings(pb::GetUserMfaSettingsRequest {
            access_token: forged.into(),
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "NotAuthorizedException");
    assert!(
        !err.message().contains(forged),
        "the token is scrubbed from the message: {}",
        err.message()
    );
}

async fn the_request_id_is_echoed_or_made(s: &Stack) {
    let pool = s.create_pool().await;
    let mut req = Request::new(pb::GetUserPoolMfaConfigRequest {
        user_pool_id: pool.clone(),
    });
    req.metadata_mut()
        .insert("x-request-id", "caller-chosen-42".parse().expect("header"));
    let resp = s
        .pools
        .clone()
        .get_user_pool_mfa_config(req)
        .await
        .expect("get");
    assert_eq!(
        resp.metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("caller-chosen-42")
    );
    let resp = s
        .pools
        .clone()
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest { user_pool_id: pool })
        .await
        .expect("get");
    let made = resp
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(made.len(), 36, "a fresh UUID: {made:?}");
    // Errors carry it too.
    let err = s
        .pools
        .clone()
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: "bad".into(),
        })
        .await
        .expect_err("invalid");
    assert!(err.metadata().get("x-request-id").is_some());
}

/// One test per case and backend: `moto::case` and `local::case`.
/// A walk of a pool that does not exist is refused as the call's status.
async fn a_walk_of_an_unknown_pool_is_not_found(s: &Stack) {
    let err = s
        .pools
        .clone()
        .list_user_mfa_status(pb::ListUserMfaStatusRequest {
            user_pool_id: "us-east-1_Nope00000".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown pool");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
}

/// Bad input to the new calls names its field and reaches nothing.
async fn bad_input_to_the_new_calls_reaches_nothing(s: &Stack) {
    let before = s.upstream_calls();
    let users = s.users.clone();
    let list = users
        .clone()
        .list_web_authn_credentials(pb::ListWebAuthnCredentialsRequest {
            access_token: "a.b.c".into(),
            next_token: Some(String::new()),
            max_results: Some(21),
        })
        .await
        .expect_err("bad list");
    assert_eq!(list.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&list), ["next_token", "max_results"]);
    let delete = users
        .clone()
        .delete_web_authn_credential(pb::DeleteWebAuthnCredentialRequest {
            access_token: "bad token!".into(),
            credential_id: "has space".into(),
        })
        .await
        .expect_err("bad delete");
    assert_eq!(bad_fields(&delete), ["access_token", "credential_id"]);
    let factors = users
        .clone()
        .admin_get_user_auth_factors(pb::AdminGetUserAuthFactorsRequest {
            user_pool_id: "nope".into(),
            username: String::new(),
        })
        .await
        .expect_err("bad factors");
    assert_eq!(bad_fields(&factors), ["user_pool_id", "username"]);
    let walk = s
        .pools
        .clone()
        .list_user_mfa_status(pb::ListUserMfaStatusRequest {
            user_pool_id: "us-east-1_A".into(),
            filter: "x".repeat(300),
            page_token: "not a token".into(),
        })
        .await
        .expect_err("bad walk");
    assert_eq!(bad_fields(&walk), ["filter", "page_token"]);
    assert_eq!(s.upstream_calls(), before, "nothing reached the backend");
}

// ---- sessions and the attributes MFA needs (issue 35) ---------------------

async fn global_sign_out_revokes_the_users_tokens(s: &Stack) {
    let pool = s.create_pool().await;
    let mut users = s.users.clone();
    let settings = |t: &str| pb::GetUserMfaSettingsRequest {
        access_token: t.to_owned(),
    };
    // The user's own sign-out.
    let own = s.create_user_with_token(&pool, "olga", &[]).await;
    users
        .get_user_mfa_settings(settings(&own))
        .await
        .expect("valid before");
    users
        .global_sign_out(pb::GlobalSignOutRequest {
            access_token: own.clone(),
        })
        .await
        .expect("sign out");
    let refused = users
        .get_user_mfa_settings(settings(&own))
        .await
        .expect_err("revoked");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // An admin's.
    let other = s.create_user_with_token(&pool, "piet", &[]).await;
    users
        .admin_user_global_sign_out(pb::AdminUserGlobalSignOutRequest {
            user_pool_id: pool.clone(),
            username: "piet".into(),
        })
        .await
        .expect("admin sign out");
    let refused = users
        .get_user_mfa_settings(settings(&other))
        .await
        .expect_err("revoked");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let unknown = users
        .admin_user_global_sign_out(pb::AdminUserGlobalSignOutRequest {
            user_pool_id: pool,
            username: "nobody".into(),
        })
        .await
        .expect_err("no such user");
    assert_eq!(unknown.code(), Code::NotFound);
}

async fn an_admin_sets_the_phone_number_sms_mfa_needs(s: &Stack) {
    let pool = s.create_pool().await;
    s.create_user_with_token(&pool, "quinn", &[]).await;
    let mut users = s.users.clone();
    users
        .admin_update_user_attributes(pb::AdminUpdateUserAttributesRequest {
            user_pool_id: pool.clone(),
            username: "quinn".into(),
            user_attributes: vec![
                pb::Attribute {
                    name: "phone_number".into(),
                    value: Some("+15555550177".into()),
                },
                pb::Attribute {
                    name: "phone_number_verified".into(),
                    value: Some("true".into()),
                },
            ],
            ..Default::default()
        })
        .await
        .expect("attributes");
    users
        .admin_set_user_mfa_preference(pb::AdminSetUserMfaPreferenceRequest {
            user_pool_id: pool.clone(),
            username: "quinn".into(),
            sms_mfa_settings: Some(pb::SmsMfaSettings {
                enabled: Some(true),
                preferred_mfa: Some(true),
            }),
            ..Default::default()
        })
        .await
        .expect("SMS MFA with the number set");
    let out = users
        .admin_get_user_mfa_settings(pb::AdminGetUserMfaSettingsRequest {
            user_pool_id: pool.clone(),
            username: "quinn".into(),
        })
        .await
        .expect("settings")
        .into_inner();
    assert_eq!(out.user_mfa_setting_list, ["SMS_MFA"]);
    // Any other attribute is the facade's refusal, before any call.
    let before = s.upstream_calls();
    let bad = users
        .admin_update_user_attributes(pb::AdminUpdateUserAttributesRequest {
            user_pool_id: pool,
            username: "quinn".into(),
            user_attributes: vec![pb::Attribute {
                name: "custom:role".into(),
                value: Some("admin".into()),
            }],
            ..Default::default()
        })
        .await
        .expect_err("not an MFA attribute");
    assert_eq!(bad_fields(&bad), ["user_attributes[0].name"]);
    assert_eq!(s.upstream_calls(), before, "nothing reached the backend");
}

macro_rules! cases {
    ($($backend:ident => $start:expr),+ ; $cases:tt) => {
        $( cases!(@backend $backend, $start, $cases); )+
    };
    (@backend $backend:ident, $start:expr, [$($case:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let stack = $start.await;
                    super::$case(&stack).await;
                }
            )*
        }
    };
}

cases!(
    moto => super::Stack::moto(),
    local => super::Stack::local();
    [
        pool_totp_optional_round_trip,
        pool_sms_with_sns_round_trip,
        every_mfa_mode,
        set_replaces_the_whole_configuration,
        update_changes_only_the_masked_fields,
        update_refuses_unknown_paths_before_any_call,
        update_will_not_switch_a_factor_on_by_a_leaf,
        a_stale_etag_aborts_and_writes_nothing,
        validate_only_changes_nothing,
        invalid_input_names_every_field_and_calls_nothing,
        preference_through_the_users_own_token,
        admin_preference_and_settings,
        totp_enrolment_with_a_real_code,
        a_wrong_totp_code_is_refused,
        an_unknown_pool_is_not_found_with_error_info,
        an_unknown_user_is_not_found,
        a_bad_access_token_is_permission_denied,
        the_request_id_is_echoed_or_made,
        a_walk_of_an_unknown_pool_is_not_found,
        bad_input_to_the_new_calls_reaches_nothing,
        global_sign_out_revokes_the_users_tokens,
        an_admin_sets_the_phone_number_sms_mfa_needs,
    ]
);

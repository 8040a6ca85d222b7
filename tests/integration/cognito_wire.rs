//! What the cognito backend really sends: members that moto stores nowhere
//! (email MFA, WebAuthn, EumsSms, WebAuthnMfaSettings) and operations moto
//! lacks (AdminDeleteSoftwareToken, Get/AdminGetUserAuthFactors,
//! ListWebAuthnCredentials, DeleteWebAuthnCredential) are checked on the wire, in the JSON the
//! SDK sent, seen through the recording proxy in front of moto.

use crate::common;

use common::Stack;
use mfa_facade::proto::v1 as pb;
use serde_json::json;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_members_moto_ignores_go_out_with_cognitos_names() {
    let s = Stack::moto().await;
    let pool = s.create_email_pool().await;
    let req = pb::SetUserPoolMfaConfigRequest {
        user_pool_id: pool.clone(),
        sms_mfa_configuration: Some(pb::SmsMfaConfig {
            sms_authentication_message: Some("Code {####}".into()),
            sms_configuration: Some(pb::SmsConfiguration {
                sns_caller_arn: None,
                external_id: None,
                sns_region: None,
                eums_sms: Some(pb::EumsSmsConfiguration {
                    caller_arn: "arn:aws:iam::123456789012:role/eums-sms".into(),
                    external_id: Some("eums-external".into()),
                    origination_identity: Some("+15555550199".into()),
                    configuration_set_name: Some("mfa-set".into()),
                    in_entity_id: Some("1101234567890".into()),
                    in_template_id: Some("1107000000000".into()),
                    region: Some("us-east-1".into()),
                }),
            }),
        }),
        email_mfa_configuration: Some(pb::EmailMfaConfig {
            message: Some("Your code is {####}".into()),
            subject: Some("Sign-in code".into()),
        }),
        mfa_configuration: pb::MfaConfiguration::Optional as i32,
        web_authn_configuration: Some(pb::WebAuthnConfiguration {
            relying_party_id: Some("auth.example.com".into()),
            user_verification: pb::UserVerification::Required as i32,
            factor_configuration: pb::WebAuthnFactorConfiguration::MultiFactorWithUserVerification
                as i32,
        }),
        ..Default::default()
    };
    s.pools
        .clone()
        .set_user_pool_mfa_config(req)
        .await
        .expect("set");

    let sent = s.proxy().bodies("SetUserPoolMfaConfig");
    assert_eq!(sent.len(), 1);
    let body = &sent[0];
    assert_eq!(body["UserPoolId"], json!(pool));
    assert_eq!(body["MfaConfiguration"], json!("OPTIONAL"));
    assert_eq!(
        body["EmailMfaConfiguration"],
        json!({"Message": "Your code is {####}", "Subject": "Sign-in code"})
    );
    assert_eq!(
        body["WebAuthnConfiguration"],
        json!({
            "RelyingPartyId": "auth.example.com",
            "UserVerification": "required",
            "FactorConfiguration": "MULTI_FACTOR_WITH_USER_VERIFICATION"
        })
    );
    assert_eq!(
        body["SmsMfaConfiguration"]["SmsAuthenticationMessage"],
        json!("Code {####}")
    );
    let sms = &body["SmsMfaConfiguration"]["SmsConfiguration"];
    // SDK 1.144 always sends SnsCallerArn; "" is what Cognito's 2026 model allows.
    assert_eq!(sms["SnsCallerArn"], json!(""));
    assert_eq!(
        sms["EumsSms"],
        json!({
            "CallerArn": "arn:aws:iam::123456789012:role/eums-sms",
            "ExternalId": "eums-external",
            "OriginationIdentity": "+15555550199",
            "ConfigurationSetName": "mfa-set",
            "InEntityId": "1101234567890",
            "InTemplateId": "1107000000000",
            "Region": "us-east-1"
        })
    );
    assert!(
        body.get("SoftwareTokenMfaConfiguration").is_none(),
        "absent stays absent: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_settings_moto_ignores_go_out_with_cognitos_names() {
    let s = Stack::moto().await;
    let pool = s.create_pool().await;
    let token = s
        .create_user_with_token(&pool, "erin", &[("email", "erin@example.com")])
        .await;

    let admin = pb::AdminSetUserMfaPreferenceRequest {
        user_pool_id: pool.clone(),
        username: "erin".into(),
        email_mfa_settings: Some(pb::EmailMfaSettings {
            enabled: Some(true),
            preferred_mfa: Some(true),
        }),
        web_authn_mfa_settings: Some(pb::WebAuthnMfaSettings {
            enabled: Some(true),
        }),
        ..Default::default()
    };
    s.users
        .clone()
        .admin_set_user_mfa_preference(admin)
        .await
        .expect("admin set");
    let own = pb::SetUserMfaPreferenceRequest {
        access_token: token.clone(),
        email_mfa_settings: Some(pb::EmailMfaSettings {
            enabled: Some(false),
            preferred_mfa: None,
        }),
        web_authn_mfa_settings: Some(pb::WebAuthnMfaSettings {
            enabled: Some(false),
        }),
        ..Default::default()
    };
    s.users
        .clone()
        .set_user_mfa_preference(own)
        .await
        .expect("set");

    let admin_body = &s.proxy().bodies("AdminSetUserMFAPreference")[0];
    assert_eq!(admin_body["UserPoolId"], json!(pool));
    assert_eq!(admin_body["Username"], json!("erin"));
    assert_eq!(
        admin_body["EmailMfaSettings"],
        json!({"Enabled": true, "PreferredMfa": true})
    );
    assert_eq!(admin_body["WebAuthnMfaSettings"], json!({"Enabled": true}));
    assert!(
        admin_body.get("SMSMfaSettings").is_none()
            && admin_body.get("SoftwareTokenMfaSettings").is_none()
    );

    let own_body = &s.proxy().bodies("SetUserMFAPreference")[0];
    assert_eq!(own_body["AccessToken"], json!(token));
    // An omitted flag inside a sent block goes out as false (Cognito's default).
    assert_eq!(
        own_body["EmailMfaSettings"],
        json!({"Enabled": false, "PreferredMfa": false})
    );
    assert_eq!(own_body["WebAuthnMfaSettings"], json!({"Enabled": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_delete_software_token_goes_out_and_moto_s_gap_is_a_clean_error() {
    let s = Stack::moto().await;
    let pool = s.create_pool().await;
    let result = s
        .users
        .clone()
        .admin_delete_software_token(pb::AdminDeleteSoftwareTokenRequest {
            user_pool_id: pool.clone(),
            username: "frank".into(),
        })
        .await;
    let sent = s.proxy().bodies("AdminDeleteSoftwareToken");
    assert_eq!(sent.len(), 1, "one attempt (max_attempts = 1 in tests)");
    assert_eq!(sent[0], json!({"UserPoolId": pool, "Username": "frank"}));
    // moto 5.2.5 has no AdminDeleteSoftwareToken and answers an HTML 500:
    // the facade turns that into a retryable UNAVAILABLE, never a panic.
    let err = result.expect_err("moto does not implement it");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(
        err.message(),
        "Cognito is unavailable: unreadable answer from Cognito (HTTP 500)"
    );
}

/// The four calls moto 5.2.5 lacks go out with Cognito's member names
/// (each seen once in the JSON the SDK sent), and moto's HTML 500 for them
/// is a clean UNAVAILABLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_factor_and_passkey_calls_moto_lacks_go_out_with_cognitos_names() {
    let s = Stack::moto().await;
    let pool = s.create_pool().await;
    let token = s.create_user_with_token(&pool, "gil", &[]).await;
    let users = s.users.clone();
    let results = [
        users
            .clone()
            .get_user_auth_factors(pb::GetUserAuthFactorsRequest {
                access_token: token.clone(),
            })
            .await
            .map(|_| ()),
        users
            .clone()
            .admin_get_user_auth_factors(pb::AdminGetUserAuthFactorsRequest {
                user_pool_id: pool.clone(),
                username: "gil".into(),
            })
            .await
            .map(|_| ()),
        users
            .clone()
            .list_web_authn_credentials(pb::ListWebAuthnCredentialsRequest {
                access_token: token.clone(),
                next_token: Some("page-2".into()),
                max_results: Some(5),
            })
            .await
            .map(|_| ()),
        users
            .clone()
            .delete_web_authn_credential(pb::DeleteWebAuthnCredentialRequest {
                access_token: token.clone(),
                credential_id: "cred-1".into(),
            })
            .await
            .map(|_| ()),
    ];
    for (operation, body) in [
        ("GetUserAuthFactors", json!({"AccessToken": token})),
        (
            "AdminGetUserAuthFactors",
            json!({"UserPoolId": pool, "Username": "gil"}),
        ),
        (
            "ListWebAuthnCredentials",
            json!({"AccessToken": token, "NextToken": "page-2", "MaxResults": 5}),
        ),
        (
            "DeleteWebAuthnCredential",
            json!({"AccessToken": token, "CredentialId": "cred-1"}),
        ),
    ] {
        assert_eq!(s.proxy().bodies(operation), [body], "{operation}");
    }
    for r in results {
        let err = r.expect_err("moto does not implement it");
        assert_eq!(err.code(), Code::Unavailable, "{err:?}");
        assert!(!err.message().contains(&token), "no token in the message");
    }
}

/// The coverage walk reads the pool's MFA configuration and its account
/// recovery (DescribeUserPool) once, asks ListUsers for pages of 60 with
/// the sub, phone_number, email and their verified flags only and
/// the caller's filter, and reads each user with AdminGetUserAuthFactors —
/// never AdminGetUser, whose documentation says it adds the user to the
/// monthly active user count. moto 5.2.5 has no AdminGetUserAuthFactors:
/// the walk ends with moto's refusal, after the request went out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walk_pages_list_users_by_60_and_never_calls_admin_get_user() {
    let s = Stack::moto().await;
    let pool = s.create_pool().await;
    s.create_user_with_token(&pool, "hana", &[]).await;
    let mut stream = s
        .pools
        .clone()
        .list_user_mfa_status(pb::ListUserMfaStatusRequest {
            user_pool_id: pool.clone(),
            filter: "username ^= \"ha\"".into(),
            page_token: String::new(),
        })
        .await
        .expect("walk")
        .into_inner();
    let ended = loop {
        match stream.message().await {
            Ok(Some(_)) => {}
            Ok(None) => break None,
            Err(status) => break Some(status),
        }
    };
    let ended = ended.expect("moto has no AdminGetUserAuthFactors: the walk ends with its refusal");
    assert_ne!(ended.code(), Code::Ok);
    assert_eq!(
        s.proxy().bodies("GetUserPoolMfaConfig"),
        [json!({"UserPoolId": pool})]
    );
    assert_eq!(
        s.proxy().bodies("DescribeUserPool"),
        [json!({"UserPoolId": pool})]
    );
    assert_eq!(
        s.proxy().bodies("ListUsers"),
        [json!({
            "UserPoolId": pool,
            "AttributesToGet": [
                "sub",
                "phone_number",
                "email",
                "phone_number_verified",
                "email_verified"
            ],
            "Limit": 60,
            "Filter": "username ^= \"ha\""
        })]
    );
    assert_eq!(
        s.proxy().bodies("AdminGetUserAuthFactors"),
        [json!({"UserPoolId": pool, "Username": "hana"})]
    );
    assert!(
        s.proxy().bodies("AdminGetUser").is_empty(),
        "no AdminGetUser: it counts toward MAU"
    );
}

//! The pre-flight (issue 18): a pool change is checked against the pool's
//! own state — its feature plan, email and SMS sending, sign-in policy and
//! account recovery — before anything is written, and in `validate_only`.
//! Each state rule on the local backend (its fixtures set the state), the
//! rules moto can hold on the cognito backend (DescribeUserPool through the
//! SDK; the request seen on the wire), and the answer's shape: one
//! FAILED_PRECONDITION with a `google.rpc.PreconditionFailure` naming every
//! rule broken and the pool property that breaks it.

use crate::common;

use aws_sdk_cognitoidentityprovider::types as sdk;
use common::Stack;
use mfa_facade::proto::{dev::v1 as dev, v1 as pb};
use tonic::Code;
use tonic_types::StatusExt;

/// (type, subject) of each violation, and the ErrorInfo reason.
fn preconditions(status: &tonic::Status) -> (String, Vec<(String, String)>) {
    let reason = status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default();
    let found = status
        .get_details_precondition_failure()
        .map(|p| {
            p.violations
                .into_iter()
                .map(|v| (v.r#type, v.subject))
                .collect()
        })
        .unwrap_or_default();
    (reason, found)
}

fn pair(t: &str, s: &str) -> (String, String) {
    (t.to_owned(), s.to_owned())
}

async fn local_pool(s: &Stack, req: dev::CreateUserPoolRequest) -> String {
    s.local_fixtures()
        .create_user_pool(dev::CreateUserPoolRequest {
            pool_name: format!("pool-{}", uuid::Uuid::new_v4().simple()),
            ..req
        })
        .await
        .expect("create pool")
        .into_inner()
        .user_pool_id
}

fn email_optional() -> pb::SetUserPoolMfaConfigRequest {
    pb::SetUserPoolMfaConfigRequest {
        email_mfa_configuration: Some(pb::EmailMfaConfig {
            message: Some("Your code is {####}".into()),
            subject: Some("Sign-in code".into()),
        }),
        mfa_configuration: pb::MfaConfiguration::Optional as i32,
        ..Default::default()
    }
}

fn totp(mode: pb::MfaConfiguration) -> pb::SetUserPoolMfaConfigRequest {
    pb::SetUserPoolMfaConfigRequest {
        software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
            enabled: Some(true),
        }),
        mfa_configuration: mode as i32,
        ..Default::default()
    }
}

async fn mode(s: &Stack, pool: &str) -> i32 {
    s.pools
        .clone()
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.into(),
        })
        .await
        .expect("get")
        .into_inner()
        .mfa_configuration
}

/// Refused as FAILED_PRECONDITION naming exactly `expected`, with nothing
/// written (the write count and the pool's mode are as before).
async fn refused(
    s: &Stack,
    pool: &str,
    req: pb::SetUserPoolMfaConfigRequest,
    expected: &[(String, String)],
) -> tonic::Status {
    let writes = s.upstream_writes();
    let before = mode(s, pool).await;
    let err = s
        .set_config(pool, req)
        .await
        .expect_err("the pre-flight refuses");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let (reason, found) = preconditions(&err);
    assert_eq!(reason, "POOL_STATE");
    assert_eq!(found, expected, "{}", err.message());
    assert_eq!(s.upstream_writes(), writes, "nothing was written");
    assert_eq!(mode(s, pool).await, before);
    err
}

/// An advice rule never refuses: the change is written, and the answer
/// carries `advice.<RULE>` in its x-mfa-facade-warning trailer. Returns
/// the warnings.
async fn advised(
    s: &Stack,
    pool: &str,
    req: pb::SetUserPoolMfaConfigRequest,
    rules: &[&str],
) -> Vec<String> {
    let answer = s
        .pools
        .clone()
        .set_user_pool_mfa_config(pb::SetUserPoolMfaConfigRequest {
            user_pool_id: pool.into(),
            ..req
        })
        .await
        .expect("advice never refuses: Cognito accepts the change");
    let warnings: Vec<String> = answer
        .metadata()
        .get_all("x-mfa-facade-warning")
        .iter()
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .collect();
    for rule in rules {
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(&format!("advice.{rule}: "))),
            "{rule} in {warnings:?}"
        );
    }
    assert_eq!(warnings.len(), rules.len(), "{warnings:?}");
    warnings
}

// ---- each rule on the local backend -------------------------------------------

#[tokio::test]
async fn email_mfa_without_the_pools_own_ses_sender_is_advised() {
    let s = Stack::local().await;
    let pool = s.create_pool().await; // COGNITO_DEFAULT, as a new Cognito pool
    // Advice (issue 32): the guide says email MFA needs the pool's own SES;
    // that SetUserPoolMfaConfig refuses it is unconfirmed.
    let warnings = advised(&s, &pool, email_optional(), &["EMAIL_MFA_NEEDS_SES"]).await;
    assert!(
        warnings[0].contains("DEVELOPER") && warnings[0].contains("COGNITO_DEFAULT"),
        "{warnings:?}"
    );
    assert_eq!(mode(&s, &pool).await, pb::MfaConfiguration::Optional as i32);
    let ses = s.create_email_pool().await;
    s.set_config(&ses, email_optional())
        .await
        .expect("an SES sender is enough");
}

#[tokio::test]
async fn email_mfa_on_the_lite_plan_is_refused_before_cognito_is_asked() {
    let s = Stack::local().await;
    let pool = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            feature_plan: dev::FeaturePlan::Lite as i32,
            email_sending_account: dev::EmailSendingAccount::Developer as i32,
            ..Default::default()
        },
    )
    .await;
    refused(
        &s,
        &pool,
        email_optional(),
        &[pair("EMAIL_MFA_NEEDS_ESSENTIALS", "UserPoolTier")],
    )
    .await;
}

#[tokio::test]
async fn email_mfa_with_email_only_recovery_is_refused_and_the_deprecated_failure_decides_nothing()
{
    let s = Stack::local().await;
    // EmailConfigurationFailure has been "Deprecated" since 2022: no rule
    // reads it (issue 32), so the change goes through with no warning.
    let failing = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            email_sending_account: dev::EmailSendingAccount::Developer as i32,
            email_configuration_failure: Some("SES identity not verified".into()),
            ..Default::default()
        },
    )
    .await;
    advised(&s, &failing, email_optional(), &[]).await;
    let email_only = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            email_sending_account: dev::EmailSendingAccount::Developer as i32,
            account_recovery: vec![dev::RecoveryOption::VerifiedEmail as i32],
            ..Default::default()
        },
    )
    .await;
    refused(
        &s,
        &email_only,
        email_optional(),
        &[pair(
            "EMAIL_MFA_WITH_EMAIL_ONLY_RECOVERY",
            "AccountRecoverySetting",
        )],
    )
    .await;
    // Email first, then phone: accepted.
    let both = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            email_sending_account: dev::EmailSendingAccount::Developer as i32,
            account_recovery: vec![
                dev::RecoveryOption::VerifiedEmail as i32,
                dev::RecoveryOption::VerifiedPhoneNumber as i32,
            ],
            ..Default::default()
        },
    )
    .await;
    s.set_config(&both, email_optional())
        .await
        .expect("email then phone");
}

#[tokio::test]
async fn mfa_on_is_refused_while_otp_may_sign_in_first_and_optional_is_not() {
    let s = Stack::local().await;
    let pool = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            allowed_first_auth_factors: vec![
                dev::AuthFactor::Password as i32,
                dev::AuthFactor::EmailOtp as i32,
                dev::AuthFactor::SmsOtp as i32,
            ],
            ..Default::default()
        },
    )
    .await;
    let err = refused(
        &s,
        &pool,
        totp(pb::MfaConfiguration::On),
        &[pair(
            "MFA_ON_WITH_OTP_FIRST_FACTOR",
            "Policies.SignInPolicy.AllowedFirstAuthFactors",
        )],
    )
    .await;
    assert!(
        err.message().contains("EMAIL_OTP and SMS_OTP"),
        "{}",
        err.message()
    );
    s.set_config(&pool, totp(pb::MfaConfiguration::Optional))
        .await
        .expect("OPTIONAL is accepted");
}

#[tokio::test]
async fn mfa_on_with_a_passkey_first_needs_the_passkey_to_be_multi_factor() {
    let s = Stack::local().await;
    let pool = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            allowed_first_auth_factors: vec![
                dev::AuthFactor::Password as i32,
                dev::AuthFactor::WebAuthn as i32,
            ],
            ..Default::default()
        },
    )
    .await;
    refused(
        &s,
        &pool,
        totp(pb::MfaConfiguration::On),
        &[pair(
            "MFA_ON_WITH_SINGLE_FACTOR_PASSKEY",
            "WebAuthnConfiguration.FactorConfiguration",
        )],
    )
    .await;
    let multi_factor = pb::SetUserPoolMfaConfigRequest {
        web_authn_configuration: Some(pb::WebAuthnConfiguration {
            relying_party_id: Some("auth.example.com".into()),
            user_verification: pb::UserVerification::Required as i32,
            factor_configuration: pb::WebAuthnFactorConfiguration::MultiFactorWithUserVerification
                as i32,
        }),
        ..totp(pb::MfaConfiguration::On)
    };
    s.set_config(&pool, multi_factor)
        .await
        .expect("a multi-factor passkey is accepted");
}

#[tokio::test]
async fn sms_mfa_while_the_pools_sms_sending_fails_is_advised_not_refused() {
    let s = Stack::local().await;
    let pool = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            sms_configuration_failure: Some("SNSSandbox".into()),
            ..Default::default()
        },
    )
    .await;
    let sms = pb::SetUserPoolMfaConfigRequest {
        sms_mfa_configuration: Some(pb::SmsMfaConfig {
            sms_authentication_message: Some("Code {####}".into()),
            sms_configuration: Some(pb::SmsConfiguration {
                sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                external_id: Some("ext-id-1234".into()),
                ..Default::default()
            }),
        }),
        mfa_configuration: pb::MfaConfiguration::Optional as i32,
        ..Default::default()
    };
    // Cognito accepts it (in the SNS sandbox it still sends to verified
    // numbers): advice, the change written (issue 32).
    let warnings = advised(&s, &pool, sms, &["SMS_CONFIGURATION_FAILED"]).await;
    assert!(warnings[0].contains("SNSSandbox"), "{warnings:?}");
    // The ExternalId is a secret: the warning does not carry it.
    assert!(!format!("{warnings:?}").contains("ext-id-1234"));
    assert_eq!(mode(&s, &pool).await, pb::MfaConfiguration::Optional as i32);
    advised(&s, &pool, totp(pb::MfaConfiguration::Optional), &[]).await;
}

// ---- the answer's shape, dry runs, updates, and the local backend alone ------

#[tokio::test]
async fn every_rule_cognito_enforces_is_named_in_one_answer() {
    let s = Stack::local().await;
    let pool = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            feature_plan: dev::FeaturePlan::Lite as i32,
            account_recovery: vec![dev::RecoveryOption::VerifiedEmail as i32],
            allowed_first_auth_factors: vec![
                dev::AuthFactor::Password as i32,
                dev::AuthFactor::SmsOtp as i32,
            ],
            ..Default::default()
        },
    )
    .await;
    let req = pb::SetUserPoolMfaConfigRequest {
        mfa_configuration: pb::MfaConfiguration::On as i32,
        ..email_optional()
    };
    refused(
        &s,
        &pool,
        req,
        &[
            pair("EMAIL_MFA_NEEDS_ESSENTIALS", "UserPoolTier"),
            pair(
                "EMAIL_MFA_WITH_EMAIL_ONLY_RECOVERY",
                "AccountRecoverySetting",
            ),
            pair(
                "MFA_ON_WITH_OTP_FIRST_FACTOR",
                "Policies.SignInPolicy.AllowedFirstAuthFactors",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn validate_only_and_updates_meet_the_same_rules() {
    let s = Stack::local().await;
    let pool = s.create_pool().await;
    // validate_only: the same refusal, nothing written.
    let lite = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            feature_plan: dev::FeaturePlan::Lite as i32,
            email_sending_account: dev::EmailSendingAccount::Developer as i32,
            ..Default::default()
        },
    )
    .await;
    let dry = pb::SetUserPoolMfaConfigRequest {
        validate_only: true,
        ..email_optional()
    };
    refused(
        &s,
        &lite,
        dry,
        &[pair("EMAIL_MFA_NEEDS_ESSENTIALS", "UserPoolTier")],
    )
    .await;
    let _ = pool;
    // An update is checked as the whole configuration it would leave.
    let otp = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            allowed_first_auth_factors: vec![
                dev::AuthFactor::Password as i32,
                dev::AuthFactor::EmailOtp as i32,
            ],
            ..Default::default()
        },
    )
    .await;
    s.set_config(&otp, totp(pb::MfaConfiguration::Optional))
        .await
        .expect("OPTIONAL");
    let writes = s.upstream_writes();
    let err = s
        .pools
        .clone()
        .update_user_pool_mfa_config(pb::UpdateUserPoolMfaConfigRequest {
            user_pool_id: otp.clone(),
            config: Some(pb::UserPoolMfaConfig {
                mfa_configuration: pb::MfaConfiguration::On as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["mfa_configuration".into()],
            }),
            ..Default::default()
        })
        .await
        .expect_err("ON with EMAIL_OTP first");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        preconditions(&err).1,
        [pair(
            "MFA_ON_WITH_OTP_FIRST_FACTOR",
            "Policies.SignInPolicy.AllowedFirstAuthFactors"
        )]
    );
    assert_eq!(s.upstream_writes(), writes);
    assert_eq!(mode(&s, &otp).await, pb::MfaConfiguration::Optional as i32);
}

#[tokio::test]
async fn without_the_pre_flight_the_local_backend_answers_as_cognito() {
    let s = Stack::local_without_preflight().await;
    let pool = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            allowed_first_auth_factors: vec![
                dev::AuthFactor::Password as i32,
                dev::AuthFactor::EmailOtp as i32,
            ],
            ..Default::default()
        },
    )
    .await;
    let err = s
        .set_config(&pool, totp(pb::MfaConfiguration::On))
        .await
        .expect_err("Cognito's own rule");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(preconditions(&err).0, "InvalidParameterException");
    assert_eq!(
        err.message(),
        "InvalidParameterException: Only PASSWORD and WEB_AUTHN (if configured) can be enabled as an auth factor if MFA is enabled"
    );
}

#[tokio::test]
async fn fixtures_refuse_a_state_cognito_cannot_have() {
    let s = Stack::local().await;
    let err = s
        .local_fixtures()
        .create_user_pool(dev::CreateUserPoolRequest {
            pool_name: "bad".into(),
            sms_configuration_failure: Some(String::new()),
            email_configuration_failure: Some("x".repeat(257)),
            allowed_first_auth_factors: vec![
                dev::AuthFactor::Password as i32,
                dev::AuthFactor::Password as i32,
                99,
            ],
            account_recovery: vec![
                dev::RecoveryOption::AdminOnly as i32,
                dev::RecoveryOption::VerifiedEmail as i32,
            ],
            ..Default::default()
        })
        .await
        .expect_err("bad state");
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut fields: Vec<String> = err
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
        .unwrap_or_default();
    fields.sort();
    assert_eq!(
        fields,
        [
            "account_recovery",
            "allowed_first_auth_factors",
            "allowed_first_auth_factors[2]",
            "email_configuration_failure",
            "sms_configuration_failure",
        ]
    );
}

/// The largest list of first factors a request can carry (a million, one
/// byte each, packed) is refused without walking it pair by pair.
#[tokio::test]
async fn a_million_first_factors_are_refused_at_once() {
    let s = Stack::local().await;
    let started = std::time::Instant::now();
    let err = s
        .local_fixtures()
        .create_user_pool(dev::CreateUserPoolRequest {
            pool_name: "many".into(),
            allowed_first_auth_factors: vec![dev::AuthFactor::Password as i32; 1_000_000],
            ..Default::default()
        })
        .await
        .expect_err("repeated factors");
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> = err
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["allowed_first_auth_factors"]);
    println!("1,000,000 first factors refused in {:?}", started.elapsed());
}

// ---- the cognito backend: DescribeUserPool through the SDK, against moto ---

/// A moto pool created with the given DescribeUserPool members (moto keeps
/// what CreateUserPool was given and answers it back).
async fn moto_pool(
    tier: Option<sdk::UserPoolTierType>,
    email: Option<sdk::EmailConfigurationType>,
    first_factors: &[sdk::AuthFactorType],
    recovery: &[sdk::RecoveryOptionNameType],
) -> String {
    let client = common::moto_sdk().await;
    let mut create = client
        .create_user_pool()
        .pool_name(format!("pool-{}", uuid::Uuid::new_v4().simple()))
        .set_user_pool_tier(tier)
        .set_email_configuration(email);
    if !first_factors.is_empty() {
        create = create.policies(
            sdk::UserPoolPolicyType::builder()
                .sign_in_policy(
                    sdk::SignInPolicyType::builder()
                        .set_allowed_first_auth_factors(Some(first_factors.to_vec()))
                        .build(),
                )
                .build(),
        );
    }
    if !recovery.is_empty() {
        let mut setting = sdk::AccountRecoverySettingType::builder();
        for (i, name) in recovery.iter().enumerate() {
            setting = setting.recovery_mechanisms(
                sdk::RecoveryOptionType::builder()
                    .priority(i32::try_from(i).unwrap() + 1)
                    .name(name.clone())
                    .build()
                    .unwrap(),
            );
        }
        create = create.account_recovery_setting(setting.build());
    }
    create
        .send()
        .await
        .expect("create pool")
        .user_pool()
        .and_then(|p| p.id())
        .expect("id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_cognito_the_state_is_read_with_describe_user_pool() {
    let s = Stack::moto().await;
    // moto's default pool sends through COGNITO_DEFAULT, as Cognito's does.
    let pool = moto_pool(None, None, &[], &[]).await;
    // Advice: the change goes to Cognito, with a warning (issue 32). (moto
    // wants SMS or TOTP beside email.)
    let email_and_totp = pb::SetUserPoolMfaConfigRequest {
        software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
            enabled: Some(true),
        }),
        ..email_optional()
    };
    advised(&s, &pool, email_and_totp, &["EMAIL_MFA_NEEDS_SES"]).await;
    let sent = s.proxy().bodies("DescribeUserPool");
    assert_eq!(sent.len(), 1, "one DescribeUserPool");
    assert_eq!(sent[0], serde_json::json!({"UserPoolId": pool}));
    assert_eq!(s.proxy().bodies("SetUserPoolMfaConfig").len(), 1);

    let lite = moto_pool(
        Some(sdk::UserPoolTierType::Lite),
        Some(common::ses_email_configuration()),
        &[],
        &[],
    )
    .await;
    refused(
        &s,
        &lite,
        email_optional(),
        &[pair("EMAIL_MFA_NEEDS_ESSENTIALS", "UserPoolTier")],
    )
    .await;
    let email_only = moto_pool(
        None,
        Some(common::ses_email_configuration()),
        &[],
        &[sdk::RecoveryOptionNameType::VerifiedEmail],
    )
    .await;
    refused(
        &s,
        &email_only,
        email_optional(),
        &[pair(
            "EMAIL_MFA_WITH_EMAIL_ONLY_RECOVERY",
            "AccountRecoverySetting",
        )],
    )
    .await;
    let otp = moto_pool(
        None,
        None,
        &[sdk::AuthFactorType::Password, sdk::AuthFactorType::EmailOtp],
        &[],
    )
    .await;
    refused(
        &s,
        &otp,
        totp(pb::MfaConfiguration::On),
        &[pair(
            "MFA_ON_WITH_OTP_FIRST_FACTOR",
            "Policies.SignInPolicy.AllowedFirstAuthFactors",
        )],
    )
    .await;
    let passkey = moto_pool(
        None,
        None,
        &[sdk::AuthFactorType::Password, sdk::AuthFactorType::WebAuthn],
        &[],
    )
    .await;
    refused(
        &s,
        &passkey,
        totp(pb::MfaConfiguration::On),
        &[pair(
            "MFA_ON_WITH_SINGLE_FACTOR_PASSKEY",
            "WebAuthnConfiguration.FactorConfiguration",
        )],
    )
    .await;
    // A pool that can take it: the write goes out.
    let ready = moto_pool(
        Some(sdk::UserPoolTierType::Essentials),
        Some(common::ses_email_configuration()),
        &[],
        &[],
    )
    .await;
    // (moto itself wants SMS or TOTP beside email.)
    let req = pb::SetUserPoolMfaConfigRequest {
        software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
            enabled: Some(true),
        }),
        ..email_optional()
    };
    s.set_config(&ready, req).await.expect("accepted");
    // The advised change at the start, and this one.
    assert_eq!(s.proxy().bodies("SetUserPoolMfaConfig").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_is_kept_briefly_and_forgotten_by_the_facades_own_write() {
    let s = Stack::moto().await;
    let pool = moto_pool(None, Some(common::ses_email_configuration()), &[], &[]).await;
    let dry = pb::SetUserPoolMfaConfigRequest {
        validate_only: true,
        ..totp(pb::MfaConfiguration::Optional)
    };
    for _ in 0..3 {
        s.set_config(&pool, dry.clone()).await.expect("dry run");
    }
    assert_eq!(
        s.proxy().bodies("DescribeUserPool").len(),
        1,
        "three dry runs, one read of the pool's state"
    );
    s.set_config(&pool, totp(pb::MfaConfiguration::Optional))
        .await
        .expect("write");
    s.set_config(&pool, dry)
        .await
        .expect("dry run after the write");
    assert_eq!(
        s.proxy().bodies("DescribeUserPool").len(),
        2,
        "the write forgot the kept state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_on_cognito_reads_the_pool_and_writes_nothing() {
    use pb::check_finding::Kind;
    let s = Stack::moto().await;
    let pool = moto_pool(None, None, &[], &[]).await;
    let report = s
        .pools
        .clone()
        .check_user_pool_mfa_config(pb::CheckUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            config: Some(pb::UserPoolMfaConfig {
                email_mfa_configuration: Some(pb::EmailMfaConfig::default()),
                software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                    enabled: Some(true),
                }),
                mfa_configuration: pb::MfaConfiguration::Optional as i32,
                ..Default::default()
            }),
            update_mask: None,
            restore_revision: String::new(),
        })
        .await
        .expect("check")
        .into_inner();
    // Advice only (issue 32): allowed, with the finding.
    assert!(report.allowed);
    let found: Vec<(i32, &str, &str)> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.rule.as_str(), f.subject.as_str()))
        .collect();
    assert_eq!(
        found,
        [(
            Kind::Advice as i32,
            "EMAIL_MFA_NEEDS_SES",
            "EmailConfiguration.EmailSendingAccount"
        )]
    );
    assert_eq!(
        report.changed_fields,
        [
            "mfa_configuration",
            "software_token_mfa_configuration",
            "email_mfa_configuration"
        ]
    );
    assert_eq!(s.proxy().bodies("DescribeUserPool").len(), 1);
    assert_eq!(s.proxy().bodies("GetUserPoolMfaConfig").len(), 1);
    assert!(s.proxy().bodies("SetUserPoolMfaConfig").is_empty());
}

/// A passkey configuration (single factor) with `rp` as its relying party.
fn passkey(rp: Option<&str>) -> pb::SetUserPoolMfaConfigRequest {
    pb::SetUserPoolMfaConfigRequest {
        web_authn_configuration: Some(pb::WebAuthnConfiguration {
            relying_party_id: rp.map(str::to_owned),
            user_verification: pb::UserVerification::Preferred as i32,
            factor_configuration: pb::WebAuthnFactorConfiguration::SingleFactor as i32,
        }),
        ..totp(pb::MfaConfiguration::Optional)
    }
}

/// TOTP on a pool that auto-verifies phone numbers and has no SMS
/// configuration: refused, as SetUserPoolMfaConfig refuses it.
async fn refused_without_sms(s: &Stack, pool: &str) {
    refused(
        s,
        pool,
        totp(pb::MfaConfiguration::Optional),
        &[pair(
            "AUTO_VERIFIED_PHONE_NEEDS_SMS",
            "AutoVerifiedAttributes",
        )],
    )
    .await;
}

/// Issue 32: the two rules that read AutoVerifiedAttributes and the
/// domain. phone_number auto-verification without an SMS configuration is
/// refused as Cognito refuses it; a passkey configuration with no relying
/// party on a pool with no domain is advice (Cognito accepts it, then
/// passkey registration fails).
#[tokio::test]
async fn auto_verified_phone_needs_sms_and_a_passkey_needs_a_relying_party() {
    let s = Stack::local().await;
    let auto_phone = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            auto_verified_attributes: vec!["phone_number".into()],
            domain: Some("auth-acme".into()),
            ..Default::default()
        },
    )
    .await;
    refused_without_sms(&s, &auto_phone).await;
    let with_sms = pb::SetUserPoolMfaConfigRequest {
        sms_mfa_configuration: Some(pb::SmsMfaConfig {
            sms_authentication_message: None,
            sms_configuration: Some(pb::SmsConfiguration {
                sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                ..Default::default()
            }),
        }),
        ..totp(pb::MfaConfiguration::Optional)
    };
    advised(&s, &auto_phone, with_sms, &[]).await;

    let no_domain = local_pool(&s, dev::CreateUserPoolRequest::default()).await;
    advised(
        &s,
        &no_domain,
        passkey(None),
        &["WEB_AUTHN_NEEDS_RELYING_PARTY"],
    )
    .await;
    advised(&s, &no_domain, passkey(Some("auth.example.com")), &[]).await;
    let with_domain = local_pool(
        &s,
        dev::CreateUserPoolRequest {
            domain: Some("auth-acme".into()),
            ..Default::default()
        },
    )
    .await;
    advised(&s, &with_domain, passkey(None), &[]).await;
    // A fixture's bad values name their field.
    let bad = s
        .local_fixtures()
        .create_user_pool(dev::CreateUserPoolRequest {
            pool_name: "bad".into(),
            auto_verified_attributes: vec!["nickname".into()],
            domain: Some("-acme".into()),
            ..Default::default()
        })
        .await
        .expect_err("bad fixture");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().contains("auto_verified_attributes[0]") && bad.message().contains("domain"),
        "{}",
        bad.message()
    );
}

/// Issue 32: the same two rules on the cognito backend, the state read
/// with DescribeUserPool from moto (which keeps AutoVerifiedAttributes and
/// answers a domain made with CreateUserPoolDomain).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_cognito_auto_verified_phone_and_the_relying_party_are_read_from_describe_user_pool() {
    let s = Stack::moto().await;
    let client = common::moto_sdk().await;
    let pool = client
        .create_user_pool()
        .pool_name(format!("pool-{}", uuid::Uuid::new_v4().simple()))
        .auto_verified_attributes(sdk::VerifiedAttributeType::PhoneNumber)
        .send()
        .await
        .expect("create pool")
        .user_pool()
        .and_then(|p| p.id())
        .expect("id")
        .to_owned();
    refused_without_sms(&s, &pool).await;

    let plain = moto_pool(None, None, &[], &[]).await;
    advised(
        &s,
        &plain,
        passkey(None),
        &["WEB_AUTHN_NEEDS_RELYING_PARTY"],
    )
    .await;
    client
        .create_user_pool_domain()
        .user_pool_id(&plain)
        .domain(format!(
            "auth-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ))
        .send()
        .await
        .expect("domain");
    // The pool's domain is the passkeys' relying party: nothing to advise.
    advised(&s, &plain, passkey(None), &[]).await;
    assert_eq!(s.proxy().bodies("DescribeUserPool").len(), 3);
}

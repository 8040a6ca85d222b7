//! `[[guardrails]]` (issue 18): CEL expressions every pool change must
//! satisfy, through the real binary — each action (deny, warn, audit), the
//! warning trailer, the audit record, a reload that adds one, and a bad
//! expression refused by check-config with the guardrail's name.

use crate::common;

use std::time::Duration;

use common::procs::{Served, local_config, local_pool};
use mfa_facade::proto::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

const PROD_KEEPS_MFA: &str = r#"
[[guardrails]]
name = "prod-keeps-mfa"
user_pools = ["*"]
methods = ["SetUserPoolMfaConfig", "UpdateUserPoolMfaConfig"]
expression = "after.mfa_configuration != 'OFF'"
message = "pools keep MFA ON or OPTIONAL"
actions = ["deny"]
"#;

const SMS_NEEDS_EXTERNAL_ID: &str = r#"
[[guardrails]]
name = "sms-needs-external-id"
user_pools = ["*"]
methods = ["*"]
expression = "!has(after.sms_mfa_configuration) || after.sms_mfa_configuration.sms_configuration.has_external_id"
message = "SMS MFA should assume its SNS role with an ExternalId"
actions = ["warn", "audit"]
"#;

const ON_NEEDS_TOTP: &str = r#"
[[guardrails]]
name = "on-needs-totp"
user_pools = ["*"]
methods = ["*"]
expression = "after.mfa_configuration != 'ON' || (has(after.software_token_mfa_configuration) && after.software_token_mfa_configuration.enabled)"
message = "MFA ON should offer TOTP"
actions = ["audit"]
"#;

fn config(guardrails: &str) -> String {
    local_config(
        "ops",
        1000.0,
        1000,
        &format!("[audit]\nfile = \"{{dir}}/audit.jsonl\"\n{guardrails}"),
    )
}

fn pools(ch: &tonic::transport::Channel) -> common::PoolsClient {
    pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
        ch.clone(),
        common::ApiKey::new(common::TEST_KEY),
    )
}

fn totp(pool: &str, mode: pb::MfaConfiguration) -> pb::SetUserPoolMfaConfigRequest {
    pb::SetUserPoolMfaConfigRequest {
        user_pool_id: pool.into(),
        software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
            enabled: Some(true),
        }),
        mfa_configuration: mode as i32,
        ..Default::default()
    }
}

fn sms_only(
    pool: &str,
    mode: pb::MfaConfiguration,
    external_id: bool,
) -> pb::SetUserPoolMfaConfigRequest {
    pb::SetUserPoolMfaConfigRequest {
        user_pool_id: pool.into(),
        sms_mfa_configuration: Some(pb::SmsMfaConfig {
            sms_authentication_message: Some("Code {####}".into()),
            sms_configuration: Some(pb::SmsConfiguration {
                sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                external_id: external_id.then(|| "ext-id-guardrails".into()),
                sns_region: Some("us-east-1".into()),
                eums_sms: None,
            }),
        }),
        mfa_configuration: mode as i32,
        ..Default::default()
    }
}

/// The completed records of SetUserPoolMfaConfig calls, once `n` are written.
fn set_records(served: &Served, n: usize) -> Vec<serde_json::Value> {
    let path = served.dir.path().join("audit.jsonl");
    let records = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|r: &serde_json::Value| {
                r["stage"] == "completed"
                    && r["method"] == "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig"
            })
            .collect()
    };
    crate::common::wait::poll(Duration::from_secs(5), || {
        Some(records()).filter(|r| r.len() >= n)
    })
    .unwrap_or_else(records)
}

fn warnings(meta: &tonic::metadata::MetadataMap) -> Vec<String> {
    meta.get_all("x-mfa-facade-warning")
        .iter()
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_guardrail_refuses_the_change_and_names_itself() {
    let served = Served::start(&config(PROD_KEEPS_MFA));
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let mut p = pools(&ch);
    p.set_user_pool_mfa_config(totp(&pool, pb::MfaConfiguration::Optional))
        .await
        .expect("OPTIONAL holds");
    for validate_only in [false, true] {
        let off = pb::SetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            mfa_configuration: pb::MfaConfiguration::Off as i32,
            validate_only,
            ..Default::default()
        };
        let err = p.set_user_pool_mfa_config(off).await.expect_err("OFF");
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        let info = err.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "GUARDRAIL_DENIED");
        assert_eq!(info.metadata["guardrails"], "prod-keeps-mfa");
        let violations = err
            .get_details_precondition_failure()
            .expect("PreconditionFailure")
            .violations;
        assert_eq!(violations.len(), 1);
        assert_eq!(
            (
                violations[0].r#type.as_str(),
                violations[0].subject.as_str(),
                violations[0].description.as_str()
            ),
            (
                "GUARDRAIL",
                "prod-keeps-mfa",
                "pools keep MFA ON or OPTIONAL"
            )
        );
    }
    // An update that would leave OFF is held to it too.
    let err = p
        .update_user_pool_mfa_config(pb::UpdateUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            config: Some(pb::UserPoolMfaConfig {
                mfa_configuration: pb::MfaConfiguration::Off as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec![
                    "mfa_configuration".into(),
                    "software_token_mfa_configuration".into(),
                ],
            }),
            ..Default::default()
        })
        .await
        .expect_err("update to OFF");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let now = p
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(now.mfa_configuration, pb::MfaConfiguration::Optional as i32);
    // The refusal is audited with its reason.
    let records = set_records(&served, 3);
    let denied = records
        .iter()
        .find(|r| r["outcome"]["code"] == "FAILED_PRECONDITION")
        .expect("the refusal's record");
    assert!(
        denied["outcome"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("prod-keeps-mfa"),
        "{denied}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warn_answers_in_a_trailer_and_audit_only_annotates_the_record() {
    let served = Served::start(&config(&format!("{SMS_NEEDS_EXTERNAL_ID}{ON_NEEDS_TOTP}")));
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let mut p = pools(&ch);

    // warn: through, with the message in the trailer and the record.
    let answer = p
        .set_user_pool_mfa_config(sms_only(&pool, pb::MfaConfiguration::Optional, false))
        .await
        .expect("warn lets it through");
    assert_eq!(
        warnings(answer.metadata()),
        ["sms-needs-external-id: SMS MFA should assume its SNS role with an ExternalId"]
    );
    // Satisfied: no trailer.
    let answer = p
        .set_user_pool_mfa_config(sms_only(&pool, pb::MfaConfiguration::Optional, true))
        .await
        .expect("with an ExternalId");
    assert!(warnings(answer.metadata()).is_empty());
    // audit: through, no trailer, the record says so.
    let answer = p
        .set_user_pool_mfa_config(sms_only(&pool, pb::MfaConfiguration::On, true))
        .await
        .expect("audit lets it through");
    assert!(warnings(answer.metadata()).is_empty());

    let records = set_records(&served, 3);
    assert_eq!(records.len(), 3, "{records:?}");
    let found = |r: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        r["guardrails"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        (
                            f["guardrail"].as_str().unwrap_or("").to_owned(),
                            f["actions"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        found(&records[0]),
        [(
            "sms-needs-external-id".to_owned(),
            serde_json::json!(["warn", "audit"])
        )]
    );
    assert!(records[1].get("guardrails").is_none(), "{}", records[1]);
    assert_eq!(
        found(&records[2]),
        [("on-needs-totp".to_owned(), serde_json::json!(["audit"]))]
    );
    // The ExternalId is a secret: not in any record.
    let text = std::fs::read_to_string(served.dir.path().join("audit.jsonl")).unwrap();
    assert!(!text.contains("ext-id-guardrails"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardrails_reload_with_the_policy() {
    let served = Served::start(&config(""));
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let mut p = pools(&ch);
    let off = || pb::SetUserPoolMfaConfigRequest {
        user_pool_id: pool.clone(),
        mfa_configuration: pb::MfaConfiguration::Off as i32,
        ..Default::default()
    };
    p.set_user_pool_mfa_config(off())
        .await
        .expect("no guardrail yet");

    let path = served.dir.path().join("config.toml");
    let text = config(PROD_KEEPS_MFA).replace("{dir}", &served.dir.path().display().to_string());
    std::fs::write(&path, text).expect("rewrite config");
    let before = served
        .logs()
        .iter()
        .filter(|l| l.text.contains("reloaded"))
        .count();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &served.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    crate::common::wait::until_true("the reload", Duration::from_secs(10), || {
        served
            .logs()
            .iter()
            .filter(|l| l.text.contains("reloaded"))
            .count()
            != before
    });
    let err = p
        .set_user_pool_mfa_config(off())
        .await
        .expect_err("now denied");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        err.get_details_error_info().map(|i| i.reason).as_deref(),
        Some("GUARDRAIL_DENIED")
    );
}

#[test]
fn check_config_refuses_a_bad_expression_naming_the_guardrail() {
    let bad = PROD_KEEPS_MFA
        .replace("prod-keeps-mfa", "typo-rail")
        .replace(
            "after.mfa_configuration != 'OFF'",
            "after.mfa_configuration !=",
        );
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), config(&bad).replace("{dir}", "/tmp")).expect("write");
    let out = std::process::Command::new(common::procs::bin())
        .arg("check-config")
        .arg(file.path())
        .env_clear()
        .output()
        .expect("check-config");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("guardrails[0].expression") && stdout.contains("\"typo-rail\""),
        "{stdout}"
    );
    // A variable that does not exist is refused too, before any call.
    let unknown = PROD_KEEPS_MFA.replace("after.mfa_configuration", "caller.mode");
    std::fs::write(file.path(), config(&unknown).replace("{dir}", "/tmp")).expect("write");
    let out = std::process::Command::new(common::procs::bin())
        .arg("check-config")
        .arg(file.path())
        .env_clear()
        .output()
        .expect("check-config");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("names caller"), "{stdout}");
    // And the README's three worked examples load as printed.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let examples = readme
        .split("```toml")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("[[guardrails]]"))
        .expect("the README's guardrails");
    assert_eq!(examples.matches("[[guardrails]]").count(), 3);
    std::fs::write(file.path(), config(examples).replace("{dir}", "/tmp")).expect("write");
    let out = std::process::Command::new(common::procs::bin())
        .arg("check-config")
        .arg(file.path())
        .env_clear()
        .output()
        .expect("check-config");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// CheckUserPoolMfaConfig: every finding at once — input rules, the pool's
/// state, each guardrail action — and the change it would make, with
/// nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_every_finding_and_the_change_without_writing() {
    use pb::check_finding::Kind;
    let served = Served::start(&config(&format!("{PROD_KEEPS_MFA}{SMS_NEEDS_EXTERNAL_ID}")));
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let mut p = pools(&ch);
    p.set_user_pool_mfa_config(totp(&pool, pb::MfaConfiguration::Optional))
        .await
        .expect("OPTIONAL");
    let now = p
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
        })
        .await
        .expect("get")
        .into_inner();

    // As a Set: OFF with factor blocks (an input rule), an SMS text
    // without its code, email MFA on a COGNITO_DEFAULT pool (advice),
    // OFF (denied by a guardrail), SMS without an ExternalId (warned).
    let sms = sms_only(&pool, pb::MfaConfiguration::Off, false)
        .sms_mfa_configuration
        .map(|mut s| {
            s.sms_authentication_message = Some("no code here".into());
            s
        });
    let report = p
        .check_user_pool_mfa_config(pb::CheckUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            config: Some(pb::UserPoolMfaConfig {
                sms_mfa_configuration: sms,
                email_mfa_configuration: Some(pb::EmailMfaConfig::default()),
                mfa_configuration: pb::MfaConfiguration::Off as i32,
                ..Default::default()
            }),
            update_mask: None,
            restore_revision: String::new(),
        })
        .await
        .expect("a check answers OK")
        .into_inner();
    assert!(!report.allowed);
    let kinds: Vec<(i32, String, String)> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.rule.clone(), f.subject.clone()))
        .collect();
    let has = |kind: Kind, rule: &str, subject: &str| {
        kinds.contains(&(kind as i32, rule.to_owned(), subject.to_owned()))
    };
    assert!(
        has(
            Kind::InvalidArgument,
            "",
            "config.sms_mfa_configuration.sms_authentication_message"
        ),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .filter(|k| k.0 == Kind::InvalidArgument as i32)
            .count()
            >= 2,
        "OFF with factor blocks too: {kinds:?}"
    );
    // Advice since issue 32: that Cognito refuses it is unconfirmed.
    assert!(
        has(
            Kind::Advice,
            "EMAIL_MFA_NEEDS_SES",
            "EmailConfiguration.EmailSendingAccount"
        ),
        "{kinds:?}"
    );
    assert!(has(Kind::GuardrailDeny, "prod-keeps-mfa", ""), "{kinds:?}");
    assert!(
        has(Kind::GuardrailWarn, "sms-needs-external-id", ""),
        "{kinds:?}"
    );
    assert!(
        has(Kind::GuardrailAudit, "sms-needs-external-id", ""),
        "{kinds:?}"
    );
    assert_eq!(report.etag, now.etag, "before is the pool as it is");
    assert_eq!(
        report.after.as_ref().map(|a| a.mfa_configuration),
        Some(pb::MfaConfiguration::Off as i32)
    );
    for field in [
        "mfa_configuration",
        "software_token_mfa_configuration",
        "email_mfa_configuration",
    ] {
        assert!(
            report.changed_fields.iter().any(|f| f == field),
            "{field}: {:?}",
            report.changed_fields
        );
    }

    // As an Update of one field: allowed, nothing else changes.
    let report = p
        .check_user_pool_mfa_config(pb::CheckUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            config: Some(pb::UserPoolMfaConfig {
                mfa_configuration: pb::MfaConfiguration::On as i32,
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["mfa_configuration".into()],
            }),
            restore_revision: String::new(),
        })
        .await
        .expect("check an update")
        .into_inner();
    assert!(report.allowed, "{:?}", report.findings);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_eq!(report.changed_fields, ["mfa_configuration"]);

    // Nothing was written.
    let after = p
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(after.etag, now.etag);
}

/// Issue 35: a guardrail that names AdminResetUserMfa judges each reset by
/// its user (`request.username`); the pool guardrails beside it, reached
/// only through "*", do not fail a reset closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guardrail_can_hold_back_a_reset_of_one_user() {
    let rails = format!(
        "{ON_NEEDS_TOTP}\n[[guardrails]]\nname = \"break-glass-stays\"\nuser_pools = [\"*\"]\nmethods = [\"AdminResetUserMfa\"]\nexpression = \"request.username != 'break-glass'\"\nmessage = \"the break-glass account is reset only by hand\"\nactions = [\"deny\"]\n"
    );
    let served = Served::start(&config(&rails));
    let ch = served.channel().await;
    let pool = local_pool(&ch, Some("break-glass")).await;
    let mut fixtures =
        mfa_facade::proto::dev::v1::local_fixtures_service_client::LocalFixturesServiceClient::with_interceptor(
            ch.clone(),
            common::ApiKey::new(common::TEST_KEY),
        );
    fixtures
        .create_user(mfa_facade::proto::dev::v1::CreateUserRequest {
            user_pool_id: pool.clone(),
            username: "alice".into(),
            ..Default::default()
        })
        .await
        .expect("alice");
    let mut users = pb::user_mfa_service_client::UserMfaServiceClient::with_interceptor(
        ch.clone(),
        common::ApiKey::new(common::TEST_KEY),
    );
    let reset = |username: &str| pb::AdminResetUserMfaRequest {
        user_pool_id: pool.clone(),
        username: username.into(),
        validate_only: false,
    };
    let denied = users
        .admin_reset_user_mfa(reset("break-glass"))
        .await
        .expect_err("held back");
    assert_eq!(denied.code(), Code::FailedPrecondition);
    assert_eq!(
        denied.get_details_error_info().map(|i| i.reason).as_deref(),
        Some("GUARDRAIL_DENIED")
    );
    assert!(
        denied.message().contains("break-glass-stays"),
        "{}",
        denied.message()
    );
    users
        .admin_reset_user_mfa(reset("alice"))
        .await
        .expect("another user's reset passes, on-needs-totp does not reach it");
}

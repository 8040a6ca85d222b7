//! The cognito backend against a stub upstream that answers whatever a test
//! programs: throttling, unknown exceptions, 5xx, garbage, silence. Every
//! answer becomes a gRPC status with the code DESIGN.md §3 gives; none panics.

use crate::common;

use std::time::{Duration, Instant};

use common::stub::{Reply, Stub};
use mfa_facade::{
    app::RunningServer,
    config::BackendConfig,
    proto::v1::{
        self as pb, user_mfa_service_client::UserMfaServiceClient,
        user_pool_mfa_service_client::UserPoolMfaServiceClient,
    },
};
use tonic::Code;
use tonic_types::StatusExt;

/// What the stub answers: status, body, and a delay before answering.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: &'static str,
    delay: Duration,
}

fn answer(status: u16, body: &'static str) -> Answer {
    Answer {
        status,
        body,
        delay: Duration::ZERO,
    }
}

async fn stub(answer: Answer) -> String {
    stub_counting(answer).await.url
}

/// A stub Cognito that gives `answer` to every request.
async fn stub_counting(answer: Answer) -> Stub {
    Stub::start(move |_, _| {
        Reply::cognito(answer.status, answer.body, "stub-request-1").after(answer.delay)
    })
    .await
}

struct Facade {
    _server: RunningServer,
    pools: common::PoolsClient,
    users: common::UsersClient,
}

async fn facade(endpoint: String) -> Facade {
    facade_with_attempts(endpoint, 1).await
}

async fn facade_with_attempts(endpoint: String, max_attempts: u32) -> Facade {
    let settings = BackendConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint),
        connect_timeout_ms: 300,
        attempt_timeout_ms: 300,
        // Room for the SDK's backoff between retries when there are any.
        call_timeout_ms: if max_attempts == 1 { 600 } else { 5_000 },
        max_attempts,
        ..BackendConfig::default()
    };
    let (started, channel) = common::start_cognito(settings).await;
    let server = started.server;
    let key = || common::ApiKey::new(common::TEST_KEY);
    Facade {
        pools: UserPoolMfaServiceClient::with_interceptor(channel.clone(), key()),
        users: UserMfaServiceClient::with_interceptor(channel, key()),
        _server: server,
    }
}

async fn get_config(a: Answer) -> Result<pb::GetUserPoolMfaConfigResponse, tonic::Status> {
    let f = facade(stub(a).await).await;
    f.pools
        .clone()
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: "us-east-1_Stub1".into(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn throttling_is_resource_exhausted_with_retry_info() {
    let err = get_config(answer(
        400,
        r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#,
    ))
    .await
    .expect_err("throttled");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.get_details_retry_info()
            .is_some_and(|r| r.retry_delay.is_some())
    );
    let info = err.get_details_error_info().expect("error info");
    assert_eq!(info.reason, "TooManyRequestsException");
    assert_eq!(
        info.metadata.get("aws_request_id").map(String::as_str),
        Some("stub-request-1")
    );
}

#[tokio::test]
async fn cognito_throttling_is_retried_a_bounded_number_of_times_then_pushed_back() {
    let count = stub_counting(answer(
        400,
        r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#,
    ))
    .await;
    let f = facade_with_attempts(count.url.clone(), 3).await;
    let err = f
        .pools
        .clone()
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: "us-east-1_Stub1".into(),
        })
        .await
        .expect_err("throttled");
    assert_eq!(err.code(), Code::ResourceExhausted);
    // The SDK's standard retry: 3 attempts in all, then the facade answers.
    assert_eq!(count.count(), 3);
    assert_eq!(
        err.metadata()
            .get("grpc-retry-pushback-ms")
            .and_then(|v| v.to_str().ok()),
        Some("1000")
    );
    assert_eq!(
        err.get_details_retry_info().and_then(|r| r.retry_delay),
        Some(Duration::from_secs(1))
    );
}

#[tokio::test]
async fn concurrent_modification_is_aborted() {
    let err = get_config(answer(
        400,
        r#"{"__type":"ConcurrentModificationException","message":"busy"}"#,
    ))
    .await
    .expect_err("aborted");
    assert_eq!(err.code(), Code::Aborted);
}

#[tokio::test]
async fn an_unknown_exception_keeps_its_name_and_is_internal() {
    // awsJson1.1 clients sanitise "ns#Name:uri" to "Name".
    let err = get_config(answer(
        400,
        r#"{"__type":"com.amazonaws.cognito#BrandNewException:http://internal/","message":"new"}"#,
    ))
    .await
    .expect_err("internal");
    assert_eq!(err.code(), Code::Internal);
    assert_eq!(
        err.get_details_error_info().map(|i| i.reason).as_deref(),
        Some("BrandNewException")
    );
}

#[tokio::test]
async fn cognito_internal_errors_and_5xx_are_unavailable() {
    let err = get_config(answer(
        500,
        r#"{"__type":"InternalErrorException","message":"oops"}"#,
    ))
    .await
    .expect_err("unavailable");
    assert_eq!(err.code(), Code::Unavailable);
    let err = get_config(answer(503, "<html>Service Unavailable</html>"))
        .await
        .expect_err("unavailable");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(!err.message().contains("<html>"), "{}", err.message());
}

#[tokio::test]
async fn garbage_on_success_is_internal_not_a_panic() {
    let err = get_config(answer(200, "this is not json"))
        .await
        .expect_err("garbage");
    assert_eq!(err.code(), Code::Internal);
    assert!(!err.message().contains("this is not json"));
}

#[tokio::test]
async fn unknown_values_and_empty_answers_decode_without_loss_of_the_call() {
    let out = get_config(answer(
        200,
        r#"{"MfaConfiguration":"SOMETIMES","WebAuthnConfiguration":{"UserVerification":"maybe"}}"#,
    ))
    .await
    .expect("decoded");
    assert_eq!(
        out.mfa_configuration,
        pb::MfaConfiguration::Unspecified as i32
    );
    assert_eq!(
        out.web_authn_configuration.map(|w| w.user_verification),
        Some(pb::UserVerification::Unspecified as i32)
    );
    let f = facade(stub(answer(200, "{}")).await).await;
    let assoc = f
        .users
        .clone()
        .associate_software_token(pb::AssociateSoftwareTokenRequest {
            access_token: Some("abc.def.ghi".into()),
            session: None,
        })
        .await
        .expect("empty answer")
        .into_inner();
    assert_eq!(assoc.secret_code, "");
}

#[tokio::test]
async fn a_silent_upstream_times_out_as_unavailable() {
    let started = Instant::now();
    let err = get_config(Answer {
        status: 200,
        body: "{}",
        delay: Duration::from_secs(5),
    })
    .await
    .expect_err("timeout");
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_unavailable() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let f = facade(format!("http://127.0.0.1:{closed}")).await;
    let err = f
        .pools
        .clone()
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: "us-east-1_Stub1".into(),
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::Unavailable);
}

/// Two members of DescribeUserPool the pre-flight reads that moto cannot
/// hold (SmsConfigurationFailure, EmailConfigurationFailure): a stub
/// answers them, and the change is refused with both named, before any
/// write reaches upstream.
#[tokio::test]
async fn sending_failures_moto_cannot_report_are_read_from_describe_user_pool() {
    let count = stub_counting(answer(
        200,
        r#"{"UserPool":{"Id":"us-east-1_Stub1","UserPoolTier":"ESSENTIALS",
            "SmsConfiguration":{"SnsCallerArn":"arn:aws:iam::123456789012:role/sns"},
            "SmsConfigurationFailure":"SNSSandbox",
            "EmailConfiguration":{"EmailSendingAccount":"DEVELOPER"},
            "EmailConfigurationFailure":"SES identity not verified",
            "Policies":{"SignInPolicy":{"AllowedFirstAuthFactors":["PASSWORD","NEW_FACTOR"]}},
            "AccountRecoverySetting":{"RecoveryMechanisms":[{"Priority":1,"Name":"verified_phone_number"}]}}}"#,
    ))
    .await;
    let f = facade(count.url.clone()).await;
    // Both failures are read; neither refuses (issue 32): the SMS one is
    // advice, the deprecated email one decides nothing.
    let report = f
        .pools
        .clone()
        .check_user_pool_mfa_config(pb::CheckUserPoolMfaConfigRequest {
            user_pool_id: "us-east-1_Stub1".into(),
            config: Some(pb::UserPoolMfaConfig {
                sms_mfa_configuration: Some(pb::SmsMfaConfig {
                    sms_authentication_message: Some("Code {####}".into()),
                    sms_configuration: Some(pb::SmsConfiguration {
                        sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns".into()),
                        ..Default::default()
                    }),
                }),
                email_mfa_configuration: Some(pb::EmailMfaConfig::default()),
                mfa_configuration: pb::MfaConfiguration::On as i32,
                ..Default::default()
            }),
            update_mask: None,
            restore_revision: String::new(),
        })
        .await
        .expect("a check answers OK")
        .into_inner();
    let found: Vec<(i32, &str, &str)> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.rule.as_str(), f.subject.as_str()))
        .collect();
    assert_eq!(
        found,
        [(
            pb::check_finding::Kind::Advice as i32,
            "SMS_CONFIGURATION_FAILED",
            "SmsConfigurationFailure"
        )],
        "{report:?}"
    );
    assert!(report.findings[0].description.contains("SNSSandbox"));
    assert!(report.allowed);
    assert!(count.count() >= 1, "DescribeUserPool read");
}

/// Every exception Cognito models for the passkey and auth-factor calls,
/// and every WebAuthn exception of its API, answered by the stub: each is
/// a meaningful code, none INTERNAL, and the exception keeps its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_passkey_and_webauthn_exception_has_its_code() {
    macro_rules! body {
        ($e:literal) => {
            concat!(r#"{"__type":""#, $e, r#"","message":"stub"}"#)
        };
    }
    let cases: &[(&str, &'static str, Code)] = &[
        (
            "ForbiddenException",
            body!("ForbiddenException"),
            Code::PermissionDenied,
        ),
        (
            "InternalErrorException",
            body!("InternalErrorException"),
            Code::Unavailable,
        ),
        (
            "InvalidParameterException",
            body!("InvalidParameterException"),
            Code::InvalidArgument,
        ),
        (
            "LimitExceededException",
            body!("LimitExceededException"),
            Code::ResourceExhausted,
        ),
        (
            "NotAuthorizedException",
            body!("NotAuthorizedException"),
            Code::PermissionDenied,
        ),
        (
            "OperationNotEnabledException",
            body!("OperationNotEnabledException"),
            Code::FailedPrecondition,
        ),
        (
            "PasswordResetRequiredException",
            body!("PasswordResetRequiredException"),
            Code::FailedPrecondition,
        ),
        (
            "ResourceNotFoundException",
            body!("ResourceNotFoundException"),
            Code::NotFound,
        ),
        (
            "TooManyRequestsException",
            body!("TooManyRequestsException"),
            Code::ResourceExhausted,
        ),
        (
            "UserNotConfirmedException",
            body!("UserNotConfirmedException"),
            Code::FailedPrecondition,
        ),
        (
            "UserNotFoundException",
            body!("UserNotFoundException"),
            Code::NotFound,
        ),
        (
            "WebAuthnNotEnabledException",
            body!("WebAuthnNotEnabledException"),
            Code::FailedPrecondition,
        ),
        (
            "WebAuthnConfigurationMissingException",
            body!("WebAuthnConfigurationMissingException"),
            Code::FailedPrecondition,
        ),
        (
            "WebAuthnChallengeNotFoundException",
            body!("WebAuthnChallengeNotFoundException"),
            Code::FailedPrecondition,
        ),
        (
            "WebAuthnCredentialNotSupportedException",
            body!("WebAuthnCredentialNotSupportedException"),
            Code::InvalidArgument,
        ),
        (
            "WebAuthnClientMismatchException",
            body!("WebAuthnClientMismatchException"),
            Code::InvalidArgument,
        ),
        (
            "WebAuthnOriginNotAllowedException",
            body!("WebAuthnOriginNotAllowedException"),
            Code::InvalidArgument,
        ),
        (
            "WebAuthnRelyingPartyMismatchException",
            body!("WebAuthnRelyingPartyMismatchException"),
            Code::InvalidArgument,
        ),
    ];
    for (exception, body, code) in cases {
        let f = facade(stub(answer(400, body)).await).await;
        let list = f
            .users
            .clone()
            .list_web_authn_credentials(pb::ListWebAuthnCredentialsRequest {
                access_token: "a.b.c".into(),
                next_token: None,
                max_results: None,
            })
            .await
            .expect_err("the stub refuses");
        let delete = f
            .users
            .clone()
            .delete_web_authn_credential(pb::DeleteWebAuthnCredentialRequest {
                access_token: "a.b.c".into(),
                credential_id: "cred".into(),
            })
            .await
            .expect_err("the stub refuses");
        let factors = f
            .users
            .clone()
            .admin_get_user_auth_factors(pb::AdminGetUserAuthFactorsRequest {
                user_pool_id: "us-east-1_Stub1".into(),
                username: "u".into(),
            })
            .await
            .expect_err("the stub refuses");
        for err in [list, delete, factors] {
            assert_eq!(err.code(), *code, "{exception}: {err:?}");
            assert_eq!(
                err.get_details_error_info().map(|i| i.reason),
                Some(exception.to_string()),
                "{exception}"
            );
        }
    }
}

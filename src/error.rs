//! The one error type of a call, and its mapping to gRPC (DESIGN.md §3).
//! The table from Cognito exception to gRPC code exists here and nowhere else.

use std::time::Duration;

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::pool_state::Precondition;
use crate::domain::rules::{FieldViolation, Violations};

/// `google.rpc.ErrorInfo.domain` for errors that Cognito raised.
pub const COGNITO_DOMAIN: &str = "cognito-idp.amazonaws.com";
/// `google.rpc.ErrorInfo.domain` for errors the facade itself raised.
pub const FACADE_DOMAIN: &str = "mfa-facade";
/// The most bytes of a status message; longer ones (an upstream message, a
/// value echoed back) are cut with a marker. With the bounded
/// `BadRequest` (`rules::MAX_VIOLATIONS_BYTES`) every status the facade
/// sends, message and details encoded, fits in 8 KiB.
pub const MAX_STATUS_MESSAGE: usize = 512;
/// How long a throttled caller is told to wait when Cognito gives no hint.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);

/// An exception answered by Cognito (or by the endpoint standing in for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CognitoError {
    /// The exception name, e.g. `ResourceNotFoundException`.
    pub exception: String,
    pub message: String,
    /// The AWS request id (`x-amzn-RequestId`), when the answer carried one.
    pub request_id: Option<String>,
    /// The HTTP status of the answer.
    pub http_status: Option<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that breaks Cognito's rules; nothing was sent upstream.
    #[error("invalid request: {} bad field(s)", .0.len())]
    InvalidArgument(Vec<FieldViolation>),
    /// The caller is not allowed this method on this pool. The message never
    /// says whether the pool exists.
    #[error("{0}")]
    PermissionDenied(String),
    /// The call carried no valid caller credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Input that is valid but does not fit the current state.
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
    },
    /// The pool's own state (DescribeUserPool) does not allow the
    /// configuration: the pre-flight's findings, every one.
    #[error("the user pool's state does not allow this MFA configuration: {}", describe_preconditions(.0))]
    PoolState(Vec<Precondition>),
    /// `[[guardrails]]` with `deny` that the change does not satisfy:
    /// (name, message) of each.
    #[error("refused by guardrail(s): {}", describe_guardrails(.0))]
    GuardrailDenied(Vec<(String, String)>),
    /// What the call names does not exist in the facade's own records (a
    /// revision of a pool's history); Cognito's own NOT_FOUND is `Cognito`.
    #[error("{message}")]
    NotFound {
        reason: &'static str,
        message: String,
    },
    /// The audit store that serves a pool's history could not be read.
    #[error("the audit store that holds the history could not be read: {0}")]
    HistoryUnavailable(String),
    /// The etag precondition failed: the pool changed since the caller read it.
    #[error("{message}")]
    Aborted {
        reason: &'static str,
        message: String,
    },
    /// A rate limit refused the call before it reached the backend.
    #[error("rate limit exceeded: {limit}; retry in {} ms", pushback_ms(*.retry_after))]
    RateLimited {
        /// The budget's short name, e.g. `caller:GetUserPoolMfaConfig`.
        limit: String,
        /// The budget, in words, for `QuotaFailure`.
        description: String,
        retry_after: Duration,
    },
    /// Cognito refused or failed the call.
    #[error("Cognito {}: {}", .0.exception, .0.message)]
    Cognito(CognitoError),
    /// Cognito could not be reached in time; retrying may help.
    #[error("Cognito is unavailable: {0}")]
    Unavailable(String),
    /// The audit record of a change could not be made durable, so the
    /// change was not made (`audit.fail_closed`).
    #[error("the audit log is unavailable, so nothing was changed: {0}")]
    AuditUnavailable(String),
    /// A change was made, but its completed record could not be made
    /// durable before the call's deadline (`audit.fail_closed`): as Vault
    /// does, the call is not answered OK when its outcome cannot be logged.
    #[error("the change was made, but its completed audit record could not be made durable: {0}")]
    AuditCompletedUnavailable(String),
    /// A bug or a misconfiguration of the facade itself.
    #[error("internal error: {0}")]
    Internal(String),
    /// Cognito could not be called at all: the request could not be built
    /// or sent (credentials, STS, DNS, TLS, connect). The caller sees only
    /// `public`; `detail`, which can carry credential-chain or network
    /// text, goes to the server log with the call's request id.
    #[error("{public}")]
    UpstreamFailed {
        /// UNAVAILABLE (may pass) or INTERNAL (ours to fix).
        unavailable: bool,
        public: &'static str,
        detail: String,
    },
    /// The call reached its deadline: `server.request_timeout_ms`, or the
    /// caller's own `grpc-timeout` when that is sooner.
    #[error(
        "the call reached its deadline ({0} ms: the caller's grpc-timeout or server.request_timeout_ms); a change may or may not have been made"
    )]
    DeadlineExceeded(u64),
    /// A coverage walk reached `limits.walk.max_seconds`.
    #[error(
        "the walk streamed for limits.walk.max_seconds ({0} s); resume it with the page_token of its last message"
    )]
    WalkTimedOut(u64),
    /// The caller cancelled the call (a coverage walk it stopped reading).
    #[error("{0}")]
    Cancelled(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Violations> for Error {
    fn from(v: Violations) -> Self {
        Error::InvalidArgument(v.into_vec())
    }
}

impl Violations {
    /// `Ok` when no field was bad, else the INVALID_ARGUMENT error naming them all.
    pub fn into_result(self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.into())
        }
    }
}

/// The trailer by which gRPC clients with a retry policy learn when to
/// retry (gRFC A6): milliseconds as an ASCII integer.
pub const RETRY_PUSHBACK_TRAILER: &str = "grpc-retry-pushback-ms";

/// Whole milliseconds, rounded up so that a retry at that time passes.
pub fn pushback_ms(d: Duration) -> u64 {
    let ms = d.as_micros().div_ceil(1000);
    u64::try_from(ms)
        .unwrap_or(u64::MAX)
        .clamp(1, i32::MAX as u64)
}

/// Every Cognito exception the facade maps, and its gRPC code (DESIGN.md
/// §3). `tests/integration/model_conformance.rs` holds every exception
/// botocore's model lists for an operation the facade calls against this
/// table: one it does not name fails the test.
pub const EXCEPTION_CODES: &[(&str, Code)] = &[
    ("InvalidParameterException", Code::InvalidArgument),
    ("InvalidSmsRoleAccessPolicyException", Code::InvalidArgument),
    (
        "InvalidSmsRoleTrustRelationshipException",
        Code::InvalidArgument,
    ),
    ("CodeMismatchException", Code::InvalidArgument),
    ("EnableSoftwareTokenMFAException", Code::InvalidArgument),
    ("ValidationException", Code::InvalidArgument),
    ("ResourceNotFoundException", Code::NotFound),
    ("UserNotFoundException", Code::NotFound),
    ("NotAuthorizedException", Code::PermissionDenied),
    ("ForbiddenException", Code::PermissionDenied),
    ("PasswordResetRequiredException", Code::FailedPrecondition),
    ("UserNotConfirmedException", Code::FailedPrecondition),
    (
        "FeatureUnavailableInTierException",
        Code::FailedPrecondition,
    ),
    (
        "SoftwareTokenMFANotFoundException",
        Code::FailedPrecondition,
    ),
    (
        "InvalidUserPoolConfigurationException",
        Code::FailedPrecondition,
    ),
    ("OperationNotEnabledException", Code::FailedPrecondition),
    ("WebAuthnNotEnabledException", Code::FailedPrecondition),
    (
        "WebAuthnConfigurationMissingException",
        Code::FailedPrecondition,
    ),
    (
        "WebAuthnChallengeNotFoundException",
        Code::FailedPrecondition,
    ),
    // DescribeUserPool's (the pre-flight's read): the pool's tags cannot be
    // read; nothing the caller sent can fix it.
    ("UserPoolTaggingException", Code::FailedPrecondition),
    // The passkey or the client presenting it does not fit the pool.
    (
        "WebAuthnCredentialNotSupportedException",
        Code::InvalidArgument,
    ),
    ("WebAuthnClientMismatchException", Code::InvalidArgument),
    ("WebAuthnOriginNotAllowedException", Code::InvalidArgument),
    (
        "WebAuthnRelyingPartyMismatchException",
        Code::InvalidArgument,
    ),
    ("ConcurrentModificationException", Code::Aborted),
    // Only the local backend's fixtures raise it.
    ("UsernameExistsException", Code::AlreadyExists),
    // AdminUpdateUserAttributes: another user holds the email or phone
    // number as an alias or username.
    ("AliasExistsException", Code::AlreadyExists),
    (
        "InvalidEmailRoleAccessPolicyException",
        Code::InvalidArgument,
    ),
    // AdminUpdateUserAttributes runs the pool's Lambda triggers: one that
    // refuses, answers badly or fails is the pool's state, not the
    // caller's input.
    ("UserLambdaValidationException", Code::FailedPrecondition),
    ("InvalidLambdaResponseException", Code::FailedPrecondition),
    ("UnexpectedLambdaException", Code::FailedPrecondition),
    ("TooManyRequestsException", Code::ResourceExhausted),
    ("LimitExceededException", Code::ResourceExhausted),
    ("ThrottlingException", Code::ResourceExhausted),
    ("InternalErrorException", Code::Unavailable),
    ("ServiceUnavailable", Code::Unavailable),
    ("InternalFailure", Code::Unavailable),
];

/// The gRPC code for a Cognito exception name ([`EXCEPTION_CODES`]).
/// Anything else: a 5xx is Cognito's trouble and may pass; a 4xx we do not
/// know is ours (credentials, signing, an unmodelled rule).
pub fn code_for_exception(exception: &str, http_status: Option<u16>) -> Code {
    match EXCEPTION_CODES.iter().find(|(name, _)| *name == exception) {
        Some((_, code)) => *code,
        None => match http_status {
            Some(s) if s >= 500 => Code::Unavailable,
            _ => Code::Internal,
        },
    }
}

/// `name: message; ...`, for the status message.
fn describe_guardrails(denied: &[(String, String)]) -> String {
    let all: Vec<String> = denied.iter().map(|(n, m)| format!("{n}: {m}")).collect();
    all.join("; ")
}

/// `RULE (subject): description; ...`, for the status message.
fn describe_preconditions(found: &[Precondition]) -> String {
    let all: Vec<String> = found
        .iter()
        .map(|p| format!("{} ({}): {}", p.rule, p.subject, p.description))
        .collect();
    all.join("; ")
}

impl Error {
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::FailedPrecondition { .. } | Error::PoolState(_) | Error::GuardrailDenied(_) => {
                Code::FailedPrecondition
            }
            Error::Aborted { .. } => Code::Aborted,
            Error::NotFound { .. } => Code::NotFound,
            Error::HistoryUnavailable(_) => Code::Unavailable,
            Error::Cognito(e) => code_for_exception(&e.exception, e.http_status),
            Error::Unavailable(_) => Code::Unavailable,
            Error::Internal(_) => Code::Internal,
            Error::UpstreamFailed { unavailable, .. } => {
                if *unavailable {
                    Code::Unavailable
                } else {
                    Code::Internal
                }
            }
            Error::RateLimited { .. } => Code::ResourceExhausted,
            Error::AuditUnavailable(_) | Error::AuditCompletedUnavailable(_) => Code::Unavailable,
            Error::DeadlineExceeded(_) | Error::WalkTimedOut(_) => Code::DeadlineExceeded,
            Error::Cancelled(_) => Code::Cancelled,
        }
    }

    /// What only the server log may see: the upstream failure's detail.
    pub fn log_detail(&self) -> Option<&str> {
        match self {
            Error::UpstreamFailed { detail, .. } => Some(detail),
            _ => None,
        }
    }

    /// The Cognito exception name, when Cognito raised this error.
    pub fn cognito_exception(&self) -> Option<&str> {
        match self {
            Error::Cognito(e) => Some(&e.exception),
            _ => None,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let code = err.code();
        let mut details = ErrorDetails::new();
        let mut retry_after = None;
        let message = match &err {
            Error::InvalidArgument(violations) => {
                for v in violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
                format!("invalid request: bad field(s): {}", fields.join(", "))
            }
            Error::FailedPrecondition { reason, message }
            | Error::Aborted { reason, message }
            | Error::NotFound { reason, message } => {
                details.set_error_info(*reason, FACADE_DOMAIN, std::collections::HashMap::new());
                message.clone()
            }
            Error::PoolState(found) => {
                details.set_error_info(
                    "POOL_STATE",
                    FACADE_DOMAIN,
                    std::collections::HashMap::new(),
                );
                for p in found {
                    details.add_precondition_failure_violation(
                        p.rule,
                        p.subject,
                        p.description.clone(),
                    );
                }
                err.to_string()
            }
            Error::GuardrailDenied(denied) => {
                let names: Vec<&str> = denied.iter().map(|(n, _)| n.as_str()).collect();
                details.set_error_info(
                    "GUARDRAIL_DENIED",
                    FACADE_DOMAIN,
                    std::collections::HashMap::from([(
                        "guardrails".to_owned(),
                        crate::domain::text::truncate(&names.join(","), 256).into_owned(),
                    )]),
                );
                for (name, message) in denied {
                    details.add_precondition_failure_violation("GUARDRAIL", name, message);
                }
                err.to_string()
            }
            Error::Cognito(e) => {
                let mut metadata = std::collections::HashMap::new();
                // Upstream text too is bounded: an endpoint is not trusted to be small.
                if let Some(id) = &e.request_id {
                    metadata.insert(
                        "aws_request_id".to_owned(),
                        crate::domain::text::truncate(id, 128).into_owned(),
                    );
                }
                details.set_error_info(
                    crate::domain::text::truncate(&e.exception, 128),
                    COGNITO_DOMAIN,
                    metadata,
                );
                if code == Code::ResourceExhausted {
                    retry_after = Some(DEFAULT_RETRY_DELAY);
                }
                format!("{}: {}", e.exception, e.message)
            }
            Error::PermissionDenied(m) => {
                details.set_error_info(
                    "POLICY_DENIED",
                    FACADE_DOMAIN,
                    std::collections::HashMap::new(),
                );
                m.clone()
            }
            Error::Unauthenticated(m) => m.clone(),
            Error::Unavailable(m) => {
                details.set_error_info(
                    "UPSTREAM_UNAVAILABLE",
                    FACADE_DOMAIN,
                    std::collections::HashMap::new(),
                );
                format!("Cognito is unavailable: {m}")
            }
            Error::Internal(m) => format!("internal error: {m}"),
            Error::UpstreamFailed {
                unavailable,
                public,
                ..
            } => {
                if *unavailable {
                    details.set_error_info(
                        "UPSTREAM_UNAVAILABLE",
                        FACADE_DOMAIN,
                        std::collections::HashMap::new(),
                    );
                }
                (*public).to_owned()
            }
            Error::DeadlineExceeded(_) | Error::WalkTimedOut(_) | Error::Cancelled(_) => {
                err.to_string()
            }
            Error::AuditUnavailable(_)
            | Error::AuditCompletedUnavailable(_)
            | Error::HistoryUnavailable(_) => {
                details.set_error_info(
                    "AUDIT_UNAVAILABLE",
                    FACADE_DOMAIN,
                    std::collections::HashMap::new(),
                );
                err.to_string()
            }
            Error::RateLimited {
                limit,
                description,
                retry_after: after,
            } => {
                details.set_error_info(
                    "RATE_LIMITED",
                    FACADE_DOMAIN,
                    std::collections::HashMap::from([("limit".to_owned(), limit.clone())]),
                );
                details.add_quota_failure_violation(limit.clone(), description.clone());
                retry_after = Some(*after);
                err.to_string()
            }
        };
        let mut metadata = tonic::metadata::MetadataMap::new();
        if let Some(after) = retry_after {
            details.set_retry_info(Some(after));
            metadata.insert(RETRY_PUSHBACK_TRAILER, pushback_ms(after).into());
        }
        let message = crate::domain::text::truncate(&message, MAX_STATUS_MESSAGE);
        tonic::Status::with_error_details_and_metadata(code, message, details, metadata)
    }
}

/// The canonical upper-case name of a gRPC code, as in the gRPC spec.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cognito(exception: &str, http_status: u16) -> Error {
        Error::Cognito(CognitoError {
            exception: exception.into(),
            message: "m".into(),
            request_id: Some("req-1".into()),
            http_status: Some(http_status),
        })
    }

    /// The bytes a status takes on the wire as headers or trailers.
    fn header_bytes(status: tonic::Status) -> usize {
        status
            .into_http::<tonic::body::Body>()
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum()
    }

    #[test]
    fn every_status_fits_in_8_kib_whatever_the_input() {
        let mut v = Violations::default();
        for i in 0..10_000 {
            v.add(
                format!("update_mask{}", "ü".repeat(i % 300)),
                format!("unknown path {:?}", "\u{1}".repeat(5000)),
            );
        }
        let bytes = header_bytes(Error::from(v).into());
        assert!(bytes <= 8192, "{bytes} bytes");
        let long = "é\n".repeat(1_000_000);
        for e in [
            Error::PermissionDenied(long.clone()),
            Error::Internal(long.clone()),
            cognito(&long, 400),
            Error::FailedPrecondition {
                reason: "R",
                message: long.clone(),
            },
        ] {
            let bytes = header_bytes(e.into());
            assert!(bytes <= 8192, "{bytes} bytes");
        }
    }

    #[test]
    fn a_violation_repeated_is_listed_once_and_the_rest_are_counted() {
        let mut v = Violations::default();
        for _ in 0..10 {
            v.add("update_mask", "unknown path \"x\"");
        }
        assert_eq!(v.into_vec().len(), 1);
        let mut v = Violations::default();
        for i in 0..1000 {
            v.add("f", format!("rule {i} {}", "x".repeat(200)));
        }
        let all = v.into_vec();
        let last = all
            .last()
            .map(|l| l.description.clone())
            .unwrap_or_default();
        assert!(
            all.len() < 20 && last.contains("more violation(s)"),
            "{last}"
        );
    }

    #[test]
    fn the_design_table() {
        let table = [
            ("InvalidParameterException", Code::InvalidArgument),
            ("InvalidSmsRoleAccessPolicyException", Code::InvalidArgument),
            (
                "InvalidSmsRoleTrustRelationshipException",
                Code::InvalidArgument,
            ),
            ("CodeMismatchException", Code::InvalidArgument),
            ("EnableSoftwareTokenMFAException", Code::InvalidArgument),
            ("ResourceNotFoundException", Code::NotFound),
            ("UserNotFoundException", Code::NotFound),
            ("NotAuthorizedException", Code::PermissionDenied),
            ("ForbiddenException", Code::PermissionDenied),
            ("PasswordResetRequiredException", Code::FailedPrecondition),
            ("UserNotConfirmedException", Code::FailedPrecondition),
            (
                "FeatureUnavailableInTierException",
                Code::FailedPrecondition,
            ),
            (
                "SoftwareTokenMFANotFoundException",
                Code::FailedPrecondition,
            ),
            ("ConcurrentModificationException", Code::Aborted),
            ("TooManyRequestsException", Code::ResourceExhausted),
            ("LimitExceededException", Code::ResourceExhausted),
            ("InternalErrorException", Code::Unavailable),
        ];
        for (exception, code) in table {
            assert_eq!(cognito(exception, 400).code(), code, "{exception}");
        }
        assert_eq!(cognito("SomethingNew", 503).code(), Code::Unavailable);
        assert_eq!(
            cognito("UnrecognizedClientException", 400).code(),
            Code::Internal
        );
    }

    #[test]
    fn status_carries_error_info_and_retry_info() {
        let status = tonic::Status::from(cognito("TooManyRequestsException", 400));
        assert_eq!(status.code(), Code::ResourceExhausted);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "TooManyRequestsException");
        assert_eq!(info.domain, COGNITO_DOMAIN);
        assert_eq!(
            info.metadata.get("aws_request_id").map(String::as_str),
            Some("req-1")
        );
        assert!(status.get_details_retry_info().is_some());
        assert_eq!(
            status
                .metadata()
                .get(RETRY_PUSHBACK_TRAILER)
                .map(|v| v.to_str().ok()),
            Some(Some("1000"))
        );

        let status = tonic::Status::from(cognito("ResourceNotFoundException", 400));
        assert!(status.get_details_retry_info().is_none());
        assert!(status.metadata().get(RETRY_PUSHBACK_TRAILER).is_none());
    }

    #[test]
    fn a_rate_limit_refusal_says_which_budget_and_when() {
        let status = tonic::Status::from(Error::RateLimited {
            limit: "caller:GetUserPoolMfaConfig".into(),
            description: "this caller's budget".into(),
            retry_after: Duration::from_micros(12_300),
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.get_details_retry_info().and_then(|r| r.retry_delay),
            Some(Duration::from_micros(12_300))
        );
        assert_eq!(
            status
                .metadata()
                .get(RETRY_PUSHBACK_TRAILER)
                .map(|v| v.to_str().ok()),
            Some(Some("13"))
        );
        let quota = status.get_details_quota_failure().expect("quota failure");
        assert_eq!(quota.violations[0].subject, "caller:GetUserPoolMfaConfig");
        assert_eq!(
            status.get_details_error_info().map(|i| i.reason),
            Some("RATE_LIMITED".to_owned())
        );
        assert!(
            status.message().contains("retry in 13 ms"),
            "{}",
            status.message()
        );
        assert_eq!(pushback_ms(Duration::ZERO), 1);
        assert_eq!(pushback_ms(Duration::from_secs(1 << 40)), i32::MAX as u64);
    }

    #[test]
    fn bad_request_lists_every_field() {
        let mut v = Violations::default();
        v.add("user_pool_id", "is required");
        v.add("user_code", "must be exactly 6 digits (0-9)");
        let status = tonic::Status::from(v.into_result().unwrap_err());
        assert_eq!(status.code(), Code::InvalidArgument);
        let br = status.get_details_bad_request().expect("bad request");
        let fields: Vec<_> = br
            .field_violations
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["user_pool_id", "user_code"]);
        assert!(status.message().contains("user_pool_id, user_code"));
    }
}

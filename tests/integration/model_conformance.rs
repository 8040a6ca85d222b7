//! Issue 32, part 6: the facade against botocore's service model of
//! Cognito, pinned (`BOTOCORE_MODEL_VERSION` in scripts/test.sh, which
//! downloads that botocore wheel from PyPI and unpacks the model into
//! `MFA_FACADE_TEST_BOTOCORE_MODEL`). The Rust SDK carries no lengths or
//! patterns (sdk_parity.rs checks names only); the model does. For every
//! operation the facade calls, this fails when
//! - a modelled exception is not in `error::EXCEPTION_CODES`;
//! - an input member of an operation the API mirrors has no proto field;
//! - a length or range differs from `domain::rules` (each bound driven at
//!   both edges through the rule itself), unless listed as a deliberate,
//!   documented deviation below;
//! - a pattern differs from the one the rule was written against;
//! - an enum value differs from the SDK's (which sdk_parity.rs holds
//!   against the proto).

use std::collections::BTreeMap;

use aws_sdk_cognitoidentityprovider::types as t;
use mfa_facade::domain::{Secret, rules, rules::Violations};
use mfa_facade::method::CognitoOp;
use prost::Message;
use serde_json::Value;

use crate::sdk_parity::snake_case;

fn model() -> Value {
    let path = std::env::var("MFA_FACADE_TEST_BOTOCORE_MODEL").unwrap_or_else(|_| {
        panic!(
            "MFA_FACADE_TEST_BOTOCORE_MODEL is not set: scripts/test.sh downloads the pinned \
             botocore's Cognito model and sets it (or point it at a service-2.json)"
        )
    });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the botocore model {path}: {e}"));
    serde_json::from_str(&text).expect("the model is JSON")
}

fn shape<'a>(m: &'a Value, name: &str) -> &'a Value {
    let s = &m["shapes"][name];
    assert!(s.is_object(), "the model has no shape {name}");
    s
}

/// An operation's input members: name -> shape name.
fn inputs(m: &Value, op: &str) -> BTreeMap<String, String> {
    let input = m["operations"][op]["input"]["shape"]
        .as_str()
        .unwrap_or_else(|| panic!("the model has no operation {op}"));
    shape(m, input)["members"]
        .as_object()
        .map(|members| {
            members
                .iter()
                .map(|(k, v)| (k.clone(), v["shape"].as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn bound(s: &Value, key: &str) -> Option<i64> {
    s[key].as_i64()
}

#[test]
fn every_modelled_exception_of_a_called_operation_is_mapped() {
    let m = model();
    let mapped: Vec<&str> = mfa_facade::error::EXCEPTION_CODES
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let mut missing = Vec::new();
    let mut count = 0;
    for op in CognitoOp::ALL {
        let errors = m["operations"][op.name()]["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("the model has no operation {}", op.name()));
        for e in errors {
            let name = e["shape"].as_str().unwrap_or("");
            count += 1;
            if !mapped.contains(&name) {
                missing.push(format!("{}: {name}", op.name()));
            }
        }
    }
    println!(
        "{count} modelled exceptions of {} operations, every one mapped",
        CognitoOp::ALL.len()
    );
    assert!(missing.is_empty(), "not in EXCEPTION_CODES: {missing:?}");
}

#[test]
fn every_input_member_of_a_mirrored_operation_is_a_proto_field() {
    let m = model();
    let set = prost_types::FileDescriptorSet::decode(mfa_facade::proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let fields = |message: &str| -> Vec<String> {
        set.file
            .iter()
            .filter(|f| f.package() == "cognito.mfa.v1")
            .flat_map(|f| f.message_type.iter())
            .find(|d| d.name() == message)
            .unwrap_or_else(|| panic!("no proto message {message}"))
            .field
            .iter()
            .map(|f| f.name().to_owned())
            .collect()
    };
    // The operations the API mirrors, and their request messages. (The
    // others it calls are its own: DescribeUserPool for the pre-flight,
    // GetUser/AdminGetUser behind Get/AdminGetUserMfaSettings, ListUsers
    // behind the walk.)
    let mirrored = [
        ("GetUserPoolMfaConfig", "GetUserPoolMfaConfigRequest"),
        ("SetUserPoolMfaConfig", "SetUserPoolMfaConfigRequest"),
        ("SetUserMFAPreference", "SetUserMfaPreferenceRequest"),
        (
            "AdminSetUserMFAPreference",
            "AdminSetUserMfaPreferenceRequest",
        ),
        ("AssociateSoftwareToken", "AssociateSoftwareTokenRequest"),
        ("VerifySoftwareToken", "VerifySoftwareTokenRequest"),
        (
            "AdminDeleteSoftwareToken",
            "AdminDeleteSoftwareTokenRequest",
        ),
        ("GetUserAuthFactors", "GetUserAuthFactorsRequest"),
        ("AdminGetUserAuthFactors", "AdminGetUserAuthFactorsRequest"),
        ("ListWebAuthnCredentials", "ListWebAuthnCredentialsRequest"),
        (
            "DeleteWebAuthnCredential",
            "DeleteWebAuthnCredentialRequest",
        ),
    ];
    let mut missing = Vec::new();
    for (op, message) in mirrored {
        let ours = fields(message);
        for member in inputs(&m, op).keys() {
            let want = snake_case(member);
            if !ours.contains(&want) {
                missing.push(format!("{op}.{member} -> {message}.{want}"));
            }
        }
    }
    assert!(missing.is_empty(), "members the proto lacks: {missing:?}");
}

/// Whether `rule` accepts `value`.
fn accepts(rule: &dyn Fn(&mut Violations, &str), value: &str) -> bool {
    let mut v = Violations::default();
    rule(&mut v, value);
    v.is_empty()
}

/// One member's length bound in the model, driven through our rule at both
/// edges with `fill` (a character the pattern takes); `ours` is what the
/// rule enforces when it deliberately differs (documented where the rule
/// is), else `None`.
struct Length<'a> {
    op: &'static str,
    member: &'static str,
    rule: &'a dyn Fn(&mut Violations, &str),
    make: &'a dyn Fn(usize) -> String,
    ours: Option<(usize, usize)>,
}

#[test]
fn every_length_is_the_models_or_a_documented_deviation() {
    let m = model();
    let session = |v: &mut Violations, s: &str| rules::session(v, "session", &Secret::new(s));
    let code = |v: &mut Violations, s: &str| rules::user_code(v, "user_code", &Secret::new(s));
    let pool = |v: &mut Violations, s: &str| rules::user_pool_id(v, "user_pool_id", s);
    let username = |v: &mut Violations, s: &str| rules::username(v, "username", s);
    let string = |v: &mut Violations, s: &str| rules::string(v, "friendly_device_name", s);
    let token = |v: &mut Violations, s: &str| rules::pagination_token(v, "next_token", s);
    let credential = |v: &mut Violations, s: &str| rules::credential_id(v, "credential_id", s);
    let filter = |v: &mut Violations, s: &str| rules::user_filter(v, "filter", s);
    let fill = |c: char| move |n: usize| c.to_string().repeat(n);
    let pool_of = |n: usize| format!("us-east-1_{}", "A".repeat(n.saturating_sub(10)));
    // `username = "…"`: 14 characters around the value.
    let filter_of = |n: usize| format!("username = \"{}\"", "a".repeat(n.saturating_sub(13)));
    let (s, d, a) = (fill('s'), fill('1'), fill('a'));
    let cases = [
        Length {
            op: "VerifySoftwareToken",
            member: "Session",
            rule: &session,
            make: &s,
            ours: None,
        },
        Length {
            op: "AssociateSoftwareToken",
            member: "Session",
            rule: &session,
            make: &s,
            ours: None,
        },
        Length {
            op: "VerifySoftwareToken",
            member: "UserCode",
            rule: &code,
            make: &d,
            ours: None,
        },
        Length {
            op: "VerifySoftwareToken",
            member: "FriendlyDeviceName",
            rule: &string,
            make: &a,
            ours: None,
        },
        Length {
            op: "AdminGetUserAuthFactors",
            member: "UserPoolId",
            rule: &pool,
            make: &pool_of,
            // At least "x_y": no shorter id can match the pattern.
            ours: Some((3, 55)),
        },
        Length {
            op: "AdminGetUserAuthFactors",
            member: "Username",
            rule: &username,
            make: &a,
            ours: None,
        },
        Length {
            op: "ListWebAuthnCredentials",
            member: "NextToken",
            rule: &token,
            make: &a,
            // rules::MAX_PAGINATION_TOKEN: the facade bounds what it passes on.
            ours: Some((1, rules::MAX_PAGINATION_TOKEN)),
        },
        Length {
            op: "DeleteWebAuthnCredential",
            member: "CredentialId",
            rule: &credential,
            make: &a,
            // rules::MAX_CREDENTIAL_ID: WebAuthn ids are at most 1,364
            // characters in base64url; an empty one names nothing.
            ours: Some((1, rules::MAX_CREDENTIAL_ID)),
        },
        Length {
            op: "ListUsers",
            member: "Filter",
            rule: &filter,
            make: &filter_of,
            // The shortest filter of ours is `sub = "x"`-like; the model has
            // no minimum.
            ours: Some((0, rules::MAX_FILTER)),
        },
    ];
    let mut wrong = Vec::new();
    for c in &cases {
        let shape_name = inputs(&m, c.op)
            .get(c.member)
            .cloned()
            .unwrap_or_else(|| panic!("{}.{} is not in the model", c.op, c.member));
        let s = shape(&m, &shape_name);
        let (min, max) = (bound(s, "min").unwrap_or(0), bound(s, "max"));
        let model = (
            usize::try_from(min).unwrap_or(0),
            max.and_then(|x| usize::try_from(x).ok()),
        );
        let (lo, hi) = match c.ours {
            Some(ours) => ours,
            None => {
                let Some(hi) = model.1 else {
                    wrong.push(format!("{}.{}: the model has no maximum", c.op, c.member));
                    continue;
                };
                (model.0, hi)
            }
        };
        let name = format!("{}.{} ({shape_name}, model {model:?})", c.op, c.member);
        if c.ours.is_none() {
            // The rule must take exactly the model's range.
            if !accepts(c.rule, &(c.make)(lo)) || !accepts(c.rule, &(c.make)(hi)) {
                wrong.push(format!("{name}: refuses a length the model allows"));
            }
            if lo > 0 && accepts(c.rule, &(c.make)(lo - 1)) {
                wrong.push(format!("{name}: takes {} characters", lo - 1));
            }
            if accepts(c.rule, &(c.make)(hi + 1)) {
                wrong.push(format!("{name}: takes {} characters", hi + 1));
            }
        } else {
            // A deliberate deviation: the rule holds its own bound, which
            // stays within the model's.
            if accepts(c.rule, &(c.make)(hi + 1)) || !accepts(c.rule, &(c.make)(hi)) {
                wrong.push(format!(
                    "{name}: the rule does not hold its own maximum {hi}"
                ));
            }
            if model.1.is_some_and(|m| hi > m) || lo < model.0 {
                wrong.push(format!("{name}: ours {lo}..{hi} reaches past the model"));
            }
        }
    }
    // Ranges of numbers.
    let limit = shape(&m, "WebAuthnCredentialsQueryLimitType");
    let range = (bound(limit, "min"), bound(limit, "max"));
    let max_results = |n: i32| {
        let mut v = Violations::default();
        rules::web_authn_max_results(&mut v, "max_results", Some(n));
        v.is_empty()
    };
    if range != (Some(0), Some(i64::from(rules::MAX_WEB_AUTHN_RESULTS)))
        || !max_results(0)
        || max_results(-1)
        || !max_results(rules::MAX_WEB_AUTHN_RESULTS)
        || max_results(rules::MAX_WEB_AUTHN_RESULTS + 1)
    {
        wrong.push(format!(
            "ListWebAuthnCredentials.MaxResults: model {range:?}"
        ));
    }
    let walk_page = shape(&m, "QueryLimitType");
    if bound(walk_page, "max") != Some(i64::from(mfa_facade::call::walk::PAGE_SIZE)) {
        wrong.push("ListUsers.Limit: the walk's PAGE_SIZE is not the model's maximum".into());
    }
    println!(
        "{} lengths and 2 ranges held against the model",
        cases.len()
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn every_pattern_is_the_one_the_rule_was_written_against() {
    let m = model();
    // The model's pattern of each shape a rule checks, as it was when the
    // rule was written (each rule's regex is in src/domain/rules.rs).
    let written_against = [
        ("UserPoolIdType", "[\\w-]+_[0-9a-zA-Z]+"),
        ("UsernameType", "[\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}]+"),
        ("TokenModelType", "[A-Za-z0-9-_=.]+"),
        ("SoftwareTokenMFAUserCodeType", "[0-9]+"),
        ("PaginationKey", "[\\S]+"),
        ("SearchPaginationTokenType", "[\\S]+"),
        ("SmsVerificationMessageType", ".*\\{####\\}.*"),
        (
            "EmailMfaMessageType",
            "[\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}\\s*]*\\{####\\}[\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}\\s*]*",
        ),
        (
            "EmailMfaSubjectType",
            "[\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}\\s]+",
        ),
    ];
    let mut changed = Vec::new();
    for (name, pattern) in written_against {
        let now = shape(&m, name)["pattern"].as_str().unwrap_or("(none)");
        if now != pattern {
            changed.push(format!(
                "{name}: the model has {now:?}, the rule {pattern:?}"
            ));
        }
    }
    assert!(changed.is_empty(), "{changed:#?}");
}

#[test]
fn every_enum_is_the_sdks() {
    let m = model();
    let values = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = shape(&m, name)["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not an enum in the model"))
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect();
        v.sort();
        v
    };
    let sdk = |values: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    };
    let pairs: [(&str, &[&str]); 9] = [
        ("UserPoolMfaType", t::UserPoolMfaType::values()),
        (
            "VerifySoftwareTokenResponseType",
            t::VerifySoftwareTokenResponseType::values(),
        ),
        ("AuthFactorType", t::AuthFactorType::values()),
        ("UserVerificationType", t::UserVerificationType::values()),
        (
            "WebAuthnFactorConfigurationType",
            t::WebAuthnFactorConfigurationType::values(),
        ),
        ("UserPoolTierType", t::UserPoolTierType::values()),
        (
            "EmailSendingAccountType",
            t::EmailSendingAccountType::values(),
        ),
        (
            "RecoveryOptionNameType",
            t::RecoveryOptionNameType::values(),
        ),
        ("UserStatusType", t::UserStatusType::values()),
    ];
    let mut differ = Vec::new();
    for (name, sdk_values) in pairs {
        let (model, sdk) = (values(name), sdk(sdk_values));
        if model != sdk {
            differ.push(format!("{name}: model {model:?}, SDK {sdk:?}"));
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}

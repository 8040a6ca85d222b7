//! Cognito's input rules (COGNITO.md §1, and the §3 rules that the request
//! alone decides). Every bad field is collected, so one answer names them all.
//!
//! Field paths are the request's snake_case field names, joined with dots
//! (`sms_mfa_configuration.sms_authentication_message`). Lengths count UTF-16
//! code units, as Cognito (Java) does. Patterns are Cognito's, matched against
//! the whole value, with `\w` as ASCII `[A-Za-z0-9_]` as in Java.

use std::sync::LazyLock;

use regex::Regex;

use super::{EumsSmsConfig, FactorSettings, MfaMode, MfaPreference, PoolMfaConfig, Secret};

mod devices;
mod filter;
mod violations;

pub use devices::{
    MAX_ATTRIBUTE_VALUE, MAX_CREDENTIAL_JSON, MAX_DEVICES_PAGE, MAX_PHONE_DIGITS, device_key,
    device_limit, mfa_attributes, web_authn_credential_json,
};
pub use filter::{FILTER_ATTRIBUTES, MAX_FILTER, UserFilter, user_filter};
pub use violations::{
    FieldViolation, MAX_VIOLATION_DESCRIPTION, MAX_VIOLATION_FIELD, MAX_VIOLATIONS_BYTES,
    Violations,
};

/// Cognito's StringType maximum.
pub const MAX_STRING: usize = 131_072;

fn anchored(pattern: &str) -> Regex {
    #[allow(clippy::expect_used)] // constant patterns, checked by the tests below
    Regex::new(&format!("^(?:{pattern})$")).expect("valid constant regex")
}

const ARN: &str = r"arn:[A-Za-z0-9_+=/,.@-]+:[A-Za-z0-9_+=/,.@-]+:([A-Za-z0-9_+=/,.@-]*)?:[0-9]+:[A-Za-z0-9_+=/,.@-]+(:[A-Za-z0-9_+=/,.@-]+)?(:[A-Za-z0-9_+=/,.@-]+)?";

static USER_POOL_ID: LazyLock<Regex> = LazyLock::new(|| anchored(r"[A-Za-z0-9_-]+_[0-9a-zA-Z]+"));
static USERNAME: LazyLock<Regex> = LazyLock::new(|| anchored(r"[\p{L}\p{M}\p{S}\p{N}\p{P}]+"));
static TOKEN: LazyLock<Regex> = LazyLock::new(|| anchored(r"[A-Za-z0-9\-_=.]+"));
static ARN_RE: LazyLock<Regex> = LazyLock::new(|| anchored(ARN));
// Java's `.` does not match line terminators, so a newline breaks the match.
static SMS_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    anchored(r"[^\n\r\u{85}\u{2028}\u{2029}]*\{####\}[^\n\r\u{85}\u{2028}\u{2029}]*")
});
static EMAIL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    anchored(r"[\p{L}\p{M}\p{S}\p{N}\p{P}\s*]*\{####\}[\p{L}\p{M}\p{S}\p{N}\p{P}\s*]*")
});
static EMAIL_SUBJECT: LazyLock<Regex> =
    LazyLock::new(|| anchored(r"[\p{L}\p{M}\p{S}\p{N}\p{P}\s]+"));
static NO_SPACE: LazyLock<Regex> = LazyLock::new(|| anchored(r"\S+"));
static USER_CODE: LazyLock<Regex> = LazyLock::new(|| anchored(r"[0-9]+"));

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

fn check_length(v: &mut Violations, field: &str, value: &str, min: usize, max: Option<usize>) {
    let len = utf16_len(value);
    match max {
        Some(max) if len < min || len > max => v.add(
            field,
            format!("length must be between {min} and {max} characters (is {len})"),
        ),
        None if len < min => v.add(
            field,
            format!("length must be at least {min} characters (is {len})"),
        ),
        _ => {}
    }
}

fn check_pattern(v: &mut Violations, field: &str, value: &str, re: &Regex, rule: &str) {
    if !re.is_match(value) {
        v.add(field, format!("must match {rule}"));
    }
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// PoolNameType: 1 to 128 characters (UTF-16 units).
pub fn pool_name(v: &mut Violations, field: &str, value: &str) {
    let len = value.encode_utf16().count();
    if !(1..=128).contains(&len) {
        v.add(
            field,
            format!("length must be between 1 and 128 characters (is {len})"),
        );
    }
}

/// UserPoolIdType: 1 to 55 characters, `[\w-]+_[0-9a-zA-Z]+`.
pub fn user_pool_id(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        v.add(field, "is required");
        return;
    }
    check_length(v, field, value, 1, Some(55));
    // Every call names a pool: the pattern is checked by hand first (a
    // test holds it equal to the regex), the regex only names the rule.
    if !is_user_pool_id(value) {
        check_pattern(
            v,
            field,
            value,
            &USER_POOL_ID,
            r"the pattern [\w-]+_[0-9a-zA-Z]+ (e.g. us-east-1_AbC123)",
        );
    }
}

/// Whether `value` matches [`USER_POOL_ID`], `[A-Za-z0-9_-]+_[0-9a-zA-Z]+`:
/// its last `_` has one or more of the first class before it and one or
/// more letters or digits after it.
fn is_user_pool_id(value: &str) -> bool {
    let Some(last) = value.rfind('_') else {
        return false;
    };
    let (head, tail) = (&value[..last], &value[last + 1..]);
    !head.is_empty()
        && !tail.is_empty()
        && head
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && tail.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// UsernameType: 1 to 128 letters, marks, symbols, numbers or punctuation.
pub fn username(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        v.add(field, "is required");
        return;
    }
    check_length(v, field, value, 1, Some(128));
    check_pattern(
        v,
        field,
        value,
        &USERNAME,
        r"the pattern [\p{L}\p{M}\p{S}\p{N}\p{P}]+ (no spaces or control characters)",
    );
}

/// TokenModelType: `[A-Za-z0-9-_=.]+`.
pub fn access_token(v: &mut Violations, field: &str, value: &Secret) {
    if value.expose().is_empty() {
        v.add(field, "is required");
        return;
    }
    // The value is never echoed back: it is a credential.
    check_pattern(
        v,
        field,
        value.expose(),
        &TOKEN,
        "the pattern [A-Za-z0-9-_=.]+",
    );
}

/// SessionType: 20 to 4096 characters in botocore's model of 2026-11-20
/// (PyPI botocore 1.44.8; 2048 before): COGNITO.md §6.1.
pub const SESSION_LEN: (usize, usize) = (20, 4096);

pub fn session(v: &mut Violations, field: &str, value: &Secret) {
    let (min, max) = SESSION_LEN;
    check_length(v, field, value.expose(), min, Some(max));
}

/// Exactly one of an access token and a session (AssociateSoftwareToken,
/// VerifySoftwareToken).
pub fn token_or_session(
    v: &mut Violations,
    access_token_value: Option<&Secret>,
    session_value: Option<&Secret>,
) {
    match (access_token_value, session_value) {
        (Some(_), Some(_)) => v.add("session", "send either access_token or session, not both"),
        (None, None) => v.add("access_token", "either access_token or session is required"),
        (Some(token), None) => access_token(v, "access_token", token),
        (None, Some(s)) => session(v, "session", s),
    }
}

/// SoftwareTokenMFAUserCodeType: exactly 6 digits.
pub fn user_code(v: &mut Violations, field: &str, value: &Secret) {
    let code = value.expose();
    if utf16_len(code) != 6 || !USER_CODE.is_match(code) {
        v.add(field, "must be exactly 6 digits (0-9)");
    }
}

/// A WebAuthn credential id (DeleteWebAuthnCredential.CredentialId): 1 to
/// 2048 characters without white space. Cognito models it as a plain
/// string; WebAuthn ids are at most 1023 bytes, 1364 in base64url, so the
/// facade's bound leaves room and refuses the rest before Cognito.
pub const MAX_CREDENTIAL_ID: usize = 2048;

pub fn credential_id(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        v.add(field, "is required");
        return;
    }
    check_length(v, field, value, 1, Some(MAX_CREDENTIAL_ID));
    check_pattern(
        v,
        field,
        value,
        &NO_SPACE,
        r"the pattern [\S]+ (no white space)",
    );
}

/// PaginationKey / SearchPaginationTokenType: `[\S]+`. Cognito states no
/// maximum; the facade bounds a token it passes on at 4096 characters.
pub const MAX_PAGINATION_TOKEN: usize = 4096;

pub fn pagination_token(v: &mut Violations, field: &str, value: &str) {
    let len = utf16_len(value);
    if len == 0 || len > MAX_PAGINATION_TOKEN {
        check_length(v, field, value, 1, Some(MAX_PAGINATION_TOKEN));
    } else {
        check_pattern(
            v,
            field,
            value,
            &NO_SPACE,
            r"the pattern [\S]+ (no white space)",
        );
    }
}

/// ListWebAuthnCredentials.MaxResults: 0 to 20
/// (WebAuthnCredentialsQueryLimitType, botocore's model; COGNITO.md §6.1).
pub const MAX_WEB_AUTHN_RESULTS: i32 = 20;

pub fn web_authn_max_results(v: &mut Violations, field: &str, value: Option<i32>) {
    if let Some(n) = value
        && !(0..=MAX_WEB_AUTHN_RESULTS).contains(&n)
    {
        v.add(
            field,
            format!("must be between 0 and {MAX_WEB_AUTHN_RESULTS} (is {n})"),
        );
    }
}

/// StringType: at most 131072 characters.
pub fn string(v: &mut Violations, field: &str, value: &str) {
    check_length(v, field, value, 0, Some(MAX_STRING));
}

fn region(v: &mut Violations, field: &str, value: &str) {
    check_length(v, field, value, 5, Some(32));
}

fn arn(v: &mut Violations, field: &str, value: &str, min: usize) {
    check_length(v, field, value, min, Some(2048));
    if !value.is_empty() {
        check_pattern(
            v,
            field,
            value,
            &ARN_RE,
            "an IAM role ARN (arn:partition:service:region:account:resource)",
        );
    }
}

/// SetUserPoolMfaConfig's configuration: every field rule, then the rules
/// that tie the mode to the factor blocks. `prefix` is "" for Set and
/// "config" for Update.
pub fn pool_mfa_config(v: &mut Violations, prefix: &str, config: &PoolMfaConfig) {
    pool_mfa_config_fields(v, prefix, config);

    if let Some(conf) = config
        .sms
        .as_ref()
        .and_then(|s| s.sms_configuration.as_ref())
    {
        let p = join(prefix, "sms_mfa_configuration.sms_configuration");
        let sns_arn = conf.sns_caller_arn.as_deref().filter(|a| !a.is_empty());
        match (sns_arn, &conf.eums_sms) {
            (Some(_), Some(_)) => v.add(
                join(&p, "eums_sms"),
                "give either sns_caller_arn or eums_sms, not both",
            ),
            (None, None) => v.add(
                join(&p, "sns_caller_arn"),
                "sms_configuration needs either sns_caller_arn or eums_sms",
            ),
            _ => {}
        }
    }

    let mode_field = join(prefix, "mfa_configuration");
    match config.mode {
        Some(MfaMode::On) | Some(MfaMode::Optional) => {
            if !config.has_mfa_factor() {
                v.add(
                    mode_field,
                    "ON and OPTIONAL need at least one MFA factor: sms_mfa_configuration, \
                     software_token_mfa_configuration with enabled = true, or \
                     email_mfa_configuration (WebAuthn alone is not an MFA factor)",
                );
            }
        }
        Some(MfaMode::Off) | None => {
            let present = [
                ("sms_mfa_configuration", config.sms.is_some()),
                (
                    "software_token_mfa_configuration",
                    config.software_token.is_some(),
                ),
                ("email_mfa_configuration", config.email.is_some()),
            ];
            for (field, is_present) in present {
                if is_present {
                    v.add(
                        join(prefix, field),
                        "must not be set when mfa_configuration is OFF or unspecified \
                         (Cognito reads an unspecified mode as OFF)",
                    );
                }
            }
        }
    }
}

/// The per-field rules of a pool configuration, without the rules that tie
/// fields together: used on its own for the masked part of an Update before any read.
pub fn pool_mfa_config_fields(v: &mut Violations, prefix: &str, config: &PoolMfaConfig) {
    if let Some(sms) = &config.sms {
        let p = join(prefix, "sms_mfa_configuration");
        if let Some(msg) = &sms.sms_authentication_message {
            let f = join(&p, "sms_authentication_message");
            check_length(v, &f, msg, 6, Some(140));
            check_pattern(
                v,
                &f,
                msg,
                &SMS_MESSAGE,
                "a single line containing the placeholder {####}",
            );
        }
        if let Some(conf) = &sms.sms_configuration {
            let p = join(&p, "sms_configuration");
            if let Some(a) = &conf.sns_caller_arn {
                arn(v, &join(&p, "sns_caller_arn"), a, 0);
            }
            if let Some(id) = &conf.external_id {
                string(v, &join(&p, "external_id"), id.expose());
            }
            if let Some(r) = &conf.sns_region {
                region(v, &join(&p, "sns_region"), r);
            }
            if let Some(eums) = &conf.eums_sms {
                eums_sms(v, &join(&p, "eums_sms"), eums);
            }
        }
    }
    if let Some(email) = &config.email {
        let p = join(prefix, "email_mfa_configuration");
        if let Some(msg) = &email.message {
            let f = join(&p, "message");
            check_length(v, &f, msg, 6, Some(20_000));
            check_pattern(
                v,
                &f,
                msg,
                &EMAIL_MESSAGE,
                "text containing the placeholder {####} (letters, marks, symbols, numbers, punctuation, white space)",
            );
        }
        if let Some(subject) = &email.subject {
            check_pattern(
                v,
                &join(&p, "subject"),
                subject,
                &EMAIL_SUBJECT,
                "at least one letter, mark, symbol, number, punctuation or white-space character, and nothing else",
            );
        }
    }
    if let Some(web) = &config.web_authn
        && let Some(rp) = &web.relying_party_id
    {
        check_length(
            v,
            &join(prefix, "web_authn_configuration.relying_party_id"),
            rp,
            1,
            Some(127),
        );
    }
}

fn eums_sms(v: &mut Violations, p: &str, eums: &EumsSmsConfig) {
    let caller = join(p, "caller_arn");
    if eums.caller_arn.is_empty() {
        v.add(caller, "is required when eums_sms is set");
    } else {
        arn(v, &caller, &eums.caller_arn, 20);
    }
    if let Some(id) = &eums.external_id {
        string(v, &join(p, "external_id"), id.expose());
    }
    for (name, value) in [
        ("origination_identity", &eums.origination_identity),
        ("configuration_set_name", &eums.configuration_set_name),
        ("in_entity_id", &eums.in_entity_id),
        ("in_template_id", &eums.in_template_id),
    ] {
        if let Some(value) = value {
            string(v, &join(p, name), value);
        }
    }
    if let Some(r) = &eums.region {
        region(v, &join(p, "region"), r);
    }
}

/// Set/AdminSetUserMFAPreference: at most one preferred factor, and only an
/// enabled factor can be preferred.
pub fn mfa_preference(v: &mut Violations, pref: &MfaPreference) {
    let blocks: [(&str, Option<FactorSettings>); 3] = [
        ("sms_mfa_settings", pref.sms),
        ("software_token_mfa_settings", pref.software_token),
        ("email_mfa_settings", pref.email),
    ];
    let preferred: Vec<&str> = blocks
        .iter()
        .filter(|(_, s)| s.is_some_and(|s| s.preferred_mfa == Some(true)))
        .map(|(name, _)| *name)
        .collect();
    if preferred.len() > 1 {
        for name in &preferred {
            v.add(
                format!("{name}.preferred_mfa"),
                format!(
                    "at most one factor may be preferred; preferred here: {}",
                    preferred.join(", ")
                ),
            );
        }
    }
    for (name, settings) in blocks {
        if let Some(s) = settings
            && s.preferred_mfa == Some(true)
            && s.enabled != Some(true)
        {
            v.add(
                format!("{name}.preferred_mfa"),
                "a factor can be preferred only when it is enabled: set enabled = true in the same block",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand check of pool ids agrees with the regex on every string of
    /// up to five characters over letters, digits, `_`, `-` and two that
    /// the pattern refuses.
    #[test]
    fn the_pool_id_check_is_the_pattern() {
        let alphabet = ['a', 'Z', '0', '_', '-', 'é', ' '];
        let mut strings = vec![String::new()];
        let mut checked = 0;
        for _ in 0..5 {
            let mut longer = Vec::new();
            for s in &strings {
                for c in alphabet {
                    let t = format!("{s}{c}");
                    assert_eq!(is_user_pool_id(&t), USER_POOL_ID.is_match(&t), "{t:?}");
                    checked += 1;
                    longer.push(t);
                }
            }
            strings = longer;
        }
        assert_eq!(checked, 7 + 49 + 343 + 2401 + 16807);
        assert!(is_user_pool_id("us-east-1_AbC123") && !is_user_pool_id("us-east-1_"));
    }
    use crate::domain::{
        EmailMfaConfig, SmsConfiguration, SmsMfaConfig, SoftwareTokenMfaConfig, WebAuthnConfig,
    };

    fn fields(v: Violations) -> Vec<String> {
        v.into_vec().into_iter().map(|f| f.field).collect()
    }

    fn check_pool(config: &PoolMfaConfig) -> Vec<String> {
        let mut v = Violations::default();
        pool_mfa_config(&mut v, "", config);
        fields(v)
    }

    fn sms(message: &str) -> SmsMfaConfig {
        SmsMfaConfig {
            sms_authentication_message: Some(message.into()),
            sms_configuration: Some(SmsConfiguration {
                sns_caller_arn: Some("arn:aws:iam::123456789012:role/sns-caller".into()),
                external_id: Some(Secret::new("ext")),
                sns_region: Some("us-east-1".into()),
                eums_sms: None,
            }),
        }
    }

    #[test]
    fn user_pool_ids() {
        for good in ["us-east-1_AbC123", "eu-west-2_x", "a_b"] {
            let mut v = Violations::default();
            user_pool_id(&mut v, "user_pool_id", good);
            assert!(v.is_empty(), "{good}: {v:?}");
        }
        // ASCII \w only: a Unicode letter is refused, as Java's \w refuses it.
        for bad in [
            "",
            "us-east-1",
            "us-east-1_",
            "us-east-1_ab-c",
            "üs-east-1_abc",
            "us east-1_abc",
            &format!("us-east-1_{}", "a".repeat(50)),
        ] {
            let mut v = Violations::default();
            user_pool_id(&mut v, "user_pool_id", bad);
            assert_eq!(fields(v), vec!["user_pool_id"], "{bad}");
        }
    }

    #[test]
    fn usernames_count_utf16_and_refuse_spaces() {
        let mut v = Violations::default();
        username(&mut v, "username", "jöhn.doe+1@example.com");
        assert!(v.is_empty());
        for bad in [
            "",
            "john doe",
            "tab\there",
            &"a".repeat(129),
            &"😀".repeat(65),
        ] {
            let mut v = Violations::default();
            username(&mut v, "username", bad);
            assert!(!v.is_empty(), "{bad:?} should be refused");
        }
        let mut v = Violations::default();
        username(&mut v, "username", &"😀".repeat(64)); // 128 UTF-16 units
        assert!(v.is_empty());
    }

    #[test]
    fn tokens_sessions_and_codes() {
        let mut v = Violations::default();
        access_token(&mut v, "access_token", &Secret::new("eyJ.abc-_=.x"));
        assert!(v.is_empty());
        access_token(&mut v, "access_token", &Secret::new("has space"));
        access_token(&mut v, "access_token", &Secret::new(""));
        session(&mut v, "session", &Secret::new("short"));
        user_code(&mut v, "user_code", &Secret::new("12345"));
        user_code(&mut v, "user_code", &Secret::new("12345a"));
        user_code(&mut v, "user_code", &Secret::new("١٢٣٤٥٦")); // Arabic-Indic digits
        let all = v.into_vec();
        // Six bad values, but a (field, rule) pair is reported once.
        assert_eq!(all.len(), 4, "{all:?}");
        assert!(
            all.iter().all(|f| !f.description.contains("has space")),
            "a token is never echoed"
        );
        let mut v = Violations::default();
        user_code(&mut v, "user_code", &Secret::new("012345"));
        assert!(v.is_empty());
    }

    /// Issue 32: the newest model's limits, each at both edges.
    #[test]
    fn limits_of_the_newest_model_at_both_edges() {
        let ok = |f: &dyn Fn(&mut Violations)| {
            let mut v = Violations::default();
            f(&mut v);
            v.is_empty()
        };
        let session_of = |n: usize| Secret::new("s".repeat(n));
        assert!(!ok(&|v| session(v, "session", &session_of(19))));
        assert!(ok(&|v| session(v, "session", &session_of(20))));
        assert!(ok(&|v| session(v, "session", &session_of(4096))));
        assert!(!ok(&|v| session(v, "session", &session_of(4097))));
        assert!(!ok(&|v| web_authn_max_results(v, "max_results", Some(-1))));
        assert!(ok(&|v| web_authn_max_results(v, "max_results", Some(0))));
        assert!(ok(&|v| web_authn_max_results(v, "max_results", Some(20))));
        assert!(!ok(&|v| web_authn_max_results(v, "max_results", Some(21))));
    }

    #[test]
    fn a_filter_takes_an_escaped_quotation_mark() {
        let f = UserFilter::parse(r#"name = "Bob \"The Builder\"""#).expect("escaped quotes");
        assert_eq!(
            (f.attribute.as_str(), f.prefix, f.value.as_str()),
            ("name", false, r#"Bob "The Builder""#)
        );
        let f = UserFilter::parse(r#"email ^= "a^=b""#).expect("an operator inside the value");
        assert_eq!(
            (f.attribute.as_str(), f.prefix, f.value.as_str()),
            ("email", true, "a^=b")
        );
        for bad in [
            r#"name = "Bob "The" Builder""#,
            r#"name = "unterminated\""#,
            r#"name = unquoted"#,
            r#"nickname = "x""#,
        ] {
            assert_eq!(UserFilter::parse(bad), None, "{bad}");
            let mut v = Violations::default();
            user_filter(&mut v, "filter", bad);
            assert!(!v.is_empty(), "{bad}");
        }
        let mut v = Violations::default();
        user_filter(&mut v, "filter", r#"name = "O\"Brien""#);
        assert!(v.is_empty());
    }

    #[test]
    fn token_or_session_not_both_and_not_neither() {
        let t = Secret::new("tok");
        let s = Secret::new("s".repeat(20));
        let mut v = Violations::default();
        token_or_session(&mut v, Some(&t), Some(&s));
        token_or_session(&mut v, None, None);
        assert_eq!(fields(v), vec!["session", "access_token"]);
        let mut v = Violations::default();
        token_or_session(&mut v, Some(&t), None);
        token_or_session(&mut v, None, Some(&s));
        assert!(v.is_empty());
    }

    #[test]
    fn mode_needs_a_factor_and_off_refuses_factors() {
        for mode in [MfaMode::On, MfaMode::Optional] {
            let only_webauthn = PoolMfaConfig {
                mode: Some(mode),
                web_authn: Some(WebAuthnConfig::default()),
                ..Default::default()
            };
            assert_eq!(check_pool(&only_webauthn), vec!["mfa_configuration"]);
            let totp_off = PoolMfaConfig {
                mode: Some(mode),
                software_token: Some(SoftwareTokenMfaConfig {
                    enabled: Some(false),
                }),
                ..Default::default()
            };
            assert_eq!(check_pool(&totp_off), vec!["mfa_configuration"]);
            let ok = PoolMfaConfig {
                mode: Some(mode),
                email: Some(EmailMfaConfig::default()),
                ..Default::default()
            };
            assert!(check_pool(&ok).is_empty());
        }
        for mode in [Some(MfaMode::Off), None] {
            let blocks = PoolMfaConfig {
                mode,
                sms: Some(sms("code {####}")),
                software_token: Some(SoftwareTokenMfaConfig {
                    enabled: Some(false),
                }),
                email: Some(EmailMfaConfig::default()),
                web_authn: Some(WebAuthnConfig::default()),
            };
            assert_eq!(
                check_pool(&blocks),
                vec![
                    "sms_mfa_configuration",
                    "software_token_mfa_configuration",
                    "email_mfa_configuration"
                ]
            );
            let webauthn_only = PoolMfaConfig {
                mode,
                web_authn: Some(WebAuthnConfig::default()),
                ..Default::default()
            };
            assert!(check_pool(&webauthn_only).is_empty());
        }
    }

    #[test]
    fn sms_message_rules() {
        let on = |msg: &str| PoolMfaConfig {
            mode: Some(MfaMode::On),
            sms: Some(sms(msg)),
            ..Default::default()
        };
        assert!(check_pool(&on("Your code is {####}")).is_empty());
        assert!(check_pool(&on("{####}")).is_empty());
        let f = "sms_mfa_configuration.sms_authentication_message";
        assert_eq!(check_pool(&on("Your code is {###}")), vec![f]);
        assert_eq!(
            check_pool(&on("{###")),
            vec![f, f],
            "too short and no placeholder"
        );
        assert_eq!(check_pool(&on("line one\n{####}")), vec![f]);
        assert_eq!(
            check_pool(&on(&format!("{{####}}{}", "x".repeat(135)))),
            vec![f]
        );
    }

    #[test]
    fn sms_configuration_rules() {
        let with = |conf: SmsConfiguration| PoolMfaConfig {
            mode: Some(MfaMode::Optional),
            sms: Some(SmsMfaConfig {
                sms_authentication_message: None,
                sms_configuration: Some(conf),
            }),
            ..Default::default()
        };
        let p = "sms_mfa_configuration.sms_configuration";
        assert_eq!(
            check_pool(&with(SmsConfiguration::default())),
            vec![format!("{p}.sns_caller_arn")]
        );
        let bad_arn = SmsConfiguration {
            sns_caller_arn: Some("not-an-arn".into()),
            sns_region: Some("us".into()),
            ..Default::default()
        };
        assert_eq!(
            check_pool(&with(bad_arn)),
            vec![format!("{p}.sns_caller_arn"), format!("{p}.sns_region")]
        );
        let both = SmsConfiguration {
            sns_caller_arn: Some("arn:aws:iam::123456789012:role/r".into()),
            eums_sms: Some(EumsSmsConfig {
                caller_arn: "arn:aws:iam::123456789012:role/eums".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(check_pool(&with(both)), vec![format!("{p}.eums_sms")]);
        let eums_bad = SmsConfiguration {
            sns_caller_arn: Some(String::new()),
            eums_sms: Some(EumsSmsConfig {
                caller_arn: "arn:aws:iam::1:r/x".into(), // 18 characters: below the minimum of 20
                region: Some("eu".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            check_pool(&with(eums_bad)),
            vec![
                format!("{p}.eums_sms.caller_arn"),
                format!("{p}.eums_sms.region")
            ]
        );
    }

    #[test]
    fn email_and_webauthn_rules() {
        let with = |email: EmailMfaConfig, rp: &str| PoolMfaConfig {
            mode: Some(MfaMode::Optional),
            email: Some(email),
            web_authn: Some(WebAuthnConfig {
                relying_party_id: Some(rp.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let good = EmailMfaConfig {
            message: Some("Your code:\n\t{####}\nThanks ✓".into()),
            subject: Some("Your sign-in code".into()),
        };
        assert!(check_pool(&with(good, "auth.example.com")).is_empty());
        let bad = EmailMfaConfig {
            message: Some("no placeholder here".into()),
            subject: Some("\u{7}".into()),
        };
        assert_eq!(
            check_pool(&with(bad, "")),
            vec![
                "email_mfa_configuration.message",
                "email_mfa_configuration.subject",
                "web_authn_configuration.relying_party_id"
            ]
        );
    }

    #[test]
    fn preference_rules() {
        let on = |preferred: bool| {
            Some(FactorSettings {
                enabled: Some(true),
                preferred_mfa: Some(preferred),
            })
        };
        let mut v = Violations::default();
        mfa_preference(
            &mut v,
            &MfaPreference {
                sms: on(true),
                software_token: on(true),
                email: on(false),
                web_authn: None,
            },
        );
        assert_eq!(
            fields(v),
            vec![
                "sms_mfa_settings.preferred_mfa",
                "software_token_mfa_settings.preferred_mfa"
            ]
        );
        let mut v = Violations::default();
        mfa_preference(
            &mut v,
            &MfaPreference {
                email: Some(FactorSettings {
                    enabled: None,
                    preferred_mfa: Some(true),
                }),
                ..Default::default()
            },
        );
        assert_eq!(fields(v), vec!["email_mfa_settings.preferred_mfa"]);
        let mut v = Violations::default();
        mfa_preference(
            &mut v,
            &MfaPreference {
                software_token: on(true),
                sms: on(false),
                ..Default::default()
            },
        );
        assert!(v.is_empty());
    }
}

//! The rules of the device, sign-out and attribute calls: Cognito's
//! (DeviceKeyType, QueryLimitType, AttributeType, its phone number format)
//! and the facade's own (which attributes it sets; a phone number's
//! length).

use std::sync::LazyLock;

use regex::Regex;

use super::{Violations, anchored, check_length, check_pattern};
use crate::domain::UserAttribute;
use crate::domain::device::MFA_ATTRIBUTES;

static DEVICE_KEY: LazyLock<Regex> = LazyLock::new(|| anchored(r"[A-Za-z0-9_-]+_[0-9a-f-]+"));

/// DeviceKeyType: 1 to 55 characters, `[\w-]+_[0-9a-f-]+`.
pub fn device_key(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        v.add(field, "is required");
        return;
    }
    check_length(v, field, value, 1, Some(55));
    check_pattern(
        v,
        field,
        value,
        &DEVICE_KEY,
        r"the pattern [\w-]+_[0-9a-f-]+ (e.g. us-east-1_a1b2c3d4-5678-90ab-cdef-123456789012)",
    );
}

/// QueryLimitType: 0 to 60 devices a page.
pub const MAX_DEVICES_PAGE: i32 = 60;

pub fn device_limit(v: &mut Violations, field: &str, value: Option<i32>) {
    if let Some(n) = value
        && !(0..=MAX_DEVICES_PAGE).contains(&n)
    {
        v.add(
            field,
            format!("must be between 0 and {MAX_DEVICES_PAGE} (is {n})"),
        );
    }
}

/// The most digits of a phone number: E.164's 15 (a facade rule; Cognito
/// documents "+", the country code and digits only).
pub const MAX_PHONE_DIGITS: usize = 15;
/// AttributeValueType: at most 2048 characters.
pub const MAX_ATTRIBUTE_VALUE: usize = 2048;

/// AdminUpdateUserAttributes' attributes, as the facade takes them: only
/// [`MFA_ATTRIBUTES`] (a facade rule), each once, at least one; a phone
/// number in Cognito's format, an email with one `@`, verified flags
/// `true` or `false`.
pub fn mfa_attributes(v: &mut Violations, field: &str, attributes: &[UserAttribute]) {
    if attributes.is_empty() {
        v.add(field, "is required: at least one attribute");
        return;
    }
    if attributes.len() > MFA_ATTRIBUTES.len() {
        v.add(
            field,
            format!(
                "at most {} attributes, one of each of {} (is {})",
                MFA_ATTRIBUTES.len(),
                MFA_ATTRIBUTES.join(", "),
                attributes.len()
            ),
        );
        return;
    }
    for (i, a) in attributes.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if !MFA_ATTRIBUTES.contains(&a.name.as_str()) {
            // The name is the caller's: bounded before it is echoed.
            let name: String = a.name.chars().take(32).collect();
            v.add(
                format!("{at}.name"),
                format!(
                    "{name:?} is not an attribute this facade sets: only {} (a facade rule: an MFA facade, not a user directory)",
                    MFA_ATTRIBUTES.join(", ")
                ),
            );
            continue;
        }
        if attributes[..i].iter().any(|b| b.name == a.name) {
            v.add(format!("{at}.name"), format!("{} is named twice", a.name));
            continue;
        }
        let value_field = format!("{at}.value");
        check_length(v, &value_field, &a.value, 0, Some(MAX_ATTRIBUTE_VALUE));
        match a.name.as_str() {
            "phone_number" => phone_number(v, &value_field, &a.value),
            "email" => email(v, &value_field, &a.value),
            _ => {
                if a.value != "true" && a.value != "false" {
                    v.add(value_field.as_str(), "must be \"true\" or \"false\"");
                }
            }
        }
    }
}

/// The most bytes of a WebAuthn credential's JSON (a facade bound: a
/// registration is a few KiB; an attestation chain at most tens).
pub const MAX_CREDENTIAL_JSON: usize = 65_536;

/// CompleteWebAuthnRegistration's credential: a JSON object of at most
/// [`MAX_CREDENTIAL_JSON`] bytes.
pub fn web_authn_credential_json(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        v.add(field, "is required: the credential as JSON");
    } else if value.len() > MAX_CREDENTIAL_JSON {
        v.add(
            field,
            format!("is {} bytes; at most {MAX_CREDENTIAL_JSON}", value.len()),
        );
    } else if !serde_json::from_str::<serde_json::Value>(value).is_ok_and(|j| j.is_object()) {
        v.add(
            field,
            "must be a JSON object (PublicKeyCredential.toJSON())",
        );
    }
}

fn phone_number(v: &mut Violations, field: &str, value: &str) {
    let digits = value.strip_prefix('+').unwrap_or("");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        v.add(
            field,
            "must be \"+\", the country code and the number, digits only (Cognito's format, e.g. +12065551212)",
        );
    } else if digits.len() > MAX_PHONE_DIGITS {
        v.add(
            field,
            format!(
                "has {} digits; at most {MAX_PHONE_DIGITS} (E.164)",
                digits.len()
            ),
        );
    }
}

fn email(v: &mut Violations, field: &str, value: &str) {
    let ok = value.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    }) && !value.chars().any(char::is_whitespace);
    if !ok {
        v.add(
            field,
            "must be an email address: one \"@\" with text on both sides, no white space",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(f: impl FnOnce(&mut Violations)) -> Vec<String> {
        let mut v = Violations::default();
        f(&mut v);
        v.into_vec().into_iter().map(|x| x.field).collect()
    }

    fn attr(name: &str, value: &str) -> UserAttribute {
        UserAttribute {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn device_keys_follow_cognito_s_pattern() {
        let ok = "us-east-1_a1b2c3d4-5678-90ab-cdef-123456789012";
        assert!(fields(|v| device_key(v, "k", ok)).is_empty());
        for bad in [
            "",
            "nounderscore",
            "us-east-1_XYZ",
            &format!("{ok}0000000000000"),
        ] {
            assert_eq!(fields(|v| device_key(v, "k", bad)), ["k"], "{bad}");
        }
        assert!(fields(|v| device_limit(v, "l", Some(60))).is_empty());
        assert_eq!(fields(|v| device_limit(v, "l", Some(61))), ["l"]);
        assert_eq!(fields(|v| device_limit(v, "l", Some(-1))), ["l"]);
    }

    #[test]
    fn only_the_attributes_mfa_needs_are_taken_each_once_in_cognito_s_formats() {
        let good = [
            attr("phone_number", "+12065551212"),
            attr("email", "a@example.com"),
            attr("phone_number_verified", "true"),
            attr("email_verified", "false"),
        ];
        assert!(fields(|v| mfa_attributes(v, "a", &good)).is_empty());
        assert_eq!(fields(|v| mfa_attributes(v, "a", &[])), ["a"]);
        assert_eq!(
            fields(|v| mfa_attributes(v, "a", &[attr("given_name", "x")])),
            ["a[0].name"]
        );
        assert_eq!(
            fields(|v| mfa_attributes(v, "a", &[attr("email", "a@b"), attr("email", "c@d")])),
            ["a[1].name"]
        );
        for bad in ["12065551212", "+", "+1 206", "+1234567890123456"] {
            assert_eq!(
                fields(|v| mfa_attributes(v, "a", &[attr("phone_number", bad)])),
                ["a[0].value"],
                "{bad}"
            );
        }
        for bad in ["", "a", "@b", "a@", "a@b@c", "a b@c"] {
            assert_eq!(
                fields(|v| mfa_attributes(v, "a", &[attr("email", bad)])),
                ["a[0].value"],
                "{bad}"
            );
        }
        assert_eq!(
            fields(|v| mfa_attributes(v, "a", &[attr("email_verified", "yes")])),
            ["a[0].value"]
        );
        let many = vec![attr("email", "a@b"); 5];
        assert_eq!(fields(|v| mfa_attributes(v, "a", &many)), ["a"]);
    }
}

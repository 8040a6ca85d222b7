//! A user's tracked devices (Cognito's DeviceType), the attributes MFA
//! needs (AttributeType), and the report of a whole-user MFA reset.

use serde::Serialize;

/// DeviceType: one of a user's tracked devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Device {
    pub device_key: String,
    /// DeviceAttributes, name and value, in Cognito's order.
    pub attributes: Vec<(String, Option<String>)>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    pub last_modified_at: i64,
    pub last_authenticated_at: Option<i64>,
}

impl Device {
    /// `dev:device_remembered_status`, the attribute that says whether the
    /// device skips MFA.
    pub fn remembered(&self) -> bool {
        self.attributes
            .iter()
            .any(|(n, v)| n == REMEMBERED_STATUS && v.as_deref() == Some("remembered"))
    }
}

/// The device attribute Cognito names the remembered status with.
pub const REMEMBERED_STATUS: &str = "dev:device_remembered_status";

/// One page of AdminListDevices / ListDevices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DevicesPage {
    pub devices: Vec<Device>,
    pub pagination_token: Option<String>,
}

/// DeviceRememberedStatusType.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    Remembered,
    NotRemembered,
}

impl DeviceStatus {
    pub fn cognito_name(self) -> &'static str {
        match self {
            DeviceStatus::Remembered => "remembered",
            DeviceStatus::NotRemembered => "not_remembered",
        }
    }
}

/// The user attributes AdminUpdateUserAttributes may set through the
/// facade: the ones MFA needs (a facade rule).
pub const MFA_ATTRIBUTES: [&str; 4] = [
    "phone_number",
    "email",
    "phone_number_verified",
    "email_verified",
];

/// AttributeType: a user attribute to set. Serialized (for audit records)
/// with its value masked: phone numbers and emails are personal data, so a
/// record shows that one was set and its last two characters, as CloudTrail
/// hides these values in its own events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserAttribute {
    pub name: String,
    pub value: String,
}

impl Serialize for UserAttribute {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("UserAttribute", 2)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("value", &self.audit_value())?;
        st.end()
    }
}

impl UserAttribute {
    /// The value as audit records show it: the verified flags as they
    /// are, a phone number or email address masked to its last characters.
    pub fn audit_value(&self) -> String {
        if self.name.ends_with("_verified") {
            return self.value.clone();
        }
        let chars: Vec<char> = self.value.chars().collect();
        let keep = if chars.len() > 8 { 2 } else { 0 };
        let tail: String = chars[chars.len().saturating_sub(keep)..].iter().collect();
        format!("***{tail}")
    }
}

/// What one step of AdminResetUserMfa did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResetOutcome {
    Done,
    NotNeeded,
    Planned,
    Refused,
    NeedsUserToken,
}

/// One step of a reset: its name, outcome, what it found or did, and the
/// Cognito calls it made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResetStep {
    pub step: &'static str,
    pub outcome: ResetOutcome,
    pub detail: String,
    pub cognito_calls: Vec<&'static str>,
}

/// The answer of AdminResetUserMfa.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResetReport {
    pub steps: Vec<ResetStep>,
    pub passkeys_remain: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_values_mask_contact_details_and_keep_flags() {
        let a = |name: &str, value: &str| UserAttribute {
            name: name.into(),
            value: value.into(),
        };
        assert_eq!(a("phone_number", "+15555550100").audit_value(), "***00");
        assert_eq!(a("email", "a@b.co").audit_value(), "***");
        assert_eq!(a("email_verified", "true").audit_value(), "true");
        let json = serde_json::to_string(&a("phone_number", "+15555550100")).unwrap();
        assert_eq!(json, r#"{"name":"phone_number","value":"***00"}"#);
    }
}

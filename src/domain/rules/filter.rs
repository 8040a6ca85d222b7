//! ListUsers' filter: its grammar, the attributes Cognito searches, and
//! the input rule.

use super::{Violations, check_length, utf16_len};

/// ListUsers.Filter: at most 256 characters, `attribute = "value"` or
/// `attribute ^= "value"` over the attributes Cognito searches.
pub const MAX_FILTER: usize = 256;
/// The attributes ListUsers can filter on (API reference, ListUsers).
pub const FILTER_ATTRIBUTES: [&str; 10] = [
    "username",
    "email",
    "phone_number",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "cognito:user_status",
    "status",
    "sub",
];

/// A ListUsers filter, parsed: the attribute, whether it is a prefix
/// match (`^=`), and the value, unescaped (a quotation mark inside the value
/// is written `\"`, as AWS documents for ListUsers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFilter {
    pub attribute: String,
    pub prefix: bool,
    pub value: String,
}

impl UserFilter {
    /// `attribute = "value"` or `attribute ^= "value"`; `None` when `text`
    /// is not of that form (the rule below names why).
    pub fn parse(text: &str) -> Option<Self> {
        // The operator is before the value's opening quotation mark.
        let open = text.find('"')?;
        let head = text[..open].trim_end();
        let (attribute, prefix) = match head.strip_suffix("^=") {
            Some(a) => (a, true),
            None => (head.strip_suffix('=')?, false),
        };
        let attribute = attribute.trim();
        let quoted = text[open + 1..].trim_end().strip_suffix('"')?;
        let mut value = String::with_capacity(quoted.len());
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                // `\"` is a quotation mark; any other backslash is itself.
                '\\' => match chars.next() {
                    Some('"') => value.push('"'),
                    Some(other) => {
                        value.push('\\');
                        value.push(other);
                    }
                    // The closing quotation mark was escaped: unterminated.
                    None => return None,
                },
                '"' => return None,
                c => value.push(c),
            }
        }
        if !FILTER_ATTRIBUTES.contains(&attribute) {
            return None;
        }
        Some(Self {
            attribute: attribute.to_owned(),
            prefix,
            value,
        })
    }
}

pub fn user_filter(v: &mut Violations, field: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    check_length(v, field, value, 0, Some(MAX_FILTER));
    if utf16_len(value) <= MAX_FILTER && UserFilter::parse(value).is_none() {
        v.add(
            field,
            format!(
                "must be attribute = \"value\" or attribute ^= \"value\" (a quotation mark in the value written \\\"), the attribute one of {}",
                FILTER_ATTRIBUTES.join(", ")
            ),
        );
    }
}

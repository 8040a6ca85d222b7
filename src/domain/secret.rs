//! A string that must never reach a log line: access tokens, sessions, TOTP
//! secrets, user codes, ExternalId.

use serde::{Deserialize, Serialize};

/// Holds a sensitive value. `Debug` prints a placeholder, and there is no
/// `Display`: the only way to the value is the explicit [`Secret::expose`].
/// `Serialize` writes the value, for the backend's own storage and the etag;
/// audit and logs must redact before serializing.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send it upstream.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("eyJhbGciOi.super-secret");
        let printed = format!("{s:?} {:?}", Some(&s));
        assert!(!printed.contains("super-secret"), "{printed}");
        assert_eq!(s.expose(), "eyJhbGciOi.super-secret");
    }
}

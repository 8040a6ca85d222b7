//! What never reaches an audit record, and what stands in for it.
//!
//! Access tokens, sessions, TOTP secret codes and user codes become a
//! fingerprint: the first 8 bytes of HMAC-SHA256 under the deployment's
//! key, so one token can be followed across records without being
//! revealed (and without the key, a fingerprint cannot be tested against a
//! guess). ExternalId is masked outright. Usernames stay readable unless
//! `audit.usernames = "fingerprint"`.
//!
//! Redaction goes by field name at every depth of the JSON, so a secret is
//! caught wherever an operation puts it.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::settings::UsernameHandling;

/// Fields whose values are replaced by a fingerprint.
pub const FINGERPRINTED: &[&str] = &["access_token", "session", "secret_code", "user_code"];
/// Fields whose values are masked.
pub const MASKED: &[&str] = &["external_id"];
/// What a masked value reads as.
pub const MASK: &str = "[masked]";

#[derive(Clone)]
pub struct Redactor {
    key: Vec<u8>,
    usernames: UsernameHandling,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(<key>)")
    }
}

impl Redactor {
    pub fn new(key: Vec<u8>, usernames: UsernameHandling) -> Self {
        Self { key, usernames }
    }

    /// A key of 32 random bytes, for a process without a configured one.
    pub fn random(usernames: UsernameHandling) -> Self {
        let mut key = vec![0u8; 32];
        // getrandom fails only without an OS random source; then the
        // fingerprints are still keyed by the process's address layout.
        if getrandom::fill(&mut key).is_err() {
            key = format!("{:p}", &key).into_bytes();
        }
        Self::new(key, usernames)
    }

    /// `fp:` and 16 hex digits of HMAC-SHA256(key, value).
    pub fn fingerprint(&self, value: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return "fp:unavailable".into();
        };
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("fp:{}", hex::encode(&digest[..8]))
    }

    /// A username as records show it.
    pub fn username(&self, name: &str) -> String {
        match self.usernames {
            UsernameHandling::Clear => name.to_owned(),
            UsernameHandling::Fingerprint => self.fingerprint(name),
        }
    }

    /// Replaces every secret in `v`, at any depth, by field name.
    pub fn redact(&self, v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if FINGERPRINTED.contains(&k.as_str()) {
                        if let Value::String(s) = x {
                            *x = Value::String(self.fingerprint(s));
                        } else if !x.is_null() {
                            *x = Value::String(MASK.into());
                        }
                    } else if MASKED.contains(&k.as_str()) {
                        if !x.is_null() {
                            *x = Value::String(MASK.into());
                        }
                    } else if k == "username" {
                        if let Value::String(s) = x {
                            *x = Value::String(self.username(s));
                        }
                    } else {
                        self.redact(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.redact(x)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_replaced_at_any_depth() {
        let r = Redactor::new(b"0123456789abcdef".to_vec(), UsernameHandling::Clear);
        let mut v = json!({
            "access_token": "eyJ.secret.token",
            "nested": [{"session": "sess-secret", "external_id": "ext-secret",
                        "eums_sms": {"external_id": "ext2"}}],
            "user_code": "123456",
            "username": "alice",
        });
        r.redact(&mut v);
        let text = v.to_string();
        for secret in [
            "eyJ.secret.token",
            "sess-secret",
            "ext-secret",
            "ext2",
            "123456",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(v["access_token"], json!(r.fingerprint("eyJ.secret.token")));
        assert_eq!(v["nested"][0]["external_id"], json!(MASK));
        assert_eq!(v["username"], json!("alice"));
        // The same value, the same fingerprint; another key, another one.
        let other = Redactor::new(b"fedcba9876543210".to_vec(), UsernameHandling::Clear);
        assert_ne!(
            other.fingerprint("eyJ.secret.token"),
            r.fingerprint("eyJ.secret.token")
        );
        let hidden = Redactor::new(b"0123456789abcdef".to_vec(), UsernameHandling::Fingerprint);
        assert!(hidden.username("alice").starts_with("fp:"));
    }
}

//! What stands in for secrets in an audit record.
//!
//! Access tokens, sessions, TOTP secret codes and user codes are
//! [`Secret`](crate::domain::Secret)s: in a record (serialized inside
//! [`crate::domain::secret::fingerprinted`] with a [`Redactor`]) each
//! becomes a fingerprint, the first 8 bytes of HMAC-SHA256 under the
//! deployment's key, so one token can be followed across records without
//! being revealed (and without the key, a fingerprint cannot be tested
//! against a guess). ExternalId is masked outright. Usernames stay readable
//! unless `audit.usernames = "fingerprint"`. The type decides, not the
//! field's name: a secret is caught wherever an operation puts it.

use std::borrow::Cow;

use crate::domain::secret::Fingerprinter;
use crate::hash::{HmacKey, hex_into};

use super::settings::UsernameHandling;

#[derive(Clone)]
pub struct Redactor {
    key: HmacKey,
    usernames: UsernameHandling,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(<key>)")
    }
}

impl Redactor {
    pub fn new(key: Vec<u8>, usernames: UsernameHandling) -> Self {
        Self {
            key: HmacKey::new(&key),
            usernames,
        }
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

    /// Whether records fingerprint usernames (`audit.usernames =
    /// "fingerprint"`): then the coverage walk names users by sub only.
    pub fn fingerprints_usernames(&self) -> bool {
        self.usernames == UsernameHandling::Fingerprint
    }

    /// `fp:` and 16 hex digits of HMAC-SHA256(key, value).
    pub fn fingerprint(&self, value: &str) -> String {
        let digest = self.key.sign(value.as_bytes());
        let mut out = String::with_capacity(3 + 16);
        out.push_str("fp:");
        hex_into(&digest[..8], &mut out);
        out
    }
}

impl Fingerprinter for Redactor {
    fn fingerprint(&self, value: &str) -> String {
        Redactor::fingerprint(self, value)
    }

    /// A username as records show it.
    fn username<'a>(&self, name: &'a str) -> Cow<'a, str> {
        match self.usernames {
            UsernameHandling::Clear => Cow::Borrowed(name),
            UsernameHandling::Fingerprint => Cow::Owned(self.fingerprint(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::{
        AssociatedToken, PoolMfaConfig, Secret, SmsConfiguration, SmsMfaConfig,
        secret::{MASK, fingerprinted},
    };

    #[test]
    fn secrets_become_fingerprints_by_their_type() {
        let r = Arc::new(Redactor::new(
            b"0123456789abcdef".to_vec(),
            UsernameHandling::Clear,
        ));
        let config = PoolMfaConfig {
            sms: Some(SmsMfaConfig {
                sms_configuration: Some(SmsConfiguration {
                    external_id: Some(Secret::new("ext-secret")),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let token = AssociatedToken {
            secret_code: Secret::new("TOTPSECRETBASE32"),
            session: Some(Secret::new("sess-secret")),
        };
        let (config, token) = fingerprinted(r.clone(), || {
            (
                serde_json::to_value(&config).unwrap(),
                serde_json::to_value(&token).unwrap(),
            )
        });
        let text = format!("{config} {token}");
        for secret in ["ext-secret", "TOTPSECRETBASE32", "sess-secret"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(token["secret_code"], r.fingerprint("TOTPSECRETBASE32"));
        assert_eq!(config["sms"]["sms_configuration"]["external_id"], MASK);
        // The same value, the same fingerprint; another key, another one.
        let other = Redactor::new(b"fedcba9876543210".to_vec(), UsernameHandling::Clear);
        assert_ne!(
            other.fingerprint("sess-secret"),
            r.fingerprint("sess-secret")
        );
        assert_eq!(r.fingerprint("sess-secret"), r.fingerprint("sess-secret"));
        assert_eq!(r.username("alice"), "alice");
        let hidden = Redactor::new(b"0123456789abcdef".to_vec(), UsernameHandling::Fingerprint);
        assert!(hidden.username("alice").starts_with("fp:"));
    }
}

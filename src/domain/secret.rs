//! A string that must never reach a log line: access tokens, sessions, TOTP
//! secrets, user codes, ExternalId.
//!
//! How a [`Secret`] serializes is decided by its type and the scope it is
//! serialized in, never by the name of the field that holds it:
//! - by default, `"[withheld]"`: nothing serializes a secret by accident;
//! - inside [`exposed`], its value: the local backend's own data file and
//!   the etag's hash, which must see the real value;
//! - inside [`fingerprinted`], its fingerprint (audit records: the
//!   deployment's keyed hash, so one token can be followed across records).
//!
//! An ExternalId (`#[serde(serialize_with = "masked")]`) reads `"[masked]"`
//! outside [`exposed`]; a username (`serialize_with = "username"`) follows
//! the audit's `usernames` setting inside [`fingerprinted`].

use std::{borrow::Cow, cell::RefCell, sync::Arc};

use serde::{Deserialize, Serialize, Serializer};

/// Holds a sensitive value. `Debug` prints a placeholder, there is no
/// `Display`, and `Serialize` writes what the scope allows (module doc):
/// the only way to the value itself is the explicit [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// What a secret reads as where no scope lets it out.
pub const WITHHELD: &str = "[withheld]";
/// What an ExternalId reads as outside [`exposed`].
pub const MASK: &str = "[masked]";

/// What stands in for secrets and usernames in audit records.
pub trait Fingerprinter: Send + Sync {
    /// A stand-in that follows one value across records without revealing it.
    fn fingerprint(&self, value: &str) -> String;
    /// A username as records show it.
    fn username<'a>(&self, name: &'a str) -> Cow<'a, str>;
}

enum Shown {
    Exposed,
    Fingerprinted(Arc<dyn Fingerprinter>),
}

thread_local! {
    static SHOWN: RefCell<Option<Shown>> = const { RefCell::new(None) };
}

/// Puts the previous scope back, on return and on unwind alike.
struct Restore(Option<Shown>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        SHOWN.with(|s| *s.borrow_mut() = previous);
    }
}

fn scoped<R>(shown: Shown, f: impl FnOnce() -> R) -> R {
    let previous = SHOWN.with(|s| s.borrow_mut().replace(shown));
    let _restore = Restore(previous);
    f()
}

/// Runs `f` with secrets serializing as their values.
pub fn exposed<R>(f: impl FnOnce() -> R) -> R {
    scoped(Shown::Exposed, f)
}

/// Runs `f` with secrets serializing as `by`'s fingerprints.
pub fn fingerprinted<R>(by: Arc<dyn Fingerprinter>, f: impl FnOnce() -> R) -> R {
    scoped(Shown::Fingerprinted(by), f)
}

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

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SHOWN.with_borrow(|shown| match shown {
            Some(Shown::Exposed) => s.serialize_str(&self.0),
            Some(Shown::Fingerprinted(by)) => s.serialize_str(&by.fingerprint(&self.0)),
            None => s.serialize_str(WITHHELD),
        })
    }
}

/// `serialize_with` for an ExternalId: its value only inside [`exposed`].
pub fn masked<S: Serializer>(value: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        None => s.serialize_none(),
        Some(v) => SHOWN.with_borrow(|shown| match shown {
            Some(Shown::Exposed) => s.serialize_str(&v.0),
            _ => s.serialize_str(MASK),
        }),
    }
}

/// `serialize_with` for a username: as the audit's `usernames` setting
/// says inside [`fingerprinted`], else as it is.
pub fn username<T: AsRef<str>, S: Serializer>(name: &T, s: S) -> Result<S::Ok, S::Error> {
    SHOWN.with_borrow(|shown| match shown {
        Some(Shown::Fingerprinted(by)) => s.serialize_str(&by.username(name.as_ref())),
        _ => s.serialize_str(name.as_ref()),
    })
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

    struct Tagged;
    impl Fingerprinter for Tagged {
        fn fingerprint(&self, value: &str) -> String {
            format!("fp:{}", value.len())
        }
        fn username<'a>(&self, name: &'a str) -> Cow<'a, str> {
            Cow::Owned(format!("user:{}", name.len()))
        }
    }

    #[derive(Serialize)]
    struct Holder {
        token: Secret,
        #[serde(serialize_with = "masked")]
        external_id: Option<Secret>,
        #[serde(serialize_with = "username")]
        username: String,
    }

    #[test]
    fn a_secret_serializes_by_its_type_and_scope() {
        let h = Holder {
            token: Secret::new("tok-secret"),
            external_id: Some(Secret::new("ext-secret")),
            username: "alice".into(),
        };
        let json = |h: &Holder| serde_json::to_string(h).unwrap();
        assert_eq!(
            json(&h),
            r#"{"token":"[withheld]","external_id":"[masked]","username":"alice"}"#
        );
        assert_eq!(
            exposed(|| json(&h)),
            r#"{"token":"tok-secret","external_id":"ext-secret","username":"alice"}"#
        );
        let by: Arc<dyn Fingerprinter> = Arc::new(Tagged);
        assert_eq!(
            fingerprinted(by.clone(), || json(&h)),
            r#"{"token":"fp:10","external_id":"[masked]","username":"user:5"}"#
        );
        // Scopes nest and end: after them, withheld again.
        let inner = exposed(|| fingerprinted(by, || json(&h)));
        assert!(inner.contains("fp:10"), "{inner}");
        assert!(json(&h).contains(WITHHELD));
        // An unwinding closure still ends its scope.
        let _ = std::panic::catch_unwind(|| exposed(|| panic!("inside")));
        assert!(json(&h).contains(WITHHELD));
    }
}

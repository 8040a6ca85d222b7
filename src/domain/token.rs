//! An end user's access token, with its unverified claims decoded once, at
//! the API edge: the pool its `iss` names (for the policy's routing) and its
//! `sub` (for the audit record's target user). Neither is ever a decision
//! about who the caller is: Cognito, or the local backend, verifies the
//! token itself.

use super::Secret;

/// A token longer than this is not decoded: Cognito's access tokens are a
/// few KiB, and the request is refused by the pattern or upstream anyway.
pub const MAX_DECODED_TOKEN_BYTES: usize = 16 * 1024;

/// Serializes as its [`Secret`] does (withheld, or its fingerprint in an
/// audit record): never its claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    secret: Secret,
    user_pool: Option<String>,
    subject: Option<String>,
}

impl AccessToken {
    /// Decodes the payload's claims (NOT verified) once.
    pub fn new(secret: Secret) -> Self {
        let claims = unverified_claims(secret.expose());
        let user_pool = claims.as_ref().and_then(pool_of);
        let subject = claims
            .as_ref()
            .and_then(|c| c.get("sub")?.as_str().map(str::to_owned))
            .filter(|s| !s.is_empty() && s.len() <= 128);
        Self {
            secret,
            user_pool,
            subject,
        }
    }

    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The token itself, for the one place that must send it upstream.
    pub fn expose(&self) -> &str {
        self.secret.expose()
    }

    /// The pool from the unverified `iss` claim
    /// (`https://cognito-idp.<region>.amazonaws.com/<pool>`): routing only.
    pub fn user_pool(&self) -> Option<&str> {
        self.user_pool.as_deref()
    }

    /// The unverified `sub`: the audit record's target user only.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// What keys the per-end-user budget of a token call: a hash of the
    /// whole token, not its unverified claims. A forged token carrying a
    /// victim's `iss` and `sub` is another token, so it spends a budget of
    /// its own and never the victim's.
    pub fn budget_key(&self) -> String {
        format!(
            "token:{}",
            crate::hash::hex(&crate::hash::sha256(self.expose().as_bytes())[..16])
        )
    }
}

impl serde::Serialize for AccessToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.secret.serialize(s)
    }
}

/// The claims of a JWT, NOT verified.
fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    if token.len() > MAX_DECODED_TOKEN_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?).ok()
}

fn pool_of(claims: &serde_json::Value) -> Option<String> {
    let iss = claims.get("iss")?.as_str()?;
    let pool = iss
        .strip_prefix("https://cognito-idp.")?
        .split_once(".amazonaws.com/")?
        .1;
    (!pool.is_empty() && !pool.contains('/')).then(|| pool.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    fn token(claims: serde_json::Value) -> AccessToken {
        AccessToken::new(Secret::new(format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )))
    }

    #[test]
    fn the_pool_of_a_cognito_access_token() {
        let t = token(serde_json::json!({
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc",
            "sub": "u-1"
        }));
        assert_eq!(t.user_pool(), Some("us-east-1_Abc"));
        assert_eq!(t.subject(), Some("u-1"));
        for bad in [
            "https://evil.example/us-east-1_Abc",
            "https://cognito-idp.us-east-1.amazonaws.com/",
            "https://cognito-idp.us-east-1.amazonaws.com/a/b",
        ] {
            assert_eq!(
                token(serde_json::json!({ "iss": bad })).user_pool(),
                None,
                "{bad}"
            );
        }
        for garbage in ["garbage", "a.%%%.c"] {
            let t = AccessToken::new(Secret::new(garbage));
            assert_eq!((t.user_pool(), t.subject()), (None, None), "{garbage}");
        }
    }

    #[test]
    fn a_huge_token_is_not_decoded_and_the_budget_is_the_whole_token() {
        let claims = serde_json::json!({
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc",
            "pad": "x".repeat(MAX_DECODED_TOKEN_BYTES)
        });
        assert_eq!(token(claims).user_pool(), None);
        let a = token(serde_json::json!({"sub": "victim"}));
        let b = AccessToken::new(Secret::new(format!("{}x", a.expose())));
        assert_eq!(a.subject(), b.subject());
        assert_ne!(
            a.budget_key(),
            b.budget_key(),
            "a forged token spends its own budget"
        );
        assert!(!a.budget_key().contains("victim"));
    }
}

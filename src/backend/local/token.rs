//! Cognito-shaped access tokens for the local backend: JWTs signed with
//! HS256 under the data file's own key. Their claims are Cognito's (sub,
//! username, client_id, token_use = access, scope, iss, exp); only the
//! signature scheme differs (Cognito signs with RS256 keys of its own).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::Secret;
use crate::error::{CognitoError, Error, Result};

/// The scope Cognito puts in access tokens that may manage the user's own MFA.
pub const ADMIN_SCOPE: &str = "aws.cognito.signin.user.admin";
/// The client id of tokens the fixtures issue.
pub const LOCAL_CLIENT_ID: &str = "mfa-facade-local";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub username: String,
    pub client_id: String,
    pub token_use: String,
    pub scope: String,
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
}

/// `https://cognito-idp.<region>.amazonaws.com/<pool id>`, as Cognito issues.
pub fn issuer(region: &str, user_pool_id: &str) -> String {
    format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}")
}

fn mac(key: &Secret) -> Result<Hmac<Sha256>> {
    Hmac::<Sha256>::new_from_slice(key.expose().as_bytes())
        .map_err(|e| Error::Internal(format!("token key: {e}")))
}

pub fn sign(key: &Secret, claims: &Claims) -> Result<String> {
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload =
        B64.encode(serde_json::to_vec(claims).map_err(|e| Error::Internal(e.to_string()))?);
    let signing_input = format!("{header}.{payload}");
    let mut m = mac(key)?;
    m.update(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        B64.encode(m.finalize().into_bytes())
    ))
}

fn not_authorized(message: &str) -> Error {
    Error::Cognito(CognitoError {
        exception: "NotAuthorizedException".into(),
        message: message.into(),
        request_id: Some(format!("local-{}", uuid::Uuid::new_v4())),
        http_status: Some(400),
    })
}

/// Checks signature, algorithm, token use and expiry; returns the claims.
/// Anything wrong is Cognito's NotAuthorizedException.
pub fn verify(key: &Secret, token: &str, now: u64) -> Result<Claims> {
    let invalid = || not_authorized("Invalid Access Token");
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let header: serde_json::Value = B64
        .decode(header_b64)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or_else(invalid)?;
    // Only the one algorithm this backend signs with: never "none", never another.
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(invalid());
    }
    let signature = B64.decode(signature).map_err(|_| invalid())?;
    let mut m = mac(key)?;
    m.update(format!("{header_b64}.{payload}").as_bytes());
    m.verify_slice(&signature).map_err(|_| invalid())?;
    let claims: Claims = B64
        .decode(payload)
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .ok_or_else(invalid)?;
    if claims.token_use != "access" || !claims.scope.split(' ').any(|s| s == ADMIN_SCOPE) {
        return Err(invalid());
    }
    if claims.exp <= now {
        return Err(not_authorized("Access Token has expired"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "11111111-2222-3333-4444-555555555555".into(),
            username: "alice".into(),
            client_id: LOCAL_CLIENT_ID.into(),
            token_use: "access".into(),
            scope: ADMIN_SCOPE.into(),
            iss: issuer("us-east-1", "us-east-1_Abc123"),
            iat: 1_000,
            exp,
            jti: "j1".into(),
        }
    }

    fn exception(e: Error) -> (String, String) {
        match e {
            Error::Cognito(c) => (c.exception, c.message),
            other => panic!("not a Cognito error: {other:?}"),
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let key = Secret::new("k1");
        let token = sign(&key, &claims(2_000)).unwrap();
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=.".contains(c)),
            "Cognito's token pattern"
        );
        assert_eq!(verify(&key, &token, 1_999).unwrap(), claims(2_000));
        let (name, message) = exception(verify(&key, &token, 2_000).unwrap_err());
        assert_eq!(name, "NotAuthorizedException");
        assert_eq!(message, "Access Token has expired");
    }

    #[test]
    fn forged_tokens_are_not_authorized() {
        let key = Secret::new("k1");
        let token = sign(&key, &claims(2_000)).unwrap();
        let other_key = sign(&Secret::new("k2"), &claims(2_000)).unwrap();
        let (h, rest) = token.split_once('.').unwrap();
        let (p, s) = rest.split_once('.').unwrap();
        let mut tampered_claims = claims(9_999);
        tampered_claims.username = "mallory".into();
        let tampered = format!(
            "{h}.{}.{s}",
            B64.encode(serde_json::to_vec(&tampered_claims).unwrap())
        );
        let alg_none = format!("{}.{p}.", B64.encode(br#"{"alg":"none"}"#));
        let hs512 = format!("{}.{p}.{s}", B64.encode(br#"{"alg":"HS512","typ":"JWT"}"#));
        let mut id_token = claims(2_000);
        id_token.token_use = "id".into();
        let id_token = sign(&key, &id_token).unwrap();
        for forged in [
            other_key,
            tampered,
            alg_none,
            hs512,
            id_token,
            "a.b".into(),
            "".into(),
            "x.y.z.w".into(),
        ] {
            let (name, _) = exception(verify(&key, &forged, 1_500).unwrap_err());
            assert_eq!(name, "NotAuthorizedException", "{forged}");
        }
    }
}

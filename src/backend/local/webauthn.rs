//! Passkey enrolment on the local backend: the credential creation options
//! StartWebAuthnRegistration answers, and the checks of the registration
//! CompleteWebAuthnRegistration takes (W3C WebAuthn Level 2 §7.1, "Registering
//! a new credential"), with Cognito's exception for each failure.
//!
//! Checked: the client data's type (`webauthn.create`), its challenge (the
//! one this user was issued, unexpired, used once), its origin (https on the
//! relying party or a subdomain of it; http only for `localhost`; not
//! cross-origin), the authenticator data's relying party hash, user
//! presence, user verification when the pool requires it, the attested
//! credential (its id equal to the one the client names; an ES256 P-256
//! key), and the attestation: `none`, or `packed` self-attestation whose
//! signature the new key verifies. Attestation with a certificate chain
//! (`packed` with x5c, `tpm`, `android-key`, ...) is refused as
//! WebAuthnCredentialNotSupportedException: the local backend asks for
//! attestation "none" and checks no certificate (docs/differences.md).
//!
//! Every input is bounded before it is read: the credential's JSON
//! (`rules::MAX_CREDENTIAL_JSON`, checked at the API), the credential id
//! ([`MAX_CREDENTIAL_ID_BYTES`]), CBOR nesting (ciborium's limit).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde_json::{Value, json};

use super::cognito_rules::{cognito, invalid_parameter};
use crate::domain::UserVerification;
use crate::error::Error;

/// The most bytes of a credential id (WebAuthn: at most 1023).
pub const MAX_CREDENTIAL_ID_BYTES: usize = 1023;
/// How long a registration challenge lives, in seconds (the options'
/// `timeout`, 5 minutes).
pub const CHALLENGE_SECONDS: u64 = 300;

/// AuthenticatorAttachment's values.
pub const ATTACHMENTS: [&str; 2] = ["platform", "cross-platform"];
/// AuthenticatorTransport's values.
pub const TRANSPORTS: [&str; 6] = ["usb", "nfc", "ble", "smart-card", "hybrid", "internal"];

/// COSE algorithm ES256 (ECDSA P-256 with SHA-256), the one key type the
/// local backend registers.
const ES256: i64 = -7;

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_AT: u8 = 0x40;

/// What a Start hands out and a Complete checks against.
pub struct Ceremony<'a> {
    pub relying_party_id: &'a str,
    pub user_verification: Option<UserVerification>,
    /// The challenge's bytes.
    pub challenge: &'a [u8],
}

/// A registration that passed every check.
#[derive(Debug)]
pub struct Registered {
    /// base64url, as ListWebAuthnCredentials names it.
    pub credential_id: String,
    pub authenticator_attachment: Option<String>,
    pub transports: Vec<String>,
}

fn not_supported(what: &str) -> Error {
    cognito(
        "WebAuthnCredentialNotSupportedException",
        format!("The credential is not supported: {what}"),
    )
}

fn user_verification_name(uv: Option<UserVerification>) -> &'static str {
    match uv {
        Some(UserVerification::Required) => "required",
        _ => "preferred",
    }
}

/// The PublicKeyCredentialCreationOptions, as JSON (`challenge`, `user.id`
/// and each excluded credential's `id` base64url, as
/// `PublicKeyCredential.parseCreationOptionsFromJSON` reads them).
pub fn creation_options(
    c: &Ceremony<'_>,
    user_id: &str,
    username: &str,
    exclude: &[String],
) -> Value {
    json!({
        "rp": {"id": c.relying_party_id, "name": c.relying_party_id},
        "user": {"id": B64.encode(user_id.as_bytes()), "name": username, "displayName": username},
        "challenge": B64.encode(c.challenge),
        "pubKeyCredParams": [{"type": "public-key", "alg": ES256}],
        "timeout": CHALLENGE_SECONDS * 1000,
        "excludeCredentials": exclude
            .iter()
            .map(|id| json!({"type": "public-key", "id": id}))
            .collect::<Vec<_>>(),
        "authenticatorSelection": {
            "residentKey": "required",
            "requireResidentKey": true,
            "userVerification": user_verification_name(c.user_verification),
        },
        "attestation": "none",
        "extensions": {"credProps": true},
    })
}

fn text<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    let mut at = v;
    for p in path {
        at = at.get(p)?;
    }
    at.as_str()
}

fn b64(v: &Value, path: &[&str], field: &str) -> Result<Vec<u8>, Error> {
    let s =
        text(v, path).ok_or_else(|| invalid_parameter(format!("credential.{field} is missing")))?;
    B64.decode(s.trim_end_matches('='))
        .map_err(|_| invalid_parameter(format!("credential.{field} is not base64url")))
}

/// Whether `origin` may register for `rp`: https on the relying party or a
/// subdomain of it, or http on localhost (WebAuthn's rule for a relying
/// party id; Cognito's own list of allowed origins is not modelled).
fn origin_allowed(origin: &str, rp: &str) -> bool {
    let (scheme, rest) = match origin.split_once("://") {
        Some(p) => p,
        None => return false,
    };
    let host = rest.split(':').next().unwrap_or("");
    let on_rp = host == rp || host.strip_suffix(rp).is_some_and(|h| h.ends_with('.'));
    match scheme {
        "https" => on_rp,
        "http" => on_rp && (rp == "localhost" || rp.ends_with(".localhost")),
        _ => false,
    }
}

fn cbor_get<'v>(
    map: &'v [(ciborium::Value, ciborium::Value)],
    key: &ciborium::Value,
) -> Option<&'v ciborium::Value> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn int(i: i64) -> ciborium::Value {
    ciborium::Value::Integer(i.into())
}

fn as_i64(v: &ciborium::Value) -> Option<i64> {
    v.as_integer().and_then(|i| i64::try_from(i).ok())
}

/// The uncompressed SEC1 point of an ES256 COSE key.
fn es256_point(key: &ciborium::Value) -> Result<Vec<u8>, Error> {
    let map = key
        .as_map()
        .ok_or_else(|| not_supported("the public key is not a COSE key"))?;
    let kty = cbor_get(map, &int(1)).and_then(as_i64);
    let alg = cbor_get(map, &int(3)).and_then(as_i64);
    let crv = cbor_get(map, &int(-1)).and_then(as_i64);
    if kty != Some(2) || alg != Some(ES256) || crv != Some(1) {
        return Err(not_supported(
            "only ES256 keys (EC2, P-256, alg -7) are registered",
        ));
    }
    let coord = |k: i64| {
        cbor_get(map, &int(k))
            .and_then(ciborium::Value::as_bytes)
            .filter(|b| b.len() == 32)
            .cloned()
            .ok_or_else(|| invalid_parameter("the public key's coordinates are not 32 bytes each"))
    };
    let mut point = vec![0x04];
    point.extend(coord(-2)?);
    point.extend(coord(-3)?);
    Ok(point)
}

/// Checks a registration against the ceremony; the challenge has been
/// looked up (and is spent) by the caller.
pub fn verify(c: &Ceremony<'_>, credential: &Value) -> Result<Registered, Error> {
    if text(credential, &["type"]) != Some("public-key") {
        return Err(invalid_parameter("credential.type must be \"public-key\""));
    }
    let id = b64(credential, &["id"], "id")?;
    let raw_id = b64(credential, &["rawId"], "rawId")?;
    if id != raw_id || id.is_empty() || id.len() > MAX_CREDENTIAL_ID_BYTES {
        return Err(invalid_parameter(format!(
            "credential.id and credential.rawId must be the same 1 to {MAX_CREDENTIAL_ID_BYTES} bytes"
        )));
    }
    let client_data_json = b64(
        credential,
        &["response", "clientDataJSON"],
        "response.clientDataJSON",
    )?;
    let client_data: Value = serde_json::from_slice(&client_data_json)
        .map_err(|_| invalid_parameter("credential.response.clientDataJSON is not JSON"))?;
    if text(&client_data, &["type"]) != Some("webauthn.create") {
        return Err(invalid_parameter(
            "the client data's type is not webauthn.create",
        ));
    }
    let challenge = b64(&client_data, &["challenge"], "clientDataJSON.challenge")?;
    if !crate::hash::mac_eq(&challenge, c.challenge) {
        return Err(cognito(
            "WebAuthnChallengeNotFoundException",
            "The challenge of the registration is not the one issued",
        ));
    }
    let origin = text(&client_data, &["origin"]).unwrap_or("");
    if !origin_allowed(origin, c.relying_party_id)
        || client_data.get("crossOrigin").and_then(Value::as_bool) == Some(true)
    {
        return Err(cognito(
            "WebAuthnOriginNotAllowedException",
            "The origin of the registration is not allowed for the relying party",
        ));
    }
    let attestation = b64(
        credential,
        &["response", "attestationObject"],
        "response.attestationObject",
    )?;
    let object: ciborium::Value = ciborium::from_reader(attestation.as_slice())
        .map_err(|_| invalid_parameter("the attestation object is not CBOR"))?;
    let object = object
        .as_map()
        .ok_or_else(|| invalid_parameter("the attestation object is not a CBOR map"))?;
    let text_key = |k: &str| ciborium::Value::Text(k.to_owned());
    let fmt = cbor_get(object, &text_key("fmt"))
        .and_then(ciborium::Value::as_text)
        .unwrap_or("");
    let auth_data = cbor_get(object, &text_key("authData"))
        .and_then(ciborium::Value::as_bytes)
        .ok_or_else(|| invalid_parameter("the attestation object has no authData"))?;
    let statement = cbor_get(object, &text_key("attStmt"))
        .and_then(ciborium::Value::as_map)
        .ok_or_else(|| invalid_parameter("the attestation object has no attStmt"))?;

    // Authenticator data: rpIdHash(32) flags(1) signCount(4) aaguid(16)
    // credentialIdLength(2) credentialId publicKey(COSE).
    let short = || invalid_parameter("the authenticator data is too short");
    let rp_hash = auth_data.get(..32).ok_or_else(short)?;
    if rp_hash != crate::hash::sha256(c.relying_party_id.as_bytes()) {
        return Err(cognito(
            "WebAuthnRelyingPartyMismatchException",
            "The credential was made for another relying party",
        ));
    }
    let flags = *auth_data.get(32).ok_or_else(short)?;
    if flags & FLAG_UP == 0 {
        return Err(invalid_parameter(
            "the authenticator did not test user presence",
        ));
    }
    if c.user_verification == Some(UserVerification::Required) && flags & FLAG_UV == 0 {
        return Err(invalid_parameter(
            "the user pool requires user verification and the authenticator did not verify the user",
        ));
    }
    if flags & FLAG_AT == 0 {
        return Err(invalid_parameter(
            "the authenticator data has no attested credential",
        ));
    }
    let len_bytes = auth_data.get(53..55).ok_or_else(short)?;
    let cred_len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    if cred_len == 0 || cred_len > MAX_CREDENTIAL_ID_BYTES {
        return Err(invalid_parameter(
            "the attested credential id has a bad length",
        ));
    }
    let cred_end = 55usize.saturating_add(cred_len);
    let cred_id = auth_data.get(55..cred_end).ok_or_else(short)?;
    if cred_id != id.as_slice() {
        return Err(invalid_parameter(
            "the attested credential id is not credential.id",
        ));
    }
    let mut rest = auth_data.get(cred_end..).ok_or_else(short)?;
    let public_key: ciborium::Value = ciborium::from_reader(&mut rest)
        .map_err(|_| invalid_parameter("the credential public key is not CBOR"))?;
    let point = es256_point(&public_key)?;

    match fmt {
        "none" if statement.is_empty() => {}
        "none" => return Err(invalid_parameter("attestation none carries a statement")),
        "packed" => {
            if cbor_get(statement, &text_key("x5c")).is_some()
                || cbor_get(statement, &text_key("ecdaaKeyId")).is_some()
            {
                return Err(not_supported(
                    "attestation with a certificate chain (the local backend asks for none and checks no certificate)",
                ));
            }
            if cbor_get(statement, &text_key("alg")).and_then(as_i64) != Some(ES256) {
                return Err(invalid_parameter(
                    "packed self-attestation's alg is not the key's (ES256)",
                ));
            }
            let sig = cbor_get(statement, &text_key("sig"))
                .and_then(ciborium::Value::as_bytes)
                .ok_or_else(|| invalid_parameter("packed attestation has no sig"))?;
            let mut signed = auth_data.to_vec();
            signed.extend_from_slice(&crate::hash::sha256(&client_data_json));
            if !crate::hash::verify_es256(&point, &signed, sig) {
                return Err(invalid_parameter(
                    "the self-attestation signature does not verify with the credential's key",
                ));
            }
        }
        _ => {
            return Err(not_supported(
                "attestation formats other than none and packed self-attestation",
            ));
        }
    }

    let attachment = text(credential, &["authenticatorAttachment"])
        .filter(|a| ATTACHMENTS.contains(a))
        .map(str::to_owned);
    let transports = credential
        .get("response")
        .and_then(|r| r.get("transports"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .filter(|t| TRANSPORTS.contains(t))
                .take(8)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Registered {
        credential_id: B64.encode(&id),
        authenticator_attachment: attachment,
        transports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Registrations made by real authenticators, from the test data of
    /// duo-labs/py_webauthn (tests/test_verify_registration_response.py and
    /// tests/test_verify_registration_response_packed.py): relying party
    /// `localhost`, origin `http://localhost:5000`. Not our software
    /// authenticator: byte layouts we did not write.
    const NONE_REGISTRATION: &str = r#"{"id":"9y1xA8Tmg1FEmT-c7_fvWZ_uoTuoih3OvR45_oAK-cwHWhAbXrl2q62iLVTjiyEZ7O7n-CROOY494k7Q3xrs_w","rawId":"9y1xA8Tmg1FEmT-c7_fvWZ_uoTuoih3OvR45_oAK-cwHWhAbXrl2q62iLVTjiyEZ7O7n-CROOY494k7Q3xrs_w","response":{"attestationObject":"o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YVjESZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2NFAAAAFwAAAAAAAAAAAAAAAAAAAAAAQPctcQPE5oNRRJk_nO_371mf7qE7qIodzr0eOf6ACvnMB1oQG165dqutoi1U44shGezu5_gkTjmOPeJO0N8a7P-lAQIDJiABIVggSFbUJF-42Ug3pdM8rDRFu_N5oiVEysPDB6n66r_7dZAiWCDUVnB39FlGypL-qAoIO9xWHtJygo2jfDmHl-_eKFRLDA","clientDataJSON":"eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwiY2hhbGxlbmdlIjoiVHdON240V1R5R0tMYzRaWS1xR3NGcUtuSE00bmdscXN5VjBJQ0psTjJUTzlYaVJ5RnRya2FEd1V2c3FsLWdrTEpYUDZmbkYxTWxyWjUzTW00UjdDdnciLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9","transports":["nfc","usb"]},"type":"public-key"}"#;
    const NONE_CHALLENGE: &str =
        "TwN7n4WTyGKLc4ZY-qGsFqKnHM4nglqsyV0ICJlN2TO9XiRyFtrkaDwUvsql-gkLJXP6fnF1MlrZ53Mm4R7Cvw";
    /// A YubiKey's registration in Firefox: packed, with its attestation
    /// certificate (x5c).
    const YUBIKEY_REGISTRATION: &str = r#"{"id":"syGQPDZRUYdb4m3rdWeyPaIMYlbmydGp1TP_33vE_lqJ3PHNyTd0iKsnKr5WjnCcBzcesZrDEfB_RBLFzU3k4w","rawId":"syGQPDZRUYdb4m3rdWeyPaIMYlbmydGp1TP_33vE_lqJ3PHNyTd0iKsnKr5WjnCcBzcesZrDEfB_RBLFzU3k4w","response":{"attestationObject":"o2NmbXRmcGFja2VkZ2F0dFN0bXSjY2FsZyZjc2lnWEcwRQIhAOfrFlQpbavT6dJeTDJSCDzYSYPjBDHli2-syT2c1IiKAiAx5gQ2z5cHjdQX-jEHTb7JcjfQoVSW8fXszF5ihSgeOGN4NWOBWQLBMIICvTCCAaWgAwIBAgIEKudiYzANBgkqhkiG9w0BAQsFADAuMSwwKgYDVQQDEyNZdWJpY28gVTJGIFJvb3QgQ0EgU2VyaWFsIDQ1NzIwMDYzMTAgFw0xNDA4MDEwMDAwMDBaGA8yMDUwMDkwNDAwMDAwMFowbjELMAkGA1UEBhMCU0UxEjAQBgNVBAoMCVl1YmljbyBBQjEiMCAGA1UECwwZQXV0aGVudGljYXRvciBBdHRlc3RhdGlvbjEnMCUGA1UEAwweWXViaWNvIFUyRiBFRSBTZXJpYWwgNzE5ODA3MDc1MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKgOGXmBD2Z4R_xCqJVRXhL8Jr45rHjsyFykhb1USGozZENOZ3cdovf5Ke8fj2rxi5tJGn_VnW4_6iQzKdIaeP6NsMGowIgYJKwYBBAGCxAoCBBUxLjMuNi4xLjQuMS40MTQ4Mi4xLjEwEwYLKwYBBAGC5RwCAQEEBAMCBDAwIQYLKwYBBAGC5RwBAQQEEgQQbUS6m_bsLkm5MAyP6SDLczAMBgNVHRMBAf8EAjAAMA0GCSqGSIb3DQEBCwUAA4IBAQByV9A83MPhFWmEkNb4DvlbUwcjc9nmRzJjKxHc3HeK7GvVkm0H4XucVDB4jeMvTke0WHb_jFUiApvpOHh5VyMx5ydwFoKKcRs5x0_WwSWL0eTZ5WbVcHkDR9pSNcA_D_5AsUKOBcbpF5nkdVRxaQHuuIuwV4k1iK2IqtMNcU8vL6w21U261xCcWwJ6sMq4zzVO8QCKCQhsoIaWrwz828GDmPzfAjFsJiLJXuYivdHACkeJ5KHMt0mjVLpfJ2BCML7_rgbmvwL7wBW80VHfNdcKmKjkLcpEiPzwcQQhiN_qHV90t-p4iyr5xRSpurlP5zic2hlRkLKxMH2_kRjhqSn4aGF1dGhEYXRhWMRJlg3liA6MaHQ0Fw9kdmBbj-SuuaKGMseZXPO6gx2XY0UAAAA0bUS6m_bsLkm5MAyP6SDLcwBAsyGQPDZRUYdb4m3rdWeyPaIMYlbmydGp1TP_33vE_lqJ3PHNyTd0iKsnKr5WjnCcBzcesZrDEfB_RBLFzU3k46UBAgMmIAEhWCBAX_i3O3DvBnkGq_uLNk_PeAX5WwO_MIxBp0mhX6Lw7yJYIOW-1-Fch829McWvRUYAHTWZTx5IycKSGECL1UzUaK_8","clientDataJSON":"eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwiY2hhbGxlbmdlIjoiOExCQ2lPWTNxMWNCWkhGQVd0UzRBWlpDaHpHcGh5NjdsSzdJNzB6S2k0eUM3cGdyUTJQY2g3bkFqTGsxd3E5Z3Jlc2hJQXNXMkFqaWJoWGpqSTBUbVEiLCJvcmlnaW4iOiJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCJjcm9zc09yaWdpbiI6ZmFsc2V9"},"type":"public-key"}"#;
    const YUBIKEY_CHALLENGE: &str =
        "8LBCiOY3q1cBZHFAWtS4AZZChzGphy67lK7I70zKi4yC7pgrQ2Pch7nAjLk1wq9greshIAsW2AjibhXjjI0TmQ";

    fn exception(e: Error) -> String {
        match e {
            Error::Cognito(c) => c.exception,
            other => format!("{other:?}"),
        }
    }

    fn check(registration: &str, challenge: &str, rp: &str) -> Result<Registered, Error> {
        let challenge = B64.decode(challenge).unwrap();
        let ceremony = Ceremony {
            relying_party_id: rp,
            user_verification: None,
            challenge: &challenge,
        };
        verify(&ceremony, &serde_json::from_str(registration).unwrap())
    }

    #[test]
    fn a_real_authenticator_s_registration_verifies() {
        let r = check(NONE_REGISTRATION, NONE_CHALLENGE, "localhost").unwrap();
        assert_eq!(
            r.credential_id,
            "9y1xA8Tmg1FEmT-c7_fvWZ_uoTuoih3OvR45_oAK-cwHWhAbXrl2q62iLVTjiyEZ7O7n-CROOY494k7Q3xrs_w"
        );
        assert_eq!(r.transports, ["nfc", "usb"]);
        // Another ceremony's challenge, another relying party.
        assert_eq!(
            exception(check(NONE_REGISTRATION, YUBIKEY_CHALLENGE, "localhost").unwrap_err()),
            "WebAuthnChallengeNotFoundException"
        );
        assert_eq!(
            exception(check(NONE_REGISTRATION, NONE_CHALLENGE, "example.com").unwrap_err()),
            "WebAuthnOriginNotAllowedException"
        );
    }

    #[test]
    fn a_yubikey_s_certificate_attestation_passes_every_check_but_the_certificate() {
        // Challenge, origin, relying party, flags and key all pass; the
        // x5c chain is what the local backend does not take.
        assert_eq!(
            exception(check(YUBIKEY_REGISTRATION, YUBIKEY_CHALLENGE, "localhost").unwrap_err()),
            "WebAuthnCredentialNotSupportedException"
        );
    }

    /// No input panics the check: a real registration's attestation
    /// object and client data, each mutated (bytes flipped, cut, grown)
    /// 20,000 times by a fixed-seed generator, every answer an Ok or a
    /// Cognito error.
    #[test]
    fn mutated_registrations_never_panic() {
        let good: Value = serde_json::from_str(NONE_REGISTRATION).unwrap();
        let field = |name: &str| {
            B64.decode(good["response"][name].as_str().unwrap())
                .unwrap()
        };
        let (object, client) = (field("attestationObject"), field("clientDataJSON"));
        let challenge = B64.decode(NONE_CHALLENGE).unwrap();
        let ceremony = Ceremony {
            relying_party_id: "localhost",
            user_verification: Some(UserVerification::Required),
            challenge: &challenge,
        };
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut accepted = 0;
        for round in 0..20_000u32 {
            let (mut o, mut c) = (object.clone(), client.clone());
            let target = if round % 4 == 0 { &mut c } else { &mut o };
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % target.len().max(1);
                match next() % 4 {
                    0 => target.truncate(at),
                    1 => target.insert(at, next() as u8),
                    _ => {
                        if let Some(b) = target.get_mut(at) {
                            *b ^= 1 << (next() % 8);
                        }
                    }
                }
            }
            let mut credential = good.clone();
            credential["response"]["attestationObject"] = Value::String(B64.encode(&o));
            credential["response"]["clientDataJSON"] = Value::String(B64.encode(&c));
            match verify(&ceremony, &credential) {
                Ok(_) => accepted += 1,
                Err(Error::Cognito(_)) => {}
                Err(other) => panic!("not a Cognito error: {other:?}"),
            }
        }
        // Flipping a byte the checks do not read (the sign count, a
        // coordinate of the key) may still verify; most must not.
        assert!(
            accepted < 2_000,
            "{accepted} mutated registrations accepted"
        );
    }

    #[test]
    fn origins_are_the_relying_party_or_its_subdomains_over_https() {
        assert!(origin_allowed(
            "https://auth.example.com",
            "auth.example.com"
        ));
        assert!(origin_allowed(
            "https://a.auth.example.com:8443",
            "auth.example.com"
        ));
        assert!(!origin_allowed(
            "https://evilauth.example.com",
            "auth.example.com"
        ));
        assert!(!origin_allowed(
            "http://auth.example.com",
            "auth.example.com"
        ));
        assert!(!origin_allowed("https://example.com", "auth.example.com"));
        assert!(origin_allowed("http://localhost:3000", "localhost"));
        assert!(!origin_allowed("auth.example.com", "auth.example.com"));
    }
}

//! The auth matrix, JWT bearer tokens: cases J1-J20 and the JWKS outage
//! (O1, O2), against a JWKS file and a JWKS URL.

use super::*;

pub(super) mod jwt_cases {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
    use mfa_facade::auth::jwt::JwtVerifier;
    use mfa_facade::config::JwtConfig;
    use serde_json::json;

    pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
    pub const AUDIENCE: &str = "mfa-facade";
    pub const GRANTED: &str = "system:serviceaccount:billing:api";

    pub struct Signer {
        pub key: EncodingKey,
        pub alg: Algorithm,
        pub kid: String,
        pub jwk: Jwk,
        pub public_pem: String,
    }

    pub fn signer(alg: Algorithm, kid: &str) -> Signer {
        let scheme = match alg {
            Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            _ => &rcgen::PKCS_RSA_SHA256,
        };
        let pair = rcgen::KeyPair::generate_for(scheme).expect("key pair");
        let pem = pair.serialize_pem();
        let key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .expect("encoding key");
        let mut jwk = Jwk::from_encoding_key(&key, alg).expect("jwk");
        jwk.common.key_id = Some(kid.to_owned());
        Signer {
            key,
            alg,
            kid: kid.to_owned(),
            jwk,
            public_pem: pair.public_key_pem(),
        }
    }

    pub fn now() -> i64 {
        common::now() as i64
    }

    pub fn claims(sub: &str) -> serde_json::Value {
        json!({"iss": ISSUER, "aud": [AUDIENCE], "sub": sub, "exp": now() + 600, "iat": now(), "nbf": now() - 5})
    }

    pub fn sign(s: &Signer, claims: &serde_json::Value) -> String {
        let mut header = Header::new(s.alg);
        header.kid = Some(s.kid.clone());
        jsonwebtoken::encode(&header, claims, &s.key).expect("sign")
    }

    pub fn with(
        mut c: serde_json::Value,
        key: &str,
        value: serde_json::Value,
    ) -> serde_json::Value {
        c[key] = value;
        c
    }

    pub fn without(mut c: serde_json::Value, key: &str) -> serde_json::Value {
        c.as_object_mut().expect("object").remove(key);
        c
    }

    pub fn write_jwks(path: &std::path::Path, keys: &[&Jwk]) {
        let set = json!({ "keys": keys });
        std::fs::write(path, set.to_string()).expect("write jwks");
    }

    pub async fn verifier(jwks: &std::path::Path) -> std::sync::Arc<JwtVerifier> {
        JwtVerifier::new(
            JwtConfig {
                jwks_file: Some(jwks.to_owned()),
                jwks_url: None,
                jwks_ca_file: None,
                jwks_bearer_token_file: None,
                issuer: ISSUER.into(),
                audiences: vec![AUDIENCE.into()],
                principal_claim: "sub".into(),
                algorithms: vec!["RS256".into(), "ES256".into()],
                leeway_seconds: 30,
                refresh_seconds: 300,
                min_refetch_seconds: 1,
                ..JwtConfig::default()
            },
            None,
        )
        .await
    }

    pub fn bearer(token: &str) -> Creds {
        Creds::Headers(vec![("authorization", format!("Bearer {token}"))])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_attacks_are_refused_before_the_backend() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use jwt_cases::*;
    use serde_json::json;

    let dir = tempfile::tempdir().expect("temp dir");
    let jwks = dir.path().join("jwks.json");
    let rsa = signer(Algorithm::RS256, "rsa-1");
    let ec = signer(Algorithm::ES256, "ec-1");
    let rotated = signer(Algorithm::RS256, "rsa-old");
    let impostor = signer(Algorithm::RS256, "rsa-1"); // same kid, another key
    write_jwks(&jwks, &[&rsa.jwk, &ec.jwk, &rotated.jwk]);
    let verifier = verifier(&jwks).await;

    let s = Stack::local().await;
    let mut state = matrix_auth(true);
    let mut config = Config::default();
    config.policy.rules = vec![
        rule(
            &[GRANTED],
            &["cognito.mfa.v1.UserPoolMfaService/*"],
            &["us-east-1_A*"],
        ),
        rule(&[TEST_PRINCIPAL], &["*"], &["*"]),
    ];
    state.policy = AuthState::from_config(&config).policy;
    s.auth
        .store(std::sync::Arc::new(state.with_jwt(verifier.clone())));

    // A token signed while its key was published, then the key rotated out.
    let rotated_token = sign(&rotated, &claims(GRANTED));
    write_jwks(&jwks, &[&rsa.jwk, &ec.jwk]);
    assert!(verifier.refresh().await, "the scheduled re-read");

    let payload = B64.encode(claims(GRANTED).to_string());
    let alg_none = format!(
        "{}.{payload}.",
        B64.encode(br#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#)
    );
    let hs256_with_public_key = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("rsa-1".into());
        jsonwebtoken::encode(
            &h,
            &claims(GRANTED),
            &EncodingKey::from_secret(rsa.public_pem.as_bytes()),
        )
        .expect("hs256")
    };
    let tampered = {
        let good = sign(&rsa, &claims("system:serviceaccount:other:api"));
        let parts: Vec<&str> = good.split('.').collect();
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    let es_header_on_rsa_kid = {
        // An ES256 token whose kid names the RSA key.
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some("rsa-1".into());
        jsonwebtoken::encode(&h, &claims(GRANTED), &ec.key).expect("es256")
    };
    let no_kid = {
        let h = Header::new(Algorithm::RS256);
        jsonwebtoken::encode(&h, &claims(GRANTED), &rsa.key).expect("no kid")
    };
    let unknown_kid = {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some("never-published".into());
        jsonwebtoken::encode(&h, &claims(GRANTED), &rsa.key).expect("unknown kid")
    };

    use Code::{PermissionDenied as Denied, Unauthenticated as Unauth};
    let a = Call::GetPool("us-east-1_A1");
    let jwt_matrix: Vec<(&str, Creds, Code)> = vec![
        ("J1 alg none", bearer(&alg_none), Unauth),
        (
            "J2 HS256 signed with the RSA public key's bytes",
            bearer(&hs256_with_public_key),
            Unauth,
        ),
        (
            "J3 wrong issuer",
            bearer(&sign(
                &rsa,
                &with(claims(GRANTED), "iss", json!("https://evil.example")),
            )),
            Unauth,
        ),
        (
            "J4 no aud",
            bearer(&sign(&rsa, &without(claims(GRANTED), "aud"))),
            Unauth,
        ),
        (
            "J5 wrong aud",
            bearer(&sign(
                &rsa,
                &with(claims(GRANTED), "aud", json!(["other-service"])),
            )),
            Unauth,
        ),
        (
            "J6 expired",
            bearer(&sign(
                &rsa,
                &with(claims(GRANTED), "exp", json!(now() - 3600)),
            )),
            Unauth,
        ),
        (
            "J7 nbf in the future",
            bearer(&sign(
                &rsa,
                &with(claims(GRANTED), "nbf", json!(now() + 3600)),
            )),
            Unauth,
        ),
        (
            "J8 just past the leeway",
            bearer(&sign(
                &rsa,
                &with(claims(GRANTED), "exp", json!(now() - 35)),
            )),
            Unauth,
        ),
        ("J9 an unknown kid", bearer(&unknown_kid), Unauth),
        ("J10 a kid rotated out", bearer(&rotated_token), Unauth),
        (
            "J11 a valid token whose principal lacks the grant",
            bearer(&sign(&rsa, &claims("system:serviceaccount:other:api"))),
            Denied,
        ),
        (
            "J12 no exp",
            bearer(&sign(&rsa, &without(claims(GRANTED), "exp"))),
            Unauth,
        ),
        (
            "J13 payload swapped under a valid signature",
            bearer(&tampered),
            Unauth,
        ),
        (
            "J14 signed by another key with the same kid",
            bearer(&sign(&impostor, &claims(GRANTED))),
            Unauth,
        ),
        (
            "J15 ES256 header on the RSA key's kid",
            bearer(&es_header_on_rsa_kid),
            Unauth,
        ),
        ("J16 no kid", bearer(&no_kid), Unauth),
        (
            "J17 empty bearer",
            Creds::Headers(vec![("authorization", "Bearer ".into())]),
            Unauth,
        ),
        (
            "J18 two tokens",
            bearer(&format!(
                "{} {}",
                sign(&rsa, &claims(GRANTED)),
                sign(&rsa, &claims(GRANTED))
            )),
            Unauth,
        ),
        (
            "J19 no sub (the principal claim)",
            bearer(&sign(&rsa, &without(claims(GRANTED), "sub"))),
            Unauth,
        ),
        (
            "J20 a pool outside the token principal's grant",
            bearer(&sign(&rsa, &claims(GRANTED))),
            Denied,
        ),
    ];
    let before = s.upstream_calls();
    let mut failures = Vec::new();
    for (name, creds, expected) in &jwt_matrix {
        let call = if name.starts_with("J20") {
            Call::GetPool("us-east-1_B1")
        } else {
            a.clone()
        };
        match make(&s, &call, creds).await {
            Ok(()) => failures.push(format!("{name}: allowed")),
            Err(st) if st.code() != *expected => {
                failures.push(format!("{name}: {:?} ({})", st.code(), st.message()))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(
        s.upstream_calls(),
        before,
        "no refused call reached the backend"
    );
    println!(
        "auth matrix: {} JWT cases refused, 0 backend calls",
        jwt_matrix.len()
    );

    // Positive paths: RS256 and ES256, a lower-case scheme, and an expiry
    // inside the leeway all get through (NOT_FOUND: the pool does not exist).
    for (name, creds) in [
        ("RS256", bearer(&sign(&rsa, &claims(GRANTED)))),
        ("ES256", bearer(&sign(&ec, &claims(GRANTED)))),
        (
            "lower-case scheme",
            Creds::Headers(vec![(
                "authorization",
                format!("bearer {}", sign(&rsa, &claims(GRANTED))),
            )]),
        ),
        (
            "inside the leeway",
            bearer(&sign(
                &rsa,
                &with(claims(GRANTED), "exp", json!(now() - 10)),
            )),
        ),
    ] {
        let err = make(&s, &a, &creds).await.expect_err("pool missing");
        assert_eq!(err.code(), Code::NotFound, "{name}: {}", err.message());
    }

    // A key published after start-up is picked up on its first unknown kid.
    let late = signer(Algorithm::ES256, "ec-late");
    write_jwks(&jwks, &[&rsa.jwk, &ec.jwk, &late.jwk]);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await; // past min_refetch_seconds = 1
    let err = make(&s, &a, &bearer(&sign(&late, &claims(GRANTED))))
        .await
        .expect_err("pool missing");
    assert_eq!(
        err.code(),
        Code::NotFound,
        "a new kid is fetched: {}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_outage_never_allows() {
    use jsonwebtoken::Algorithm;
    use jwt_cases::*;
    let dir = tempfile::tempdir().expect("temp dir");
    let jwks = dir.path().join("missing.json");
    let verifier = verifier(&jwks).await; // the file does not exist
    let rsa = signer(Algorithm::RS256, "rsa-1");
    let s = Stack::local().await;
    s.auth
        .store(std::sync::Arc::new(matrix_auth(true).with_jwt(verifier)));
    let before = s.upstream_calls();
    let err = make(
        &s,
        &Call::GetPool("us-east-1_A1"),
        &bearer(&sign(&rsa, &claims(GRANTED))),
    )
    .await
    .expect_err("no JWKS");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("no JWKS"), "{}", err.message());
    std::fs::write(&jwks, b"{ not json").expect("write");
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let err = make(
        &s,
        &Call::GetPool("us-east-1_A1"),
        &bearer(&sign(&rsa, &claims(GRANTED))),
    )
    .await
    .expect_err("a corrupt JWKS");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(s.upstream_calls(), before);
    println!("auth matrix: 2 JWKS-outage cases refused, 0 backend calls");
}

/// A JWKS served over HTTP on loopback: fetched with the bearer token file,
/// re-fetched for an unknown kid at most once per min_refetch_seconds, and
/// kept when the server starts failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_url_is_fetched_rate_limited_and_survives_an_outage() {
    use jsonwebtoken::Algorithm;
    use jwt_cases::*;
    use mfa_facade::auth::jwt::JwtVerifier;
    use mfa_facade::config::JwtConfig;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let rsa = signer(Algorithm::RS256, "rsa-1");
    let body = Arc::new(Mutex::new(
        serde_json::json!({ "keys": [&rsa.jwk] }).to_string(),
    ));
    let failing = Arc::new(AtomicBool::new(false));
    let jwks = {
        let (body, failing) = (body.clone(), failing.clone());
        common::stub::Stub::start(move |_, _| {
            let status = if failing.load(Ordering::SeqCst) {
                500
            } else {
                200
            };
            common::stub::Reply::new(status, body.lock().expect("body").clone())
        })
        .await
    };
    let addr = jwks.url.trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir().expect("temp dir");
    let token_file = dir.path().join("sa-token");
    std::fs::write(&token_file, "pod-sa-token\n").expect("token file");
    let verifier = JwtVerifier::new(
        JwtConfig {
            jwks_file: None,
            jwks_url: Some(format!("http://{addr}/openid/v1/jwks")),
            jwks_ca_file: None,
            jwks_bearer_token_file: Some(token_file),
            issuer: ISSUER.into(),
            audiences: vec![AUDIENCE.into()],
            principal_claim: "sub".into(),
            algorithms: vec!["RS256".into()],
            leeway_seconds: 30,
            refresh_seconds: 300,
            min_refetch_seconds: 2,
            ..JwtConfig::default()
        },
        None,
    )
    .await;
    assert_eq!(jwks.count(), 1, "fetched once at start");
    let fetch = &jwks.seen()[0];
    assert_eq!(
        (fetch.method.as_str(), fetch.path.as_str()),
        ("GET", "/openid/v1/jwks")
    );
    assert_eq!(fetch.header("authorization"), "Bearer pod-sa-token");
    assert_eq!(
        verifier
            .verify(&sign(&rsa, &claims(GRANTED)))
            .await
            .expect("valid"),
        GRANTED
    );

    // Unknown kids: one re-fetch, then none within min_refetch_seconds.
    let stranger = signer(Algorithm::RS256, "unknown");
    for _ in 0..5 {
        assert!(
            verifier
                .verify(&sign(&stranger, &claims(GRANTED)))
                .await
                .is_err()
        );
    }
    assert!(jwks.count() <= 2, "rate-limited: {} fetches", jwks.count());

    // An outage keeps the last good JWKS: known keys still verify.
    failing.store(true, Ordering::SeqCst);
    assert!(!verifier.refresh().await);
    assert!(
        verifier.verify(&sign(&rsa, &claims(GRANTED))).await.is_ok(),
        "last good JWKS kept"
    );
    println!(
        "auth matrix: JWKS URL fetched with the bearer token, re-fetch rate-limited, outage survived"
    );
}

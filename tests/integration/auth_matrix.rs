//! The attack matrix: every case is refused with the right code and reaches
//! the backend zero times (the local backend behind a call counter). Cases:
//!
//! Credentials
//!   1 no credentials                       13 authorization: Bearer garbage
//!   2 empty x-api-key                      14 authorization: Basic ...
//!   3 garbage x-api-key                    15 empty authorization header
//!   4 a wrong key                          16 two different x-api-key headers
//!   5 the key with a leading space         17 two copies of the right key
//!   6 the key with a trailing space        18 another principal's key (no grant)
//!   7 the key upper-cased
//!   8 the key minus its last character
//!   9 the key plus one character
//!  10 the key's SHA-256 hash sent as the key
//!  11 a key of 4 KiB
//!  12 a Bearer token sent in x-api-key
//! Policy
//!  19 method outside the grant (Set for a Get* grant)
//!  20 a pool outside the grant: us-east-1_B1 for us-east-1_A*
//!  21 a lower-case pool: us-east-1_a1 for us-east-1_A*
//!  22 a prefixed pool: xus-east-1_A1 for us-east-1_A*
//!  23 a pool in another Region: eu-west-1_A1 for us-east-1_A*
//!  24 a UserPoolMfaService/Get* grant used on UserMfaService/GetUserMfaSettings
//!  25 a "cognito.mfa.v1.*" method glob (no service/method split) grants nothing
//!  26 a principal glob svc-? used by svc-ab
//!  27 a denied caller on an existing pool: same code and message shape as ...
//!  28 ... a denied caller on a pool that does not exist
//!  29 invalid input from a caller without a grant: PERMISSION_DENIED, not INVALID_ARGUMENT
//!  30 invalid input without credentials: UNAUTHENTICATED
//!  31 an access token whose iss names a pool outside the grant
//!  32 an access token with no readable iss
//!  33 the session flow (no pool to route on) for a pool-scoped grant
//!  34 AdminDeleteSoftwareToken on a pool outside the grant
//! Services without a pool
//!  35 fixtures without credentials
//!  36 fixtures for a caller without a fixtures grant
//!  37 reflection while closed, without credentials
//!  38 reflection while closed, for a caller without a reflection grant
//!  39 an unknown service path with a valid key and no grant
//!  40 health needs no key, and that does not open anything else
//!
//! JWT bearer tokens (JWKS file; issuer, audience and exp required; leeway 30 s)
//!  J1 alg none                           J11 a valid token whose principal lacks the grant
//!  J2 HS256 signed with the RSA          J12 no exp
//!     public key's bytes                 J13 payload swapped under a valid signature
//!  J3 wrong issuer                       J14 signed by another key with the same kid
//!  J4 no aud                             J15 ES256 header on the RSA key's kid
//!  J5 wrong aud                          J16 no kid
//!  J6 expired                            J17 empty bearer
//!  J7 nbf in the future                  J18 two tokens in one header
//!  J8 just past the leeway (35 s)        J19 no sub (the principal claim)
//!  J9 an unknown kid (refetched, still   J20 a pool outside the token principal's grant
//!     unknown)
//! J10 a kid rotated out of the JWKS
//! JWKS outage: O1 the JWKS file is missing, O2 the JWKS file is corrupt.
//! mTLS (client CA configured; certificates are optional unless required)
//!  M1 TLS without a client certificate or other credentials
//!  M2 a certificate from another CA (refused at the handshake)
//!  M3 an expired certificate from the right CA (refused at the handshake)
//!  M4 a valid certificate whose SPIFFE ID lacks the grant
//!  M5 a granted certificate on a pool outside its grant
//!  M6 no certificate while client_cert_required (refused at the handshake)
//!
//! Grants that mean exactly what they say (fixtures on their pool, proofs
//! kept apart, JWKS bounds, SPIFFE exactness, forged-token budgets, edges):
//! the cases F, P, T, K, M, U, E in `auth_matrix/grants.rs`, through the
//! real binary.
//!
//! Positive paths: a key works; health and open reflection need no key;
//! closed reflection works for a granted key; a reload takes effect on the
//! same connection (old key out, new key in, narrowed policy applies);
//! RS256 and ES256 tokens, a lower-case Bearer scheme, an expiry inside the
//! leeway, and a kid published after start-up are accepted; a client
//! certificate's SPIFFE URI SAN, else its CN, is the principal.

use crate::common;

use common::{Stack, TEST_KEY, TEST_PRINCIPAL};
use mfa_facade::auth::{AuthState, api_key::hash_key};
use mfa_facade::config::{ApiKeyConfig, Config, PolicyRuleConfig};
use mfa_facade::proto::dev::v1 as dev;
use mfa_facade::proto::v1::{
    self as pb, user_mfa_service_client::UserMfaServiceClient,
    user_pool_mfa_service_client::UserPoolMfaServiceClient,
};
use tonic::{Code, Request};

const KEY_A: &str = "key-svc-a-2f9d41";
const KEY_B: &str = "key-svc-b-77c0e3";
const KEY_AB: &str = "key-svc-ab-0a1b";
const KEY_GLOB: &str = "key-svc-glob-9e";
const KEY_TOKENS: &str = "key-svc-tok-31";

fn rule(principals: &[&str], methods: &[&str], pools: &[&str]) -> PolicyRuleConfig {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    PolicyRuleConfig {
        principals: v(principals),
        methods: v(methods),
        user_pools: v(pools),
        proven_by: Vec::new(),
    }
}

/// The matrix's callers and grants, through the same code path as a config file.
fn matrix_auth(open_reflection: bool) -> AuthState {
    let keys = [
        ("svc-a", KEY_A),
        ("svc-b", KEY_B),
        ("svc-ab", KEY_AB),
        ("svc-glob", KEY_GLOB),
        ("svc-tok", KEY_TOKENS),
        (TEST_PRINCIPAL, TEST_KEY),
    ];
    let mut config = Config::default();
    config.auth.open_reflection = open_reflection;
    config.auth.api_keys = keys
        .iter()
        .map(|(p, k)| ApiKeyConfig {
            principal: p.to_string(),
            sha256: hash_key(k),
        })
        .collect();
    config.policy.rules = vec![
        rule(
            &["svc-a"],
            &["cognito.mfa.v1.UserPoolMfaService/Get*"],
            &["us-east-1_A*"],
        ),
        rule(
            &["svc-?"],
            &["cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig"],
            &["us-east-1_Q*"],
        ),
        rule(&["svc-glob"], &["cognito.mfa.v1.*"], &["*"]),
        rule(
            &["svc-tok"],
            &["cognito.mfa.v1.UserMfaService/*"],
            &["us-east-1_A*"],
        ),
        rule(&[TEST_PRINCIPAL], &["*"], &["*"]),
    ];
    assert!(config.validate().is_empty());
    AuthState::from_config(&config)
}

/// Which headers a case sends.
#[derive(Clone)]
enum Creds {
    None,
    Key(String),
    Headers(Vec<(&'static str, String)>),
}

fn with_creds<T>(message: T, creds: &Creds) -> Request<T> {
    let mut req = Request::new(message);
    let md = req.metadata_mut();
    match creds {
        Creds::None => {}
        Creds::Key(k) => {
            md.insert("x-api-key", k.parse().expect("ascii key"));
        }
        Creds::Headers(headers) => {
            for (name, value) in headers {
                md.append(*name, value.parse().expect("ascii value"));
            }
        }
    }
    req
}

/// Which call a case makes.
#[derive(Clone)]
enum Call {
    GetPool(&'static str),
    SetPool(&'static str),
    GetPoolInvalid,
    UserSettingsWithToken(String),
    AssociateWithSession,
    AdminDelete(&'static str),
    Fixtures,
    UnknownService,
}

async fn make(s: &Stack, call: &Call, creds: &Creds) -> Result<(), tonic::Status> {
    let mut pools = UserPoolMfaServiceClient::new(s.channel.clone());
    let mut users = UserMfaServiceClient::new(s.channel.clone());
    let get = |pool: &str| pb::GetUserPoolMfaConfigRequest {
        user_pool_id: pool.into(),
    };
    match call {
        Call::GetPool(pool) => pools
            .get_user_pool_mfa_config(with_creds(get(pool), creds))
            .await
            .map(|_| ()),
        Call::GetPoolInvalid => pools
            .get_user_pool_mfa_config(with_creds(get("not a pool"), creds))
            .await
            .map(|_| ()),
        Call::SetPool(pool) => {
            let req = pb::SetUserPoolMfaConfigRequest {
                user_pool_id: pool.to_string(),
                mfa_configuration: pb::MfaConfiguration::Off as i32,
                ..Default::default()
            };
            pools
                .set_user_pool_mfa_config(with_creds(req, creds))
                .await
                .map(|_| ())
        }
        Call::UserSettingsWithToken(token) => {
            let req = pb::GetUserMfaSettingsRequest {
                access_token: token.clone(),
            };
            users
                .get_user_mfa_settings(with_creds(req, creds))
                .await
                .map(|_| ())
        }
        Call::AssociateWithSession => {
            let req = pb::AssociateSoftwareTokenRequest {
                access_token: None,
                session: Some("s".repeat(40)),
            };
            users
                .associate_software_token(with_creds(req, creds))
                .await
                .map(|_| ())
        }
        Call::AdminDelete(pool) => {
            let req = pb::AdminDeleteSoftwareTokenRequest {
                user_pool_id: pool.to_string(),
                username: "someone".into(),
            };
            users
                .admin_delete_software_token(with_creds(req, creds))
                .await
                .map(|_| ())
        }
        Call::UnknownService => {
            let mut grpc = tonic::client::Grpc::new(s.channel.clone());
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let path = http::uri::PathAndQuery::from_static("/unknown.v1.NopeService/Call");
            let codec = tonic_prost::ProstCodec::<(), ()>::default();
            grpc.unary(with_creds((), creds), path, codec)
                .await
                .map(|_| ())
        }
        Call::Fixtures => {
            let mut fx = dev::local_fixtures_service_client::LocalFixturesServiceClient::new(
                s.channel.clone(),
            );
            let req = dev::CreateUserPoolRequest {
                pool_name: "x".into(),
                feature_plan: 0,
            };
            fx.create_user_pool(with_creds(req, creds))
                .await
                .map(|_| ())
        }
    }
}

/// A Cognito-shaped token with an iss of our choosing; unsigned, for routing.
fn token_with_iss(iss: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
    format!(
        "{}.{}.c2ln",
        B64.encode(br#"{"alg":"RS256","kid":"k"}"#),
        B64.encode(serde_json::json!({"iss": iss, "token_use": "access"}).to_string())
    )
}

fn key(k: &str) -> Creds {
    Creds::Key(k.to_owned())
}

fn cases(existing_pool: &'static str) -> Vec<(&'static str, Creds, Call, Code)> {
    use Code::{PermissionDenied as Denied, Unauthenticated as Unauth};
    let a = "us-east-1_A1";
    vec![
        ("1 no credentials", Creds::None, Call::GetPool(a), Unauth),
        ("2 empty x-api-key", key(""), Call::GetPool(a), Unauth),
        (
            "3 garbage x-api-key",
            key("%%%garbage%%%"),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "4 a wrong key",
            key("key-svc-a-2f9d42"),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "5 leading space",
            key(&format!(" {KEY_A}")),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "6 trailing space",
            key(&format!("{KEY_A} ")),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "7 upper-cased key",
            key(&KEY_A.to_uppercase()),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "8 key minus a character",
            key(&KEY_A[..KEY_A.len() - 1]),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "9 key plus a character",
            key(&format!("{KEY_A}0")),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "10 the key's hash as the key",
            key(&hash_key(KEY_A)),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "11 a 4 KiB key",
            key(&"k".repeat(4096)),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "12 a bearer token in x-api-key",
            key(&format!("Bearer {KEY_A}")),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "13 authorization: Bearer garbage",
            Creds::Headers(vec![("authorization", "Bearer garbage".into())]),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "14 authorization: Basic",
            Creds::Headers(vec![("authorization", "Basic c3ZjLWE6cGFzcw==".into())]),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "15 empty authorization header",
            Creds::Headers(vec![("authorization", String::new())]),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "16 two different x-api-key headers",
            Creds::Headers(vec![
                ("x-api-key", KEY_A.into()),
                ("x-api-key", KEY_B.into()),
            ]),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "17 two copies of the right key",
            Creds::Headers(vec![
                ("x-api-key", KEY_A.into()),
                ("x-api-key", KEY_A.into()),
            ]),
            Call::GetPool(a),
            Unauth,
        ),
        (
            "18 another principal's key",
            key(KEY_B),
            Call::SetPool(a),
            Denied,
        ),
        (
            "19 method outside the grant",
            key(KEY_A),
            Call::SetPool(a),
            Denied,
        ),
        (
            "20 pool outside the grant",
            key(KEY_A),
            Call::GetPool("us-east-1_B1"),
            Denied,
        ),
        (
            "21 lower-case pool",
            key(KEY_A),
            Call::AdminDelete("us-east-1_a1"),
            Denied,
        ),
        (
            "22 prefixed pool",
            key(KEY_A),
            Call::SetPool("xus-east-1_A1"),
            Denied,
        ),
        (
            "23 pool in another Region",
            key(KEY_A),
            Call::SetPool("eu-west-1_A1"),
            Denied,
        ),
        (
            "24 pool-service grant on the user service",
            key(KEY_A),
            Call::UserSettingsWithToken(token_with_iss(
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_A1",
            )),
            Denied,
        ),
        (
            "25 method glob without service/method",
            key(KEY_GLOB),
            Call::GetPool(a),
            Denied,
        ),
        (
            "26 principal glob svc-? for svc-ab",
            key(KEY_AB),
            Call::SetPool("us-east-1_Q1"),
            Denied,
        ),
        (
            "27 denied on an existing pool",
            key(KEY_B),
            Call::AdminDelete(existing_pool),
            Denied,
        ),
        (
            "28 denied on a missing pool",
            key(KEY_B),
            Call::AdminDelete("us-east-1_Missing9"),
            Denied,
        ),
        (
            "29 invalid input, no grant",
            key(KEY_TOKENS),
            Call::GetPoolInvalid,
            Denied,
        ),
        (
            "30 invalid input, no credentials",
            Creds::None,
            Call::GetPoolInvalid,
            Unauth,
        ),
        (
            "31 token iss outside the grant",
            key(KEY_TOKENS),
            Call::UserSettingsWithToken(token_with_iss(
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Z9",
            )),
            Denied,
        ),
        (
            "32 token without a readable iss",
            key(KEY_TOKENS),
            Call::UserSettingsWithToken("abc.def.ghi".into()),
            Denied,
        ),
        (
            "33 session flow, pool-scoped grant",
            key(KEY_TOKENS),
            Call::AssociateWithSession,
            Denied,
        ),
        (
            "34 admin delete outside the grant",
            key(KEY_TOKENS),
            Call::AdminDelete("us-east-1_B1"),
            Denied,
        ),
        (
            "35 fixtures without credentials",
            Creds::None,
            Call::Fixtures,
            Unauth,
        ),
        (
            "36 fixtures without a grant",
            key(KEY_A),
            Call::Fixtures,
            Denied,
        ),
        (
            "39 an unknown service, valid key, no grant",
            key(KEY_A),
            Call::UnknownService,
            Denied,
        ),
        (
            "39b an unknown service without credentials",
            Creds::None,
            Call::UnknownService,
            Unauth,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_attack_is_refused_before_the_backend() {
    let s = Stack::local().await;
    let existing = s.create_pool().await;
    let existing: &'static str = Box::leak(existing.into_boxed_str());
    s.auth.store(std::sync::Arc::new(matrix_auth(true)));
    let before = s.upstream_calls();
    let cases = cases(existing);
    let mut failures = Vec::new();
    let mut denial_messages = Vec::new();
    for (name, creds, call, expected) in &cases {
        match make(&s, call, creds).await {
            Ok(()) => failures.push(format!("{name}: allowed")),
            Err(status) if status.code() != *expected => failures.push(format!(
                "{name}: {:?} ({}), expected {expected:?}",
                status.code(),
                status.message()
            )),
            Err(status) => {
                if name.starts_with("27") || name.starts_with("28") {
                    denial_messages.push(
                        status
                            .message()
                            .replace(existing, "POOL")
                            .replace("us-east-1_Missing9", "POOL"),
                    );
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(
        s.upstream_calls(),
        before,
        "no refused call reached the backend"
    );
    assert_eq!(denial_messages.len(), 2);
    assert_eq!(
        denial_messages[0], denial_messages[1],
        "a denial never tells whether the pool exists"
    );
    println!(
        "auth matrix: {} gRPC cases refused, 0 backend calls",
        cases.len()
    );
}

fn grpcurl(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("grpcurl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("grpcurl is required ({e}); scripts/test.sh installs it"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_without_a_pool_and_health() {
    let s = Stack::local().await;
    s.auth.store(std::sync::Arc::new(matrix_auth(false)));
    let addr = s.server.addr.to_string();
    let before = s.upstream_calls();
    // 37: reflection closed, no key.
    let (ok, out) = grpcurl(&["-plaintext", &addr, "list"]);
    assert!(!ok && out.contains("Unauthenticated"), "37: {out}");
    // 38: reflection closed, a key without a reflection grant.
    let (ok, out) = grpcurl(&[
        "-plaintext",
        "-H",
        &format!("x-api-key: {KEY_A}"),
        &addr,
        "list",
    ]);
    assert!(!ok && out.contains("PermissionDenied"), "38: {out}");
    // 40: health is open (no key, reflection closed), and opens nothing else.
    let mut health = tonic_health::pb::health_client::HealthClient::new(s.channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health without a key")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // Closed reflection works for a granted key.
    let (ok, out) = grpcurl(&[
        "-plaintext",
        "-H",
        &format!("x-api-key: {TEST_KEY}"),
        &addr,
        "list",
    ]);
    assert!(ok && out.contains("cognito.mfa.v1.UserMfaService"), "{out}");
    assert_eq!(s.upstream_calls(), before);
    println!("auth matrix: 3 cases on reflection and health behaved as configured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_positive_paths_and_a_reload() {
    let s = Stack::local().await;
    s.auth.store(std::sync::Arc::new(matrix_auth(true)));
    // svc-a may Get on us-east-1_A*: the pool does not exist, so NOT_FOUND
    // (from the backend) proves the call got through.
    let err = make(&s, &Call::GetPool("us-east-1_A1"), &key(KEY_A))
        .await
        .expect_err("no such pool");
    assert_eq!(err.code(), Code::NotFound);
    // svc-b matches the principal glob svc-? and so may Set on us-east-1_Q*.
    let err = make(&s, &Call::SetPool("us-east-1_Q1"), &key(KEY_B))
        .await
        .expect_err("no such pool");
    assert_eq!(err.code(), Code::NotFound);
    let (ok, out) = grpcurl(&["-plaintext", &s.server.addr.to_string(), "list"]);
    assert!(ok, "open reflection needs no key: {out}");

    // Reload: rotate svc-a's key and narrow its grant, on the same channel.
    let mut config = Config::default();
    config.auth.api_keys = vec![ApiKeyConfig {
        principal: "svc-a".into(),
        sha256: hash_key("key-svc-a-rotated"),
    }];
    config.policy.rules = vec![rule(
        &["svc-a"],
        &["cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig"],
        &["us-east-1_A1"],
    )];
    s.auth
        .store(std::sync::Arc::new(AuthState::from_config(&config)));
    let old = make(&s, &Call::GetPool("us-east-1_A1"), &key(KEY_A))
        .await
        .expect_err("old key");
    assert_eq!(old.code(), Code::Unauthenticated);
    let new = make(
        &s,
        &Call::GetPool("us-east-1_A1"),
        &key("key-svc-a-rotated"),
    )
    .await
    .expect_err("no pool");
    assert_eq!(new.code(), Code::NotFound, "the new key works");
    let narrowed = make(
        &s,
        &Call::GetPool("us-east-1_A2"),
        &key("key-svc-a-rotated"),
    )
    .await
    .expect_err("narrowed");
    assert_eq!(narrowed.code(), Code::PermissionDenied);
}

// ---- JWT bearer tokens ---------------------------------------------------

mod jwt_cases {
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

// ---- mTLS client certificates --------------------------------------------

mod pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };

    pub struct Ca {
        issuer: Issuer<'static, KeyPair>,
        pub pem: String,
    }

    pub fn ca(name: &str) -> Ca {
        let key = KeyPair::generate().expect("ca key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).expect("ca cert").pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate signed by `ca`: (cert PEM, key PEM).
    pub fn leaf(ca: &Ca, cn: &str, sans: Vec<SanType>, expired: bool) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &ca.issuer).expect("leaf cert");
        (cert.pem(), key.serialize_pem())
    }

    pub fn server(ca: &Ca) -> (String, String) {
        leaf(
            ca,
            "mfa-facade",
            vec![
                SanType::DnsName("localhost".try_into().expect("dns")),
                SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
            ],
            false,
        )
    }

    pub fn spiffe(id: &str) -> Vec<SanType> {
        vec![SanType::URI(id.try_into().expect("uri"))]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_attacks_are_refused_and_the_principal_is_the_spiffe_id_or_cn() {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
    const BILLING: &str = "spiffe://example.org/ns/billing/sa/api";
    const OTHER: &str = "spiffe://example.org/ns/other/sa/api";

    let ca = pki::ca("clients and server CA");
    let rogue = pki::ca("another CA");
    let (server_cert, server_key) = pki::server(&ca);
    let server_tls = |required: bool| {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&server_cert, &server_key))
            .client_ca_root(Certificate::from_pem(&ca.pem))
            .client_auth_optional(!required)
    };
    let client = |id: Option<(String, String)>| {
        let c = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem));
        match id {
            Some((cert, key)) => c.identity(Identity::from_pem(cert, key)),
            None => c,
        }
    };

    let s = Stack::local_tls(Some((server_tls(false), client(None)))).await;
    let mut config = Config::default();
    config.policy.rules = vec![
        rule(&[BILLING, "cn-only-client"], &["*"], &["us-east-1_A*"]),
        rule(&[TEST_PRINCIPAL], &["*"], &["*"]),
    ];
    let mut state = matrix_auth(true);
    state.policy = AuthState::from_config(&config).policy;
    s.auth.store(std::sync::Arc::new(state));
    let before = s.upstream_calls();
    let get = || pb::GetUserPoolMfaConfigRequest {
        user_pool_id: "us-east-1_A1".into(),
    };

    async fn call_with(
        addr: std::net::SocketAddr,
        tls: ClientTlsConfig,
        req: pb::GetUserPoolMfaConfigRequest,
    ) -> Result<(), tonic::Status> {
        let channel = common::tls_channel(addr, tls)
            .await
            .map_err(|e| tonic::Status::unavailable(format!("handshake: {e}")))?;
        UserPoolMfaServiceClient::new(channel)
            .get_user_pool_mfa_config(req)
            .await
            .map(|_| ())
    }

    let mut refused = Vec::new();
    // M1: TLS, but no client certificate and no other credentials.
    let err = call_with(s.server.addr, client(None), get())
        .await
        .expect_err("M1");
    refused.push((
        "M1 no client certificate",
        err.code() == Code::Unauthenticated,
        err,
    ));
    // M2: a certificate from another CA: the handshake refuses it.
    let foreign = pki::leaf(&rogue, "intruder", pki::spiffe(BILLING), false);
    let err = call_with(s.server.addr, client(Some(foreign)), get())
        .await
        .expect_err("M2");
    refused.push((
        "M2 a certificate from another CA",
        err.code() != Code::Ok && err.code() != Code::NotFound,
        err,
    ));
    // M3: an expired certificate from the right CA: the handshake refuses it.
    let expired = pki::leaf(&ca, "old", pki::spiffe(BILLING), true);
    let err = call_with(s.server.addr, client(Some(expired)), get())
        .await
        .expect_err("M3");
    refused.push((
        "M3 an expired certificate",
        err.code() != Code::Ok && err.code() != Code::NotFound,
        err,
    ));
    // M4: a valid certificate whose SPIFFE ID lacks the grant.
    let other = pki::leaf(&ca, "other", pki::spiffe(OTHER), false);
    let err = call_with(s.server.addr, client(Some(other)), get())
        .await
        .expect_err("M4");
    refused.push((
        "M4 a SPIFFE ID without a grant",
        err.code() == Code::PermissionDenied,
        err,
    ));
    // M5: a granted certificate cannot reach a pool outside its grant.
    let billing = pki::leaf(&ca, "billing", pki::spiffe(BILLING), false);
    let err = call_with(
        s.server.addr,
        client(Some(billing.clone())),
        pb::GetUserPoolMfaConfigRequest {
            user_pool_id: "us-east-1_B1".into(),
        },
    )
    .await
    .expect_err("M5");
    refused.push((
        "M5 a granted certificate on another pool",
        err.code() == Code::PermissionDenied,
        err,
    ));
    let failures: Vec<String> = refused
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(name, _, err)| format!("{name}: {:?} {}", err.code(), err.message()))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(
        s.upstream_calls(),
        before,
        "no refused call reached the backend"
    );

    // Positive: the SPIFFE ID, and the CN when there is none, are principals.
    let err = call_with(s.server.addr, client(Some(billing)), get())
        .await
        .expect_err("no such pool");
    assert_eq!(
        err.code(),
        Code::NotFound,
        "SPIFFE principal: {}",
        err.message()
    );
    let cn_only = pki::leaf(&ca, "cn-only-client", vec![], false);
    let err = call_with(s.server.addr, client(Some(cn_only)), get())
        .await
        .expect_err("no such pool");
    assert_eq!(
        err.code(),
        Code::NotFound,
        "CN principal: {}",
        err.message()
    );

    // M6: with client_cert_required, no certificate fails the handshake.
    let strict = Stack::local_tls(Some((
        server_tls(true),
        client(Some(pki::leaf(&ca, "cn-only-client", vec![], false))),
    )))
    .await;
    strict.auth.store(std::sync::Arc::new(matrix_auth(true)));
    let err = call_with(strict.server.addr, client(None), get())
        .await
        .expect_err("M6");
    assert!(
        err.code() != Code::Ok
            && err.code() != Code::NotFound
            && err.code() != Code::Unauthenticated,
        "M6: {err:?}"
    );
    assert_eq!(strict.upstream_calls(), 0);
    println!("auth matrix: 6 mTLS cases refused, 0 backend calls");
}

/// A JWKS served over HTTP on loopback: fetched with the bearer token file,
/// re-fetched for an unknown kid at most once per min_refetch_seconds, and
/// kept when the server starts failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_url_is_fetched_rate_limited_and_survives_an_outage() {
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::{Response, server::conn::http1, service::service_fn};
    use hyper_util::rt::TokioIo;
    use jsonwebtoken::Algorithm;
    use jwt_cases::*;
    use mfa_facade::auth::jwt::JwtVerifier;
    use mfa_facade::config::JwtConfig;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let rsa = signer(Algorithm::RS256, "rsa-1");
    let body = Arc::new(Mutex::new(
        serde_json::json!({ "keys": [&rsa.jwk] }).to_string(),
    ));
    let hits = Arc::new(AtomicUsize::new(0));
    let failing = Arc::new(AtomicBool::new(false));
    let auth_seen = Arc::new(Mutex::new(String::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    {
        let (body, hits, failing, auth_seen) = (
            body.clone(),
            hits.clone(),
            failing.clone(),
            auth_seen.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (body, hits, failing, auth_seen) = (
                    body.clone(),
                    hits.clone(),
                    failing.clone(),
                    auth_seen.clone(),
                );
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        *auth_seen.lock().expect("auth") = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let mut r = Response::new(Full::new(Bytes::from(
                            body.lock().expect("body").clone(),
                        )));
                        if failing.load(Ordering::SeqCst) {
                            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                        }
                        async move { Ok::<_, std::convert::Infallible>(r) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
    }
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
    assert_eq!(hits.load(Ordering::SeqCst), 1, "fetched once at start");
    assert_eq!(
        auth_seen.lock().expect("auth").as_str(),
        "Bearer pod-sa-token"
    );
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
    assert!(
        hits.load(Ordering::SeqCst) <= 2,
        "rate-limited: {} fetches",
        hits.load(Ordering::SeqCst)
    );

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

mod grants;

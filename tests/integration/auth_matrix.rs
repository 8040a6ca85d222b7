//! The attack matrix: every case is refused with the right code and reaches
//! the backend zero times (the local backend behind a call counter). By
//! scheme: API keys and the policy here, JWT bearer tokens in
//! `auth_matrix/jwt.rs`, mTLS in `auth_matrix/mtls.rs`, and the grants
//! through the binary in `auth_matrix/grants.rs`. Cases:
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
//! 34b ListUserMfaStatus (the coverage walk) on a pool outside the grant
//! 34c ListUserMfaStatus without credentials
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
    Walk(&'static str),
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
        Call::Walk(pool) => {
            let req = pb::ListUserMfaStatusRequest {
                user_pool_id: pool.to_string(),
                ..Default::default()
            };
            pools
                .list_user_mfa_status(with_creds(req, creds))
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
                ..Default::default()
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
            "34b a coverage walk of a pool outside the grant",
            key(KEY_A),
            Call::Walk("us-east-1_B1"),
            Denied,
        ),
        (
            "34c a coverage walk without credentials",
            Creds::None,
            Call::Walk(existing_pool),
            Unauth,
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

/// Each attack of [`cases`] as a test of its own, on a fresh server, so
/// one can be run by name (`cargo nextest run -E 'test(/attack::a27/)'`)
/// and a failure names its case. `every_attack_is_refused_before_the_backend`
/// still runs them all on one server, which is what holds the denials of an
/// existing and a missing pool to one message.
mod attack {
    use super::*;

    /// Case `number` alone: refused with its code, and nothing reached the
    /// backend.
    async fn attack(number: &str) {
        let s = Stack::local().await;
        let existing = s.create_pool().await;
        let existing: &'static str = Box::leak(existing.into_boxed_str());
        s.auth.store(std::sync::Arc::new(matrix_auth(true)));
        let before = s.upstream_calls();
        let (name, creds, call, expected) = cases(existing)
            .into_iter()
            .find(|(n, ..)| n.split(' ').next() == Some(number))
            .unwrap_or_else(|| panic!("no case {number}"));
        let status = make(&s, &call, &creds)
            .await
            .expect_err(&format!("{name}: allowed"));
        assert_eq!(status.code(), expected, "{name}: {}", status.message());
        assert_eq!(s.upstream_calls(), before, "{name} reached the backend");
    }

    macro_rules! attacks {
        ($($test:ident: $number:literal,)*) => {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    attack($number).await
                }
            )*
            /// The case numbers that have a test here.
            const NUMBERS: &[&str] = &[$($number),*];
        };
    }

    attacks! {
        a01_no_credentials: "1",
        a02_empty_api_key: "2",
        a03_garbage_api_key: "3",
        a04_a_wrong_key: "4",
        a05_leading_space: "5",
        a06_trailing_space: "6",
        a07_upper_cased_key: "7",
        a08_key_minus_a_character: "8",
        a09_key_plus_a_character: "9",
        a10_the_hash_as_the_key: "10",
        a11_a_4_kib_key: "11",
        a12_a_bearer_token_in_x_api_key: "12",
        a13_bearer_garbage: "13",
        a14_basic_authorization: "14",
        a15_empty_authorization: "15",
        a16_two_different_keys: "16",
        a17_two_copies_of_the_right_key: "17",
        a18_another_principals_key: "18",
        a19_method_outside_the_grant: "19",
        a20_pool_outside_the_grant: "20",
        a21_lower_case_pool: "21",
        a22_prefixed_pool: "22",
        a23_pool_in_another_region: "23",
        a24_pool_grant_on_the_user_service: "24",
        a25_method_glob_without_service_method: "25",
        a26_principal_glob: "26",
        a27_denied_on_an_existing_pool: "27",
        a28_denied_on_a_missing_pool: "28",
        a29_invalid_input_no_grant: "29",
        a30_invalid_input_no_credentials: "30",
        a31_token_iss_outside_the_grant: "31",
        a32_token_without_a_readable_iss: "32",
        a33_session_flow_pool_scoped_grant: "33",
        a34_admin_delete_outside_the_grant: "34",
        a34b_walk_of_a_pool_outside_the_grant: "34b",
        a34c_walk_without_credentials: "34c",
        a35_fixtures_without_credentials: "35",
        a36_fixtures_without_a_grant: "36",
        a39_unknown_service_no_grant: "39",
        a39b_unknown_service_no_credentials: "39b",
    }

    /// A case added to the table gets its test here too.
    #[test]
    fn every_case_has_its_own_test() {
        let numbers: Vec<String> = cases("us-east-1_X1")
            .iter()
            .map(|(n, ..)| n.split(' ').next().unwrap_or("").to_owned())
            .collect();
        assert_eq!(numbers, NUMBERS);
    }
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

mod grants;
mod jwt;
mod mtls;

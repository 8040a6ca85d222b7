//! Grants that mean exactly what they say, through the real binary: the
//! attack matrix's second half. Each case was an attack that worked (or a
//! defence that was missing) before; each prints its outcome, and every
//! test prints its count.
//!
//! Fixtures (a pool-A grant of `cognito.mfa.*/*` and `*`)
//!   F1 IssueAccessToken in pool B          F6 fixtures are rate limited per caller
//!   F2 CreateUser in pool B                F7 users per pool capped (max_users_per_pool)
//!   F3 IssueMfaSetupSession in pool B      F8 pools capped (max_pools)
//!   F4 CreateUserPool                      F9 attribute bytes capped (max_user_attribute_bytes)
//!   F5 a granted fixture call is audited  F10 open sessions capped (max_sessions)
//!   E2 a symlink planted at the data file's old temp name is never written through
//! Principals
//!   P1 a JWT whose sub is an API key's principal, against proven_by = ["api_key"]
//!   P2 the same JWT under [auth.jwt] principal_prefix = "oidc:"
//!   P3 a client certificate with CN = an API key's principal, under [tls] principal_prefix
//!   P4 check-config warns where a key's name collides, and not once prefixed
//!   M1 a SPIFFE ID beside a second URI SAN
//!   M2 a CN on a certificate with a DNS SAN
//! JWT
//!   T1 typ JWT where allowed_types = ["at+jwt"]   T4 a JWK whose key_ops lack verify
//!   T2 token_use = "id" where "access" is required T5 a JWK whose alg is not the token's
//!   T3 a JWK with use = "enc"
//! JWKS
//!   K1 check-config refuses three loopback look-alike jwks_urls
//!   K2 a JWKS over max_jwks_bytes is not read
//!   K3 a reload during a JWKS outage keeps the last good set (counted)
//!   K4 an unknown kid: concurrent callers share one refetch, and all get in
//!   K5 past max_stale_seconds the last good set no longer verifies (in process)
//! Budgets and edges
//!   U1 forged tokens carrying a victim's iss and sub do not spend the victim's budget
//!   E1 a Cognito that cannot be reached: a fixed message; the detail in the log
//!   E3 rediss:// with a CA file and AUTH from files
//!   E4 development mode refuses a non-loopback listen address

use super::jwt::jwt_cases::{AUDIENCE, ISSUER, Signer, now, signer};
use super::mtls::pki;
use super::*;
use common::procs::{Served, bin, canary, closed_port, free_port};
use jsonwebtoken::{Algorithm, Header, jwk::Jwk};
use mfa_facade::proto::dev::v1::local_fixtures_service_client::LocalFixturesServiceClient;
use std::time::{Duration, Instant};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const ADMIN_KEY: &str = "key-admin-7d1c0b";
const POOL_A_KEY: &str = "key-pool-a-44e2f1";
const ATTACKER_KEY: &str = "key-attacker-90ab";

/// Each case's name, whether it held, and what was seen.
#[derive(Default)]
struct Cases(Vec<(&'static str, bool, String)>);

impl Cases {
    fn check(&mut self, name: &'static str, held: bool, seen: impl std::fmt::Display) {
        self.0.push((name, held, seen.to_string()));
    }

    /// Expects a refusal with `code`.
    fn refused<T>(&mut self, name: &'static str, r: Result<T, tonic::Status>, code: Code) {
        match r {
            Ok(_) => self.check(name, false, "OK"),
            Err(s) => self.check(
                name,
                s.code() == code,
                format!("{:?}: {}", s.code(), s.message()),
            ),
        }
    }

    fn ok<T>(&mut self, name: &'static str, r: Result<T, tonic::Status>) {
        match r {
            Ok(_) => self.check(name, true, "OK"),
            Err(s) => self.check(name, false, format!("{:?}: {}", s.code(), s.message())),
        }
    }

    fn finish(self, what: &str) {
        for (name, held, seen) in &self.0 {
            println!("  {} {name}: {seen}", if *held { "ok  " } else { "FAIL" });
        }
        let failed: Vec<_> = self.0.iter().filter(|c| !c.1).map(|c| c.0).collect();
        println!(
            "auth matrix: {} {what} cases held, {} failed",
            self.0.len() - failed.len(),
            failed.len()
        );
        assert!(failed.is_empty(), "failed: {failed:?}");
    }
}

fn key_entry(principal: &str, key: &str) -> String {
    canary::secret(key);
    format!(
        "[[auth.api_keys]]\nprincipal = \"{principal}\"\nsha256 = \"{}\"\n",
        hash_key(key)
    )
}

fn fixtures(ch: &Channel, key: &str) -> common::FixturesClient {
    LocalFixturesServiceClient::with_interceptor(ch.clone(), common::ApiKey::new(key))
}

fn pools(ch: &Channel, key: &str) -> common::PoolsClient {
    UserPoolMfaServiceClient::with_interceptor(ch.clone(), common::ApiKey::new(key))
}

fn users(ch: &Channel, key: &str) -> common::UsersClient {
    UserMfaServiceClient::with_interceptor(ch.clone(), common::ApiKey::new(key))
}

fn new_pool(name: &str) -> dev::CreateUserPoolRequest {
    dev::CreateUserPoolRequest {
        pool_name: name.into(),
        feature_plan: dev::FeaturePlan::Essentials as i32,
        ..Default::default()
    }
}

fn new_user(pool: &str, username: &str) -> dev::CreateUserRequest {
    dev::CreateUserRequest {
        user_pool_id: pool.into(),
        username: username.into(),
        ..Default::default()
    }
}

/// A new pool named `name` with one user in it.
async fn pool_with_user(f: &mut common::FixturesClient, name: &str, username: &str) -> String {
    let pool = f
        .create_user_pool(new_pool(name))
        .await
        .expect("pool")
        .into_inner()
        .user_pool_id;
    f.create_user(new_user(&pool, username))
        .await
        .expect("user");
    pool
}

fn token_req(pool: &str, username: &str) -> dev::IssueAccessTokenRequest {
    dev::IssueAccessTokenRequest {
        user_pool_id: pool.into(),
        username: username.into(),
        ttl_seconds: None,
    }
}

fn session_req(pool: &str, username: &str) -> dev::IssueMfaSetupSessionRequest {
    dev::IssueMfaSetupSessionRequest {
        user_pool_id: pool.into(),
        username: username.into(),
    }
}

fn reason(s: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    s.get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

fn wait_until(what: &str, timeout: Duration, f: impl FnMut() -> bool) {
    crate::common::wait::until_true(what, timeout, f);
}

/// Rewrites the server's config file and sends SIGHUP; waits for the reload.
fn reload(served: &Served, config: &str) {
    let path = served.dir.path().join("config.toml");
    let config = config.replace("{dir}", &served.dir.path().display().to_string());
    std::fs::write(&path, config).expect("rewrite config");
    let before = served
        .logs()
        .iter()
        .filter(|l| l.text.contains("reloaded"))
        .count();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &served.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    wait_until("the reload", Duration::from_secs(10), || {
        served
            .logs()
            .iter()
            .filter(|l| l.text.contains("reloaded"))
            .count()
            > before
    });
}

fn audit_records(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

// ---- F: fixtures ----------------------------------------------------------

fn fixtures_config(pool_a: &str) -> String {
    format!(
        r#"
[backend]
kind = "local"
data_file = "{{dir}}/data.json"
max_pools = 5
max_users_per_pool = 3
max_user_attribute_bytes = 1024
max_sessions = 2

{admin}{pool_a_key}
[[policy.rules]]
principals = ["admin"]
methods = ["*"]
user_pools = ["*"]

[[policy.rules]]
principals = ["pool-a-svc"]
methods = ["cognito.mfa.*/*", "*"]
user_pools = ["{pool_a}"]

[limits.default]
per_second = 1000
burst = 1000

[limits.methods."cognito.mfa.dev.v1.LocalFixturesService/IssueAccessToken"]
per_second = 0.001
burst = 3

[audit]
file = "{{dir}}/audit.jsonl"
"#,
        admin = key_entry("admin", ADMIN_KEY),
        pool_a_key = key_entry("pool-a-svc", POOL_A_KEY),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_are_authorized_on_their_pool_audited_limited_and_capped() {
    let served = Served::start(&fixtures_config("none-yet"));
    let dir = served.dir.path().to_owned();
    // E2's trap, set before the first write: the name the data file's
    // temp file used to have (".data.json.tmp-<pid>"), a symlink to a
    // file the server must never write.
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "victim").expect("victim");
    let planted = dir.join(format!(".data.json.tmp-{}", served.pid()));
    std::os::unix::fs::symlink(&victim, &planted).expect("symlink");

    let ch = served.channel().await;
    let mut admin = fixtures(&ch, ADMIN_KEY);
    let pool_a = admin
        .create_user_pool(new_pool("a"))
        .await
        .expect("pool A")
        .into_inner()
        .user_pool_id;
    let pool_b = pool_with_user(&mut admin, "b", "bob").await;
    reload(&served, &fixtures_config(&pool_a));

    let mut c = Cases::default();
    let mut a = fixtures(&ch, POOL_A_KEY);
    c.refused(
        "F1 IssueAccessToken in pool B",
        a.issue_access_token(token_req(&pool_b, "bob")).await,
        Code::PermissionDenied,
    );
    c.refused(
        "F2 CreateUser in pool B",
        a.create_user(new_user(&pool_b, "mallory")).await,
        Code::PermissionDenied,
    );
    c.refused(
        "F3 IssueMfaSetupSession in pool B",
        a.issue_mfa_setup_session(session_req(&pool_b, "bob")).await,
        Code::PermissionDenied,
    );
    c.refused(
        "F4 CreateUserPool with a pool-scoped * grant",
        a.create_user_pool(new_pool("mine")).await,
        Code::PermissionDenied,
    );
    // F5: in its own pool the grant works, and the call is audited like
    // any other (as is the refusal of F2).
    let alice = a.create_user(new_user(&pool_a, "alice")).await;
    let records = audit_records(&dir.join("audit.jsonl"));
    let completed = |method: &str, code: &str| {
        records.iter().any(|r| {
            r["stage"] == "completed"
                && r["principal"] == "pool-a-svc"
                && r["method"] == format!("cognito.mfa.dev.v1.LocalFixturesService/{method}")
                && r["outcome"]["code"] == code
        })
    };
    c.check(
        "F5 a granted fixture call is audited (and a denied one)",
        alice.is_ok()
            && completed("CreateUser", "OK")
            && completed("CreateUser", "PERMISSION_DENIED"),
        format!("{} records", records.len()),
    );
    // F6: three tokens, then the caller's budget for the method is spent.
    let mut issued = 0;
    for _ in 0..3 {
        if let Ok(t) = a.issue_access_token(token_req(&pool_a, "alice")).await {
            // Audited like any call, and masked: the canary step checks.
            canary::secret(&t.into_inner().access_token);
            issued += 1;
        }
    }
    let fourth = a.issue_access_token(token_req(&pool_a, "alice")).await;
    c.check(
        "F6 fixtures are rate limited per caller",
        issued == 3
            && fourth
                .as_ref()
                .is_err_and(|s| s.code() == Code::ResourceExhausted && reason(s) == "RATE_LIMITED"),
        format!(
            "{issued} issued, then {:?}",
            fourth.map(|_| ()).map_err(|s| s.code())
        ),
    );
    // F7: pool A holds alice; two more fit, the fourth does not.
    admin
        .create_user(new_user(&pool_a, "u2"))
        .await
        .expect("u2");
    admin
        .create_user(new_user(&pool_a, "u3"))
        .await
        .expect("u3");
    let fourth = admin.create_user(new_user(&pool_a, "u4")).await;
    c.check(
        "F7 users per pool capped",
        fourth.as_ref().is_err_and(|s| {
            s.code() == Code::ResourceExhausted && reason(s) == "LimitExceededException"
        }),
        format!(
            "{:?}",
            fourth.map(|_| ()).map_err(|s| s.message().to_owned())
        ),
    );
    // F8: the demo pool, A and B; two more fit in five.
    admin.create_user_pool(new_pool("c")).await.expect("c");
    admin.create_user_pool(new_pool("d")).await.expect("d");
    let sixth = admin.create_user_pool(new_pool("e")).await;
    c.check(
        "F8 pools capped",
        sixth.as_ref().is_err_and(|s| {
            s.code() == Code::ResourceExhausted && s.message().contains("max_pools")
        }),
        format!(
            "{:?}",
            sixth.map(|_| ()).map_err(|s| s.message().to_owned())
        ),
    );
    // F9: 2 x 600 bytes is over 1024.
    let mut big = new_user(&pool_b, "carol");
    big.attributes = [
        ("custom:a".to_owned(), "x".repeat(600)),
        ("custom:b".to_owned(), "y".repeat(600)),
    ]
    .into();
    let refused = admin.create_user(big).await;
    let fields: Vec<String> = refused
        .as_ref()
        .err()
        .and_then(|s| {
            use tonic_types::StatusExt;
            s.get_details_bad_request()
        })
        .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
        .unwrap_or_default();
    c.check(
        "F9 attribute bytes capped",
        refused
            .as_ref()
            .is_err_and(|s| s.code() == Code::InvalidArgument)
            && fields == ["attributes"],
        format!("{fields:?}"),
    );
    // F10: two open sessions, the third is refused.
    for _ in 0..2 {
        let s = admin
            .issue_mfa_setup_session(session_req(&pool_b, "bob"))
            .await
            .expect("a session");
        canary::secret(&s.into_inner().session);
    }
    let third = admin
        .issue_mfa_setup_session(session_req(&pool_b, "bob"))
        .await;
    c.check(
        "F10 open sessions capped",
        third
            .as_ref()
            .is_err_and(|s| s.message().contains("max_sessions")),
        format!("{:?}", third.map(|_| ()).map_err(|s| s.code())),
    );
    // E2: the planted link was never followed.
    let data = dir.join("data.json");
    let meta = std::fs::symlink_metadata(&data).expect("data file");
    use std::os::unix::fs::PermissionsExt;
    c.check(
        "E2 a planted temp-file symlink is never written through",
        std::fs::read_to_string(&victim).expect("victim") == "victim"
            && meta.file_type().is_file()
            && meta.permissions().mode() & 0o777 == 0o600,
        format!(
            "victim {} bytes, data file {:?} {:o}",
            std::fs::metadata(&victim).map(|m| m.len()).unwrap_or(0),
            meta.file_type(),
            meta.permissions().mode() & 0o777
        ),
    );
    c.finish("fixtures");
}

// ---- P, T, K3: principals and JWT checks ------------------------------------

/// A token with a chosen header typ, signed by `s`.
fn sign_typ(s: &Signer, typ: &str, claims: &serde_json::Value) -> String {
    let mut header = Header::new(s.alg);
    header.kid = Some(s.kid.clone());
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, &s.key).expect("sign")
}

fn access_claims(sub: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": ISSUER, "aud": [AUDIENCE], "sub": sub, "token_use": "access",
        "exp": now() + 600, "iat": now(), "nbf": now() - 5,
    })
}

fn write_jwks(path: &std::path::Path, keys: &[&Jwk]) {
    std::fs::write(path, serde_json::json!({ "keys": keys }).to_string()).expect("jwks");
}

fn jwt_section(jwks_file: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[auth]
reload_interval_seconds = 1

[auth.jwt]
jwks_file = "{}"
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
{extra}
"#,
        jwks_file.display()
    )
}

fn local_section() -> &'static str {
    "[backend]\nkind = \"local\"\ndata_file = \"{dir}/data.json\"\n"
}

async fn get_with_bearer(ch: &Channel, token: &str, pool: &str) -> Result<(), tonic::Status> {
    let mut r = Request::new(pb::GetUserPoolMfaConfigRequest {
        user_pool_id: pool.into(),
    });
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    UserPoolMfaServiceClient::new(ch.clone())
        .get_user_pool_mfa_config(r)
        .await
        .map(|_| ())
}

fn check_config(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).expect("write");
    let out = std::process::Command::new(bin())
        .args(["check-config"])
        .arg(&path)
        .output()
        .expect("check-config");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_carry_their_proof_and_tokens_their_type() {
    let keys = tempfile::tempdir().expect("dir");
    let jwks = keys.path().join("jwks.json");
    let rsa = signer(Algorithm::RS256, "rsa-1");
    let mut enc = signer(Algorithm::RS256, "enc-1");
    enc.jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Encryption);
    let mut sign_only = signer(Algorithm::RS256, "ops-1");
    sign_only.jwk.common.key_operations = Some(vec![jsonwebtoken::jwk::KeyOperations::Sign]);
    let mut other_alg = signer(Algorithm::RS256, "alg-1");
    other_alg.jwk.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::RS512);
    write_jwks(&jwks, &[&rsa.jwk, &enc.jwk, &sign_only.jwk, &other_alg.jwk]);
    let rules = |proven_by: &str| {
        format!(
            r#"
[[policy.rules]]
principals = ["admin-svc"]
methods = ["*"]
user_pools = ["*"]
{proven_by}

[[policy.rules]]
principals = ["svc-jwt"]
methods = ["*"]
user_pools = ["*"]
proven_by = ["jwt"]
"#
        )
    };
    let jwt = jwt_section(
        &jwks,
        "allowed_types = [\"at+jwt\"]\nrequired_claims = { token_use = \"access\" }",
    );
    let config = format!(
        "{}{}{jwt}{}",
        local_section(),
        key_entry("admin-svc", ADMIN_KEY),
        rules("proven_by = [\"api_key\"]")
    );
    let served = Served::start(&config);
    let ch = served.channel().await;
    let pool = served.demo_pool();
    let mut c = Cases::default();
    let good = |sub: &str| sign_typ(&rsa, "at+jwt", &access_claims(sub));

    c.ok(
        "   the API key admin-svc",
        pools(&ch, ADMIN_KEY)
            .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
                user_pool_id: pool.clone(),
            })
            .await,
    );
    c.ok(
        "   a bearer token for svc-jwt",
        get_with_bearer(&ch, &good("svc-jwt"), &pool).await,
    );
    c.refused(
        "P1 a JWT with sub = admin-svc, rule proven_by = [\"api_key\"]",
        get_with_bearer(&ch, &good("admin-svc"), &pool).await,
        Code::PermissionDenied,
    );
    c.refused(
        "T1 typ JWT where allowed_types = [\"at+jwt\"]",
        get_with_bearer(
            &ch,
            &sign_typ(&rsa, "JWT", &access_claims("svc-jwt")),
            &pool,
        )
        .await,
        Code::Unauthenticated,
    );
    c.ok(
        "   typ application/at+jwt is at+jwt",
        get_with_bearer(
            &ch,
            &sign_typ(&rsa, "application/at+jwt", &access_claims("svc-jwt")),
            &pool,
        )
        .await,
    );
    let mut id_token = access_claims("svc-jwt");
    id_token["token_use"] = "id".into();
    c.refused(
        "T2 token_use = \"id\" where \"access\" is required",
        get_with_bearer(&ch, &sign_typ(&rsa, "at+jwt", &id_token), &pool).await,
        Code::Unauthenticated,
    );
    for (case, key) in [
        ("T3 a JWK with use = enc", &enc),
        ("T4 a JWK whose key_ops lack verify", &sign_only),
        (
            "T5 a JWK whose alg (RS512) is not the token's (RS256)",
            &other_alg,
        ),
    ] {
        let token = sign_typ(key, "at+jwt", &access_claims("svc-jwt"));
        c.refused(
            case,
            get_with_bearer(&ch, &token, &pool).await,
            Code::Unauthenticated,
        );
    }

    // K3: the IdP's keys become unreadable and the configuration reloads
    // (the JWKS file is watched): the last good set keeps verifying.
    std::fs::write(&jwks, "{ not a jwks").expect("corrupt");
    let before = served
        .logs()
        .iter()
        .filter(|l| l.text.contains("reloaded"))
        .count();
    wait_until("the reload", Duration::from_secs(10), || {
        served
            .logs()
            .iter()
            .filter(|l| l.text.contains("reloaded"))
            .count()
            > before
    });
    let after_reload = get_with_bearer(&ch, &good("svc-jwt"), &pool).await;
    let stale = served
        .metric("mfa_facade_jwks_stale_verifications_total", &[])
        .unwrap_or(0.0);
    c.check(
        "K3 a reload during a JWKS outage keeps the last good set",
        after_reload.is_ok() && stale >= 1.0,
        format!(
            "{:?}, {stale} stale verifications",
            after_reload.map_err(|s| s.message().to_owned())
        ),
    );

    // P4: check-config names the collision, and is quiet once prefixed or proven_by.
    let collide = format!(
        "{}{}{}{}",
        local_section().replace("{dir}", "/tmp"),
        key_entry("admin-svc", ADMIN_KEY),
        jwt_section(&keys.path().join("jwks.json"), ""),
        rules("")
    );
    let (ok, out) = check_config(&collide);
    let (ok_prefixed, out_prefixed) = check_config(
        &collide.replace("[auth.jwt]\n", "[auth.jwt]\nprincipal_prefix = \"oidc:\"\n"),
    );
    let (ok_proven, out_proven) = check_config(&config.replace("{dir}", "/tmp"));
    c.check(
        "P4 check-config warns of a key name a JWT can claim, and only then",
        ok && out.contains("warning: policy.rules[0].principals")
            && out.contains("\"admin-svc\"")
            && ok_prefixed
            && !out_prefixed.contains("warning")
            && ok_proven
            && !out_proven.contains("warning"),
        out.lines().next().unwrap_or("").to_owned(),
    );
    c.finish("principal and JWT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_the_three_proofs_apart_and_spiffe_ids_are_exact() {
    use rcgen::SanType;
    let files = tempfile::tempdir().expect("dir");
    let p = |name: &str| files.path().join(name);
    let ca = pki::ca("clients and server CA");
    let (server_cert, server_key) = pki::server(&ca);
    std::fs::write(p("ca.pem"), &ca.pem).expect("ca");
    std::fs::write(p("server.pem"), &server_cert).expect("cert");
    std::fs::write(p("server.key"), &server_key).expect("key");
    let rsa = signer(Algorithm::RS256, "rsa-1");
    write_jwks(&p("jwks.json"), &[&rsa.jwk]);
    let config = format!(
        r#"{local}{admin}{jwt}
[tls]
cert_file = "{cert}"
key_file = "{key}"
client_ca_file = "{ca}"
principal_prefix = "mtls:"

[[policy.rules]]
principals = ["admin-svc"]
methods = ["*"]
user_pools = ["*"]

[[policy.rules]]
principals = ["mtls:spiffe://example.org/ns/a/sa/api", "mtls:cn-client", "oidc:svc-jwt"]
methods = ["*"]
user_pools = ["*"]
"#,
        local = local_section(),
        admin = key_entry("admin-svc", ADMIN_KEY),
        jwt = jwt_section(&p("jwks.json"), "principal_prefix = \"oidc:\""),
        cert = p("server.pem").display(),
        key = p("server.key").display(),
        ca = p("ca.pem").display(),
    );
    let served = Served::start(&config);
    let pool = served.demo_pool();
    let client = |id: Option<(String, String)>| {
        let c = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.pem));
        match id {
            Some((cert, key)) => c.identity(Identity::from_pem(cert, key)),
            None => c,
        }
    };
    let call = |tls: ClientTlsConfig, bearer: Option<String>, key: Option<&'static str>| {
        let pool = pool.clone();
        let addr = served.addr;
        async move {
            let ch = common::tls_channel(addr, tls)
                .await
                .map_err(|e| tonic::Status::unavailable(format!("handshake: {e}")))?;
            let mut r = Request::new(pb::GetUserPoolMfaConfigRequest { user_pool_id: pool });
            if let Some(t) = bearer {
                r.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {t}").parse().expect("ascii"),
                );
            }
            if let Some(k) = key {
                r.metadata_mut()
                    .insert("x-api-key", k.parse().expect("ascii"));
            }
            UserPoolMfaServiceClient::new(ch)
                .get_user_pool_mfa_config(r)
                .await
                .map(|_| ())
        }
    };
    let token = |sub: &str| sign_typ(&rsa, "JWT", &access_claims(sub));
    let spiffe_a = "spiffe://example.org/ns/a/sa/api";
    let mut c = Cases::default();
    c.ok(
        "   the API key admin-svc over TLS",
        call(client(None), None, Some(ADMIN_KEY)).await,
    );
    c.ok(
        "   a bearer token for oidc:svc-jwt",
        call(client(None), Some(token("svc-jwt")), None).await,
    );
    c.ok(
        "   a certificate with one SPIFFE ID",
        call(
            client(Some(pki::leaf(&ca, "a", pki::spiffe(spiffe_a), false))),
            None,
            None,
        )
        .await,
    );
    c.ok(
        "   a certificate with a CN and no SAN",
        call(
            client(Some(pki::leaf(&ca, "cn-client", vec![], false))),
            None,
            None,
        )
        .await,
    );
    c.refused(
        "P2 a JWT with sub = admin-svc under principal_prefix oidc:",
        call(client(None), Some(token("admin-svc")), None).await,
        Code::PermissionDenied,
    );
    c.refused(
        "P3 a certificate with CN = admin-svc under [tls] principal_prefix mtls:",
        call(
            client(Some(pki::leaf(&ca, "admin-svc", vec![], false))),
            None,
            None,
        )
        .await,
        Code::PermissionDenied,
    );
    let mut two = pki::spiffe(spiffe_a);
    two.push(SanType::URI(
        "https://example.org/other".try_into().expect("uri"),
    ));
    c.refused(
        "M1 a SPIFFE ID beside a second URI SAN",
        call(client(Some(pki::leaf(&ca, "a", two, false))), None, None).await,
        Code::Unauthenticated,
    );
    c.refused(
        "M2 a CN on a certificate with a DNS SAN",
        call(
            client(Some(pki::leaf(
                &ca,
                "cn-client",
                vec![SanType::DnsName(
                    "cn-client.example.org".try_into().expect("dns"),
                )],
                false,
            ))),
            None,
            None,
        )
        .await,
        Code::Unauthenticated,
    );
    c.finish("mTLS and prefix");
}

// ---- K: the JWKS document and its fetches ----------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_is_bounded_fetched_once_for_many_and_only_from_loopback_or_https() {
    use std::sync::{Arc, Mutex};

    let mut c = Cases::default();
    // K1: look-alikes of a loopback URL.
    let base = |url: &str| {
        format!(
            "[auth.jwt]\njwks_url = \"{url}\"\nissuer = \"{ISSUER}\"\naudiences = [\"{AUDIENCE}\"]\n"
        )
    };
    let mut refused = 0;
    for url in [
        "http://localhost.evil.example/jwks",
        "http://127.0.0.1@evil.example/jwks",
        "http://127.0.0.1.nip.example/jwks",
    ] {
        let (ok, out) = check_config(&base(url));
        if !ok && out.contains("auth.jwt.jwks_url") {
            refused += 1;
        }
    }
    let (loopback_ok, _) = check_config(&base("http://127.0.0.1:8080/jwks"));
    c.check(
        "K1 three loopback look-alike jwks_urls refused (127.0.0.1 accepted)",
        refused == 3 && loopback_ok,
        format!("{refused} of 3 refused"),
    );

    // K2: a JWKS file over max_jwks_bytes.
    let keys = tempfile::tempdir().expect("dir");
    let rsa = signer(Algorithm::RS256, "rsa-1");
    let padded = keys.path().join("padded.json");
    let mut doc = serde_json::json!({ "keys": [&rsa.jwk] });
    doc["padding"] = "x".repeat(4096).into();
    std::fs::write(&padded, doc.to_string()).expect("padded");
    let served = Served::start(&format!(
        "{}{}{}",
        local_section(),
        key_entry("admin-svc", ADMIN_KEY),
        jwt_section(&padded, "max_jwks_bytes = 2048")
            + "\n[[policy.rules]]\nprincipals = [\"svc-jwt\"]\nmethods = [\"*\"]\nuser_pools = [\"*\"]\n"
    ));
    let ch = served.channel().await;
    let pool = served.demo_pool();
    let token = sign_typ(&rsa, "JWT", &access_claims("svc-jwt"));
    let r = get_with_bearer(&ch, &token, &pool).await;
    // Log lines reach stderr in batches (at most LOG_FLUSH_INTERVAL later).
    let logged = served
        .wait_log("larger than max_jwks_bytes", Duration::from_secs(2))
        .is_some();
    c.check(
        "K2 a JWKS over max_jwks_bytes is not read",
        r.as_ref().is_err_and(|s| s.code() == Code::Unauthenticated) && logged,
        format!(
            "{:?}, logged: {logged}",
            r.map_err(|s| s.message().to_owned())
        ),
    );
    drop(served);

    // K4: a JWKS server that answers slowly and counts its fetches.
    let rotated = signer(Algorithm::RS256, "rsa-2");
    let body = Arc::new(Mutex::new(
        serde_json::json!({ "keys": [&rsa.jwk] }).to_string(),
    ));
    let jwks = {
        let body = body.clone();
        common::stub::Stub::start(move |_, _| {
            common::stub::Reply::new(200, body.lock().expect("body").clone())
                .after(Duration::from_millis(300))
        })
        .await
    };
    let addr = jwks.url.trim_start_matches("http://").to_owned();
    let served = Served::start(&format!(
        r#"{local}{admin}
[auth.jwt]
jwks_url = "http://{addr}/jwks"
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
min_refetch_seconds = 1

[[policy.rules]]
principals = ["svc-jwt"]
methods = ["*"]
user_pools = ["*"]
"#,
        local = local_section(),
        admin = key_entry("admin-svc", ADMIN_KEY),
    ));
    let ch = served.channel().await;
    let pool = served.demo_pool();
    get_with_bearer(&ch, &token, &pool)
        .await
        .expect("the first key works");
    let fetched_at_start = jwks.count();
    *body.lock().expect("body") =
        serde_json::json!({ "keys": [&rsa.jwk, &rotated.jwk] }).to_string();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new_token = sign_typ(&rotated, "JWT", &access_claims("svc-jwt"));
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (ch, t, pool) = (ch.clone(), new_token.clone(), pool.clone());
            tokio::spawn(async move { get_with_bearer(&ch, &t, &pool).await })
        })
        .collect();
    let mut admitted = 0;
    for call in calls {
        if matches!(call.await, Ok(Ok(()))) {
            admitted += 1;
        }
    }
    let refetches = jwks.count() - fetched_at_start;
    c.check(
        "K4 16 concurrent callers with a new kid: one refetch, all admitted",
        admitted == 16 && refetches == 1,
        format!("{admitted} admitted, {refetches} refetch(es)"),
    );
    c.finish("JWKS");
}

// ---- U, E: budgets and edges ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_spend_their_own_budget_and_edges_hold() {
    let mut c = Cases::default();
    // U1: the quota guard on; an attacker with a grant on the pool sends
    // forged tokens that carry the victim's iss and sub.
    let served = Served::start(&format!(
        r#"{local}{admin}{attacker}
[[policy.rules]]
principals = ["admin", "attacker"]
methods = ["*"]
user_pools = ["*"]

[limits.default]
per_second = 1000
burst = 1000

[limits.quota]
enabled = true
"#,
        local = local_section(),
        admin = key_entry("admin", ADMIN_KEY),
        attacker = key_entry("attacker", ATTACKER_KEY),
    ));
    let ch = served.channel().await;
    let mut f = fixtures(&ch, ADMIN_KEY);
    let pool = pool_with_user(&mut f, "u", "victim").await;
    let token = f
        .issue_access_token(token_req(&pool, "victim"))
        .await
        .expect("token")
        .into_inner()
        .access_token;
    canary::secret(&token);
    let (head, sig) = token.rsplit_once('.').expect("a JWT");
    let forged = format!("{head}.{}", sig.chars().rev().collect::<String>());
    let pref = |t: &str| pb::SetUserMfaPreferenceRequest {
        access_token: t.into(),
        software_token_mfa_settings: None,
        sms_mfa_settings: Some(pb::SmsMfaSettings {
            enabled: Some(false),
            preferred_mfa: Some(false),
        }),
        ..Default::default()
    };
    let mut attacker = users(&ch, ATTACKER_KEY);
    let mut throttled = 0;
    for _ in 0..40 {
        if let Err(s) = attacker.set_user_mfa_preference(pref(&forged)).await
            && s.code() == Code::ResourceExhausted
        {
            throttled += 1;
        }
    }
    let victim = users(&ch, ADMIN_KEY)
        .set_user_mfa_preference(pref(&token))
        .await;
    c.check(
        "U1 40 forged tokens with the victim's iss and sub; the victim's own call",
        throttled > 0 && victim.is_ok(),
        format!(
            "{throttled} forged calls throttled; the victim: {:?}",
            victim.map(|_| ()).map_err(|s| s.code())
        ),
    );
    drop(served);

    // E1: Cognito at a closed loopback port.
    let (_closed_guard, closed) = closed_port();
    let served = Served::start_with_env(
        &format!(
            r#"
[backend]
kind = "cognito"
region = "us-east-1"
endpoint_url = "http://127.0.0.1:{closed}"
max_attempts = 1
connect_timeout_ms = 500
{admin}
[[policy.rules]]
principals = ["admin"]
methods = ["*"]
user_pools = ["*"]
"#,
            admin = key_entry("admin", ADMIN_KEY),
        ),
        &[
            ("AWS_ACCESS_KEY_ID", Some("AKIAFACADETEST")),
            ("AWS_SECRET_ACCESS_KEY", Some("facade-test-secret")),
            ("AWS_EC2_METADATA_DISABLED", Some("true")),
            ("AWS_PROFILE", None),
        ],
    );
    let ch = served.channel().await;
    let mut r = Request::new(pb::GetUserPoolMfaConfigRequest {
        user_pool_id: "us-east-1_Abc123".into(),
    });
    r.metadata_mut()
        .insert("x-request-id", "e1-unreachable".parse().expect("ascii"));
    let err = pools(&ch, ADMIN_KEY)
        .get_user_pool_mfa_config(r)
        .await
        .expect_err("unreachable");
    let logged = served
        .wait_log("e1-unreachable", Duration::from_secs(5))
        .filter(|l| l.text.contains("could not reach Cognito"));
    c.check(
        "E1 an unreachable Cognito: a fixed message, the detail in the log",
        err.code() == Code::Unavailable
            && err.message() == mfa_facade::backend::cognito::DISPATCH_FAILED
            && !err.message().contains(&closed.to_string())
            && logged.is_some(),
        err.message().to_owned(),
    );
    drop(served);

    // E3: rediss:// with a CA file, AUTH from files.
    let e3 = rediss_limits_work().await;
    c.check(
        "E3 rediss:// with a CA file and AUTH from files",
        e3.0,
        e3.1,
    );

    // E4: development mode on a non-loopback address.
    let dir = tempfile::tempdir().expect("dir");
    let mut child = std::process::Command::new(bin())
        .arg("serve")
        .env("MFA_FACADE_LISTEN", "0.0.0.0:0")
        .env("MFA_FACADE_METRICS_LISTEN", "127.0.0.1:0")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    // Bounded: a build that serves instead of refusing is killed after 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break Some(status),
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    c.check(
        "E4 development mode refuses a non-loopback listen address",
        status.and_then(|s| s.code()) == Some(2) && stderr.contains("not a loopback address"),
        match status {
            Some(s) => format!("exit {:?}", s.code()),
            None => "still serving after 10 s".to_owned(),
        },
    );
    c.finish("budget and edge");
}

/// A TLS-only redis-server with a password, and a facade whose limits
/// are decided in it: (whether the budget was enforced there, what was seen).
async fn rediss_limits_work() -> (bool, String) {
    let files = tempfile::tempdir().expect("dir");
    let p = |name: &str| files.path().join(name);
    let ca = pki::ca("redis CA");
    let (cert, key) = pki::server(&ca);
    std::fs::write(p("ca.pem"), &ca.pem).expect("ca");
    std::fs::write(p("redis.pem"), &cert).expect("cert");
    std::fs::write(p("redis.key"), &key).expect("key");
    std::fs::write(p("user"), "default\n").expect("user");
    std::fs::write(p("password"), "redis-pw-5c1e\n").expect("password");
    canary::secret("redis-pw-5c1e");
    let port = free_port();
    let mut redis = std::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-port", &port.to_string()])
        .arg("--tls-cert-file")
        .arg(p("redis.pem"))
        .arg("--tls-key-file")
        .arg(p("redis.key"))
        .arg("--tls-ca-cert-file")
        .arg(p("ca.pem"))
        .args(["--tls-auth-clients", "no", "--requirepass", "redis-pw-5c1e"])
        .arg("--dir")
        .arg(files.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server (scripts/test.sh installs it)");
    wait_until(
        "redis-server to listen on TLS",
        Duration::from_secs(10),
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    let served = Served::start(&format!(
        r#"{local}{admin}
[[policy.rules]]
principals = ["admin"]
methods = ["*"]
user_pools = ["*"]

[limits.default]
per_second = 0.001
burst = 2

[limits.redis]
url = "rediss://127.0.0.1:{port}/0"
ca_file = "{ca}"
username_file = "{user}"
password_file = "{password}"
key_prefix = "e3"
"#,
        local = local_section(),
        admin = key_entry("admin", ADMIN_KEY),
        ca = p("ca.pem").display(),
        user = p("user").display(),
        password = p("password").display(),
    ));
    let connected = served
        .wait_log("ratelimit_redis_connected", Duration::from_secs(10))
        .is_some();
    let ch = served.channel().await;
    let pool = served.demo_pool();
    let mut codes = Vec::new();
    for _ in 0..3 {
        let r = pools(&ch, ADMIN_KEY)
            .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
                user_pool_id: pool.clone(),
            })
            .await;
        codes.push(r.map(|_| Code::Ok).unwrap_or_else(|s| s.code()));
    }
    let keys = std::process::Command::new("redis-cli")
        .args(["--tls", "-p", &port.to_string(), "--cacert"])
        .arg(p("ca.pem"))
        .args(["--no-auth-warning", "-a", "redis-pw-5c1e", "dbsize"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let _ = redis.kill();
    let _ = redis.wait();
    (
        connected
            && codes == [Code::Ok, Code::Ok, Code::ResourceExhausted]
            && keys.parse::<u64>().is_ok_and(|n| n >= 1),
        format!("connected: {connected}, codes {codes:?}, {keys} keys in Redis"),
    )
}

/// K5, in process: the stale grace is a bound, not a promise. With
/// `max_stale_seconds = 1`, a set whose refreshes fail verifies for a
/// second and then no more; a good read restores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_good_jwks_expires_after_its_stale_grace() {
    use mfa_facade::auth::jwt::JwtVerifier;
    use mfa_facade::config::JwtConfig;
    let dir = tempfile::tempdir().expect("dir");
    let jwks = dir.path().join("jwks.json");
    let rsa = signer(Algorithm::RS256, "rsa-1");
    write_jwks(&jwks, &[&rsa.jwk]);
    let verifier = JwtVerifier::new(
        JwtConfig {
            jwks_file: Some(jwks.clone()),
            issuer: ISSUER.into(),
            audiences: vec![AUDIENCE.into()],
            max_stale_seconds: 1,
            ..JwtConfig::default()
        },
        None,
    )
    .await;
    let token = sign_typ(&rsa, "JWT", &access_claims("svc"));
    let mut c = Cases::default();
    std::fs::write(&jwks, "{ broken").expect("corrupt");
    let refreshed = verifier.refresh().await;
    let within = verifier.verify(&token).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let past = verifier.verify(&token).await;
    write_jwks(&jwks, &[&rsa.jwk]);
    let restored = verifier.refresh().await && verifier.verify(&token).await.is_ok();
    c.check(
        "K5 the last good JWKS verifies within max_stale_seconds, not past it",
        !refreshed && within.is_ok() && past.is_err_and(|e| e.contains("stale")) && restored,
        format!("within: {within:?}, restored: {restored}"),
    );
    c.finish("JWKS grace");
}

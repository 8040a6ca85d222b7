//! Rate limits through the real server: the GCRA math with a fake clock
//! (governor's and the Redis script's, step by step), the admitted rate
//! under 10x overload, two processes sharing one Redis, Redis killed and
//! hung mid-run, 100,000 principals, and the details of every refusal.
//!
//! Needs redis-server: scripts/test.sh installs it from Debian and starts
//! one, exported as MFA_FACADE_TEST_REDIS_URL; the tests that kill or stop
//! Redis start their own.

use crate::common;

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use common::procs::{Redis, Served, local_config, local_pool, shared_redis_url};
use common::{ApiKey, TEST_KEY};
use governor::clock::FakeRelativeClock;
use mfa_facade::{
    config::{LimitsConfig, RateConfig, RedisConfig},
    limits::{Bucket, Budgets, Fleet, LimitId, LocalLimits, key_of},
    method,
    proto::v1 as pb,
};
use tokio::task::JoinSet;
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

const GET: &str = method::GET_USER_POOL_MFA_CONFIG.name;

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

fn redis_config(url: &str, prefix: &str) -> RedisConfig {
    RedisConfig {
        url: url.into(),
        timeout_ms: 50,
        pool_size: 2,
        key_prefix: prefix.into(),
        probe_interval_ms: 250,
        fallback_share: 1.0,
        ca_file: None,
        username_file: None,
        password_file: None,
    }
}

fn budgets(per_second: f64, burst: u32) -> Arc<Budgets> {
    let c = LimitsConfig {
        default: RateConfig { per_second, burst },
        ..LimitsConfig::default()
    };
    Arc::new(Budgets::new(&c, false))
}

fn caller(principal: &str) -> Bucket {
    Bucket {
        id: LimitId::Caller(GET),
        key: key_of(&[principal]),
    }
}

// ---- the math, with a fake clock ------------------------------------------

#[tokio::test]
async fn the_redis_script_is_gcra_with_a_fake_clock() {
    let fleet = Fleet::start(
        &redis_config(&shared_redis_url(), &unique("math")),
        budgets(10.0, 3),
    )
    .await;
    assert!(fleet.healthy(), "the test Redis answers");
    let t0: u64 = 1_000_000_000_000;
    let a = [caller("a")];
    let at = |t: u64| {
        let fleet = fleet.clone();
        async move { fleet.decide_at(&a, Some(t)).await.expect("redis") }
    };
    for _ in 0..3 {
        assert!(at(t0).await.is_ok(), "the burst");
    }
    let refused = at(t0).await.expect_err("the burst is spent");
    assert_eq!(refused.retry_after, Duration::from_millis(100));
    assert_eq!(refused.id, LimitId::Caller(GET));
    assert_eq!(
        at(t0 + 99_999).await.expect_err("1 us early").retry_after,
        Duration::from_micros(1)
    );
    assert!(at(t0 + 100_000).await.is_ok(), "one cell per 100 ms");
    assert!(at(t0 + 100_000).await.is_err());

    // All or nothing: a refusal by one bucket charges none of the others.
    let fresh = caller("fresh");
    let both = [fresh, caller("a")];
    let refused = fleet
        .decide_at(&both, Some(t0 + 100_000))
        .await
        .expect("redis")
        .expect_err("a is empty");
    assert_eq!(refused.retry_after, Duration::from_millis(100));
    for _ in 0..3 {
        assert!(
            fleet
                .decide_at(&[fresh], Some(t0 + 100_000))
                .await
                .expect("redis")
                .is_ok(),
            "fresh kept its whole burst"
        );
    }
}

#[tokio::test]
async fn governor_and_the_redis_script_admit_the_same_calls() {
    // 5 s of fake time, a call offered every millisecond (100x the rate):
    // both limiters admit at exactly the same instants, and no one-second
    // window anywhere holds more than burst + rate (no fixed-window edge).
    let budgets = budgets(20.0, 4);
    let fleet = Fleet::start(
        &redis_config(&shared_redis_url(), &unique("same")),
        budgets.clone(),
    )
    .await;
    let clock = FakeRelativeClock::default();
    let local = LocalLimits::with_clock(&budgets, 1.0, clock.clone());
    let t0: u64 = 2_000_000_000_000;
    let b = [caller("x")];
    let (mut by_redis, mut by_governor) = (Vec::new(), Vec::new());
    for ms in 0..5_000u64 {
        if fleet
            .decide_at(&b, Some(t0 + ms * 1000))
            .await
            .expect("redis")
            .is_ok()
        {
            by_redis.push(ms);
        }
        if local.check(&b).is_ok() {
            by_governor.push(ms);
        }
        clock.advance(Duration::from_millis(1));
    }
    assert_eq!(by_redis, by_governor);
    // The burst at 0 ms, then one per 50 ms: 50, 100, ..., 4950.
    assert_eq!(by_redis.len(), 4 + 99);
    for (i, start) in by_redis.iter().enumerate() {
        let n = by_redis[i..]
            .iter()
            .take_while(|t| **t < start + 1000)
            .count();
        assert!(n <= 24, "{n} in the second from {start} ms");
    }
}

// ---- load through the real server ------------------------------------------

fn config(per_second: f64, burst: u32, extra: &str) -> String {
    local_config("load", per_second, burst, extra)
}

/// What an offered load got back.
#[derive(Default)]
struct Outcome {
    ok: u64,
    exhausted: u64,
    /// Any other code, with its message.
    other: Vec<(Code, String)>,
    /// Refusals without RetryInfo or a valid pushback trailer.
    bad_refusals: Vec<String>,
    /// (end time, code) of every call.
    ends: Vec<(Instant, Code)>,
    max_latency: Duration,
    /// The span in which admissions were decided: from the first call sent
    /// to the later of the last call sent and the last admitted call's
    /// answer. A server that fell behind decides some calls after the
    /// offer ended; counting them against the offer's span alone would
    /// read as admitting more than the budget.
    elapsed: Duration,
}

impl Outcome {
    fn merge(&mut self, o: Outcome) {
        self.ok += o.ok;
        self.exhausted += o.exhausted;
        self.other.extend(o.other);
        self.bad_refusals.extend(o.bad_refusals);
        self.ends.extend(o.ends);
        self.max_latency = self.max_latency.max(o.max_latency);
        self.elapsed = self.elapsed.max(o.elapsed);
    }

    /// Admitted calls per second beyond the initial burst.
    fn admitted_rate(&self, burst: u32) -> f64 {
        (self.ok as f64 - f64::from(burst)) / self.elapsed.as_secs_f64()
    }
}

/// Checks a refusal's details: RetryInfo and the pushback trailer.
fn refusal_problem(status: &tonic::Status) -> Option<String> {
    let delay = status.get_details_retry_info().and_then(|r| r.retry_delay);
    let pushback = status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match (delay, pushback) {
        (Some(d), Some(ms)) if !d.is_zero() && ms >= 1 && ms as u128 >= d.as_millis() => None,
        _ => Some(format!(
            "retry info {delay:?}, pushback {pushback:?}: {}",
            status.message()
        )),
    }
}

/// Offers `per_second` GetUserPoolMfaConfig calls for `duration`, open
/// loop: each call on a task of its own, so slow answers do not slow the
/// offer. Bounded: exactly per_second * duration calls, each with a 5 s
/// deadline.
async fn offer(channel: Channel, pool: String, per_second: u32, duration: Duration) -> Outcome {
    let total = (f64::from(per_second) * duration.as_secs_f64()) as u64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(per_second)));
    let client = pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
        channel,
        ApiKey::new(TEST_KEY),
    );
    let started = Instant::now();
    let mut calls = JoinSet::new();
    for _ in 0..total {
        tick.tick().await;
        let mut client = client.clone();
        let pool = pool.clone();
        calls.spawn(async move {
            let sent = Instant::now();
            let mut request =
                tonic::Request::new(pb::GetUserPoolMfaConfigRequest { user_pool_id: pool });
            request.set_timeout(Duration::from_secs(5));
            let result = client.get_user_pool_mfa_config(request).await;
            (sent.elapsed(), Instant::now(), result.map(|_| ()))
        });
    }
    let offered_for = started.elapsed();
    let mut out = Outcome::default();
    while let Some(done) = calls.join_next().await {
        let (latency, end, result) = done.expect("call task");
        out.max_latency = out.max_latency.max(latency);
        let code = match result {
            Ok(()) => {
                out.ok += 1;
                Code::Ok
            }
            Err(status) if status.code() == Code::ResourceExhausted => {
                out.exhausted += 1;
                if let Some(p) = refusal_problem(&status) {
                    out.bad_refusals.push(p);
                }
                Code::ResourceExhausted
            }
            Err(status) => {
                out.other.push((status.code(), status.message().to_owned()));
                status.code()
            }
        };
        out.ends.push((end, code));
    }
    let last_admitted = out
        .ends
        .iter()
        .filter(|(_, code)| *code == Code::Ok)
        .map(|(end, _)| end.duration_since(started))
        .max()
        .unwrap_or_default();
    out.elapsed = offered_for.max(last_admitted);
    out
}

fn assert_within_10_percent(what: &str, measured: f64, configured: f64) {
    let ratio = measured / configured;
    println!("{what}: admitted {measured:.1}/s for {configured}/s configured (ratio {ratio:.3})");
    assert!(
        (0.9..=1.1).contains(&ratio),
        "{what}: admitted {measured:.1}/s, configured {configured}/s"
    );
}

fn assert_clean(what: &str, o: &Outcome) {
    assert!(
        o.other.is_empty(),
        "{what}: other codes: {:?}",
        &o.other[..o.other.len().min(5)]
    );
    assert!(
        o.bad_refusals.is_empty(),
        "{what}: refusals without RetryInfo/pushback: {:?}",
        &o.bad_refusals[..o.bad_refusals.len().min(5)]
    );
    assert!(o.exhausted > 0, "{what}: an overload was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_limits_admit_the_configured_rate_under_10x_overload() {
    let served = Served::start(&config(40.0, 4, ""));
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let o = offer(ch, pool, 400, Duration::from_secs(3)).await;
    assert_clean("local", &o);
    assert_within_10_percent("local, 10x overload", o.admitted_rate(4), 40.0);
    // Refusals are counted, by method and budget.
    let counted = served
        .metric(
            "mfa_facade_rate_limited_total",
            &["limit=\"caller:GetUserPoolMfaConfig\""],
        )
        .expect("the refusal counter");
    assert_eq!(counted as u64, o.exhausted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_limits_admit_the_configured_rate_under_10x_overload() {
    let redis = format!(
        "[limits.redis]\nurl = \"{}\"\nkey_prefix = \"{}\"\n",
        shared_redis_url(),
        unique("overload")
    );
    let served = Served::start(&config(40.0, 4, &redis));
    assert!(
        served
            .wait_log("ratelimit_redis_connected", Duration::from_secs(5))
            .is_some(),
        "connected to Redis"
    );
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let o = offer(ch, pool, 400, Duration::from_secs(3)).await;
    assert_clean("fleet", &o);
    assert_within_10_percent("fleet, 10x overload", o.admitted_rate(4), 40.0);
    assert_eq!(
        served.metric("mfa_facade_ratelimit_redis_fallback", &[]),
        Some(0.0),
        "decided in Redis throughout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_redis_admit_the_total_not_twice_it() {
    let redis = format!(
        // The longest timeout allowed: this test is about the shared
        // budget; redis_killed_mid_run tests the fallback.
        "[limits.redis]\nurl = \"{}\"\nkey_prefix = \"{}\"\ntimeout_ms = 50\n",
        shared_redis_url(),
        unique("two")
    );
    let a = Served::start(&config(30.0, 3, &redis));
    let b = Served::start(&config(30.0, 3, &redis));
    for s in [&a, &b] {
        assert!(
            s.wait_log("ratelimit_redis_connected", Duration::from_secs(5))
                .is_some()
        );
    }
    let (ca, cb) = (a.channel().await, b.channel().await);
    let (pa, pb_) = (local_pool(&ca, None).await, local_pool(&cb, None).await);
    // Each replica is offered 10x the budget, at the same time.
    let (oa, ob) = tokio::join!(
        offer(ca, pa, 300, Duration::from_secs(3)),
        offer(cb, pb_, 300, Duration::from_secs(3))
    );
    let fell_back = |s: &Served| {
        s.metric("mfa_facade_ratelimit_redis_fallbacks_total", &[])
            .unwrap_or(0.0)
    };
    println!(
        "replica A admitted {} in {:.3} s, replica B admitted {} in {:.3} s; fallbacks to local limits: A {}, B {}",
        oa.ok,
        oa.elapsed.as_secs_f64(),
        ob.ok,
        ob.elapsed.as_secs_f64(),
        fell_back(&a),
        fell_back(&b)
    );
    // A replica that lost Redis decides alone (fallback_share 1.0): then
    // this test would measure the fallback, not the shared budget.
    assert_eq!(
        (fell_back(&a), fell_back(&b)),
        (0.0, 0.0),
        "a replica fell back to local limits (Redis answered later than timeout_ms)"
    );
    assert!(oa.ok > 0 && ob.ok > 0, "both replicas serve");
    let mut all = Outcome::default();
    all.merge(oa);
    all.merge(ob);
    assert_clean("two replicas", &all);
    assert_within_10_percent("two replicas, one budget", all.admitted_rate(3), 30.0);
}

fn fleet_config(redis: &Redis, per_second: f64, burst: u32) -> String {
    config(
        per_second,
        burst,
        &format!(
            "[limits.redis]\nurl = \"{}\"\ntimeout_ms = 25\nprobe_interval_ms = 100\n",
            redis.url()
        ),
    )
}

/// The time from `since` to the log line saying limits fell back.
fn fallback_after(served: &Served, since: SystemTime) -> Duration {
    let line = served
        .wait_log("\"event\":\"ratelimit_fallback\"", Duration::from_secs(5))
        .expect("a log line says the limits fell back");
    let logged = line
        .text
        .split("\"timestamp\":\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .unwrap_or(line.at);
    logged.duration_since(since).unwrap_or(Duration::ZERO)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_falls_back_to_local_limits_and_recovers() {
    let mut redis = Redis::start();
    let served = Served::start(&fleet_config(&redis, 50.0, 5));
    assert!(
        served
            .wait_log("ratelimit_redis_connected", Duration::from_secs(5))
            .is_some()
    );
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let load = tokio::spawn(offer(ch, pool, 300, Duration::from_secs(3)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed_at = SystemTime::now();
    let killed = Instant::now();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    redis.restart();
    let o = load.await.expect("load");
    let fallback = fallback_after(&served, killed_at);
    println!(
        "SIGKILL: on local limits {:.1} ms after the kill; slowest call {:.1} ms; {} OK, {} RESOURCE_EXHAUSTED",
        fallback.as_secs_f64() * 1e3,
        o.max_latency.as_secs_f64() * 1e3,
        o.ok,
        o.exhausted
    );
    assert_clean("redis killed", &o);
    assert!(
        fallback <= Duration::from_millis(50),
        "fell back after {fallback:?}"
    );
    // While Redis was away the limits still held: not fail-open.
    let window = |from: Duration, to: Duration| {
        o.ends
            .iter()
            .filter(|(t, _)| *t >= killed + from && *t < killed + to)
            .fold((0, 0), |(ok, ex), (_, c)| match c {
                Code::Ok => (ok + 1, ex),
                _ => (ok, ex + 1),
            })
    };
    let (ok, refused) = window(Duration::from_millis(100), Duration::from_millis(1100));
    println!("in the second after the kill: {ok} OK, {refused} refused");
    assert!(
        refused > 0 && ok <= 50 + 5 + 5,
        "{ok} admitted in 1 s on local limits"
    );
    assert!(
        served
            .wait_log("ratelimit_redis_restored", Duration::from_secs(5))
            .is_some(),
        "back on Redis by itself"
    );
    assert_eq!(
        served.metric("mfa_facade_ratelimit_redis_fallback", &[]),
        Some(0.0)
    );
    assert!(served.metric("mfa_facade_ratelimit_redis_fallbacks_total", &[]) >= Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_costs_one_decision_timeout_then_local_limits() {
    let redis = Redis::start();
    let served = Served::start(&fleet_config(&redis, 50.0, 5));
    assert!(
        served
            .wait_log("ratelimit_redis_connected", Duration::from_secs(5))
            .is_some()
    );
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let load = tokio::spawn(offer(ch, pool, 300, Duration::from_secs(2)));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let paused_at = SystemTime::now();
    redis.pause();
    tokio::time::sleep(Duration::from_millis(800)).await;
    redis.resume();
    let o = load.await.expect("load");
    let fallback = fallback_after(&served, paused_at);
    println!(
        "SIGSTOP: on local limits {:.1} ms after Redis hung (decision timeout 25 ms); slowest call {:.1} ms",
        fallback.as_secs_f64() * 1e3,
        o.max_latency.as_secs_f64() * 1e3
    );
    assert_clean("redis hung", &o);
    assert!(
        fallback <= Duration::from_millis(50),
        "fell back after {fallback:?}"
    );
    assert!(
        served
            .wait_log("ratelimit_redis_restored", Duration::from_secs(5))
            .is_some(),
        "back on Redis by itself"
    );
}

// ---- the quota guard -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_guard_holds_each_pool_to_cognitos_limit() {
    // The caller's own budget is generous; Cognito's 5/s per operation per
    // pool is what refuses, and says so.
    let served = Served::start(&config(1000.0, 1000, "[limits.quota]\nenabled = true\n"));
    let ch = served.channel().await;
    let (p1, p2) = (local_pool(&ch, None).await, local_pool(&ch, None).await);
    let (o1, o2) = tokio::join!(
        offer(ch.clone(), p1, 50, Duration::from_secs(2)),
        offer(ch.clone(), p2, 50, Duration::from_secs(2))
    );
    for (name, o) in [("pool 1", &o1), ("pool 2", &o2)] {
        assert_clean(name, o);
        // burst 5, then 5/s: 15 in 2 s, give or take the edges.
        assert!((13..=17).contains(&o.ok), "{name}: {} admitted", o.ok);
    }
    let counted = served
        .metric(
            "mfa_facade_rate_limited_total",
            &["limit=\"cognito_pool:GetUserPoolMfaConfig\""],
        )
        .unwrap_or(0.0);
    assert_eq!(counted as u64, o1.exhausted + o2.exhausted);

    // A refusal names Cognito's budget, in QuotaFailure and ErrorInfo.
    let mut pools = pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
        ch.clone(),
        ApiKey::new(TEST_KEY),
    );
    let p3 = local_pool(&ch, None).await;
    let mut refusal = None;
    for _ in 0..20 {
        if let Err(e) = pools
            .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
                user_pool_id: p3.clone(),
            })
            .await
        {
            refusal = Some(e);
            break;
        }
    }
    let refusal = refusal.expect("the 6th call within a second is refused");
    assert_eq!(refusal.code(), Code::ResourceExhausted);
    assert_eq!(refusal_problem(&refusal), None);
    let quota = refusal.get_details_quota_failure().expect("QuotaFailure");
    assert_eq!(
        quota.violations[0].subject,
        "cognito_pool:GetUserPoolMfaConfig"
    );
    assert!(
        quota.violations[0].description.contains("per user pool"),
        "{}",
        quota.violations[0].description
    );
    assert_eq!(
        refusal.get_details_error_info().map(|i| i.reason),
        Some("RATE_LIMITED".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_guard_holds_each_end_user_to_ten_writes_a_second() {
    let served = Served::start(&config(
        1000.0,
        1000,
        "[limits.quota]
enabled = true
",
    ));
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let users = pb::user_mfa_service_client::UserMfaServiceClient::with_interceptor(
        ch,
        ApiKey::new(TEST_KEY),
    );
    let set = |username: &'static str| {
        let pool = pool.clone();
        let mut users = users.clone();
        async move {
            users
                .admin_set_user_mfa_preference(pb::AdminSetUserMfaPreferenceRequest {
                    user_pool_id: pool,
                    username: username.into(),
                    ..Default::default()
                })
                .await
        }
    };
    let mut codes = Vec::new();
    for _ in 0..15 {
        codes.push(
            set("alice")
                .await
                .map(|_| Code::Ok)
                .unwrap_or_else(|e| e.code()),
        );
    }
    // 10 reach the backend (which answers NOT_FOUND: alice does not
    // exist), then Cognito's per-user write limit refuses.
    let refused = codes
        .iter()
        .filter(|c| **c == Code::ResourceExhausted)
        .count();
    assert!((4..=5).contains(&refused), "{codes:?}");
    let last = set("alice").await.expect_err("still over");
    assert_eq!(last.code(), Code::ResourceExhausted);
    assert_eq!(
        last.get_details_quota_failure()
            .map(|q| q.violations[0].subject.clone()),
        Some("cognito_user:write".to_owned())
    );
    // Another user has a budget of their own.
    assert_eq!(set("bob").await.expect_err("no bob").code(), Code::NotFound);
}

// ---- memory ----------------------------------------------------------------

mod principals {
    use super::*;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    pub struct Issuer {
        key: EncodingKey,
        pub jwk: serde_json::Value,
    }

    /// An Ed25519 key: signing is cheap, so 100,000 tokens take seconds.
    pub fn issuer() -> Issuer {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519 key");
        let key = EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes()).expect("key");
        let jwk = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": "load",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key_raw()),
        });
        Issuer { key, jwk }
    }

    pub fn token(issuer: &Issuer, sub: &str) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("load".into());
        let now = common::now() as i64;
        let claims = serde_json::json!({
            "iss": "https://issuer.test", "aud": "mfa-facade", "sub": sub,
            "iat": now, "exp": now + 3600,
        });
        jsonwebtoken::encode(&header, &claims, &issuer.key).expect("sign")
    }
}

/// Calls once as each of `subs`, 32 at a time. Each call is refused by
/// validation after spending its caller's bucket: cheap, and keyed.
async fn call_as_each(channel: &Channel, tokens: Vec<String>) -> u64 {
    let client = pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::new(channel.clone());
    let tokens = Arc::new(std::sync::Mutex::new(tokens));
    let mut workers = JoinSet::new();
    for _ in 0..32 {
        let mut client = client.clone();
        let tokens = tokens.clone();
        workers.spawn(async move {
            let mut calls = 0u64;
            loop {
                let Some(token) = tokens.lock().expect("tokens").pop() else {
                    return calls;
                };
                let mut request = tonic::Request::new(pb::GetUserPoolMfaConfigRequest {
                    user_pool_id: "not a pool id".into(),
                });
                request.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {token}").parse().expect("header"),
                );
                let status = client
                    .get_user_pool_mfa_config(request)
                    .await
                    .expect_err("invalid pool id");
                assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
                calls += 1;
            }
        });
    }
    let mut total = 0;
    while let Some(n) = workers.join_next().await {
        total += n.expect("worker");
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_principals_leave_memory_bounded() {
    let issuer = principals::issuer();
    let dir = tempfile::tempdir().expect("dir");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::json!({ "keys": [&issuer.jwk] }).to_string(),
    )
    .expect("jwks");
    let served = Served::start(&format!(
        r#"
[backend]
kind = "local"
data_file = "{{dir}}/data.json"

[auth.jwt]
jwks_file = "{jwks}"
issuer = "https://issuer.test"
audiences = ["mfa-facade"]
algorithms = ["EdDSA"]

[[policy.rules]]
principals = ["svc-*"]
methods = ["*"]
user_pools = ["*"]

[limits]
sweep_interval_seconds = 1
"#,
        jwks = jwks.display()
    ));
    let ch = served.channel().await;
    let keys = || {
        served
            .metric("mfa_facade_ratelimit_keys", &[])
            .unwrap_or(-1.0)
    };
    let mut rss = Vec::new();
    let started = Instant::now();
    for round in 0..2 {
        let t = Instant::now();
        let tokens: Vec<String> = (0..50_000)
            .map(|i| principals::token(&issuer, &format!("svc-{round}-{i}")))
            .collect();
        let signed = t.elapsed();
        common::procs::canary::secret(&tokens[0]);
        let calls = call_as_each(&ch, tokens).await;
        println!(
            "round {round}: 50,000 tokens signed in {:.1} s, called in {:.1} s",
            signed.as_secs_f64(),
            (t.elapsed() - signed).as_secs_f64()
        );
        assert_eq!(calls, 50_000);
        // Idle keys go at the next sweeps (every second).
        crate::common::wait::until_async("no keys held", Duration::from_secs(10), || async {
            (keys() == 0.0).then_some(())
        })
        .await;
        rss.push(served.rss_kib());
    }
    println!(
        "100,000 distinct principals in {:.1} s: RSS {} KiB after the first 50,000, {} KiB after the next 50,000; 0 keys held after each sweep",
        started.elapsed().as_secs_f64(),
        rss[0],
        rss[1]
    );
    // The second 50,000 reuse the memory of the first: no growth beyond
    // allocator noise.
    assert!(
        rss[1] <= rss[0] + rss[0] / 10 + 4096,
        "RSS grew from {} to {} KiB",
        rss[0],
        rss[1]
    );
}

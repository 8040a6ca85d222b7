//! Operability through the real binary: health follows readiness and
//! draining, /metrics counts calls by method and code (from headers and
//! trailers alike), JSON logs carry the call's fields, SIGTERM under load
//! loses no in-flight call, and a Python grpcio client runs a whole
//! scenario from stubs generated from proto/.

use crate::common;

use std::{
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::procs::{Served, connect, local_config, local_pool};
use common::{ApiKey, TEST_KEY};
use mfa_facade::proto::v1 as pb;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

fn config(extra: &str) -> String {
    local_config("ops", 100_000.0, 100_000, extra)
}

async fn health(addr: &str, service: &str) -> Result<ServingStatus, tonic::Status> {
    let mut h = HealthClient::new(connect(addr).await);
    h.check(HealthCheckRequest {
        service: service.into(),
    })
    .await
    .map(|r| ServingStatus::try_from(r.into_inner().status).unwrap_or(ServingStatus::Unknown))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_serving_per_service_once_ready() {
    let served = Served::start(&config(""));
    let addr = served.addr.to_string();
    for service in [
        "",
        "cognito.mfa.v1.UserPoolMfaService",
        "cognito.mfa.v1.UserMfaService",
    ] {
        crate::common::wait::until_async(
            &format!("{service:?} to be SERVING"),
            Duration::from_secs(5),
            || async {
                (health(&addr, service).await.ok() == Some(ServingStatus::Serving)).then_some(())
            },
        )
        .await;
    }
    assert!(
        served
            .wait_log("\"event\":\"ready\"", Duration::from_secs(1))
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_stays_not_serving_while_the_backend_cannot_be_used() {
    // The cognito backend with no AWS credentials anywhere: not ready.
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("none");
    let served = Served::start_with_env(
        &config("").replace(
            "kind = \"local\"",
            "kind = \"cognito\"\nendpoint_url = \"http://127.0.0.1:9\"",
        ),
        &[
            ("AWS_ACCESS_KEY_ID", None),
            ("AWS_SECRET_ACCESS_KEY", None),
            ("AWS_SESSION_TOKEN", None),
            ("AWS_PROFILE", None),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", None),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", None),
            ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", None),
            ("AWS_EC2_METADATA_DISABLED", Some("true")),
            (
                "AWS_CONFIG_FILE",
                Some(missing.to_str().unwrap_or("/nonexistent")),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                Some(missing.to_str().unwrap_or("/nonexistent")),
            ),
        ],
    );
    let addr = served.addr.to_string();
    assert!(
        served
            .wait_log("\"event\":\"not_ready\"", Duration::from_secs(15))
            .is_some(),
        "says why it is not ready"
    );
    for service in [
        "",
        "cognito.mfa.v1.UserPoolMfaService",
        "cognito.mfa.v1.UserMfaService",
    ] {
        assert_eq!(
            health(&addr, service).await.ok(),
            Some(ServingStatus::NotServing),
            "{service:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_by_method_and_code_and_logs_carry_the_call() {
    let served = Served::start(&config(""));
    let ch = served.channel().await;
    let pool = local_pool(&ch, Some("ops-user")).await;
    let get = "cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig";
    let count = |code: &str| {
        served
            .metric(
                "mfa_facade_grpc_calls_total",
                &[&format!("method=\"{get}\""), &format!("code=\"{code}\"")],
            )
            .unwrap_or(0.0)
    };
    let (ok0, invalid0, unauth0) = (
        count("OK"),
        count("INVALID_ARGUMENT"),
        count("UNAUTHENTICATED"),
    );
    let mut pools = pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::with_interceptor(
        ch.clone(),
        ApiKey::new(TEST_KEY),
    );
    for i in 0..3 {
        let mut r = tonic::Request::new(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
        });
        r.metadata_mut().insert(
            "x-request-id",
            format!("ops-log-{i}").parse().expect("ascii"),
        );
        let response = pools.get_user_pool_mfa_config(r).await.expect("get");
        assert_eq!(
            response
                .metadata()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
            Some(format!("ops-log-{i}").as_str()),
            "x-request-id is echoed"
        );
    }
    let invalid = pools
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: "nope".into(),
        })
        .await
        .expect_err("invalid");
    let generated = invalid
        .metadata()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("a request id is made when none is sent");
    let mut anonymous = pb::user_pool_mfa_service_client::UserPoolMfaServiceClient::new(ch.clone());
    let refused = anonymous
        .get_user_pool_mfa_config(pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
        })
        .await
        .expect_err("no key");
    assert_eq!(refused.code(), Code::Unauthenticated);

    // OK travels in trailers; INVALID_ARGUMENT and UNAUTHENTICATED in
    // trailers-only headers: all are counted.
    assert_eq!(count("OK") - ok0, 3.0);
    assert_eq!(count("INVALID_ARGUMENT") - invalid0, 1.0);
    assert_eq!(count("UNAUTHENTICATED") - unauth0, 1.0);
    let text = served.metrics();
    for family in [
        "mfa_facade_grpc_server_seconds",
        "mfa_facade_upstream_seconds",
    ] {
        // Buckets, which a fleet's replicas add up; summaries they cannot.
        assert!(
            text.contains(&format!("# TYPE {family} histogram"))
                && text.contains(&format!("{family}_bucket{{"))
                && text.contains("le=\"0.0005\"")
                && text.contains("le=\"+Inf\""),
            "{family} in\n{text}"
        );
    }

    // JSON logs: request id, method, principal, code and latency per call.
    let line = served
        .wait_log("\"request_id\":\"ops-log-1\"", Duration::from_secs(2))
        .expect("the call's log line");
    let v: serde_json::Value = serde_json::from_str(&line.text).expect("JSON log");
    assert_eq!(v["method"], get);
    assert_eq!(v["principal"], "ops");
    assert_eq!(v["code"], "OK");
    assert!(v["latency_ms"].is_number(), "{v}");
    let line = served
        .wait_log(
            &format!("\"request_id\":\"{generated}\""),
            Duration::from_secs(2),
        )
        .expect("the generated id is logged");
    assert!(
        line.text.contains("\"code\":\"INVALID_ARGUMENT\""),
        "{}",
        line.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_every_in_flight_call() {
    let mut served = Served::start(&config("[server]\ndrain_delay_ms = 400\n"));
    let addr = served.addr.to_string();
    let ch = served.channel().await;
    let pool = local_pool(&ch, Some("ops-user")).await;
    let users = pb::user_mfa_service_client::UserMfaServiceClient::with_interceptor(
        ch.clone(),
        ApiKey::new(TEST_KEY),
    );
    let terminated = Arc::new(AtomicBool::new(false));
    let before = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    // Bounded: 16 workers, at most 200 writes each, stopping at the first
    // refusal after SIGTERM.
    for w in 0..16 {
        let (mut users, pool, terminated, before) = (
            users.clone(),
            pool.clone(),
            terminated.clone(),
            before.clone(),
        );
        workers.spawn(async move {
            let mut failures_before = Vec::new();
            for i in 0..200 {
                let started_before = !terminated.load(Ordering::SeqCst);
                let r = users
                    .admin_set_user_mfa_preference(pb::AdminSetUserMfaPreferenceRequest {
                        user_pool_id: pool.clone(),
                        username: "ops-user".into(),
                        sms_mfa_settings: Some(pb::SmsMfaSettings {
                            enabled: Some(true),
                            preferred_mfa: Some((w + i) % 2 == 0),
                        }),
                        ..Default::default()
                    })
                    .await;
                match r {
                    Ok(_) if started_before => {
                        before.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(e) if started_before => failures_before.push(e.code()),
                    Err(_) => return failures_before,
                }
            }
            failures_before
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    terminated.store(true, Ordering::SeqCst);
    let pid = served.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    // During the drain delay health says NOT_SERVING.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        health(&addr, "").await.ok(),
        Some(ServingStatus::NotServing)
    );
    let mut failures = Vec::new();
    while let Some(w) = workers.join_next().await {
        failures.extend(w.expect("worker"));
    }
    let status = served.terminate();
    println!(
        "SIGTERM under load: {} writes started before it, all answered; {} failed; exit {status}",
        before.load(Ordering::SeqCst),
        failures.len()
    );
    assert!(before.load(Ordering::SeqCst) > 0);
    assert!(failures.is_empty(), "in-flight calls failed: {failures:?}");
    assert!(status.success(), "exit 0 after draining");
    assert!(
        served
            .wait_log("\"event\":\"draining\"", Duration::from_secs(1))
            .is_some()
    );
}

/// Runs a client scenario (`program script HOST:PORT KEY`) against a served
/// local backend; it must end with `{ok}`.
fn run_scenario(program: &str, script: &str, installs: &str, ok: &str) {
    let served = Served::start(&config(""));
    let out = Command::new(program)
        .arg(format!("{}/{script}", env!("CARGO_MANIFEST_DIR")))
        .arg(served.addr.to_string())
        .arg(TEST_KEY)
        .output()
        .unwrap_or_else(|e| panic!("{program} is required ({e})"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{script} failed (scripts/test.sh installs {installs}):\n{text}"
    );
    println!("{}", text.trim());
    assert!(text.contains(ok), "{text}");
}

#[test]
fn a_python_grpcio_client_runs_the_whole_scenario() {
    run_scenario(
        "python3",
        "tests/python/scenario.py",
        "grpcio and grpcio-tools",
        "python scenario OK",
    );
}

#[test]
fn a_node_grpc_js_client_runs_the_whole_scenario() {
    run_scenario(
        "node",
        "tests/node/scenario.js",
        "@grpc/grpc-js and @grpc/proto-loader into .tools",
        "node scenario OK",
    );
}

/// buf.gen.yaml's local plugins make the Python and TypeScript clients:
/// the Python stubs import, the TypeScript ones hold grpc-js clients.
#[test]
fn buf_generate_makes_python_and_typescript_clients() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(format!("{root}/.tools/node_modules/.bin/buf"))
        .current_dir(root)
        .args(["generate", "--template", "buf.gen.yaml", "-o"])
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("buf is required ({e}); scripts/test.sh installs it"));
    assert!(
        out.status.success(),
        "buf generate failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let python = dir.path().join("gen/python");
    let import = Command::new("python3")
        .current_dir(&python)
        .args([
            "-c",
            "from cognito.mfa.v1 import user_mfa_service_pb2_grpc as u, user_pool_mfa_service_pb2_grpc as p; \
             from cognito.mfa.dev.v1 import fixtures_pb2_grpc; print(u.UserMfaServiceStub.__name__, p.UserPoolMfaServiceStub.__name__)",
        ])
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&import.stdout).trim(),
        "UserMfaServiceStub UserPoolMfaServiceStub",
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let ts = std::fs::read_to_string(dir.path().join("gen/ts/cognito/mfa/v1/user_mfa_service.ts"))
        .expect("the TypeScript client");
    for needed in [
        "export const UserMfaServiceClient = makeGenericClientConstructor(",
        "from \"@grpc/grpc-js\"",
        "getUserAuthFactors(",
    ] {
        assert!(ts.contains(needed), "{needed} not in the TypeScript client");
    }
}

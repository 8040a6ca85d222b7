//! Traces (issue 20, part 2), through the release binary: a real OTLP/gRPC
//! receiver on loopback (the opentelemetry-proto collector service) gets
//! each call's server span — a child of the caller's `traceparent`, with
//! its `tracestate` — and one span per stage under it; the backend's span
//! carries Cognito's request id and the SDK's retries, with a CLIENT span
//! per Cognito request; log lines carry `trace_id` (and `span_id` when
//! sampled), with tracing off too.

use crate::common;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::procs::{Served, canary, local_config, local_pool};
use common::{ApiKey, TEST_KEY};
use mfa_facade::proto::v1::{self as pb, user_pool_mfa_service_client::UserPoolMfaServiceClient};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind},
};
use serde_json::Value as Json;

/// What the receiver got: every span, the resource's service.name, and
/// the metadata of each export request.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
    services: Arc<Mutex<Vec<String>>>,
    metadata: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

fn text(v: &Option<AnyValue>) -> Option<String> {
    match v.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .filter_map(|kv| Some((kv.key.clone(), text(&kv.value)?)))
        .collect()
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let metadata = request
            .metadata()
            .iter()
            .filter_map(|kv| match kv {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                    Some((k.to_string(), v.to_str().ok()?.to_owned()))
                }
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        self.metadata.lock().unwrap().push(metadata);
        let body = request.into_inner();
        // Kept for the canary too: no secret may be in any span.
        if let Some(dir) = canary::dir() {
            let _ = std::fs::write(
                dir.join(format!("traces-{}.txt", uuid::Uuid::new_v4().simple())),
                format!("{body:?}"),
            );
        }
        for rs in body.resource_spans {
            if let Some(r) = &rs.resource
                && let Some(name) = attributes(&r.attributes).get("service.name")
            {
                self.services.lock().unwrap().push(name.clone());
            }
            for ss in rs.scope_spans {
                self.spans.lock().unwrap().extend(ss.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves on a loopback port; its endpoint URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await;
        });
        format!("http://{addr}")
    }

    /// The spans of one trace, waiting up to 10 s until `count` came.
    fn trace(&self, trace_id: &str, count: usize) -> Vec<Span> {
        let spans = || -> Vec<Span> {
            self.spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| hex::encode(&s.trace_id) == trace_id)
                .cloned()
                .collect()
        };
        crate::common::wait::poll(Duration::from_secs(10), || {
            Some(spans()).filter(|s| s.len() >= count)
        })
        .unwrap_or_else(spans)
    }

    fn all(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

fn tracing_config(endpoint: &str, extra: &str) -> String {
    format!(
        "\n[tracing]\nendpoint = \"{endpoint}\"\nexport_interval_ms = 50\nheaders = {{ \"x-scope-orgid\" = \"platform\" }}\n{extra}\n"
    )
}

fn pools(ch: &tonic::transport::Channel, key: &str) -> common::PoolsClient {
    UserPoolMfaServiceClient::with_interceptor(ch.clone(), ApiKey::new(key))
}

fn traced<T>(message: T, traceparent: Option<&str>, request_id: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    if let Some(tp) = traceparent {
        r.metadata_mut().insert("traceparent", tp.parse().unwrap());
        r.metadata_mut()
            .insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
    }
    r.metadata_mut()
        .insert("x-request-id", request_id.parse().unwrap());
    r
}

/// The `call_completed` (or refused/failed) line of a request id.
fn call_line(served: &Served, request_id: &str) -> Json {
    let needle = format!("\"request_id\":\"{request_id}\"");
    let line = served
        .wait_log(&needle, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no log line for {request_id}"));
    serde_json::from_str(&line.text).unwrap()
}

fn by_name<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        panic!(
            "no span {name} among {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    })
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_spans_reach_the_collector_as_children_of_the_callers_span() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let served = Served::start(&local_config(
        "admin",
        1000.0,
        1000,
        &format!(
            "[audit]\nfile = \"{{dir}}/audit.jsonl\"\nfail_closed = true\n{}",
            tracing_config(&endpoint, "")
        ),
    ));
    assert!(
        served
            .wait_log("\"event\":\"tracing_exporting\"", Duration::from_secs(5))
            .is_some_and(|l| l.text.contains("\"collector\":\"127.0.0.1:")),
        "the start says where spans go"
    );
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    let mut c = pools(&ch, TEST_KEY);

    // A change, in the caller's sampled trace.
    c.set_user_pool_mfa_config(traced(
        pb::SetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
            software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                enabled: Some(true),
            }),
            mfa_configuration: pb::MfaConfiguration::Optional as i32,
            ..Default::default()
        },
        Some(&format!("00-{TRACE}-{PARENT}-01")),
        "rid-traced-set",
    ))
    .await
    .expect("set");

    let stages = [
        "auth",
        "policy",
        "validate",
        "limits",
        "audit received",
        "backend",
        "audit completed",
    ];
    let spans = receiver.trace(TRACE, stages.len() + 1);
    let server = by_name(
        &spans,
        "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig",
    );
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(
        hex::encode(&server.parent_span_id),
        PARENT,
        "the caller's span is the parent"
    );
    assert_eq!(
        server.trace_state, "congo=t61rcWkgMzE",
        "tracestate goes on"
    );
    let a = attributes(&server.attributes);
    assert_eq!(a["rpc.system.name"], "grpc");
    assert_eq!(
        a["rpc.method"],
        "cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig"
    );
    assert_eq!(a["rpc.response.status_code"], "OK");
    assert_eq!(a["mfa_facade.request_id"], "rid-traced-set");
    assert_eq!(a["mfa_facade.principal"], "admin");
    assert_eq!(a["mfa_facade.user_pool_id"], pool);
    for name in stages {
        let s = by_name(&spans, name);
        assert_eq!(
            s.parent_span_id, server.span_id,
            "{name} is the server span's child"
        );
        assert!(
            s.start_time_unix_nano >= server.start_time_unix_nano
                && s.end_time_unix_nano <= server.end_time_unix_nano
                && s.start_time_unix_nano <= s.end_time_unix_nano,
            "{name} lies within the call"
        );
    }
    // In the order of DESIGN.md §5.
    let starts: Vec<u64> = stages
        .iter()
        .map(|n| by_name(&spans, n).start_time_unix_nano)
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
    let backend = attributes(&by_name(&spans, "backend").attributes);
    assert_eq!(backend["mfa_facade.backend"], "local");
    assert_eq!(backend["mfa_facade.upstream.requests"], "0");

    // The log line names the trace and our span.
    let line = call_line(&served, "rid-traced-set");
    assert_eq!(line["trace_id"], TRACE);
    assert_eq!(line["span_id"], hex::encode(&server.span_id));

    // No traceparent: a trace of our own, a root span; the log line has it.
    c.get_user_pool_mfa_config(traced(
        pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
        },
        None,
        "rid-root",
    ))
    .await
    .expect("get");
    let line = call_line(&served, "rid-root");
    let own = line["trace_id"].as_str().expect("a trace id of our own");
    assert_eq!(own.len(), 32);
    let spans = receiver.trace(own, 6);
    let root = by_name(
        &spans,
        "cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig",
    );
    assert!(root.parent_span_id.is_empty(), "a root span");
    assert!(
        spans.iter().all(|s| s.name != "audit received"),
        "a read writes no received record"
    );

    // The caller's trace not sampled: we keep none of it (parent_based),
    // and the log line still names it.
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    c.get_user_pool_mfa_config(traced(
        pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
        },
        Some(&format!("00-{unsampled}-b7ad6b7169203331-00")),
        "rid-unsampled",
    ))
    .await
    .expect("get");
    let line = call_line(&served, "rid-unsampled");
    assert_eq!(line["trace_id"], unsampled);
    assert!(line.get("span_id").is_none(), "no span of ours: {line}");

    // A refusal at the door exports nothing (issue 31: callers without
    // credentials could make the facade sample and queue spans at will),
    // and its log line still names the caller's trace.
    let refused = "11111111111111111111111111111111";
    let before = receiver.all().len();
    for i in 0..50 {
        let err = pools(&ch, "wrong-key-0123456789")
            .get_user_pool_mfa_config(traced(
                pb::GetUserPoolMfaConfigRequest {
                    user_pool_id: pool.clone(),
                },
                Some(&format!("00-{refused}-{PARENT}-01")),
                &format!("rid-refused-{i}"),
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }
    let line = call_line(&served, "rid-refused-0");
    assert_eq!(line["trace_id"], refused);
    // An admitted call after them is exported, so the exporter has flushed
    // past the refusals by the time it arrives.
    let after = "33333333333333333333333333333333";
    c.get_user_pool_mfa_config(traced(
        pb::GetUserPoolMfaConfigRequest {
            user_pool_id: pool.clone(),
        },
        Some(&format!("00-{after}-{PARENT}-01")),
        "rid-after-refusals",
    ))
    .await
    .expect("get");
    receiver.trace(after, 1);
    assert_eq!(
        receiver.trace(refused, 0).len(),
        0,
        "50 sampled calls refused at the door: no span"
    );
    println!(
        "refused at the door with a sampled traceparent: 50 calls, 0 spans ({} spans before, {} after)",
        before,
        receiver.all().len()
    );

    // A made-up method is "unknown", not the caller's text.
    let made_up = "22222222222222222222222222222222";
    let mut raw = tonic::client::Grpc::new(ch.clone());
    raw.ready().await.unwrap();
    let path: http::uri::PathAndQuery = "/cognito.mfa.v1.UserPoolMfaService/NoSuchMethodAAAA"
        .parse()
        .unwrap();
    // Authenticated: only admitted calls are traced.
    let mut request = traced(
        pb::GetUserPoolMfaConfigRequest::default(),
        Some(&format!("00-{made_up}-{PARENT}-01")),
        "rid-made-up",
    );
    request
        .metadata_mut()
        .insert("x-api-key", TEST_KEY.parse().unwrap());
    let _ = raw
        .unary::<_, pb::GetUserPoolMfaConfigResponse, _>(
            request,
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await;
    let spans = receiver.trace(made_up, 1);
    assert!(spans.iter().any(|s| s.name == "unknown"), "{spans:?}");
    assert!(
        receiver
            .all()
            .iter()
            .all(|s| !s.name.contains("NoSuchMethod"))
    );

    // The export requests carried the configured header, the resource its name;
    // no span holds the API key.
    assert!(
        receiver
            .metadata
            .lock()
            .unwrap()
            .iter()
            .all(|m| m.get("x-scope-orgid").map(String::as_str) == Some("platform"))
    );
    assert!(
        receiver
            .services
            .lock()
            .unwrap()
            .iter()
            .all(|s| s == "mfa-facade")
    );
    let dump = format!("{:?}", receiver.all());
    assert!(!dump.contains(TEST_KEY) && !dump.contains("wrong-key-0123456789"));
}

/// A stub Cognito: the first GetUserPoolMfaConfig answers 500 (the SDK
/// retries it), every later one the configuration; each answer has its own
/// request id.
async fn flaky_cognito() -> crate::common::stub::Stub {
    use crate::common::stub::{Reply, Stub};
    Stub::start(|n, _| {
        let request_id = format!("stub-request-{n}");
        if n == 1 {
            Reply::cognito(
                500,
                r#"{"__type":"InternalErrorException","message":"try again"}"#,
                &request_id,
            )
        } else {
            Reply::cognito(
                200,
                r#"{"MfaConfiguration":"OPTIONAL","SoftwareTokenMfaConfiguration":{"Enabled":true}}"#,
                &request_id,
            )
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_span_has_cognitos_request_id_and_the_retries() {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await;
    let answered = flaky_cognito().await;
    let cognito = answered.url.clone();
    let served = Served::start_with_env(
        &local_config("admin", 1000.0, 1000, &tracing_config(&endpoint, "")).replace(
            "kind = \"local\"",
            &format!("kind = \"cognito\"\nregion = \"us-east-1\"\nendpoint_url = \"{cognito}\"\nmax_attempts = 3"),
        ),
        &[
            ("AWS_ACCESS_KEY_ID", Some("testing")),
            ("AWS_SECRET_ACCESS_KEY", Some("testing")),
            ("AWS_EC2_METADATA_DISABLED", Some("true")),
        ],
    );
    let ch = served.channel().await;
    let trace = "5bf92f3577b34da6a3ce929d0e0e4737";
    let out = pools(&ch, TEST_KEY)
        .get_user_pool_mfa_config(traced(
            pb::GetUserPoolMfaConfigRequest {
                user_pool_id: "us-east-1_Flaky".into(),
            },
            Some(&format!("00-{trace}-{PARENT}-01")),
            "rid-flaky",
        ))
        .await
        .expect("answered after one retry")
        .into_inner();
    assert_eq!(out.mfa_configuration, pb::MfaConfiguration::Optional as i32);
    assert_eq!(answered.count(), 2, "one retry");

    let spans = receiver.trace(trace, 7);
    let server = by_name(
        &spans,
        "cognito.mfa.v1.UserPoolMfaService/GetUserPoolMfaConfig",
    );
    let backend = by_name(&spans, "backend");
    assert_eq!(backend.parent_span_id, server.span_id);
    let b = attributes(&backend.attributes);
    assert_eq!(b["mfa_facade.backend"], "cognito");
    assert_eq!(
        b["aws.request_id"], "stub-request-2",
        "the answer's request id"
    );
    assert_eq!(b["mfa_facade.upstream.requests"], "1");
    assert_eq!(b["mfa_facade.upstream.retries"], "1");
    let request = by_name(&spans, "CognitoIdentityProvider/GetUserPoolMfaConfig");
    assert_eq!(request.kind, SpanKind::Client as i32);
    assert_eq!(
        request.parent_span_id, backend.span_id,
        "under the backend's span"
    );
    let r = attributes(&request.attributes);
    assert_eq!(r["rpc.system"], "aws-api");
    assert_eq!(r["rpc.service"], "CognitoIdentityProvider");
    assert_eq!(r["rpc.method"], "GetUserPoolMfaConfig");
    assert_eq!(r["cloud.region"], "us-east-1");
    assert_eq!(r["aws.request_id"], "stub-request-2");
    assert_eq!(r["http.request.resend_count"], "1");
    assert_eq!(r["http.response.status_code"], "200");
    assert!(
        request.start_time_unix_nano >= backend.start_time_unix_nano
            && request.end_time_unix_nano <= backend.end_time_unix_nano
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_log_lines_still_carry_the_callers_trace_id() {
    let served = Served::start(&local_config("admin", 1000.0, 1000, ""));
    assert!(
        served
            .wait_log(
                "\"event\":\"tracing_exporting\"",
                Duration::from_millis(300)
            )
            .is_none(),
        "no tracer without [tracing]"
    );
    let ch = served.channel().await;
    let pool = local_pool(&ch, None).await;
    pools(&ch, TEST_KEY)
        .get_user_pool_mfa_config(traced(
            pb::GetUserPoolMfaConfigRequest {
                user_pool_id: pool.clone(),
            },
            Some(&format!("00-{TRACE}-{PARENT}-01")),
            "rid-off",
        ))
        .await
        .expect("get");
    let line = call_line(&served, "rid-off");
    assert_eq!(line["trace_id"], TRACE);
    assert!(line.get("span_id").is_none(), "no span of ours when off");
    pools(&ch, TEST_KEY)
        .get_user_pool_mfa_config(traced(
            pb::GetUserPoolMfaConfigRequest { user_pool_id: pool },
            Some("00-not-a-trace-01"),
            "rid-off-bad",
        ))
        .await
        .expect("a bad traceparent is ignored, not refused");
    let line = call_line(&served, "rid-off-bad");
    assert!(line.get("trace_id").is_none(), "{line}");
}

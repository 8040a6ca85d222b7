//! Traces: OpenTelemetry, exported over OTLP/gRPC when `[tracing]` is set.
//!
//! [`TraceLayer`] takes the caller's W3C `traceparent`/`tracestate`, starts
//! the call's SERVER span (named by the method, as OpenTelemetry's RPC
//! conventions say, "unknown" for a path this server does not serve) and
//! puts a [`CallTrace`] into the request's extensions; the stages add a
//! child span each (`auth` in the gate; `policy`, `validate`, `limits`,
//! `audit received`, `backend` with a CLIENT span per Cognito request under
//! it, `audit completed` in the pipeline); the layer ends the server span
//! with the call's status. Spans leave through the SDK's batch processor:
//! a bounded queue (`tracing.max_queue_spans`, then spans are dropped) on
//! a thread of its own, never on a call's path.
//!
//! Off (no `[tracing]`): no layer, no tracer, no span, no clock read; the
//! gate only looks for a `traceparent` header ([`CallTrace::of_caller`]),
//! so that log lines can still carry the caller's `trace_id`.
//!
//! What a span holds is chosen, not captured: method, request id,
//! principal name, pool id, codes, Cognito's request ids and retries. No
//! metadata, no request field, no token or secret.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context as TaskContext, Poll},
    time::{Duration, SystemTime},
};

use opentelemetry::{
    Context,
    propagation::{Extractor, TextMapPropagator},
    trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider},
};
use tower::{Layer, Service};

pub use opentelemetry::KeyValue;

use super::settings::TracingConfig;
use crate::upstream::Request;

/// A `tracestate` longer than this is ignored (W3C Trace Context lets a
/// receiver drop one it cannot hold whole): it would be copied into every
/// span of the call.
pub const MAX_TRACESTATE_LEN: usize = 512;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The caller's headers, as the propagator reads them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let value = self.0.get(key)?.to_str().ok()?;
        (key != TRACESTATE || value.len() <= MAX_TRACESTATE_LEN).then_some(value)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The caller's trace context, if it sent a valid one.
fn parent(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract_with_context(&Context::new(), &Headers(headers))
}

/// The tracer and its exporter, built once at start-up.
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl Tracing {
    /// The OTLP/gRPC exporter and the tracer. Runs inside the Tokio runtime
    /// (the exporter's channel lives there); connects lazily, so a
    /// collector that is down costs dropped spans, not a failed start.
    pub fn start(c: &TracingConfig) -> Result<Self, String> {
        use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
        let mut metadata = tonic::metadata::MetadataMap::new();
        for (name, value) in &c.headers {
            let key = tonic::metadata::MetadataKey::from_bytes(name.as_bytes())
                .map_err(|_| format!("tracing.headers: {name:?} is not a header name"))?;
            let value = value
                .parse()
                .map_err(|_| format!("tracing.headers.{name}: not a header value"))?;
            metadata.insert(key, value);
        }
        let timeout = Duration::from_millis(c.timeout_ms);
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(c.endpoint.clone())
            .with_timeout(timeout)
            .with_metadata(metadata);
        if c.endpoint.starts_with("https://") {
            let tls = tonic::transport::ClientTlsConfig::new();
            let tls = match &c.ca_file {
                Some(path) => {
                    let pem = std::fs::read(path)
                        .map_err(|e| format!("tracing.ca_file: {}: {e}", path.display()))?;
                    tls.ca_certificate(tonic::transport::Certificate::from_pem(pem))
                }
                None => tls.with_webpki_roots(),
            };
            exporter = exporter.with_tls_config(tls);
        }
        let exporter = exporter
            .build()
            .map_err(|e| format!("tracing.endpoint: {e}"))?;
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(c.max_queue_spans)
            .with_max_export_batch_size(c.max_export_batch_spans)
            .with_scheduled_delay(Duration::from_millis(c.export_interval_ms))
            .build();
        let ratio = Sampler::TraceIdRatioBased(c.sampling_ratio);
        let sampler = if c.parent_based {
            Sampler::ParentBased(Box::new(ratio))
        } else {
            ratio
        };
        let provider = SdkTracerProvider::builder()
            .with_span_processor(
                BatchSpanProcessor::builder(exporter)
                    .with_batch_config(batch)
                    .build(),
            )
            .with_sampler(sampler)
            .with_resource(
                Resource::builder_empty()
                    .with_service_name(c.service_name.clone())
                    .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("mfa-facade");
        Ok(Self { provider, tracer })
    }

    /// Sends what is queued, then stops (at exit, after the drain).
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown_with_timeout(Duration::from_secs(5));
    }

    /// The call's server span, child of the caller's context if it sent one.
    fn begin(
        &self,
        headers: &http::HeaderMap,
        path: &str,
        request_id: &str,
        started: Option<SystemTime>,
    ) -> CallTrace {
        let method = super::metrics::known_method(path).unwrap_or("unknown");
        let mut builder = self.tracer.span_builder(method);
        if let Some(at) = started {
            builder = builder.with_start_time(at);
        }
        let span = builder
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("rpc.system.name", "grpc"),
                KeyValue::new("rpc.method", method),
                KeyValue::new("mfa_facade.request_id", request_id.to_owned()),
            ])
            .start_with_context(&self.tracer, &parent(headers));
        let ids = span.span_context();
        let trace_id = ids.trace_id().to_string();
        let recording = span.is_recording();
        let span_id = recording.then(|| ids.span_id().to_string());
        CallTrace(Arc::new(Inner {
            trace_id,
            live: recording.then(|| Live {
                cx: Context::new().with_span(span),
                tracer: self.tracer.clone(),
                span_id: span_id.unwrap_or_default(),
                status: Mutex::new(None),
            }),
        }))
    }
}

/// One call's trace: its `trace_id` for the log lines, and while it is
/// sampled, the server span the stages add theirs to.
#[derive(Clone)]
pub struct CallTrace(Arc<Inner>);

struct Inner {
    trace_id: String,
    live: Option<Live>,
}

struct Live {
    /// Holds the server span.
    cx: Context,
    tracer: SdkTracer,
    span_id: String,
    /// The call's status, when the pipeline decided it (it travels in the
    /// trailers, which the layer does not read).
    status: Mutex<Option<tonic::Code>>,
}

impl Live {
    /// A stage's span under the server span, from `started`.
    fn child(
        &self,
        name: &'static str,
        started: SystemTime,
        attributes: Vec<KeyValue>,
    ) -> opentelemetry_sdk::trace::Span {
        self.tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(started)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, &self.cx)
    }
}

fn status_of(code: Option<tonic::Code>) -> Status {
    match code {
        None | Some(tonic::Code::Ok) => Status::Unset,
        Some(c) => Status::error(crate::error::code_name(c)),
    }
}

fn with_error(mut attributes: Vec<KeyValue>, code: Option<tonic::Code>) -> Vec<KeyValue> {
    if let Some(c) = code.filter(|c| *c != tonic::Code::Ok) {
        attributes.push(KeyValue::new("error.type", crate::error::code_name(c)));
    }
    attributes
}

impl CallTrace {
    /// Tracing off: only the caller's trace id, for the log lines (the
    /// gate's, when no [`TraceLayer`] made a trace).
    pub fn of_caller(headers: &http::HeaderMap) -> Option<Self> {
        headers.get(TRACEPARENT)?;
        let cx = parent(headers);
        let ids = cx.span().span_context().clone();
        ids.is_valid().then(|| {
            CallTrace(Arc::new(Inner {
                trace_id: ids.trace_id().to_string(),
                live: None,
            }))
        })
    }

    /// The trace id (32 hex digits), for log lines.
    pub fn trace_id(&self) -> &str {
        &self.0.trace_id
    }

    /// The server span's id (16 hex digits), while the call is sampled.
    pub fn span_id(&self) -> Option<&str> {
        self.0.live.as_ref().map(|l| l.span_id.as_str())
    }

    /// Whether the call is sampled: attributes are built only then.
    pub fn recording(trace: Option<&Self>) -> bool {
        trace.is_some_and(|t| t.0.live.is_some())
    }

    /// Now, if the call is sampled: the start of a stage's span.
    pub fn clock(trace: Option<&Self>) -> Option<SystemTime> {
        trace
            .and_then(|t| t.0.live.as_ref())
            .map(|_| SystemTime::now())
    }

    /// A stage's span, from `started` (see [`Self::clock`]) to now.
    pub fn stage(
        trace: Option<&Self>,
        name: &'static str,
        started: Option<SystemTime>,
        code: Option<tonic::Code>,
        attributes: Vec<KeyValue>,
    ) {
        let (Some(live), Some(started)) = (trace.and_then(|t| t.0.live.as_ref()), started) else {
            return;
        };
        let mut span = live.child(name, started, with_error(attributes, code));
        span.set_status(status_of(code));
        span.end();
    }

    /// A stage's span that already ran, from `started` to `ended`.
    pub fn stage_between(
        trace: Option<&Self>,
        name: &'static str,
        (started, ended): (SystemTime, SystemTime),
        attributes: Vec<KeyValue>,
    ) {
        if let Some(live) = trace.and_then(|t| t.0.live.as_ref()) {
            live.child(name, started, attributes)
                .end_with_timestamp(ended);
        }
    }

    /// A stage's span from now until the guard ends (or is dropped: a
    /// stage cut off by the deadline or a cancel still has its span).
    pub fn start_stage<'a>(trace: Option<&'a Self>, name: &'static str) -> StageSpan<'a> {
        StageSpan {
            trace,
            name,
            started: Self::clock(trace),
            code: None,
        }
    }

    /// Runs a synchronous stage, its span around it.
    pub fn time<T>(
        trace: Option<&Self>,
        name: &'static str,
        f: impl FnOnce() -> crate::error::Result<T>,
    ) -> crate::error::Result<T> {
        let span = Self::start_stage(trace, name);
        let result = f();
        span.end_with(&result);
        result
    }

    /// Runs an asynchronous stage, its span around it.
    pub async fn time_async<T>(
        trace: Option<&Self>,
        name: &'static str,
        f: impl std::future::Future<Output = crate::error::Result<T>>,
    ) -> crate::error::Result<T> {
        let span = Self::start_stage(trace, name);
        let result = f.await;
        span.end_with(&result);
        result
    }

    /// The backend's span, and under it a CLIENT span per Cognito request
    /// it made, with Cognito's request id and the SDK's retries.
    pub fn backend(
        trace: Option<&Self>,
        backend: &'static str,
        started: Option<SystemTime>,
        requests: Vec<Request>,
        code: Option<tonic::Code>,
    ) {
        let (Some(live), Some(started)) = (trace.and_then(|t| t.0.live.as_ref()), started) else {
            return;
        };
        let retries: u32 = requests.iter().map(|r| r.attempts.saturating_sub(1)).sum();
        let mut attributes = vec![
            KeyValue::new("mfa_facade.backend", backend),
            KeyValue::new("mfa_facade.upstream.requests", requests.len() as i64),
            KeyValue::new("mfa_facade.upstream.retries", i64::from(retries)),
        ];
        if let Some(id) = requests.iter().rev().find_map(|r| r.request_id.clone()) {
            attributes.push(KeyValue::new("aws.request_id", id));
        }
        let mut span = live
            .tracer
            .span_builder("backend")
            .with_kind(SpanKind::Internal)
            .with_start_time(started)
            .with_attributes(with_error(attributes, code))
            .start_with_context(&live.tracer, &live.cx);
        span.set_status(status_of(code));
        let cx = live.cx.with_span(span);
        for r in requests {
            let mut attributes = vec![
                KeyValue::new("rpc.system", "aws-api"),
                KeyValue::new("rpc.service", r.service.clone()),
                KeyValue::new("rpc.method", r.operation.clone()),
                KeyValue::new("cloud.region", r.region),
                KeyValue::new(
                    "http.request.resend_count",
                    i64::from(r.attempts.saturating_sub(1)),
                ),
            ];
            if let Some(id) = r.request_id {
                attributes.push(KeyValue::new("aws.request_id", id));
            }
            if let Some(status) = r.http_status {
                attributes.push(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
            }
            let mut child = live
                .tracer
                .span_builder(format!("{}/{}", r.service, r.operation))
                .with_kind(SpanKind::Client)
                .with_start_time(r.started)
                .with_attributes(attributes)
                .start_with_context(&live.tracer, &cx);
            if r.failed {
                child.set_status(Status::error("request failed"));
            }
            child.end_with_timestamp(r.ended);
        }
        cx.span().end();
    }

    /// Attributes of the server span (who called, on what).
    pub fn annotate(trace: Option<&Self>, attributes: Vec<KeyValue>) {
        if let Some(live) = trace.and_then(|t| t.0.live.as_ref()) {
            live.cx.span().set_attributes(attributes);
        }
    }

    /// The call's status, as the pipeline decided it.
    pub fn set_status(trace: Option<&Self>, code: tonic::Code) {
        if let Some(live) = trace.and_then(|t| t.0.live.as_ref()) {
            *live.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(code);
        }
    }

    /// Ends the server span: the pipeline's status, else the one in the
    /// response's headers (a refusal before the pipeline), else OK.
    fn end(&self, headers_code: Option<tonic::Code>) {
        let Some(live) = &self.0.live else { return };
        let code = live
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .or(headers_code)
            .unwrap_or(tonic::Code::Ok);
        let span = live.cx.span();
        span.set_attribute(KeyValue::new(
            "rpc.response.status_code",
            crate::error::code_name(code),
        ));
        if code != tonic::Code::Ok {
            span.set_attribute(KeyValue::new("error.type", crate::error::code_name(code)));
        }
        span.set_status(status_of(Some(code)));
        span.end();
    }
}

/// When the gate authenticated a call, and whom: the `auth` span the trace
/// layer (inside the gate) adds once the call is admitted.
#[derive(Clone, Debug)]
pub struct AuthSpan {
    pub started: SystemTime,
    pub ended: SystemTime,
    pub principal: String,
    pub proof: &'static str,
}

/// Starts each call's trace (see the module's doc). Only in the stack
/// when `[tracing]` is set: off, the gate reads the caller's trace id.
#[derive(Clone)]
pub struct TraceLayer {
    tracing: Arc<Tracing>,
}

impl TraceLayer {
    pub fn new(tracing: Arc<Tracing>) -> Self {
        Self { tracing }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TraceService {
            inner,
            tracing: self.tracing.clone(),
        }
    }
}

#[derive(Clone)]
pub struct TraceService<S> {
    inner: S,
    tracing: Arc<Tracing>,
}

pin_project_lite::pin_project! {
    /// The inner call, then the end of its server span. Dropped before it
    /// answers (the caller went away): the span ends as CANCELLED.
    pub struct Traced<F> {
        #[pin]
        inner: F,
        trace: Option<CallTrace>,
    }

    impl<F> PinnedDrop for Traced<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(trace) = this.project().trace.take() {
                trace.end(Some(tonic::Code::Cancelled));
            }
        }
    }
}

impl<F, RB, E> std::future::Future for Traced<F>
where
    F: std::future::Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Some(trace) = this.trace.take() {
            let code = match &out {
                Ok(response) => super::metrics::grpc_code(response.headers()),
                Err(_) => Some(tonic::Code::Internal),
            };
            trace.end(code);
        }
        Poll::Ready(out)
    }
}

impl<S, B, RB> Service<http::Request<B>> for TraceService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Traced<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // Inside the gate: only an authenticated call (or health, reflection)
        // gets here, so a caller's sampled flag counts only once it is known,
        // and a call refused at the door exports nothing. The span starts
        // when the gate began, and the gate's `auth` span is added after.
        let auth = req.extensions_mut().remove::<AuthSpan>();
        let request_id = req
            .extensions()
            .get::<super::RequestId>()
            .map_or("", |r| r.0.as_str());
        let trace = self.tracing.begin(
            req.headers(),
            req.uri().path(),
            request_id,
            auth.as_ref().map(|a| a.started),
        );
        if let Some(a) = auth
            && CallTrace::recording(Some(&trace))
        {
            CallTrace::stage_between(
                Some(&trace),
                "auth",
                (a.started, a.ended),
                vec![
                    KeyValue::new("mfa_facade.principal", a.principal),
                    KeyValue::new("mfa_facade.proof", a.proof),
                ],
            );
        }
        req.extensions_mut().insert(trace.clone());
        Traced {
            inner: self.inner.call(req),
            trace: Some(trace),
        }
    }
}

/// A stage's span while the stage runs ([`CallTrace::start_stage`]); it
/// ends when the guard goes, with the status given to [`StageSpan::end`]
/// or none. Nothing is timed or allocated unless the call is sampled.
pub struct StageSpan<'a> {
    trace: Option<&'a CallTrace>,
    name: &'static str,
    started: Option<SystemTime>,
    code: Option<tonic::Code>,
}

impl StageSpan<'_> {
    /// Ends the span with `code` (`None`: OK).
    pub fn end(mut self, code: Option<tonic::Code>) {
        self.code = code;
    }

    /// Ends the span with the status of `result`.
    pub fn end_with<T>(self, result: &crate::error::Result<T>) {
        self.end(result.as_ref().err().map(crate::error::Error::code));
    }
}

impl Drop for StageSpan<'_> {
    fn drop(&mut self) {
        CallTrace::stage(self.trace, self.name, self.started, self.code, Vec::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn the_callers_trace_id_is_read_only_from_a_valid_traceparent() {
        let t = CallTrace::of_caller(&headers(&[(TRACEPARENT, PARENT)])).unwrap();
        assert_eq!(t.trace_id(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(t.span_id(), None, "off: no span of ours");
        for bad in [
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "zz-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "not a traceparent",
        ] {
            assert!(
                CallTrace::of_caller(&headers(&[(TRACEPARENT, bad)])).is_none(),
                "{bad}"
            );
        }
        assert!(CallTrace::of_caller(&headers(&[])).is_none());
    }

    #[test]
    fn a_long_tracestate_is_dropped_and_a_short_one_kept() {
        let short = "congo=t61rcWkgMzE";
        let cx = parent(&headers(&[(TRACEPARENT, PARENT), (TRACESTATE, short)]));
        assert_eq!(cx.span().span_context().trace_state().header(), short);
        let long = format!("congo={}", "a".repeat(MAX_TRACESTATE_LEN));
        let cx = parent(&headers(&[(TRACEPARENT, PARENT), (TRACESTATE, &long)]));
        assert!(cx.span().span_context().is_valid(), "the parent stays");
        assert_eq!(cx.span().span_context().trace_state().header(), "");
    }
}

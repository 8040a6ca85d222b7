//! Logs and request ids. Each event of a call is a small struct that logs
//! itself in one place, so every call is reported the same way.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use http::HeaderValue;
use tower::{Layer, Service};

use crate::error::Error;

/// The header that carries a call's request id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// A caller's id longer than this, or with characters outside visible ASCII,
/// is replaced by a fresh one rather than copied into logs.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Installs the JSON log subscriber; `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The id of one call, in the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

fn acceptable(id: &HeaderValue) -> Option<&str> {
    let s = id.to_str().ok()?;
    (!s.is_empty() && s.len() <= MAX_REQUEST_ID_LEN && s.bytes().all(|b| b.is_ascii_graphic()))
        .then_some(s)
}

/// Honours the caller's `x-request-id` or makes one, puts it into the
/// request's extensions, and echoes it on the response.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct RequestIdService<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for RequestIdService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let id = req
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(acceptable)
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        // Visible ASCII, so the conversion cannot fail.
        let value =
            HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        req.headers_mut().insert(REQUEST_ID_HEADER, value.clone());
        req.extensions_mut().insert(RequestId(id));
        let future = self.inner.call(req);
        Box::pin(async move {
            let mut response = future.await?;
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
            Ok(response)
        })
    }
}

/// The outcome of one call, logged once by the call pipeline.
pub struct CallCompleted<'a> {
    pub method: &'static str,
    pub request_id: &'a str,
    pub principal: &'a str,
    pub backend: &'static str,
    pub result: Result<(), &'a Error>,
    pub latency: Duration,
}

impl CallCompleted<'_> {
    pub fn emit(self) {
        let latency_ms = self.latency.as_secs_f64() * 1000.0;
        match self.result {
            Ok(()) => tracing::info!(
                message = "Call completed.",
                method = self.method,
                request_id = self.request_id,
                principal = self.principal,
                backend = self.backend,
                code = "OK",
                latency_ms,
            ),
            Err(error) => {
                let code = crate::error::code_name(error.code());
                let cognito_exception = error.cognito_exception().unwrap_or("");
                if matches!(
                    error,
                    Error::Internal(_) | Error::Unavailable(_) | Error::UpstreamFailed { .. }
                ) {
                    tracing::warn!(
                        message = "Call failed.",
                        method = self.method,
                        request_id = self.request_id,
                        principal = self.principal,
                        backend = self.backend,
                        code,
                        cognito_exception,
                        latency_ms,
                        %error,
                        detail = error.log_detail().unwrap_or(""),
                    );
                } else {
                    tracing::info!(
                        message = "Call refused.",
                        method = self.method,
                        request_id = self.request_id,
                        principal = self.principal,
                        backend = self.backend,
                        code,
                        cognito_exception,
                        latency_ms,
                        %error,
                    );
                }
            }
        }
    }
}

/// Prometheus text at `/metrics`, rendered by metrics-exporter-prometheus.
pub mod prometheus {
    use std::{net::SocketAddr, time::Duration};

    use axum::{Router, routing::get};
    use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
    use tokio::net::TcpListener;

    /// Installs the process-wide recorder. `None` when one is installed
    /// already (only the binary installs one; in-process test servers
    /// record into nothing).
    pub fn install() -> Option<PrometheusHandle> {
        let handle = PrometheusBuilder::new().install_recorder().ok()?;
        let upkeep = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                upkeep.run_upkeep();
            }
        });
        Some(handle)
    }

    /// Binds `addr`; the returned address has the real port (for port 0).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        Ok((listener, local))
    }

    /// Serves `/metrics` (and nothing else) until the process ends.
    pub fn serve(listener: TcpListener, handle: PrometheusHandle) {
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move { handle.render() }
            }),
        );
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(event = "metrics_server_failed", error = %e, "the /metrics server stopped");
            }
        });
    }
}

/// Counts every call by method and gRPC code and times it to the end of its
/// response stream. The code is read from the response headers (a
/// trailers-only answer, as errors usually are) or else from the trailers
/// at the end of the body; a body dropped before its trailers (the client
/// went away) counts as CANCELLED.
#[derive(Clone, Copy, Debug, Default)]
pub struct MetricsLayer;

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct MetricsService<S> {
    inner: S,
}

/// Every method this server can answer, `package.Service/Method`, read
/// once from the descriptor sets it serves. Only these are metric labels;
/// any other path counts as `unknown`, so made-up method names can neither
/// grow the series nor take a real method's label.
fn known_methods() -> &'static std::collections::HashSet<&'static str> {
    use prost::Message;
    static KNOWN: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        let mut known: std::collections::HashSet<&'static str> = [
            "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ]
        .into_iter()
        .collect();
        for set in [
            crate::proto::FILE_DESCRIPTOR_SET,
            crate::proto::DEV_FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
        ] {
            let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
                continue;
            };
            for file in &set.file {
                for service in &file.service {
                    for method in &service.method {
                        let name =
                            format!("{}.{}/{}", file.package(), service.name(), method.name());
                        // Leaked once: a few dozen names for the process's life.
                        known.insert(Box::leak(name.into_boxed_str()));
                    }
                }
            }
        }
        known
    })
}

/// The method label of `path`: a known method's name, else `None`.
fn method_label(path: &str) -> Option<&'static str> {
    known_methods().get(path.strip_prefix('/')?).copied()
}

/// Makes every known method's metric handles, at start-up.
pub fn register_methods() {
    for m in known_methods() {
        MethodMetrics::of(&format!("/{m}"));
    }
}

/// One method's metric handles, made once: the macros would build and look
/// up a labelled key on every call.
struct MethodMetrics {
    label: &'static str,
    seconds: metrics::Histogram,
    /// By gRPC code; made on first use, so unused codes add no series.
    calls: [std::sync::OnceLock<metrics::Counter>; 17],
}

impl MethodMetrics {
    fn new(label: &'static str) -> Self {
        Self {
            label,
            seconds: metrics::histogram!("mfa_facade_grpc_server_seconds", "method" => label),
            calls: Default::default(),
        }
    }

    fn call(&self, code: tonic::Code) -> &metrics::Counter {
        let i = (code as usize).min(16);
        self.calls[i].get_or_init(|| {
            metrics::counter!(
                "mfa_facade_grpc_calls_total",
                "method" => self.label,
                "code" => crate::error::code_name(code)
            )
        })
    }

    /// The handles of `path`'s method label.
    fn of(path: &str) -> &'static MethodMetrics {
        use std::sync::OnceLock;
        type Table = std::collections::HashMap<&'static str, &'static MethodMetrics>;
        static TABLE: OnceLock<Table> = OnceLock::new();
        static UNKNOWN: OnceLock<&'static MethodMetrics> = OnceLock::new();
        // Leaked on purpose: one per known method, kept for the process's
        // life like the series they feed.
        let table = TABLE.get_or_init(|| {
            known_methods()
                .iter()
                .map(|m| (*m, &*Box::leak(Box::new(Self::new(m)))))
                .collect()
        });
        method_label(path)
            .and_then(|label| table.get(label).copied())
            .unwrap_or_else(|| *UNKNOWN.get_or_init(|| Box::leak(Box::new(Self::new("unknown")))))
    }
}

fn grpc_code(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
}

/// Records one finished call.
struct CallTimer {
    method: &'static MethodMetrics,
    started: std::time::Instant,
    done: bool,
}

impl CallTimer {
    fn finish(&mut self, code: tonic::Code) {
        if self.done {
            return;
        }
        self.done = true;
        self.method.call(code).increment(1);
        self.method
            .seconds
            .record(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for CallTimer {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled);
    }
}

/// A response body that reports the call when its trailers pass by.
pub struct MeteredBody<B> {
    inner: Pin<Box<B>>,
    timer: CallTimer,
}

impl<B> http_body::Body for MeteredBody<B>
where
    B: http_body::Body,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = self.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_code) {
                    self.timer.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.timer.finish(tonic::Code::Internal),
            Poll::Ready(None) => self.timer.finish(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S, B, RB> Service<http::Request<B>> for MetricsService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    RB::Error: Into<tower::BoxError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let mut timer = CallTimer {
            method: MethodMetrics::of(req.uri().path()),
            started: std::time::Instant::now(),
            done: false,
        };
        Box::pin(async move {
            let response = inner.call(req).await?;
            if let Some(code) = grpc_code(response.headers()) {
                timer.finish(code);
            }
            Ok(response.map(|body| {
                tonic::body::Body::new(MeteredBody {
                    inner: Box::pin(body),
                    timer,
                })
            }))
        })
    }
}

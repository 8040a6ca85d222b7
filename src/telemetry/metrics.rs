//! Metrics: the per-method layer (calls by method and code, seconds to
//! the end of the response stream) and `/metrics`.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tower::{Layer, Service};

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
        let handle = PrometheusBuilder::new()
            .set_buckets(crate::meters::SECONDS_BUCKETS)
            .ok()?
            .install_recorder()
            .ok()?;
        crate::meters::describe();
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
                crate::events::MetricsServerFailed { error: &e }.emit();
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

/// The method a path names, `package.Service/Method`, if this server
/// serves it: made-up paths get no name of their own (a span's, a label).
pub fn known_method(path: &str) -> Option<&'static str> {
    let label = path.strip_prefix('/')?;
    known_methods().get(label).copied()
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
            seconds: crate::meters::grpc_seconds(label),
            calls: Default::default(),
        }
    }

    fn call(&self, code: tonic::Code) -> &metrics::Counter {
        let i = (code as usize).min(16);
        self.calls[i]
            .get_or_init(|| crate::meters::grpc_calls(self.label, crate::error::code_name(code)))
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
        // The table's keys are the known methods: one lookup.
        path.strip_prefix('/')
            .and_then(|label| table.get(label).copied())
            .unwrap_or_else(|| *UNKNOWN.get_or_init(|| Box::leak(Box::new(Self::new("unknown")))))
    }
}

const GRPC_STATUS: http::HeaderName = http::HeaderName::from_static("grpc-status");

pub(super) fn grpc_code(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get(&GRPC_STATUS)
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

pin_project_lite::pin_project! {
    /// A response body that reports the call when its trailers pass by.
    pub struct MeteredBody<B> {
        #[pin]
        inner: B,
        timer: CallTimer,
    }
}

impl<B> http_body::Body for MeteredBody<B>
where
    B: http_body::Body,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_code) {
                    this.timer.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => this.timer.finish(tonic::Code::Internal),
            Poll::Ready(None) => this.timer.finish(tonic::Code::Unknown),
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

pin_project_lite::pin_project! {
    /// The inner call; its response's body then carries the timer.
    pub struct Metered<F> {
        #[pin]
        inner: F,
        timer: Option<CallTimer>,
    }
}

impl<F, RB, E> std::future::Future for Metered<F>
where
    F: std::future::Future<Output = Result<http::Response<RB>, E>>,
    RB: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    RB::Error: Into<tower::BoxError>,
{
    type Output = Result<http::Response<tonic::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // An error here drops the timer: the call counts as cancelled.
        let response = std::task::ready!(this.inner.poll(cx))?;
        let Some(mut timer) = this.timer.take() else {
            return Poll::Ready(Ok(response.map(tonic::body::Body::new)));
        };
        if let Some(code) = grpc_code(response.headers()) {
            timer.finish(code);
        }
        Poll::Ready(Ok(response.map(|body| {
            tonic::body::Body::new(MeteredBody { inner: body, timer })
        })))
    }
}

impl<S, B, RB> Service<http::Request<B>> for MetricsService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    RB: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    RB::Error: Into<tower::BoxError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Metered<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let timer = CallTimer {
            method: MethodMetrics::of(req.uri().path()),
            started: std::time::Instant::now(),
            done: false,
        };
        Metered {
            inner: self.inner.call(req),
            timer: Some(timer),
        }
    }
}

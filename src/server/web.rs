//! Browsers (`[server.grpc_web]`): CORS as an allow-list, in front of
//! tonic-web's translation and of every other layer.
//!
//! - A preflight (`OPTIONS` with `Access-Control-Request-Method`) from an
//!   origin on `allowed_origins` is answered here (204): the methods (POST),
//!   the headers a page may send, `max_age_seconds`. From any other origin:
//!   403 with no CORS header at all.
//! - A call carrying an `Origin` not on the list is refused (403, no CORS
//!   header) before authentication: it reaches no other layer. A call from
//!   an allowed origin goes on, and its answer carries
//!   `Access-Control-Allow-Origin` (that origin, never `*` with
//!   credentials), `Vary: Origin` and the headers a page may read.
//! - A call with no `Origin` (a server-side gRPC-Web client, grpcurl over
//!   HTTP/2) goes on untouched.
//! - HTTP/1.1 carries no HTTP/2 header-list limit: its headers are held to
//!   `server.max_header_list_bytes` here (431).
//!
//! Every refusal is a fixed, empty answer, counted in
//! `mfa_facade_grpc_web_refused_total` by reason.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderValue, Method, StatusCode, Version, header};
use tower::{Layer, Service};

use crate::config::GrpcWebConfig;

/// What gRPC-Web itself needs a page to send, always allowed.
const GRPC_WEB_HEADERS: &str = "content-type, x-grpc-web, x-user-agent, grpc-timeout";

pub struct Policy {
    origins: Vec<String>,
    any_origin: bool,
    credentials: bool,
    allow_headers: HeaderValue,
    expose_headers: HeaderValue,
    max_age: HeaderValue,
    max_header_bytes: usize,
}

#[derive(Clone)]
pub struct CorsLayer(Arc<Policy>);

impl CorsLayer {
    pub fn new(config: &GrpcWebConfig, max_header_bytes: u32) -> Self {
        let join = |extra: &str, list: &[String]| {
            let mut all = String::from(extra);
            for h in list {
                if !all.is_empty() {
                    all.push_str(", ");
                }
                all.push_str(h);
            }
            // Validated at load: lower-case tokens.
            HeaderValue::from_str(&all).unwrap_or_else(|_| HeaderValue::from_static(""))
        };
        Self(Arc::new(Policy {
            origins: config
                .allowed_origins
                .iter()
                .filter(|o| *o != "*")
                .cloned()
                .collect(),
            any_origin: config.allowed_origins.iter().any(|o| o == "*"),
            credentials: config.allow_credentials,
            allow_headers: join(GRPC_WEB_HEADERS, &config.allowed_headers),
            expose_headers: join("", &config.exposed_headers),
            max_age: HeaderValue::from(config.max_age_seconds),
            max_header_bytes: usize::try_from(max_header_bytes).unwrap_or(usize::MAX),
        }))
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cors {
            inner,
            policy: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Cors<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl Policy {
    /// Named on `allowed_origins` itself.
    fn listed(&self, origin: &HeaderValue) -> bool {
        let o = origin.as_bytes();
        self.origins.iter().any(|a| a.as_bytes() == o)
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        self.any_origin || self.listed(origin)
    }

    /// The origin as the answer names it.
    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        if self.any_origin && !self.credentials && !self.listed(origin) {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    fn decorate(&self, headers: &mut http::HeaderMap, origin: &HeaderValue) {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin(origin),
        );
        headers.append(header::VARY, HeaderValue::from_static("origin"));
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

fn answer<RB: Default>(status: StatusCode) -> http::Response<RB> {
    let mut r = http::Response::new(RB::default());
    *r.status_mut() = status;
    r
}

fn refused<RB: Default>(status: StatusCode, reason: &'static str) -> http::Response<RB> {
    crate::meters::grpc_web_refused(reason);
    answer(status)
}

pin_project_lite::pin_project! {
    /// The answer of [`Cors`]: the inner call's, decorated; or one made here.
    #[project = CorsProj]
    pub enum CorsFuture<F, RB> {
        Inner {
            #[pin]
            future: F,
            origin: Option<HeaderValue>,
            policy: Arc<Policy>,
        },
        Ready { response: Option<http::Response<RB>> },
    }
}

impl<F, RB, E> std::future::Future for CorsFuture<F, RB>
where
    F: std::future::Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = Result<http::Response<RB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CorsProj::Ready { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => Poll::Pending,
            },
            CorsProj::Inner {
                future,
                origin,
                policy,
            } => {
                let mut response = std::task::ready!(future.poll(cx))?;
                if let Some(origin) = origin.take() {
                    policy.decorate(response.headers_mut(), &origin);
                    response.headers_mut().insert(
                        header::ACCESS_CONTROL_EXPOSE_HEADERS,
                        policy.expose_headers.clone(),
                    );
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

impl<S, B, RB> Service<http::Request<B>> for Cors<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    RB: Default,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = CorsFuture<S::Future, RB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let p = &self.policy;
        if req.version() != Version::HTTP_2 {
            let bytes = req.headers().iter().fold(0usize, |n, (k, v)| {
                n.saturating_add(k.as_str().len())
                    .saturating_add(v.len())
                    .saturating_add(32)
            });
            if bytes > p.max_header_bytes {
                return CorsFuture::Ready {
                    response: Some(refused(
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        "headers",
                    )),
                };
            }
        }
        let origin = req.headers().get(header::ORIGIN).cloned();
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        match origin {
            Some(o) if !p.allows(&o) => CorsFuture::Ready {
                response: Some(refused(
                    StatusCode::FORBIDDEN,
                    if preflight {
                        "preflight_origin"
                    } else {
                        "origin"
                    },
                )),
            },
            Some(o) if preflight => {
                let mut r = answer::<RB>(StatusCode::NO_CONTENT);
                let h = r.headers_mut();
                p.decorate(h, &o);
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("POST"),
                );
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    p.allow_headers.clone(),
                );
                h.insert(header::ACCESS_CONTROL_MAX_AGE, p.max_age.clone());
                CorsFuture::Ready { response: Some(r) }
            }
            origin => CorsFuture::Inner {
                future: self.inner.call(req),
                origin,
                policy: p.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Answer = std::future::Ready<Result<http::Response<String>, std::convert::Infallible>>;
    type Inner = tower::util::ServiceFn<fn(http::Request<()>) -> Answer>;

    fn ok(_: http::Request<()>) -> Answer {
        std::future::ready(Ok(http::Response::new("called".to_owned())))
    }

    fn layer(origins: &[&str], credentials: bool) -> Cors<Inner> {
        let config = GrpcWebConfig {
            enabled: true,
            allowed_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            allow_credentials: credentials,
            ..Default::default()
        };
        CorsLayer::new(&config, 16 * 1024).layer(tower::service_fn(ok as fn(_) -> _))
    }

    async fn call(
        svc: &mut Cors<Inner>,
        method: Method,
        origin: Option<&str>,
    ) -> http::Response<String> {
        let mut req = http::Request::builder()
            .method(method)
            .version(Version::HTTP_11);
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        req = req.header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST");
        svc.call(req.body(()).expect("request"))
            .await
            .expect("infallible")
    }

    #[tokio::test]
    async fn only_allowed_origins_get_cors_headers_and_reach_the_service() {
        let mut svc = layer(&["https://console.example.com"], true);
        let ok = call(
            &mut svc,
            Method::OPTIONS,
            Some("https://console.example.com"),
        )
        .await;
        assert_eq!(ok.status(), StatusCode::NO_CONTENT);
        let h = ok.headers();
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://console.example.com"
        );
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert!(
            h[header::ACCESS_CONTROL_ALLOW_HEADERS]
                .to_str()
                .unwrap_or("")
                .contains("x-api-key")
        );
        for origin in [
            "https://evil.example.com",
            "https://console.example.com.evil",
            "null",
        ] {
            for method in [Method::OPTIONS, Method::POST] {
                let r = call(&mut svc, method.clone(), Some(origin)).await;
                assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin} {method}");
                assert!(r.headers().is_empty(), "{origin}: no CORS header at all");
                assert_eq!(r.body(), "", "never reached the service");
            }
        }
        let called = call(&mut svc, Method::POST, Some("https://console.example.com")).await;
        assert_eq!(called.body(), "called");
        assert!(
            called.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS]
                .to_str()
                .unwrap_or("")
                .contains("grpc-status-details-bin")
        );
        // No Origin: not a browser; untouched.
        let plain = call(&mut svc, Method::POST, None).await;
        assert_eq!(plain.body(), "called");
        assert!(
            plain
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }

    #[test]
    fn a_wildcard_cannot_go_with_credentials_and_origins_are_exact() {
        let errors = |origins: &[&str], credentials: bool| {
            let mut found = Vec::new();
            GrpcWebConfig {
                allowed_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
                allow_credentials: credentials,
                ..Default::default()
            }
            .validate(&mut |k: &str, _| found.push(k.to_owned()));
            found
        };
        assert!(errors(&["*"], false).is_empty());
        assert_eq!(errors(&["*"], true), ["server.grpc_web.allowed_origins[0]"]);
        assert!(errors(&["https://a.example.com", "http://127.0.0.1:8080"], true).is_empty());
        for bad in [
            "https://a.example.com/",
            "a.example.com",
            "ftp://a",
            "https://A.example.com",
            "https://a:0",
        ] {
            assert_eq!(errors(&[bad], false).len(), 1, "{bad}");
        }
    }
}

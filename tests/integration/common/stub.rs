//! The one scripted HTTP stub of the suite: an HTTP/1.1 server on a
//! loopback port of its own whose answers a test writes as a function of
//! the request (and of how many came before), and which keeps what it saw.
//! It stands in for Cognito's faults, STS, a JWKS endpoint: anything a test
//! needs to answer in a way moto cannot.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;

/// A request as the stub saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Seen {
    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// An answer: status, headers, body, and how long to wait before it.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// Cognito's JSON protocol: its content type and a request id.
    pub fn cognito(status: u16, body: impl Into<String>, request_id: &str) -> Self {
        Self::new(status, body)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amzn-requestid", request_id)
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// The script: the request's number (from 1) and the request, to the answer.
type Script = dyn Fn(usize, &Seen) -> Reply + Send + Sync;

/// A running stub; it stops with the test's runtime.
pub struct Stub {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Stub {
    pub async fn start(script: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stub");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let log = seen.clone();
        serve(listener, move |req| {
            let (log, script) = (log.clone(), script.clone());
            async move {
                let (parts, body) = read(req).await;
                let seen = Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let reply = {
                    let mut log = log.lock().expect("seen");
                    log.push(seen.clone());
                    script(log.len(), &seen)
                };
                tokio::time::sleep(reply.delay).await;
                let mut response = Response::new(Full::new(Bytes::from(reply.body)));
                *response.status_mut() = hyper::StatusCode::from_u16(reply.status).expect("status");
                for (name, value) in reply.headers {
                    response
                        .headers_mut()
                        .insert(name, value.parse().expect("header value"));
                }
                response
            }
        });
        Self { url, seen }
    }

    /// Requests answered so far.
    pub fn count(&self) -> usize {
        self.seen.lock().expect("seen").len()
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }
}

/// Serves HTTP/1.1 on `listener` until the test's runtime stops, each
/// request answered by `handle` (the stub's script, the recording proxy's
/// forwarding).
pub fn serve<F, Fut>(listener: tokio::net::TcpListener, handle: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let answer = handle(req);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// A request's head and its whole body.
pub async fn read(req: Request<Incoming>) -> (http::request::Parts, Bytes) {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    (parts, body)
}

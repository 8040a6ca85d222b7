//! Request ids: the caller's `x-request-id`, or a fresh one, on the
//! request's extensions and echoed on the response.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderName, HeaderValue};
use tower::{Layer, Service};

/// The header that carries a call's request id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// A caller's id longer than this, or with characters outside visible ASCII,
/// is replaced by a fresh one rather than copied into logs.
pub const MAX_REQUEST_ID_LEN: usize = 128;

const HEADER: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

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

pin_project_lite::pin_project! {
    /// The inner call, then the id on its response.
    pub struct EchoRequestId<F> {
        #[pin]
        inner: F,
        value: Option<HeaderValue>,
    }
}

impl<F, RB, E> std::future::Future for EchoRequestId<F>
where
    F: std::future::Future<Output = Result<http::Response<RB>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        if let Some(value) = this.value.take() {
            response.headers_mut().insert(HEADER, value);
        }
        Poll::Ready(Ok(response))
    }
}

impl<S, B, RB> Service<http::Request<B>> for RequestIdService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = EchoRequestId<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let id = req
            .headers()
            .get(&HEADER)
            .and_then(acceptable)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let mut buf = uuid::Uuid::encode_buffer();
                uuid::Uuid::new_v4()
                    .hyphenated()
                    .encode_lower(&mut buf)
                    .to_owned()
            });
        // Visible ASCII, so the conversion cannot fail.
        let mut value =
            HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        // Never indexed by HPACK: every call's id differs, so indexing it
        // would only cost a table search and evict the entries that repeat.
        value.set_sensitive(true);
        req.extensions_mut().insert(RequestId(id));
        EchoRequestId {
            inner: self.inner.call(req),
            value: Some(value),
        }
    }
}

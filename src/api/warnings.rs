//! The `x-mfa-facade-warning` trailer: the messages of the `warn`
//! guardrails a change passed (`auth::guardrails`), one trailer value each,
//! as Kubernetes returns an admission policy's warnings in `Warning`
//! headers. A handler puts them on its answer as a [`Warnings`] extension;
//! [`WarningLayer`] moves them into the trailers, beside `grpc-status`,
//! where gRPC clients read a call's closing metadata. An answer without
//! the extension passes through untouched.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use http::{HeaderName, HeaderValue};
use tower::{Layer, Service};

/// The trailer's name.
pub const WARNING_TRAILER: &str = "x-mfa-facade-warning";
const TRAILER: HeaderName = HeaderName::from_static(WARNING_TRAILER);
/// The most bytes of one warning, and the most warnings, on one answer.
pub const MAX_WARNING_BYTES: usize = 512;
pub const MAX_WARNINGS: usize = 16;

/// The warnings of an answer, as an extension of its response.
#[derive(Clone, Debug, Default)]
pub struct Warnings(pub Vec<String>);

impl Warnings {
    /// Header values: visible ASCII (anything else becomes `?`), bounded.
    fn values(&self) -> Vec<HeaderValue> {
        self.0
            .iter()
            .take(MAX_WARNINGS)
            .filter_map(|w| {
                let text: String = crate::domain::text::truncate(w, MAX_WARNING_BYTES)
                    .chars()
                    .map(|c| {
                        if c == ' ' || c.is_ascii_graphic() {
                            c
                        } else {
                            '?'
                        }
                    })
                    .collect();
                HeaderValue::from_str(&text).ok()
            })
            .collect()
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct WarningLayer;

impl<S> Layer<S> for WarningLayer {
    type Service = WarningService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WarningService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct WarningService<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for WarningService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Warned<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        Warned {
            inner: self.inner.call(req),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct Warned<F> {
        #[pin]
        inner: F,
    }
}

impl<F, E> std::future::Future for Warned<F>
where
    F: std::future::Future<Output = Result<http::Response<tonic::body::Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = std::task::ready!(self.project().inner.poll(cx))?;
        let Some(warnings) = response.extensions_mut().remove::<Warnings>() else {
            return Poll::Ready(Ok(response));
        };
        let values = warnings.values();
        Poll::Ready(Ok(response.map(|inner| {
            tonic::body::Body::new(WarnedBody {
                inner,
                values: Some(values),
            })
        })))
    }
}

pin_project_lite::pin_project! {
    /// A body whose trailers get the warnings (or that ends with a
    /// trailers frame of them, if it had none).
    struct WarnedBody<B> {
        #[pin]
        inner: B,
        values: Option<Vec<HeaderValue>>,
    }
}

impl<B> http_body::Body for WarnedBody<B>
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
        match std::task::ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) if frame.is_trailers() => {
                let mut trailers = frame.into_trailers().unwrap_or_default();
                for v in this.values.take().unwrap_or_default() {
                    trailers.append(TRAILER, v);
                }
                Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))))
            }
            None => Poll::Ready(this.values.take().map(|values| {
                let mut trailers = http::HeaderMap::new();
                for v in values {
                    trailers.append(TRAILER, v);
                }
                Ok(http_body::Frame::trailers(trailers))
            })),
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.values.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

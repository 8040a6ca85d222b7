//! What the whole process admits at once, whoever is calling: connections
//! (`max_connections`, checked as each is accepted) and calls in flight
//! (`max_concurrent_calls`, a load-shedding layer that answers
//! RESOURCE_EXHAUSTED at once instead of queueing). Health is not counted,
//! so probes answer while the service sheds load.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::{Connected, TcpConnectInfo};
use tower::{Layer, Service};

/// An accepted connection that holds one of the connection permits.
pub struct Limited<IO> {
    io: IO,
    _permit: OwnedSemaphorePermit,
}

impl<IO> Drop for Limited<IO> {
    fn drop(&mut self) {
        crate::meters::connection_closed();
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Limited<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Limited<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl Connected for Limited<TcpStream> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}

/// The accepted connections, at most `max` open at once: one more is
/// closed as soon as it is accepted (counted), before any byte is read.
pub fn limit_connections<S>(
    incoming: S,
    max: usize,
) -> impl Stream<Item = io::Result<Limited<TcpStream>>>
where
    S: Stream<Item = io::Result<TcpStream>>,
{
    let permits = Arc::new(Semaphore::new(max));
    incoming.filter_map(move |accepted| match accepted {
        Err(e) => Some(Err(e)),
        Ok(io) => match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                crate::meters::connection_opened();
                Some(Ok(Limited {
                    io,
                    _permit: permit,
                }))
            }
            Err(_) => {
                crate::events::ConnectionRefused {
                    peer: io.peer_addr().ok(),
                    max_connections: max,
                }
                .emit();
                None
            }
        },
    })
}

const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// Sheds calls past `max_concurrent_calls` in flight. A counter, not a
/// semaphore: every call passes here, and a tokio semaphore takes a lock
/// to give its permit back.
#[derive(Clone)]
pub struct LoadShedLayer {
    in_flight: Arc<AtomicUsize>,
    max: usize,
}

impl LoadShedLayer {
    pub fn new(max: usize) -> Self {
        Self {
            in_flight: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A slot for one call, or `None` when all `max` are taken.
    fn admit(&self) -> Option<InFlight> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(InFlight(self.in_flight.clone()))
    }
}

/// One call in flight; the slot is given back on drop.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct LoadShed<S> {
    inner: S,
    layer: LoadShedLayer,
}

pin_project_lite::pin_project! {
    /// An admitted call holding its slot until it answers, or a shed one's
    /// answer.
    #[project = ShedProjection]
    pub enum Shed<F> {
        Admitted {
            #[pin]
            inner: F,
            slot: Option<InFlight>,
        },
        Refused {
            status: Option<tonic::Status>,
        },
    }
}

impl<F, RB, E> std::future::Future for Shed<F>
where
    F: std::future::Future<Output = Result<http::Response<RB>, E>>,
    RB: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    RB::Error: Into<tower::BoxError>,
{
    type Output = Result<http::Response<tonic::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ShedProjection::Admitted { inner, slot } => {
                let response = std::task::ready!(inner.poll(cx))?;
                drop(slot.take());
                Poll::Ready(Ok(response.map(tonic::body::Body::new)))
            }
            ShedProjection::Refused { status } => Poll::Ready(Ok(status
                .take()
                .unwrap_or_else(|| tonic::Status::internal("polled after it answered"))
                .into_http())),
        }
    }
}

impl<S, B, RB> Service<http::Request<B>> for LoadShed<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    RB: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    RB::Error: Into<tower::BoxError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Shed<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let slot = if req.uri().path().starts_with(HEALTH_PREFIX) {
            None
        } else {
            match self.layer.admit() {
                Some(slot) => Some(slot),
                None => {
                    crate::meters::call_shed();
                    let status = tonic::Status::resource_exhausted(format!(
                        "the server is at server.max_concurrent_calls ({}); retry with backoff",
                        self.layer.max
                    ));
                    return Shed::Refused {
                        status: Some(status),
                    };
                }
            }
        };
        Shed::Admitted {
            inner: self.inner.call(req),
            slot,
        }
    }
}

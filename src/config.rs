//! The typed configuration: a TOML file, then `MFA_FACADE_*` environment
//! overrides, validated at start-up with errors that name the key.
//!
//! The key names are the operator contract of DESIGN.md §8: keep them.

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

pub mod reload;
pub mod schema;
mod server;
mod warnings;

pub use server::{GrpcWebConfig, ServerConfig, TlsConfig};

pub use crate::audit::settings::*;
pub use crate::auth::settings::*;
use crate::auth::{
    AuthState, MtlsNaming, api_key::ApiKeys, guardrails::Guardrails, jwt::JwtVerifier,
    policy::Policy,
};
pub use crate::backend::settings::*;
pub use crate::limits::settings::*;
pub use crate::settings::{MAX_RATE_PER_SECOND, MAX_SECONDS, MIN_RATE_PER_SECOND};
pub use crate::telemetry::settings::*;

/// Default gRPC address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default Prometheus address.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
/// The prefix of environment overrides: `MFA_FACADE_LISTEN`,
/// `MFA_FACADE_BACKEND_ENDPOINT_URL`, ...
pub const ENV_PREFIX: &str = "MFA_FACADE_";

/// The keys an environment variable may override, dotted. The variable's name
/// is the prefix plus the key, upper-cased, with dots as underscores.
pub const ENV_KEYS: &[&str] = &[
    "listen",
    "metrics_listen",
    "backend.kind",
    "backend.data_file",
    "backend.region",
    "backend.endpoint_url",
    "backend.connect_timeout_ms",
    "backend.attempt_timeout_ms",
    "backend.call_timeout_ms",
    "backend.max_attempts",
    "audit.file",
    "limits.redis.url",
    "tracing.endpoint",
    "tracing.sampling_ratio",
];

#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// gRPC listen address.
    #[serde(default = "default_listen")]
    #[schemars(extend("x-production" = "the default is loopback: a pod listens on 0.0.0.0 for its Service"))]
    pub listen: SocketAddr,
    /// Prometheus listen address.
    #[serde(default = "default_metrics_listen")]
    #[schemars(extend("x-production" = "the default is loopback: Prometheus scrapes the pod's address"))]
    pub metrics_listen: SocketAddr,
    #[serde(default)]
    pub backend: BackendConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    #[schemars(extend("x-production" = "without rules no caller is granted anything"))]
    pub policy: PolicyConfig,
    /// `[[guardrails]]`: what every change of a pool's MFA configuration
    /// must satisfy, whoever makes it.
    #[serde(default)]
    pub guardrails: Vec<GuardrailConfig>,
    /// `[tls]`: serve gRPC over TLS; with `client_ca_file`, accept client
    /// certificates (mTLS) as a way in.
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[audit]`: who changed what, in a hash chain. Unset: no audit.
    #[schemars(extend("x-production" = "who changed what: without it no call leaves a record"))]
    pub audit: Option<AuditConfig>,
    #[serde(default)]
    pub server: ServerConfig,
    /// `[tracing]`: OpenTelemetry spans over OTLP/gRPC. Unset: no tracing.
    pub tracing: Option<TracingConfig>,
    /// `[history]`: pools' MFA histories and the watch for external changes.
    #[serde(default)]
    pub history: HistoryConfig,
}

impl Config {
    /// The signing key of a local backend's `[audit.signing]` without a
    /// `key_file`: beside the data file (`<data_file>.audit-signing.pem`,
    /// its public key `.pub`), made on first use.
    pub fn development_signing_key(&mut self) -> Option<std::path::PathBuf> {
        let data_file = self.backend.data_file.clone();
        let local = self.backend.kind == BackendKind::Local;
        let signing = self.audit.as_mut()?.signing.as_mut()?;
        if signing.key_file.is_some() || signing.kms_key_id.is_some() || !local {
            return None;
        }
        let mut path = data_file.into_os_string();
        path.push(".audit-signing.pem");
        let path = std::path::PathBuf::from(path);
        signing.key_file = Some(path.clone());
        Some(path)
    }
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 50051)))
}
fn default_metrics_listen() -> SocketAddr {
    DEFAULT_METRICS_LISTEN
        .parse()
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9464)))
}
/// One problem with the configuration, with the key it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            metrics_listen: default_metrics_listen(),
            backend: BackendConfig::default(),
            auth: AuthConfig::default(),
            policy: PolicyConfig::default(),
            guardrails: Vec::new(),
            tls: None,
            limits: LimitsConfig::default(),
            audit: None,
            history: HistoryConfig::default(),
            server: ServerConfig::default(),
            tracing: None,
        }
    }
}

impl Config {
    /// Parses TOML text, applies the overrides in `env`, and validates.
    /// Returns every problem found, each naming its key.
    pub fn from_toml_and_env<I>(text: &str, env: I) -> Result<Config, Vec<ConfigError>>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut value: toml::Table = toml::from_str(text).map_err(|e| {
            vec![ConfigError {
                key: "(file)".into(),
                message: e.message().to_owned(),
            }]
        })?;
        apply_env(&mut value, env)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(value)).map_err(|e| {
                let key = e.path().to_string();
                vec![ConfigError {
                    key: if key == "." {
                        "(top level)".into()
                    } else {
                        key
                    },
                    message: e.into_inner().to_string(),
                }]
            })?;
        let errors = config.validate();
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    /// Reads `path` (or nothing, for the defaults), the process
    /// environment, and `auth.api_keys_file` if set.
    pub fn load(path: Option<&std::path::Path>) -> Result<Config, Vec<ConfigError>> {
        Self::load_with(path, &|p| std::fs::read_to_string(p))
    }

    /// [`Config::load`], its files read by `read` (a reload reads them
    /// from the snapshot it fingerprinted, so what it loads is what it
    /// compares with next time).
    pub fn load_with(
        path: Option<&std::path::Path>,
        read: &dyn Fn(&std::path::Path) -> std::io::Result<String>,
    ) -> Result<Config, Vec<ConfigError>> {
        let text = match path {
            Some(p) => read(p).map_err(|e| {
                vec![ConfigError {
                    key: "(file)".into(),
                    message: format!("cannot read {}: {e}", p.display()),
                }]
            })?,
            None => String::new(),
        };
        let mut config = Self::from_toml_and_env(&text, std::env::vars())?;
        if let Some(keys_path) = config.auth.api_keys_file.clone() {
            let keys_error = |message: String| {
                vec![ConfigError {
                    key: "auth.api_keys_file".into(),
                    message,
                }]
            };
            let text = read(&keys_path)
                .map_err(|e| keys_error(format!("cannot read {}: {e}", keys_path.display())))?;
            let file: ApiKeysFile = toml::from_str(&text)
                .map_err(|e| keys_error(format!("{}: {}", keys_path.display(), e.message())))?;
            config.auth.api_keys.extend(file.api_keys);
            let errors = config.validate();
            if !errors.is_empty() {
                return Err(errors);
            }
        }
        Ok(config)
    }

    /// The files whose change reloads keys, JWKS and policy.
    pub fn watched_files(&self, config_path: &std::path::Path) -> Vec<PathBuf> {
        let mut files = vec![config_path.to_owned()];
        files.extend(self.auth.api_keys_file.clone());
        files.extend(self.auth.jwt.as_ref().and_then(|j| j.jwks_file.clone()));
        files
    }

    /// The rules serde cannot express, each stage's by its own settings.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut err = |key: &str, message: String| {
            errors.push(ConfigError {
                key: key.into(),
                message,
            })
        };
        // The bounds every number's field declares, in one walk.
        schema::check_bounds(self, &mut err);
        self.backend.validate(&mut err);
        validate_guardrails(&self.guardrails, &mut err);
        self.auth.validate(&mut err);
        if let Some(t) = &self.tls {
            t.validate(&mut err);
        }
        self.policy.validate(&mut err);
        self.limits.validate(&mut err);
        if let Some(a) = &self.audit {
            a.validate(&mut err);
            if let Some(s) = &a.signing
                && s.key_file.is_none()
                && s.kms_key_id.is_none()
                && self.backend.kind != BackendKind::Local
            {
                err(
                    "audit.signing.key_file",
                    "must be set (an Ed25519 PKCS#8 PEM, e.g. from a Secret; `mfa-facade audit keygen FILE`), or kms_key_id: only the local backend makes a key of its own".into(),
                );
            }
        }
        self.server.validate(&mut err);
        self.history.validate(&mut err);
        if let Some(t) = &self.tracing {
            t.check(&mut err);
        }
        errors
    }
}

/// The auth stage as the configuration describes it: `[auth]`, `[policy]`
/// and `[tls]`'s naming of certificate principals.
impl AuthState {
    /// Keys and policy from the configuration; a JWT verifier, if
    /// configured, is attached with [`AuthState::with_jwt`].
    pub fn from_config(config: &Config) -> Self {
        Self {
            api_keys: ApiKeys::new(&config.auth.api_keys),
            jwt: None,
            policy: Policy::new(config.policy.rules.clone()),
            // Config::validate compiled them already; a file that does not
            // compile never gets here.
            guardrails: Guardrails::compile(&config.guardrails).unwrap_or_default(),
            open_reflection: config.auth.open_reflection,
            mtls: config
                .tls
                .as_ref()
                .map(|t| MtlsNaming {
                    prefix: t.principal_prefix.clone(),
                    cn_with_sans: t.cn_with_sans,
                })
                .unwrap_or_default(),
        }
    }

    /// Everything the configuration names, the JWKS read once. On a
    /// reload, `previous` is the state being replaced: its last good JWKS
    /// seeds the new verifier when both read the same source, so a reload
    /// during an IdP outage keeps verifying tokens (within
    /// `max_stale_seconds`).
    pub async fn load(config: &Config, previous: Option<&AuthState>) -> Self {
        let mut state = Self::from_config(config);
        if let Some(jwt) = &config.auth.jwt {
            let last_good = previous
                .and_then(|p| p.jwt.as_ref())
                .and_then(|v| v.last_good_for(jwt));
            let verifier = JwtVerifier::new(jwt.clone(), last_good).await;
            verifier.spawn_refresh();
            state.jwt = Some(verifier);
        }
        state
    }
}

/// Sets each overridable key whose variable is present. A value that parses
/// as a TOML scalar (number, boolean) is taken as one, else as a string.
fn apply_env<I>(table: &mut toml::Table, env: I) -> Result<(), Vec<ConfigError>>
where
    I: IntoIterator<Item = (String, String)>,
{
    let env: std::collections::HashMap<String, String> = env.into_iter().collect();
    for key in ENV_KEYS {
        let var = format!("{ENV_PREFIX}{}", key.replace('.', "_").to_uppercase());
        let Some(raw) = env.get(&var) else { continue };
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(|v| !v.is_table() && !v.is_array())
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let mut node = &mut *table;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_owned(), value.clone());
                break;
            }
            let child = node
                .entry(part.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = child.as_table_mut().ok_or_else(|| {
                vec![ConfigError {
                    key: part.to_owned(),
                    message: format!("must be a table for {var} to override {key}"),
                }]
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    /// The keys of the errors a config text has, in order.
    fn error_keys(text: &str) -> Vec<String> {
        let mut keys = Config::from_toml_and_env(text, no_env())
            .unwrap_err()
            .into_iter()
            .map(|e| e.key)
            .collect::<Vec<_>>();
        keys.sort();
        keys
    }

    /// A laptop's defaults are warned of only where other machines reach
    /// the service, one warning per default left, and none once set.
    #[test]
    fn laptop_defaults_are_warned_of_off_loopback() {
        let keys = |text: &str| -> Vec<String> {
            Config::from_toml_and_env(text, no_env())
                .expect("config")
                .laptop_defaults()
                .into_iter()
                .map(|w| w.key)
                .collect()
        };
        let cognito = "[backend]\nkind = \"cognito\"\nregion = \"us-east-1\"\n";
        assert!(keys(&format!("listen = \"127.0.0.1:50051\"\n{cognito}")).is_empty());
        assert_eq!(
            keys(&format!("listen = \"0.0.0.0:50051\"\n{cognito}")),
            ["audit", "limits.redis", "server.drain_delay_ms"]
        );
        // The local backend is one replica's file: no Redis to ask for.
        assert_eq!(
            keys("listen = \"0.0.0.0:50051\"\n"),
            ["audit", "server.drain_delay_ms"]
        );
        let set = format!(
            "listen = \"0.0.0.0:50051\"\n[server]\ndrain_delay_ms = 5000\n[audit]\nstdout = true\n\
             [limits.redis]\nurl = \"redis://127.0.0.1:6379/0\"\n{cognito}"
        );
        assert!(keys(&set).is_empty(), "{:?}", keys(&set));
    }

    #[test]
    fn tracing_is_off_unless_set_and_every_bad_key_is_named() {
        assert!(
            Config::from_toml_and_env("", no_env())
                .unwrap()
                .tracing
                .is_none()
        );
        let c = Config::from_toml_and_env(
            "[tracing]\nendpoint = \"http://127.0.0.1:4317\"\n",
            no_env(),
        )
        .unwrap();
        let t = c.tracing.unwrap();
        assert_eq!(t.sampling_ratio, DEFAULT_SAMPLING_RATIO);
        assert!(t.parent_based);
        assert_eq!(t.max_queue_spans, DEFAULT_MAX_QUEUE_SPANS);
        let mut keys = error_keys(
            "[tracing]\nendpoint = \"ftp://x\"\nsampling_ratio = 1.5\ntimeout_ms = 5\n\
             max_queue_spans = 10\nmax_export_batch_spans = 11\nservice_name = \"\"\n\
             headers = { \"Bad Name\" = \"v\", \"ok\" = \"line\\nbreak\" }\n",
        );
        keys.sort();
        assert_eq!(
            keys,
            [
                "tracing.endpoint",
                "tracing.headers.Bad Name",
                "tracing.headers.ok",
                "tracing.max_export_batch_spans",
                "tracing.sampling_ratio",
                "tracing.service_name",
                "tracing.timeout_ms",
            ]
        );
        let c = Config::from_toml_and_env(
            "",
            [
                (
                    "MFA_FACADE_TRACING_ENDPOINT".to_owned(),
                    "http://collector:4317".to_owned(),
                ),
                (
                    "MFA_FACADE_TRACING_SAMPLING_RATIO".to_owned(),
                    "0.25".to_owned(),
                ),
            ],
        )
        .unwrap();
        let t = c.tracing.unwrap();
        assert_eq!(t.endpoint, "http://collector:4317");
        assert_eq!(t.sampling_ratio, 0.25);
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let c = Config::from_toml_and_env("", no_env()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.metrics_listen.to_string(), DEFAULT_METRICS_LISTEN);
        assert_eq!(c.backend.kind, BackendKind::Local);
        assert_eq!(c.backend.max_attempts, DEFAULT_MAX_ATTEMPTS);
    }

    #[test]
    fn the_operator_contract_keys_parse() {
        let text = r#"
            listen = "127.0.0.1:6000"
            metrics_listen = "127.0.0.1:6001"
            [backend]
            kind = "cognito"
            data_file = "x.json"
            region = "eu-west-1"
            endpoint_url = "http://127.0.0.1:5000"
        "#;
        let c = Config::from_toml_and_env(text, no_env()).unwrap();
        assert_eq!(c.listen.port(), 6000);
        assert_eq!(c.backend.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            c.backend.endpoint_url.as_deref(),
            Some("http://127.0.0.1:5000")
        );
    }

    #[test]
    fn limits_parse_and_every_bad_key_is_named() {
        let text = r#"
            [limits.default]
            per_second = 50
            burst = 100
            [limits.methods."cognito.mfa.v1.UserPoolMfaService/SetUserPoolMfaConfig"]
            per_second = 0.5
            burst = 1
            [limits.quota]
            enabled = true
            [limits.redis]
            url = "redis://127.0.0.1:6379/0"
        "#;
        let c = Config::from_toml_and_env(text, no_env()).unwrap();
        assert_eq!(c.limits.default.per_second, 50.0);
        assert_eq!(c.limits.quota.user_pool_resource_update, 15.0);
        assert_eq!(c.limits.quota.enabled, Some(true));
        let redis = c.limits.redis.as_ref().unwrap();
        assert_eq!((redis.timeout_ms, redis.fallback_share), (25, 1.0));

        let env = vec![(
            "MFA_FACADE_LIMITS_REDIS_URL".to_owned(),
            "redis://10.0.0.5:6379".to_owned(),
        )];
        let c = Config::from_toml_and_env("", env).unwrap();
        assert_eq!(c.limits.redis.unwrap().url, "redis://10.0.0.5:6379");

        let bad = r#"
            [limits.default]
            per_second = 0
            burst = 0
            [limits.methods."cognito.mfa.v1.UserPoolMfaService/Nope"]
            per_second = 1
            burst = 1
            [limits.quota]
            user_read = -1
            [limits.redis]
            url = "http://127.0.0.1:6379"
            timeout_ms = 100
            fallback_share = 2
        "#;
        let keys = error_keys(bad);
        assert_eq!(
            keys,
            [
                "limits.default.burst",
                "limits.default.per_second",
                "limits.methods.\"cognito.mfa.v1.UserPoolMfaService/Nope\"",
                "limits.quota.user_read",
                "limits.redis.fallback_share",
                "limits.redis.timeout_ms",
                "limits.redis.url",
            ]
        );
    }

    #[test]
    fn audit_parses_and_every_bad_key_is_named() {
        let text = r#"
            [audit]
            file = "audit.jsonl"
            fsync = "record"
            [[audit.rules]]
            methods = ["cognito.mfa.v1.UserMfaService/*Get*"]
            level = "metadata"
        "#;
        let c = Config::from_toml_and_env(text, no_env()).unwrap();
        let a = c.audit.unwrap();
        assert_eq!(a.fsync, FsyncPolicy::Record);
        assert!(a.fail_closed, "fail_closed defaults to true");
        assert_eq!(a.default_level, AuditLevel::Request);
        assert_eq!(
            a.read_level,
            AuditLevel::Metadata,
            "reads: metadata by default"
        );
        assert_eq!(a.rules[0].level, AuditLevel::Metadata);
        assert_eq!(a.rules[0].stages, None);
        let raised = text.replace(
            "level = \"metadata\"",
            "level = \"request\"\nstages = \"both\"",
        );
        let c = Config::from_toml_and_env(&raised, no_env()).unwrap();
        assert_eq!(c.audit.unwrap().rules[0].stages, Some(AuditStages::Both));

        let bad = r#"
            [audit]
            group_commit_ms = 0
            max_file_bytes = 10
            fingerprint_key_file = "/nonexistent/key"
            [[audit.rules]]
            methods = []
            level = "metadata"
        "#;
        let keys = error_keys(bad);
        assert_eq!(
            keys,
            [
                "audit",
                "audit.fingerprint_key_file",
                "audit.group_commit_ms",
                "audit.max_file_bytes",
                "audit.rules[0].methods",
            ]
        );
        let unknown = "[audit]\nfile = \"a\"\nlevel = \"everything\"\n";
        assert!(Config::from_toml_and_env(unknown, no_env()).is_err());
    }

    #[test]
    fn env_overrides_the_file() {
        let env = vec![
            ("MFA_FACADE_LISTEN".to_owned(), "127.0.0.1:7000".to_owned()),
            ("MFA_FACADE_BACKEND_MAX_ATTEMPTS".to_owned(), "5".to_owned()),
            (
                "MFA_FACADE_BACKEND_ENDPOINT_URL".to_owned(),
                "http://127.0.0.1:9".to_owned(),
            ),
        ];
        let c = Config::from_toml_and_env("listen = \"127.0.0.1:1\"", env).unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.backend.max_attempts, 5);
        assert_eq!(
            c.backend.endpoint_url.as_deref(),
            Some("http://127.0.0.1:9")
        );
    }

    #[test]
    fn auth_and_policy_parse_and_are_checked() {
        let text = r#"
            [[auth.api_keys]]
            principal = "billing-svc"
            sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            [[policy.rules]]
            principals = ["billing-svc"]
            methods = ["cognito.mfa.v1.UserPoolMfaService/*"]
            user_pools = ["us-east-1_*"]
        "#;
        let c = Config::from_toml_and_env(text, no_env()).unwrap();
        assert_eq!(c.auth.api_keys[0].principal, "billing-svc");
        assert!(c.auth.open_reflection);
        assert_eq!(c.policy.rules[0].user_pools, ["us-east-1_*"]);

        let bad = r#"
            [[auth.api_keys]]
            principal = ""
            sha256 = "not-hex"
            [[policy.rules]]
            principals = ["x"]
            methods = []
            user_pools = ["*"]
        "#;
        let keys = error_keys(bad);
        assert_eq!(
            keys,
            [
                "auth.api_keys[0].principal",
                "auth.api_keys[0].sha256",
                "policy.rules[0].methods",
            ]
        );
        let missing_pools = "[[policy.rules]]\nprincipals = [\"x\"]\nmethods = [\"*\"]\n";
        let e = Config::from_toml_and_env(missing_pools, no_env()).unwrap_err();
        assert!(e[0].key.starts_with("policy.rules"), "{e:?}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::from_toml_and_env("[backend]\nregoin = \"x\"", no_env()).unwrap_err();
        assert_eq!(e[0].key, "backend.regoin");
        assert!(e[0].message.contains("regoin"), "{e:?}");

        let e = Config::from_toml_and_env("listen = \"not an address\"", no_env()).unwrap_err();
        assert_eq!(e[0].key, "listen");

        let text = "[backend]\nendpoint_url = \"127.0.0.1:5000\"\nmax_attempts = 0\nattempt_timeout_ms = 0";
        let e = Config::from_toml_and_env(text, no_env()).unwrap_err();
        let mut keys: Vec<_> = e.iter().map(|e| e.key.as_str()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "backend.attempt_timeout_ms",
                "backend.endpoint_url",
                "backend.max_attempts",
            ]
        );

        let e = Config::from_toml_and_env("[backend]\nkind = \"dynamo\"", no_env()).unwrap_err();
        assert_eq!(e[0].key, "backend.kind");
    }

    #[test]
    fn regions_and_their_endpoints_are_checked_with_their_keys() {
        let good = r#"
            [backend]
            kind = "cognito"
            region = "us-east-1"
            regions = ["eu-west-1", "us-gov-west-1"]
            region_endpoints = { "eu-west-1" = "https://cognito-idp.eu-west-1.amazonaws.com" }
        "#;
        let c = Config::from_toml_and_env(good, no_env()).unwrap();
        assert_eq!(c.backend.regions, ["eu-west-1", "us-gov-west-1"]);
        let bad = r#"
            [backend]
            kind = "cognito"
            region = "us-east-1"
            regions = ["eu-west-1", "EU_WEST", "eu-west-1"]
            region_endpoints = { "ap-south-1" = "ftp://x" }
        "#;
        let keys = error_keys(bad);
        assert_eq!(
            keys,
            [
                "backend.region_endpoints.\"ap-south-1\"",
                "backend.region_endpoints.\"ap-south-1\"",
                "backend.regions[1]",
                "backend.regions[2]",
            ]
        );
    }

    #[test]
    fn accounts_are_checked_with_their_keys() {
        let bad = r#"
            [backend]
            kind = "cognito"
            [[backend.accounts]]
            name = "prod"
            user_pools = ["eu-west-1_Prod*"]
            role_arn = "arn:aws:iam::222233334444:role/mfa-facade"
            [[backend.accounts]]
            name = "prod"
            user_pools = []
            role_arn = "arn:aws:iam::2222:role/x"
            external_id_file = "/nonexistent/external-id"
            session_name = "has space"
            sts_endpoint_url = "sts.example.com"
        "#;
        let keys = error_keys(bad);
        assert_eq!(
            keys,
            [
                "backend.accounts[1].external_id_file",
                "backend.accounts[1].name",
                "backend.accounts[1].role_arn",
                "backend.accounts[1].session_name",
                "backend.accounts[1].sts_endpoint_url",
                "backend.accounts[1].user_pools",
            ]
        );
    }
}

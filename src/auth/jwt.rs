//! JWT bearer tokens (`authorization: Bearer <jwt>`), verified against a
//! JWKS: Kubernetes projected service-account tokens, or any OIDC provider.
//!
//! - issuer and audience are required, not merely checked when present;
//!   exp is required; exp and nbf allow a bounded leeway.
//! - an algorithm allow-list of asymmetric algorithms only: `none` and HS*
//!   can never be configured, so an HS256 token "signed" with the RSA public
//!   key's bytes is refused before any key is touched.
//! - every token must name a `kid` found in the JWKS. An unknown kid
//!   triggers one re-read of the JWKS (a file, or a URL over https with an
//!   optional extra CA and bearer token, as the Kubernetes API server wants), at most once per
//!   `min_refetch_seconds`; the JWKS is also re-read every
//!   `refresh_seconds`. A JWKS that cannot be read keeps the last good one,
//!   and with none, every bearer token is refused: an outage never allows.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind, jwk::JwkSet};
use tokio::sync::Mutex;

use crate::config::JwtConfig;

/// Where the JWKS comes from.
enum Source {
    File(PathBuf),
    Url {
        url: String,
        client: reqwest::Client,
    },
    /// The configuration could not be turned into a source (a bad CA file):
    /// every bearer token is refused.
    Broken(String),
}

/// Time for one JWKS fetch.
pub const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

pub struct JwtVerifier {
    config: JwtConfig,
    source: Source,
    algorithms: Vec<Algorithm>,
    jwks: ArcSwapOption<JwkSet>,
    last_read: Mutex<Option<Instant>>,
}

fn http_client(ca_file: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().connect_timeout(JWKS_FETCH_TIMEOUT);
    if let Some(path) = ca_file {
        let pem =
            std::fs::read(path).map_err(|e| format!("jwks_ca_file {}: {e}", path.display()))?;
        for cert in
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("jwks_ca_file: {e}"))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| format!("JWKS client: {e}"))
}

/// The algorithms a configuration may allow.
pub const ASYMMETRIC: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    ASYMMETRIC
        .contains(&name)
        .then(|| name.parse().ok())
        .flatten()
}

impl JwtVerifier {
    /// Reads the JWKS once; an unreadable JWKS is logged, not fatal: bearer
    /// tokens are refused until it can be read.
    pub async fn new(config: JwtConfig) -> Arc<Self> {
        let algorithms = config
            .algorithms
            .iter()
            .filter_map(|a| parse_algorithm(a))
            .collect();
        let source = match (&config.jwks_file, &config.jwks_url) {
            (Some(path), _) => Source::File(path.clone()),
            (None, Some(url)) => match http_client(config.jwks_ca_file.as_deref()) {
                Ok(client) => Source::Url {
                    url: url.clone(),
                    client,
                },
                Err(e) => Source::Broken(e),
            },
            (None, None) => Source::Broken("no jwks_file or jwks_url".into()),
        };
        let verifier = Arc::new(Self {
            config,
            source,
            algorithms,
            jwks: ArcSwapOption::empty(),
            last_read: Mutex::new(None),
        });
        verifier.refresh().await;
        verifier
    }

    /// Reads the JWKS from its source.
    async fn fetch(&self) -> Result<JwkSet, String> {
        let bytes = match &self.source {
            Source::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?,
            Source::Url { url, client } => {
                let mut request = client.get(url).timeout(JWKS_FETCH_TIMEOUT);
                if let Some(token_file) = &self.config.jwks_bearer_token_file {
                    let token = tokio::fs::read_to_string(token_file)
                        .await
                        .map_err(|e| format!("{}: {e}", token_file.display()))?;
                    request = request.bearer_auth(token.trim());
                }
                let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!("{url}: HTTP {}", response.status()));
                }
                response
                    .bytes()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?
                    .to_vec()
            }
            Source::Broken(why) => return Err(why.clone()),
        };
        serde_json::from_slice::<JwkSet>(&bytes).map_err(|e| format!("not a JWKS: {e}"))
    }

    /// Re-reads the JWKS; keeps the last good set on failure.
    pub async fn refresh(&self) -> bool {
        *self.last_read.lock().await = Some(Instant::now());
        match self.fetch().await {
            Ok(set) => {
                tracing::debug!(message = "JWKS loaded.", keys = set.keys.len());
                metrics::gauge!("mfa_facade_jwks_keys").set(set.keys.len() as f64);
                metrics::gauge!("mfa_facade_jwks_last_success_timestamp_seconds").set(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                );
                metrics::gauge!("mfa_facade_jwks_stale").set(0.0);
                self.jwks.store(Some(Arc::new(set)));
                true
            }
            Err(error) => {
                metrics::counter!("mfa_facade_jwks_refresh_failures_total").increment(1);
                metrics::gauge!("mfa_facade_jwks_stale").set(1.0);
                tracing::warn!(
                    message = "JWKS could not be read; keeping the last good one.",
                    error
                );
                false
            }
        }
    }

    /// Refreshes on the configured schedule until the verifier is dropped.
    pub fn spawn_refresh(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = Duration::from_secs(self.config.refresh_seconds.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(verifier) = weak.upgrade() else {
                    return;
                };
                verifier.refresh().await;
            }
        });
    }

    /// A re-read for an unknown kid, at most once per `min_refetch_seconds`.
    async fn refetch_for_unknown_kid(&self) -> bool {
        let min = Duration::from_secs(self.config.min_refetch_seconds);
        let recent = self
            .last_read
            .lock()
            .await
            .is_some_and(|t| t.elapsed() < min);
        !recent && self.refresh().await
    }

    /// Verifies `token` and returns its principal; the error is a reason fit
    /// to return to the caller.
    pub async fn verify(&self, token: &str) -> Result<String, &'static str> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| "the bearer token is not a JWT")?;
        if !self.algorithms.contains(&header.alg) {
            return Err("the bearer token's algorithm is not allowed");
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or("the bearer token names no key (kid)")?;
        let mut jwk = self.jwks.load_full().and_then(|set| set.find(kid).cloned());
        if jwk.is_none() && self.refetch_for_unknown_kid().await {
            jwk = self.jwks.load_full().and_then(|set| set.find(kid).cloned());
        }
        if self.jwks.load().is_none() {
            return Err("bearer tokens cannot be verified now (no JWKS)");
        }
        let jwk = jwk.ok_or("the bearer token's key (kid) is not in the JWKS")?;
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|_| "the JWKS key for this kid is unusable")?;

        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = self.config.leeway_seconds;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&self.config.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => "the bearer token has expired",
            ErrorKind::ImmatureSignature => "the bearer token is not valid yet (nbf)",
            ErrorKind::InvalidIssuer => "the bearer token's issuer is not accepted",
            ErrorKind::InvalidAudience => "the bearer token's audience is not accepted",
            ErrorKind::MissingRequiredClaim(_) => {
                "the bearer token lacks a required claim (exp, iss, aud)"
            }
            ErrorKind::InvalidSignature => "the bearer token's signature is not valid",
            ErrorKind::InvalidAlgorithm => "the bearer token's algorithm does not fit its key",
            _ => "the bearer token is not valid",
        })?;
        data.claims
            .get(&self.config.principal_claim)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or("the bearer token lacks the principal claim")
    }
}

//! JWT bearer tokens (`authorization: Bearer <jwt>`), verified against a
//! JWKS: Kubernetes projected service-account tokens, or any OIDC provider.
//!
//! - issuer and audience are required, not merely checked when present;
//!   exp is required; exp and nbf allow a bounded leeway.
//! - an algorithm allow-list of asymmetric algorithms only: `none` and HS*
//!   can never be configured, so an HS256 token "signed" with the RSA public
//!   key's bytes is refused before any key is touched.
//! - every token must name a `kid` found in the JWKS, and that key must be
//!   a signing key: a JWK whose `use` is not `sig`, whose `key_ops` lack
//!   `verify`, or whose `alg` is not the token's, is not used.
//! - optional: the header `typ` (`allowed_types`) and claims with exact
//!   values (`required_claims`, e.g. `token_use = "access"`).
//! - the principal is `principal_prefix` + the `principal_claim`'s value.
//! - An unknown kid triggers one re-read of the JWKS (a file, or a URL over
//!   https with an optional extra CA and bearer token, as the Kubernetes API
//!   server wants): single-flight (callers that arrive during the re-read
//!   wait for it) and at most once per `min_refetch_seconds`; the JWKS is
//!   also re-read every `refresh_seconds`. A document over
//!   `max_jwks_bytes` is refused unread. A JWKS that cannot be read keeps
//!   the last good one for `max_stale_seconds` (a reload of the
//!   configuration hands it on too), counted in
//!   `mfa_facade_jwks_stale_verifications_total`; past that, or with none,
//!   every bearer token is refused: an outage never allows.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{Jwk, JwkSet, KeyOperations, PublicKeyUse},
};
use tokio::sync::Mutex;

use super::settings::JwtConfig;

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

/// A JWKS as read, and when.
pub struct Loaded {
    set: JwkSet,
    at: Instant,
}

pub struct JwtVerifier {
    config: JwtConfig,
    source: Source,
    algorithms: Vec<Algorithm>,
    jwks: ArcSwapOption<Loaded>,
    /// The last read's start, held across an unknown-kid re-read so that
    /// concurrent callers wait for one fetch instead of starting their own.
    last_read: Mutex<Option<Instant>>,
    /// The last refresh failed: tokens are verified with an older set.
    stale: AtomicBool,
}

/// A `jwks_url` the verifier may fetch: https, or http to a loopback
/// address only, decided on the parsed URL (not a prefix of its text), and
/// never with credentials in it.
pub fn check_jwks_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "{url:?} carries credentials; use jwks_bearer_token_file"
        ));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "{url:?} must be https:// (http only to a loopback address: 127.0.0.0/8, [::1], localhost)"
        )),
    }
}

/// Reads at most `max` bytes of a response body; more is an error.
async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(format!("the JWKS is larger than max_jwks_bytes ({max})"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > max {
            return Err(format!("the JWKS is larger than max_jwks_bytes ({max})"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads at most `max` bytes of a file; more is an error.
async fn read_file_capped(path: &std::path::Path, max: usize) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut body = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut body)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if body.len() > max {
        return Err(format!(
            "{}: the JWKS is larger than max_jwks_bytes ({max})",
            path.display()
        ));
    }
    Ok(body)
}

/// A typ as RFC 8725 §3.11 compares it: without case and `application/`.
fn media_type(typ: &str) -> String {
    let t = typ.trim().to_ascii_lowercase();
    t.strip_prefix("application/")
        .map(str::to_owned)
        .unwrap_or(t)
}

/// Whether a JWK may verify a token signed with `alg`.
fn signing_key(jwk: &Jwk, alg: Algorithm) -> bool {
    let c = &jwk.common;
    c.public_key_use
        .as_ref()
        .is_none_or(|u| *u == PublicKeyUse::Signature)
        && c.key_operations
            .as_ref()
            .is_none_or(|ops| ops.contains(&KeyOperations::Verify))
        && c.key_algorithm
            .is_none_or(|a| format!("{a:?}") == format!("{alg:?}"))
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
    /// tokens are verified with `last_good` (a reload's inheritance) while
    /// it is fresh enough, else refused until the JWKS can be read.
    pub async fn new(config: JwtConfig, last_good: Option<Arc<Loaded>>) -> Arc<Self> {
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
            jwks: ArcSwapOption::new(last_good),
            last_read: Mutex::new(None),
            stale: AtomicBool::new(false),
        });
        verifier.refresh().await;
        verifier
    }

    /// The last good JWKS, for a verifier of `next` that reads the same
    /// source (a reload that changed only other keys).
    pub fn last_good_for(&self, next: &JwtConfig) -> Option<Arc<Loaded>> {
        (self.config.jwks_file == next.jwks_file && self.config.jwks_url == next.jwks_url)
            .then(|| self.jwks.load_full())
            .flatten()
    }

    /// Reads the JWKS from its source.
    async fn fetch(&self) -> Result<JwkSet, String> {
        let max = self.config.max_jwks_bytes;
        let bytes = match &self.source {
            Source::File(path) => read_file_capped(path, max).await?,
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
                read_capped(response, max)
                    .await
                    .map_err(|e| format!("{url}: {e}"))?
            }
            Source::Broken(why) => return Err(why.clone()),
        };
        serde_json::from_slice::<JwkSet>(&bytes).map_err(|e| format!("not a JWKS: {e}"))
    }

    /// Re-reads the JWKS now; keeps the last good set on failure.
    pub async fn refresh(&self) -> bool {
        *self.last_read.lock().await = Some(Instant::now());
        self.read_and_store().await
    }

    /// Reads the JWKS and stores it; the caller has recorded the read's
    /// start in `last_read`.
    async fn read_and_store(&self) -> bool {
        match self.fetch().await {
            Ok(set) => {
                crate::events::JwksLoaded {
                    keys: set.keys.len(),
                }
                .emit();
                self.stale.store(false, Ordering::Relaxed);
                self.jwks.store(Some(Arc::new(Loaded {
                    set,
                    at: Instant::now(),
                })));
                true
            }
            Err(error) => {
                self.stale.store(true, Ordering::Relaxed);
                crate::events::JwksRefreshFailed { error: &error }.emit();
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

    /// A re-read for an unknown kid, at most once per
    /// `min_refetch_seconds`, single-flight: the lock is held across the
    /// fetch, so callers that arrive meanwhile wait, then find the read
    /// recent and look the kid up in its result.
    async fn refetch_for_unknown_kid(&self) {
        let min = Duration::from_secs(self.config.min_refetch_seconds);
        let mut last = self.last_read.lock().await;
        if last.is_some_and(|t| t.elapsed() < min) {
            return;
        }
        *last = Some(Instant::now());
        crate::meters::jwks_refetched();
        self.read_and_store().await;
    }

    /// The key set if it may still verify tokens.
    fn usable(&self) -> Result<Option<Arc<Loaded>>, &'static str> {
        match self.jwks.load_full() {
            Some(l)
                if self.stale.load(Ordering::Relaxed)
                    && l.at.elapsed() > Duration::from_secs(self.config.max_stale_seconds) =>
            {
                Err("bearer tokens cannot be verified now (the JWKS is stale)")
            }
            other => Ok(other),
        }
    }

    /// Verifies `token` and returns its principal; the error is a reason fit
    /// to return to the caller.
    pub async fn verify(&self, token: &str) -> Result<String, &'static str> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| "the bearer token is not a JWT")?;
        if !self.algorithms.contains(&header.alg) {
            return Err("the bearer token's algorithm is not allowed");
        }
        if !self.config.allowed_types.is_empty() {
            let typ = header.typ.as_deref().map(media_type);
            if !typ.is_some_and(|t| self.config.allowed_types.iter().any(|a| media_type(a) == t)) {
                return Err("the bearer token's type (typ) is not accepted");
            }
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or("the bearer token names no key (kid)")?;
        let find = |set: Option<Arc<Loaded>>| set.and_then(|l| l.set.find(kid).cloned());
        // A set past its stale grace counts as missing the kid: one
        // (rate-limited) re-read may bring a fresh one.
        let mut jwk = find(self.usable().ok().flatten());
        if jwk.is_none() {
            self.refetch_for_unknown_kid().await;
            jwk = find(self.usable()?);
        }
        if self.jwks.load().is_none() {
            return Err("bearer tokens cannot be verified now (no JWKS)");
        }
        let jwk = jwk.ok_or("the bearer token's key (kid) is not in the JWKS")?;
        if !signing_key(&jwk, header.alg) {
            return Err("the JWKS key for this kid is not a signing key for this algorithm");
        }
        if self.stale.load(Ordering::Relaxed) {
            crate::meters::jwks_stale_verification();
        }
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
        for (claim, value) in &self.config.required_claims {
            if data.claims.get(claim).and_then(|v| v.as_str()) != Some(value.as_str()) {
                return Err(
                    "the bearer token lacks a required claim value (auth.jwt.required_claims)",
                );
            }
        }
        data.claims
            .get(&self.config.principal_claim)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .map(|s| format!("{}{s}", self.config.principal_prefix))
            .ok_or("the bearer token lacks the principal claim")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwks_url_is_judged_on_its_parsed_host() {
        for ok in [
            "https://kubernetes.default.svc/openid/v1/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://127.3.4.5/jwks",
            "http://[::1]:80/jwks",
            "http://localhost/jwks",
            "http://LOCALHOST:9/jwks",
        ] {
            assert!(check_jwks_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://localhost.evil.example/jwks",
            "http://127.0.0.1@evil.example/jwks",
            "http://127.0.0.1.nip.example/jwks",
            "http://user:pw@127.0.0.1/jwks",
            "https://user@idp.example/jwks",
            "http://10.0.0.1/jwks",
            "ftp://127.0.0.1/jwks",
            "not a url",
        ] {
            assert!(check_jwks_url(bad).is_err(), "{bad}");
        }
        assert_eq!(media_type("Application/AT+JWT"), "at+jwt");
    }
}

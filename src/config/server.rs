//! `[server]` and `[tls]`: the transport's settings, with their defaults
//! and their checks.

use std::path::PathBuf;

use serde::Deserialize;

use crate::settings::MAX_SECONDS;

/// `[server]`: connections, transport limits and shutdown. Each limit is
/// what one peer, authenticated or not, can make the process hold.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// A connection is asked to go (GOAWAY) after this long, so that HTTP/2
    /// clients spread over new replicas behind a Kubernetes Service.
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub max_connection_age_seconds: u64,
    /// How long calls on an aged connection may still take.
    #[schemars(range(min = 0, max = MAX_SECONDS))]
    pub max_connection_age_grace_seconds: u64,
    /// After SIGTERM/SIGINT: health turns NOT_SERVING, and the server keeps
    /// accepting for this long, so load balancers see it before it goes.
    #[schemars(range(min = 0, max = 60_000))]
    #[schemars(extend("x-production" = "load balancers see NOT_SERVING before the pod stops accepting"))]
    pub drain_delay_ms: u64,
    /// Then in-flight calls get this long to finish before the process exits.
    #[schemars(range(min = 1, max = 600))]
    pub drain_timeout_seconds: u64,
    /// SETTINGS_MAX_CONCURRENT_STREAMS: calls open at once on one connection.
    #[schemars(range(min = 1, max = 10_000))]
    pub max_concurrent_streams: u32,
    /// Streams the server itself resets for a protocol error before it
    /// sends GOAWAY (the MadeYouReset defence, CVE-2025-8671). h2 counts
    /// them for the connection's whole life (`max_connection_age_seconds`
    /// bounds that), and a stream refused for `max_concurrent_streams`
    /// counts too: hyper's own default, which tonic turns off unless set.
    #[schemars(range(min = 1, max = 100_000))]
    pub max_local_error_reset_streams: usize,
    /// Streams a client opened and reset that wait to be accepted (the
    /// Rapid Reset defence, CVE-2023-44487).
    #[schemars(range(min = 1, max = 100_000))]
    pub max_pending_accept_reset_streams: usize,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: the metadata of one call, in bytes.
    #[schemars(range(min = 1024, max = 1024 * 1024))]
    pub max_header_list_bytes: u32,
    /// HTTP/2 flow control: what one stream may send before the server reads.
    #[schemars(range(min = 65_535, max = i32::MAX as u32))]
    pub initial_stream_window_bytes: u32,
    /// HTTP/2 flow control: what one connection may send before the server reads.
    #[schemars(range(min = 65_535, max = i32::MAX as u32))]
    pub initial_connection_window_bytes: u32,
    /// The decode limit of the API services, in bytes: the largest valid
    /// request (SetUserPoolMfaConfig with every 131,072-character field of
    /// Cognito's StringType at its maximum, in 3-byte characters) is about
    /// 2.4 MB; a larger message is refused before it is decoded.
    #[schemars(range(min = 1024, max = 64 * 1024 * 1024))]
    pub max_message_bytes: usize,
    /// The decode limit of health and reflection, whose requests are a name.
    #[schemars(range(min = 256, max = 1024 * 1024))]
    pub ops_max_message_bytes: usize,
    /// Calls in flight in the whole process; past it a call is refused at
    /// once with RESOURCE_EXHAUSTED (load shedding, never a queue). Health
    /// is not counted, so probes still answer under load.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_concurrent_calls: usize,
    /// Open connections at once; one more is closed as it is accepted.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_connections: usize,
    /// The time a call may take in the facade, Cognito's retries included;
    /// then it ends with DEADLINE_EXCEEDED (and its audit record says so).
    #[schemars(range(min = 1, max = 600_000))]
    pub request_timeout_ms: u64,
    /// HTTP/2 PING every this long on an idle connection...
    #[schemars(range(min = 1, max = MAX_SECONDS))]
    pub keepalive_interval_seconds: u64,
    /// ...and the connection is closed if the answer takes longer than this.
    #[schemars(range(min = 1, max = 3600))]
    pub keepalive_timeout_seconds: u64,
    /// The deployment secret every replica shares (at least 32 bytes, e.g.
    /// from a Kubernetes Secret): the walk cursors' MAC key and the etag's
    /// ExternalId key are derived from it, so any replica resumes a walk
    /// and computes the same etag. Unset: the local backend derives one from
    /// its data file; the cognito backend makes one per process (cursors
    /// resume only on the replica that made them, and the etag leaves the
    /// ExternalId's value out).
    #[schemars(extend("x-production" = "every replica resumes a walk another began and computes the same etag"))]
    pub secret_file: Option<std::path::PathBuf>,
    /// `[server.grpc_web]`: gRPC-Web for browsers, on the same port.
    pub grpc_web: GrpcWebConfig,
}

/// `[server.grpc_web]`: gRPC-Web (`application/grpc-web`, `-text`) beside
/// gRPC on the API port, through the same layers, for web pages; CORS as an
/// allow-list (docs/grpc-web.md).
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcWebConfig {
    /// Serve gRPC-Web (and accept HTTP/1.1 for it; HTTP/1.1 that is not
    /// gRPC-Web is refused).
    pub enabled: bool,
    /// The pages that may call, as exact origins (`https://console.example.com`,
    /// scheme, host and port, no path); `"*"` only without
    /// `allow_credentials`. A request or preflight from another origin gets
    /// no CORS headers and is refused before authentication. Empty: no
    /// browser may call (gRPC-Web clients that send no Origin still may).
    #[schemars(length(max = 64))]
    pub allowed_origins: Vec<String>,
    /// Answer `Access-Control-Allow-Credentials: true` (cookies, a client
    /// certificate the browser presents for mTLS).
    pub allow_credentials: bool,
    /// The request headers a page may send (besides gRPC-Web's own:
    /// content-type, x-grpc-web, x-user-agent, grpc-timeout).
    #[schemars(length(max = 32))]
    pub allowed_headers: Vec<String>,
    /// The response headers a page may read.
    #[schemars(length(max = 32))]
    pub exposed_headers: Vec<String>,
    /// How long a browser may keep a preflight's answer.
    #[schemars(range(min = 0, max = 86_400))]
    pub max_age_seconds: u64,
}

impl Default for GrpcWebConfig {
    fn default() -> Self {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        Self {
            enabled: false,
            allowed_origins: Vec::new(),
            allow_credentials: false,
            allowed_headers: owned(&["x-api-key", "authorization", "traceparent", "x-request-id"]),
            exposed_headers: owned(&[
                "grpc-status",
                "grpc-message",
                "grpc-status-details-bin",
                "x-mfa-facade-warning",
                "x-request-id",
            ]),
            max_age_seconds: 600,
        }
    }
}

impl GrpcWebConfig {
    pub fn validate(&self, err: &mut impl FnMut(&str, String)) {
        for (i, o) in self.allowed_origins.iter().enumerate() {
            let key = format!("server.grpc_web.allowed_origins[{i}]");
            if o == "*" {
                if self.allow_credentials {
                    err(
                        &key,
                        "\"*\" cannot go with allow_credentials: name each origin".into(),
                    );
                }
                continue;
            }
            if !valid_origin(o) {
                err(
                    &key,
                    format!("{o:?} is not an origin: scheme://host[:port], lower-case, no path"),
                );
            }
        }
        let token = |h: &str| {
            !h.is_empty()
                && h.len() <= 64
                && h.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        for (key, list) in [
            ("server.grpc_web.allowed_headers", &self.allowed_headers),
            ("server.grpc_web.exposed_headers", &self.exposed_headers),
        ] {
            if let Some(bad) = list.iter().find(|h| !token(h)) {
                err(
                    key,
                    format!("{bad:?} is not a header name (lower-case letters, digits, -)"),
                );
            }
        }
    }
}

/// `scheme://host[:port]` as a browser sends it in `Origin`.
fn valid_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    matches!(scheme, "http" | "https")
        && o.len() <= 256
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.[]:".contains(&b))
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// `server.max_connection_age_seconds` unless set.
pub const DEFAULT_MAX_CONNECTION_AGE_SECONDS: u64 = 300;
/// `server.max_connection_age_grace_seconds` unless set.
pub const DEFAULT_MAX_CONNECTION_AGE_GRACE_SECONDS: u64 = 30;
/// `server.drain_timeout_seconds` unless set.
pub const DEFAULT_DRAIN_TIMEOUT_SECONDS: u64 = 20;
/// `server.max_local_error_reset_streams` unless set.
pub const DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// `server.max_pending_accept_reset_streams` unless set.
pub const DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// `server.max_header_list_bytes` unless set.
pub const DEFAULT_MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;
/// `server.initial_stream_window_bytes` unless set.
pub const DEFAULT_INITIAL_STREAM_WINDOW_BYTES: u32 = 64 * 1024;
/// `server.initial_connection_window_bytes` unless set.
pub const DEFAULT_INITIAL_CONNECTION_WINDOW_BYTES: u32 = 1024 * 1024;
/// `server.ops_max_message_bytes` unless set.
pub const DEFAULT_OPS_MAX_MESSAGE_BYTES: usize = 4096;
/// `server.max_concurrent_calls` unless set.
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 1024;
/// `server.max_connections` unless set.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// `server.request_timeout_ms` unless set.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = crate::call::DEFAULT_REQUEST_TIMEOUT_MS;
/// `server.keepalive_interval_seconds` unless set.
pub const DEFAULT_KEEPALIVE_INTERVAL_SECONDS: u64 = 60;
/// `server.keepalive_timeout_seconds` unless set.
pub const DEFAULT_KEEPALIVE_TIMEOUT_SECONDS: u64 = 20;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connection_age_seconds: DEFAULT_MAX_CONNECTION_AGE_SECONDS,
            max_connection_age_grace_seconds: DEFAULT_MAX_CONNECTION_AGE_GRACE_SECONDS,
            drain_delay_ms: 0,
            drain_timeout_seconds: DEFAULT_DRAIN_TIMEOUT_SECONDS,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            max_local_error_reset_streams: DEFAULT_MAX_LOCAL_ERROR_RESET_STREAMS,
            max_pending_accept_reset_streams: DEFAULT_MAX_PENDING_ACCEPT_RESET_STREAMS,
            max_header_list_bytes: DEFAULT_MAX_HEADER_LIST_BYTES,
            initial_stream_window_bytes: DEFAULT_INITIAL_STREAM_WINDOW_BYTES,
            initial_connection_window_bytes: DEFAULT_INITIAL_CONNECTION_WINDOW_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            ops_max_message_bytes: DEFAULT_OPS_MAX_MESSAGE_BYTES,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            keepalive_interval_seconds: DEFAULT_KEEPALIVE_INTERVAL_SECONDS,
            keepalive_timeout_seconds: DEFAULT_KEEPALIVE_TIMEOUT_SECONDS,
            secret_file: None,
            grpc_web: GrpcWebConfig::default(),
        }
    }
}

/// Envoy's edge recommendation (PRECEDENTS.md §8a).
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 100;
/// See [`ServerConfig::max_message_bytes`].
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 2560 * 1024;

impl ServerConfig {
    /// The bytes of `secret_file`, checked: at least [`crate::hash::MIN_SECRET_BYTES`].
    pub fn read_secret(&self) -> Result<Option<Vec<u8>>, String> {
        let Some(path) = &self.secret_file else {
            return Ok(None);
        };
        let bytes =
            std::fs::read(path).map_err(|e| format!("{} is not readable: {e}", path.display()))?;
        // A Secret mounted from a file often ends with a newline: not key material.
        let trimmed = bytes.trim_ascii_end();
        if trimmed.len() < crate::hash::MIN_SECRET_BYTES {
            return Err(format!(
                "{} holds {} bytes; at least {} are needed (e.g. `head -c 32 /dev/urandom | base64 > FILE`)",
                path.display(),
                trimmed.len(),
                crate::hash::MIN_SECRET_BYTES
            ));
        }
        Ok(Some(trimmed.to_vec()))
    }

    pub fn validate(&self, err: &mut impl FnMut(&str, String)) {
        if let Err(e) = self.read_secret() {
            err("server.secret_file", e);
        }
        self.grpc_web.validate(err);
    }
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM.
    pub cert_file: PathBuf,
    /// The server's private key, PEM.
    pub key_file: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to.
    pub client_ca_file: Option<PathBuf>,
    /// Refuse connections without a client certificate (at the handshake).
    /// False: a client certificate is one way in among the others.
    #[serde(default)]
    pub client_cert_required: bool,
    /// Put before every principal a client certificate proves (its SPIFFE
    /// ID or CN), e.g. `mtls:`; policy rules name the prefixed form.
    #[serde(default)]
    pub principal_prefix: String,
    /// Take the subject CN as the principal even when the certificate has
    /// SANs. False (the default): the CN only of a certificate with no SAN.
    #[serde(default)]
    pub cn_with_sans: bool,
}

impl TlsConfig {
    /// The files exist; a required client certificate has a CA.
    pub fn validate(&self, err: &mut impl FnMut(&str, String)) {
        for (key, path) in [
            ("tls.cert_file", Some(&self.cert_file)),
            ("tls.key_file", Some(&self.key_file)),
            ("tls.client_ca_file", self.client_ca_file.as_ref()),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                err(key, format!("{} is not a readable file", path.display()));
            }
        }
        if self.client_cert_required && self.client_ca_file.is_none() {
            err(
                "tls.client_cert_required",
                "needs tls.client_ca_file".into(),
            );
        }
        if self.principal_prefix.len() > 64 {
            err("tls.principal_prefix", "is at most 64 characters".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One set of defaults: what serde fills in for an empty `[server]` is
    /// `ServerConfig::default()`, field for field, and a key given keeps
    /// every other default.
    #[test]
    fn serde_and_default_agree() {
        crate::settings::assert_one_set_of_defaults::<ServerConfig>("max_conections = 1");
        let one: ServerConfig = toml::from_str("drain_delay_ms = 5000").expect("one key");
        assert_eq!(one.drain_delay_ms, 5000);
        assert_eq!(one.max_connections, DEFAULT_MAX_CONNECTIONS);
    }
}

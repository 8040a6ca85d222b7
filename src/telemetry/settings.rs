//! `[tracing]`: OpenTelemetry traces over OTLP/gRPC. Absent: no tracer,
//! no exporter, no span is made (log lines still carry the caller's
//! `trace_id` when it sends a `traceparent`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

pub const DEFAULT_SAMPLING_RATIO: f64 = 1.0;
pub const DEFAULT_EXPORT_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_EXPORT_INTERVAL_MS: u64 = 5_000;
/// Spans waiting for export; past it new spans are dropped (and counted by
/// the SDK), never queued without bound.
pub const DEFAULT_MAX_QUEUE_SPANS: usize = 2_048;
pub const DEFAULT_MAX_EXPORT_BATCH_SPANS: usize = 512;
pub const MAX_QUEUE_SPANS: usize = 65_536;
/// Headers of the export request, at most.
pub const MAX_HEADERS: usize = 16;
pub const MAX_HEADER_VALUE_LEN: usize = 4_096;
pub const DEFAULT_SERVICE_NAME: &str = "mfa-facade";

#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// The OTLP/gRPC endpoint: `http://otel-collector:4317`, or https://.
    pub endpoint: String,
    /// The share of traces kept, 0.0 to 1.0 (by trace id).
    #[serde(default = "default_sampling_ratio")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sampling_ratio: f64,
    /// A call whose `traceparent` says sampled (or not) is kept (or not) as
    /// the caller decided; `false`: `sampling_ratio` alone decides.
    #[serde(default = "crate::settings::default_true")]
    pub parent_based: bool,
    /// Metadata of every export request (a tenant, a team). Values are
    /// never logged; a secret one is better given as
    /// `OTEL_EXPORTER_OTLP_HEADERS`, which the exporter reads as well.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A private CA for an https:// endpoint (PEM); else the public roots.
    pub ca_file: Option<PathBuf>,
    /// One export request, at most.
    #[serde(default = "default_export_timeout_ms")]
    #[schemars(range(min = 100, max = 60_000))]
    pub timeout_ms: u64,
    /// Spans are sent at least this often.
    #[serde(default = "default_export_interval_ms")]
    #[schemars(range(min = 10, max = 60_000))]
    pub export_interval_ms: u64,
    #[serde(default = "default_max_queue_spans")]
    #[schemars(range(min = 1, max = MAX_QUEUE_SPANS))]
    pub max_queue_spans: usize,
    #[serde(default = "default_max_export_batch_spans")]
    #[schemars(range(min = 1, max = MAX_QUEUE_SPANS))]
    pub max_export_batch_spans: usize,
    /// The resource's `service.name`.
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

fn default_sampling_ratio() -> f64 {
    DEFAULT_SAMPLING_RATIO
}
fn default_export_timeout_ms() -> u64 {
    DEFAULT_EXPORT_TIMEOUT_MS
}
fn default_export_interval_ms() -> u64 {
    DEFAULT_EXPORT_INTERVAL_MS
}
fn default_max_queue_spans() -> usize {
    DEFAULT_MAX_QUEUE_SPANS
}
fn default_max_export_batch_spans() -> usize {
    DEFAULT_MAX_EXPORT_BATCH_SPANS
}
fn default_service_name() -> String {
    DEFAULT_SERVICE_NAME.into()
}

impl TracingConfig {
    /// Every key that is wrong, by name.
    pub fn check(&self, err: &mut impl FnMut(&str, String)) {
        let e = &self.endpoint;
        let scheme_ok = e.starts_with("http://") || e.starts_with("https://");
        if !scheme_ok || e.len() > 2048 || e.parse::<http::Uri>().is_err() {
            err(
                "tracing.endpoint",
                format!(
                    "{:?} must be an http:// or https:// URL of an OTLP/gRPC receiver",
                    crate::domain::text::truncate(e, 256)
                ),
            );
        }
        if self.headers.len() > MAX_HEADERS {
            err(
                "tracing.headers",
                format!(
                    "at most {MAX_HEADERS} headers ({} given)",
                    self.headers.len()
                ),
            );
        }
        for (name, value) in &self.headers {
            let key = format!(
                "tracing.headers.{}",
                crate::domain::text::truncate(name, 64)
            );
            let name_ok = !name.is_empty()
                && !name.ends_with("-bin")
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
            if !name_ok {
                err(
                    &key,
                    "a header name is lower-case a-z, 0-9, '-', '_' or '.', not ending in -bin"
                        .into(),
                );
            }
            // The value is never echoed: it may be a credential.
            if value.len() > MAX_HEADER_VALUE_LEN
                || !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
            {
                err(
                    &key,
                    format!(
                        "the value must be at most {MAX_HEADER_VALUE_LEN} visible ASCII characters"
                    ),
                );
            }
        }
        if let Some(path) = &self.ca_file
            && !path.is_file()
        {
            err(
                "tracing.ca_file",
                format!("{} is not a readable file", path.display()),
            );
        }
        if self.max_export_batch_spans > self.max_queue_spans {
            err(
                "tracing.max_export_batch_spans",
                format!(
                    "{} is more than tracing.max_queue_spans ({}): no batch could fill it",
                    self.max_export_batch_spans, self.max_queue_spans
                ),
            );
        }
        if self.service_name.is_empty() || self.service_name.len() > 128 {
            err("tracing.service_name", "1 to 128 characters".into());
        }
    }
}

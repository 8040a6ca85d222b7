//! How the service tells its operators: the log's JSON lines (`log`),
//! request ids (`request_id`) and the metrics layer and endpoint
//! (`metrics`), traces over OTLP (`trace`, `[tracing]` in `settings`). What it tells them is listed in two leaves: every log
//! event in `crate::events`, every metric in `crate::meters`.

pub mod log;
pub mod metrics;
pub mod request_id;
pub mod settings;
pub mod trace;

pub use log::init_logging;
pub use metrics::{MeteredBody, MetricsLayer, MetricsService, prometheus, register_methods};
pub use request_id::{
    MAX_REQUEST_ID_LEN, REQUEST_ID_HEADER, RequestId, RequestIdLayer, RequestIdService,
};

//! What the service tells its operators: logs (`log`), request ids
//! (`request_id`) and metrics (`metrics`). Each event of a call is a small
//! struct that logs itself in one place, so every call is reported the
//! same way.

pub mod log;
pub mod metrics;
pub mod request_id;

pub use log::{CallCompleted, init_logging};
pub use metrics::{MeteredBody, MetricsLayer, MetricsService, prometheus, register_methods};
pub use request_id::{
    MAX_REQUEST_ID_LEN, REQUEST_ID_HEADER, RequestId, RequestIdLayer, RequestIdService,
};

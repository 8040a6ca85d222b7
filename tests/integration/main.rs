//! The integration suite, one test binary: every module links the service
//! and the SDK once instead of once per file, which keeps the release test
//! build (CI builds one profile, release) minutes shorter. nextest still
//! runs each test in a process of its own; `scripts/test.sh` runs the
//! modules as separate steps by filtering on their paths
//! (`test(/^rate_limits::/)`), and `canary` last of all.

// A test's expect is its assertion: a failed set-up fails the test, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod audit;
mod audit_fleet;
mod auth_matrix;
mod browser;
mod canary;
mod cli;
mod cognito_wire;
mod conformance;
mod coverage;
mod deploy;
mod guardrails;
mod history;
mod hostile;
mod local_rules;
mod local_store;
mod lost_phone;
mod model_conformance;
mod operability;
mod preflight;
mod rate_limits;
mod regions;
mod sdk_parity;
mod traces;
mod upstream_faults;
mod user_factors;

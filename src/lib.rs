//! mfa-facade: a gRPC facade over Amazon Cognito user-pool MFA.
//!
//! A call flows top to bottom through these modules:
//! `server` (transport, layers) -> `api` (proto -> domain) -> `call`
//! (the stages of a call) -> `backend` (Cognito). `domain` holds the types
//! and rules they all share; `config`, `error` and `telemetry` serve all.

pub mod api;
pub mod audit;
pub mod auth;
pub mod backend;
pub mod call;
pub mod config;
pub mod domain;
pub mod error;
pub mod glob;
pub mod limits;
pub mod proto;
pub mod server;
pub mod telemetry;

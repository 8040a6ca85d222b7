//! mfa-facade: a gRPC facade over Amazon Cognito user-pool MFA.
//!
//! A call flows top to bottom through these modules:
//! `server` (transport, layers) -> `call::gate` (authenticate) -> `api`
//! (proto -> domain) -> `call` (the stages of a call) -> `backend`
//! (Cognito, or the local backend). The layers, bottom first, are in
//! [`layers::LAYERS`]: leaves (`glob`, `hash`, `timefmt`, `meters`, `method`, `settings`, `proto`,
//! `domain`, `error`, `events`, `upstream`), stages that import no other stage (`auth`, `limits`,
//! `audit`, `backend`, `telemetry`), `call`, `api`, then `config`,
//! `server` (the transport) and `app`, which assembles. A test fails on any import against them.

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backend;
pub mod call;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod glob;
pub mod hash;
pub mod json;
pub mod layers;
pub mod limits;
pub mod meters;
pub mod method;
pub mod proto;
pub mod server;
pub mod settings;
pub mod telemetry;
pub mod timefmt;
pub mod upstream;

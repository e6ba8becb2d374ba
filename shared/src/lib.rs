//! The OTP service core: domain types, codes and their hashes, the send/verify engine, stores,
//! senders, configuration, and the HTTP layer shared by the Lambda functions and the local server.

pub mod app;
pub mod aws;
pub mod clock;
pub mod code;
pub mod config;
pub mod domain;
pub mod engine;
pub mod http;
#[cfg(feature = "lambda_http")]
pub mod lambda;
pub mod mask;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod sender;
pub mod store;
pub mod templates;

pub use app::{build_engine, InitError, Runtime};
pub use engine::Engine;

//! The OTP service core. Layers, one direction: `domain`, `code`/`keys` (values and their
//! hashes) → `engine` (the rules, over the `store` and `sender` traits) → `http` (one axum
//! router: typed contracts and outcomes) → `startup` (settings in, engine out) → `lambda` (the
//! router under `lambda_http`). `settings` is the one place the environment is read.

pub mod aws;
pub mod callers;
pub mod captcha;
pub mod clock;
pub mod code;
#[cfg(feature = "counting")]
pub mod counting;
pub mod directory;
pub mod domain;
pub mod engine;
pub mod events;
pub mod fraud;
pub mod http;
pub mod keys;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod limits;
pub mod locale;
pub mod mask;
pub mod meter;
#[cfg(feature = "openapi")]
pub mod openapi;
#[cfg(feature = "events")]
pub mod outbox;
pub mod receipts;
pub mod secrets;
pub mod sender;
pub mod settings;
#[cfg(any(feature = "webhooks", feature = "send-hook"))]
pub mod signed;
pub mod sms;
pub mod startup;
pub mod store;
#[cfg(feature = "stream")]
pub mod stream;
#[cfg(any(feature = "stream", feature = "events"))]
pub mod table_function;
pub mod telemetry;
pub mod templates;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod token;
pub mod verification;
#[cfg(feature = "webhooks")]
pub mod webhooks;

pub use engine::Engine;

//! End-to-end tests: one binary (link once), one module per concern.

mod auth_routes;
mod aws_sms;
mod caller_auth;
mod captcha;
mod channels;
mod concurrency;
mod delivery;
mod emf_spec;
mod fraud_guard;
mod helpers;
mod lambda_events;
mod lifecycle;
mod limits;
mod local_binary;
mod metrics;
mod moto_peer;
mod openapi_doc;
mod protocol;
mod receipts;
mod send;
mod shared_counters;
mod store_conformance;
mod twilio_fake;
mod verify;

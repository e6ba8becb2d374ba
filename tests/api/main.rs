//! End-to-end tests: one binary (link once), one module per concern.

mod auth_routes;
mod concurrency;
mod delivery;
mod dynamo;
mod dynamo_store;
mod helpers;
mod lambda_events;
mod local_binary;
mod openapi_doc;
mod protocol;
mod send;
mod twilio_fake;
mod verify;

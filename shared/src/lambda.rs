//! The Lambda side of the HTTP layer: API Gateway HTTP API (2.0), REST (1.0) and Function URL
//! events in, the shared handler's response out. Domain failures are responses, never errors.

use std::convert::Infallible;
use std::time::Duration;

use lambda_http::{Body, Request, RequestExt, Response};

use crate::engine::Engine;
use crate::http::{handle, ApiRequest, Route};

/// The route path of a request, without the stage prefix that named API Gateway stages add.
fn route_path(request: &Request) -> &str {
    let path = request.raw_http_path();
    let stage = request
        .request_context_ref()
        .and_then(|context| match context {
            lambda_http::request::RequestContext::ApiGatewayV2(c) => c.stage.as_deref(),
            lambda_http::request::RequestContext::ApiGatewayV1(c) => c.stage.as_deref(),
            #[allow(unreachable_patterns)]
            _ => None,
        });
    match stage {
        Some(stage) if stage != "$default" => path
            .strip_prefix('/')
            .and_then(|rest| rest.strip_prefix(stage))
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(path),
        _ => path,
    }
}

pub async fn handle_event(
    engine: &Engine,
    routes: &[Route],
    request: Request,
) -> Result<Response<Body>, Infallible> {
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    // lambda_http has already base64-decoded `isBase64Encoded` bodies into `Body::Binary`.
    let body: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        #[allow(unreachable_patterns)]
        _ => &[],
    };
    let api_request = ApiRequest {
        method: request.method(),
        path: route_path(&request),
        content_type,
        body,
    };
    Ok(handle(engine, routes, api_request).await.into_http())
}

/// The whole `main` of a function after tracing is set up: build once, then serve events.
pub async fn run(routes: &'static [Route]) -> Result<(), lambda_http::Error> {
    crate::aws::prefer_single_ca_bundle();
    let built = match crate::build_engine(crate::Runtime::Lambda).await {
        Ok(built) => built,
        Err(error) => {
            // Fails the init phase; the message is what an operator reads in CloudWatch.
            tracing::error!(error = %error, "function init failed");
            return Err(error.into());
        }
    };
    let engine = &built.engine;
    // Bounded: a slow provider must not hold the init phase; the first request then connects.
    let _ = tokio::time::timeout(Duration::from_secs(1), engine.senders().warm_up()).await;
    lambda_http::run(lambda_http::service_fn(move |request| {
        handle_event(engine, routes, request)
    }))
    .await
}

/// JSON logs for CloudWatch (which stamps each line), level from `RUST_LOG`, else what Lambda's
/// `LoggingConfig` asks for (`AWS_LAMBDA_LOG_LEVEL`), else `info`.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").unwrap_or_default();
        EnvFilter::new(match level.to_ascii_lowercase().as_str() {
            "" => "info".to_owned(),
            "fatal" => "error".to_owned(),
            level => level.to_owned(),
        })
    });
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
}

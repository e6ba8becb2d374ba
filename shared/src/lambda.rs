//! The Lambda side: the service's router under `lambda_http`, which turns API Gateway HTTP API
//! (2.0), REST (1.0) and Function URL events into requests. Domain failures are responses; a
//! Lambda error is only a failed init.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use tower::ServiceExt as _;

use crate::http::observe::RequestIds;
use crate::http::{self, Routes};
use crate::limits::ClientIp;

use crate::settings::{Runtime, Settings};
pub use lambda_http::Error;

/// The request with a named stage's prefix taken off its path. `lambda_http` gives REST (1.0)
/// and HTTP API (2.0) events one shape, `/{stage}/route`, for every stage but `$default`; its
/// own switch `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` would fix REST only, because an HTTP API's
/// `rawPath` itself carries the stage. The stage named in the request context is removed,
/// exactly, and only at the start of the path.
pub fn without_stage(mut request: Request) -> Request {
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.stage.clone(),
        Some(RequestContext::ApiGatewayV1(c)) => c.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| s != "$default") else {
        return request;
    };
    let uri = request.uri();
    let Some(rest) = uri
        .path()
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage.as_str()))
        .filter(|rest| rest.starts_with('/'))
    else {
        return request;
    };
    let mut path_and_query = rest.to_owned();
    if let Some(query) = uri.query() {
        path_and_query.push('?');
        path_and_query.push_str(query);
    }
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = path_and_query.parse().ok();
    if let Ok(uri) = axum::http::Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    request
}

/// The caller API Gateway's IAM authorizer verified, if it ran: HTTP API (2.0) events carry it
/// in `requestContext.authorizer.iam`, REST (1.0) events in `requestContext.identity`.
fn iam_identity(request: &Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(c) => {
            let iam = c.authorizer.as_ref()?.iam.as_ref()?;
            iam.user_arn.clone().or_else(|| iam.caller_id.clone())
        }
        RequestContext::ApiGatewayV1(c) => c.identity.user_arn.clone(),
        _ => None,
    }
}

/// The address API Gateway received the request from (`requestContext.http.sourceIp` in 2.0
/// events, `requestContext.identity.sourceIp` in 1.0): the public routes' per-client limit
/// counts it. Behind CloudFront or another proxy it is the proxy's address.
fn source_ip(request: &Request) -> Option<ClientIp> {
    let raw = match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(c) => c.http.source_ip.as_deref(),
        RequestContext::ApiGatewayV1(c) => c.identity.source_ip.as_deref(),
        _ => None,
    }?;
    ClientIp::parse(raw)
}

/// The URL API Gateway was called at: `https://` and the domain of the request context, and
/// the stage when it is not `$default` (the path the functions see has it removed).
fn public_origin(request: &Request) -> Option<crate::receipts::PublicOrigin> {
    let (domain, stage) = match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(c) => (c.domain_name.as_deref()?, c.stage.as_deref()),
        RequestContext::ApiGatewayV1(c) => (c.domain_name.as_deref()?, c.stage.as_deref()),
        _ => return None,
    };
    let origin = match stage.filter(|s| *s != "$default") {
        Some(stage) => format!("https://{domain}/{stage}"),
        None => format!("https://{domain}"),
    };
    Some(crate::receipts::PublicOrigin(origin))
}

/// Whether the next event is the execution environment's first.
static COLD: AtomicBool = AtomicBool::new(true);
/// The `Function` dimension of the cold-start metric, set by [`run`].
static FUNCTION: OnceLock<&'static str> = OnceLock::new();

/// The ids of the invocation and of the API Gateway request, for every log line under it.
fn request_ids(request: &Request) -> RequestIds {
    let context = request.lambda_context_ref();
    let api_gateway = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
        Some(RequestContext::ApiGatewayV1(c)) => c.request_id.clone(),
        _ => None,
    };
    let cold_start = COLD.swap(false, Ordering::Relaxed);
    if cold_start {
        crate::meter::cold_start(FUNCTION.get().copied().unwrap_or("function"));
    }
    RequestIds {
        lambda: context.map(|c| c.request_id.clone()),
        api_gateway,
        trace: context.and_then(|c| c.xray_trace_id.clone()),
        cold_start,
    }
}

/// One event through the router, as the runtime does it.
pub async fn handle_event(router: Router, mut request: Request) -> axum::response::Response {
    let ids = request_ids(&request);
    request.extensions_mut().insert(ids);
    if let Some(identity) = iam_identity(&request) {
        request
            .extensions_mut()
            .insert(http::auth::IamIdentity(identity));
    }
    if let Some(ip) = source_ip(&request) {
        request.extensions_mut().insert(ip);
    }
    if let Some(origin) = public_origin(&request) {
        request.extensions_mut().insert(origin);
    }
    match router.oneshot(without_stage(request)).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The whole `main` of a function: settings and clients once, then events.
pub async fn run(routes: Routes) -> Result<(), Error> {
    let started = std::time::Instant::now();
    crate::telemetry::init_lambda_tracing();
    let _ = FUNCTION.set(match routes {
        Routes::Sending => "send-code",
        Routes::Verifying => "verify-code",
        Routes::All => "all",
    });
    crate::tls::prefer_single_ca_bundle();
    if routes.paths().is_empty() {
        let error = "this build has none of the unit's routes (features `sending`, `verifying`)";
        tracing::error!(error, "function init failed");
        return Err(error.into());
    }
    let settings = Settings::from_env(Runtime::Lambda);
    let parsed = started.elapsed();
    let built = match settings {
        Ok(settings) => crate::startup::build(settings, routes)
            .await
            .map_err(|e| e.to_string()),
        Err(error) => Err(error.to_string()),
    };
    let engine = match built {
        Ok(engine) => Arc::new(engine),
        Err(error) => {
            // Fails the init phase; the message is what an operator reads in CloudWatch.
            tracing::error!(%error, "function init failed");
            return Err(error.into());
        }
    };
    let router = http::router(engine, routes);
    // What the cold start spent before the first event could be taken (settings, keys - a
    // Secrets Manager read when the key is a secret - and clients); the rest is per request.
    tracing::info!(
        settings_ms = parsed.as_secs_f64() * 1e3,
        init_ms = started.elapsed().as_secs_f64() * 1e3,
        "function ready"
    );
    lambda_http::run(lambda_http::service_fn(move |request: Request| {
        let router = router.clone();
        async move { Ok::<_, std::convert::Infallible>(handle_event(router, request).await) }
    }))
    .await
}

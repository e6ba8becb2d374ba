//! The local API server: the same shared handler the Lambda functions run, over plain HTTP,
//! plus the API reference (`/openapi.json`, `/docs`, `/redoc`), which the functions do not serve.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use otp_core::http::{handle, ApiRequest, ApiResponse, Route, MAX_BODY_BYTES};
use otp_core::Engine;
use tokio::net::TcpListener;

async fn serve_request(State(engine): State<Arc<Engine>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // Read at most one byte more than allowed: enough to know a body is too large without
    // buffering whatever a client chooses to send.
    let Ok(body) = to_bytes(body, MAX_BODY_BYTES + 1).await else {
        return ApiResponse::payload_too_large().into_http::<Body>();
    };
    let content_type = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let api_request = ApiRequest {
        method: &parts.method,
        path: parts.uri.path(),
        content_type,
        body: &body,
    };
    handle(&engine, Route::ALL, api_request)
        .await
        .into_http::<Body>()
}

/// Swagger UI, loaded from a CDN as FastAPI's `/docs` is; "Try it out" calls this server.
const SWAGGER_UI: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>OTP verification service - API docs</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>
SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", tryItOutEnabled: true });
</script>
</body>
</html>
"##;

const REDOC: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>OTP verification service - API reference</title>
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"></script>
</body>
</html>
"##;

fn page(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut response = Response::new(body.into());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn docs_method_not_allowed() -> Response {
    let mut response = ApiResponse::method_not_allowed().into_http::<Body>();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

pub fn router(engine: Arc<Engine>) -> Router {
    // Rendered once for this configuration (the passcode pattern follows OTP_CODE_LENGTH).
    let document = otp_core::openapi::document_json(engine.policy());
    let docs = |content_type: &'static str, body: String| {
        get(move || {
            let body = body.clone();
            async move { page(content_type, body) }
        })
        .fallback(docs_method_not_allowed)
    };
    Router::new()
        .route("/openapi.json", docs("application/json", document))
        .route(
            "/docs",
            docs("text/html; charset=utf-8", SWAGGER_UI.to_owned()),
        )
        .route("/redoc", docs("text/html; charset=utf-8", REDOC.to_owned()))
        .fallback(serve_request)
        .with_state(engine)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(engine))
        .with_graceful_shutdown(shutdown)
        .await
}

pub async fn bind(port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

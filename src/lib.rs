//! The local API server: the same shared handler the Lambda functions run, over plain HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::response::Response;
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

pub fn router(engine: Arc<Engine>) -> Router {
    Router::new().fallback(serve_request).with_state(engine)
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

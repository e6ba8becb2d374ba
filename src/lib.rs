//! The local API server: the service's router (the same one the Lambda functions run) over plain
//! HTTP, plus the API reference (`/openapi.json`, `/docs`, `/redoc`) and the sign-in demo
//! (`/demo`), which the functions do not serve.

mod demo;
mod docs;
mod redoc;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, Method};
use axum::response::IntoResponse;
use axum::routing::{get, MethodRouter};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use otp_core::http::observe::RequestLog;
use otp_core::http::{method_not_allowed, not_found, observed, routes, Routes};
use otp_core::limits::ClientIp;
use otp_core::Engine;
use tokio::net::TcpListener;
use tower::{Service as _, ServiceExt as _};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// A file compiled into the binary, served under its own Content-Security-Policy and never
/// cached stale (`/demo`, `/redoc`); other methods get the service's JSON 405.
pub(crate) fn static_asset<S: Clone + Send + Sync + 'static>(
    content_type: &'static str,
    csp: &'static str,
    body: &'static [u8],
) -> MethodRouter<S> {
    get(move || async move {
        let headers = [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ];
        (headers, body).into_response()
    })
    .fallback(|| async { method_not_allowed("GET, HEAD") })
}

/// A GET-only page; other methods get the service's JSON 405.
fn page<S: Clone + Send + Sync + 'static>(
    content_type: &'static str,
    body: String,
) -> MethodRouter<S> {
    get(move || async move {
        (
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response()
    })
    .fallback(|| async { method_not_allowed("GET, HEAD") })
}

/// Every route, plus the API reference for this configuration (the passcode pattern follows
/// `OTP_CODE_LENGTH`).
pub fn app(engine: Arc<Engine>) -> Router {
    let document = otp_core::openapi::document_json(engine.policy());
    let router = routes(Routes::All)
        .route("/openapi.json", page("application/json", document))
        .merge(docs::routes())
        .merge(demo::routes())
        .merge(redoc::routes())
        .fallback(not_found);
    // Observed only when something reads it (EMF records, or request lines at `debug`): the
    // layer and its span cost the local server ~15 % of its throughput in `make bench`.
    let router = if otp_core::meter::installed() || tracing::enabled!(tracing::Level::DEBUG) {
        observed(router, RequestLog::Debug)
    } else {
        router
    };
    let cors = cors(&engine.gate().cors_origins);
    let router = router.with_state(engine);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// CORS for `OTP_CORS_ORIGINS`, as API Gateway answers it in AWS (`AllowedOrigins`): JSON
/// POSTs and GETs from those origins, no credentials, preflights cached for ten minutes. The
/// only header a page may send is `Content-Type`, so a page can never send an API key.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE])
            .expose_headers([header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The socket's peer as the request's client address, as API Gateway's `sourceIp` is in a
/// function (the per-client send limit counts it).
async fn peer_as_client(mut request: Request) -> Request {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        let client = ClientIp::new(peer.ip());
        request.extensions_mut().insert(client);
    }
    request
}

/// How long a connection may take to send a request's headers, and may sit idle between
/// requests, before it is closed: a client that opens connections and never finishes a request
/// cannot hold them (or the server's file descriptors) open.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, engine, shutdown, HEADER_READ_TIMEOUT).await
}

/// [`serve`] with another header read and idle timeout (tests use a short one). HTTP/1.1 over
/// hyper directly: `axum::serve` sets no timer, so it has no header timeout.
pub async fn serve_with(
    listener: TcpListener,
    engine: Arc<Engine>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    header_read_timeout: Duration,
) -> std::io::Result<()> {
    let mut make_service = app(engine)
        .layer(axum::middleware::map_request(peer_as_client))
        .into_make_service_with_connect_info::<SocketAddr>();
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // A refused or reset connection, or too many open files: the next accept may
                // work, and the server must not stop for one client.
                Err(error) => {
                    tracing::debug!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = match make_service.call(peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            service.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

pub async fn bind(port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

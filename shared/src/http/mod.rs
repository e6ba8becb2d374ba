//! The one HTTP implementation: an axum router. The local server serves it and both Lambda
//! functions run it under `lambda_http`; each route module holds its path, its typed request
//! contract, its outcomes and its handler.

pub mod auth;
pub mod body;
pub mod client;
pub mod jwks;
pub mod observe;
pub mod reply;
pub mod request_otp;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod send_code;
pub mod sending;
#[cfg(feature = "twilio")]
pub mod twilio_status;
pub mod verifications;
pub mod verify_code;
pub mod verify_otp;

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;

pub use body::MAX_BODY_BYTES;
use reply::PlainError;

use crate::engine::Engine;

/// Which routes a deployment unit serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routes {
    /// The local server: every route.
    All,
    /// The send-code function.
    Sending,
    /// The verify-code function.
    Verifying,
}

impl Routes {
    /// Whether this unit serves the send routes. Always false in a build without the `sending`
    /// feature, so that nothing only they use is linked in.
    pub fn sends(self) -> bool {
        cfg!(feature = "sending") && matches!(self, Routes::All | Routes::Sending)
    }

    /// Whether this unit serves the verify routes (never without the `verifying` feature).
    pub fn verifies(self) -> bool {
        cfg!(feature = "verifying") && matches!(self, Routes::All | Routes::Verifying)
    }

    /// The paths this unit serves (POST, but the key set: GET).
    pub fn paths(self) -> Vec<&'static str> {
        let mut paths = Vec::new();
        if self.sends() {
            paths.extend([
                send_code::PATH,
                request_otp::PATH,
                verifications::CANCEL_PATH,
            ]);
            #[cfg(feature = "twilio")]
            paths.push(twilio_status::PATH);
        }
        if self.verifies() {
            paths.extend([
                verify_code::PATH,
                verify_otp::PATH,
                jwks::PATH,
                verifications::PATH,
            ]);
        }
        paths
    }
}

/// `{"detail": "Not Found"}` for every path no route serves.
pub async fn not_found() -> Response {
    reply::json(StatusCode::NOT_FOUND, &PlainError::new("Not Found"))
}

/// 405 with `Allow`, for a known path with another method.
pub fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = reply::json(
        StatusCode::METHOD_NOT_ALLOWED,
        &PlainError::new("Method Not Allowed"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn post_only<H, T>(handler: H) -> MethodRouter<Arc<Engine>>
where
    H: axum::handler::Handler<T, Arc<Engine>>,
    T: 'static,
{
    post(handler).fallback(|| async { method_not_allowed("POST").into_response() })
}

/// The routes of `routes`, without a fallback, for composing with other routers.
pub fn routes(routes: Routes) -> Router<Arc<Engine>> {
    let mut router = Router::new();
    if routes.sends() {
        router = router
            .route(send_code::PATH, post_only(send_code::handle))
            .route(request_otp::PATH, post_only(request_otp::handle))
            .route(verifications::CANCEL_PATH, post_only(verifications::cancel));
        #[cfg(feature = "twilio")]
        {
            router = router.route(twilio_status::PATH, post_only(twilio_status::handle));
        }
    }
    if routes.verifies() {
        router = router
            .route(verify_code::PATH, post_only(verify_code::handle))
            .route(verify_otp::PATH, post_only(verify_otp::handle))
            .route(
                jwks::PATH,
                get(jwks::handle).fallback(|| async { method_not_allowed("GET, HEAD") }),
            )
            .route(
                verifications::PATH,
                get(verifications::show).fallback(|| async { method_not_allowed("GET, HEAD") }),
            );
    }
    router
}

/// `router` with a span, a request line and metrics for every request (see [`observe`]).
pub fn observed<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    level: observe::RequestLog,
) -> Router<S> {
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            observe::observe(level, request, next)
        },
    ))
}

/// The service's router for one deployment unit, as a function serves it: a request line each.
pub fn router(engine: Arc<Engine>, units: Routes) -> Router {
    observed(routes(units).fallback(not_found), observe::RequestLog::Info).with_state(engine)
}

#[cfg(test)]
mod proptests;

//! One span and one log line per request, and the request's metrics flushed as it ends.
//!
//! The span `request` carries the route, the request ids (API Gateway's and Lambda's, when the
//! Lambda adapter put them in), and what the engine records into it as it works: the masked
//! user and destination and the outcome. Every line logged while the request runs carries
//! those fields; the last one, `request done`, adds status and latency. The engine's store and
//! provider calls are child spans (`store`, `provider`).

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing::field::Empty;
use tracing::Instrument as _;

use crate::meter;

/// The level of the request span and of the `request done` line: `Info` in a function (where
/// CloudWatch keeps them), `Debug` on the local server, where a line per request would cost
/// about a third of its throughput (`make bench`) and `RUST_LOG=debug` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestLog {
    Info,
    Debug,
}

/// The ids a request is known by upstream, put in by the Lambda adapter.
#[derive(Debug, Clone, Default)]
pub struct RequestIds {
    /// The Lambda invocation's request id (`context.awsRequestId`).
    pub lambda: Option<String>,
    /// API Gateway's `requestContext.requestId`.
    pub api_gateway: Option<String>,
    /// The X-Ray trace header Lambda passed in (`_X_AMZN_TRACE_ID`).
    pub trace: Option<String>,
    /// Whether this is the first request of the execution environment.
    pub cold_start: bool,
}

/// The route label of a path: one of the service's paths, else `other` (metrics take only a
/// closed set of values).
pub fn route_of(path: &str) -> &'static str {
    use super::{jwks, request_otp, send_code, verify_code, verify_otp};
    [
        send_code::PATH,
        request_otp::PATH,
        verify_code::PATH,
        verify_otp::PATH,
        jwks::PATH,
    ]
    .into_iter()
    .find(|known| *known == path)
    .unwrap_or("other")
}

/// The request span, at `$level`; the engine fills in the empty fields.
macro_rules! request_span {
    ($level:expr, $route:expr, $ids:expr) => {
        tracing::span!(
            $level,
            "request",
            route = $route,
            lambda_request_id = $ids.lambda.as_deref(),
            apigw_request_id = $ids.api_gateway.as_deref(),
            trace_id = $ids.trace.as_deref(),
            cold_start = $ids.cold_start,
            caller = Empty,
            user = Empty,
            purpose = Empty,
            to = Empty,
            outcome = Empty,
        )
    };
}

/// The middleware: span, request line, `Responses` metric, EMF flush.
pub async fn observe(level: RequestLog, mut request: Request, next: Next) -> Response {
    let route = route_of(request.uri().path());
    let ids = request
        .extensions_mut()
        .remove::<RequestIds>()
        .unwrap_or_default();
    let span = match level {
        RequestLog::Info => request_span!(tracing::Level::INFO, route, ids),
        RequestLog::Debug => request_span!(tracing::Level::DEBUG, route, ids),
    };
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    meter::response(route, status);
    if !span.is_disabled() || status >= 500 {
        span.in_scope(|| {
            let latency_ms = started.elapsed().as_secs_f64() * 1e3;
            match (status >= 500, level) {
                (true, _) => tracing::error!(status, latency_ms, "request done"),
                (false, RequestLog::Info) => tracing::info!(status, latency_ms, "request done"),
                (false, RequestLog::Debug) => tracing::debug!(status, latency_ms, "request done"),
            }
        });
    }
    meter::flush();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_a_closed_set() {
        assert_eq!(route_of("/send-code"), "/send-code");
        assert_eq!(route_of("/auth/verify-otp"), "/auth/verify-otp");
        assert_eq!(route_of("/send-code/"), "other");
        assert_eq!(route_of("/+14155552671"), "other");
    }
}

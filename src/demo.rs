//! `/demo`: a small sign-in page for the public routes (address, code, then the token's claims
//! and its signature checked against `/.well-known/jwks.json`), plain HTML and JavaScript served
//! from this binary, with a Content-Security-Policy that allows nothing from elsewhere.

use axum::routing::MethodRouter;
use axum::Router;

pub const PATH: &str = "/demo";

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset<S: Clone + Send + Sync + 'static>(
    content_type: &'static str,
    body: &'static str,
) -> MethodRouter<S> {
    crate::static_asset(content_type, CSP, body.as_bytes())
}

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            PATH,
            asset("text/html; charset=utf-8", include_str!("demo/index.html")),
        )
        .route(
            "/demo/demo.js",
            asset(
                "text/javascript; charset=utf-8",
                include_str!("demo/demo.js"),
            ),
        )
        .route(
            "/demo/demo.css",
            asset("text/css; charset=utf-8", include_str!("demo/demo.css")),
        )
}

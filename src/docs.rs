//! `/docs`: Swagger UI for the served `/openapi.json`, its files compiled into the binary (the
//! `utoipa-swagger-ui` crate's vendored copy, from crates.io at build time), so the page works
//! with no internet access. "Try it out" calls this server.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use otp_core::http::method_not_allowed;
use otp_core::http::reply::{self, PlainError};
use utoipa_swagger_ui::Config;

pub const PATH: &str = "/docs";

/// The routes of the docs: `/docs` redirects to `/docs/`, whose relative links find the files.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let config = Arc::new(Config::from("/openapi.json").try_it_out_enabled(true));
    let index = config.clone();
    let not_get = || async { method_not_allowed("GET, HEAD") };
    Router::new()
        .route(
            PATH,
            get(|| async { Redirect::to("/docs/") }).fallback(not_get),
        )
        .route(
            "/docs/",
            get(move || std::future::ready(file(String::new(), index.clone()))).fallback(not_get),
        )
        .route(
            "/docs/{*file}",
            get(move |Path(name): Path<String>| std::future::ready(file(name, config.clone())))
                .fallback(not_get),
        )
}

fn file(name: String, config: Arc<Config<'static>>) -> Response {
    match utoipa_swagger_ui::serve(&name, config) {
        Ok(Some(file)) => {
            let mut response = file.bytes.into_owned().into_response();
            let headers = response.headers_mut();
            if let Ok(value) = HeaderValue::from_str(&file.content_type) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            if file.gzpipped {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            response
        }
        Ok(None) => reply::json(StatusCode::NOT_FOUND, &PlainError::new("Not Found")),
        Err(error) => {
            tracing::error!(%error, "cannot serve the docs file {name}");
            reply::json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &PlainError::new("The API docs cannot be served."),
            )
        }
    }
}

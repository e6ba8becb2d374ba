//! `GET /.well-known/jwks.json`: the public keys that check verification tokens, as a JWK Set
//! (RFC 7517). Served by the unit that signs them; public, and cacheable for a few minutes
//! (a verifier that meets an unknown `kid` fetches the set again).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::reply::{self, PlainError};
use crate::engine::Engine;

pub const PATH: &str = "/.well-known/jwks.json";

/// How long clients and caches may keep the set.
pub const CACHE_CONTROL: &str = "public, max-age=300";

pub async fn handle(State(engine): State<Arc<Engine>>) -> Response {
    let Some(signer) = engine.tokens() else {
        return reply::json(
            StatusCode::NOT_FOUND,
            &PlainError::new("This service signs no verification tokens"),
        );
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
        ],
        signer.jwks_json().to_owned(),
    )
        .into_response()
}

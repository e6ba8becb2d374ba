//! The backend routes' caller check, as an extractor: it runs before the body is read, so an
//! unauthenticated request learns nothing about validation and costs no parsing.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::reply::{self, PlainError};
use crate::callers::{Callers, Credentials, Denied, Scope};
use crate::engine::Engine;

/// The identity API Gateway's IAM authorizer verified (the caller's ARN); the Lambda adapter
/// puts it on the request. Nothing else can: a request header cannot become an extension.
#[derive(Debug, Clone)]
pub struct IamIdentity(pub String);

/// Which scope a route needs.
pub trait RouteScope {
    const SCOPE: Scope;
}

pub struct Sending;
pub struct Verifying;

impl RouteScope for Sending {
    const SCOPE: Scope = Scope::Send;
}

impl RouteScope for Verifying {
    const SCOPE: Scope = Scope::Verify;
}

/// An admitted caller of a route of scope `S`: its name, for the logs.
pub struct Caller<S> {
    pub name: String,
    scope: PhantomData<S>,
}

/// 401 (with `WWW-Authenticate`) or 403, each `{"detail": ...}`.
pub enum AuthRejection {
    Unauthenticated {
        detail: &'static str,
        challenge: &'static str,
    },
    Forbidden(String),
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::Unauthenticated { detail, challenge } => {
                let mut response = reply::json(StatusCode::UNAUTHORIZED, &PlainError::new(detail));
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
                response
            }
            AuthRejection::Forbidden(detail) => {
                reply::json(StatusCode::FORBIDDEN, &PlainError::new(detail))
            }
        }
    }
}

impl<S: RouteScope + Send + Sync> FromRequestParts<Arc<Engine>> for Caller<S> {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        engine: &Arc<Engine>,
    ) -> Result<Self, Self::Rejection> {
        let callers = engine.callers();
        let credentials = Credentials {
            authorization: parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok()),
            iam_identity: parts
                .extensions
                .get::<IamIdentity>()
                .map(|identity| identity.0.as_str()),
        };
        let scope = S::SCOPE.as_str();
        match callers.admit(&credentials, S::SCOPE) {
            Ok(name) => Ok(Caller {
                name,
                scope: PhantomData,
            }),
            Err(Denied::Unauthenticated(detail)) => {
                tracing::warn!(path = parts.uri.path(), "request refused: {detail}");
                let challenge = match callers {
                    Callers::Iam => "AWS4-HMAC-SHA256",
                    _ => "Bearer",
                };
                Err(AuthRejection::Unauthenticated { detail, challenge })
            }
            Err(Denied::OutOfScope { name }) => {
                tracing::warn!(caller = %name, scope, "request refused: key out of scope");
                Err(AuthRejection::Forbidden(format!(
                    "The API key {name:?} may not call this route (it needs scope {scope:?})."
                )))
            }
        }
    }
}

#[cfg(feature = "openapi")]
impl<S> crate::http::schema::Outcomes for Caller<S> {
    fn outcomes() -> Vec<crate::http::schema::Outcome> {
        use crate::http::schema::Outcome;
        vec![
            Outcome::of::<PlainError>(
                401,
                "No valid credential: `Authorization: Bearer <API key>` (or a SigV4 signature \
                 with IAM auth); sent with `WWW-Authenticate`",
                false,
            ),
            Outcome::of::<PlainError>(403, "The API key's scope does not allow this route", false),
        ]
    }
}

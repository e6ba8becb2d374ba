//! Answers: JSON bodies, and the `outcomes!` macro that makes each route's outcomes one enum
//! whose variants state their status, description and headers once. From that single statement
//! come the response (`IntoResponse`) and its documentation (utoipa `IntoResponses`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A JSON body we answer with. `Retry-After` is sent when the body says when to come back.
pub trait ReplyBody: Serialize {
    fn retry_after(&self) -> Option<u64> {
        None
    }
}

/// The response for `body` with `status`: JSON, and `Retry-After` when the body has one.
pub fn json<B: ReplyBody>(status: StatusCode, body: &B) -> Response {
    // Our bodies are plain structs of strings and numbers; serialising them cannot fail.
    let bytes = serde_json::to_vec(body).expect("response bodies always serialise");
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Answers about codes are for this request only: no browser or proxy may keep one.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(seconds) = body.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// `{"detail": "..."}`: the body of every error that has nothing more to say.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlainError {
    pub detail: String,
}

impl PlainError {
    pub fn new(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
        }
    }
}

impl ReplyBody for PlainError {}

/// Declares a route's outcomes:
///
/// ```ignore
/// outcomes! {
///     pub enum SendCodeReply {
///         Sent(SendCodeOk) = 200, "Sent";
///         CoolingDown(SendFailure) = 429, "`cooldown`", retry_after;
///     }
/// }
/// ```
///
/// A trailing `retry_after` documents the `Retry-After` header (the body's
/// [`ReplyBody::retry_after`] sends it).
#[macro_export]
macro_rules! outcomes {
    (
        $(#[$meta:meta])*
        pub enum $name:ident $(<$generic:ident>)? {
            $( $(#[$vmeta:meta])* $variant:ident($body:ty) = $status:literal, $description:literal $(, $header:ident)? ; )*
        }
    ) => {
        $(#[$meta])*
        pub enum $name $(<$generic>)? {
            $( $(#[$vmeta])* $variant($body), )*
        }

        impl $(<$generic: $crate::http::reply::ReplyBody>)? $name $(<$generic>)? {
            pub fn status(&self) -> ::axum::http::StatusCode {
                let code: u16 = match self { $( Self::$variant(_) => $status, )* };
                ::axum::http::StatusCode::from_u16(code).expect("a valid status")
            }
        }

        impl $(<$generic: $crate::http::reply::ReplyBody>)? ::axum::response::IntoResponse
            for $name $(<$generic>)?
        {
            fn into_response(self) -> ::axum::response::Response {
                let status = self.status();
                match self {
                    $( Self::$variant(body) => $crate::http::reply::json(status, &body), )*
                }
            }
        }

        #[cfg(feature = "openapi")]
        impl $(<$generic: $crate::http::reply::ReplyBody + ::utoipa::ToSchema>)? $crate::http::schema::Outcomes
            for $name $(<$generic>)?
        {
            fn outcomes() -> Vec<$crate::http::schema::Outcome> {
                vec![ $( $crate::http::schema::Outcome::of::<$body>(
                    $status,
                    $description,
                    $crate::outcomes!(@retry_after $($header)?),
                ), )* ]
            }
        }
    };
    (@retry_after retry_after) => { true };
    (@retry_after) => { false };
}

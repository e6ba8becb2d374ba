//! Request in → response out. The one HTTP implementation: both Lambda functions and the local
//! server call [`handle`] and only translate their own request and response types around it.

pub mod responses;
pub mod validation;

use http::{header, HeaderValue, Method, StatusCode};
use serde::Serialize;

use crate::engine::Engine;
use responses::{PlainError, Subject};

/// Larger bodies are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    SendCode,
    VerifyCode,
    RequestOtp,
    VerifyOtp,
}

impl Route {
    pub const ALL: &'static [Route] = &[
        Route::SendCode,
        Route::VerifyCode,
        Route::RequestOtp,
        Route::VerifyOtp,
    ];
    /// What the send-code Lambda function serves.
    pub const SENDING: &'static [Route] = &[Route::SendCode, Route::RequestOtp];
    /// What the verify-code Lambda function serves.
    pub const VERIFYING: &'static [Route] = &[Route::VerifyCode, Route::VerifyOtp];

    pub fn path(self) -> &'static str {
        match self {
            Route::SendCode => "/send-code",
            Route::VerifyCode => "/verify-code",
            Route::RequestOtp => "/auth/request-otp",
            Route::VerifyOtp => "/auth/verify-otp",
        }
    }

    pub fn from_path(path: &str) -> Option<Route> {
        Route::ALL.iter().copied().find(|r| r.path() == path)
    }
}

/// What the handler needs of a request, borrowed from whatever type the runtime delivers.
#[derive(Debug, Clone, Copy)]
pub struct ApiRequest<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// A JSON response; every outcome, success or failure, is one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub retry_after: Option<u64>,
    /// Set on 405, for the `Allow` header.
    pub allow: Option<&'static str>,
}

impl ApiResponse {
    pub fn json(status: StatusCode, body: &impl Serialize) -> Self {
        // Our bodies are plain structs of strings and numbers; serialising them cannot fail.
        let body = serde_json::to_vec(body).expect("response bodies always serialise");
        Self {
            status,
            body,
            retry_after: None,
            allow: None,
        }
    }

    pub fn not_found() -> Self {
        Self::json(
            StatusCode::NOT_FOUND,
            &PlainError {
                detail: "Not Found",
            },
        )
    }

    pub fn method_not_allowed() -> Self {
        let mut response = Self::json(
            StatusCode::METHOD_NOT_ALLOWED,
            &PlainError {
                detail: "Method Not Allowed",
            },
        );
        response.allow = Some("POST");
        response
    }

    pub fn payload_too_large() -> Self {
        Self::json(
            StatusCode::PAYLOAD_TOO_LARGE,
            &PlainError {
                detail: "Request body is too large: the limit is 16384 bytes",
            },
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::json(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &PlainError {
                detail: "Content-Type must be application/json",
            },
        )
    }

    pub fn into_http<B: From<Vec<u8>>>(self) -> http::Response<B> {
        let mut response = http::Response::new(B::from(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// JSON is what we take; a missing Content-Type is accepted as JSON, as FastAPI does.
fn is_json(content_type: Option<&str>) -> bool {
    let Some(value) = content_type else {
        return true;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Routes a request among `routes` (the routes this deployment unit serves) and runs it.
pub async fn handle(engine: &Engine, routes: &[Route], request: ApiRequest<'_>) -> ApiResponse {
    let Some(route) = Route::from_path(request.path).filter(|r| routes.contains(r)) else {
        return ApiResponse::not_found();
    };
    if request.method != Method::POST {
        return ApiResponse::method_not_allowed();
    }
    if request.body.len() > MAX_BODY_BYTES {
        return ApiResponse::payload_too_large();
    }
    if !is_json(request.content_type) {
        return ApiResponse::unsupported_media_type();
    }
    let body = request.body;
    let code_length = engine.policy().code_length;
    match route {
        Route::SendCode => match validation::send_code(body) {
            Err(issues) => responses::validation_failed(issues),
            Ok(send) => {
                let user_id = send.key.user_id.as_str().to_owned();
                match engine.send(send).await {
                    Ok(sent) => ApiResponse::json(
                        StatusCode::OK,
                        &responses::SendCodeOk {
                            message: format!("OTP sent successfully via {}", sent.channel.as_str()),
                            user_id,
                            method: sent.channel.as_str(),
                            expires_in: sent.expires_in,
                        },
                    ),
                    Err(error) => responses::send_failed(error, Subject::UserId(user_id)),
                }
            }
        },
        Route::VerifyCode => match validation::verify_code(body, code_length) {
            Err(issues) => responses::validation_failed(issues),
            Ok((key, passcode)) => {
                let outcome = engine.verify(&key, &passcode).await;
                responses::verify_code(outcome, key.user_id.as_str().to_owned())
            }
        },
        Route::RequestOtp => match validation::request_otp(body) {
            Err(issues) => responses::validation_failed(issues),
            Ok((email, send)) => {
                let email = email.as_str().to_owned();
                match engine.send(send).await {
                    Ok(_) => ApiResponse::json(
                        StatusCode::OK,
                        &responses::AuthOk {
                            message: "OTP sent to your email",
                            email,
                        },
                    ),
                    Err(error) => responses::send_failed(error, Subject::Email(email)),
                }
            }
        },
        Route::VerifyOtp => match validation::verify_otp(body, code_length) {
            Err(issues) => responses::validation_failed(issues),
            Ok((email, key, passcode)) => {
                let outcome = engine.verify(&key, &passcode).await;
                responses::verify_otp(outcome, email.as_str().to_owned())
            }
        },
    }
}

#[cfg(test)]
mod fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for ok in [
            None,
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/vnd.api+json"),
        ] {
            assert!(is_json(ok), "{ok:?}");
        }
        for bad in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some(""),
        ] {
            assert!(!is_json(bad), "{bad:?}");
        }
    }
}

//! Response bodies and the one place that turns outcomes into statuses. Clients get a sentence
//! in `detail`; internals go to the log only.

use http::StatusCode;
use serde::Serialize;

use super::validation::Issues;
use super::ApiResponse;
use crate::domain::Channel;
use crate::engine::{error_chain, SendError, VerifyOutcome};
use crate::sender::DeliveryError;
use crate::store::StoreError;

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendCodeOk {
    pub message: String,
    pub user_id: String,
    pub method: &'static str,
    pub expires_in: u64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyCodeOk {
    pub success: bool,
    pub message: &'static str,
    pub user_id: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthOk {
    pub message: &'static str,
    pub email: String,
}

/// Who a failed request was about, echoed back as the route's own field name.
pub enum Subject {
    UserId(String),
    Email(String),
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendFailure {
    pub error: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyCodeFailure {
    pub success: bool,
    pub error: &'static str,
    pub detail: String,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_remaining: Option<u32>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthVerifyFailure {
    pub detail: &'static str,
    pub error: &'static str,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidationFailure {
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<super::validation::ValidationIssue>))]
    pub detail: Issues,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlainError {
    pub detail: &'static str,
}

pub const STORE_UNAVAILABLE: &str =
    "The service is temporarily unavailable. Please try again shortly.";

pub fn validation_failed(detail: Issues) -> ApiResponse {
    ApiResponse::json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &ValidationFailure { detail },
    )
}

fn log_store_error(error: &StoreError) {
    tracing::error!(error = %error_chain(error), "store unavailable");
}

pub fn send_failed(error: SendError, subject: Subject) -> ApiResponse {
    let (status, code, detail, retry_after) = match &error {
        SendError::CoolingDown(seconds) => (
            StatusCode::TOO_MANY_REQUESTS,
            "cooldown",
            format!(
                "A code was sent recently. Please wait {seconds} seconds before requesting another."
            ),
            Some(*seconds),
        ),
        SendError::ChannelUnavailable(channel) => {
            tracing::warn!(
                channel = channel.as_str(),
                "send refused: no sender configured"
            );
            channel_unavailable(*channel)
        }
        SendError::Delivery(DeliveryError::Unavailable { channel, reason }) => {
            tracing::error!(channel, reason, "delivery channel misconfigured");
            let channel = Channel::parse(channel).unwrap_or(Channel::Sms);
            channel_unavailable(channel)
        }
        SendError::Delivery(DeliveryError::InvalidDestination { detail }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_destination",
            detail.clone(),
            None,
        ),
        SendError::Delivery(DeliveryError::Failed(_)) => (
            StatusCode::BAD_GATEWAY,
            "delivery_failed",
            "The code could not be delivered. Please try again.".to_owned(),
            None,
        ),
        SendError::Store(store_error) => {
            log_store_error(store_error);
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                STORE_UNAVAILABLE.to_owned(),
                None,
            )
        }
    };
    let (user_id, email) = match subject {
        Subject::UserId(id) => (Some(id), None),
        Subject::Email(email) => (None, Some(email)),
    };
    let body = SendFailure {
        error: code,
        detail,
        user_id,
        email,
        retry_after,
    };
    let mut response = ApiResponse::json(status, &body);
    response.retry_after = retry_after;
    response
}

fn channel_unavailable(channel: Channel) -> (StatusCode, &'static str, String, Option<u64>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "channel_unavailable",
        format!(
            "Sending codes by {} is not available right now.",
            channel.as_str()
        ),
        None,
    )
}

/// Status, error code and sentence of each verification failure.
fn verify_failure(outcome: &VerifyOutcome) -> (StatusCode, &'static str, String) {
    match outcome {
        VerifyOutcome::Verified => unreachable!("not a failure"),
        VerifyOutcome::WrongCode { attempts_remaining } => (
            StatusCode::BAD_REQUEST,
            "invalid_code",
            format!("The code is incorrect. Attempts remaining: {attempts_remaining}."),
        ),
        VerifyOutcome::NotFound => (
            StatusCode::NOT_FOUND,
            "not_found",
            "There is no pending code for this user. Request a new code.".to_owned(),
        ),
        VerifyOutcome::Expired => (
            StatusCode::GONE,
            "expired",
            "The code has expired. Request a new code.".to_owned(),
        ),
        VerifyOutcome::TooManyAttempts => (
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many incorrect attempts. Request a new code.".to_owned(),
        ),
    }
}

pub fn verify_code(outcome: Result<VerifyOutcome, StoreError>, user_id: String) -> ApiResponse {
    let outcome = match outcome {
        Ok(VerifyOutcome::Verified) => {
            return ApiResponse::json(
                StatusCode::OK,
                &VerifyCodeOk {
                    success: true,
                    message: "OTP verified successfully",
                    user_id,
                },
            )
        }
        Ok(outcome) => outcome,
        Err(error) => {
            log_store_error(&error);
            let body = VerifyCodeFailure {
                success: false,
                error: "store_unavailable",
                detail: STORE_UNAVAILABLE.to_owned(),
                user_id,
                attempts_remaining: None,
            };
            return ApiResponse::json(StatusCode::SERVICE_UNAVAILABLE, &body);
        }
    };
    let (status, error, detail) = verify_failure(&outcome);
    let attempts_remaining = match outcome {
        VerifyOutcome::WrongCode { attempts_remaining } => Some(attempts_remaining),
        _ => None,
    };
    let body = VerifyCodeFailure {
        success: false,
        error,
        detail,
        user_id,
        attempts_remaining,
    };
    ApiResponse::json(status, &body)
}

/// The legacy contract: every verification failure is the same 400, with the reason in `error`.
pub fn verify_otp(outcome: Result<VerifyOutcome, StoreError>, email: String) -> ApiResponse {
    match outcome {
        Ok(VerifyOutcome::Verified) => ApiResponse::json(
            StatusCode::OK,
            &AuthOk {
                message: "OTP verified successfully",
                email,
            },
        ),
        Ok(outcome) => ApiResponse::json(
            StatusCode::BAD_REQUEST,
            &AuthVerifyFailure {
                detail: "Invalid or expired OTP",
                error: verify_failure(&outcome).1,
            },
        ),
        Err(error) => {
            log_store_error(&error);
            ApiResponse::json(
                StatusCode::SERVICE_UNAVAILABLE,
                &SendFailure {
                    error: "store_unavailable",
                    detail: STORE_UNAVAILABLE.to_owned(),
                    user_id: None,
                    email: Some(email),
                    retry_after: None,
                },
            )
        }
    }
}

//! `POST /auth/verify-otp`: the email-only contract's check, every failure the same 400.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::body::{Check, Contract, Field, Valid, ValidationIssue};
use super::reply::ReplyBody;
use super::request_otp::AuthOk;
use super::sending::{SendFailure, STORE_UNAVAILABLE};
use crate::domain::{Destination, Email, Passcode, Purpose, Space, UserId};
use crate::engine::{Engine, VerifyOutcome, VerifyRequest};
use crate::field;
use crate::settings::Policy;
use crate::store::RecordKey;

pub const PATH: &str = "/auth/verify-otp";

/// `POST /auth/verify-otp` body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!(
    {"email": "user@example.com", "otp_code": "123456"})))]
pub struct VerifyOtpRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::email, required = true))]
    pub email: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::passcode, required = true))]
    pub otp_code: Field,
}

/// The address as given (echoed back) and the guess.
pub struct EmailGuess {
    pub email: Email,
    pub guess: VerifyRequest,
}

impl Contract for VerifyOtpRequest {
    type Domain = EmailGuess;

    fn into_domain(self, policy: &Policy) -> Result<EmailGuess, Vec<ValidationIssue>> {
        let body = self;
        let mut check = Check::default();
        let email = field!(check, body.email, required, Email::parse);
        let passcode = field!(check, body.otp_code, required, |raw| Passcode::parse(
            raw,
            policy.code_length
        ));
        check.finish(|| {
            let email = email?;
            let key = RecordKey::new(
                Space::Public,
                Purpose::default(),
                UserId::from_email(&email),
            );
            Some(EmailGuess {
                guess: VerifyRequest {
                    key,
                    passcode: passcode?,
                    // The id is the address, so the code must have gone to exactly it.
                    destination: Some(Destination::Email(email.clone())),
                    caller: None,
                },
                email,
            })
        })
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthVerifyFailure {
    pub detail: String,
    pub error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl ReplyBody for AuthVerifyFailure {
    fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}

crate::outcomes! {
    pub enum VerifyOtpReply {
        Verified(AuthOk) = 200, "Verified";
        Refused(AuthVerifyFailure) = 400, "Every verification failure; the reason is in `error`";
        Locked(AuthVerifyFailure) = 429,
            "`locked`: too many wrong codes for this address; try again after `retry_after`",
            retry_after;
        Unavailable(SendFailure) = 503, "`store_unavailable`";
    }
}

pub async fn handle(
    State(engine): State<Arc<Engine>>,
    Valid(request): Valid<VerifyOtpRequest>,
) -> VerifyOtpReply {
    let EmailGuess { email, guess } = request;
    let email = email.as_str().to_owned();
    let reason = match engine.verify(&guess).await {
        Ok(VerifyOutcome::Verified { .. }) => {
            return VerifyOtpReply::Verified(AuthOk {
                message: "OTP verified successfully",
                email,
            })
        }
        Ok(VerifyOutcome::WrongCode { .. }) => "invalid_code",
        Ok(VerifyOutcome::NotFound) => "not_found",
        Ok(VerifyOutcome::Expired) => "expired",
        Ok(VerifyOutcome::TooManyAttempts) => "too_many_attempts",
        Ok(VerifyOutcome::WrongDestination) => "not_found",
        Ok(VerifyOutcome::Locked { retry_after }) => {
            return VerifyOtpReply::Locked(AuthVerifyFailure {
                detail: format!(
                    "Too many incorrect codes. Please try again in {retry_after} seconds."
                ),
                error: "locked",
                retry_after: Some(retry_after),
            })
        }
        Err(_) => {
            return VerifyOtpReply::Unavailable(SendFailure {
                error: "store_unavailable",
                detail: STORE_UNAVAILABLE.to_owned(),
                user_id: None,
                email: Some(email),
                limit: None,
                retry_after: None,
            })
        }
    };
    VerifyOtpReply::Refused(AuthVerifyFailure {
        detail: "Invalid or expired OTP".to_owned(),
        error: reason,
        retry_after: None,
    })
}

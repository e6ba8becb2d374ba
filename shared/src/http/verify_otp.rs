//! `POST /auth/verify-otp`: the email-only contract's check, every failure the same 400.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::body::{Check, Contract, Field, Valid, ValidationIssue};
use super::reply::ReplyBody;
use super::request_otp::AuthOk;
use super::sending::{SendFailure, STORE_UNAVAILABLE};
use super::verify_code::Guess;
use crate::domain::{Email, Passcode, Purpose, UserId};
use crate::engine::{Engine, VerifyOutcome};
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
    pub guess: Guess,
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
            let key = RecordKey::new(Purpose::default(), UserId::from_email(&email));
            Some(EmailGuess {
                email,
                guess: Guess {
                    key,
                    passcode: passcode?,
                },
            })
        })
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthVerifyFailure {
    pub detail: &'static str,
    pub error: &'static str,
}

impl ReplyBody for AuthVerifyFailure {}

crate::outcomes! {
    pub enum VerifyOtpReply {
        Verified(AuthOk) = 200, "Verified";
        Refused(AuthVerifyFailure) = 400, "Every verification failure; the reason is in `error`";
        Unavailable(SendFailure) = 503, "`store_unavailable`";
    }
}

pub async fn handle(
    State(engine): State<Arc<Engine>>,
    Valid(request): Valid<VerifyOtpRequest>,
) -> VerifyOtpReply {
    let EmailGuess { email, guess } = request;
    let email = email.as_str().to_owned();
    let reason = match engine.verify(&guess.key, &guess.passcode).await {
        Ok(VerifyOutcome::Verified) => {
            return VerifyOtpReply::Verified(AuthOk {
                message: "OTP verified successfully",
                email,
            })
        }
        Ok(VerifyOutcome::WrongCode { .. }) => "invalid_code",
        Ok(VerifyOutcome::NotFound) => "not_found",
        Ok(VerifyOutcome::Expired) => "expired",
        Ok(VerifyOutcome::TooManyAttempts) => "too_many_attempts",
        Err(_) => {
            return VerifyOtpReply::Unavailable(SendFailure {
                error: "store_unavailable",
                detail: STORE_UNAVAILABLE.to_owned(),
                user_id: None,
                email: Some(email),
                retry_after: None,
            })
        }
    };
    VerifyOtpReply::Refused(AuthVerifyFailure {
        detail: "Invalid or expired OTP",
        error: reason,
    })
}

//! `POST /auth/verify-otp`: the email-only contract's check; every failure is the same 400.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::body::{Check, Contract, Field, Valid, ValidationIssue};
use super::client::ClientAddress;
use super::reply::{PlainError, ReplyBody};
use super::sending::STORE_UNAVAILABLE;
use crate::domain::{Destination, Email, Passcode, Purpose, Space, UserId};
use crate::engine::{Engine, VerifyOutcome, VerifyRequest};
use crate::field;
use crate::settings::Policy;
use crate::store::RecordKey;
use crate::token::Subject;

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

    const FROM_BROWSERS: bool = true;

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
                    // The transport's, set by the handler.
                    client: None,
                    caller: None,
                },
                email,
            })
        })
    }
}

/// The seed's answer to a right code, with the token the application's backend checks.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthVerified {
    pub message: &'static str,
    pub email: String,
    /// A signed token saying that this address was verified (EdDSA JWS: `sub` the lower-cased
    /// address, `channel` `email`, `exp`), checkable with the keys at `/.well-known/jwks.json`.
    /// The browser hands it to the application's backend, which must check it: the 200 itself
    /// proves nothing to anyone but the browser.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_token: Option<String>,
}

impl ReplyBody for AuthVerified {}

/// Every failed check, whatever the reason: the reason goes to the logs and metrics only, so
/// that the answer says nothing about the address (whether it has a code, how many guesses it
/// took, whether it is locked).
pub const REFUSED: &str = "Invalid or expired OTP";

crate::outcomes! {
    pub enum VerifyOtpReply {
        Verified(AuthVerified) = 200, "Verified; `verification_token` proves it to your backend";
        Refused(PlainError) = 400,
            "`Invalid or expired OTP`, for every failure: wrong, expired, used or never sent, too \
             many attempts, or the address locked after too many wrong codes";
        Unavailable(PlainError) = 503, "The code store is unavailable; nothing was counted";
    }
}

pub async fn handle(
    State(engine): State<Arc<Engine>>,
    ClientAddress(client): ClientAddress,
    Valid(request): Valid<VerifyOtpRequest>,
) -> VerifyOtpReply {
    let EmailGuess { email, mut guess } = request;
    // Wrong guesses are counted per client network: one attacker's network locks only itself.
    guess.client = client;
    match engine.verify(&guess).await {
        Ok(VerifyOutcome::Verified { channel, .. }) => {
            let verification_token = engine.verification_token(Subject {
                space: guess.key.space,
                sub: guess.key.user_id.as_str(),
                purpose: guess.key.purpose.as_str(),
                channel: channel.as_str(),
                email: Some(guess.key.user_id.as_str()),
            });
            VerifyOtpReply::Verified(AuthVerified {
                message: "OTP verified successfully",
                email: email.as_str().to_owned(),
                verification_token,
            })
        }
        Ok(_) => VerifyOtpReply::Refused(PlainError::new(REFUSED)),
        Err(_) => VerifyOtpReply::Unavailable(PlainError::new(STORE_UNAVAILABLE)),
    }
}

//! `POST /auth/request-otp`: the email-only contract, where the address is the user id.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::body::{Check, Contract, Field, Valid, ValidationIssue};
use super::client::ClientAddress;
use super::reply::{PlainError, ReplyBody};
use super::sending::{SendFailure, SendReply, Subject, STORE_UNAVAILABLE};
use crate::captcha::Verdict;
use crate::domain::{Destination, Email, FieldError, Purpose, Space, UserId};
use crate::engine::{Engine, SendError, SendRequest};
use crate::field;
use crate::limits::LimitName;
use crate::locale::Locale;
use crate::settings::Policy;
use crate::settings::UnknownUser;
use crate::store::RecordKey;

pub const PATH: &str = "/auth/request-otp";

/// `POST /auth/request-otp` body. The address (case-insensitive) is the user id.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"email": "user@example.com"})))]
pub struct RequestOtpRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::email, required = true))]
    pub email: Field,
    /// The CAPTCHA widget's token, when the service requires one (`OTP_CAPTCHA_PROVIDER`).
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::captcha_token, required = false))]
    pub captcha_token: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::locale, required = false))]
    pub locale: Field,
}

/// The address as given (echoed back), the send it asks for, and the CAPTCHA token if any.
pub struct EmailSend {
    pub email: Email,
    pub send: SendRequest,
    pub captcha_token: Option<String>,
}

/// Longer than any provider's token (Turnstile's are at most 2,048 characters).
pub const MAX_CAPTCHA_TOKEN_CHARS: usize = 4096;

fn captcha_token(raw: &str) -> Result<String, FieldError> {
    if raw.is_empty() || raw.len() > MAX_CAPTCHA_TOKEN_CHARS {
        return Err(FieldError::new(
            "string_too_long",
            format!("String should have 1 to {MAX_CAPTCHA_TOKEN_CHARS} characters"),
        ));
    }
    Ok(raw.to_owned())
}

impl Contract for RequestOtpRequest {
    type Domain = EmailSend;

    const FROM_BROWSERS: bool = true;

    fn into_domain(self, _: &Policy) -> Result<EmailSend, Vec<ValidationIssue>> {
        let body = self;
        let mut check = Check::default();
        let email = field!(check, body.email, required, Email::parse);
        let captcha_token = field!(check, body.captcha_token, optional, captcha_token);
        let locale = field!(check, body.locale, optional, Locale::parse);
        check.finish(|| {
            let email = email?;
            // Email only: no origin (no provider of ours posts receipts for it), no client
            // here (the handler adds the source address), never trusted.
            let send = SendRequest {
                locale: locale.unwrap_or_default(),
                ..SendRequest::new(
                    RecordKey::new(
                        Space::Public,
                        Purpose::default(),
                        UserId::from_email(&email),
                    ),
                    Destination::Email(email.clone()),
                )
            };
            Some(EmailSend {
                email,
                send,
                captcha_token,
            })
        })
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthOk {
    pub message: &'static str,
    pub email: String,
}

impl ReplyBody for AuthOk {}

crate::outcomes! {
    /// What `/auth/request-otp` answers. Refusals that depend on the address (a cooldown, a
    /// lockout, the address's own send limits, an unknown address under `conceal`) are answered
    /// as a send, so that the answer says nothing about the address that the caller did not
    /// cause; the reason goes to the logs and metrics.
    pub enum RequestOtpReply {
        Sent(AuthOk) = 200,
            "Sent; also the answer when nothing was sent because of the address (a code sent \
             too recently, a lockout, the address's send limits, or an unknown address with \
             `OTP_UNKNOWN_USER=conceal`)";
        CaptchaRefused(PlainError) = 403,
            "The CAPTCHA token is missing or did not pass (`OTP_CAPTCHA_PROVIDER` is set)";
        UnknownUser(PlainError) = 404,
            "`User not found`: the address is not in the user directory \
             (`OTP_UNKNOWN_USER=reveal`)";
        InvalidDestination(SendFailure) = 422,
            "`invalid_destination`: the email provider refused the address";
        RateLimited(SendFailure) = 429,
            "`rate_limited`: this client sent too many requests (`limit`: `client_ip_per_hour`)",
            retry_after;
        DeliveryFailed(SendFailure) = 502,
            "`delivery_failed` or `delivery_uncertain`: the provider failed or did not confirm",
            retry_after;
        Unavailable(SendFailure) = 503,
            "`channel_unavailable`, `store_unavailable` or `captcha_unavailable` (the CAPTCHA \
             provider could not be asked); nothing was sent";
    }
}

/// The refusals a public caller must not be able to tell from a send.
fn about_the_address(error: &SendError) -> bool {
    match error {
        SendError::CoolingDown(_) | SendError::Locked(_) => true,
        SendError::Limited { limit, .. } => matches!(
            limit,
            LimitName::Destination10Minutes
                | LimitName::DestinationDay
                | LimitName::DestinationCeilingDay
                | LimitName::UserHour
        ),
        _ => false,
    }
}

pub async fn handle(
    State(engine): State<Arc<Engine>>,
    ClientAddress(client): ClientAddress,
    Valid(mut request): Valid<RequestOtpRequest>,
) -> RequestOtpReply {
    let email = request.email.as_str().to_owned();
    let sent = || {
        RequestOtpReply::Sent(AuthOk {
            message: "OTP sent to your email",
            email: email.clone(),
        })
    };
    let unavailable = |error: &'static str, detail: &str| {
        RequestOtpReply::Unavailable(SendFailure {
            error,
            detail: detail.to_owned(),
            user_id: None,
            email: Some(email.clone()),
            limit: None,
            retry_after: None,
            verification_id: None,
        })
    };
    let gate = engine.gate();
    if let Some(captcha) = &gate.captcha {
        let Some(token) = request.captcha_token.as_deref() else {
            tracing::info!("request refused: no CAPTCHA token");
            return RequestOtpReply::CaptchaRefused(PlainError::new(CAPTCHA_REQUIRED));
        };
        match captcha.check(token, client).await {
            Ok(Verdict::Passed) => {}
            Ok(Verdict::Failed(reasons)) => {
                tracing::info!(?reasons, "request refused: CAPTCHA failed");
                return RequestOtpReply::CaptchaRefused(PlainError::new(CAPTCHA_FAILED));
            }
            Err(error) => {
                tracing::error!(%error, "CAPTCHA check unavailable; nothing sent");
                return unavailable("captcha_unavailable", CAPTCHA_UNAVAILABLE);
            }
        }
    }
    match engine.is_known_user(&request.send.key.user_id).await {
        Ok(true) => {}
        Ok(false) => {
            // Charged as a send would be, so that the caller's limit says nothing either.
            if let Err(error) = engine.charge_public_request(client).await {
                return refused(error, email);
            }
            let user = crate::mask::email(&email);
            return match gate.unknown_user {
                UnknownUser::Conceal => {
                    tracing::info!(%user, "unknown address: nothing sent (concealed)");
                    sent()
                }
                UnknownUser::Reveal => {
                    tracing::info!(%user, "unknown address: nothing sent");
                    RequestOtpReply::UnknownUser(PlainError::new("User not found"))
                }
            };
        }
        Err(_) => return unavailable("store_unavailable", STORE_UNAVAILABLE),
    }
    request.send.client = client;
    match engine.send(request.send).await {
        Ok(_) => sent(),
        Err(error) => refused(error, email),
    }
}

/// A refusal as the public route answers it: one about the address as a send, the rest as
/// what the caller itself caused.
fn refused(error: SendError, email: String) -> RequestOtpReply {
    let sent = || {
        RequestOtpReply::Sent(AuthOk {
            message: "OTP sent to your email",
            email: email.clone(),
        })
    };
    if about_the_address(&error) {
        return sent();
    }
    match SendReply::<AuthOk>::failed(error, Subject::Email(email.clone())) {
        SendReply::InvalidDestination(body) => RequestOtpReply::InvalidDestination(body),
        SendReply::RateLimited(body) => RequestOtpReply::RateLimited(body),
        SendReply::DeliveryFailed(body) | SendReply::DeliveryUncertain(body) => {
            RequestOtpReply::DeliveryFailed(body)
        }
        // The fraud guard refuses only phone sends, and this route sends email.
        SendReply::Unavailable(body)
        | SendReply::BudgetExhausted(body)
        | SendReply::FraudSuspected(body) => RequestOtpReply::Unavailable(body),
        // Answered as a send above.
        SendReply::Sent(_) | SendReply::CoolingDown(_) | SendReply::Locked(_) => sent(),
    }
}

pub const CAPTCHA_REQUIRED: &str = "Please complete the CAPTCHA (captcha_token is required).";
pub const CAPTCHA_FAILED: &str = "The CAPTCHA check failed. Please try again.";
pub const CAPTCHA_UNAVAILABLE: &str =
    "The CAPTCHA could not be checked right now. Please try again shortly.";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::parse_object;

    #[test]
    fn the_lowercased_address_is_the_user_id() {
        let parsed = parse_object::<RequestOtpRequest>(br#"{"email": "Bob@Example.com"}"#)
            .unwrap()
            .into_domain(&Policy::default())
            .unwrap();
        assert_eq!(parsed.email.as_str(), "Bob@Example.com");
        assert_eq!(parsed.send.key.user_id.as_str(), "bob@example.com");
        assert_eq!(parsed.send.key.purpose.as_str(), "default");
    }
}

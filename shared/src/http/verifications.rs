//! `GET /verifications/{verification_id}` and `POST /verifications/{verification_id}/cancel`:
//! what became of a code `/send-code` sent, and withdrawing it.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::Serialize;

use super::auth::{Caller, Sending, Verifying};
use super::reply::ReplyBody;
use super::sending::STORE_UNAVAILABLE;
use crate::engine::{Engine, VerificationView};
use crate::verification::{rfc3339, Cancel, Status};

pub const PATH: &str = "/verifications/{verification_id}";
pub const CANCEL_PATH: &str = "/verifications/{verification_id}/cancel";

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryBody {
    /// `sent` (handed to the provider), `delivered`, `undelivered` (the carrier or mailbox did
    /// not take it), `failed` (the provider could not send it) or `unknown`.
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "delivered",
            pattern = "^(sent|delivered|undelivered|failed|unknown)$"
        )
    )]
    pub status: &'static str,
    /// The provider's error code with `undelivered` or `failed` (Twilio's `30003`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// When the latest delivery receipt came (RFC 3339); absent before any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// The provider's id of the message (Twilio's `SM…` from its receipts, the send hook's
    /// `message_id`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerificationBody {
    pub verification_id: String,
    /// `pending`, `approved` (the code was verified), `canceled`, `expired`,
    /// `max_attempts_reached` or `superseded` (a newer code replaced it).
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "pending",
            pattern = "^(pending|approved|canceled|expired|max_attempts_reached|superseded)$"
        )
    )]
    pub status: &'static str,
    pub user_id: String,
    pub purpose: String,
    /// `sms`, `whatsapp`, `voice` or `email`.
    pub channel: &'static str,
    /// Where the code went, masked: `+1******2671`, `a***@example.com`.
    pub destination: String,
    pub delivery: DeliveryBody,
    /// Guesses the code still takes (0 unless pending).
    pub attempts_remaining: u32,
    /// Seconds until the code expires (0 unless pending).
    pub expires_in: u64,
}

impl ReplyBody for VerificationBody {}

impl From<VerificationView> for VerificationBody {
    fn from(view: VerificationView) -> Self {
        let v = view.verification;
        Self {
            verification_id: v.id.as_str().to_owned(),
            status: view.status.as_str(),
            user_id: v.user_id,
            purpose: v.purpose,
            channel: v.channel.as_str(),
            destination: v.sent_to,
            delivery: DeliveryBody {
                status: v.delivery.status.as_str(),
                error_code: v.delivery.error_code,
                updated_at: v.delivery.updated_at.map(rfc3339),
                provider_message_id: v.delivery.provider_message_id,
            },
            attempts_remaining: view.attempts_remaining,
            expires_in: view.expires_in,
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CanceledBody {
    pub verification_id: String,
    #[cfg_attr(
        feature = "openapi",
        schema(example = "canceled", pattern = "^canceled$")
    )]
    pub status: &'static str,
}

impl ReplyBody for CanceledBody {}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerificationFailure {
    pub error: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_id: Option<String>,
    /// With `not_pending`: how the verification ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
}

impl ReplyBody for VerificationFailure {}

crate::outcomes! {
    pub enum VerificationReply {
        Found(VerificationBody) = 200, "The verification";
        NotFound(VerificationFailure) = 404,
            "`not_found`: no verification has this id (or it was made through the public \
             routes, or its lookup time of 7 days after expiry has passed)";
        Unavailable(VerificationFailure) = 503, "`store_unavailable`";
    }
}

crate::outcomes! {
    pub enum CancelReply {
        Canceled(CanceledBody) = 200,
            "Canceled (now, or before: canceling again answers the same); the code never \
             verifies, and a new code may be sent at once";
        NotFound(VerificationFailure) = 404, "`not_found`: no verification has this id";
        NotPending(VerificationFailure) = 409,
            "`not_pending`: the verification already ended (`status`: approved, expired, \
             max_attempts_reached or superseded); nothing changed";
        Unavailable(VerificationFailure) = 503, "`store_unavailable`";
    }
}

fn failure(error: &'static str, detail: &str, id: Option<&str>) -> VerificationFailure {
    VerificationFailure {
        error,
        detail: detail.to_owned(),
        verification_id: id.map(str::to_owned),
        status: None,
    }
}

const NOT_FOUND: &str = "No verification has this id. Ids come from /send-code answers and can \
     be looked up until 7 days after the code expired.";

/// The id from the path; a path that does not decode names no verification.
fn id_of(path: Result<Path<String>, PathRejection>) -> Option<String> {
    path.ok().map(|Path(id)| id)
}

pub async fn show(
    State(engine): State<Arc<Engine>>,
    _caller: Caller<Verifying>,
    path: Result<Path<String>, PathRejection>,
) -> VerificationReply {
    let Some(id) = id_of(path) else {
        return VerificationReply::NotFound(failure("not_found", NOT_FOUND, None));
    };
    match engine.verification(&id).await {
        Ok(Some(view)) => VerificationReply::Found(view.into()),
        Ok(None) => VerificationReply::NotFound(failure("not_found", NOT_FOUND, Some(&id))),
        Err(_) => VerificationReply::Unavailable(failure(
            "store_unavailable",
            STORE_UNAVAILABLE,
            Some(&id),
        )),
    }
}

pub async fn cancel(
    State(engine): State<Arc<Engine>>,
    _caller: Caller<Sending>,
    path: Result<Path<String>, PathRejection>,
) -> CancelReply {
    let Some(id) = id_of(path) else {
        return CancelReply::NotFound(failure("not_found", NOT_FOUND, None));
    };
    match engine.cancel(&id).await {
        Ok(Cancel::Canceled) => CancelReply::Canceled(CanceledBody {
            verification_id: id,
            status: Status::Canceled.as_str(),
        }),
        Ok(Cancel::Unknown) => CancelReply::NotFound(failure("not_found", NOT_FOUND, Some(&id))),
        Ok(Cancel::Ended(status)) => CancelReply::NotPending(VerificationFailure {
            status: Some(status.as_str()),
            ..failure(
                "not_pending",
                &format!(
                    "The verification is {} and can no longer be canceled.",
                    status.as_str().replace('_', " ")
                ),
                Some(&id),
            )
        }),
        Err(_) => {
            CancelReply::Unavailable(failure("store_unavailable", STORE_UNAVAILABLE, Some(&id)))
        }
    }
}

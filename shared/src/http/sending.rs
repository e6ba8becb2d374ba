//! What both send routes answer: the route's own success body, or one of the send failures.

use serde::Serialize;

use super::reply::ReplyBody;
use crate::engine::SendError;
use crate::limits::LimitName;
use crate::sender::DeliveryError;

pub const STORE_UNAVAILABLE: &str =
    "The service is temporarily unavailable. Please try again shortly.";

/// The `detail` of a `fraud_suspected` answer.
pub const FRAUD_SUSPECTED: &str = "Text messages to this number's range are paused because of \
     suspected fraud. Please use email instead, or try again later.";

/// The `detail` of a `locked` answer on the backend routes (send and verify alike).
pub fn locked_detail(seconds: u64) -> String {
    format!(
        "Too many incorrect codes were entered for this user. Please try again in {seconds} \
         seconds."
    )
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendFailure {
    pub error: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// With `rate_limited`: which limit is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// With `delivery_uncertain` on `/send-code`: the verification of the code that may have
    /// arrived (its delivery receipts tell; it can be canceled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_id: Option<String>,
}

impl ReplyBody for SendFailure {
    fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}

/// Who a failed send was about, echoed back under the route's own field name.
pub enum Subject {
    UserId(String),
    Email(String),
}

crate::outcomes! {
    /// The outcomes of a send route; `T` is the route's success body.
    pub enum SendReply<T> {
        Sent(T) = 200, "Sent";
        InvalidDestination(SendFailure) = 422,
            "`invalid_destination`: the number may not get SMS (its country or kind: premium \
             rate, shared cost, ...) or the provider refused the number or address";
        FraudSuspected(SendFailure) = 403,
            "`fraud_suspected`: sends to the number's range are paused because of suspected SMS \
             pumping (the fraud guard); use email or try again later";
        CoolingDown(SendFailure) = 429, "`cooldown`: a code was sent too recently", retry_after;
        Locked(SendFailure) = 429,
            "`locked`: too many wrong guesses for this user; wait for `retry_after`", retry_after;
        RateLimited(SendFailure) = 429,
            "`rate_limited`: a send limit is full (`limit` names it: per destination, user, \
             client IP or SMS country); wait for `retry_after`", retry_after;
        DeliveryFailed(SendFailure) = 502,
            "`delivery_failed`: the provider failed; nothing was kept, retry at once";
        DeliveryUncertain(SendFailure) = 502,
            "`delivery_uncertain`: the provider did not confirm; the code may arrive and stays \
             valid, and a new one can be requested after `retry_after`", retry_after;
        Unavailable(SendFailure) = 503, "`channel_unavailable` or `store_unavailable`";
        BudgetExhausted(SendFailure) = 503,
            "`sms_budget_exhausted`: today's SMS budget is spent; email still works", retry_after;
    }
}

impl<T: ReplyBody> SendReply<T> {
    /// The answer to a failed send.
    pub fn failed(error: SendError, subject: Subject) -> Self {
        let backend = matches!(subject, Subject::UserId(_));
        let (user_id, email) = match subject {
            Subject::UserId(id) => (Some(id), None),
            Subject::Email(email) => (None, Some(email)),
        };
        let body = |error: &'static str, detail: String, retry_after: Option<u64>| SendFailure {
            error,
            detail,
            user_id,
            email,
            limit: None,
            retry_after,
            verification_id: None,
        };
        let channel_unavailable = |channel: crate::domain::Channel| {
            format!(
                "Sending codes by {} is not available right now.",
                channel.as_str()
            )
        };
        match error {
            SendError::CoolingDown(seconds) => Self::CoolingDown(body(
                "cooldown",
                format!(
                    "A code was sent recently. Please wait {seconds} seconds before requesting \
                     another."
                ),
                Some(seconds),
            )),
            SendError::Locked(seconds) => {
                Self::Locked(body("locked", locked_detail(seconds), Some(seconds)))
            }
            SendError::Limited {
                limit: LimitName::SmsDailyBudget,
                retry_after,
            } => Self::BudgetExhausted(body(
                "sms_budget_exhausted",
                "Codes cannot be sent by SMS right now. Please use email, or try again later."
                    .to_owned(),
                Some(retry_after),
            )),
            SendError::Limited { limit, retry_after } => Self::RateLimited(SendFailure {
                limit: Some(limit.as_str()),
                ..body(
                    "rate_limited",
                    format!(
                        "{}. Please try again in {retry_after} seconds.",
                        limit.described()
                    ),
                    Some(retry_after),
                )
            }),
            SendError::FraudSuspected => {
                Self::FraudSuspected(body("fraud_suspected", FRAUD_SUSPECTED.to_owned(), None))
            }
            SendError::NumberRefused { detail } => {
                Self::InvalidDestination(body("invalid_destination", detail, None))
            }
            SendError::DeliveryUncertain {
                retry_after,
                verification_id,
            } => Self::DeliveryUncertain(SendFailure {
                // The public route's answers never name a verification.
                verification_id: backend.then(|| verification_id.as_str().to_owned()),
                ..body(
                    "delivery_uncertain",
                    format!(
                        "We could not confirm that the code was sent. If it arrives, it works; \
                         if not, request a new one in {retry_after} seconds."
                    ),
                    Some(retry_after),
                )
            }),
            SendError::ChannelUnavailable(channel)
            | SendError::Delivery(DeliveryError::Unavailable { channel, .. }) => Self::Unavailable(
                body("channel_unavailable", channel_unavailable(channel), None),
            ),
            SendError::Delivery(DeliveryError::InvalidDestination { detail }) => {
                Self::InvalidDestination(body("invalid_destination", detail, None))
            }
            // The engine turns an uncertain delivery into `DeliveryUncertain`; should one come
            // through as it is, it is still a failed delivery.
            SendError::Delivery(DeliveryError::Failed(_) | DeliveryError::Uncertain(_)) => {
                Self::DeliveryFailed(body(
                    "delivery_failed",
                    "The code could not be delivered. Please try again.".to_owned(),
                    None,
                ))
            }
            SendError::Store(_) => Self::Unavailable(body(
                "store_unavailable",
                STORE_UNAVAILABLE.to_owned(),
                None,
            )),
        }
    }
}

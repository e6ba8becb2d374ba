//! `POST /webhooks/twilio/status`: Twilio's message status callbacks (`StatusCallback`), the
//! delivery receipts of SMS and WhatsApp codes. No API key: Twilio proves itself with
//! `X-Twilio-Signature`, checked before anything is read or written.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use serde::Serialize;

use super::reply::{PlainError, ReplyBody};
use super::sending::STORE_UNAVAILABLE;
use super::MAX_BODY_BYTES;
use crate::engine::Engine;
use crate::receipts::{self, PublicOrigin, VERIFICATION_PARAMETER};
use crate::verification::{Receipt, ReceiptOutcome, VerificationId};

pub use crate::receipts::TWILIO_STATUS_PATH as PATH;

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptTaken {
    pub verification_id: String,
    /// The delivery status the receipt says.
    pub delivery_status: &'static str,
    /// Whether it changed the verification: a receipt that repeats what is known, or comes
    /// after a final one (`delivered`, `undelivered`, `failed`), changes nothing.
    pub applied: bool,
}

impl ReplyBody for ReceiptTaken {}

crate::outcomes! {
    pub enum TwilioStatusReply {
        Taken(ReceiptTaken) = 200, "The receipt was checked and taken (or was already known)";
        BadReceipt(PlainError) = 400,
            "Signed, but not a message status this service asked for (no `verification_id` \
             in the URL, or an unknown `MessageStatus`)";
        Forbidden(PlainError) = 403,
            "`X-Twilio-Signature` is missing or does not match (or the service does not know \
             its public URL to check it against); nothing changed";
        NotFound(PlainError) = 404,
            "No Twilio account is configured, or the verification is unknown";
        TooLarge(PlainError) = 413, "Body over 16 KiB";
        UnsupportedMediaType(PlainError) = 415,
            "Not `application/x-www-form-urlencoded`, as Twilio posts";
        Unavailable(PlainError) = 503, "The store could not take it";
    }
}

fn pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}

pub async fn handle(State(engine): State<Arc<Engine>>, request: Request) -> TwilioStatusReply {
    // Only Twilio signs: a request without a signature is refused before anything else.
    if !request.headers().contains_key("x-twilio-signature") {
        return TwilioStatusReply::Forbidden(PlainError::new(
            "X-Twilio-Signature is missing or does not match this request.",
        ));
    }
    let receipts = &engine.senders().receipts;
    let Some(token) = &receipts.twilio_token else {
        return TwilioStatusReply::NotFound(PlainError::new(
            "Twilio is not configured, so no Twilio receipts are taken.",
        ));
    };
    let (parts, body) = request.into_parts();
    let form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return TwilioStatusReply::UnsupportedMediaType(PlainError::new(
            "Twilio posts application/x-www-form-urlencoded.",
        ));
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return TwilioStatusReply::TooLarge(PlainError::new(format!(
            "Request body is too large: the limit is {MAX_BODY_BYTES} bytes"
        )));
    };
    // The URL Twilio was given: the public base, then the path and query as they came.
    let origin = parts.extensions.get::<PublicOrigin>();
    let Some(base) = receipts.base(origin) else {
        tracing::warn!("twilio receipt refused: OTP_PUBLIC_BASE_URL is not set");
        return TwilioStatusReply::Forbidden(PlainError::new(
            "The signature cannot be checked: the service does not know its public URL \
             (OTP_PUBLIC_BASE_URL).",
        ));
    };
    let mut url = format!("{base}{}", parts.uri.path());
    if let Some(query) = parts.uri.query() {
        url.push('?');
        url.push_str(query);
    }
    let params = pairs(&body);
    let signature = parts
        .headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !receipts::twilio_signature_matches(token, &url, &params, signature) {
        tracing::warn!("twilio receipt refused: X-Twilio-Signature does not match");
        return TwilioStatusReply::Forbidden(PlainError::new(
            "X-Twilio-Signature is missing or does not match this request.",
        ));
    }
    let query = pairs(parts.uri.query().unwrap_or_default().as_bytes());
    let Some(id) = field(&query, VERIFICATION_PARAMETER).and_then(VerificationId::parse) else {
        return TwilioStatusReply::BadReceipt(PlainError::new(
            "The URL names no verification_id: this is not a status callback of ours.",
        ));
    };
    let Some(status) = field(&params, "MessageStatus").and_then(receipts::twilio_status) else {
        return TwilioStatusReply::BadReceipt(PlainError::new(
            "MessageStatus is missing or not a status of a message we sent.",
        ));
    };
    let receipt = Receipt {
        status,
        error_code: field(&params, "ErrorCode").map(str::to_owned),
        provider_message_id: field(&params, "MessageSid").map(str::to_owned),
        at: engine.now(),
    };
    let taken = |applied| {
        TwilioStatusReply::Taken(ReceiptTaken {
            verification_id: id.as_str().to_owned(),
            delivery_status: status.as_str(),
            applied,
        })
    };
    match engine.delivery_receipt(&id, &receipt, "twilio").await {
        Ok(ReceiptOutcome::Applied { .. }) => taken(true),
        Ok(ReceiptOutcome::Stale) => taken(false),
        Ok(ReceiptOutcome::Unknown) => TwilioStatusReply::NotFound(PlainError::new(
            "No verification has this id (it may be past its 7 days).",
        )),
        Err(_) => TwilioStatusReply::Unavailable(PlainError::new(STORE_UNAVAILABLE)),
    }
}

//! A verification: one accepted send's code, as the backend follows it after `/send-code`
//! answered (its id, whether it was delivered, whether the user verified) and cancels it.
//!
//! What the code record knows (attempts, used, expired) stays on the record, written by the send
//! and the guesses in their one request each; what only the verification knows (who it was for,
//! its delivery receipts, how it ended when that is no longer on the record) is an item of its
//! own, written in the send's transaction and by the receipts. Its status is read from both
//! (`crate::store::status_of`).

use crate::domain::{Channel, Space};

/// How long a verification can be looked up after its code expired.
pub const KEEP_FOR_SECS: u64 = 7 * 86_400;

/// An RFC 3339 time (UTC, whole seconds).
pub fn rfc3339(epoch_seconds: u64) -> String {
    use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
    let seconds = i64::try_from(epoch_seconds).unwrap_or(i64::MAX);
    DateTime::from_secs(seconds)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_default()
}

/// Opaque, unguessable (128 random bits) and URL-safe: `VE` and 22 characters of base64url.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerificationId(String);

impl VerificationId {
    pub fn generate() -> Self {
        use base64::Engine as _;
        use rand::RngExt as _;
        let mut bytes = [0u8; 16];
        rand::rng().fill(&mut bytes[..]);
        Self(format!(
            "VE{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// An id as a caller sends it back: at most 64 URL-safe characters. Anything else names no
    /// verification (and is answered as an unknown one, without a lookup).
    pub fn parse(raw: &str) -> Option<Self> {
        let safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        (!raw.is_empty() && raw.len() <= 64 && raw.chars().all(safe)).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for VerificationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a verification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Approved,
    Canceled,
    Expired,
    MaxAttemptsReached,
    /// A newer code for the same user and purpose replaced this one before it was used.
    Superseded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Canceled => "canceled",
            Status::Expired => "expired",
            Status::MaxAttemptsReached => "max_attempts_reached",
            Status::Superseded => "superseded",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Status::Pending,
            Status::Approved,
            Status::Canceled,
            Status::Expired,
            Status::MaxAttemptsReached,
            Status::Superseded,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

/// What the provider said of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryStatus {
    /// Handed to the provider; no receipt yet (or none will come).
    Sent,
    /// The provider could not tell (it answered with a timeout or an error after the request).
    Unknown,
    Delivered,
    /// The carrier or mailbox did not take it (unreachable, blocked, bounced).
    Undelivered,
    /// The provider could not send it.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Unknown => "unknown",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Undelivered => "undelivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            DeliveryStatus::Sent,
            DeliveryStatus::Unknown,
            DeliveryStatus::Delivered,
            DeliveryStatus::Undelivered,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// Receipts only move a delivery forward: a final answer (delivered, undelivered, failed)
    /// is never replaced, so a late or replayed "sent" changes nothing.
    pub fn rank(self) -> u8 {
        match self {
            DeliveryStatus::Sent | DeliveryStatus::Unknown => 1,
            DeliveryStatus::Delivered | DeliveryStatus::Undelivered | DeliveryStatus::Failed => 2,
        }
    }
}

/// A verification's delivery as the receipts tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub status: DeliveryStatus,
    /// The provider's error code (Twilio's `30003`, SES's bounce type), when it gave one.
    pub error_code: Option<String>,
    /// When the latest receipt came (`None` before any).
    pub updated_at: Option<u64>,
    /// The provider's id of the message (Twilio's `SM…`), from its receipt.
    pub provider_message_id: Option<String>,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            status: DeliveryStatus::Sent,
            error_code: None,
            updated_at: None,
            provider_message_id: None,
        }
    }
}

/// One change of a verification: before (`None`: just made) and after.
pub type Change = (Option<Verification>, Verification);

/// A delivery receipt for one verification.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub status: DeliveryStatus,
    pub error_code: Option<String>,
    pub provider_message_id: Option<String>,
    pub at: u64,
}

/// What the store keeps of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub id: VerificationId,
    /// Only backend verifications can be looked up; the public routes' are foreign to callers.
    pub space: Space,
    pub user_id: String,
    pub purpose: String,
    pub channel: Channel,
    /// The destination masked, as the record has it.
    pub sent_to: String,
    pub calling_code: Option<u16>,
    /// The 1,000-number block of a phone number (a pseudonym), for the fraud guard's counting of
    /// undelivered codes; `None` for email.
    pub block: Option<crate::fraud::Block>,
    pub created_at: u64,
    /// When the code expires.
    pub expires_at: u64,
    /// The guesses the code takes (the policy's when it was sent).
    pub max_attempts: u32,
    pub delivery: Delivery,
    /// How it ended, once that is written down (by a cancel; in AWS also by the table's stream
    /// function when the record changes), and when.
    pub ended: Option<(Status, u64)>,
    /// When a wrong guess at its code locked the user out, once written down.
    pub locked_at: Option<u64>,
}

impl Verification {
    /// When the store may forget it.
    pub fn keep_until(&self) -> u64 {
        self.expires_at.saturating_add(KEEP_FOR_SECS)
    }
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Canceled now, or already.
    Canceled,
    /// It had ended otherwise; nothing changed.
    Ended(Status),
    /// No such verification (or a foreign one).
    Unknown,
}

/// What a receipt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// Recorded. What the metric and the fraud guard need of the verification: its calling
    /// code, its block and when it was sent.
    Applied {
        calling_code: Option<u16>,
        block: Option<crate::fraud::Block>,
        sent_at: u64,
    },
    /// The verification already has this answer or a final one (a late or replayed receipt).
    Stale,
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_256_000), "2026-12-03T00:00:00Z");
    }

    #[test]
    fn ids_are_url_safe_unguessable_and_parse_back() {
        let a = VerificationId::generate();
        let b = VerificationId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 24);
        assert_eq!(VerificationId::parse(a.as_str()), Some(a));
        assert!(VerificationId::parse("").is_none());
        assert!(VerificationId::parse("a/b").is_none());
        assert!(VerificationId::parse(&"x".repeat(65)).is_none());
        assert!(VerificationId::parse(&"x".repeat(64)).is_some());
    }

    #[test]
    fn statuses_and_deliveries_name_themselves() {
        for name in [
            "pending",
            "approved",
            "canceled",
            "expired",
            "max_attempts_reached",
            "superseded",
        ] {
            assert_eq!(Status::parse(name).unwrap().as_str(), name);
        }
        for name in ["sent", "unknown", "delivered", "undelivered", "failed"] {
            assert_eq!(DeliveryStatus::parse(name).unwrap().as_str(), name);
        }
        assert!(DeliveryStatus::Delivered.rank() > DeliveryStatus::Sent.rank());
    }
}

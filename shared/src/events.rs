//! Events out: what happened to a verification, as the receivers of `OTP_WEBHOOK_URL` get it.
//! Events are read off changes of the verification's item (its first write, its receipts, how
//! it ended, a lockout), so the same classifier serves every feed: the embedded store hands its
//! changes over in process.

use serde::Serialize;

use crate::verification::{DeliveryStatus, Status, Verification};

/// The event types (the public contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Sent,
    Delivered,
    Undelivered,
    Approved,
    MaxAttemptsReached,
    Canceled,
    Locked,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::Sent,
        EventType::Delivered,
        EventType::Undelivered,
        EventType::Approved,
        EventType::MaxAttemptsReached,
        EventType::Canceled,
        EventType::Locked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Sent => "verification.sent",
            EventType::Delivered => "verification.delivered",
            EventType::Undelivered => "verification.undelivered",
            EventType::Approved => "verification.approved",
            EventType::MaxAttemptsReached => "verification.max_attempts_reached",
            EventType::Canceled => "verification.canceled",
            EventType::Locked => "verification.locked",
        }
    }
}

/// One event. Its `id` is the same however often the change it comes from is read again (a
/// redelivered stream record, a retried delivery): receivers drop repeats by `webhook-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub kind: EventType,
    /// When it happened (epoch seconds).
    pub at: u64,
    pub data: EventData,
}

/// `data` of every event. Never a code, never a full number or address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventData {
    pub verification_id: String,
    pub user_id: String,
    pub purpose: String,
    pub channel: &'static str,
    /// Masked: `+1******2671`, `a***@example.com`.
    pub destination: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calling_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_status: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: &'a EventData,
}

impl Event {
    /// The JSON body a receiver gets.
    pub fn body(&self) -> String {
        let body = Body {
            kind: self.kind.as_str(),
            timestamp: crate::verification::rfc3339(self.at),
            data: &self.data,
        };
        serde_json::to_string(&body).expect("events always serialise")
    }
}

fn data(v: &Verification, with_delivery: bool) -> EventData {
    EventData {
        verification_id: v.id.as_str().to_owned(),
        user_id: v.user_id.clone(),
        purpose: v.purpose.clone(),
        channel: v.channel.as_str(),
        destination: v.sent_to.clone(),
        calling_code: v.calling_code,
        delivery_status: with_delivery.then(|| v.delivery.status.as_str()),
        error_code: v.delivery.error_code.clone().filter(|_| with_delivery),
        provider_message_id: v.delivery.provider_message_id.clone(),
    }
}

/// The events of one change of a verification: `old` before it (`None`: it was just made),
/// `new` after.
pub fn events_of(old: Option<&Verification>, new: &Verification) -> Vec<Event> {
    let mut events = Vec::new();
    let mut push = |kind: EventType, at: u64, with_delivery: bool| {
        events.push(Event {
            id: format!(
                "evt_{}_{}",
                new.id,
                kind.as_str().trim_start_matches("verification.")
            ),
            kind,
            at,
            data: data(new, with_delivery),
        })
    };
    if old.is_none() {
        push(EventType::Sent, new.created_at, false);
    }
    let was = old.map(|o| o.delivery.status);
    let delivered = match new.delivery.status {
        DeliveryStatus::Delivered => Some(EventType::Delivered),
        DeliveryStatus::Undelivered | DeliveryStatus::Failed => Some(EventType::Undelivered),
        DeliveryStatus::Sent | DeliveryStatus::Unknown => None,
    };
    if let Some(kind) = delivered.filter(|_| was != Some(new.delivery.status)) {
        push(
            kind,
            new.delivery.updated_at.unwrap_or(new.created_at),
            true,
        );
    }
    if let (None, Some((status, at))) = (old.and_then(|o| o.ended), new.ended) {
        let kind = match status {
            Status::Approved => Some(EventType::Approved),
            Status::MaxAttemptsReached => Some(EventType::MaxAttemptsReached),
            Status::Canceled => Some(EventType::Canceled),
            // Superseded and expired codes are no news: the next send or the lifetime says so.
            Status::Pending | Status::Expired | Status::Superseded => None,
        };
        if let Some(kind) = kind {
            push(kind, at, false);
        }
    }
    if let (None, Some(at)) = (old.and_then(|o| o.locked_at), new.locked_at) {
        push(EventType::Locked, at, false);
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Channel, Space};
    use crate::verification::{Delivery, VerificationId};

    fn verification() -> Verification {
        Verification {
            id: VerificationId::parse("VEabc").unwrap(),
            space: Space::Backend,
            user_id: "user-1".into(),
            purpose: "login".into(),
            channel: Channel::Sms,
            sent_to: "+1******2671".into(),
            calling_code: Some(1),
            block: None,
            created_at: 1_800_000_000,
            expires_at: 1_800_000_300,
            max_attempts: 3,
            delivery: Delivery::default(),
            ended: None,
            locked_at: None,
        }
    }

    #[test]
    fn a_new_verification_is_sent_and_its_body_has_no_code() {
        let v = verification();
        let events = events_of(None, &v);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id, "evt_VEabc_sent");
        let body: serde_json::Value = serde_json::from_str(&events[0].body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"type": "verification.sent", "timestamp": "2027-01-15T08:00:00Z",
                "data": {"verification_id": "VEabc", "user_id": "user-1", "purpose": "login",
                         "channel": "sms", "destination": "+1******2671", "calling_code": 1}})
        );
    }

    #[test]
    fn receipts_endings_and_lockouts_are_events_once() {
        let old = verification();
        let mut new = old.clone();
        new.delivery = Delivery {
            status: DeliveryStatus::Failed,
            error_code: Some("30008".into()),
            updated_at: Some(1_800_000_002),
            provider_message_id: Some("SM1".into()),
        };
        let events = events_of(Some(&old), &new);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventType::Undelivered);
        assert_eq!(events[0].data.delivery_status, Some("failed"));
        assert_eq!(events[0].data.error_code.as_deref(), Some("30008"));
        assert_eq!(events_of(Some(&new), &new), []);
        let mut ended = new.clone();
        ended.ended = Some((Status::Approved, 1_800_000_010));
        ended.locked_at = Some(1_800_000_010);
        let kinds: Vec<_> = events_of(Some(&new), &ended)
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, [EventType::Approved, EventType::Locked]);
        let mut superseded = new.clone();
        superseded.ended = Some((Status::Superseded, 1_800_000_010));
        assert_eq!(events_of(Some(&new), &superseded), []);
    }
}

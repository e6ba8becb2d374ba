//! Delivery receipts: where a provider posts them for a verification, and how Twilio's are
//! told from forgeries.

use secrecy::SecretString;

use crate::verification::{DeliveryStatus, Receipt, VerificationId};

/// Where Twilio posts a message's status (its `StatusCallback`).
pub const TWILIO_STATUS_PATH: &str = "/webhooks/twilio/status";

/// The query parameter of a callback URL that names the verification.
pub const VERIFICATION_PARAMETER: &str = "verification_id";

/// What the receipt routes need.
#[derive(Clone, Default)]
pub struct Receipts {
    /// `OTP_PUBLIC_BASE_URL`: the URL the internet reaches this API at. Without it a function
    /// uses the origin API Gateway reports for each request (see [`PublicOrigin`]).
    pub public_base_url: Option<String>,
    /// The Twilio auth token, which signs Twilio's requests (`None`: no Twilio account).
    pub twilio_token: Option<SecretString>,
}

/// The URL API Gateway was called at (`https://<domain>` and the stage, if not `$default`), as
/// its request context tells it; the Lambda adapter puts it on each request. Nothing else can:
/// a header cannot become an extension.
#[derive(Debug, Clone)]
pub struct PublicOrigin(pub String);

impl Receipts {
    /// The base URL of this request's receipts: the setting, else the request's origin.
    pub fn base<'a>(&'a self, origin: Option<&'a PublicOrigin>) -> Option<&'a str> {
        self.public_base_url
            .as_deref()
            .or(origin.map(|o| o.0.as_str()))
    }

    /// The `StatusCallback` of a Twilio message for verification `id`; `None` without a
    /// Twilio account or a known base URL.
    pub fn twilio_callback(
        &self,
        origin: Option<&PublicOrigin>,
        id: &VerificationId,
    ) -> Option<String> {
        self.twilio_token.as_ref()?;
        let base = self.base(origin)?;
        Some(format!(
            "{base}{TWILIO_STATUS_PATH}?{VERIFICATION_PARAMETER}={id}"
        ))
    }
}

/// Twilio's `MessageStatus` as a delivery status (`None` for an inbound message's or an
/// unknown one). `read` (WhatsApp) is delivered; `canceled` (a scheduled message withdrawn)
/// never went out.
pub fn twilio_status(message_status: &str) -> Option<DeliveryStatus> {
    Some(match message_status {
        "accepted" | "scheduled" | "queued" | "sending" | "sent" => DeliveryStatus::Sent,
        "delivered" | "read" => DeliveryStatus::Delivered,
        "undelivered" => DeliveryStatus::Undelivered,
        "failed" | "canceled" => DeliveryStatus::Failed,
        _ => return None,
    })
}

/// A delivery event of SES (a configuration set's event destination on EventBridge) or of AWS
/// End User Messaging SMS (its own EventBridge events): the verification it names (the message
/// tag or context `verification_id` the senders set), the receipt and the provider. `None` for
/// any other event, one of a message of no verification, or one that says nothing about
/// delivery (an SES complaint or delay, an SMS still on its way to the carrier).
pub fn from_eventbridge(
    event: &serde_json::Value,
) -> Option<(VerificationId, Receipt, &'static str)> {
    let detail = &event["detail"];
    let at = |millis: Option<u64>| millis.map_or(0, |m| m / 1000);
    match event["source"].as_str()? {
        "aws.ses" => {
            let tag = detail["mail"]["tags"][VERIFICATION_PARAMETER][0].as_str()?;
            let id = VerificationId::parse(tag)?;
            let (status, error_code) = match detail["eventType"].as_str()? {
                "Send" => (DeliveryStatus::Sent, None),
                "Delivery" => (DeliveryStatus::Delivered, None),
                "Bounce" => (
                    DeliveryStatus::Undelivered,
                    Some(format!(
                        "Bounce:{}:{}",
                        detail["bounce"]["bounceType"]
                            .as_str()
                            .unwrap_or("Undetermined"),
                        detail["bounce"]["bounceSubType"]
                            .as_str()
                            .unwrap_or("Undetermined")
                    )),
                ),
                "Reject" => (DeliveryStatus::Failed, Some("Reject".to_owned())),
                "Rendering Failure" => {
                    (DeliveryStatus::Failed, Some("RenderingFailure".to_owned()))
                }
                _ => return None,
            };
            let receipt = Receipt {
                status,
                error_code,
                provider_message_id: detail["mail"]["messageId"].as_str().map(str::to_owned),
                at: event_time(event),
            };
            Some((id, receipt, "ses"))
        }
        "aws.sms-voice" => {
            let id = VerificationId::parse(detail["context"][VERIFICATION_PARAMETER].as_str()?)?;
            let kind = detail["eventType"].as_str()?;
            let status = match kind {
                "TEXT_DELIVERED" => DeliveryStatus::Delivered,
                "TEXT_SUCCESSFUL" | "TEXT_QUEUED" | "TEXT_PENDING" => DeliveryStatus::Sent,
                "TEXT_UNKNOWN" => DeliveryStatus::Unknown,
                "TEXT_BLOCKED"
                | "TEXT_CARRIER_BLOCKED"
                | "TEXT_INVALID"
                | "TEXT_UNREACHABLE"
                | "TEXT_CARRIER_UNREACHABLE"
                | "TEXT_TTL_EXPIRED"
                | "TEXT_SPAM"
                | "TEXT_PROTECT_BLOCKED"
                | "TEXT_INVALID_MESSAGE" => DeliveryStatus::Undelivered,
                _ => return None,
            };
            let receipt = Receipt {
                status,
                error_code: (status == DeliveryStatus::Undelivered).then(|| kind.to_owned()),
                provider_message_id: detail["messageId"].as_str().map(str::to_owned),
                at: at(detail["eventTimestamp"].as_u64()).max(event_time(event)),
            };
            Some((id, receipt, "aws-sms"))
        }
        _ => None,
    }
}

/// An EventBridge event's `time` (RFC 3339) in epoch seconds; 0 when it has none.
fn event_time(event: &serde_json::Value) -> u64 {
    use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
    event["time"]
        .as_str()
        .and_then(|t| DateTime::from_str(t, DateTimeFormat::DateTime).ok())
        .and_then(|t| u64::try_from(t.secs()).ok())
        .unwrap_or(0)
}

/// Twilio's request signature, as Twilio documents it (Security, "Validating requests"):
/// base64 of the HMAC-SHA1, keyed with the auth token, of the full URL followed by every POST
/// parameter's name and value, sorted by name (then value). Checked in constant time.
#[cfg(feature = "twilio")]
pub fn twilio_signature_matches(
    token: &SecretString,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    use base64::Engine as _;
    use hmac::{Hmac, KeyInit, Mac};
    use secrecy::ExposeSecret;
    use subtle::ConstantTimeEq;
    let Ok(claimed) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.expose_secret().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    let expected = mac.finalize().into_bytes();
    expected.as_slice().ct_eq(&claimed).into()
}

#[cfg(all(test, feature = "twilio"))]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn twilio_signatures_check_the_url_and_every_parameter() {
        // Twilio's documented example (Security, "Validating requests"): this token, URL and
        // these parameters sign to this value.
        let token = SecretString::from("12345");
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let form = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let signature = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
        assert!(twilio_signature_matches(&token, url, &form, signature));
        // In any order the form came in.
        let mut reversed = form.clone();
        reversed.reverse();
        assert!(twilio_signature_matches(&token, url, &reversed, signature));
        // Any change is refused: a parameter, the URL, the token, the signature.
        let mut changed = form.clone();
        changed[2].1 = "1235".to_owned();
        assert!(!twilio_signature_matches(&token, url, &changed, signature));
        assert!(!twilio_signature_matches(
            &token,
            &url.replace("foo=1", "foo=2"),
            &form,
            signature
        ));
        assert!(!twilio_signature_matches(
            &SecretString::from("54321"),
            url,
            &form,
            signature
        ));
        assert!(!twilio_signature_matches(&token, url, &form, "not base64!"));
        assert!(!twilio_signature_matches(&token, url, &form, ""));
    }

    #[test]
    fn message_statuses_map_onto_deliveries() {
        assert_eq!(twilio_status("queued"), Some(DeliveryStatus::Sent));
        assert_eq!(twilio_status("delivered"), Some(DeliveryStatus::Delivered));
        assert_eq!(twilio_status("read"), Some(DeliveryStatus::Delivered));
        assert_eq!(
            twilio_status("undelivered"),
            Some(DeliveryStatus::Undelivered)
        );
        assert_eq!(twilio_status("failed"), Some(DeliveryStatus::Failed));
        assert_eq!(twilio_status("received"), None);
    }

    #[test]
    fn the_callback_needs_a_twilio_account_and_a_base_url() {
        let id = VerificationId::parse("VEabc").unwrap();
        let origin = PublicOrigin("https://abc.execute-api.eu-west-1.amazonaws.com".to_owned());
        let mut receipts = Receipts::default();
        assert_eq!(receipts.twilio_callback(Some(&origin), &id), None);
        receipts.twilio_token = Some(SecretString::from("t"));
        assert_eq!(receipts.twilio_callback(None, &id), None);
        assert_eq!(
            receipts.twilio_callback(Some(&origin), &id).unwrap(),
            "https://abc.execute-api.eu-west-1.amazonaws.com/webhooks/twilio/status?verification_id=VEabc"
        );
        receipts.public_base_url = Some("https://otp.example.com".to_owned());
        assert_eq!(
            receipts.twilio_callback(Some(&origin), &id).unwrap(),
            "https://otp.example.com/webhooks/twilio/status?verification_id=VEabc"
        );
    }
}

#[cfg(test)]
mod eventbridge_tests {
    use super::*;

    fn sample(name: &str) -> serde_json::Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn ses_and_sms_voice_events_are_receipts_of_their_verification() {
        let (id, receipt, provider) = from_eventbridge(&sample("events-ses-bounce.json")).unwrap();
        assert_eq!((id.as_str(), provider), ("VEsample000000000000000a", "ses"));
        assert_eq!(receipt.status, DeliveryStatus::Undelivered);
        assert_eq!(
            receipt.error_code.as_deref(),
            Some("Bounce:Permanent:General")
        );
        assert_eq!(receipt.at, 1_800_000_004);
        let (id, receipt, provider) =
            from_eventbridge(&sample("events-sms-voice-delivered.json")).unwrap();
        assert_eq!(
            (id.as_str(), provider),
            ("VEsample000000000000000a", "aws-sms")
        );
        assert_eq!(receipt.status, DeliveryStatus::Delivered);
        assert_eq!(
            receipt.provider_message_id.as_deref(),
            Some("sample-sms-message-id")
        );
        // Another service's event, or a message of no verification: nothing.
        let mut other = sample("events-ses-bounce.json");
        other["source"] = "aws.ec2".into();
        assert!(from_eventbridge(&other).is_none());
        let mut untagged = sample("events-sms-voice-delivered.json");
        untagged["detail"]["context"] = serde_json::json!({});
        assert!(from_eventbridge(&untagged).is_none());
    }
}

//! Delivery receipts: where a provider posts them for a verification, and how Twilio's are
//! told from forgeries.

use secrecy::SecretString;

use crate::verification::{DeliveryStatus, VerificationId};

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

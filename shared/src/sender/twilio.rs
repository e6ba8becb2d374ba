//! SMS through Twilio's Messages API with plain `reqwest` (rustls, no OpenSSL).

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{DeliveryError, Message, Sender};
use crate::domain::{Channel, Destination};
use crate::settings::{TwilioFrom, TwilioSettings};

pub struct TwilioSender {
    /// Built on the first message, not at init: its TLS set-up (the root certificates) is not
    /// needed before a request asks for an SMS, so a cold start never pays for it otherwise.
    client: OnceLock<Result<reqwest::Client, reqwest::Error>>,
    connect_timeout: Duration,
    timeout: Duration,
    messages_url: String,
    account_sid: String,
    auth_token: SecretString,
    from: TwilioFrom,
}

/// Twilio's error body: `{"code": 21211, "message": "...", "status": 400, "more_info": "..."}`.
#[derive(Debug, Deserialize)]
struct TwilioError {
    code: Option<u32>,
}

/// Connection attempts for one message. Only a refused or failed *connection* is retried: the
/// request cannot have reached Twilio, so a retry cannot send the SMS twice.
const CONNECT_ATTEMPTS: usize = 2;

impl TwilioSender {
    pub fn new(config: &TwilioSettings, auth_token: SecretString) -> Self {
        let messages_url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            config.api_base_url.trim_end_matches('/'),
            config.account_sid
        );
        Self {
            client: OnceLock::new(),
            connect_timeout: config.connect_timeout,
            timeout: config.timeout,
            messages_url,
            account_sid: config.account_sid.clone(),
            auth_token,
            from: config.from.clone(),
        }
    }

    fn client(&self) -> Result<&reqwest::Client, DeliveryError> {
        let built = self
            .client
            .get_or_init(|| crate::tls::https_client(self.connect_timeout, self.timeout));
        built.as_ref().map_err(|error| DeliveryError::Unavailable {
            channel: Channel::Sms,
            reason: format!(
                "cannot build the HTTP client: {}",
                crate::telemetry::error_chain(error)
            ),
        })
    }

    async fn post(
        &self,
        client: &reqwest::Client,
        form: &[(&str, &str)],
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut attempt = 1;
        loop {
            let result = client
                .post(&self.messages_url)
                .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
                .form(form)
                .send()
                .await;
            match result {
                Err(error) if error.is_connect() && attempt < CONNECT_ATTEMPTS => attempt += 1,
                other => return other,
            }
        }
    }
}

/// Twilio error codes that mean "this destination cannot get our SMS", with what the user can do.
fn destination_problem(code: u32) -> Option<&'static str> {
    Some(match code {
        21211 => "The phone number is not valid. Check it and try again.",
        21614 => "This phone number cannot receive SMS. Use a mobile number.",
        21408 | 21612 => {
            "SMS cannot be delivered to this phone number's country or network. Use another number."
        }
        21610 => {
            "This phone number has opted out of our messages. Reply START to us from that phone \
             to opt back in, or use another number."
        }
        _ => return None,
    })
}

/// Codes that mean our account or sender is misconfigured: an operator must act.
fn configuration_problem(code: u32) -> bool {
    matches!(
        code,
        20003 | 20005 | 20404 | 21212 | 21606 | 21659 | 21660 | 21703 | 21704 | 21705
    )
}

#[async_trait]
impl Sender for TwilioSender {
    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let Destination::Sms(phone) = &message.destination else {
            return Err(DeliveryError::Unavailable {
                channel: Channel::Sms,
                reason: "the Twilio sender only sends SMS".to_owned(),
            });
        };
        let body = message.sms_text();
        let mut form = vec![("To", phone.as_str()), ("Body", body.as_str())];
        match &self.from {
            TwilioFrom::Number(number) => form.push(("From", number)),
            TwilioFrom::MessagingService(sid) => form.push(("MessagingServiceSid", sid)),
        }
        // reqwest's errors carry the URL (account SID, no secret) and the cause; never the body.
        // A connection that never opened cannot have sent anything; any later failure (a
        // timeout waiting for the answer, a connection reset) may have.
        let response = self.post(self.client()?, &form).await.map_err(|e| {
            if e.is_connect() {
                DeliveryError::Failed(Box::new(e.without_url()))
            } else {
                DeliveryError::Uncertain(Box::new(e.without_url()))
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let bytes = response.bytes().await.unwrap_or_default();
        let error: Option<TwilioError> = serde_json::from_slice(&bytes).ok();
        let code = error.as_ref().and_then(|e| e.code);
        // Twilio's message text can quote the destination number, so only the code is kept.
        tracing::warn!(status = status.as_u16(), code, "twilio refused the message");
        if let Some(detail) = code.and_then(destination_problem) {
            return Err(DeliveryError::InvalidDestination {
                detail: detail.to_owned(),
            });
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || code.is_some_and(configuration_problem) {
            return Err(DeliveryError::Unavailable {
                channel: Channel::Sms,
                reason: format!("Twilio error {code:?} (HTTP {status})"),
            });
        }
        let error = format!("Twilio answered {status} (code {code:?})").into();
        // A 5xx may come after Twilio queued the message: it may be delivered, and billed.
        if status.is_server_error() {
            return Err(DeliveryError::Uncertain(error));
        }
        // 429 and any other refusal: Twilio took nothing; the caller may retry.
        Err(DeliveryError::Failed(error))
    }

    fn provider(&self) -> &'static str {
        "twilio"
    }

    fn describe(&self) -> String {
        match &self.from {
            TwilioFrom::Number(_) => "twilio (from number)".to_owned(),
            TwilioFrom::MessagingService(_) => "twilio (messaging service)".to_owned(),
        }
    }
}

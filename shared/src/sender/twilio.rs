//! SMS and WhatsApp through Twilio's Messages API, voice calls through its Calls API, with plain
//! `reqwest` (rustls, no OpenSSL).

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{Accepted, DeliveryError, Message, Sender};
use crate::domain::{Channel, Destination};
use crate::settings::{PhoneChannels, TwilioFrom, TwilioSettings};

pub struct TwilioSender {
    /// Built on the first message, not at init: its TLS set-up (the root certificates) is not
    /// needed before a request asks for an SMS, so a cold start never pays for it otherwise.
    client: OnceLock<Result<reqwest::Client, reqwest::Error>>,
    connect_timeout: Duration,
    timeout: Duration,
    messages_url: String,
    calls_url: String,
    account_sid: String,
    auth_token: SecretString,
    from: Option<TwilioFrom>,
    channels: PhoneChannels,
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
        let account_url = format!(
            "{}/2010-04-01/Accounts/{}",
            config.api_base_url.trim_end_matches('/'),
            config.account_sid
        );
        Self {
            client: OnceLock::new(),
            connect_timeout: config.connect_timeout,
            timeout: config.timeout,
            messages_url: format!("{account_url}/Messages.json"),
            calls_url: format!("{account_url}/Calls.json"),
            account_sid: config.account_sid.clone(),
            auth_token,
            from: config.from.clone(),
            channels: config.channels.clone(),
        }
    }

    fn client(&self, channel: Channel) -> Result<&reqwest::Client, DeliveryError> {
        let built = self
            .client
            .get_or_init(|| crate::tls::https_client(self.connect_timeout, self.timeout));
        built.as_ref().map_err(|error| DeliveryError::Unavailable {
            channel,
            reason: format!(
                "cannot build the HTTP client: {}",
                crate::telemetry::error_chain(error)
            ),
        })
    }

    async fn post(
        &self,
        client: &reqwest::Client,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut attempt = 1;
        loop {
            let result = client
                .post(url)
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

/// Twilio error codes that mean "this destination cannot get our message", with what the user
/// can do.
fn destination_problem(channel: Channel, code: u32) -> Option<&'static str> {
    Some(match (channel, code) {
        (_, 21211) | (Channel::Voice, 13223 | 13224) => {
            "The phone number is not valid. Check it and try again."
        }
        (Channel::Sms, 21614) => "This phone number cannot receive SMS. Use a mobile number.",
        (Channel::Sms, 21408 | 21612) => {
            "SMS cannot be delivered to this phone number's country or network. Use another number."
        }
        (Channel::Sms, 21610) => {
            "This phone number has opted out of our messages. Reply START to us from that phone \
             to opt back in, or use another number."
        }
        (Channel::Whatsapp, 63003 | 63024) => {
            "This phone number cannot get WhatsApp messages. Use SMS or another number."
        }
        (Channel::Voice, 21215 | 21216) => {
            "We cannot call this phone number's country or network. Use SMS or another number."
        }
        _ => return None,
    })
}

/// Codes that mean our account, sender or template is misconfigured: an operator must act.
fn configuration_problem(channel: Channel, code: u32) -> bool {
    matches!(
        code,
        20003 | 20005 | 20404 | 21212 | 21606 | 21659 | 21660 | 21703 | 21704 | 21705
    ) || match channel {
        // No WhatsApp sender for From, Meta disabled the account, an unknown or unapproved
        // template, variables the template does not take.
        Channel::Whatsapp => matches!(code, 63007 | 63112 | 63027 | 21655 | 21656 | 63016),
        // The From number is not ours or cannot call.
        Channel::Voice => matches!(code, 21210 | 21213 | 21217),
        _ => false,
    }
}

/// A message's channel, the endpoint it goes to (Messages or Calls), and the form.
type TwilioRequest<'a> = (Channel, &'a str, Vec<(&'a str, &'a str)>);

impl TwilioSender {
    /// The request for the message's channel: where it goes and its form.
    fn request<'a>(
        &'a self,
        message: &'a Message,
        owned: &'a mut Vec<String>,
    ) -> Result<TwilioRequest<'a>, DeliveryError> {
        let channel = message.destination.channel();
        let unavailable = |reason: &str| DeliveryError::Unavailable {
            channel,
            reason: reason.to_owned(),
        };
        match &message.destination {
            Destination::Sms(phone) => {
                owned.push(message.sms_text());
                let mut form = vec![("To", phone.as_str()), ("Body", owned[0].as_str())];
                match &self.from {
                    Some(TwilioFrom::Number(number)) => form.push(("From", number)),
                    Some(TwilioFrom::MessagingService(sid)) => {
                        form.push(("MessagingServiceSid", sid))
                    }
                    // Start-up hands SMS to AWS End User Messaging then; never Twilio.
                    None => return Err(unavailable("SMS go through AWS End User Messaging")),
                }
                if let Some(callback) = &message.status_callback {
                    form.push(("StatusCallback", callback));
                }
                Ok((channel, &self.messages_url, form))
            }
            Destination::Whatsapp(phone) => {
                let whatsapp = self.channels.whatsapp.as_ref().ok_or_else(|| {
                    unavailable("TWILIO_WHATSAPP_FROM and TWILIO_WHATSAPP_CONTENT_SID are not set")
                })?;
                // An authentication template's one variable is the code; Meta writes the rest.
                let variables = serde_json::json!({ "1": message.code.expose() });
                owned.extend([
                    format!("whatsapp:{}", phone.as_str()),
                    format!("whatsapp:{}", whatsapp.from),
                    variables.to_string(),
                ]);
                let mut form = vec![
                    ("To", owned[0].as_str()),
                    ("From", owned[1].as_str()),
                    ("ContentSid", whatsapp.content_sid(message.locale)),
                    ("ContentVariables", owned[2].as_str()),
                ];
                if let Some(callback) = &message.status_callback {
                    form.push(("StatusCallback", callback));
                }
                Ok((channel, &self.messages_url, form))
            }
            Destination::Voice(phone) => {
                let from = self
                    .channels
                    .voice_from
                    .as_deref()
                    .ok_or_else(|| unavailable("TWILIO_VOICE_FROM is not set"))?;
                // A call's status callback is another contract (CallStatus): not asked for.
                owned.push(message.voice_twiml());
                let form = vec![
                    ("To", phone.as_str()),
                    ("From", from),
                    ("Twiml", owned[0].as_str()),
                ];
                Ok((channel, &self.calls_url, form))
            }
            Destination::Email(_) => Err(unavailable("the Twilio sender does not send email")),
        }
    }
}

#[async_trait]
impl Sender for TwilioSender {
    async fn send(&self, message: &Message) -> Result<Accepted, DeliveryError> {
        let mut owned = Vec::new();
        let (channel, url, form) = self.request(message, &mut owned)?;
        // reqwest's errors carry the URL (account SID, no secret) and the cause; never the body.
        // A connection that never opened cannot have sent anything; any later failure (a
        // timeout waiting for the answer, a connection reset) may have.
        let response = self
            .post(self.client(channel)?, url, &form)
            .await
            .map_err(|e| {
                if e.is_connect() {
                    DeliveryError::Failed(Box::new(e.without_url()))
                } else {
                    DeliveryError::Uncertain(Box::new(e.without_url()))
                }
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(Accepted::default());
        }
        let bytes = response.bytes().await.unwrap_or_default();
        let error: Option<TwilioError> = serde_json::from_slice(&bytes).ok();
        let code = error.as_ref().and_then(|e| e.code);
        // Twilio's message text can quote the destination number, so only the code is kept.
        tracing::warn!(
            channel = channel.as_str(),
            status = status.as_u16(),
            code,
            "twilio refused the message"
        );
        if let Some(detail) = code.and_then(|code| destination_problem(channel, code)) {
            return Err(DeliveryError::InvalidDestination {
                detail: detail.to_owned(),
            });
        }
        if status == reqwest::StatusCode::UNAUTHORIZED
            || code.is_some_and(|code| configuration_problem(channel, code))
        {
            return Err(DeliveryError::Unavailable {
                channel,
                reason: format!("Twilio error {code:?} (HTTP {status})"),
            });
        }
        let error = format!("Twilio answered {status} (code {code:?})").into();
        // A 5xx may come after Twilio queued the message (or placed the call): it may be
        // delivered, and billed.
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
            Some(TwilioFrom::Number(_)) => "twilio (from number)".to_owned(),
            Some(TwilioFrom::MessagingService(_)) => "twilio (messaging service)".to_owned(),
            None => "twilio".to_owned(),
        }
    }
}

//! The send hook: a team's own sender. One POST per delivery, signed as Standard Webhooks
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`, by the `standardwebhooks` crate),
//! whose body carries the code and everything needed to deliver it. The hook's answer decides,
//! as a provider's does; nothing is retried (a delivery is not idempotent).

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{Accepted, DeliveryError, Message, Sender};
use crate::domain::{Channel, Destination};

pub struct HookSender {
    client: reqwest::Client,
    url: String,
    signer: standardwebhooks::Webhook,
}

#[derive(Serialize)]
struct Email {
    subject: String,
    html: String,
    text: String,
}

#[derive(Serialize)]
struct Data<'a> {
    verification_id: &'a str,
    channel: &'static str,
    /// The full number or address: the hook delivers to it.
    to: &'a str,
    code: &'a str,
    locale: &'static str,
    purpose: &'a str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<Email>,
}

#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: Data<'a>,
}

/// What a hook may answer with a 2xx.
#[derive(Deserialize)]
struct HookAnswer {
    message_id: Option<String>,
}

impl HookSender {
    pub fn new(url: &str, secret: &SecretString, timeout: Duration) -> Result<Self, String> {
        let signer = crate::signed::signer(secret, "the send hook's secret")?;
        let client = crate::tls::https_client(timeout.min(Duration::from_secs(2)), timeout)
            .map_err(|e| {
                format!(
                    "the send hook's client: {}",
                    crate::telemetry::error_chain(&e)
                )
            })?;
        Ok(Self {
            client,
            url: url.to_owned(),
            signer,
        })
    }

    /// The body of `message`'s delivery.
    fn body(message: &Message, now: u64) -> String {
        let channel = message.destination.channel();
        let (text, email) = match &message.destination {
            Destination::Email(_) => (
                None,
                Some(Email {
                    subject: message.email_subject(),
                    html: message.email_html(),
                    text: message.email_text(),
                }),
            ),
            Destination::Voice(_) => (Some(message.voice_script()), None),
            Destination::Sms(_) | Destination::Whatsapp(_) => (Some(message.sms_text()), None),
        };
        let payload = Payload {
            kind: "otp.send",
            timestamp: crate::verification::rfc3339(now),
            data: Data {
                verification_id: message.verification_id.as_str(),
                channel: channel.as_str(),
                to: message.destination.address(),
                code: message.code.expose(),
                locale: message.locale.tag(),
                purpose: &message.purpose,
                expires_in: message.ttl_secs,
                text,
                email,
            },
        };
        serde_json::to_string(&payload).expect("a hook payload always serialises")
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[async_trait]
impl Sender for HookSender {
    async fn send(&self, message: &Message) -> Result<Accepted, DeliveryError> {
        let channel = message.destination.channel();
        let body = Self::body(message, now());
        // One delivery, one id: the hook can recognise a request it saw (it is never retried).
        let id = format!("msg_{}", message.verification_id);
        let sent = crate::signed::post(&self.client, &self.url, &self.signer, &id, body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // Nobody took the request: nothing was sent.
            Err(error) if error.is_connect() => {
                return Err(DeliveryError::Failed(Box::new(error.without_url())))
            }
            // A timeout or a reset after the request went out: the hook may have sent it.
            Err(error) => return Err(DeliveryError::Uncertain(Box::new(error.without_url()))),
        };
        let status = response.status();
        if status.is_success() {
            let bytes = response.bytes().await.unwrap_or_default();
            let accepted: Option<HookAnswer> = serde_json::from_slice(&bytes).ok();
            let message_id = accepted.and_then(|a| a.message_id);
            tracing::info!(
                channel = channel.as_str(),
                message_id = message_id.as_deref().unwrap_or("-"),
                "send hook took the message"
            );
            return Ok(Accepted { message_id });
        }
        tracing::warn!(
            channel = channel.as_str(),
            status = status.as_u16(),
            "send hook refused the message"
        );
        let error = format!("the send hook answered {status}");
        if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
            let detail = match channel {
                Channel::Email => "This address cannot get our messages. Check it and try again.",
                _ => "This phone number cannot get our messages. Check it and try again.",
            };
            return Err(DeliveryError::InvalidDestination {
                detail: detail.to_owned(),
            });
        }
        if status.is_server_error() {
            return Err(DeliveryError::Uncertain(error.into()));
        }
        Err(DeliveryError::Failed(error.into()))
    }

    fn provider(&self) -> &'static str {
        "hook"
    }

    fn describe(&self) -> String {
        "send hook".to_owned()
    }
}

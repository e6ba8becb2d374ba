//! Delivery of codes. The engine picks a sender per channel; a channel without one is refused
//! before anything is written.

#[cfg(feature = "aws-sms")]
mod aws_sms;
mod console;
#[cfg(feature = "send-hook")]
mod hook;
#[cfg(feature = "ses")]
mod ses;
#[cfg(feature = "twilio")]
mod twilio;

#[cfg(feature = "aws-sms")]
pub use aws_sms::AwsSmsSender;
pub use console::ConsoleSender;
#[cfg(feature = "send-hook")]
pub use hook::HookSender;
#[cfg(feature = "ses")]
pub use ses::SesSender;
#[cfg(feature = "twilio")]
pub use twilio::TwilioSender;

use std::sync::Arc;

use async_trait::async_trait;

use crate::code::OneTimeCode;
use crate::domain::{Channel, Destination};
use crate::locale::Locale;
use crate::templates;

/// One code on its way to one person.
#[derive(Debug)]
pub struct Message {
    pub destination: Destination,
    pub code: OneTimeCode,
    pub ttl_secs: u64,
    pub brand: Option<String>,
    pub autofill: templates::SmsAutofill,
    /// The language of the words around the code.
    pub locale: Locale,
    /// The purpose the code is for (the send hook passes it on).
    pub purpose: String,
    /// Where the provider should post this message's delivery receipts (Twilio's
    /// `StatusCallback`), when the service takes them.
    pub status_callback: Option<String>,
    /// The verification the message belongs to: SES and AWS End User Messaging carry it in
    /// their delivery events (a message tag, the message's context).
    pub verification_id: crate::verification::VerificationId,
}

impl Message {
    pub fn sms_text(&self) -> String {
        templates::sms_text(
            self.locale,
            self.brand.as_deref(),
            self.code.expose(),
            self.ttl_secs,
            &self.autofill,
        )
    }

    pub fn voice_twiml(&self) -> String {
        templates::voice_twiml(self.locale, self.code.expose())
    }

    /// What the call says, as plain text (the local console shows this).
    pub fn voice_script(&self) -> String {
        templates::voice_script(self.locale, self.code.expose()).join(" ")
    }

    pub fn email_subject(&self) -> String {
        templates::email_subject(self.locale, self.brand.as_deref())
    }

    pub fn email_text(&self) -> String {
        templates::email_text(
            self.locale,
            self.brand.as_deref(),
            self.code.expose(),
            self.ttl_secs,
        )
    }

    pub fn email_html(&self) -> String {
        templates::email_html(
            self.locale,
            self.brand.as_deref(),
            self.code.expose(),
            self.ttl_secs,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The channel cannot send at all (not configured, credentials refused): our problem, not
    /// the user's, and retrying will not help until an operator acts.
    #[error("the {} channel is unavailable: {reason}", .channel.as_str())]
    Unavailable { channel: Channel, reason: String },
    /// The provider refused this destination; `detail` is a sentence the user can act on.
    #[error("the destination was refused: {detail}")]
    InvalidDestination { detail: String },
    /// The provider certainly did not send it (the connection failed, or it refused the
    /// request before sending); a retry may work.
    #[error("delivery failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request reached the provider but no clear answer came back (a timeout, a 5xx, a
    /// broken response): the message may have gone out, and been billed.
    #[error("delivery outcome unknown")]
    Uncertain(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What a provider said when it took a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// The provider's id of the message, when the service keeps it: the send hook's
    /// `message_id` (Twilio's comes with its receipts).
    pub message_id: Option<String>,
}

#[async_trait]
pub trait Sender: Send + Sync {
    async fn send(&self, message: &Message) -> Result<Accepted, DeliveryError>;

    /// For the start-up line that says who serves each channel; never a secret.
    fn describe(&self) -> String;

    /// The `Provider` dimension of the delivery metrics: `twilio`, `ses`, `console`.
    fn provider(&self) -> &'static str {
        "other"
    }
}

/// The sender for each channel; `None` means the channel is not offered.
#[derive(Clone, Default)]
pub struct Senders {
    pub sms: Option<Arc<dyn Sender>>,
    pub whatsapp: Option<Arc<dyn Sender>>,
    pub voice: Option<Arc<dyn Sender>>,
    pub email: Option<Arc<dyn Sender>>,
    /// Why the phone channels are off although configured (a function's refused settings or
    /// unreadable secret).
    pub phone_problem: Option<String>,
    /// Where delivery receipts come in, and what checks them.
    pub receipts: crate::receipts::Receipts,
}

impl Senders {
    pub fn for_channel(&self, channel: Channel) -> Option<&Arc<dyn Sender>> {
        match channel {
            Channel::Sms => self.sms.as_ref(),
            Channel::Whatsapp => self.whatsapp.as_ref(),
            Channel::Voice => self.voice.as_ref(),
            Channel::Email => self.email.as_ref(),
        }
    }

    /// What an operator must set for `channel` to be offered, for the log line of a refused
    /// send.
    pub fn missing(&self, channel: Channel) -> String {
        if let (Some(problem), true) = (&self.phone_problem, channel != Channel::Email) {
            return format!("its settings were refused at init: {problem}");
        }
        match channel {
            Channel::Sms => {
                "set TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN_SECRET_ARN and \
                             TWILIO_PHONE_NUMBER (or OTP_SMS_PROVIDER=aws with \
                             OTP_AWS_SMS_ORIGINATION_IDENTITY)"
            }
            Channel::Whatsapp => {
                "set TWILIO_WHATSAPP_FROM and TWILIO_WHATSAPP_CONTENT_SID (with \
                                  the Twilio account)"
            }
            Channel::Voice => "set TWILIO_VOICE_FROM (with the Twilio account)",
            Channel::Email => "set EMAIL_FROM to a verified SES identity",
        }
        .to_owned()
    }

    pub fn describe(&self) -> String {
        Channel::ALL
            .iter()
            .map(|&channel| {
                let sender = self
                    .for_channel(channel)
                    .map_or_else(|| "unavailable".to_owned(), |s| s.describe());
                format!("{}: {sender}", channel.as_str())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

use async_trait::async_trait;

use super::{Accepted, DeliveryError, Message, Sender};
use crate::domain::Destination;

/// Local development delivery: one stdout line per message, code included. The one place a code
/// is printed on purpose; the Lambda functions never use it.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsoleSender;

impl ConsoleSender {
    pub fn line(message: &Message) -> String {
        match &message.destination {
            Destination::Sms(phone) => {
                format!(
                    "[dev-delivery] sms to {}: {}",
                    phone.as_str(),
                    message.sms_text()
                )
            }
            Destination::Whatsapp(phone) => format!(
                "[dev-delivery] whatsapp to {}: authentication template, code {}",
                phone.as_str(),
                message.code.expose()
            ),
            Destination::Voice(phone) => format!(
                "[dev-delivery] voice call to {}: {}",
                phone.as_str(),
                message.voice_script()
            ),
            Destination::Email(email) => format!(
                "[dev-delivery] email to {}: {} | {}",
                email.as_str(),
                message.email_subject(),
                message.email_text().replace('\n', " ")
            ),
        }
    }
}

#[async_trait]
impl Sender for ConsoleSender {
    async fn send(&self, message: &Message) -> Result<Accepted, DeliveryError> {
        use std::io::Write as _;
        // One write of the whole line (with its newline) under the stdout lock, so concurrent
        // sends never interleave and a reader can rely on exactly one line per message.
        let mut line = Self::line(message);
        line.push('\n');
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
            .map(|()| Accepted::default())
            .map_err(|e| DeliveryError::Failed(Box::new(e)))
    }

    fn provider(&self) -> &'static str {
        "console"
    }

    fn describe(&self) -> String {
        "console (dev)".to_owned()
    }
}

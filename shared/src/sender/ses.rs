//! Email through Amazon SES v2 `SendEmail`, simple content: subject, HTML and text.

use async_trait::async_trait;
use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::SdkError;
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{
    Body, Content, Destination as SesDestination, EmailContent, MessageTag,
};

use super::{Accepted, DeliveryError, Message, Sender};
use crate::domain::{Channel, Destination};
use crate::settings::SesSettings;

pub struct SesSender {
    client: aws_sdk_sesv2::Client,
    from: String,
    configuration_set: Option<String>,
}

impl SesSender {
    /// The client does not retry `SendEmail`: a retried timeout could send the mail twice, and
    /// a failed send costs the caller nothing (no cooldown), so the caller retries instead.
    pub fn new(aws: &aws_config::SdkConfig, settings: &SesSettings) -> Self {
        let config = aws_sdk_sesv2::config::Builder::from(aws)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        Self {
            client: aws_sdk_sesv2::Client::from_conf(config),
            from: settings.from.clone(),
            configuration_set: settings.configuration_set.clone(),
        }
    }
}

fn content(text: String) -> Result<Content, DeliveryError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| DeliveryError::Failed(Box::new(e)))
}

#[async_trait]
impl Sender for SesSender {
    async fn send(&self, message: &Message) -> Result<Accepted, DeliveryError> {
        let Destination::Email(email) = &message.destination else {
            return Err(DeliveryError::Unavailable {
                channel: Channel::Email,
                reason: "the SES sender only sends email".to_owned(),
            });
        };
        let body = Body::builder()
            .html(content(message.email_html())?)
            .text(content(message.email_text())?)
            .build();
        let simple = aws_sdk_sesv2::types::Message::builder()
            .subject(content(message.email_subject())?)
            .body(body)
            .build();
        let result = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(
                SesDestination::builder()
                    .to_addresses(email.as_str())
                    .build(),
            )
            .content(EmailContent::builder().simple(simple).build())
            .set_configuration_set_name(self.configuration_set.clone())
            // Comes back in the configuration set's events (delivery receipts).
            .email_tags(
                MessageTag::builder()
                    .name(crate::receipts::VERIFICATION_PARAMETER)
                    .value(message.verification_id.as_str())
                    .build()
                    .map_err(|e| DeliveryError::Failed(Box::new(e)))?,
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Accepted::default()),
            Err(error) => Err(map_error(error)),
        }
    }

    fn provider(&self) -> &'static str {
        "ses"
    }

    fn describe(&self) -> String {
        "ses".to_owned()
    }
}

fn map_error(error: SdkError<SendEmailError, HttpResponse>) -> DeliveryError {
    let configuration = match error.as_service_error() {
        Some(
            SendEmailError::MessageRejected(_)
            | SendEmailError::MailFromDomainNotVerifiedException(_)
            | SendEmailError::AccountSuspendedException(_)
            | SendEmailError::SendingPausedException(_)
            | SendEmailError::NotFoundException(_)
            | SendEmailError::BadRequestException(_),
        ) => true,
        // Throttling, limits, 5xx, timeouts, network: transient, the caller may retry.
        _ => false,
    };
    // An attempt that reached SES and got no clear answer may have sent the email; only a
    // connection that never opened, or an answer that refused the request, certainly did not.
    let uncertain = match &error {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(failure) => failure.is_timeout(),
        SdkError::ServiceError(service) => service.raw().status().is_server_error(),
        _ => false,
    };
    if configuration {
        // Only the error code: SES messages can quote the recipient's address (sandbox mode).
        let reason = error
            .as_service_error()
            .and_then(|e| e.meta().code())
            .unwrap_or("SES error")
            .to_owned();
        DeliveryError::Unavailable {
            channel: Channel::Email,
            reason,
        }
    } else if uncertain {
        DeliveryError::Uncertain(Box::new(error))
    } else {
        DeliveryError::Failed(Box::new(error))
    }
}

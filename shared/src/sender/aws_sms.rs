//! SMS through AWS End User Messaging SMS (`pinpoint-sms-voice-v2` `SendTextMessage`): no
//! third-party secret, IAM decides who may send, and a protect configuration can block
//! countries at the AWS side too.

use async_trait::async_trait;
use aws_sdk_pinpointsmsvoicev2::config::http::HttpResponse;
use aws_sdk_pinpointsmsvoicev2::error::SdkError;
use aws_sdk_pinpointsmsvoicev2::operation::send_text_message::SendTextMessageError;
use aws_sdk_pinpointsmsvoicev2::types::{
    ConflictExceptionReason, MessageType, ValidationExceptionReason,
};

use super::{Accepted, DeliveryError, Message, Sender};
use crate::domain::{Channel, Destination};
use crate::settings::AwsSmsSettings;

pub struct AwsSmsSender {
    client: aws_sdk_pinpointsmsvoicev2::Client,
    settings: AwsSmsSettings,
}

impl AwsSmsSender {
    /// The client does not retry: a retried timeout or 5xx could send the SMS twice (and bill
    /// it twice); a failed send costs the caller nothing, so the caller retries instead.
    pub fn new(aws: &aws_config::SdkConfig, settings: &AwsSmsSettings) -> Self {
        let config = aws_sdk_pinpointsmsvoicev2::config::Builder::from(aws)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        Self {
            client: aws_sdk_pinpointsmsvoicev2::Client::from_conf(config),
            settings: settings.clone(),
        }
    }
}

#[async_trait]
impl Sender for AwsSmsSender {
    async fn send(&self, message: &Message) -> Result<Accepted, DeliveryError> {
        let Destination::Sms(phone) = &message.destination else {
            return Err(DeliveryError::Unavailable {
                channel: message.destination.channel(),
                reason: "AWS End User Messaging sends only SMS here".to_owned(),
            });
        };
        let settings = &self.settings;
        let result = self
            .client
            .send_text_message()
            .destination_phone_number(phone.as_str())
            .origination_identity(&settings.origination_identity)
            .message_body(message.sms_text())
            // Transactional: carriers deliver it first and it may go to numbers that opted out
            // of promotions; a code is not marketing.
            .message_type(MessageType::Transactional)
            .set_protect_configuration_id(settings.protect_configuration_id.clone())
            .set_configuration_set_name(settings.configuration_set.clone())
            // Comes back in the message's delivery events (EventBridge): the receipts.
            .context(
                crate::receipts::VERIFICATION_PARAMETER,
                message.verification_id.as_str(),
            )
            // A code that arrives after it expired is useless; do not let it queue longer.
            .time_to_live(message.ttl_secs.clamp(5, 259_200) as i32)
            .send()
            .await;
        result.map(|_| Accepted::default()).map_err(map_error)
    }

    fn provider(&self) -> &'static str {
        "aws-sms"
    }

    fn describe(&self) -> String {
        let protect = if self.settings.protect_configuration_id.is_some() {
            ", protect configuration"
        } else {
            ""
        };
        format!("aws end user messaging{protect}")
    }
}

/// What the user can do about a refusal that is about their number.
fn destination_problem(error: &SendTextMessageError) -> Option<&'static str> {
    Some(match error {
        SendTextMessageError::ConflictException(e) => match e.reason() {
            Some(ConflictExceptionReason::DestinationPhoneNumberOptedOut) => {
                "This phone number has opted out of our messages. Reply START to us from that \
                 phone to opt back in, or use another number."
            }
            Some(
                ConflictExceptionReason::DestinationCountryBlockedByProtectConfiguration
                | ConflictExceptionReason::DestinationPhoneNumberBlockedByProtectNumberOverride,
            ) => {
                "SMS cannot be delivered to this phone number's country or network. Use another \
                 number."
            }
            _ => return None,
        },
        SendTextMessageError::ValidationException(e) => match e.reason() {
            Some(ValidationExceptionReason::DestinationCountryBlocked) => {
                "SMS cannot be delivered to this phone number's country or network. Use another \
                 number."
            }
            Some(ValidationExceptionReason::CannotParse) => {
                "The phone number is not valid. Check it and try again."
            }
            _ => return None,
        },
        _ => return None,
    })
}

fn map_error(error: SdkError<SendTextMessageError, HttpResponse>) -> DeliveryError {
    if let Some(detail) = error.as_service_error().and_then(destination_problem) {
        return DeliveryError::InvalidDestination {
            detail: detail.to_owned(),
        };
    }
    // Refusals an operator must act on: IAM, an identity or protect configuration that does
    // not exist or cannot send there, a spend limit, the sandbox's unverified numbers.
    let configuration = matches!(
        error.as_service_error(),
        Some(
            SendTextMessageError::AccessDeniedException(_)
                | SendTextMessageError::ResourceNotFoundException(_)
                | SendTextMessageError::ServiceQuotaExceededException(_)
                | SendTextMessageError::ConflictException(_)
                | SendTextMessageError::ValidationException(_)
        )
    );
    let uncertain = match &error {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(failure) => failure.is_timeout(),
        SdkError::ServiceError(service) => service.raw().status().is_server_error(),
        _ => false,
    };
    if configuration {
        // The code and reason only: messages can quote the destination number.
        let service = error.as_service_error();
        let code = service.and_then(|e| e.meta().code()).unwrap_or("error");
        let reason = match service {
            Some(SendTextMessageError::ValidationException(e)) => {
                e.reason().map(|r| r.as_str().to_owned())
            }
            Some(SendTextMessageError::ConflictException(e)) => {
                e.reason().map(|r| r.as_str().to_owned())
            }
            _ => None,
        };
        DeliveryError::Unavailable {
            channel: Channel::Sms,
            reason: format!(
                "AWS End User Messaging {code} {}",
                reason.unwrap_or_default()
            ),
        }
    } else if uncertain {
        DeliveryError::Uncertain(Box::new(error))
    } else {
        // Throttling, a connection that never opened: nothing was sent; the caller may retry.
        DeliveryError::Failed(Box::new(error))
    }
}

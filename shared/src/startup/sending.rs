//! What only a unit with the send routes builds: the senders of each channel and the public
//! send route's gate (CAPTCHA, user directory). Not compiled without the `sending` feature.

use std::sync::Arc;

use super::{Aws, InitError};
use crate::captcha::CaptchaCheck;
use crate::directory::{DynamoDirectory, ListDirectory, UserDirectory};
use crate::domain::Channel;
use crate::engine::PublicGate;
use crate::sender::{ConsoleSender, Sender, Senders};
use crate::settings::{DirectorySettings, Runtime, Settings};

/// The public send route's CAPTCHA and user directory, when configured.
pub(super) async fn public_gate(settings: &Settings, aws: &Aws) -> Result<PublicGate, InitError> {
    let public = &settings.public;
    let directory: Option<Arc<dyn UserDirectory>> = match &public.directory {
        DirectorySettings::None => None,
        DirectorySettings::List(users) => Some(Arc::new(ListDirectory::new(users.clone()))),
        DirectorySettings::DynamoDb { table } => Some(Arc::new(DynamoDirectory::new(
            aws.dynamodb().await,
            table.clone(),
        ))),
    };
    let captcha = match &public.captcha {
        None => None,
        Some(captcha) => Some(captcha_check(captcha, aws).await?),
    };
    Ok(PublicGate {
        captcha,
        directory,
        unknown_user: public.unknown_user,
        cors_origins: public.cors_origins.clone(),
    })
}

#[cfg(feature = "captcha")]
async fn captcha_check(
    settings: &crate::settings::CaptchaSettings,
    aws: &Aws,
) -> Result<Arc<dyn CaptchaCheck>, InitError> {
    let secret = aws
        .secret(&settings.secret, &["secret", "secret_key", "value"])
        .await?;
    // As Twilio's: the client comes with the first check, the system's roots now.
    crate::tls::roots();
    Ok(Arc::new(crate::captcha::SiteVerify::new(settings, secret)))
}

#[cfg(not(feature = "captcha"))]
async fn captcha_check(
    _: &crate::settings::CaptchaSettings,
    _: &Aws,
) -> Result<Arc<dyn CaptchaCheck>, InitError> {
    Err(InitError::NotBuiltIn {
        channel: "CAPTCHA",
        provider: "siteverify",
    })
}

pub(super) async fn senders(
    settings: &Settings,
    sms: Option<Arc<dyn Sender>>,
    email: Option<Arc<dyn Sender>>,
    aws: &Aws,
) -> Result<Senders, InitError> {
    let fallback = || match settings.runtime {
        Runtime::Local => Some(Arc::new(ConsoleSender) as Arc<dyn Sender>),
        Runtime::Lambda => None,
    };
    let sms_override = sms.clone();
    let overridden = sms.is_some();
    let mut phone_problem = settings.delivery.phone_problem.clone();
    // A function whose phone provider cannot be set up (its secret unreadable) still serves
    // email; the local server stops, as for any other setting.
    let mut phone_off = |error: InitError| match settings.runtime {
        Runtime::Lambda => {
            phone_problem = Some(error.to_string());
            Ok(None)
        }
        Runtime::Local => Err(error),
    };
    let mut twilio_token = None;
    let twilio = match (&sms, &settings.delivery.sms) {
        (None, Some(twilio)) => match twilio_sender(twilio, aws).await {
            Ok((sender, token)) => {
                twilio_token = Some(token);
                Some(sender)
            }
            Err(error) => phone_off(error)?,
        },
        _ => None,
    };
    let sms = match (sms, &settings.delivery.aws_sms, &twilio) {
        (Some(sender), _, _) => Some(sender),
        (None, Some(aws_sms), _) => Some(aws_sms_sender(aws_sms, aws).await?),
        (None, None, Some(twilio)) => Some(twilio.clone()),
        (None, None, None) if phone_problem.is_some() => None,
        (None, None, None) => fallback(),
    };
    let email = match (email, &settings.delivery.email) {
        (Some(sender), _) => Some(sender),
        (None, Some(ses)) => Some(ses_sender(ses, aws).await?),
        (None, None) => fallback(),
    };
    // WhatsApp and voice go through the Twilio account (whoever sends SMS), each only when its
    // own sender is configured; a test's recording sender, or the local console, takes every
    // phone channel.
    let (whatsapp, voice) = match (sms_override, &settings.delivery.sms, twilio) {
        (Some(sender), _, _) => (Some(sender.clone()), Some(sender)),
        (None, Some(settings), Some(twilio)) => (
            settings.channels.whatsapp.as_ref().map(|_| twilio.clone()),
            settings.channels.voice_from.as_ref().map(|_| twilio),
        ),
        _ if phone_problem.is_some() => (None, None),
        _ => (fallback(), fallback()),
    };
    // The send hook takes its channels from whoever had them (a test's recording sender
    // excepted: it stands for every provider).
    let (mut sms, mut whatsapp, mut voice, mut email) = (sms, whatsapp, voice, email);
    if let (Some(hook), false) = (&settings.delivery.send_hook, overridden) {
        let sender = send_hook(hook, aws).await?;
        for channel in &hook.channels {
            let slot = match channel {
                Channel::Sms => &mut sms,
                Channel::Whatsapp => &mut whatsapp,
                Channel::Voice => &mut voice,
                Channel::Email => &mut email,
            };
            *slot = Some(sender.clone());
        }
        if hook.channels.iter().any(|c| *c != Channel::Email) {
            phone_problem = None;
        }
    }
    if let Some(problem) = &phone_problem {
        tracing::error!(
            "SMS, WhatsApp and calls are off: {problem}. Email and the other routes keep \
             working; phone sends answer 503 channel_unavailable until this is fixed"
        );
    }
    Ok(Senders {
        sms,
        whatsapp,
        voice,
        email,
        phone_problem,
        receipts: crate::receipts::Receipts {
            public_base_url: settings.delivery.public_base_url.clone(),
            twilio_token,
        },
    })
}

#[cfg(feature = "send-hook")]
async fn send_hook(
    settings: &crate::settings::SendHookSettings,
    aws: &Aws,
) -> Result<Arc<dyn Sender>, InitError> {
    let secret = aws.secret(&settings.secret, &["secret", "value"]).await?;
    let hook = crate::sender::HookSender::new(&settings.url, &secret, settings.timeout)
        .map_err(InitError::Events)?;
    Ok(Arc::new(hook))
}

#[cfg(not(feature = "send-hook"))]
async fn send_hook(
    _: &crate::settings::SendHookSettings,
    _: &Aws,
) -> Result<Arc<dyn Sender>, InitError> {
    Err(InitError::NotBuiltIn {
        channel: "the send hook's",
        provider: "send hook",
    })
}

#[cfg(feature = "twilio")]
async fn twilio_sender(
    settings: &crate::settings::TwilioSettings,
    aws: &Aws,
) -> Result<(Arc<dyn Sender>, secrecy::SecretString), InitError> {
    let token = aws
        .secret(&settings.auth_token, &["auth_token", "token", "value"])
        .await?;
    // The token also checks the signatures of Twilio's delivery receipts.
    let sender = crate::sender::TwilioSender::new(settings, token.clone());
    // Its HTTP client is built on the first message, trusting the system's roots: read them
    // now, at init (off the request's path when Lambda initialises ahead of the first event).
    crate::tls::roots();
    Ok((Arc::new(sender), token))
}

#[cfg(not(feature = "twilio"))]
async fn twilio_sender(
    _: &crate::settings::TwilioSettings,
    _: &Aws,
) -> Result<(Arc<dyn Sender>, secrecy::SecretString), InitError> {
    Err(InitError::NotBuiltIn {
        channel: "sms",
        provider: "Twilio",
    })
}

#[cfg(feature = "aws-sms")]
async fn aws_sms_sender(
    settings: &crate::settings::AwsSmsSettings,
    aws: &Aws,
) -> Result<Arc<dyn Sender>, InitError> {
    Ok(Arc::new(crate::sender::AwsSmsSender::new(
        aws.config().await,
        settings,
    )))
}

#[cfg(not(feature = "aws-sms"))]
async fn aws_sms_sender(
    _: &crate::settings::AwsSmsSettings,
    _: &Aws,
) -> Result<Arc<dyn Sender>, InitError> {
    Err(InitError::NotBuiltIn {
        channel: "sms",
        provider: "AWS End User Messaging",
    })
}

#[cfg(feature = "ses")]
async fn ses_sender(
    settings: &crate::settings::SesSettings,
    aws: &Aws,
) -> Result<Arc<dyn Sender>, InitError> {
    Ok(Arc::new(crate::sender::SesSender::new(
        aws.config().await,
        settings,
    )))
}

#[cfg(not(feature = "ses"))]
async fn ses_sender(
    _: &crate::settings::SesSettings,
    _: &Aws,
) -> Result<Arc<dyn Sender>, InitError> {
    Err(InitError::NotBuiltIn {
        channel: "email",
        provider: "SES",
    })
}

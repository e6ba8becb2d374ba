//! Which sender serves each channel, from the environment: Twilio for SMS when
//! `TWILIO_ACCOUNT_SID` is set, SES for email when `EMAIL_FROM` is set; otherwise the console
//! sender on the local server and no sender at all (503) in a Lambda function.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use secrecy::SecretString;

use super::twilio::DEFAULT_API_BASE_URL;
use super::{ConsoleSender, Sender, Senders, SesSender, TwilioConfig, TwilioFrom, TwilioSender};
use crate::app::{InitError, Runtime};
use crate::config::{non_empty, ConfigError, TWILIO_TIMEOUT_MS};
use crate::domain::{Email, PhoneE164};

pub const TWILIO_ACCOUNT_SID: &str = "TWILIO_ACCOUNT_SID";
pub const TWILIO_AUTH_TOKEN: &str = "TWILIO_AUTH_TOKEN";
pub const TWILIO_AUTH_TOKEN_SECRET_ARN: &str = "TWILIO_AUTH_TOKEN_SECRET_ARN";
pub const TWILIO_PHONE_NUMBER: &str = "TWILIO_PHONE_NUMBER";
pub const TWILIO_MESSAGING_SERVICE_SID: &str = "TWILIO_MESSAGING_SERVICE_SID";
pub const TWILIO_API_BASE_URL: &str = "TWILIO_API_BASE_URL";
pub const EMAIL_FROM: &str = "EMAIL_FROM";
pub const SES_CONFIGURATION_SET: &str = "SES_CONFIGURATION_SET";

pub type Env<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

fn get(env: Env<'_>, var: &str) -> Option<String> {
    non_empty(env(var)).map(|v| v.trim().to_owned())
}

/// Whether the delivery settings need the AWS SDK configuration.
pub fn needs_aws(env: Env<'_>) -> bool {
    get(env, EMAIL_FROM).is_some()
        || (get(env, TWILIO_ACCOUNT_SID).is_some()
            && get(env, TWILIO_AUTH_TOKEN).is_none()
            && get(env, TWILIO_AUTH_TOKEN_SECRET_ARN).is_some())
}

pub async fn senders_from_env(
    runtime: Runtime,
    env: Env<'_>,
    aws: Option<&SdkConfig>,
) -> Result<Senders, InitError> {
    let fallback = || match runtime {
        Runtime::Local => Some(Arc::new(ConsoleSender) as Arc<dyn Sender>),
        Runtime::Lambda => None,
    };
    let sms = match twilio_from_env(env, aws).await? {
        Some(twilio) => Some(Arc::new(twilio) as Arc<dyn Sender>),
        None => fallback(),
    };
    let email = match ses_from_env(env, aws)? {
        Some(ses) => Some(Arc::new(ses) as Arc<dyn Sender>),
        None => fallback(),
    };
    Ok(Senders { sms, email })
}

pub async fn twilio_from_env(
    env: Env<'_>,
    aws: Option<&SdkConfig>,
) -> Result<Option<TwilioSender>, InitError> {
    let Some(account_sid) = get(env, TWILIO_ACCOUNT_SID) else {
        return Ok(None);
    };
    let auth_token = match (
        get(env, TWILIO_AUTH_TOKEN),
        get(env, TWILIO_AUTH_TOKEN_SECRET_ARN),
    ) {
        (Some(token), _) => SecretString::from(token),
        (None, Some(arn)) => read_secret(aws, &arn).await?,
        (None, None) => {
            return Err(ConfigError::Missing {
                var: TWILIO_AUTH_TOKEN_SECRET_ARN,
                hint: "TWILIO_ACCOUNT_SID is set, so the auth token is needed: the ARN of a \
                       Secrets Manager secret holding it (or TWILIO_AUTH_TOKEN for local runs)",
            }
            .into())
        }
    };
    let from = match (
        get(env, TWILIO_MESSAGING_SERVICE_SID),
        get(env, TWILIO_PHONE_NUMBER),
    ) {
        (Some(sid), _) => TwilioFrom::MessagingService(sid),
        (None, Some(number)) => {
            let number = PhoneE164::parse(&number).map_err(|_| ConfigError::Invalid {
                var: TWILIO_PHONE_NUMBER,
                reason: "must be a phone number in E.164 format, e.g. +14155552671".to_owned(),
            })?;
            TwilioFrom::Number(number.as_str().to_owned())
        }
        (None, None) => {
            return Err(ConfigError::Missing {
                var: TWILIO_PHONE_NUMBER,
                hint: "TWILIO_ACCOUNT_SID is set, so a sender is needed: TWILIO_PHONE_NUMBER \
                       or TWILIO_MESSAGING_SERVICE_SID",
            }
            .into())
        }
    };
    let timeout = Duration::from_millis(TWILIO_TIMEOUT_MS.read(&env)?);
    let config = TwilioConfig {
        api_base_url: get(env, TWILIO_API_BASE_URL)
            .unwrap_or_else(|| DEFAULT_API_BASE_URL.to_owned()),
        account_sid,
        auth_token,
        from,
        connect_timeout: timeout.min(Duration::from_secs(2)),
        timeout,
    };
    let sender = TwilioSender::new(config).map_err(|e| InitError::Client(Box::new(e)))?;
    Ok(Some(sender))
}

pub fn ses_from_env(env: Env<'_>, aws: Option<&SdkConfig>) -> Result<Option<SesSender>, InitError> {
    let Some(from) = get(env, EMAIL_FROM) else {
        return Ok(None);
    };
    // Either a plain address or `Display Name <address>`; SES takes both.
    let address = match (from.rfind('<'), from.strip_suffix('>')) {
        (Some(open), Some(inner)) => inner[open + 1..].to_owned(),
        _ => from.clone(),
    };
    Email::parse(&address).map_err(|_| ConfigError::Invalid {
        var: EMAIL_FROM,
        reason: "must be an email address, or `Name <address>`, of a verified SES identity"
            .to_owned(),
    })?;
    let aws = aws.ok_or(InitError::AwsNotLoaded)?;
    // No retries for SendEmail: see `SesSender::new`.
    let config = aws_sdk_sesv2::config::Builder::from(aws)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let client = aws_sdk_sesv2::Client::from_conf(config);
    Ok(Some(SesSender::new(
        client,
        from,
        get(env, SES_CONFIGURATION_SET),
    )))
}

/// Reads a secret once at init. A plain string is the value; a JSON object must hold the value
/// under one of `keys`' names (as the Secrets Manager console's key/value form stores it).
pub async fn read_secret(aws: Option<&SdkConfig>, arn: &str) -> Result<SecretString, InitError> {
    read_secret_field(aws, arn, &["auth_token", "token", "value"]).await
}

pub async fn read_secret_field(
    aws: Option<&SdkConfig>,
    arn: &str,
    keys: &[&str],
) -> Result<SecretString, InitError> {
    let aws = aws.ok_or(InitError::AwsNotLoaded)?;
    let client = aws_sdk_secretsmanager::Client::new(aws);
    let secret_error = |reason: String| InitError::Secret {
        arn: arn.to_owned(),
        reason,
    };
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            let code = e
                .as_service_error()
                .and_then(|s| aws_sdk_secretsmanager::error::ProvideErrorMetadata::code(s))
                .map(str::to_owned);
            secret_error(code.unwrap_or_else(|| crate::engine::error_chain(&e)))
        })?;
    let text = output
        .secret_string()
        .ok_or_else(|| secret_error("the secret has no string value".to_owned()))?
        .trim();
    if text.starts_with('{') {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|_| secret_error("the secret is not valid JSON".to_owned()))?;
        let value = keys
            .iter()
            .find_map(|k| object.get(*k).and_then(|v| v.as_str()))
            .ok_or_else(|| {
                secret_error(format!("the JSON secret has none of the keys {keys:?}"))
            })?;
        return Ok(SecretString::from(value.to_owned()));
    }
    if text.is_empty() {
        return Err(secret_error("the secret is empty".to_owned()));
    }
    Ok(SecretString::from(text.to_owned()))
}

//! Secrets Manager, read once at init: the one place the service fetches a secret. A plain
//! string is the value; a JSON object holds it under a named field (as the console's key/value
//! form stores it).

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::telemetry::error_chain;

#[derive(Debug, thiserror::Error)]
#[error("cannot read secret {arn}: {reason}")]
pub struct SecretError {
    pub arn: String,
    pub reason: String,
}

/// A secret's string value, parsed: plain text, or the fields of a JSON object.
pub enum SecretValue {
    Plain(SecretString),
    Json(Map<String, Value>),
}

impl SecretValue {
    /// The value under the first of `fields` present (JSON), or the plain text.
    pub fn field(&self, arn: &str, fields: &[&str]) -> Result<SecretString, SecretError> {
        match self {
            SecretValue::Plain(text) => Ok(text.clone()),
            SecretValue::Json(object) => fields
                .iter()
                .find_map(|k| object.get(*k).and_then(Value::as_str))
                .map(|v| SecretString::from(v.to_owned()))
                .ok_or_else(|| SecretError {
                    arn: arn.to_owned(),
                    reason: format!("the JSON secret has none of the keys {fields:?}"),
                }),
        }
    }

    /// An optional field of a JSON secret.
    pub fn optional(&self, field: &str) -> Option<SecretString> {
        match self {
            SecretValue::Plain(_) => None,
            SecretValue::Json(object) => object
                .get(field)
                .and_then(Value::as_str)
                .map(|v| SecretString::from(v.to_owned())),
        }
    }
}

pub async fn read(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<SecretValue, SecretError> {
    let error = |reason: String| SecretError {
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
            error(code.unwrap_or_else(|| error_chain(&e)))
        })?;
    let text = output
        .secret_string()
        .ok_or_else(|| error("the secret has no string value".to_owned()))?
        .trim();
    if text.starts_with('{') {
        let object = serde_json::from_str(text)
            .map_err(|_| error("the secret is not valid JSON".to_owned()))?;
        return Ok(SecretValue::Json(object));
    }
    if text.is_empty() {
        return Err(error("the secret is empty".to_owned()));
    }
    Ok(SecretValue::Plain(SecretString::from(text.to_owned())))
}

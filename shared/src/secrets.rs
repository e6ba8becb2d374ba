//! Secrets Manager, read once at init: the one place the service fetches a secret. A plain
//! string is the value; a JSON object holds it under a named field (as the console's key/value
//! form stores it). Every secret a function needs is read in one `BatchGetSecretValue` request
//! ([`read_all`]), over one connection: at a small CPU share each extra request is a TLS
//! handshake's worth of a cold start.

use std::collections::HashMap;

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::telemetry::error_chain;

#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read secret {arn}: {reason}")]
pub struct SecretError {
    pub arn: String,
    pub reason: String,
}

/// A secret's string value, parsed: plain text, or the fields of a JSON object.
#[derive(Clone)]
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

/// The most secrets one `BatchGetSecretValue` returns.
const BATCH_LIMIT: usize = 20;

/// Reads every secret in `ids` with as few requests as Secrets Manager allows: one
/// `BatchGetSecretValue` per 20. A secret the batch does not return under the id it was asked
/// by (a partial ARN), or every secret when the batch call itself is refused (a role granted
/// only `GetSecretValue`, as before this read existed), is read alone with `GetSecretValue`.
pub async fn read_all(
    client: &aws_sdk_secretsmanager::Client,
    ids: &[String],
) -> HashMap<String, Result<SecretValue, SecretError>> {
    let mut found = HashMap::new();
    for batch in ids.chunks(BATCH_LIMIT) {
        match client
            .batch_get_secret_value()
            .set_secret_id_list(Some(batch.to_vec()))
            .send()
            .await
        {
            Ok(output) => {
                // Entries name a secret by its full ARN and its name; an id is one of them.
                let asked = |arn: Option<&str>, name: Option<&str>| {
                    batch
                        .iter()
                        .find(|id| Some(id.as_str()) == arn || Some(id.as_str()) == name)
                };
                for entry in output.secret_values() {
                    if let Some(id) = asked(entry.arn(), entry.name()) {
                        found.insert(id.clone(), parse(id, entry.secret_string()));
                    }
                }
                for error in output.errors() {
                    if let Some(id) = asked(error.secret_id(), error.secret_id()) {
                        let reason = error.error_code().unwrap_or("unreadable").to_owned();
                        let arn = id.clone();
                        found.insert(id.clone(), Err(SecretError { arn, reason }));
                    }
                }
            }
            Err(e) => tracing::warn!(
                error = %error_chain(&e),
                "BatchGetSecretValue failed; reading the secrets one by one (grant \
                 secretsmanager:BatchGetSecretValue for one request at init)"
            ),
        }
    }
    for id in ids {
        if !found.contains_key(id) {
            found.insert(id.clone(), read(client, id).await);
        }
    }
    found
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
    parse(arn, output.secret_string())
}

/// A secret's string value as read, parsed.
fn parse(arn: &str, text: Option<&str>) -> Result<SecretValue, SecretError> {
    let error = |reason: String| SecretError {
        arn: arn.to_owned(),
        reason,
    };
    let text = text
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

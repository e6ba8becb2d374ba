//! Requests signed as Standard Webhooks (standardwebhooks.com), by the `standardwebhooks` crate:
//! the events the service sends out and the send hook's deliveries.

use secrecy::{ExposeSecret, SecretString};

/// The signer of a `whsec_` secret; `what` names the secret in the error.
pub fn signer(secret: &SecretString, what: &str) -> Result<standardwebhooks::Webhook, String> {
    crate::settings::check_webhook_secret(secret.expose_secret())
        .map_err(|reason| format!("{what} {reason}"))?;
    standardwebhooks::Webhook::new(secret.expose_secret()).map_err(|e| format!("{what}: {e}"))
}

/// A JSON POST of `body` to `url` with `webhook-id` `id`, `webhook-timestamp` now (the wall
/// clock: receivers refuse a timestamp five minutes off theirs) and `webhook-signature`.
pub fn post(
    client: &reqwest::Client,
    url: &str,
    signer: &standardwebhooks::Webhook,
    id: &str,
    body: String,
) -> reqwest::RequestBuilder {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let timestamp = i64::try_from(now).unwrap_or(i64::MAX);
    let signature = signer
        .sign(id, timestamp, body.as_bytes())
        .expect("a JSON body is UTF-8");
    client
        .post(url)
        .header("content-type", "application/json")
        .header(standardwebhooks::HEADER_WEBHOOK_ID, id)
        .header(
            standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
            timestamp.to_string(),
        )
        .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
        .body(body)
}

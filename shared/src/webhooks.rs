//! Events out as Standard Webhooks (standardwebhooks.com): each event is POSTed to
//! `OTP_WEBHOOK_URL` with `webhook-id` (the event's id, the same on every retry),
//! `webhook-timestamp` (the attempt's time) and `webhook-signature` (`v1,` and the base64
//! HMAC-SHA256 of `id.timestamp.body` under `OTP_WEBHOOK_SECRET`), signed by the
//! `standardwebhooks` crate. A delivery that fails (no answer, or not 2xx) is tried again on
//! [`RETRY_DELAYS`]; nothing waits for it, so events never slow or fail a send or a verify.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::events::{events_of, Event};
use crate::telemetry::error_chain;
use crate::verification::Change;

/// The waits before each retry: the first within seconds, then growing, for a day and more
/// (as Standard Webhooks senders commonly do). After the last, the event is given up (logged).
pub const RETRY_DELAYS: [Duration; 8] = [
    Duration::from_secs(5),
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

pub struct Webhooks {
    client: reqwest::Client,
    url: String,
    signer: standardwebhooks::Webhook,
}

/// Why one attempt did not deliver.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("the receiver answered {0}")]
    Refused(u16),
    #[error("the receiver could not be reached")]
    Unreachable(#[source] reqwest::Error),
}

impl Webhooks {
    /// The webhook of `url`, signing with `secret` (`whsec_...`, read already).
    pub fn new(url: &str, secret: &secrecy::SecretString) -> Result<Self, String> {
        let signer = crate::signed::signer(secret, "the webhook secret")?;
        let client = crate::tls::https_client(Duration::from_secs(2), Duration::from_secs(10))
            .map_err(|e| format!("cannot build the webhook client: {}", error_chain(&e)))?;
        Ok(Self {
            client,
            url: url.to_owned(),
            signer,
        })
    }

    /// One attempt at delivering `event`.
    pub async fn attempt(&self, event: &Event) -> Result<(), AttemptError> {
        self.attempt_raw(&event.id, event.body()).await
    }

    /// One attempt at delivering the event `id` whose body is `body`.
    pub async fn attempt_raw(&self, id: &str, body: String) -> Result<(), AttemptError> {
        let response = crate::signed::post(&self.client, &self.url, &self.signer, id, body)
            .send()
            .await
            .map_err(|e| AttemptError::Unreachable(e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(AttemptError::Refused(status.as_u16()))
        }
    }

    /// Delivers `event`, retrying on [`RETRY_DELAYS`]; whether it was delivered.
    pub async fn deliver(&self, event: &Event) -> bool {
        let mut delays = RETRY_DELAYS.iter();
        let mut attempt = 1;
        loop {
            let failed = match self.attempt(event).await {
                Ok(()) => {
                    tracing::info!(event = event.kind.as_str(), id = %event.id, attempt, "event delivered");
                    return true;
                }
                Err(error) => error,
            };
            let Some(delay) = delays.next() else {
                tracing::error!(
                    event = event.kind.as_str(), id = %event.id, attempt,
                    error = %error_chain(&failed), "event given up after its last retry"
                );
                return false;
            };
            tracing::warn!(
                event = event.kind.as_str(), id = %event.id, attempt,
                error = %error_chain(&failed), retry_in_s = delay.as_secs(),
                "event not delivered; retrying"
            );
            tokio::time::sleep(*delay).await;
            attempt += 1;
        }
    }
}

/// Delivers the events of every change the embedded store reports, each on its own task (a
/// slow receiver holds up nothing), for as long as the process runs. Events waiting for a retry
/// are lost when it stops.
pub fn deliver_in_process(mut changes: UnboundedReceiver<Change>, webhooks: Arc<Webhooks>) {
    tokio::spawn(async move {
        while let Some((old, new)) = changes.recv().await {
            for event in events_of(old.as_ref(), &new) {
                let webhooks = webhooks.clone();
                tokio::spawn(async move { webhooks.deliver(&event).await });
            }
        }
    });
}

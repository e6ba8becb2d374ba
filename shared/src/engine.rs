//! Send and verify: the rules of the service, independent of HTTP, Lambda and storage.

use std::sync::Arc;

use crate::clock::Clock;
use crate::code::{CodeHasher, OneTimeCode};
use crate::domain::{Channel, Destination, Passcode};
use crate::mask;
use crate::sender::{DeliveryError, Message, Senders};
use crate::settings::Policy;
use crate::store::{GuessOutcome, OtpRecord, OtpStore, PutOutcome, RecordKey, StoreError};
use crate::telemetry::error_chain;

#[derive(Debug)]
pub struct SendRequest {
    pub key: RecordKey,
    pub destination: Destination,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Sent {
    pub channel: Channel,
    pub expires_in: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("a code was sent {0} seconds too recently")]
    CoolingDown(u64),
    #[error("no sender is configured for {}", .0.as_str())]
    ChannelUnavailable(Channel),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, PartialEq, Eq)]
pub enum VerifyOutcome {
    Verified,
    WrongCode {
        attempts_remaining: u32,
    },
    /// Never sent, already used, or replaced by a newer code.
    NotFound,
    Expired,
    TooManyAttempts,
}

pub struct Engine {
    parts: EngineParts,
}

/// What an engine is made of; [`crate::startup`] assembles it from the settings.
pub struct EngineParts {
    pub store: Arc<dyn OtpStore>,
    pub senders: Senders,
    pub hasher: CodeHasher,
    pub policy: Policy,
    pub brand: Option<String>,
    pub clock: Arc<dyn Clock>,
}

impl Engine {
    pub fn new(parts: EngineParts) -> Self {
        Self { parts }
    }

    /// `store: ...; delivery: ...`, for the start-up line.
    pub fn describe(&self) -> String {
        format!(
            "store: {}; delivery: {}",
            self.parts.store.describe(),
            self.parts.senders.describe()
        )
    }

    pub fn policy(&self) -> &Policy {
        &self.parts.policy
    }

    pub fn senders(&self) -> &Senders {
        &self.parts.senders
    }

    /// Stores a fresh code (replacing any previous one) and delivers it. If delivery fails, the
    /// code just stored is removed again, so the user keeps no half-sent code and no cooldown.
    pub async fn send(&self, request: SendRequest) -> Result<Sent, SendError> {
        let SendRequest { key, destination } = request;
        let channel = destination.channel();
        // Checked before anything is written: a channel we cannot serve must not cost a cooldown.
        let Some(sender) = self.parts.senders.for_channel(channel) else {
            tracing::warn!(
                channel = channel.as_str(),
                "send refused: no sender configured"
            );
            return Err(SendError::ChannelUnavailable(channel));
        };

        let code = OneTimeCode::generate(self.parts.policy.code_length);
        let code_hash = self
            .parts
            .hasher
            .hash_code(&key.purpose, &key.user_id, &code);
        let now = self.parts.clock.now();
        let record = OtpRecord {
            code_hash: code_hash.clone(),
            channel,
            sent_at: now,
            expires_at: now + self.parts.policy.ttl_secs,
            attempts: 0,
            last_guess: None,
        };
        let user = mask::user_id(key.user_id.as_str());
        let purpose = key.purpose.as_str();
        let stored = self
            .parts
            .store
            .put_unless_cooling_down(&key, &record, now, self.parts.policy.cooldown_secs)
            .await
            .inspect_err(log_store_error)?;
        match stored {
            PutOutcome::Stored => {}
            PutOutcome::CoolingDown { retry_after } => {
                tracing::info!(%user, purpose, retry_after, "send refused: cooldown");
                return Err(SendError::CoolingDown(retry_after));
            }
        }

        let message = Message {
            destination,
            code,
            ttl_secs: self.parts.policy.ttl_secs,
            brand: self.parts.brand.clone(),
        };
        let to = message.destination.masked();
        match sender.send(&message).await {
            Ok(()) => {
                tracing::info!(%user, purpose, channel = channel.as_str(), %to, "code sent");
                Ok(Sent {
                    channel,
                    expires_in: self.parts.policy.ttl_secs,
                })
            }
            Err(error) => {
                tracing::warn!(
                    %user, purpose, channel = channel.as_str(), %to,
                    error = %error_chain(&error), "delivery failed; removing the stored code"
                );
                if let Err(store_error) = self.parts.store.delete_if_holds(&key, &code_hash).await {
                    // The undelivered code stays until it expires; nobody knows it, so it grants
                    // nothing, but the user must wait out the cooldown. Loud, because rare.
                    tracing::error!(
                        %user, purpose, error = %error_chain(&store_error),
                        "could not remove an undelivered code"
                    );
                }
                Err(SendError::Delivery(error))
            }
        }
    }

    /// Checks a guess. The attempt is reserved and the guess recorded in one atomic store step
    /// *before* the outcome is known, so concurrent guesses can never exceed the cap and the
    /// right code can succeed only once.
    pub async fn verify(
        &self,
        key: &RecordKey,
        passcode: &Passcode,
    ) -> Result<VerifyOutcome, StoreError> {
        let guesses = self
            .parts
            .hasher
            .guess_hashes(&key.purpose, &key.user_id, passcode);
        let now = self.parts.clock.now();
        let max = self.parts.policy.max_attempts;
        let recorded = self
            .parts
            .store
            .record_guess(key, &guesses, now, max)
            .await
            .inspect_err(log_store_error)?;
        let outcome = match recorded {
            GuessOutcome::Recorded(after) if after.is_consumed() => VerifyOutcome::Verified,
            GuessOutcome::Recorded(after) => VerifyOutcome::WrongCode {
                attempts_remaining: max.saturating_sub(after.attempts),
            },
            GuessOutcome::Refused(None) => VerifyOutcome::NotFound,
            GuessOutcome::Refused(Some(before)) if before.is_consumed() => VerifyOutcome::NotFound,
            GuessOutcome::Refused(Some(before)) if before.is_expired(now) => VerifyOutcome::Expired,
            GuessOutcome::Refused(Some(_)) => VerifyOutcome::TooManyAttempts,
        };
        let user = mask::user_id(key.user_id.as_str());
        let purpose = key.purpose.as_str();
        match &outcome {
            VerifyOutcome::Verified => tracing::info!(%user, purpose, "code verified"),
            VerifyOutcome::TooManyAttempts => {
                tracing::warn!(%user, purpose, "verify refused: attempts exhausted")
            }
            other => tracing::debug!(%user, purpose, outcome = ?other, "verify refused"),
        }
        Ok(outcome)
    }
}

fn log_store_error(error: &StoreError) {
    tracing::error!(error = %error_chain(error), "store unavailable");
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

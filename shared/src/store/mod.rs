//! Where OTP records live. Each method is one atomic, conditional operation, so that DynamoDB can
//! do it as ONE request and concurrent callers can never get extra guesses or two successes.

mod dynamodb;
mod memory;

pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;

use async_trait::async_trait;

use crate::code::{CodeHash, Guesses};
use crate::domain::{Channel, Purpose, UserId};

/// Identifies one pending code: a user's code for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordKey {
    pub purpose: Purpose,
    pub user_id: UserId,
}

impl RecordKey {
    pub fn new(purpose: Purpose, user_id: UserId) -> Self {
        Self { purpose, user_id }
    }
}

/// What is stored for a pending code. No destination: after delivery it is not needed.
#[derive(Debug, Clone)]
pub struct OtpRecord {
    pub code_hash: CodeHash,
    pub channel: Channel,
    /// Epoch seconds of the send; the resend cooldown counts from here.
    pub sent_at: u64,
    /// Epoch seconds after which the code is dead, whether or not the store has deleted it yet.
    pub expires_at: u64,
    /// Guesses made so far, right or wrong.
    pub attempts: u32,
    /// The latest guess, hashed under each code key. It matches `code_hash` exactly when the
    /// code has been used.
    pub last_guess: Option<Guesses>,
}

impl OtpRecord {
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    pub fn is_consumed(&self) -> bool {
        self.last_guess
            .as_ref()
            .is_some_and(|guess| guess.matches(&self.code_hash))
    }

    /// Seconds until a new code may replace this one; `None` when it may be replaced now.
    /// An expired or used code never blocks a new send.
    pub fn cooldown_left(&self, now: u64, cooldown_secs: u64) -> Option<u64> {
        if self.is_expired(now) || self.is_consumed() {
            return None;
        }
        let ready_at = self.sent_at.saturating_add(cooldown_secs);
        (now < ready_at).then(|| ready_at - now)
    }

    /// Whether one more guess may be taken: present, unexpired, unused, attempts left.
    pub fn accepts_guess(&self, now: u64, max_attempts: u32) -> bool {
        !self.is_expired(now) && !self.is_consumed() && self.attempts < max_attempts
    }
}

#[derive(Debug)]
pub enum PutOutcome {
    Stored,
    /// The previous code is inside its resend cooldown and was left in place.
    CoolingDown {
        retry_after: u64,
    },
}

#[derive(Debug)]
pub enum GuessOutcome {
    /// The attempt was counted and the guess recorded; this is the record afterwards.
    Recorded(OtpRecord),
    /// No guess may be taken; this is the record as it was (or `None` when there is none).
    Refused(Option<OtpRecord>),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the OTP store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("a stored OTP record is malformed: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait OtpStore: Send + Sync {
    /// Stores `record` under `key`, replacing any previous code, unless the previous code is
    /// inside its cooldown (see [`OtpRecord::cooldown_left`]). The refusal reports the seconds
    /// left, taken from the old record.
    async fn put_unless_cooling_down(
        &self,
        key: &RecordKey,
        record: &OtpRecord,
        now: u64,
        cooldown_secs: u64,
    ) -> Result<PutOutcome, StoreError>;

    /// Deletes the record only if it still holds `code_hash`: a failed delivery removes its own
    /// code and never a newer one written in between. Returns whether something was deleted.
    async fn delete_if_holds(
        &self,
        key: &RecordKey,
        code_hash: &CodeHash,
    ) -> Result<bool, StoreError>;

    /// What the store is, for the start-up line.
    fn describe(&self) -> String;

    /// Reserves one attempt and records `guess` in the same step, if the record accepts a guess
    /// (see [`OtpRecord::accepts_guess`]). The caller decides the outcome from what comes back.
    async fn record_guess(
        &self,
        key: &RecordKey,
        guess: &Guesses,
        now: u64,
        max_attempts: u32,
    ) -> Result<GuessOutcome, StoreError>;
}

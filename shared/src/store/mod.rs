//! Where OTP records live. Each method is one atomic, conditional operation, so that DynamoDB can
//! do it as ONE request and concurrent callers can never get extra guesses or two successes.

mod dynamodb;
mod memory;

pub use dynamodb::DynamoStore;
pub use memory::MemoryStore;

use async_trait::async_trait;

use crate::code::{CodeHash, Guesses};
use crate::domain::Channel;
use crate::limits::{Charge, LimitName};
use crate::settings::Policy;

pub use crate::domain::RecordKey;

/// What is stored for a code and its user: the code (as a keyed hash), where it went (a keyed
/// hash and a masked form), its attempts, and the user's recent wrong guesses across codes.
#[derive(Debug, Clone)]
pub struct OtpRecord {
    pub code_hash: CodeHash,
    pub channel: Channel,
    /// Keyed hash of the destination ([`crate::code::CodeHasher::destination_hash`]).
    pub destination_hash: CodeHash,
    /// The destination masked (`+1******2671`, `a***@example.com`), to tell the caller what a
    /// verification proved.
    pub sent_to: String,
    /// The country calling code of an SMS destination (`44`), for per-country conversion
    /// figures; `None` for email. Not personal data: a country, not a number.
    pub sent_country: Option<u16>,
    /// Epoch seconds of the send; the resend cooldown counts from here.
    pub sent_at: u64,
    /// Epoch seconds after which the code is dead, whether or not the store has deleted it yet.
    pub expires_at: u64,
    /// Guesses made at this code so far, right or wrong.
    pub attempts: u32,
    /// The latest guess, hashed under each code key. It matches `code_hash` exactly when the
    /// code has been used.
    pub last_guess: Option<Guesses>,
    /// Times of the user's wrong guesses since their last success, newest first, at most
    /// `lockout_failures` of them. A resend keeps them; a right guess clears them. `None` for a
    /// record written before lockout existed: it cannot take a guess (request a new code).
    pub failures: Option<Vec<u64>>,
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

    /// Seconds until a new code may replace this one; `None` when it may be replaced now. Only
    /// a used code frees the cooldown early: expiry does not, so a cooldown longer than the
    /// code's lifetime is kept as configured.
    pub fn cooldown_left(&self, now: u64, cooldown_secs: u64) -> Option<u64> {
        if self.is_consumed() {
            return None;
        }
        let ready_at = self.sent_at.saturating_add(cooldown_secs);
        (now < ready_at).then(|| ready_at - now)
    }

    /// Seconds until the user is no longer locked out; `None` when not locked. Locked while
    /// `lockout_failures` wrong guesses all lie within the window: until the oldest of the
    /// latest `lockout_failures` is `lockout_window_secs` old.
    pub fn locked_for(&self, now: u64, policy: &Policy) -> Option<u64> {
        locked_for(self.failures.as_deref()?, now, policy)
    }

    /// Wrong guesses left before the lockout, counting only those inside the window.
    pub fn failures_left(&self, now: u64, policy: &Policy) -> u32 {
        let recent = self.failures.as_ref().map_or(0, |times| {
            times
                .iter()
                .filter(|&&t| t.saturating_add(policy.lockout_window_secs) > now)
                .count()
        });
        policy
            .lockout_failures
            .saturating_sub(u32::try_from(recent).unwrap_or(u32::MAX))
    }

    /// Whether the code went to the destination with this hash.
    pub fn was_sent_to(&self, destination: &CodeHash) -> bool {
        self.destination_hash.ct_eq(destination)
    }

    /// Whether one more guess may be taken: a current record, unexpired, unused, attempts left,
    /// the user not locked out, and (when the caller names one) sent to that destination.
    pub fn accepts_guess(&self, now: u64, policy: &Policy, destination: Option<&CodeHash>) -> bool {
        self.failures.is_some()
            && !self.is_expired(now)
            && !self.is_consumed()
            && self.attempts < policy.max_attempts
            && self.locked_for(now, policy).is_none()
            && destination.is_none_or(|d| self.was_sent_to(d))
    }

    /// The failure list after a guess was recorded: cleared by a right guess, else `now` in
    /// front, trimmed to what the lockout looks at.
    pub fn failures_after_guess(&self, now: u64, policy: &Policy) -> Vec<u64> {
        if self.is_consumed() {
            return Vec::new();
        }
        let mut times = vec![now];
        times.extend(self.failures.iter().flatten().copied());
        times.truncate(policy.lockout_failures as usize);
        times
    }
}

/// Seconds of lockout left for these failure times (newest first); `None` when not locked.
pub(crate) fn locked_for(failures: &[u64], now: u64, policy: &Policy) -> Option<u64> {
    let oldest_counted = (policy.lockout_failures as usize).saturating_sub(1);
    let until = failures
        .get(oldest_counted)?
        .saturating_add(policy.lockout_window_secs);
    (now < until).then(|| until - now)
}

/// A new code to store, with what the store needs to recognise a right guess by lookup.
#[derive(Debug)]
pub struct NewCode {
    /// `failures` is ignored: a send keeps the user's failures as they are.
    pub record: OtpRecord,
    /// The code under every code key ([`crate::code::CodeHasher::code_markers`]).
    pub markers: Guesses,
}

#[derive(Debug)]
pub enum PutOutcome {
    Stored,
    /// The previous code is inside its resend cooldown and was left in place.
    CoolingDown {
        retry_after: u64,
    },
    /// The user is locked out; nothing was written.
    Locked {
        retry_after: u64,
    },
    /// A send limit is full (the first full one of the charges); nothing was written.
    Limited {
        limit: LimitName,
        retry_after: u64,
    },
}

/// The first charge whose counter is full, as a refusal.
pub(crate) fn limited(charge: &Charge, now: u64) -> PutOutcome {
    PutOutcome::Limited {
        limit: charge.limit,
        retry_after: charge.resets_at.saturating_sub(now).max(1),
    }
}

/// One guess at a user's code.
#[derive(Debug)]
pub struct GuessAttempt<'a> {
    /// The guess under every code key.
    pub guesses: &'a Guesses,
    /// When set, the guess is only taken if the code went to this destination.
    pub destination: Option<&'a CodeHash>,
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
    /// Stores a new code under `key`, replacing any previous code but keeping the user's
    /// failures, and adds one to every counter in `charges`, all or nothing: refused when the
    /// previous code is inside its cooldown (see [`OtpRecord::cooldown_left`]), the user is
    /// locked out (see [`OtpRecord::locked_for`]) or a counter already holds its cap. A refusal
    /// reports the seconds left: from the old record, or to the end of the full counter's
    /// window. The lockout is named first, then the cooldown, then the first full counter.
    async fn put_unless_blocked(
        &self,
        key: &RecordKey,
        code: &NewCode,
        now: u64,
        policy: &Policy,
        charges: &[Charge],
    ) -> Result<PutOutcome, StoreError>;

    /// Removes the code (and so its cooldown) only if the record still holds `code_hash`: a
    /// failed delivery withdraws its own code and never a newer one written in between. The
    /// user's failures stay, so failed deliveries cannot reset a lockout. When it withdraws, it
    /// takes one back from each counter in `refunds` in the same step. Returns whether it
    /// withdrew something.
    async fn withdraw_if_holds(
        &self,
        key: &RecordKey,
        code_hash: &CodeHash,
        refunds: &[Charge],
    ) -> Result<bool, StoreError>;

    /// Adds one to the counter of `charge` alone, unless it already holds its cap; whether it
    /// did. The public send route charges its caller's own limit this way when the send itself
    /// was refused for something about the address, so that every request costs the caller the
    /// same whatever the address (see `Engine::send`).
    async fn charge_alone(&self, charge: &Charge, now: u64) -> Result<bool, StoreError>;

    /// What the store is, for the start-up line.
    fn describe(&self) -> String;

    /// Reserves one attempt, records the guess and updates the user's failures in the same
    /// step, if the record accepts the guess (see [`OtpRecord::accepts_guess`]). The caller
    /// decides the outcome from what comes back.
    async fn record_guess(
        &self,
        key: &RecordKey,
        guess: &GuessAttempt<'_>,
        now: u64,
        policy: &Policy,
    ) -> Result<GuessOutcome, StoreError>;
}

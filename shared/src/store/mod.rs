//! Where OTP records live. Each method is one atomic, conditional operation, so that DynamoDB can
//! do it as ONE request and concurrent callers can never get extra guesses or two successes.

mod dynamodb;
mod memory;

pub use dynamodb::{record_endings, stream_ticks, verification_change, DynamoStore, Ending};
pub use memory::MemoryStore;

use async_trait::async_trait;

use crate::code::{CodeHash, Guesses};
use crate::domain::Channel;
use crate::limits::{Charge, LimitName};
use crate::settings::Policy;
use crate::verification::{Cancel, Receipt, ReceiptOutcome, Status, Verification, VerificationId};

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
    /// The 1,000-number block of an SMS-class destination (a keyed pseudonym and a coarse hint),
    /// for the fraud guard's counting; `None` for email.
    pub sent_block: Option<crate::fraud::Block>,
    /// The verification this code belongs to (`None` for a record written before ids).
    pub verification_id: Option<crate::verification::VerificationId>,
    /// Epoch seconds of the send; the resend cooldown counts from here.
    pub sent_at: u64,
    /// Epoch seconds after which the code is dead, whether or not the store has deleted it yet.
    pub expires_at: u64,
    /// Guesses made at this code so far, right or wrong.
    pub attempts: u32,
    /// The latest guess, hashed under each code key. It matches `code_hash` exactly when the
    /// code has been used.
    pub last_guess: Option<Guesses>,
    /// The user's wrong guesses as the lockout sees them from the network asking (see
    /// [`Lockout`]). A resend keeps them; a right guess starts the account's count over. `None`
    /// for a record written before this lockout existed: it cannot take a guess (request a new
    /// code).
    pub lockout: Option<Lockout>,
}

/// The two counts a lockout is decided by, read for one client network:
///
/// - **this network's** wrong guesses at the account in the current lockout window (windows
///   are fixed, aligned to the epoch): `lockout_failures` of them lock the account *for this
///   network* until the window ends. A right guess from the network takes `lockout_failures`
///   off its tally, so the network starts over.
/// - **every network's** consecutive wrong guesses since the account's last right guess:
///   `lockout_ceiling` of them (at most 100, NIST SP 800-63B 5.2.2) lock the account for
///   everyone until a window has passed since the latest; each wrong guess after that locks it
///   for another window.
///
/// So an attacker on one network locks nothing for a user on another, and guessing spread over
/// many networks still stops at the ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lockout {
    /// Consecutive wrong guesses at the account since its last right guess, from any network.
    pub account_failures: i64,
    /// When the latest guess was made, right or wrong (0: never).
    pub latest_guess_at: u64,
    /// This network's tally in the current window (negative after a right guess from it).
    pub network_failures: i64,
}

impl Lockout {
    /// Seconds until the network asking may guess (or be sent a code) again; `None` when it
    /// may now.
    pub fn locked_for(&self, now: u64, policy: &Policy) -> Option<u64> {
        let network = (self.network_failures >= i64::from(policy.lockout_failures))
            .then(|| window_start(now, policy) + policy.lockout_window_secs - now);
        let account_until = self
            .latest_guess_at
            .saturating_add(policy.lockout_window_secs);
        let account = (self.account_failures >= i64::from(policy.lockout_ceiling)
            && now < account_until)
            .then(|| account_until - now);
        network.max(account)
    }

    /// Wrong guesses left before the lockout: the fewer of this network's and the account's.
    pub fn failures_left(&self, policy: &Policy) -> u32 {
        let left = |cap: u32, used: i64| {
            u32::try_from((i64::from(cap) - used).clamp(0, i64::from(cap))).unwrap_or(0)
        };
        left(policy.lockout_failures, self.network_failures)
            .min(left(policy.lockout_ceiling, self.account_failures))
    }

    /// The counts after one more guess from this network: a right guess starts the account
    /// over and gives the network a fresh allowance.
    pub fn after_guess(&self, right: bool, now: u64, policy: &Policy) -> Self {
        if right {
            Self {
                account_failures: 0,
                latest_guess_at: now,
                network_failures: self.network_failures - i64::from(policy.lockout_failures),
            }
        } else {
            Self {
                account_failures: self.account_failures + 1,
                latest_guess_at: now,
                network_failures: self.network_failures + 1,
            }
        }
    }
}

/// The start of the lockout window `now` falls in.
pub fn window_start(now: u64, policy: &Policy) -> u64 {
    let window = policy.lockout_window_secs.max(1);
    now - now % window
}

/// A client network as the lockout and the destination limits count it: a keyed pseudonym of
/// its address (see [`crate::limits::ClientIp::counted_as`]), or [`Network::unknown`] when the
/// caller reported none (all such requests share one tally, the behaviour of a lockout per
/// account).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Network(String);

impl Network {
    pub fn pseudonymous(pseudonym: String) -> Self {
        Self(pseudonym)
    }

    pub fn unknown() -> Self {
        Self("-".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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

    /// Seconds until the network that asked is no longer locked out; `None` when not locked.
    pub fn locked_for(&self, now: u64, policy: &Policy) -> Option<u64> {
        self.lockout?.locked_for(now, policy)
    }

    /// Wrong guesses left before the lockout, for the network that asked.
    pub fn failures_left(&self, policy: &Policy) -> u32 {
        self.lockout
            .map_or(policy.lockout_failures, |l| l.failures_left(policy))
    }

    /// Whether the code went to the destination with this hash.
    pub fn was_sent_to(&self, destination: &CodeHash) -> bool {
        self.destination_hash.ct_eq(destination)
    }

    /// Whether one more guess may be taken: a current record, unexpired, unused, attempts left,
    /// the user not locked out, and (when the caller names one) sent to that destination.
    pub fn accepts_guess(&self, now: u64, policy: &Policy, destination: Option<&CodeHash>) -> bool {
        self.lockout.is_some()
            && !self.is_expired(now)
            && !self.is_consumed()
            && self.attempts < policy.max_attempts
            && self.locked_for(now, policy).is_none()
            && destination.is_none_or(|d| self.was_sent_to(d))
    }
}

/// How a record's own code ended, as the record shows it: used, out of attempts or expired
/// (`None` while it is live).
pub fn ended_by(record: &OtpRecord, max_attempts: u32, now: u64) -> Option<Status> {
    if record.is_consumed() {
        Some(Status::Approved)
    } else if record.attempts >= max_attempts {
        Some(Status::MaxAttemptsReached)
    } else if record.is_expired(now) {
        Some(Status::Expired)
    } else {
        None
    }
}

/// A verification's status at `now`, from what was written down of it and from `record`, the
/// current record of its user and purpose. `None` when it never became a verification anyone
/// holds (its code was withdrawn after a failed delivery, so `/send-code` handed out no id).
pub fn status_of(
    verification: &Verification,
    record: Option<&OtpRecord>,
    now: u64,
) -> Option<Status> {
    if let Some((status, _)) = verification.ended {
        return Some(status);
    }
    let ours = |r: &&OtpRecord| r.verification_id.as_ref() == Some(&verification.id);
    if let Some(current) = record.filter(ours) {
        return Some(ended_by(current, verification.max_attempts, now).unwrap_or(Status::Pending));
    }
    match record {
        // Replaced by a newer code before this one expired.
        Some(newer) if newer.sent_at < verification.expires_at => Some(Status::Superseded),
        // No code at all before its expiry: withdrawn, never handed out.
        None if now < verification.expires_at => None,
        // A record is only deleted after its code expired.
        _ => Some(Status::Expired),
    }
}

/// The record key of a verification's code.
pub(crate) fn verification_key(verification: &Verification) -> Result<RecordKey, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("a verification's {what}"));
    Ok(RecordKey::new(
        verification.space,
        crate::domain::Purpose::parse(&verification.purpose).map_err(|_| corrupt("purpose"))?,
        crate::domain::UserId::parse(&verification.user_id).map_err(|_| corrupt("user id"))?,
    ))
}

/// A new code to store, with what the store needs to recognise a right guess by lookup.
#[derive(Debug)]
pub struct NewCode {
    /// `lockout` is ignored: a send keeps the user's failures as they are.
    pub record: OtpRecord,
    /// The network asking for the code: a network locked out of the account is not sent one.
    pub network: Network,
    /// The code under every code key ([`crate::code::CodeHasher::code_markers`]).
    pub markers: Guesses,
    /// The fraud guard's breakers this send is refused by while one is open (none when the
    /// guard does not check this send).
    pub checks: Vec<crate::fraud::Check>,
    /// The verification the send starts, stored with the code.
    pub verification: crate::verification::Verification,
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
    /// The fraud guard's breaker of this prefix is open; nothing was written.
    FraudSuspected {
        prefix: crate::fraud::Prefix,
    },
    /// A shard of a shared counter was being written by another send's transaction (a
    /// `TransactionConflict` on it); nothing was written. The caller may charge another shard.
    Busy {
        limit: LimitName,
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
    /// The network the guess comes from, whose tally it is counted in.
    pub network: &'a Network,
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
    /// locked out (see [`OtpRecord::locked_for`]), a breaker in `code.checks` is open, or a
    /// counter already holds its cap. A refusal reports the seconds left: from the old record,
    /// or to the end of the full counter's window. The lockout is named first, then the
    /// cooldown, then the first open breaker, then the first full counter.
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

    /// A verification and the current record of its user and purpose (read consistently, the
    /// verification first), or `None` for an id the store does not have.
    async fn verification(
        &self,
        id: &VerificationId,
    ) -> Result<Option<(Verification, Option<OtpRecord>)>, StoreError>;

    /// Cancels `verification` if its code is still pending: the code is removed (so it never
    /// verifies, and a new one may be sent at once) and the verification marked canceled, both
    /// or neither. Otherwise changes nothing and says how it ended.
    async fn cancel(&self, verification: &Verification, now: u64) -> Result<Cancel, StoreError>;

    /// Records a delivery receipt on the verification `id`, unless it already has this answer
    /// or a final one. One write.
    async fn record_delivery(
        &self,
        id: &VerificationId,
        receipt: &Receipt,
    ) -> Result<ReceiptOutcome, StoreError>;

    /// Keeps the provider's id of the verification's message (what the send hook answered).
    /// One write.
    async fn keep_message_id(
        &self,
        id: &VerificationId,
        message_id: &str,
    ) -> Result<(), StoreError>;
}

/// The fraud guard's part of a store: its tallies and breakers (see [`crate::fraud`]).
#[async_trait]
pub trait FraudLedger: Send + Sync {
    /// The tallies of `prefixes`.
    #[cfg(feature = "counting")]
    async fn load_tallies(
        &self,
        prefixes: &[crate::fraud::Prefix],
    ) -> Result<Vec<crate::fraud::Versioned>, StoreError>;

    /// Writes the tallies and marks the stream records `events` counted, all or nothing.
    #[cfg(feature = "counting")]
    async fn commit(
        &self,
        events: &[String],
        tallies: &[crate::fraud::TallyWrite<'_>],
        now: u64,
    ) -> Result<crate::fraud::Commit, StoreError>;

    /// Writes the breaker's check items (held until `breaker.until`) and lists it.
    async fn hold(&self, breaker: &crate::fraud::OpenBreaker) -> Result<(), StoreError>;

    /// Pushes out an open breaker's hold to `until` (refused sends keep coming).
    async fn extend(&self, prefix: &crate::fraud::Prefix, until: u64) -> Result<(), StoreError>;

    /// The breakers listed, open or lately expired.
    async fn breakers(&self) -> Result<Vec<crate::fraud::OpenBreaker>, StoreError>;

    /// Closes a breaker by hand: removes its check items and listing and starts its tally
    /// over. Whether it was listed.
    async fn close(&self, prefix: &crate::fraud::Prefix) -> Result<bool, StoreError>;
}

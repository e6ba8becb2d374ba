//! The embedded store of the local server and of tests. Same semantics as the DynamoDB store:
//! each operation happens under one lock, which plays the part of a conditional write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    GuessAttempt, GuessOutcome, NewCode, OtpRecord, OtpStore, PutOutcome, RecordKey, StoreError,
};
use crate::code::CodeHash;
use crate::settings::Policy;

/// Stale entries are dropped lazily; every this many writes the whole map is swept too, so a
/// long-running local server does not grow without bound.
const SWEEP_EVERY_WRITES: u64 = 1024;

/// What one key holds: the current code, if any, and the user's failures, which outlive codes.
#[derive(Debug, Clone, Default)]
struct Slot {
    code: Option<OtpRecord>,
    failures: Vec<u64>,
    /// Like the DynamoDB item's TTL: after this nothing in the slot matters.
    keep_until: u64,
}

impl Slot {
    fn record(&self) -> Option<OtpRecord> {
        self.code.clone().map(|mut record| {
            record.failures = Some(self.failures.clone());
            record
        })
    }
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    slots: Mutex<HashMap<RecordKey, Slot>>,
    writes: AtomicU64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RecordKey, Slot>> {
        // A panic while holding the lock cannot leave a slot half-updated (every update is a
        // single assignment), so a poisoned lock is safe to keep using.
        self.slots
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The stored record, expired or not, as DynamoDB would return it before TTL deletion.
    pub fn get(&self, key: &RecordKey) -> Option<OtpRecord> {
        self.lock().get(key).and_then(Slot::record)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl OtpStore for MemoryStore {
    async fn put_unless_blocked(
        &self,
        key: &RecordKey,
        code: &NewCode,
        now: u64,
        policy: &Policy,
    ) -> Result<PutOutcome, StoreError> {
        let mut slots = self.lock();
        let slot = slots.entry(key.clone()).or_default();
        if slot.keep_until <= now {
            *slot = Slot::default();
        }
        if let Some(retry_after) = super::locked_for(&slot.failures, now, policy) {
            return Ok(PutOutcome::Locked { retry_after });
        }
        if let Some(retry_after) = slot
            .code
            .as_ref()
            .and_then(|old| old.cooldown_left(now, policy.cooldown_secs))
        {
            return Ok(PutOutcome::CoolingDown { retry_after });
        }
        slot.code = Some(OtpRecord {
            failures: None,
            ..code.record.clone()
        });
        slot.keep_until = now + policy.keep_record_secs();
        if self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY_WRITES
            == SWEEP_EVERY_WRITES - 1
        {
            slots.retain(|_, slot| slot.keep_until > now);
        }
        Ok(PutOutcome::Stored)
    }

    async fn withdraw_if_holds(
        &self,
        key: &RecordKey,
        code_hash: &CodeHash,
    ) -> Result<bool, StoreError> {
        let mut slots = self.lock();
        let Some(slot) = slots.get_mut(key) else {
            return Ok(false);
        };
        let holds = slot
            .code
            .as_ref()
            .is_some_and(|r| r.code_hash.ct_eq(code_hash));
        if holds {
            slot.code = None;
        }
        Ok(holds)
    }

    fn describe(&self) -> String {
        "in-memory (embedded)".to_owned()
    }

    async fn record_guess(
        &self,
        key: &RecordKey,
        guess: &GuessAttempt<'_>,
        now: u64,
        policy: &Policy,
    ) -> Result<GuessOutcome, StoreError> {
        let mut slots = self.lock();
        let Some(slot) = slots.get_mut(key).filter(|s| s.keep_until > now) else {
            return Ok(GuessOutcome::Refused(None));
        };
        let Some(before) = slot.record() else {
            return Ok(GuessOutcome::Refused(None));
        };
        if !before.accepts_guess(now, policy, guess.destination) {
            return Ok(GuessOutcome::Refused(Some(before)));
        }
        let mut after = before;
        after.attempts += 1;
        after.last_guess = Some(guess.guesses.clone());
        slot.failures = after.failures_after_guess(now, policy);
        slot.keep_until = now + policy.keep_record_secs();
        if let Some(code) = &mut slot.code {
            code.attempts = after.attempts;
            code.last_guess = after.last_guess.clone();
        }
        after.failures = Some(slot.failures.clone());
        Ok(GuessOutcome::Recorded(after))
    }
}

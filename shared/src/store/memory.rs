//! The embedded store of the local server and of tests. Same semantics as the DynamoDB store:
//! each operation happens under one lock, which plays the part of a conditional write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{GuessOutcome, OtpRecord, OtpStore, PutOutcome, RecordKey, StoreError};
use crate::code::{CodeHash, Guesses};

/// Expired records are dropped lazily; every this many writes the whole map is swept too, so a
/// long-running local server does not grow without bound.
const SWEEP_EVERY_WRITES: u64 = 1024;

#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<RecordKey, OtpRecord>>,
    writes: AtomicU64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RecordKey, OtpRecord>> {
        // A panic while holding the lock cannot leave a record half-updated (every update is a
        // single assignment), so a poisoned lock is safe to keep using.
        self.records
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The stored record, expired or not, as DynamoDB would return it before TTL deletion.
    pub fn get(&self, key: &RecordKey) -> Option<OtpRecord> {
        self.lock().get(key).cloned()
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
    async fn put_unless_cooling_down(
        &self,
        key: &RecordKey,
        record: &OtpRecord,
        now: u64,
        cooldown_secs: u64,
    ) -> Result<PutOutcome, StoreError> {
        let mut records = self.lock();
        if let Some(retry_after) = records
            .get(key)
            .and_then(|old| old.cooldown_left(now, cooldown_secs))
        {
            return Ok(PutOutcome::CoolingDown { retry_after });
        }
        records.insert(key.clone(), record.clone());
        if self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY_WRITES
            == SWEEP_EVERY_WRITES - 1
        {
            records.retain(|_, r| !r.is_expired(now));
        }
        Ok(PutOutcome::Stored)
    }

    async fn delete_if_holds(
        &self,
        key: &RecordKey,
        code_hash: &CodeHash,
    ) -> Result<bool, StoreError> {
        let mut records = self.lock();
        let holds = records
            .get(key)
            .is_some_and(|r| r.code_hash.ct_eq(code_hash));
        if holds {
            records.remove(key);
        }
        Ok(holds)
    }

    fn describe(&self) -> String {
        "in-memory (embedded)".to_owned()
    }

    async fn record_guess(
        &self,
        key: &RecordKey,
        guess: &Guesses,
        now: u64,
        max_attempts: u32,
    ) -> Result<GuessOutcome, StoreError> {
        let mut records = self.lock();
        let Some(record) = records.get_mut(key) else {
            return Ok(GuessOutcome::Refused(None));
        };
        if !record.accepts_guess(now, max_attempts) {
            return Ok(GuessOutcome::Refused(Some(record.clone())));
        }
        record.attempts += 1;
        record.last_guess = Some(guess.clone());
        Ok(GuessOutcome::Recorded(record.clone()))
    }
}

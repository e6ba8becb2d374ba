//! The embedded store of the local server and of tests. Same semantics as the DynamoDB store:
//! each operation happens under one lock, which plays the part of a conditional write.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::FraudLedger;
use super::{
    window_start, GuessAttempt, GuessOutcome, Lockout, Network, NewCode, OtpRecord, OtpStore,
    PutOutcome, RecordKey, StoreError,
};
use crate::code::CodeHash;
use crate::domain::Space;
#[cfg(feature = "counting")]
use crate::fraud::{Commit, TallyWrite, Versioned};
use crate::fraud::{OpenBreaker, Prefix, Tally};
use crate::limits::Charge;
use crate::settings::Policy;
use crate::verification::{
    Cancel, Change, Delivery, Receipt, ReceiptOutcome, Status, Verification, VerificationId,
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// Stale entries are dropped lazily; every this many writes the whole map is swept too, so a
/// long-running local server does not grow without bound.
const SWEEP_EVERY_WRITES: u64 = 1024;

/// What one key holds: the current code, if any, and the user's failures, which outlive codes.
#[derive(Debug, Clone, Default)]
struct Slot {
    code: Option<OtpRecord>,
    /// Consecutive wrong guesses since the last right one, and when the latest guess was made.
    account_failures: i64,
    latest_guess_at: u64,
    /// Each network's tally, in the window it was made in.
    networks: HashMap<Network, (u64, i64)>,
    /// Like the DynamoDB item's TTL: after this nothing in the slot matters.
    keep_until: u64,
}

impl Slot {
    /// The lockout counts as `network` sees them at `now`.
    fn lockout(&self, network: &Network, now: u64, policy: &Policy) -> Lockout {
        let window = window_start(now, policy);
        Lockout {
            account_failures: self.account_failures,
            latest_guess_at: self.latest_guess_at,
            network_failures: match self.networks.get(network) {
                Some(&(at, tally)) if at == window => tally,
                _ => 0,
            },
        }
    }

    fn record(&self, network: &Network, now: u64, policy: &Policy) -> Option<OtpRecord> {
        self.code.clone().map(|mut record| {
            record.lockout = Some(self.lockout(network, now, policy));
            record
        })
    }
}

/// A send counter: sends so far in its window, and when the window ends.
#[derive(Debug, Clone, Copy)]
struct Counter {
    sends: u32,
    resets_at: u64,
}

/// Everything under the one lock: a send checks the record and its counters and then writes
/// both, as DynamoDB's transaction does.
#[derive(Debug, Default)]
struct State {
    slots: HashMap<RecordKey, Slot>,
    counters: HashMap<String, Counter>,
    fraud: FraudState,
    verifications: HashMap<VerificationId, Verification>,
}

/// The fraud guard's part: tallies (with their version and when they may go), the breakers'
/// check items (held until), and the list of breakers.
#[derive(Debug, Default)]
struct FraudState {
    tallies: HashMap<Prefix, (Tally, u64, u64)>,
    /// Stream records counted (the in-process feed has none; kept for the same semantics).
    #[cfg(feature = "counting")]
    counted: HashMap<String, u64>,
    checks: HashMap<String, u64>,
    listed: BTreeMap<String, OpenBreaker>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    writes: AtomicU64,
    /// Where each change of a verification goes, once someone watches (the events, in process).
    changes: std::sync::OnceLock<UnboundedSender<Change>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a slot half-updated (every check comes
        // before the first write), so a poisoned lock is safe to keep using.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The stored code, expired or not, as DynamoDB would return it before TTL deletion (its
    /// `lockout` left out: that depends on who asks).
    pub fn get(&self, key: &RecordKey) -> Option<OtpRecord> {
        self.lock()
            .slots
            .get(key)
            .and_then(|slot| slot.code.clone())
    }

    /// The changes of every verification from now on, in the order they were made (one
    /// watcher).
    pub fn watch(&self) -> UnboundedReceiver<Change> {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let _ = self.changes.set(sender);
        receiver
    }

    /// Hands a new verification to the watcher, if there is one.
    fn made(&self, new: &Verification) {
        if let Some(watcher) = self.changes.get() {
            let _ = watcher.send((None, new.clone()));
        }
    }

    /// Changes `verification` with `change`, and hands the change to the watcher if there is
    /// one and something changed (only then is the verification copied).
    fn change(&self, verification: &mut Verification, change: impl FnOnce(&mut Verification)) {
        let watcher = self.changes.get();
        let before = watcher.map(|_| verification.clone());
        change(verification);
        if let (Some(watcher), Some(before)) = (watcher, before) {
            if before != *verification {
                let _ = watcher.send((Some(before), verification.clone()));
            }
        }
    }

    /// Records held (counters not included).
    pub fn len(&self) -> usize {
        self.lock().slots.len()
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
        charges: &[Charge],
    ) -> Result<PutOutcome, StoreError> {
        let mut state = self.lock();
        let State {
            slots,
            counters,
            fraud,
            verifications,
        } = &mut *state;
        let slot = slots.entry(key.clone()).or_default();
        if slot.keep_until <= now {
            *slot = Slot::default();
        }
        if let Some(retry_after) = slot
            .lockout(&code.network, now, policy)
            .locked_for(now, policy)
        {
            return Ok(PutOutcome::Locked { retry_after });
        }
        if let Some(retry_after) = slot
            .code
            .as_ref()
            .and_then(|old| old.cooldown_left(now, policy.cooldown_secs))
        {
            return Ok(PutOutcome::CoolingDown { retry_after });
        }
        let open = |check: &&crate::fraud::Check| {
            fraud
                .checks
                .get(&check.item)
                .is_some_and(|&until| until > now)
        };
        if let Some(check) = code.checks.iter().find(open) {
            return Ok(PutOutcome::FraudSuspected {
                prefix: check.prefix.clone(),
            });
        }
        let full = |charge: &&Charge| {
            counters
                .get(&charge.counter)
                .is_some_and(|c| c.sends >= charge.cap)
        };
        if let Some(charge) = charges.iter().find(full) {
            return Ok(super::limited(charge, now));
        }
        for charge in charges {
            counters
                .entry(charge.counter.clone())
                .or_insert(Counter {
                    sends: 0,
                    resets_at: charge.resets_at,
                })
                .sends += 1;
        }
        // The code replaced ends here; it is written down, as the table's stream function does
        // in AWS, so that its status outlives the record.
        let replaced = slot.code.as_ref().and_then(|old| {
            let id = old.verification_id.as_ref()?;
            let verification = verifications.get(id)?;
            let how = super::ended_by(old, verification.max_attempts, now);
            Some((id.clone(), how.unwrap_or(Status::Superseded)))
        });
        if let Some((id, how)) = replaced {
            if let Some(verification) = verifications.get_mut(&id) {
                self.change(verification, |v| {
                    v.ended.get_or_insert((how, now));
                });
            }
        }
        verifications.insert(code.verification.id.clone(), code.verification.clone());
        self.made(&code.verification);
        slot.code = Some(OtpRecord {
            lockout: None,
            ..code.record.clone()
        });
        slot.keep_until = now + policy.keep_record_secs();
        if self.writes.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY_WRITES
            == SWEEP_EVERY_WRITES - 1
        {
            slots.retain(|_, slot| slot.keep_until > now);
            let window = window_start(now, policy);
            for slot in slots.values_mut() {
                slot.networks.retain(|_, (at, _)| *at == window);
            }
            counters.retain(|_, counter| counter.resets_at > now);
            fraud
                .tallies
                .retain(|_, (_, _, keep_until)| *keep_until > now);
            fraud.checks.retain(|_, until| *until > now);
            verifications.retain(|_, v| v.keep_until() > now);
        }
        Ok(PutOutcome::Stored)
    }

    async fn charge_alone(&self, charge: &Charge, now: u64) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let counter = state
            .counters
            .entry(charge.counter.clone())
            .or_insert(Counter {
                sends: 0,
                resets_at: charge.resets_at,
            });
        if counter.resets_at <= now {
            *counter = Counter {
                sends: 0,
                resets_at: charge.resets_at,
            };
        }
        if counter.sends >= charge.cap {
            return Ok(false);
        }
        counter.sends += 1;
        Ok(true)
    }

    async fn withdraw_if_holds(
        &self,
        key: &RecordKey,
        code_hash: &CodeHash,
        refunds: &[Charge],
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let State {
            slots, counters, ..
        } = &mut *state;
        let Some(slot) = slots.get_mut(key) else {
            return Ok(false);
        };
        let holds = slot
            .code
            .as_ref()
            .is_some_and(|r| r.code_hash.ct_eq(code_hash));
        if holds {
            slot.code = None;
            for refund in refunds {
                if let Some(counter) = counters.get_mut(&refund.counter) {
                    counter.sends = counter.sends.saturating_sub(1);
                }
            }
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
        let mut state = self.lock();
        let Some(slot) = state.slots.get_mut(key).filter(|s| s.keep_until > now) else {
            return Ok(GuessOutcome::Refused(None));
        };
        let Some(before) = slot.record(guess.network, now, policy) else {
            return Ok(GuessOutcome::Refused(None));
        };
        if !before.accepts_guess(now, policy, guess.destination) {
            return Ok(GuessOutcome::Refused(Some(before)));
        }
        let mut after = before;
        after.attempts += 1;
        after.last_guess = Some(guess.guesses.clone());
        let lockout =
            slot.lockout(guess.network, now, policy)
                .after_guess(after.is_consumed(), now, policy);
        slot.account_failures = lockout.account_failures;
        slot.latest_guess_at = lockout.latest_guess_at;
        slot.networks.insert(
            guess.network.clone(),
            (window_start(now, policy), lockout.network_failures),
        );
        slot.keep_until = now + policy.keep_record_secs();
        if let Some(code) = &mut slot.code {
            code.attempts = after.attempts;
            code.last_guess = after.last_guess.clone();
        }
        after.lockout = Some(lockout);
        // How the guess ended the verification, written down as the stream function does in
        // AWS: approved, out of attempts, or the user locked out.
        let verification = after
            .verification_id
            .as_ref()
            .and_then(|id| state.verifications.get_mut(id));
        if let Some(verification) = verification {
            self.change(verification, |v| {
                if v.ended.is_none() {
                    let ended = super::ended_by(&after, v.max_attempts, now)
                        .filter(|s| *s != Status::Expired);
                    v.ended = ended.map(|status| (status, now));
                }
                if after.locked_for(now, policy).is_some() {
                    v.locked_at.get_or_insert(now);
                }
            });
        }
        Ok(GuessOutcome::Recorded(after))
    }

    async fn verification(
        &self,
        id: &VerificationId,
    ) -> Result<Option<(Verification, Option<OtpRecord>)>, StoreError> {
        let state = self.lock();
        let Some(verification) = state.verifications.get(id) else {
            return Ok(None);
        };
        let record = match verification.space {
            Space::Backend => state
                .slots
                .get(&super::verification_key(verification)?)
                .and_then(|slot| slot.code.clone()),
            // Its user id is masked: its record cannot be named (nor is it ever shown).
            Space::Public => None,
        };
        Ok(Some((verification.clone(), record)))
    }

    async fn cancel(&self, verification: &Verification, now: u64) -> Result<Cancel, StoreError> {
        let key = super::verification_key(verification)?;
        let mut state = self.lock();
        let State {
            slots,
            verifications,
            ..
        } = &mut *state;
        let Some(stored) = verifications.get_mut(&verification.id) else {
            return Ok(Cancel::Unknown);
        };
        let slot = slots.get_mut(&key);
        let record = slot.as_ref().and_then(|slot| slot.code.as_ref());
        match super::status_of(stored, record, now) {
            None => Ok(Cancel::Unknown),
            Some(Status::Canceled) => Ok(Cancel::Canceled),
            Some(Status::Pending) => {
                if let Some(slot) = slot {
                    slot.code = None;
                }
                self.change(stored, |v| v.ended = Some((Status::Canceled, now)));
                Ok(Cancel::Canceled)
            }
            Some(other) => Ok(Cancel::Ended(other)),
        }
    }

    async fn keep_message_id(
        &self,
        id: &VerificationId,
        message_id: &str,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        if let Some(verification) = state.verifications.get_mut(id) {
            self.change(verification, |v| {
                v.delivery.provider_message_id = Some(message_id.to_owned());
            });
        }
        Ok(())
    }

    async fn record_delivery(
        &self,
        id: &VerificationId,
        receipt: &Receipt,
    ) -> Result<ReceiptOutcome, StoreError> {
        let mut state = self.lock();
        let Some(verification) = state.verifications.get_mut(id) else {
            return Ok(ReceiptOutcome::Unknown);
        };
        let (calling_code, block) = (verification.calling_code, verification.block.clone());
        let sent_at = verification.created_at;
        let delivery = &verification.delivery;
        let received = delivery.updated_at.is_some();
        if received && delivery.status.rank() >= receipt.status.rank() {
            return Ok(ReceiptOutcome::Stale);
        }
        self.change(verification, |v| {
            let message = receipt
                .provider_message_id
                .clone()
                .or(v.delivery.provider_message_id.take());
            v.delivery = Delivery {
                status: receipt.status,
                error_code: receipt.error_code.clone(),
                updated_at: Some(receipt.at),
                provider_message_id: message,
            };
        });
        Ok(ReceiptOutcome::Applied {
            calling_code,
            block,
            sent_at,
        })
    }
}

#[async_trait]
impl FraudLedger for MemoryStore {
    #[cfg(feature = "counting")]
    async fn load_tallies(&self, prefixes: &[Prefix]) -> Result<Vec<Versioned>, StoreError> {
        let state = self.lock();
        Ok(prefixes
            .iter()
            .map(|prefix| {
                state
                    .fraud
                    .tallies
                    .get(prefix)
                    .map_or_else(Default::default, |(tally, version, _)| {
                        (tally.clone(), *version)
                    })
            })
            .collect())
    }

    #[cfg(feature = "counting")]
    async fn commit(
        &self,
        events: &[String],
        tallies: &[TallyWrite<'_>],
        now: u64,
    ) -> Result<Commit, StoreError> {
        let mut state = self.lock();
        let fraud = &mut state.fraud;
        let seen: Vec<String> = events
            .iter()
            .filter(|e| fraud.counted.contains_key(*e))
            .cloned()
            .collect();
        if !seen.is_empty() {
            return Ok(Commit::Counted(seen));
        }
        let version = |prefix: &Prefix| fraud.tallies.get(prefix).map_or(0, |(_, v, _)| *v);
        if tallies.iter().any(|w| version(w.prefix) != w.version) {
            return Ok(Commit::Conflict);
        }
        for write in tallies {
            fraud.tallies.insert(
                write.prefix.clone(),
                (write.tally.clone(), write.version + 1, write.keep_until),
            );
        }
        fraud.counted.retain(|_, until| *until > now);
        for event in events {
            fraud
                .counted
                .insert(event.clone(), now + crate::fraud::COUNTED_FOR_SECS);
        }
        Ok(Commit::Done)
    }

    async fn hold(&self, breaker: &OpenBreaker) -> Result<(), StoreError> {
        let prefix = Prefix::parse(&breaker.prefix)
            .ok_or_else(|| StoreError::Corrupt(format!("no prefix {:?}", breaker.prefix)))?;
        let mut state = self.lock();
        for item in prefix.check_items() {
            state.fraud.checks.insert(item, breaker.until);
        }
        state
            .fraud
            .listed
            .insert(breaker.prefix.clone(), breaker.clone());
        Ok(())
    }

    async fn extend(&self, prefix: &Prefix, until: u64) -> Result<(), StoreError> {
        let mut state = self.lock();
        let Some(listed) = state.fraud.listed.get_mut(&prefix.key()) else {
            return Ok(());
        };
        listed.until = listed.until.max(until);
        for item in prefix.check_items() {
            state.fraud.checks.insert(item, until);
        }
        Ok(())
    }

    async fn breakers(&self) -> Result<Vec<OpenBreaker>, StoreError> {
        Ok(self.lock().fraud.listed.values().cloned().collect())
    }

    async fn close(&self, prefix: &Prefix) -> Result<bool, StoreError> {
        let mut state = self.lock();
        for item in prefix.check_items() {
            state.fraud.checks.remove(&item);
        }
        if let Some((tally, version, _)) = state.fraud.tallies.get_mut(prefix) {
            // It starts over; its stream positions stay, so nothing is counted twice.
            tally.buckets.clear();
            tally.held = None;
            *version += 1;
        }
        Ok(state.fraud.listed.remove(&prefix.key()).is_some())
    }
}

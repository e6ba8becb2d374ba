//! Counting sends and verifications per prefix, and opening breakers. Fed from the table's
//! stream on AWS (the fraud-guard function) and in process on the local server: the same code,
//! so both are tested by the same suite.
//!
//! A batch is counted in one all-or-nothing write: every tally it changes, each only if
//! unchanged since read (two counters never lose each other's counts), and a mark per stream
//! record (a record already marked is left out and the rest redone). So a redelivered batch,
//! or half of one after a bisect, counts each record once.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::fraud::tally::{Counts, Held, Rule, Trip, BLOCK_RULE, COUNTRY_RULE, WINDOW_SECS};
use crate::fraud::{
    Commit, FraudMode, FraudSettings, OpenBreaker, Prefix, Tally, TallyWrite, Tick, TickKind,
};
use crate::meter;
use crate::store::{FraudLedger, StoreError};

/// Tries at a batch whose tallies other counters keep changing under us.
const COMMIT_ATTEMPTS: u32 = 10;
/// Ticks counted in one write: each changes at most two tallies and marks one record, within
/// DynamoDB's 100 items per transaction.
pub const TICKS_PER_COMMIT: usize = 30;

/// What a batch of ticks did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counted {
    /// Breakers this batch opened.
    pub opened: Vec<OpenBreaker>,
    /// Sends counted to a prefix whose breaker was already open (in `monitor` mode: the sends
    /// the guard would have refused).
    pub would_block: usize,
    /// Ticks left out because their stream record was counted before.
    pub repeated: usize,
}

pub struct Counting {
    ledger: Arc<dyn FraudLedger>,
    settings: FraudSettings,
}

/// One prefix's part of a batch, as computed before the write.
struct Part {
    prefix: Prefix,
    hint: String,
    country: Option<u16>,
    tally: Tally,
    version: u64,
    opened: Option<OpenBreaker>,
    would_block: usize,
}

impl Counting {
    pub fn new(ledger: Arc<dyn FraudLedger>, settings: FraudSettings) -> Self {
        Self { ledger, settings }
    }

    pub fn settings(&self) -> &FraudSettings {
        &self.settings
    }

    /// Counts `ticks` and opens the breakers they break.
    pub async fn observe(&self, ticks: &[Tick], now: u64) -> Result<Counted, StoreError> {
        let mut counted = Counted::default();
        if self.settings.mode == FraudMode::Off {
            return Ok(counted);
        }
        for chunk in ticks.chunks(TICKS_PER_COMMIT) {
            let done = self.observe_chunk(chunk, now).await?;
            counted.opened.extend(done.opened);
            counted.would_block += done.would_block;
            counted.repeated += done.repeated;
        }
        Ok(counted)
    }

    async fn observe_chunk(&self, ticks: &[Tick], now: u64) -> Result<Counted, StoreError> {
        let mut ticks: Vec<&Tick> = ticks.iter().collect();
        let mut repeated = 0;
        for _ in 0..COMMIT_ATTEMPTS {
            let mut parts = self.compute(&ticks, now).await?;
            // The check items first: should the write then fail, the batch is counted again
            // and opens the breaker again, which is harmless.
            for breaker in parts.iter().filter_map(|p| p.opened.as_ref()) {
                self.ledger.hold(breaker).await?;
            }
            let events: Vec<String> = ticks.iter().filter_map(|t| t.event.clone()).collect();
            let writes: Vec<TallyWrite<'_>> = parts
                .iter()
                .map(|part| TallyWrite {
                    prefix: &part.prefix,
                    tally: &part.tally,
                    version: part.version,
                    keep_until: part.tally.held.map_or(now, |h| h.until.max(now)) + WINDOW_SECS,
                })
                .collect();
            match self.ledger.commit(&events, &writes, now).await? {
                Commit::Done => {
                    let mut counted = Counted {
                        repeated,
                        ..Counted::default()
                    };
                    for part in parts.drain(..) {
                        self.report(&part);
                        counted.would_block += part.would_block;
                        counted.opened.extend(part.opened);
                    }
                    return Ok(counted);
                }
                Commit::Conflict => continue,
                Commit::Counted(seen) => {
                    let before = ticks.len();
                    ticks.retain(|t| t.event.as_ref().is_none_or(|e| !seen.contains(e)));
                    repeated += before - ticks.len();
                    tracing::info!(
                        records = before - ticks.len(),
                        "fraud guard: stream records counted before were left out"
                    );
                }
            }
        }
        Err(StoreError::Unavailable(
            "the fraud guard's tallies kept changing under the counting".into(),
        ))
    }

    /// The batch's effect on every prefix it touches. Blocks come first: a block held now
    /// gives its unverified sends back to its country, so pumping a few blocks does not also
    /// close their country.
    async fn compute(&self, ticks: &[&Tick], now: u64) -> Result<Vec<Part>, StoreError> {
        let mut touched: BTreeMap<Prefix, (String, Option<u16>)> = BTreeMap::new();
        for tick in ticks {
            if let Some(block) = &tick.block {
                touched.insert(
                    Prefix::Block(block.id.clone()),
                    (block.hint.clone(), tick.country),
                );
            }
            if let Some(code) = tick.country {
                touched.insert(Prefix::Country(code), (format!("+{code}"), Some(code)));
            }
        }
        let prefixes: Vec<Prefix> = touched.keys().cloned().collect();
        let loaded = self.ledger.load_tallies(&prefixes).await?;
        let mut parts: Vec<Part> = touched
            .into_iter()
            .zip(loaded)
            .map(|((prefix, (hint, country)), (tally, version))| Part {
                prefix,
                hint,
                country,
                tally,
                version,
                opened: None,
                would_block: 0,
            })
            .collect();
        // `Prefix` orders blocks before countries.
        let mut explained: BTreeMap<u16, Vec<(u64, i64)>> = BTreeMap::new();
        for part in &mut parts {
            let held_before = part.tally.is_held(now);
            let mine: Vec<&&Tick> = ticks.iter().filter(|t| part.counts(t)).collect();
            for tick in mine {
                let counts = match tick.kind {
                    TickKind::Sent => {
                        part.would_block += usize::from(held_before);
                        Counts {
                            sent: 1,
                            ..Counts::default()
                        }
                    }
                    TickKind::Verified => Counts {
                        verified: 1,
                        ..Counts::default()
                    },
                    TickKind::Withdrawn => Counts {
                        sent: -1,
                        ..Counts::default()
                    },
                    TickKind::Undelivered => Counts {
                        undelivered: 1,
                        ..Counts::default()
                    },
                };
                part.tally.add(tick.sent_at, counts);
            }
            if let (Prefix::Country(code), Some(given_back)) =
                (&part.prefix, explained.get(&part.country.unwrap_or(0)))
            {
                debug_assert_eq!(Some(*code), part.country);
                for &(bucket, sends) in given_back {
                    part.tally.add(
                        bucket,
                        Counts {
                            sent: -sends,
                            ..Counts::default()
                        },
                    );
                }
            }
            part.tally.prune(now);
            let rule: &Rule = match part.prefix {
                Prefix::Block(_) => &BLOCK_RULE,
                Prefix::Country(_) => &COUNTRY_RULE,
            };
            let Some(trip) = (!held_before)
                .then(|| part.tally.judge(rule, now))
                .flatten()
            else {
                continue;
            };
            let held = Held {
                opened_at: now,
                until: now + self.settings.hold_secs,
            };
            part.tally.held = Some(held);
            if let (Prefix::Block(_), Some(code)) = (&part.prefix, part.country) {
                explained
                    .entry(code)
                    .or_default()
                    .extend(part.tally.unverified());
            }
            part.opened = Some(breaker(&part.prefix, &part.hint, held, trip));
        }
        Ok(parts)
    }

    fn report(&self, part: &Part) {
        let mode = self.settings.mode.as_str();
        if let Some(opened) = &part.opened {
            tracing::warn!(
                prefix = part.prefix.kind(),
                range = %opened.hint,
                reason = opened.reason.as_str(),
                sent = opened.sent,
                verified = opened.verified,
                until = opened.until,
                mode,
                "fraud guard: breaker opened; sends to this range are {}",
                if self.settings.mode == FraudMode::Block {
                    "refused"
                } else {
                    "only logged (monitor)"
                }
            );
            meter::fraud_guard("opened", mode, part.country);
        }
        if part.would_block > 0 && self.settings.mode == FraudMode::Monitor {
            tracing::warn!(
                prefix = part.prefix.kind(),
                range = %part.hint,
                sends = part.would_block,
                "fraud guard (monitor): sends to an open breaker's range were not refused"
            );
            for _ in 0..part.would_block {
                meter::fraud_guard("would_block", mode, part.country);
            }
        }
    }
}

impl Part {
    /// Whether `tick` is counted in this prefix.
    fn counts(&self, tick: &Tick) -> bool {
        match &self.prefix {
            Prefix::Block(id) => tick.block.as_ref().is_some_and(|b| &b.id == id),
            Prefix::Country(code) => tick.country == Some(*code),
        }
    }
}

fn breaker(prefix: &Prefix, hint: &str, held: Held, trip: Trip) -> OpenBreaker {
    OpenBreaker {
        prefix: prefix.key(),
        hint: hint.to_owned(),
        opened_at: held.opened_at,
        until: held.until,
        sent: trip.sent,
        verified: trip.verified,
        reason: trip.reason,
    }
}

#[async_trait::async_trait]
impl crate::fraud::TickSink for Counting {
    async fn count(&self, tick: Tick, now: u64) {
        if let Err(error) = self.observe(std::slice::from_ref(&tick), now).await {
            tracing::error!(
                error = %crate::telemetry::error_chain(&error),
                "fraud guard: could not count"
            );
        }
    }
}

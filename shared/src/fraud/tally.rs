//! One number prefix's recent sends and verifications, and the rule that opens its breaker.
//!
//! Sends are counted in buckets of [`BUCKET_SECS`] by when they were sent; a verification is
//! counted in the bucket of the send it verified, so every bucket holds "sent then, and of those,
//! verified so far". A bucket is *mature* once its newest send is [`GRACE_SECS`] old: a younger
//! send has not had its chance to be typed in, so it counts for velocity but not yet against
//! conversion.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Width of a bucket.
pub const BUCKET_SECS: u64 = 10;
/// How far back sends are kept and judged.
pub const WINDOW_SECS: u64 = 1800;
/// How long a real person may take to type a code before their send counts as unconverted.
/// People type a code 10 to 40 seconds after asking; a bucket is judged once its newest send
/// is this old, so its sends are 20 to 30 seconds old.
pub const GRACE_SECS: u64 = 20;

/// When a prefix's breaker opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Sends within `.0` seconds that open the breaker on their own (while fewer than the
    /// floor of them are verified): the signal before any conversion is known.
    pub velocity: Option<(u64, i64)>,
    /// Mature sends needed before conversion is judged at all.
    pub min_sample: i64,
    /// Verified share, in percent, below which the breaker opens.
    pub floor_percent: i64,
    /// Undelivered receipts within the window (at least `.0`, and at least `.1` percent of the
    /// sends) that open the breaker: numbers that do not take SMS, as pumped ranges often are.
    pub undelivered: Option<(i64, i64)>,
}

/// A 1,000-number block. A real app sends a block a few codes a day; 20 in ten minutes is a
/// script walking the block. 8 mature sends with under 30 % verified catch a slower walk. Real
/// users verify 70 to 90 % of codes, so neither fires on them.
///
/// Carriers report a real user's number undelivered rarely (a phone off for days); three
/// undelivered codes in a block within half an hour, half of its sends or more, is a range of
/// numbers that do not exist or do not take SMS.
pub const BLOCK_RULE: Rule = Rule {
    velocity: Some((600, 20)),
    min_sample: 8,
    floor_percent: 30,
    undelivered: Some((3, 50)),
};

/// A whole country calling code, for sweeps spread over many blocks (one number each). A
/// country's own users keep its share far above 20 %; 40 mature sends is enough that a real
/// country's worst hour does not fall below it by chance, and few enough that a sweep at four
/// sends a second is stopped within a minute. Sends to blocks whose own breaker opened are taken
/// out first, so pumping a few blocks never closes a country.
pub const COUNTRY_RULE: Rule = Rule {
    velocity: None,
    min_sample: 40,
    floor_percent: 20,
    undelivered: None,
};

/// Sends and verifications of one bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    #[serde(rename = "s")]
    pub sent: i64,
    #[serde(rename = "v")]
    pub verified: i64,
    /// Codes whose delivery receipt said undelivered or failed.
    #[serde(rename = "u", default, skip_serializing_if = "is_zero")]
    pub undelivered: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Why a breaker opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Too many sends too fast, too few verified.
    Velocity,
    /// Enough mature sends, too few verified.
    Conversion,
    /// Too many sends the carriers reported undelivered.
    Undelivered,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Velocity => "velocity",
            Reason::Conversion => "conversion",
            Reason::Undelivered => "undelivered",
        }
    }
}

/// A rule that fired: why, and the counts it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    pub reason: Reason,
    pub sent: i64,
    pub verified: i64,
}

/// The breaker as the counting last set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub opened_at: u64,
    pub until: u64,
}

/// A prefix's state: what the counting function keeps per block or country.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Bucket start (epoch seconds) → counts.
    #[serde(default, rename = "b")]
    pub buckets: BTreeMap<u64, Counts>,
    #[serde(default, rename = "held", skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
}

pub fn bucket_of(sent_at: u64) -> u64 {
    sent_at - sent_at % BUCKET_SECS
}

impl Tally {
    pub fn add(&mut self, sent_at: u64, counts: Counts) {
        let entry = self.buckets.entry(bucket_of(sent_at)).or_default();
        entry.sent += counts.sent;
        entry.verified += counts.verified;
        entry.undelivered += counts.undelivered;
    }

    /// Drops the buckets that left the window.
    pub fn prune(&mut self, now: u64) {
        let oldest = now.saturating_sub(WINDOW_SECS);
        self.buckets
            .retain(|&start, _| start + BUCKET_SECS > oldest);
    }

    pub fn is_held(&self, now: u64) -> bool {
        self.held.is_some_and(|held| held.until > now)
    }

    /// Sums of the buckets `keep` selects.
    fn sum(&self, keep: impl Fn(u64) -> bool) -> Counts {
        self.buckets.iter().filter(|(&start, _)| keep(start)).fold(
            Counts::default(),
            |sum, (_, c)| Counts {
                sent: sum.sent + c.sent,
                verified: sum.verified + c.verified,
                undelivered: sum.undelivered + c.undelivered,
            },
        )
    }

    /// Whether `rule` opens the breaker at `now`.
    pub fn judge(&self, rule: &Rule, now: u64) -> Option<Trip> {
        let low = |c: Counts| c.verified * 100 < rule.floor_percent * c.sent;
        if let Some((window, sends)) = rule.velocity {
            let recent = self.sum(|start| start + BUCKET_SECS > now.saturating_sub(window));
            if recent.sent >= sends && low(recent) {
                return Some(trip(Reason::Velocity, recent));
            }
        }
        let oldest = now.saturating_sub(WINDOW_SECS);
        if let Some((least, percent)) = rule.undelivered {
            let window = self.sum(|start| start + BUCKET_SECS > oldest);
            if window.undelivered >= least && window.undelivered * 100 >= percent * window.sent {
                return Some(trip(Reason::Undelivered, window));
            }
        }
        let mature = self
            .sum(|start| start + BUCKET_SECS > oldest && start + BUCKET_SECS + GRACE_SECS <= now);
        (mature.sent >= rule.min_sample && low(mature)).then(|| trip(Reason::Conversion, mature))
    }

    /// The sends of this tally not verified, per bucket: what a country gives back when one of
    /// its blocks is held (those sends are explained).
    pub fn unverified(&self) -> impl Iterator<Item = (u64, i64)> + '_ {
        self.buckets
            .iter()
            .map(|(&start, c)| (start, (c.sent - c.verified).max(0)))
            .filter(|&(_, n)| n > 0)
    }
}

fn trip(reason: Reason, counts: Counts) -> Trip {
    Trip {
        reason,
        sent: counts.sent,
        verified: counts.verified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000;

    fn sends(tally: &mut Tally, at: u64, sent: i64, verified: i64) {
        tally.add(
            at,
            Counts {
                sent,
                verified,
                undelivered: 0,
            },
        );
    }

    #[test]
    fn undelivered_codes_open_a_block_before_conversion_can_tell() {
        let mut tally = Tally::default();
        sends(&mut tally, T0, 4, 0);
        let undelivered = |n| Counts {
            undelivered: n,
            ..Counts::default()
        };
        tally.add(T0, undelivered(2));
        assert_eq!(tally.judge(&BLOCK_RULE, T0 + 5), None, "two are not enough");
        tally.add(T0, undelivered(1));
        let trip = tally.judge(&BLOCK_RULE, T0 + 5).expect("three of four");
        assert_eq!(trip.reason, Reason::Undelivered);
        // A busy block whose few bounces are a small share stays closed.
        let mut busy = Tally::default();
        sends(&mut busy, T0, 10, 9);
        busy.add(T0, undelivered(3));
        assert_eq!(busy.judge(&BLOCK_RULE, T0 + 5), None);
        assert_eq!(
            tally.judge(&COUNTRY_RULE, T0 + 5),
            None,
            "countries: not by receipts"
        );
    }

    #[test]
    fn twenty_unverified_sends_in_ten_minutes_open_a_block() {
        let mut tally = Tally::default();
        sends(&mut tally, T0, 19, 0);
        assert_eq!(tally.judge(&BLOCK_RULE, T0 + 5), None, "19 are not enough");
        sends(&mut tally, T0 + 5, 1, 0);
        let trip = tally.judge(&BLOCK_RULE, T0 + 5).expect("the 20th opens it");
        assert_eq!((trip.reason, trip.sent), (Reason::Velocity, 20));
    }

    #[test]
    fn a_busy_block_whose_users_verify_stays_closed() {
        let mut tally = Tally::default();
        // 30 sends in ten minutes, 80 % of them verified.
        for i in 0..30 {
            sends(&mut tally, T0 + i * 20, 1, i64::from(i % 5 != 0));
        }
        assert_eq!(tally.judge(&BLOCK_RULE, T0 + 600), None);
    }

    #[test]
    fn young_sends_do_not_count_against_conversion() {
        let mut tally = Tally::default();
        sends(&mut tally, T0, 50, 0);
        assert_eq!(
            tally.judge(&COUNTRY_RULE, T0 + 15),
            None,
            "still in their grace"
        );
        let trip = tally
            .judge(&COUNTRY_RULE, T0 + 30)
            .expect("mature and unverified");
        assert_eq!((trip.reason, trip.sent), (Reason::Conversion, 50));
    }

    #[test]
    fn a_country_verifying_above_its_floor_stays_closed() {
        let mut tally = Tally::default();
        sends(&mut tally, T0, 100, 25);
        assert_eq!(tally.judge(&COUNTRY_RULE, T0 + 60), None);
        sends(&mut tally, T0 + 10, 30, 0);
        assert!(tally.judge(&COUNTRY_RULE, T0 + 60).is_some(), "25 of 130");
    }

    #[test]
    fn old_buckets_leave_the_window() {
        let mut tally = Tally::default();
        sends(&mut tally, T0, 30, 0);
        tally.prune(T0 + WINDOW_SECS + BUCKET_SECS);
        assert!(tally.buckets.is_empty());
    }

    #[test]
    fn a_tally_survives_its_json() {
        let mut tally = Tally::default();
        sends(&mut tally, T0, 3, 1);
        tally.held = Some(Held {
            opened_at: T0,
            until: T0 + 60,
        });
        let json = serde_json::to_string(&tally).unwrap();
        assert_eq!(serde_json::from_str::<Tally>(&json).unwrap(), tally);
    }
}

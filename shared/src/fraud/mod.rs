//! The fraud guard: stops SMS pumping by the one signal it cannot fake, that pumped numbers never
//! complete a verification.
//!
//! Sends and verifications to phone numbers (SMS, WhatsApp, voice) are counted per number prefix
//! (the 1,000-number block, and the country calling code) by [`crate::counting::Counting`], fed from
//! the table's stream on AWS and in process by the local server. When a prefix's counts break
//! its [`tally::Rule`], its *breaker* opens: the counting writes small check items, and every
//! later send to the prefix carries a condition on them inside its one write, so it is refused
//! (`403 fraud_suspected`) with nothing sent or stored, at no extra request.
//!
//! A block is known only by a keyed pseudonym of its digits (with a coarse hint such as
//! `+44 77…` for people); the country by its calling code.

pub mod tally;

use serde::{Deserialize, Serialize};

pub use tally::{Reason, Tally};

/// A country's breaker is written as this many check items, and a send checks the one its
/// number falls in: no item is read by every send to a country.
pub const COUNTRY_SHARDS: u8 = 16;

/// How long a stream record is remembered as counted: longer than a record stays in the
/// stream (24 hours), so no redelivery outlives it.
pub const COUNTED_FOR_SECS: u64 = 2 * 86_400;

/// How often one instance pushes out the hold of a breaker that keeps refusing sends.
pub const EXTEND_EVERY_SECS: u64 = 600;

/// `OTP_FRAUD_GUARD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FraudMode {
    /// Sends to a prefix whose breaker is open are refused.
    #[default]
    Block,
    /// Nothing is refused; every send a breaker would have refused is logged and metered.
    Monitor,
    /// Nothing is counted or checked.
    Off,
}

impl FraudMode {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "block" => Some(Self::Block),
            "monitor" => Some(Self::Monitor),
            "off" => Some(Self::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Monitor => "monitor",
            Self::Off => "off",
        }
    }
}

/// `OTP_FRAUD_GUARD_SAFE_LIST`: E.164 numbers and prefixes (`+4477123`) that are never refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SafeList(Vec<String>);

impl SafeList {
    /// Comma-separated `+` and digits; `None` names the first entry that is not one.
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let digits = entry.strip_prefix('+').unwrap_or("");
                let ok = (1..=15).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && !digits.starts_with('0');
                ok.then(|| entry.to_owned()).ok_or_else(|| entry.to_owned())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn covers(&self, e164: &str) -> bool {
        self.0
            .iter()
            .any(|prefix| e164.starts_with(prefix.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the guard is told by the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FraudSettings {
    pub mode: FraudMode,
    pub safe_list: SafeList,
    /// How long a breaker holds once open, and how far each later refused attempt pushes it.
    pub hold_secs: u64,
}

impl Default for FraudSettings {
    fn default() -> Self {
        Self {
            mode: FraudMode::Block,
            safe_list: SafeList::default(),
            hold_secs: 43_200,
        }
    }
}

/// A prefix whose sends are counted together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    /// A 1,000-number block, by its keyed pseudonym.
    Block(String),
    /// A country calling code.
    Country(u16),
}

impl Prefix {
    /// Its name in the table and on the command line: `blk:<pseudonym>` or `cc:<code>`.
    pub fn key(&self) -> String {
        match self {
            Prefix::Block(id) => format!("blk:{id}"),
            Prefix::Country(code) => format!("cc:{code}"),
        }
    }

    pub fn parse(key: &str) -> Option<Self> {
        if let Some(id) = key.strip_prefix("blk:") {
            return (!id.is_empty()).then(|| Prefix::Block(id.to_owned()));
        }
        let code = key.strip_prefix("cc:")?.parse().ok()?;
        Some(Prefix::Country(code))
    }

    /// The check items that hold its breaker for sends: one for a block, one per shard for a
    /// country.
    pub fn check_items(&self) -> Vec<String> {
        match self {
            Prefix::Block(_) => vec![format!("fraud:check:{}", self.key())],
            Prefix::Country(_) => (0..COUNTRY_SHARDS)
                .map(|shard| format!("fraud:check:{}:{shard}", self.key()))
                .collect(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Prefix::Block(_) => "block",
            Prefix::Country(_) => "country",
        }
    }
}

/// A number's block, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Keyed pseudonym of the E.164 number without its last three digits.
    pub id: String,
    /// The calling code and the first two national digits (`+44 77…`), for people reading the
    /// list of breakers: not enough, with a masked number's last four, to rebuild a number.
    pub hint: String,
}

/// The E.164 number without its last three digits (its 1,000-number block); `None` for numbers
/// too short to have one.
pub fn block_digits(e164: &str) -> Option<&str> {
    (e164.len() > 7).then(|| &e164[..e164.len() - 3])
}

/// `+44 77…` for `+447712345678` (calling code 44).
pub fn block_hint(e164: &str, calling_code: Option<u16>) -> String {
    let code = calling_code.map_or(String::new(), |c| c.to_string());
    let national = e164.get(1 + code.len()..).unwrap_or("");
    let lead: String = national.chars().take(2).collect();
    format!("+{code} {lead}…")
}

/// A send checked against the breakers: the items its write carries a condition on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub prefix: Prefix,
    pub item: String,
}

/// The checks of a send to a number in `block` of `country`: its block's item and its
/// country's shard `shard` (mod 16; sends take the shards in turn, so each item is read by a
/// sixteenth of them).
pub fn checks(block: &Block, country: Option<u16>, shard: u32) -> Vec<Check> {
    let block = Prefix::Block(block.id.clone());
    let mut checks = vec![Check {
        item: block.check_items().remove(0),
        prefix: block,
    }];
    if let Some(code) = country {
        let prefix = Prefix::Country(code);
        let shard = (shard % u32::from(COUNTRY_SHARDS)) as usize;
        checks.push(Check {
            item: prefix.check_items().swap_remove(shard),
            prefix,
        });
    }
    checks
}

/// What happened to a code, as the counting sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickKind {
    Sent,
    Verified,
    /// Removed after a failed delivery: never sent, so not counted.
    Withdrawn,
    /// The carrier reported it undelivered (a delivery receipt).
    Undelivered,
}

/// One countable event about a code sent to a phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub kind: TickKind,
    pub block: Option<Block>,
    pub country: Option<u16>,
    /// When the code was sent: the bucket it counts in.
    pub sent_at: u64,
    /// The stream record's id, when it came from the table's stream: a record is counted once,
    /// however often its batch is delivered.
    pub event: Option<String>,
}

/// What the counting needs from a stored code.
pub struct Sent<'a> {
    pub phone: bool,
    pub block: Option<&'a Block>,
    pub country: Option<u16>,
    pub sent_at: u64,
    pub code_hash: &'a crate::code::CodeHash,
    pub consumed: bool,
}

/// The ticks of one change of a record: a new code is a send; a code that became used is a
/// verification; a code removed while the record stays is a withdrawal. An item deleted
/// outright (TTL) is not a withdrawal: that code was sent. Email codes are not counted.
pub fn ticks_of_change(
    old: Option<&Sent<'_>>,
    new: Option<&Sent<'_>>,
    item_deleted: bool,
) -> Vec<Tick> {
    let same_code = |a: &Sent<'_>, b: &Sent<'_>| a.code_hash.ct_eq(b.code_hash);
    let tick = |kind, s: &Sent<'_>| Tick {
        kind,
        block: s.block.cloned(),
        country: s.country,
        sent_at: s.sent_at,
        event: None,
    };
    let kind = match (old, new) {
        (_, Some(new)) if !new.phone => None,
        (Some(old), Some(new)) if same_code(old, new) => {
            (new.consumed && !old.consumed).then_some((TickKind::Verified, new))
        }
        (_, Some(new)) => Some((TickKind::Sent, new)),
        (Some(old), None) if !item_deleted && old.phone => Some((TickKind::Withdrawn, old)),
        _ => None,
    };
    kind.map(|(kind, s)| tick(kind, s)).into_iter().collect()
}

/// Where the engine hands what it counts in process (the local server's counting); a failure
/// to count is the sink's to report, never the request's.
#[async_trait::async_trait]
pub trait TickSink: Send + Sync {
    async fn count(&self, tick: Tick, now: u64);
}

/// An open breaker, as listed for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenBreaker {
    /// [`Prefix::key`].
    pub prefix: String,
    pub hint: String,
    pub opened_at: u64,
    pub until: u64,
    pub sent: i64,
    pub verified: i64,
    pub reason: Reason,
}

/// A tally read for a change: the tally and its version (0: none yet).
pub type Versioned = (Tally, u64);

/// A tally to write back: only if still at `version`.
pub struct TallyWrite<'a> {
    pub prefix: &'a Prefix,
    pub tally: &'a Tally,
    pub version: u64,
    pub keep_until: u64,
}

/// How writing a batch's counts went.
#[derive(Debug, PartialEq, Eq)]
pub enum Commit {
    Done,
    /// A tally changed since it was read: read again and redo.
    Conflict,
    /// These stream records were counted before (a redelivered batch): leave them out and redo.
    Counted(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_the_number_without_its_last_three_digits() {
        assert_eq!(block_digits("+447712345678"), Some("+447712345"));
        assert_eq!(block_digits("+1234"), None);
        assert_eq!(block_hint("+447712345678", Some(44)), "+44 77…");
        assert_eq!(block_hint("+14155552671", Some(1)), "+1 41…");
    }

    #[test]
    fn the_safe_list_takes_numbers_and_prefixes() {
        let list = SafeList::parse("+4477123, +15555550100").unwrap();
        assert!(list.covers("+447712345678"));
        assert!(list.covers("+15555550100"));
        assert!(!list.covers("+15555550101"));
        assert_eq!(SafeList::parse("+44,447").unwrap_err(), "447");
        assert!(SafeList::parse("").unwrap().is_empty());
    }

    #[test]
    fn a_change_of_a_record_is_a_send_a_verification_or_a_withdrawal() {
        use crate::code::CodeHash;
        let block = Block {
            id: "b".into(),
            hint: "+44 77…".into(),
        };
        let (one, two) = (
            CodeHash::from_bytes(&[1; 32]).unwrap(),
            CodeHash::from_bytes(&[2; 32]).unwrap(),
        );
        let code = |hash, consumed, phone| Sent {
            phone,
            block: Some(&block),
            country: Some(44),
            sent_at: 100,
            code_hash: hash,
            consumed,
        };
        let kinds = |old: Option<Sent<'_>>, new: Option<Sent<'_>>, deleted| {
            ticks_of_change(old.as_ref(), new.as_ref(), deleted)
                .into_iter()
                .map(|t| t.kind)
                .collect::<Vec<_>>()
        };
        let (sent, verified, withdrawn) = (TickKind::Sent, TickKind::Verified, TickKind::Withdrawn);
        assert_eq!(kinds(None, Some(code(&one, false, true)), false), [sent]);
        assert_eq!(
            kinds(
                Some(code(&one, false, true)),
                Some(code(&two, false, true)),
                false
            ),
            [sent],
            "a resend"
        );
        assert_eq!(
            kinds(
                Some(code(&one, false, true)),
                Some(code(&one, true, true)),
                false
            ),
            [verified]
        );
        assert_eq!(
            kinds(
                Some(code(&one, false, true)),
                Some(code(&one, false, true)),
                false
            ),
            [],
            "a wrong guess"
        );
        assert_eq!(
            kinds(
                Some(code(&one, true, true)),
                Some(code(&one, true, true)),
                false
            ),
            [],
            "already used"
        );
        assert_eq!(
            kinds(Some(code(&one, false, true)), None, false),
            [withdrawn]
        );
        assert_eq!(
            kinds(Some(code(&one, false, true)), None, true),
            [],
            "deleted by TTL: it was sent"
        );
        assert_eq!(
            kinds(None, Some(code(&one, false, false)), false),
            [],
            "email"
        );
        assert_eq!(
            kinds(Some(code(&one, false, false)), None, false),
            [],
            "email withdrawn"
        );
    }

    #[test]
    fn a_send_checks_its_block_and_one_shard_of_its_country() {
        let block = Block {
            id: "abc".into(),
            hint: "+44 77…".into(),
        };
        let items: Vec<_> = checks(&block, Some(44), 35)
            .into_iter()
            .map(|c| c.item)
            .collect();
        assert_eq!(items, ["fraud:check:blk:abc", "fraud:check:cc:44:3"]);
        assert_eq!(Prefix::Country(44).check_items().len(), 16);
        for prefix in [Prefix::Block("abc".into()), Prefix::Country(63)] {
            assert_eq!(Prefix::parse(&prefix.key()), Some(prefix));
        }
        assert_eq!(Prefix::parse("cc:x"), None);
    }
}

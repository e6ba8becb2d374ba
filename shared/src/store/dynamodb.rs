//! The production store. Every operation is ONE conditional DynamoDB request; the condition is
//! what makes it atomic, and `ALL_OLD` on a refused condition tells us why without a second read.
//!
//! The table (key `pk`, TTL on `expires_at`) is declared once, in `template.yaml`; tests and
//! scripts read it from there. One item per user, purpose and record space: `pk` (S,
//! `scope#pseudonym`, the scope being the purpose, or `public:purpose` for the public routes),
//! `code_hash` (B), `channel` (S), `dest_hash` (B, keyed hash of the destination), `sent_to` (S,
//! the destination masked), `sent_cc` (N, an SMS number's country calling code, 0 for email),
//! `sent_at` (N), `code_expires_at` (N), `attempts` (N), `guesses` (L of B: the latest guess
//! under each code key), `right_guess` and `right_net` (M: the code under each code key → -1,
//! and → minus the lockout threshold), `acct_fails` (N: consecutive wrong guesses since the last
//! right one, from every network), `acct_last` (N: when the latest guess was made),
//! `net_<network>_<window start>` (N: one client network's tally in one lockout window, the
//! network being a keyed pseudonym of its address), `expires_at` (N, the TTL attribute: when
//! nothing in the item matters any more), `last_request` (S, the id of the last write), `vid` (S,
//! the code's verification id). No phone number, address or IP address is stored, not even in
//! the key; the user id is, in the code's verification item only (`ver:<id>`, see
//! `verifications`), because looking a verification up answers with it.
//!
//! Lockout in one request (see [`super::Lockout`]): DynamoDB cannot branch inside an update, but
//! `if_not_exists` picks a value by whether a path exists. A guess looks itself up in the maps a
//! send wrote: `acct_fails = if_not_exists(right_guess.<guess>, acct_fails) + 1` is `-1 + 1 = 0`
//! for the right code and one more for any other, and `net_… = if_not_exists(net_…, 0) +
//! if_not_exists(right_net.<guess>, 1)` adds one for a wrong guess and takes the threshold off
//! for the right one. The network's tally of the previous window is removed in the same update.
//! The conditions read this network's tally and the account's count. Items written before this
//! lockout existed have no `acct_fails`: they take no guess (the user requests a new code), and
//! the next send upgrades them.
//!
//! Send limits in the same request: a send is one `TransactWriteItems` holding the record's
//! update, the put of its verification's item and one conditional `ADD` per counter. Counters are items of their own (`pk`
//! `limit:<subject>#<window length>#<window start>`, with `#<i>of<n>` for a shard of a shared
//! counter, `sends` (N), `expires_at` (N, the window's end)); a full counter's condition cancels
//! the whole transaction, so a refused send writes nothing. The cancellation reasons say which
//! item refused, with the record's old item for the cooldown and lockout answers. Two
//! transactions that touch one item at the same moment make DynamoDB cancel one with
//! `TransactionConflict`: nothing was written. A conflict on a shared counter's shard is handed
//! back (`PutOutcome::Busy`) for the engine to charge another shard; any other is tried again (a
//! few times, briefly apart, within a retry budget). No item is written by every send: a
//! country's counter and the SMS budget are split into shards (see `crate::limits`).
//!
//! Retries: the SDK retries an attempt that timed out or got a 5xx, but DynamoDB may have applied
//! it already. Each operation therefore carries a fresh request id, stored with its write, and
//! the conditions recognise "this very request was already applied": a retried send overwrites
//! its own code instead of refusing itself with a cooldown, and a retried guess is reported from
//! the item it already updated instead of counting a second attempt or calling a consumed code
//! "not found".

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;

use super::{
    window_start, GuessAttempt, GuessOutcome, Lockout, Network, NewCode, OtpRecord, OtpStore,
    PutOutcome, RecordKey, StoreError,
};
use crate::code::{CodeHash, CodeHasher, Guesses};
use crate::domain::Channel;
use crate::fraud::Check;
use crate::limits::Charge;
use crate::settings::Policy;
use crate::verification::{Cancel, Receipt, ReceiptOutcome, Verification, VerificationId};

const PK: &str = "pk";
const CODE_HASH: &str = "code_hash";
const CHANNEL: &str = "channel";
const DEST_HASH: &str = "dest_hash";
const SENT_TO: &str = "sent_to";
const SENT_COUNTRY: &str = "sent_cc";
const SENT_BLOCK: &str = "sent_blk";
const SENT_HINT: &str = "sent_hint";
const SENT_AT: &str = "sent_at";
const CODE_EXPIRES_AT: &str = "code_expires_at";
/// The table's TTL attribute. Items written before lockout existed hold the code's expiry here.
const EXPIRES_AT: &str = "expires_at";
const ATTEMPTS: &str = "attempts";
const GUESSES: &str = "guesses";
const LEGACY_LAST_GUESS: &str = "last_guess";
const LAST_REQUEST: &str = "last_request";
const ACCOUNT_FAILURES: &str = "acct_fails";
const ACCOUNT_LAST: &str = "acct_last";
const NETWORK_MARKERS: &str = "right_net";

/// A new code replaces the old one and keeps the user's failures (starting the count if there
/// is none). Refused while the old code is live inside its cooldown (present, unused, sent less
/// than `cooldown` ago; expiry does not end a cooldown) or while the asking network is locked
/// out.
const PUT_UPDATE: &str = "SET code_hash = :code_hash, channel = :channel, dest_hash = :dest, \
     sent_to = :sent_to, sent_cc = :sent_cc, sent_blk = :sent_blk, sent_hint = :sent_hint, \
     sent_at = :now, code_expires_at = :code_expires_at, vid = :vid, \
     expires_at = :keep, attempts = :zero, last_request = :request, right_guess = :markers, \
     right_net = :net_markers, acct_fails = if_not_exists(acct_fails, :zero), \
     acct_last = if_not_exists(acct_last, :zero) REMOVE guesses, last_guess";
const PUT_CONDITION: &str = "(attribute_not_exists(code_hash) OR sent_at <= :cooldown_start \
     OR contains(guesses, code_hash) OR last_guess = code_hash OR last_request = :request) \
     AND ((attribute_not_exists(#net) OR #net < :net_cap) \
     AND (attribute_not_exists(acct_fails) OR acct_fails < :ceiling \
     OR acct_last <= :window_start) OR last_request = :request)";

/// One more send in a counter's window, unless it is full. The window's end is the item's TTL.
const CHARGE_UPDATE: &str = "ADD sends :one SET expires_at = :resets_at";
const CHARGE_CONDITION: &str = "attribute_not_exists(sends) OR sends < :cap";
/// A send passes a breaker's check item that is absent or whose hold has ended.
const BREAKER_CLOSED: &str = "attribute_not_exists(open_until) OR open_until <= :now";
/// A send that was never made (our delivery failed for certain) gives its count back.
const REFUND_UPDATE: &str = "ADD sends :minus_one";
/// Attempts at a send transaction that DynamoDB cancelled only for a conflict with another one.
const CONFLICT_ATTEMPTS: u32 = 4;

/// Only the code we wrote: a newer send between our put and this withdrawal must survive. The
/// failures stay.
const WITHDRAW_UPDATE: &str = "REMOVE code_hash, channel, dest_hash, sent_to, sent_cc, sent_blk, \
     sent_hint, sent_at, code_expires_at, attempts, guesses, right_guess";
const WITHDRAW_CONDITION: &str = "code_hash = :code_hash";

/// Reserve the attempt, record the guess and count it for the account and the network together
/// (see the module comment). Refused when there is no current code, it is expired, out of
/// attempts or used, the asking network or the whole account is locked out, or (when the
/// caller names one) the code went elsewhere.
const GUESS_UPDATE: &str = "SET attempts = attempts + :one, guesses = :guesses, \
     last_request = :request, expires_at = :keep, \
     acct_fails = if_not_exists(#r.#g, acct_fails) + :one, acct_last = :now, \
     #net = if_not_exists(#net, :zero) + if_not_exists(#rn.#g, :one) REMOVE #net_before";
const GUESS_CONDITION: &str = "attribute_exists(acct_fails) AND attribute_exists(right_net) \
     AND attribute_exists(code_hash) AND code_expires_at > :now AND attempts < :max \
     AND NOT contains(guesses, code_hash) \
     AND (attribute_not_exists(last_request) OR last_request <> :request) \
     AND (attribute_not_exists(#net) OR #net < :net_cap) \
     AND (acct_fails < :ceiling OR acct_last <= :window_start)";

/// The attribute holding `network`'s tally in the lockout window starting at `window`.
fn network_attribute(network: &Network, window: u64) -> String {
    format!("net_{}_{window}", network.as_str())
}

/// The lockout's part of a request, for `network` at `now`: the names and values both the
/// send's and the guess's conditions use.
fn lockout_parts(
    network: &Network,
    now: u64,
    policy: &Policy,
) -> (HashMap<String, String>, HashMap<String, AttributeValue>) {
    let names = HashMap::from([("#net".to_owned(), asking(network, now, policy))]);
    let values = HashMap::from([
        (
            ":net_cap".to_owned(),
            number(u64::from(policy.lockout_failures)),
        ),
        (
            ":ceiling".to_owned(),
            number(u64::from(policy.lockout_ceiling)),
        ),
        (
            ":window_start".to_owned(),
            number(now.saturating_sub(policy.lockout_window_secs)),
        ),
    ]);
    (names, values)
}

pub struct DynamoStore {
    client: Client,
    table: String,
    /// Turns user ids into keyed pseudonyms for `pk`.
    hasher: CodeHasher,
    /// Tokens for retrying a conflicted send (see [`RetryBudget`]).
    retries: RetryBudget,
}

/// Retries of conflicted transactions may add at most a tenth to the requests: each send's
/// first attempt earns a tenth of a token (up to 10 saved), each retry spends one. When
/// conflicts are everywhere (a hot item), sends fail fast with 503 instead of multiplying the
/// load on the very item that is overloaded.
#[derive(Debug)]
struct RetryBudget(std::sync::Mutex<f64>);

impl Default for RetryBudget {
    fn default() -> Self {
        Self(std::sync::Mutex::new(RETRY_TOKENS))
    }
}

const RETRY_TOKENS: f64 = 10.0;

impl RetryBudget {
    fn earn(&self) {
        let mut tokens = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *tokens = (*tokens + 0.1).min(RETRY_TOKENS);
    }

    fn spend(&self) -> bool {
        let mut tokens = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let ok = *tokens >= 1.0;
        if ok {
            *tokens -= 1.0;
        }
        ok
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, hasher: CodeHasher) -> Self {
        Self {
            client,
            table: table.into(),
            hasher,
            retries: RetryBudget::default(),
        }
    }

    /// The store as the fraud-guard function uses it: tallies and breakers only. It never makes
    /// a record's key, so it needs no pseudonym key (it gets a random one nobody can use).
    pub fn for_counting(client: Client, table: impl Into<String>) -> Self {
        let unused = crate::keys::KeyRing::single(crate::keys::HashKey::random());
        Self::new(client, table, CodeHasher::new(&unused))
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn pk(&self, key: &RecordKey) -> AttributeValue {
        AttributeValue::S(format!(
            "{}#{}",
            key.scope(),
            self.hasher.pseudonym(&key.user_id)
        ))
    }

    /// A counter's item. A scope is a purpose (no `:`) or `public:<purpose>`, so `limit:` can
    /// never be a record's key.
    fn counter_pk(charge: &Charge) -> AttributeValue {
        AttributeValue::S(format!("limit:{}", charge.counter))
    }

    fn charge_item(&self, charge: &Charge) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, Self::counter_pk(charge))
            .update_expression(CHARGE_UPDATE)
            .condition_expression(CHARGE_CONDITION)
            .set_expression_attribute_values(Some(charge_values(charge)))
            .build()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A condition that the breaker behind `check` is not open: a send to an open breaker's
    /// range is cancelled with the rest of its transaction.
    fn breaker_check(&self, check: &Check, now: u64) -> Result<TransactWriteItem, StoreError> {
        let condition = ConditionCheck::builder()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(check.item.clone()))
            .condition_expression(BREAKER_CLOSED)
            .expression_attribute_values(":now", number(now))
            .build()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(TransactWriteItem::builder()
            .condition_check(condition)
            .build())
    }

    fn refund_item(&self, charge: &Charge) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key(PK, Self::counter_pk(charge))
            .update_expression(REFUND_UPDATE)
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".to_owned()))
            .build()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The record's update of a send: expression, names and values.
    fn put_parts(
        &self,
        code: &NewCode,
        now: u64,
        policy: &Policy,
        request: &AttributeValue,
    ) -> Expr {
        let record = &code.record;
        let (names, mut values) = lockout_parts(&code.network, now, policy);
        let net_marker = -i64::from(policy.lockout_failures);
        values.extend([
            (":code_hash".to_owned(), blob(&record.code_hash)),
            (
                ":channel".to_owned(),
                AttributeValue::S(record.channel.as_str().to_owned()),
            ),
            (":dest".to_owned(), blob(&record.destination_hash)),
            (
                ":sent_to".to_owned(),
                AttributeValue::S(record.sent_to.clone()),
            ),
            // 0 for email: an update cannot set a null, and no calling code is 0.
            (
                ":sent_cc".to_owned(),
                number(u64::from(record.sent_country.unwrap_or(0))),
            ),
            // "" for email, as 0 is for the calling code.
            (
                ":sent_blk".to_owned(),
                AttributeValue::S(
                    record
                        .sent_block
                        .as_ref()
                        .map_or_else(String::new, |b| b.id.clone()),
                ),
            ),
            (
                ":sent_hint".to_owned(),
                AttributeValue::S(
                    record
                        .sent_block
                        .as_ref()
                        .map_or_else(String::new, |b| b.hint.clone()),
                ),
            ),
            (":now".to_owned(), number(now)),
            (":code_expires_at".to_owned(), number(record.expires_at)),
            (
                ":vid".to_owned(),
                AttributeValue::S(code.verification.id.as_str().to_owned()),
            ),
            (":keep".to_owned(), number(now + policy.keep_record_secs())),
            (":zero".to_owned(), number(0)),
            (":request".to_owned(), request.clone()),
            (":markers".to_owned(), markers(&code.markers, -1)),
            (
                ":net_markers".to_owned(),
                markers(&code.markers, net_marker),
            ),
            (
                ":cooldown_start".to_owned(),
                number(now.saturating_sub(policy.cooldown_secs)),
            ),
        ]);
        Expr {
            condition: PUT_CONDITION.to_owned(),
            names,
            values,
        }
    }

    /// A send: the record's update, its verification's item, the breaker checks and every
    /// charge, in one transaction.
    async fn put_charged(
        &self,
        key: &RecordKey,
        code: &NewCode,
        now: u64,
        policy: &Policy,
        charges: &[Charge],
    ) -> Result<PutOutcome, StoreError> {
        self.retries.earn();
        let mut attempt = 1;
        loop {
            // A fresh id per attempt: the SDK's own retries of one attempt resend it as the
            // idempotency token, so an attempt applied twice is applied once.
            let token = request_token();
            let parts = self.put_parts(code, now, policy, &AttributeValue::S(token.clone()));
            let record = Update::builder()
                .table_name(&self.table)
                .key(PK, self.pk(key))
                .update_expression(PUT_UPDATE)
                .condition_expression(parts.condition)
                .set_expression_attribute_names(Some(parts.names))
                .set_expression_attribute_values(Some(parts.values))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
            let mut items = vec![
                TransactWriteItem::builder().update(record).build(),
                verifications::verification_put(&self.table, &code.verification)?,
            ];
            for check in &code.checks {
                items.push(self.breaker_check(check, now)?);
            }
            for charge in charges {
                items.push(self.charge_item(charge)?);
            }
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .client_request_token(token)
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(PutOutcome::Stored),
                Err(error) => error,
            };
            let Some(reasons) = cancellation_reasons(&error) else {
                return Err(unavailable(error));
            };
            let refused =
                |reason: &CancellationReason| reason.code() == Some("ConditionalCheckFailed");
            if let Some(first) = reasons.first().filter(|r| refused(r)) {
                return match first.item() {
                    Some(old) => self.put_refusal(old, &code.network, now, policy),
                    None => Err(StoreError::Corrupt(
                        "a send was refused without the old item".to_owned(),
                    )),
                };
            }
            // The record, its verification (unconditional), the checks, the charges.
            let checks = code.checks.len();
            if let Some(index) = reasons.iter().skip(2).position(refused) {
                return Ok(match index.checked_sub(checks) {
                    None => PutOutcome::FraudSuspected {
                        prefix: code.checks[index].prefix.clone(),
                    },
                    Some(charge) => super::limited(&charges[charge], now),
                });
            }
            let conflicted = |r: &CancellationReason| r.code() == Some("TransactionConflict");
            // A shared counter's shard another send is committing: give up on it at once, and
            // let the engine charge another shard, rather than wait on the hottest item.
            let busy_shard = reasons
                .iter()
                .enumerate()
                .skip(2 + checks)
                .find(|(_, r)| conflicted(r))
                .map(|(index, _)| &charges[index - 2 - checks])
                .filter(|charge| charge.shards > 1);
            if let Some(charge) = busy_shard {
                return Ok(PutOutcome::Busy {
                    limit: charge.limit,
                });
            }
            let conflict = reasons.iter().any(conflicted);
            if !conflict || attempt == CONFLICT_ATTEMPTS || !self.retries.spend() {
                return Err(unavailable(error));
            }
            tracing::debug!(attempt, "send transaction conflicted; trying again");
            tokio::time::sleep(conflict_pause(attempt)).await;
            attempt += 1;
        }
    }

    fn put_refusal(
        &self,
        old: &HashMap<String, AttributeValue>,
        network: &Network,
        now: u64,
        policy: &Policy,
    ) -> Result<PutOutcome, StoreError> {
        put_refusal(old, &asking(network, now, policy), now, policy)
    }
}

/// An update's condition, names and values.
struct Expr {
    condition: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

/// A short random pause before retrying a conflicted transaction, growing with each attempt, so
/// the colliding senders spread out.
fn conflict_pause(attempt: u32) -> std::time::Duration {
    use rand::RngExt as _;
    let base = 10u64 << attempt.min(4);
    std::time::Duration::from_millis(rand::rng().random_range(base / 2..=base))
}

/// The per-item reasons of a cancelled transaction, if that is what the error is.
fn cancellation_reasons(
    error: &SdkError<TransactWriteItemsError>,
) -> Option<&[CancellationReason]> {
    match error.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(cancelled) => {
            Some(cancelled.cancellation_reasons())
        }
        _ => None,
    }
}

/// A fresh id for one logical operation; the SDK's retries of it resend the same id.
fn request_id() -> AttributeValue {
    AttributeValue::S(request_token())
}

/// The text of a fresh request id (22 characters: within a transaction token's 36).
fn request_token() -> String {
    use base64::Engine as _;
    use rand::RngExt as _;
    let mut bytes = [0u8; 16];
    rand::rng().fill(&mut bytes[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `item` was last written by the request `request`.
fn written_by(item: &HashMap<String, AttributeValue>, request: &AttributeValue) -> bool {
    item.get(LAST_REQUEST) == Some(request)
}

fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn blob(hash: &CodeHash) -> AttributeValue {
    AttributeValue::B(Blob::new(hash.as_bytes().to_vec()))
}

fn guess_list(guesses: &Guesses) -> AttributeValue {
    AttributeValue::L(guesses.hashes().iter().map(blob).collect())
}

fn unavailable<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::Unavailable(Box::new(error))
}

/// Typed reads of item attributes; a malformed item is a `Corrupt` error, never a panic.
trait ItemExt {
    fn number(&self, name: &str) -> Result<u64, StoreError>;
    fn hash(&self, name: &str) -> Result<Option<CodeHash>, StoreError>;
    fn guesses(&self) -> Result<Option<Guesses>, StoreError>;
}

impl ItemExt for HashMap<String, AttributeValue> {
    fn number(&self, name: &str) -> Result<u64, StoreError> {
        match self.get(name) {
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("{name} is not a whole number"))),
            _ => Err(StoreError::Corrupt(format!("{name} is missing or not N"))),
        }
    }

    fn hash(&self, name: &str) -> Result<Option<CodeHash>, StoreError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::B(blob)) => CodeHash::from_bytes(blob.as_ref())
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt(format!("{name} has the wrong length"))),
            Some(_) => Err(StoreError::Corrupt(format!("{name} is not B"))),
        }
    }

    fn guesses(&self) -> Result<Option<Guesses>, StoreError> {
        match self.get(GUESSES) {
            None => Ok(self
                .hash(LEGACY_LAST_GUESS)?
                .map(|one| Guesses::from_hashes(vec![one]))),
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|value| match value {
                    AttributeValue::B(blob) => CodeHash::from_bytes(blob.as_ref()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(|hashes| Some(Guesses::from_hashes(hashes)))
                .ok_or_else(|| StoreError::Corrupt(format!("{GUESSES} holds a non-hash"))),
            Some(_) => Err(StoreError::Corrupt(format!("{GUESSES} is not L"))),
        }
    }
}

/// The code under each code key, each mapped to `value`.
fn markers(markers: &Guesses, value: i64) -> AttributeValue {
    AttributeValue::M(
        markers
            .hashes()
            .iter()
            .map(|hash| (encoded(hash), AttributeValue::N(value.to_string())))
            .collect(),
    )
}

fn encoded(hash: &CodeHash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.as_bytes())
}

/// The attribute holding the tally of the network asking at `now`.
fn asking(network: &Network, now: u64, policy: &Policy) -> String {
    network_attribute(network, window_start(now, policy))
}

/// A signed whole number (a tally goes below zero after a right guess).
fn signed(item: &HashMap<String, AttributeValue>, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(n)) => n
            .parse()
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("{name} is not a whole number"))),
        Some(_) => Err(StoreError::Corrupt(format!("{name} is not N"))),
    }
}

/// The lockout counts an item holds for the asking network: `None` when it has none (written
/// before this lockout existed).
fn lockout(
    item: &HashMap<String, AttributeValue>,
    asking: &str,
) -> Result<Option<Lockout>, StoreError> {
    let Some(account_failures) = signed(item, ACCOUNT_FAILURES)? else {
        return Ok(None);
    };
    Ok(Some(Lockout {
        account_failures,
        latest_guess_at: item.number(ACCOUNT_LAST)?,
        network_failures: signed(item, asking)?.unwrap_or(0),
    }))
}

/// The record an item holds, or `None` when it holds no code (never sent, or withdrawn after a
/// failed delivery).
fn record(
    item: &HashMap<String, AttributeValue>,
    asking: &str,
) -> Result<Option<OtpRecord>, StoreError> {
    let Some(code_hash) = item.hash(CODE_HASH)? else {
        return Ok(None);
    };
    let channel = match item.get(CHANNEL) {
        Some(AttributeValue::S(s)) => Channel::parse(s),
        _ => None,
    }
    .ok_or_else(|| StoreError::Corrupt("channel is missing or unknown".to_owned()))?;
    let expires_at = if item.contains_key(CODE_EXPIRES_AT) {
        item.number(CODE_EXPIRES_AT)?
    } else {
        item.number(EXPIRES_AT)?
    };
    Ok(Some(OtpRecord {
        code_hash,
        channel,
        // Items from before destination binding have neither; they take no guess anyway.
        destination_hash: item.hash(DEST_HASH)?.unwrap_or_else(CodeHash::nothing),
        sent_to: match item.get(SENT_TO) {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => String::new(),
        },
        sent_country: match item.get(SENT_COUNTRY) {
            Some(AttributeValue::N(n)) => n.parse::<u16>().ok().filter(|&code| code != 0),
            _ => None,
        },
        sent_block: match (item.get(SENT_BLOCK), item.get(SENT_HINT)) {
            (Some(AttributeValue::S(id)), Some(AttributeValue::S(hint))) if !id.is_empty() => {
                Some(crate::fraud::Block {
                    id: id.clone(),
                    hint: hint.clone(),
                })
            }
            _ => None,
        },
        verification_id: match item.get("vid") {
            Some(AttributeValue::S(id)) => VerificationId::parse(id),
            _ => None,
        },
        sent_at: item.number(SENT_AT)?,
        expires_at,
        attempts: u32::try_from(item.number(ATTEMPTS)?)
            .map_err(|_| StoreError::Corrupt("attempts out of range".to_owned()))?,
        last_guess: item.guesses()?,
        // Items from before this lockout have no count: they take no guess.
        lockout: if item.contains_key(NETWORK_MARKERS) {
            lockout(item, asking)?
        } else {
            None
        },
    }))
}

/// Why a conditional put was refused, read from the old item.
fn put_refusal(
    old: &HashMap<String, AttributeValue>,
    asking: &str,
    now: u64,
    policy: &Policy,
) -> Result<PutOutcome, StoreError> {
    if let Some(retry_after) = lockout(old, asking)?.and_then(|l| l.locked_for(now, policy)) {
        return Ok(PutOutcome::Locked { retry_after });
    }
    // At least 1: the old code was inside its cooldown when DynamoDB checked.
    let retry_after = record(old, asking)?
        .and_then(|old| old.cooldown_left(now, policy.cooldown_secs))
        .unwrap_or(1);
    Ok(PutOutcome::CoolingDown { retry_after })
}

/// The item a refused condition returned, if the refusal was a condition at all.
/// The values of [`CHARGE_UPDATE`] and [`CHARGE_CONDITION`] for `charge`.
fn charge_values(charge: &Charge) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (":one".to_owned(), number(1)),
        (":resets_at".to_owned(), number(charge.resets_at)),
        (":cap".to_owned(), number(u64::from(charge.cap))),
    ])
}

fn refused_item(
    error: &SdkError<UpdateItemError>,
) -> Option<Option<&HashMap<String, AttributeValue>>> {
    match error.as_service_error()? {
        UpdateItemError::ConditionalCheckFailedException(refusal) => Some(refusal.item()),
        _ => None,
    }
}

#[async_trait]
impl OtpStore for DynamoStore {
    async fn put_unless_blocked(
        &self,
        key: &RecordKey,
        code: &NewCode,
        now: u64,
        policy: &Policy,
        charges: &[Charge],
    ) -> Result<PutOutcome, StoreError> {
        self.put_charged(key, code, now, policy, charges).await
    }

    async fn withdraw_if_holds(
        &self,
        key: &RecordKey,
        code_hash: &CodeHash,
        refunds: &[Charge],
    ) -> Result<bool, StoreError> {
        if refunds.is_empty() {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(PK, self.pk(key))
                .update_expression(WITHDRAW_UPDATE)
                .condition_expression(WITHDRAW_CONDITION)
                .expression_attribute_values(":code_hash", blob(code_hash))
                .send()
                .await;
            return match result {
                Ok(_) => Ok(true),
                Err(error) if refused_item(&error).is_some() => Ok(false),
                Err(error) => Err(unavailable(error)),
            };
        }
        // The refunds ride on the withdrawal: when a newer code replaced ours, the condition
        // cancels both, and the counters keep one send too many (never one too few).
        let withdraw = Update::builder()
            .table_name(&self.table)
            .key(PK, self.pk(key))
            .update_expression(WITHDRAW_UPDATE)
            .condition_expression(WITHDRAW_CONDITION)
            .expression_attribute_values(":code_hash", blob(code_hash))
            .build()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let mut items = vec![TransactWriteItem::builder().update(withdraw).build()];
        for refund in refunds {
            items.push(self.refund_item(refund)?);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => match cancellation_reasons(&error) {
                Some(reasons)
                    if reasons.first().and_then(CancellationReason::code)
                        == Some("ConditionalCheckFailed") =>
                {
                    Ok(false)
                }
                _ => Err(unavailable(error)),
            },
        }
    }

    async fn charge_alone(&self, charge: &Charge, _now: u64) -> Result<bool, StoreError> {
        // One conditional update of the counter item. An SDK retry of an update whose answer was
        // lost may count it twice: the caller's limit then errs toward refusing, by one.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, Self::counter_pk(charge))
            .update_expression(CHARGE_UPDATE)
            .condition_expression(CHARGE_CONDITION)
            .set_expression_attribute_values(Some(charge_values(charge)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if refused_item(&error).is_some() => Ok(false),
            Err(error) => Err(unavailable(error)),
        }
    }

    fn describe(&self) -> String {
        format!("DynamoDB table {}", self.table)
    }

    async fn record_guess(
        &self,
        key: &RecordKey,
        guess: &GuessAttempt<'_>,
        now: u64,
        policy: &Policy,
    ) -> Result<GuessOutcome, StoreError> {
        let request = request_id();
        let asking = asking(guess.network, now, policy);
        let mut condition = GUESS_CONDITION.to_owned();
        let (mut names, mut values) = lockout_parts(guess.network, now, policy);
        let before = window_start(now, policy).saturating_sub(policy.lockout_window_secs);
        names.insert(
            "#net_before".to_owned(),
            network_attribute(guess.network, before),
        );
        values.extend([
            (":one".to_owned(), number(1)),
            (":zero".to_owned(), number(0)),
            (":guesses".to_owned(), guess_list(guess.guesses)),
            (":request".to_owned(), request.clone()),
            (":now".to_owned(), number(now)),
            (":keep".to_owned(), number(now + policy.keep_record_secs())),
            (":max".to_owned(), number(u64::from(policy.max_attempts))),
        ]);
        if let Some(destination) = guess.destination {
            condition.push_str(" AND dest_hash = :dest");
            values.insert(":dest".to_owned(), blob(destination));
        }
        // A code is marked under every key of the ring it was sent with; the oldest key of
        // today's ring is among those for every code that can still verify.
        let lookup = guess
            .guesses
            .hashes()
            .last()
            .ok_or_else(|| StoreError::Corrupt("a guess without hashes".to_owned()))?;
        names.extend([
            ("#r".to_owned(), "right_guess".to_owned()),
            ("#rn".to_owned(), NETWORK_MARKERS.to_owned()),
            ("#g".to_owned(), encoded(lookup)),
        ]);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, self.pk(key))
            .update_expression(GUESS_UPDATE)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let guessed = |item| {
            record(item, &asking)?
                .map(GuessOutcome::Recorded)
                .ok_or_else(|| StoreError::Corrupt("a guessed item has no code".to_owned()))
        };
        match result {
            Ok(output) => {
                guessed(output.attributes().ok_or_else(|| {
                    StoreError::Corrupt("update returned no attributes".to_owned())
                })?)
            }
            Err(error) => match refused_item(&error) {
                // Our own earlier attempt was applied and its answer lost: that item is our result.
                Some(Some(old)) if written_by(old, &request) => guessed(old),
                Some(Some(old)) => Ok(GuessOutcome::Refused(record(old, &asking)?)),
                Some(None) => Ok(GuessOutcome::Refused(None)),
                None => Err(unavailable(error)),
            },
        }
    }

    async fn verification(
        &self,
        id: &VerificationId,
    ) -> Result<Option<(Verification, Option<OtpRecord>)>, StoreError> {
        self.read_verification(id).await
    }

    async fn cancel(&self, verification: &Verification, now: u64) -> Result<Cancel, StoreError> {
        self.cancel_verification(verification, now).await
    }

    async fn record_delivery(
        &self,
        id: &VerificationId,
        receipt: &Receipt,
    ) -> Result<ReceiptOutcome, StoreError> {
        self.write_receipt(id, receipt).await
    }

    async fn keep_message_id(
        &self,
        id: &VerificationId,
        message_id: &str,
    ) -> Result<(), StoreError> {
        self.write_message_id(id, message_id).await
    }
}

mod fraud;
pub use fraud::stream_ticks;
mod lifecycle;
pub use lifecycle::{record_endings, verification_change, Ending};
mod verifications;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_network_is_counted_in_an_attribute_of_its_own_per_window() {
        let policy = Policy {
            lockout_window_secs: 600,
            ..Policy::default()
        };
        let a = Network::pseudonymous("AAAA".to_owned());
        let at = |now| asking(&a, now, &policy);
        assert_eq!(at(1_800_000_123), "net_AAAA_1800000000");
        assert_eq!(at(1_800_000_599), at(1_800_000_123), "one window");
        assert_eq!(at(1_800_000_600), "net_AAAA_1800000600", "the next");
        assert_eq!(
            asking(&Network::unknown(), 1_800_000_123, &policy),
            "net_-_1800000000"
        );
    }

    #[test]
    fn every_placeholder_of_the_lockout_is_given_a_value() {
        // DynamoDB refuses a request naming a placeholder it was not given (or given one it
        // does not use); the send's condition and the guess's use the same lockout parts.
        let (names, values) = lockout_parts(&Network::unknown(), 0, &Policy::default());
        for expression in [PUT_CONDITION, GUESS_CONDITION] {
            for name in names.keys() {
                assert!(expression.contains(name.as_str()), "{name} in {expression}");
            }
            for value in values.keys() {
                assert!(
                    expression.contains(value.as_str()),
                    "{value} in {expression}"
                );
            }
        }
    }
}

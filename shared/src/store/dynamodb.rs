//! The production store. Every operation is ONE conditional DynamoDB request; the condition is
//! what makes it atomic, and `ALL_OLD` on a refused condition tells us why without a second read.
//!
//! The table (key `pk`, TTL on `expires_at`) is declared once, in `template.yaml`; tests and
//! scripts read it from there. Item: `pk` (S, `purpose#pseudonym`), `code_hash` (B), `channel`
//! (S), `sent_at` (N), `expires_at` (N, the TTL attribute), `attempts` (N), `guesses` (L of B,
//! optional: the latest guess under each code key), `last_request` (S, the id of the last write).
//! No phone number or address is stored, not even in the key. Items written before key rotation
//! existed hold `last_guess` (B) instead of `guesses`; they are read and guarded the same way
//! until their TTL removes them.
//!
//! Retries: the SDK retries an attempt that timed out or got a 5xx, but DynamoDB may have applied
//! it already. Each operation therefore carries a fresh request id, stored with its write, and
//! the conditions recognise "this very request was already applied": a retried send overwrites
//! its own item instead of refusing itself with a cooldown, and a retried guess is reported from
//! the item it already updated instead of counting a second attempt or calling a consumed code
//! "not found".

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

use super::{GuessOutcome, OtpRecord, OtpStore, PutOutcome, RecordKey, StoreError};
use crate::code::{CodeHash, CodeHasher, Guesses};
use crate::domain::Channel;

const PK: &str = "pk";
const CODE_HASH: &str = "code_hash";
const CHANNEL: &str = "channel";
const SENT_AT: &str = "sent_at";
const EXPIRES_AT: &str = "expires_at";
const ATTEMPTS: &str = "attempts";
const GUESSES: &str = "guesses";
const LEGACY_LAST_GUESS: &str = "last_guess";
const LAST_REQUEST: &str = "last_request";

/// Replace unless the old code is live and inside its cooldown: absent, expired, used, or sent
/// at least `cooldown` ago.
const PUT_CONDITION: &str = "attribute_not_exists(pk) OR expires_at <= :now \
     OR sent_at <= :cooldown_start OR contains(guesses, code_hash) OR last_guess = code_hash \
     OR last_request = :request";

/// Only the code we wrote: a newer send between our put and this delete must survive.
const DELETE_CONDITION: &str = "code_hash = :code_hash";

/// Reserve the attempt and record the guess together. Refused when absent, expired, out of
/// attempts, or already used (its last guess, under one of the code keys, equals its code). A
/// right guess makes the record "used", so the same condition refuses every later request:
/// single use without a second write, whichever key made the code.
const GUESS_UPDATE: &str =
    "SET attempts = attempts + :one, guesses = :guesses, last_request = :request";
const GUESS_CONDITION: &str = "attribute_exists(pk) AND expires_at > :now AND attempts < :max \
     AND NOT contains(guesses, code_hash) \
     AND (attribute_not_exists(last_guess) OR last_guess <> code_hash) \
     AND (attribute_not_exists(last_request) OR last_request <> :request)";

pub struct DynamoStore {
    client: Client,
    table: String,
    /// Turns user ids into keyed pseudonyms for `pk`.
    hasher: CodeHasher,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, hasher: CodeHasher) -> Self {
        Self {
            client,
            table: table.into(),
            hasher,
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn pk(&self, key: &RecordKey) -> AttributeValue {
        AttributeValue::S(format!(
            "{}#{}",
            key.purpose.as_str(),
            self.hasher.pseudonym(&key.user_id)
        ))
    }
}

/// A fresh id for one logical operation; the SDK's retries of it resend the same id.
fn request_id() -> AttributeValue {
    use base64::Engine as _;
    use rand::RngExt as _;
    let mut bytes = [0u8; 16];
    rand::rng().fill(&mut bytes[..]);
    AttributeValue::S(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
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

impl TryFrom<&HashMap<String, AttributeValue>> for OtpRecord {
    type Error = StoreError;

    fn try_from(item: &HashMap<String, AttributeValue>) -> Result<Self, StoreError> {
        let channel = match item.get(CHANNEL) {
            Some(AttributeValue::S(s)) => Channel::parse(s),
            _ => None,
        }
        .ok_or_else(|| StoreError::Corrupt("channel is missing or unknown".to_owned()))?;
        Ok(OtpRecord {
            code_hash: item
                .hash(CODE_HASH)?
                .ok_or_else(|| StoreError::Corrupt("code_hash is missing".to_owned()))?,
            channel,
            sent_at: item.number(SENT_AT)?,
            expires_at: item.number(EXPIRES_AT)?,
            attempts: u32::try_from(item.number(ATTEMPTS)?)
                .map_err(|_| StoreError::Corrupt("attempts out of range".to_owned()))?,
            last_guess: item.guesses()?,
        })
    }
}

fn record_item(
    pk: AttributeValue,
    record: &OtpRecord,
    request: AttributeValue,
) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        (PK.to_owned(), pk),
        (LAST_REQUEST.to_owned(), request),
        (CODE_HASH.to_owned(), blob(&record.code_hash)),
        (
            CHANNEL.to_owned(),
            AttributeValue::S(record.channel.as_str().to_owned()),
        ),
        (SENT_AT.to_owned(), number(record.sent_at)),
        (EXPIRES_AT.to_owned(), number(record.expires_at)),
        (ATTEMPTS.to_owned(), number(u64::from(record.attempts))),
    ]);
    if let Some(guesses) = &record.last_guess {
        item.insert(GUESSES.to_owned(), guess_list(guesses));
    }
    item
}

#[async_trait]
impl OtpStore for DynamoStore {
    async fn put_unless_cooling_down(
        &self,
        key: &RecordKey,
        record: &OtpRecord,
        now: u64,
        cooldown_secs: u64,
    ) -> Result<PutOutcome, StoreError> {
        let request = request_id();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(record_item(self.pk(key), record, request.clone())))
            .condition_expression(PUT_CONDITION)
            .expression_attribute_values(":request", request)
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(
                ":cooldown_start",
                number(now.saturating_sub(cooldown_secs)),
            )
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutOutcome::Stored),
            Err(error) => match error.as_service_error().and_then(|e| match e {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => Some(c.item()),
                _ => None,
            }) {
                Some(Some(old)) => {
                    let old = OtpRecord::try_from(old)?;
                    // At least 1: the old item was inside its cooldown when DynamoDB checked.
                    let retry_after = old.cooldown_left(now, cooldown_secs).unwrap_or(1);
                    Ok(PutOutcome::CoolingDown { retry_after })
                }
                Some(None) => Err(StoreError::Corrupt(
                    "conditional put refused without the old item".to_owned(),
                )),
                None => Err(unavailable(error)),
            },
        }
    }

    async fn delete_if_holds(
        &self,
        key: &RecordKey,
        code_hash: &CodeHash,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, self.pk(key))
            .condition_expression(DELETE_CONDITION)
            .expression_attribute_values(":code_hash", blob(code_hash))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    fn describe(&self) -> String {
        format!("DynamoDB table {}", self.table)
    }

    async fn record_guess(
        &self,
        key: &RecordKey,
        guess: &Guesses,
        now: u64,
        max_attempts: u32,
    ) -> Result<GuessOutcome, StoreError> {
        let request = request_id();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, self.pk(key))
            .update_expression(GUESS_UPDATE)
            .condition_expression(GUESS_CONDITION)
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":guesses", guess_list(guess))
            .expression_attribute_values(":request", request.clone())
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":max", number(u64::from(max_attempts)))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item = output.attributes().ok_or_else(|| {
                    StoreError::Corrupt("update returned no attributes".to_owned())
                })?;
                Ok(GuessOutcome::Recorded(OtpRecord::try_from(item)?))
            }
            Err(error) => match error.as_service_error().and_then(|e| match e {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => Some(c.item()),
                _ => None,
            }) {
                // Our own earlier attempt was applied and its answer lost: that item is our result.
                Some(Some(old)) if written_by(old, &request) => {
                    Ok(GuessOutcome::Recorded(OtpRecord::try_from(old)?))
                }
                Some(old) => Ok(GuessOutcome::Refused(
                    old.map(OtpRecord::try_from).transpose()?,
                )),
                None => Err(unavailable(error)),
            },
        }
    }
}

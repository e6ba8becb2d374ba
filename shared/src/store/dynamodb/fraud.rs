//! The fraud guard's items in the table, and the record changes its counting reads from the
//! table's stream.
//!
//! - `fraud:tally:<prefix>`: `tally` (S, the [`Tally`] as JSON), `ver` (N, written only if
//!   unchanged since read), `expires_at` (TTL). Written by the counting only, once per prefix
//!   per stream batch; never by a send.
//! - `fraud:check:<prefix>[:<shard>]`: `open_until` (N), `expires_at` (TTL). Written when a
//!   breaker opens or is extended; read by the sends' condition checks.
//! - `fraud:breakers`: one map attribute per breaker (`blk:…`/`cc:…`) with what people read in
//!   the list. Written when a breaker opens, is extended or closed.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
#[cfg(feature = "counting")]
use aws_sdk_dynamodb::types::{CancellationReason, KeysAndAttributes, Put, TransactWriteItem};

use super::{number, record, unavailable, DynamoStore, PK};
use crate::domain::Channel;
use crate::fraud::{self, OpenBreaker, Prefix, Reason, Tick};
#[cfg(feature = "counting")]
use crate::fraud::{Commit, Tally, TallyWrite, Versioned};
use crate::store::{FraudLedger, StoreError};

type Item = HashMap<String, AttributeValue>;

const REGISTRY: &str = "fraud:breakers";
/// A listed breaker whose hold ended this long ago is dropped from the list.
const LISTED_AFTER_SECS: u64 = 86_400;
/// `BatchWriteItem` takes at most 25 requests; leftovers are sent again this many times.
const BATCH_ATTEMPTS: u32 = 5;

#[cfg(feature = "counting")]
fn tally_pk(prefix: &Prefix) -> AttributeValue {
    AttributeValue::S(format!("fraud:tally:{}", prefix.key()))
}

/// A tally item's tally and version.
#[cfg(feature = "counting")]
fn versioned(item: &Item) -> Result<Versioned, StoreError> {
    let tally: Tally = match item.get("tally") {
        Some(AttributeValue::S(json)) => serde_json::from_str(json)
            .map_err(|e| StoreError::Corrupt(format!("a fraud tally is not JSON: {e}")))?,
        _ => {
            return Err(StoreError::Corrupt(
                "a fraud tally has no `tally`".to_owned(),
            ))
        }
    };
    let version = match item.get("ver") {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| StoreError::Corrupt("a fraud tally's version".to_owned()))?,
        _ => 0,
    };
    Ok((tally, version))
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn signed(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn listed(breaker: &OpenBreaker) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("hint".to_owned(), text(&breaker.hint)),
        ("opened_at".to_owned(), number(breaker.opened_at)),
        ("until".to_owned(), number(breaker.until)),
        ("sent".to_owned(), signed(breaker.sent)),
        ("verified".to_owned(), signed(breaker.verified)),
        ("reason".to_owned(), text(breaker.reason.as_str())),
    ]))
}

fn unlisted(prefix: &str, value: &AttributeValue) -> Option<OpenBreaker> {
    let map = value.as_m().ok()?;
    let n = |name: &str| map.get(name)?.as_n().ok()?.parse::<i64>().ok();
    let s = |name: &str| map.get(name)?.as_s().ok().cloned();
    Some(OpenBreaker {
        prefix: prefix.to_owned(),
        hint: s("hint")?,
        opened_at: u64::try_from(n("opened_at")?).ok()?,
        until: u64::try_from(n("until")?).ok()?,
        sent: n("sent")?,
        verified: n("verified")?,
        reason: match s("reason")?.as_str() {
            "velocity" => Reason::Velocity,
            _ => Reason::Conversion,
        },
    })
}

impl DynamoStore {
    /// Sends `requests` with `BatchWriteItem`, 25 at a time, again for what comes back
    /// unprocessed.
    async fn write_batch(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        while !requests.is_empty() {
            let rest = requests.split_off(requests.len().min(25));
            let mut batch = std::mem::replace(&mut requests, rest);
            for attempt in 1..=BATCH_ATTEMPTS {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, batch)
                    .send()
                    .await
                    .map_err(unavailable)?;
                batch = output
                    .unprocessed_items()
                    .and_then(|left| left.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if batch.is_empty() {
                    break;
                }
                if attempt == BATCH_ATTEMPTS {
                    return Err(StoreError::Unavailable(
                        "the table kept leaving breaker items unwritten".into(),
                    ));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
    }

    /// Puts the check items of `prefix`, held until `until`.
    async fn put_checks(&self, prefix: &Prefix, until: u64) -> Result<(), StoreError> {
        let requests = prefix
            .check_items()
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .item(PK, AttributeValue::S(item))
                    .item("open_until", number(until))
                    .item(super::EXPIRES_AT, number(until))
                    .build()
                    .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_batch(requests).await
    }

    async fn registry(&self) -> Result<Item, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, text(REGISTRY))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item().cloned().unwrap_or_default())
    }
}

#[async_trait]
impl FraudLedger for DynamoStore {
    #[cfg(feature = "counting")]
    async fn load_tallies(&self, prefixes: &[Prefix]) -> Result<Vec<Versioned>, StoreError> {
        let mut found: HashMap<String, Versioned> = HashMap::new();
        for chunk in prefixes.chunks(100) {
            let mut keys = KeysAndAttributes::builder()
                .set_keys(Some(
                    chunk
                        .iter()
                        .map(|p| HashMap::from([(PK.to_owned(), tally_pk(p))]))
                        .collect(),
                ))
                .consistent_read(true)
                .build()
                .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
            for attempt in 1..=BATCH_ATTEMPTS {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(unavailable)?;
                for item in output
                    .responses()
                    .and_then(|r| r.get(&self.table))
                    .into_iter()
                    .flatten()
                {
                    let pk = item.get(PK).and_then(|v| v.as_s().ok()).cloned();
                    found.insert(pk.unwrap_or_default(), versioned(item)?);
                }
                match output
                    .unprocessed_keys()
                    .and_then(|left| left.get(&self.table))
                {
                    Some(left) if !left.keys().is_empty() && attempt < BATCH_ATTEMPTS => {
                        keys = left.clone();
                        tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                    }
                    Some(left) if !left.keys().is_empty() => {
                        return Err(StoreError::Unavailable(
                            "the table kept leaving fraud tallies unread".into(),
                        ))
                    }
                    _ => break,
                }
            }
        }
        Ok(prefixes
            .iter()
            .map(|p| {
                let pk = tally_pk(p);
                found
                    .remove(pk.as_s().map(String::as_str).unwrap_or(""))
                    .unwrap_or_default()
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
        let mut items = Vec::with_capacity(events.len() + tallies.len());
        for event in events {
            let put = Put::builder()
                .table_name(&self.table)
                .item(PK, AttributeValue::S(format!("fraud:counted:{event}")))
                .item(super::EXPIRES_AT, number(now + fraud::COUNTED_FOR_SECS))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        for write in tallies {
            let json = serde_json::to_string(write.tally)
                .map_err(|e| StoreError::Corrupt(format!("a fraud tally: {e}")))?;
            let put = Put::builder()
                .table_name(&self.table)
                .item(PK, tally_pk(write.prefix))
                .item("tally", AttributeValue::S(json))
                .item("ver", number(write.version + 1))
                .item(super::EXPIRES_AT, number(write.keep_until));
            let put = if write.version == 0 {
                put.condition_expression("attribute_not_exists(ver)")
            } else {
                put.condition_expression("ver = :ver")
                    .expression_attribute_values(":ver", number(write.version))
            };
            let put = put
                .build()
                .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        if items.is_empty() {
            return Ok(Commit::Done);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Commit::Done),
            Err(error) => error,
        };
        let Some(reasons) = super::cancellation_reasons(&error) else {
            return Err(unavailable(error));
        };
        let refused = |r: &CancellationReason| r.code() == Some("ConditionalCheckFailed");
        let seen: Vec<String> = events
            .iter()
            .zip(reasons)
            .filter(|(_, reason)| refused(reason))
            .map(|(event, _)| event.clone())
            .collect();
        if !seen.is_empty() {
            return Ok(Commit::Counted(seen));
        }
        let retry = reasons
            .iter()
            .any(|r| refused(r) || r.code() == Some("TransactionConflict"));
        if retry {
            Ok(Commit::Conflict)
        } else {
            Err(unavailable(error))
        }
    }

    async fn hold(&self, breaker: &OpenBreaker) -> Result<(), StoreError> {
        let prefix = Prefix::parse(&breaker.prefix)
            .ok_or_else(|| StoreError::Corrupt(format!("no prefix {:?}", breaker.prefix)))?;
        self.put_checks(&prefix, breaker.until).await?;
        // The list, with breakers long expired taken off it.
        let stale: Vec<String> = self
            .registry()
            .await?
            .iter()
            .filter(|(name, _)| name.as_str() != PK && name.as_str() != breaker.prefix)
            .filter(|(name, value)| {
                unlisted(name, value)
                    .is_none_or(|b| b.until + LISTED_AFTER_SECS < breaker.opened_at)
            })
            .map(|(name, _)| name.clone())
            .collect();
        let mut names = HashMap::from([("#p".to_owned(), breaker.prefix.clone())]);
        let mut expression = "SET #p = :entry".to_owned();
        if !stale.is_empty() {
            let removed: Vec<String> = (0..stale.len()).map(|i| format!("#s{i}")).collect();
            expression.push_str(&format!(" REMOVE {}", removed.join(", ")));
            names.extend(removed.into_iter().zip(stale));
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, text(REGISTRY))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .expression_attribute_values(":entry", listed(breaker))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn extend(&self, prefix: &Prefix, until: u64) -> Result<(), StoreError> {
        self.put_checks(prefix, until).await?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, text(REGISTRY))
            .update_expression("SET #p.#until = :until")
            .condition_expression("attribute_exists(#p)")
            .expression_attribute_names("#p", prefix.key())
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":until", number(until))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if super::refused_item(&error).is_some() => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn breakers(&self) -> Result<Vec<OpenBreaker>, StoreError> {
        let mut list: Vec<_> = self
            .registry()
            .await?
            .iter()
            .filter(|(name, _)| name.as_str() != PK)
            .filter_map(|(name, value)| unlisted(name, value))
            .collect();
        list.sort_by_key(|b| std::cmp::Reverse(b.opened_at));
        Ok(list)
    }

    async fn close(&self, prefix: &Prefix) -> Result<bool, StoreError> {
        let deletes = prefix
            .check_items()
            .into_iter()
            .map(|item| {
                let delete = DeleteRequest::builder()
                    .key(PK, AttributeValue::S(item))
                    .build()
                    .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.write_batch(deletes).await?;
        // The tally starts over (where this build counts; the send and verify functions do not
        // close breakers).
        #[cfg(feature = "counting")]
        for _ in 0..BATCH_ATTEMPTS {
            let (mut tally, version) = self
                .load_tallies(std::slice::from_ref(prefix))
                .await?
                .remove(0);
            if version == 0 {
                break;
            }
            tally.buckets.clear();
            tally.held = None;
            let write = TallyWrite {
                prefix,
                tally: &tally,
                version,
                keep_until: 0,
            };
            if self.commit(&[], &[write], 0).await? == Commit::Done {
                break;
            }
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, text(REGISTRY))
            .update_expression("REMOVE #p")
            .condition_expression("attribute_exists(#p)")
            .expression_attribute_names("#p", prefix.key())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if super::refused_item(&error).is_some() => Ok(false),
            Err(error) => Err(unavailable(error)),
        }
    }
}

/// The fraud guard's ticks of one change to an item of the table, read from its stream: `old`
/// and `new` are the images, `removed` says the item itself was deleted (by TTL), `seq` where
/// the stream record's id. Counters, tallies and breakers are not records: no tick.
pub fn stream_ticks(
    old: Option<&Item>,
    new: Option<&Item>,
    removed: bool,
    event: &str,
) -> Result<Vec<Tick>, StoreError> {
    let pk = old.or(new).and_then(|item| item.get(PK)?.as_s().ok());
    if pk.is_none_or(|pk| pk.starts_with("limit:") || pk.starts_with("fraud:")) {
        return Ok(Vec::new());
    }
    if pk.is_some_and(|pk| pk.starts_with("ver:")) {
        return undelivered_tick(old, new, event);
    }
    let old = old.map(|item| record(item, "")).transpose()?.flatten();
    let new = new.map(|item| record(item, "")).transpose()?.flatten();
    let (old, new) = (old.as_ref().map(sent_view), new.as_ref().map(sent_view));
    let mut ticks = fraud::ticks_of_change(old.as_ref(), new.as_ref(), removed);
    for tick in &mut ticks {
        tick.event = Some(event.to_owned());
    }
    Ok(ticks)
}

/// A verification item's change is a tick when a delivery receipt first says its SMS-class
/// code was undelivered (or failed): counted against the code's block, in its send's bucket.
fn undelivered_tick(
    old: Option<&Item>,
    new: Option<&Item>,
    event: &str,
) -> Result<Vec<Tick>, StoreError> {
    use crate::verification::DeliveryStatus::{Failed, Undelivered};
    let Some((old, new)) = super::verification_change(old, new)? else {
        return Ok(Vec::new());
    };
    let failed = |status| matches!(status, Undelivered | Failed);
    let newly = failed(new.delivery.status) && !old.is_some_and(|o| failed(o.delivery.status));
    Ok(match (newly, new.block) {
        (true, Some(block)) => vec![Tick {
            kind: fraud::TickKind::Undelivered,
            block: Some(block),
            country: new.calling_code,
            sent_at: new.created_at,
            event: Some(event.to_owned()),
        }],
        _ => Vec::new(),
    })
}

fn sent_view(record: &crate::store::OtpRecord) -> fraud::Sent<'_> {
    fraud::Sent {
        phone: record.channel != Channel::Email,
        block: record.sent_block.as_ref(),
        country: record.sent_country,
        sent_at: record.sent_at,
        code_hash: &record.code_hash,
        consumed: record.is_consumed(),
    }
}

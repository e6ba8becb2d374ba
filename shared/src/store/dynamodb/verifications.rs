//! Verification items: `ver:<id>`, one per accepted send, put in the send's own transaction.
//!
//! `space` (S), `user` (S, the caller's user id: the lookup answers with it), `purpose` (S),
//! `channel` (S), `sent_to` (S, masked), `sent_cc` (N, 0 for email), `sent_blk` and `sent_hint`
//! (S, a phone code's block and its hint, for the fraud guard), `created_at` (N),
//! `code_expires_at` (N), `max_att` (N), `dlv` (S, the delivery status), `dlv_rank` (N, receipts
//! only move it up), `dlv_err` (S), `dlv_at` (N), `msg_id` (S), `st` and `st_at` (S and N: how it
//! ended, once written down), `locked_at` (N), `expires_at` (N, the TTL: a week after the code's
//! expiry). The record names its verification in `vid`.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};

use super::{cancellation_reasons, number, record, unavailable, DynamoStore, ItemExt, PK};
use crate::domain::{Channel, Space};
use crate::store::{status_of, OtpRecord, StoreError};
use crate::verification::{
    Cancel, Delivery, DeliveryStatus, Receipt, ReceiptOutcome, Status, Verification, VerificationId,
};

type Item = HashMap<String, AttributeValue>;

/// Cancel a code only while it is this verification's and pending: present, unused, attempts
/// left, unexpired. Removing the code ends it (a guess needs `code_hash`) and frees the cooldown.
const CANCEL_UPDATE: &str = "REMOVE code_hash, right_guess";
const CANCEL_CONDITION: &str = "vid = :vid AND attribute_exists(code_hash) \
     AND NOT contains(guesses, code_hash) AND attempts < :max AND code_expires_at > :now";
const ENDED_UPDATE: &str = "SET st = :st, st_at = :now";
const NOT_ENDED: &str = "attribute_exists(pk) AND attribute_not_exists(st)";
/// A receipt moves the delivery forward only (see [`DeliveryStatus::rank`]).
/// The provider's message id is kept when a receipt has none.
const RECEIPT_UPDATE: &str = "SET dlv = :dlv, dlv_rank = :rank, dlv_at = :at, dlv_err = :err";
const RECEIPT_CONDITION: &str = "attribute_exists(pk) AND dlv_rank < :rank";

pub(super) fn verification_pk(id: &VerificationId) -> AttributeValue {
    AttributeValue::S(format!("ver:{id}"))
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn space_name(space: Space) -> &'static str {
    match space {
        Space::Backend => "backend",
        Space::Public => "public",
    }
}

/// The item a send puts for its verification.
pub(super) fn verification_put(
    table: &str,
    verification: &Verification,
) -> Result<TransactWriteItem, StoreError> {
    let v = verification;
    let mut item = HashMap::from([
        (PK.to_owned(), verification_pk(&v.id)),
        ("space".to_owned(), text(space_name(v.space))),
        ("user".to_owned(), text(&v.user_id)),
        ("purpose".to_owned(), text(&v.purpose)),
        ("channel".to_owned(), text(v.channel.as_str())),
        ("sent_to".to_owned(), text(&v.sent_to)),
        (
            "sent_cc".to_owned(),
            number(u64::from(v.calling_code.unwrap_or(0))),
        ),
        ("created_at".to_owned(), number(v.created_at)),
        ("code_expires_at".to_owned(), number(v.expires_at)),
        ("max_att".to_owned(), number(u64::from(v.max_attempts))),
        ("dlv".to_owned(), text(v.delivery.status.as_str())),
        ("dlv_rank".to_owned(), number(0)),
        ("expires_at".to_owned(), number(v.keep_until())),
    ]);
    if let Some(block) = &v.block {
        item.insert("sent_blk".to_owned(), text(&block.id));
        item.insert("sent_hint".to_owned(), text(&block.hint));
    }
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn string(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Ok(s.clone()),
        _ => Err(StoreError::Corrupt(format!(
            "a verification's {name} is missing or not S"
        ))),
    }
}

fn optional(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The verification a `ver:` item holds.
pub(super) fn verification(id: &VerificationId, item: &Item) -> Result<Verification, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("a verification's {what}"));
    let space = match string(item, "space")?.as_str() {
        "backend" => Space::Backend,
        "public" => Space::Public,
        _ => return Err(corrupt("space")),
    };
    let calling_code = u16::try_from(item.number("sent_cc")?)
        .ok()
        .filter(|&c| c != 0);
    let ended = match optional(item, "st") {
        Some(name) => Some((
            Status::parse(&name).ok_or_else(|| corrupt("status"))?,
            item.number("st_at")?,
        )),
        None => None,
    };
    let received = item.contains_key("dlv_at");
    Ok(Verification {
        id: id.clone(),
        space,
        user_id: string(item, "user")?,
        purpose: string(item, "purpose")?,
        channel: Channel::parse(&string(item, "channel")?).ok_or_else(|| corrupt("channel"))?,
        sent_to: string(item, "sent_to")?,
        calling_code,
        block: match (optional(item, "sent_blk"), optional(item, "sent_hint")) {
            (Some(id), Some(hint)) => Some(crate::fraud::Block { id, hint }),
            _ => None,
        },
        created_at: item.number("created_at")?,
        expires_at: item.number("code_expires_at")?,
        max_attempts: u32::try_from(item.number("max_att")?)
            .map_err(|_| corrupt("max attempts"))?,
        delivery: Delivery {
            status: DeliveryStatus::parse(&string(item, "dlv")?)
                .ok_or_else(|| corrupt("delivery"))?,
            error_code: optional(item, "dlv_err"),
            updated_at: if received {
                Some(item.number("dlv_at")?)
            } else {
                None
            },
            provider_message_id: optional(item, "msg_id"),
        },
        ended,
        locked_at: match item.get("locked_at") {
            Some(_) => Some(item.number("locked_at")?),
            None => None,
        },
    })
}

impl DynamoStore {
    /// The verification's item and its record's, in one consistent read each.
    pub(super) async fn read_verification(
        &self,
        id: &VerificationId,
    ) -> Result<Option<(Verification, Option<OtpRecord>)>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, verification_pk(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = found.item() else {
            return Ok(None);
        };
        let verification = verification(id, item)?;
        if verification.space == Space::Public {
            // Its user id is masked: its record cannot be named (nor is it ever shown).
            return Ok(Some((verification, None)));
        }
        let key = crate::store::verification_key(&verification)?;
        let current = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, self.pk(&key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let record = match current.item() {
            Some(item) => record(item, "-")?,
            None => None,
        };
        Ok(Some((verification, record)))
    }

    /// One transaction: the code removed if still pending, and the verification marked canceled.
    pub(super) async fn cancel_verification(
        &self,
        verification: &Verification,
        now: u64,
    ) -> Result<Cancel, StoreError> {
        let key = crate::store::verification_key(verification)?;
        let code = Update::builder()
            .table_name(&self.table)
            .key(PK, self.pk(&key))
            .update_expression(CANCEL_UPDATE)
            .condition_expression(CANCEL_CONDITION)
            .expression_attribute_values(":vid", text(verification.id.as_str()))
            .expression_attribute_values(":max", number(u64::from(verification.max_attempts)))
            .expression_attribute_values(":now", number(now))
            .build()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let ended = Update::builder()
            .table_name(&self.table)
            .key(PK, verification_pk(&verification.id))
            .update_expression(ENDED_UPDATE)
            .condition_expression(NOT_ENDED)
            .expression_attribute_values(":st", text(Status::Canceled.as_str()))
            .expression_attribute_values(":now", number(now))
            .build()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(code).build())
            .transact_items(TransactWriteItem::builder().update(ended).build())
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(Cancel::Canceled),
            Err(error) => error,
        };
        if cancellation_reasons(&error).is_none() {
            return Err(unavailable(error));
        }
        // Not pending (or ended meanwhile): say how it stands now.
        let Some((now_stored, record)) = self.read_verification(&verification.id).await? else {
            return Ok(Cancel::Unknown);
        };
        Ok(match status_of(&now_stored, record.as_ref(), now) {
            None => Cancel::Unknown,
            Some(Status::Canceled) => Cancel::Canceled,
            Some(Status::Pending) => {
                return Err(StoreError::Unavailable(
                    "a cancel conflicted with another change; try again".into(),
                ))
            }
            Some(other) => Cancel::Ended(other),
        })
    }

    pub(super) async fn write_message_id(
        &self,
        id: &VerificationId,
        message_id: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, verification_pk(id))
            .update_expression("SET msg_id = :msg")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":msg", text(message_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(unavailable(error)),
            },
        }
    }

    pub(super) async fn write_receipt(
        &self,
        id: &VerificationId,
        receipt: &Receipt,
    ) -> Result<ReceiptOutcome, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, verification_pk(id))
            .condition_expression(RECEIPT_CONDITION)
            .expression_attribute_values(":dlv", text(receipt.status.as_str()))
            .expression_attribute_values(":rank", number(u64::from(receipt.status.rank())))
            .expression_attribute_values(":at", number(receipt.at))
            .expression_attribute_values(
                ":err",
                text(receipt.error_code.as_deref().unwrap_or_default()),
            )
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        update = match &receipt.provider_message_id {
            Some(message) => update
                .update_expression(format!("{RECEIPT_UPDATE}, msg_id = :msg"))
                .expression_attribute_values(":msg", text(message)),
            None => update.update_expression(RECEIPT_UPDATE),
        };
        let result = update.send().await;
        match result {
            Ok(output) => {
                let after = output
                    .attributes()
                    .ok_or_else(|| StoreError::Corrupt("a receipt returned no item".to_owned()))?;
                let verification = verification(id, after)?;
                Ok(ReceiptOutcome::Applied {
                    calling_code: verification.calling_code,
                    block: verification.block,
                    sent_at: verification.created_at,
                })
            }
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                    Ok(match refused.item() {
                        Some(_) => ReceiptOutcome::Stale,
                        None => ReceiptOutcome::Unknown,
                    })
                }
                _ => Err(unavailable(error)),
            },
        }
    }
}

//! What the table's stream tells of verifications: how a record change ended a verification
//! (written down on its item, so the lookup and the events outlive the record), and the changes
//! of verification items themselves (the events).
//!
//! A send or a guess is one request and cannot write the verification's item too; the stream
//! sees the record before and after, and [`record_endings`] reads the ending from that: the
//! code was replaced (superseded, or how it had ended), the right code was entered, the last
//! attempt was used, or a wrong guess locked the user out.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::verifications::{verification, verification_pk};
use super::{number, record, unavailable, DynamoStore, ItemExt, ACCOUNT_FAILURES, PK};
use crate::settings::Policy;
use crate::store::{ended_by, StoreError};
use crate::verification::{Change, Status, VerificationId};

type Item = HashMap<String, AttributeValue>;

/// Something to write down on a verification's item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// How it ended, and when (written once).
    Ended(VerificationId, Status, u64),
    /// A wrong guess at it locked the user out (written once).
    Locked(VerificationId, u64),
}

fn pk_of(item: &Item) -> Option<&str> {
    item.get(PK)?.as_s().ok().map(String::as_str)
}

/// Whether an item is a code record (not a counter, a fraud guard item or a verification).
fn is_record(item: &Item) -> bool {
    pk_of(item).is_some_and(|pk| {
        !(pk.starts_with("limit:") || pk.starts_with("fraud:") || pk.starts_with("ver:"))
    })
}

/// The network tallies (`net_<network>_<window>`) that reached the lockout in this change.
fn network_locked(old: Option<&Item>, new: &Item, policy: &Policy) -> bool {
    let tally = |item: Option<&Item>, name: &str| -> i64 {
        match item.and_then(|i| i.get(name)) {
            Some(AttributeValue::N(n)) => n.parse().unwrap_or(0),
            _ => 0,
        }
    };
    let cap = i64::from(policy.lockout_failures);
    new.keys()
        .filter(|name| name.starts_with("net_"))
        .any(|name| tally(Some(new), name) >= cap && tally(old, name) < cap)
}

/// What a record change ends (see the module comment). `old` and `new` are the record's images;
/// `policy` is the deployment's (the functions share its settings).
pub fn record_endings(
    old: Option<&Item>,
    new: Option<&Item>,
    policy: &Policy,
) -> Result<Vec<Ending>, StoreError> {
    let Some(any) = old.or(new) else {
        return Ok(Vec::new());
    };
    if !is_record(any) {
        return Ok(Vec::new());
    }
    let before = old.map(|item| record(item, "")).transpose()?.flatten();
    let after = new.map(|item| record(item, "")).transpose()?.flatten();
    let mut endings = Vec::new();
    let (Some(before_id), after_id) = (
        before.as_ref().and_then(|r| r.verification_id.clone()),
        after.as_ref().and_then(|r| r.verification_id.clone()),
    ) else {
        // A first code, or one of before verification ids: only its own guesses matter.
        if let (Some(after), Some(new)) = (&after, new) {
            push_guess_endings(&mut endings, None, after, old, new, policy)?;
        }
        return Ok(endings);
    };
    match (&after, new) {
        (Some(after), Some(new_item)) if after.verification_id.as_ref() == Some(&before_id) => {
            push_guess_endings(&mut endings, before.as_ref(), after, old, new_item, policy)?;
        }
        (Some(after), _) if after_id.is_some() => {
            // Replaced by a newer code: the old one ended as it stood, or was superseded.
            let old_record = before.as_ref().expect("the old record has an id");
            let at = after.sent_at;
            let how = ended_by(old_record, policy.max_attempts, at).unwrap_or(Status::Superseded);
            endings.push(Ending::Ended(before_id, how, at));
        }
        // Withdrawn, canceled (written with the cancel) or deleted after expiry: the lookup
        // reads those from the record's absence.
        _ => {}
    }
    Ok(endings)
}

/// The endings of a guess at the code `after` holds.
fn push_guess_endings(
    endings: &mut Vec<Ending>,
    before: Option<&crate::store::OtpRecord>,
    after: &crate::store::OtpRecord,
    old: Option<&Item>,
    new: &Item,
    policy: &Policy,
) -> Result<(), StoreError> {
    let Some(id) = after.verification_id.clone() else {
        return Ok(());
    };
    if before.is_some_and(|b| b.attempts >= after.attempts) {
        return Ok(());
    }
    let at = new.number(super::ACCOUNT_LAST)?;
    let was_ended = before.and_then(|b| ended_by(b, policy.max_attempts, at));
    if let (None, Some(how)) = (was_ended, ended_by(after, policy.max_attempts, at)) {
        if how != Status::Expired {
            endings.push(Ending::Ended(id.clone(), how, at));
        }
    }
    let account = |item: Option<&Item>| match item.and_then(|i| i.get(ACCOUNT_FAILURES)) {
        Some(AttributeValue::N(n)) => n.parse::<i64>().unwrap_or(0),
        _ => 0,
    };
    let ceiling = i64::from(policy.lockout_ceiling);
    let account_locked = account(Some(new)) >= ceiling && account(old) < ceiling;
    if account_locked || network_locked(old, new, policy) {
        endings.push(Ending::Locked(id, at));
    }
    Ok(())
}

/// A verification item's change (`None` for any other item).
pub fn verification_change(
    old: Option<&Item>,
    new: Option<&Item>,
) -> Result<Option<Change>, StoreError> {
    let Some(new) = new else { return Ok(None) };
    let Some(id) = pk_of(new)
        .and_then(|pk| pk.strip_prefix("ver:"))
        .and_then(VerificationId::parse)
    else {
        return Ok(None);
    };
    let old = old.map(|item| verification(&id, item)).transpose()?;
    Ok(Some((old, verification(&id, new)?)))
}

impl DynamoStore {
    /// Writes an ending down, once: a repeat (a redelivered stream record) changes nothing.
    pub async fn write_ending(&self, ending: &Ending) -> Result<(), StoreError> {
        let update = self.client.update_item().table_name(&self.table);
        let update = match ending {
            Ending::Ended(id, status, at) => update
                .key(PK, verification_pk(id))
                .update_expression("SET st = :st, st_at = :at")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(st)")
                .expression_attribute_values(":st", AttributeValue::S(status.as_str().to_owned()))
                .expression_attribute_values(":at", number(*at)),
            Ending::Locked(id, at) => update
                .key(PK, verification_pk(id))
                .update_expression("SET locked_at = :at")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(locked_at)")
                .expression_attribute_values(":at", number(*at)),
        };
        match update.send().await {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(()),
                _ => Err(unavailable(error)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;

    const CODE: [u8; 32] = [1; 32];
    const WRONG: [u8; 32] = [2; 32];

    fn policy() -> Policy {
        Policy {
            max_attempts: 3,
            lockout_failures: 3,
            ..Policy::default()
        }
    }

    /// A record holding verification `vid`'s code, sent at `sent_at`, after `guesses`.
    fn record_item(vid: &str, sent_at: u64, guesses: &[[u8; 32]], net: i64) -> Item {
        let n = |v: u64| AttributeValue::N(v.to_string());
        let b = |v: &[u8; 32]| AttributeValue::B(Blob::new(v.to_vec()));
        HashMap::from([
            ("pk".into(), AttributeValue::S("login#user".into())),
            ("code_hash".into(), b(&CODE)),
            ("channel".into(), AttributeValue::S("sms".into())),
            ("dest_hash".into(), b(&[3; 32])),
            ("sent_to".into(), AttributeValue::S("+1******2671".into())),
            ("sent_cc".into(), n(1)),
            ("sent_at".into(), n(sent_at)),
            ("code_expires_at".into(), n(sent_at + 300)),
            ("expires_at".into(), n(sent_at + 7200)),
            ("attempts".into(), n(guesses.len() as u64)),
            (
                "guesses".into(),
                AttributeValue::L(guesses.last().map(b).into_iter().collect()),
            ),
            ("acct_fails".into(), n(0)),
            ("acct_last".into(), n(sent_at + 10 * guesses.len() as u64)),
            ("right_net".into(), AttributeValue::M(HashMap::new())),
            ("net_abc_0".into(), AttributeValue::N(net.to_string())),
            ("vid".into(), AttributeValue::S(vid.into())),
        ])
    }

    fn id(raw: &str) -> VerificationId {
        VerificationId::parse(raw).unwrap()
    }

    fn endings(old: Option<&Item>, new: Option<&Item>) -> Vec<Ending> {
        record_endings(old, new, &policy()).unwrap()
    }

    #[test]
    fn a_right_guess_approves_and_a_newer_code_ends_the_old_one() {
        let sent = record_item("VEa", 1000, &[], 0);
        let right = record_item("VEa", 1000, &[CODE], -3);
        assert_eq!(
            endings(Some(&sent), Some(&right)),
            [Ending::Ended(id("VEa"), Status::Approved, 1010)]
        );
        // Replaced after it was verified: it stays approved.
        let next = record_item("VEb", 1100, &[], 0);
        assert_eq!(
            endings(Some(&right), Some(&next)),
            [Ending::Ended(id("VEa"), Status::Approved, 1100)]
        );
        // Replaced while pending: superseded.
        assert_eq!(
            endings(Some(&sent), Some(&next)),
            [Ending::Ended(id("VEa"), Status::Superseded, 1100)]
        );
        // A first send ends nothing.
        assert_eq!(endings(None, Some(&sent)), []);
    }

    #[test]
    fn the_last_wrong_guess_ends_it_and_a_lockout_is_told() {
        let two = record_item("VEa", 1000, &[WRONG, WRONG], 2);
        let three = record_item("VEa", 1000, &[WRONG, WRONG, WRONG], 3);
        assert_eq!(
            endings(Some(&two), Some(&three)),
            [
                Ending::Ended(id("VEa"), Status::MaxAttemptsReached, 1030),
                Ending::Locked(id("VEa"), 1030)
            ]
        );
        let one = record_item("VEa", 1000, &[WRONG], 1);
        assert_eq!(endings(Some(&one), Some(&two)), []);
    }

    #[test]
    fn other_items_end_nothing() {
        let counter = HashMap::from([
            ("pk".into(), AttributeValue::S("limit:user#x#3600#0".into())),
            ("sends".into(), AttributeValue::N("1".into())),
        ]);
        assert_eq!(endings(None, Some(&counter)), []);
        let mut verification = counter.clone();
        verification.insert("pk".into(), AttributeValue::S("ver:VEa".into()));
        assert_eq!(endings(None, Some(&verification)), []);
        assert!(verification_change(None, Some(&counter)).unwrap().is_none());
    }
}

//! The fraud-guard function: counts the table's stream (sends and verifications of codes to
//! phone numbers) into the guard's tallies and opens breakers. It reads records as the store
//! writes them ([`crate::store::stream_ticks`]) and counts them with the same
//! [`Counting`] the local server runs in process.
//!
//! A batch is answered with `batchItemFailures` (the event source mapping has
//! `ReportBatchItemFailures`): on a failure the batch is delivered again from its first record,
//! and records counted before are recognised and left out. A record that cannot be read is
//! logged and skipped, never retried forever.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{service_fn, LambdaEvent};

use crate::clock::{Clock, SystemClock};
use crate::counting::Counting;
use crate::fraud::Tick;
use crate::store::{stream_ticks, DynamoStore};
use crate::telemetry::error_chain;

pub use lambda_runtime::Error;

fn image(item: &serde_dynamo::Item) -> Option<HashMap<String, AttributeValue>> {
    (!item.is_empty()).then(|| item.clone().into())
}

/// The ticks of a batch's records, in stream order; unreadable records are skipped.
pub fn batch_ticks(records: &[EventRecord]) -> Vec<Tick> {
    let mut ticks = Vec::new();
    for record in records {
        let (old, new) = (
            image(&record.change.old_image),
            image(&record.change.new_image),
        );
        let removed = record.event_name == "REMOVE";
        match stream_ticks(old.as_ref(), new.as_ref(), removed, &record.event_id) {
            Ok(found) => ticks.extend(found),
            Err(error) => tracing::error!(
                event_id = %record.event_id,
                error = %error_chain(&error),
                "fraud guard: a stream record could not be read; skipped"
            ),
        }
    }
    ticks
}

/// One batch: counted, or every record reported failed from the first (a retry counts only
/// what was not counted yet).
pub async fn handle(counting: &Counting, clock: &dyn Clock, event: Event) -> DynamoDbEventResponse {
    let ticks = batch_ticks(&event.records);
    let mut response = DynamoDbEventResponse::default();
    match counting.observe(&ticks, clock.now()).await {
        Ok(counted) => tracing::info!(
            records = event.records.len(),
            ticks = ticks.len(),
            repeated = counted.repeated,
            opened = counted.opened.len(),
            "fraud guard: batch counted"
        ),
        Err(error) => {
            tracing::error!(error = %error_chain(&error), "fraud guard: batch not counted; retried");
            if let Some(first) = event.records.first() {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = first.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
            }
        }
    }
    crate::meter::flush();
    response
}

/// The whole `main` of the function.
pub async fn run() -> Result<(), Error> {
    let (settings, table) = crate::table_function::init("fraud-guard")?;
    let table = &table;
    let client = aws_sdk_dynamodb::Client::new(&crate::aws::load(&settings.aws_roots).await);
    let ledger = Arc::new(DynamoStore::for_counting(client, table.clone()));
    let counting = Counting::new(ledger, settings.fraud.clone());
    tracing::info!(table = %table, mode = settings.fraud.mode.as_str(), "function ready");
    let (counting, clock) = (&counting, &SystemClock);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(handle(counting, clock, event.payload).await)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fraud::{Block, TickKind};

    #[test]
    fn the_sample_stream_event_is_one_counted_sms_send() {
        // The file `cargo lambda invoke fraud-guard --data-file` takes (docs/development.md).
        let event: Event =
            serde_json::from_str(include_str!("../../events/fraud-guard-stream.json")).unwrap();
        let ticks = batch_ticks(&event.records);
        assert_eq!(
            ticks,
            [Tick {
                kind: TickKind::Sent,
                block: Some(Block {
                    id: "sample-block-pseudonym".into(),
                    hint: "+1 41…".into(),
                }),
                country: Some(1),
                sent_at: 1_800_000_000,
                event: Some("sample-stream-record-1".into()),
            }]
        );
    }

    #[test]
    fn an_undelivered_receipt_of_an_sms_code_is_a_tick_of_its_block() {
        // The events function's sample: a verification's item as a send writes it.
        let mut event: Event =
            serde_json::from_str(include_str!("../../events/events-stream.json")).unwrap();
        let mut record = event.records[0].clone();
        let text = |s: &str| serde_dynamo::AttributeValue::S(s.into());
        let mut before = record.change.new_image.clone();
        before.insert("sent_blk".into(), text("sample-block-pseudonym"));
        before.insert("sent_hint".into(), text("+1 41…"));
        let mut after = before.clone();
        after.insert("dlv".into(), text("undelivered"));
        after.insert(
            "dlv_rank".into(),
            serde_dynamo::AttributeValue::N("2".into()),
        );
        after.insert(
            "dlv_at".into(),
            serde_dynamo::AttributeValue::N("1800000005".into()),
        );
        record.event_name = "MODIFY".into();
        (record.change.old_image, record.change.new_image) = (before.clone(), after);
        event.records = vec![record.clone()];
        let ticks = batch_ticks(&event.records);
        assert_eq!(ticks.len(), 1);
        assert_eq!(ticks[0].kind, TickKind::Undelivered);
        assert_eq!(ticks[0].sent_at, 1_800_000_000);
        // The send itself, and a receipt that changes nothing, are no ticks of the guard's.
        record.change.new_image = before;
        event.records = vec![record];
        assert_eq!(batch_ticks(&event.records), []);
    }

    #[test]
    fn counters_and_unreadable_records_give_no_tick() {
        let mut event: Event =
            serde_json::from_str(include_str!("../../events/fraud-guard-stream.json")).unwrap();
        let mut counter = event.records[0].clone();
        let pk = serde_dynamo::AttributeValue::S("limit:dest#b:x#600#1800000000".into());
        counter.change.new_image.insert("pk".into(), pk);
        let mut broken = event.records[0].clone();
        broken.change.new_image.remove("sent_at");
        event.records = vec![counter, broken];
        assert_eq!(batch_ticks(&event.records), []);
    }
}

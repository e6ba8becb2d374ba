//! The events function. Two event sources, one binary:
//!
//! - **The table's stream.** Record changes end verifications ([`record_endings`]: the right
//!   code, the last attempt, a lockout, a newer code), which are written down on the
//!   verification's item; changes of verification items are events ([`events_of`]), which go
//!   to the events queue (for the webhook) and to EventBridge (when a bus is named). A batch
//!   that cannot be finished is reported failed from its first record and comes again: endings
//!   are written once, and events keep their id, so receivers drop repeats.
//! - **EventBridge.** Delivery events of SES (a configuration set's event destination) and of
//!   AWS End User Messaging SMS, recorded on their verification like Twilio's receipts.
//! - **The events queue.** One delivery attempt per message, signed as Standard Webhooks. A
//!   failed one is made visible again after the next of [`RETRY_DELAYS`] and reported failed;
//!   after the queue's last receive it moves to the dead-letter queue.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::events::{events_of, Event};
use crate::settings::{Policy, Secret};
use crate::store::{record_endings, verification_change, DynamoStore, Ending};
use crate::telemetry::error_chain;
use crate::webhooks::{Webhooks, RETRY_DELAYS};

pub use lambda_runtime::Error;

/// The message attribute that carries an event's id through the queue.
const EVENT_ID: &str = "webhook-id";
/// EventBridge's `source` of every event.
pub const EVENT_SOURCE: &str = "otp-service";

pub struct Outbox {
    pub store: DynamoStore,
    pub policy: Policy,
    pub sqs: aws_sdk_sqs::Client,
    /// The events queue (`OTP_EVENTS_QUEUE_URL`): set when a webhook takes events.
    pub queue_url: Option<String>,
    pub bridge: aws_sdk_eventbridge::Client,
    /// The EventBridge bus (`OTP_EVENT_BUS`), if events go there too.
    pub bus: Option<String>,
    pub webhooks: Option<Webhooks>,
}

fn image(item: &serde_dynamo::Item) -> Option<HashMap<String, AttributeValue>> {
    (!item.is_empty()).then(|| item.clone().into())
}

impl Outbox {
    /// One batch of the table's stream.
    pub async fn handle_stream(&self, event: StreamEvent) -> DynamoDbEventResponse {
        let mut endings = Vec::new();
        let mut events = Vec::new();
        for record in &event.records {
            let (old, new) = (
                image(&record.change.old_image),
                image(&record.change.new_image),
            );
            let read = record_endings(old.as_ref(), new.as_ref(), &self.policy)
                .and_then(|found| Ok((found, verification_change(old.as_ref(), new.as_ref())?)));
            match read {
                Ok((found, change)) => {
                    endings.extend(found);
                    if let Some((old, new)) = change {
                        events.extend(events_of(old.as_ref(), &new));
                    }
                }
                Err(error) => tracing::error!(
                    event_id = %record.event_id, error = %error_chain(&error),
                    "events: a stream record could not be read; skipped"
                ),
            }
        }
        let mut response = DynamoDbEventResponse::default();
        if let Err(error) = self.finish(&endings, &events).await {
            tracing::error!(%error, "events: batch not finished; retried");
            if let Some(first) = event.records.first() {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = first.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
            }
        } else {
            tracing::info!(
                records = event.records.len(),
                endings = endings.len(),
                events = events.len(),
                "events: batch done"
            );
        }
        response
    }

    async fn finish(&self, endings: &[Ending], events: &[Event]) -> Result<(), String> {
        for ending in endings {
            self.store
                .write_ending(ending)
                .await
                .map_err(|e| error_chain(&e))?;
        }
        self.enqueue(events).await?;
        self.put_on_bus(events).await
    }

    async fn enqueue(&self, events: &[Event]) -> Result<(), String> {
        use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
        let Some(queue) = &self.queue_url else {
            return Ok(());
        };
        for chunk in events.chunks(10) {
            let mut entries = Vec::new();
            for (i, event) in chunk.iter().enumerate() {
                let id = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(&event.id)
                    .build()
                    .map_err(|e| e.to_string())?;
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(event.body())
                    .message_attributes(EVENT_ID, id)
                    .build()
                    .map_err(|e| e.to_string())?;
                entries.push(entry);
            }
            let sent = self
                .sqs
                .send_message_batch()
                .queue_url(queue)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| format!("the events queue: {}", error_chain(&e)))?;
            if !sent.failed().is_empty() {
                return Err(format!(
                    "the events queue refused {} events",
                    sent.failed().len()
                ));
            }
        }
        Ok(())
    }

    async fn put_on_bus(&self, events: &[Event]) -> Result<(), String> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let Some(bus) = &self.bus else { return Ok(()) };
        for chunk in events.chunks(10) {
            let entries = chunk
                .iter()
                .map(|event| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(bus)
                        .source(EVENT_SOURCE)
                        .detail_type(event.kind.as_str())
                        .detail(event.body())
                        .build()
                })
                .collect();
            let put = self
                .bridge
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| format!("EventBridge: {}", error_chain(&e)))?;
            if put.failed_entry_count() > 0 {
                return Err(format!(
                    "EventBridge refused {} events",
                    put.failed_entry_count()
                ));
            }
        }
        Ok(())
    }

    /// One batch of the events queue: one attempt per message.
    pub async fn handle_queue(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for message in event.records {
            let id = message
                .message_attributes
                .get(EVENT_ID)
                .and_then(|a| a.string_value.clone());
            let (Some(webhooks), Some(id), Some(body)) = (&self.webhooks, id, message.body) else {
                tracing::error!(message = ?message.message_id, "events: a queued event without its id or body; dropped");
                continue;
            };
            let Err(error) = webhooks.attempt_raw(&id, body).await else {
                tracing::info!(%id, "event delivered");
                continue;
            };
            let received: usize = message
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let delay = RETRY_DELAYS[(received.max(1) - 1).min(RETRY_DELAYS.len() - 1)];
            tracing::warn!(
                %id, attempt = received, error = %error_chain(&error),
                retry_in_s = delay.as_secs(), "event not delivered; retrying"
            );
            if let (Some(queue), Some(handle)) = (&self.queue_url, &message.receipt_handle) {
                let visibility = i32::try_from(delay.as_secs()).unwrap_or(i32::MAX);
                let changed = self
                    .sqs
                    .change_message_visibility()
                    .queue_url(queue)
                    .receipt_handle(handle)
                    .visibility_timeout(visibility)
                    .send()
                    .await;
                if let Err(e) = changed {
                    tracing::warn!(error = %error_chain(&e), "events: the retry keeps the queue's own visibility timeout");
                }
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// A delivery event of SES or AWS End User Messaging (EventBridge): one write to its
    /// verification, whose change then becomes a `.delivered`/`.undelivered` event.
    pub async fn handle_receipt(&self, event: &Value) -> Result<Value, Error> {
        use crate::store::OtpStore as _;
        use crate::verification::ReceiptOutcome;
        let Some((id, receipt, provider)) = crate::receipts::from_eventbridge(event) else {
            tracing::info!(
                detail_type = event["detail-type"].as_str().unwrap_or("-"),
                "events: an EventBridge event that is no receipt of ours; ignored"
            );
            return Ok(serde_json::json!({"receipt": "ignored"}));
        };
        let outcome = self
            .store
            .record_delivery(&id, &receipt)
            .await
            .map_err(|e| {
                tracing::error!(error = %error_chain(&e), "events: a receipt was not recorded");
                Error::from(error_chain(&e))
            })?;
        let name = match outcome {
            ReceiptOutcome::Applied { calling_code, .. } => {
                crate::meter::delivery_receipt(provider, receipt.status, calling_code);
                "applied"
            }
            ReceiptOutcome::Stale => "stale",
            ReceiptOutcome::Unknown => "unknown",
        };
        tracing::info!(
            %id, provider, status = receipt.status.as_str(), outcome = name, "delivery receipt"
        );
        Ok(serde_json::json!({"receipt": name}))
    }

    /// Any of its sources' events: stream and queue batches (told apart by their records'
    /// `eventSource`), and EventBridge events (which have a `source`).
    pub async fn handle(&self, payload: Value) -> Result<Value, Error> {
        if payload.get("detail-type").is_some() {
            let answer = self.handle_receipt(&payload).await;
            crate::meter::flush();
            return answer;
        }
        let source = payload["Records"][0]["eventSource"].as_str().unwrap_or("");
        let answer = if source == "aws:sqs" {
            serde_json::to_value(self.handle_queue(serde_json::from_value(payload)?).await)?
        } else {
            serde_json::to_value(self.handle_stream(serde_json::from_value(payload)?).await)?
        };
        crate::meter::flush();
        Ok(answer)
    }
}

/// The whole `main` of the function.
pub async fn run() -> Result<(), Error> {
    let (settings, table) = crate::table_function::init("events")?;
    let table = &table;
    let config = crate::aws::load(&settings.aws_roots).await;
    let webhooks = match &settings.webhook {
        None => None,
        Some(webhook) => {
            let secret = match &webhook.secret {
                Secret::Value(value) => value.clone(),
                Secret::Arn(arn) => {
                    let client = aws_sdk_secretsmanager::Client::new(&config);
                    crate::secrets::read(&client, arn)
                        .await
                        .and_then(|s| s.field(arn, &["secret", "webhook_secret", "value"]))
                        .map_err(|e| Error::from(e.to_string()))?
                }
            };
            Some(Webhooks::new(&webhook.url, &secret).map_err(Error::from)?)
        }
    };
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let queue_url = env(crate::settings::EVENTS_QUEUE_URL).filter(|_| webhooks.is_some());
    let outbox = Outbox {
        store: DynamoStore::for_counting(aws_sdk_dynamodb::Client::new(&config), table.clone()),
        policy: settings.policy.clone(),
        sqs: aws_sdk_sqs::Client::new(&config),
        queue_url,
        bridge: aws_sdk_eventbridge::Client::new(&config),
        bus: env(crate::settings::EVENT_BUS),
        webhooks,
    };
    tracing::info!(
        table = %table,
        webhook = outbox.webhooks.is_some(),
        event_bus = outbox.bus.as_deref().unwrap_or("-"),
        "function ready"
    );
    let outbox = &outbox;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        outbox.handle(event.payload).await
    }))
    .await
}

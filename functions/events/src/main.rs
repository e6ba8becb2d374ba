//! The events Lambda function: reads the table's DynamoDB stream for verifications (writes down
//! how each ended, queues its events and puts them on EventBridge) and delivers the queued
//! events to the webhook. It serves no route.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), otp_core::outbox::Error> {
    otp_core::outbox::run().await
}

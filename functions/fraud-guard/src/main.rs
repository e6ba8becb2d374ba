//! The fraud-guard Lambda function: reads the table's DynamoDB stream and counts sends and
//! verifications per number prefix, opening the fraud guard's breakers. It serves no route and
//! links no delivery or HTTP code.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), otp_core::stream::Error> {
    otp_core::stream::run().await
}

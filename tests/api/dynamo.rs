//! DynamoDB test peer: moto server, started by `scripts/with-moto.sh` (which `make test` runs).
//! A test that needs it and does not find it fails; it never skips.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use otp_core::code::CodeHasher;
use otp_core::store::{client_from_env, DynamoStore};

pub fn require_moto() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL is not set: these tests need moto server. Run them with `make test` \
             (or scripts/with-moto.sh cargo test), which starts and stops it."
        )
    })
}

/// The client exactly as the service builds it (endpoint from `AWS_ENDPOINT_URL`).
pub async fn client() -> Client {
    require_moto();
    client_from_env().await
}

/// Creates a fresh table with the production schema (pk S hash key, on demand, TTL on
/// `expires_at`) and returns its name.
pub async fn create_table(client: &Client) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "otp-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    client
        .create_table()
        .table_name(&name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table {name} in moto: {e:?}"));
    client
        .update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("enable TTL");
    name
}

pub async fn store(hasher: CodeHasher) -> DynamoStore {
    let client = client().await;
    let table = create_table(&client).await;
    DynamoStore::new(client, table, hasher)
}

/// Counts HTTP requests the SDK transmits (retries included).
#[derive(Debug, Default, Clone)]
pub struct RequestCounter(Arc<AtomicUsize>);

impl RequestCounter {
    pub fn take(&self) -> usize {
        self.0.swap(0, Ordering::SeqCst)
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A store on a fresh table whose client counts its requests.
pub async fn counted_store(hasher: CodeHasher) -> (DynamoStore, RequestCounter) {
    let base = client().await;
    let table = create_table(&base).await;
    let counter = RequestCounter::default();
    let config = base
        .config()
        .to_builder()
        .interceptor(counter.clone())
        .build();
    (
        DynamoStore::new(Client::from_conf(config), table, hasher),
        counter,
    )
}

/// Replaces the next `n` DynamoDB answers with a 500 *after* moto has applied the request: what
/// a timeout or a lost response looks like on the real service. The SDK then retries.
#[derive(Debug, Default, Clone)]
pub struct LoseResponses(Arc<AtomicUsize>);

impl LoseResponses {
    pub fn lose_next(&self, n: usize) {
        self.0.store(n, Ordering::SeqCst);
    }
}

impl Intercept for LoseResponses {
    fn name(&self) -> &'static str {
        "LoseResponses"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let lose = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if lose {
            let response = context.response_mut();
            *response.status_mut() = 500.try_into().unwrap();
            *response.body_mut() = aws_smithy_types::body::SdkBody::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}"#,
            );
        }
        Ok(())
    }
}

/// A store on a fresh table whose client loses answers on demand (and counts requests).
pub async fn lossy_store(hasher: CodeHasher) -> (DynamoStore, LoseResponses, RequestCounter) {
    let base = client().await;
    let table = create_table(&base).await;
    let lose = LoseResponses::default();
    let counter = RequestCounter::default();
    let config = base
        .config()
        .to_builder()
        .interceptor(lose.clone())
        .interceptor(counter.clone())
        .build();
    (
        DynamoStore::new(Client::from_conf(config), table, hasher),
        lose,
        counter,
    )
}

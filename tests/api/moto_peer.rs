//! DynamoDB test peer: moto server, started by `scripts/with_moto.py` (which `make test` runs).
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
use otp_core::store::DynamoStore;
use serde_json::Value;

pub fn require_moto() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL is not set: these tests need moto server. Run them with `make test` \
             (or scripts/with_moto.py cargo test), which starts and stops it."
        )
    })
}

/// The client exactly as the service builds it (endpoint from `AWS_ENDPOINT_URL`).
pub async fn client() -> Client {
    require_moto();
    Client::new(&otp_core::aws::load(&otp_core::tls::AwsRoots::System).await)
}

/// The OTP table as `template.yaml` declares it, which `scripts/with_moto.py` reads and passes
/// on as JSON: the template is the one statement of the schema.
fn template_table() -> Value {
    let text = std::env::var("TEST_TABLE_SCHEMA").unwrap_or_else(|_| {
        panic!(
            "TEST_TABLE_SCHEMA is not set: run the tests with `make test` (scripts/with_moto.py)"
        )
    });
    serde_json::from_str(&text).expect("TEST_TABLE_SCHEMA is JSON")
}

/// Creates a fresh table with the template's schema (key, billing, TTL) and returns its name.
pub async fn create_table(client: &Client) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "otp-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let schema = template_table();
    let text = |v: &Value| v.as_str().expect("a string in the table schema").to_owned();
    let mut request = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::from(text(&schema["BillingMode"]).as_str()));
    for attribute in schema["AttributeDefinitions"].as_array().unwrap() {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(&attribute["AttributeName"]))
                .attribute_type(ScalarAttributeType::from(
                    text(&attribute["AttributeType"]).as_str(),
                ))
                .build()
                .unwrap(),
        );
    }
    for element in schema["KeySchema"].as_array().unwrap() {
        request = request.key_schema(
            KeySchemaElement::builder()
                .attribute_name(text(&element["AttributeName"]))
                .key_type(KeyType::from(text(&element["KeyType"]).as_str()))
                .build()
                .unwrap(),
        );
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table {name} in moto: {e:?}"));
    let ttl = &schema["TimeToLiveSpecification"];
    client
        .update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(text(&ttl["AttributeName"]))
                .enabled(ttl["Enabled"].as_bool().unwrap())
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

/// A store on a fresh table whose client waits for moto as long as it takes (30 s per attempt,
/// instead of the service's 2 s). moto serves one request at a time: the conformance suite's
/// hundred concurrent requests, next to the other tests on a loaded 2-core host, can queue past
/// 2 s, and what that suite checks (conditional writes) does not depend on the timeouts. The
/// end-to-end tests on DynamoDB keep the service's own client.
pub async fn patient_store(hasher: CodeHasher) -> DynamoStore {
    let base = client().await;
    let table = create_table(&base).await;
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(std::time::Duration::from_secs(30))
        .operation_timeout(std::time::Duration::from_secs(90))
        .build();
    let config = base.config().to_builder().timeout_config(timeouts).build();
    DynamoStore::new(Client::from_conf(config), table, hasher)
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

/// Records the key (`pk`) of every item each request writes or condition-checks: how many of a
/// burst's sends touch one item.
#[derive(Debug, Default, Clone)]
pub struct WrittenKeys(Arc<std::sync::Mutex<Vec<Vec<String>>>>);

impl WrittenKeys {
    /// Per item, how many requests wrote or checked it.
    pub fn per_item(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for request in self.0.lock().unwrap().iter() {
            for key in request {
                *counts.entry(key.clone()).or_default() += 1;
            }
        }
        counts
    }

    pub fn requests(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

impl Intercept for WrittenKeys {
    fn name(&self) -> &'static str {
        "WrittenKeys"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let request = context.request();
        let operation = request
            .headers()
            .get("x-amz-target")
            .unwrap_or_default()
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let pk = |item: &Value| item["pk"]["S"].as_str().map(str::to_owned);
        let keys: Vec<String> = match operation.as_str() {
            "TransactWriteItems" => body["TransactItems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|entry| {
                    let (kind, op) = entry.as_object()?.iter().next()?;
                    pk(if kind == "Put" {
                        &op["Item"]
                    } else {
                        &op["Key"]
                    })
                })
                .collect(),
            "UpdateItem" | "DeleteItem" => pk(&body["Key"]).into_iter().collect(),
            "PutItem" => pk(&body["Item"]).into_iter().collect(),
            _ => Vec::new(),
        };
        if !keys.is_empty() {
            self.0.lock().unwrap().push(keys);
        }
        Ok(())
    }
}

/// A store on a fresh table whose client records the items each write touches.
pub async fn recorded_store(hasher: CodeHasher) -> (DynamoStore, WrittenKeys) {
    let keys = WrittenKeys::default();
    let store = intercepted_store(hasher, [shared(keys.clone())]).await;
    (store, keys)
}

/// A store on a fresh table whose client runs `interceptors`.
async fn intercepted_store(
    hasher: CodeHasher,
    interceptors: impl IntoIterator<Item = aws_sdk_dynamodb::config::SharedInterceptor>,
) -> DynamoStore {
    let base = client().await;
    let table = create_table(&base).await;
    let mut config = base.config().to_builder();
    for interceptor in interceptors {
        config.push_interceptor(interceptor);
    }
    DynamoStore::new(Client::from_conf(config.build()), table, hasher)
}

fn shared(interceptor: impl Intercept + 'static) -> aws_sdk_dynamodb::config::SharedInterceptor {
    aws_sdk_dynamodb::config::SharedInterceptor::new(interceptor)
}

/// A store on a fresh table whose client counts its requests.
pub async fn counted_store(hasher: CodeHasher) -> (DynamoStore, RequestCounter) {
    let counter = RequestCounter::default();
    let store = intercepted_store(hasher, [shared(counter.clone())]).await;
    (store, counter)
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
    let (lose, counter) = (LoseResponses::default(), RequestCounter::default());
    let interceptors = [shared(lose.clone()), shared(counter.clone())];
    (intercepted_store(hasher, interceptors).await, lose, counter)
}

/// Makes the next `n` `TransactWriteItems` fail as DynamoDB does when another transaction holds
/// one of their items: moto is sent a harmless read instead (so nothing is applied, as nothing
/// is on the real service), and its answer is replaced by a `TransactionCanceledException` whose
/// reasons name a `TransactionConflict`.
#[derive(Debug, Default, Clone)]
pub struct Conflicts {
    left: Arc<AtomicUsize>,
    swapped: Arc<std::sync::atomic::AtomicBool>,
    /// Which transaction item the reasons name (0: the first).
    at: Arc<AtomicUsize>,
}

impl Conflicts {
    /// The next `n` transactions conflict on their second item.
    pub fn conflict_next(&self, n: usize) {
        self.conflict_next_at(n, 1);
    }

    /// The next `n` transactions conflict on their item number `at` (from 0).
    pub fn conflict_next_at(&self, n: usize, at: usize) {
        self.at.store(at, Ordering::SeqCst);
        self.left.store(n, Ordering::SeqCst);
    }
}

impl Intercept for Conflicts {
    fn name(&self) -> &'static str {
        "Conflicts"
    }

    fn modify_before_transmit(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut<
            '_,
        >,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let request = context.request_mut();
        let transaction = request
            .headers()
            .get("x-amz-target")
            .is_some_and(|t| t.ends_with("TransactWriteItems"));
        let conflict = transaction
            && self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if conflict {
            request
                .headers_mut()
                .insert("x-amz-target", "DynamoDB_20120810.DescribeLimits");
            request.headers_mut().insert("content-length", "2");
            *request.body_mut() = aws_smithy_types::body::SdkBody::from("{}");
            self.swapped.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if self.swapped.swap(false, Ordering::SeqCst) {
            let response = context.response_mut();
            *response.status_mut() = 400.try_into().unwrap();
            let at = self.at.load(Ordering::SeqCst);
            let reasons: Vec<Value> = (0..=at)
                .map(|i| {
                    if i == at {
                        serde_json::json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"})
                    } else {
                        serde_json::json!({"Code": "None"})
                    }
                })
                .collect();
            let body = serde_json::json!({
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
                "CancellationReasons": reasons,
            });
            *response.body_mut() = aws_smithy_types::body::SdkBody::from(body.to_string());
        }
        Ok(())
    }
}

/// A store on a fresh table whose client meets transaction conflicts on demand (and counts
/// requests).
pub async fn conflicting_store(hasher: CodeHasher) -> (DynamoStore, Conflicts, RequestCounter) {
    let (conflicts, counter) = (Conflicts::default(), RequestCounter::default());
    let interceptors = [shared(conflicts.clone()), shared(counter.clone())];
    (
        intercepted_store(hasher, interceptors).await,
        conflicts,
        counter,
    )
}

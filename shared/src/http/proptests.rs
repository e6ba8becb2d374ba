//! Property-based fuzzing of request parsing and validation: whatever arrives, the handler
//! answers with a defined status and a JSON body (with `detail` on every failure), and never
//! panics. `make test` runs a bounded number of cases; for a long run:
//! `PROPTEST_CASES=200000 cargo test -p otp-core --lib proptests`.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use axum::body::Body;
use axum::Router;
use tower::ServiceExt as _;

use super::{router, Routes};
use crate::settings::{Runtime, Settings};
use crate::startup::{build_with, Overrides};
use crate::testing::{ManualClock, RecordingSender};

/// Every status the API documents.
const DEFINED: [u16; 11] = [200, 400, 404, 405, 410, 413, 415, 422, 429, 502, 503];

/// The service as production builds it, with recording senders and a still clock.
async fn app() -> Router {
    let settings = Settings::from_lookup(Runtime::Local, &|_| None).expect("defaults");
    let sender = Arc::new(RecordingSender::new());
    let overrides = Overrides {
        clock: Some(Arc::new(ManualClock::new(1_800_000_000))),
        sms: Some(sender.clone()),
        email: Some(sender),
    };
    let engine = build_with(settings, Routes::All, overrides)
        .await
        .expect("builds");
    router(Arc::new(engine), Routes::All)
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    static APP: Router = RUNTIME.with(|rt| rt.block_on(app()));
}

fn call(method: &axum::http::Method, path: &str, content_type: Option<&str>, body: &[u8]) -> Value {
    let mut request = axum::http::Request::builder().method(method.clone());
    // Paths proptest makes up may not be valid URIs; the HTTP layer never sees those.
    request = match axum::http::Uri::try_from(path) {
        Ok(uri) => request.uri(uri),
        Err(_) => request.uri("/not-a-valid-path"),
    };
    if let Some(content_type) =
        content_type.filter(|c| axum::http::HeaderValue::from_str(c).is_ok())
    {
        request = request.header("content-type", content_type);
    }
    let request = request.body(Body::from(body.to_vec())).unwrap();
    let (status, headers, bytes) = RUNTIME.with(|rt| {
        APP.with(|app| {
            rt.block_on(async {
                let response = app.clone().oneshot(request).await.unwrap();
                let (parts, body) = response.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                (parts.status.as_u16(), parts.headers, bytes)
            })
        })
    });
    assert!(DEFINED.contains(&status), "undefined status {status}");
    assert_eq!(headers["content-type"], "application/json");
    let json: Value = serde_json::from_slice(&bytes).expect("a JSON body");
    assert!(json.is_object(), "{json}");
    if status != 200 {
        assert!(
            json.get("detail").is_some(),
            "{status} without detail: {json}"
        );
    }
    if status == 429 && !headers.contains_key("retry-after") {
        assert_eq!(json["error"], "too_many_attempts", "{json}");
    }
    json
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["/send-code", "/verify-code", "/auth/request-otp", "/auth/verify-otp"])
            .prop_map(str::to_owned),
        1 => "[ -~]{0,24}",
    ]
}

fn method() -> impl Strategy<Value = axum::http::Method> {
    prop_oneof![
        8 => Just(axum::http::Method::POST),
        1 => prop::sample::select(vec![axum::http::Method::GET, axum::http::Method::PUT, axum::http::Method::DELETE, axum::http::Method::OPTIONS]),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some("application/json; charset=utf-8".to_owned())),
        "[ -~]{0,30}".prop_map(Some),
    ]
}

/// JSON values of any shape, biased towards the strings the fields expect.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        "[0-9]{0,12}".prop_map(Value::from),
        "\\+[0-9]{0,16}".prop_map(Value::from),
        "[a-zA-Z0-9._%+-]{0,12}@[a-zA-Z0-9.-]{0,12}".prop_map(Value::from),
        prop::sample::select(vec!["sms", "email", "login", "default", ""]).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn request_object() -> impl Strategy<Value = Value> {
    let fields = [
        "user_id", "method", "phone", "email", "purpose", "passcode", "otp_code", "extra",
    ];
    prop::collection::vec((prop::sample::select(fields.to_vec()), value()), 0..8).prop_map(
        |pairs| {
            let mut object = Map::new();
            for (key, value) in pairs {
                object.insert(key.to_owned(), value);
            }
            Value::Object(object)
        },
    )
}

proptest! {
    #[test]
    fn arbitrary_bytes_get_a_defined_answer(
        method in method(),
        path in path(),
        content_type in content_type(),
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        call(&method, &path, content_type.as_deref(), &body);
    }

    #[test]
    fn arbitrary_json_objects_get_a_defined_answer(path in path(), body in request_object()) {
        let bytes = body.to_string();
        let reply = call(&axum::http::Method::POST, &path, Some("application/json"), bytes.as_bytes());
        // A 422 names only fields that exist in the contract (or the body itself).
        if let Some(issues) = reply["detail"].as_array() {
            for issue in issues {
                prop_assert_eq!(&issue["loc"][0], &json!("body"));
            }
        }
    }

    #[test]
    fn oversized_bodies_are_413(extra in 1usize..4096) {
        let body = vec![b' '; super::MAX_BODY_BYTES + extra];
        let reply = call(&axum::http::Method::POST, "/send-code", None, &body);
        prop_assert!(reply["detail"].as_str().unwrap().contains("16384"));
    }
}

//! The Lambda adapter, fed the same API Gateway events people pass to
//! `cargo lambda invoke --data-file events/…`.

use otp_core::http::Route;
use otp_core::lambda::handle_event;
use serde_json::Value;

use crate::helpers::{Setup, TestApp, PHONE};

fn event(name: &str) -> String {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The event with its JSON body's `field` set to `value`.
fn event_with(name: &str, field: &str, value: &str) -> String {
    let mut event: Value = serde_json::from_str(&event(name)).unwrap();
    let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    body[field] = Value::from(value);
    event["body"] = Value::from(body.to_string());
    event.to_string()
}

async fn invoke(app: &TestApp, routes: &[Route], event: &str) -> (u16, Value, http::HeaderMap) {
    let request = lambda_http::request::from_str(event).expect("a valid API Gateway event");
    let response = handle_event(&app.engine, routes, request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    let json = serde_json::from_slice(response.body().as_ref()).expect("JSON body");
    (status, json, headers)
}

#[tokio::test]
async fn every_sample_event_gets_its_documented_status() {
    for (name, routes, status) in [
        ("send-code-sms.json", Route::SENDING, 200),
        ("send-code-email.json", Route::SENDING, 200),
        ("send-code-base64-body.json", Route::SENDING, 200),
        ("send-code-named-stage.json", Route::SENDING, 200),
        ("send-code-rest-v1.json", Route::SENDING, 200),
        ("send-code-function-url.json", Route::SENDING, 200),
        ("request-otp.json", Route::SENDING, 200),
        ("send-code-invalid.json", Route::SENDING, 422),
        ("send-code-not-json.json", Route::SENDING, 422),
        ("request-otp-invalid.json", Route::SENDING, 422),
        ("send-code-wrong-method.json", Route::SENDING, 405),
        ("verify-code.json", Route::VERIFYING, 404),
        ("verify-otp.json", Route::VERIFYING, 400),
        ("verify-code-invalid.json", Route::VERIFYING, 422),
        ("verify-code-unknown-path.json", Route::VERIFYING, 404),
        // Each function serves only its own routes.
        ("send-code-sms.json", Route::VERIFYING, 404),
        ("verify-code.json", Route::SENDING, 404),
    ] {
        let app = TestApp::spawn(Setup::Handler).await;
        let (got, json, _) = invoke(&app, routes, &event(name)).await;
        assert_eq!(got, status, "{name}: {json}");
        assert!(got == 200 || json.get("detail").is_some(), "{name}: {json}");
    }
}

#[tokio::test]
async fn send_then_verify_through_both_functions() {
    // GIVEN a code sent through the send-code function
    let app = TestApp::spawn(Setup::Handler).await;
    let (status, json, _) = invoke(&app, Route::SENDING, &event("send-code-sms.json")).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["message"], "OTP sent successfully via sms");
    let code = app.sms.last_code_to(PHONE).unwrap();
    // WHEN the verify-code function gets a wrong code, then the right one, then a replay
    let wrong = crate::helpers::wrong_code(&code);
    let (status, json, _) = invoke(
        &app,
        Route::VERIFYING,
        &event_with("verify-code.json", "passcode", &wrong),
    )
    .await;
    assert_eq!(
        (status, json["attempts_remaining"].as_u64()),
        (400, Some(2))
    );
    let right = event_with("verify-code.json", "passcode", &code);
    let (status, json, _) = invoke(&app, Route::VERIFYING, &right).await;
    // THEN the right code verifies once
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["user_id"], "user-123");
    assert_eq!(invoke(&app, Route::VERIFYING, &right).await.0, 404);
}

#[tokio::test]
async fn cooldown_through_lambda_sets_retry_after() {
    let app = TestApp::spawn(Setup::Handler).await;
    assert_eq!(
        invoke(&app, Route::SENDING, &event("send-code-sms.json"))
            .await
            .0,
        200
    );
    let (status, json, headers) = invoke(&app, Route::SENDING, &event("send-code-sms.json")).await;
    assert_eq!(status, 429);
    assert_eq!(json["retry_after"], 30);
    assert_eq!(headers.get("retry-after").unwrap(), "30");
}

#[tokio::test]
async fn auth_routes_through_lambda() {
    let app = TestApp::spawn(Setup::Handler).await;
    let (status, json, _) = invoke(&app, Route::SENDING, &event("request-otp.json")).await;
    assert_eq!(
        (status, json["email"].as_str()),
        (200, Some("User@Example.com"))
    );
    let code = app.email.last_code_to("User@Example.com").unwrap();
    let verify = event_with("verify-otp.json", "otp_code", &code);
    let (status, json, _) = invoke(&app, Route::VERIFYING, &verify).await;
    assert_eq!(status, 200, "{json}");
}

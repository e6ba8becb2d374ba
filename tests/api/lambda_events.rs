//! The Lambda adapter, fed the same API Gateway events people pass to
//! `cargo lambda invoke --data-file events/…`.

use base64::Engine as _;
use otp_core::http::{router, Routes};
use otp_core::lambda::handle_event;
use serde_json::Value;

use crate::helpers::{Setup, TestApp, PHONE};

/// The development key of `lambda.env`, which the backend sample events carry.
const DEV_KEYS: &str = "local=otpk_local-dev-key-not-a-secret-0123456789";

/// A service configured as `make lambda-watch` runs it: API keys on the backend routes.
async fn keyed_app() -> TestApp {
    TestApp::builder()
        .api_keys(DEV_KEYS)
        .spawn(Setup::Router)
        .await
}

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

/// The event through the function's router, as `lambda_http` runs it.
async fn invoke(app: &TestApp, routes: Routes, event: &str) -> (u16, Value, http::HeaderMap) {
    let request = lambda_http::request::from_str(event).expect("a valid API Gateway event");
    let response = handle_event(router(app.engine.clone(), routes), request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).expect("JSON body");
    (status, json, headers)
}

#[tokio::test]
async fn every_sample_event_gets_its_documented_status() {
    for (name, routes, status) in [
        ("send-code-sms.json", Routes::Sending, 200),
        ("send-code-email.json", Routes::Sending, 200),
        ("send-code-whatsapp.json", Routes::Sending, 200),
        ("send-code-voice.json", Routes::Sending, 200),
        ("send-code-bad-locale.json", Routes::Sending, 422),
        ("send-code-base64-body.json", Routes::Sending, 200),
        ("send-code-named-stage.json", Routes::Sending, 200),
        ("send-code-rest-v1.json", Routes::Sending, 200),
        ("send-code-function-url.json", Routes::Sending, 200),
        ("request-otp.json", Routes::Sending, 200),
        ("send-code-invalid.json", Routes::Sending, 422),
        ("send-code-not-json.json", Routes::Sending, 422),
        ("request-otp-invalid.json", Routes::Sending, 422),
        // A browser route without a JSON Content-Type (a cross-site "simple request").
        ("request-otp-text-plain.json", Routes::Sending, 415),
        ("jwks.json", Routes::Verifying, 200),
        ("send-code-wrong-method.json", Routes::Sending, 405),
        ("verify-code.json", Routes::Verifying, 404),
        ("verify-otp.json", Routes::Verifying, 400),
        ("verify-code-invalid.json", Routes::Verifying, 422),
        ("verify-code-unknown-path.json", Routes::Verifying, 404),
        ("send-code-unauthorized.json", Routes::Sending, 401),
        // A signed request is no API key: with api_key auth it is refused.
        ("verify-code-iam.json", Routes::Verifying, 401),
        // Each function serves only its own routes.
        ("send-code-sms.json", Routes::Verifying, 404),
        ("verify-code.json", Routes::Sending, 404),
    ] {
        let app = keyed_app().await;
        let (got, json, _) = invoke(&app, routes, &event(name)).await;
        assert_eq!(got, status, "{name}: {json}");
        assert!(got == 200 || json.get("detail").is_some(), "{name}: {json}");
    }
}

#[tokio::test]
async fn send_then_verify_through_both_functions() {
    // GIVEN a code sent through the send-code function
    let app = keyed_app().await;
    let (status, json, _) = invoke(&app, Routes::Sending, &event("send-code-sms.json")).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["message"], "OTP sent successfully via sms");
    let code = app.sms.last_code_to(PHONE).unwrap();
    // WHEN the verify-code function gets a wrong code, then the right one, then a replay
    let wrong = crate::helpers::wrong_code(&code);
    let (status, json, _) = invoke(
        &app,
        Routes::Verifying,
        &event_with("verify-code.json", "passcode", &wrong),
    )
    .await;
    assert_eq!(
        (status, json["attempts_remaining"].as_u64()),
        (400, Some(2))
    );
    let right = event_with("verify-code.json", "passcode", &code);
    let (status, json, _) = invoke(&app, Routes::Verifying, &right).await;
    // THEN the right code verifies once
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["user_id"], "user-123");
    assert_eq!(invoke(&app, Routes::Verifying, &right).await.0, 404);
}

#[tokio::test]
async fn cooldown_through_lambda_sets_retry_after() {
    let app = keyed_app().await;
    assert_eq!(
        invoke(&app, Routes::Sending, &event("send-code-sms.json"))
            .await
            .0,
        200
    );
    let (status, json, headers) = invoke(&app, Routes::Sending, &event("send-code-sms.json")).await;
    assert_eq!(status, 429);
    assert_eq!(json["retry_after"], 30);
    assert_eq!(headers.get("retry-after").unwrap(), "30");
}

#[tokio::test]
async fn auth_routes_through_lambda() {
    let app = keyed_app().await;
    let (status, json, _) = invoke(&app, Routes::Sending, &event("request-otp.json")).await;
    assert_eq!(
        (status, json["email"].as_str()),
        (200, Some("User@Example.com"))
    );
    let code = app.email.last_code_to("User@Example.com").unwrap();
    let verify = event_with("verify-otp.json", "otp_code", &code);
    let (status, json, headers) = invoke(&app, Routes::Verifying, &verify).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
    let token = json["verification_token"].as_str().unwrap();
    // The key that signed it is in the set the same function publishes.
    let (status, keys, headers) = invoke(&app, Routes::Verifying, &event("jwks.json")).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("cache-control").unwrap(), "public, max-age=300");
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(keys["keys"][0]["kid"], header["kid"]);
}

#[tokio::test]
async fn iam_auth_admits_only_what_api_gateway_signed_off() {
    // GIVEN the functions with OTP_CALLER_AUTH=iam (API Gateway's AWS_IAM authorizer)
    let app = TestApp::builder()
        .settings(|s| s.callers = otp_core::settings::CallerAuth::Iam)
        .spawn(Setup::Router)
        .await;
    // WHEN an event carries the identity the authorizer verified, THEN it is served
    let (status, json, _) = invoke(&app, Routes::Verifying, &event("verify-code-iam.json")).await;
    assert_eq!(status, 404, "served (no pending code): {json}");
    // AND an event without one, even with an API key, is 401 with the SigV4 challenge
    for name in ["verify-code.json", "send-code-unauthorized.json"] {
        let routes = if name.starts_with("verify") {
            Routes::Verifying
        } else {
            Routes::Sending
        };
        let (status, json, headers) = invoke(&app, routes, &event(name)).await;
        assert_eq!(status, 401, "{name}: {json}");
        assert_eq!(headers["www-authenticate"], "AWS4-HMAC-SHA256");
    }
    // AND the public routes stay open
    assert_eq!(
        invoke(&app, Routes::Sending, &event("request-otp.json"))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_function_never_starts_open_or_keyless_unless_told() {
    use otp_core::settings::{Runtime, Settings};
    let env = |extra: &'static [(&'static str, &'static str)]| {
        move |var: &str| -> Option<String> {
            match var {
                "OTP_HASH_KEY" => Some("33".repeat(32)),
                "OTP_TABLE_NAME" => Some("t".to_owned()),
                _ => extra
                    .iter()
                    .find(|(k, _)| *k == var)
                    .map(|(_, v)| (*v).to_owned()),
            }
        }
    };
    let error = Settings::from_lookup(Runtime::Lambda, &env(&[])).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("OTP_API_KEYS_SECRET_ARN is required"),
        "{error}"
    );
    let open = Settings::from_lookup(Runtime::Lambda, &env(&[("OTP_CALLER_AUTH", "none")]));
    assert!(matches!(
        open.unwrap().callers,
        otp_core::settings::CallerAuth::Open
    ));
}

/// The public route counts API Gateway's `sourceIp` (2.0 events) per client address.
#[tokio::test]
async fn the_public_route_counts_the_events_source_ip() {
    let app = TestApp::builder()
        .settings(|s| s.limits.client_ip_per_hour = 2)
        .spawn(Setup::Router)
        .await;
    let from = |ip: &str, email: &str| {
        let mut event: Value =
            serde_json::from_str(&event_with("request-otp.json", "email", email)).unwrap();
        event["requestContext"]["http"]["sourceIp"] = Value::from(ip);
        event.to_string()
    };
    for n in 0..2 {
        let (status, json, _) = invoke(
            &app,
            Routes::Sending,
            &from("203.0.113.10", &format!("a{n}@example.com")),
        )
        .await;
        assert_eq!(status, 200, "{json}");
    }
    let (status, json, headers) = invoke(
        &app,
        Routes::Sending,
        &from("203.0.113.10", "a9@example.com"),
    )
    .await;
    assert_eq!(
        (status, json["limit"].as_str()),
        (429, Some("client_ip_per_hour")),
        "{json}"
    );
    assert!(headers.contains_key("retry-after"));
    let (status, _, _) = invoke(
        &app,
        Routes::Sending,
        &from("203.0.113.11", "a9@example.com"),
    )
    .await;
    assert_eq!(status, 200, "another address");
}

//! Delivery receipts from Twilio: the `StatusCallback` each message is created with, and
//! `POST /webhooks/twilio/status` signed by Twilio's own helper library (the `twilio` package
//! from PyPI, in the test venv): taken, replayed, forged.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use wiremock::MockServer;

use crate::helpers::{Reply, Setup, TestApp, PHONE};
use crate::twilio_fake::{self, field, Outcome, ACCOUNT_SID, AUTH_TOKEN};

const BASE: &str = "https://otp.example.com";

/// A service that sends through the Twilio fake (and calls: `TWILIO_VOICE_FROM`), with `extra`
/// settings.
async fn app(twilio: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    app_from(TestApp::builder(), twilio, extra, Setup::Tcp).await
}

async fn app_from(
    builder: crate::helpers::TestAppBuilder,
    twilio: &MockServer,
    extra: &[(&str, &str)],
    setup: Setup,
) -> TestApp {
    let mut settings = vec![("TWILIO_VOICE_FROM", "+14155550101")];
    settings.extend_from_slice(extra);
    twilio_fake::app_with_twilio(builder, twilio, &settings, setup).await
}

/// What Twilio's helper library signs `params` at `url` to, with `token`.
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let script = "import json, sys\n\
        from twilio.request_validator import RequestValidator\n\
        a = json.load(sys.stdin)\n\
        print(RequestValidator(a['token']).compute_signature(a['url'], dict(a['params'])))";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python} (make test installs the twilio package): {e}"));
    let input = json!({"token": token, "url": url, "params": params});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the twilio package signs");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn form_body(params: &[(&str, &str)]) -> Vec<u8> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        form.append_pair(name, value);
    }
    form.finish().into_bytes()
}

/// Posts `params` to the receipt route of `query`, with `signature`.
async fn post_receipt(
    app: &TestApp,
    query: &str,
    params: &[(&str, &str)],
    signature: Option<&str>,
) -> Reply {
    let path = format!("/webhooks/twilio/status?{query}");
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(signature) = signature {
        headers.push(("x-twilio-signature", signature));
    }
    app.request_with("POST", &path, &headers, form_body(params))
        .await
}

/// Posts `params` as Twilio would: signed with the account's token over the public URL.
async fn receipt(app: &TestApp, id: &str, params: &[(&str, &str)]) -> Reply {
    let query = format!("verification_id={id}");
    let url = format!("{BASE}/webhooks/twilio/status?{query}");
    let signature = twilio_signature(AUTH_TOKEN, &url, params);
    post_receipt(app, &query, params, Some(&signature)).await
}

async fn send(app: &TestApp, method: &str) -> (String, Value) {
    let reply = app
        .post(
            "/send-code",
            json!({"user_id": "u", "method": method, "phone": PHONE}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let id = reply.json["verification_id"].as_str().unwrap().to_owned();
    let delivery = app.get(&format!("/verifications/{id}")).await.json["delivery"].clone();
    (id, delivery)
}

async fn last_form(twilio: &MockServer) -> Vec<(String, String)> {
    let requests = twilio.received_requests().await.unwrap();
    twilio_fake::form(requests.last().expect("a request reached Twilio"))
}

#[tokio::test]
async fn each_message_asks_twilio_for_its_receipts_at_the_public_url() {
    // GIVEN Twilio and the service's public URL
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Created, 2).await;
    let app = app(
        &twilio,
        &[("OTP_PUBLIC_BASE_URL", "https://otp.example.com/")],
    )
    .await;
    // WHEN an SMS goes out
    let (id, delivery) = send(&app, "sms").await;
    // THEN it names the receipt route of its verification, and the delivery is "sent"
    let form = last_form(&twilio).await;
    assert_eq!(
        field(&form, "StatusCallback"),
        Some(format!("{BASE}/webhooks/twilio/status?verification_id={id}").as_str())
    );
    assert_eq!(delivery, json!({"status": "sent"}));
    // AND a call (whose status callbacks are another contract) asks for none
    app.clock.advance(30);
    send(&app, "voice").await;
    assert_eq!(field(&last_form(&twilio).await, "StatusCallback"), None);
}

#[tokio::test]
async fn without_a_public_url_messages_ask_for_no_receipts_and_none_are_taken() {
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Created, 1).await;
    let app = app(&twilio, &[]).await;
    let (id, _) = send(&app, "sms").await;
    assert_eq!(field(&last_form(&twilio).await, "StatusCallback"), None);
    let refused = receipt(&app, &id, &[("MessageStatus", "delivered")]).await;
    assert_eq!(refused.status, 403, "{}", refused.json);
    assert!(refused.json["detail"]
        .as_str()
        .unwrap()
        .contains("OTP_PUBLIC_BASE_URL"));
}

#[tokio::test]
async fn signed_receipts_move_the_delivery_forward_and_replays_change_nothing() {
    // GIVEN an SMS code sent through Twilio
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Created, 1).await;
    let app = app(&twilio, &[("OTP_PUBLIC_BASE_URL", BASE)]).await;
    let (id, _) = send(&app, "sms").await;
    let lookup = || async { app.get(&format!("/verifications/{id}")).await.json };
    // WHEN Twilio reports it sent, signed as Twilio signs
    let sent = [
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("MessageStatus", "sent"),
        ("AccountSid", ACCOUNT_SID),
        ("To", PHONE),
    ];
    let reply = receipt(&app, &id, &sent).await;
    // THEN it is taken
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(
        reply.json,
        json!({"verification_id": id, "delivery_status": "sent", "applied": true})
    );
    // WHEN the carrier could not reach the handset (30003), two seconds later
    app.clock.advance(2);
    let undelivered = [
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
        ("AccountSid", ACCOUNT_SID),
    ];
    assert_eq!(receipt(&app, &id, &undelivered).await.json["applied"], true);
    // THEN the verification says so, with the code and the time
    let delivery = lookup().await["delivery"].clone();
    assert_eq!(
        delivery,
        json!({"status": "undelivered", "error_code": "30003",
               "updated_at": "2027-01-15T08:00:02Z",
               "provider_message_id": "SM00000000000000000000000000000001"})
    );
    // AND a replay of either receipt, or a late "delivered", is answered but changes nothing
    for params in [
        &sent[..],
        &undelivered[..],
        &[("MessageStatus", "delivered")][..],
    ] {
        let replayed = receipt(&app, &id, params).await;
        assert_eq!(replayed.status, 200, "{}", replayed.json);
        assert_eq!(replayed.json["applied"], false);
    }
    assert_eq!(lookup().await["delivery"], delivery);
}

#[tokio::test]
async fn forged_receipts_are_refused_and_change_nothing() {
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Created, 2).await;
    let app = app(&twilio, &[("OTP_PUBLIC_BASE_URL", BASE)]).await;
    let (id, before) = send(&app, "sms").await;
    let query = format!("verification_id={id}");
    let url = format!("{BASE}/webhooks/twilio/status?{query}");
    let params = [("MessageStatus", "delivered"), ("MessageSid", "SM1")];
    // Signed with another token; for another verification's URL; for other parameters; not
    // signed at all; garbage.
    let other_token = twilio_signature("not-the-auth-token", &url, &params);
    let app_2 = &app;
    app_2.clock.advance(30);
    let (other_id, _) = send(app_2, "sms").await;
    let other_url = url.replace(&id, &other_id);
    let other_verification = twilio_signature(AUTH_TOKEN, &other_url, &params);
    let other_params = twilio_signature(AUTH_TOKEN, &url, &[("MessageStatus", "sent")]);
    for signature in [
        Some(other_token.as_str()),
        Some(other_verification.as_str()),
        Some(other_params.as_str()),
        None,
        Some("AAAA"),
    ] {
        let reply = post_receipt(&app, &query, &params, signature).await;
        assert_eq!(reply.status, 403, "{signature:?}: {}", reply.json);
        assert!(reply.json["detail"]
            .as_str()
            .unwrap()
            .contains("X-Twilio-Signature"));
    }
    assert_eq!(
        app.get(&format!("/verifications/{id}")).await.json["delivery"],
        before
    );
    // A genuine receipt for a verification the service does not have is 404; a form Twilio
    // never posts is 415; a status of no message of ours is 400.
    let unknown = receipt(&app, "VEunknown0000000000000000", &params).await;
    assert_eq!(unknown.status, 404, "{}", unknown.json);
    let signature = twilio_signature(AUTH_TOKEN, &url, &params);
    let json_body = app
        .request_with(
            "POST",
            &format!("/webhooks/twilio/status?{query}"),
            &[
                ("content-type", "application/json"),
                ("x-twilio-signature", &signature),
            ],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(json_body.status, 415);
    let inbound = receipt(&app, &id, &[("MessageStatus", "received")]).await;
    assert_eq!(inbound.status, 400, "{}", inbound.json);
}

#[tokio::test]
async fn without_twilio_the_receipt_route_is_404() {
    let app = TestApp::spawn(Setup::Router).await;
    let reply = post_receipt(
        &app,
        "verification_id=VEx",
        &[("MessageStatus", "sent")],
        Some("x"),
    )
    .await;
    assert_eq!(reply.status, 404, "{}", reply.json);
}

/// An API Gateway (HTTP API, stage `prod`) event: `method path?query` with `body`.
fn gateway_event(path: &str, query: &str, headers: Value, body: &str) -> String {
    json!({
        "version": "2.0",
        "routeKey": format!("POST {path}"),
        "rawPath": format!("/prod{path}"),
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abc123",
            "http": {"method": "POST", "path": format!("/prod{path}"), "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.10", "userAgent": "test"},
            "requestId": "JKJaXmPLvHcESHA=", "routeKey": format!("POST {path}"), "stage": "prod",
            "time": "21/Nov/2026:20:00:00 +0000", "timeEpoch": 1795291200000_u64
        },
        "isBase64Encoded": false,
        "body": body,
    })
    .to_string()
}

async fn invoke(app: &TestApp, event: &str) -> (u16, Value) {
    let request = lambda_http::request::from_str(event).expect("a valid API Gateway event");
    let router = otp_core::http::router(app.engine.clone(), otp_core::http::Routes::Sending);
    let response = otp_core::lambda::handle_event(router, request).await;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).expect("JSON body"))
}

#[tokio::test]
async fn in_a_function_the_receipts_come_to_the_api_s_own_url() {
    // GIVEN the send function with Twilio, no OTP_PUBLIC_BASE_URL, behind the stage `prod`
    const KEY: &str = "otpk_local-dev-key-not-a-secret-0123456789";
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Created, 1).await;
    let builder = TestApp::builder().api_keys(&format!("local={KEY}"));
    let app = app_from(builder, &twilio, &[], Setup::Router).await;
    // WHEN a code is sent through API Gateway
    let send = gateway_event(
        "/send-code",
        "",
        json!({"content-type": "application/json", "authorization": format!("Bearer {KEY}")}),
        &json!({"user_id": "u", "method": "sms", "phone": PHONE}).to_string(),
    );
    let (status, sent) = invoke(&app, &send).await;
    assert_eq!(status, 200, "{sent}");
    let id = sent["verification_id"].as_str().unwrap();
    // THEN Twilio is asked to post receipts to the API's own URL, stage included
    let callback = format!(
        "https://abc123.execute-api.us-east-1.amazonaws.com/prod/webhooks/twilio/status?verification_id={id}"
    );
    let form = last_form(&twilio).await;
    assert_eq!(field(&form, "StatusCallback"), Some(callback.as_str()));
    // AND Twilio's receipt, signed over that URL, is taken through API Gateway
    let params = [("MessageSid", "SM1"), ("MessageStatus", "delivered")];
    let signature = twilio_signature(AUTH_TOKEN, &callback, &params);
    let body = String::from_utf8(form_body(&params)).unwrap();
    let headers = json!({"content-type": "application/x-www-form-urlencoded",
                         "x-twilio-signature": signature});
    let query = format!("verification_id={id}");
    let posted = gateway_event("/webhooks/twilio/status", &query, headers.clone(), &body);
    let (status, taken) = invoke(&app, &posted).await;
    assert_eq!(status, 200, "{taken}");
    assert_eq!(taken["applied"], true);
    // AND the same receipt is refused when it claims another stage (another URL)
    let elsewhere = posted
        .replace("\"stage\":\"prod\"", "\"stage\":\"dev\"")
        .replace("/prod/", "/dev/");
    let (status, _) = invoke(&app, &elsewhere).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn undelivered_codes_pause_their_number_range() {
    // GIVEN the fraud guard (in process, as the local server counts) and Twilio receipts
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Created, 3).await;
    let app = app(&twilio, &[("OTP_PUBLIC_BASE_URL", BASE)]).await;
    // WHEN three codes to one 1,000-number block come back undelivered (30005: unknown number)
    for n in 0..3 {
        let reply = app
            .post(
                "/send-code",
                json!({"user_id": format!("walker-{n}"), "method": "sms",
                       "phone": format!("+1415555{:04}", 2600 + n)}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        let id = reply.json["verification_id"].as_str().unwrap().to_owned();
        let params = [("MessageStatus", "undelivered"), ("ErrorCode", "30005")];
        assert_eq!(receipt(&app, &id, &params).await.json["applied"], true);
    }
    // THEN the next send to that block is refused, before anything reaches Twilio
    let refused = app
        .post(
            "/send-code",
            json!({"user_id": "walker-9", "method": "sms", "phone": "+14155552699"}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.json);
    assert_eq!(refused.error(), "fraud_suspected");
    assert_eq!(twilio.received_requests().await.unwrap().len(), 3);
}

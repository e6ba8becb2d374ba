//! A Twilio Messages API fake on wiremock that checks what Twilio checks: method, path, HTTP
//! Basic auth, form encoding and fields; and answers like Twilio (201 with a message SID, or a
//! Twilio-shaped error).

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const AUTH_TOKEN: &str = "test-auth-token-0123456789";
pub const FROM: &str = "+15005550006";

#[derive(Clone)]
pub enum Outcome {
    Created,
    /// HTTP status and Twilio error code.
    Error(u16, u32),
    /// 201, but only after this delay.
    Slow(Duration),
}

pub struct TwilioFake {
    token: String,
    outcome: Outcome,
}

pub fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
}

fn twilio_error(status: u16, code: u32, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    }))
}

impl Respond for TwilioFake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{ACCOUNT_SID}:{}", self.token))
        );
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth != Some(expected.as_str()) {
            return twilio_error(401, 20003, "Authenticate");
        }
        let content_type = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        if content_type != Some("application/x-www-form-urlencoded") {
            return twilio_error(400, 21602, "Message body is required.");
        }
        let form = form(request);
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        if field("To").is_none() {
            return twilio_error(400, 21604, "A 'To' phone number is required.");
        }
        if field("Body").is_none_or(|b| b.is_empty()) {
            return twilio_error(400, 21602, "Message body is required.");
        }
        if field("From").is_none() && field("MessagingServiceSid").is_none() {
            return twilio_error(400, 21603, "A 'From' phone number is required.");
        }
        let created = ResponseTemplate::new(201).set_body_json(json!({
            "sid": "SM0123456789abcdef0123456789abcdef",
            "account_sid": ACCOUNT_SID,
            "to": field("To"),
            "from": field("From"),
            "body": field("Body"),
            "status": "queued",
        }));
        match &self.outcome {
            Outcome::Created => created,
            Outcome::Slow(delay) => created.set_delay(*delay),
            Outcome::Error(status, code) => twilio_error(*status, *code, "refused by the fake"),
        }
    }
}

pub fn form(request: &Request) -> Vec<(String, String)> {
    form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The real Twilio sender's settings, pointed at the fake at `base_url`.
pub fn sender_settings(base_url: &str) -> otp_core::settings::TwilioSettings {
    otp_core::settings::TwilioSettings {
        api_base_url: base_url.to_owned(),
        account_sid: ACCOUNT_SID.to_owned(),
        auth_token: otp_core::settings::Secret::Value(AUTH_TOKEN.to_owned().into()),
        from: otp_core::settings::TwilioFrom::Number(FROM.to_owned()),
        connect_timeout: std::time::Duration::from_secs(2),
        timeout: std::time::Duration::from_secs(5),
    }
}

/// Mounts the fake, answering every request with `outcome` and checking no count.
pub async fn mount_any(server: &MockServer, outcome: Outcome) {
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(TwilioFake {
            token: AUTH_TOKEN.to_owned(),
            outcome,
        })
        .mount(server)
        .await;
}

/// The `To` of every message the fake received.
pub async fn recipients(server: &MockServer) -> Vec<String> {
    let requests = server.received_requests().await.expect("recording on");
    requests
        .iter()
        .filter_map(|r| form(r).into_iter().find(|(k, _)| k == "To").map(|(_, v)| v))
        .collect()
}

/// Mounts the fake, expecting exactly `calls` requests.
pub async fn mount(server: &MockServer, outcome: Outcome, calls: u64) {
    mount_with_token(server, AUTH_TOKEN, outcome, calls).await;
}

pub async fn mount_with_token(server: &MockServer, token: &str, outcome: Outcome, calls: u64) {
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(TwilioFake {
            token: token.to_owned(),
            outcome,
        })
        .expect(calls)
        .mount(server)
        .await;
}

/// The code in the latest SMS the fake received.
pub async fn last_code(server: &MockServer) -> String {
    let requests = server.received_requests().await.expect("recording on");
    let body = requests
        .iter()
        .rev()
        .find_map(|r| form(r).into_iter().find(|(k, _)| k == "Body"))
        .expect("an SMS reached the fake")
        .1;
    body.split("code is ")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_else(|| panic!("no code in {body:?}"))
        .to_owned()
}

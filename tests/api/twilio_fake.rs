//! A Twilio fake on wiremock, for the Messages API (SMS, WhatsApp) and the Calls API (voice),
//! that checks what Twilio checks: method, path, HTTP Basic auth, form encoding and fields (a
//! WhatsApp message needs `whatsapp:` on both ends and an approved template's SID with JSON
//! variables; a call needs TwiML that parses); and answers like Twilio (201 with a SID, or a
//! Twilio-shaped error).

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use wiremock::matchers::{method, path_regex};
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

/// Twilio's checks of a WhatsApp message: both ends on the channel, a Content API template and
/// its variables as a JSON object of strings.
fn whatsapp_problem(field: &dyn Fn(&str) -> Option<String>) -> Option<ResponseTemplate> {
    let to = field("To")?;
    let from = field("From").unwrap_or_default();
    if !to.starts_with("whatsapp:+") || !from.starts_with("whatsapp:+") {
        return Some(twilio_error(400, 21910, "Invalid From and To pair."));
    }
    let sid = field("ContentSid").unwrap_or_default();
    let sid_ok =
        sid.len() == 34 && sid.starts_with("HX") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if !sid_ok {
        return Some(twilio_error(400, 21655, "The ContentSid is Invalid."));
    }
    let variables: Option<serde_json::Map<String, serde_json::Value>> =
        field("ContentVariables").and_then(|v| serde_json::from_str(&v).ok());
    let variables_ok = variables.is_some_and(|v| v.values().all(serde_json::Value::is_string));
    if !variables_ok {
        return Some(twilio_error(
            400,
            21656,
            "The ContentVariables Parameter is invalid.",
        ));
    }
    None
}

/// Twilio's checks of a call: To, From, and TwiML that parses with a `<Response>` root.
fn call_problem(field: &dyn Fn(&str) -> Option<String>) -> Option<ResponseTemplate> {
    if field("To").is_none() {
        return Some(twilio_error(400, 21201, "No 'To' number is specified"));
    }
    if field("From").is_none() {
        return Some(twilio_error(400, 21213, "No 'From' number is specified"));
    }
    let Some(twiml) = field("Twiml") else {
        return Some(twilio_error(400, 21205, "Url or Twiml is required."));
    };
    let parsed = roxmltree::Document::parse(&twiml);
    let root_ok = parsed
        .as_ref()
        .is_ok_and(|doc| doc.root_element().has_tag_name("Response"));
    if !root_ok || twiml.len() > 4000 {
        return Some(twilio_error(400, 12100, "Document parse failure"));
    }
    None
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
        let call = request.url.path().ends_with("/Calls.json");
        if call {
            if let Some(problem) = call_problem(&field) {
                return problem;
            }
        } else {
            if field("To").is_none() {
                return twilio_error(400, 21604, "A 'To' phone number is required.");
            }
            let whatsapp = field("To").is_some_and(|to| to.starts_with("whatsapp:"))
                || field("From").is_some_and(|from| from.starts_with("whatsapp:"));
            if whatsapp {
                if let Some(problem) = whatsapp_problem(&field) {
                    return problem;
                }
            } else if field("Body").is_none_or(|b| b.is_empty()) {
                return twilio_error(400, 21602, "Message body is required.");
            }
            if field("From").is_none() && field("MessagingServiceSid").is_none() {
                return twilio_error(400, 21603, "A 'From' phone number is required.");
            }
        }
        let sid_prefix = if call { "CA" } else { "SM" };
        let created = ResponseTemplate::new(201).set_body_json(json!({
            "sid": format!("{sid_prefix}0123456789abcdef0123456789abcdef"),
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
        from: Some(otp_core::settings::TwilioFrom::Number(FROM.to_owned())),
        connect_timeout: std::time::Duration::from_secs(2),
        timeout: std::time::Duration::from_secs(5),
        channels: Default::default(),
    }
}

/// Mounts the fake, answering every request with `outcome` and checking no count.
pub async fn mount_any(server: &MockServer, outcome: Outcome) {
    Mock::given(method("POST"))
        .and(path_regex(format!(
            "^/2010-04-01/Accounts/{ACCOUNT_SID}/(Messages|Calls)\\.json$"
        )))
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
        .and(path_regex(format!(
            "^/2010-04-01/Accounts/{ACCOUNT_SID}/(Messages|Calls)\\.json$"
        )))
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

/// The value of `name` in a form.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A service built by `builder` whose phone channels go through the Twilio fake, with `extra`
/// settings (read as the environment would give them).
pub async fn app_with_twilio(
    builder: crate::helpers::TestAppBuilder,
    twilio: &MockServer,
    extra: &[(&str, &str)],
    setup: crate::helpers::Setup,
) -> crate::helpers::TestApp {
    let mut env: Vec<(String, String)> = [
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
        ("TWILIO_PHONE_NUMBER", FROM),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.push(("TWILIO_API_BASE_URL".to_owned(), twilio.uri()));
    let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let settings =
        otp_core::settings::Settings::from_lookup(otp_core::settings::Runtime::Local, &lookup)
            .expect("settings");
    builder
        .settings(move |s| s.delivery = settings.delivery)
        .spawn(setup)
        .await
}

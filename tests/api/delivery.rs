//! Real senders against real protocol peers: Twilio through the wiremock fake, SES and Secrets
//! Manager through moto. Every failure: the mapped status, no code left behind, and an
//! immediate resend allowed.

use std::collections::HashMap;

use std::time::Duration;

use otp_core::http::Routes;
use otp_core::settings::{Runtime, Settings};
use otp_core::startup::{build, InitError};
use serde_json::{json, Value};
use wiremock::MockServer;

use crate::helpers::{Setup, TestApp, PHONE};
use crate::twilio_fake::{self, Outcome, ACCOUNT_SID, AUTH_TOKEN, FROM};

fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + Sync {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    move |k| map.get(k).cloned()
}

fn twilio_env(base_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID.to_owned()),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.to_owned()),
        ("TWILIO_PHONE_NUMBER", FROM.to_owned()),
        ("TWILIO_API_BASE_URL", base_url.to_owned()),
        ("TWILIO_TIMEOUT_MS", "700".to_owned()),
    ]
}

/// Settings parsed from `env` as a function would parse its environment (with a key and a
/// table unless `env` names them).
fn settings_of(env: &[(&str, String)]) -> Result<Settings, otp_core::settings::ConfigError> {
    let mut env = env.to_vec();
    for (var, value) in [
        ("OTP_HASH_KEY", "33".repeat(32)),
        ("OTP_TOKEN_SIGNING_KEY", "44".repeat(32)),
        ("OTP_TABLE_NAME", "x".to_owned()),
        ("OTP_CALLER_AUTH", "none".to_owned()),
        // The EMF recorder is process-wide: only the metrics tests install it.
        ("OTP_METRICS", "off".to_owned()),
    ] {
        if !env.iter().any(|(k, _)| k.starts_with(var)) {
            env.push((var, value));
        }
    }
    Settings::from_lookup(Runtime::Lambda, &env_of(&env))
}

/// The real Twilio sender's settings, configured from `env`.
fn twilio_settings(env: &[(&str, String)]) -> Option<otp_core::settings::TwilioSettings> {
    let twilio = settings_of(env).expect("twilio config").delivery.sms;
    assert!(twilio.is_some(), "twilio configured");
    twilio
}

/// The local server (TCP) with SMS through the real Twilio sender, configured from `env`.
async fn app_with_twilio(env: &[(&str, String)]) -> TestApp {
    let twilio = twilio_settings(env);
    TestApp::builder()
        .settings(|s| s.delivery.sms = twilio)
        .spawn(Setup::Tcp)
        .await
}

#[tokio::test]
async fn twilio_success_delivers_a_code_that_verifies() {
    // GIVEN Twilio accepting messages
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Created, 1).await;
    let app = app_with_twilio(&twilio_env(&twilio.uri())).await;
    // WHEN a code is sent by SMS
    let reply = app.send_sms("u").await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    // THEN Twilio got exactly the documented form, and the code in it verifies
    let requests = twilio.received_requests().await.unwrap();
    let form = twilio_fake::form(&requests[0]);
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("To"), Some(PHONE));
    assert_eq!(field("From"), Some(FROM));
    assert_eq!(field("MessagingServiceSid"), None);
    let code = twilio_fake::last_code(&twilio).await;
    assert_eq!(
        field("Body"),
        Some(format!("Your verification code is {code}. It expires in 5 minutes.").as_str())
    );
    assert_eq!(app.verify("u", &code).await.status, 200);
}

#[tokio::test]
async fn twilio_messaging_service_is_sent_instead_of_from() {
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Created, 1).await;
    let mut env = twilio_env(&twilio.uri());
    env.retain(|(k, _)| *k != "TWILIO_PHONE_NUMBER");
    env.push(("TWILIO_MESSAGING_SERVICE_SID", "MG0123".to_owned()));
    let app = app_with_twilio(&env).await;
    assert_eq!(app.send_sms("u").await.status, 200);
    let form = twilio_fake::form(&twilio.received_requests().await.unwrap()[0]);
    assert!(form.contains(&("MessagingServiceSid".to_owned(), "MG0123".to_owned())));
    assert!(!form.iter().any(|(k, _)| k == "From"));
}

/// Runs one failing Twilio outcome: status and error as mapped, Twilio called exactly once (no
/// retry that could double-send), nothing left behind, and an immediate resend that works.
async fn twilio_failure(outcome: Outcome, status: u16, error: &str) {
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, outcome, 1).await;
    let app = app_with_twilio(&twilio_env(&twilio.uri())).await;
    let reply = app.send_sms("u").await;
    assert_eq!(
        (reply.status, reply.error()),
        (status, error),
        "{}",
        reply.json
    );
    let detail = reply.json["detail"].as_str().unwrap();
    assert!(
        !detail.contains(PHONE) && !detail.contains("fake"),
        "{detail}"
    );
    assert_eq!(app.verify("u", "123456").await.error(), "not_found");
    twilio.verify().await;
    twilio.reset().await;
    twilio_fake::mount(&twilio, Outcome::Created, 1).await;
    assert_eq!(app.send_sms("u").await.status, 200, "immediate resend");
    let code = twilio_fake::last_code(&twilio).await;
    assert_eq!(app.verify("u", &code).await.status, 200);
}

#[tokio::test]
async fn twilio_destination_errors_are_422_invalid_destination() {
    for code in [21211, 21614, 21408, 21612, 21610] {
        twilio_failure(Outcome::Error(400, code), 422, "invalid_destination").await;
    }
}

#[tokio::test]
async fn twilio_destination_details_tell_the_user_what_to_do() {
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Error(400, 21614), 1).await;
    let app = app_with_twilio(&twilio_env(&twilio.uri())).await;
    let reply = app.send_sms("u").await;
    assert_eq!(
        reply.json["detail"],
        "This phone number cannot receive SMS. Use a mobile number."
    );
}

#[tokio::test]
async fn twilio_auth_error_is_503_channel_unavailable() {
    twilio_failure(Outcome::Error(401, 20003), 503, "channel_unavailable").await;
}

#[tokio::test]
async fn twilio_wrong_token_is_refused_by_the_fake_and_mapped_to_503() {
    let twilio = MockServer::start().await;
    twilio_fake::mount_with_token(&twilio, "another-token", Outcome::Created, 1).await;
    let app = app_with_twilio(&twilio_env(&twilio.uri())).await;
    assert_eq!(app.send_sms("u").await.error(), "channel_unavailable");
}

#[tokio::test]
async fn twilio_429_is_502_and_never_retried() {
    // Twilio's 429 refuses the request before queueing anything: nothing was sent.
    twilio_failure(Outcome::Error(429, 20429), 502, "delivery_failed").await;
}

/// Runs one Twilio outcome that may have delivered the SMS: `502 delivery_uncertain` with
/// `Retry-After`, Twilio called once, the code kept valid (the SMS may arrive), the cooldown and
/// the send limits charged.
async fn twilio_uncertain(outcome: Outcome) {
    // GIVEN one send per destination per 10 minutes
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, outcome, 1).await;
    let app = TestApp::builder()
        .settings(|s| {
            s.delivery.sms = twilio_settings(&twilio_env(&twilio.uri()));
            s.limits.destination_per_10_minutes = 1;
        })
        .spawn(Setup::Tcp)
        .await;
    // WHEN Twilio's answer is unclear
    let reply = app.send_sms("u").await;
    // THEN the caller is told so, and when to ask again
    assert_eq!(
        (reply.status, reply.error()),
        (502, "delivery_uncertain"),
        "{}",
        reply.json
    );
    assert_eq!(reply.headers["retry-after"], "30");
    // AND it names the verification of the code that may arrive: pending
    let id = reply.json["verification_id"]
        .as_str()
        .expect("a verification id");
    let lookup = app.get(&format!("/verifications/{id}")).await;
    assert_eq!(lookup.json["status"], "pending", "{}", lookup.json);
    twilio.verify().await;
    let code = twilio_fake::last_code(&twilio).await;
    // AND a resend waits out the cooldown, another user's send to the number hits the limit,
    // and Twilio hears of neither
    twilio.reset().await;
    twilio_fake::mount(&twilio, Outcome::Created, 0).await;
    assert_eq!(app.send_sms("u").await.error(), "cooldown");
    let other = app.send_sms("v").await;
    assert_eq!(
        (other.status, other.error(), other.json["limit"].as_str()),
        (429, "rate_limited", Some("destination_per_10_minutes")),
        "{}",
        other.json
    );
    // AND the code in the message Twilio got still verifies, if it arrived
    assert_eq!(app.verify("u", &code).await.status, 200);
}

#[tokio::test]
async fn twilio_5xx_is_an_uncertain_delivery_that_counts() {
    twilio_uncertain(Outcome::Error(500, 20500)).await;
    twilio_uncertain(Outcome::Error(503, 20503)).await;
}

#[tokio::test]
async fn twilio_timeout_is_an_uncertain_delivery_that_counts() {
    // The client gives up after 700 ms; the fake answers after 2 s.
    twilio_uncertain(Outcome::Slow(Duration::from_secs(2))).await;
}

#[tokio::test]
async fn twilio_connection_refused_is_502_with_nothing_left() {
    // GIVEN a Twilio base URL where nothing listens
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let app = app_with_twilio(&twilio_env(&format!("http://{closed}"))).await;
    // WHEN a code is sent
    let reply = app.send_sms("u").await;
    // THEN 502, no code stored, no cooldown
    assert_eq!((reply.status, reply.error()), (502, "delivery_failed"));
    assert_eq!(app.verify("u", "123456").await.error(), "not_found");
    assert_eq!(app.send_sms("u").await.status, 502, "not 429: no cooldown");
}

#[tokio::test]
async fn twilio_configuration_is_checked_at_init() {
    let base = twilio_env("http://127.0.0.1:9");
    for (drop, add, expected) in [
        (
            "TWILIO_AUTH_TOKEN",
            None,
            "TWILIO_AUTH_TOKEN_SECRET_ARN is required",
        ),
        (
            "TWILIO_PHONE_NUMBER",
            None,
            "TWILIO_PHONE_NUMBER is required",
        ),
        (
            "TWILIO_PHONE_NUMBER",
            Some(("TWILIO_PHONE_NUMBER", "555-0100")),
            "TWILIO_PHONE_NUMBER must be a phone number",
        ),
        (
            "TWILIO_TIMEOUT_MS",
            Some(("TWILIO_TIMEOUT_MS", "60000")),
            "TWILIO_TIMEOUT_MS must be a whole number from 500 to 10000",
        ),
    ] {
        let mut env: Vec<(&str, String)> =
            base.iter().filter(|(k, _)| *k != drop).cloned().collect();
        if let Some((k, v)) = add {
            env.push((k, v.to_owned()));
        }
        // GIVEN the local server: it refuses to start, naming the variable
        let lookup = env_of(&env);
        let error = Settings::from_lookup(Runtime::Local, &lookup).expect_err("refused");
        assert!(error.to_string().contains(expected), "{error}");
        // GIVEN a function: it starts with the phone channels off and says why, so that a
        // misconfigured SMS provider does not take email down with it
        let mut with_email = env.clone();
        with_email.push(("EMAIL_FROM", "no-reply@example.com".to_owned()));
        let settings = settings_of(&with_email).expect("a function starts");
        assert!(settings.delivery.sms.is_none() && settings.delivery.email.is_some());
        let problem = settings.delivery.phone_problem.expect("the reason is kept");
        assert!(problem.contains(expected), "{problem}");
    }
}

// ---- SES and Secrets Manager through moto ----

async fn aws() -> aws_config::SdkConfig {
    crate::moto_peer::require_moto();
    otp_core::aws::load(&otp_core::tls::AwsRoots::System).await
}

async fn verified_identity(sdk: &aws_config::SdkConfig, identity: &str) {
    aws_sdk_sesv2::Client::new(sdk)
        .create_email_identity()
        .email_identity(identity)
        .send()
        .await
        .expect("create the SES identity in moto");
}

/// Messages moto's SES holds for `recipient`, from its inspection API.
async fn ses_messages_to(recipient: &str) -> Vec<Value> {
    let endpoint = crate::moto_peer::require_moto();
    let data: Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut found = Vec::new();
    let mut stack = vec![&data["ses"]["Message"]];
    // data.json nests messages by account and region; walk it rather than hard-code the path.
    while let Some(node) = stack.pop() {
        match node {
            Value::Object(map) if map.contains_key("destinations") => {
                let to_recipient = map["destinations"].to_string().contains(recipient);
                found.extend(to_recipient.then(|| node.clone()));
            }
            Value::Object(map) => stack.extend(map.values()),
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

async fn app_with_ses(_: &aws_config::SdkConfig, from: &str) -> TestApp {
    let from = from.to_owned();
    TestApp::builder()
        .brand("Acme & <Co>")
        .settings(|s| {
            s.delivery.email = Some(otp_core::settings::SesSettings {
                from,
                configuration_set: None,
            })
        })
        .spawn(Setup::Tcp)
        .await
}

#[tokio::test]
async fn ses_delivers_a_branded_html_email_whose_code_verifies() {
    // GIVEN SES (moto) with a verified sender
    let sdk = aws().await;
    verified_identity(&sdk, "otp-sender.example.com").await;
    let app = app_with_ses(&sdk, "Acme <no-reply@otp-sender.example.com>").await;
    let to = format!("ses-ok-{}@example.com", std::process::id());
    // WHEN a code is requested by email
    let reply = app.post("/auth/request-otp", json!({"email": to})).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    // THEN the email arrived, its HTML holds the code and the (escaped) brand
    let messages = ses_messages_to(&to).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert_eq!(message["subject"], "Acme & <Co>: Your verification code");
    let html = message["body"].as_str().unwrap();
    assert!(
        html.contains("Your Acme &amp; &lt;Co&gt; verification code"),
        "{html}"
    );
    let code = html
        .split("letter-spacing:8px;color:#111827;\">")
        .nth(1)
        .and_then(|rest| rest.split("</div>").next())
        .expect("the code block")
        .to_owned();
    assert_eq!(code.len(), 6);
    // AND that code verifies
    let reply = app
        .post("/auth/verify-otp", json!({"email": to, "otp_code": code}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
}

#[tokio::test]
async fn ses_sends_the_email_in_the_asked_language_right_to_left_included() {
    // GIVEN SES (moto) with a verified sender
    let sdk = aws().await;
    verified_identity(&sdk, "otp-sender.example.com").await;
    let app = app_with_ses(&sdk, "no-reply@otp-sender.example.com").await;
    let to = format!("ses-ar-{}@example.com", std::process::id());
    // WHEN a code is asked for in Arabic (Egypt)
    let reply = app
        .post("/auth/request-otp", json!({"email": to, "locale": "ar-EG"}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    // THEN subject and body are Arabic, and the HTML says so, right to left
    let messages = ses_messages_to(&to).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["subject"], "Acme & <Co>: رمز التحقق الخاص بك");
    let html = messages[0]["body"].as_str().unwrap();
    assert!(html.contains("<html lang=\"ar\" dir=\"rtl\">"), "{html}");
    assert!(html.contains("تنتهي صلاحيته خلال 5 دقائق."), "{html}");
}

#[tokio::test]
async fn ses_unverified_sender_is_503_with_nothing_left() {
    let sdk = aws().await;
    let app = app_with_ses(&sdk, "no-reply@not-verified.example.org").await;
    let to = format!("ses-unverified-{}@example.com", std::process::id());
    let reply = app.post("/auth/request-otp", json!({"email": to})).await;
    assert_eq!(
        (reply.status, reply.error()),
        (503, "channel_unavailable"),
        "{}",
        reply.json
    );
    assert!(ses_messages_to(&to).await.is_empty());
    let reply = app
        .post(
            "/auth/verify-otp",
            json!({"email": to, "otp_code": "123456"}),
        )
        .await;
    assert_eq!(
        reply.json,
        json!({"detail": "Invalid or expired OTP"}),
        "no code left behind"
    );
    let reply = app.post("/auth/request-otp", json!({"email": to})).await;
    assert_eq!(
        reply.status, 503,
        "not a concealed cooldown (200): the cooldown was not consumed"
    );
}

async fn secret(sdk: &aws_config::SdkConfig, name: &str, value: &str) -> String {
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(format!("{name}-{}", std::process::id()))
        .secret_string(value)
        .send()
        .await
        .expect("create secret in moto")
        .arn()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn secrets_are_read_in_one_batch_by_arn_or_name_and_a_missing_one_is_named() {
    use secrecy::ExposeSecret as _;
    let sdk = aws().await;
    // GIVEN a secret named by its ARN, one by its name, and an ARN of none
    let by_arn = secret(&sdk, "batch-by-arn", "first-value").await;
    secret(
        &sdk,
        "batch-by-name",
        &json!({"key": "second-value"}).to_string(),
    )
    .await;
    let by_name = format!("batch-by-name-{}", std::process::id());
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:absent-AbCdEf".to_owned();
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    // WHEN they are read together
    let ids = [by_arn.clone(), by_name.clone(), missing.clone()];
    let read = otp_core::secrets::read_all(&client, &ids).await;
    // THEN each id has its own answer: the values, and an error naming the missing one
    let value = |id: &String| {
        let secret = read[id].as_ref().unwrap_or_else(|e| panic!("{e}"));
        secret
            .field(id, &["key"])
            .unwrap()
            .expose_secret()
            .to_owned()
    };
    assert_eq!(value(&by_arn), "first-value");
    assert_eq!(value(&by_name), "second-value");
    let error = read[&missing].as_ref().err().expect("no such secret");
    assert_eq!(error.arn, missing);
    assert!(error.reason.contains("ResourceNotFound"), "{error}");
}

#[tokio::test]
async fn twilio_token_read_from_secrets_manager_works() {
    let sdk = aws().await;
    for (name, stored) in [
        ("twilio-plain", "token-from-secret".to_owned()),
        (
            "twilio-json",
            json!({"auth_token": "token-from-secret"}).to_string(),
        ),
    ] {
        // GIVEN the token only in a secret
        let arn = secret(&sdk, name, &stored).await;
        let twilio = MockServer::start().await;
        twilio_fake::mount_with_token(&twilio, "token-from-secret", Outcome::Created, 1).await;
        let mut env = twilio_env(&twilio.uri());
        env.retain(|(k, _)| *k != "TWILIO_AUTH_TOKEN");
        env.push(("TWILIO_AUTH_TOKEN_SECRET_ARN", arn));
        let app = app_with_twilio(&env).await;
        // THEN Twilio accepts our Basic auth and the code verifies
        assert_eq!(app.send_sms("u").await.status, 200, "{name}");
        let code = twilio_fake::last_code(&twilio).await;
        assert_eq!(app.verify("u", &code).await.status, 200);
    }
}

#[tokio::test]
async fn an_unreadable_twilio_secret_turns_the_phone_channels_off_not_email() {
    aws().await;
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf";
    let env = vec![
        ("OTP_HASH_KEY", "33".repeat(32)),
        ("OTP_TABLE_NAME", "otp".to_owned()),
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID.to_owned()),
        ("TWILIO_AUTH_TOKEN_SECRET_ARN", arn.to_owned()),
        ("TWILIO_PHONE_NUMBER", FROM.to_owned()),
        ("EMAIL_FROM", "no-reply@otp-sender.example.com".to_owned()),
    ];
    // GIVEN a function whose Twilio token secret does not exist
    let engine = build(settings_of(&env).unwrap(), Routes::Sending)
        .await
        .expect("the send function still starts");
    // THEN email is served, every phone channel is off, and the log line says why
    assert_eq!(
        engine.senders().describe(),
        "sms: unavailable, whatsapp: unavailable, voice: unavailable, email: ses"
    );
    let why = engine.senders().missing(otp_core::domain::Channel::Sms);
    assert!(
        why.contains(arn) && why.contains("ResourceNotFoundException"),
        "{why}"
    );
    // AND the local server, where a person reads the message at once, refuses to start
    let mut local = settings_of(&env).unwrap();
    local.runtime = Runtime::Local;
    let error = build(local, Routes::Sending)
        .await
        .err()
        .expect("init fails");
    assert!(matches!(error, InitError::Secret(_)), "{error:?}");
    assert!(error.to_string().contains(arn), "{error}");
}

#[tokio::test]
async fn lambda_init_picks_twilio_and_ses_from_the_environment() {
    aws().await;
    let env = vec![
        ("OTP_HASH_KEY", "33".repeat(32)),
        ("OTP_TABLE_NAME", "otp".to_owned()),
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID.to_owned()),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN.to_owned()),
        ("TWILIO_MESSAGING_SERVICE_SID", "MG1".to_owned()),
        ("EMAIL_FROM", "no-reply@otp-sender.example.com".to_owned()),
    ];
    let engine = build(settings_of(&env).unwrap(), Routes::Sending)
        .await
        .unwrap();
    assert_eq!(
        engine.senders().describe(),
        "sms: twilio (messaging service), whatsapp: unavailable, voice: unavailable, email: ses"
    );
    // The verify function builds no sender even with delivery configured.
    let verifying = build(settings_of(&env).unwrap(), Routes::Verifying)
        .await
        .unwrap();
    assert_eq!(
        verifying.senders().describe(),
        "sms: unavailable, whatsapp: unavailable, voice: unavailable, email: unavailable"
    );
    let none = build(
        settings_of(&[
            ("OTP_HASH_KEY", "33".repeat(32)),
            ("OTP_TABLE_NAME", "otp".to_owned()),
        ])
        .unwrap(),
        Routes::Sending,
    )
    .await
    .unwrap();
    assert_eq!(
        none.senders().describe(),
        "sms: unavailable, whatsapp: unavailable, voice: unavailable, email: unavailable"
    );
    // A send refused for want of a sender names what to set.
    use otp_core::domain::Channel;
    let missing = |channel| none.senders().missing(channel);
    assert!(missing(Channel::Sms).contains("TWILIO_ACCOUNT_SID"));
    assert!(missing(Channel::Sms).contains("OTP_SMS_PROVIDER=aws"));
    assert!(missing(Channel::Email).contains("EMAIL_FROM"));
    assert!(missing(Channel::Voice).contains("TWILIO_VOICE_FROM"));
    assert!(missing(Channel::Whatsapp).contains("TWILIO_WHATSAPP_FROM"));
}

#[tokio::test]
async fn twilio_is_not_contacted_before_the_first_sms() {
    // GIVEN Twilio configured for a function
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Created, 0).await;
    let app = app_with_twilio(&twilio_env(&twilio.uri())).await;
    // WHEN a code goes out by email
    let reply = app
        .post("/auth/request-otp", json!({"email": "a@example.com"}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    // THEN nothing reached Twilio: its client is set up by the first SMS, not at init
    assert!(twilio.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn hash_key_is_read_from_the_generated_secret() {
    // GIVEN a secret like the template's GenerateSecretString (64 alphanumerics, no punctuation)
    let sdk = aws().await;
    let generated: String = "Kx7Qm2Vb9Rt4Zp8Lw3Nc6Hs1Yd5Fg0Ja".repeat(2);
    let arn = secret(&sdk, "otp-hash-key", &generated).await;
    // (and the token signing key, generated the same way)
    let signing: String = "Pq3Wx8Ze1Rc6Vb0Nm4Ty9Ua2Si7Od5Lk".repeat(2);
    let signing_arn = secret(&sdk, "otp-token-key", &signing).await;
    let env = vec![
        ("OTP_HASH_KEY_SECRET_ARN", arn),
        ("OTP_TOKEN_SIGNING_KEY_SECRET_ARN", signing_arn),
        ("OTP_TABLE_NAME", "otp".to_owned()),
    ];
    // THEN a function starts with it (no OTP_HASH_KEY anywhere)
    let built = build(settings_of(&env).unwrap(), Routes::Verifying).await;
    assert!(built.is_ok(), "{:?}", built.err());
    // AND it signs with the key derived from that secret, the same in every instance
    let again = build(settings_of(&env).unwrap(), Routes::Verifying)
        .await
        .unwrap();
    let kid = built.unwrap().tokens().unwrap().current_kid().to_owned();
    assert_eq!(again.tokens().unwrap().current_kid(), kid);
    // AND the verify function does not start without a signing key
    let mut settings = settings_of(&[("OTP_TABLE_NAME", "otp".to_owned())]).unwrap();
    settings.token.keys = otp_core::settings::TokenKeys::Unset;
    let error = build(settings, Routes::Verifying)
        .await
        .err()
        .expect("refused");
    assert!(
        error
            .to_string()
            .contains("OTP_TOKEN_SIGNING_KEY_SECRET_ARN is required"),
        "{error}"
    );
    // AND a secret that is not a usable key fails the init, naming the variable
    let short = secret(&sdk, "otp-short-key", "too-short").await;
    let error = build(
        settings_of(&[
            ("OTP_HASH_KEY_SECRET_ARN", short),
            ("OTP_TABLE_NAME", "otp".to_owned()),
        ])
        .unwrap(),
        Routes::Verifying,
    )
    .await
    .err()
    .expect("refused");
    assert!(
        error.to_string().contains("OTP_HASH_KEY_SECRET_ARN"),
        "{error}"
    );
}

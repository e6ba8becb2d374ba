//! Metrics: every outcome of a send, a verification, a delivery and a store call becomes an EMF
//! record that follows the specification, names a metric of the catalogue, and holds no personal
//! data; the real binary writes them to stdout when asked (`OTP_METRICS=emf`).
//!
//! The recorder is process-wide, so other tests running at the same time add records too: the
//! assertions are about what must be there (and what must never be), never about totals.

use std::collections::BTreeMap;

use otp_core::sender::DeliveryError;
use otp_core::settings::{Policy, StoreSettings};
use serde_json::json;
use wiremock::MockServer;

use crate::emf_spec::{figures_in, Figure};
use crate::helpers::{wrong_code, Setup, TestApp, EMAIL, PHONE};
use crate::local_binary::{next_line, start_server, Server};
use crate::twilio_fake::{self, Outcome};

const NAMESPACE: &str = "OtpServiceTest";
const UK_PHONE: &str = "+447911123456";

fn figure(name: &str, dimensions: &[(&str, &str)]) -> (String, BTreeMap<String, String>) {
    (
        name.to_owned(),
        dimensions
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn sends(channel: &str, outcome: &str) -> (String, BTreeMap<String, String>) {
    figure("Sends", &[("Channel", channel), ("Outcome", outcome)])
}

fn verifications(outcome: &str) -> (String, BTreeMap<String, String>) {
    figure("Verifications", &[("Outcome", outcome)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_outcome_is_a_valid_emf_record_without_personal_data() {
    crate::moto_peer::require_moto();
    otp_core::meter::capture(NAMESPACE).expect("the EMF recorder installs");
    // GIVEN 3 attempts per code, lockout at the 4th failure, one send per user and hour
    let policy = Policy {
        max_attempts: 3,
        lockout_failures: 4,
        ..Policy::default()
    };
    let app = TestApp::builder()
        .policy(policy.clone())
        .settings(|s| {
            s.limits.user_per_hour = 2;
            s.limits.destination_per_10_minutes = 100;
            s.limits.destination_per_day = 100;
        })
        .spawn(Setup::Router)
        .await;

    // WHEN every send outcome happens once
    let sms = |user: &str, phone: &str| json!({"user_id": user, "method": "sms", "phone": phone});
    assert_eq!(app.post("/send-code", sms("s1", PHONE)).await.status, 200);
    let code = app.last_sms_code();
    assert_eq!(
        app.post("/send-code", sms("s1", PHONE)).await.error(),
        "cooldown"
    );
    let signup = json!({"user_id": "s1", "method": "sms", "phone": PHONE, "purpose": "signup"});
    assert_eq!(app.post("/send-code", signup).await.status, 200);
    let third = json!({"user_id": "s1", "method": "sms", "phone": PHONE, "purpose": "reset"});
    assert_eq!(app.post("/send-code", third).await.error(), "rate_limited");
    let premium = app.post("/send-code", sms("p1", "+19005550123")).await;
    assert_eq!(premium.error(), "invalid_destination");
    app.sms.fail_with(|| DeliveryError::InvalidDestination {
        detail: "refused".to_owned(),
    });
    assert_eq!(
        app.post("/send-code", sms("d1", UK_PHONE)).await.status,
        422
    );
    app.sms
        .fail_with(|| DeliveryError::Failed("connection refused".into()));
    let failed = app.post("/send-code", sms("d2", UK_PHONE)).await;
    assert_eq!(failed.status, 502, "{}", failed.json);
    app.sms
        .fail_with(|| DeliveryError::Uncertain("timed out".into()));
    assert_eq!(
        app.post("/send-code", sms("d3", UK_PHONE)).await.status,
        502
    );
    app.sms.succeed();
    let email = json!({"user_id": "m1", "method": "email", "email": EMAIL});
    assert_eq!(app.post("/send-code", email).await.status, 200);

    // ... and every verification outcome
    assert_eq!(app.verify("s1", &code).await.status, 200);
    assert_eq!(app.verify("nobody", "123456").await.error(), "not_found");
    assert_eq!(app.post("/send-code", sms("t1", PHONE)).await.status, 200);
    let t1 = app.last_sms_code();
    for _ in 0..3 {
        assert_eq!(app.verify("t1", &wrong_code(&t1)).await.status, 400);
    }
    assert_eq!(app.verify("t1", &t1).await.error(), "too_many_attempts");
    let elsewhere = json!({"user_id": "w1", "passcode": "123456", "phone": "+14155550000"});
    assert_eq!(app.post("/send-code", sms("w1", PHONE)).await.status, 200);
    assert_eq!(app.post("/verify-code", elsewhere).await.status, 409);
    assert_eq!(app.post("/send-code", sms("e1", PHONE)).await.status, 200);
    app.clock.advance(policy.ttl_secs + 1);
    assert_eq!(app.verify("e1", "123456").await.error(), "expired");
    // t1 has 3 failures; a fresh code and one more wrong guess lock the user out
    app.clock.advance(policy.cooldown_secs + 1);
    assert_eq!(app.post("/send-code", sms("t1", PHONE)).await.status, 200);
    let t1 = app.last_sms_code();
    assert_eq!(app.verify("t1", &wrong_code(&t1)).await.error(), "locked");
    assert_eq!(
        app.post("/send-code", sms("t1", PHONE)).await.error(),
        "locked"
    );
    assert_eq!(app.post("/verify-code", json!({})).await.status, 422);
    assert_eq!(app.post("/nowhere", json!({})).await.status, 404);

    // ... a deployment without email, and a store that cannot answer
    let no_email = TestApp::builder()
        .without_email()
        .spawn(Setup::Router)
        .await;
    let email = json!({"user_id": "m2", "method": "email", "email": EMAIL});
    assert_eq!(no_email.post("/send-code", email).await.status, 503);
    let broken = TestApp::builder()
        .settings(|s| {
            s.store = StoreSettings::DynamoDb {
                table: "no-such-table".to_owned(),
            }
        })
        .spawn(Setup::Router)
        .await;
    assert_eq!(
        broken.post("/send-code", sms("x1", PHONE)).await.status,
        503
    );
    assert_eq!(broken.verify("x1", "123456").await.status, 503);
    // ... and a real provider: Twilio (the fake) accepting a message
    let twilio = MockServer::start().await;
    twilio_fake::mount_any(&twilio, Outcome::Created).await;
    let with_twilio = TestApp::builder()
        .settings(|s| s.delivery.sms = Some(twilio_fake::sender_settings(&twilio.uri())))
        .spawn(Setup::Router)
        .await;
    assert_eq!(
        with_twilio
            .post("/send-code", sms("tw", UK_PHONE))
            .await
            .status,
        200
    );

    // ... and the fraud guard: a French block walked until it is refused, and another walked
    // past its breaker in monitor mode
    for (mode, block) in [
        (otp_core::fraud::FraudMode::Block, "+33612345"),
        (otp_core::fraud::FraudMode::Monitor, "+33698765"),
    ] {
        let guarded = TestApp::builder()
            .settings(|s| {
                s.delivery.sms = Some(twilio_fake::sender_settings(&twilio.uri()));
                s.fraud.mode = mode;
            })
            .spawn(Setup::Router)
            .await;
        for n in 0..22 {
            let body = json!({"user_id": format!("fg{n}"), "method": "sms", "phone": format!("{block}{n:03}")});
            guarded.post("/send-code", body).await;
        }
    }

    // THEN every record is valid EMF of a catalogued metric (checked while collecting)
    let captured = String::from_utf8(otp_core::meter::take_captured()).unwrap();
    // Kept for reading: a sample of every record the service writes.
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/target/emf-records.jsonl");
    std::fs::write(sample, &captured).expect("target/ is writable");
    let figures = figures_in(&captured, NAMESPACE);
    let seen: BTreeMap<_, u64> = figures.iter().fold(BTreeMap::new(), |mut seen, f| {
        *seen
            .entry((f.name.clone(), f.dimensions.clone()))
            .or_default() += f.total;
        seen
    });
    // ... and names every outcome
    let mut wanted = vec![
        sends("sms", "sent"),
        sends("sms", "cooldown"),
        sends("sms", "rate_limited"),
        sends("sms", "number_refused"),
        sends("sms", "invalid_destination"),
        sends("sms", "delivery_failed"),
        sends("sms", "delivery_uncertain"),
        sends("sms", "locked"),
        sends("sms", "store_error"),
        sends("email", "sent"),
        sends("email", "channel_unavailable"),
        sends("sms", "fraud_suspected"),
        figure(
            "FraudGuard",
            &[
                ("Decision", "opened"),
                ("Mode", "block"),
                ("CallingCode", "33"),
            ],
        ),
        figure(
            "FraudGuard",
            &[
                ("Decision", "blocked"),
                ("Mode", "block"),
                ("CallingCode", "33"),
            ],
        ),
        figure(
            "FraudGuard",
            &[
                ("Decision", "opened"),
                ("Mode", "monitor"),
                ("CallingCode", "33"),
            ],
        ),
        figure(
            "FraudGuard",
            &[
                ("Decision", "would_block"),
                ("Mode", "monitor"),
                ("CallingCode", "33"),
            ],
        ),
        figure("FraudGuardBreakersOpened", &[("Mode", "block")]),
        figure(
            "SmsSendsByCountry",
            &[("CallingCode", "1"), ("Outcome", "sent")],
        ),
        figure(
            "SmsSendsByCountry",
            &[("CallingCode", "44"), ("Outcome", "delivery_failed")],
        ),
        figure("SmsVerifiedByCountry", &[("CallingCode", "1")]),
        figure("LimitRefusals", &[("Limit", "user_per_hour")]),
        figure("ProviderCalls", &[("Provider", "twilio"), ("Result", "ok")]),
        figure("ProviderLatency", &[("Provider", "twilio")]),
        figure("StoreCalls", &[("Operation", "send"), ("Result", "ok")]),
        figure("StoreCalls", &[("Operation", "send"), ("Result", "error")]),
        figure("StoreCalls", &[("Operation", "verify"), ("Result", "ok")]),
        figure(
            "StoreCalls",
            &[("Operation", "verify"), ("Result", "error")],
        ),
        figure("StoreCalls", &[("Operation", "withdraw"), ("Result", "ok")]),
        figure("StoreLatency", &[("Operation", "send")]),
        figure(
            "Responses",
            &[("Route", "/send-code"), ("StatusClass", "2xx")],
        ),
        figure(
            "Responses",
            &[("Route", "/send-code"), ("StatusClass", "4xx")],
        ),
        figure(
            "Responses",
            &[("Route", "/send-code"), ("StatusClass", "5xx")],
        ),
        figure(
            "Responses",
            &[("Route", "/verify-code"), ("StatusClass", "4xx")],
        ),
        figure("Responses", &[("Route", "other"), ("StatusClass", "4xx")]),
    ];
    for outcome in ["ok", "failed", "uncertain", "refused_destination"] {
        wanted.push(figure(
            "ProviderCalls",
            &[("Provider", "recording"), ("Result", outcome)],
        ));
    }
    for outcome in [
        "verified",
        "wrong_code",
        "not_found",
        "expired",
        "too_many_attempts",
        "locked",
        "wrong_destination",
        "store_error",
    ] {
        wanted.push(verifications(outcome));
    }
    let missing: Vec<_> = wanted.iter().filter(|w| !seen.contains_key(*w)).collect();
    assert!(missing.is_empty(), "no record for {missing:#?}");
    // ... with latencies as milliseconds, and no address, number or user id anywhere
    assert!(figures
        .iter()
        .filter(|f| f.name.ends_with("Latency"))
        .all(|f| f.total >= 1));
    assert_no_personal_data(&figures, &captured);
}

fn assert_no_personal_data(figures: &[Figure], captured: &str) {
    for secret in [
        PHONE,
        "4155552671",
        UK_PHONE,
        "7911123456",
        EMAIL,
        "s1",
        "t1",
    ] {
        assert!(
            !captured.contains(&format!("\"{secret}\""))
                && !captured.contains(&format!("{secret}\"")),
            "{secret} appears in a record"
        );
    }
    for value in figures.iter().flat_map(|f| f.dimensions.values()) {
        assert!(
            !value.contains('@') && value.chars().filter(char::is_ascii_digit).count() <= 4,
            "dimension value {value:?} looks like personal data"
        );
    }
}

#[tokio::test]
async fn the_binary_writes_emf_records_to_stdout_when_asked() {
    // GIVEN the server binary with OTP_METRICS=emf and a namespace
    let Server {
        child: _child,
        mut stdout,
        url,
    } = start_server(
        &[("OTP_METRICS", "emf"), ("OTP_METRICS_NAMESPACE", NAMESPACE)],
        &["OTP_TABLE_NAME"],
    )
    .await;
    // WHEN a code is sent and checked
    let client = reqwest::Client::new();
    let send = json!({"user_id": "u", "method": "sms", "phone": PHONE});
    let reply = client
        .post(format!("{url}/send-code"))
        .json(&send)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let verify = json!({"user_id": "u", "passcode": "000000"});
    let reply = client
        .post(format!("{url}/verify-code"))
        .json(&verify)
        .send()
        .await
        .unwrap();
    assert!(reply.status() == 400 || reply.status() == 200);
    // THEN stdout holds EMF records for both, beside the banner and the console delivery
    let mut output = String::new();
    let mut figures = Vec::new();
    while !figures.iter().any(|f: &Figure| f.name == "Verifications") {
        let line = next_line(&mut stdout).await;
        output.push_str(&line);
        output.push('\n');
        figures = figures_in(&output, NAMESPACE);
    }
    assert!(figures
        .iter()
        .any(|f| f.name == "Sends" && f.dimensions["Outcome"] == "sent"));
    assert!(figures.iter().any(|f| f.name == "Responses"));
    assert_no_personal_data(&figures, &output);
}

#[test]
fn committed_metrics_json_is_the_catalogue() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/metrics.json");
    let committed = std::fs::read_to_string(path).expect("metrics.json at the repository root");
    assert!(
        committed.trim_end() == otp_core::meter::catalogue_json(),
        "metrics.json is stale: regenerate it with `make metrics`"
    );
}

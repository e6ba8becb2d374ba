//! WhatsApp and voice through the real Twilio sender against the Twilio fake, and the phone
//! limits they share with SMS.

use serde_json::{json, Value};
use wiremock::MockServer;

use crate::helpers::{every_setup, Setup, TestApp, PHONE};
use crate::twilio_fake::{self, field, Outcome};

const WHATSAPP_FROM: &str = "+14155550100";
const VOICE_FROM: &str = "+14155550101";
const TEMPLATE_EN: &str = "HX00000000000000000000000000000001";
const TEMPLATE_PT_BR: &str = "HX00000000000000000000000000000002";

/// Twilio with SMS, and WhatsApp and voice only if `extra` configures them.
async fn app(twilio: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    twilio_fake::app_with_twilio(TestApp::builder(), twilio, extra, Setup::Tcp).await
}

fn all_channels() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TWILIO_WHATSAPP_FROM", WHATSAPP_FROM),
        (
            "TWILIO_WHATSAPP_CONTENT_SID",
            "en=HX00000000000000000000000000000001,pt-BR=HX00000000000000000000000000000002",
        ),
        ("TWILIO_VOICE_FROM", VOICE_FROM),
    ]
}

fn send(user: &str, method: &str, locale: Option<&str>) -> Value {
    json!({"user_id": user, "method": method, "phone": PHONE, "locale": locale})
}

async fn last_form(twilio: &MockServer) -> (String, Vec<(String, String)>) {
    let requests = twilio.received_requests().await.unwrap();
    let last = requests.last().expect("a request reached Twilio");
    (last.url.path().to_owned(), twilio_fake::form(last))
}

#[tokio::test]
async fn whatsapp_sends_the_template_of_the_language_with_the_code() {
    // GIVEN Twilio with a WhatsApp sender and templates in English and Brazilian Portuguese
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Created, 2).await;
    let app = app(&twilio, &all_channels()).await;
    // WHEN a code is asked for by WhatsApp in pt-BR
    let reply = app
        .post("/send-code", send("u", "whatsapp", Some("pt-BR")))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["method"], "whatsapp");
    assert_eq!(reply.json["message"], "OTP sent successfully via whatsapp");
    // THEN Twilio's Messages API got the pt-BR template, both ends on WhatsApp, the code as
    // the template's one variable, and no free text
    let (path, form) = last_form(&twilio).await;
    assert!(path.ends_with("/Messages.json"), "{path}");
    assert_eq!(
        field(&form, "To"),
        Some(format!("whatsapp:{PHONE}").as_str())
    );
    assert_eq!(
        field(&form, "From"),
        Some(format!("whatsapp:{WHATSAPP_FROM}").as_str())
    );
    assert_eq!(field(&form, "ContentSid"), Some(TEMPLATE_PT_BR));
    assert_eq!(field(&form, "Body"), None);
    let variables: Value = serde_json::from_str(field(&form, "ContentVariables").unwrap()).unwrap();
    let code = variables["1"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    // AND the code verifies against the phone number it went to
    let reply = app
        .post(
            "/verify-code",
            json!({"user_id": "u", "passcode": code, "phone": PHONE}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    // AND a language without its own template gets the first one
    app.post("/send-code", send("v", "whatsapp", Some("ja")))
        .await;
    assert_eq!(
        field(&last_form(&twilio).await.1, "ContentSid"),
        Some(TEMPLATE_EN)
    );
}

#[tokio::test]
async fn voice_calls_and_says_the_digits_twice_in_the_language() {
    // GIVEN Twilio with a number that places calls
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Created, 1).await;
    let app = app(&twilio, &all_channels()).await;
    // WHEN a code is asked for by voice in French
    let reply = app
        .post("/send-code", send("u", "voice", Some("fr-CA")))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    // THEN the Calls API got our number, theirs, and TwiML (the fake parsed it) whose two
    // <Say> speak French, the code digit by digit
    let (path, form) = last_form(&twilio).await;
    assert!(path.ends_with("/Calls.json"), "{path}");
    assert_eq!(field(&form, "To"), Some(PHONE));
    assert_eq!(field(&form, "From"), Some(VOICE_FROM));
    let twiml = field(&form, "Twiml").unwrap();
    let doc = roxmltree::Document::parse(twiml).unwrap();
    let says: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("Say"))
        .collect();
    assert_eq!(says.len(), 2, "{twiml}");
    let mut spoken = Vec::new();
    for say in &says {
        assert_eq!(say.attribute("language"), Some("fr-FR"));
        let text = say.text().unwrap();
        let digits: String = text
            .rsplit(':')
            .next()
            .unwrap()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        assert!(text.contains(", "), "digits one by one: {text}");
        spoken.push(digits);
    }
    assert_eq!(spoken[0], spoken[1], "said twice");
    assert!(says[0]
        .text()
        .unwrap()
        .starts_with("Votre code de vérification est"));
    // AND the code heard verifies
    assert_eq!(app.verify("u", &spoken[0]).await.status, 200);
}

#[tokio::test]
async fn a_channel_not_configured_is_503_and_costs_nothing() {
    // GIVEN Twilio configured for SMS only
    let twilio = MockServer::start().await;
    twilio_fake::mount(&twilio, Outcome::Created, 1).await;
    let app = app(&twilio, &[]).await;
    for method in ["whatsapp", "voice"] {
        let reply = app.post("/send-code", send("u", method, None)).await;
        assert_eq!(
            (reply.status, reply.error()),
            (503, "channel_unavailable"),
            "{method}: {}",
            reply.json
        );
    }
    // THEN nothing reached Twilio and no cooldown was spent: SMS goes out at once
    assert_eq!(app.send_sms("u").await.status, 200);
    twilio.verify().await;
}

#[tokio::test]
async fn twilio_refusals_map_per_channel() {
    // A number without WhatsApp is the user's to fix; a template Twilio does not know is ours;
    // a country calls may not reach is the user's.
    for (method, code, status, error) in [
        ("whatsapp", 63003, 422, "invalid_destination"),
        ("whatsapp", 63007, 503, "channel_unavailable"),
        ("whatsapp", 21655, 503, "channel_unavailable"),
        ("voice", 21215, 422, "invalid_destination"),
        ("voice", 21210, 503, "channel_unavailable"),
    ] {
        let twilio = MockServer::start().await;
        twilio_fake::mount(&twilio, Outcome::Error(400, code), 1).await;
        let app = app(&twilio, &all_channels()).await;
        let reply = app.post("/send-code", send("u", method, None)).await;
        assert_eq!(
            (reply.status, reply.error()),
            (status, error),
            "{method} {code}: {}",
            reply.json
        );
        if status == 422 {
            let detail = reply.json["detail"].as_str().unwrap();
            assert!(!detail.contains(PHONE), "{detail}");
            let expected = if method == "whatsapp" {
                "WhatsApp"
            } else {
                "call"
            };
            assert!(detail.contains(expected), "{detail}");
        }
        // AND nothing is left behind
        assert_eq!(app.verify("u", "123456").await.error(), "not_found");
        twilio.verify().await;
    }
}

every_setup! {
    /// Alternating channels gives a number no more codes: SMS, WhatsApp and voice share the
    /// per-number limits (and the SMS country and budget counters).
    async fn every_phone_channel_counts_against_the_same_number(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        let channels = ["sms", "whatsapp", "voice", "sms", "whatsapp"];
        for (n, method) in channels.iter().enumerate() {
            let reply = app.post("/send-code", send(&format!("u{n}"), method, None)).await;
            assert_eq!(reply.status, 200, "{method}: {}", reply.json);
        }
        // THEN the sixth send in ten minutes, by whichever channel, is refused
        for method in ["voice", "whatsapp", "sms"] {
            let reply = app.post("/send-code", send("u9", method, None)).await;
            assert_eq!(
                (reply.status, reply.json["limit"].as_str()),
                (429, Some("destination_per_10_minutes")),
                "{method}: {}",
                reply.json
            );
        }
        assert_eq!(app.sms.count(), 5);
    }
}

every_setup! {
    /// A number the SMS rules refuse (a premium-rate one) is refused for calls and WhatsApp
    /// too: voice is the costlier pumping target.
    async fn the_number_rules_apply_to_every_phone_channel(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        for method in ["sms", "whatsapp", "voice"] {
            let reply = app
                .post(
                    "/send-code",
                    json!({"user_id": "u", "method": method, "phone": "+449098790000"}),
                )
                .await;
            assert_eq!(reply.status, 422, "{method}: {}", reply.json);
        }
        assert_eq!(app.sms.count(), 0);
    }
}

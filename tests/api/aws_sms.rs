//! SMS through AWS End User Messaging (`OTP_SMS_PROVIDER=aws`) against a local fake of its
//! JSON API. moto has no `pinpoint-sms-voice-v2`, so the fake checks what the service checks:
//! the awsJson 1.0 protocol (`X-Amz-Target`, content type), a SigV4 signature for the
//! `sms-voice` service, and SendTextMessage's fields; it answers with a MessageId or the
//! service's error shapes.

use std::sync::Arc;

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{Setup, TestApp, PHONE};

const IDENTITY: &str = "arn:aws:sms-voice:us-east-1:123456789012:pool/pool-0123456789abcdef";
const PROTECT: &str = "protect-0123456789abcdef";

#[derive(Clone)]
enum Answer {
    Sent,
    /// HTTP status, error type, reason.
    Error(u16, &'static str, Option<&'static str>),
}

struct SmsVoiceFake(Answer);

fn error(status: u16, kind: &str, message: &str, reason: Option<&str>) -> ResponseTemplate {
    let mut body = json!({"__type": kind, "Message": message});
    if let Some(reason) = reason {
        body["Reason"] = json!(reason);
    }
    ResponseTemplate::new(status)
        .insert_header("content-type", "application/x-amz-json-1.0")
        .set_body_json(body)
}

impl Respond for SmsVoiceFake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !auth.starts_with("AWS4-HMAC-SHA256 Credential=")
            || !auth.contains("/sms-voice/aws4_request")
            || !auth.contains("Signature=")
        {
            return error(
                403,
                "AccessDeniedException",
                "Missing or bad signature",
                None,
            );
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return error(400, "SerializationException", "Bad JSON", None);
        };
        let text = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
        let phone_ok = otp_core::domain::PhoneE164::parse(&text("DestinationPhoneNumber")).is_ok();
        let ttl_ok = body
            .get("TimeToLive")
            .is_none_or(|t| t.as_i64().is_some_and(|t| (5..=259_200).contains(&t)));
        let fields_ok = phone_ok
            && !text("OriginationIdentity").is_empty()
            && (1..=1600).contains(&text("MessageBody").chars().count())
            && ["TRANSACTIONAL", "PROMOTIONAL"].contains(&text("MessageType").as_str())
            && ttl_ok;
        if !fields_ok {
            return error(
                400,
                "ValidationException",
                "Invalid request",
                Some("FIELD_VALIDATION_FAILED"),
            );
        }
        match &self.0 {
            Answer::Sent => ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.0")
                .set_body_json(json!({"MessageId": "0123456789abcdef"})),
            Answer::Error(status, kind, reason) => {
                error(*status, kind, "refused by the fake", *reason)
            }
        }
    }
}

async fn fake(answer: Answer, calls: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("x-amz-target", "PinpointSMSVoiceV2.SendTextMessage"))
        .and(header("content-type", "application/x-amz-json-1.0"))
        .respond_with(SmsVoiceFake(answer))
        .expect(calls)
        .mount(&server)
        .await;
    server
}

/// The service with SMS through the real AWS sender, pointed at `server`.
async fn app(server: &MockServer) -> TestApp {
    let sdk = aws_config::SdkConfig::builder()
        .endpoint_url(server.uri())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::for_tests(),
        ))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let settings = otp_core::settings::AwsSmsSettings {
        origination_identity: IDENTITY.to_owned(),
        protect_configuration_id: Some(PROTECT.to_owned()),
        configuration_set: None,
    };
    let sender = otp_core::sender::AwsSmsSender::new(&sdk, &settings);
    TestApp::builder()
        .phone_sender(Arc::new(sender))
        .spawn(Setup::Tcp)
        .await
}

#[tokio::test]
async fn aws_sms_sends_a_transactional_text_that_verifies() {
    // GIVEN AWS End User Messaging accepting messages
    let server = fake(Answer::Sent, 1).await;
    let app = app(&server).await;
    // WHEN a code is sent by SMS
    let reply = app.send_sms("u").await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    // THEN SendTextMessage got the number, our pool, the protect configuration, a transactional
    // type, a time to live of the code's lifetime, and the text
    let requests = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["DestinationPhoneNumber"], PHONE);
    assert_eq!(body["OriginationIdentity"], IDENTITY);
    assert_eq!(body["ProtectConfigurationId"], PROTECT);
    assert_eq!(body["MessageType"], "TRANSACTIONAL");
    assert_eq!(body["TimeToLive"], 300);
    let text = body["MessageBody"].as_str().unwrap();
    let code = text
        .strip_prefix("Your verification code is ")
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_else(|| panic!("{text}"));
    // AND the code verifies
    assert_eq!(app.verify("u", code).await.status, 200);
}

#[tokio::test]
async fn aws_sms_refusals_map_and_are_never_retried() {
    for (answer, status, error) in [
        (
            Answer::Error(
                400,
                "ConflictException",
                Some("DESTINATION_PHONE_NUMBER_OPTED_OUT"),
            ),
            422,
            "invalid_destination",
        ),
        (
            Answer::Error(
                400,
                "ConflictException",
                Some("DESTINATION_COUNTRY_BLOCKED_BY_PROTECT_CONFIGURATION"),
            ),
            422,
            "invalid_destination",
        ),
        (
            Answer::Error(403, "AccessDeniedException", Some("ACCOUNT_DISABLED")),
            503,
            "channel_unavailable",
        ),
        (
            Answer::Error(404, "ResourceNotFoundException", None),
            503,
            "channel_unavailable",
        ),
        (
            Answer::Error(402, "ServiceQuotaExceededException", None),
            503,
            "channel_unavailable",
        ),
        (
            Answer::Error(400, "ThrottlingException", None),
            502,
            "delivery_failed",
        ),
        (
            Answer::Error(500, "InternalServerException", None),
            502,
            "delivery_uncertain",
        ),
    ] {
        // Exactly one call: the client must not retry a send that may have gone out.
        let server = fake(answer, 1).await;
        let app = app(&server).await;
        let reply = app.send_sms("u").await;
        assert_eq!(
            (reply.status, reply.error()),
            (status, error),
            "{}",
            reply.json
        );
        let detail = reply.json["detail"].as_str().unwrap();
        assert!(!detail.contains(PHONE), "{detail}");
        server.verify().await;
    }
}

#[tokio::test]
async fn a_function_configured_for_aws_sms_builds_that_sender_and_twilio_for_calls() {
    // GIVEN a send function's environment: SMS through AWS, calls through Twilio (whose
    // account then needs no SMS sender: no TWILIO_PHONE_NUMBER)
    crate::moto_peer::require_moto();
    let env = [
        ("OTP_HASH_KEY", "33".repeat(32)),
        ("OTP_TABLE_NAME", "otp".to_owned()),
        ("OTP_CALLER_AUTH", "none".to_owned()),
        ("OTP_METRICS", "off".to_owned()),
        ("OTP_SMS_PROVIDER", "aws".to_owned()),
        ("OTP_AWS_SMS_ORIGINATION_IDENTITY", IDENTITY.to_owned()),
        ("OTP_AWS_SMS_PROTECT_CONFIGURATION_ID", PROTECT.to_owned()),
        (
            "TWILIO_ACCOUNT_SID",
            crate::twilio_fake::ACCOUNT_SID.to_owned(),
        ),
        (
            "TWILIO_AUTH_TOKEN",
            crate::twilio_fake::AUTH_TOKEN.to_owned(),
        ),
        ("TWILIO_VOICE_FROM", "+14155550101".to_owned()),
    ];
    let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let settings =
        otp_core::settings::Settings::from_lookup(otp_core::settings::Runtime::Lambda, &lookup)
            .unwrap();
    // WHEN it starts
    let engine = otp_core::startup::build(settings, otp_core::http::Routes::Sending)
        .await
        .unwrap();
    // THEN SMS goes through AWS, calls through Twilio, and WhatsApp is not offered
    assert_eq!(
        engine.senders().describe(),
        "sms: aws end user messaging, protect configuration, whatsapp: unavailable, \
         voice: twilio, email: unavailable"
    );
}

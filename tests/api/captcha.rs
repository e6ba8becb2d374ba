//! The CAPTCHA on `/auth/request-otp`, against a siteverify fake that checks what the providers
//! check (a form POST with our secret, the token and the client's address) and answers as they
//! do.

use std::time::Duration;

use otp_core::settings::{CaptchaProvider, CaptchaSettings, Secret};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{Setup, TestApp};

const SECRET: &str = "0x4AAAAAAAtest-secret";
const GOOD: &str = "token-solved-by-a-person";

/// Answers like Turnstile's siteverify.
struct SiteVerifyFake;

impl Respond for SiteVerifyFake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let content_type = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        if content_type != Some("application/x-www-form-urlencoded") {
            return ResponseTemplate::new(400);
        }
        let form: Vec<(String, String)> =
            form_urlencoded::parse(&request.body).into_owned().collect();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let answer = |success: bool, codes: &[&str]| {
            ResponseTemplate::new(200)
                .set_body_json(json!({"success": success, "error-codes": codes}))
        };
        match (field("secret"), field("response")) {
            (None, _) => answer(false, &["missing-input-secret"]),
            (Some(secret), _) if secret != SECRET => answer(false, &["invalid-input-secret"]),
            (_, None) => answer(false, &["missing-input-response"]),
            (_, Some(GOOD)) if field("remoteip") == Some("127.0.0.1") => answer(true, &[]),
            _ => answer(false, &["invalid-input-response"]),
        }
    }
}

async fn app_with_captcha(setup: Setup, verify_url: String, secret: &str) -> TestApp {
    let secret = secret.to_owned();
    TestApp::builder()
        .settings(move |s| {
            s.public.captcha = Some(CaptchaSettings {
                provider: CaptchaProvider::Turnstile,
                secret: Secret::Value(secret.into()),
                verify_url,
                timeout: Duration::from_millis(1000),
            })
        })
        .spawn(setup)
        .await
}

fn request(token: Option<&str>) -> Value {
    let mut body = json!({"email": "a@example.com"});
    if let Some(token) = token {
        body["captcha_token"] = json!(token);
    }
    body
}

#[tokio::test]
async fn a_send_needs_a_token_the_provider_passes() {
    // GIVEN a service with a CAPTCHA, and the provider
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/siteverify"))
        .respond_with(SiteVerifyFake)
        .mount(&provider)
        .await;
    let app = app_with_captcha(Setup::Tcp, format!("{}/siteverify", provider.uri()), SECRET).await;
    // WHEN a bot sends no token, or one the provider rejects
    let missing = app.post("/auth/request-otp", request(None)).await;
    let rejected = app.post("/auth/request-otp", request(Some("forged"))).await;
    // THEN 403 with a sentence, and nothing is sent
    assert_eq!(missing.status, 403);
    assert!(missing.json["detail"]
        .as_str()
        .unwrap()
        .contains("captcha_token"));
    assert_eq!(rejected.status, 403);
    assert_eq!(
        rejected.json,
        json!({"detail": "The CAPTCHA check failed. Please try again."})
    );
    assert_eq!(app.email.count(), 0);
    // AND a person's token passes (the provider got our secret and the client's address)
    let reply = app.post("/auth/request-otp", request(Some(GOOD))).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(app.email.count(), 1);
    // AND the provider was asked only about the two tokens, never about a missing one
    assert_eq!(provider.received_requests().await.unwrap().len(), 2);
    // AND a malformed token is a 422 that costs the provider nothing
    let reply = app
        .post("/auth/request-otp", request(Some(&"x".repeat(4097))))
        .await;
    assert_eq!(reply.bad_fields(), ["captcha_token"]);
}

#[tokio::test]
async fn a_provider_that_cannot_answer_is_503_and_nothing_is_sent() {
    // GIVEN a provider that fails, one that is not there, and our own secret being wrong
    let failing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&failing)
        .await;
    let honest = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(SiteVerifyFake)
        .mount(&honest)
        .await;
    let unreachable = "http://127.0.0.1:9/siteverify".to_owned();
    for (url, secret, why) in [
        (failing.uri(), SECRET, "provider 500"),
        (unreachable, SECRET, "nothing listening"),
        (honest.uri(), "not-our-secret", "our secret refused"),
    ] {
        let app = app_with_captcha(Setup::Router, url, secret).await;
        // WHEN a person's token comes in
        let reply = app.post("/auth/request-otp", request(Some(GOOD))).await;
        // THEN 503: the user is not blamed, nothing is sent, no cooldown is spent
        assert_eq!(reply.status, 503, "{why}: {}", reply.json);
        assert_eq!(reply.error(), "captcha_unavailable", "{why}");
        assert_eq!(app.email.count(), 0, "{why}");
    }
}

#[tokio::test]
async fn the_secret_key_is_read_from_secrets_manager() {
    // GIVEN the provider's secret key in Secrets Manager, as the template passes it (JSON with
    // "secret", as the console's key/value form stores it)
    crate::moto_peer::require_moto();
    let sdk = otp_core::aws::load(&otp_core::tls::AwsRoots::System).await;
    let arn = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(format!("otp-captcha-{}", std::process::id()))
        .secret_string(json!({ "secret": SECRET }).to_string())
        .send()
        .await
        .expect("create the secret in moto")
        .arn()
        .unwrap()
        .to_owned();
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(SiteVerifyFake)
        .mount(&provider)
        .await;
    let url = provider.uri();
    let app = TestApp::builder()
        .settings(move |s| {
            s.public.captcha = Some(CaptchaSettings {
                provider: CaptchaProvider::HCaptcha,
                secret: Secret::Arn(arn),
                verify_url: url,
                timeout: Duration::from_millis(1000),
            })
        })
        .spawn(Setup::Router)
        .await;
    // WHEN a person's token comes in
    let reply = app.post("/auth/request-otp", request(Some(GOOD))).await;
    // THEN the provider got the key from the secret and passed the token
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(app.email.count(), 1);
}

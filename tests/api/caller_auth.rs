//! Caller authentication of the backend routes (`OTP_CALLER_AUTH=api_key`); the public
//! `/auth/*` routes stay open. The Lambda side (IAM identity, sample events) is in
//! `lambda_events.rs`.

use serde_json::json;

use crate::helpers::{every_setup, Setup, TestApp, PHONE};

const BACKEND: &str = "otpk_backend-key-for-tests-0123456789abcdef";
const MAILER: &str = "mailer-key-with-send-scope-0123456789abcdef";
const OLD: &str = "otpk_old-key-being-rotated-out-0123456789ab";

async fn keyed(setup: Setup) -> TestApp {
    TestApp::builder()
        .api_keys(&format!("backend={BACKEND},mailer={MAILER}:send,old={OLD}"))
        .spawn(setup)
        .await
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn sms(user: &str) -> serde_json::Value {
    json!({"user_id": user, "method": "sms", "phone": PHONE})
}

every_setup! {
    async fn a_request_without_a_valid_key_is_401_and_reads_nothing(setup: Setup) {
        // GIVEN a service with API keys
        let app = keyed(setup).await;
        for (authorization, path) in [
            (None, "/send-code"),
            (None, "/verify-code"),
            (Some("Bearer not-a-key-but-long-enough-0123456789".to_owned()), "/send-code"),
            (Some(format!("Basic {BACKEND}")), "/verify-code"),
            (Some(BACKEND.to_owned()), "/send-code"),
        ] {
            // WHEN it is called without a valid key, even with a body that is not valid
            let body = json!({"user_id": ""});
            let reply = match &authorization {
                None => app.post(path, body).await,
                Some(header) => app.post_as(header, path, body).await,
            };
            // THEN 401 with the challenge and a detail, before the body is looked at
            assert_eq!(reply.status, 401, "{authorization:?} {path}");
            assert_eq!(reply.headers["www-authenticate"], "Bearer");
            assert!(reply.json["detail"].as_str().unwrap().contains("API key"));
        }
        // AND nothing was sent
        assert!(app.sms.messages().is_empty());
    }
}

every_setup! {
    async fn a_valid_key_sends_and_verifies(setup: Setup) {
        let app = keyed(setup).await;
        let sent = app.post_as(&bearer(BACKEND), "/send-code", sms("u")).await;
        assert_eq!(sent.status, 200);
        let code = app.last_sms_code();
        let reply = app
            .post_as(&bearer(OLD), "/verify-code", json!({"user_id": "u", "passcode": code}))
            .await;
        assert_eq!(reply.status, 200, "a second key works during a rotation");
    }
}

every_setup! {
    async fn a_scoped_key_is_403_outside_its_scope(setup: Setup) {
        let app = keyed(setup).await;
        assert_eq!(
            app.post_as(&bearer(MAILER), "/send-code", sms("u")).await.status,
            200
        );
        let code = app.last_sms_code();
        let reply = app
            .post_as(&bearer(MAILER), "/verify-code", json!({"user_id": "u", "passcode": code}))
            .await;
        assert_eq!(reply.status, 403);
        assert!(reply.json["detail"].as_str().unwrap().contains("mailer"));
        // The refused check took no attempt: the code still verifies with a full key.
        let reply = app
            .post_as(&bearer(BACKEND), "/verify-code", json!({"user_id": "u", "passcode": code}))
            .await;
        assert_eq!(reply.status, 200);
    }
}

every_setup! {
    async fn the_public_routes_need_no_key(setup: Setup) {
        let app = keyed(setup).await;
        let reply = app
            .post("/auth/request-otp", json!({"email": "e@example.com"}))
            .await;
        assert_eq!(reply.status, 200);
        let code = app.email.last_code_to("e@example.com").unwrap();
        let reply = app
            .post("/auth/verify-otp", json!({"email": "e@example.com", "otp_code": code}))
            .await;
        assert_eq!(reply.status, 200);
    }
}

#[tokio::test]
async fn an_open_service_says_so_and_answers_without_a_key() {
    let app = TestApp::spawn(Setup::Router).await;
    assert!(
        app.engine.describe().contains("OPEN"),
        "{}",
        app.engine.describe()
    );
    assert_eq!(app.post("/send-code", sms("u")).await.status, 200);
}

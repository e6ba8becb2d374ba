use otp_core::sender::DeliveryError;
use serde_json::json;

use crate::helpers::{every_setup, wrong_code, TestApp, EMAIL, PHONE};

every_setup! {
    async fn sms_send_returns_the_contract_and_delivers_one_code(setup: Setup) {
        // GIVEN a running service
        let app = TestApp::spawn(setup).await;
        // WHEN a code is requested by SMS
        let reply = app.send_sms("user-1").await;
        // THEN the documented body comes back and exactly one message went out
        assert_eq!(reply.status, 200, "{setup:?} {}", reply.json);
        let mut body = reply.json.clone();
        let id = body.as_object_mut().unwrap().remove("verification_id").unwrap();
        assert_eq!(
            body,
            json!({"message": "OTP sent successfully via sms", "user_id": "user-1",
                   "method": "sms", "expires_in": 300})
        );
        assert!(id.as_str().unwrap().starts_with("VE"), "{id}");
        let messages = app.sms.messages();
        assert_eq!(messages.len(), 1);
        let code = &messages[0].code;
        assert_eq!(code.len(), 6);
        assert_eq!(
            messages[0].text,
            format!("Your verification code is {code}. It expires in 5 minutes.")
        );
    }
}

every_setup! {
    async fn email_send_says_via_email(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        let reply = app
            .post(
                "/send-code",
                json!({"user_id": "u", "method": "email", "email": EMAIL, "purpose": "signup"}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        assert_eq!(reply.json["message"], "OTP sent successfully via email");
        assert_eq!(reply.json["method"], "email");
        assert!(app.email.last_code_to(EMAIL).is_some());
        assert!(app.sms.messages().is_empty());
    }
}

every_setup! {
    async fn resend_inside_cooldown_is_429_with_retry_after(setup: Setup) {
        // GIVEN a code sent 10 seconds ago (cooldown 30)
        let app = TestApp::spawn(setup).await;
        assert_eq!(app.send_sms("u").await.status, 200);
        app.clock.advance(10);
        // WHEN another is requested
        let reply = app.send_sms("u").await;
        // THEN it is refused with the seconds left, in the header and the body
        assert_eq!(reply.status, 429);
        assert_eq!(reply.error(), "cooldown");
        assert_eq!(reply.json["retry_after"], 20);
        assert_eq!(reply.headers.get("retry-after").unwrap(), "20");
        assert!(reply.json["detail"]
            .as_str()
            .unwrap()
            .contains("20 seconds"));
        assert_eq!(app.sms.messages().len(), 1, "nothing was sent");
        // AND the first code still works
        assert_eq!(app.verify("u", &app.last_sms_code()).await.status, 200);
    }
}

#[tokio::test]
async fn cooldown_is_per_user_and_purpose() {
    let app = TestApp::spawn(crate::helpers::Setup::Router).await;
    assert_eq!(app.send_sms("u").await.status, 200);
    assert_eq!(app.send_sms("other").await.status, 200);
    let reply = app
        .post(
            "/send-code",
            json!({"user_id": "u", "method": "sms", "phone": PHONE, "purpose": "reset"}),
        )
        .await;
    assert_eq!(reply.status, 200);
}

every_setup! {
    async fn a_new_send_replaces_the_old_code_and_resets_attempts(setup: Setup) {
        // GIVEN a code with two wrong guesses against it
        let app = TestApp::spawn(setup).await;
        app.send_sms("u").await;
        let old = app.last_sms_code();
        for _ in 0..2 {
            assert_eq!(app.verify("u", &wrong_code(&old)).await.status, 400);
        }
        // WHEN a new code is sent after the cooldown
        app.clock.advance(30);
        assert_eq!(app.send_sms("u").await.status, 200);
        let new = app.last_sms_code();
        // THEN the old code no longer works, and the new one has all its attempts again
        if old != new {
            let reply = app.verify("u", &old).await;
            assert_eq!(reply.status, 400);
            assert_eq!(reply.json["attempts_remaining"], 2);
        }
        let reply = app.verify("u", &wrong_code(&new)).await;
        assert_eq!(
            reply.json["attempts_remaining"],
            if old != new { 1 } else { 2 }
        );
        assert_eq!(app.verify("u", &new).await.status, 200);
    }
}

#[tokio::test]
async fn a_used_code_frees_the_cooldown_and_an_expired_one_does_not() {
    let app = TestApp::spawn(crate::helpers::Setup::Router).await;
    app.send_sms("u").await;
    assert_eq!(app.verify("u", &app.last_sms_code()).await.status, 200);
    assert_eq!(
        app.send_sms("u").await.status,
        200,
        "used code does not block"
    );
    let policy = otp_core::settings::Policy {
        cooldown_secs: 3600,
        ..Default::default()
    };
    let app = TestApp::builder()
        .policy(policy)
        .spawn(crate::helpers::Setup::Router)
        .await;
    app.send_sms("u").await;
    app.clock.advance(300);
    let reply = app.send_sms("u").await;
    assert_eq!(
        (reply.status, reply.error()),
        (429, "cooldown"),
        "a cooldown longer than the code's life is kept"
    );
    assert_eq!(reply.headers["retry-after"], "3300");
    app.clock.advance(3300);
    assert_eq!(app.send_sms("u").await.status, 200);
}

every_setup! {
    async fn channel_without_sender_is_503_and_costs_nothing(setup: Setup) {
        // GIVEN a service with no email delivery
        let app = TestApp::builder().without_email().spawn(setup).await;
        // WHEN an email code is requested
        let request = json!({"user_id": "u", "method": "email", "email": EMAIL});
        let reply = app.post("/send-code", request.clone()).await;
        // THEN 503, and no code was stored (no cooldown either)
        assert_eq!(reply.status, 503);
        assert_eq!(reply.error(), "channel_unavailable");
        assert_eq!(app.verify("u", "123456").await.error(), "not_found");
        assert_eq!(app.send_sms("u").await.status, 200, "no cooldown consumed");
    }
}

fn timeout() -> DeliveryError {
    DeliveryError::Failed("provider timed out".into())
}

fn rejected() -> DeliveryError {
    DeliveryError::InvalidDestination {
        detail: "This phone number cannot receive SMS. Use a mobile number.".to_owned(),
    }
}

fn misconfigured() -> DeliveryError {
    DeliveryError::Unavailable {
        channel: otp_core::domain::Channel::Sms,
        reason: "credentials refused".to_owned(),
    }
}

every_setup! {
    async fn delivery_failures_remove_the_code_and_keep_no_cooldown(setup: Setup) {
        for (fail, status, error) in [
            (timeout as fn() -> DeliveryError, 502, "delivery_failed"),
            (rejected, 422, "invalid_destination"),
            (misconfigured, 503, "channel_unavailable"),
        ] {
            // GIVEN a provider that fails
            let app = TestApp::spawn(setup).await;
            app.sms.fail_with(fail);
            // WHEN a code is requested
            let reply = app.send_sms("u").await;
            // THEN the mapped status, no code left behind, and an immediate retry is allowed
            assert_eq!(
                (reply.status, reply.error()),
                (status, error),
                "{}",
                reply.json
            );
            assert!(reply.json["detail"].as_str().unwrap().len() > 10);
            assert_eq!(app.verify("u", "123456").await.error(), "not_found");
            app.sms.succeed();
            assert_eq!(app.send_sms("u").await.status, 200);
            assert_eq!(app.verify("u", &app.last_sms_code()).await.status, 200);
        }
    }
}

#[tokio::test]
async fn brand_name_prefixes_the_text() {
    let app = TestApp::builder()
        .brand("Acme")
        .spawn(crate::helpers::Setup::Router)
        .await;
    app.send_sms("u").await;
    let text = &app.sms.messages()[0].text;
    assert!(
        text.starts_with("Acme: Your verification code is "),
        "{text}"
    );
}

#[tokio::test]
async fn autofill_lines_end_the_sms_and_the_code_in_them_verifies() {
    // GIVEN a site that reads codes with WebOTP and an Android app with the SMS Retriever
    let app = TestApp::builder()
        .settings(|s| {
            s.autofill = otp_core::templates::SmsAutofill {
                webotp_domain: Some("login.example.com".to_owned()),
                android_app_hash: Some("FA+9qCX9VSu".to_owned()),
            }
        })
        .spawn(crate::helpers::Setup::Router)
        .await;
    // WHEN a code goes out by SMS
    app.send_sms("u").await;
    let sent = &app.sms.messages()[0];
    // THEN the hash has a line of its own and the last line is the origin-bound code
    let lines: Vec<&str> = sent.text.lines().collect();
    assert_eq!(
        lines.last().unwrap(),
        &format!("@login.example.com #{}", sent.code)
    );
    assert!(lines.contains(&"FA+9qCX9VSu"), "{}", sent.text);
    assert!(otp_core::sms::Length::of(&sent.text).fits_one_segment());
    // AND the code a phone fills in from that line is the one that verifies
    let code = lines.last().unwrap().rsplit_once('#').unwrap().1;
    assert_eq!(app.verify("u", code).await.status, 200);
    // AND email is untouched by SMS autofill
    let reply = app
        .post(
            "/send-code",
            serde_json::json!({"user_id": "e", "method": "email", "email": "e@example.com"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(!app.email.messages()[0].text.contains("@login.example.com"));
}

every_setup! {
    async fn the_locale_picks_the_language_with_fallback(setup: Setup) {
        // GIVEN a running service
        let app = TestApp::spawn(setup).await;
        let send = |user: &'static str, locale: &'static str| {
            let app = &app;
            async move {
                app.post(
                    "/send-code",
                    json!({"user_id": user, "method": "sms", "phone": PHONE, "locale": locale}),
                )
                .await
            }
        };
        // WHEN codes are asked for in Brazilian and European Portuguese, and in a language
        // we do not have
        for (user, locale) in [("a", "pt-BR"), ("b", "pt-PT"), ("c", "sr-Latn-RS")] {
            assert_eq!(send(user, locale).await.status, 200, "{locale}");
        }
        // THEN each SMS is in the most specific language we have: pt-BR, then pt, then English
        let texts: Vec<String> = app.sms.messages().into_iter().map(|m| m.text).collect();
        assert!(texts[0].starts_with("Seu código de verificação é "), "{}", texts[0]);
        assert!(texts[1].starts_with("O seu código de verificação é "), "{}", texts[1]);
        assert!(texts[2].starts_with("Your verification code is "), "{}", texts[2]);
        // AND the code in a translated SMS verifies
        let code = &app.sms.messages()[0].code;
        assert_eq!(app.verify("a", code).await.status, 200);
    }
}

#[tokio::test]
async fn a_malformed_locale_is_422_and_sends_nothing() {
    let app = TestApp::spawn(crate::helpers::Setup::Router).await;
    for locale in [
        json!("pt_BR"),
        json!("en US"),
        json!(""),
        json!(12),
        json!("x".repeat(65)),
    ] {
        let reply = app
            .post(
                "/send-code",
                json!({"user_id": "u", "method": "sms", "phone": PHONE, "locale": locale}),
            )
            .await;
        assert_eq!(reply.status, 422, "{locale}: {}", reply.json);
        assert_eq!(reply.bad_fields(), ["locale"], "{locale}");
        let reply = app
            .post(
                "/auth/request-otp",
                json!({"email": EMAIL, "locale": locale}),
            )
            .await;
        assert_eq!(reply.status, 422, "{locale}: {}", reply.json);
        assert_eq!(reply.bad_fields(), ["locale"], "{locale}");
    }
    assert!(app.sms.messages().is_empty() && app.email.messages().is_empty());
    // AND no cooldown was spent: a good request goes through at once
    let reply = app
        .post(
            "/send-code",
            json!({"user_id": "u", "method": "sms", "phone": PHONE, "locale": null}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
}

#[tokio::test]
async fn the_browser_route_sends_email_in_the_asked_language() {
    let app = TestApp::spawn(crate::helpers::Setup::Router).await;
    let reply = app
        .post(
            "/auth/request-otp",
            json!({"email": EMAIL, "locale": "de-CH"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let sent = &app.email.messages()[0];
    assert!(
        sent.text
            .starts_with(&format!("Ihr Bestätigungscode lautet {}.", sent.code)),
        "{}",
        sent.text
    );
}

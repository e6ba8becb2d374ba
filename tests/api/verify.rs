use serde_json::json;

use crate::helpers::{every_setup, wrong_code, Setup, TestApp, PHONE};

every_setup! {
    async fn right_code_verifies_once(setup: Setup) {
        // GIVEN a delivered code
        let app = TestApp::spawn(setup).await;
        app.send_sms("user-1").await;
        let code = app.last_sms_code();
        // WHEN it is verified
        let reply = app.verify("user-1", &code).await;
        // THEN success, with the documented body and a token the published keys check
        assert_eq!(reply.status, 200);
        let claims = app.checked_token(&reply).await;
        assert_eq!(
            (&claims["sub"], &claims["purpose"], &claims["channel"]),
            (&json!("user-1"), &json!("default"), &json!("sms"))
        );
        let mut body = reply.json.clone();
        body.as_object_mut().unwrap().remove("verification_token");
        assert_eq!(
            body,
            json!({"success": true, "message": "OTP verified successfully", "user_id": "user-1",
                   "channel": "sms", "destination": "+1******2671"})
        );
        // AND it cannot be used again
        let replay = app.verify("user-1", &code).await;
        assert_eq!(replay.status, 404);
        assert_eq!(replay.json["success"], false);
        assert_eq!(replay.error(), "not_found");
        assert_eq!(replay.json["user_id"], "user-1");
    }
}

every_setup! {
    async fn never_sent_is_404(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        let reply = app.verify("nobody", "123456").await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.error(), "not_found");
        assert!(reply.json["detail"]
            .as_str()
            .unwrap()
            .contains("Request a new code"));
    }
}

every_setup! {
    async fn the_404_names_the_purpose_it_looked_under(setup: Setup) {
        // GIVEN a code sent for "login", but the verify's purpose field misspelt
        let app = TestApp::spawn(setup).await;
        let sent = app
            .post("/send-code", json!({"user_id": "u", "method": "sms", "phone": PHONE, "purpose": "login"}))
            .await;
        assert_eq!(sent.status, 200);
        let reply = app
            .post("/verify-code", json!({"user_id": "u", "passcode": app.last_sms_code(), "purpse": "login"}))
            .await;
        // THEN the 404 says which purpose it looked under, so the slip is visible
        assert_eq!(reply.status, 404);
        let detail = reply.json["detail"].as_str().unwrap();
        assert!(detail.contains("purpose \"default\""), "{detail}");
        // AND the right purpose still verifies (the miss cost no attempt)
        let reply = app
            .post("/verify-code", json!({"user_id": "u", "passcode": app.last_sms_code(), "purpose": "login"}))
            .await;
        assert_eq!(reply.status, 200);
    }
}

every_setup! {
    async fn wrong_codes_count_down_then_the_code_is_dead(setup: Setup) {
        // GIVEN a code and max 3 attempts
        let app = TestApp::spawn(setup).await;
        app.send_sms("u").await;
        let code = app.last_sms_code();
        let wrong = wrong_code(&code);
        // WHEN three wrong guesses are made
        for remaining in [2, 1, 0] {
            let reply = app.verify("u", &wrong).await;
            assert_eq!(reply.status, 400);
            assert_eq!(reply.error(), "invalid_code");
            assert_eq!(reply.json["attempts_remaining"], remaining);
            assert_eq!(reply.json["success"], false);
        }
        // THEN further guesses, even the right code, are 429
        for guess in [&wrong, &code] {
            let reply = app.verify("u", guess).await;
            assert_eq!(reply.status, 429);
            assert_eq!(reply.error(), "too_many_attempts");
            assert!(reply.headers.get("retry-after").is_none());
        }
        // AND a new send (after the cooldown) starts over
        app.clock.advance(30);
        assert_eq!(app.send_sms("u").await.status, 200);
        assert_eq!(app.verify("u", &app.last_sms_code()).await.status, 200);
    }
}

every_setup! {
    async fn expiry_is_enforced_on_read(setup: Setup) {
        // GIVEN a code whose record is still stored after its lifetime (as with DynamoDB TTL lag)
        let app = TestApp::spawn(setup).await;
        app.send_sms("u").await;
        let code = app.last_sms_code();
        app.clock.advance(299);
        // THEN one second before expiry it works for a wrong guess count...
        assert_eq!(app.verify("u", &wrong_code(&code)).await.status, 400);
        app.clock.advance(1);
        // ...and at expiry even the right code is 410
        let reply = app.verify("u", &code).await;
        assert_eq!(reply.status, 410);
        assert_eq!(reply.error(), "expired");
    }
}

every_setup! {
    async fn purposes_are_isolated(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        let reply = app
            .post(
                "/send-code",
                json!({"user_id": "u", "method": "sms", "phone": PHONE, "purpose": "login"}),
            )
            .await;
        assert_eq!(reply.status, 200);
        let code = app.last_sms_code();
        for purpose in [json!("reset"), json!(null)] {
            let reply = app
                .post(
                    "/verify-code",
                    json!({"user_id": "u", "passcode": code, "purpose": purpose}),
                )
                .await;
            assert_eq!(reply.status, 404, "purpose {purpose}");
        }
        let reply = app
            .post(
                "/verify-code",
                json!({"user_id": "u", "passcode": code, "purpose": "login"}),
            )
            .await;
        assert_eq!(reply.status, 200);
    }
}

#[tokio::test]
async fn users_are_isolated() {
    let app = TestApp::spawn(Setup::Router).await;
    app.send_sms("alice").await;
    let code = app.last_sms_code();
    assert_eq!(app.verify("bob", &code).await.status, 404);
    assert_eq!(
        app.verify("Alice", &code).await.status,
        404,
        "user ids are exact"
    );
    assert_eq!(app.verify("alice", &code).await.status, 200);
}

#[tokio::test]
async fn code_length_follows_the_policy() {
    let policy = otp_core::settings::Policy {
        code_length: 8,
        ..Default::default()
    };
    let app = TestApp::builder().policy(policy).spawn(Setup::Tcp).await;
    app.send_sms("u").await;
    let code = app.last_sms_code();
    assert_eq!(code.len(), 8);
    assert_eq!(app.verify("u", &code[..6]).await.status, 422);
    assert_eq!(app.verify("u", &code).await.status, 200);
}

every_setup! {
    async fn a_named_destination_must_be_where_the_code_went(setup: Setup) {
        // GIVEN a code sent by SMS
        let app = TestApp::spawn(setup).await;
        app.send_sms("u").await;
        let code = app.last_sms_code();
        // WHEN the backend checks it against another number or an address
        for other in [json!({"phone": "+14155552672"}), json!({"email": "u@example.com"})] {
            let mut body = json!({"user_id": "u", "passcode": code});
            body.as_object_mut()
                .unwrap()
                .extend(other.as_object().unwrap().clone());
            let reply = app.post("/verify-code", body).await;
            // THEN 409, and the guess was not counted
            assert_eq!(reply.status, 409);
            assert_eq!(reply.error(), "destination_mismatch");
        }
        let wrong = app.verify("u", &wrong_code(&code)).await;
        assert_eq!(wrong.json["attempts_remaining"], 2);
        // AND against the number it went to, it verifies
        let reply = app
            .post("/verify-code", json!({"user_id": "u", "passcode": code, "phone": PHONE}))
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json["destination"], "+1******2671");
    }
}

every_setup! {
    async fn backend_guessing_locks_the_user_and_a_success_resets_the_count(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        // GIVEN 9 wrong codes over three codes, then the right one
        for _ in 0..3 {
            app.send_sms("u").await;
            let code = app.last_sms_code();
            for _ in 0..3 {
                assert_eq!(app.verify("u", &wrong_code(&code)).await.status, 400);
            }
            app.clock.advance(30);
        }
        app.send_sms("u").await;
        let code = app.last_sms_code();
        let wrong = app.verify("u", &wrong_code(&code)).await;
        assert_eq!(
            (wrong.status, wrong.error()),
            (429, "locked"),
            "the tenth wrong code locks"
        );
        assert!(wrong.headers.contains_key("retry-after"));
        assert_eq!(app.verify("u", &code).await.error(), "locked");
        assert_eq!(app.send_sms("u").await.error(), "locked");
        // WHEN the hour has passed and the user gets it right
        app.clock.advance(3600);
        app.send_sms("u").await;
        assert_eq!(app.verify("u", &app.last_sms_code()).await.status, 200);
        // THEN the count starts over: 9 more wrong codes do not lock
        for _ in 0..3 {
            app.clock.advance(30);
            app.send_sms("u").await;
            let code = app.last_sms_code();
            for _ in 0..3 {
                assert_eq!(app.verify("u", &wrong_code(&code)).await.status, 400);
            }
        }
    }
}

every_setup! {
    async fn backend_guesses_are_counted_per_reported_client_ip(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        let send = |client_ip: &'static str| {
            let app = &app;
            async move {
                let body = json!({"user_id": "u", "method": "sms", "phone": PHONE, "client_ip": client_ip});
                assert_eq!(app.post("/send-code", body).await.status, 200);
                app.last_sms_code()
            }
        };
        let guess = |client_ip: &'static str, passcode: String| {
            let app = &app;
            async move {
                let body = json!({"user_id": "u", "passcode": passcode, "client_ip": client_ip});
                app.post("/verify-code", body).await
            }
        };
        // GIVEN ten wrong codes reported from one end user's address
        let mut wrong = 0;
        while wrong < 10 {
            let code = send("203.0.113.7").await;
            for _ in 0..3.min(10 - wrong) {
                let reply = guess("203.0.113.7", wrong_code(&code)).await;
                assert!(reply.status == 400 || reply.error() == "locked", "{}", reply.json);
                wrong += 1;
            }
            app.clock.advance(30);
        }
        // THEN that address is locked out of the account
        let body = json!({"user_id": "u", "method": "sms", "phone": PHONE, "client_ip": "203.0.113.7"});
        assert_eq!(app.post("/send-code", body).await.error(), "locked");
        // AND the same user from another address gets a code and verifies it
        let code = send("198.51.100.20").await;
        let reply = guess("198.51.100.20", code).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        // AND a malformed client_ip is a 422 naming it
        let reply = guess("not-an-ip", "123456".to_owned()).await;
        assert_eq!((reply.status, reply.bad_fields()), (422, vec!["client_ip".to_owned()]));
    }
}

#[tokio::test]
async fn a_number_with_a_trunk_prefix_is_refused_with_its_e164_form_and_checks_compare_that_form() {
    let app = TestApp::spawn(Setup::Router).await;
    // GIVEN a UK mobile written with its national 0 after the country code
    let reply = app
        .post(
            "/send-code",
            json!({"user_id": "u", "method": "sms", "phone": "+4407911123456"}),
        )
        .await;
    // THEN 422 names the form to use, and nothing was sent or spent
    assert_eq!(reply.status, 422, "{}", reply.json);
    assert_eq!(reply.bad_fields(), ["phone"]);
    let detail = reply.json["detail"][0]["msg"].as_str().unwrap();
    assert!(detail.ends_with("+447911123456"), "{detail}");
    assert!(app.sms.messages().is_empty());
    // WHEN the code goes to the E.164 form
    let sent = app
        .post(
            "/send-code",
            json!({"user_id": "u", "method": "sms", "phone": "+447911123456"}),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.json);
    let code = app
        .sms
        .last_code_to("+447911123456")
        .expect("an SMS was delivered");
    // THEN a check naming the trunk-prefixed string or a number no code can go to (well formed,
    // but never assignable) is a plain mismatch: verify routes check the shape only, and the
    // guess is not counted
    for other in ["+4407911123456", "+447700900123"] {
        let reply = app
            .post(
                "/verify-code",
                json!({"user_id": "u", "passcode": code, "phone": other}),
            )
            .await;
        assert_eq!(
            (reply.status, reply.error()),
            (409, "destination_mismatch"),
            "{other}"
        );
    }
    // AND a malformed number is still a 422
    let reply = app
        .post(
            "/verify-code",
            json!({"user_id": "u", "passcode": code, "phone": "+44 7911 123456"}),
        )
        .await;
    assert_eq!(reply.status, 422, "{}", reply.json);
    assert_eq!(reply.bad_fields(), ["phone"]);
    // AND the code verifies against the number it went to
    let reply = app
        .post(
            "/verify-code",
            json!({"user_id": "u", "passcode": code, "phone": "+447911123456"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
}

//! Verification ids, `GET /verifications/{id}` and `POST /verifications/{id}/cancel`, on every
//! setup (in process, over TCP, on DynamoDB).

use serde_json::json;

use crate::helpers::{every_setup, wrong_code, Reply, TestApp, PHONE};

/// The verification id of a `/send-code` answer.
fn id_of(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["verification_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no verification_id in {}", reply.json))
        .to_owned()
}

async fn lookup(app: &TestApp, id: &str) -> Reply {
    app.get(&format!("/verifications/{id}")).await
}

async fn cancel(app: &TestApp, id: &str) -> Reply {
    app.request(
        "POST",
        &format!("/verifications/{id}/cancel"),
        None,
        Vec::new(),
    )
    .await
}

every_setup! {
    async fn a_verification_is_pending_then_approved(setup: Setup) {
        // GIVEN a code sent by SMS
        let app = TestApp::spawn(setup).await;
        let id = id_of(&app.send_sms("user-1").await);
        assert!(id.len() <= 64 && id.starts_with("VE"), "{id}");
        // WHEN it is looked up
        let reply = lookup(&app, &id).await;
        // THEN the documented body: pending, masked destination, all attempts, no receipt yet
        assert_eq!(reply.status, 200, "{}", reply.json);
        assert_eq!(
            reply.json,
            json!({"verification_id": id, "status": "pending", "user_id": "user-1",
                   "purpose": "default", "channel": "sms", "destination": "+1******2671",
                   "delivery": {"status": "sent"}, "attempts_remaining": 3,
                   "expires_in": 300})
        );
        // AND a wrong guess uses an attempt, time runs
        let code = app.last_sms_code();
        app.verify("user-1", &wrong_code(&code)).await;
        app.clock.advance(10);
        let reply = lookup(&app, &id).await;
        assert_eq!(
            (&reply.json["attempts_remaining"], &reply.json["expires_in"]),
            (&json!(2), &json!(290))
        );
        // AND the right code approves it, after which it cannot be canceled
        assert_eq!(app.verify("user-1", &code).await.status, 200);
        let reply = lookup(&app, &id).await;
        assert_eq!(reply.json["status"], "approved");
        assert_eq!(
            (&reply.json["attempts_remaining"], &reply.json["expires_in"]),
            (&json!(0), &json!(0))
        );
        let refused = cancel(&app, &id).await;
        assert_eq!(refused.status, 409, "{}", refused.json);
        assert_eq!(refused.error(), "not_pending");
        assert_eq!(refused.json["status"], "approved");
        assert!(refused.json["detail"].as_str().unwrap().contains("approved"));
    }
}

every_setup! {
    async fn a_canceled_code_never_verifies_and_a_new_one_may_be_sent_at_once(setup: Setup) {
        // GIVEN a pending code
        let app = TestApp::spawn(setup).await;
        let id = id_of(&app.send_sms("user-1").await);
        let code = app.last_sms_code();
        // WHEN it is canceled, twice
        for _ in 0..2 {
            let reply = cancel(&app, &id).await;
            // THEN 200 canceled both times
            assert_eq!(reply.status, 200, "{}", reply.json);
            assert_eq!(reply.json, json!({"verification_id": id, "status": "canceled"}));
        }
        // AND the code no longer verifies
        let reply = app.verify("user-1", &code).await;
        assert_eq!(reply.status, 404, "{}", reply.json);
        assert_eq!(lookup(&app, &id).await.json["status"], "canceled");
        // AND a new code goes out at once (the cooldown went with the code), superseding nothing
        let next = id_of(&app.send_sms("user-1").await);
        assert_ne!(next, id);
        assert_eq!(lookup(&app, &id).await.json["status"], "canceled");
        assert_eq!(lookup(&app, &next).await.json["status"], "pending");
    }
}

every_setup! {
    async fn a_resend_supersedes_and_time_expires(setup: Setup) {
        // GIVEN a code, and a second one after the cooldown
        let app = TestApp::spawn(setup).await;
        let first = id_of(&app.send_sms("user-1").await);
        app.clock.advance(30);
        let second = id_of(&app.send_sms("user-1").await);
        // THEN the first is superseded and cannot be canceled; the second is pending
        assert_eq!(lookup(&app, &first).await.json["status"], "superseded");
        let refused = cancel(&app, &first).await;
        assert_eq!((refused.status, refused.error()), (409, "not_pending"));
        assert_eq!(refused.json["status"], "superseded");
        assert_eq!(lookup(&app, &second).await.json["status"], "pending");
        // AND once its code expires, the second reads expired
        app.clock.advance(300);
        let reply = lookup(&app, &second).await;
        assert_eq!(reply.json["status"], "expired");
        assert_eq!(reply.json["expires_in"], 0);
        assert_eq!(cancel(&app, &second).await.json["status"], "expired");
    }
}

every_setup! {
    async fn running_out_of_attempts_is_max_attempts_reached(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        let id = id_of(&app.send_sms("user-1").await);
        let wrong = wrong_code(&app.last_sms_code());
        for _ in 0..3 {
            app.verify("user-1", &wrong).await;
        }
        let reply = lookup(&app, &id).await;
        assert_eq!(reply.json["status"], "max_attempts_reached");
        assert_eq!(reply.json["attempts_remaining"], 0);
    }
}

every_setup! {
    async fn unknown_malformed_and_public_ids_are_404(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        // A public route's answer carries no id, and its sends cannot be looked up by anyone.
        let public = app
            .post("/auth/request-otp", json!({"email": "bob@example.com"}))
            .await;
        assert_eq!(public.status, 200);
        assert!(public.json.get("verification_id").is_none(), "{}", public.json);
        let long = "x".repeat(65);
        for id in ["VEnot-a-real-id-0000000000", long.as_str(), "a%2Fb", "%FF"] {
            for reply in [lookup(&app, id).await, cancel(&app, id).await] {
                assert_eq!(reply.status, 404, "{id}: {}", reply.json);
                assert_eq!(reply.error(), "not_found");
                assert!(reply.json["detail"].as_str().unwrap().contains("No verification"));
            }
        }
        // Other methods are 405, as everywhere.
        let id = id_of(&app.send_sms("user-1").await);
        let wrong_method = app
            .request("DELETE", &format!("/verifications/{id}"), None, Vec::new())
            .await;
        assert_eq!(wrong_method.status, 405);
        let wrong_method = app
            .get(&format!("/verifications/{id}/cancel"))
            .await;
        assert_eq!(wrong_method.status, 405);
    }
}

every_setup! {
    async fn lookups_and_cancels_need_a_caller_with_the_scope(setup: Setup) {
        const SENDER: &str = "sender-key-with-send-scope-0123456789abcdef";
        const CHECKER: &str = "checker-key-with-verify-scope-0123456789ab";
        let app = TestApp::builder()
            .api_keys(&format!("sender={SENDER}:send,checker={CHECKER}:verify"))
            .spawn(setup)
            .await;
        let sent = app
            .post_as(
                &format!("Bearer {SENDER}"),
                "/send-code",
                json!({"user_id": "u", "method": "sms", "phone": PHONE}),
            )
            .await;
        let id = id_of(&sent);
        let path = format!("/verifications/{id}");
        let as_key = |key: &str| format!("Bearer {key}");
        let cancel_path = format!("{path}/cancel");
        // Without a key: 401, nothing read.
        assert_eq!(lookup(&app, &id).await.status, 401);
        assert_eq!(cancel(&app, &id).await.status, 401);
        // A lookup is a verify-scope call, a cancel a send-scope one.
        let with = |method: &'static str, path: String, key: String| {
            let app = &app;
            async move {
                app.request_with(method, &path, &[("authorization", key.as_str())], Vec::new())
                    .await
            }
        };
        assert_eq!(with("GET", path.clone(), as_key(SENDER)).await.status, 403);
        assert_eq!(with("POST", cancel_path.clone(), as_key(CHECKER)).await.status, 403);
        let found = with("GET", path.clone(), as_key(CHECKER)).await;
        assert_eq!((found.status, &found.json["status"]), (200, &json!("pending")));
        let canceled = with("POST", cancel_path, as_key(SENDER)).await;
        assert_eq!(canceled.status, 200, "{}", canceled.json);
    }
}

every_setup! {
    async fn a_cancel_racing_the_right_code_never_lets_both_win(setup: Setup) {
        // GIVEN pending codes, each canceled while its right code is entered at the same time
        let app = TestApp::spawn(setup).await;
        for n in 0..10 {
            let user = format!("racer-{n}");
            // A number each: one number takes only five codes in ten minutes.
            let phone = format!("+1415555{:04}", 2600 + n);
            let sent = app
                .post("/send-code", json!({"user_id": user, "method": "sms", "phone": phone}))
                .await;
            let id = id_of(&sent);
            let code = app.sms.last_code_to(&phone).expect("a code was sent");
            let (verified, canceled) =
                tokio::join!(app.verify(&user, &code), cancel(&app, &id));
            // THEN exactly one of them wins, and the lookup says which
            let won = (verified.status == 200, canceled.status == 200);
            assert!(won == (true, false) || won == (false, true), "{won:?} {}", canceled.json);
            let status = lookup(&app, &id).await.json["status"].clone();
            let expected = if won.0 { "approved" } else { "canceled" };
            assert_eq!(status, expected);
        }
    }
}

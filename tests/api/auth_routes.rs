use serde_json::json;

use crate::helpers::{every_setup, wrong_code, TestApp};

every_setup! {
    async fn request_and_verify_by_email_ignoring_case(setup: Setup) {
        // GIVEN a code requested with a mixed-case address
        let app = TestApp::spawn(setup).await;
        let reply = app
            .post("/auth/request-otp", json!({"email": "Bob@Example.com"}))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        assert_eq!(
            reply.json,
            json!({"message": "OTP sent to your email", "email": "Bob@Example.com"})
        );
        let code = app.email.last_code_to("Bob@Example.com").unwrap();
        // WHEN it is verified with the lower-case address
        let reply = app
            .post(
                "/auth/verify-otp",
                json!({"email": "bob@example.com", "otp_code": code}),
            )
            .await;
        // THEN it verifies, once
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.json,
            json!({"message": "OTP verified successfully", "email": "bob@example.com"})
        );
        let replay = app
            .post(
                "/auth/verify-otp",
                json!({"email": "bob@example.com", "otp_code": code}),
            )
            .await;
        assert_eq!(replay.status, 400);
        assert_eq!(
            replay.json,
            json!({"detail": "Invalid or expired OTP", "error": "not_found"})
        );
    }
}

every_setup! {
    async fn every_verification_failure_is_the_same_400(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        let verify = |code: String| {
            app.post(
                "/auth/verify-otp",
                json!({"email": "a@example.com", "otp_code": code}),
            )
        };
        assert_eq!(verify("123456".into()).await.error(), "not_found");
        app.post("/auth/request-otp", json!({"email": "a@example.com"}))
            .await;
        let code = app.email.last_code_to("a@example.com").unwrap();
        for _ in 0..3 {
            let reply = verify(wrong_code(&code)).await;
            assert_eq!((reply.status, reply.error()), (400, "invalid_code"));
            assert_eq!(reply.json["detail"], "Invalid or expired OTP");
        }
        let reply = verify(code.clone()).await;
        assert_eq!((reply.status, reply.error()), (400, "too_many_attempts"));
        app.clock.advance(300);
        let reply = app
            .post("/auth/request-otp", json!({"email": "a@example.com"}))
            .await;
        assert_eq!(reply.status, 200);
        app.clock.advance(300);
        let code = app.email.last_code_to("a@example.com").unwrap();
        let reply = verify(code).await;
        assert_eq!((reply.status, reply.error()), (400, "expired"));
    }
}

every_setup! {
    async fn request_otp_has_a_cooldown_and_validation(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        app.post("/auth/request-otp", json!({"email": "a@example.com"}))
            .await;
        let reply = app
            .post("/auth/request-otp", json!({"email": "A@EXAMPLE.COM"}))
            .await;
        assert_eq!(reply.status, 429, "same user id, whatever the case");
        assert_eq!(reply.json["email"], "A@EXAMPLE.COM");
        assert_eq!(reply.headers.get("retry-after").unwrap(), "30");
        let reply = app
            .post("/auth/request-otp", json!({"email": "nope"}))
            .await;
        assert_eq!(reply.status, 422);
        assert_eq!(reply.bad_fields(), ["email"]);
        let reply = app
            .post(
                "/auth/verify-otp",
                json!({"email": 1, "otp_code": "12345x"}),
            )
            .await;
        assert_eq!(reply.bad_fields(), ["email", "otp_code"]);
    }
}

#[tokio::test]
async fn auth_and_generic_routes_share_the_email_user() {
    // The address is the user id (default purpose), so /verify-code can check it too.
    let app = TestApp::spawn(crate::helpers::Setup::Router).await;
    app.post("/auth/request-otp", json!({"email": "C@example.com"}))
        .await;
    let code = app.email.last_code_to("C@example.com").unwrap();
    assert_eq!(app.verify("c@example.com", &code).await.status, 200);
}

//! Request shapes, sizes and values that can go wrong: each has a defined status and a JSON
//! body with `detail`, and none of them leaves anything behind.

use serde_json::{json, Value};

use crate::helpers::{every_setup, Setup, TestApp, PHONE};

const ROUTES: [&str; 4] = [
    "/send-code",
    "/verify-code",
    "/auth/request-otp",
    "/auth/verify-otp",
];

every_setup! {
    async fn unknown_path_is_404_and_wrong_method_is_405(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        for path in ["/", "/send", "/send-code/extra", "/SEND-CODE", "/docs-nope"] {
            let reply = app.request("POST", path, None, Vec::new()).await;
            assert_eq!(reply.status, 404, "{path}");
            assert_eq!(reply.json, json!({"detail": "Not Found"}));
        }
        for path in ROUTES {
            for method in ["GET", "PUT", "DELETE", "PATCH"] {
                let reply = app.request(method, path, None, Vec::new()).await;
                assert_eq!(reply.status, 405, "{method} {path}");
                assert_eq!(reply.json, json!({"detail": "Method Not Allowed"}));
                assert_eq!(reply.headers.get("allow").unwrap(), "POST");
            }
        }
    }
}

every_setup! {
    async fn body_over_16_kib_is_413_and_16_kib_is_not(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        // A valid request padded with spaces to exactly the limit is processed...
        let body = json!({"user_id": "u", "method": "sms", "phone": PHONE}).to_string();
        let mut padded = body.into_bytes();
        padded.resize(16 * 1024, b' ');
        let reply = app
            .request(
                "POST",
                "/send-code",
                Some("application/json"),
                padded.clone(),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        // ...one byte more is refused before parsing, and a megabyte the same way.
        for size in [16 * 1024 + 1, 1024 * 1024] {
            padded.resize(size, b' ');
            for path in ROUTES {
                let reply = app
                    .request("POST", path, Some("application/json"), padded.clone())
                    .await;
                assert_eq!(reply.status, 413, "{path} {size}");
                assert!(reply.json["detail"].as_str().unwrap().contains("16384"));
            }
        }
    }
}

every_setup! {
    async fn non_json_content_type_is_415(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        let reply = app
            .request(
                "POST",
                "/send-code",
                Some("application/x-www-form-urlencoded"),
                b"user_id=u&method=sms".to_vec(),
            )
            .await;
        assert_eq!(reply.status, 415);
        assert!(reply.json["detail"].is_string());
    }
}

every_setup! {
    async fn bodies_that_are_not_json_objects_are_422(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        for path in ROUTES {
            for (body, kind) in [
                ("", "missing"),
                ("{", "json_invalid"),
                ("{\"user_id\": }", "json_invalid"),
                ("\u{feff}{}", "json_invalid"),
                ("[]", "model_attributes_type"),
                ("\"text\"", "model_attributes_type"),
                ("null", "model_attributes_type"),
                ("42", "model_attributes_type"),
            ] {
                // (no Content-Type, which is read as JSON, but on the browser routes)
                let content_type = path.starts_with("/auth/").then_some("application/json");
                let reply = app
                    .request("POST", path, content_type, body.as_bytes().to_vec())
                    .await;
                assert_eq!(reply.status, 422, "{path} {body:?}");
                assert_eq!(reply.json["detail"][0]["type"], kind, "{path} {body:?}");
                assert_eq!(reply.json["detail"][0]["loc"][0], "body");
                assert!(reply.json["detail"][0]["msg"].is_string());
            }
        }
        assert!(app.sms.messages().is_empty() && app.email.messages().is_empty());
    }
}

every_setup! {
    async fn every_bad_field_is_named(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        let long = "x".repeat(129);
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            ("/send-code", json!({}), vec!["user_id", "method"]),
            (
                "/send-code",
                json!({"user_id": "u", "method": "sms"}),
                vec!["phone"],
            ),
            (
                "/send-code",
                json!({"user_id": "u", "method": "email"}),
                vec!["email"],
            ),
            (
                "/send-code",
                json!({"user_id": "", "method": "sms", "phone": "+1"}),
                vec!["user_id", "phone"],
            ),
            (
                "/send-code",
                json!({"user_id": long, "method": "pigeon"}),
                vec!["user_id", "method"],
            ),
            (
                "/send-code",
                json!({"user_id": "u", "method": "sms", "phone": "4155552671"}),
                vec!["phone"],
            ),
            (
                "/send-code",
                json!({"user_id": "u", "method": "sms", "phone": 14155552671u64}),
                vec!["phone"],
            ),
            (
                "/send-code",
                json!({"user_id": "u", "method": "email", "email": "a@b"}),
                vec!["email"],
            ),
            (
                "/send-code",
                json!({"user_id": "u", "method": "sms", "phone": PHONE, "purpose": "Login!"}),
                vec!["purpose"],
            ),
            (
                "/send-code",
                json!({"user_id": ["u"], "method": 1, "purpose": ""}),
                vec!["user_id", "method", "purpose"],
            ),
            ("/verify-code", json!({}), vec!["user_id", "passcode"]),
            (
                "/verify-code",
                json!({"user_id": "u", "passcode": "12345"}),
                vec!["passcode"],
            ),
            (
                "/verify-code",
                json!({"user_id": "u", "passcode": "1234567"}),
                vec!["passcode"],
            ),
            (
                "/verify-code",
                json!({"user_id": "u", "passcode": "12 456"}),
                vec!["passcode"],
            ),
            (
                "/verify-code",
                json!({"user_id": "u", "passcode": 123456}),
                vec!["passcode"],
            ),
            (
                "/verify-code",
                json!({"user_id": "", "passcode": "123456", "purpose": 7}),
                vec!["user_id", "purpose"],
            ),
            ("/auth/request-otp", json!({}), vec!["email"]),
            (
                "/auth/request-otp",
                json!({"email": "not-an-email"}),
                vec!["email"],
            ),
            (
                "/auth/verify-otp",
                json!({"email": "a@example.com"}),
                vec!["otp_code"],
            ),
            (
                "/auth/verify-otp",
                json!({"email": "@example.com", "otp_code": "abcdef"}),
                vec!["email", "otp_code"],
            ),
        ];
        for (path, body, fields) in cases {
            let reply = app.post(path, body.clone()).await;
            assert_eq!(reply.status, 422, "{path} {body}");
            assert_eq!(reply.bad_fields(), fields, "{path} {body}");
            for issue in reply.json["detail"].as_array().unwrap() {
                assert_eq!(issue["loc"][0], "body");
                assert!(issue["msg"].as_str().is_some_and(|m| !m.is_empty()));
                assert!(issue["type"].as_str().is_some_and(|t| !t.is_empty()));
            }
        }
        // Nothing was sent or stored by any of them.
        assert!(app.sms.messages().is_empty() && app.email.messages().is_empty());
        assert_eq!(app.verify("u", "123456").await.status, 404);
    }
}

#[tokio::test]
async fn extra_fields_are_ignored_and_null_optionals_take_defaults() {
    let app = TestApp::spawn(Setup::Router).await;
    let reply = app
        .post(
            "/send-code",
            json!({"user_id": "u", "method": "sms", "phone": PHONE, "email": null,
                   "purpose": null, "locale": "fr"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
}

#[tokio::test]
async fn connections_that_never_finish_a_request_are_closed() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // GIVEN the local server with a header read timeout of half a second (30 s in the binary)
    assert_eq!(otp_service::HEADER_READ_TIMEOUT, Duration::from_secs(30));
    let app = TestApp::builder()
        .header_read_timeout(Duration::from_millis(500))
        .spawn(Setup::Tcp)
        .await;
    // WHEN 200 clients open connections and send half a request's headers, and one more
    // finishes a request and then sits idle on its keep-alive connection
    let mut half_open = Vec::new();
    for _ in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(b"POST /send-code HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: app")
            .await
            .unwrap();
        half_open.push(stream);
    }
    let mut idle = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let read = idle.read(&mut answer).await.unwrap();
    assert!(
        answer[..read].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        &answer[..read]
    );
    // THEN the server closes every one of them after the timeout...
    let closed = |mut stream: tokio::net::TcpStream| async move {
        let mut byte = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                // A 408 or other answer before the close is fine; keep reading to the end.
                Ok(Ok(_)) => continue,
            }
        }
    };
    let results = futures_util::future::join_all(half_open.into_iter().map(closed)).await;
    assert_eq!(results.iter().filter(|closed| **closed).count(), 200);
    assert!(
        closed(idle).await,
        "the idle keep-alive connection was left open"
    );
    // AND the server still answers new requests
    assert_eq!(app.get("/.well-known/jwks.json").await.status, 200);
}

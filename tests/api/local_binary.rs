//! The real `otp-service` binary, as `make run` starts it: console delivery, start-up lines,
//! logs that never hold a code or a full address, and a clean stop on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

const PHONE: &str = "+14155552671";

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the server printed a line in time")
        .expect("stdout readable")
        .expect("stdout still open")
}

#[tokio::test]
async fn make_run_binary_serves_prints_codes_and_keeps_logs_clean() {
    // GIVEN the server binary started on a free port with debug logging and no key
    let mut child = Command::new(env!("CARGO_BIN_EXE_otp-service"))
        .env("PORT", "0")
        .env("RUST_LOG", "debug")
        .env("OTP_BRAND_NAME", "Acme")
        .env_remove("OTP_HASH_KEY")
        .env_remove("OTP_TABLE_NAME")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("server binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = next_line(&mut stdout).await;
    let url = banner
        .strip_prefix("OTP service listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {banner}"))
        .to_owned();
    let docs_line = next_line(&mut stdout).await;
    assert_eq!(
        docs_line,
        format!("API docs: {url}/docs (OpenAPI: {url}/openapi.json)")
    );
    let store_line = next_line(&mut stdout).await;
    assert!(store_line.contains("in-memory"), "{store_line}");
    assert!(store_line.contains("sms: console"), "{store_line}");
    next_line(&mut stdout).await; // "Press Ctrl-C to stop."

    // WHEN a code is sent by SMS and by email, and verified
    let client = reqwest::Client::new();
    let reply = client
        .post(format!("{url}/send-code"))
        .json(&json!({"user_id": "alice@example.com", "method": "sms", "phone": PHONE}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let line = next_line(&mut stdout).await;
    let prefix = format!("[dev-delivery] sms to {PHONE}: Acme: Your verification code is ");
    let rest = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("unexpected delivery line: {line}"));
    let code = rest
        .strip_suffix(". It expires in 5 minutes.")
        .unwrap_or_else(|| panic!("unexpected delivery line: {line}"))
        .to_owned();
    let reply = client
        .post(format!("{url}/verify-code"))
        .json(&json!({"user_id": "alice@example.com", "passcode": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);

    let reply = client
        .post(format!("{url}/auth/request-otp"))
        .json(&json!({"email": "bob@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let line = next_line(&mut stdout).await;
    assert!(
        line.starts_with(
            "[dev-delivery] email to bob@example.com: Acme: Your verification code | \
             Acme: Your verification code is "
        ),
        "{line}"
    );
    let wrong = client
        .post(format!("{url}/auth/verify-otp"))
        .json(&json!({"email": "bob@example.com", "otp_code": "000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);

    // THEN SIGTERM stops it cleanly
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the server stops within 10 s")
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(next_line(&mut stdout).await, "OTP service stopped.");

    // AND the logs (stderr) said what happened without a code or a full address
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .await
        .unwrap();
    assert!(logs.contains("OTP_HASH_KEY is not set"), "{logs}");
    assert!(logs.contains("code sent"), "{logs}");
    assert!(logs.contains("+1******2671"), "{logs}");
    assert!(logs.contains("a***@example.com"), "{logs}");
    assert!(logs.contains("b***@example.com"), "{logs}");
    for secret in [
        code.as_str(),
        PHONE,
        "4155552671",
        "alice@example.com",
        "bob@example.com",
    ] {
        assert!(!logs.contains(secret), "logs hold {secret:?}:\n{logs}");
    }
}

#[tokio::test]
async fn bad_configuration_fails_the_start_with_a_clear_message() {
    for (var, value, expected) in [
        (
            "OTP_TTL_SECONDS",
            "5",
            "OTP_TTL_SECONDS must be a whole number from 30 to 3600",
        ),
        ("OTP_HASH_KEY", "short", "OTP_HASH_KEY"),
        ("PORT", "http", "PORT must be a port number"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_otp-service"))
            .env("PORT", "0")
            .env(var, value)
            .output()
            .await
            .unwrap();
        assert!(!output.status.success(), "{var}={value} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{var}: {stderr}");
    }
}

//! The real `otp-service` binary, as `make run` starts it: console delivery, start-up lines,
//! logs that never hold a code or a full address, and a clean stop on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{ChildStdout, Command};

const PHONE: &str = "+14155552671";

pub(crate) async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the server printed a line in time")
        .expect("stdout readable")
        .expect("stdout still open")
}

/// The server binary on a free port, its stdout read past the banner.
pub(crate) struct Server {
    pub child: tokio::process::Child,
    pub stdout: Lines<BufReader<ChildStdout>>,
    pub url: String,
}

/// Starts the binary with `env` set and `unset` removed (logs on a pipe); kills it on drop.
pub(crate) async fn start_server(env: &[(&str, &str)], unset: &[&str]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_otp-service"));
    command.env("PORT", "0");
    for (var, value) in env {
        command.env(var, value);
    }
    for var in unset {
        command.env_remove(var);
    }
    let mut child = command
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
    Server { child, stdout, url }
}

/// Everything the (stopped) server wrote to stderr: its logs.
async fn stderr_of(child: &mut tokio::process::Child) -> String {
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut logs)
        .await
        .unwrap();
    logs
}

#[tokio::test]
async fn make_run_binary_serves_prints_codes_and_keeps_logs_clean() {
    // GIVEN the server binary started on a free port with debug logging and no key
    let Server {
        mut child,
        mut stdout,
        url,
    } = start_server(
        &[("RUST_LOG", "debug"), ("OTP_BRAND_NAME", "Acme")],
        &["OTP_HASH_KEY", "OTP_TABLE_NAME"],
    )
    .await;
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
    let logs = stderr_of(&mut child).await;
    assert!(logs.contains("OTP_HASH_KEY is not set"), "{logs}");
    assert!(logs.contains("are OPEN to anyone"), "{logs}");
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
        ("OTP_CALLER_AUTH", "iam", "OTP_CALLER_AUTH is iam"),
        (
            "OTP_API_KEYS",
            "x=short",
            "OTP_API_KEYS is not a valid key list",
        ),
        // A misspelt setting is named with the one it most likely meant, not ignored.
        (
            "OTP_MAX_ATTEMPS",
            "5",
            "OTP_MAX_ATTEMPS is not a setting of this service; did you mean OTP_MAX_ATTEMPTS?",
        ),
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

#[tokio::test]
async fn a_generated_api_key_guards_the_backend_routes_of_the_binary() {
    // GIVEN a key made by the binary itself
    let made = Command::new(env!("CARGO_BIN_EXE_otp-service"))
        .args(["new-api-key", "backend"])
        .output()
        .await
        .unwrap();
    assert!(made.status.success());
    let entry = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    let key = entry
        .strip_prefix("backend=otpk_")
        .map(|random| format!("otpk_{random}"))
        .unwrap_or_else(|| panic!("unexpected key line: {entry}"));
    // AND the server started with it, and with a weak code length
    let Server {
        mut child,
        mut stdout,
        url,
    } = start_server(
        &[
            ("RUST_LOG", "debug"),
            ("OTP_API_KEYS", &entry),
            ("OTP_CODE_LENGTH", "4"),
        ],
        &["OTP_CALLER_AUTH", "OTP_TABLE_NAME"],
    )
    .await;
    next_line(&mut stdout).await;
    let described = next_line(&mut stdout).await;
    assert!(
        described.contains("caller auth: api_key (backend)"),
        "{described}"
    );
    // WHEN the backend routes are called without and with the key
    let client = reqwest::Client::new();
    let body = json!({"user_id": "u", "method": "sms", "phone": PHONE});
    let refused = client
        .post(format!("{url}/send-code"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let admitted = client
        .post(format!("{url}/send-code"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    // THEN 401 with the challenge, then 200
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    assert_eq!(admitted.status(), 200);
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    // AND the logs name the caller and the weak policy, never the key
    let logs = stderr_of(&mut child).await;
    assert!(logs.contains("caller=backend"), "{logs}");
    assert!(logs.contains("ASVS 2.7.6"), "{logs}");
    assert!(!logs.contains(&key), "logs hold the key:\n{logs}");
}

#[tokio::test]
async fn the_command_line_helps_and_refuses_what_it_does_not_know() {
    let run = |args: &'static [&'static str]| async move {
        let output = Command::new(env!("CARGO_BIN_EXE_otp-service"))
            .args(args)
            .env("PORT", "0")
            .output()
            .await
            .unwrap();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (
            output.status.code(),
            text(&output.stdout),
            text(&output.stderr),
        )
    };
    // GIVEN --help, -h or help: the usage on stdout, and no server
    for help in [&["--help"][..], &["-h"], &["help"]] {
        let (code, stdout, _) = run(help).await;
        assert_eq!(code, Some(0), "{help:?}");
        assert!(stdout.starts_with("OTP verification service"), "{stdout}");
        assert!(stdout.contains("new-api-key [NAME]"), "{stdout}");
    }
    // GIVEN --version: the package's version
    let (code, stdout, _) = run(&["--version"]).await;
    assert_eq!(code, Some(0));
    assert_eq!(
        stdout.trim(),
        format!("otp-service {}", env!("CARGO_PKG_VERSION"))
    );
    // GIVEN a typo'd subcommand or a stray argument: refused with exit 2, nothing served
    for wrong in [
        &["serve"][..],
        &["--hlep"],
        &["openapi", "extra"],
        &["new-api-key", "a", "b"],
    ] {
        let (code, stdout, stderr) = run(wrong).await;
        assert_eq!(code, Some(2), "{wrong:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains("Usage: otp-service"), "{stderr}");
        assert!(!stdout.contains("listening"), "{stdout}");
    }
    // GIVEN `settings`: the committed configuration reference, exactly
    let (code, stdout, _) = run(&["settings"]).await;
    assert_eq!(code, Some(0));
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .unwrap();
    assert_eq!(stdout, committed);
}

#[tokio::test]
async fn a_log_filter_that_would_hide_the_service_is_reported() {
    // GIVEN RUST_LOG=verbose, which names a target and would hide every line of the service
    let Server { mut child, .. } = start_server(&[("RUST_LOG", "verbose")], &[]).await;
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let logs = stderr_of(&mut child).await;
    // THEN it says so, and the lines it would have hidden (the open-routes warning) are shown
    assert!(
        logs.contains("RUST_LOG=\"verbose\" would show no line of this service"),
        "{logs}"
    );
    assert!(logs.contains("OPEN to anyone"), "{logs}");
}

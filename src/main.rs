//! `make run`: the OTP API on 127.0.0.1:8000 (or `PORT`), on the embedded store by default.

use std::process::ExitCode;
use std::sync::Arc;

use otp_core::http::Routes;
use otp_core::settings::{Runtime, Settings};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, plain text for files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    // `otp-service new-api-key [NAME]` prints a fresh key as an OTP_API_KEYS entry.
    if std::env::args().nth(1).as_deref() == Some("new-api-key") {
        use secrecy::ExposeSecret as _;
        let name = std::env::args()
            .nth(2)
            .unwrap_or_else(|| "backend".to_owned());
        println!("{name}={}", otp_core::callers::new_key().expose_secret());
        return Ok(());
    }
    // `otp-service metrics` prints the metric catalogue (`metrics.json`) and exits.
    if std::env::args().nth(1).as_deref() == Some("metrics") {
        println!("{}", otp_core::meter::catalogue_json());
        return Ok(());
    }
    // `otp-service openapi` prints the API document for this configuration and exits.
    let settings = Settings::from_env(Runtime::Local).map_err(|e| e.to_string())?;
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        print!("{}", otp_core::openapi::document_json(&settings.policy));
        return Ok(());
    }
    let port = match std::env::var("PORT") {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("PORT must be a port number from 0 to 65535, got {raw:?}"))?,
        _ => 8000,
    };
    let engine = otp_core::startup::build(settings, Routes::All)
        .await
        .map_err(|e| e.to_string())?;
    let (listener, addr) = otp_service::bind(port)
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    // stdout, one line each: scripts (and our tests) read the URL from here.
    println!("OTP service listening on http://{addr}");
    println!("API docs: http://{addr}/docs (OpenAPI: http://{addr}/openapi.json)");
    println!("{}", engine.describe());
    println!("Press Ctrl-C to stop.");
    otp_service::serve(listener, Arc::new(engine), shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    println!("OTP service stopped.");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

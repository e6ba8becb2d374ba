//! `make run`: the OTP API on 127.0.0.1:8000 (or `PORT`), on the embedded store by default.

use std::process::ExitCode;
use std::sync::Arc;

use otp_core::http::Routes;

mod fraud_guard;
use otp_core::settings::{Runtime, Settings};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

const USAGE: &str = "\
OTP verification service: the local API server and its tools.

Usage: otp-service [COMMAND]

Commands:
  (none)              serve the API on http://127.0.0.1:8000 (PORT to change)
  new-api-key [NAME]  print a fresh API key as an OTP_API_KEYS entry
  openapi             print the API document (openapi.json) for this configuration
  metrics             print the metric catalogue (metrics.json)
  settings            print the configuration reference (docs/configuration.md)
  fraud-guard ...     list, check and close the fraud guard's breakers (DynamoDB table)
  help, --help, -h    print this help
  --version, -V       print the version

Every setting is an environment variable: see docs/configuration.md or `otp-service settings`.
";

/// What the command line asks for.
enum Command {
    Serve,
    NewApiKey(String),
    OpenApi,
    Metrics,
    Settings,
    FraudGuard(fraud_guard::Action),
    Help,
    Version,
}

impl Command {
    /// Anything else is refused: a typo'd subcommand must not start an open server.
    fn parse(args: &[String]) -> Result<Self, String> {
        let command = match args.first().map(String::as_str) {
            None => Self::Serve,
            Some("new-api-key") => {
                Self::NewApiKey(args.get(1).cloned().unwrap_or_else(|| "backend".into()))
            }
            Some("openapi") => Self::OpenApi,
            Some("metrics") => Self::Metrics,
            Some("settings") => Self::Settings,
            Some("fraud-guard") => {
                return fraud_guard::Action::parse(&args[1..]).map(Self::FraudGuard)
            }
            Some("help" | "--help" | "-h") => Self::Help,
            Some("--version" | "-V" | "version") => Self::Version,
            Some(other) => return Err(format!("unknown command {other:?}\n\n{USAGE}")),
        };
        let takes = if matches!(command, Self::NewApiKey(_)) {
            2
        } else {
            1
        };
        match args.get(takes) {
            Some(extra) => Err(format!(
                "`{}` takes no argument {extra:?}\n\n{USAGE}",
                args[..takes].join(" ")
            )),
            None => Ok(command),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match Command::parse(&args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    // The functions' reading of RUST_LOG: a value that would hide every line of the service is
    // reported and `info` used.
    let (filter, unreadable) = otp_core::telemetry::log_filter(std::env::var("RUST_LOG").ok(), "");
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, plain text for files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .finish()
        .with(filter)
        .init();
    if let Some(problem) = unreadable {
        tracing::warn!("{problem}");
    }
    match run(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Help => {
            print!("{USAGE}");
            return Ok(());
        }
        Command::Version => {
            println!("otp-service {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Command::NewApiKey(name) => {
            use secrecy::ExposeSecret as _;
            println!("{name}={}", otp_core::callers::new_key().expose_secret());
            return Ok(());
        }
        Command::Metrics => {
            println!("{}", otp_core::meter::catalogue_json());
            return Ok(());
        }
        Command::Settings => {
            print!("{}", otp_core::settings::reference::markdown());
            return Ok(());
        }
        Command::FraudGuard(action) => {
            let settings = Settings::from_env(Runtime::Local).map_err(|e| e.to_string())?;
            let (ledger, hasher) = otp_core::startup::fraud_admin(&settings)
                .await
                .map_err(|e| e.to_string())?;
            let now = otp_core::clock::Clock::now(&otp_core::clock::SystemClock);
            print!(
                "{}",
                fraud_guard::run(action, &*ledger, hasher.as_ref(), now).await?
            );
            return Ok(());
        }
        Command::OpenApi | Command::Serve => {}
    }
    let settings = Settings::from_env(Runtime::Local).map_err(|e| e.to_string())?;
    if matches!(command, Command::OpenApi) {
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

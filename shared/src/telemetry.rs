//! Logging: the cause chain of an error for a log line, and the JSON log set-up of a function.
//! Clients never see what is written here; mapping outcomes to responses logs nothing.

/// `outer: inner: innermost`, for log lines.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// JSON logs for CloudWatch (which stamps each line), level from `RUST_LOG`, else what Lambda's
/// `LoggingConfig` asks for (`AWS_LAMBDA_LOG_LEVEL`), else `info`.
#[cfg(feature = "lambda")]
pub fn init_lambda_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").unwrap_or_default();
        EnvFilter::new(match level.to_ascii_lowercase().as_str() {
            "" => "info".to_owned(),
            "fatal" => "error".to_owned(),
            level => level.to_owned(),
        })
    });
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        // The request span's fields (route, request ids, masked user, outcome) on every line, and
        // a `store` or `provider` span's below them when the line comes from inside one.
        .with_current_span(false)
        .with_span_list(true)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .init();
}

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
///
/// `RUST_LOG` takes `level` and `target=level` directives (`warn,otp_core=debug`): a target
/// filter, which needs no regular-expression engine in the binary (the span and field filters of
/// `EnvFilter` would). A value it cannot read is reported once and `info` is used.
#[cfg(any(feature = "lambda", feature = "stream", feature = "events"))]
pub fn init_lambda_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let lambda_level = std::env::var("AWS_LAMBDA_LOG_LEVEL").unwrap_or_default();
    let (filter, unreadable) = log_filter(std::env::var("RUST_LOG").ok(), &lambda_level);
    tracing_subscriber::fmt()
        .json()
        // The request span's fields (route, request ids, masked user, outcome) on every line, and
        // a `store` or `provider` span's below them when the line comes from inside one.
        .with_current_span(false)
        .with_span_list(true)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .finish()
        .with(filter)
        .init();
    if let Some(problem) = unreadable {
        tracing::warn!("{problem}");
    }
}

/// The filter for `RUST_LOG` (when set and not empty) or `fallback_level` (Lambda's level in a
/// function), and why `RUST_LOG` could not be used when it could not: a value that does not
/// parse, or one that would show no line of this service at all (`RUST_LOG=verbose` names a
/// target called "verbose" and hides everything else, the "routes are OPEN" warning included).
/// `off` is taken at its word.
#[cfg(feature = "log-filter")]
pub fn log_filter(
    rust_log: Option<String>,
    fallback_level: &str,
) -> (tracing_subscriber::filter::Targets, Option<String>) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let info = || Targets::new().with_default(LevelFilter::INFO);
    let Some(value) = rust_log.filter(|value| !value.trim().is_empty()) else {
        let level = match fallback_level.to_ascii_lowercase().as_str() {
            "fatal" => LevelFilter::ERROR,
            // An empty string would parse as ERROR.
            "" => LevelFilter::INFO,
            level => level.parse().unwrap_or(LevelFilter::INFO),
        };
        return (Targets::new().with_default(level), None);
    };
    match value.parse::<Targets>() {
        Err(error) => (
            info(),
            Some(format!(
                "RUST_LOG={value:?} is not a list of level or target=level directives \
                 ({error}); using info"
            )),
        ),
        Ok(targets) => {
            let silenced = targets.default_level() != Some(LevelFilter::OFF)
                && !["otp_core", "otp_service"]
                    .iter()
                    .any(|target| targets.would_enable(target, &tracing::Level::ERROR));
            if silenced {
                (
                    info(),
                    Some(format!(
                        "RUST_LOG={value:?} would show no line of this service, not even \
                         errors; using info. Start it with a level (error, warn, info, debug, \
                         trace), e.g. info,hyper=debug"
                    )),
                )
            } else {
                (targets, None)
            }
        }
    }
}

#[cfg(all(test, feature = "log-filter"))]
mod tests {
    use super::log_filter;
    use tracing::Level;

    fn allows(rust_log: Option<&str>, lambda: &str, target: &str, level: Level) -> bool {
        let (filter, _) = log_filter(rust_log.map(str::to_owned), lambda);
        filter.would_enable(target, &level)
    }

    #[test]
    fn rust_log_directives_choose_levels_per_target() {
        let log = Some("warn,otp_core=debug");
        assert!(allows(log, "", "otp_core::engine", Level::DEBUG));
        assert!(!allows(log, "", "otp_core::engine", Level::TRACE));
        assert!(!allows(log, "", "aws_smithy_runtime", Level::INFO));
        assert!(allows(log, "", "aws_smithy_runtime", Level::WARN));
    }

    #[test]
    fn lambda_level_applies_when_rust_log_is_unset_or_empty() {
        for unset in [None, Some(""), Some("  ")] {
            assert!(allows(unset, "DEBUG", "otp_core", Level::DEBUG));
            assert!(!allows(unset, "WARN", "otp_core", Level::INFO));
            assert!(!allows(unset, "FATAL", "otp_core", Level::WARN));
            assert!(allows(unset, "FATAL", "otp_core", Level::ERROR));
            assert!(allows(unset, "", "otp_core", Level::INFO));
            assert!(!allows(unset, "", "otp_core", Level::DEBUG));
            assert!(allows(unset, "nonsense", "otp_core", Level::INFO));
        }
    }

    #[test]
    fn unreadable_rust_log_falls_back_to_info_and_says_why() {
        let (filter, error) = log_filter(Some("otp_core=loud".to_owned()), "DEBUG");
        assert!(error.is_some());
        assert!(filter.would_enable("otp_core", &Level::INFO));
        assert!(!filter.would_enable("otp_core", &Level::DEBUG));
    }

    #[test]
    fn a_filter_that_hides_the_service_is_reported_and_info_used() {
        for hiding in ["verbose", "hyper=debug", "aws_config=info"] {
            let (filter, error) = log_filter(Some(hiding.to_owned()), "");
            let error = error.unwrap_or_else(|| panic!("{hiding} accepted"));
            assert!(error.contains("would show no line"), "{error}");
            assert!(filter.would_enable("otp_core", &Level::INFO), "{hiding}");
        }
        // Deliberate choices stand: silence, or the service's own crates by name.
        for chosen in [
            "off",
            "otp_core=debug",
            "warn",
            "info,hyper=debug",
            "otp_service",
        ] {
            let (_, error) = log_filter(Some(chosen.to_owned()), "");
            assert_eq!(error, None, "{chosen}");
        }
        let (filter, _) = log_filter(Some("off".to_owned()), "");
        assert!(!filter.would_enable("otp_core", &Level::ERROR));
    }
}

//! What the service counts and times, for CloudWatch. Every figure is recorded through the
//! `metrics` facade and named in [`CATALOGUE`], the one list the template's alarms and dashboard
//! are checked against (`otp-service metrics` prints it; `metrics.json` is that output).
//!
//! The recorder is the `metrics_cloudwatch_embedded` collector (feature `emf`): figures collect
//! in memory during a request and [`flush`] writes them to stdout as Embedded Metric Format
//! records, one per set of dimension values, which CloudWatch Logs turns into metrics. No API
//! call, no latency. Without an installed recorder (tests, a local run without `OTP_METRICS`)
//! every call here is a no-op.
//!
//! Dimension values are closed sets (channel, outcome, limit, provider, route) or an SMS country
//! calling code: never an address, a number, a user id or an IP address.

use std::time::Duration;

use crate::domain::Channel;
use crate::limits::LimitName;

pub use crate::settings::DEFAULT_METRICS_NAMESPACE as DEFAULT_NAMESPACE;

/// One metric the code emits.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct MetricSpec {
    pub name: &'static str,
    /// A CloudWatch unit name.
    pub unit: &'static str,
    /// The dimensions every record of it carries, in this order.
    pub dimensions: &'static [&'static str],
    pub about: &'static str,
}

pub const SENDS: &str = "Sends";
pub const SMS_SENDS_BY_COUNTRY: &str = "SmsSendsByCountry";
pub const VERIFICATIONS: &str = "Verifications";
pub const SMS_VERIFIED_BY_COUNTRY: &str = "SmsVerifiedByCountry";
pub const LIMIT_REFUSALS: &str = "LimitRefusals";
pub const PROVIDER_CALLS: &str = "ProviderCalls";
pub const PROVIDER_LATENCY: &str = "ProviderLatency";
pub const STORE_CALLS: &str = "StoreCalls";
pub const STORE_LATENCY: &str = "StoreLatency";
pub const RESPONSES: &str = "Responses";
pub const COLD_STARTS: &str = "ColdStarts";
pub const FRAUD_GUARD: &str = "FraudGuard";
pub const FRAUD_GUARD_BREAKERS_OPENED: &str = "FraudGuardBreakersOpened";
pub const DELIVERY_RECEIPTS: &str = "DeliveryReceipts";

/// Every metric, with its unit and dimensions. Conversion is `Verifications{Outcome=verified}`
/// over `Sends{Outcome=sent}` (per country: `SmsVerifiedByCountry` over `SmsSendsByCountry`
/// with `Outcome=sent`), computed with metric math.
pub const CATALOGUE: &[MetricSpec] = &[
    MetricSpec {
        name: SENDS,
        unit: "Count",
        dimensions: &["Channel", "Outcome"],
        about: "send requests that reached the engine, by channel and outcome (sent, cooldown, \
                locked, rate_limited, number_refused, channel_unavailable, invalid_destination, \
                delivery_failed, delivery_uncertain, store_error)",
    },
    MetricSpec {
        name: SMS_SENDS_BY_COUNTRY,
        unit: "Count",
        dimensions: &["CallingCode", "Outcome"],
        about: "send requests to a phone number (SMS, WhatsApp, voice) by the number's country \
                calling code and outcome",
    },
    MetricSpec {
        name: VERIFICATIONS,
        unit: "Count",
        dimensions: &["Outcome"],
        about: "guesses checked, by outcome (verified, wrong_code, not_found, expired, \
                too_many_attempts, locked, wrong_destination, store_error)",
    },
    MetricSpec {
        name: SMS_VERIFIED_BY_COUNTRY,
        unit: "Count",
        dimensions: &["CallingCode"],
        about: "codes sent to a phone number (SMS, WhatsApp, voice) and verified, by the \
                number's country calling code",
    },
    MetricSpec {
        name: LIMIT_REFUSALS,
        unit: "Count",
        dimensions: &["Limit"],
        about: "sends refused by a send limit, by limit (sms_daily_budget among them)",
    },
    MetricSpec {
        name: PROVIDER_CALLS,
        unit: "Count",
        dimensions: &["Provider", "Result"],
        about: "delivery calls by provider and result (ok, failed, uncertain, \
                refused_destination, unavailable)",
    },
    MetricSpec {
        name: PROVIDER_LATENCY,
        unit: "Milliseconds",
        dimensions: &["Provider"],
        about: "time a delivery call took, by provider",
    },
    MetricSpec {
        name: STORE_CALLS,
        unit: "Count",
        dimensions: &["Operation", "Result"],
        about: "store requests (DynamoDB or memory) by operation (send, verify, withdraw, \
                lookup, cancel, receipt, message_id) and result (ok, error)",
    },
    MetricSpec {
        name: STORE_LATENCY,
        unit: "Milliseconds",
        dimensions: &["Operation"],
        about: "time a store request took, by operation",
    },
    MetricSpec {
        name: RESPONSES,
        unit: "Count",
        dimensions: &["Route", "StatusClass"],
        about: "HTTP responses by route (or `other`) and status class (2xx, 4xx, 5xx)",
    },
    MetricSpec {
        name: FRAUD_GUARD,
        unit: "Count",
        dimensions: &["Decision", "Mode", "CallingCode"],
        about: "fraud guard decisions by decision (opened: a breaker opened; blocked: a send \
                refused; would_block: a send an open breaker would have refused, in monitor \
                mode), mode (block, monitor) and the number's country calling code",
    },
    MetricSpec {
        name: FRAUD_GUARD_BREAKERS_OPENED,
        unit: "Count",
        dimensions: &["Mode"],
        about: "fraud guard breakers opened (a 1,000-number block or a country), by mode: what \
                the breaker-opened alarm watches",
    },
    MetricSpec {
        name: DELIVERY_RECEIPTS,
        unit: "Count",
        dimensions: &["Provider", "Status", "CallingCode"],
        about: "delivery receipts that moved a verification's delivery on, by provider (twilio, \
                ses, aws-sms), status (sent, delivered, undelivered, failed) and the number's \
                country calling code (`-` for email): the delivery rate is delivered over the \
                final three",
    },
    MetricSpec {
        name: COLD_STARTS,
        unit: "Count",
        dimensions: &["Function"],
        about: "first request of a Lambda execution environment, by function",
    },
];

/// The catalogue as JSON, as `metrics.json` holds it: what the template's alarms and dashboard
/// may name.
pub fn catalogue_json() -> String {
    let document = serde_json::json!({
        "namespace_default": DEFAULT_NAMESPACE,
        "metrics": CATALOGUE,
    });
    serde_json::to_string_pretty(&document).expect("the catalogue serialises")
}

/// How a send ended, as the `Outcome` dimension says it; a send to a phone number (any phone
/// channel) also counts for its country: the pumping alarms watch every channel that costs.
pub fn send(channel: Channel, sms_country: Option<u16>, outcome: &'static str) {
    if !installed() {
        return;
    }
    metrics::counter!(SENDS, "Channel" => channel.as_str(), "Outcome" => outcome).increment(1);
    if let Some(code) = sms_country {
        let code = code.to_string();
        metrics::counter!(SMS_SENDS_BY_COUNTRY, "CallingCode" => code, "Outcome" => outcome)
            .increment(1);
    }
}

/// How a guess ended; a verified SMS code also counts for its country.
pub fn verification(outcome: &'static str, verified_sms_country: Option<u16>) {
    if !installed() {
        return;
    }
    metrics::counter!(VERIFICATIONS, "Outcome" => outcome).increment(1);
    if let Some(code) = verified_sms_country {
        metrics::counter!(SMS_VERIFIED_BY_COUNTRY, "CallingCode" => code.to_string()).increment(1);
    }
}

/// A fraud guard decision (`opened`, `blocked`, `would_block`) in `mode`, for a number of
/// country `calling_code`.
pub fn fraud_guard(decision: &'static str, mode: &'static str, calling_code: Option<u16>) {
    if !installed() {
        return;
    }
    let code = calling_code.map_or_else(|| "-".to_owned(), |c| c.to_string());
    metrics::counter!(FRAUD_GUARD, "Decision" => decision, "Mode" => mode, "CallingCode" => code)
        .increment(1);
    if decision == "opened" {
        metrics::counter!(FRAUD_GUARD_BREAKERS_OPENED, "Mode" => mode).increment(1);
    }
}

/// A delivery receipt that moved a verification's delivery on.
pub fn delivery_receipt(
    provider: &'static str,
    status: crate::verification::DeliveryStatus,
    calling_code: Option<u16>,
) {
    if !installed() {
        return;
    }
    let code = calling_code.map_or_else(|| "-".to_owned(), |c| c.to_string());
    metrics::counter!(DELIVERY_RECEIPTS, "Provider" => provider, "Status" => status.as_str(),
        "CallingCode" => code)
    .increment(1);
}

pub fn limit_refusal(limit: LimitName) {
    if !installed() {
        return;
    }
    metrics::counter!(LIMIT_REFUSALS, "Limit" => limit.as_str()).increment(1);
}

/// A delivery call: which provider, how it ended, how long it took.
pub fn provider_call(provider: &'static str, result: &'static str, took: Duration) {
    if !installed() {
        return;
    }
    metrics::counter!(PROVIDER_CALLS, "Provider" => provider, "Result" => result).increment(1);
    metrics::histogram!(PROVIDER_LATENCY, "Provider" => provider).record(millis(took));
}

/// A store request: `send`, `verify` or `withdraw`.
pub fn store_call(operation: &'static str, ok: bool, took: Duration) {
    if !installed() {
        return;
    }
    let result = if ok { "ok" } else { "error" };
    metrics::counter!(STORE_CALLS, "Operation" => operation, "Result" => result).increment(1);
    metrics::histogram!(STORE_LATENCY, "Operation" => operation).record(millis(took));
}

/// An HTTP response: the route (one of the service's paths, else `other`) and status class.
pub fn response(route: &'static str, status: u16) {
    if !installed() {
        return;
    }
    let class = match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!(RESPONSES, "Route" => route, "StatusClass" => class).increment(1);
}

/// The first request a Lambda execution environment serves.
pub fn cold_start(function: &'static str) {
    if !installed() {
        return;
    }
    metrics::counter!(COLD_STARTS, "Function" => function).increment(1);
}

fn millis(took: Duration) -> f64 {
    took.as_secs_f64() * 1e3
}

/// Installs the EMF collector as the process's recorder, once; later calls are no-ops. Units
/// come from the catalogue.
#[cfg(feature = "emf")]
pub fn install_emf(namespace: &str) -> Result<(), String> {
    use std::sync::OnceLock;
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let collector = metrics_cloudwatch_embedded::Builder::new()
                .cloudwatch_namespace(namespace.to_owned())
                .init()
                .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
            let _ = COLLECTOR.set(collector);
            for spec in CATALOGUE {
                match spec.unit {
                    "Milliseconds" => metrics::describe_histogram!(
                        spec.name,
                        metrics::Unit::Milliseconds,
                        spec.about
                    ),
                    _ => metrics::describe_counter!(spec.name, metrics::Unit::Count, spec.about),
                }
            }
            Ok(())
        })
        .clone()
}

#[cfg(feature = "emf")]
static COLLECTOR: std::sync::OnceLock<&'static metrics_cloudwatch_embedded::Collector> =
    std::sync::OnceLock::new();

/// Whether an EMF recorder is installed in this process. Every recording function asks first:
/// building a metric's key costs an allocation even when nothing records it, and the local
/// server without `OTP_METRICS` should not pay for figures nobody reads.
pub fn installed() -> bool {
    #[cfg(feature = "emf")]
    return COLLECTOR.get().is_some();
    #[cfg(not(feature = "emf"))]
    false
}

/// Writes what was collected since the last flush to stdout as EMF records, one line each.
/// Called after every response; a no-op when no collector is installed.
pub fn flush() {
    #[cfg(feature = "emf")]
    if let Some(collector) = COLLECTOR.get() {
        let mut out = Vec::with_capacity(1024);
        if collector.flush(&mut out).is_ok() && !out.is_empty() {
            #[cfg(feature = "testing")]
            if let Some(captured) = CAPTURED.get() {
                captured.lock().unwrap().extend_from_slice(&out);
                return;
            }
            use std::io::Write as _;
            // One write: lines from concurrent requests never interleave mid-record.
            let _ = std::io::stdout().lock().write_all(&out);
        }
    }
}

#[cfg(all(feature = "emf", feature = "testing"))]
static CAPTURED: std::sync::OnceLock<std::sync::Mutex<Vec<u8>>> = std::sync::OnceLock::new();

/// From now on, this process's records go to a buffer instead of stdout (tests).
#[cfg(all(feature = "emf", feature = "testing"))]
pub fn capture(namespace: &str) -> Result<(), String> {
    CAPTURED.get_or_init(Default::default);
    install_emf(namespace)
}

/// Everything recorded since the last call: flushes, then drains the buffer (tests).
#[cfg(all(feature = "emf", feature = "testing"))]
pub fn take_captured() -> Vec<u8> {
    flush();
    CAPTURED
        .get()
        .map(|captured| std::mem::take(&mut *captured.lock().unwrap()))
        .unwrap_or_default()
}

//! What the functions off the request path (fed by the table's stream: fraud-guard, events) do
//! before their first event: logs, the TLS roots, the settings, and the table they read.

use crate::settings::{MetricsSettings, Runtime, Settings, StoreSettings};

/// The settings and the table, or why the function cannot start (logged).
pub fn init(function: &str) -> Result<(Settings, String), String> {
    crate::telemetry::init_lambda_tracing();
    crate::tls::prefer_single_ca_bundle();
    let started = || -> Result<(Settings, String), String> {
        let settings = Settings::from_env(Runtime::Lambda).map_err(|e| e.to_string())?;
        let StoreSettings::DynamoDb { table } = &settings.store else {
            return Err(format!(
                "the {function} function reads the DynamoDB table (OTP_TABLE_NAME)"
            ));
        };
        if let MetricsSettings::Emf { namespace } = &settings.metrics {
            crate::meter::install_emf(namespace)?;
        }
        let table = table.clone();
        Ok((settings, table))
    };
    started().inspect_err(|error| tracing::error!(%error, "function init failed"))
}

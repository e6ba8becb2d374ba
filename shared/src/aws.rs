//! The AWS SDK configuration, loaded once at init and shared by every client: region and
//! credentials from the environment, `AWS_ENDPOINT_URL(_<SERVICE>)` honoured (that is how tests
//! and local runs reach moto), standard retries within timeouts well under the function timeout.

use std::path::Path;
use std::time::Duration;

use aws_config::SdkConfig;

pub async fn load() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await
}

/// CA bundle files of the systems we run on: Amazon Linux 2023 (Lambda's provided.al2023),
/// then Debian/Ubuntu.
const CA_BUNDLES: &[&str] = &[
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

/// The bundle file to read root certificates from, when the environment names none. Without
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`, the TLS client reads the bundle *and* every file of the
/// certificate directory (the same roots again), which is most of a function's init time. Only
/// an existing file is chosen, so the roots can never end up empty.
pub fn ca_bundle_to_prefer(
    env: impl Fn(&str) -> Option<String>,
    exists: impl Fn(&str) -> bool,
) -> Option<&'static str> {
    if env("SSL_CERT_FILE").is_some() || env("SSL_CERT_DIR").is_some() {
        return None;
    }
    CA_BUNDLES.iter().copied().find(|path| exists(path))
}

/// Applies [`ca_bundle_to_prefer`]. Call at the very start of `main`, before any thread or
/// client exists (it sets an environment variable).
pub fn prefer_single_ca_bundle() {
    let choice = ca_bundle_to_prefer(
        |var| std::env::var(var).ok(),
        |path| Path::new(path).is_file(),
    );
    if let Some(path) = choice {
        std::env::set_var("SSL_CERT_FILE", path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_an_existing_bundle_only_when_the_environment_names_none() {
        let none = |_: &str| None;
        let all = |_: &str| true;
        assert_eq!(
            ca_bundle_to_prefer(none, all),
            Some("/etc/pki/tls/certs/ca-bundle.crt")
        );
        assert_eq!(
            ca_bundle_to_prefer(none, |p| p.starts_with("/etc/ssl")),
            Some("/etc/ssl/certs/ca-certificates.crt")
        );
        assert_eq!(
            ca_bundle_to_prefer(none, |_| false),
            None,
            "never a missing file"
        );
        for var in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
            let set = move |v: &str| (v == var).then(|| "/x".to_owned());
            assert_eq!(ca_bundle_to_prefer(set, all), None, "{var} is respected");
        }
    }
}

//! The AWS SDK configuration, loaded once at init and shared by every client: region and
//! credentials from the environment, `AWS_ENDPOINT_URL(_<SERVICE>)` honoured (that is how tests
//! and local runs reach moto), standard retries within timeouts well under the function timeout,
//! TLS trusting the roots the settings name ([`AwsRoots`], `OTP_AWS_TRUST_ROOTS`).

use std::time::Duration;

use aws_config::SdkConfig;

use crate::tls::AwsRoots;

pub async fn load(roots: &AwsRoots) -> SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    let loader = match roots.aws_http_client() {
        Some(client) => loader.http_client(client),
        None => loader,
    };
    loader
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

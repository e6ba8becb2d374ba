//! The AWS SDK configuration, loaded once at init and shared by every client: region and
//! credentials from the environment, `AWS_ENDPOINT_URL(_<SERVICE>)` honoured (that is how tests
//! and local runs reach moto), standard retries within timeouts well under the function timeout.
//! In a build with an outbound HTTP client (Twilio, CAPTCHA), it trusts the process's one set of root
//! certificates ([`crate::tls`]); otherwise the SDK loads the system's roots itself.

use std::time::Duration;

use aws_config::SdkConfig;

pub async fn load() -> SdkConfig {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    // With an outbound HTTP client in the build (Twilio, CAPTCHA), both TLS clients share the roots read once by
    // `crate::tls`, read here, at init: every AWS request needs them, and when Lambda
    // initialises an environment ahead of its first invocation this work is off the request's
    // path. Without it (verify-code) the SDK's own loading is already one read, at init, and
    // cheaper: it keeps the decoded roots, where ours must go to it as PEM again.
    #[cfg(feature = "http-client")]
    let loader = {
        crate::tls::roots();
        loader.http_client(crate::tls::aws_http_client())
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

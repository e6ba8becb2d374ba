//! The optional CAPTCHA on `/auth/request-otp`: the browser's token is checked with the
//! provider's siteverify API before anything is sent. Turnstile, hCaptcha and reCAPTCHA share
//! one protocol (a form POST of `secret`, `response` and optionally `remoteip`, answered with
//! JSON `{"success": bool, "error-codes": [...]}`), so one client serves all three.

use async_trait::async_trait;

use crate::limits::ClientIp;

/// Whether a token passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    /// The provider's reasons (`invalid-input-response`, `timeout-or-duplicate`, ...), for logs.
    Failed(Vec<String>),
}

/// The check could not be made: the provider is unreachable, answered with an error, or says
/// our own secret is wrong. Nothing is sent and the user is not blamed.
#[derive(Debug, thiserror::Error)]
#[error("CAPTCHA provider {provider} could not check the token: {reason}")]
pub struct CaptchaUnavailable {
    pub provider: &'static str,
    pub reason: String,
}

#[async_trait]
pub trait CaptchaCheck: Send + Sync {
    async fn check(
        &self,
        token: &str,
        client: Option<ClientIp>,
    ) -> Result<Verdict, CaptchaUnavailable>;

    /// For the start-up line.
    fn describe(&self) -> String;
}

#[cfg(feature = "captcha")]
/// Reasons a provider gives when the fault is ours (the secret), not the user's token.
const OUR_FAULT: [&str; 3] = [
    "missing-input-secret",
    "invalid-input-secret",
    "invalid-or-already-seen-secret",
];

#[cfg(feature = "captcha")]
/// The provider's answer, as far as we read it.
#[derive(Debug, serde::Deserialize)]
struct SiteVerifyAnswer {
    success: bool,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
}

#[cfg(feature = "captcha")]
fn verdict(
    provider: &'static str,
    answer: SiteVerifyAnswer,
) -> Result<Verdict, CaptchaUnavailable> {
    if answer.success {
        return Ok(Verdict::Passed);
    }
    if let Some(code) = answer
        .error_codes
        .iter()
        .find(|c| OUR_FAULT.contains(&c.as_str()))
    {
        return Err(CaptchaUnavailable {
            provider,
            reason: format!("the provider refused our secret ({code}); check OTP_CAPTCHA_SECRET"),
        });
    }
    Ok(Verdict::Failed(answer.error_codes))
}

#[cfg(feature = "captcha")]
pub use site_verify::SiteVerify;

#[cfg(feature = "captcha")]
mod site_verify {
    use std::sync::OnceLock;
    use std::time::Duration;

    use secrecy::{ExposeSecret, SecretString};

    use super::*;
    use crate::settings::CaptchaSettings;

    /// A siteverify client; its HTTP client is built on the first check, not at init.
    pub struct SiteVerify {
        provider: &'static str,
        url: String,
        secret: SecretString,
        timeout: Duration,
        client: OnceLock<Result<reqwest::Client, String>>,
    }

    impl SiteVerify {
        pub fn new(settings: &CaptchaSettings, secret: SecretString) -> Self {
            Self {
                provider: settings.provider.as_str(),
                url: settings.verify_url.clone(),
                secret,
                timeout: settings.timeout,
                client: OnceLock::new(),
            }
        }

        fn unavailable(&self, reason: String) -> CaptchaUnavailable {
            CaptchaUnavailable {
                provider: self.provider,
                reason,
            }
        }
    }

    #[async_trait]
    impl CaptchaCheck for SiteVerify {
        async fn check(
            &self,
            token: &str,
            client: Option<ClientIp>,
        ) -> Result<Verdict, CaptchaUnavailable> {
            let http = self
                .client
                .get_or_init(|| {
                    crate::tls::https_client(self.timeout.min(Duration::from_secs(2)), self.timeout)
                        .map_err(|e| crate::telemetry::error_chain(&e))
                })
                .as_ref()
                .map_err(|e| self.unavailable(format!("cannot build the HTTP client: {e}")))?;
            let remote_ip = client.map(|c| c.ip().to_string());
            let mut form = vec![("secret", self.secret.expose_secret()), ("response", token)];
            if let Some(ip) = &remote_ip {
                form.push(("remoteip", ip));
            }
            let started = std::time::Instant::now();
            let response = http.post(&self.url).form(&form).send().await;
            let result = match response {
                Err(error) => Err(self.unavailable(crate::telemetry::error_chain(&error))),
                Ok(response) if !response.status().is_success() => {
                    Err(self.unavailable(format!("HTTP {}", response.status())))
                }
                Ok(response) => match response.bytes().await {
                    Ok(body) => match serde_json::from_slice::<SiteVerifyAnswer>(&body) {
                        Ok(answer) => verdict(self.provider, answer),
                        Err(error) => Err(self.unavailable(format!("unreadable answer: {error}"))),
                    },
                    Err(error) => Err(self.unavailable(crate::telemetry::error_chain(&error))),
                },
            };
            let label = match &result {
                Ok(Verdict::Passed) => "passed",
                Ok(Verdict::Failed(_)) => "failed",
                Err(_) => "unavailable",
            };
            crate::meter::provider_call(self.provider, label, started.elapsed());
            result
        }

        fn describe(&self) -> String {
            self.provider.to_owned()
        }
    }
}

#[cfg(all(test, feature = "captcha"))]
mod tests {
    use super::*;

    fn answer(json: &str) -> SiteVerifyAnswer {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_answer_decides_and_a_wrong_secret_is_our_fault() {
        assert_eq!(
            verdict("turnstile", answer(r#"{"success": true, "hostname": "x"}"#)).unwrap(),
            Verdict::Passed
        );
        assert_eq!(
            verdict(
                "hcaptcha",
                answer(r#"{"success": false, "error-codes": ["invalid-input-response"]}"#)
            )
            .unwrap(),
            Verdict::Failed(vec!["invalid-input-response".to_owned()])
        );
        assert_eq!(
            verdict("recaptcha", answer(r#"{"success": false}"#)).unwrap(),
            Verdict::Failed(vec![])
        );
        let ours = verdict(
            "turnstile",
            answer(r#"{"success": false, "error-codes": ["invalid-input-secret"]}"#),
        )
        .unwrap_err();
        assert!(ours.reason.contains("invalid-input-secret"));
    }
}

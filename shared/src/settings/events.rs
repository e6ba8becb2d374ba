//! Where events go (`OTP_WEBHOOK_URL`, `OTP_WEBHOOK_SECRET`; see `crate::webhooks`).

use super::{ConfigError, Env, Secret};

pub const WEBHOOK_URL: &str = "OTP_WEBHOOK_URL";
pub const WEBHOOK_SECRET: &str = "OTP_WEBHOOK_SECRET";
pub const WEBHOOK_SECRET_ARN: &str = "OTP_WEBHOOK_SECRET_ARN";
pub const EVENTS_QUEUE_URL: &str = "OTP_EVENTS_QUEUE_URL";
pub const EVENT_BUS: &str = "OTP_EVENT_BUS";

/// Where events go and how they are signed.
#[derive(Clone)]
pub struct WebhookSettings {
    pub url: String,
    /// `whsec_` and the base64 of 24 to 64 random bytes (Standard Webhooks), or the secret
    /// that holds it.
    pub secret: Secret,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Both or neither; the URL `https://` (or `http://` on this machine).
pub fn webhook(env: &Env<'_>) -> Result<Option<WebhookSettings>, ConfigError> {
    let secret = env.secret(WEBHOOK_SECRET, WEBHOOK_SECRET_ARN);
    let (url, secret) = match (env.get(WEBHOOK_URL), secret) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(ConfigError::Missing {
                var: WEBHOOK_SECRET,
                hint: "OTP_WEBHOOK_URL is set, so events are signed: whsec_ and the base64 of \
                       24 to 64 random bytes (or OTP_WEBHOOK_SECRET_ARN, a secret holding it)",
            })
        }
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                var: WEBHOOK_URL,
                hint: "a webhook secret is set: the https:// URL that receives the events",
            })
        }
        (Some(url), Some(secret)) => (url, secret),
    };
    super::https_url(WEBHOOK_URL, &url, "https://example.com/otp-events", "")?;
    if let Secret::Value(value) = &secret {
        use secrecy::ExposeSecret;
        check_secret(value.expose_secret()).map_err(|reason| ConfigError::Invalid {
            var: WEBHOOK_SECRET,
            reason,
        })?;
    }
    Ok(Some(WebhookSettings { url, secret }))
}

/// Whether `secret` is a Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 bytes.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let key = secret.strip_prefix("whsec_").and_then(|b64| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(b64).ok()
    });
    match key {
        Some(key) if (24..=64).contains(&key.len()) => Ok(()),
        _ => Err("must be whsec_ and the base64 of 24 to 64 random bytes, e.g. from python3 -c \
                  'import base64,os; print(\"whsec_\" + base64.b64encode(os.urandom(32)).decode())'"
            .to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Option<WebhookSettings>, ConfigError> {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        webhook(&Env(&lookup))
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn both_or_neither_https_and_a_standard_secret() {
        assert!(parse(&[]).unwrap().is_none());
        let ok = parse(&[
            (WEBHOOK_URL, "https://example.com/hook"),
            (WEBHOOK_SECRET, SECRET),
        ]);
        assert_eq!(ok.unwrap().unwrap().url, "https://example.com/hook");
        assert!(parse(&[
            (WEBHOOK_URL, "http://127.0.0.1:9/x"),
            (WEBHOOK_SECRET, SECRET)
        ])
        .is_ok());
        for bad in [
            vec![(WEBHOOK_URL, "https://example.com/hook")],
            vec![(WEBHOOK_SECRET, SECRET)],
            vec![
                (WEBHOOK_URL, "http://example.com/hook"),
                (WEBHOOK_SECRET, SECRET),
            ],
            vec![
                (WEBHOOK_URL, "https://example.com/hook"),
                (WEBHOOK_SECRET, "whsec_c2hvcnQ="),
            ],
            vec![
                (WEBHOOK_URL, "https://example.com/hook"),
                (WEBHOOK_SECRET, "no-prefix"),
            ],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }
}

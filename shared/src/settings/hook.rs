//! The send hook (`OTP_SEND_HOOK_*`): a team's own sender, called instead of Twilio, SES or AWS
//! for the channels it takes (see `crate::sender::HookSender`).

use std::time::Duration;

use super::{ConfigError, Env, Secret, Setting};
use crate::domain::Channel;

pub const SEND_HOOK_URL: &str = "OTP_SEND_HOOK_URL";
pub const SEND_HOOK_SECRET: &str = "OTP_SEND_HOOK_SECRET";
pub const SEND_HOOK_SECRET_ARN: &str = "OTP_SEND_HOOK_SECRET_ARN";
pub const SEND_HOOK_CHANNELS: &str = "OTP_SEND_HOOK_CHANNELS";
pub const SEND_HOOK_TIMEOUT_MS: Setting =
    Setting::new("OTP_SEND_HOOK_TIMEOUT_MS", 5000, 500..=30_000);

#[derive(Clone)]
pub struct SendHookSettings {
    pub url: String,
    /// `whsec_` and the base64 of 24 to 64 bytes, or the secret holding it.
    pub secret: Secret,
    pub timeout: Duration,
    /// The channels the hook delivers (the others keep their provider).
    pub channels: Vec<Channel>,
}

impl std::fmt::Debug for SendHookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendHookSettings")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

/// The hook gets codes in clear: only `https://`, or `http://` to this machine.
pub fn send_hook(env: &Env<'_>) -> Result<Option<SendHookSettings>, ConfigError> {
    let Some(url) = env.get(SEND_HOOK_URL) else {
        return Ok(None);
    };
    super::https_url(
        SEND_HOOK_URL,
        &url,
        "https://sms.example.com/otp",
        ": the hook receives every code in clear",
    )?;
    let Some(secret) = env.secret(SEND_HOOK_SECRET, SEND_HOOK_SECRET_ARN) else {
        return Err(ConfigError::Missing {
            var: SEND_HOOK_SECRET,
            hint: "OTP_SEND_HOOK_URL is set, so its requests are signed: whsec_ and the base64 \
                   of 24 to 64 random bytes (or OTP_SEND_HOOK_SECRET_ARN)",
        });
    };
    if let Secret::Value(value) = &secret {
        use secrecy::ExposeSecret;
        super::check_webhook_secret(value.expose_secret()).map_err(|reason| {
            ConfigError::Invalid {
                var: SEND_HOOK_SECRET,
                reason,
            }
        })?;
    }
    let channels = match env.get(SEND_HOOK_CHANNELS) {
        None => Channel::ALL.to_vec(),
        Some(raw) => raw
            .split(',')
            .map(|name| {
                Channel::parse(name.trim()).ok_or_else(|| ConfigError::Invalid {
                    var: SEND_HOOK_CHANNELS,
                    reason: format!(
                        "must be channels separated by commas (sms, whatsapp, voice, email); \
                         {:?} is not one",
                        name.trim()
                    ),
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(Some(SendHookSettings {
        url,
        secret,
        timeout: Duration::from_millis(SEND_HOOK_TIMEOUT_MS.read(env)?),
        channels,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn parse(vars: &[(&str, &str)]) -> Result<Option<SendHookSettings>, ConfigError> {
        let lookup = |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        send_hook(&Env(&lookup))
    }

    #[test]
    fn https_or_loopback_a_standard_secret_and_known_channels() {
        assert!(parse(&[]).unwrap().is_none());
        let hook = parse(&[
            (SEND_HOOK_URL, "https://sms.example.com/otp"),
            (SEND_HOOK_SECRET, SECRET),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(hook.channels, Channel::ALL.to_vec());
        assert_eq!(hook.timeout, Duration::from_secs(5));
        let sms_only = parse(&[
            (SEND_HOOK_URL, "http://127.0.0.1:9000/hook"),
            (SEND_HOOK_SECRET, SECRET),
            (SEND_HOOK_CHANNELS, "sms, whatsapp"),
        ]);
        assert_eq!(
            sms_only.unwrap().unwrap().channels,
            [Channel::Sms, Channel::Whatsapp]
        );
        for bad in [
            vec![
                (SEND_HOOK_URL, "http://sms.example.com/otp"),
                (SEND_HOOK_SECRET, SECRET),
            ],
            vec![(SEND_HOOK_URL, "https://sms.example.com/otp")],
            vec![
                (SEND_HOOK_URL, "https://sms.example.com/otp"),
                (SEND_HOOK_SECRET, "short"),
            ],
            vec![
                (SEND_HOOK_URL, "https://sms.example.com/otp"),
                (SEND_HOOK_SECRET, SECRET),
                (SEND_HOOK_CHANNELS, "sms,fax"),
            ],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }
}

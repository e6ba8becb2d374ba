//! Configuration from environment variables, read once at start-up and checked against the
//! documented ranges, so a typo fails the start instead of a user's request.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::code::{HashKey, HashKeyError};

pub const CODE_LENGTH: Setting = Setting::new("OTP_CODE_LENGTH", 6, 4..=10);
pub const TTL_SECONDS: Setting = Setting::new("OTP_TTL_SECONDS", 300, 30..=3600);
pub const MAX_ATTEMPTS: Setting = Setting::new("OTP_MAX_ATTEMPTS", 3, 1..=10);
pub const RESEND_COOLDOWN_SECONDS: Setting =
    Setting::new("OTP_RESEND_COOLDOWN_SECONDS", 30, 0..=3600);
pub const TWILIO_TIMEOUT_MS: Setting = Setting::new("TWILIO_TIMEOUT_MS", 5000, 500..=10_000);
pub const HASH_KEY: &str = "OTP_HASH_KEY";
pub const HASH_KEY_SECRET_ARN: &str = "OTP_HASH_KEY_SECRET_ARN";
pub const BRAND_NAME: &str = "OTP_BRAND_NAME";
pub const BRAND_MAX_CHARS: usize = 40;

/// A numeric setting with its default and allowed range.
pub struct Setting {
    pub var: &'static str,
    pub default: u64,
    pub range: RangeInclusive<u64>,
}

impl Setting {
    const fn new(var: &'static str, default: u64, range: RangeInclusive<u64>) -> Self {
        Self {
            var,
            default,
            range,
        }
    }

    pub fn read(&self, env: &impl Fn(&str) -> Option<String>) -> Result<u64, ConfigError> {
        let Some(raw) = non_empty(env(self.var)) else {
            return Ok(self.default);
        };
        let invalid = || ConfigError::Invalid {
            var: self.var,
            reason: format!(
                "must be a whole number from {} to {}, got {raw:?}",
                self.range.start(),
                self.range.end()
            ),
        };
        let value = u64::from_str(raw.trim()).map_err(|_| invalid())?;
        if !self.range.contains(&value) {
            return Err(invalid());
        }
        Ok(value)
    }
}

pub fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The rules every code follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub code_length: usize,
    pub ttl_secs: u64,
    pub max_attempts: u32,
    pub cooldown_secs: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            code_length: CODE_LENGTH.default as usize,
            ttl_secs: TTL_SECONDS.default,
            max_attempts: MAX_ATTEMPTS.default as u32,
            cooldown_secs: RESEND_COOLDOWN_SECONDS.default,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is required: {hint}")]
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    #[error("{var} {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Everything the engine needs from the environment (store and delivery settings are read by
/// their own modules).
pub struct Config {
    pub policy: Policy,
    /// `None` when `OTP_HASH_KEY` is unset; whether that is allowed depends on the runtime.
    pub hash_key: Option<HashKey>,
    pub brand: Option<String>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("policy", &self.policy)
            .field("hash_key", &self.hash_key.as_ref().map(|_| "***"))
            .field("brand", &self.brand)
            .finish()
    }
}

impl Config {
    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let policy = Policy {
            code_length: CODE_LENGTH.read(&env)? as usize,
            ttl_secs: TTL_SECONDS.read(&env)?,
            max_attempts: MAX_ATTEMPTS.read(&env)? as u32,
            cooldown_secs: RESEND_COOLDOWN_SECONDS.read(&env)?,
        };
        let hash_key = non_empty(env(HASH_KEY))
            .map(|text| HashKey::parse(&text))
            .transpose()
            .map_err(|e: HashKeyError| ConfigError::Invalid {
                var: HASH_KEY,
                reason: format!(
                    "{e} (generate one with: python3 -c 'import secrets; print(secrets.token_hex(32))')"
                ),
            })?;
        let brand = non_empty(env(BRAND_NAME)).map(|b| b.trim().to_owned());
        if let Some(brand) = &brand {
            if brand.chars().count() > BRAND_MAX_CHARS || brand.chars().any(char::is_control) {
                return Err(ConfigError::Invalid {
                    var: BRAND_NAME,
                    reason: format!(
                        "must be at most {BRAND_MAX_CHARS} characters without control characters"
                    ),
                });
            }
        }
        Ok(Self {
            policy,
            hash_key,
            brand,
        })
    }

    /// The key, or the start-up error a deployed function must fail with.
    pub fn require_hash_key(&mut self) -> Result<HashKey, ConfigError> {
        self.hash_key.take().ok_or(ConfigError::Missing {
            var: HASH_KEY,
            hint: "a secret of at least 32 bytes, hex or base64 (or OTP_HASH_KEY_SECRET_ARN, a \
                   Secrets Manager secret holding one); without it codes could not be checked \
                   across instances or restarts",
        })
    }

    /// Parses key text read from elsewhere (a secret) with the same rules as `OTP_HASH_KEY`.
    pub fn hash_key_from_secret(text: &str) -> Result<HashKey, ConfigError> {
        HashKey::parse(text).map_err(|e| ConfigError::Invalid {
            var: HASH_KEY_SECRET_ARN,
            reason: format!("names a secret whose value {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        let c = config(&[("OTP_TTL_SECONDS", "")]).unwrap();
        assert_eq!(c.policy, Policy::default());
        assert_eq!(c.policy.code_length, 6);
        assert_eq!(c.policy.ttl_secs, 300);
        assert_eq!(c.policy.max_attempts, 3);
        assert_eq!(c.policy.cooldown_secs, 30);
        assert!(c.hash_key.is_none());
        assert!(c.brand.is_none());
    }

    #[test]
    fn every_bound_is_enforced() {
        for (var, ok, bad) in [
            ("OTP_CODE_LENGTH", ["4", "10"], ["3", "11"]),
            ("OTP_TTL_SECONDS", ["30", "3600"], ["29", "3601"]),
            ("OTP_MAX_ATTEMPTS", ["1", "10"], ["0", "11"]),
            ("OTP_RESEND_COOLDOWN_SECONDS", ["0", "3600"], ["-1", "3601"]),
        ] {
            for value in ok {
                assert!(config(&[(var, value)]).is_ok(), "{var}={value}");
            }
            for value in bad.into_iter().chain(["abc", "1.5"]) {
                let error = config(&[(var, value)]).unwrap_err().to_string();
                assert!(error.starts_with(var), "{error}");
            }
        }
    }

    #[test]
    fn hash_key_is_validated_and_required_on_demand() {
        let short = config(&[("OTP_HASH_KEY", "abcd")]).unwrap_err().to_string();
        assert!(short.contains("at least 32"), "{short}");
        let mut ok = config(&[("OTP_HASH_KEY", &"11".repeat(32))]).unwrap();
        assert!(ok.require_hash_key().is_ok());
        let missing = config(&[]).unwrap().require_hash_key().unwrap_err();
        assert!(missing.to_string().starts_with("OTP_HASH_KEY is required"));
        assert!(!format!("{ok:?}").contains("1111"));
    }

    #[test]
    fn brand_is_trimmed_and_bounded() {
        assert_eq!(
            config(&[("OTP_BRAND_NAME", " Acme ")])
                .unwrap()
                .brand
                .as_deref(),
            Some("Acme")
        );
        assert!(config(&[("OTP_BRAND_NAME", &"x".repeat(41))]).is_err());
    }
}

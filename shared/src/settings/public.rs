//! The browser flow's settings: the verification token, the optional user directory, the
//! optional CAPTCHA and the origins allowed to call the public routes.

use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, Env, Secret, Setting};
use crate::domain::{Email, UserId};
use crate::token::TokenPolicy;

pub const TOKEN_SIGNING_KEY: &str = "OTP_TOKEN_SIGNING_KEY";
pub const TOKEN_SIGNING_KEY_SECRET_ARN: &str = "OTP_TOKEN_SIGNING_KEY_SECRET_ARN";
pub const TOKEN_ISSUER: &str = "OTP_TOKEN_ISSUER";
pub const TOKEN_AUDIENCE: &str = "OTP_TOKEN_AUDIENCE";
pub const BACKEND_TOKEN_AUDIENCE: &str = "OTP_BACKEND_TOKEN_AUDIENCE";
pub const TOKEN_TTL_SECONDS: Setting = Setting::new("OTP_TOKEN_TTL_SECONDS", 300, 30..=3600);
/// `iss` and `aud` when not configured.
pub const DEFAULT_TOKEN_ISSUER: &str = "otp-service";
pub const DEFAULT_TOKEN_AUDIENCE: &str = "otp-service-clients";
pub const DEFAULT_BACKEND_TOKEN_AUDIENCE: &str = "otp-service-backend";

pub const USER_DIRECTORY: &str = "OTP_USER_DIRECTORY";
pub const UNKNOWN_USER: &str = "OTP_UNKNOWN_USER";

pub const CAPTCHA_PROVIDER: &str = "OTP_CAPTCHA_PROVIDER";
pub const CAPTCHA_SECRET: &str = "OTP_CAPTCHA_SECRET";
pub const CAPTCHA_SECRET_ARN: &str = "OTP_CAPTCHA_SECRET_ARN";
pub const CAPTCHA_VERIFY_URL: &str = "OTP_CAPTCHA_VERIFY_URL";
pub const CAPTCHA_TIMEOUT_MS: Setting = Setting::new("OTP_CAPTCHA_TIMEOUT_MS", 3000, 500..=10_000);

pub const CORS_ORIGINS: &str = "OTP_CORS_ORIGINS";

/// Where the token signing keys come from.
#[derive(Debug, Clone)]
pub enum TokenKeys {
    /// `current[,previous...]` given directly (`OTP_TOKEN_SIGNING_KEY`, or a test).
    Ring(SecretString),
    /// A Secrets Manager secret read once at init: the ring as text, or JSON with `key`.
    Secret(String),
    /// Not configured: a fresh key per process locally; a function that verifies refuses to
    /// start.
    Unset,
}

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub keys: TokenKeys,
    pub policy: TokenPolicy,
}

/// Which addresses have an account, for `/auth/request-otp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectorySettings {
    /// No directory: every address may get a code.
    None,
    /// `list:a@example.com,b@example.com` (local runs and tests): the normalised addresses.
    List(Vec<UserId>),
    /// `dynamodb:TABLE`: a table keyed by `email` (S), the normalised address.
    DynamoDb { table: String },
}

/// What `/auth/request-otp` answers for an address the directory does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownUser {
    /// The same 200 as a real send; nothing is sent or stored.
    Conceal,
    /// The seed service's `404 {"detail": "User not found"}`.
    Reveal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaProvider {
    Turnstile,
    HCaptcha,
    ReCaptcha,
}

impl CaptchaProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Turnstile => "turnstile",
            Self::HCaptcha => "hcaptcha",
            Self::ReCaptcha => "recaptcha",
        }
    }

    /// The provider's documented siteverify endpoint.
    pub fn verify_url(self) -> &'static str {
        match self {
            Self::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            Self::HCaptcha => "https://api.hcaptcha.com/siteverify",
            Self::ReCaptcha => "https://www.google.com/recaptcha/api/siteverify",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CaptchaSettings {
    pub provider: CaptchaProvider,
    /// The provider's secret key, or the Secrets Manager secret holding it (text, or JSON with
    /// `secret`).
    pub secret: Secret,
    pub verify_url: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct PublicSettings {
    pub directory: DirectorySettings,
    pub unknown_user: UnknownUser,
    pub captcha: Option<CaptchaSettings>,
    /// Origins allowed to call the public routes from a browser (the local server answers
    /// CORS itself; in AWS, API Gateway does, from the template's `AllowedOrigins`).
    pub cors_origins: Vec<String>,
}

impl Default for PublicSettings {
    fn default() -> Self {
        Self {
            directory: DirectorySettings::None,
            unknown_user: UnknownUser::Conceal,
            captcha: None,
            cors_origins: Vec::new(),
        }
    }
}

pub(super) fn token(env: &Env<'_>) -> Result<TokenSettings, ConfigError> {
    let keys = match (
        env.get(TOKEN_SIGNING_KEY),
        env.get(TOKEN_SIGNING_KEY_SECRET_ARN),
    ) {
        (Some(ring), _) => TokenKeys::Ring(SecretString::from(ring)),
        (None, Some(arn)) => TokenKeys::Secret(arn),
        (None, None) => TokenKeys::Unset,
    };
    let text = |var: &'static str, default: &str| -> Result<String, ConfigError> {
        let value = env.get(var).unwrap_or_else(|| default.to_owned());
        if value.len() > 256 || value.chars().any(char::is_control) {
            return Err(ConfigError::Invalid {
                var,
                reason: "must be at most 256 characters without control characters".to_owned(),
            });
        }
        Ok(value)
    };
    let audience = text(TOKEN_AUDIENCE, DEFAULT_TOKEN_AUDIENCE)?;
    let backend_audience = text(BACKEND_TOKEN_AUDIENCE, DEFAULT_BACKEND_TOKEN_AUDIENCE)?;
    // The audience is what tells a verifier which route family vouched for the token.
    if audience == backend_audience {
        return Err(ConfigError::Invalid {
            var: BACKEND_TOKEN_AUDIENCE,
            reason: format!(
                "must differ from {TOKEN_AUDIENCE} ({audience:?}): a /verify-code token (any \
                 user id a backend names) must never pass for an /auth/verify-otp one (a proven \
                 address)"
            ),
        });
    }
    Ok(TokenSettings {
        keys,
        policy: TokenPolicy {
            issuer: text(TOKEN_ISSUER, DEFAULT_TOKEN_ISSUER)?,
            audience,
            backend_audience,
            ttl_secs: TOKEN_TTL_SECONDS.read(env)?,
        },
    })
}

pub(super) fn public(env: &Env<'_>) -> Result<PublicSettings, ConfigError> {
    Ok(PublicSettings {
        directory: directory(env)?,
        unknown_user: match env.get(UNKNOWN_USER).as_deref() {
            None | Some("conceal") => UnknownUser::Conceal,
            Some("reveal") => UnknownUser::Reveal,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: UNKNOWN_USER,
                    reason: format!("must be conceal or reveal, got {other:?}"),
                })
            }
        },
        captcha: captcha(env)?,
        cors_origins: cors_origins(env)?,
    })
}

fn directory(env: &Env<'_>) -> Result<DirectorySettings, ConfigError> {
    let Some(raw) = env.get(USER_DIRECTORY) else {
        return Ok(DirectorySettings::None);
    };
    let invalid = |reason: String| ConfigError::Invalid {
        var: USER_DIRECTORY,
        reason,
    };
    match raw.split_once(':') {
        Some(("dynamodb", table)) if !table.trim().is_empty() => Ok(DirectorySettings::DynamoDb {
            table: table.trim().to_owned(),
        }),
        Some(("list", addresses)) => addresses
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                Email::parse(a)
                    .map(|email| UserId::from_email(&email))
                    .map_err(|_| invalid(format!("lists {a:?}, which is not an email address")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(DirectorySettings::List),
        _ => Err(invalid(format!(
            "must be dynamodb:TABLE or list:ADDRESS,ADDRESS,..., got {raw:?}"
        ))),
    }
}

fn captcha(env: &Env<'_>) -> Result<Option<CaptchaSettings>, ConfigError> {
    let Some(name) = env.get(CAPTCHA_PROVIDER) else {
        return Ok(None);
    };
    let provider = match name.as_str() {
        "turnstile" => CaptchaProvider::Turnstile,
        "hcaptcha" => CaptchaProvider::HCaptcha,
        "recaptcha" => CaptchaProvider::ReCaptcha,
        other => {
            return Err(ConfigError::Invalid {
                var: CAPTCHA_PROVIDER,
                reason: format!("must be turnstile, hcaptcha or recaptcha, got {other:?}"),
            })
        }
    };
    let Some(secret) = env.secret(CAPTCHA_SECRET, CAPTCHA_SECRET_ARN) else {
        return Err(ConfigError::Missing {
            var: CAPTCHA_SECRET_ARN,
            hint: "OTP_CAPTCHA_PROVIDER is set, so the provider's secret key is needed: a Secrets \
                   Manager secret holding it (or OTP_CAPTCHA_SECRET for local runs)",
        });
    };
    let verify_url = env
        .get(CAPTCHA_VERIFY_URL)
        .unwrap_or_else(|| provider.verify_url().to_owned());
    if !(verify_url.starts_with("https://") || verify_url.starts_with("http://")) {
        return Err(ConfigError::Invalid {
            var: CAPTCHA_VERIFY_URL,
            reason: format!("must be an http(s) URL, got {verify_url:?}"),
        });
    }
    Ok(Some(CaptchaSettings {
        provider,
        secret,
        verify_url,
        timeout: Duration::from_millis(CAPTCHA_TIMEOUT_MS.read(env)?),
    }))
}

/// `https://app.example.com,http://localhost:3000`: exact origins (scheme, host, optional port),
/// or `*` for any (then no credentials are allowed, which the public routes never use).
fn cors_origins(env: &Env<'_>) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = env.get(CORS_ORIGINS) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let valid = origin == "*"
                || (origin.starts_with("https://") || origin.starts_with("http://"))
                    && !origin.ends_with('/')
                    && origin.split("://").nth(1).is_some_and(|rest| {
                        !rest.is_empty() && !rest.contains(['/', '?', '#', ' '])
                    });
            if valid {
                Ok(origin.to_owned())
            } else {
                Err(ConfigError::Invalid {
                    var: CORS_ORIGINS,
                    reason: format!(
                        "must list origins like https://app.example.com (no path), got \
                         {origin:?}"
                    ),
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn public_of(vars: &[(&str, &str)]) -> Result<PublicSettings, ConfigError> {
        let map = env(vars);
        public(&Env(&|k| map.get(k).cloned()))
    }

    #[test]
    fn the_token_has_defaults_and_bounds() {
        let map = env(&[]);
        let t = token(&Env(&|k| map.get(k).cloned())).unwrap();
        assert!(matches!(t.keys, TokenKeys::Unset));
        assert_eq!(t.policy.issuer, DEFAULT_TOKEN_ISSUER);
        assert_eq!(t.policy.audience, DEFAULT_TOKEN_AUDIENCE);
        assert_eq!(t.policy.backend_audience, DEFAULT_BACKEND_TOKEN_AUDIENCE);
        // The two families' audiences may be chosen, but never the same.
        let map = env(&[("OTP_BACKEND_TOKEN_AUDIENCE", DEFAULT_TOKEN_AUDIENCE)]);
        let same = token(&Env(&|k| map.get(k).cloned()))
            .unwrap_err()
            .to_string();
        assert!(
            same.starts_with("OTP_BACKEND_TOKEN_AUDIENCE must differ"),
            "{same}"
        );
        assert_eq!(t.policy.ttl_secs, 300);
        let map = env(&[
            ("OTP_TOKEN_SIGNING_KEY_SECRET_ARN", "arn:s"),
            ("OTP_TOKEN_AUDIENCE", "acme"),
            ("OTP_TOKEN_TTL_SECONDS", "29"),
        ]);
        let error = token(&Env(&|k| map.get(k).cloned())).unwrap_err();
        assert!(error.to_string().starts_with("OTP_TOKEN_TTL_SECONDS"));
    }

    #[test]
    fn the_directory_is_a_table_or_a_list_of_addresses() {
        assert_eq!(public_of(&[]).unwrap().directory, DirectorySettings::None);
        assert_eq!(
            public_of(&[("OTP_USER_DIRECTORY", "dynamodb:users")])
                .unwrap()
                .directory,
            DirectorySettings::DynamoDb {
                table: "users".to_owned()
            }
        );
        let DirectorySettings::List(list) =
            public_of(&[("OTP_USER_DIRECTORY", "list:Bob@Example.com, a@example.com")])
                .unwrap()
                .directory
        else {
            panic!("a list")
        };
        assert_eq!(list[0].as_str(), "bob@example.com");
        for bad in ["users", "dynamodb:", "list:nope", "ldap:x"] {
            assert!(public_of(&[("OTP_USER_DIRECTORY", bad)]).is_err(), "{bad}");
        }
        assert_eq!(
            public_of(&[("OTP_UNKNOWN_USER", "reveal")])
                .unwrap()
                .unknown_user,
            UnknownUser::Reveal
        );
        assert!(public_of(&[("OTP_UNKNOWN_USER", "hide")]).is_err());
    }

    #[test]
    fn a_captcha_needs_a_known_provider_and_a_secret() {
        assert!(public_of(&[]).unwrap().captcha.is_none());
        let missing = public_of(&[("OTP_CAPTCHA_PROVIDER", "turnstile")])
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with("OTP_CAPTCHA_SECRET_ARN is required"));
        let c = public_of(&[
            ("OTP_CAPTCHA_PROVIDER", "hcaptcha"),
            ("OTP_CAPTCHA_SECRET", "s"),
        ])
        .unwrap()
        .captcha
        .unwrap();
        assert_eq!(c.verify_url, "https://api.hcaptcha.com/siteverify");
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert!(public_of(&[
            ("OTP_CAPTCHA_PROVIDER", "recaptcha"),
            ("OTP_CAPTCHA_SECRET", "s"),
            ("OTP_CAPTCHA_VERIFY_URL", "ftp://x"),
        ])
        .is_err());
        assert!(public_of(&[
            ("OTP_CAPTCHA_PROVIDER", "friendly"),
            ("OTP_CAPTCHA_SECRET", "s")
        ])
        .is_err());
    }

    #[test]
    fn cors_origins_are_exact_origins() {
        let o = public_of(&[(
            "OTP_CORS_ORIGINS",
            "https://app.example.com, http://localhost:3000",
        )])
        .unwrap()
        .cors_origins;
        assert_eq!(o, ["https://app.example.com", "http://localhost:3000"]);
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://a.com/x",
        ] {
            assert!(public_of(&[("OTP_CORS_ORIGINS", bad)]).is_err(), "{bad}");
        }
    }
}

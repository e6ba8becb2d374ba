//! Every setting of the service, parsed once at start-up from the environment into one typed
//! tree and checked against its documented range, so a typo fails the start instead of a user's
//! request. Nothing else reads the environment; each part of the service takes its own branch.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use crate::callers::ApiKeys;
use crate::domain::{Email, PhoneE164};
use crate::keys::{HashKeyError, KeyRing};
use crate::templates::SmsAutofill;

mod autofill;
mod channels;
mod events;
mod fraud;
mod hook;
mod limits;
mod public;
pub mod reference;

pub use autofill::{ANDROID_APP_HASH, WEBOTP_DOMAIN};
pub use channels::{
    AwsSmsSettings, PhoneChannels, WhatsappSettings, AWS_SMS_CONFIGURATION_SET,
    AWS_SMS_ORIGINATION_IDENTITY, AWS_SMS_PROTECT_CONFIGURATION_ID, SMS_PROVIDER,
    TWILIO_VOICE_FROM, TWILIO_WHATSAPP_CONTENT_SID, TWILIO_WHATSAPP_FROM,
};
pub use events::{
    check_secret as check_webhook_secret, WebhookSettings, EVENTS_QUEUE_URL, EVENT_BUS,
    WEBHOOK_SECRET, WEBHOOK_SECRET_ARN, WEBHOOK_URL,
};
pub use fraud::{FRAUD_GUARD, FRAUD_GUARD_HOLD_SECONDS, FRAUD_GUARD_SAFE_LIST};
pub use hook::{
    SendHookSettings, SEND_HOOK_CHANNELS, SEND_HOOK_SECRET, SEND_HOOK_SECRET_ARN,
    SEND_HOOK_TIMEOUT_MS, SEND_HOOK_URL,
};
pub use limits::{
    SendLimits, CLIENT_IP_PER_HOUR, DESTINATION_PER_10_MINUTES, DESTINATION_PER_DAY,
    SMS_ALLOWED_COUNTRIES, SMS_COUNTRY_PER_DAY, SMS_DAILY_BUDGET, SMS_NUMBER_TYPES, USER_PER_HOUR,
};
pub use public::*;

/// A numeric variable with its default and allowed range.
pub struct Setting {
    pub var: &'static str,
    pub default: u64,
    pub range: RangeInclusive<u64>,
}

impl Setting {
    pub(crate) const fn new(var: &'static str, default: u64, range: RangeInclusive<u64>) -> Self {
        Self {
            var,
            default,
            range,
        }
    }

    pub(crate) fn read(&self, env: &Env<'_>) -> Result<u64, ConfigError> {
        let Some(raw) = env.get(self.var) else {
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
        let value = u64::from_str(&raw).map_err(|_| invalid())?;
        if !self.range.contains(&value) {
            return Err(invalid());
        }
        Ok(value)
    }
}

pub const CODE_LENGTH: Setting = Setting::new("OTP_CODE_LENGTH", 6, 4..=10);
pub const TTL_SECONDS: Setting = Setting::new("OTP_TTL_SECONDS", 300, 30..=3600);
pub const MAX_ATTEMPTS: Setting = Setting::new("OTP_MAX_ATTEMPTS", 3, 1..=10);
pub const RESEND_COOLDOWN_SECONDS: Setting =
    Setting::new("OTP_RESEND_COOLDOWN_SECONDS", 30, 0..=3600);
pub const LOCKOUT_FAILURES: Setting = Setting::new("OTP_LOCKOUT_FAILURES", 10, 3..=100);
pub const LOCKOUT_CEILING: Setting = Setting::new("OTP_LOCKOUT_CEILING", 100, 3..=100);
pub const LOCKOUT_WINDOW_SECONDS: Setting =
    Setting::new("OTP_LOCKOUT_WINDOW_SECONDS", 3600, 60..=86_400);
pub const TWILIO_TIMEOUT_MS: Setting = Setting::new("TWILIO_TIMEOUT_MS", 5000, 500..=10_000);

pub const CALLER_AUTH: &str = "OTP_CALLER_AUTH";
pub const API_KEYS: &str = "OTP_API_KEYS";
pub const API_KEYS_SECRET_ARN: &str = "OTP_API_KEYS_SECRET_ARN";
pub const HASH_KEY: &str = "OTP_HASH_KEY";
pub const HASH_KEY_SECRET_ARN: &str = "OTP_HASH_KEY_SECRET_ARN";
pub const PSEUDONYM_KEY: &str = "OTP_PSEUDONYM_KEY";
pub const BRAND_NAME: &str = "OTP_BRAND_NAME";
pub const BRAND_MAX_CHARS: usize = 40;
pub const TABLE_NAME: &str = "OTP_TABLE_NAME";
pub const TWILIO_ACCOUNT_SID: &str = "TWILIO_ACCOUNT_SID";
pub const TWILIO_AUTH_TOKEN: &str = "TWILIO_AUTH_TOKEN";
pub const TWILIO_AUTH_TOKEN_SECRET_ARN: &str = "TWILIO_AUTH_TOKEN_SECRET_ARN";
pub const TWILIO_PHONE_NUMBER: &str = "TWILIO_PHONE_NUMBER";
pub const TWILIO_MESSAGING_SERVICE_SID: &str = "TWILIO_MESSAGING_SERVICE_SID";
pub const TWILIO_API_BASE_URL: &str = "TWILIO_API_BASE_URL";
pub const TWILIO_DEFAULT_API_BASE_URL: &str = "https://api.twilio.com";
pub const PUBLIC_BASE_URL: &str = "OTP_PUBLIC_BASE_URL";
pub const EMAIL_FROM: &str = "EMAIL_FROM";
pub const SES_CONFIGURATION_SET: &str = "SES_CONFIGURATION_SET";
pub const METRICS: &str = "OTP_METRICS";
pub const AWS_TRUST_ROOTS: &str = "OTP_AWS_TRUST_ROOTS";
pub const METRICS_NAMESPACE: &str = "OTP_METRICS_NAMESPACE";
/// The namespace when `OTP_METRICS_NAMESPACE` is not set.
pub const DEFAULT_METRICS_NAMESPACE: &str = "OtpService";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is required: {hint}")]
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    #[error("{var} {reason}")]
    Invalid { var: &'static str, reason: String },
    /// `OTP_...` variables that nothing reads: misspelt, or from another version.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unknown(Vec<reference::UnknownVariable>),
}

/// Where the service runs; decides what may be left unconfigured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// The local API server: console delivery, an embedded store and a per-process key are fine.
    Local,
    /// A deployed function: every secret and the table must be configured; no code is printed.
    Lambda,
}

/// The rules every code follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub code_length: usize,
    pub ttl_secs: u64,
    pub max_attempts: u32,
    pub cooldown_secs: u64,
    /// Wrong guesses from one client network, across codes, that lock a user (per record space
    /// and purpose) for that network until the window ends...
    pub lockout_failures: u32,
    /// ...a window being this many seconds (fixed windows, aligned to the epoch).
    pub lockout_window_secs: u64,
    /// Consecutive wrong guesses from all networks together that lock the user for everyone
    /// (see [`crate::store::Lockout`]); never below `lockout_failures`.
    pub lockout_ceiling: u32,
}

impl Policy {
    /// How long a record must outlive its last write: the code's lifetime, its cooldown and
    /// the lockout need it. The lockout's counts are kept two windows after the latest guess,
    /// so that an account past its ceiling still takes only one guess per window (a guess a
    /// window after the latest keeps them alive); after two quiet windows they are forgotten.
    /// The store's TTL deletion may remove the record later than that, never earlier.
    pub fn keep_record_secs(&self) -> u64 {
        self.ttl_secs
            .max(self.cooldown_secs)
            .max(2 * self.lockout_window_secs)
    }

    /// Weaker-than-recommended choices, each with the standard it weakens, for the start-up
    /// warnings.
    pub fn weaknesses(&self) -> Vec<String> {
        let mut found = Vec::new();
        if self.code_length < 6 {
            found.push(format!(
                "OTP_CODE_LENGTH={} is below 6 digits: NIST SP 800-63B \u{a7}5.1.3 and OWASP ASVS \
                 2.7.6 ask for at least 20 bits of entropy (6 random digits)",
                self.code_length
            ));
        }
        if self.ttl_secs > 600 {
            found.push(format!(
                "OTP_TTL_SECONDS={} is over 600: OWASP ASVS 2.7.2 and NIST SP 800-63B \u{a7}5.1.3 \
                 expect out-of-band codes to expire within 10 minutes",
                self.ttl_secs
            ));
        }
        found
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            code_length: CODE_LENGTH.default as usize,
            ttl_secs: TTL_SECONDS.default,
            max_attempts: MAX_ATTEMPTS.default as u32,
            cooldown_secs: RESEND_COOLDOWN_SECONDS.default,
            lockout_failures: LOCKOUT_FAILURES.default as u32,
            lockout_window_secs: LOCKOUT_WINDOW_SECONDS.default,
            lockout_ceiling: LOCKOUT_CEILING.default as u32,
        }
    }
}

/// Where the code keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Given directly (`OTP_HASH_KEY`, or a test).
    Ring(KeyRing),
    /// A Secrets Manager secret read once at init, holding the ring text (or JSON with `key`,
    /// and optionally `pseudonym_key`). `pseudonym` is `OTP_PSEUDONYM_KEY`, if set.
    Secret {
        arn: String,
        pseudonym: Option<String>,
    },
    /// A fresh random key for this process (local runs only).
    Random,
}

/// How the backend routes authenticate their caller (`OTP_CALLER_AUTH`).
#[derive(Debug, Clone)]
pub enum CallerAuth {
    /// `none`: open to anyone. Never the default of a function.
    Open,
    /// `iam`: API Gateway's `AWS_IAM` authorizer (functions only).
    Iam,
    /// `api_key` with `OTP_API_KEYS`.
    ApiKeys(ApiKeys),
    /// `api_key` with `OTP_API_KEYS_SECRET_ARN`, read once at init.
    ApiKeysSecret(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    Memory,
    DynamoDb { table: String },
}

/// Who a Twilio message comes from: a number of ours, or a Messaging Service (which picks one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioFrom {
    Number(String),
    MessagingService(String),
}

#[derive(Debug, Clone)]
pub enum Secret {
    Value(SecretString),
    /// A Secrets Manager secret, read once at init.
    Arn(String),
}

#[derive(Debug, Clone)]
pub struct TwilioSettings {
    pub api_base_url: String,
    pub account_sid: String,
    pub auth_token: Secret,
    /// Who SMS come from; `None` when SMS go through AWS End User Messaging
    /// (`OTP_SMS_PROVIDER=aws`) and the account serves only WhatsApp and calls.
    pub from: Option<TwilioFrom>,
    pub connect_timeout: Duration,
    /// Whole request, connect included; well under the function timeout.
    pub timeout: Duration,
    /// WhatsApp and voice, when configured.
    pub channels: PhoneChannels,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesSettings {
    /// A verified identity: `address` or `Name <address>`.
    pub from: String,
    pub configuration_set: Option<String>,
}

/// Who delivers each channel; `None` means the runtime's fallback (console locally, nothing in
/// a function).
#[derive(Debug, Clone, Default)]
pub struct DeliverySettings {
    /// The Twilio account: SMS (unless `aws_sms` is set), WhatsApp and voice.
    pub sms: Option<TwilioSettings>,
    /// SMS through AWS End User Messaging instead of Twilio (`OTP_SMS_PROVIDER=aws`).
    pub aws_sms: Option<AwsSmsSettings>,
    pub email: Option<SesSettings>,
    /// Why a function's phone channels are off: their settings were refused. A function keeps
    /// serving email rather than failing its init over an SMS provider's settings; the local
    /// server refuses to start instead, where a person reads the message at once.
    pub phone_problem: Option<String>,
    /// The URL the internet reaches this API at (no trailing `/`), for delivery receipts.
    pub public_base_url: Option<String>,
    /// The team's own sender, for the channels it takes.
    pub send_hook: Option<SendHookSettings>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub runtime: Runtime,
    pub policy: Policy,
    pub limits: SendLimits,
    /// The fraud guard: its mode, safe list and hold.
    pub fraud: crate::fraud::FraudSettings,
    pub callers: CallerAuth,
    pub brand: Option<String>,
    pub keys: KeySource,
    pub store: StoreSettings,
    pub delivery: DeliverySettings,
    pub metrics: MetricsSettings,
    /// The roots the AWS clients trust.
    pub aws_roots: crate::tls::AwsRoots,
    /// The verification token's keys and claims.
    pub token: TokenSettings,
    /// The browser flow: user directory, CAPTCHA, CORS.
    pub public: PublicSettings,
    /// The SMS lines that let phones fill the code in.
    pub autofill: SmsAutofill,
    /// Where events go (`OTP_WEBHOOK_URL`), if anywhere.
    pub webhook: Option<WebhookSettings>,
    /// `TWILIO_`/`EMAIL_`/`SES_` variables that nothing reads, for a start-up warning (other
    /// tools share those prefixes, so they do not stop the start).
    pub strays: Vec<reference::UnknownVariable>,
}

/// Whether figures go out as EMF records (`OTP_METRICS=emf`, a function's default) or nowhere
/// (`off`, a local run's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsSettings {
    Off,
    Emf { namespace: String },
}

/// The environment as a lookup; blank values count as unset, values are trimmed.
pub struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    pub(crate) fn get(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A secret given as its value (`value_var`, for local runs) or as the ARN of the Secrets
    /// Manager secret holding it (`arn_var`); the value wins when both are set.
    pub(crate) fn secret(&self, value_var: &str, arn_var: &str) -> Option<Secret> {
        match (self.get(value_var), self.get(arn_var)) {
            (Some(value), _) => Some(Secret::Value(SecretString::from(value))),
            (None, arn) => arn.map(Secret::Arn),
        }
    }
}

impl Settings {
    /// The process environment's settings. Variables of ours that nothing reads are refused
    /// (`OTP_...`) or kept for a warning (`TWILIO_`, `EMAIL_`, `SES_`), each with the nearest
    /// known name.
    pub fn from_env(runtime: Runtime) -> Result<Self, ConfigError> {
        let names: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect();
        let (fatal, strays): (Vec<_>, Vec<_>) =
            reference::unknown_variables(names.iter().map(String::as_str))
                .into_iter()
                .partition(|unknown| unknown.fatal);
        if !fatal.is_empty() {
            return Err(ConfigError::Unknown(fatal));
        }
        let mut settings = Self::from_lookup(runtime, &|var| std::env::var(var).ok())?;
        settings.strays = strays;
        Ok(settings)
    }

    pub fn from_lookup(
        runtime: Runtime,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let settings = Self {
            runtime,
            policy: Policy {
                code_length: CODE_LENGTH.read(&env)? as usize,
                ttl_secs: TTL_SECONDS.read(&env)?,
                max_attempts: MAX_ATTEMPTS.read(&env)? as u32,
                cooldown_secs: RESEND_COOLDOWN_SECONDS.read(&env)?,
                lockout_failures: LOCKOUT_FAILURES.read(&env)? as u32,
                lockout_window_secs: LOCKOUT_WINDOW_SECONDS.read(&env)?,
                lockout_ceiling: lockout_ceiling(&env)?,
            },
            // Only the send routes are limited (and the limits name countries by their metadata).
            limits: if cfg!(feature = "sending") {
                SendLimits::from_env(&env)?
            } else {
                SendLimits::default()
            },
            fraud: fraud::fraud(&env)?,
            callers: caller_auth(runtime, &env)?,
            brand: brand(&env)?,
            keys: keys(runtime, &env)?,
            store: store(runtime, &env)?,
            // A build without the send routes delivers nothing and reads none of this.
            delivery: if cfg!(not(feature = "sending")) {
                DeliverySettings::default()
            } else {
                let phone =
                    twilio(&env).and_then(|sms| Ok((channels::aws_sms(&env, sms.is_some())?, sms)));
                let (aws_sms, sms, phone_problem) = match phone {
                    Ok((aws_sms, sms)) => (aws_sms, sms, None),
                    Err(error) if runtime == Runtime::Lambda => {
                        (None, None, Some(error.to_string()))
                    }
                    Err(error) => return Err(error),
                };
                DeliverySettings {
                    aws_sms,
                    sms,
                    email: ses(&env)?,
                    phone_problem,
                    public_base_url: public_base_url(&env)?,
                    send_hook: hook::send_hook(&env)?,
                }
            },
            metrics: metrics(runtime, &env)?,
            aws_roots: aws_roots(runtime, &env)?,
            token: public::token(&env)?,
            public: public::public(&env)?,
            autofill: autofill::autofill(&env)?,
            webhook: events::webhook(&env)?,
            strays: Vec::new(),
        };
        // Autofill needs the whole message in one segment (Android's SMS Retriever reads at most
        // 140 bytes): a configuration that cannot do that does not start.
        if cfg!(feature = "sending") && settings.autofill != SmsAutofill::default() {
            settings.sms_length_check()?;
        }
        Ok(settings)
    }

    /// Whether the longest SMS of this configuration fits one segment, or why not.
    pub fn sms_length_check(&self) -> Result<(), ConfigError> {
        autofill::check_one_segment(self.brand.as_deref(), &self.policy, &self.autofill)
    }

    /// Whether building the service needs the AWS SDK configuration (so a purely local run
    /// never loads it).
    pub fn needs_aws(&self) -> bool {
        matches!(self.keys, KeySource::Secret { .. })
            || matches!(self.callers, CallerAuth::ApiKeysSecret(_))
            || matches!(self.token.keys, TokenKeys::Secret(_))
            || matches!(self.public.directory, DirectorySettings::DynamoDb { .. })
            || self
                .public
                .captcha
                .as_ref()
                .is_some_and(|c| matches!(c.secret, Secret::Arn(_)))
            || matches!(self.store, StoreSettings::DynamoDb { .. })
            || self.delivery.email.is_some()
            || self.delivery.aws_sms.is_some()
            || self
                .delivery
                .sms
                .as_ref()
                .is_some_and(|t| matches!(t.auth_token, Secret::Arn(_)))
            || self
                .delivery
                .send_hook
                .as_ref()
                .is_some_and(|h| matches!(h.secret, Secret::Arn(_)))
    }
}

/// `OTP_LOCKOUT_CEILING`: the account-wide count must leave room for one network's.
fn lockout_ceiling(env: &Env<'_>) -> Result<u32, ConfigError> {
    let ceiling = LOCKOUT_CEILING.read(env)?;
    let per_network = LOCKOUT_FAILURES.read(env)?;
    if ceiling < per_network {
        return Err(ConfigError::Invalid {
            var: LOCKOUT_CEILING.var,
            reason: format!(
                "must be at least OTP_LOCKOUT_FAILURES ({per_network}): it counts every \
                 network's wrong guesses together, got {ceiling}"
            ),
        });
    }
    Ok(ceiling as u32)
}

/// `OTP_CALLER_AUTH`: a function defaults to `api_key`, and so does a local run that is given
/// keys; only a local run without keys defaults to `none`, so a newcomer's first curl works.
fn caller_auth(runtime: Runtime, env: &Env<'_>) -> Result<CallerAuth, ConfigError> {
    let keys = env.get(API_KEYS);
    let secret = env.get(API_KEYS_SECRET_ARN);
    let mode = env.get(CALLER_AUTH).unwrap_or_else(|| {
        let keyed = runtime == Runtime::Lambda || keys.is_some() || secret.is_some();
        if keyed { "api_key" } else { "none" }.to_owned()
    });
    match mode.as_str() {
        "none" => Ok(CallerAuth::Open),
        "iam" if runtime == Runtime::Local => Err(ConfigError::Invalid {
            var: CALLER_AUTH,
            reason: "is iam, which API Gateway checks; the local server cannot. Use api_key or \
                     none locally"
                .to_owned(),
        }),
        "iam" => Ok(CallerAuth::Iam),
        "api_key" => match (keys, secret) {
            (Some(keys), _) => ApiKeys::parse(&SecretString::from(keys))
                .map(CallerAuth::ApiKeys)
                .map_err(|e| ConfigError::Invalid {
                    var: API_KEYS,
                    reason: format!(
                        "is not a valid key list: {e} (generate a key with `otp-service \
                         new-api-key`)"
                    ),
                }),
            (None, Some(arn)) => Ok(CallerAuth::ApiKeysSecret(arn)),
            (None, None) => Err(ConfigError::Missing {
                var: API_KEYS_SECRET_ARN,
                hint: "the backend routes need API keys: a Secrets Manager secret holding them \
                       (template.yaml generates one), or OTP_API_KEYS=name=key,... for local \
                       runs; or set OTP_CALLER_AUTH to iam, or to none to leave them open",
            }),
        },
        other => Err(ConfigError::Invalid {
            var: CALLER_AUTH,
            reason: format!("must be api_key, iam or none, got {other:?}"),
        }),
    }
}

/// `OTP_AWS_TRUST_ROOTS`: `amazon`, `system` or the absolute path of a PEM file (read and
/// checked now, so that a bad one stops the start). A function trusts Amazon's roots by
/// default, except in the China regions (a separate partition, run by local operators, whose
/// endpoints' certificate authority this project has not checked); a local run trusts the
/// system's (a developer's proxy or emulator).
fn aws_roots(runtime: Runtime, env: &Env<'_>) -> Result<crate::tls::AwsRoots, ConfigError> {
    use crate::tls::AwsRoots;
    let Some(value) = env.get(AWS_TRUST_ROOTS) else {
        let china = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|var| env.get(var))
            .is_some_and(|region| region.starts_with("cn-"));
        return Ok(match runtime {
            Runtime::Lambda if !china => AwsRoots::Amazon,
            _ => AwsRoots::System,
        });
    };
    match value.as_str() {
        "amazon" => Ok(AwsRoots::Amazon),
        "system" => Ok(AwsRoots::System),
        path if path.starts_with('/') => {
            AwsRoots::from_file(path).map_err(|problem| ConfigError::Invalid {
                var: AWS_TRUST_ROOTS,
                reason: format!("names {path:?}, which {problem}"),
            })
        }
        other => Err(ConfigError::Invalid {
            var: AWS_TRUST_ROOTS,
            reason: format!(
                "must be amazon, system or the absolute path of a PEM file, got {other:?}"
            ),
        }),
    }
}

/// `OTP_METRICS` (`emf` or `off`) and the CloudWatch namespace, checked as CloudWatch checks it:
/// 1–255 of letters, digits and `.-_/#: `, not starting with `AWS/` (AWS's own namespaces).
fn metrics(runtime: Runtime, env: &Env<'_>) -> Result<MetricsSettings, ConfigError> {
    let default = match runtime {
        Runtime::Lambda => "emf",
        Runtime::Local => "off",
    };
    let mode = env.get(METRICS).unwrap_or_else(|| default.to_owned());
    match mode.as_str() {
        "off" => Ok(MetricsSettings::Off),
        "emf" => {
            let namespace = env
                .get(METRICS_NAMESPACE)
                .unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.to_owned());
            let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
            if namespace.len() > 255
                || !namespace.chars().all(allowed)
                || namespace.starts_with("AWS/")
            {
                return Err(ConfigError::Invalid {
                    var: METRICS_NAMESPACE,
                    reason: format!(
                        "must be 1 to 255 letters, digits or . - _ / # : and spaces, not \
                         starting with AWS/, got {namespace:?}"
                    ),
                });
            }
            Ok(MetricsSettings::Emf { namespace })
        }
        other => Err(ConfigError::Invalid {
            var: METRICS,
            reason: format!("must be emf or off, got {other:?}"),
        }),
    }
}

fn brand(env: &Env<'_>) -> Result<Option<String>, ConfigError> {
    let brand = env.get(BRAND_NAME);
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
    Ok(brand)
}

pub const KEY_HELP: &str =
    "generate one with: python3 -c 'import secrets; print(secrets.token_hex(32))'";

/// The ring from `OTP_HASH_KEY` text, or the start-up error naming `var`.
pub fn key_ring(
    var: &'static str,
    ring: &str,
    pseudonym: Option<&str>,
) -> Result<KeyRing, ConfigError> {
    KeyRing::parse(ring, pseudonym).map_err(|e: HashKeyError| ConfigError::Invalid {
        var,
        reason: format!("{e} ({KEY_HELP})"),
    })
}

fn keys(runtime: Runtime, env: &Env<'_>) -> Result<KeySource, ConfigError> {
    let pseudonym = env.get(PSEUDONYM_KEY);
    if let Some(ring) = env.get(HASH_KEY) {
        return key_ring(HASH_KEY, &ring, pseudonym.as_deref()).map(KeySource::Ring);
    }
    if let Some(arn) = env.get(HASH_KEY_SECRET_ARN) {
        return Ok(KeySource::Secret { arn, pseudonym });
    }
    match runtime {
        Runtime::Local => Ok(KeySource::Random),
        Runtime::Lambda => Err(ConfigError::Missing {
            var: HASH_KEY,
            hint: "a secret of at least 32 bytes, hex or base64 (or OTP_HASH_KEY_SECRET_ARN, a \
                   Secrets Manager secret holding one); without it codes could not be checked \
                   across instances or restarts",
        }),
    }
}

fn store(runtime: Runtime, env: &Env<'_>) -> Result<StoreSettings, ConfigError> {
    match (env.get(TABLE_NAME), runtime) {
        (Some(table), _) => Ok(StoreSettings::DynamoDb { table }),
        (None, Runtime::Local) => Ok(StoreSettings::Memory),
        (None, Runtime::Lambda) => Err(ConfigError::Missing {
            var: TABLE_NAME,
            hint: "the DynamoDB table that holds the codes (template.yaml sets it)",
        }),
    }
}

fn twilio(env: &Env<'_>) -> Result<Option<TwilioSettings>, ConfigError> {
    let Some(account_sid) = env.get(TWILIO_ACCOUNT_SID) else {
        // WhatsApp or voice without the account is a mistake to report, not to ignore.
        channels::phone_channels(env, false)?;
        return Ok(None);
    };
    let Some(auth_token) = env.secret(TWILIO_AUTH_TOKEN, TWILIO_AUTH_TOKEN_SECRET_ARN) else {
        return Err(ConfigError::Missing {
            var: TWILIO_AUTH_TOKEN_SECRET_ARN,
            hint: "TWILIO_ACCOUNT_SID is set, so the auth token is needed: the ARN of a Secrets \
                   Manager secret holding it (or TWILIO_AUTH_TOKEN for local runs)",
        });
    };
    let from = match (
        env.get(TWILIO_MESSAGING_SERVICE_SID),
        env.get(TWILIO_PHONE_NUMBER),
    ) {
        (Some(sid), _) => Some(TwilioFrom::MessagingService(sid)),
        (None, Some(number)) => {
            let number = PhoneE164::parse(&number).map_err(|_| ConfigError::Invalid {
                var: TWILIO_PHONE_NUMBER,
                reason: "must be a phone number in E.164 format, e.g. +14155552671".to_owned(),
            })?;
            Some(TwilioFrom::Number(number.as_str().to_owned()))
        }
        // SMS through AWS: the account is there for WhatsApp and calls, which name their own
        // senders.
        (None, None) if env.get(channels::SMS_PROVIDER).as_deref() == Some("aws") => None,
        (None, None) => {
            return Err(ConfigError::Missing {
                var: TWILIO_PHONE_NUMBER,
                hint: "TWILIO_ACCOUNT_SID is set, so an SMS sender is needed: \
                       TWILIO_PHONE_NUMBER or TWILIO_MESSAGING_SERVICE_SID (or \
                       OTP_SMS_PROVIDER=aws)",
            })
        }
    };
    let timeout = Duration::from_millis(TWILIO_TIMEOUT_MS.read(env)?);
    Ok(Some(TwilioSettings {
        api_base_url: env
            .get(TWILIO_API_BASE_URL)
            .unwrap_or_else(|| TWILIO_DEFAULT_API_BASE_URL.to_owned()),
        account_sid,
        auth_token,
        from,
        connect_timeout: timeout.min(Duration::from_secs(2)),
        timeout,
        channels: channels::phone_channels(env, true)?,
    }))
}

/// The URL of `var`: `https://`, or `http://` to this machine (local runs), with a host.
/// `example` shows the shape; `why` (if any) follows the refusal.
pub(crate) fn https_url(
    var: &'static str,
    url: &str,
    example: &str,
    why: &str,
) -> Result<axum::http::Uri, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { var, reason };
    let uri: axum::http::Uri = url
        .parse()
        .map_err(|_| invalid(format!("must be a URL, e.g. {example}")))?;
    let host = uri.host().unwrap_or_default();
    let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(uri),
        Some("http") if local => Ok(uri),
        _ => Err(invalid(format!(
            "must start with https:// (http:// only to localhost), e.g. {example}{why}"
        ))),
    }
}

/// `OTP_PUBLIC_BASE_URL`: an `https://` URL (or `http://` on this machine, for local runs),
/// without query or fragment; a trailing `/` is dropped.
fn public_base_url(env: &Env<'_>) -> Result<Option<String>, ConfigError> {
    let Some(raw) = env.get(PUBLIC_BASE_URL) else {
        return Ok(None);
    };
    let url = raw.trim_end_matches('/');
    let uri = https_url(PUBLIC_BASE_URL, url, "https://otp.example.com", "")?;
    if uri.query().is_some() || url.contains('#') {
        return Err(ConfigError::Invalid {
            var: PUBLIC_BASE_URL,
            reason: "must be a scheme, a host and at most a path, e.g. \
                     https://otp.example.com/prod"
                .to_owned(),
        });
    }
    Ok(Some(url.to_owned()))
}

fn ses(env: &Env<'_>) -> Result<Option<SesSettings>, ConfigError> {
    let Some(from) = env.get(EMAIL_FROM) else {
        return Ok(None);
    };
    // Either a plain address or `Display Name <address>`; SES takes both.
    let address = match (from.rfind('<'), from.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => from.as_str(),
    };
    Email::parse(address).map_err(|_| ConfigError::Invalid {
        var: EMAIL_FROM,
        reason: "must be an email address, or `Name <address>`, of a verified SES identity"
            .to_owned(),
    })?;
    Ok(Some(SesSettings {
        from,
        configuration_set: env.get(SES_CONFIGURATION_SET),
    }))
}

impl fmt::Display for StoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSettings::Memory => f.write_str("in-memory (embedded)"),
            StoreSettings::DynamoDb { table } => write!(f, "DynamoDB table {table}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(runtime: Runtime, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(runtime, &|k| map.get(k).cloned())
    }

    fn local(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        settings(Runtime::Local, vars)
    }

    #[test]
    fn defaults_apply_when_unset_or_blank() {
        let s = local(&[("OTP_TTL_SECONDS", " ")]).unwrap();
        assert_eq!(s.policy, Policy::default());
        assert_eq!(
            (
                s.policy.code_length,
                s.policy.ttl_secs,
                s.policy.max_attempts,
                s.policy.cooldown_secs
            ),
            (6, 300, 3, 30)
        );
        assert_eq!(
            (
                s.policy.lockout_failures,
                s.policy.lockout_window_secs,
                s.policy.lockout_ceiling
            ),
            (10, 3600, 100)
        );
        assert!(s.policy.weaknesses().is_empty());
        assert!(matches!(s.keys, KeySource::Random));
        assert_eq!(s.store, StoreSettings::Memory);
        assert!(s.brand.is_none() && s.delivery.sms.is_none() && s.delivery.email.is_none());
        assert!(!s.needs_aws());
    }

    #[test]
    fn every_bound_is_enforced() {
        for (var, ok, bad) in [
            ("OTP_CODE_LENGTH", ["4", "10"], ["3", "11"]),
            ("OTP_TTL_SECONDS", ["30", "3600"], ["29", "3601"]),
            ("OTP_MAX_ATTEMPTS", ["1", "10"], ["0", "11"]),
            ("OTP_RESEND_COOLDOWN_SECONDS", ["0", "3600"], ["-1", "3601"]),
            ("OTP_LOCKOUT_FAILURES", ["3", "100"], ["2", "101"]),
            ("OTP_LOCKOUT_CEILING", ["10", "100"], ["2", "101"]),
            (
                "OTP_LOCKOUT_WINDOW_SECONDS",
                ["60", "86400"],
                ["59", "86401"],
            ),
        ] {
            for value in ok {
                assert!(local(&[(var, value)]).is_ok(), "{var}={value}");
            }
            for value in bad.into_iter().chain(["abc", "1.5"]) {
                let error = local(&[(var, value)]).unwrap_err().to_string();
                assert!(error.starts_with(var), "{error}");
            }
        }
    }

    #[test]
    fn the_lockout_ceiling_is_never_below_one_networks_threshold() {
        let s = local(&[
            ("OTP_LOCKOUT_FAILURES", "20"),
            ("OTP_LOCKOUT_CEILING", "20"),
        ])
        .unwrap();
        assert_eq!(
            (s.policy.lockout_failures, s.policy.lockout_ceiling),
            (20, 20)
        );
        let error = local(&[
            ("OTP_LOCKOUT_FAILURES", "20"),
            ("OTP_LOCKOUT_CEILING", "19"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("OTP_LOCKOUT_CEILING") && error.contains("OTP_LOCKOUT_FAILURES (20)"),
            "{error}"
        );
        // NIST SP 800-63B 5.2.2: never more than 100 consecutive failures.
        assert!(local(&[("OTP_LOCKOUT_CEILING", "101")]).is_err());
    }

    #[test]
    fn weak_policies_are_named_with_the_standard_they_weaken() {
        let s = local(&[("OTP_CODE_LENGTH", "4"), ("OTP_TTL_SECONDS", "900")]).unwrap();
        let found = s.policy.weaknesses();
        assert_eq!(found.len(), 2);
        assert!(found[0].contains("ASVS 2.7.6"), "{found:?}");
        assert!(found[1].contains("ASVS 2.7.2"), "{found:?}");
        // A cooldown longer than the code's life is kept as set, and the record lives for it.
        let s = local(&[
            ("OTP_RESEND_COOLDOWN_SECONDS", "1500"),
            ("OTP_LOCKOUT_WINDOW_SECONDS", "600"),
        ])
        .unwrap();
        assert_eq!(s.policy.cooldown_secs, 1500);
        assert_eq!(s.policy.keep_record_secs(), 1500);
    }

    #[test]
    fn caller_auth_is_never_open_in_a_function_unless_said() {
        let key = "k".repeat(32);
        let keys = format!("backend={key}");
        let base = [
            ("OTP_HASH_KEY", "11".repeat(32)),
            ("OTP_TABLE_NAME", "t".to_owned()),
        ];
        let lambda = |extra: &[(&str, &str)]| {
            let mut vars: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
            vars.extend_from_slice(extra);
            settings(Runtime::Lambda, &vars)
        };
        let missing = lambda(&[]).unwrap_err().to_string();
        assert!(
            missing.starts_with("OTP_API_KEYS_SECRET_ARN is required"),
            "{missing}"
        );
        assert!(matches!(
            lambda(&[("OTP_API_KEYS_SECRET_ARN", "arn:x")])
                .unwrap()
                .callers,
            CallerAuth::ApiKeysSecret(_)
        ));
        assert!(matches!(
            lambda(&[("OTP_CALLER_AUTH", "iam")]).unwrap().callers,
            CallerAuth::Iam
        ));
        assert!(matches!(
            lambda(&[("OTP_CALLER_AUTH", "none")]).unwrap().callers,
            CallerAuth::Open
        ));
        assert!(lambda(&[("OTP_CALLER_AUTH", "apikey")]).is_err());
        // Locally: open without keys, keyed with them, and iam is refused.
        assert!(matches!(local(&[]).unwrap().callers, CallerAuth::Open));
        assert!(matches!(
            local(&[("OTP_API_KEYS", &keys)]).unwrap().callers,
            CallerAuth::ApiKeys(_)
        ));
        let weak = local(&[("OTP_API_KEYS", "backend=short")])
            .unwrap_err()
            .to_string();
        assert!(
            weak.starts_with("OTP_API_KEYS is not a valid key list"),
            "{weak}"
        );
        assert!(local(&[("OTP_CALLER_AUTH", "iam")]).is_err());
        assert!(!format!("{:?}", local(&[("OTP_API_KEYS", &keys)]).unwrap()).contains(&key));
    }

    #[test]
    fn a_function_needs_a_key_and_a_table() {
        let missing = settings(Runtime::Lambda, &[("OTP_CALLER_AUTH", "none")])
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with("OTP_HASH_KEY is required"), "{missing}");
        let key = "11".repeat(32);
        let missing = settings(
            Runtime::Lambda,
            &[("OTP_HASH_KEY", &key), ("OTP_CALLER_AUTH", "none")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            missing.starts_with("OTP_TABLE_NAME is required"),
            "{missing}"
        );
        let s = settings(
            Runtime::Lambda,
            &[
                ("OTP_HASH_KEY_SECRET_ARN", "arn:x"),
                ("OTP_TABLE_NAME", "t"),
                ("OTP_API_KEYS_SECRET_ARN", "arn:y"),
            ],
        )
        .unwrap();
        assert!(matches!(s.keys, KeySource::Secret { .. }));
        assert!(s.needs_aws());
    }

    #[test]
    fn hash_key_ring_is_validated() {
        let short = local(&[("OTP_HASH_KEY", "abcd")]).unwrap_err().to_string();
        assert!(short.contains("at least 32"), "{short}");
        let ring = format!("{},{}", "11".repeat(32), "22".repeat(32));
        let s = local(&[("OTP_HASH_KEY", &ring)]).unwrap();
        let KeySource::Ring(ring) = &s.keys else {
            panic!("a ring")
        };
        assert_eq!(ring.code_keys().len(), 2);
        assert!(!format!("{s:?}").contains("1111"));
    }

    #[test]
    fn metrics_default_to_emf_in_a_function_and_off_locally() {
        assert_eq!(local(&[]).unwrap().metrics, MetricsSettings::Off);
        assert_eq!(
            local(&[
                ("OTP_METRICS", "emf"),
                ("OTP_METRICS_NAMESPACE", "Acme/Otp")
            ])
            .unwrap()
            .metrics,
            MetricsSettings::Emf {
                namespace: "Acme/Otp".to_owned()
            }
        );
        for bad in ["AWS/Lambda", "bad{name}", &"x".repeat(256)] {
            assert!(local(&[("OTP_METRICS", "emf"), ("OTP_METRICS_NAMESPACE", bad)]).is_err());
        }
        assert!(local(&[("OTP_METRICS", "prometheus")]).is_err());
    }

    #[test]
    fn aws_roots_are_amazons_in_a_function_and_the_systems_locally_or_in_china() {
        use crate::tls::AwsRoots;
        let roots = |runtime, vars: &[(&str, &str)]| settings(runtime, vars).map(|s| s.aws_roots);
        let lambda = |vars: &[(&str, &str)]| {
            let mut all = vec![
                ("OTP_HASH_KEY", "ab".repeat(32)),
                ("OTP_TABLE_NAME", "t".into()),
                ("OTP_CALLER_AUTH", "iam".into()),
            ];
            all.extend(vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
            let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
            roots(Runtime::Lambda, &all)
        };
        // GIVEN no OTP_AWS_TRUST_ROOTS: a function trusts Amazon's roots, unless its region is
        // in China; a local run the system's
        assert_eq!(
            lambda(&[("AWS_REGION", "eu-west-1")]).unwrap(),
            AwsRoots::Amazon
        );
        assert_eq!(lambda(&[]).unwrap(), AwsRoots::Amazon);
        assert_eq!(
            lambda(&[("AWS_REGION", "cn-north-1")]).unwrap(),
            AwsRoots::System
        );
        assert_eq!(
            lambda(&[("AWS_DEFAULT_REGION", "cn-northwest-1")]).unwrap(),
            AwsRoots::System
        );
        assert_eq!(roots(Runtime::Local, &[]).unwrap(), AwsRoots::System);
        // GIVEN a value: it decides, in China and locally too
        let set = |value| [("OTP_AWS_TRUST_ROOTS", value), ("AWS_REGION", "cn-north-1")];
        assert_eq!(lambda(&set("system")).unwrap(), AwsRoots::System);
        assert_eq!(lambda(&set(" amazon ")).unwrap(), AwsRoots::Amazon);
        assert_eq!(
            roots(Runtime::Local, &set("amazon")).unwrap(),
            AwsRoots::Amazon
        );
        // A file is read now: its certificates are what the clients get
        let dir = std::env::temp_dir().join(format!("otp-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("roots.pem");
        std::fs::write(&file, crate::tls::AMAZON_ROOTS_PEM).unwrap();
        let path = file.to_str().unwrap();
        match lambda(&[("OTP_AWS_TRUST_ROOTS", path)]).unwrap() {
            AwsRoots::File { path: named, pem } => {
                assert_eq!(
                    (named.as_str(), &*pem),
                    (path, crate::tls::AMAZON_ROOTS_PEM)
                );
            }
            other => panic!("{other:?}"),
        }
        // WHEN the value is none of these, or the file is missing, empty or holds something
        // that cannot be a root THEN the start stops, naming the setting and the problem
        std::fs::write(dir.join("empty.pem"), "# nothing here\n").unwrap();
        let junk = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        std::fs::write(dir.join("junk.pem"), junk).unwrap();
        std::fs::write(dir.join("broken.pem"), "-----BEGIN CERTIFICATE-----\n!!\n").unwrap();
        let in_dir = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let problems = [
            (
                "Amazon".to_owned(),
                "must be amazon, system or the absolute path of a PEM file",
            ),
            (
                "roots.pem".to_owned(),
                "must be amazon, system or the absolute path of a PEM file",
            ),
            ("/nonexistent/roots.pem".to_owned(), "which cannot be read"),
            (in_dir("empty.pem"), "which holds no certificate"),
            (
                in_dir("junk.pem"),
                "holds 1 of 1 certificates that cannot be trust anchors",
            ),
            (in_dir("broken.pem"), "which is not a PEM bundle"),
        ];
        for (value, problem) in problems {
            let error = lambda(&[("OTP_AWS_TRUST_ROOTS", &value)])
                .unwrap_err()
                .to_string();
            assert!(error.starts_with("OTP_AWS_TRUST_ROOTS "), "{error}");
            assert!(error.contains(problem), "{value}: {error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn brand_is_trimmed_and_bounded() {
        assert_eq!(
            local(&[("OTP_BRAND_NAME", " Acme ")])
                .unwrap()
                .brand
                .as_deref(),
            Some("Acme")
        );
        assert!(local(&[("OTP_BRAND_NAME", &"x".repeat(41))]).is_err());
    }

    #[test]
    fn delivery_settings_are_complete_or_refused() {
        let twilio = |extra: &[(&'static str, &'static str)]| {
            let mut vars = vec![("TWILIO_ACCOUNT_SID", "AC1"), ("TWILIO_AUTH_TOKEN", "t")];
            vars.extend_from_slice(extra);
            local(&vars)
        };
        let missing = twilio(&[]).unwrap_err().to_string();
        assert!(
            missing.starts_with("TWILIO_PHONE_NUMBER is required"),
            "{missing}"
        );
        assert!(twilio(&[("TWILIO_PHONE_NUMBER", "555")]).is_err());
        let s = twilio(&[("TWILIO_MESSAGING_SERVICE_SID", "MG1")]).unwrap();
        let sms = s.delivery.sms.unwrap();
        assert_eq!(
            sms.from,
            Some(TwilioFrom::MessagingService("MG1".to_owned()))
        );
        // With SMS through AWS, the account needs no SMS sender (WhatsApp and calls have theirs).
        let aws = twilio(&[
            ("OTP_SMS_PROVIDER", "aws"),
            ("OTP_AWS_SMS_ORIGINATION_IDENTITY", "phone-1"),
            ("TWILIO_VOICE_FROM", "+14155550101"),
        ])
        .unwrap();
        assert_eq!(aws.delivery.sms.unwrap().from, None);
        assert!(aws.delivery.aws_sms.is_some());
        let still_missing = twilio(&[("OTP_SMS_PROVIDER", "twilio")]).unwrap_err();
        assert!(still_missing
            .to_string()
            .starts_with("TWILIO_PHONE_NUMBER is required"));
        assert_eq!(sms.api_base_url, TWILIO_DEFAULT_API_BASE_URL);
        assert_eq!(sms.timeout, Duration::from_secs(5));
        assert!(local(&[
            ("TWILIO_ACCOUNT_SID", "AC1"),
            ("TWILIO_PHONE_NUMBER", "+14155552671")
        ])
        .unwrap_err()
        .to_string()
        .starts_with("TWILIO_AUTH_TOKEN_SECRET_ARN is required"));
        let ses = local(&[("EMAIL_FROM", "Acme <no-reply@example.com>")]).unwrap();
        assert!(ses.delivery.email.is_some() && ses.needs_aws());
        assert!(local(&[("EMAIL_FROM", "nobody")]).is_err());
    }
}

//! The catalogue of every environment variable the service reads: its default, what it accepts
//! and what it is for. `docs/configuration.md` is generated from it (`otp-service settings`,
//! `make settings-docs`; a test fails when the committed copy is stale), and start-up checks
//! the environment against it, so a misspelt `OTP_MAX_ATTEMPS` is named instead of ignored.

use super::limits::{
    CLIENT_IP_PER_HOUR, DESTINATION_CEILING_PER_DAY, DESTINATION_PER_10_MINUTES,
    DESTINATION_PER_DAY, SMS_COUNTRY_PER_DAY, SMS_DAILY_BUDGET, USER_PER_HOUR,
};
use super::public::{CAPTCHA_TIMEOUT_MS, TOKEN_TTL_SECONDS};
use super::{
    Setting, CODE_LENGTH, LOCKOUT_CEILING, LOCKOUT_FAILURES, LOCKOUT_WINDOW_SECONDS, MAX_ATTEMPTS,
    RESEND_COOLDOWN_SECONDS, TTL_SECONDS, TWILIO_TIMEOUT_MS,
};
use super::{FRAUD_GUARD_HOLD_SECONDS, SEND_HOOK_TIMEOUT_MS};

/// What a variable accepts and its default.
pub enum Accepts {
    /// A whole number in the setting's range; its default is the setting's.
    Number(&'static Setting),
    /// Free-form or listed values, described for people; `default` as documented.
    Text {
        default: &'static str,
        values: &'static str,
    },
}

/// One environment variable.
pub struct Variable {
    pub name: &'static str,
    pub group: &'static str,
    pub accepts: Accepts,
    /// The SAM template's parameter that sets it, if any.
    pub parameter: &'static str,
    pub meaning: &'static str,
}

const fn number(
    group: &'static str,
    setting: &'static Setting,
    parameter: &'static str,
    meaning: &'static str,
) -> Variable {
    Variable {
        name: setting.var,
        group,
        accepts: Accepts::Number(setting),
        parameter,
        meaning,
    }
}

const fn text(
    group: &'static str,
    name: &'static str,
    default: &'static str,
    values: &'static str,
    parameter: &'static str,
    meaning: &'static str,
) -> Variable {
    Variable {
        name,
        group,
        accepts: Accepts::Text { default, values },
        parameter,
        meaning,
    }
}

const CODES: &str = "Codes";
const KEYS: &str = "Keys and storage";
const CALLERS: &str = "Backend callers";
const TOKENS: &str = "Verification tokens";
const PUBLIC: &str = "Browser routes";
const LIMITS: &str = "Send limits";
const FRAUD: &str = "Fraud guard";
const PHONE: &str = "SMS, WhatsApp and calls";
const EMAIL: &str = "Email";
const HOOK: &str = "Send hook";
const OPERATIONS: &str = "Operations";

/// Every variable, in the order of the reference.
pub const VARIABLES: &[Variable] = &[
    number(CODES, &CODE_LENGTH, "CodeLength", "Digits per code."),
    number(
        CODES,
        &TTL_SECONDS,
        "CodeTtlSeconds",
        "Lifetime of a code in seconds.",
    ),
    number(
        CODES,
        &MAX_ATTEMPTS,
        "MaxAttempts",
        "Guesses per code, right or wrong.",
    ),
    number(
        CODES,
        &RESEND_COOLDOWN_SECONDS,
        "ResendCooldownSeconds",
        "Seconds before a new code may replace a pending one (a resend inside it is a 429 with \
         `Retry-After`).",
    ),
    number(
        CODES,
        &LOCKOUT_FAILURES,
        "LockoutFailures",
        "Wrong codes from one client network (IPv4 address, IPv6 /64), across resends, that \
         lock a user out of sending and verifying from that network until the window ends; \
         other networks are not affected.",
    ),
    number(
        CODES,
        &LOCKOUT_WINDOW_SECONDS,
        "LockoutWindowSeconds",
        "The lockout's window in seconds (fixed windows, aligned to the epoch).",
    ),
    number(
        CODES,
        &LOCKOUT_CEILING,
        "LockoutCeiling",
        "Consecutive wrong codes from all networks together that lock a user out for everyone, \
         for a window after the latest (NIST SP 800-63B allows at most 100); a right code \
         resets it. At least `OTP_LOCKOUT_FAILURES`.",
    ),
    text(
        CODES,
        super::BRAND_NAME,
        "",
        "at most 40 characters",
        "BrandName",
        "Prefix of every message: `Acme: Your verification code is ...`.",
    ),
    text(
        KEYS,
        super::HASH_KEY,
        "local: a random key per process",
        "32+ bytes, hex or base64; a ring `NEW,OLD`",
        "",
        "Secret for the codes' HMAC. Required in a function (or the secret below). With a ring, \
         new codes use NEW while codes made with OLD still verify. Generate one with `python3 -c \
         'import secrets; print(secrets.token_hex(32))'`.",
    ),
    text(
        KEYS,
        super::HASH_KEY_SECRET_ARN,
        "",
        "a Secrets Manager ARN",
        "(generated)",
        "Instead of `OTP_HASH_KEY`: a secret holding the same text (the template generates it).",
    ),
    text(
        KEYS,
        super::PSEUDONYM_KEY,
        "the ring's last key",
        "a key, as `OTP_HASH_KEY`",
        "",
        "The key that names records (DynamoDB key pseudonyms). Set it to the old key when you \
         drop that key from the ring, so that records keep their names.",
    ),
    text(
        KEYS,
        super::TABLE_NAME,
        "local: the in-memory store",
        "a DynamoDB table name",
        "(created)",
        "The DynamoDB table for codes and counters. Required in a function.",
    ),
    text(
        CALLERS,
        super::CALLER_AUTH,
        "function: api_key; local: api_key with keys, else none",
        "`api_key`, `iam` (functions only), `none`",
        "CallerAuth",
        "How `/send-code` and `/verify-code` authenticate their caller. `none` leaves them open \
         (the local server says so at start-up).",
    ),
    text(
        CALLERS,
        super::API_KEYS,
        "",
        "`name=key[:send|:verify],...`, keys of 32+ characters",
        "",
        "API keys for local runs. Make one with `otp-service new-api-key NAME`.",
    ),
    text(
        CALLERS,
        super::API_KEYS_SECRET_ARN,
        "",
        "a Secrets Manager ARN",
        "(generated)",
        "Instead of `OTP_API_KEYS`: a secret holding them (the template generates one).",
    ),
    text(
        TOKENS,
        super::TOKEN_SIGNING_KEY,
        "local: a random key per process",
        "32+ bytes, hex or base64; a ring `NEW,OLD`",
        "",
        "The secret the Ed25519 token signing key is derived from. A ring signs with NEW and \
         publishes both at `/.well-known/jwks.json`. Required by the verify function (or the \
         secret below).",
    ),
    text(
        TOKENS,
        super::TOKEN_SIGNING_KEY_SECRET_ARN,
        "",
        "a Secrets Manager ARN",
        "(generated)",
        "Instead of `OTP_TOKEN_SIGNING_KEY`: a secret holding it.",
    ),
    text(
        TOKENS,
        super::TOKEN_ISSUER,
        super::DEFAULT_TOKEN_ISSUER,
        "at most 256 characters",
        "TokenIssuer",
        "The tokens' `iss`; your backend checks it.",
    ),
    text(
        TOKENS,
        super::TOKEN_AUDIENCE,
        super::DEFAULT_TOKEN_AUDIENCE,
        "at most 256 characters",
        "TokenAudience",
        "The `aud` of `/auth/verify-otp` tokens (the browser flow); your backend checks it.",
    ),
    text(
        TOKENS,
        super::BACKEND_TOKEN_AUDIENCE,
        super::DEFAULT_BACKEND_TOKEN_AUDIENCE,
        "at most 256 characters, not `OTP_TOKEN_AUDIENCE`",
        "BackendTokenAudience",
        "The `aud` of `/verify-code` tokens, so that one never passes for an `/auth/verify-otp` \
         token (whose `aud` is `OTP_TOKEN_AUDIENCE`).",
    ),
    number(
        TOKENS,
        &TOKEN_TTL_SECONDS,
        "TokenTtlSeconds",
        "Token lifetime in seconds.",
    ),
    text(
        PUBLIC,
        super::USER_DIRECTORY,
        "every address may get a code",
        "`dynamodb:TABLE` or `list:a@example.com,b@example.com`",
        "UserDirectory",
        "The addresses `/auth/request-otp` sends to (a table keyed by `email`, lower-cased).",
    ),
    text(
        PUBLIC,
        super::UNKNOWN_USER,
        "conceal",
        "`conceal`, `reveal`",
        "UnknownUser",
        "For an address the directory lacks: the same 200 with nothing sent, or a 404.",
    ),
    text(
        PUBLIC,
        super::CAPTCHA_PROVIDER,
        "",
        "`turnstile`, `hcaptcha`, `recaptcha`",
        "CaptchaProvider",
        "A CAPTCHA on `/auth/request-otp` (body field `captcha_token`).",
    ),
    text(
        PUBLIC,
        super::CAPTCHA_SECRET,
        "",
        "the provider's secret key",
        "",
        "The CAPTCHA secret key, for local runs.",
    ),
    text(
        PUBLIC,
        super::CAPTCHA_SECRET_ARN,
        "",
        "a Secrets Manager ARN",
        "CaptchaSecretArn",
        "Instead of `OTP_CAPTCHA_SECRET`: a secret holding it.",
    ),
    text(
        PUBLIC,
        super::CAPTCHA_VERIFY_URL,
        "the provider's siteverify URL",
        "an http(s) URL",
        "",
        "Where CAPTCHA tokens are checked (tests point it at a local fake).",
    ),
    number(
        PUBLIC,
        &CAPTCHA_TIMEOUT_MS,
        "",
        "Timeout of the siteverify call in milliseconds.",
    ),
    text(
        PUBLIC,
        super::CORS_ORIGINS,
        "",
        "origins separated by commas, or `*`",
        "CorsAllowedOrigins",
        "Origins whose pages may call the API from a browser, e.g. \
         `https://app.example.com,http://localhost:3000`.",
    ),
    number(
        LIMITS,
        &DESTINATION_PER_10_MINUTES,
        "DestinationSendsPer10Minutes",
        "Codes to one phone or address per 10 minutes (0: no limit).",
    ),
    number(
        LIMITS,
        &DESTINATION_PER_DAY,
        "DestinationSendsPerDay",
        "Codes to one phone or address per UTC day (0: no limit). Like the 10-minute limit, \
         counted apart for the backend route and, on `/auth/request-otp`, per client network.",
    ),
    number(
        LIMITS,
        &DESTINATION_CEILING_PER_DAY,
        "DestinationCeilingPerDay",
        "Codes to one address per UTC day on `/auth/request-otp` from all client networks \
         together (0: no limit).",
    ),
    number(
        LIMITS,
        &USER_PER_HOUR,
        "UserSendsPerHour",
        "Codes for one user id per hour (0: no limit).",
    ),
    number(
        LIMITS,
        &CLIENT_IP_PER_HOUR,
        "ClientIpSendsPerHour",
        "Codes per client address per hour: the source IP on `/auth/request-otp`, the optional \
         `client_ip` on `/send-code` (IPv6 per /64; 0: no limit).",
    ),
    text(
        LIMITS,
        super::SMS_ALLOWED_COUNTRIES,
        "every country, with a warning",
        "ISO 3166 codes separated by commas (`US,CA,GB`), or `*`",
        "SmsAllowedCountries",
        "Countries whose numbers may get SMS, WhatsApp and calls.",
    ),
    text(
        LIMITS,
        super::SMS_NUMBER_TYPES,
        "mobile,fixed_line_or_mobile",
        NUMBER_KINDS,
        "SmsNumberTypes",
        "Kinds of number that may get SMS.",
    ),
    number(
        LIMITS,
        &SMS_COUNTRY_PER_DAY,
        "SmsCountrySendsPerDay",
        "SMS-class sends to one country per UTC day (0: no limit).",
    ),
    number(
        LIMITS,
        &SMS_DAILY_BUDGET,
        "SmsDailyBudget",
        "All SMS-class sends per UTC day; then they answer 503 `sms_budget_exhausted` (email \
         keeps working; 0: no limit).",
    ),
    text(
        FRAUD,
        super::FRAUD_GUARD,
        "block",
        "`block`, `monitor`, `off`",
        "FraudGuard",
        "The fraud guard, which stops SMS pumping by conversion: number ranges (a 1,000-number \
         block, a country) whose recent SMS-class sends are fast and unverified are refused for \
         a while with 403 `fraud_suspected`. `monitor` refuses nothing but logs and meters every \
         send it would have refused; `off` counts nothing.",
    ),
    text(
        FRAUD,
        super::FRAUD_GUARD_SAFE_LIST,
        "none",
        "E.164 numbers and prefixes separated by commas (`+15555550100,+4477001`)",
        "FraudGuardSafeList",
        "Numbers and number prefixes the fraud guard never refuses (your test numbers, a \
         partner's range).",
    ),
    number(
        FRAUD,
        &FRAUD_GUARD_HOLD_SECONDS,
        "FraudGuardHoldSeconds",
        "How long an opened breaker refuses sends to its range; each refused attempt while it \
         holds starts the hold again (at most every 10 minutes).",
    ),
    text(
        PHONE,
        super::SMS_PROVIDER,
        "twilio, when a Twilio account is set",
        "`twilio`, `aws`",
        "SmsProvider",
        "Who sends SMS: Twilio, or AWS End User Messaging SMS.",
    ),
    text(
        PHONE,
        super::TWILIO_ACCOUNT_SID,
        "",
        "`AC...`",
        "TwilioAccountSid",
        "The Twilio account (SMS unless `OTP_SMS_PROVIDER=aws`, WhatsApp, calls). Unset: SMS \
         goes to the console locally and answers 503 in a function.",
    ),
    text(
        PHONE,
        super::TWILIO_AUTH_TOKEN,
        "",
        "the account's auth token",
        "",
        "The Twilio auth token, for local runs.",
    ),
    text(
        PHONE,
        super::TWILIO_AUTH_TOKEN_SECRET_ARN,
        "",
        "a Secrets Manager ARN",
        "TwilioAuthTokenSecretArn",
        "Instead of `TWILIO_AUTH_TOKEN`: a secret holding it.",
    ),
    text(
        PHONE,
        super::TWILIO_PHONE_NUMBER,
        "",
        "E.164, e.g. `+14155552671`",
        "TwilioPhoneNumber",
        "The SMS sender: a number of the account (this or the next is needed when Twilio sends \
         SMS).",
    ),
    text(
        PHONE,
        super::TWILIO_MESSAGING_SERVICE_SID,
        "",
        "`MG...`",
        "TwilioMessagingServiceSid",
        "The SMS sender: a Messaging Service, which picks the number.",
    ),
    text(
        OPERATIONS,
        super::WEBHOOK_URL,
        "none",
        "`https://...` (`http://` only for localhost)",
        "WebhookUrl",
        "Where events go (`verification.sent`, `.delivered`, `.approved`, ...), each POSTed as \
         a signed Standard Webhook and retried for about 28 hours when not taken: from the \
         embedded store in process, and in AWS by the events function.",
    ),
    text(
        OPERATIONS,
        super::WEBHOOK_SECRET,
        "",
        "`whsec_` and the base64 of 24 to 64 random bytes",
        "",
        "The Standard Webhooks secret that signs the events (`webhook-signature`).",
    ),
    text(
        OPERATIONS,
        super::WEBHOOK_SECRET_ARN,
        "",
        "a Secrets Manager ARN",
        "WebhookSecretArn",
        "Instead of `OTP_WEBHOOK_SECRET` (the events function): a secret holding it.",
    ),
    text(
        OPERATIONS,
        super::EVENTS_QUEUE_URL,
        "",
        "an SQS queue URL",
        "",
        "The events function's queue of events waiting for the webhook (the template sets it).",
    ),
    text(
        OPERATIONS,
        super::EVENT_BUS,
        "none",
        "an EventBridge bus name or ARN",
        "EventBusName",
        "An EventBridge bus that also gets every event (source `otp-service`, detail-type the \
         event's type); the events function puts them there.",
    ),
    text(
        HOOK,
        super::SEND_HOOK_URL,
        "none",
        "`https://...` (`http://` only to localhost)",
        "SendHookUrl",
        "Your own sender: the channels of `OTP_SEND_HOOK_CHANNELS` are delivered by one signed \
         POST here (Standard Webhooks) instead of Twilio, SES or AWS. It receives every code in \
         clear: a URL that is not `https://` (or loopback) stops the start.",
    ),
    text(
        HOOK,
        super::SEND_HOOK_SECRET,
        "",
        "`whsec_` and the base64 of 24 to 64 random bytes",
        "",
        "The Standard Webhooks secret that signs the hook's requests, for local runs.",
    ),
    text(
        HOOK,
        super::SEND_HOOK_SECRET_ARN,
        "",
        "a Secrets Manager ARN",
        "SendHookSecretArn",
        "Instead of `OTP_SEND_HOOK_SECRET`: a secret holding it.",
    ),
    number(
        HOOK,
        &SEND_HOOK_TIMEOUT_MS,
        "SendHookTimeoutMs",
        "How long the hook may take to answer, in milliseconds; later is `502 \
         delivery_uncertain` (the code stays valid).",
    ),
    text(
        HOOK,
        super::SEND_HOOK_CHANNELS,
        "every channel",
        "channels separated by commas: `sms`, `whatsapp`, `voice`, `email`",
        "SendHookChannels",
        "The channels the hook delivers; the others keep their provider.",
    ),
    text(
        PHONE,
        super::PUBLIC_BASE_URL,
        "in AWS, the API's own URL (from each request); locally none",
        "`https://otp.example.com` (`http://` only for localhost)",
        "PublicBaseUrl",
        "The URL the internet reaches this API at, for delivery receipts: Twilio posts each \
         message's status to `<URL>/webhooks/twilio/status`. Set it for a custom domain; \
         without it (and outside AWS) messages carry no status callback.",
    ),
    text(
        PHONE,
        super::TWILIO_API_BASE_URL,
        super::TWILIO_DEFAULT_API_BASE_URL,
        "an http(s) URL",
        "",
        "Twilio's API (tests point it at a local fake).",
    ),
    number(
        PHONE,
        &TWILIO_TIMEOUT_MS,
        "",
        "Whole Twilio request timeout in milliseconds.",
    ),
    text(
        PHONE,
        super::TWILIO_WHATSAPP_FROM,
        "",
        "E.164",
        "TwilioWhatsappFrom",
        "The WhatsApp sender's number (method `whatsapp`).",
    ),
    text(
        PHONE,
        super::TWILIO_WHATSAPP_CONTENT_SID,
        "",
        "`HX...`, or one per language: `en=HX...,pt-BR=HX...`",
        "TwilioWhatsappContentSid",
        "An approved WhatsApp authentication template's Content SID.",
    ),
    text(
        PHONE,
        super::TWILIO_VOICE_FROM,
        "",
        "E.164",
        "TwilioVoiceFrom",
        "A voice-capable number of the account (method `voice`).",
    ),
    text(
        PHONE,
        super::AWS_SMS_ORIGINATION_IDENTITY,
        "",
        "a phone number, sender ID or pool: ID or ARN",
        "AwsSmsOriginationIdentityArn",
        "Who sends SMS when `OTP_SMS_PROVIDER=aws`.",
    ),
    text(
        PHONE,
        super::AWS_SMS_PROTECT_CONFIGURATION_ID,
        "",
        "an ID",
        "AwsSmsProtectConfigurationId",
        "An AWS End User Messaging protect configuration (country rules at AWS's side too).",
    ),
    text(
        PHONE,
        super::AWS_SMS_CONFIGURATION_SET,
        "",
        "a name",
        "AwsSmsConfigurationSet",
        "An AWS End User Messaging configuration set (delivery events).",
    ),
    text(
        PHONE,
        super::WEBOTP_DOMAIN,
        "",
        "a host name, e.g. `example.com`",
        "WebOtpDomain",
        "SMS autofill: ends the SMS with `@example.com #123456` (WebOTP; Safari reads it too). \
         A configuration whose SMS would not fit one segment does not start.",
    ),
    text(
        PHONE,
        super::ANDROID_APP_HASH,
        "",
        "11 characters of base64",
        "AndroidAppHash",
        "SMS autofill: the Android SMS Retriever hash, on a line of its own.",
    ),
    text(
        EMAIL,
        super::EMAIL_FROM,
        "",
        "`address` or `Name <address>` of a verified SES identity",
        "EmailFrom",
        "Email through SES v2. Unset: email goes to the console locally and answers 503 in a \
         function.",
    ),
    text(
        EMAIL,
        super::SES_CONFIGURATION_SET,
        "",
        "a name",
        "SesConfigurationSet",
        "An SES configuration set for the emails (delivery events).",
    ),
    text(
        OPERATIONS,
        super::METRICS,
        "function: emf; local: off",
        "`emf`, `off`",
        "",
        "Metrics as CloudWatch EMF records on stdout.",
    ),
    text(
        OPERATIONS,
        super::METRICS_NAMESPACE,
        super::DEFAULT_METRICS_NAMESPACE,
        "1-255 of letters, digits, `.-_/#:` and spaces; not `AWS/...`",
        "MetricsNamespace",
        "The metrics' CloudWatch namespace.",
    ),
    text(
        OPERATIONS,
        super::AWS_TRUST_ROOTS,
        "function: amazon (China regions, `cn-*`: system); local: system",
        "`amazon`, `system`, or the absolute path of a PEM file",
        "AwsTrustRoots",
        "The root certificates the AWS clients (DynamoDB, Secrets Manager, SES, End User \
         Messaging) trust. `amazon`: the five roots of Amazon Trust Services, built in, which \
         every AWS endpoint chains to (no other CA can stand in for AWS, and the cold start \
         parses 5 roots instead of the system's ~150). `system`: the system's bundle \
         (`SSL_CERT_FILE` honoured), e.g. behind a proxy that inspects TLS. A path: exactly the \
         certificates of that file (an emulator behind TLS; in Lambda, a file from a layer). \
         Twilio, CAPTCHA, send hook and webhooks always use the system's roots.",
    ),
    text(
        OPERATIONS,
        LOG_FILTER,
        "info (a function: Lambda's log level)",
        "a level (error, warn, info, debug, trace), then `target=level` directives",
        "",
        "Which log lines are written, e.g. `info` or `info,otp_core=debug`. A value that would \
         show no line of this service is reported and `info` used.",
    ),
    text(
        OPERATIONS,
        PORT,
        "8000",
        "0-65535 (0 picks a free port)",
        "",
        "The local server's port on 127.0.0.1 (local server only).",
    ),
];

/// `OTP_SMS_NUMBER_TYPES`' values (a test checks the list against [`NumberKind::ALL`]).
const NUMBER_KINDS: &str = "kinds separated by commas: mobile, fixed_line_or_mobile, fixed_line, \
     toll_free, premium_rate, shared_cost, personal, voip, pager, uan, voicemail, other";

/// The log filter, read by both the local server and the functions.
pub const LOG_FILTER: &str = "RUST_LOG";
/// The local server's port.
pub const PORT: &str = "PORT";

/// Prefixes that belong to this service: a variable with one of them that the catalogue lacks is
/// a mistake. `OTP_` is ours alone, so an unknown one stops the start; the others are shared
/// with other tools (the Twilio CLI reads `TWILIO_API_KEY`), so an unknown one is only named.
pub const OWN_PREFIX: &str = "OTP_";
pub const SHARED_PREFIXES: [&str; 3] = ["TWILIO_", "EMAIL_", "SES_"];

/// The catalogue entry for `name`.
pub fn find(name: &str) -> Option<&'static Variable> {
    VARIABLES.iter().find(|v| v.name == name)
}

/// A variable in the environment that the service does not read, with the known one it most
/// likely meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariable {
    pub name: String,
    pub did_you_mean: Option<&'static str>,
    /// `OTP_...`: the start is refused.
    pub fatal: bool,
}

impl std::fmt::Display for UnknownVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not a setting of this service", self.name)?;
        match self.did_you_mean {
            Some(known) => write!(f, "; did you mean {known}?"),
            None => f.write_str(" (docs/configuration.md lists them all)"),
        }
    }
}

/// The service's own-looking names among `names` that no part of it reads.
pub fn unknown_variables<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<UnknownVariable> {
    let mut unknown: Vec<UnknownVariable> = names
        .into_iter()
        .filter(|name| find(name).is_none())
        .filter_map(|name| {
            let fatal = name.starts_with(OWN_PREFIX);
            let shared = SHARED_PREFIXES.iter().any(|p| name.starts_with(p));
            (fatal || shared).then(|| UnknownVariable {
                name: name.to_owned(),
                did_you_mean: closest(name),
                fatal,
            })
        })
        .collect();
    unknown.sort_by(|a, b| a.name.cmp(&b.name));
    unknown
}

/// The known variable nearest to `name`, if it is near enough to be a slip of the keyboard
/// (at most a quarter of the name's characters differ).
fn closest(name: &str) -> Option<&'static str> {
    VARIABLES
        .iter()
        .map(|v| (strsim::damerau_levenshtein(name, v.name), v.name))
        .filter(|(distance, _)| *distance * 4 <= name.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// `docs/configuration.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated by `otp-service settings` (`make settings-docs`) from \
         shared/src/settings/reference.rs; a test fails when this copy is stale. -->\n\n\
         Every setting is an environment variable, read once at start-up and checked against \
         the range below: a value outside it stops the start with a message naming the \
         variable. Blank counts as unset. An `OTP_` variable that is not listed here stops the \
         start too, with the nearest known name (`OTP_MAX_ATTEMPS` is probably \
         `OTP_MAX_ATTEMPTS`); an unknown `TWILIO_`, `EMAIL_` or `SES_` variable is only named \
         in a warning, since other tools share those prefixes.\n\n\
         `make run` needs none of them. In AWS the template sets them from its parameters (the \
         column *Parameter*; *(generated)* is a secret the template makes, *(created)* a \
         resource it makes); [deployment.md](deployment.md) describes every parameter. \
         [`env.example`](../env.example) has them all with short comments.\n",
    );
    let mut group = "";
    for variable in VARIABLES {
        if variable.group != group {
            group = variable.group;
            out.push_str(&format!(
                "\n## {group}\n\n| Variable | Default | Accepts | Parameter | Meaning |\n\
                 |---|---|---|---|---|\n"
            ));
        }
        let (default, accepts) = match &variable.accepts {
            Accepts::Number(setting) => (
                format!("`{}`", setting.default),
                format!(
                    "whole number, {} to {}",
                    setting.range.start(),
                    setting.range.end()
                ),
            ),
            Accepts::Text {
                default: "",
                values,
            } => (String::from("unset"), (*values).to_owned()),
            Accepts::Text { default, values } => {
                let default = if default.contains(':') || default.contains(' ') {
                    (*default).to_owned()
                } else {
                    format!("`{default}`")
                };
                (default, (*values).to_owned())
            }
        };
        let parameter = match variable.parameter {
            "" => String::new(),
            p if p.starts_with('(') => format!("*{p}*"),
            p => format!("`{p}`"),
        };
        out.push_str(&format!(
            "| `{}` | {default} | {accepts} | {parameter} | {} |\n",
            variable.name,
            variable.meaning.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    fn project(relative: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(relative)
    }

    fn read(relative: &str) -> String {
        std::fs::read_to_string(project(relative))
            .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
    }

    /// Every quoted `"OTP_..."`-style name in the Rust sources under `dir`.
    fn names_in_sources(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                names_in_sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split('"').skip(1).step_by(2) {
                    let prefixed = std::iter::once(OWN_PREFIX)
                        .chain(SHARED_PREFIXES)
                        .any(|p| piece.starts_with(p));
                    let shaped = piece
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
                    if prefixed && shaped && !piece.ends_with('_') {
                        found.insert(piece.to_owned());
                    }
                }
            }
        }
    }

    #[test]
    fn the_committed_reference_is_current() {
        // GIVEN the reference generated from this catalogue
        // THEN docs/configuration.md is exactly it (`make settings-docs` regenerates it)
        assert!(
            read("docs/configuration.md") == markdown(),
            "docs/configuration.md is stale: run `make settings-docs`"
        );
    }

    #[test]
    fn every_variable_the_code_reads_is_catalogued() {
        // GIVEN every variable name quoted in the service's sources
        let mut found = BTreeSet::new();
        for dir in ["shared/src", "src", "functions"] {
            names_in_sources(&project(dir), &mut found);
        }
        // THEN each is in the catalogue (or is a deliberate misspelling in this file's tests)
        let missing: Vec<_> = found
            .iter()
            .filter(|name| find(name).is_none() && !name.contains("ATTEMPS"))
            .collect();
        assert!(missing.is_empty(), "not in the catalogue: {missing:?}");
        assert!(found.len() >= 50, "the scan found only {found:?}");
    }

    #[test]
    fn env_example_and_the_template_agree_with_the_catalogue() {
        let example = read("env.example");
        let template = read("template.yaml");
        for variable in VARIABLES {
            // Every variable has a line in env.example (set or commented out).
            let listed = example.lines().any(|line| {
                line.trim_start_matches("# ")
                    .starts_with(&format!("{}=", variable.name))
            });
            assert!(listed, "env.example lacks {}", variable.name);
            // Every named parameter exists in the template.
            let parameter = variable.parameter;
            if !parameter.is_empty() && !parameter.starts_with('(') {
                assert!(
                    template.contains(&format!("\n  {parameter}:\n")),
                    "template.yaml has no parameter {parameter} (for {})",
                    variable.name
                );
            }
        }
        // Every variable the template sets is catalogued.
        for line in template.lines() {
            let key = line.trim().split(':').next().unwrap_or("");
            let ours =
                key.starts_with(OWN_PREFIX) || SHARED_PREFIXES.iter().any(|p| key.starts_with(p));
            if ours && key.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                assert!(
                    find(key).is_some(),
                    "template.yaml sets {key}, not catalogued"
                );
            }
        }
    }

    #[test]
    fn unknown_names_are_caught_with_the_nearest_known_one() {
        let found = unknown_variables([
            "OTP_MAX_ATTEMPS",
            "OTP_MAX_ATTEMPTS",
            "TWILIO_API_KEY",
            "OTP_SOMETHING_ELSE_ENTIRELY",
            "HOME",
            "EMAIL_FORM",
        ]);
        assert_eq!(
            found,
            [
                UnknownVariable {
                    name: "EMAIL_FORM".into(),
                    did_you_mean: Some("EMAIL_FROM"),
                    fatal: false
                },
                UnknownVariable {
                    name: "OTP_MAX_ATTEMPS".into(),
                    did_you_mean: Some("OTP_MAX_ATTEMPTS"),
                    fatal: true
                },
                UnknownVariable {
                    name: "OTP_SOMETHING_ELSE_ENTIRELY".into(),
                    did_you_mean: None,
                    fatal: true
                },
                UnknownVariable {
                    name: "TWILIO_API_KEY".into(),
                    did_you_mean: None,
                    fatal: false
                },
            ]
        );
        assert_eq!(
            found[1].to_string(),
            "OTP_MAX_ATTEMPS is not a setting of this service; did you mean OTP_MAX_ATTEMPTS?"
        );
    }

    #[test]
    fn the_number_kinds_listed_are_the_ones_parsed() {
        let listed: Vec<&str> = NUMBER_KINDS
            .trim_start_matches("kinds separated by commas: ")
            .split(", ")
            .collect();
        let parsed: Vec<&str> = crate::domain::NumberKind::ALL
            .map(crate::domain::NumberKind::as_str)
            .to_vec();
        assert_eq!(listed, parsed);
    }

    #[test]
    fn names_are_unique() {
        let names: BTreeSet<_> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(names.len(), VARIABLES.len());
    }
}

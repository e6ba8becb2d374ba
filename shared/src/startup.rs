//! Start-up: settings in, a ready engine out. The one builder the local server, both Lambda
//! functions and the tests call; tests change settings (and may hand in test doubles through
//! [`Overrides`]), they never wire the engine by hand.

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::callers::{ApiKeys, Callers};
use crate::clock::{Clock, SystemClock};
use crate::code::CodeHasher;
use crate::engine::{Engine, EngineParts, FraudGuard, PublicGate};
use crate::fraud::{FraudMode, TickSink};
use crate::http::Routes;
use crate::keys::{HashKey, KeyRing};
use crate::secrets::{self, SecretError, SecretValue};
use crate::sender::{Sender, Senders};
use crate::settings::{
    key_ring, CallerAuth, ConfigError, KeySource, MetricsSettings, Runtime, Settings,
    StoreSettings, HASH_KEY_SECRET_ARN,
};
use crate::store::{DynamoStore, FraudLedger, MemoryStore, OtpStore};

#[cfg(feature = "sending")]
mod sending;
#[cfg(feature = "verifying")]
mod verifying;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("OTP_METRICS=emf, but {0}")]
    Metrics(String),
    #[error("events: {0}")]
    Events(String),
    #[error("{channel} delivery is configured, but this build has no {provider} support")]
    NotBuiltIn {
        channel: &'static str,
        provider: &'static str,
    },
}

/// Parts a test may put in place of the real ones.
#[derive(Default)]
pub struct Overrides {
    pub clock: Option<Arc<dyn Clock>>,
    pub sms: Option<Arc<dyn Sender>>,
    pub email: Option<Arc<dyn Sender>>,
}

/// The AWS SDK configuration, loaded the first time a part needs it: a purely local run never
/// loads it, and no part has to know whether another one did. The secrets this unit needs are
/// known from the settings before any is read: the first part to ask reads them all in one
/// request (see [`secrets::read_all`]), and the others find theirs there.
struct Aws {
    config: OnceCell<SdkConfig>,
    secrets: OnceCell<aws_sdk_secretsmanager::Client>,
    dynamodb: OnceCell<aws_sdk_dynamodb::Client>,
    /// The ids of the secrets this unit reads, and what reading them gave.
    wanted: Vec<String>,
    read: OnceCell<HashMap<String, Result<SecretValue, SecretError>>>,
    /// The roots its TLS trusts.
    roots: crate::tls::AwsRoots,
}

impl Aws {
    fn new(wanted: Vec<String>, roots: crate::tls::AwsRoots) -> Self {
        Self {
            config: OnceCell::new(),
            secrets: OnceCell::new(),
            dynamodb: OnceCell::new(),
            wanted,
            read: OnceCell::new(),
            roots,
        }
    }

    async fn config(&self) -> &SdkConfig {
        self.config
            .get_or_init(|| crate::aws::load(&self.roots))
            .await
    }

    async fn read_secret(&self, arn: &str) -> Result<secrets::SecretValue, SecretError> {
        let client = self
            .secrets
            .get_or_init(|| async { aws_sdk_secretsmanager::Client::new(self.config().await) })
            .await;
        let read = self
            .read
            .get_or_init(|| secrets::read_all(client, &self.wanted))
            .await;
        match read.get(arn) {
            Some(value) => value.clone(),
            // Not foreseen by `secret_ids` (a bug there costs a request, not a failure).
            None => secrets::read(client, arn).await,
        }
    }

    /// A secret given as its value, or read (with the rest of this unit's secrets) from Secrets
    /// Manager and taken from the first of `fields` its JSON has (or its text).
    #[cfg(feature = "sending")]
    async fn secret(
        &self,
        secret: &crate::settings::Secret,
        fields: &[&str],
    ) -> Result<secrecy::SecretString, SecretError> {
        match secret {
            crate::settings::Secret::Value(value) => Ok(value.clone()),
            crate::settings::Secret::Arn(arn) => self.read_secret(arn).await?.field(arn, fields),
        }
    }

    /// One DynamoDB client for the store and the user directory: one connection pool, so the
    /// directory's read and the send's write share a connection.
    async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        self.dynamodb
            .get_or_init(|| async { aws_sdk_dynamodb::Client::new(self.config().await) })
            .await
            .clone()
    }
}

pub async fn build(settings: Settings, routes: Routes) -> Result<Engine, InitError> {
    build_with(settings, routes, Overrides::default()).await
}

pub async fn build_with(
    settings: Settings,
    routes: Routes,
    overrides: Overrides,
) -> Result<Engine, InitError> {
    install_metrics(&settings.metrics)?;
    let aws = Aws::new(secret_ids(&settings, routes), settings.aws_roots.clone());
    // A unit that serves no send route links and builds no delivery code. The key, the API
    // keys, the senders, the token key and the CAPTCHA may each read a secret: all reads go out
    // together.
    let (ring, callers, senders, tokens, gate) = tokio::join!(
        key_ring_from(&settings.keys, &aws),
        callers_from(&settings.callers, &aws),
        // Compiled out, not only skipped, without the unit's feature: a future that is merely
        // never started still links everything it could reach.
        async {
            #[cfg(feature = "sending")]
            if routes.sends() {
                return sending::senders(&settings, overrides.sms, overrides.email, &aws).await;
            }
            Ok::<_, InitError>(Senders::default())
        },
        async {
            #[cfg(feature = "verifying")]
            if routes.verifies() {
                return verifying::token_signer(&settings, &aws).await.map(Some);
            }
            Ok::<_, InitError>(None)
        },
        async {
            #[cfg(feature = "sending")]
            if routes.sends() {
                return sending::public_gate(&settings, &aws).await;
            }
            Ok::<_, InitError>(PublicGate::default())
        }
    );
    let (hasher, callers, senders) = (CodeHasher::new(&ring?), callers?, senders?);
    let (tokens, gate) = (tokens?.map(Arc::new), gate?);
    let (store, ledger): (Arc<dyn OtpStore>, Arc<dyn FraudLedger>) = match &settings.store {
        StoreSettings::Memory => {
            let store = Arc::new(MemoryStore::new());
            events_in_process(&store, &settings)?;
            (store.clone(), store)
        }
        StoreSettings::DynamoDb { table } => {
            let store = Arc::new(DynamoStore::new(
                aws.dynamodb().await,
                table.clone(),
                hasher.clone(),
            ));
            (store.clone(), store)
        }
    };
    // A deployed unit leaves the counting to the fraud-guard function, fed by the table's
    // stream; the local server counts in process.
    let counting = (settings.runtime == Runtime::Local && settings.fraud.mode != FraudMode::Off)
        .then(|| in_process_counting(&ledger, &settings))
        .flatten();
    let fraud = FraudGuard::new(settings.fraud.clone(), Some(ledger), counting);
    let engine = Engine::new(EngineParts {
        store,
        senders,
        hasher,
        policy: settings.policy.clone(),
        brand: settings.brand.clone(),
        autofill: settings.autofill.clone(),
        clock: overrides.clock.unwrap_or_else(|| Arc::new(SystemClock)),
        callers,
        limits: settings.limits.clone(),
        tokens,
        gate,
        fraud,
    });
    tracing::info!(
        store = %settings.store,
        delivery = %engine.senders().describe(),
        caller_auth = %engine.callers().describe(),
        policy = ?settings.policy,
        limits = ?settings.limits,
        fraud_guard = settings.fraud.mode.as_str(),
        aws_trust_roots = settings.aws_roots.name(),
        "engine ready"
    );
    if matches!(engine.callers(), Callers::Open) {
        tracing::warn!(
            "OTP_CALLER_AUTH=none: /send-code and /verify-code are OPEN to anyone who can reach \
             them. Anyone can send codes at your cost and check codes for any user. Use api_key \
             or iam for anything reachable from a network."
        );
    }
    for stray in &settings.strays {
        tracing::warn!("{stray}; it is ignored");
    }
    let sms_offered = routes.sends() && engine.senders().sms.is_some();
    let weaknesses = settings.policy.weaknesses().into_iter();
    // Checked only where SMS is sent (a build without the send routes links no message texts).
    let segments = sms_offered
        .then(|| settings.sms_length_check().err())
        .flatten()
        .map(|e| format!("{e}: every SMS is billed as two or more"));
    let weaknesses = weaknesses.chain(segments);
    for weakness in weaknesses.chain(settings.limits.weaknesses(sms_offered)) {
        tracing::warn!("weaker than recommended: {weakness}");
    }
    Ok(engine)
}

/// Events out from the embedded store's changes, delivered in process (`OTP_WEBHOOK_URL`). With
/// the DynamoDB store events come from the table's stream, which a local run does not read.
fn events_in_process(store: &MemoryStore, settings: &Settings) -> Result<(), InitError> {
    let Some(webhook) = &settings.webhook else {
        return Ok(());
    };
    #[cfg(feature = "webhooks")]
    {
        let crate::settings::Secret::Value(secret) = &webhook.secret else {
            return Err(InitError::Events(
                "the local server takes OTP_WEBHOOK_SECRET itself, not a secret's ARN".to_owned(),
            ));
        };
        let webhooks =
            crate::webhooks::Webhooks::new(&webhook.url, secret).map_err(InitError::Events)?;
        crate::webhooks::deliver_in_process(store.watch(), Arc::new(webhooks));
        tracing::info!(url = %webhook.url, "events go to the webhook");
        Ok(())
    }
    #[cfg(not(feature = "webhooks"))]
    {
        let _ = store;
        Err(InitError::Events(format!(
            "OTP_WEBHOOK_URL is set ({}), but this build sends no events",
            webhook.url
        )))
    }
}

/// The fraud guard's counting in process (the local server); a build without it (the send and
/// verify functions) leaves the counting to the table's stream.
fn in_process_counting(
    ledger: &Arc<dyn FraudLedger>,
    settings: &Settings,
) -> Option<Arc<dyn TickSink>> {
    #[cfg(feature = "counting")]
    return Some(Arc::new(crate::counting::Counting::new(
        ledger.clone(),
        settings.fraud.clone(),
    )));
    #[cfg(not(feature = "counting"))]
    {
        let _ = (ledger, settings);
        None
    }
}

/// What `otp-service fraud-guard` works with: the table's breakers, and the pseudonym key that
/// names a number's block (so `close +447700900123` finds it). `None` for the key when the
/// process has only a random one of its own: it cannot name a deployment's blocks.
pub async fn fraud_admin(
    settings: &Settings,
) -> Result<(Arc<dyn FraudLedger>, Option<CodeHasher>), InitError> {
    let StoreSettings::DynamoDb { table } = &settings.store else {
        return Err(ConfigError::Missing {
            var: "OTP_TABLE_NAME",
            hint: "the fraud guard's breakers are kept in the DynamoDB table (the local \
                   server's embedded store lives and dies with its process)",
        }
        .into());
    };
    let wanted = match &settings.keys {
        KeySource::Secret { arn, .. } => vec![arn.clone()],
        _ => Vec::new(),
    };
    let aws = Aws::new(wanted, settings.aws_roots.clone());
    let hasher = match &settings.keys {
        KeySource::Random => None,
        keys => Some(CodeHasher::new(&key_ring_from(keys, &aws).await?)),
    };
    let store = DynamoStore::for_counting(aws.dynamodb().await, table.clone());
    Ok((Arc::new(store), hasher))
}

/// The secrets a unit serving `routes` reads at init with these settings, and no other: the
/// HMAC key ring, the API keys, and, where the routes use them, the token seed (verify), the
/// Twilio token and the CAPTCHA secret (send).
fn secret_ids(settings: &Settings, routes: Routes) -> Vec<String> {
    use crate::settings::{Secret, TokenKeys};
    let mut ids = Vec::new();
    if let KeySource::Secret { arn, .. } = &settings.keys {
        ids.push(arn.clone());
    }
    if let CallerAuth::ApiKeysSecret(arn) = &settings.callers {
        ids.push(arn.clone());
    }
    if routes.verifies() {
        if let TokenKeys::Secret(arn) = &settings.token.keys {
            ids.push(arn.clone());
        }
    }
    if routes.sends() {
        // Twilio's token only when Twilio is the configured phone provider.
        if let Some(Secret::Arn(arn)) = settings.delivery.sms.as_ref().map(|t| &t.auth_token) {
            ids.push(arn.clone());
        }
        if let Some(Secret::Arn(arn)) = settings.public.captcha.as_ref().map(|c| &c.secret) {
            ids.push(arn.clone());
        }
        if let Some(Secret::Arn(arn)) = settings.delivery.send_hook.as_ref().map(|h| &h.secret) {
            ids.push(arn.clone());
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

/// The EMF recorder, process-wide: installed by the first build that asks for it.
fn install_metrics(metrics: &MetricsSettings) -> Result<(), InitError> {
    match metrics {
        MetricsSettings::Off => Ok(()),
        #[cfg(feature = "emf")]
        MetricsSettings::Emf { namespace } => {
            crate::meter::install_emf(namespace).map_err(InitError::Metrics)
        }
        #[cfg(not(feature = "emf"))]
        MetricsSettings::Emf { .. } => Err(InitError::Metrics(
            "this build has no EMF support (feature `emf`)".to_owned(),
        )),
    }
}

/// The backend routes' callers; API keys from a secret are read once, here.
async fn callers_from(auth: &CallerAuth, aws: &Aws) -> Result<Callers, InitError> {
    match auth {
        CallerAuth::Open => Ok(Callers::Open),
        CallerAuth::Iam => Ok(Callers::Iam),
        CallerAuth::ApiKeys(keys) => Ok(Callers::ApiKeys(keys.clone())),
        CallerAuth::ApiKeysSecret(arn) => {
            let keys = match aws.read_secret(arn).await? {
                SecretValue::Plain(text) => ApiKeys::parse(&text),
                SecretValue::Json(object) => ApiKeys::from_json(&object),
            };
            keys.map(Callers::ApiKeys).map_err(|e| {
                InitError::Secret(SecretError {
                    arn: arn.clone(),
                    reason: format!("it does not hold valid API keys: {e}"),
                })
            })
        }
    }
}

async fn key_ring_from(source: &KeySource, aws: &Aws) -> Result<KeyRing, InitError> {
    match source {
        KeySource::Ring(ring) => Ok(ring.clone()),
        KeySource::Random => {
            tracing::warn!(
                "OTP_HASH_KEY is not set: using a random key for this process; codes will not \
                 survive a restart. Set OTP_HASH_KEY (32+ bytes, hex or base64) to keep them."
            );
            Ok(KeyRing::single(HashKey::random()))
        }
        // The production way: the key never sits in an environment variable.
        KeySource::Secret { arn, pseudonym } => {
            let secret = aws.read_secret(arn).await?;
            let ring = secret.field(arn, &["key"])?;
            let pseudonym = pseudonym.clone().or_else(|| {
                secret
                    .optional("pseudonym_key")
                    .map(|k| k.expose_secret().to_owned())
            });
            Ok(key_ring(
                HASH_KEY_SECRET_ARN,
                ring.expose_secret(),
                pseudonym.as_deref(),
            )?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Channel;
    use crate::settings::Runtime;

    fn lambda_settings() -> Settings {
        let key = "22".repeat(32);
        Settings::from_lookup(Runtime::Lambda, &|var| match var {
            "OTP_HASH_KEY" => Some(key.clone()),
            "OTP_TABLE_NAME" => Some("otp-codes".to_owned()),
            "OTP_API_KEYS" => Some(format!("backend={}", "k".repeat(32))),
            _ => None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn lambda_never_uses_the_console_sender() {
        let engine = build(lambda_settings(), Routes::Sending).await.unwrap();
        assert_eq!(
            engine.describe(),
            "store: DynamoDB table otp-codes; delivery: sms: unavailable, whatsapp: unavailable, \
             voice: unavailable, email: unavailable; caller auth: api_key (backend)"
        );
        for channel in Channel::ALL {
            assert!(engine.senders().for_channel(channel).is_none());
        }
    }

    #[tokio::test]
    async fn local_server_starts_without_a_key_and_prints_codes() {
        let settings = Settings::from_lookup(Runtime::Local, &|_| None).unwrap();
        let engine = build(settings, Routes::All).await.unwrap();
        assert_eq!(
            engine.senders().describe(),
            "sms: console (dev), whatsapp: console (dev), voice: console (dev), email: console (dev)"
        );
    }

    #[test]
    fn a_unit_reads_the_secrets_its_routes_need_and_no_others() {
        let settings = Settings::from_lookup(Runtime::Lambda, &|var| {
            let arn =
                |name: &str| Some(format!("arn:aws:secretsmanager:us-east-1:1:secret:{name}"));
            match var {
                "OTP_HASH_KEY_SECRET_ARN" => arn("hash"),
                "OTP_TABLE_NAME" => Some("otp-codes".to_owned()),
                "OTP_API_KEYS_SECRET_ARN" => arn("api"),
                "OTP_TOKEN_SIGNING_KEY_SECRET_ARN" => arn("token"),
                "TWILIO_ACCOUNT_SID" => Some(format!("AC{}", "0".repeat(32))),
                "TWILIO_AUTH_TOKEN_SECRET_ARN" => arn("twilio"),
                "TWILIO_PHONE_NUMBER" => Some("+15005550006".to_owned()),
                _ => None,
            }
        })
        .unwrap();
        let names = |routes| -> Vec<String> {
            secret_ids(&settings, routes)
                .iter()
                .map(|arn| arn.rsplit(':').next().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names(Routes::Verifying), ["api", "hash", "token"]);
        // The Twilio token only where it is sent from (a build without the send routes does not
        // even read Twilio's settings).
        let sending = names(Routes::Sending);
        assert!(
            sending.starts_with(&["api".to_owned(), "hash".to_owned()]),
            "{sending:?}"
        );
        assert!(!sending.contains(&"token".to_owned()));
        assert_eq!(
            sending.contains(&"twilio".to_owned()),
            cfg!(feature = "sending"),
            "{sending:?}"
        );
        // Under IAM auth there are no API keys to read.
        let mut iam = settings.clone();
        iam.callers = CallerAuth::Iam;
        assert!(!secret_ids(&iam, Routes::Verifying)
            .iter()
            .any(|arn| arn.ends_with(":api")));
    }

    #[tokio::test]
    async fn the_verify_function_builds_no_sender() {
        let mut settings = Settings::from_lookup(Runtime::Local, &|_| None).unwrap();
        settings.delivery.email = Some(crate::settings::SesSettings {
            from: "a@example.com".to_owned(),
            configuration_set: None,
        });
        let engine = build(settings, Routes::Verifying).await.unwrap();
        assert_eq!(
            engine.senders().describe(),
            "sms: unavailable, whatsapp: unavailable, voice: unavailable, email: unavailable"
        );
    }
}

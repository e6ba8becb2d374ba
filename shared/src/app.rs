//! Wiring: builds the engine once at start-up from the environment, for the local server or
//! for a Lambda function.

use std::sync::Arc;

use crate::clock::SystemClock;
use crate::code::{CodeHasher, HashKey};
use crate::config::{Config, ConfigError, HASH_KEY_SECRET_ARN};
use crate::engine::Engine;
use crate::sender::setup;
use crate::store::{DynamoStore, MemoryStore, OtpStore, TABLE_NAME_VAR};
use secrecy::ExposeSecret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// The local API server: console delivery and a per-process key are acceptable.
    Local,
    /// A deployed function: every secret must be configured, and no code is ever printed.
    Lambda,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot read secret {arn}: {reason}")]
    Secret { arn: String, reason: String },
    #[error("cannot build an HTTP client")]
    Client(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the AWS SDK configuration was needed but not loaded (a bug)")]
    AwsNotLoaded,
}

/// The engine and a one-line description of what it runs on, for the start-up log.
pub struct Built {
    pub engine: Engine,
    pub store: String,
}

pub async fn build_engine(runtime: Runtime) -> Result<Built, InitError> {
    build_engine_with(runtime, &|var| std::env::var(var).ok()).await
}

/// [`build_engine`] with the environment given as a lookup function.
pub async fn build_engine_with(
    runtime: Runtime,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Built, InitError> {
    let mut config = Config::from_lookup(env)?;
    let key_secret = env(HASH_KEY_SECRET_ARN).filter(|arn| !arn.trim().is_empty());
    let table = env(TABLE_NAME_VAR).filter(|t| !t.trim().is_empty());
    // Loaded once, only when something talks to AWS: a purely local run never touches it.
    let aws = if table.is_some() || key_secret.is_some() || setup::needs_aws(env) {
        Some(crate::aws::load().await)
    } else {
        None
    };
    let key = match (runtime, config.require_hash_key(), key_secret) {
        (_, Ok(key), _) => key,
        // The production way: the key never sits in an environment variable.
        (_, Err(_), Some(arn)) => {
            let text = setup::read_secret_field(aws.as_ref(), arn.trim(), &["key"]).await?;
            Config::hash_key_from_secret(text.expose_secret())?
        }
        (Runtime::Lambda, Err(missing), None) => return Err(missing.into()),
        (Runtime::Local, Err(_), None) => {
            tracing::warn!(
                "OTP_HASH_KEY is not set: using a random key for this process; codes will not \
                 survive a restart. Set OTP_HASH_KEY (32+ bytes, hex or base64) to keep them."
            );
            HashKey::random()
        }
    };
    let hasher = CodeHasher::new(&key);
    let (store, store_description): (Arc<dyn OtpStore>, String) = match (runtime, table) {
        (_, Some(table)) => {
            let sdk = aws.as_ref().ok_or(InitError::AwsNotLoaded)?;
            let client = aws_sdk_dynamodb::Client::new(sdk);
            let description = format!("DynamoDB table {table}");
            (
                Arc::new(DynamoStore::new(client, table, hasher.clone())),
                description,
            )
        }
        (Runtime::Local, None) => (
            Arc::new(MemoryStore::new()),
            "in-memory (embedded)".to_owned(),
        ),
        (Runtime::Lambda, None) => {
            return Err(ConfigError::Missing {
                var: TABLE_NAME_VAR,
                hint: "the DynamoDB table that holds the codes (template.yaml sets it)",
            }
            .into())
        }
    };
    let senders = setup::senders_from_env(runtime, env, aws.as_ref()).await?;
    tracing::info!(
        store = %store_description,
        delivery = %senders.describe(),
        policy = ?config.policy,
        "engine ready"
    );
    let engine = Engine::new(
        store,
        senders,
        hasher,
        config.policy,
        config.brand,
        Arc::new(SystemClock),
    );
    Ok(Built {
        engine,
        store: store_description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Channel;

    #[tokio::test]
    async fn lambda_refuses_to_start_without_a_hash_key() {
        let error = build_engine_with(Runtime::Lambda, &|_| None)
            .await
            .err()
            .expect("no key, no start");
        assert!(
            error.to_string().contains("OTP_HASH_KEY is required"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn lambda_refuses_to_start_without_a_table() {
        let key = "22".repeat(32);
        let error = build_engine_with(Runtime::Lambda, &|var| {
            (var == "OTP_HASH_KEY").then(|| key.clone())
        })
        .await
        .err()
        .expect("no table, no start");
        assert!(
            error.to_string().contains("OTP_TABLE_NAME is required"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn lambda_never_uses_the_console_sender() {
        let key = "22".repeat(32);
        let built = build_engine_with(Runtime::Lambda, &|var| match var {
            "OTP_HASH_KEY" => Some(key.clone()),
            "OTP_TABLE_NAME" => Some("otp-codes".to_owned()),
            _ => None,
        })
        .await
        .unwrap();
        assert_eq!(built.store, "DynamoDB table otp-codes");
        assert!(built.engine.senders().for_channel(Channel::Sms).is_none());
        assert!(built.engine.senders().for_channel(Channel::Email).is_none());
    }

    #[tokio::test]
    async fn local_server_starts_without_a_key_and_prints_codes() {
        let built = build_engine_with(Runtime::Local, &|_| None).await.unwrap();
        assert_eq!(
            built.engine.senders().describe(),
            "sms: console (dev), email: console (dev)"
        );
    }
}

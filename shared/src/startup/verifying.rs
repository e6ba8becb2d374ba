//! What only a unit with the verify routes builds: the verification token's signer. Not
//! compiled without the `verifying` feature.

use secrecy::ExposeSecret;

use super::{Aws, InitError};
use crate::keys::{HashKey, HashKeyError};
use crate::settings::{
    ConfigError, Runtime, Settings, TokenKeys, KEY_HELP, TOKEN_SIGNING_KEY,
    TOKEN_SIGNING_KEY_SECRET_ARN,
};
use crate::token::TokenSigner;

/// The verification token's signer: its keys from the settings, a secret, or (locally) a fresh
/// key for this process.
pub(super) async fn token_signer(settings: &Settings, aws: &Aws) -> Result<TokenSigner, InitError> {
    let policy = settings.token.policy.clone();
    let invalid = |var: &'static str| {
        move |e: HashKeyError| ConfigError::Invalid {
            var,
            reason: format!("{e} ({KEY_HELP})"),
        }
    };
    match &settings.token.keys {
        TokenKeys::Ring(ring) => {
            Ok(TokenSigner::parse(ring.expose_secret(), policy)
                .map_err(invalid(TOKEN_SIGNING_KEY))?)
        }
        TokenKeys::Secret(arn) => {
            let ring = aws.read_secret(arn).await?.field(arn, &["key", "keys"])?;
            Ok(TokenSigner::parse(ring.expose_secret(), policy)
                .map_err(invalid(TOKEN_SIGNING_KEY_SECRET_ARN))?)
        }
        TokenKeys::Unset => match settings.runtime {
            Runtime::Local => {
                tracing::warn!(
                    "OTP_TOKEN_SIGNING_KEY is not set: verification tokens are signed with a random \
                     key for this process; a restart changes the key in /.well-known/jwks.json."
                );
                Ok(TokenSigner::new(&[HashKey::random()], policy)
                    .expect("one fresh key is a valid ring"))
            }
            Runtime::Lambda => Err(InitError::Config(ConfigError::Missing {
                var: TOKEN_SIGNING_KEY_SECRET_ARN,
                hint: "the key that signs verification tokens: a Secrets Manager secret of 32+ \
                       bytes, hex or base64 (template.yaml generates one)",
            })),
        },
    }
}

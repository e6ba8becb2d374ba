//! Verification tokens: what a successful check hands the caller so that an application's backend
//! can trust it without asking us. A token is a compact JWS (RFC 7515) signed with Ed25519
//! (`alg: EdDSA`, RFC 8037), its `kid` the key's JWK thumbprint (RFC 7638); the public keys are
//! served as a JWK Set.
//!
//! The signing keys are derived from secrets (`OTP_TOKEN_SIGNING_KEY`, or a Secrets Manager
//! secret that CloudFormation generates), so no key file is stored anywhere: the same secret
//! always gives the same key and `kid`. A ring is `current[,previous...]`: the current key signs;
//! every key is published, so tokens signed before a rotation still check until they expire.

use std::fmt;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{KeyInit as _, Mac as _};
use rand::RngExt as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::domain::Space;
use crate::keys::{parse_secrets, HashKey, HashKeyError, MAX_RING_KEYS};

/// Domain separation: a secret is never used as an Ed25519 seed as it is, so even a secret
/// shared by mistake with the code-hash key gives an unrelated key.
const SEED_LABEL: &[u8] = b"otp-service verification token Ed25519 seed v1";

/// One Ed25519 key with its `kid`.
struct SigningKey {
    kid: String,
    pair: Ed25519KeyPair,
}

impl SigningKey {
    fn derive(secret: &HashKey) -> Self {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.bytes())
            .expect("HMAC takes keys of any length");
        mac.update(SEED_LABEL);
        Self::from_seed(&mac.finalize().into_bytes())
    }

    fn from_seed(seed: &[u8]) -> Self {
        let pair =
            Ed25519KeyPair::from_seed_unchecked(seed).expect("every 32 bytes are an Ed25519 seed");
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        // RFC 7638: the required members, in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Self { kid, pair }
    }

    fn jwk(&self) -> Jwk<'_> {
        Jwk {
            kty: "OKP",
            crv: "Ed25519",
            x: URL_SAFE_NO_PAD.encode(self.pair.public_key().as_ref()),
            kid: &self.kid,
            alg: "EdDSA",
            use_: "sig",
        }
    }
}

#[derive(Serialize)]
struct Jwk<'a> {
    kty: &'static str,
    crv: &'static str,
    x: String,
    kid: &'a str,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

/// What a token says, besides who issued it and for whom.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Which route family verified it: the token's `aud` tells the two apart, so a backend
    /// token (whose `sub` is any id a backend chose) never passes for a browser one.
    pub space: Space,
    /// The user id, or on the public routes the address.
    pub sub: &'a str,
    pub purpose: &'a str,
    /// How the code had been sent: `sms` or `email`.
    pub channel: &'a str,
    /// The address the code proved, for the public email check only (`email` and
    /// `email_verified: true`, as OpenID Connect names them). A `/verify-code` token never has
    /// it, even when its user id looks like an address: that id is the caller's choice, not
    /// something the code was sent to.
    pub email: Option<&'a str>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    purpose: &'a str,
    channel: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    iat: u64,
    exp: u64,
    jti: String,
}

/// Who signs tokens, for whom, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    pub issuer: String,
    /// The `aud` of tokens from `/auth/verify-otp` (the browser flow).
    pub audience: String,
    /// The `aud` of tokens from `/verify-code`; never the same as `audience`.
    pub backend_audience: String,
    pub ttl_secs: u64,
}

/// The keys and the policy: issues tokens and publishes the public keys.
pub struct TokenSigner {
    keys: Vec<SigningKey>,
    policy: TokenPolicy,
    jwks: String,
}

impl TokenSigner {
    /// The first secret signs; all are published.
    pub fn new(secrets: &[HashKey], policy: TokenPolicy) -> Result<Self, HashKeyError> {
        if secrets.is_empty() {
            return Err(HashKeyError::Empty);
        }
        if secrets.len() > MAX_RING_KEYS {
            return Err(HashKeyError::TooMany(secrets.len()));
        }
        let keys: Vec<SigningKey> = secrets.iter().map(SigningKey::derive).collect();
        let set =
            serde_json::json!({ "keys": keys.iter().map(SigningKey::jwk).collect::<Vec<_>>() });
        Ok(Self {
            jwks: set.to_string(),
            keys,
            policy,
        })
    }

    /// `current[,previous...]`, each secret hex or base64 of at least 32 bytes.
    pub fn parse(ring: &str, policy: TokenPolicy) -> Result<Self, HashKeyError> {
        Self::new(&parse_secrets(ring)?, policy)
    }

    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// The `kid` new tokens are signed with.
    pub fn current_kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// The JWK Set of every key in the ring, as served at `/.well-known/jwks.json`.
    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }

    /// A token for `subject`, issued at `now` (Unix seconds), with a fresh random `jti`.
    pub fn issue(&self, subject: Subject<'_>, now: u64) -> String {
        let key = &self.keys[0];
        let mut jti = [0u8; 16];
        rand::rng().fill(&mut jti[..]);
        let header = Header {
            alg: "EdDSA",
            typ: "JWT",
            kid: &key.kid,
        };
        let claims = Claims {
            iss: &self.policy.issuer,
            aud: match subject.space {
                Space::Public => &self.policy.audience,
                Space::Backend => &self.policy.backend_audience,
            },
            sub: subject.sub,
            purpose: subject.purpose,
            channel: subject.channel,
            email: subject.email,
            email_verified: subject.email.map(|_| true),
            iat: now,
            exp: now + self.policy.ttl_secs,
            jti: URL_SAFE_NO_PAD.encode(jti),
        };
        let mut token = format!("{}.{}", encoded(&header), encoded(&claims));
        let signature = key.pair.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        token
    }
}

/// A token part: JSON, base64url without padding.
fn encoded(part: &impl Serialize) -> String {
    // Plain structs of strings and numbers always serialise.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(part).expect("token parts serialise"))
}

impl fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenSigner({} keys, current kid {}, {:?})",
            self.keys.len(),
            self.current_kid(),
            self.policy
        )
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{UnparsedPublicKey, ED25519};
    use serde_json::Value;

    use super::*;

    fn policy() -> TokenPolicy {
        TokenPolicy {
            backend_audience: "acme-backend".to_owned(),
            issuer: "https://otp.example.com".to_owned(),
            audience: "acme-web".to_owned(),
            ttl_secs: 300,
        }
    }

    fn part(token: &str, index: usize) -> Value {
        let text = token.split('.').nth(index).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).unwrap()).unwrap()
    }

    #[test]
    fn a_token_carries_the_claims_and_a_signature_the_published_key_checks() {
        let signer = TokenSigner::parse(&"11".repeat(32), policy()).unwrap();
        let subject = Subject {
            space: Space::Backend,
            sub: "user-1",
            purpose: "login",
            channel: "sms",
            email: None,
        };
        let token = signer.issue(subject, 1_800_000_000);
        let header = part(&token, 0);
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], signer.current_kid());
        let claims = part(&token, 1);
        assert_eq!(claims["iss"], "https://otp.example.com");
        assert_eq!(claims["aud"], "acme-backend");
        assert_eq!(claims["sub"], "user-1");
        assert_eq!(claims["purpose"], "login");
        assert_eq!(claims["channel"], "sms");
        assert!(claims.get("email").is_none() && claims.get("email_verified").is_none());
        assert_eq!(claims["iat"], 1_800_000_000u64);
        assert_eq!(claims["exp"], 1_800_000_300u64);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 22);
        assert_ne!(part(&signer.issue(subject, 1), 1)["jti"], claims["jti"]);

        let jwks: Value = serde_json::from_str(signer.jwks_json()).unwrap();
        let x = URL_SAFE_NO_PAD
            .decode(jwks["keys"][0]["x"].as_str().unwrap())
            .unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        let key = UnparsedPublicKey::new(&ED25519, &x);
        key.verify(signed.as_bytes(), &signature).unwrap();
        let mut forged = signed.to_owned();
        forged.push(' ');
        assert!(key.verify(forged.as_bytes(), &signature).is_err());
    }

    #[test]
    fn the_same_secret_gives_the_same_kid_and_a_ring_publishes_every_key() {
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));
        let one = TokenSigner::parse(&a, policy()).unwrap();
        let rotated = TokenSigner::parse(&format!("{b},{a}"), policy()).unwrap();
        assert_ne!(rotated.current_kid(), one.current_kid());
        let jwks: Value = serde_json::from_str(rotated.jwks_json()).unwrap();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [rotated.current_kid(), one.current_kid()]);
        assert_eq!(jwks["keys"][0]["kty"], "OKP");
        assert_eq!(jwks["keys"][0]["use"], "sig");
        // No private part is ever published.
        assert!(jwks["keys"][0].get("d").is_none());
    }

    #[test]
    fn the_rfc_8037_example_key_gives_its_public_key_thumbprint_and_signature() {
        // RFC 8037 appendix A: the example private key (A.1), its public key (A.2), its JWK
        // thumbprint (A.3) and the JWS of "Example of Ed25519 signing" (A.4).
        let seed = URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap();
        let key = SigningKey::from_seed(&seed);
        assert_eq!(key.jwk().x, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(key.kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let signed = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        assert_eq!(
            URL_SAFE_NO_PAD.encode(key.pair.sign(signed.as_bytes())),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    #[test]
    fn a_ring_is_bounded_and_secrets_are_never_printed() {
        let five = vec!["cc".repeat(32); 5].join(",");
        assert_eq!(
            TokenSigner::parse(&five, policy()).unwrap_err(),
            HashKeyError::TooMany(5)
        );
        assert_eq!(
            TokenSigner::parse(" ", policy()).unwrap_err(),
            HashKeyError::Empty
        );
        let signer = TokenSigner::parse(&"cc".repeat(32), policy()).unwrap();
        assert!(!format!("{signer:?}").contains("cccc"));
    }
}

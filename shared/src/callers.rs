//! Who may call the backend routes (`/send-code`, `/verify-code`): API keys, API Gateway's IAM
//! authorizer, or nobody checked at all. Keys are kept only as SHA-256 digests and compared in
//! constant time; a key is a long random token, so a fast hash is enough (nothing to brute-force).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The prefix of keys made by `otp-service new-api-key`, so that a leaked one is recognisable
/// (secret scanners, log searches). Keys without it are accepted too.
pub const KEY_PREFIX: &str = "otpk_";
pub const KEY_MIN_CHARS: usize = 32;
pub const NAME_MAX_CHARS: usize = 64;
pub const MAX_KEYS: usize = 20;

/// What a key may do; a key without a scope may do both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Send,
    Verify,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Send => "send",
            Scope::Verify => "verify",
        }
    }
}

#[derive(Clone)]
struct ApiKey {
    name: String,
    scope: Option<Scope>,
    digest: [u8; 32],
}

/// The valid keys: several at once, so one can be rotated in before the old one goes.
#[derive(Clone)]
pub struct ApiKeys(Vec<ApiKey>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApiKeysError {
    #[error("entry {0} is not `name=key` (optionally `name=key:send` or `name=key:verify`)")]
    Shape(usize),
    #[error("key name {0:?} must be 1-64 letters, digits, '.', '_' or '-'")]
    Name(String),
    #[error("key {0:?} is shorter than 32 characters or contains spaces")]
    Weak(String),
    #[error("key name {0:?} is used twice")]
    Duplicate(String),
    #[error("no key given")]
    Empty,
    #[error("more than 20 keys")]
    TooMany,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn valid_name(name: &str) -> bool {
    (1..=NAME_MAX_CHARS).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

impl ApiKeys {
    /// `name=key[:scope],...`, the format of `OTP_API_KEYS` and of a plain-text secret.
    pub fn parse(text: &SecretString) -> Result<Self, ApiKeysError> {
        let entries = text
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .enumerate()
            .map(|(index, entry)| {
                let (name, rest) = entry
                    .split_once('=')
                    .ok_or(ApiKeysError::Shape(index + 1))?;
                let (key, scope) = match rest.rsplit_once(':') {
                    Some((key, "send")) => (key, Some(Scope::Send)),
                    Some((key, "verify")) => (key, Some(Scope::Verify)),
                    _ => (rest, None),
                };
                Ok((name.trim(), key.trim(), scope))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_entries(entries)
    }

    /// Keys from (name, key, scope) triples, checked.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str, Option<Scope>)>,
    ) -> Result<Self, ApiKeysError> {
        let mut keys: Vec<ApiKey> = Vec::new();
        for (name, key, scope) in entries {
            if !valid_name(name) {
                return Err(ApiKeysError::Name(name.to_owned()));
            }
            if key.chars().count() < KEY_MIN_CHARS || key.chars().any(char::is_whitespace) {
                return Err(ApiKeysError::Weak(name.to_owned()));
            }
            if keys.iter().any(|k| k.name == name) {
                return Err(ApiKeysError::Duplicate(name.to_owned()));
            }
            keys.push(ApiKey {
                name: name.to_owned(),
                scope,
                digest: digest(key),
            });
        }
        match keys.len() {
            0 => Err(ApiKeysError::Empty),
            n if n > MAX_KEYS => Err(ApiKeysError::TooMany),
            _ => Ok(Self(keys)),
        }
    }

    /// The name of the key `presented` is, checked against every key in constant time (the
    /// time does not depend on which key matched, or how much of one did).
    fn find(&self, presented: &str) -> Option<&ApiKey> {
        let presented = digest(presented);
        let mut found = None;
        for key in &self.0 {
            if bool::from(key.digest.ct_eq(&presented)) {
                found = Some(key);
            }
        }
        found
    }

    /// A JSON secret: `{"name": ..., "key": ..., "scope": ...}` (one key; what the template
    /// generates, `name` defaulting to `default`) or `{"keys": "name=key,..."}`.
    pub fn from_json(
        object: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, ApiKeysError> {
        let text = |field: &str| object.get(field).and_then(serde_json::Value::as_str);
        if let Some(list) = text("keys") {
            return Self::parse(&SecretString::from(list.to_owned()));
        }
        let key = text("key").ok_or(ApiKeysError::Empty)?;
        let scope = match text("scope") {
            None | Some("") => None,
            Some("send") => Some(Scope::Send),
            Some("verify") => Some(Scope::Verify),
            Some(_) => return Err(ApiKeysError::Shape(1)),
        };
        Self::from_entries([(text("name").unwrap_or("default"), key, scope)])
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|k| k.name.as_str()).collect()
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({:?})", self.names())
    }
}

/// Who may call the backend routes.
#[derive(Debug)]
pub enum Callers {
    /// Anyone: only when `OTP_CALLER_AUTH=none` is said explicitly (or by `make run` by default).
    Open,
    /// API Gateway's `AWS_IAM` authorizer checked the SigV4 signature; the function still
    /// requires the identity it passes on, so a route left without the authorizer stays shut.
    Iam,
    ApiKeys(ApiKeys),
}

/// What a request shows about its caller.
pub struct Credentials<'a> {
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The IAM identity API Gateway verified, if any (its ARN).
    pub iam_identity: Option<&'a str>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No credential, or not a valid one: 401.
    Unauthenticated(&'static str),
    /// A valid key without the scope this route needs: 403.
    OutOfScope { name: String },
}

impl Callers {
    /// The caller's name for logs (never the key), or why it may not call a route of `scope`.
    pub fn admit(&self, credentials: &Credentials<'_>, scope: Scope) -> Result<String, Denied> {
        match self {
            Callers::Open => Ok("anonymous".to_owned()),
            Callers::Iam => {
                credentials
                    .iam_identity
                    .map(str::to_owned)
                    .ok_or(Denied::Unauthenticated(
                        "This route needs a SigV4-signed request (IAM authorization).",
                    ))
            }
            Callers::ApiKeys(keys) => {
                let token = credentials.authorization.and_then(bearer_token).ok_or(
                    Denied::Unauthenticated("Missing API key: send `Authorization: Bearer <key>`."),
                )?;
                let key = keys
                    .find(token)
                    .ok_or(Denied::Unauthenticated("The API key is not valid."))?;
                match key.scope {
                    Some(allowed) if allowed != scope => Err(Denied::OutOfScope {
                        name: key.name.clone(),
                    }),
                    _ => Ok(key.name.clone()),
                }
            }
        }
    }

    /// For the start-up line.
    pub fn describe(&self) -> String {
        match self {
            Callers::Open => "none (the backend routes are OPEN to anyone)".to_owned(),
            Callers::Iam => "iam (API Gateway AWS_IAM authorizer)".to_owned(),
            Callers::ApiKeys(keys) => format!("api_key ({})", keys.names().join(", ")),
        }
    }
}

/// The token of `Bearer <token>` (the scheme is case-insensitive, RFC 9110 §11.1).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A new key: the prefix and 32 random bytes, base64url (256 bits from the OS-seeded CSPRNG).
pub fn new_key() -> SecretString {
    use base64::Engine as _;
    use rand::RngExt as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes[..]);
    let random = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    SecretString::from(format!("{KEY_PREFIX}{random}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "otpk_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn keys(text: &str) -> Result<ApiKeys, ApiKeysError> {
        ApiKeys::parse(&SecretString::from(text.to_owned()))
    }

    fn bearer(callers: &Callers, header: &str, scope: Scope) -> Result<String, Denied> {
        callers.admit(
            &Credentials {
                authorization: Some(header),
                iam_identity: None,
            },
            scope,
        )
    }

    #[test]
    fn keys_parse_with_names_and_scopes() {
        let parsed = keys(&format!(" backend={A} , mailer={B}:send ")).unwrap();
        assert_eq!(parsed.names(), ["backend", "mailer"]);
        let callers = Callers::ApiKeys(parsed);
        assert_eq!(
            bearer(&callers, &format!("Bearer {A}"), Scope::Verify),
            Ok("backend".into())
        );
        assert_eq!(
            bearer(&callers, &format!("bearer  {B}"), Scope::Send),
            Ok("mailer".into())
        );
        assert_eq!(
            bearer(&callers, &format!("Bearer {B}"), Scope::Verify),
            Err(Denied::OutOfScope {
                name: "mailer".into()
            })
        );
    }

    #[test]
    fn wrong_or_missing_keys_are_unauthenticated() {
        let callers = Callers::ApiKeys(keys(&format!("backend={A}")).unwrap());
        for header in [
            "",
            "Bearer",
            "Bearer ",
            A,
            &format!("Basic {A}"),
            &format!("Bearer {A}x"),
            &format!("Bearer {}", &A[..A.len() - 1]),
        ] {
            assert!(
                matches!(
                    bearer(&callers, header, Scope::Send),
                    Err(Denied::Unauthenticated(_))
                ),
                "{header:?}"
            );
        }
        let none = Credentials {
            authorization: None,
            iam_identity: Some("arn:aws:iam::1:user/x"),
        };
        assert!(callers.admit(&none, Scope::Send).is_err());
    }

    #[test]
    fn bad_key_lists_are_refused_with_the_reason() {
        assert_eq!(keys("").unwrap_err(), ApiKeysError::Empty);
        assert_eq!(keys("backend").unwrap_err(), ApiKeysError::Shape(1));
        assert_eq!(
            keys("backend=short").unwrap_err(),
            ApiKeysError::Weak("backend".into())
        );
        assert_eq!(
            keys(&format!("a b={A}")).unwrap_err(),
            ApiKeysError::Name("a b".into())
        );
        assert_eq!(
            keys(&format!("x={A},x={B}")).unwrap_err(),
            ApiKeysError::Duplicate("x".into())
        );
        // A key itself is never part of an error or of the debug form.
        let parsed = keys(&format!("backend={A}")).unwrap();
        assert!(!format!("{parsed:?}").contains(A));
    }

    #[test]
    fn iam_needs_the_identity_api_gateway_verified() {
        let signed = Credentials {
            authorization: None,
            iam_identity: Some("arn:aws:iam::123456789012:role/backend"),
        };
        assert_eq!(
            Callers::Iam.admit(&signed, Scope::Send),
            Ok("arn:aws:iam::123456789012:role/backend".into())
        );
        let unsigned = Credentials {
            authorization: Some(&format!("Bearer {A}")),
            iam_identity: None,
        };
        assert!(Callers::Iam.admit(&unsigned, Scope::Send).is_err());
        assert!(Callers::Open.admit(&unsigned, Scope::Verify).is_ok());
    }

    #[test]
    fn json_secrets_hold_one_key_or_a_list() {
        let object = |value: serde_json::Value| value.as_object().unwrap().clone();
        let one = ApiKeys::from_json(&object(serde_json::json!({"key": B}))).unwrap();
        assert_eq!(one.names(), ["default"]);
        let list = format!("a={A},b={B}:verify");
        let many = ApiKeys::from_json(&object(serde_json::json!({"keys": list}))).unwrap();
        assert_eq!(many.names(), ["a", "b"]);
        assert!(ApiKeys::from_json(&object(serde_json::json!({"name": "x"}))).is_err());
    }

    #[test]
    fn new_keys_are_prefixed_random_and_accepted() {
        let (one, two) = (new_key(), new_key());
        assert!(one.expose_secret().starts_with(KEY_PREFIX));
        assert_eq!(one.expose_secret().len(), KEY_PREFIX.len() + 43);
        assert_ne!(one.expose_secret(), two.expose_secret());
        let text = format!("k={}", one.expose_secret());
        assert!(keys(&text).is_ok());
    }
}

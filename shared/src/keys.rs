//! Secret key material: the key ring for code hashes and the key that names records.
//!
//! A ring is written `current[,previous...]` (in `OTP_HASH_KEY` or the secret): new codes are
//! hashed with the current key; a pending code made with a previous key still verifies until it
//! expires. Records are named (the DynamoDB `pk` pseudonym) with a separate, stable key, so that
//! rotating the code key never moves a record: `OTP_PSEUDONYM_KEY` when set, otherwise the
//! ring's last (oldest) key, which for a deployment that has only ever had one key is that key.

use std::fmt;

use rand::RngExt;
use secrecy::{ExposeSecret, SecretBox};

pub const MIN_KEY_BYTES: usize = 32;
/// More keys than this make every verification hash the guess needlessly often.
pub const MAX_RING_KEYS: usize = 4;

/// Secret key material, at least 32 bytes.
pub struct HashKey(SecretBox<Vec<u8>>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashKeyError {
    #[error("is neither hex nor base64")]
    NotEncoded,
    #[error("decodes to {0} bytes; at least {MIN_KEY_BYTES} are required")]
    TooShort(usize),
    #[error("holds no key")]
    Empty,
    #[error(
        "holds {0} keys; at most {MAX_RING_KEYS} (the current one and previous ones) are allowed"
    )]
    TooMany(usize),
}

impl HashKey {
    /// Accepts hex (preferred when the text is all hex digits) or standard/URL-safe base64.
    pub fn parse(text: &str) -> Result<Self, HashKeyError> {
        use base64::Engine as _;
        let text = text.trim();
        let is_hex = text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit());
        let bytes = if is_hex {
            hex::decode(text).map_err(|_| HashKeyError::NotEncoded)?
        } else {
            let engines = [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::STANDARD_NO_PAD,
                base64::engine::general_purpose::URL_SAFE,
                base64::engine::general_purpose::URL_SAFE_NO_PAD,
            ];
            engines
                .iter()
                .find_map(|engine| engine.decode(text).ok())
                .ok_or(HashKeyError::NotEncoded)?
        };
        Self::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, HashKeyError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(HashKeyError::TooShort(bytes.len()));
        }
        Ok(Self(SecretBox::new(Box::new(bytes))))
    }

    /// A fresh random key, for a local server started without one.
    pub fn random() -> Self {
        let mut bytes = vec![0u8; MIN_KEY_BYTES];
        rand::rng().fill(&mut bytes[..]);
        Self(SecretBox::new(Box::new(bytes)))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl Clone for HashKey {
    fn clone(&self) -> Self {
        Self(SecretBox::new(Box::new(self.bytes().to_vec())))
    }
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(***)")
    }
}

/// The secrets of a ring written `current[,previous...]`, in order (blank entries ignored).
pub fn parse_secrets(ring: &str) -> Result<Vec<HashKey>, HashKeyError> {
    ring.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(HashKey::parse)
        .collect()
}

/// The keys of a running service: code keys (current first) and the record-naming key.
#[derive(Clone)]
pub struct KeyRing {
    code_keys: Vec<HashKey>,
    pseudonym_key: HashKey,
}

impl KeyRing {
    /// `current[,previous...]`; the pseudonym key is `pseudonym` or else the last key.
    pub fn parse(ring: &str, pseudonym: Option<&str>) -> Result<Self, HashKeyError> {
        let code_keys = parse_secrets(ring)?;
        let pseudonym_key = pseudonym.map(HashKey::parse).transpose()?;
        Self::new(code_keys, pseudonym_key)
    }

    pub fn new(
        code_keys: Vec<HashKey>,
        pseudonym_key: Option<HashKey>,
    ) -> Result<Self, HashKeyError> {
        if code_keys.len() > MAX_RING_KEYS {
            return Err(HashKeyError::TooMany(code_keys.len()));
        }
        let last = code_keys.last().ok_or(HashKeyError::Empty)?.clone();
        Ok(Self {
            pseudonym_key: pseudonym_key.unwrap_or(last),
            code_keys,
        })
    }

    /// One key for everything.
    pub fn single(key: HashKey) -> Self {
        Self {
            pseudonym_key: key.clone(),
            code_keys: vec![key],
        }
    }

    pub fn code_keys(&self) -> &[HashKey] {
        &self.code_keys
    }

    pub fn pseudonym_key(&self) -> &HashKey {
        &self.pseudonym_key
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRing({} code keys, ***)", self.code_keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parses_hex_or_base64_and_needs_32_bytes() {
        assert!(HashKey::parse(&"00".repeat(32)).is_ok());
        assert!(HashKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").is_ok());
        assert!(HashKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_ok());
        assert_eq!(
            HashKey::parse(&"00".repeat(31)).unwrap_err(),
            HashKeyError::TooShort(31)
        );
        assert_eq!(
            HashKey::parse("not a key!").unwrap_err(),
            HashKeyError::NotEncoded
        );
        assert_eq!(format!("{:?}", HashKey::random()), "HashKey(***)");
    }

    #[test]
    fn ring_is_current_first_and_names_records_with_the_last_key() {
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));
        let ring = KeyRing::parse(&format!("{a}, {b}"), None).unwrap();
        assert_eq!(ring.code_keys().len(), 2);
        assert_eq!(ring.code_keys()[0].bytes(), &[0xaa; 32]);
        assert_eq!(ring.pseudonym_key().bytes(), &[0xbb; 32]);
        let pinned = KeyRing::parse(&a, Some(&b)).unwrap();
        assert_eq!(pinned.pseudonym_key().bytes(), &[0xbb; 32]);
        assert_eq!(
            KeyRing::parse(" , ", None).unwrap_err(),
            HashKeyError::Empty
        );
        let five = [a.as_str(); 5].join(",");
        assert_eq!(
            KeyRing::parse(&five, None).unwrap_err(),
            HashKeyError::TooMany(5)
        );
        assert!(KeyRing::parse(&format!("{a},short"), None).is_err());
        assert!(!format!("{ring:?}").contains("aa"));
    }
}

//! One-time codes: generation from the OS-seeded CSPRNG, and the keyed hash that is all we store.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::{Passcode, Purpose, UserId};

/// A freshly generated code. It leaves the process only inside the message to the user.
pub struct OneTimeCode(SecretString);

impl OneTimeCode {
    /// `length` uniform decimal digits from `rand`'s thread-local CSPRNG (ChaCha, seeded from
    /// the OS). `random_range` rejects out-of-range samples, so no digit is more likely.
    pub fn generate(length: usize) -> Self {
        let mut rng = rand::rng();
        let code: String = (0..length)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        Self(SecretString::from(code))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeCode(***)")
    }
}

pub const HASH_LEN: usize = 32;

/// HMAC-SHA256 of (purpose, user id, code). Deliberately not `PartialEq`: comparisons go
/// through [`CodeHash::ct_eq`] so no caller can compare in variable time by accident.
#[derive(Clone)]
pub struct CodeHash([u8; HASH_LEN]);

impl CodeHash {
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    pub fn ct_eq(&self, other: &CodeHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHash(..)")
    }
}

/// Secret key material for the code HMAC, at least 32 bytes.
pub struct HashKey(SecretBox<Vec<u8>>);

pub const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashKeyError {
    #[error("is neither hex nor base64")]
    NotEncoded,
    #[error("decodes to {0} bytes; at least {MIN_KEY_BYTES} are required")]
    TooShort(usize),
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
}

impl fmt::Debug for HashKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashKey(***)")
    }
}

/// Computes code hashes. The keyed HMAC state is built once and cloned per hash, which saves the
/// two key-block compressions on every request.
#[derive(Clone)]
pub struct CodeHasher {
    keyed: Hmac<Sha256>,
}

impl CodeHasher {
    pub fn new(key: &HashKey) -> Self {
        let keyed = Hmac::<Sha256>::new_from_slice(key.0.expose_secret())
            .expect("HMAC accepts keys of any length");
        Self { keyed }
    }

    /// The NUL separators make the input unambiguous: a purpose has no NUL, a code is digits.
    pub fn hash(&self, purpose: &Purpose, user_id: &UserId, code: &str) -> CodeHash {
        let mut mac = self.keyed.clone();
        mac.update(purpose.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(user_id.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        let mut out = [0u8; HASH_LEN];
        out.copy_from_slice(&mac.finalize().into_bytes());
        CodeHash(out)
    }

    /// A keyed, stable stand-in for a user id in storage keys, so that no address or phone
    /// number (the `/auth/*` routes use the address as the id) sits in the table. The `PK`
    /// prefix cannot start a code-hash input: purposes are lower-case.
    pub fn pseudonym(&self, user_id: &UserId) -> String {
        use base64::Engine as _;
        let mut mac = self.keyed.clone();
        mac.update(b"PK\0");
        mac.update(user_id.as_str().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    pub fn hash_code(&self, purpose: &Purpose, user_id: &UserId, code: &OneTimeCode) -> CodeHash {
        self.hash(purpose, user_id, code.expose())
    }

    pub fn hash_passcode(&self, purpose: &Purpose, user_id: &UserId, guess: &Passcode) -> CodeHash {
        self.hash(purpose, user_id, guess.expose())
    }
}

impl fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeHasher(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> CodeHasher {
        CodeHasher::new(&HashKey::parse(&"ab".repeat(32)).unwrap())
    }

    #[test]
    fn codes_have_the_requested_length_and_only_digits() {
        for length in 4..=10 {
            let code = OneTimeCode::generate(length);
            assert_eq!(code.expose().len(), length);
            assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn digits_are_roughly_uniform() {
        // 60,000 digits: each count is ~6,000 with sd ~73; 5,500..6,500 is ~7 sd either side.
        let mut counts = [0u32; 10];
        for _ in 0..10_000 {
            for b in OneTimeCode::generate(6).expose().bytes() {
                counts[usize::from(b - b'0')] += 1;
            }
        }
        assert!(
            counts.iter().all(|&c| (5_500..6_500).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn hash_matches_hmac_sha256_reference() {
        // RFC 4231-style check against an independent computation of the same construction.
        let key = HashKey::parse(&"0b".repeat(32)).unwrap();
        let hash = CodeHasher::new(&key).hash(
            &Purpose::parse("login").unwrap(),
            &UserId::parse("u1").unwrap(),
            "123456",
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(&[0x0b; 32]).unwrap();
        mac.update(b"login\x00u1\x00123456");
        assert_eq!(hash.as_bytes()[..], mac.finalize().into_bytes()[..]);
    }

    #[test]
    fn hash_depends_on_purpose_user_code_and_key() {
        let h = hasher();
        let login = Purpose::parse("login").unwrap();
        let reset = Purpose::parse("reset").unwrap();
        let u1 = UserId::parse("u1").unwrap();
        let u2 = UserId::parse("u2").unwrap();
        let base = h.hash(&login, &u1, "123456");
        assert!(base.ct_eq(&h.hash(&login, &u1, "123456")));
        assert!(!base.ct_eq(&h.hash(&reset, &u1, "123456")));
        assert!(!base.ct_eq(&h.hash(&login, &u2, "123456")));
        assert!(!base.ct_eq(&h.hash(&login, &u1, "123457")));
        let other_key = CodeHasher::new(&HashKey::random());
        assert!(!base.ct_eq(&other_key.hash(&login, &u1, "123456")));
    }

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
}

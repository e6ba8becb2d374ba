//! One-time codes: generation from the OS-seeded CSPRNG, and the keyed hash that is all we store.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::{Passcode, Purpose, UserId};
use crate::keys::{HashKey, KeyRing};

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

/// Computes code hashes and record pseudonyms. The keyed HMAC states are built once and cloned
/// per hash, which saves the two key-block compressions on every request.
#[derive(Clone)]
pub struct CodeHasher {
    /// One per code key, current first.
    code_keys: Vec<Hmac<Sha256>>,
    pseudonym_key: Hmac<Sha256>,
}

fn keyed(key: &HashKey) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key.bytes()).expect("HMAC accepts keys of any length")
}

impl CodeHasher {
    pub fn new(ring: &KeyRing) -> Self {
        Self {
            code_keys: ring.code_keys().iter().map(keyed).collect(),
            pseudonym_key: keyed(ring.pseudonym_key()),
        }
    }

    /// The NUL separators make the input unambiguous: a purpose has no NUL, a code is digits.
    fn hash_with(mac: &Hmac<Sha256>, purpose: &Purpose, user_id: &UserId, code: &str) -> CodeHash {
        let mut mac = mac.clone();
        mac.update(purpose.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(user_id.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        let mut out = [0u8; HASH_LEN];
        out.copy_from_slice(&mac.finalize().into_bytes());
        CodeHash(out)
    }

    /// The hash a new code is stored as: under the current key.
    pub fn hash_code(&self, purpose: &Purpose, user_id: &UserId, code: &OneTimeCode) -> CodeHash {
        Self::hash_with(&self.code_keys[0], purpose, user_id, code.expose())
    }

    /// The guess under every code key, current first: a pending code made with a previous key
    /// matches one of them, so it keeps working until it expires.
    pub fn guess_hashes(&self, purpose: &Purpose, user_id: &UserId, guess: &Passcode) -> Guesses {
        Guesses(
            self.code_keys
                .iter()
                .map(|mac| Self::hash_with(mac, purpose, user_id, guess.expose()))
                .collect(),
        )
    }

    /// A keyed, stable stand-in for a user id in storage keys, so that no address or phone
    /// number (the `/auth/*` routes use the address as the id) sits in the table. Made with the
    /// pseudonym key, which code-key rotation leaves alone. The `PK` prefix cannot start a
    /// code-hash input: purposes are lower-case.
    pub fn pseudonym(&self, user_id: &UserId) -> String {
        use base64::Engine as _;
        let mut mac = self.pseudonym_key.clone();
        mac.update(b"PK\0");
        mac.update(user_id.as_str().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// One guess hashed under each code key. It matches a code when any of them equals the code's
/// hash (compared in constant time).
#[derive(Clone, Debug)]
pub struct Guesses(Vec<CodeHash>);

impl Guesses {
    pub fn from_hashes(hashes: Vec<CodeHash>) -> Self {
        Self(hashes)
    }

    pub fn hashes(&self) -> &[CodeHash] {
        &self.0
    }

    /// Constant time in the hashes compared: every one is checked.
    pub fn matches(&self, code_hash: &CodeHash) -> bool {
        self.0
            .iter()
            .fold(false, |found, guess| found | guess.ct_eq(code_hash))
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

    fn ring(keys: &[&str]) -> KeyRing {
        KeyRing::parse(&keys.join(","), None).unwrap()
    }

    fn ids() -> (Purpose, UserId) {
        (
            Purpose::parse("login").unwrap(),
            UserId::parse("u1").unwrap(),
        )
    }

    fn guess(h: &CodeHasher, code: &str) -> Guesses {
        let (purpose, user) = ids();
        h.guess_hashes(&purpose, &user, &Passcode::parse(code, code.len()).unwrap())
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
        // An independent computation of the same construction.
        let h = CodeHasher::new(&ring(&[&"0b".repeat(32)]));
        let (purpose, user) = ids();
        let hash = CodeHasher::hash_with(&h.code_keys[0], &purpose, &user, "123456");
        let mut mac = Hmac::<Sha256>::new_from_slice(&[0x0b; 32]).unwrap();
        mac.update(b"login\x00u1\x00123456");
        assert_eq!(hash.as_bytes()[..], mac.finalize().into_bytes()[..]);
    }

    #[test]
    fn hash_depends_on_purpose_user_code_and_key() {
        let h = CodeHasher::new(&ring(&[&"ab".repeat(32)]));
        let mac = &h.code_keys[0];
        let (login, u1) = ids();
        let reset = Purpose::parse("reset").unwrap();
        let u2 = UserId::parse("u2").unwrap();
        let base = CodeHasher::hash_with(mac, &login, &u1, "123456");
        assert!(base.ct_eq(&CodeHasher::hash_with(mac, &login, &u1, "123456")));
        assert!(!base.ct_eq(&CodeHasher::hash_with(mac, &reset, &u1, "123456")));
        assert!(!base.ct_eq(&CodeHasher::hash_with(mac, &login, &u2, "123456")));
        assert!(!base.ct_eq(&CodeHasher::hash_with(mac, &login, &u1, "123457")));
        let other = CodeHasher::new(&KeyRing::single(HashKey::random()));
        assert!(!guess(&other, "123456").matches(&base));
    }

    #[test]
    fn a_code_made_with_a_previous_key_verifies_after_rotation() {
        // GIVEN a code hashed under key A
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));
        let before = CodeHasher::new(&ring(&[&a]));
        let (purpose, user) = ids();
        let stored = CodeHasher::hash_with(&before.code_keys[0], &purpose, &user, "123456");
        // WHEN B becomes current and A previous
        let after = CodeHasher::new(&ring(&[&b, &a]));
        // THEN the right guess still matches, a wrong one does not, and new codes use B
        assert!(guess(&after, "123456").matches(&stored));
        assert!(!guess(&after, "123457").matches(&stored));
        assert_eq!(guess(&after, "123456").hashes().len(), 2);
        let new = CodeHasher::hash_with(&after.code_keys[0], &purpose, &user, "123456");
        assert!(!new.ct_eq(&stored));
        // AND once A is dropped, A's codes no longer verify
        let dropped = CodeHasher::new(&KeyRing::parse(&b, Some(&a)).unwrap());
        assert!(!guess(&dropped, "123456").matches(&stored));
    }

    #[test]
    fn the_pseudonym_survives_code_key_rotation() {
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));
        let user = UserId::parse("alice@example.com").unwrap();
        let original = CodeHasher::new(&ring(&[&a])).pseudonym(&user);
        assert_eq!(CodeHasher::new(&ring(&[&b, &a])).pseudonym(&user), original);
        let pinned = CodeHasher::new(&KeyRing::parse(&b, Some(&a)).unwrap());
        assert_eq!(pinned.pseudonym(&user), original);
        assert_ne!(CodeHasher::new(&ring(&[&b])).pseudonym(&user), original);
    }
}

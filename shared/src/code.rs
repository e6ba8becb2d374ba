//! One-time codes: generation from the OS-seeded CSPRNG, and the keyed hash that is all we store.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::{Destination, Passcode, RecordKey, UserId};
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

/// HMAC-SHA256 of (record scope, user id, code). Deliberately not `PartialEq`: comparisons go
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

    /// All zeros: stands in where an old record has no hash; no HMAC output is expected to
    /// equal it.
    pub fn nothing() -> Self {
        Self([0; HASH_LEN])
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

    /// The NUL separators make the input unambiguous: a scope has no NUL, a code is digits.
    fn hash_with(mac: &Hmac<Sha256>, scope: &str, user_id: &UserId, code: &str) -> CodeHash {
        let mut mac = mac.clone();
        mac.update(scope.as_bytes());
        mac.update(&[0]);
        mac.update(user_id.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(code.as_bytes());
        CodeHash(mac.finalize().into_bytes().into())
    }

    fn under_every_key(&self, key: &RecordKey, code: &str) -> Guesses {
        let scope = key.scope();
        Guesses(
            self.code_keys
                .iter()
                .map(|mac| Self::hash_with(mac, &scope, &key.user_id, code))
                .collect(),
        )
    }

    /// The hash a new code is stored as: under the current key. The record space is part of
    /// the input, so a code of one space is meaningless in the other.
    pub fn hash_code(&self, key: &RecordKey, code: &OneTimeCode) -> CodeHash {
        Self::hash_with(
            &self.code_keys[0],
            &key.scope(),
            &key.user_id,
            code.expose(),
        )
    }

    /// The guess under every code key, current first: a pending code made with a previous key
    /// matches one of them, so it keeps working until it expires.
    pub fn guess_hashes(&self, key: &RecordKey, guess: &Passcode) -> Guesses {
        self.under_every_key(key, guess.expose())
    }

    /// A new code under every code key, as any right guess will hash it: a store can then
    /// recognise a right guess by a single lookup (see the DynamoDB store's lockout).
    pub fn code_markers(&self, key: &RecordKey, code: &OneTimeCode) -> Guesses {
        self.under_every_key(key, code.expose())
    }

    /// A keyed hash of where a code went, kept with the record so a check can prove the code
    /// went to a given address without the address being stored. Addresses compare
    /// case-insensitively; phone numbers are already canonical E.164.
    pub fn destination_hash(&self, destination: &Destination) -> CodeHash {
        let mut mac = self.pseudonym_key.clone();
        mac.update(b"DEST\0");
        mac.update(destination.address_kind().as_bytes());
        mac.update(&[0]);
        // ASCII case only: addresses are ASCII once parsed (see `Email::parse`).
        mac.update(destination.address().to_ascii_lowercase().as_bytes());
        CodeHash(mac.finalize().into_bytes().into())
    }

    /// A keyed, stable stand-in for a client network ([`crate::limits::ClientIp::counted_as`])
    /// in the send counters' keys, so that no IP address is stored.
    pub fn client_pseudonym(&self, network: &str) -> String {
        use base64::Engine as _;
        let mut mac = self.pseudonym_key.clone();
        mac.update(b"CLIENT\0");
        mac.update(network.as_bytes());
        let digest = mac.finalize().into_bytes();
        // 128 bits: no collision between subjects in any realistic count, half the key length.
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    }

    /// A keyed, stable stand-in for a phone number's 1,000-number block (the number without its
    /// last three digits), for the fraud guard's tallies: with a masked number's last four
    /// digits, the block itself would give the number back.
    pub fn block_pseudonym(&self, digits: &str) -> String {
        use base64::Engine as _;
        let mut mac = self.pseudonym_key.clone();
        mac.update(b"BLOCK\0");
        mac.update(digits.as_bytes());
        let digest = mac.finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
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

    fn ids() -> (&'static str, UserId) {
        ("login", UserId::parse("u1").unwrap())
    }

    fn guess(h: &CodeHasher, code: &str) -> Guesses {
        let key = RecordKey::new(
            crate::domain::Space::Backend,
            crate::domain::Purpose::parse("login").unwrap(),
            UserId::parse("u1").unwrap(),
        );
        h.guess_hashes(&key, &Passcode::parse(code, code.len()).unwrap())
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
        let hash = CodeHasher::hash_with(&h.code_keys[0], purpose, &user, "123456");
        let mut mac = Hmac::<Sha256>::new_from_slice(&[0x0b; 32]).unwrap();
        mac.update(b"login\x00u1\x00123456");
        assert_eq!(hash.as_bytes()[..], mac.finalize().into_bytes()[..]);
    }

    #[test]
    fn hash_depends_on_purpose_user_code_and_key() {
        let h = CodeHasher::new(&ring(&[&"ab".repeat(32)]));
        let mac = &h.code_keys[0];
        let (login, u1) = ids();
        let reset = "reset";
        let u2 = UserId::parse("u2").unwrap();
        let base = CodeHasher::hash_with(mac, login, &u1, "123456");
        assert!(base.ct_eq(&CodeHasher::hash_with(mac, login, &u1, "123456")));
        assert!(!base.ct_eq(&CodeHasher::hash_with(mac, reset, &u1, "123456")));
        assert!(!base.ct_eq(&CodeHasher::hash_with(mac, login, &u2, "123456")));
        assert!(!base.ct_eq(&CodeHasher::hash_with(mac, login, &u1, "123457")));
        assert!(!base.ct_eq(&CodeHasher::hash_with(mac, "public:login", &u1, "123456")));
        let other = CodeHasher::new(&KeyRing::single(HashKey::random()));
        assert!(!guess(&other, "123456").matches(&base));
    }

    #[test]
    fn a_code_made_with_a_previous_key_verifies_after_rotation() {
        // GIVEN a code hashed under key A
        let (a, b) = ("aa".repeat(32), "bb".repeat(32));
        let before = CodeHasher::new(&ring(&[&a]));
        let (purpose, user) = ids();
        let stored = CodeHasher::hash_with(&before.code_keys[0], purpose, &user, "123456");
        // WHEN B becomes current and A previous
        let after = CodeHasher::new(&ring(&[&b, &a]));
        // THEN the right guess still matches, a wrong one does not, and new codes use B
        assert!(guess(&after, "123456").matches(&stored));
        assert!(!guess(&after, "123457").matches(&stored));
        assert_eq!(guess(&after, "123456").hashes().len(), 2);
        let new = CodeHasher::hash_with(&after.code_keys[0], purpose, &user, "123456");
        assert!(!new.ct_eq(&stored));
        // AND once A is dropped, A's codes no longer verify
        let dropped = CodeHasher::new(&KeyRing::parse(&b, Some(&a)).unwrap());
        assert!(!guess(&dropped, "123456").matches(&stored));
    }

    #[test]
    fn destinations_hash_apart_and_ignore_address_case() {
        use crate::domain::{Email, PhoneE164};
        let h = CodeHasher::new(&ring(&[&"ab".repeat(32)]));
        let email = |raw| h.destination_hash(&Destination::Email(Email::parse(raw).unwrap()));
        let phone = |raw| h.destination_hash(&Destination::Sms(PhoneE164::parse(raw).unwrap()));
        assert!(email("Bob@Example.com").ct_eq(&email("bob@example.com")));
        assert!(!email("bob@example.com").ct_eq(&email("rob@example.com")));
        assert!(!phone("+14155552671").ct_eq(&phone("+14155552672")));
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

//! One conformance suite for every store, run against `MemoryStore` and against the DynamoDB
//! store on moto; then what only DynamoDB needs proving: one request per operation, races at
//! 100-way concurrency, and a clean 503 when it cannot be reached.

use std::sync::Arc;

use futures_util::future::join_all;
use otp_core::code::{CodeHash, CodeHasher, Guesses};
use otp_core::domain::{Channel, Destination, Passcode, PhoneE164, Purpose, Space, UserId};
use otp_core::engine::{EngineParts, SendRequest, VerifyOutcome, VerifyRequest};
use otp_core::http::{router, Routes};
use otp_core::keys::{HashKey, KeyRing};
use otp_core::limits::{Charge, LimitName, SendLimits};
use otp_core::sender::{DeliveryError, Senders};
use otp_core::settings::Policy;
use otp_core::store::{
    DynamoStore, GuessAttempt, GuessOutcome, MemoryStore, Network, NewCode, OtpRecord, OtpStore,
    PutOutcome, RecordKey,
};
use otp_core::testing::{ManualClock, RecordingSender};
use otp_core::verification::{
    Cancel, DeliveryStatus, Receipt, ReceiptOutcome, Status, Verification, VerificationId,
};
use otp_core::Engine;
use tower::ServiceExt as _;

use crate::helpers::{wrong_code, PHONE, START as NOW};
use crate::moto_peer;

const TTL: u64 = 300;
const COOLDOWN: u64 = 30;
const MAX: u32 = 3;

struct Subject {
    store: Arc<dyn OtpStore>,
    hasher: CodeHasher,
}

/// A hasher with one fresh random key.
pub(crate) fn random_hasher() -> CodeHasher {
    CodeHasher::new(&KeyRing::single(HashKey::random()))
}

async fn memory_store() -> Subject {
    Subject {
        store: Arc::new(MemoryStore::new()),
        hasher: random_hasher(),
    }
}

async fn dynamodb_store() -> Subject {
    let hasher = random_hasher();
    Subject {
        store: Arc::new(moto_peer::patient_store(hasher.clone()).await),
        hasher,
    }
}

fn key(purpose: &str, user: &str) -> RecordKey {
    RecordKey::new(
        Space::Backend,
        Purpose::parse(purpose).unwrap(),
        UserId::parse(user).unwrap(),
    )
}

/// The policy of these tests, with `cooldown`.
fn rules(cooldown: u64) -> Policy {
    Policy {
        max_attempts: MAX,
        cooldown_secs: cooldown,
        ..Policy::default()
    }
}

/// The masked form of `PHONE`.
const SENT_TO: &str = "+1******2671";

fn verified() -> VerifyOutcome {
    VerifyOutcome::Verified {
        channel: Channel::Sms,
        sent_to: SENT_TO.to_owned(),
    }
}

fn request(key: &RecordKey, passcode: &Passcode) -> VerifyRequest {
    VerifyRequest {
        key: key.clone(),
        passcode: passcode.clone(),
        destination: None,
        client: None,
        caller: None,
    }
}

impl Subject {
    fn guesses(&self, key: &RecordKey, code: &str) -> Guesses {
        self.hasher
            .guess_hashes(key, &Passcode::parse(code, code.len()).unwrap())
    }

    /// The hash a code made with the current key is stored as.
    fn hash(&self, key: &RecordKey, code: &str) -> CodeHash {
        self.guesses(key, code).hashes()[0].clone()
    }

    fn new_code(&self, key: &RecordKey, code: &str, at: u64) -> NewCode {
        self.new_code_from(key, code, at, &Network::unknown())
    }

    fn new_code_from(&self, key: &RecordKey, code: &str, at: u64, network: &Network) -> NewCode {
        let phone = Destination::Sms(PhoneE164::parse(PHONE).unwrap());
        let verification = Verification {
            id: VerificationId::generate(),
            space: key.space,
            user_id: key.user_id.as_str().to_owned(),
            purpose: key.purpose.as_str().to_owned(),
            channel: Channel::Sms,
            sent_to: phone.masked(),
            calling_code: Some(1),
            block: None,
            created_at: at,
            expires_at: at + TTL,
            max_attempts: MAX,
            delivery: Default::default(),
            ended: None,
            locked_at: None,
        };
        NewCode {
            record: OtpRecord {
                code_hash: self.hash(key, code),
                channel: Channel::Sms,
                destination_hash: self.hasher.destination_hash(&phone),
                sent_to: phone.masked(),
                sent_country: Some(1),
                sent_block: None,
                verification_id: Some(verification.id.clone()),
                sent_at: at,
                expires_at: at + TTL,
                attempts: 0,
                last_guess: None,
                lockout: None,
            },
            markers: self.guesses(key, code),
            network: network.clone(),
            checks: Vec::new(),
            verification,
        }
    }

    /// A send asked for from `network`.
    async fn put_from(
        &self,
        key: &RecordKey,
        code: &str,
        at: u64,
        network: &Network,
        policy: &Policy,
    ) -> PutOutcome {
        let code = self.new_code_from(key, code, at, network);
        self.store
            .put_unless_blocked(key, &code, at, policy, &[])
            .await
            .unwrap()
    }

    /// A guess from `network`.
    async fn guess_from(
        &self,
        key: &RecordKey,
        code: &str,
        at: u64,
        network: &Network,
        policy: &Policy,
    ) -> GuessOutcome {
        self.guess_at(key, code, at, None, network, policy).await
    }

    async fn put_with(&self, key: &RecordKey, code: &str, at: u64, policy: &Policy) -> PutOutcome {
        self.put_charged(key, code, at, policy, &[]).await
    }

    async fn put_charged(
        &self,
        key: &RecordKey,
        code: &str,
        at: u64,
        policy: &Policy,
        charges: &[Charge],
    ) -> PutOutcome {
        self.store
            .put_unless_blocked(key, &self.new_code(key, code, at), at, policy, charges)
            .await
            .unwrap()
    }

    async fn put(&self, key: &RecordKey, code: &str, at: u64, cooldown: u64) -> PutOutcome {
        self.put_with(key, code, at, &rules(cooldown)).await
    }

    async fn guess_with(
        &self,
        key: &RecordKey,
        code: &str,
        at: u64,
        destination: Option<&CodeHash>,
        policy: &Policy,
    ) -> GuessOutcome {
        self.guess_at(key, code, at, destination, &Network::unknown(), policy)
            .await
    }

    async fn guess_at(
        &self,
        key: &RecordKey,
        code: &str,
        at: u64,
        destination: Option<&CodeHash>,
        network: &Network,
        policy: &Policy,
    ) -> GuessOutcome {
        let guesses = self.guesses(key, code);
        let attempt = GuessAttempt {
            guesses: &guesses,
            destination,
            network,
        };
        self.store
            .record_guess(key, &attempt, at, policy)
            .await
            .unwrap()
    }

    async fn guess(&self, key: &RecordKey, code: &str, at: u64) -> GuessOutcome {
        self.guess_with(key, code, at, None, &rules(COOLDOWN)).await
    }
}

fn recorded(outcome: GuessOutcome) -> OtpRecord {
    match outcome {
        GuessOutcome::Recorded(record) => record,
        other => panic!("expected Recorded, got {other:?}"),
    }
}

fn refused(outcome: GuessOutcome) -> Option<OtpRecord> {
    match outcome {
        GuessOutcome::Refused(old) => old,
        other => panic!("expected Refused, got {other:?}"),
    }
}

async fn right_guess_consumes_the_code(s: Subject) {
    let k = key("login", "u");
    assert!(matches!(
        s.put(&k, "111111", NOW, COOLDOWN).await,
        PutOutcome::Stored
    ));
    let after = recorded(s.guess(&k, "111111", NOW + 1).await);
    assert!(after.is_consumed());
    assert_eq!(after.attempts, 1);
    assert_eq!(after.expires_at, NOW + TTL);
    let old = refused(s.guess(&k, "111111", NOW + 2).await).expect("record kept");
    assert!(old.is_consumed());
}

async fn wrong_guesses_count_until_exhausted(s: Subject) {
    let k = key("login", "u");
    s.put(&k, "111111", NOW, COOLDOWN).await;
    for n in 1..=MAX {
        let after = recorded(s.guess(&k, "222222", NOW).await);
        assert_eq!(after.attempts, n);
        assert!(!after.is_consumed());
    }
    let old = refused(s.guess(&k, "111111", NOW).await).expect("record kept");
    assert_eq!(old.attempts, MAX);
    assert!(
        !old.is_consumed(),
        "the right code after exhaustion is not recorded"
    );
}

async fn cooldown_refuses_and_reports_seconds_left(s: Subject) {
    let k = key("login", "u");
    s.put(&k, "111111", NOW, COOLDOWN).await;
    match s.put(&k, "333333", NOW + 10, COOLDOWN).await {
        PutOutcome::CoolingDown { retry_after } => assert_eq!(retry_after, 20),
        other => panic!("expected cooldown, got {other:?}"),
    }
    // The refused put changed nothing; after the cooldown a new code replaces the old one.
    assert!(matches!(
        s.put(&k, "444444", NOW + 30, COOLDOWN).await,
        PutOutcome::Stored
    ));
    let after = recorded(s.guess(&k, "111111", NOW + 31).await);
    assert!(!after.is_consumed(), "the replaced code no longer verifies");
    assert_eq!(after.attempts, 1, "attempts start over with the new code");
    assert!(recorded(s.guess(&k, "444444", NOW + 31).await).is_consumed());
}

async fn expired_but_present_is_refused(s: Subject) {
    let k = key("login", "u");
    s.put(&k, "111111", NOW, 3600).await;
    assert!(!recorded(s.guess(&k, "000000", NOW + TTL - 1).await).is_consumed());
    let old = refused(s.guess(&k, "111111", NOW + TTL).await).expect("still stored");
    assert!(old.is_expired(NOW + TTL));
    // A cooldown longer than the code's life is kept: expiry does not end it.
    match s.put(&k, "555555", NOW + TTL, 3600).await {
        PutOutcome::CoolingDown { retry_after } => assert_eq!(retry_after, 3600 - TTL),
        other => panic!("expected cooldown, got {other:?}"),
    }
    assert!(matches!(
        s.put(&k, "555555", NOW + 3600, 3600).await,
        PutOutcome::Stored
    ));
}

async fn used_code_never_blocks_a_resend(s: Subject) {
    let k = key("login", "u");
    s.put(&k, "111111", NOW, COOLDOWN).await;
    recorded(s.guess(&k, "111111", NOW).await);
    assert!(matches!(
        s.put(&k, "666666", NOW + 1, COOLDOWN).await,
        PutOutcome::Stored
    ));
    assert!(recorded(s.guess(&k, "666666", NOW + 1).await).is_consumed());
}

async fn purposes_and_users_are_isolated(s: Subject) {
    let login = key("login", "u");
    let reset = key("reset", "u");
    let other = key("login", "v");
    s.put(&login, "111111", NOW, COOLDOWN).await;
    assert!(matches!(
        s.put(&reset, "222222", NOW, COOLDOWN).await,
        PutOutcome::Stored
    ));
    assert!(matches!(
        s.put(&other, "333333", NOW, COOLDOWN).await,
        PutOutcome::Stored
    ));
    assert!(!recorded(s.guess(&reset, "111111", NOW).await).is_consumed());
    assert!(refused(s.guess(&key("signup", "u"), "111111", NOW).await).is_none());
    assert!(recorded(s.guess(&login, "111111", NOW).await).is_consumed());
    assert!(recorded(s.guess(&other, "333333", NOW).await).is_consumed());
    assert!(recorded(s.guess(&reset, "222222", NOW).await).is_consumed());
}

async fn compensation_withdraws_only_its_own_code(s: Subject) {
    let k = key("login", "u");
    s.put(&k, "111111", NOW, COOLDOWN).await;
    assert!(s
        .store
        .withdraw_if_holds(&k, &s.hash(&k, "111111"), &[])
        .await
        .unwrap());
    assert!(refused(s.guess(&k, "111111", NOW).await).is_none());
    // A newer code written in between survives the older send's compensation.
    s.put(&k, "111111", NOW, 0).await;
    s.put(&k, "777777", NOW, 0).await;
    assert!(!s
        .store
        .withdraw_if_holds(&k, &s.hash(&k, "111111"), &[])
        .await
        .unwrap());
    assert!(recorded(s.guess(&k, "777777", NOW).await).is_consumed());
    assert!(!s
        .store
        .withdraw_if_holds(&key("x", "nobody"), &s.hash(&k, "1"), &[])
        .await
        .unwrap());
}

/// Lockout at 5 wrong guesses from one network in a 600 s window (`NOW` starts one), and at 10
/// from all networks together; ten attempts per code so codes do not run out first.
fn lockout_rules() -> Policy {
    Policy {
        max_attempts: 10,
        cooldown_secs: 0,
        lockout_failures: 5,
        lockout_window_secs: 600,
        lockout_ceiling: 10,
        ..Policy::default()
    }
}

fn network(name: &str) -> Network {
    Network::pseudonymous(name.to_owned())
}

async fn wrong_guesses_across_resends_lock_the_user(s: Subject) {
    // GIVEN a user who guesses wrong 3 times, gets a new code, and guesses wrong twice more
    let (k, p) = (key("login", "u"), lockout_rules());
    s.put_with(&k, "111111", NOW, &p).await;
    for at in 1..=3 {
        let after = recorded(s.guess_with(&k, "999999", NOW + at, None, &p).await);
        assert_eq!(after.failures_left(&p), 5 - at as u32);
    }
    assert!(matches!(
        s.put_with(&k, "222222", NOW + 10, &p).await,
        PutOutcome::Stored
    ));
    let after = recorded(s.guess_with(&k, "999999", NOW + 11, None, &p).await);
    assert_eq!(after.attempts, 1, "the new code has its own attempts");
    assert_eq!(after.failures_left(&p), 1, "the resend kept the count");
    let after = recorded(s.guess_with(&k, "999999", NOW + 12, None, &p).await);
    // THEN the fifth locks the user until the window ends
    assert_eq!(after.locked_for(NOW + 12, &p), Some(600 - 12));
    // AND while locked even the right code is refused uncounted, and no code can be sent
    let old = refused(s.guess_with(&k, "222222", NOW + 20, None, &p).await).unwrap();
    assert_eq!(old.attempts, 2);
    assert!(matches!(
        s.put_with(&k, "333333", NOW + 20, &p).await,
        PutOutcome::Locked { retry_after: 580 }
    ));
    // AND once the window has passed, codes are sent and verified again
    assert!(matches!(
        s.put_with(&k, "333333", NOW + 600, &p).await,
        PutOutcome::Stored
    ));
    assert!(recorded(s.guess_with(&k, "333333", NOW + 601, None, &p).await).is_consumed());
}

async fn a_success_clears_the_failures(s: Subject) {
    let (k, p) = (key("login", "u"), lockout_rules());
    s.put_with(&k, "111111", NOW, &p).await;
    for at in 1..=4 {
        recorded(s.guess_with(&k, "999999", NOW + at, None, &p).await);
    }
    let after = recorded(s.guess_with(&k, "111111", NOW + 5, None, &p).await);
    assert!(after.is_consumed());
    let lockout = after.lockout.unwrap();
    assert_eq!(
        lockout.account_failures, 0,
        "the account's count starts over"
    );
    assert_eq!(
        after.failures_left(&p),
        5,
        "and the network's allowance is whole"
    );
    // A new code: four more wrong guesses do not lock, because the count started over.
    s.put_with(&k, "222222", NOW + 6, &p).await;
    for at in 7..=10 {
        let after = recorded(s.guess_with(&k, "999999", NOW + at, None, &p).await);
        assert!(after.locked_for(NOW + at, &p).is_none());
    }
}

async fn failures_outside_the_window_do_not_count(s: Subject) {
    let (k, p) = (key("login", "u"), lockout_rules());
    s.put_with(&k, "111111", NOW, &p).await;
    for at in [1, 2, 3, 4] {
        recorded(s.guess_with(&k, "999999", NOW + at, None, &p).await);
    }
    // The fifth comes in the next window (at a fresh code): the network's tally started over.
    s.put_with(&k, "222222", NOW + 600, &p).await;
    let after = recorded(s.guess_with(&k, "999999", NOW + 601, None, &p).await);
    assert!(after.locked_for(NOW + 601, &p).is_none());
    assert_eq!(after.failures_left(&p), 4);
    assert_eq!(
        after.lockout.unwrap().account_failures,
        5,
        "the account's count goes on"
    );
}

async fn one_network_locks_the_user_out_for_itself_only(s: Subject) {
    // GIVEN an attacker's network that guessed wrong until it was locked out
    let (k, p) = (key("login", "u"), lockout_rules());
    let (attacker, user) = (network("attacker"), network("user"));
    s.put_from(&k, "111111", NOW, &attacker, &p).await;
    for at in 1..=5 {
        recorded(s.guess_from(&k, "999999", NOW + at, &attacker, &p).await);
    }
    assert!(matches!(
        s.put_from(&k, "222222", NOW + 6, &attacker, &p).await,
        PutOutcome::Locked { retry_after: 594 }
    ));
    let old = refused(s.guess_from(&k, "111111", NOW + 6, &attacker, &p).await).unwrap();
    assert_eq!(old.locked_for(NOW + 6, &p), Some(594));
    // WHEN the user asks for a code from their own network
    assert!(matches!(
        s.put_from(&k, "333333", NOW + 7, &user, &p).await,
        PutOutcome::Stored
    ));
    // THEN they may mistype and still verify
    let after = recorded(s.guess_from(&k, "999999", NOW + 8, &user, &p).await);
    assert_eq!(
        after.failures_left(&p),
        4,
        "their network has its own count"
    );
    assert!(recorded(s.guess_from(&k, "333333", NOW + 9, &user, &p).await).is_consumed());
    // AND the user's success does not free the attacker's network
    assert!(matches!(
        s.put_from(&k, "444444", NOW + 10, &attacker, &p).await,
        PutOutcome::Locked { .. }
    ));
}

async fn guesses_spread_over_networks_stop_at_the_ceiling(s: Subject) {
    // GIVEN wrong guesses from five networks, two each: no network at its 5, the account at 10
    let (k, p) = (
        key("login", "u"),
        Policy {
            max_attempts: 20,
            ..lockout_rules()
        },
    );
    s.put_with(&k, "111111", NOW, &p).await;
    for at in 1..=10u64 {
        let from = network(&format!("n{}", (at - 1) / 2));
        let lockout = recorded(s.guess_from(&k, "999999", NOW + at, &from, &p).await)
            .lockout
            .unwrap();
        let expected = if at % 2 == 1 { 1 } else { 2 };
        assert_eq!(lockout.network_failures, expected);
        assert_eq!(lockout.account_failures, at as i64);
    }
    // THEN a network that never guessed is locked out too, and so is every send
    let fresh = network("fresh");
    let old = refused(s.guess_from(&k, "111111", NOW + 11, &fresh, &p).await).unwrap();
    assert_eq!(
        old.locked_for(NOW + 11, &p),
        Some(599),
        "a window after the latest"
    );
    assert!(matches!(
        s.put_from(&k, "222222", NOW + 12, &fresh, &p).await,
        PutOutcome::Locked { retry_after: 598 }
    ));
    // AND a window after the latest, a code is sent and one guess taken; a wrong one locks the
    // account for another window
    assert!(matches!(
        s.put_from(&k, "333333", NOW + 610, &fresh, &p).await,
        PutOutcome::Stored
    ));
    let after = recorded(s.guess_from(&k, "999999", NOW + 611, &fresh, &p).await);
    assert_eq!(after.locked_for(NOW + 611, &p), Some(600));
    assert!(matches!(
        s.put_from(&k, "444444", NOW + 612, &network("n0"), &p)
            .await,
        PutOutcome::Locked { retry_after: 599 }
    ));
    // AND once that has passed, the right code gets in and starts the count over
    s.put_from(&k, "555555", NOW + 1211, &fresh, &p).await;
    let after = recorded(s.guess_from(&k, "555555", NOW + 1212, &fresh, &p).await);
    assert!(after.is_consumed());
    assert_eq!(after.lockout.unwrap().account_failures, 0);
}

async fn a_guess_naming_another_destination_is_refused_uncounted(s: Subject) {
    let k = key("login", "u");
    s.put(&k, "111111", NOW, COOLDOWN).await;
    let elsewhere = s
        .hasher
        .destination_hash(&Destination::Sms(PhoneE164::parse("+14155552672").unwrap()));
    let here = s
        .hasher
        .destination_hash(&Destination::Sms(PhoneE164::parse(PHONE).unwrap()));
    let policy = rules(COOLDOWN);
    let old = refused(
        s.guess_with(&k, "111111", NOW, Some(&elsewhere), &policy)
            .await,
    )
    .unwrap();
    assert_eq!(old.attempts, 0);
    assert!(!old.was_sent_to(&elsewhere) && old.was_sent_to(&here));
    let after = recorded(s.guess_with(&k, "111111", NOW, Some(&here), &policy).await);
    assert!(after.is_consumed());
    assert_eq!(after.sent_to, SENT_TO);
    assert_eq!(
        after.sent_country,
        Some(1),
        "the calling code comes back for the figures"
    );
}

async fn a_withdrawn_code_keeps_the_failures(s: Subject) {
    let (k, p) = (key("login", "u"), lockout_rules());
    s.put_with(&k, "111111", NOW, &p).await;
    for at in 1..=4 {
        recorded(s.guess_with(&k, "999999", NOW + at, None, &p).await);
    }
    s.put_with(&k, "222222", NOW + 5, &p).await;
    assert!(s
        .store
        .withdraw_if_holds(&k, &s.hash(&k, "222222"), &[])
        .await
        .unwrap());
    s.put_with(&k, "333333", NOW + 6, &p).await;
    let after = recorded(s.guess_with(&k, "999999", NOW + 7, None, &p).await);
    assert!(
        after.locked_for(NOW + 7, &p).is_some(),
        "failed deliveries reset nothing"
    );
}

async fn concurrent_wrong_guesses_across_resends_never_pass_the_lockout(s: Subject) {
    // GIVEN 100 requests at once: every fourth a resend, the rest wrong guesses
    let (k, p) = (key("login", "u"), lockout_rules());
    s.put_with(&k, "111111", NOW, &p).await;
    let s = Arc::new(s);
    let tasks = (0..100u64).map(|i| {
        let (s, k, p) = (s.clone(), k.clone(), p.clone());
        tokio::spawn(async move {
            if i % 4 == 0 {
                s.put_with(&k, &format!("{:06}", 200_000 + i), NOW + 1, &p)
                    .await;
                false
            } else {
                matches!(
                    s.guess_with(&k, "999999", NOW + 1, None, &p).await,
                    GuessOutcome::Recorded(_)
                )
            }
        })
    });
    let counted = join_all(tasks)
        .await
        .into_iter()
        .filter(|counted| *counted.as_ref().unwrap())
        .count();
    // THEN exactly the lockout count was taken, and the user is locked
    assert_eq!(counted, 5);
    assert!(matches!(
        s.put_with(&k, "444444", NOW + 2, &p).await,
        PutOutcome::Locked { .. }
    ));
}

/// A counter for these tests: `cap` sends in the window ending at `NOW + 600`.
fn charge(name: &str, limit: LimitName, cap: u32) -> Charge {
    Charge {
        limit,
        counter: format!("test#{name}"),
        cap,
        resets_at: NOW + 600,
        shards: 1,
    }
}

async fn a_full_counter_refuses_the_send_and_writes_nothing(s: Subject) {
    let charges = [charge("dest", LimitName::Destination10Minutes, 2)];
    for user in ["a", "b"] {
        let outcome = s
            .put_charged(&key("login", user), "111111", NOW, &rules(0), &charges)
            .await;
        assert!(matches!(outcome, PutOutcome::Stored), "{outcome:?}");
    }
    // WHEN the third send to the same counter comes 100 s later
    let c = key("login", "c");
    let outcome = s
        .put_charged(&c, "111111", NOW + 100, &rules(0), &charges)
        .await;
    // THEN it is refused until the window ends, and no code was written for c
    assert!(
        matches!(
            outcome,
            PutOutcome::Limited {
                limit: LimitName::Destination10Minutes,
                retry_after: 500
            }
        ),
        "{outcome:?}"
    );
    assert!(refused(s.guess(&c, "111111", NOW + 100).await).is_none());
    // AND the next window's counter starts empty
    let next = [Charge {
        counter: "test#dest#next".to_owned(),
        resets_at: NOW + 1200,
        ..charges[0].clone()
    }];
    let outcome = s
        .put_charged(&c, "111111", NOW + 600, &rules(0), &next)
        .await;
    assert!(matches!(outcome, PutOutcome::Stored), "{outcome:?}");
}

async fn the_first_full_counter_is_named_and_none_is_charged(s: Subject) {
    let charges = [
        charge("wide", LimitName::DestinationDay, 10),
        charge("narrow", LimitName::UserHour, 1),
    ];
    let policy = rules(0);
    s.put_charged(&key("login", "a"), "111111", NOW, &policy, &charges)
        .await;
    let outcome = s
        .put_charged(&key("login", "b"), "111111", NOW, &policy, &charges)
        .await;
    assert!(
        matches!(
            outcome,
            PutOutcome::Limited {
                limit: LimitName::UserHour,
                ..
            }
        ),
        "{outcome:?}"
    );
    // The refused send charged nothing: the wide counter holds 1 of 10, so 9 more fit.
    let wide = &charges[..1];
    for n in 0..9 {
        let outcome = s
            .put_charged(
                &key("login", &format!("w{n}")),
                "111111",
                NOW,
                &policy,
                wide,
            )
            .await;
        assert!(matches!(outcome, PutOutcome::Stored), "{n}: {outcome:?}");
    }
    let outcome = s
        .put_charged(&key("login", "full"), "111111", NOW, &policy, wide)
        .await;
    assert!(matches!(outcome, PutOutcome::Limited { .. }), "{outcome:?}");
}

async fn a_refusal_by_the_record_charges_nothing(s: Subject) {
    let charges = [charge("dest", LimitName::Destination10Minutes, 2)];
    let k = key("login", "u");
    s.put_charged(&k, "111111", NOW, &rules(COOLDOWN), &charges)
        .await;
    for _ in 0..3 {
        let outcome = s
            .put_charged(&k, "222222", NOW + 1, &rules(COOLDOWN), &charges)
            .await;
        assert!(
            matches!(outcome, PutOutcome::CoolingDown { .. }),
            "{outcome:?}"
        );
    }
    let outcome = s
        .put_charged(&key("login", "v"), "111111", NOW + 1, &rules(0), &charges)
        .await;
    assert!(matches!(outcome, PutOutcome::Stored), "{outcome:?}");
}

async fn a_withdrawal_gives_back_its_charges(s: Subject) {
    let charges = [charge("dest", LimitName::Destination10Minutes, 1)];
    let k = key("login", "u");
    s.put_charged(&k, "111111", NOW, &rules(0), &charges).await;
    // A withdrawal that finds a newer code withdraws nothing and refunds nothing.
    assert!(!s
        .store
        .withdraw_if_holds(&k, &s.hash(&k, "999999"), &charges)
        .await
        .unwrap());
    let outcome = s
        .put_charged(&key("login", "v"), "111111", NOW, &rules(0), &charges)
        .await;
    assert!(matches!(outcome, PutOutcome::Limited { .. }), "{outcome:?}");
    // The withdrawal of its own code gives the send back.
    assert!(s
        .store
        .withdraw_if_holds(&k, &s.hash(&k, "111111"), &charges)
        .await
        .unwrap());
    let outcome = s
        .put_charged(&key("login", "v"), "111111", NOW, &rules(0), &charges)
        .await;
    assert!(matches!(outcome, PutOutcome::Stored), "{outcome:?}");
}

async fn concurrent_sends_never_pass_a_cap(s: Subject) {
    let charges = [charge("dest", LimitName::Destination10Minutes, 5)];
    let policy = rules(0);
    // 30 at once: moto serves one request at a time, and a deeper queue would pass the SDK's
    // 2 s attempt timeout on a loaded host.
    let keys: Vec<RecordKey> = (0..30).map(|n| key("login", &format!("u{n}"))).collect();
    let outcomes = join_all(
        keys.iter()
            .map(|k| s.put_charged(k, "111111", NOW, &policy, &charges)),
    )
    .await;
    let stored = outcomes
        .iter()
        .filter(|o| matches!(o, PutOutcome::Stored))
        .count();
    let limited = outcomes
        .iter()
        .filter(|o| matches!(o, PutOutcome::Limited { .. }))
        .count();
    assert_eq!((stored, limited), (5, 25));
}

/// A put of `code` at `at` and the id of the verification it started.
impl Subject {
    async fn put_verification(&self, key: &RecordKey, code: &str, at: u64) -> VerificationId {
        let new = self.new_code(key, code, at);
        let id = new.verification.id.clone();
        let stored = self
            .store
            .put_unless_blocked(key, &new, at, &rules(COOLDOWN), &[])
            .await
            .unwrap();
        assert!(matches!(stored, PutOutcome::Stored), "{stored:?}");
        id
    }

    /// The verification's status at `now`, as the store's two items tell it.
    async fn status(&self, id: &VerificationId, now: u64) -> Option<Status> {
        let (verification, record) = self.store.verification(id).await.unwrap()?;
        otp_core::store::status_of(&verification, record.as_ref(), now)
    }

    async fn cancel(&self, id: &VerificationId, now: u64) -> Cancel {
        let (verification, _) = self.store.verification(id).await.unwrap().unwrap();
        self.store.cancel(&verification, now).await.unwrap()
    }
}

async fn a_verification_is_pending_then_approved(s: Subject) {
    let k = key("login", "u");
    let id = s.put_verification(&k, "111111", NOW).await;
    let (verification, record) = s.store.verification(&id).await.unwrap().unwrap();
    assert_eq!(verification.user_id, "u");
    assert_eq!(verification.purpose, "login");
    assert_eq!(verification.sent_to, SENT_TO);
    assert_eq!(verification.delivery.status, DeliveryStatus::Sent);
    assert_eq!(record.unwrap().verification_id, Some(id.clone()));
    assert_eq!(s.status(&id, NOW + 1).await, Some(Status::Pending));
    recorded(s.guess(&k, "111111", NOW + 2).await);
    assert_eq!(s.status(&id, NOW + 3).await, Some(Status::Approved));
    assert!(s
        .store
        .verification(&VerificationId::generate())
        .await
        .unwrap()
        .is_none());
}

async fn a_verification_expires_or_runs_out_of_attempts(s: Subject) {
    let k = key("login", "u");
    let id = s.put_verification(&k, "111111", NOW).await;
    assert_eq!(s.status(&id, NOW + TTL).await, Some(Status::Expired));
    let other = key("login", "v");
    let id = s.put_verification(&other, "111111", NOW).await;
    for _ in 0..MAX {
        recorded(s.guess(&other, "222222", NOW + 1).await);
    }
    assert_eq!(
        s.status(&id, NOW + 2).await,
        Some(Status::MaxAttemptsReached)
    );
    assert_eq!(
        s.cancel(&id, NOW + 2).await,
        Cancel::Ended(Status::MaxAttemptsReached)
    );
}

async fn a_resend_supersedes_the_pending_verification(s: Subject) {
    let k = key("login", "u");
    let first = s.put_verification(&k, "111111", NOW).await;
    let second = s.put_verification(&k, "222222", NOW + COOLDOWN).await;
    assert_eq!(
        s.status(&first, NOW + COOLDOWN).await,
        Some(Status::Superseded)
    );
    assert_eq!(
        s.status(&second, NOW + COOLDOWN).await,
        Some(Status::Pending)
    );
    assert_eq!(
        s.cancel(&first, NOW + COOLDOWN).await,
        Cancel::Ended(Status::Superseded)
    );
    assert_eq!(
        s.status(&second, NOW + COOLDOWN).await,
        Some(Status::Pending)
    );
}

async fn a_canceled_code_never_verifies_and_frees_the_cooldown(s: Subject) {
    let k = key("login", "u");
    let id = s.put_verification(&k, "111111", NOW).await;
    assert_eq!(s.cancel(&id, NOW + 1).await, Cancel::Canceled);
    assert_eq!(s.cancel(&id, NOW + 2).await, Cancel::Canceled, "idempotent");
    assert_eq!(s.status(&id, NOW + 2).await, Some(Status::Canceled));
    assert!(refused(s.guess(&k, "111111", NOW + 3).await).is_none());
    // A new code at once: the canceled one holds no cooldown.
    let next = s.put_verification(&k, "222222", NOW + 4).await;
    assert_eq!(s.status(&id, NOW + 5).await, Some(Status::Canceled));
    recorded(s.guess(&k, "222222", NOW + 5).await);
    assert_eq!(s.status(&next, NOW + 6).await, Some(Status::Approved));
    assert_eq!(
        s.cancel(&next, NOW + 6).await,
        Cancel::Ended(Status::Approved)
    );
}

async fn receipts_move_the_delivery_forward_only(s: Subject) {
    let k = key("login", "u");
    let id = s.put_verification(&k, "111111", NOW).await;
    let receipt = |status, error: Option<&str>, at| Receipt {
        status,
        error_code: error.map(str::to_owned),
        provider_message_id: Some("SM0123".to_owned()),
        at,
    };
    let sent = receipt(DeliveryStatus::Sent, None, NOW + 1);
    assert_eq!(
        s.store.record_delivery(&id, &sent).await.unwrap(),
        ReceiptOutcome::Applied {
            calling_code: Some(1),
            block: None,
            sent_at: NOW,
        }
    );
    assert_eq!(
        s.store.record_delivery(&id, &sent).await.unwrap(),
        ReceiptOutcome::Stale,
        "a replay changes nothing"
    );
    let undelivered = receipt(DeliveryStatus::Undelivered, Some("30003"), NOW + 5);
    assert!(matches!(
        s.store.record_delivery(&id, &undelivered).await.unwrap(),
        ReceiptOutcome::Applied { .. }
    ));
    let late = receipt(DeliveryStatus::Delivered, None, NOW + 6);
    assert_eq!(
        s.store.record_delivery(&id, &late).await.unwrap(),
        ReceiptOutcome::Stale,
        "a final answer stays"
    );
    let (verification, _) = s.store.verification(&id).await.unwrap().unwrap();
    let delivery = verification.delivery;
    assert_eq!(delivery.status, DeliveryStatus::Undelivered);
    assert_eq!(delivery.error_code.as_deref(), Some("30003"));
    assert_eq!(delivery.updated_at, Some(NOW + 5));
    assert_eq!(delivery.provider_message_id.as_deref(), Some("SM0123"));
    let unknown = VerificationId::generate();
    assert_eq!(
        s.store.record_delivery(&unknown, &sent).await.unwrap(),
        ReceiptOutcome::Unknown
    );
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory_conformance {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case(super::memory_store().await).await })*
        }
        mod dynamodb_conformance {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case(super::dynamodb_store().await).await })*
        }
    };
}

conformance!(
    right_guess_consumes_the_code,
    wrong_guesses_count_until_exhausted,
    cooldown_refuses_and_reports_seconds_left,
    expired_but_present_is_refused,
    used_code_never_blocks_a_resend,
    purposes_and_users_are_isolated,
    compensation_withdraws_only_its_own_code,
    wrong_guesses_across_resends_lock_the_user,
    a_success_clears_the_failures,
    failures_outside_the_window_do_not_count,
    one_network_locks_the_user_out_for_itself_only,
    guesses_spread_over_networks_stop_at_the_ceiling,
    a_guess_naming_another_destination_is_refused_uncounted,
    a_withdrawn_code_keeps_the_failures,
    concurrent_wrong_guesses_across_resends_never_pass_the_lockout,
    a_full_counter_refuses_the_send_and_writes_nothing,
    the_first_full_counter_is_named_and_none_is_charged,
    a_refusal_by_the_record_charges_nothing,
    a_withdrawal_gives_back_its_charges,
    concurrent_sends_never_pass_a_cap,
    a_verification_is_pending_then_approved,
    a_verification_expires_or_runs_out_of_attempts,
    a_resend_supersedes_the_pending_verification,
    a_canceled_code_never_verifies_and_frees_the_cooldown,
    receipts_move_the_delivery_forward_only,
);

#[tokio::test]
async fn the_table_holds_no_user_id_address_or_code() {
    let hasher = random_hasher();
    let store = moto_peer::store(hasher.clone()).await;
    let table = store.table().to_owned();
    let engine = engine_on(Arc::new(store), hasher).0;
    let email = otp_core::domain::Email::parse("carol@example.com").unwrap();
    let request = SendRequest::new(
        RecordKey::new(
            Space::Public,
            Purpose::default(),
            UserId::from_email(&email),
        ),
        Destination::Email(email),
    );
    engine.send(request).await.unwrap();
    let client = moto_peer::client().await;
    let items = client.scan().table_name(&table).send().await.unwrap();
    let text = format!("{:?}", items.items());
    // The record, its verification, and its four send counters (destination from this network
    // per 10 minutes and per day, the destination's ceiling for all networks, user).
    assert_eq!(items.items().len(), 6, "{text}");
    assert!(!text.contains("carol"), "{text}");
    assert!(text.contains("public:default#"), "{text}");
    assert!(text.contains("c***@example.com"), "{text}");
}

fn engine_on(store: Arc<dyn OtpStore>, hasher: CodeHasher) -> (Engine, RecordingSender) {
    let policy = Policy {
        max_attempts: MAX,
        ..Policy::default()
    };
    engine_with(store, hasher, policy, Arc::new(ManualClock::new(NOW)))
}

/// An engine on `store` whose SMS and email go to the returned recorder.
pub(crate) fn engine_with(
    store: Arc<dyn OtpStore>,
    hasher: CodeHasher,
    policy: Policy,
    clock: Arc<ManualClock>,
) -> (Engine, RecordingSender) {
    let sms = RecordingSender::new();
    let senders = Senders {
        sms: Some(Arc::new(sms.clone())),
        email: Some(Arc::new(sms.clone())),
        ..Default::default()
    };
    let engine = Engine::new(EngineParts {
        store,
        senders,
        hasher,
        policy,
        brand: None,
        clock,
        callers: otp_core::callers::Callers::Open,
        limits: SendLimits::default(),
        tokens: None,
        gate: Default::default(),
        fraud: Default::default(),
        autofill: Default::default(),
    });
    (engine, sms)
}

/// `engine`'s answer to `code` as a guess at `key`'s code.
async fn verify(engine: &Engine, key: &RecordKey, code: &str) -> VerifyOutcome {
    engine
        .verify(&request(key, &passcode(code)))
        .await
        .expect("the store answers")
}

fn sms_request(user: &str) -> SendRequest {
    SendRequest::new(
        key("default", user),
        Destination::Sms(PhoneE164::parse(PHONE).unwrap()),
    )
}

fn passcode(code: &str) -> Passcode {
    Passcode::parse(code, 6).unwrap()
}

fn failed() -> DeliveryError {
    DeliveryError::Failed("down".into())
}

#[tokio::test]
async fn every_operation_is_one_dynamodb_request() {
    // GIVEN an engine on a DynamoDB store whose client counts its HTTP requests
    let hasher = random_hasher();
    let (store, requests) = moto_peer::counted_store(hasher.clone()).await;
    let (engine, sms) = engine_on(Arc::new(store), hasher);
    let k = key("default", "u");

    // THEN each send and each verify, whatever its outcome, is exactly one request
    engine.send(sms_request("u")).await.unwrap();
    assert_eq!(requests.take(), 1, "send");
    assert!(engine.send(sms_request("u")).await.is_err());
    assert_eq!(requests.take(), 1, "send refused by cooldown");
    let code = sms.last_code_to(PHONE).unwrap();
    let outcomes = [
        (
            wrong_code(&code),
            VerifyOutcome::WrongCode {
                attempts_remaining: 2,
            },
        ),
        (code.clone(), verified()),
        (code.clone(), VerifyOutcome::NotFound),
    ];
    for (guess, expected) in outcomes {
        assert_eq!(verify(&engine, &k, &guess).await, expected);
        assert_eq!(requests.take(), 1, "verify → {expected:?}");
    }
    let unknown = key("default", "nobody");
    assert_eq!(
        verify(&engine, &unknown, &code).await,
        VerifyOutcome::NotFound
    );
    assert_eq!(requests.take(), 1, "verify unknown user");
    engine.send(sms_request("x")).await.unwrap();
    requests.take();
    let x = key("default", "x");
    for _ in 0..MAX {
        verify(&engine, &x, "000000").await;
    }
    requests.take();
    let exhausted = verify(&engine, &x, "000000").await;
    assert_eq!(
        (exhausted, requests.take()),
        (VerifyOutcome::TooManyAttempts, 1)
    );
    // AND a failed delivery costs exactly the put and its compensating delete
    sms.fail_with(failed);
    assert!(engine.send(sms_request("y")).await.is_err());
    assert_eq!(requests.take(), 2, "put + compensating delete");
}

#[tokio::test]
async fn lockout_and_destination_checks_are_one_dynamodb_request_each() {
    // GIVEN a DynamoDB store whose client counts requests, and a lockout at 3 wrong codes
    let hasher = random_hasher();
    let (store, requests) = moto_peer::counted_store(hasher.clone()).await;
    let policy = Policy {
        lockout_failures: 3,
        cooldown_secs: 0,
        ..Policy::default()
    };
    let clock = Arc::new(ManualClock::new(NOW));
    let (engine, sms) = engine_with(Arc::new(store), hasher, policy, clock);
    let k = key("default", "u");
    engine.send(sms_request("u")).await.unwrap();
    let code = sms.last_code_to(PHONE).unwrap();
    // WHEN the guess naming another destination is refused, THEN that is one request
    let elsewhere = VerifyRequest {
        destination: Some(Destination::Sms(PhoneE164::parse("+14155552672").unwrap())),
        ..request(&k, &passcode(&code))
    };
    requests.take();
    assert_eq!(
        (engine.verify(&elsewhere).await.unwrap(), requests.take()),
        (VerifyOutcome::WrongDestination, 1)
    );
    // AND the guess that locks, a guess while locked, and a send while locked: one each
    let wrong = request(&k, &passcode(&wrong_code(&code)));
    for _ in 0..2 {
        engine.verify(&wrong).await.unwrap();
    }
    requests.take();
    let locking = engine.verify(&wrong).await.unwrap();
    assert!(
        matches!(locking, VerifyOutcome::Locked { .. }),
        "{locking:?}"
    );
    assert_eq!(requests.take(), 1, "the locking guess");
    let locked = verify(&engine, &k, &code).await;
    assert!(matches!(locked, VerifyOutcome::Locked { .. }), "{locked:?}");
    assert_eq!(requests.take(), 1, "a guess while locked");
    let refused = engine.send(sms_request("u")).await.unwrap_err();
    assert!(
        matches!(refused, otp_core::engine::SendError::Locked(_)),
        "{refused:?}"
    );
    assert_eq!(requests.take(), 1, "a send while locked");
}

#[tokio::test]
async fn expired_item_still_in_the_table_is_refused_in_one_request() {
    let hasher = random_hasher();
    let (store, requests) = moto_peer::counted_store(hasher.clone()).await;
    let clock = Arc::new(ManualClock::new(NOW));
    let (engine, sms) = engine_with(Arc::new(store), hasher, Policy::default(), clock.clone());
    engine.send(sms_request("u")).await.unwrap();
    clock.advance(TTL);
    requests.take();
    let code = sms.last_code_to(PHONE).unwrap();
    let outcome = verify(&engine, &key("default", "u"), &code).await;
    assert_eq!((outcome, requests.take()), (VerifyOutcome::Expired, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_right_codes_succeed_once_on_dynamodb() {
    let hasher = random_hasher();
    let (engine, sms) = engine_on(Arc::new(moto_peer::store(hasher.clone()).await), hasher);
    engine.send(sms_request("u")).await.unwrap();
    let guess = passcode(&sms.last_code_to(PHONE).unwrap());
    let k = key("default", "u");
    let attempt = request(&k, &guess);
    let outcomes = join_all((0..100).map(|_| engine.verify(&attempt))).await;
    let verified = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(VerifyOutcome::Verified { .. })))
        .count();
    let gone = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(VerifyOutcome::NotFound)))
        .count();
    let errors: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.as_ref()
                .err()
                .map(|e| otp_core::telemetry::error_chain(e))
        })
        .collect();
    assert_eq!(
        (verified, gone),
        (1, 99),
        "{} store errors (moto timing out on an overloaded host?): {:?}",
        errors.len(),
        errors.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_wrong_codes_count_exactly_max_on_dynamodb() {
    let hasher = random_hasher();
    let (engine, sms) = engine_on(Arc::new(moto_peer::store(hasher.clone()).await), hasher);
    engine.send(sms_request("u")).await.unwrap();
    let code = sms.last_code_to(PHONE).unwrap();
    let wrong = passcode(&wrong_code(&code));
    let k = key("default", "u");
    let attempt = request(&k, &wrong);
    let outcomes = join_all((0..100).map(|_| engine.verify(&attempt))).await;
    let mut remaining: Vec<u32> = outcomes
        .iter()
        .filter_map(|o| match o {
            Ok(VerifyOutcome::WrongCode { attempts_remaining }) => Some(*attempts_remaining),
            _ => None,
        })
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, [0, 1, 2]);
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(VerifyOutcome::TooManyAttempts)))
        .count();
    assert_eq!(refused, 97);
    assert_eq!(
        verify(&engine, &k, &code).await,
        VerifyOutcome::TooManyAttempts
    );
}

#[tokio::test]
async fn unreachable_dynamodb_is_503_store_unavailable_with_nothing_sent() {
    // GIVEN a store whose endpoint refuses connections
    moto_peer::require_moto();
    let base = moto_peer::client().await;
    let config = base
        .config()
        .to_builder()
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let hasher = random_hasher();
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        "otp",
        hasher.clone(),
    );
    let (engine, sms) = engine_on(Arc::new(store), hasher);
    let app = router(Arc::new(engine), Routes::All);
    for (route, body) in [
        (
            "/send-code",
            r#"{"user_id":"u","method":"sms","phone":"+14155552671"}"#,
        ),
        ("/verify-code", r#"{"user_id":"u","passcode":"123456"}"#),
        ("/auth/request-otp", r#"{"email":"a@example.com"}"#),
        (
            "/auth/verify-otp",
            r#"{"email":"a@example.com","otp_code":"123456"}"#,
        ),
    ] {
        // WHEN any route is called
        let request = http::Request::post(route)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        // THEN 503 store_unavailable, with a sentence and no internals
        assert_eq!(response.status(), 503, "{route}");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if route == "/auth/verify-otp" {
            // The public check says nothing but its sentence.
            assert_eq!(json.as_object().unwrap().len(), 1, "{route}");
        } else {
            assert_eq!(json["error"], "store_unavailable", "{route}");
        }
        let detail = json["detail"].as_str().unwrap();
        assert!(!detail.contains("127.0.0.1") && !detail.to_lowercase().contains("dispatch"));
    }
    assert!(sms.messages().is_empty(), "no code was delivered");
}

#[tokio::test]
async fn a_retried_request_whose_answer_was_lost_is_applied_once() {
    // GIVEN a DynamoDB client that loses the answer to an applied request, so the SDK retries
    let hasher = random_hasher();
    let (store, lose, requests) = moto_peer::lossy_store(hasher.clone()).await;
    let (engine, sms) = engine_on(Arc::new(store), hasher);
    let k = key("default", "u");

    // WHEN a send's answer is lost, THEN the retry does not refuse itself with a cooldown
    lose.lose_next(1);
    engine
        .send(sms_request("u"))
        .await
        .expect("the send succeeds");
    assert_eq!(requests.take(), 2, "the SDK retried once");
    let code = sms.last_code_to(PHONE).unwrap();

    // WHEN a wrong guess's answer is lost, THEN it still counts as one attempt
    lose.lose_next(1);
    let outcome = verify(&engine, &k, &wrong_code(&code)).await;
    assert_eq!(
        outcome,
        VerifyOutcome::WrongCode {
            attempts_remaining: 2
        }
    );
    assert_eq!(requests.take(), 2);

    // WHEN the right guess's answer is lost, THEN it is still a success, exactly once
    lose.lose_next(1);
    let outcome = verify(&engine, &k, &code).await;
    assert_eq!(outcome, verified());
    assert_eq!(requests.take(), 2);
    let replay = verify(&engine, &k, &code).await;
    assert_eq!(replay, VerifyOutcome::NotFound);
}

/// Rotates the code key between send and verify on whatever store `store_for` gives for a
/// hasher (the same records underneath).
async fn rotation_keeps_pending_codes_valid(store_for: impl Fn(CodeHasher) -> Arc<dyn OtpStore>) {
    let (a, b) = (HashKey::random(), HashKey::random());
    let ring = |keys: Vec<HashKey>, pseudonym: Option<HashKey>| {
        CodeHasher::new(&KeyRing::new(keys, pseudonym).unwrap())
    };
    let only_a = ring(vec![a.clone()], None);
    let b_then_a = ring(vec![b.clone(), a.clone()], None);
    let only_b = ring(vec![b.clone()], Some(a.clone()));
    // GIVEN codes sent under key A
    let (before, sms) = engine_on(store_for(only_a.clone()), only_a);
    before.send(sms_request("u")).await.unwrap();
    let code_u = sms.last_code_to(PHONE).unwrap();
    // WHEN B becomes the current key and A a previous one
    let (after, sms_after) = engine_on(store_for(b_then_a.clone()), b_then_a);
    // THEN the pending code is found (its record name did not move) and verifies once
    let k = key("default", "u");
    assert_eq!(
        verify(&after, &k, &wrong_code(&code_u)).await,
        VerifyOutcome::WrongCode {
            attempts_remaining: 2
        }
    );
    assert_eq!(verify(&after, &k, &code_u).await, verified());
    assert_eq!(verify(&after, &k, &code_u).await, VerifyOutcome::NotFound);
    // AND a new code is made with B, and still verifies once A is retired (name pinned to A)
    after.send(sms_request("v")).await.unwrap();
    let code_v = sms_after.last_code_to(PHONE).unwrap();
    before.send(sms_request("w")).await.unwrap();
    let code_w = sms.last_code_to(PHONE).unwrap();
    let (retired, _) = engine_on(store_for(only_b.clone()), only_b);
    assert_eq!(
        verify(&retired, &key("default", "v"), &code_v).await,
        verified()
    );
    // AND a code made with A no longer verifies once A is gone
    assert!(matches!(
        verify(&retired, &key("default", "w"), &code_w).await,
        VerifyOutcome::WrongCode { .. }
    ));
}

#[tokio::test]
async fn rotating_the_code_key_keeps_pending_codes_valid_on_memory() {
    let memory: Arc<dyn OtpStore> = Arc::new(MemoryStore::new());
    rotation_keeps_pending_codes_valid(|_| memory.clone()).await;
}

#[tokio::test]
async fn rotating_the_code_key_keeps_pending_codes_valid_on_dynamodb() {
    let client = moto_peer::client().await;
    let table = moto_peer::create_table(&client).await;
    rotation_keeps_pending_codes_valid(|hasher| {
        Arc::new(DynamoStore::new(client.clone(), table.clone(), hasher)) as Arc<dyn OtpStore>
    })
    .await;
}

#[tokio::test]
async fn an_item_from_before_lockout_takes_no_guess_and_the_next_send_upgrades_it() {
    // GIVEN a pending code as the previous release wrote it: no failure list, no markers, and
    // `expires_at` holding the code's expiry
    let hasher = random_hasher();
    let client = moto_peer::client().await;
    let table = moto_peer::create_table(&client).await;
    let subject = Subject {
        store: Arc::new(DynamoStore::new(
            client.clone(),
            table.clone(),
            hasher.clone(),
        )),
        hasher: hasher.clone(),
    };
    let k = key("login", "legacy");
    let s = |v: String| aws_sdk_dynamodb::types::AttributeValue::S(v);
    let n = |v: u64| aws_sdk_dynamodb::types::AttributeValue::N(v.to_string());
    let b = |hash: &CodeHash| {
        aws_sdk_dynamodb::types::AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
            hash.as_bytes().to_vec(),
        ))
    };
    client
        .put_item()
        .table_name(&table)
        .item("pk", s(format!("login#{}", hasher.pseudonym(&k.user_id))))
        .item("code_hash", b(&subject.hash(&k, "111111")))
        .item("channel", s("sms".into()))
        .item("sent_at", n(NOW))
        .item("expires_at", n(NOW + TTL))
        .item("attempts", n(0))
        .send()
        .await
        .unwrap();
    // WHEN its code is tried, THEN it is refused without a count (the user requests a new one)
    let old = refused(subject.guess(&k, "111111", NOW + 1).await).expect("record read");
    assert!(old.lockout.is_none() && old.attempts == 0);
    assert_eq!(old.expires_at, NOW + TTL, "the old expiry is read");
    // AND its cooldown still holds, after which a send replaces it with a full record
    assert!(matches!(
        subject.put(&k, "222222", NOW + 2, COOLDOWN).await,
        PutOutcome::CoolingDown { retry_after: 28 }
    ));
    assert!(matches!(
        subject.put(&k, "222222", NOW + COOLDOWN, COOLDOWN).await,
        PutOutcome::Stored
    ));
    assert!(recorded(subject.guess(&k, "222222", NOW + COOLDOWN).await).is_consumed());
}

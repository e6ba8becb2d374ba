//! Engine rules at the unit level, on the memory store with a hand-moved clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::code::CodeHash;
use crate::domain::{Email, PhoneE164, Purpose, Space, UserId};
use crate::keys::{HashKey, KeyRing};
use crate::limits::{Charge, LimitName, SendLimits};
use crate::store::MemoryStore;
use crate::store::{GuessAttempt, NewCode};
use crate::testing::{ManualClock, RecordingSender};
use crate::verification::{Cancel, Receipt, ReceiptOutcome, Verification, VerificationId};

const PHONE: &str = "+14155552671";

struct Fixture {
    engine: Engine,
    sms: RecordingSender,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
}

fn fixture_with(store: Arc<dyn OtpStore>, memory: Arc<MemoryStore>, email: bool) -> Fixture {
    let sms = RecordingSender::new();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let senders = Senders {
        sms: Some(Arc::new(sms.clone())),
        email: email.then(|| Arc::new(sms.clone()) as Arc<_>),
        ..Default::default()
    };
    let engine = Engine::new(EngineParts {
        store,
        senders,
        hasher: CodeHasher::new(&KeyRing::single(HashKey::random())),
        policy: Policy::default(),
        brand: Some("Acme".to_owned()),
        clock: clock.clone(),
        callers: crate::callers::Callers::Open,
        limits: SendLimits::default(),
        tokens: None,
        gate: Default::default(),
        fraud: Default::default(),
        autofill: Default::default(),
    });
    Fixture {
        engine,
        sms,
        store: memory,
        clock,
    }
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryStore::new());
    fixture_with(store.clone(), store, true)
}

fn key(user: &str) -> RecordKey {
    RecordKey::new(
        Space::Backend,
        Purpose::default(),
        UserId::parse(user).unwrap(),
    )
}

fn sms(user: &str) -> SendRequest {
    SendRequest::new(
        key(user),
        Destination::Sms(PhoneE164::parse(PHONE).unwrap()),
    )
}

fn guess(user: &str, passcode: &Passcode) -> VerifyRequest {
    VerifyRequest {
        key: key(user),
        passcode: passcode.clone(),
        destination: None,
        client: None,
        caller: None,
    }
}

fn code(f: &Fixture) -> Passcode {
    Passcode::parse(&f.sms.last_code_to(PHONE).unwrap(), 6).unwrap()
}

#[tokio::test]
async fn send_stores_only_a_hash_with_the_policy_times() {
    let f = fixture();
    let sent = f.engine.send(sms("u")).await.unwrap();
    assert_eq!((sent.channel, sent.expires_in), (Channel::Sms, 300));
    assert!(sent.verification_id.as_str().starts_with("VE"));
    let record = f.store.get(&key("u")).unwrap();
    assert_eq!(
        (record.sent_at, record.expires_at, record.attempts),
        (1_000_000, 1_000_300, 0)
    );
    let code = f.sms.last_code_to(PHONE).unwrap();
    assert!(!format!("{record:?}").contains(&code));
    assert!(f.sms.messages()[0]
        .text
        .starts_with("Acme: Your verification code is "));
}

#[tokio::test]
async fn verify_outcomes_in_order() {
    let f = fixture();
    f.engine.send(sms("u")).await.unwrap();
    let right = code(&f);
    let wrong = Passcode::parse(
        if right.expose() == "000000" {
            "111111"
        } else {
            "000000"
        },
        6,
    )
    .unwrap();
    assert_eq!(
        f.engine.verify(&guess("u", &wrong)).await.unwrap(),
        VerifyOutcome::WrongCode {
            attempts_remaining: 2
        }
    );
    assert_eq!(
        f.engine.verify(&guess("u", &right)).await.unwrap(),
        VerifyOutcome::Verified {
            channel: Channel::Sms,
            sent_to: "+1******2671".to_owned()
        }
    );
    assert_eq!(
        f.engine.verify(&guess("u", &right)).await.unwrap(),
        VerifyOutcome::NotFound
    );
    assert_eq!(
        f.engine.verify(&guess("v", &right)).await.unwrap(),
        VerifyOutcome::NotFound
    );
}

#[tokio::test]
async fn expiry_beats_exhaustion_in_the_reported_reason() {
    let f = fixture();
    f.engine.send(sms("u")).await.unwrap();
    let wrong = Passcode::parse("000000", 6).unwrap();
    for _ in 0..3 {
        f.engine.verify(&guess("u", &wrong)).await.unwrap();
    }
    f.clock.advance(300);
    assert_eq!(
        f.engine.verify(&guess("u", &code(&f))).await.unwrap(),
        VerifyOutcome::Expired
    );
}

#[tokio::test]
async fn unavailable_channel_writes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let f = fixture_with(store.clone(), store, false);
    let request = SendRequest::new(
        key("u"),
        Destination::Email(Email::parse("a@example.com").unwrap()),
    );
    let error = f.engine.send(request).await.unwrap_err();
    assert!(matches!(
        error,
        SendError::ChannelUnavailable(Channel::Email)
    ));
    assert!(f.store.is_empty());
}

#[tokio::test]
async fn failed_delivery_removes_the_code_and_its_cooldown() {
    let f = fixture();
    f.sms.fail_with(|| DeliveryError::Failed("down".into()));
    assert!(matches!(
        f.engine.send(sms("u")).await.unwrap_err(),
        SendError::Delivery(DeliveryError::Failed(_))
    ));
    assert!(f.store.get(&key("u")).is_none());
    f.sms.succeed();
    assert!(f.engine.send(sms("u")).await.is_ok());
}

/// A fixture whose only send limit is `cap` sends per destination per 10 minutes, with no
/// cooldown, so that the counter alone decides.
fn capped(cap: u32) -> Fixture {
    let mut f = fixture();
    f.engine.parts.limits = SendLimits {
        destination_per_10_minutes: cap,
        destination_per_day: 0,
        user_per_hour: 0,
        sms_country_per_day: 0,
        sms_daily_budget: 0,
        ..SendLimits::default()
    };
    f.engine.parts.policy.cooldown_secs = 0;
    f
}

fn limited(result: Result<Sent, SendError>) -> Option<LimitName> {
    match result {
        Err(SendError::Limited { limit, .. }) => Some(limit),
        _ => None,
    }
}

#[tokio::test]
async fn our_failed_deliveries_give_their_sends_back() {
    // GIVEN a cap of 2 sends and a provider that is down
    let f = capped(2);
    f.sms.fail_with(|| DeliveryError::Failed("down".into()));
    // WHEN three sends fail for certain
    for _ in 0..3 {
        assert!(limited(f.engine.send(sms("u")).await).is_none());
    }
    // THEN the cap is untouched: two sends still go out, the third is refused
    f.sms.succeed();
    assert!(f.engine.send(sms("u")).await.is_ok());
    assert!(f.engine.send(sms("u")).await.is_ok());
    assert_eq!(
        limited(f.engine.send(sms("u")).await),
        Some(LimitName::Destination10Minutes)
    );
    assert_eq!(f.sms.count(), 2);
}

#[tokio::test]
async fn refused_destinations_and_uncertain_deliveries_keep_their_charge() {
    // GIVEN a cap of 2: one send the provider refuses, one it may have sent
    let f = capped(2);
    f.sms.fail_with(|| DeliveryError::InvalidDestination {
        detail: "no".to_owned(),
    });
    assert!(matches!(
        f.engine.send(sms("u")).await,
        Err(SendError::Delivery(
            DeliveryError::InvalidDestination { .. }
        ))
    ));
    f.sms
        .fail_with(|| DeliveryError::Uncertain("timeout".into()));
    assert!(matches!(
        f.engine.send(sms("v")).await,
        Err(SendError::DeliveryUncertain { .. })
    ));
    // THEN the uncertain code is still stored and valid, and the cap is spent
    assert!(f.store.get(&key("v")).is_some());
    assert!(f.store.get(&key("u")).is_none());
    f.sms.succeed();
    assert_eq!(
        limited(f.engine.send(sms("w")).await),
        Some(LimitName::Destination10Minutes)
    );
}

#[tokio::test]
async fn an_uncertain_delivery_keeps_the_cooldown_and_the_code_verifies() {
    let f = fixture();
    f.sms
        .fail_with(|| DeliveryError::Uncertain("timeout".into()));
    let error = f.engine.send(sms("u")).await.unwrap_err();
    assert!(
        matches!(
            error,
            SendError::DeliveryUncertain {
                retry_after: 30,
                ..
            }
        ),
        "{error:?}"
    );
    // The recording sender saw the message: that is the SMS that may have arrived.
    let passcode = code(&f);
    f.sms.succeed();
    assert!(matches!(
        f.engine.send(sms("u")).await,
        Err(SendError::CoolingDown(_))
    ));
    assert!(matches!(
        f.engine.verify(&guess("u", &passcode)).await.unwrap(),
        VerifyOutcome::Verified { .. }
    ));
}

#[tokio::test]
async fn a_premium_number_is_refused_before_anything_is_written() {
    let f = fixture();
    let request = SendRequest {
        destination: Destination::Sms(PhoneE164::parse("+449098790000").unwrap()),
        ..sms("u")
    };
    let error = f.engine.send(request).await.unwrap_err();
    assert!(
        matches!(error, SendError::NumberRefused { .. }),
        "{error:?}"
    );
    assert!(f.store.is_empty());
    assert_eq!(f.sms.count(), 0);
}

/// A memory store whose delete fails, to reach the engine's "could not compensate" path.
struct DeleteFails(Arc<MemoryStore>, AtomicBool);

#[async_trait]
impl OtpStore for DeleteFails {
    async fn put_unless_blocked(
        &self,
        key: &RecordKey,
        code: &NewCode,
        now: u64,
        policy: &Policy,
        charges: &[Charge],
    ) -> Result<PutOutcome, StoreError> {
        self.0
            .put_unless_blocked(key, code, now, policy, charges)
            .await
    }

    async fn withdraw_if_holds(
        &self,
        _: &RecordKey,
        _: &CodeHash,
        _: &[Charge],
    ) -> Result<bool, StoreError> {
        self.1.store(true, Ordering::SeqCst);
        Err(StoreError::Unavailable("gone".into()))
    }

    async fn charge_alone(&self, charge: &Charge, now: u64) -> Result<bool, StoreError> {
        self.0.charge_alone(charge, now).await
    }

    fn describe(&self) -> String {
        "failing".to_owned()
    }

    async fn record_guess(
        &self,
        key: &RecordKey,
        guess: &GuessAttempt<'_>,
        now: u64,
        policy: &Policy,
    ) -> Result<GuessOutcome, StoreError> {
        self.0.record_guess(key, guess, now, policy).await
    }

    async fn verification(
        &self,
        id: &VerificationId,
    ) -> Result<Option<(Verification, Option<OtpRecord>)>, StoreError> {
        self.0.verification(id).await
    }

    async fn cancel(&self, verification: &Verification, now: u64) -> Result<Cancel, StoreError> {
        self.0.cancel(verification, now).await
    }

    async fn record_delivery(
        &self,
        id: &VerificationId,
        receipt: &Receipt,
    ) -> Result<ReceiptOutcome, StoreError> {
        self.0.record_delivery(id, receipt).await
    }

    async fn keep_message_id(
        &self,
        id: &VerificationId,
        message_id: &str,
    ) -> Result<(), StoreError> {
        self.0.keep_message_id(id, message_id).await
    }
}

#[tokio::test]
async fn failed_compensation_still_reports_the_delivery_failure() {
    let memory = Arc::new(MemoryStore::new());
    let store = Arc::new(DeleteFails(memory.clone(), AtomicBool::new(false)));
    let f = fixture_with(store.clone(), memory, true);
    f.sms.fail_with(|| DeliveryError::Failed("down".into()));
    let error = f.engine.send(sms("u")).await.unwrap_err();
    assert!(matches!(error, SendError::Delivery(_)), "{error:?}");
    assert!(store.1.load(Ordering::SeqCst), "compensation was attempted");
}

#[test]
fn error_chain_joins_sources() {
    let error = StoreError::Unavailable(Box::new(std::io::Error::other("refused")));
    assert_eq!(error_chain(&error), "the OTP store is unavailable: refused");
}

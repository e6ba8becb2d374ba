//! Counters every send of a country (or every SMS) is charged to, at internet scale: split into
//! shards whose caps add up to the whole, so no item is in the path of every send, and the caps
//! still hold on DynamoDB (moto).

use std::sync::Arc;

use futures_util::future::join_all;
use otp_core::code::CodeHasher;
use otp_core::domain::{Destination, PhoneE164, Purpose, Space, UserId};
use otp_core::engine::{SendError, SendRequest};
use otp_core::limits::LimitName;
use otp_core::settings::SendLimits;
use otp_core::store::{OtpStore, RecordKey};
use otp_core::testing::RecordingSender;
use otp_core::Engine;

fn engine(
    store: Arc<dyn OtpStore>,
    hasher: CodeHasher,
    limits: SendLimits,
) -> (Engine, RecordingSender) {
    let (engine, sms, _) = crate::helpers::sms_engine(store, hasher, limits, Default::default());
    (engine, sms)
}

/// The `n`th UK mobile of a burst: each in a block of its own.
fn uk_mobile(n: u32) -> PhoneE164 {
    PhoneE164::parse(&format!("+44771{:04}{:03}", n, n % 1000)).unwrap()
}

async fn send(engine: &Engine, n: u32) -> Result<(), SendError> {
    engine
        .send(SendRequest::new(
            RecordKey::new(
                Space::Backend,
                Purpose::default(),
                UserId::parse(&format!("burst-{n}")).unwrap(),
            ),
            Destination::Sms(uk_mobile(n)),
        ))
        .await
        .map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_country_burst_writes_no_item_from_more_than_a_sixteenth_of_its_sends() {
    // GIVEN the DynamoDB store (moto) recording the items each request writes or checks, with
    // the default limits and the fraud guard checking every send
    let hasher = crate::store_conformance::random_hasher();
    let (store, keys) = crate::moto_peer::recorded_store(hasher.clone()).await;
    let (engine, sms) = engine(Arc::new(store), hasher, SendLimits::default());
    // WHEN 320 users of one country are sent codes, 8 at a time
    for batch in (0..320).collect::<Vec<u32>>().chunks(8) {
        let sent = join_all(batch.iter().map(|&n| send(&engine, n))).await;
        assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    }
    // THEN every send went out in one request, and no item (the country's counter and budget
    // shards, the country's breaker items among them) was touched by more than 20 of them
    assert_eq!((sms.count(), keys.requests()), (320, 320));
    let per_item = keys.per_item();
    let (hottest, most) = per_item.iter().max_by_key(|(_, n)| **n).unwrap();
    assert!(
        *most <= 320 / 16,
        "{hottest} was written or checked by {most} of 320 sends"
    );
    let shards = |prefix: &str| per_item.keys().filter(|k| k.starts_with(prefix)).count();
    assert_eq!(
        shards("limit:sms-cc#44#"),
        16,
        "the country's counter in 16 items"
    );
    assert_eq!(shards("limit:sms-all#"), 16, "the budget in 16 items");
    assert_eq!(
        shards("fraud:check:cc:44:"),
        16,
        "the country's breaker in 16 items"
    );
}

/// Sends `total` codes to distinct numbers of one country, 4 at a time; how many went out and
/// how many were refused by `limit`.
async fn fill(limits: SendLimits, total: u32, limit: LimitName) -> (usize, usize) {
    let hasher = crate::store_conformance::random_hasher();
    let (store, requests) = crate::moto_peer::counted_store(hasher.clone()).await;
    let (engine, sms) = engine(Arc::new(store), hasher, limits);
    let mut refused = 0;
    for batch in (0..total).collect::<Vec<u32>>().chunks(4) {
        for result in join_all(batch.iter().map(|&n| send(&engine, n))).await {
            match result {
                Ok(()) => {}
                Err(SendError::Limited { limit: l, .. }) if l == limit => refused += 1,
                Err(other) => panic!("{other:?}"),
            }
        }
    }
    // Tries on other shards near the cap are counted: still at most 1.1 requests a send.
    let made = requests.take();
    assert!(
        made * 10 <= total as usize * 11,
        "{made} requests for {total} sends"
    );
    (sms.count(), refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_small_budget_still_means_its_number() {
    // GIVEN a daily SMS budget of 60, split over 6 shards of 10
    let limits = SendLimits {
        sms_daily_budget: 60,
        ..SendLimits::default()
    };
    // WHEN 100 codes are asked for
    let (sent, refused) = fill(limits, 100, LimitName::SmsDailyBudget).await;
    // THEN 60 go out and the other 40 are refused by the budget
    assert_eq!((sent, refused), (60, 40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_default_country_cap_holds_on_dynamodb() {
    // GIVEN the default 1,000 SMS per country a day, split over 16 shards of 62 or 63
    // WHEN 1,050 codes are asked for, to one country
    let (sent, refused) = fill(SendLimits::default(), 1050, LimitName::SmsCountryDay).await;
    // THEN 1,000 go out and the rest are refused by the country's cap
    assert_eq!((sent, refused), (1000, 50));
}

#[tokio::test]
async fn a_busy_shard_is_left_for_another_and_conflicts_never_multiply_the_load() {
    use otp_core::store::StoreError;
    // GIVEN the DynamoDB store (moto) whose transactions can be made to conflict, the default
    // limits and the fraud guard off: a send's items are the record, its verification, two
    // destination counters, the user's, and one shard each of the country's counter (item 5)
    // and of the budget
    let hasher = crate::store_conformance::random_hasher();
    let (store, conflicts, requests) = crate::moto_peer::conflicting_store(hasher.clone()).await;
    let guard_off = otp_core::engine::FraudGuard::new(
        otp_core::fraud::FraudSettings {
            mode: otp_core::fraud::FraudMode::Off,
            ..Default::default()
        },
        None,
        None,
    );
    let (engine, sms, _) =
        crate::helpers::sms_engine(Arc::new(store), hasher, SendLimits::default(), guard_off);
    // WHEN another send is committing on the country's shard this send picked
    conflicts.conflict_next_at(1, 5);
    // THEN the send gives that shard up at once and is charged to another: two requests
    send(&engine, 1).await.expect("sent on another shard");
    assert_eq!(requests.take(), 2);
    // WHEN every shard it tries is busy, THEN it fails as the store being unavailable after
    // three tries, with nothing written
    conflicts.conflict_next_at(10, 5);
    let failed = send(&engine, 2).await;
    assert!(
        matches!(failed, Err(SendError::Store(StoreError::Unavailable(_)))),
        "{failed:?}"
    );
    assert_eq!(requests.take(), 3);
    conflicts.conflict_next_at(0, 1);
    // WHEN conflicts on an item of its own (its record) go on and on, THEN the sends retry only
    // while the retry budget lasts: 10 saved tokens, a tenth earned per send, one per retry
    let mut made = Vec::new();
    for n in 10..15 {
        conflicts.conflict_next_at(100, 0);
        let failed = send(&engine, n).await;
        assert!(matches!(failed, Err(SendError::Store(_))), "{failed:?}");
        made.push(requests.take());
    }
    assert_eq!(
        made,
        [4, 4, 4, 2, 1],
        "retries stop when the budget is spent"
    );
    // AND nothing was sent for any of the failed sends
    assert_eq!(sms.count(), 1);
}

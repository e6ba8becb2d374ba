//! The fraud guard against SMS pumping, simulated: thousands of sends through the engine on the
//! embedded store, real time compressed through the injected clock, real users typing their
//! codes after a realistic delay. The counting runs in process, as on the local server.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::helpers::every_setup;
use otp_core::code::CodeHasher;
use otp_core::counting::Counting;
use otp_core::domain::{Destination, NumberKind, Passcode, PhoneE164, Purpose, Space, UserId};
use otp_core::engine::{FraudGuard, SendError, SendRequest, VerifyOutcome, VerifyRequest};
use otp_core::fraud::{FraudMode, FraudSettings, Prefix, SafeList};
use otp_core::keys::{HashKey, KeyRing};
use otp_core::limits::{ClientIp, LimitName};
use otp_core::settings::SendLimits;
use otp_core::store::{FraudLedger, MemoryStore, OtpStore, RecordKey};
use otp_core::testing::{ManualClock, RecordingSender};
use otp_core::Engine;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};

use crate::helpers::START;

/// The three UK blocks the attacker walks number by number.
const PUMPED_BLOCKS: [&str; 3] = ["+447712345", "+447911123", "+447400123"];

struct World {
    engine: Engine,
    sms: RecordingSender,
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    hasher: CodeHasher,
}

fn world(settings: FraudSettings) -> World {
    let store = Arc::new(MemoryStore::new());
    let hasher = CodeHasher::new(&KeyRing::single(HashKey::random()));
    let counting = Arc::new(Counting::new(store.clone(), settings.clone()));
    let fraud = FraudGuard::new(settings, Some(store.clone()), Some(counting));
    let (engine, sms, clock) = engine(store.clone(), hasher.clone(), fraud);
    World {
        engine,
        sms,
        clock,
        store,
        hasher,
    }
}

/// An engine on `store` with the defaults' limits (1,000 a day per country, 10,000 in all).
fn engine(
    store: Arc<dyn OtpStore>,
    hasher: CodeHasher,
    fraud: FraudGuard,
) -> (Engine, RecordingSender, Arc<ManualClock>) {
    crate::helpers::sms_engine(store, hasher, SendLimits::default(), fraud)
}

fn guard(mode: FraudMode) -> FraudSettings {
    FraudSettings {
        mode,
        ..FraudSettings::default()
    }
}

fn key(user: &str) -> RecordKey {
    RecordKey::new(
        Space::Backend,
        Purpose::default(),
        UserId::parse(user).unwrap(),
    )
}

fn ip(rng: &mut StdRng) -> ClientIp {
    let raw = format!(
        "{}.{}.{}.{}",
        rng.random_range(11..200),
        rng.random_range(0..=255),
        rng.random_range(0..=255),
        rng.random_range(1..255)
    );
    ClientIp::parse(&raw).unwrap()
}

/// A random valid mobile number starting with `lead`, with `digits` more digits.
fn mobile(rng: &mut StdRng, lead: &str, digits: usize) -> PhoneE164 {
    loop {
        let tail: String = (0..digits)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        let phone = PhoneE164::parse(&format!("{lead}{tail}"));
        let mobile = |p: &PhoneE164| {
            p.facts().is_some_and(|f| {
                matches!(f.kind, NumberKind::Mobile | NumberKind::FixedLineOrMobile)
            })
        };
        if let Some(phone) = phone.ok().filter(mobile) {
            return phone;
        }
    }
}

impl World {
    async fn send(
        &self,
        user: &str,
        phone: &PhoneE164,
        client: ClientIp,
        trusted: bool,
    ) -> Result<(), SendError> {
        self.engine
            .send(SendRequest {
                client: Some(client),
                trusted,
                ..SendRequest::new(key(user), Destination::Sms(phone.clone()))
            })
            .await
            .map(drop)
    }

    async fn verify(&self, user: &str, phone: &PhoneE164) -> VerifyOutcome {
        let code = self
            .sms
            .last_code_to(phone.as_str())
            .expect("a code was sent");
        self.engine
            .verify(&VerifyRequest {
                key: key(user),
                passcode: Passcode::parse(&code, code.len()).unwrap(),
                destination: None,
                client: None,
                caller: None,
            })
            .await
            .unwrap()
    }

    fn delivered_to(&self, prefix: &str) -> usize {
        self.sms
            .messages()
            .iter()
            .filter(|m| m.destination.address().starts_with(prefix))
            .count()
    }

    fn block_of(&self, digits: &str) -> Prefix {
        Prefix::Block(self.hasher.block_pseudonym(digits))
    }
}

/// Real users: each second one UK, one US and one French user asks for a code; 85 % type it
/// 8 to 45 seconds later. Returns how their sends went.
#[derive(Default)]
struct Users {
    next: u64,
    /// Second → users who type their code then.
    typing: BTreeMap<u64, Vec<(String, PhoneE164)>>,
    sent: usize,
    refused: Vec<String>,
    verified: usize,
}

impl Users {
    async fn arrive(&mut self, world: &World, rng: &mut StdRng, leads: &[(&str, usize)], now: u64) {
        for &(lead, digits) in leads {
            self.next += 1;
            let user = format!("user-{}", self.next);
            let phone = mobile(rng, lead, digits);
            match world.send(&user, &phone, ip(rng), false).await {
                Ok(()) => {
                    self.sent += 1;
                    if rng.random_range(0..100) < 85 {
                        let at = now + rng.random_range(8..=45);
                        self.typing.entry(at).or_default().push((user, phone));
                    }
                }
                Err(error) => self.refused.push(format!("{}: {error}", phone.as_str())),
            }
        }
    }

    async fn type_codes(&mut self, world: &World, now: u64) {
        for (user, phone) in self.typing.remove(&now).unwrap_or_default() {
            match world.verify(&user, &phone).await {
                VerifyOutcome::Verified { .. } => self.verified += 1,
                other => panic!("{user} could not verify: {other:?}"),
            }
        }
    }
}

const LEGIT: [(&str, usize); 3] = [("+4471", 8), ("+1415", 7), ("+336", 8)];

#[tokio::test]
async fn pumping_is_stopped_by_conversion_and_real_users_of_the_country_keep_getting_codes() {
    // GIVEN the service's defaults, real UK, US and French users (85 % type their code), and an
    // attacker at 12 sends a second: three UK blocks walked number by number and a sweep of
    // Philippine mobiles, a new user id and client IP each time, never verifying
    let world = world(guard(FraudMode::Block));
    let mut rng = StdRng::seed_from_u64(27);
    let mut users = Users::default();
    let (mut attacks, mut walked) = (0u64, [0u32; 3]);
    let mut attack_refusals = BTreeMap::<String, usize>::new();

    // WHEN both run for ten minutes (the 90-second trial, and long enough that the UK's
    // daily cap would fill were the pumping not stopped)
    for second in 0..600 {
        let now = START + second;
        users.arrive(&world, &mut rng, &LEGIT, now).await;
        for i in 0..12 {
            attacks += 1;
            let phone = if i % 10 < 7 {
                let block = (i % 3) as usize;
                walked[block] += 1;
                let raw = format!("{}{:03}", PUMPED_BLOCKS[block], walked[block] % 1000);
                PhoneE164::parse(&raw).unwrap()
            } else {
                mobile(&mut rng, "+639", 9)
            };
            if let Err(error) = world
                .send(&format!("bot-{attacks}"), &phone, ip(&mut rng), false)
                .await
            {
                *attack_refusals
                    .entry(otp_core::engine::send_outcome(&Err(error)).to_owned())
                    .or_default() += 1;
            }
        }
        users.type_codes(&world, now).await;
        world.clock.advance(1);
    }
    for second in 600..660 {
        users.type_codes(&world, START + second).await;
    }

    // THEN each pumped block got at most 50 codes and the sweep at most 200
    for block in PUMPED_BLOCKS {
        let delivered = world.delivered_to(block);
        assert!(delivered <= 50, "{block}: {delivered} codes delivered");
    }
    let swept = world.delivered_to("+63");
    assert!(swept <= 200, "the Philippine sweep got {swept} codes");
    // ... the rest of the attack was refused by the guard, not by a cap
    assert_eq!(
        attack_refusals.keys().collect::<Vec<_>>(),
        ["fraud_suspected"],
        "{attack_refusals:?}"
    );
    // ... and real users were not refused (at most 0.5 %), least of all by a cap or the budget
    let refused = users.refused.len();
    assert!(
        refused * 200 <= users.sent + refused,
        "{refused} of {} real users refused: {:?}",
        users.sent + refused,
        users.refused
    );
    assert!(users.sent >= 1790, "{} real users got a code", users.sent);
    assert!(users.verified * 100 >= users.sent * 80);
    // ... with the UK open, and each pumped block and the Philippines held
    let open: Vec<String> = world
        .store
        .breakers()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.prefix)
        .collect();
    for block in PUMPED_BLOCKS {
        assert!(
            open.contains(&world.block_of(block).key()),
            "{block} is held"
        );
    }
    assert!(open.contains(&Prefix::Country(63).key()));
    assert!(
        !open.contains(&Prefix::Country(44).key()),
        "the UK is not closed"
    );
    println!(
        "attack: {attacks} sends, delivered {:?} to the blocks and {swept} to the sweep; real \
         users: {} sent, {} verified, {refused} refused",
        PUMPED_BLOCKS.map(|b| world.delivered_to(b)),
        users.sent,
        users.verified
    );
}

#[tokio::test]
async fn a_legitimate_surge_opens_no_breaker() {
    // GIVEN a launch: 500 new UK users in ten minutes, spread over the UK's mobile ranges,
    // 85 % of them typing their code
    let world = world(guard(FraudMode::Block));
    let mut rng = StdRng::seed_from_u64(500);
    let mut users = Users::default();
    // WHEN they arrive (five every six seconds) and type
    for second in 0..660 {
        let now = START + second;
        if second < 600 && second % 6 == 0 {
            users.arrive(&world, &mut rng, &[("+447", 9); 5], now).await;
        }
        users.type_codes(&world, now).await;
        world.clock.advance(1);
    }
    // THEN every one got a code and no breaker opened
    assert_eq!(users.refused, Vec::<String>::new());
    assert_eq!(users.sent, 500);
    assert_eq!(world.store.breakers().await.unwrap(), []);
}

/// Walks `count` numbers of `block` from `from`, one send each a second apart; the refusals.
async fn walk(world: &World, block: &str, from: u32, count: u32, trusted: bool) -> Vec<SendError> {
    let mut rng = StdRng::seed_from_u64(u64::from(from));
    let mut refused = Vec::new();
    for n in from..from + count {
        let phone = PhoneE164::parse(&format!("{block}{:03}", n % 1000)).unwrap();
        if let Err(error) = world
            .send(&format!("walker-{n}"), &phone, ip(&mut rng), trusted)
            .await
        {
            refused.push(error);
        }
        world.clock.advance(1);
    }
    refused
}

#[tokio::test]
async fn monitor_mode_refuses_nothing_and_still_opens_the_breaker() {
    // GIVEN the guard in monitor mode
    let world = world(guard(FraudMode::Monitor));
    // WHEN a block is walked 60 times
    let refused = walk(&world, PUMPED_BLOCKS[0], 0, 60, false).await;
    // THEN every send went out, and the breaker is listed for the team to see
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(world.delivered_to(PUMPED_BLOCKS[0]), 60);
    let open = world.store.breakers().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].prefix, world.block_of(PUMPED_BLOCKS[0]).key());
    assert_eq!(open[0].hint, "+44 77…");
}

#[tokio::test]
async fn the_counting_reports_the_sends_monitor_mode_let_through() {
    use otp_core::fraud::{Block, Tick, TickKind};
    // GIVEN the counting in monitor mode and a block that broke its rule
    let store = Arc::new(MemoryStore::new());
    let counting = Counting::new(store.clone(), guard(FraudMode::Monitor));
    let block = Block {
        id: "walked".into(),
        hint: "+44 77…".into(),
    };
    let sent = |at| Tick {
        kind: TickKind::Sent,
        block: Some(block.clone()),
        country: Some(44),
        sent_at: at,
        event: None,
    };
    let ticks: Vec<Tick> = (0..20).map(|i| sent(START + i)).collect();
    let first = counting.observe(&ticks, START + 20).await.unwrap();
    assert_eq!(first.opened.len(), 1);
    // WHEN five more sends to it are counted
    let more: Vec<Tick> = (0..5).map(|i| sent(START + 21 + i)).collect();
    let counted = counting.observe(&more, START + 30).await.unwrap();
    // THEN they are the sends the guard would have refused
    assert_eq!(counted.would_block, 5);
    assert_eq!(counted.opened, []);
}

#[tokio::test]
async fn the_safe_list_and_trusted_users_pass_an_open_breaker() {
    // GIVEN a walked block whose breaker is open, and a partner's number in it safe-listed
    let safe = format!("{}777", PUMPED_BLOCKS[1]);
    let world = world(FraudSettings {
        safe_list: SafeList::parse(&safe).unwrap(),
        ..guard(FraudMode::Block)
    });
    let refused = walk(&world, PUMPED_BLOCKS[1], 0, 30, false).await;
    assert!(!refused.is_empty(), "the breaker opened");
    let mut rng = StdRng::seed_from_u64(1);
    // WHEN the safe-listed number, a trusted user and an ordinary user ask for codes in it
    let safe_phone = PhoneE164::parse(&safe).unwrap();
    let safe_sent = world
        .send("partner", &safe_phone, ip(&mut rng), false)
        .await;
    let phone = PhoneE164::parse(&format!("{}500", PUMPED_BLOCKS[1])).unwrap();
    let trusted = world.send("known-user", &phone, ip(&mut rng), true).await;
    let other = PhoneE164::parse(&format!("{}501", PUMPED_BLOCKS[1])).unwrap();
    let ordinary = world.send("stranger", &other, ip(&mut rng), false).await;
    // THEN the first two get theirs and the ordinary one is refused
    assert!(safe_sent.is_ok(), "{safe_sent:?}");
    assert!(trusted.is_ok(), "{trusted:?}");
    assert!(
        matches!(ordinary, Err(SendError::FraudSuspected)),
        "{ordinary:?}"
    );
}

#[tokio::test]
async fn a_breaker_holds_while_attempts_continue_then_expires_and_opens_again() {
    // GIVEN a one-hour hold and a block walked until its breaker opens
    let world = world(FraudSettings {
        hold_secs: 3600,
        ..guard(FraudMode::Block)
    });
    let block = PUMPED_BLOCKS[2];
    let refused = walk(&world, block, 0, 25, false).await;
    let delivered = world.delivered_to(block);
    assert_eq!(
        (delivered, refused.len()),
        (20, 5),
        "the 20th send opens it"
    );
    // WHEN the attacker keeps trying 50 minutes later (which starts the hold again) and
    // again 20 minutes after that, past the first hour
    world.clock.advance(50 * 60);
    assert_eq!(walk(&world, block, 100, 1, false).await.len(), 1);
    world.clock.advance(20 * 60);
    // THEN it still holds
    assert_eq!(walk(&world, block, 200, 1, false).await.len(), 1);
    // WHEN the attempts stop for a full hold
    world.clock.advance(3601);
    // THEN sends go out again, until the walk opens it once more
    let refused = walk(&world, block, 300, 25, false).await;
    assert_eq!(refused.len(), 5, "{refused:?}");
    assert_eq!(world.delivered_to(block), delivered + 20);
}

#[tokio::test]
async fn a_closed_breaker_lets_sends_through_and_counts_afresh() {
    // GIVEN an open breaker
    let world = world(guard(FraudMode::Block));
    let block = PUMPED_BLOCKS[0];
    walk(&world, block, 0, 25, false).await;
    // WHEN an operator closes it
    assert!(world.store.close(&world.block_of(block)).await.unwrap());
    // THEN the next 19 sends go out, and the 20th since the close opens it again
    let refused = walk(&world, block, 100, 21, false).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        !world.store.close(&Prefix::Country(1)).await.unwrap(),
        "nothing to close"
    );
}

#[tokio::test]
async fn a_send_refused_by_a_cap_is_not_a_fraud_refusal() {
    // Email is never checked; the limits still apply to phones with the guard on.
    let world = world(guard(FraudMode::Block));
    let mut rng = StdRng::seed_from_u64(3);
    let phone = mobile(&mut rng, "+4479", 8);
    let mut outcomes = Vec::new();
    for i in 0..6 {
        world.clock.advance(1);
        outcomes.push(
            world
                .send(&format!("same-number-{i}"), &phone, ip(&mut rng), false)
                .await,
        );
    }
    assert!(
        matches!(
            outcomes.last(),
            Some(Err(SendError::Limited {
                limit: LimitName::Destination10Minutes,
                ..
            }))
        ),
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn on_dynamodb_a_phone_send_checks_the_breakers_inside_its_one_request() {
    use otp_core::fraud::{OpenBreaker, Reason};
    // GIVEN the DynamoDB store (moto) counting its requests, the guard blocking, and the
    // counting left to the stream (as in Lambda)
    let hasher = crate::store_conformance::random_hasher();
    let (store, requests) = crate::moto_peer::counted_store(hasher.clone()).await;
    let store = Arc::new(store);
    let fraud = FraudGuard::new(guard(FraudMode::Block), Some(store.clone()), None);
    let (engine, sms, _clock) = engine(store.clone(), hasher.clone(), fraud);
    let send = |user: &'static str, phone: &'static str| {
        let engine = &engine;
        async move {
            engine
                .send(SendRequest::new(
                    key(user),
                    Destination::Sms(PhoneE164::parse(phone).unwrap()),
                ))
                .await
        }
    };
    // WHEN a number is sent a code with no breaker open
    requests.take();
    assert!(send("alice", "+447712345001").await.is_ok());
    // THEN that is one request, its breakers checked inside it
    assert_eq!(requests.take(), 1);

    // WHEN the block's breaker is open
    let block = Prefix::Block(hasher.block_pseudonym("+447712345"));
    store
        .hold(&OpenBreaker {
            prefix: block.key(),
            hint: "+44 77…".into(),
            opened_at: START,
            until: START + 3600,
            sent: 20,
            verified: 0,
            reason: Reason::Velocity,
        })
        .await
        .unwrap();
    requests.take();
    let refused = send("bob", "+447712345002").await;
    // THEN the send is refused with nothing sent; the first refusal also pushes out the hold
    // (a batch put and the listing's update), a second one within ten minutes does not
    assert!(
        matches!(refused, Err(SendError::FraudSuspected)),
        "{refused:?}"
    );
    assert_eq!(requests.take(), 3);
    requests.take();
    assert!(matches!(
        send("carol", "+447712345003").await,
        Err(SendError::FraudSuspected)
    ));
    assert_eq!(requests.take(), 1);
    assert_eq!(sms.count(), 1, "only alice's code went out");
    let listed = store.breakers().await.unwrap();
    assert!(
        listed[0].until > START + 3600,
        "the hold was pushed out: {listed:?}"
    );
    // AND a number of another block of the same country is sent its code, in one request
    requests.take();
    assert!(send("dave", "+447911123004").await.is_ok());
    assert_eq!(requests.take(), 1);
    // AND closing the breaker lets the block through again
    assert!(store.close(&block).await.unwrap());
    assert!(send("erin", "+447712345005").await.is_ok());
    assert_eq!(store.breakers().await.unwrap(), []);
}

#[tokio::test]
async fn on_dynamodb_a_redelivered_batch_is_counted_once() {
    use otp_core::fraud::{Block, Tick, TickKind};
    // GIVEN the counting on DynamoDB (moto) and a batch of stream records: 20 sends to a block
    let hasher = crate::store_conformance::random_hasher();
    let (store, _) = crate::moto_peer::counted_store(hasher).await;
    let store = Arc::new(store);
    let counting = Counting::new(store.clone(), guard(FraudMode::Block));
    let block = Block {
        id: "walked-block".into(),
        hint: "+33 61…".into(),
    };
    let ticks: Vec<Tick> = (0..20)
        .map(|i| Tick {
            kind: TickKind::Sent,
            block: Some(block.clone()),
            country: Some(33),
            sent_at: START + i,
            event: Some(format!("event-{i}")),
        })
        .collect();
    // WHEN its first half is counted, then the whole batch (a bisected retry), then the whole
    // batch again (a redelivery)
    let half = counting.observe(&ticks[..10], START + 20).await.unwrap();
    let whole = counting.observe(&ticks, START + 20).await.unwrap();
    let again = counting.observe(&ticks, START + 21).await.unwrap();
    // THEN every send counted once: the breaker opened on the 20th, and nothing more
    assert_eq!((half.opened.len(), half.repeated), (0, 0));
    assert_eq!((whole.opened.len(), whole.repeated), (1, 10));
    assert_eq!(whole.opened[0].sent, 20);
    assert_eq!((again.opened.len(), again.repeated), (0, 20));
    let (tally, _) = store
        .load_tallies(&[Prefix::Block("walked-block".into())])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(tally.buckets.values().map(|c| c.sent).sum::<i64>(), 20);
}

#[tokio::test]
async fn the_operator_command_lists_checks_and_closes_breakers() {
    use otp_core::fraud::{OpenBreaker, Reason};
    use otp_core::store::DynamoStore;
    // GIVEN a table (moto) where the guard holds a block's breaker, named with the deployment's
    // key, and the Philippines' breaker
    let key = "11".repeat(32);
    let hasher =
        CodeHasher::new(&otp_core::settings::key_ring("OTP_HASH_KEY", &key, None).unwrap());
    let client = crate::moto_peer::client().await;
    let table = crate::moto_peer::create_table(&client).await;
    let store = DynamoStore::new(client, table.clone(), hasher.clone());
    let now = otp_core::clock::Clock::now(&otp_core::clock::SystemClock);
    let block = Prefix::Block(hasher.block_pseudonym("+447712345"));
    for (prefix, hint) in [(block.clone(), "+44 77…"), (Prefix::Country(63), "+63")] {
        let breaker = OpenBreaker {
            prefix: prefix.key(),
            hint: hint.into(),
            opened_at: now - 60,
            until: now + 3600,
            sent: 20,
            verified: 0,
            reason: Reason::Velocity,
        };
        store.hold(&breaker).await.unwrap();
    }
    let command = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_otp-service"))
            .arg("fraud-guard")
            .args(args)
            .env("OTP_TABLE_NAME", &table)
            .env("OTP_HASH_KEY", &key)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        (
            output.status.success(),
            text + &String::from_utf8_lossy(&output.stderr),
        )
    };
    // WHEN an operator lists them
    let (ok, listed) = command(&["list"]);
    // THEN both show, open, with their ranges and counts, and no number
    assert!(ok, "{listed}");
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("OPEN")).count(),
        2,
        "{listed}"
    );
    assert!(
        listed.contains(&block.key()) && listed.contains("cc:63"),
        "{listed}"
    );
    assert!(
        listed.contains("+44 77…") && listed.contains("sent    20"),
        "{listed}"
    );
    // WHEN they check numbers
    let (_, refused) = command(&["check", "+447712345678"]);
    let (_, other) = command(&["check", "+447911123456"]);
    let (_, country) = command(&["check", "+639171234567"]);
    // THEN a number in the block and one of the Philippines are refused, another UK one is not
    assert!(
        refused.contains("REFUSED") && refused.contains(&block.key()),
        "{refused}"
    );
    assert!(other.contains("sends go out"), "{other}");
    assert!(
        country.contains("REFUSED") && country.contains("cc:63"),
        "{country}"
    );
    // WHEN they close the block by one of its numbers and the country by its prefix
    let (ok, closed) = command(&["close", "+447712345000"]);
    assert!(ok && closed.contains("closed"), "{closed}");
    let (ok, _) = command(&["close", "cc:63"]);
    assert!(ok);
    // THEN nothing is listed and sends to the block pass its check again
    let (_, listed) = command(&["list"]);
    assert_eq!(listed.trim(), "no breaker has opened lately");
    let (_, refused) = command(&["check", "+447712345678"]);
    assert!(refused.contains("sends go out"), "{refused}");
    // AND a bad argument is a clear error, with the usage
    let (ok, usage) = command(&["close"]);
    assert!(
        !ok && usage.contains("Usage: otp-service fraud-guard"),
        "{usage}"
    );
    let (ok, bad) = command(&["check", "12345"]);
    assert!(!ok && bad.contains("not a phone number"), "{bad}");
}

every_setup! {
    async fn trusted_on_send_code_passes_an_open_breaker_and_must_be_a_boolean(setup: Setup) {
        use crate::helpers::TestApp;
        use serde_json::json;
        // GIVEN the service with the guard on and SMS through the Twilio fake
        let twilio = wiremock::MockServer::start().await;
        crate::twilio_fake::mount_any(&twilio, crate::twilio_fake::Outcome::Created).await;
        let app = TestApp::builder()
            .settings(|s| s.delivery.sms = Some(crate::twilio_fake::sender_settings(&twilio.uri())))
            .spawn(setup)
            .await;
        let body = |n: u32, trusted: serde_json::Value| {
            json!({"user_id": format!("u{n}"), "method": "sms", "phone": format!("+33612345{n:03}"),
                   "trusted": trusted})
        };
        // WHEN a block is walked until its breaker opens
        for n in 0..20 {
            assert_eq!(app.post("/send-code", body(n, json!(null))).await.status, 200);
        }
        let refused = app.post("/send-code", body(20, json!(false))).await;
        // THEN the next send is 403 fraud_suspected with a sentence the user can act on
        assert_eq!((refused.status, refused.error()), (403, "fraud_suspected"), "{}", refused.json);
        assert!(refused.json["detail"].as_str().unwrap().contains("email"));
        // AND a trusted user of the backend is still sent a code
        let trusted = app.post("/send-code", body(21, json!(true))).await;
        assert_eq!(trusted.status, 200, "{}", trusted.json);
        // AND a `trusted` that is not a boolean is a 422 naming it, with nothing sent
        let bad = app.post("/send-code", body(22, json!("yes"))).await;
        assert_eq!(bad.status, 422, "{}", bad.json);
        assert_eq!(bad.json["detail"][0]["loc"], json!(["body", "trusted"]));
        assert_eq!(bad.json["detail"][0]["type"], "bool_type");
        assert_eq!(crate::twilio_fake::recipients(&twilio).await.len(), 21);
    }
}

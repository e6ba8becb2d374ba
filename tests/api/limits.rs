//! Send limits and SMS pumping, end to end: each limit as a caller meets it (status, `limit`,
//! `Retry-After`, nothing delivered), on the router, over TCP and over TCP on DynamoDB.

use std::net::{IpAddr, Ipv4Addr};

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{every_setup, Reply, Setup, TestApp, PHONE, START};

fn sms_to(user: &str, phone: &str) -> Value {
    json!({"user_id": user, "method": "sms", "phone": phone})
}

/// `127.0.x.y`: one loopback address per `n` (below 64 000), so TCP tests can rotate source
/// addresses.
pub fn loopback(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, (n / 250) as u8, (n % 250 + 1) as u8))
}

fn assert_limited(reply: &Reply, limit: &str, retry_after: u64) {
    assert_eq!(
        (reply.status, reply.error(), reply.json["limit"].as_str()),
        (429, "rate_limited", Some(limit)),
        "{}",
        reply.json
    );
    assert_eq!(reply.json["retry_after"], retry_after, "{}", reply.json);
    assert_eq!(
        reply.headers["retry-after"],
        retry_after.to_string().as_str()
    );
    let detail = reply.json["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("{retry_after} seconds")),
        "{detail}"
    );
}

every_setup! {
    /// The first measurement: 200 sends to one number with rotating user ids.
    async fn one_number_gets_5_codes_per_10_minutes_and_10_per_day(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        // WHEN 200 sends go to one number, each for another user
        let mut accepted = 0;
        let mut last = None;
        for n in 0..200 {
            let reply = app.post("/send-code", sms_to(&format!("u{n}"), PHONE)).await;
            if reply.status == 200 {
                accepted += 1;
            } else {
                last = Some(reply);
            }
        }
        // THEN 5 are delivered, and the refusal says until when the window ends
        assert_eq!((accepted, app.sms.count()), (5, 5));
        assert_limited(&last.unwrap(), "destination_per_10_minutes", 600 - START % 600);
        // AND after each window 5 more, until the day's 10
        app.clock.advance(600);
        for n in 0..5 {
            let reply = app.post("/send-code", sms_to(&format!("v{n}"), PHONE)).await;
            assert_eq!(reply.status, 200, "{}", reply.json);
        }
        app.clock.advance(600);
        let reply = app.post("/send-code", sms_to("w", PHONE)).await;
        let midnight = 86_400 - (START + 1200) % 86_400;
        assert_limited(&reply, "destination_per_day", midnight);
        assert_eq!(app.sms.count(), 10);
    }
}

every_setup! {
    /// The second measurement: one user, 50 purposes.
    async fn one_user_gets_10_codes_per_hour_across_purposes(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        let mut statuses = Vec::new();
        for n in 0..50 {
            // Each to its own number, so only the user limit can refuse.
            let body = json!({"user_id": "u", "method": "sms", "purpose": format!("p{n}"),
                              "phone": format!("+1415555{:04}", 1000 + n)});
            statuses.push(app.post("/send-code", body).await);
        }
        let accepted = statuses.iter().filter(|r| r.status == 200).count();
        assert_eq!((accepted, app.sms.count()), (10, 10));
        assert_limited(statuses.last().unwrap(), "user_per_hour", 3600 - START % 3600);
        // AND another user is not affected
        let reply = app.post("/send-code", sms_to("other", "+14155559999")).await;
        assert_eq!(reply.status, 200);
    }
}

every_setup! {
    /// The third measurement: premium-rate numbers get nothing, and no write happens.
    async fn premium_rate_and_other_costly_numbers_are_422_before_anything_is_written(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        for (phone, kind) in [
            ("+449098790000", "premium-rate"),
            ("+19005550123", "premium-rate"),
            ("+448712345678", "premium-rate"),
            ("+18005550199", "toll-free"),
            ("+15005550006", "personal"),
        ] {
            let reply = app.post("/send-code", sms_to("u", phone)).await;
            assert_eq!((reply.status, reply.error()), (422, "invalid_destination"), "{phone}");
            let detail = reply.json["detail"].as_str().unwrap();
            assert!(detail.contains(kind) && detail.contains("mobile number"), "{detail}");
            assert!(!detail.contains(&phone[2..]), "no number in the answer: {detail}");
        }
        assert_eq!(app.sms.count(), 0);
        // No cooldown was started by the refusals: the user's next, valid send goes out.
        assert_eq!(app.post("/send-code", sms_to("u", PHONE)).await.status, 200);
    }
}

every_setup! {
    async fn sms_outside_the_allowed_countries_is_422(setup: Setup) {
        let app = TestApp::builder()
            .settings(|s| s.limits.sms_countries = Some(vec!["US".to_owned(), "CA".to_owned()]))
            .spawn(setup)
            .await;
        let reply = app.post("/send-code", sms_to("u", "+447911123456")).await;
        assert_eq!((reply.status, reply.error()), (422, "invalid_destination"));
        assert!(reply.json["detail"].as_str().unwrap().contains("+44"));
        assert_eq!(app.post("/send-code", sms_to("u", PHONE)).await.status, 200);
        assert_eq!(app.sms.count(), 1);
    }
}

every_setup! {
    async fn the_daily_sms_budget_is_503_and_email_keeps_working(setup: Setup) {
        let app = TestApp::builder()
            .settings(|s| s.limits.sms_daily_budget = 3)
            .spawn(setup)
            .await;
        for n in 0..3 {
            let phone = format!("+1415555{:04}", 2000 + n);
            assert_eq!(app.post("/send-code", sms_to(&format!("u{n}"), &phone)).await.status, 200);
        }
        let reply = app.post("/send-code", sms_to("late", "+14155553000")).await;
        assert_eq!((reply.status, reply.error()), (503, "sms_budget_exhausted"), "{}", reply.json);
        let midnight = 86_400 - START % 86_400;
        assert_eq!(reply.headers["retry-after"], midnight.to_string().as_str());
        assert_eq!(app.sms.count(), 3);
        let email = json!({"user_id": "late", "method": "email", "email": "late@example.com"});
        assert_eq!(app.post("/send-code", email).await.status, 200);
        assert_eq!(app.post("/auth/request-otp", json!({"email": "pub@example.com"})).await.status, 200);
        // AND the next day the budget is new
        app.clock.advance(midnight);
        assert_eq!(app.post("/send-code", sms_to("late", "+14155553000")).await.status, 200);
    }
}

every_setup! {
    async fn each_sms_country_calling_code_has_a_daily_cap(setup: Setup) {
        let app = TestApp::builder()
            .settings(|s| s.limits.sms_country_per_day = 2)
            .spawn(setup)
            .await;
        for n in 0..2 {
            let phone = format!("+1415555{:04}", 4000 + n);
            assert_eq!(app.post("/send-code", sms_to(&format!("u{n}"), &phone)).await.status, 200);
        }
        let reply = app.post("/send-code", sms_to("u9", "+14155554009")).await;
        assert_limited(&reply, "sms_country_per_day", 86_400 - START % 86_400);
        // +44 is another calling code
        assert_eq!(app.post("/send-code", sms_to("uk", "+447911123456")).await.status, 200);
    }
}

every_setup! {
    /// The public route counts the address API Gateway (or the socket) saw.
    async fn the_public_route_allows_30_sends_per_client_address_per_hour(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        let attacker = loopback(7);
        let mut last = None;
        for n in 0..31 {
            let body = json!({"email": format!("victim{n}@example.com")});
            last = Some(app.post_from(attacker, "/auth/request-otp", body).await);
        }
        let last = last.unwrap();
        assert_limited(&last, "client_ip_per_hour", 3600 - START % 3600);
        assert_eq!(last.json["email"], "victim30@example.com");
        assert_eq!(app.email.count(), 30);
        // AND another client is not affected
        let other = app
            .post_from(loopback(9), "/auth/request-otp", json!({"email": "me@example.com"}))
            .await;
        assert_eq!(other.status, 200, "{}", other.json);
    }
}

every_setup! {
    /// A backend reports its end user's address in `client_ip`; IPv6 counts per /64.
    async fn the_backend_route_limits_the_reported_client_ip(setup: Setup) {
        let app = TestApp::builder()
            .settings(|s| s.limits.client_ip_per_hour = 3)
            .spawn(setup)
            .await;
        let send = |n: u32, ip: &str| {
            let body = json!({"user_id": format!("u{n}"), "method": "email",
                              "email": format!("u{n}@example.com"), "client_ip": ip});
            app.post("/send-code", body)
        };
        for (n, ip) in ["2001:db8:7:7::1", "2001:db8:7:7::2", "2001:db8:7:7:ffff::9"].iter().enumerate() {
            assert_eq!(send(n as u32, ip).await.status, 200);
        }
        assert_limited(&send(3, "2001:db8:7:7:1::1").await, "client_ip_per_hour", 3600 - START % 3600);
        assert_eq!(send(4, "2001:db8:7:8::1").await.status, 200, "another /64");
        assert_eq!(send(5, "203.0.113.7").await.status, 200);
        let bad = send(6, "not-an-ip").await;
        assert_eq!(bad.status, 422);
        assert_eq!(bad.bad_fields(), ["client_ip"]);
        // Without client_ip the backend's own address is not counted.
        for n in 10..15 {
            let body = json!({"user_id": format!("u{n}"), "method": "email", "email": format!("u{n}@example.com")});
            assert_eq!(app.post("/send-code", body).await.status, 200);
        }
    }
}

every_setup! {
    async fn a_hundred_concurrent_sends_to_one_number_deliver_exactly_the_cap(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        // moto runs one request at a time and spends ~40 ms parsing a send's transaction, so
        // 100 at once would queue past the SDK's 2 s attempt timeout there (and starve the
        // other tests sharing it); 20 still race for 5 places.
        let senders = if setup == Setup::TcpDynamo { 20 } else { 100 };
        let replies = join_all(
            (0..senders).map(|n| app.post("/send-code", sms_to(&format!("u{n}"), PHONE))),
        )
        .await;
        let accepted = replies.iter().filter(|r| r.status == 200).count();
        let limited = replies
            .iter()
            .filter(|r| r.status == 429 && r.error() == "rate_limited")
            .count();
        let other = replies.iter().find(|r| r.status != 200 && r.status != 429);
        assert_eq!(
            (accepted, limited, app.sms.count()),
            (5, senders as usize - 5, 5),
            "{:?}",
            other.map(|r| &r.json)
        );
    }
}

/// Thousands of sends as an SMS-pumping bot makes them: rotating user ids, purposes and client
/// addresses, across a thousand numbers of one mobile prefix, a few premium-rate numbers and a
/// country the deployment does not serve, through the real Twilio sender to the fake. Returns
/// once it has checked that Twilio was called no more often than every cap allows.
async fn pumping(setup: Setup, sends: u32, at_once: usize) {
    // GIVEN a deployment serving US, GB and FR, with 40 SMS per calling code and 60 in all a day,
    // and the fraud guard off: the caps alone must hold (with it on, the guard stops this walk
    // first; see `the_fraud_guard_stops_the_walk_before_the_caps`)
    let twilio = wiremock::MockServer::start().await;
    crate::twilio_fake::mount_any(&twilio, crate::twilio_fake::Outcome::Created).await;
    let app = TestApp::builder()
        .settings(|s| {
            s.delivery.sms = Some(crate::twilio_fake::sender_settings(&twilio.uri()));
            s.limits.sms_countries = Some(["US", "GB", "FR"].map(str::to_owned).to_vec());
            s.limits.sms_country_per_day = 40;
            s.limits.sms_daily_budget = 60;
            s.fraud.mode = otp_core::fraud::FraudMode::Off;
        })
        .spawn(setup)
        .await;
    let premium = ["+449098790000", "+19005550123", "+448712345678"];
    // WHEN the bot sends, `at_once` at a time
    let mut answers: std::collections::BTreeMap<(u16, String), u32> = Default::default();
    for batch in (0..sends).collect::<Vec<_>>().chunks(at_once) {
        let replies = join_all(batch.iter().map(|&n| {
            let phone = match n % 10 {
                0 => premium[(n / 10) as usize % premium.len()].to_owned(),
                1 => format!("+99890{:07}", 1_000_000 + n),
                _ => format!("+3361234{:04}", n % 1000),
            };
            let body = json!({
                "user_id": format!("bot-{n}"),
                "purpose": format!("p{}", n % 20),
                "method": "sms",
                "phone": phone,
                "client_ip": format!("198.51.{}.{}", (n / 250) % 256, n % 250 + 1),
            });
            app.post("/send-code", body)
        }))
        .await;
        for reply in replies {
            let key = (reply.status, reply.error().to_owned());
            *answers.entry(key).or_default() += 1;
        }
    }
    // THEN Twilio got exactly the accepted sends, and never more than the caps allow
    let to = crate::twilio_fake::recipients(&twilio).await;
    let accepted = answers.get(&(200, String::new())).copied().unwrap_or(0);
    assert_eq!(to.len() as u32, accepted, "{answers:?}");
    assert!(to.len() <= 60, "the daily budget: {}", to.len());
    let french = to.iter().filter(|p| p.starts_with("+33")).count();
    assert_eq!(french, 40, "the +33 cap is what stops the bot: {answers:?}");
    assert!(
        to.iter().all(|p| !premium.contains(&p.as_str())),
        "no premium-rate number"
    );
    assert!(
        to.iter().all(|p| !p.starts_with("+998")),
        "no unserved country"
    );
    let mut per_number: std::collections::HashMap<&str, u32> = Default::default();
    for phone in &to {
        *per_number.entry(phone).or_default() += 1;
    }
    assert!(per_number.values().all(|&n| n <= 5), "per destination");
    assert_eq!(
        answers[&(422, "invalid_destination".to_owned())],
        sends / 10 * 2,
        "{answers:?}"
    );
    assert!(
        answers[&(429, "rate_limited".to_owned())] > 0,
        "{answers:?}"
    );
    // AND the budget the bot could not reach still serves real users elsewhere
    let user = app.post("/send-code", sms_to("alice", PHONE)).await;
    assert_eq!(user.status, 200, "{}", user.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pumping_simulation_never_passes_the_caps() {
    pumping(Setup::Tcp, 3000, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pumping_simulation_never_passes_the_caps_on_dynamodb() {
    // Fewer and gentler: moto copies a whole table for every transaction (rollback), so its
    // cost grows with the table, and the suite's other tests share this moto.
    pumping(Setup::TcpDynamo, 300, 5).await;
}

every_setup! {
    /// Legitimate traffic: many users, each sending once or twice and verifying, some through
    /// the backend and some through the public route, each from its own address.
    async fn legitimate_traffic_meets_no_limit(setup: Setup) {
        let app = TestApp::spawn(setup).await;
        let users = if setup == Setup::TcpDynamo { 40 } else { 150 };
        for n in 0..users {
            let phone = format!("+1415555{:04}", 5000 + n);
            let user = format!("user-{n}");
            let reply = app.post("/send-code", sms_to(&user, &phone)).await;
            assert_eq!(reply.status, 200, "{}", reply.json);
            if n % 2 == 0 {
                // "I did not get it": a resend after the cooldown
                app.clock.advance(30);
                let again = app.post("/send-code", sms_to(&user, &phone)).await;
                assert_eq!(again.status, 200, "{}", again.json);
            }
            let code = app.sms.last_code_to(&phone).unwrap();
            assert_eq!(app.verify(&user, &code).await.status, 200);
        }
        for n in 0..users / 3 {
            let email = format!("visitor{n}@example.com");
            let from = loopback(100 + n);
            let reply = app.post_from(from, "/auth/request-otp", json!({"email": email})).await;
            assert_eq!(reply.status, 200, "{}", reply.json);
            let code = app.email.last_code_to(&email).unwrap();
            let check = json!({"email": email, "otp_code": code});
            assert_eq!(app.post_from(from, "/auth/verify-otp", check).await.status, 200);
        }
    }
}

/// Every send path with limits on is still ONE DynamoDB request: accepted, refused by each
/// limit, by the cooldown, by the budget; and a number refused by kind or country is none.
#[tokio::test]
async fn every_send_with_limits_is_one_dynamodb_request() {
    use std::sync::Arc;

    use otp_core::domain::{Destination, Purpose, RecordKey, Space, UserId};
    use otp_core::engine::{EngineParts, SendError, SendRequest};
    use otp_core::limits::{ClientIp, SendLimits};
    use otp_core::sender::Senders;
    use otp_core::settings::Policy;
    use otp_core::testing::{ManualClock, RecordingSender};

    // GIVEN an engine on DynamoDB whose client counts requests, with small caps
    let hasher = crate::store_conformance::random_hasher();
    let (store, requests) = crate::moto_peer::counted_store(hasher.clone()).await;
    let sms = RecordingSender::new();
    let engine = otp_core::Engine::new(EngineParts {
        store: Arc::new(store),
        senders: Senders {
            sms: Some(Arc::new(sms.clone())),
            email: Some(Arc::new(sms.clone())),
            ..Default::default()
        },
        hasher,
        policy: Policy::default(),
        brand: None,
        clock: Arc::new(ManualClock::new(START)),
        callers: otp_core::callers::Callers::Open,
        limits: SendLimits {
            destination_per_10_minutes: 2,
            user_per_hour: 2,
            client_ip_per_hour: 2,
            sms_country_per_day: 4,
            sms_daily_budget: 5,
            ..SendLimits::default()
        },
        tokens: None,
        gate: Default::default(),
        fraud: Default::default(),
        autofill: Default::default(),
    });
    let send = |user: &str, phone: &str, ip: &str| SendRequest {
        client: ClientIp::parse(ip),
        ..SendRequest::new(
            RecordKey::new(
                Space::Backend,
                Purpose::default(),
                UserId::parse(user).unwrap(),
            ),
            Destination::Sms(otp_core::domain::PhoneE164::parse(phone).unwrap()),
        )
    };
    // The outcome of a send, as this test names it.
    let outcome = |result: Result<_, SendError>| match result {
        Ok(_) => "sent".to_owned(),
        Err(SendError::Limited { limit, .. }) => limit.as_str().to_owned(),
        Err(SendError::CoolingDown(_)) => "cooldown".to_owned(),
        Err(SendError::NumberRefused { .. }) => "number refused".to_owned(),
        Err(other) => panic!("unexpected {other:?}"),
    };
    // WHEN sends pass and meet each limit in turn, THEN each is one request, and a number
    // refused by its kind is none
    for (user, phone, ip, expected, requests_made) in [
        ("a", PHONE, "203.0.113.1", "sent", 1),
        ("b", PHONE, "203.0.113.2", "sent", 1),
        ("c", PHONE, "203.0.113.3", "destination_per_10_minutes", 1),
        ("a", "+14155550001", "203.0.113.1", "cooldown", 1),
        ("d", "+14155550002", "203.0.113.1", "sent", 1),
        ("e", "+14155550003", "203.0.113.1", "client_ip_per_hour", 1),
        ("f", "+14155550004", "203.0.113.9", "sent", 1),
        ("g", "+14155550005", "203.0.113.8", "sms_country_per_day", 1),
        ("h", "+447911123456", "203.0.113.7", "sent", 1),
        ("i", "+4915123456789", "203.0.113.6", "sms_daily_budget", 1),
        ("j", "+449098790000", "203.0.113.5", "number refused", 0),
    ] {
        let result = engine.send(send(user, phone, ip)).await;
        assert_eq!(
            (outcome(result), requests.take()),
            (expected.to_owned(), requests_made),
            "{user} to {phone} from {ip}"
        );
    }
    assert_eq!(sms.count(), 5, "exactly the budget went out");
}

/// A send cancelled by a transaction conflict (another send held a counter at that moment) is
/// tried again and charged once; after four conflicts in a row it is `store_unavailable` with
/// nothing written.
#[tokio::test]
async fn a_send_cancelled_by_a_transaction_conflict_is_tried_again_and_charged_once() {
    use std::sync::Arc;

    use otp_core::domain::{Destination, PhoneE164, Purpose, RecordKey, Space, UserId};
    use otp_core::engine::{EngineParts, SendError, SendRequest, VerifyOutcome, VerifyRequest};
    use otp_core::limits::{LimitName, SendLimits};
    use otp_core::sender::Senders;
    use otp_core::settings::Policy;
    use otp_core::testing::{ManualClock, RecordingSender};

    let hasher = crate::store_conformance::random_hasher();
    let (store, conflicts, requests) = crate::moto_peer::conflicting_store(hasher.clone()).await;
    let sms = RecordingSender::new();
    let engine = otp_core::Engine::new(EngineParts {
        store: Arc::new(store),
        senders: Senders {
            sms: Some(Arc::new(sms.clone())),
            email: None,
            ..Default::default()
        },
        hasher,
        policy: Policy::default(),
        brand: None,
        clock: Arc::new(ManualClock::new(START)),
        callers: otp_core::callers::Callers::Open,
        limits: SendLimits {
            destination_per_10_minutes: 2,
            ..SendLimits::default()
        },
        tokens: None,
        gate: Default::default(),
        fraud: Default::default(),
        autofill: Default::default(),
    });
    let key = |user: &str| {
        RecordKey::new(
            Space::Backend,
            Purpose::default(),
            UserId::parse(user).unwrap(),
        )
    };
    let send = |user: &str| {
        SendRequest::new(
            key(user),
            Destination::Sms(PhoneE164::parse(PHONE).unwrap()),
        )
    };
    // GIVEN two conflicts in a row, WHEN a send is made, THEN the third attempt applies it
    conflicts.conflict_next(2);
    engine
        .send(send("a"))
        .await
        .expect("sent after two conflicts");
    assert_eq!(requests.take(), 3);
    // AND it was charged once: one more send fits under the cap of 2, the next does not
    engine.send(send("b")).await.unwrap();
    let refused = engine.send(send("c")).await;
    assert!(
        matches!(
            refused,
            Err(SendError::Limited {
                limit: LimitName::Destination10Minutes,
                ..
            })
        ),
        "{refused:?}"
    );
    // WHEN every attempt conflicts, THEN the send fails as the store being unavailable, after
    // four attempts, and nothing was written
    requests.take();
    conflicts.conflict_next(10);
    let failed = engine.send(send("d")).await;
    assert!(matches!(failed, Err(SendError::Store(_))), "{failed:?}");
    assert_eq!(requests.take(), 4);
    conflicts.conflict_next(0);
    let guess = VerifyRequest {
        key: key("d"),
        passcode: otp_core::domain::Passcode::parse("123456", 6).unwrap(),
        destination: None,
        client: None,
        caller: None,
    };
    assert_eq!(
        engine.verify(&guess).await.unwrap(),
        VerifyOutcome::NotFound
    );
    assert_eq!(sms.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fraud_guard_stops_the_walk_before_the_caps() {
    // GIVEN the server on DynamoDB (moto) with the fraud guard on, as by default
    let twilio = wiremock::MockServer::start().await;
    crate::twilio_fake::mount_any(&twilio, crate::twilio_fake::Outcome::Created).await;
    let app = TestApp::builder()
        .settings(|s| s.delivery.sms = Some(crate::twilio_fake::sender_settings(&twilio.uri())))
        .spawn(Setup::TcpDynamo)
        .await;
    // WHEN a bot walks one French 1,000-number block, a new user and client each time
    let mut answers: std::collections::BTreeMap<(u16, String), u32> = Default::default();
    for n in 0..40 {
        let body = json!({
            "user_id": format!("bot-{n}"),
            "method": "sms",
            "phone": format!("+33612345{n:03}"),
            "client_ip": format!("198.51.100.{}", n + 1),
        });
        let reply = app.post("/send-code", body).await;
        *answers
            .entry((reply.status, reply.error().to_owned()))
            .or_default() += 1;
    }
    // THEN the 20th send opens the block's breaker and the rest are 403 fraud_suspected, with
    // nothing sent to Twilio and no cap touched
    let sent = crate::twilio_fake::recipients(&twilio).await.len();
    assert_eq!(sent, 20, "{answers:?}");
    assert_eq!(
        answers[&(403, "fraud_suspected".to_owned())],
        20,
        "{answers:?}"
    );
    let refused = app
        .post(
            "/send-code",
            json!({"user_id": "bot-x", "method": "sms", "phone": "+33612345999"}),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.json["detail"].as_str().unwrap().contains("email"),
        "{}",
        refused.json
    );
    // AND a number in another block still gets its code
    let user = app.post("/send-code", sms_to("alice", PHONE)).await;
    assert_eq!(user.status, 200, "{}", user.json);
}

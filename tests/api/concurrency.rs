//! Races: the attempt is reserved atomically before the comparison, and success consumes the
//! code atomically, so bursts can neither win twice nor guess more than the cap.

use futures_util::future::join_all;

use crate::helpers::{every_setup, wrong_code, TestApp};

const BURST: usize = 50;

every_setup! {
    async fn fifty_concurrent_right_codes_succeed_exactly_once(setup: Setup) {
        // GIVEN a delivered code
        let app = TestApp::spawn(setup).await;
        app.send_sms("u").await;
        let code = app.last_sms_code();
        // WHEN 50 requests verify it at the same time
        let replies = join_all((0..BURST).map(|_| app.verify("u", &code))).await;
        // THEN exactly one succeeds and the others find no pending code
        let ok = replies.iter().filter(|r| r.status == 200).count();
        let gone = replies.iter().filter(|r| r.status == 404).count();
        assert_eq!((ok, gone), (1, BURST - 1), "{setup:?}");
    }
}

every_setup! {
    async fn fifty_concurrent_wrong_codes_count_exactly_max_attempts(setup: Setup) {
        // GIVEN a delivered code and max 3 attempts
        let app = TestApp::spawn(setup).await;
        app.send_sms("u").await;
        let code = app.last_sms_code();
        let wrong = wrong_code(&code);
        // WHEN 50 wrong guesses arrive at once
        let replies = join_all((0..BURST).map(|_| app.verify("u", &wrong))).await;
        // THEN exactly 3 were evaluated, each with a distinct count, and the rest refused
        let mut remaining: Vec<u64> = replies
            .iter()
            .filter(|r| r.status == 400)
            .map(|r| r.json["attempts_remaining"].as_u64().unwrap())
            .collect();
        remaining.sort_unstable();
        assert_eq!(remaining, [0, 1, 2], "{setup:?}");
        let refused = replies.iter().filter(|r| r.status == 429).count();
        assert_eq!(refused, BURST - 3);
        // AND the right code is refused afterwards
        assert_eq!(app.verify("u", &code).await.status, 429);
    }
}

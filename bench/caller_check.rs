//! `make bench`: what the API key check costs per request: `Callers::admit` for a valid key
//! (the last one configured, so every key is compared), with 1, 3 and 20 keys configured.

use std::hint::black_box;
use std::time::Instant;

use otp_core::callers::{ApiKeys, Callers, Credentials, Scope};

fn main() {
    const CHECKS: u32 = 200_000;
    for count in [1usize, 3, 20] {
        let keys: Vec<String> = (0..count)
            .map(|i| format!("key{i}=otpk_bench-key-number-{i:04}-0123456789abcdefghij"))
            .collect();
        let callers =
            Callers::ApiKeys(ApiKeys::parse(&keys.join(",").into()).expect("valid bench keys"));
        let last = keys[count - 1].split_once('=').unwrap().1;
        let header = format!("Bearer {last}");
        let credentials = Credentials {
            authorization: Some(&header),
            iam_identity: None,
        };
        let started = Instant::now();
        for _ in 0..CHECKS {
            black_box(callers.admit(black_box(&credentials), Scope::Verify)).unwrap();
        }
        let per_check = started.elapsed().as_nanos() as f64 / f64::from(CHECKS);
        println!("API key check, {count:2} key(s): {per_check:7.0} ns per request");
    }
}

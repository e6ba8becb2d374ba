//! The fraud guard's settings (see [`crate::fraud`]).

use super::{ConfigError, Env, Setting};
use crate::fraud::{FraudMode, FraudSettings, SafeList};

pub const FRAUD_GUARD: &str = "OTP_FRAUD_GUARD";
pub const FRAUD_GUARD_SAFE_LIST: &str = "OTP_FRAUD_GUARD_SAFE_LIST";
pub const FRAUD_GUARD_HOLD_SECONDS: Setting =
    Setting::new("OTP_FRAUD_GUARD_HOLD_SECONDS", 43_200, 60..=2_592_000);

pub fn fraud(env: &Env<'_>) -> Result<FraudSettings, ConfigError> {
    let mode = match env.get(FRAUD_GUARD) {
        None => FraudMode::default(),
        Some(raw) => FraudMode::parse(&raw).ok_or_else(|| ConfigError::Invalid {
            var: FRAUD_GUARD,
            reason: format!("must be block, monitor or off, got {raw:?}"),
        })?,
    };
    let safe_list = match env.get(FRAUD_GUARD_SAFE_LIST) {
        None => SafeList::default(),
        Some(raw) => SafeList::parse(&raw).map_err(|entry| ConfigError::Invalid {
            var: FRAUD_GUARD_SAFE_LIST,
            reason: format!(
                "must be E.164 numbers or prefixes ('+' and digits) separated by commas; \
                 {entry:?} is not one"
            ),
        })?,
    };
    Ok(FraudSettings {
        mode,
        safe_list,
        hold_secs: FRAUD_GUARD_HOLD_SECONDS.read(env)?,
    })
}

//! The send limits' settings (see [`crate::limits`] for what they do): the variables, their
//! defaults and ranges, and the SMS allow-lists.

use super::{ConfigError, Env, Setting};
use crate::domain::NumberKind;

pub const DESTINATION_PER_10_MINUTES: Setting =
    Setting::new("OTP_DESTINATION_SENDS_PER_10_MINUTES", 5, 0..=1000);
pub const DESTINATION_PER_DAY: Setting =
    Setting::new("OTP_DESTINATION_SENDS_PER_DAY", 10, 0..=10_000);
pub const DESTINATION_CEILING_PER_DAY: Setting =
    Setting::new("OTP_DESTINATION_CEILING_PER_DAY", 30, 0..=100_000);
pub const USER_PER_HOUR: Setting = Setting::new("OTP_USER_SENDS_PER_HOUR", 10, 0..=10_000);
pub const CLIENT_IP_PER_HOUR: Setting =
    Setting::new("OTP_CLIENT_IP_SENDS_PER_HOUR", 30, 0..=1_000_000);
pub const SMS_COUNTRY_PER_DAY: Setting =
    Setting::new("OTP_SMS_COUNTRY_SENDS_PER_DAY", 1000, 0..=100_000_000);
pub const SMS_DAILY_BUDGET: Setting = Setting::new("OTP_SMS_DAILY_BUDGET", 10_000, 0..=100_000_000);
pub const SMS_ALLOWED_COUNTRIES: &str = "OTP_SMS_ALLOWED_COUNTRIES";
pub const SMS_NUMBER_TYPES: &str = "OTP_SMS_NUMBER_TYPES";

/// The configured limits (`0` turns a counter off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendLimits {
    pub destination_per_10_minutes: u32,
    pub destination_per_day: u32,
    /// The public route's sends to one destination from all client networks together.
    pub destination_ceiling_per_day: u32,
    pub user_per_hour: u32,
    pub client_ip_per_hour: u32,
    pub sms_country_per_day: u32,
    pub sms_daily_budget: u32,
    /// ISO country codes that may get SMS; `None` means every country.
    pub sms_countries: Option<Vec<String>>,
    /// Number kinds that may get SMS.
    pub sms_number_kinds: Vec<NumberKind>,
}

impl Default for SendLimits {
    fn default() -> Self {
        Self {
            destination_per_10_minutes: DESTINATION_PER_10_MINUTES.default as u32,
            destination_per_day: DESTINATION_PER_DAY.default as u32,
            destination_ceiling_per_day: DESTINATION_CEILING_PER_DAY.default as u32,
            user_per_hour: USER_PER_HOUR.default as u32,
            client_ip_per_hour: CLIENT_IP_PER_HOUR.default as u32,
            sms_country_per_day: SMS_COUNTRY_PER_DAY.default as u32,
            sms_daily_budget: SMS_DAILY_BUDGET.default as u32,
            sms_countries: None,
            sms_number_kinds: vec![NumberKind::Mobile, NumberKind::FixedLineOrMobile],
        }
    }
}

impl SendLimits {
    pub fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            destination_per_10_minutes: DESTINATION_PER_10_MINUTES.read(env)? as u32,
            destination_per_day: DESTINATION_PER_DAY.read(env)? as u32,
            destination_ceiling_per_day: DESTINATION_CEILING_PER_DAY.read(env)? as u32,
            user_per_hour: USER_PER_HOUR.read(env)? as u32,
            client_ip_per_hour: CLIENT_IP_PER_HOUR.read(env)? as u32,
            sms_country_per_day: SMS_COUNTRY_PER_DAY.read(env)? as u32,
            sms_daily_budget: SMS_DAILY_BUDGET.read(env)? as u32,
            sms_countries: countries(env.get(SMS_ALLOWED_COUNTRIES))?,
            sms_number_kinds: number_kinds(env.get(SMS_NUMBER_TYPES))?,
        })
    }

    /// Settings that leave the SMS channel open to pumping, for the start-up warnings.
    pub fn weaknesses(&self, sms_offered: bool) -> Vec<String> {
        let mut found = Vec::new();
        if sms_offered && self.sms_countries.is_none() {
            found.push(format!(
                "{SMS_ALLOWED_COUNTRIES} is not set: SMS goes to every country. Name the \
                 countries your users are in (e.g. US,CA,GB); SMS pumping targets the others"
            ));
        }
        if sms_offered && self.sms_daily_budget == 0 {
            found.push(format!(
                "{}=0: SMS has no daily budget, so pumping has no ceiling",
                SMS_DAILY_BUDGET.var
            ));
        }
        if self
            .sms_number_kinds
            .iter()
            .any(|k| matches!(k, NumberKind::PremiumRate | NumberKind::SharedCost))
        {
            found.push(format!(
                "{SMS_NUMBER_TYPES} lets premium-rate or shared-cost numbers get SMS: those \
                 ranges pay the owner for every message"
            ));
        }
        found
    }
}

/// `US,CA,GB`, or `*` for every country.
fn countries(raw: Option<String>) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw == "*" {
        return Ok(None);
    }
    raw.split(',')
        .map(|code| {
            let code = code.trim().to_ascii_uppercase();
            // A region libphonenumber's metadata has (any two letters parse as a `Region`).
            let known = code.len() == 2
                && code.parse::<rlibphonenumber::Region>().is_ok_and(|region| {
                    rlibphonenumber::PHONE_NUMBER_UTIL
                        .get_country_code_for_region(region)
                        .is_some()
                });
            known.then_some(code.clone()).ok_or(code)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
        .map_err(|code| ConfigError::Invalid {
            var: SMS_ALLOWED_COUNTRIES,
            reason: format!(
                "must be ISO 3166 country codes separated by commas (e.g. US,CA,GB), or * for \
                 all; {code:?} is not one"
            ),
        })
}

fn number_kinds(raw: Option<String>) -> Result<Vec<NumberKind>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(SendLimits::default().sms_number_kinds);
    };
    raw.split(',')
        .map(|kind| NumberKind::parse(kind.trim()).ok_or(kind))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|kind| ConfigError::Invalid {
            var: SMS_NUMBER_TYPES,
            reason: format!(
                "must be a comma-separated list of {}; {kind:?} is not one",
                NumberKind::ALL.map(NumberKind::as_str).join(", ")
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_parsed_and_checked() {
        assert_eq!(
            countries(Some("us, gb".to_owned())).unwrap(),
            Some(vec!["US".to_owned(), "GB".to_owned()])
        );
        assert_eq!(countries(Some("*".to_owned())).unwrap(), None);
        assert!(countries(Some("US,XX".to_owned())).is_err());
        assert!(countries(Some("USA".to_owned())).is_err());
        assert_eq!(
            number_kinds(Some("mobile,voip".to_owned())).unwrap(),
            [NumberKind::Mobile, NumberKind::Voip]
        );
        assert!(number_kinds(Some("mobile,fax".to_owned())).is_err());
    }
}

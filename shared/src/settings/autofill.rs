//! The SMS autofill lines (`OTP_WEBOTP_DOMAIN`, `OTP_ANDROID_APP_HASH`), checked so that the
//! longest SMS this configuration can send still goes in one segment.

use super::{ConfigError, Env, Policy, BRAND_NAME};
use crate::locale::Locale;
use crate::sms::Length;
use crate::templates::{sms_text, SmsAutofill};

pub const WEBOTP_DOMAIN: &str = "OTP_WEBOTP_DOMAIN";
pub const ANDROID_APP_HASH: &str = "OTP_ANDROID_APP_HASH";

pub(super) fn autofill(env: &Env<'_>) -> Result<SmsAutofill, ConfigError> {
    let webotp_domain = env.get(WEBOTP_DOMAIN).map(|d| d.to_ascii_lowercase());
    if let Some(domain) = &webotp_domain {
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if domain.len() > 253 || !domain.contains('.') || !domain.split('.').all(label_ok) {
            return Err(ConfigError::Invalid {
                var: WEBOTP_DOMAIN,
                reason: format!(
                    "must be the host name of the site that reads the code (e.g. example.com: \
                     no scheme, port or path; IDNs in punycode), got {domain:?}"
                ),
            });
        }
    }
    let android_app_hash = env.get(ANDROID_APP_HASH);
    if let Some(hash) = &android_app_hash {
        let base64 = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        if hash.len() != 11 || !hash.bytes().all(base64) {
            return Err(ConfigError::Invalid {
                var: ANDROID_APP_HASH,
                reason: "must be the 11-character app hash of the SMS Retriever API (base64, \
                         e.g. FA+9qCX9VSu)"
                    .to_owned(),
            });
        }
    }
    Ok(SmsAutofill {
        webotp_domain,
        android_app_hash,
    })
}

/// Refuses a configuration whose longest SMS in any language (this brand, code length and
/// lifetime, the autofill lines) would take more than one segment: each segment is billed, and
/// phones only fill in a code from a message they received whole.
pub(super) fn check_one_segment(
    brand: Option<&str>,
    policy: &Policy,
    autofill: &SmsAutofill,
) -> Result<(), ConfigError> {
    let code = "0".repeat(policy.code_length);
    let longest = Locale::all()
        .map(|locale| {
            let text = sms_text(locale, brand, &code, policy.ttl_secs, autofill);
            (locale, Length::of(&text))
        })
        .find(|(_, length)| !length.fits_one_segment());
    let Some((locale, length)) = longest else {
        return Ok(());
    };
    let var = match (&autofill.webotp_domain, &autofill.android_app_hash) {
        (Some(_), _) => WEBOTP_DOMAIN,
        (None, Some(_)) => ANDROID_APP_HASH,
        (None, None) => BRAND_NAME,
    };
    Err(ConfigError::Invalid {
        var,
        reason: format!(
            "makes the SMS in {} {} characters long ({:?}), over the {} of one segment; shorten \
             OTP_BRAND_NAME or the domain",
            locale.tag(),
            length.units,
            length.encoding,
            length.segment()
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<SmsAutofill, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        autofill(&Env(&|k| map.get(k).cloned()))
    }

    #[test]
    fn the_domain_is_a_host_name_and_the_hash_eleven_base64_characters() {
        let a = parse(&[
            ("OTP_WEBOTP_DOMAIN", "Login.Example.com"),
            ("OTP_ANDROID_APP_HASH", "FA+9qCX9VSu"),
        ])
        .unwrap();
        assert_eq!(a.webotp_domain.as_deref(), Some("login.example.com"));
        for bad in [
            "https://example.com",
            "example.com:443",
            "example",
            "-a.com",
            "a..com",
        ] {
            assert!(parse(&[("OTP_WEBOTP_DOMAIN", bad)]).is_err(), "{bad}");
        }
        for bad in ["FA+9qCX9VS", "FA+9qCX9VSu1", "FA+9qCX9VS!"] {
            assert!(parse(&[("OTP_ANDROID_APP_HASH", bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_configuration_whose_sms_needs_two_segments_is_refused() {
        let policy = Policy {
            code_length: 10,
            ..Policy::default()
        };
        let autofill = SmsAutofill {
            webotp_domain: Some("example.com".to_owned()),
            android_app_hash: Some("FA+9qCX9VSu".to_owned()),
        };
        // GIVEN a short brand, the autofill lines fit in every language, UCS-2 ones included.
        assert!(check_one_segment(Some("Acme"), &policy, &autofill).is_ok());
        // A long one leaves no room in a UCS-2 language (70 units): the error names it.
        let brand = "B".repeat(super::super::BRAND_MAX_CHARS);
        let error = check_one_segment(Some(&brand), &policy, &autofill)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("OTP_WEBOTP_DOMAIN makes the SMS in ar "),
            "{error}"
        );
        assert!(error.contains("Ucs2"), "{error}");
        let long = SmsAutofill {
            webotp_domain: Some(format!("{}.example.com", "a".repeat(40))),
            ..autofill
        };
        assert!(check_one_segment(Some("Acme"), &policy, &long).is_err());
        // Without autofill only a brand no short form can carry fails: 40 emoji are 80 units.
        assert!(check_one_segment(Some(&brand), &policy, &SmsAutofill::default()).is_ok());
        let error = check_one_segment(Some(&"🙂".repeat(40)), &policy, &SmsAutofill::default())
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("OTP_BRAND_NAME makes the SMS"), "{error}");
        assert!(error.contains("Ucs2"), "{error}");
    }
}

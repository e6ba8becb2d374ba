//! The words of every message. Issue-level HTML email templates build on these texts.

/// "5 minutes", "1 minute", "90 seconds": never rounds the lifetime up.
pub fn lifetime(ttl_secs: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if ttl_secs.is_multiple_of(60) {
        plural(ttl_secs / 60, "minute")
    } else {
        plural(ttl_secs, "second")
    }
}

fn branded(brand: Option<&str>, text: String) -> String {
    match brand {
        Some(brand) => format!("{brand}: {text}"),
        None => text,
    }
}

pub fn sms_text(brand: Option<&str>, code: &str, ttl_secs: u64) -> String {
    branded(
        brand,
        format!(
            "Your verification code is {code}. It expires in {}.",
            lifetime(ttl_secs)
        ),
    )
}

pub fn email_subject(brand: Option<&str>) -> String {
    branded(brand, "Your verification code".to_owned())
}

pub fn email_text(brand: Option<&str>, code: &str, ttl_secs: u64) -> String {
    format!(
        "{}\nIf you did not ask for this code, you can ignore this email.",
        sms_text(brand, code, ttl_secs)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_text_matches_the_documented_line() {
        assert_eq!(
            sms_text(None, "123456", 300),
            "Your verification code is 123456. It expires in 5 minutes."
        );
        assert_eq!(
            sms_text(Some("Acme"), "123456", 60),
            "Acme: Your verification code is 123456. It expires in 1 minute."
        );
        assert_eq!(
            sms_text(None, "1234", 90),
            "Your verification code is 1234. It expires in 90 seconds."
        );
    }

    #[test]
    fn email_mentions_ignoring_unrequested_codes() {
        assert_eq!(email_subject(Some("Acme")), "Acme: Your verification code");
        assert!(email_text(None, "123456", 300).contains("ignore this email"));
    }
}

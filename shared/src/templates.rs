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

/// The lines that let a phone fill the code in by itself, after the text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmsAutofill {
    /// The site whose pages may read the code (WebOTP / the WICG "origin-bound one-time codes"
    /// format, which Safari reads too): the last line becomes `@example.com #123456`.
    pub webotp_domain: Option<String>,
    /// An Android app's 11-character SMS Retriever hash, on a line of its own.
    pub android_app_hash: Option<String>,
}

pub fn sms_text(brand: Option<&str>, code: &str, ttl_secs: u64, autofill: &SmsAutofill) -> String {
    let mut text = branded(
        brand,
        format!(
            "Your verification code is {code}. It expires in {}.",
            lifetime(ttl_secs)
        ),
    );
    if autofill.android_app_hash.is_some() || autofill.webotp_domain.is_some() {
        text.push('\n');
    }
    if let Some(hash) = &autofill.android_app_hash {
        text.push('\n');
        text.push_str(hash);
    }
    // Last, and alone on its line: the format reads only the last line.
    if let Some(domain) = &autofill.webotp_domain {
        text.push_str(&format!("\n@{domain} #{code}"));
    }
    text
}

pub fn email_subject(brand: Option<&str>) -> String {
    branded(brand, "Your verification code".to_owned())
}

/// The plain-text part of the email: `templates/email.txt`.
pub fn email_text(brand: Option<&str>, code: &str, ttl_secs: u64) -> String {
    let prefix = brand.map(|b| format!("{b}: ")).unwrap_or_default();
    render(
        EMAIL_TEXT,
        &[
            ("brand_prefix", &prefix),
            ("code", code),
            ("lifetime", &lifetime(ttl_secs)),
        ],
        |s| s.to_owned(),
    )
}

/// The HTML part of the email: `templates/email.html`, every inserted value escaped.
pub fn email_html(brand: Option<&str>, code: &str, ttl_secs: u64) -> String {
    let heading = match brand {
        Some(brand) => format!("Your {brand} verification code"),
        None => "Your verification code".to_owned(),
    };
    render(
        EMAIL_HTML,
        &[
            ("subject", &email_subject(brand)),
            ("heading", &heading),
            ("code", code),
            ("lifetime", &lifetime(ttl_secs)),
        ],
        escape_html,
    )
}

#[cfg(test)]
mod sms_tests {
    use super::*;
    use crate::sms::{Encoding, Length};

    #[test]
    fn the_webotp_line_is_the_last_line_and_the_hash_has_its_own() {
        let autofill = SmsAutofill {
            webotp_domain: Some("example.com".to_owned()),
            android_app_hash: Some("FA+9qCX9VSu".to_owned()),
        };
        let text = sms_text(Some("Acme"), "123456", 300, &autofill);
        assert_eq!(
            text,
            "Acme: Your verification code is 123456. It expires in 5 minutes.\n\nFA+9qCX9VSu\n\
             @example.com #123456"
        );
        let last = text.lines().last().unwrap();
        assert_eq!(last, "@example.com #123456");
        let plain = sms_text(None, "123456", 300, &SmsAutofill::default());
        assert!(!plain.contains('\n') && !plain.contains('@'));
    }

    #[test]
    fn the_longest_sms_fits_one_gsm_segment() {
        // The longest brand allowed, a 10-digit code and the longest lifetime wording.
        let brand = "B".repeat(crate::settings::BRAND_MAX_CHARS);
        let text = sms_text(Some(&brand), "1234567890", 3599, &SmsAutofill::default());
        let length = Length::of(&text);
        assert_eq!(length.encoding, Encoding::Gsm7);
        assert!(
            length.fits_one_segment(),
            "{} septets: {text}",
            length.units
        );
    }
}

const EMAIL_TEXT: &str = include_str!("../templates/email.txt");
const EMAIL_HTML: &str = include_str!("../templates/email.html");

/// Replaces each `{{name}}` in one pass, so an inserted value is never itself expanded.
/// Templates are ours: an unknown name is a bug, caught by the tests below.
fn render(template: &str, values: &[(&str, &str)], escape: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").expect("unclosed placeholder in template");
        let name = &after[..end];
        let value = values
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("unknown placeholder {{{{{name}}}}}"))
            .1;
        out.push_str(&escape(value));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_text_matches_the_documented_line() {
        assert_eq!(
            sms_text(None, "123456", 300, &SmsAutofill::default()),
            "Your verification code is 123456. It expires in 5 minutes."
        );
        assert_eq!(
            sms_text(Some("Acme"), "123456", 60, &SmsAutofill::default()),
            "Acme: Your verification code is 123456. It expires in 1 minute."
        );
        assert_eq!(
            sms_text(None, "1234", 90, &SmsAutofill::default()),
            "Your verification code is 1234. It expires in 90 seconds."
        );
    }

    #[test]
    fn email_mentions_ignoring_unrequested_codes() {
        assert_eq!(email_subject(Some("Acme")), "Acme: Your verification code");
        let text = email_text(Some("Acme"), "123456", 300);
        assert!(
            text.starts_with("Acme: Your verification code is 123456. It expires in 5 minutes.")
        );
        assert!(text.contains("ignore this email"));
        assert!(!text.contains("{{"));
    }

    #[test]
    fn html_email_holds_code_brand_lifetime_and_the_ignore_line() {
        let html = email_html(Some("Acme"), "123456", 600);
        assert!(html.contains(">123456</div>"));
        assert!(html.contains("Your Acme verification code"));
        assert!(html.contains("It expires in 10 minutes."));
        assert!(html.contains("you can ignore this email"));
        assert!(html.contains("font-family:'Courier New',Courier,monospace;font-size:34px"));
        assert!(!html.contains("{{"), "every placeholder is filled");
        assert!(!email_html(None, "1234", 60).contains("{{"));
    }

    #[test]
    fn html_email_escapes_the_brand() {
        let html = email_html(Some(r#"<b>Tom & "Jerry's"</b>"#), "123456", 300);
        assert!(html.contains(
            "Your &lt;b&gt;Tom &amp; &quot;Jerry&#39;s&quot;&lt;/b&gt; verification code"
        ));
        assert!(!html.contains("<b>Tom"));
        assert!(!html.contains("\"Jerry"));
    }

    #[test]
    fn inserted_values_are_not_expanded_again() {
        let html = email_html(Some("{{code}}"), "123456", 300);
        assert!(html.contains("Your {{code}} verification code"));
    }
}

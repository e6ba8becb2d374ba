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

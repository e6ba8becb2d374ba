//! The words of every message, in the request's language: the texts come from the locale's data
//! file (`shared/locales/*.json`), the email's layout from `templates/email.{html,txt}`.

use crate::locale::Locale;
use crate::sms::Length;

/// "5 minutes", "1 minute", "90 seconds", in the locale's words: never rounds the lifetime up.
pub fn lifetime(locale: Locale, ttl_secs: u64) -> String {
    let texts = locale.texts();
    let (n, forms) = if ttl_secs.is_multiple_of(60) {
        (ttl_secs / 60, &texts.minutes)
    } else {
        (ttl_secs, &texts.seconds)
    };
    fill(
        forms.get(texts.plural.category(n)),
        &[("n", &n.to_string())],
    )
}

fn branded(locale: Locale, brand: Option<&str>, text: String) -> String {
    match brand {
        Some(brand) => fill(&locale.texts().brand_prefix, &[("brand", brand)]) + &text,
        None => text,
    }
}

fn code_line(locale: Locale, brand: Option<&str>, code: &str, ttl_secs: u64) -> String {
    let line = fill(
        &locale.texts().code_line,
        &[("code", code), ("lifetime", &lifetime(locale, ttl_secs))],
    );
    branded(locale, brand, line)
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

impl SmsAutofill {
    fn lines(&self, code: &str) -> String {
        let mut lines = String::new();
        if self.android_app_hash.is_some() || self.webotp_domain.is_some() {
            lines.push('\n');
        }
        if let Some(hash) = &self.android_app_hash {
            lines.push('\n');
            lines.push_str(hash);
        }
        // Last, and alone on its line: the format reads only the last line.
        if let Some(domain) = &self.webotp_domain {
            lines.push_str(&format!("\n@{domain} #{code}"));
        }
        lines
    }
}

/// The SMS: the full sentence when it fits one segment, else the locale's short form (a long
/// brand, or a language that needs UCS-2, leaves about 18 characters for words). Each segment
/// is billed, and a phone fills a code in only from a message it received whole.
pub fn sms_text(
    locale: Locale,
    brand: Option<&str>,
    code: &str,
    ttl_secs: u64,
    autofill: &SmsAutofill,
) -> String {
    let lines = autofill.lines(code);
    let full = code_line(locale, brand, code, ttl_secs) + &lines;
    if Length::of(&full).fits_one_segment() {
        return full;
    }
    let short = fill(&locale.texts().sms_short, &[("code", code)]);
    branded(locale, brand, short) + &lines
}

/// What a voice call says: the digits one by one, twice.
pub fn voice_script(locale: Locale, code: &str) -> [String; 2] {
    let voice = &locale.texts().voice;
    // A comma between digits makes every text-to-speech voice say them one at a time.
    let digits = code
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(", ");
    [
        format!("{}: {digits}.", voice.intro),
        format!("{}: {digits}.", voice.repeat),
    ]
}

/// The call as TwiML: the script in the locale's language and voice, a pause between.
pub fn voice_twiml(locale: Locale, code: &str) -> String {
    let voice = &locale.texts().voice;
    let [first, second] = voice_script(locale, code);
    let say = |words: &str| {
        format!(
            "<Say language=\"{}\" voice=\"{}\">{}</Say>",
            escape_html(&voice.language),
            escape_html(&voice.name),
            escape_html(words),
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{}<Pause length=\"1\"/>{}</Response>",
        say(&first),
        say(&second)
    )
}

pub fn email_subject(locale: Locale, brand: Option<&str>) -> String {
    branded(locale, brand, locale.texts().email_subject.clone())
}

/// The plain-text part of the email: `templates/email.txt`.
pub fn email_text(locale: Locale, brand: Option<&str>, code: &str, ttl_secs: u64) -> String {
    let texts = locale.texts();
    render(
        EMAIL_TEXT,
        &[
            ("code_line", &code_line(locale, brand, code, ttl_secs)),
            ("do_not_share", &texts.email_do_not_share),
            ("ignore", &texts.email_ignore),
        ],
        |s| s.to_owned(),
    )
}

/// The HTML part of the email: `templates/email.html`, every inserted value escaped.
pub fn email_html(locale: Locale, brand: Option<&str>, code: &str, ttl_secs: u64) -> String {
    let texts = locale.texts();
    let lifetime = lifetime(locale, ttl_secs);
    let heading = match brand {
        Some(brand) => fill(&texts.email_heading_brand, &[("brand", brand)]),
        None => texts.email_heading.clone(),
    };
    render(
        EMAIL_HTML,
        &[
            ("lang", locale.tag()),
            ("dir", texts.direction.as_str()),
            ("subject", &email_subject(locale, brand)),
            ("preheader", &code_line(locale, None, code, ttl_secs)),
            ("heading", &heading),
            (
                "enter",
                &fill(&texts.email_enter, &[("lifetime", &lifetime)]),
            ),
            ("code", code),
            ("do_not_share", &texts.email_do_not_share),
            ("ignore", &texts.email_ignore),
        ],
        escape_html,
    )
}

/// Replaces each `{name}` of a locale's text in one pass, so an inserted value (a brand) is
/// never itself expanded. The texts are ours: an unknown name is a bug the tests catch.
fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('}')
            .expect("unclosed placeholder in a locale text");
        let name = &after[..end];
        let value = values
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("unknown placeholder {{{name}}} in {text:?}"))
            .1;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
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
mod tests;

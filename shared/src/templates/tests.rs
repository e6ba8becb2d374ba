use super::*;
use crate::locale::Locale;
use crate::sms::{Encoding, Length};

const EN: fn() -> Locale = Locale::english;

fn locale(tag: &str) -> Locale {
    Locale::parse(tag).unwrap()
}

#[test]
fn english_sms_matches_the_documented_line() {
    let none = SmsAutofill::default();
    assert_eq!(
        sms_text(EN(), None, "123456", 300, &none),
        "Your verification code is 123456. It expires in 5 minutes."
    );
    assert_eq!(
        sms_text(EN(), Some("Acme"), "123456", 60, &none),
        "Acme: Your verification code is 123456. It expires in 1 minute."
    );
    assert_eq!(
        sms_text(EN(), None, "1234", 90, &none),
        "Your verification code is 1234. It expires in 90 seconds."
    );
}

#[test]
fn other_languages_use_their_words_plurals_and_brand_conventions() {
    let none = SmsAutofill::default();
    assert_eq!(
        sms_text(locale("de-AT"), Some("Acme"), "123456", 60, &none),
        "Acme: Ihr Bestätigungscode lautet 123456. Er ist 1 Minute gültig."
    );
    let ru = |ttl| sms_text(locale("ru"), None, "123456", ttl, &none);
    assert!(ru(60).ends_with("Действует 1 минуту."), "{}", ru(60));
    assert!(ru(120).ends_with("Действует 2 минуты."), "{}", ru(120));
    assert!(ru(300).ends_with("Действует 5 минут."), "{}", ru(300));
    assert!(ru(1260).ends_with("Действует 21 минуту."), "{}", ru(1260));
    assert_eq!(
        sms_text(locale("zh-CN"), Some("Acme"), "123456", 300, &none),
        "【Acme】您的验证码是123456，5分钟内有效。"
    );
    assert_eq!(
        sms_text(locale("pt-BR"), None, "123456", 300, &none),
        "Seu código de verificação é 123456. Ele expira em 5 minutos."
    );
    assert_eq!(
        sms_text(locale("pt-PT"), None, "123456", 300, &none),
        "O seu código de verificação é 123456. Expira em 5 minutos."
    );
}

/// The issue's rule: every locale's SMS, with the longest brand allowed and a 10-digit code,
/// fits one segment. Every lifetime the settings allow is tried, and a brand outside GSM 7-bit
/// too (it makes any text UCS-2).
#[test]
fn every_locale_s_sms_fits_one_segment_with_the_longest_brand_and_code() {
    let max = crate::settings::BRAND_MAX_CHARS;
    let brands = ["B".repeat(max), "€".repeat(max), "品".repeat(max)];
    let ttls = crate::settings::TTL_SECONDS.range.clone();
    for locale in Locale::all() {
        for brand in &brands {
            for ttl in ttls.clone() {
                let text = sms_text(
                    locale,
                    Some(brand),
                    "1234567890",
                    ttl,
                    &SmsAutofill::default(),
                );
                let length = Length::of(&text);
                assert!(
                    length.fits_one_segment(),
                    "{}: {} {:?} units: {text}",
                    locale.tag(),
                    length.units,
                    length.encoding
                );
                assert!(text.contains("1234567890"), "{}: {text}", locale.tag());
                assert!(!text.contains('{'), "{}: {text}", locale.tag());
            }
        }
    }
}

/// The short form is a fallback, not the norm: with a usual brand and code every locale's
/// full sentence (code and lifetime) fits.
#[test]
fn with_a_usual_brand_every_locale_sends_the_full_sentence() {
    for locale in Locale::all() {
        for ttl in [60, 300, 600, 900] {
            let text = sms_text(locale, Some("Acme"), "123456", ttl, &SmsAutofill::default());
            assert!(
                text.contains(&lifetime(locale, ttl)),
                "{}: the short form was used: {text}",
                locale.tag()
            );
        }
    }
}

#[test]
fn a_gsm_language_stays_gsm_and_a_long_brand_falls_back_to_the_short_form() {
    let gsm = sms_text(
        EN(),
        Some(&"B".repeat(40)),
        "1234567890",
        3599,
        &SmsAutofill::default(),
    );
    assert_eq!(Length::of(&gsm).encoding, Encoding::Gsm7);
    assert!(gsm.contains("expires in 3599 seconds"), "{gsm}");
    for tag in ["de", "fr", "it", "nl", "sv", "da", "nb", "fi", "id"] {
        let text = sms_text(locale(tag), None, "123456", 300, &SmsAutofill::default());
        assert_eq!(Length::of(&text).encoding, Encoding::Gsm7, "{tag}: {text}");
    }
    let ucs2 = sms_text(
        EN(),
        Some(&"品".repeat(40)),
        "1234567890",
        300,
        &SmsAutofill::default(),
    );
    assert_eq!(
        ucs2,
        format!("{}: 1234567890 is your code", "品".repeat(40))
    );
}

#[test]
fn the_webotp_line_is_the_last_line_and_the_hash_has_its_own() {
    let autofill = SmsAutofill {
        webotp_domain: Some("example.com".to_owned()),
        android_app_hash: Some("FA+9qCX9VSu".to_owned()),
    };
    let text = sms_text(EN(), Some("Acme"), "123456", 300, &autofill);
    assert_eq!(
        text,
        "Acme: Your verification code is 123456. It expires in 5 minutes.\n\nFA+9qCX9VSu\n\
         @example.com #123456"
    );
    assert_eq!(text.lines().last().unwrap(), "@example.com #123456");
    // In every language, the autofill lines stay last, whichever form the text takes.
    for locale in Locale::all() {
        let text = sms_text(locale, Some("Acme"), "123456", 300, &autofill);
        assert!(
            text.ends_with("\n\nFA+9qCX9VSu\n@example.com #123456"),
            "{text}"
        );
    }
    let plain = sms_text(EN(), None, "123456", 300, &SmsAutofill::default());
    assert!(!plain.contains('\n') && !plain.contains('@'));
}

#[test]
fn voice_says_the_digits_one_by_one_twice_in_the_language() {
    let twiml = voice_twiml(locale("de"), "123456");
    assert_eq!(
        twiml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>\
         <Say language=\"de-DE\" voice=\"Google.de-DE-Standard-A\">Ihr Bestätigungscode lautet: \
         1, 2, 3, 4, 5, 6.</Say><Pause length=\"1\"/>\
         <Say language=\"de-DE\" voice=\"Google.de-DE-Standard-A\">Noch einmal, Ihr Code lautet: \
         1, 2, 3, 4, 5, 6.</Say></Response>"
    );
    for locale in Locale::all() {
        let twiml = voice_twiml(locale, "0987654321");
        assert_eq!(
            twiml.matches("0, 9, 8, 7, 6, 5, 4, 3, 2, 1.</Say>").count(),
            2
        );
        let voice = &locale.texts().voice;
        assert!(voice.name.starts_with("Google."), "{}", locale.tag());
        assert!(
            voice.name.contains(&voice.language),
            "{}: the voice speaks another language",
            locale.tag()
        );
    }
}

#[test]
fn email_mentions_ignoring_unrequested_codes() {
    assert_eq!(
        email_subject(EN(), Some("Acme")),
        "Acme: Your verification code"
    );
    let text = email_text(EN(), Some("Acme"), "123456", 300);
    assert!(text.starts_with("Acme: Your verification code is 123456. It expires in 5 minutes."));
    assert!(text.contains("ignore this email"));
    assert!(!text.contains("{{"));
}

#[test]
fn html_email_holds_code_brand_lifetime_and_the_ignore_line() {
    let html = email_html(EN(), Some("Acme"), "123456", 600);
    assert!(html.contains(">123456</div>"));
    assert!(html.contains("Your Acme verification code"));
    assert!(html.contains("It expires in 10 minutes."));
    assert!(html.contains("you can ignore this email"));
    assert!(html.contains("<html lang=\"en\" dir=\"ltr\">"));
    assert!(html.contains("font-family:'Courier New',Courier,monospace;font-size:34px"));
    assert!(!html.contains("{{"), "every placeholder is filled");
    assert!(!email_html(EN(), None, "1234", 60).contains("{{"));
}

/// Every locale's email renders: every placeholder filled, the code, the lifetime and the
/// brand in it, the document's language and direction set, and the brand escaped.
#[test]
fn every_locale_s_email_renders_and_escapes() {
    let brand = r#"<b>Tom & "Jerry's"</b>"#;
    for locale in Locale::all() {
        let tag = locale.tag();
        let texts = locale.texts();
        let html = email_html(locale, Some(brand), "123456", 300);
        let text = email_text(locale, Some(brand), "123456", 300);
        let subject = email_subject(locale, Some(brand));
        for part in [&html, &text, &subject] {
            assert!(
                !part.contains("{{") && !part.contains("{brand}"),
                "{tag}: {part}"
            );
        }
        assert!(html.contains(">123456</div>"), "{tag}");
        assert!(
            html.contains(&escape_html(&lifetime(locale, 300))),
            "{tag}: no lifetime"
        );
        assert!(
            html.contains(&format!(
                "<html lang=\"{tag}\" dir=\"{}\">",
                texts.direction.as_str()
            )),
            "{tag}"
        );
        assert!(
            html.contains("&lt;b&gt;Tom &amp; &quot;Jerry&#39;s&quot;&lt;/b&gt;"),
            "{tag}"
        );
        assert!(
            !html.contains("<b>Tom") && !html.contains("\"Jerry"),
            "{tag}"
        );
        assert!(text.contains("123456") && text.contains(brand), "{tag}");
        assert!(subject.contains(brand), "{tag}");
        assert!(html.contains(&escape_html(&texts.email_ignore)), "{tag}");
    }
    let rtl: Vec<_> = Locale::all()
        .filter(|l| l.texts().direction == crate::locale::Direction::Rtl)
        .map(Locale::tag)
        .collect();
    assert_eq!(rtl, ["ar", "he"]);
}

#[test]
fn inserted_values_are_not_expanded_again() {
    let html = email_html(EN(), Some("{{code}}"), "123456", 300);
    assert!(html.contains("Your {{code}} verification code"));
    let sms = sms_text(EN(), Some("{code}"), "123456", 300, &SmsAutofill::default());
    assert!(sms.starts_with("{code}: Your"), "{sms}");
}

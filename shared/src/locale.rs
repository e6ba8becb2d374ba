//! The languages codes are sent in: one data file per language under `shared/locales/`, chosen
//! by a BCP 47 tag with fallback (`pt-BR` → `pt` → English).
//!
//! The files are compiled in and each is parsed on its first use; the unit tests parse every one
//! and render every message, so a broken file fails `cargo test`, never a send.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::domain::FieldError;

/// The tags we have texts for, each with its data file. The file name is the tag.
const FILES: &[(&str, &str)] = &[
    ("ar", include_str!("../locales/ar.json")),
    ("cs", include_str!("../locales/cs.json")),
    ("da", include_str!("../locales/da.json")),
    ("de", include_str!("../locales/de.json")),
    ("el", include_str!("../locales/el.json")),
    ("en", include_str!("../locales/en.json")),
    ("es", include_str!("../locales/es.json")),
    ("fi", include_str!("../locales/fi.json")),
    ("fr", include_str!("../locales/fr.json")),
    ("he", include_str!("../locales/he.json")),
    ("hi", include_str!("../locales/hi.json")),
    ("hu", include_str!("../locales/hu.json")),
    ("id", include_str!("../locales/id.json")),
    ("it", include_str!("../locales/it.json")),
    ("ja", include_str!("../locales/ja.json")),
    ("ko", include_str!("../locales/ko.json")),
    ("nb", include_str!("../locales/nb.json")),
    ("nl", include_str!("../locales/nl.json")),
    ("pl", include_str!("../locales/pl.json")),
    ("pt", include_str!("../locales/pt.json")),
    ("pt-BR", include_str!("../locales/pt-BR.json")),
    ("ro", include_str!("../locales/ro.json")),
    ("ru", include_str!("../locales/ru.json")),
    ("sv", include_str!("../locales/sv.json")),
    ("th", include_str!("../locales/th.json")),
    ("tr", include_str!("../locales/tr.json")),
    ("uk", include_str!("../locales/uk.json")),
    ("vi", include_str!("../locales/vi.json")),
    ("zh", include_str!("../locales/zh.json")),
    ("zh-Hant", include_str!("../locales/zh-Hant.json")),
];

const ENGLISH: usize = 5;

/// The longest tag accepted: RFC 5646 recommends supporting at least 35 characters; a longer
/// value is no language a person asked for.
pub const TAG_MAX_CHARS: usize = 64;

/// One of the languages we send in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locale(usize);

impl Default for Locale {
    fn default() -> Self {
        Locale(ENGLISH)
    }
}

impl Locale {
    pub fn english() -> Self {
        Self::default()
    }

    /// Every language we have, in tag order.
    pub fn all() -> impl Iterator<Item = Locale> {
        (0..FILES.len()).map(Locale)
    }

    /// The tags, for the API document and the README.
    pub fn tags() -> impl Iterator<Item = &'static str> {
        FILES.iter().map(|(tag, _)| *tag)
    }

    /// The language for a caller's BCP 47 tag: the most specific one we have, else English.
    /// A tag that is not well-formed is refused, so a typo is not silently English.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let malformed = || {
            FieldError::new(
                "value_error",
                "Value error, locale must be a BCP 47 language tag, e.g. pt-BR",
            )
        };
        if raw.chars().count() > TAG_MAX_CHARS {
            return Err(FieldError::new(
                "string_too_long",
                format!("String should have at most {TAG_MAX_CHARS} characters"),
            ));
        }
        let tag = language_tags::LanguageTag::parse(raw).map_err(|_| malformed())?;
        let language = tag.primary_language().to_ascii_lowercase();
        let script = tag.script();
        let region = tag.region();
        Ok(Self::lookup(&language, script, region))
    }

    /// RFC 4647 lookup: drop subtags from the right until a file matches.
    fn lookup(language: &str, script: Option<&str>, region: Option<&str>) -> Self {
        let language = match language {
            // Norwegian: Bokmål is what "no" means in practice.
            "no" => "nb",
            other => other,
        };
        // Chinese written in Taiwan, Hong Kong and Macao is Traditional unless said otherwise.
        let script = script.map(str::to_owned).or_else(|| {
            (language == "zh" && matches!(region, Some("TW" | "HK" | "MO")))
                .then(|| "Hant".to_owned())
        });
        let mut candidates = Vec::with_capacity(4);
        if let (Some(script), Some(region)) = (&script, region) {
            candidates.push(format!("{language}-{script}-{region}"));
        }
        if let Some(region) = region {
            candidates.push(format!("{language}-{region}"));
        }
        if let Some(script) = &script {
            candidates.push(format!("{language}-{script}"));
        }
        candidates.push(language.to_owned());
        candidates
            .iter()
            .find_map(|candidate| {
                FILES
                    .iter()
                    .position(|(tag, _)| tag.eq_ignore_ascii_case(candidate))
            })
            .map_or_else(Locale::default, Locale)
    }

    pub fn tag(self) -> &'static str {
        FILES[self.0].0
    }

    /// This language's texts. Each file is parsed once, on first use.
    pub fn texts(self) -> &'static Texts {
        static PARSED: [OnceLock<Texts>; FILES.len()] = [const { OnceLock::new() }; FILES.len()];
        PARSED[self.0].get_or_init(|| {
            serde_json::from_str(FILES[self.0].1)
                .unwrap_or_else(|e| panic!("shared/locales/{}.json: {e}", self.tag()))
        })
    }
}

/// One language's words. Placeholders: `{brand}`, `{code}`, `{lifetime}`, `{n}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Texts {
    /// The language's name in itself, for the README's list.
    pub name: String,
    /// `ltr` or `rtl`, for the email's `dir`.
    pub direction: Direction,
    pub plural: PluralRule,
    pub minutes: Forms,
    pub seconds: Forms,
    /// Before a branded text: `{brand}: `, or the language's convention (`【{brand}】`).
    pub brand_prefix: String,
    /// The sentence with code and lifetime: the SMS, the email's first line.
    pub code_line: String,
    /// The SMS when the full one would take two segments (a long brand, a UCS-2 language):
    /// the code and a word or two, never more than fits.
    pub sms_short: String,
    pub email_subject: String,
    pub email_heading: String,
    pub email_heading_brand: String,
    pub email_enter: String,
    pub email_do_not_share: String,
    pub email_ignore: String,
    pub voice: Voice,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Voice {
    /// Twilio `<Say language>`.
    pub language: String,
    /// Twilio `<Say voice>`: a text-to-speech voice that speaks `language`.
    pub name: String,
    /// Said before the digits.
    pub intro: String,
    /// Said before the digits the second time.
    pub repeat: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ltr,
    Rtl,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ltr => "ltr",
            Direction::Rtl => "rtl",
        }
    }
}

/// A number's words by CLDR plural category; `other` is always there.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forms {
    pub zero: Option<String>,
    pub one: Option<String>,
    pub two: Option<String>,
    pub few: Option<String>,
    pub many: Option<String>,
    pub other: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Zero,
    One,
    Two,
    Few,
    Many,
    Other,
}

impl Forms {
    pub fn get(&self, category: Category) -> &str {
        let form = match category {
            Category::Zero => &self.zero,
            Category::One => &self.one,
            Category::Two => &self.two,
            Category::Few => &self.few,
            Category::Many => &self.many,
            Category::Other => return &self.other,
        };
        form.as_deref().unwrap_or(&self.other)
    }
}

/// CLDR's cardinal plural rules for whole numbers, one family per group of languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluralRule {
    /// No plural forms (ja, ko, zh, id, th, vi).
    None,
    /// one: 1 (en, de, nl, sv, da, nb, fi, it, es, el, hu, tr).
    OneOther,
    /// one: 0 and 1 (fr, pt, hi).
    ZeroOneOther,
    /// one: n%10=1 except 11; few: n%10=2..4 except 12..14; many: the rest (ru, uk).
    EastSlavic,
    /// one: 1; few: n%10=2..4 except 12..14; many: the rest (pl).
    Polish,
    /// one: 1; few: 2..4; other (cs, sk).
    Czech,
    /// one: 1; few: 0 and n%100=2..19; other (ro).
    Romanian,
    /// one: 1; two: 2; other (he).
    Hebrew,
    /// zero, one, two; few: n%100=3..10; many: n%100=11..99; other (ar).
    Arabic,
}

impl PluralRule {
    pub fn category(self, n: u64) -> Category {
        let (m10, m100) = (n % 10, n % 100);
        match self {
            PluralRule::None => Category::Other,
            PluralRule::OneOther => one_if(n == 1),
            PluralRule::ZeroOneOther => one_if(n <= 1),
            PluralRule::EastSlavic => match (m10, m100) {
                (1, m) if m != 11 => Category::One,
                (2..=4, m) if !(12..=14).contains(&m) => Category::Few,
                _ => Category::Many,
            },
            PluralRule::Polish => match (n, m10, m100) {
                (1, _, _) => Category::One,
                (_, 2..=4, m) if !(12..=14).contains(&m) => Category::Few,
                _ => Category::Many,
            },
            PluralRule::Czech => match n {
                1 => Category::One,
                2..=4 => Category::Few,
                _ => Category::Other,
            },
            PluralRule::Romanian => match (n, m100) {
                (1, _) => Category::One,
                (0, _) | (_, 2..=19) => Category::Few,
                _ => Category::Other,
            },
            PluralRule::Hebrew => match n {
                1 => Category::One,
                2 => Category::Two,
                _ => Category::Other,
            },
            PluralRule::Arabic => match (n, m100) {
                (0, _) => Category::Zero,
                (1, _) => Category::One,
                (2, _) => Category::Two,
                (_, 3..=10) => Category::Few,
                (_, 11..=99) => Category::Many,
                _ => Category::Other,
            },
        }
    }

    /// The categories this rule can give, so the tests can ask each file for all of them.
    pub fn categories(self) -> &'static [Category] {
        use Category::*;
        match self {
            PluralRule::None => &[Other],
            PluralRule::OneOther | PluralRule::ZeroOneOther => &[One, Other],
            PluralRule::EastSlavic | PluralRule::Polish => &[One, Few, Many],
            PluralRule::Czech | PluralRule::Romanian => &[One, Few, Other],
            PluralRule::Hebrew => &[One, Two, Other],
            PluralRule::Arabic => &[Zero, One, Two, Few, Many, Other],
        }
    }
}

fn one_if(one: bool) -> Category {
    if one {
        Category::One
    } else {
        Category::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(raw: &str) -> &'static str {
        Locale::parse(raw).unwrap().tag()
    }

    #[test]
    fn the_most_specific_language_we_have_is_chosen() {
        assert_eq!(tag("pt-BR"), "pt-BR");
        assert_eq!(tag("pt-br"), "pt-BR");
        assert_eq!(tag("pt-PT"), "pt");
        assert_eq!(tag("pt"), "pt");
        assert_eq!(tag("de-CH"), "de");
        assert_eq!(tag("en-GB"), "en");
        assert_eq!(tag("zh-CN"), "zh");
        assert_eq!(tag("zh-Hans-CN"), "zh");
        assert_eq!(tag("zh-TW"), "zh-Hant");
        assert_eq!(tag("zh-Hant"), "zh-Hant");
        assert_eq!(tag("zh-HK"), "zh-Hant");
        assert_eq!(tag("no"), "nb");
        assert_eq!(
            tag("sr-Latn-RS"),
            "en",
            "a language we lack falls back to English"
        );
        assert_eq!(tag("es-419"), "es");
        assert_eq!(tag("de-DE-u-co-phonebk"), "de");
        assert_eq!(Locale::default().tag(), "en");
    }

    #[test]
    fn a_malformed_tag_is_refused() {
        for bad in [
            "",
            "e",
            "pt_BR",
            "pt-",
            "-pt",
            "de--DE",
            "12",
            "pt-BR-",
            "en US",
            "toolonglanguage",
        ] {
            let error = Locale::parse(bad).unwrap_err();
            assert_eq!(error.kind, "value_error", "{bad}");
        }
        let long = format!("en-{}", "x".repeat(TAG_MAX_CHARS));
        assert_eq!(Locale::parse(&long).unwrap_err().kind, "string_too_long");
    }

    #[test]
    fn every_file_in_the_directory_is_listed_and_named_by_its_tag() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("locales");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = Locale::tags().map(|t| format!("{t}.json")).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
        assert!(FILES.len() >= 20);
        assert_eq!(FILES[ENGLISH].0, "en");
        for locale in Locale::all() {
            assert_eq!(Locale::parse(locale.tag()).unwrap(), locale);
        }
    }

    #[test]
    fn every_file_has_every_plural_form_its_rule_asks_for() {
        for locale in Locale::all() {
            let texts = locale.texts();
            for forms in [&texts.minutes, &texts.seconds] {
                for category in texts.plural.categories() {
                    let form = match category {
                        Category::Zero => &forms.zero,
                        Category::One => &forms.one,
                        Category::Two => &forms.two,
                        Category::Few => &forms.few,
                        Category::Many => &forms.many,
                        Category::Other => &Some(forms.other.clone()),
                    };
                    let form = form.as_deref().unwrap_or_else(|| {
                        panic!("{}: no {category:?} form", locale.tag());
                    });
                    assert!(form.contains("{n}"), "{}: {form}", locale.tag());
                }
            }
        }
    }

    #[test]
    fn plural_rules_follow_cldr() {
        use Category::*;
        let ru = |n| PluralRule::EastSlavic.category(n);
        assert_eq!(
            [ru(1), ru(2), ru(5), ru(11), ru(21), ru(22), ru(14)],
            [One, Few, Many, Many, One, Few, Many]
        );
        let pl = |n| PluralRule::Polish.category(n);
        assert_eq!(
            [pl(1), pl(2), pl(5), pl(21), pl(22), pl(12)],
            [One, Few, Many, Many, Few, Many]
        );
        let ar = |n| PluralRule::Arabic.category(n);
        assert_eq!(
            [ar(0), ar(1), ar(2), ar(3), ar(11), ar(100), ar(103)],
            [Zero, One, Two, Few, Many, Other, Few]
        );
        let ro = |n| PluralRule::Romanian.category(n);
        assert_eq!(
            [ro(1), ro(2), ro(19), ro(20), ro(101), ro(102)],
            [One, Few, Few, Other, Other, Few]
        );
        assert_eq!(PluralRule::ZeroOneOther.category(0), One);
        assert_eq!(PluralRule::OneOther.category(0), Other);
        assert_eq!(PluralRule::Czech.category(4), Few);
        assert_eq!(PluralRule::Hebrew.category(2), Two);
    }
}

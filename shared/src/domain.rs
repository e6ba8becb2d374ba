//! Domain newtypes. Each `parse` is the only way in, so every value inside the engine is valid.

use std::fmt;

use email_address::{EmailAddress, Options as EmailOptions};
use secrecy::{ExposeSecret, SecretString};

/// Why a single field was refused. `kind` follows pydantic's error `type` names so that clients of
/// the FastAPI services we replace see the same machine-readable values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub kind: &'static str,
    pub msg: String,
}

impl FieldError {
    pub fn new(kind: &'static str, msg: impl Into<String>) -> Self {
        Self {
            kind,
            msg: msg.into(),
        }
    }
}

pub const USER_ID_MAX_CHARS: usize = 128;
pub const PURPOSE_MAX_CHARS: usize = 32;
/// What [`Purpose::parse`] accepts, as a pattern (the API document shows it).
pub const PURPOSE_PATTERN: &str = "^[a-z0-9_-]{1,32}$";
/// The shape [`PhoneE164::parse`] requires before libphonenumber's validity check.
pub const PHONE_PATTERN: &str = r"^\+[1-9][0-9]{1,14}$";
/// RFC 5321 limits a forward path to 256 octets including the angle brackets.
pub const EMAIL_MAX_CHARS: usize = 254;

/// The caller's identifier for the person receiving the code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

/// A character that does not show as itself: controls (Cc), format characters such as
/// right-to-left overrides and zero-width spaces (Cf), line and paragraph separators (Zl, Zp),
/// private-use characters (Co), and any space but the ASCII one. Two ids that look alike must
/// be alike.
fn hidden_character(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory as _};
    matches!(
        c.general_category(),
        G::Control | G::Format | G::LineSeparator | G::ParagraphSeparator | G::PrivateUse
    ) || (c.general_category() == G::SpaceSeparator && c != ' ')
}

impl UserId {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let chars = raw.chars().count();
        if chars == 0 {
            return Err(FieldError::new(
                "string_too_short",
                "String should have at least 1 character",
            ));
        }
        if chars > USER_ID_MAX_CHARS {
            return Err(FieldError::new(
                "string_too_long",
                format!("String should have at most {USER_ID_MAX_CHARS} characters"),
            ));
        }
        if raw.trim().is_empty() {
            return Err(FieldError::new(
                "value_error",
                "Value error, user_id must not be blank",
            ));
        }
        if let Some(hidden) = raw.chars().find(|&c| hidden_character(c)) {
            return Err(FieldError::new(
                "value_error",
                format!(
                    "Value error, user_id must not contain control, format or invisible \
                     characters (found U+{:04X})",
                    u32::from(hidden)
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The user id of the `/auth/*` routes: the address itself, compared case-insensitively.
    pub fn from_email(email: &Email) -> Self {
        // ASCII only: a parsed address has nothing else, and Unicode case folding would make
        // a KELVIN SIGN (U+212A) a `k`.
        Self(email.as_str().to_ascii_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Scopes a code: a code sent for `login` does not verify `reset`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Purpose(String);

impl Purpose {
    pub const DEFAULT: &'static str = "default";

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if raw.is_empty() || raw.len() > PURPOSE_MAX_CHARS || !valid_chars {
            return Err(FieldError::new(
                "string_pattern_mismatch",
                format!("String should match pattern '{PURPOSE_PATTERN}'"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Purpose {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

/// What kind of line a number is, as libphonenumber's metadata classifies it. The send limits
/// decide which kinds may get an SMS (premium-rate and shared-cost ranges are how SMS pumping
/// earns money).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NumberKind {
    Mobile,
    FixedLineOrMobile,
    FixedLine,
    TollFree,
    PremiumRate,
    SharedCost,
    PersonalNumber,
    Voip,
    Pager,
    Uan,
    Voicemail,
    Other,
}

impl NumberKind {
    pub const ALL: [NumberKind; 12] = [
        NumberKind::Mobile,
        NumberKind::FixedLineOrMobile,
        NumberKind::FixedLine,
        NumberKind::TollFree,
        NumberKind::PremiumRate,
        NumberKind::SharedCost,
        NumberKind::PersonalNumber,
        NumberKind::Voip,
        NumberKind::Pager,
        NumberKind::Uan,
        NumberKind::Voicemail,
        NumberKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NumberKind::Mobile => "mobile",
            NumberKind::FixedLineOrMobile => "fixed_line_or_mobile",
            NumberKind::FixedLine => "fixed_line",
            NumberKind::TollFree => "toll_free",
            NumberKind::PremiumRate => "premium_rate",
            NumberKind::SharedCost => "shared_cost",
            NumberKind::PersonalNumber => "personal",
            NumberKind::Voip => "voip",
            NumberKind::Pager => "pager",
            NumberKind::Uan => "uan",
            NumberKind::Voicemail => "voicemail",
            NumberKind::Other => "other",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }

    /// How a user would name it, for the sentence that refuses it.
    pub fn described(self) -> &'static str {
        match self {
            NumberKind::Mobile => "a mobile number",
            NumberKind::FixedLineOrMobile => "a phone number",
            NumberKind::FixedLine => "a landline number",
            NumberKind::TollFree => "a toll-free number",
            NumberKind::PremiumRate => "a premium-rate number",
            NumberKind::SharedCost => "a shared-cost number",
            NumberKind::PersonalNumber => "a personal (forwarding) number",
            NumberKind::Voip => "a VoIP number",
            NumberKind::Pager => "a pager number",
            NumberKind::Uan => "a company (UAN) number",
            NumberKind::Voicemail => "a voicemail access number",
            NumberKind::Other => "a special-service number",
        }
    }

    fn of(kind: rlibphonenumber::PhoneNumberType) -> Self {
        use rlibphonenumber::PhoneNumberType as Type;
        match kind {
            Type::Mobile => NumberKind::Mobile,
            Type::FixedLineOrMobile => NumberKind::FixedLineOrMobile,
            Type::FixedLine => NumberKind::FixedLine,
            Type::TollFree => NumberKind::TollFree,
            Type::PremiumRate => NumberKind::PremiumRate,
            Type::SharedCost => NumberKind::SharedCost,
            Type::PersonalNumber => NumberKind::PersonalNumber,
            Type::VoIP => NumberKind::Voip,
            Type::Pager => NumberKind::Pager,
            Type::UAN => NumberKind::Uan,
            Type::VoiceMail => NumberKind::Voicemail,
            Type::Unknown => NumberKind::Other,
        }
    }
}

/// A phone number in E.164 form. Parsed by a send route ([`PhoneE164::parse`]) it is a number
/// libphonenumber considers valid, written exactly as E.164 writes it, and carries what the
/// metadata says about it ([`PhoneFacts`]). Parsed by a verify route ([`PhoneE164::parse_shape`])
/// only its shape is checked: a code can only have been sent to a number that passed the send
/// route's checks, whose canonical form is what the record's destination hash holds, so the
/// same string either matches a record or matches none. The verify-code function therefore needs
/// no phone metadata (and no regular-expression engine).
#[derive(Debug, Clone)]
pub struct PhoneE164 {
    e164: String,
    facts: Option<PhoneFacts>,
}

/// What libphonenumber's metadata says about a number: known for every number a send route
/// accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneFacts {
    /// The country calling code (`1`, `44`), which several countries can share.
    pub calling_code: u16,
    /// ISO 3166-1 alpha-2, upper case (`GB`, and `GG`/`IM`/`JE` for the Crown dependencies),
    /// when the metadata names one.
    pub region: Option<String>,
    pub kind: NumberKind,
}

impl PartialEq for PhoneE164 {
    fn eq(&self, other: &Self) -> bool {
        self.e164 == other.e164
    }
}

impl Eq for PhoneE164 {}

fn phone_invalid() -> FieldError {
    FieldError::new(
        "value_error",
        "Value error, phone must be a valid phone number in E.164 format, e.g. +14155552671",
    )
}

impl PhoneE164 {
    /// For a send: E.164's shape, a number valid for its region, and written as E.164 writes it
    /// (`+4407911123456`, with the UK's trunk prefix, is refused with the form to use,
    /// `+447911123456`, rather than silently rewritten: the verify routes compare the string).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let shaped = Self::parse_shape(raw)?;
        let number: rlibphonenumber::PhoneNumber = raw.parse().map_err(|_| phone_invalid())?;
        if !number.is_valid() {
            return Err(phone_invalid());
        }
        let canonical = number.format_as(rlibphonenumber::PhoneNumberFormat::E164);
        if canonical != shaped.e164 {
            return Err(FieldError::new(
                "value_error",
                format!(
                    "Value error, phone must be written as E.164 writes it, without a national \
                     (trunk) prefix: {canonical}"
                ),
            ));
        }
        Ok(Self {
            facts: Some(PhoneFacts {
                calling_code: u16::try_from(number.country_code).map_err(|_| phone_invalid())?,
                region: number
                    .get_region_code()
                    .map(|region| region.as_region_str().as_str().to_owned()),
                kind: NumberKind::of(number.get_type()),
            }),
            ..shaped
        })
    }

    /// For a verify: E.164's shape only ('+', a non-zero digit, at most 15 digits in all).
    /// Spaces, dashes and national formats are refused rather than guessed at.
    pub fn parse_shape(raw: &str) -> Result<Self, FieldError> {
        let digits = raw.strip_prefix('+').ok_or_else(phone_invalid)?;
        let shape_ok = (2..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !shape_ok {
            return Err(phone_invalid());
        }
        Ok(Self {
            e164: raw.to_owned(),
            facts: None,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// The metadata's facts: `Some` for every number a send route parsed, `None` for one a
    /// verify route parsed.
    pub fn facts(&self) -> Option<&PhoneFacts> {
        self.facts.as_ref()
    }

    /// The country calling code, when known (see [`PhoneE164::facts`]).
    pub fn calling_code(&self) -> Option<u16> {
        self.facts().map(|facts| facts.calling_code)
    }
}

/// A deliverable email address: `local@domain.tld`, no display name, no IP literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// A plain address: the part before `@` in ASCII letters, digits and
    /// ``!#$%&'*+/=?^_`{|}~-``, with single dots between them (RFC 5322's dot-atom), and a domain
    /// with at least two labels that IDNA accepts; a domain that is not ASCII is held as IDNA
    /// writes it (UTS 46: `bücher.de` is `xn--bcher-kva.de`, full-width letters are their ASCII
    /// selves). No
    /// quotes, spaces, comments, angle brackets or domain literals, and no Unicode before the
    /// `@`, so one string names one mailbox and case is compared in ASCII only (a KELVIN SIGN
    /// is not a `k`).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = |why: &str| {
            FieldError::new(
                "value_error",
                format!("value is not a valid email address: {why}"),
            )
        };
        let expected = "expected an address like user@example.com";
        if raw.len() > EMAIL_MAX_CHARS {
            return Err(invalid(expected));
        }
        let Some((local, domain)) = raw.rsplit_once('@') else {
            return Err(invalid(expected));
        };
        let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
        let plain = !local.is_empty()
            && local.len() <= 64
            && local
                .split('.')
                .all(|atom| !atom.is_empty() && atom.bytes().all(atext));
        if !plain {
            return Err(invalid(
                "the part before @ must be plain ASCII letters, digits and .!#$%&'*+/=?^_`{|}~- \
                 (no quotes, spaces, angle brackets or other characters)",
            ));
        }
        let ascii = idna::domain_to_ascii_strict(domain)
            .map_err(|_| invalid("the domain is not a valid domain name"))?;
        // An ASCII domain stays as typed (case is compared in ASCII); any other is held as IDNA
        // writes it, so each domain has one spelling.
        let domain = if domain.is_ascii() { domain } else { &ascii };
        let address = format!("{local}@{domain}");
        let options = EmailOptions {
            minimum_sub_domains: 2,
            allow_domain_literal: false,
            allow_display_text: false,
        };
        if address.len() > EMAIL_MAX_CHARS
            || EmailAddress::parse_with_options(&address, options).is_err()
        {
            return Err(invalid(expected));
        }
        Ok(Self(address))
    }

    /// The mailbox this address delivers to, as the send limits count it: lower-cased, without a
    /// `+tag`, and for Gmail (which ignores dots and answers for googlemail.com too) without
    /// dots and on gmail.com. The address as typed stays the account's identity; only the
    /// counting is per mailbox, so `bomb+1@`, `bomb+2@`, ... share one destination limit.
    pub fn mailbox(&self) -> Email {
        let address = self.0.to_ascii_lowercase();
        let (local, domain) = address.rsplit_once('@').unwrap_or((&address, ""));
        let local = match local.split_once('+') {
            Some((base, _)) if !base.is_empty() => base,
            _ => local,
        };
        match domain {
            "gmail.com" | "googlemail.com" => {
                Email(format!("{}@gmail.com", local.replace('.', "")))
            }
            _ => Email(format!("{local}@{domain}")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the user typed: exactly the configured number of ASCII digits. Held as a secret so it
/// cannot end up in a log line by accident.
#[derive(Clone)]
pub struct Passcode(SecretString);

impl Passcode {
    pub fn parse(raw: &str, length: usize) -> Result<Self, FieldError> {
        if raw.len() != length || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                "string_pattern_mismatch",
                format!("String should match pattern '{}'", Self::pattern(length)),
            ));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// Exactly `length` digits, as a pattern.
    pub fn pattern(length: usize) -> String {
        format!("^[0-9]{{{length}}}$")
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Passcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passcode(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Sms,
    /// A WhatsApp authentication template through Twilio.
    Whatsapp,
    /// A phone call that says the code (Twilio).
    Voice,
    Email,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Sms,
        Channel::Whatsapp,
        Channel::Voice,
        Channel::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
            Channel::Voice => "voice",
            Channel::Email => "email",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Channel::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    /// Whether the channel reaches a phone number (and so counts against the phone limits).
    pub fn to_phone(self) -> bool {
        !matches!(self, Channel::Email)
    }
}

/// Where a code goes. The channel follows from the destination, so they cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Sms(PhoneE164),
    Whatsapp(PhoneE164),
    Voice(PhoneE164),
    Email(Email),
}

impl Destination {
    /// A phone number reached by `channel`; `None` for email.
    pub fn phone(channel: Channel, phone: PhoneE164) -> Option<Self> {
        match channel {
            Channel::Sms => Some(Destination::Sms(phone)),
            Channel::Whatsapp => Some(Destination::Whatsapp(phone)),
            Channel::Voice => Some(Destination::Voice(phone)),
            Channel::Email => None,
        }
    }

    pub fn channel(&self) -> Channel {
        match self {
            Destination::Sms(_) => Channel::Sms,
            Destination::Whatsapp(_) => Channel::Whatsapp,
            Destination::Voice(_) => Channel::Voice,
            Destination::Email(_) => Channel::Email,
        }
    }

    /// The number, whichever channel reaches it.
    pub fn phone_number(&self) -> Option<&PhoneE164> {
        match self {
            Destination::Sms(phone) | Destination::Whatsapp(phone) | Destination::Voice(phone) => {
                Some(phone)
            }
            Destination::Email(_) => None,
        }
    }

    /// What the address is, whatever the channel: `sms` for any phone number (the name
    /// records have always carried), `email`. A code sent by WhatsApp or voice is checked
    /// against the phone number like one sent by SMS, and counts against the same number.
    pub fn address_kind(&self) -> &'static str {
        match self {
            Destination::Email(_) => "email",
            _ => "sms",
        }
    }

    /// The full address, for the sender only. Never log this; log [`Destination::masked`].
    pub fn address(&self) -> &str {
        match self {
            Destination::Email(email) => email.as_str(),
            other => other.phone_number().expect("a phone destination").as_str(),
        }
    }

    /// The destination as the send limits count it: an address's mailbox
    /// ([`Email::mailbox`]); a phone number is already canonical.
    pub fn counted(&self) -> Destination {
        match self {
            Destination::Email(email) => Destination::Email(email.mailbox()),
            other => other.clone(),
        }
    }

    pub fn masked(&self) -> String {
        match self {
            Destination::Email(email) => crate::mask::email(email.as_str()),
            other => crate::mask::phone(other.address()),
        }
    }

    /// A phone number's country calling code (`44`); `None` for email (and for a number only a
    /// verify route parsed, which never needs it).
    pub fn calling_code(&self) -> Option<u16> {
        self.phone_number().and_then(PhoneE164::calling_code)
    }
}

/// Which callers' codes a record belongs to. A code requested through one family of routes can
/// only be checked through the same family: the backend routes (`/send-code`, `/verify-code`,
/// called by an authenticated server) and the public routes (`/auth/*`, called by browsers) never
/// see each other's codes, even for the same user id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    Backend,
    Public,
}

/// Identifies one pending code: a user's code for one purpose, in one record space.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordKey {
    pub space: Space,
    pub purpose: Purpose,
    pub user_id: UserId,
}

impl RecordKey {
    pub fn new(space: Space, purpose: Purpose, user_id: UserId) -> Self {
        Self {
            space,
            purpose,
            user_id,
        }
    }

    /// What separates records and their hashes: the purpose, prefixed with `public:` in the
    /// public space. A purpose has no `:`, so the two spaces can never produce the same scope;
    /// the backend space keeps the bare purpose, so its records and hashes are unchanged.
    pub fn scope(&self) -> std::borrow::Cow<'_, str> {
        match self.space {
            Space::Backend => std::borrow::Cow::Borrowed(self.purpose.as_str()),
            Space::Public => std::borrow::Cow::Owned(format!("public:{}", self.purpose.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_accepts_1_to_128_chars_and_refuses_the_rest() {
        assert!(UserId::parse("u").is_ok());
        assert!(UserId::parse(&"é".repeat(128)).is_ok());
        assert_eq!(UserId::parse("").unwrap_err().kind, "string_too_short");
        assert_eq!(
            UserId::parse(&"a".repeat(129)).unwrap_err().kind,
            "string_too_long"
        );
        assert_eq!(UserId::parse("   ").unwrap_err().kind, "value_error");
        assert_eq!(UserId::parse("a\nb").unwrap_err().kind, "value_error");
    }

    #[test]
    fn user_id_refuses_what_does_not_show_as_itself() {
        for hidden in [
            "admin\u{202e}", // RIGHT-TO-LEFT OVERRIDE (Cf)
            "ad\u{200b}min", // ZERO WIDTH SPACE (Cf)
            "\u{feff}admin", // BYTE ORDER MARK (Cf)
            "ad\u{00ad}min", // SOFT HYPHEN (Cf)
            "a\u{2028}b",    // LINE SEPARATOR (Zl)
            "a\u{2029}b",    // PARAGRAPH SEPARATOR (Zp)
            "a\u{e000}b",    // private use (Co)
            "a\u{00a0}b",    // NO-BREAK SPACE
            "a\u{3000}b",    // IDEOGRAPHIC SPACE
            "a\u{0085}b",    // NEXT LINE (Cc)
        ] {
            let error = UserId::parse(hidden).unwrap_err();
            assert_eq!(error.kind, "value_error", "{hidden:?}");
            assert!(error.msg.contains("invisible"), "{}", error.msg);
        }
        assert!(UserId::parse("admin\u{202e}")
            .unwrap_err()
            .msg
            .contains("U+202E"));
        // Letters of every script, marks, symbols and the ASCII space stay accepted.
        for fine in [
            "Zoë Müller",
            "山田太郎",
            "user 42",
            "x\u{0301}",
            "emoji-\u{1f600}",
            "עברית",
        ] {
            assert!(UserId::parse(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn purpose_is_1_to_32_of_lowercase_digits_dash_underscore() {
        for ok in ["login", "reset-password", "step_2", &"a".repeat(32)] {
            assert!(Purpose::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Login", "a b", "a#b", "ü", &"a".repeat(33)] {
            assert!(Purpose::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Purpose::default().as_str(), "default");
    }

    #[test]
    fn phone_must_be_valid_e164() {
        assert_eq!(
            PhoneE164::parse("+14155552671").unwrap().as_str(),
            "+14155552671"
        );
        assert!(PhoneE164::parse("+447911123456").is_ok());
        assert!(PhoneE164::parse("+4915123456789").is_ok());
        for bad in [
            "14155552671",
            "+1 415 555 2671",
            "+1-415-555-2671",
            "+0123456789",
            "+1234",
            "+1234567890123456",
            "+19999999999",
            "",
            "+",
            "+1415555267a",
            "+447700900123", // reserved for drama, not assignable
        ] {
            assert!(PhoneE164::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_send_refuses_a_number_not_written_as_e164_writes_it() {
        // The UK's and Germany's trunk prefix after the country code: libphonenumber reads the
        // number, but a verify route compares strings, so the send says which form to use.
        for (raw, canonical) in [
            ("+4407911123456", "+447911123456"),
            ("+49015123456789", "+4915123456789"),
        ] {
            let error = PhoneE164::parse(raw).unwrap_err();
            assert_eq!(error.kind, "value_error");
            assert!(error.msg.ends_with(canonical), "{}", error.msg);
            assert!(PhoneE164::parse(canonical).is_ok());
        }
        // Italy's leading zero is part of the E.164 number and stays.
        assert!(PhoneE164::parse("+390612345678").is_ok());
    }

    #[test]
    fn a_verify_checks_only_the_shape_and_compares_equal_to_the_sent_number() {
        let sent = PhoneE164::parse("+447911123456").unwrap();
        let typed = PhoneE164::parse_shape("+447911123456").unwrap();
        assert_eq!(sent, typed);
        assert_eq!(typed.facts(), None);
        assert_eq!(
            Destination::Sms(sent).address(),
            Destination::Sms(typed).address()
        );
        // Shape-valid but never deliverable: no record can hold it, so it is simply no match.
        assert!(PhoneE164::parse_shape("+447700900123").is_ok());
        for bad in [
            "14155552671",
            "+1 415 555 2671",
            "+0123",
            "+1",
            "+1234567890123456",
        ] {
            assert!(PhoneE164::parse_shape(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_phone_knows_its_country_and_kind() {
        let facts = |raw| PhoneE164::parse(raw).unwrap().facts().cloned().unwrap();
        let us = facts("+14155552671");
        assert_eq!((us.calling_code, us.region.as_deref()), (1, Some("US")));
        assert_eq!(us.kind, NumberKind::FixedLineOrMobile);
        assert_eq!(facts("+447911123456").kind, NumberKind::Mobile);
        assert_eq!(facts("+4915123456789").region.as_deref(), Some("DE"));
        // UK and US premium-rate ranges, and a US toll-free one.
        assert_eq!(facts("+449098790000").kind, NumberKind::PremiumRate);
        assert_eq!(facts("+19005550123").kind, NumberKind::PremiumRate);
        assert_eq!(facts("+18005550199").kind, NumberKind::TollFree);
        assert_eq!(facts("+442079460000").kind, NumberKind::FixedLine);
        for kind in NumberKind::ALL {
            assert_eq!(NumberKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn email_needs_a_real_looking_address() {
        assert_eq!(
            Email::parse("User.Name+tag@Example.com").unwrap().as_str(),
            "User.Name+tag@Example.com"
        );
        for bad in [
            "",
            "plain",
            "a@b",
            "@example.com",
            "a@",
            "Name <a@example.com>",
            "a@[127.0.0.1]",
            "a b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    /// The address rules as a table: what is accepted (and held as), what is refused, and the
    /// mailbox the send limits count.
    #[test]
    fn addresses_are_plain_and_counted_per_mailbox() {
        for (raw, held, mailbox) in [
            (
                "alice@example.com",
                "alice@example.com",
                "alice@example.com",
            ),
            (
                "Alice@EXAMPLE.com",
                "Alice@EXAMPLE.com",
                "alice@example.com",
            ),
            (
                "bomb+1@example.com",
                "bomb+1@example.com",
                "bomb@example.com",
            ),
            (
                "bomb+x+y@example.com",
                "bomb+x+y@example.com",
                "bomb@example.com",
            ),
            ("+tag@example.com", "+tag@example.com", "+tag@example.com"),
            ("j.o.e+x@gmail.com", "j.o.e+x@gmail.com", "joe@gmail.com"),
            ("Joe@GoogleMail.com", "Joe@GoogleMail.com", "joe@gmail.com"),
            ("j.oe@example.com", "j.oe@example.com", "j.oe@example.com"),
            (
                "o'brien@example.co.uk",
                "o'brien@example.co.uk",
                "o'brien@example.co.uk",
            ),
            (
                "user@b\u{fc}cher.de",
                "user@xn--bcher-kva.de",
                "user@xn--bcher-kva.de",
            ),
            (
                "user@xn--bcher-kva.de",
                "user@xn--bcher-kva.de",
                "user@xn--bcher-kva.de",
            ),
            (
                "user@\u{ff45}\u{ff58}ample.com",
                "user@example.com",
                "user@example.com",
            ),
        ] {
            let email = Email::parse(raw).unwrap_or_else(|e| panic!("{raw}: {}", e.msg));
            assert_eq!(email.as_str(), held, "{raw}");
            assert_eq!(email.mailbox().as_str(), mailbox, "{raw}");
        }
        for refused in [
            "\"victim\"@example.com",
            "\"victim@example.com\"@evil.com",
            "\"vic tim\"@example.com",
            " <victim@example.com>",
            " <victim+1@example.com>",
            "victim@example.com (comment)",
            "\u{212a}ate@example.com",
            "k\u{e4}te@example.com",
            ".alice@example.com",
            "alice.@example.com",
            "al..ice@example.com",
            "alice@exa mple.com",
            "alice@-example.com",
            "alice@example..com",
        ] {
            assert!(Email::parse(refused).is_err(), "{refused} accepted");
        }
    }

    #[test]
    fn the_spaces_never_share_a_scope() {
        let key = |space| {
            RecordKey::new(
                space,
                Purpose::parse("login").unwrap(),
                UserId::parse("u").unwrap(),
            )
        };
        assert_eq!(key(Space::Backend).scope(), "login");
        assert_eq!(key(Space::Public).scope(), "public:login");
        assert!(Purpose::parse("public:login").is_err());
    }

    #[test]
    fn email_user_id_is_case_insensitive() {
        let a = UserId::from_email(&Email::parse("Alice@Example.COM").unwrap());
        let b = UserId::from_email(&Email::parse("alice@example.com").unwrap());
        assert_eq!(a, b);
    }

    #[test]
    fn passcode_is_exactly_n_ascii_digits_and_never_debug_printed() {
        assert_eq!(Passcode::parse("123456", 6).unwrap().expose(), "123456");
        for bad in ["12345", "1234567", "12345a", "１２３４５６", " 123456", ""] {
            assert!(Passcode::parse(bad, 6).is_err(), "{bad}");
        }
        assert_eq!(
            format!("{:?}", Passcode::parse("123456", 6).unwrap()),
            "Passcode(***)"
        );
    }
}

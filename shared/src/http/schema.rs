//! The documentation side of the contract (feature `openapi`): schemas of the request fields,
//! stated from the constants the domain parsers use, and the outcomes an `outcomes!` enum
//! declares. `crate::openapi` assembles the document from these; nothing here imports it.

use serde_json::json;
use utoipa::openapi::schema::{
    Array, ArrayBuilder, KnownFormat, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat,
    SchemaType, Type,
};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;

use crate::domain::{
    Channel, Passcode, EMAIL_MAX_CHARS, PHONE_PATTERN, PURPOSE_PATTERN, USER_ID_MAX_CHARS,
};
use crate::settings::CODE_LENGTH;

fn text(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

/// An optional field: absent and `null` both mean "not given".
fn optional(field: ObjectBuilder) -> Object {
    field
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .build()
}

pub fn user_id() -> Object {
    text(
        "Your identifier for the person; codes are scoped to it (exact match). Control, format \
         and invisible characters (Unicode Cc, Cf, Zl, Zp, Co, spaces other than U+0020) are \
         refused with a 422.",
    )
    .min_length(Some(1))
    .max_length(Some(USER_ID_MAX_CHARS))
    .examples([json!("user-123")])
    .build()
}

pub fn method() -> Object {
    text(
        "How the code is delivered: `sms`, `whatsapp` (an approved authentication template), \
         `voice` (a call that says the digits twice), or `email`. A channel the service is not \
         configured for is a 503 `channel_unavailable`. SMS, WhatsApp and voice share the phone \
         number's limits.",
    )
    .enum_values(Some(Channel::ALL.map(Channel::as_str)))
    .build()
}

pub fn phone() -> Object {
    optional(
        text(
            "Required for `sms`, `whatsapp` and `voice`: E.164, a number libphonenumber \
             considers valid, written as E.164 writes it (`+447911123456`, not \
             `+4407911123456`: the 422 names the form to use).",
        )
        .pattern(Some(PHONE_PATTERN))
        .examples([json!("+14155552671")]),
    )
}

fn address(description: &str) -> ObjectBuilder {
    text(description)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .max_length(Some(EMAIL_MAX_CHARS))
        .examples([json!("user@example.com")])
}

pub fn email() -> Object {
    address("An address like user@example.com (no display name, no IP literal).").build()
}

/// The CAPTCHA widget's token on `/auth/request-otp`.
pub fn captcha_token() -> Object {
    optional(
        text(
            "The token your CAPTCHA widget (Turnstile, hCaptcha or reCAPTCHA) produced; required \
             when the service is configured with a CAPTCHA, ignored otherwise.",
        )
        .min_length(Some(1))
        .max_length(Some(crate::http::request_otp::MAX_CAPTCHA_TOKEN_CHARS)),
    )
}

pub fn locale() -> Object {
    let tags: Vec<_> = crate::locale::Locale::tags()
        .map(|t| format!("`{t}`"))
        .collect();
    optional(
        text(&format!(
            "The language of the message, a BCP 47 tag such as `pt-BR`. The most specific \
             language we have is used (`pt-BR`, then `pt`, then English); a tag we have no \
             language for gets English, a malformed one is a 422. Languages: {}.",
            tags.join(", ")
        ))
        .min_length(Some(2))
        .max_length(Some(crate::locale::TAG_MAX_CHARS))
        // The shape of a tag; the full grammar (RFC 5646) is checked by the service.
        .pattern(Some(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$"))
        .examples(["pt-BR"]),
    )
}

/// The address of `/send-code`, needed only when `method` is `email`.
pub fn email_for_method() -> Object {
    optional(address(
        "Required for `email`: an address like user@example.com (no display name, no IP literal).",
    ))
}

/// `/send-code`'s optional end-user address, counted by the per-client-IP send limit.
pub fn client_ip() -> Object {
    optional(
        text(
            "Optional: the end user's IP address (IPv4 or IPv6), as your backend saw it. Sends \
             are limited per address (IPv6 per /64), as on the public routes.",
        )
        .pattern(Some(r"^[0-9A-Fa-f:.]{2,45}$"))
        .examples([json!("203.0.113.7")]),
    )
}

/// `/send-code`'s `trusted`: the fraud guard does not refuse this send.
pub fn trusted() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Boolean, Type::Null]))
        .description(Some(
            "Optional, default false: your backend already knows this user (a signed-in \
             account, a verified number), so the fraud guard does not refuse the send even when \
             the number's range is paused for suspected SMS pumping. Sends are still counted \
             and every other limit applies.",
        ))
        .default(Some(json!(false)))
        .examples([json!(true)])
        .build()
}

/// `/verify-code`'s end-user address: what the lockout counts wrong guesses by.
pub fn client_ip_of_guess() -> Object {
    optional(
        text(
            "Optional: the end user's IP address (IPv4 or IPv6), as your backend saw it. Wrong \
             guesses are counted per client network (IPv4 address, IPv6 /64): one network \
             guessing wrong locks the user out for that network only, while all networks \
             together stop at `OTP_LOCKOUT_CEILING`. Without it, every guess shares one count.",
        )
        .pattern(Some(r"^[0-9A-Fa-f:.]{2,45}$"))
        .examples([json!("203.0.113.7")]),
    )
}

/// `/verify-code`'s optional check of where the code went.
pub fn expected_phone() -> Object {
    optional(
        text(
            "Optional: accept the code only if it was sent to this number (E.164), by SMS, \
             WhatsApp or a call. A code sent elsewhere is refused with 409 and the guess is not \
             counted.",
        )
        .pattern(Some(PHONE_PATTERN))
        .examples([json!("+14155552671")]),
    )
}

pub fn expected_email() -> Object {
    optional(address(
        "Optional: accept the code only if it was sent to this address (case-insensitive). Give \
         `phone` or `email`, not both.",
    ))
}

pub fn purpose() -> Object {
    optional(
        text(
            "Scopes the code: a code sent for `login` does not verify `reset`. Default `default`.",
        )
        .pattern(Some(PURPOSE_PATTERN))
        .examples([json!("login")]),
    )
}

fn passcode_with(length: usize) -> Object {
    text("Exactly `OTP_CODE_LENGTH` digits.")
        .pattern(Some(Passcode::pattern(length)))
        .examples([json!("1234567890"[..length])])
        .build()
}

/// For the default code length; [`set_code_length`] adapts it to the running configuration.
pub fn passcode() -> Object {
    passcode_with(CODE_LENGTH.default as usize)
}

/// `loc`: a path of field names and byte positions.
pub fn loc() -> Array {
    let item = OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        );
    ArrayBuilder::new()
        .items(item)
        .description(Some(
            "Where the problem is: `[\"body\"]`, `[\"body\", \"<field>\"]`, or `[\"body\", <byte \
             offset>]` for JSON syntax errors.",
        ))
        .build()
}

/// Sets the passcode properties of a request schema to `length` digits.
pub fn set_code_length(schema: &mut RefOr<Schema>, length: usize) {
    let RefOr::T(Schema::Object(object)) = schema else {
        return;
    };
    let default = Passcode::pattern(CODE_LENGTH.default as usize);
    for property in object.properties.values_mut() {
        if let RefOr::T(Schema::Object(field)) = property {
            if field.pattern.as_deref() == Some(default.as_str()) {
                *field = passcode_with(length);
            }
        }
    }
}

pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// One documented outcome: status, description, body type, and whether `Retry-After` is sent.
pub struct Outcome {
    pub status: u16,
    pub description: &'static str,
    pub retry_after: bool,
    /// The body's schema name.
    pub body: String,
    /// Adds the body's schema (and the schemas it refers to) to a component list.
    pub register: fn(&mut Schemas),
}

pub fn register<B: ToSchema>(out: &mut Schemas) {
    out.push((B::name().into_owned(), B::schema()));
    B::schemas(out);
}

impl Outcome {
    pub fn of<B: ToSchema>(status: u16, description: &'static str, retry_after: bool) -> Self {
        Self {
            status,
            description,
            retry_after,
            body: B::name().into_owned(),
            register: register::<B>,
        }
    }
}

/// Implemented by every `outcomes!` enum.
pub trait Outcomes {
    fn outcomes() -> Vec<Outcome>;
}

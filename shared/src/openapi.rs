//! The OpenAPI 3.1 document, generated from the response types the handler serialises and from
//! request schemas checked against the validators (see the tests). The local server serves it;
//! the Lambda functions do not carry it (feature `openapi`).

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::{OpenApi, ToSchema};

use crate::config::Policy;
use crate::http::responses::{
    AuthOk, AuthVerifyFailure, PlainError, SendCodeOk, SendFailure, ValidationFailure,
    VerifyCodeFailure, VerifyCodeOk,
};
use crate::http::validation::{LocItem, ValidationIssue};

pub const PHONE_PATTERN: &str = r"^\+[1-9][0-9]{1,14}$";
pub const PURPOSE_PATTERN: &str = "^[a-z0-9_-]{1,32}$";

/// `POST /send-code` body. Unknown fields are ignored; `null` counts as absent.
#[derive(ToSchema)]
#[allow(dead_code)] // schema only: the handler validates the JSON itself, field by field
pub struct SendCodeRequest {
    /// Your identifier for the person; codes are scoped to it (exact match).
    #[schema(min_length = 1, max_length = 128, example = "user-123")]
    user_id: String,
    method: DeliveryMethod,
    /// Required for `sms`: E.164, and a number libphonenumber considers valid.
    #[schema(pattern = r"^\+[1-9][0-9]{1,14}$", example = "+14155552671")]
    phone: Option<String>,
    /// Required for `email`.
    #[schema(format = Email, max_length = 254, example = "user@example.com")]
    email: Option<String>,
    /// Scopes the code: a code sent for `login` does not verify `reset`. Default `default`.
    #[schema(pattern = "^[a-z0-9_-]{1,32}$", example = "login")]
    purpose: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum DeliveryMethod {
    Sms,
    Email,
}

/// `POST /verify-code` body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct VerifyCodeRequest {
    #[schema(min_length = 1, max_length = 128, example = "user-123")]
    user_id: String,
    /// Exactly `OTP_CODE_LENGTH` digits.
    #[schema(pattern = "^[0-9]{6}$", example = "123456")]
    passcode: String,
    /// The purpose the code was sent for. Default `default`.
    #[schema(pattern = "^[a-z0-9_-]{1,32}$", example = "login")]
    purpose: Option<String>,
}

/// `POST /auth/request-otp` body. The address (case-insensitive) is the user id.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RequestOtpRequest {
    #[schema(format = Email, max_length = 254, example = "user@example.com")]
    email: String,
}

/// `POST /auth/verify-otp` body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct VerifyOtpRequest {
    #[schema(format = Email, max_length = 254, example = "user@example.com")]
    email: String,
    /// Exactly `OTP_CODE_LENGTH` digits.
    #[schema(pattern = "^[0-9]{6}$", example = "123456")]
    otp_code: String,
}

/// A 422 from a send route: the request was invalid, or the provider refused the destination.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum SendUnprocessable {
    Validation(ValidationFailure),
    Destination(SendFailure),
}

#[utoipa::path(
    post, path = "/send-code", tag = "codes",
    summary = "Send a code by SMS or email",
    description = "Generates a code, stores only its keyed hash, and delivers it. A new send replaces the user's pending code for the same purpose and resets its attempts.",
    request_body(content = SendCodeRequest, example = json!({"user_id": "user-123", "method": "sms", "phone": "+14155552671", "purpose": "login"})),
    responses(
        (status = 200, description = "Sent", body = SendCodeOk,
         example = json!({"message": "OTP sent successfully via sms", "user_id": "user-123", "method": "sms", "expires_in": 300})),
        (status = 413, description = "Body over 16 KiB", body = PlainError),
        (status = 415, description = "Content-Type is not JSON", body = PlainError),
        (status = 422, description = "Invalid request (`detail` lists every bad field), or `invalid_destination`: the provider refused the number", body = SendUnprocessable),
        (status = 429, description = "`cooldown`: a code was sent too recently", body = SendFailure,
         headers(("Retry-After" = u64, description = "Seconds until a new code may be requested")),
         example = json!({"error": "cooldown", "detail": "A code was sent recently. Please wait 20 seconds before requesting another.", "user_id": "user-123", "retry_after": 20})),
        (status = 502, description = "`delivery_failed`: the provider failed; nothing was kept, retry at once", body = SendFailure),
        (status = 503, description = "`channel_unavailable` or `store_unavailable`", body = SendFailure),
    )
)]
#[allow(dead_code)]
fn send_code() {}

#[utoipa::path(
    post, path = "/verify-code", tag = "codes",
    summary = "Check a code",
    description = "Each call reserves one attempt before the code is compared; the right code succeeds once.",
    request_body(content = VerifyCodeRequest, example = json!({"user_id": "user-123", "passcode": "123456", "purpose": "login"})),
    responses(
        (status = 200, description = "Verified; the code is now used", body = VerifyCodeOk,
         example = json!({"success": true, "message": "OTP verified successfully", "user_id": "user-123"})),
        (status = 400, description = "`invalid_code`, with `attempts_remaining`", body = VerifyCodeFailure,
         example = json!({"success": false, "error": "invalid_code", "detail": "The code is incorrect. Attempts remaining: 2.", "user_id": "user-123", "attempts_remaining": 2})),
        (status = 404, description = "`not_found`: never sent, already used, or removed", body = VerifyCodeFailure),
        (status = 410, description = "`expired`", body = VerifyCodeFailure),
        (status = 413, description = "Body over 16 KiB", body = PlainError),
        (status = 415, description = "Content-Type is not JSON", body = PlainError),
        (status = 422, description = "Invalid request; `detail` lists every bad field", body = ValidationFailure),
        (status = 429, description = "`too_many_attempts`: the code is dead; send a new one", body = VerifyCodeFailure),
        (status = 503, description = "`store_unavailable`", body = VerifyCodeFailure),
    )
)]
#[allow(dead_code)]
fn verify_code() {}

#[utoipa::path(
    post, path = "/auth/request-otp", tag = "email login",
    summary = "Send a code to an email address",
    request_body(content = RequestOtpRequest, example = json!({"email": "user@example.com"})),
    responses(
        (status = 200, description = "Sent", body = AuthOk,
         example = json!({"message": "OTP sent to your email", "email": "user@example.com"})),
        (status = 413, description = "Body over 16 KiB", body = PlainError),
        (status = 415, description = "Content-Type is not JSON", body = PlainError),
        (status = 422, description = "Invalid request, or the provider refused the address", body = SendUnprocessable),
        (status = 429, description = "`cooldown`", body = SendFailure,
         headers(("Retry-After" = u64, description = "Seconds until a new code may be requested"))),
        (status = 502, description = "`delivery_failed`", body = SendFailure),
        (status = 503, description = "`channel_unavailable` or `store_unavailable`", body = SendFailure),
    )
)]
#[allow(dead_code)]
fn request_otp() {}

#[utoipa::path(
    post, path = "/auth/verify-otp", tag = "email login",
    summary = "Check an emailed code",
    request_body(content = VerifyOtpRequest, example = json!({"email": "user@example.com", "otp_code": "123456"})),
    responses(
        (status = 200, description = "Verified", body = AuthOk,
         example = json!({"message": "OTP verified successfully", "email": "user@example.com"})),
        (status = 400, description = "Every verification failure; the reason is in `error`", body = AuthVerifyFailure,
         example = json!({"detail": "Invalid or expired OTP", "error": "invalid_code"})),
        (status = 413, description = "Body over 16 KiB", body = PlainError),
        (status = 415, description = "Content-Type is not JSON", body = PlainError),
        (status = 422, description = "Invalid request; `detail` lists every bad field", body = ValidationFailure),
        (status = 503, description = "`store_unavailable`", body = SendFailure),
    )
)]
#[allow(dead_code)]
fn verify_otp() {}

const DESCRIPTION: &str = "One-time passcodes by SMS or email.

**Security semantics.** Codes are uniform random digits from a CSPRNG; only a keyed HMAC-SHA256 \
of each is stored. A code expires `OTP_TTL_SECONDS` after it is sent (default 300), allows \
`OTP_MAX_ATTEMPTS` guesses (default 3; right or wrong, each reserved atomically before the \
comparison, so concurrent guessing cannot exceed it) and works once: concurrent right answers \
succeed exactly once. A new send replaces the pending code for the same user and purpose and \
resets its attempts; a resend within `OTP_RESEND_COOLDOWN_SECONDS` (default 30) is refused with \
`Retry-After`. A failed delivery leaves no code and costs no cooldown.

**Errors.** Every error body has a sentence in `detail`; 422 lists each bad field FastAPI-style. \
Other paths answer 404 and other methods 405, both `{\"detail\": ...}`.";

#[derive(OpenApi)]
#[openapi(
    info(title = "OTP verification service", version = "1.0.0", description = DESCRIPTION),
    paths(send_code, verify_code, request_otp, verify_otp),
    components(schemas(LocItem, ValidationIssue)),
    tags(
        (name = "codes", description = "Send and check codes for any user id and purpose"),
        (name = "email login", description = "The email-only contract: the address is the user id"),
    )
)]
struct ApiDoc;

/// The document for a running configuration: the passcode pattern follows `OTP_CODE_LENGTH`,
/// and the `Retry-After` headers are marked required (utoipa cannot say so).
pub fn document(policy: &Policy) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
    // utoipa fills `license` from Cargo metadata; this package declares none.
    if let Some(info) = doc["info"].as_object_mut() {
        info.remove("license");
    }
    let digits = format!("^[0-9]{{{}}}$", policy.code_length);
    let example = "1234567890"[..policy.code_length].to_owned();
    for (schema, field) in [
        ("VerifyCodeRequest", "passcode"),
        ("VerifyOtpRequest", "otp_code"),
    ] {
        let property = &mut doc["components"]["schemas"][schema]["properties"][field];
        property["pattern"] = json!(digits);
        property["examples"] = json!([example]);
    }
    for path in ["/send-code", "/auth/request-otp"] {
        doc["paths"][path]["post"]["responses"]["429"]["headers"]["Retry-After"]["required"] =
            json!(true);
    }
    doc
}

/// The document as people read it: top-level sections in the usual order, inner keys sorted
/// (stable diffs).
pub fn document_json(policy: &Policy) -> String {
    #[derive(Serialize)]
    struct Ordered<'a> {
        openapi: &'a Value,
        info: &'a Value,
        tags: &'a Value,
        paths: &'a Value,
        components: &'a Value,
    }
    let doc = document(policy);
    let ordered = Ordered {
        openapi: &doc["openapi"],
        info: &doc["info"],
        tags: &doc["tags"],
        paths: &doc["paths"],
        components: &doc["components"],
    };
    let keys = doc.as_object().map_or(0, |o| o.len());
    assert_eq!(keys, 5, "a new top-level section must be added to Ordered");
    let mut text = serde_json::to_string_pretty(&ordered).expect("serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, PhoneE164, Purpose, UserId, EMAIL_MAX_CHARS, USER_ID_MAX_CHARS};

    fn schema(name: &str) -> Value {
        document(&Policy::default())["components"]["schemas"][name].clone()
    }

    #[test]
    fn request_limits_are_the_validators_limits() {
        let send = schema("SendCodeRequest");
        assert_eq!(
            send["properties"]["user_id"]["maxLength"],
            USER_ID_MAX_CHARS
        );
        assert_eq!(send["properties"]["user_id"]["minLength"], 1);
        assert_eq!(send["properties"]["email"]["maxLength"], EMAIL_MAX_CHARS);
        assert_eq!(send["properties"]["phone"]["pattern"], PHONE_PATTERN);
        assert_eq!(send["properties"]["purpose"]["pattern"], PURPOSE_PATTERN);
        assert_eq!(
            send["properties"]["method"]["$ref"],
            "#/components/schemas/DeliveryMethod"
        );
        assert_eq!(schema("DeliveryMethod")["enum"], json!(["sms", "email"]));
        assert_eq!(send["required"], json!(["user_id", "method"]));
        assert_eq!(
            schema("VerifyCodeRequest")["required"],
            json!(["user_id", "passcode"])
        );
        assert_eq!(
            schema("VerifyOtpRequest")["required"],
            json!(["email", "otp_code"])
        );
        let verify = schema("VerifyCodeRequest");
        assert_eq!(verify["properties"]["purpose"]["pattern"], PURPOSE_PATTERN);
        assert_eq!(verify["properties"]["passcode"]["pattern"], "^[0-9]{6}$");
    }

    #[test]
    fn the_patterns_accept_what_the_validators_accept() {
        // Boundaries of each pattern, checked against the parsers they document.
        for ok in ["+14155552671", "+4915123456789"] {
            assert!(PhoneE164::parse(ok).is_ok());
        }
        for shape_bad in ["+0123456789", "14155552671", "+1234567890123456"] {
            assert!(PhoneE164::parse(shape_bad).is_err());
        }
        assert!(
            Purpose::parse(&"a".repeat(32)).is_ok() && Purpose::parse(&"a".repeat(33)).is_err()
        );
        assert!(
            UserId::parse(&"u".repeat(128)).is_ok() && UserId::parse(&"u".repeat(129)).is_err()
        );
        assert!(Email::parse("user@example.com").is_ok());
    }

    #[test]
    fn passcode_pattern_follows_the_code_length() {
        let doc = document(&Policy {
            code_length: 8,
            ..Policy::default()
        });
        let verify = &doc["components"]["schemas"]["VerifyCodeRequest"]["properties"]["passcode"];
        assert_eq!(verify["pattern"], "^[0-9]{8}$");
        assert_eq!(verify["examples"], json!(["12345678"]));
    }

    #[test]
    fn every_route_documents_its_statuses_and_retry_after() {
        let doc = document(&Policy::default());
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for (path, statuses) in [
            (
                "/send-code",
                vec!["200", "413", "415", "422", "429", "502", "503"],
            ),
            (
                "/verify-code",
                vec![
                    "200", "400", "404", "410", "413", "415", "422", "429", "503",
                ],
            ),
            (
                "/auth/request-otp",
                vec!["200", "413", "415", "422", "429", "502", "503"],
            ),
            (
                "/auth/verify-otp",
                vec!["200", "400", "413", "415", "422", "503"],
            ),
        ] {
            let responses = doc["paths"][path]["post"]["responses"].as_object().unwrap();
            let documented: Vec<&str> = responses.keys().map(String::as_str).collect();
            assert_eq!(documented, statuses, "{path}");
        }
        let header =
            &doc["paths"]["/send-code"]["post"]["responses"]["429"]["headers"]["Retry-After"];
        assert_eq!(header["required"], true);
        assert!(doc["info"]["description"]
            .as_str()
            .unwrap()
            .contains("works once"));
    }
}

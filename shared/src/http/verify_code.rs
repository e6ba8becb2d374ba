//! `POST /verify-code`: checks a code for any user id and purpose; on success, says where the
//! code had been sent. Optionally only accepts a code sent to a given phone or address.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::auth::{Caller, Verifying};
use super::body::{Check, Contract, Field, Valid, ValidationIssue};
use super::reply::ReplyBody;
use super::sending::{locked_detail, STORE_UNAVAILABLE};
use crate::domain::{Destination, Email, FieldError, Passcode, PhoneE164, Purpose, Space, UserId};
use crate::engine::{Engine, VerifyOutcome, VerifyRequest};
use crate::field;
use crate::settings::Policy;
use crate::store::RecordKey;
use crate::token::Subject;

pub const PATH: &str = "/verify-code";

/// `POST /verify-code` body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!(
    {"user_id": "user-123", "passcode": "123456", "purpose": "login"})))]
pub struct VerifyCodeRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::user_id, required = true))]
    pub user_id: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::passcode, required = true))]
    pub passcode: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::purpose, required = false))]
    pub purpose: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::expected_phone, required = false))]
    pub phone: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::expected_email, required = false))]
    pub email: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::client_ip_of_guess, required = false))]
    pub client_ip: Field,
}

impl Contract for VerifyCodeRequest {
    type Domain = VerifyRequest;

    fn into_domain(self, policy: &Policy) -> Result<VerifyRequest, Vec<ValidationIssue>> {
        let body = self;
        let mut check = Check::default();
        let user_id = field!(check, body.user_id, required, UserId::parse);
        let passcode = field!(check, body.passcode, required, |raw| Passcode::parse(
            raw,
            policy.code_length
        ));
        let purpose = field!(check, body.purpose, optional, Purpose::parse);
        let phone = field!(check, body.phone, optional, PhoneE164::parse_shape);
        let email = field!(check, body.email, optional, Email::parse);
        let client = field!(check, body.client_ip, optional, super::send_code::client_ip);
        if body.phone != Field::Absent && body.email != Field::Absent {
            check.issue(
                "email",
                FieldError::new("value_error", "Give phone or email, not both"),
            );
        }
        check.finish(|| {
            let destination = match (phone, email) {
                (Some(phone), _) => Some(Destination::Sms(phone)),
                (None, Some(email)) => Some(Destination::Email(email)),
                (None, None) => None,
            };
            Some(VerifyRequest {
                key: RecordKey::new(Space::Backend, purpose.unwrap_or_default(), user_id?),
                passcode: passcode?,
                destination,
                client,
                caller: None,
            })
        })
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyCodeOk {
    pub success: bool,
    pub message: &'static str,
    pub user_id: String,
    /// How the code had been sent: `sms` or `email`.
    pub channel: &'static str,
    /// Where the code had been sent, masked: `+1******2671`, `a***@example.com`. This is what
    /// the success proves the user can receive.
    pub destination: String,
    /// A signed token saying so (EdDSA JWS: `sub` the user id, `purpose`, `channel`, `exp`),
    /// checkable with the keys at `/.well-known/jwks.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_token: Option<String>,
}

impl ReplyBody for VerifyCodeOk {}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyCodeFailure {
    pub success: bool,
    pub error: &'static str,
    pub detail: String,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_remaining: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl ReplyBody for VerifyCodeFailure {
    fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }
}

crate::outcomes! {
    pub enum VerifyCodeReply {
        Verified(VerifyCodeOk) = 200,
            "Verified; the code is now used. `channel` and the masked `destination` say what \
             was proven";
        WrongCode(VerifyCodeFailure) = 400,
            "`invalid_code`, with `attempts_remaining` (the fewer of the code's attempts and \
             the user's wrong guesses before lockout)";
        NotFound(VerifyCodeFailure) = 404,
            "`not_found`: never sent, already used, or removed";
        WrongDestination(VerifyCodeFailure) = 409,
            "`destination_mismatch`: the code was not sent to the `phone`/`email` given; the \
             guess was not counted";
        Expired(VerifyCodeFailure) = 410, "`expired`";
        TooManyAttempts(VerifyCodeFailure) = 429,
            "`too_many_attempts`: the code is dead; send a new one";
        Locked(VerifyCodeFailure) = 429,
            "`locked`: too many wrong guesses for this user across codes; nothing is checked or \
             sent until `retry_after`", retry_after;
        Unavailable(VerifyCodeFailure) = 503, "`store_unavailable`";
    }
}

pub async fn handle(
    State(engine): State<Arc<Engine>>,
    caller: Caller<Verifying>,
    Valid(mut request): Valid<VerifyCodeRequest>,
) -> VerifyCodeReply {
    request.caller = Some(caller.name);
    let outcome = engine.verify(&request).await;
    let user_id = request.key.user_id.as_str().to_owned();
    let failure = |error, detail: &str| VerifyCodeFailure {
        success: false,
        error,
        detail: detail.to_owned(),
        user_id: user_id.clone(),
        attempts_remaining: None,
        retry_after: None,
    };
    match outcome {
        Ok(VerifyOutcome::Verified { channel, sent_to }) => {
            let verification_token = engine.verification_token(Subject {
                space: request.key.space,
                sub: &user_id,
                purpose: request.key.purpose.as_str(),
                channel: channel.as_str(),
                email: None,
            });
            VerifyCodeReply::Verified(VerifyCodeOk {
                success: true,
                message: "OTP verified successfully",
                user_id,
                channel: channel.as_str(),
                destination: sent_to,
                verification_token,
            })
        }
        Ok(VerifyOutcome::WrongCode { attempts_remaining }) => {
            VerifyCodeReply::WrongCode(VerifyCodeFailure {
                attempts_remaining: Some(attempts_remaining),
                ..failure(
                    "invalid_code",
                    &format!("The code is incorrect. Attempts remaining: {attempts_remaining}."),
                )
            })
        }
        // Names the purpose looked under: a misspelt field ("purpse") sends and verifies under
        // `default`, and this is where the caller finds out.
        Ok(VerifyOutcome::NotFound) => VerifyCodeReply::NotFound(failure(
            "not_found",
            &format!(
                "There is no pending code for this user with purpose \"{}\". Request a new \
                 code (a code verifies only under the purpose it was sent for).",
                request.key.purpose.as_str()
            ),
        )),
        Ok(VerifyOutcome::WrongDestination) => VerifyCodeReply::WrongDestination(failure(
            "destination_mismatch",
            "The pending code was not sent to this phone number or address.",
        )),
        Ok(VerifyOutcome::Expired) => VerifyCodeReply::Expired(failure(
            "expired",
            "The code has expired. Request a new code.",
        )),
        Ok(VerifyOutcome::TooManyAttempts) => VerifyCodeReply::TooManyAttempts(failure(
            "too_many_attempts",
            "Too many incorrect attempts. Request a new code.",
        )),
        Ok(VerifyOutcome::Locked { retry_after }) => VerifyCodeReply::Locked(VerifyCodeFailure {
            retry_after: Some(retry_after),
            ..failure("locked", &locked_detail(retry_after))
        }),
        Err(_) => VerifyCodeReply::Unavailable(failure("store_unavailable", STORE_UNAVAILABLE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::parse_object;

    fn parse(body: &[u8], length: usize) -> Result<VerifyRequest, Vec<ValidationIssue>> {
        let policy = Policy {
            code_length: length,
            ..Policy::default()
        };
        parse_object::<VerifyCodeRequest>(body)?.into_domain(&policy)
    }

    #[test]
    fn wrong_types_are_string_type_errors_for_each_field() {
        let issues = parse(br#"{"user_id": 5, "passcode": 123456}"#, 6)
            .err()
            .unwrap();
        assert_eq!(issues.len(), 2);
        assert!(issues.iter().all(|i| i.kind == "string_type"));
    }

    #[test]
    fn the_passcode_has_the_configured_length() {
        assert!(parse(br#"{"user_id": "u", "passcode": "12345678"}"#, 8).is_ok());
        let issues = parse(br#"{"user_id": "u", "passcode": "123456"}"#, 8)
            .err()
            .unwrap();
        assert_eq!(issues[0].msg, "String should match pattern '^[0-9]{8}$'");
    }

    #[test]
    fn an_expected_destination_is_one_valid_phone_or_address() {
        let request = parse(
            br#"{"user_id": "u", "passcode": "123456", "phone": "+14155552671"}"#,
            6,
        )
        .unwrap();
        assert_eq!(request.key.space, Space::Backend);
        assert_eq!(request.destination.unwrap().address(), "+14155552671");
        let issues = parse(
            br#"{"user_id": "u", "passcode": "123456", "phone": "+14155552671", "email": "a@example.com"}"#,
            6,
        )
        .err()
        .unwrap();
        assert_eq!(issues[0].msg, "Give phone or email, not both");
        assert!(parse(
            br#"{"user_id": "u", "passcode": "123456", "email": "x"}"#,
            6
        )
        .is_err());
    }
}

//! `POST /verify-code`: checks a code for any user id and purpose.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::body::{Check, Contract, Field, Valid, ValidationIssue};
use super::reply::ReplyBody;
use super::sending::STORE_UNAVAILABLE;
use crate::domain::{Passcode, Purpose, UserId};
use crate::engine::{Engine, VerifyOutcome};
use crate::field;
use crate::settings::Policy;
use crate::store::RecordKey;

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
}

/// Whose code, and the guess.
pub struct Guess {
    pub key: RecordKey,
    pub passcode: Passcode,
}

impl Contract for VerifyCodeRequest {
    type Domain = Guess;

    fn into_domain(self, policy: &Policy) -> Result<Guess, Vec<ValidationIssue>> {
        let body = self;
        let mut check = Check::default();
        let user_id = field!(check, body.user_id, required, UserId::parse);
        let passcode = field!(check, body.passcode, required, |raw| Passcode::parse(
            raw,
            policy.code_length
        ));
        let purpose = field!(check, body.purpose, optional, Purpose::parse);
        check.finish(|| {
            Some(Guess {
                key: RecordKey::new(purpose.unwrap_or_default(), user_id?),
                passcode: passcode?,
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
}

impl ReplyBody for VerifyCodeFailure {}

crate::outcomes! {
    pub enum VerifyCodeReply {
        Verified(VerifyCodeOk) = 200, "Verified; the code is now used";
        WrongCode(VerifyCodeFailure) = 400, "`invalid_code`, with `attempts_remaining`";
        NotFound(VerifyCodeFailure) = 404,
            "`not_found`: never sent, already used, or removed";
        Expired(VerifyCodeFailure) = 410, "`expired`";
        TooManyAttempts(VerifyCodeFailure) = 429,
            "`too_many_attempts`: the code is dead; send a new one";
        Unavailable(VerifyCodeFailure) = 503, "`store_unavailable`";
    }
}

pub async fn handle(
    State(engine): State<Arc<Engine>>,
    Valid(guess): Valid<VerifyCodeRequest>,
) -> VerifyCodeReply {
    let outcome = engine.verify(&guess.key, &guess.passcode).await;
    let user_id = guess.key.user_id.as_str().to_owned();
    let failure = |error, detail: &str, attempts_remaining| VerifyCodeFailure {
        success: false,
        error,
        detail: detail.to_owned(),
        user_id: user_id.clone(),
        attempts_remaining,
    };
    match outcome {
        Ok(VerifyOutcome::Verified) => VerifyCodeReply::Verified(VerifyCodeOk {
            success: true,
            message: "OTP verified successfully",
            user_id,
        }),
        Ok(VerifyOutcome::WrongCode { attempts_remaining }) => VerifyCodeReply::WrongCode(failure(
            "invalid_code",
            &format!("The code is incorrect. Attempts remaining: {attempts_remaining}."),
            Some(attempts_remaining),
        )),
        Ok(VerifyOutcome::NotFound) => VerifyCodeReply::NotFound(failure(
            "not_found",
            "There is no pending code for this user. Request a new code.",
            None,
        )),
        Ok(VerifyOutcome::Expired) => VerifyCodeReply::Expired(failure(
            "expired",
            "The code has expired. Request a new code.",
            None,
        )),
        Ok(VerifyOutcome::TooManyAttempts) => VerifyCodeReply::TooManyAttempts(failure(
            "too_many_attempts",
            "Too many incorrect attempts. Request a new code.",
            None,
        )),
        Err(_) => {
            VerifyCodeReply::Unavailable(failure("store_unavailable", STORE_UNAVAILABLE, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::parse_object;

    fn parse(body: &[u8], length: usize) -> Result<Guess, Vec<ValidationIssue>> {
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
}

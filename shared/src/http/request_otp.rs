//! `POST /auth/request-otp`: the email-only contract, where the address is the user id.

use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::body::{Check, Contract, Field, Valid, ValidationIssue};
use super::client::ClientAddress;
use super::reply::ReplyBody;
use super::sending::{SendReply, Subject};
use crate::domain::{Destination, Email, Purpose, Space, UserId};
use crate::engine::{Engine, SendRequest};
use crate::field;
use crate::settings::Policy;
use crate::store::RecordKey;

pub const PATH: &str = "/auth/request-otp";

/// `POST /auth/request-otp` body. The address (case-insensitive) is the user id.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"email": "user@example.com"})))]
pub struct RequestOtpRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::email, required = true))]
    pub email: Field,
}

/// The address as given (echoed back) and the send it asks for.
pub struct EmailSend {
    pub email: Email,
    pub send: SendRequest,
}

impl Contract for RequestOtpRequest {
    type Domain = EmailSend;

    fn into_domain(self, _: &Policy) -> Result<EmailSend, Vec<ValidationIssue>> {
        let body = self;
        let mut check = Check::default();
        let email = field!(check, body.email, required, Email::parse);
        check.finish(|| {
            let email = email?;
            let send = SendRequest {
                key: RecordKey::new(
                    Space::Public,
                    Purpose::default(),
                    UserId::from_email(&email),
                ),
                destination: Destination::Email(email.clone()),
                client: None,
                caller: None,
            };
            Some(EmailSend { email, send })
        })
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthOk {
    pub message: &'static str,
    pub email: String,
}

impl ReplyBody for AuthOk {}

pub async fn handle(
    State(engine): State<Arc<Engine>>,
    ClientAddress(client): ClientAddress,
    Valid(mut request): Valid<RequestOtpRequest>,
) -> SendReply<AuthOk> {
    let email = request.email.as_str().to_owned();
    request.send.client = client;
    match engine.send(request.send).await {
        Ok(_) => SendReply::Sent(AuthOk {
            message: "OTP sent to your email",
            email,
        }),
        Err(error) => SendReply::failed(error, Subject::Email(email)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::parse_object;

    #[test]
    fn the_lowercased_address_is_the_user_id() {
        let parsed = parse_object::<RequestOtpRequest>(br#"{"email": "Bob@Example.com"}"#)
            .unwrap()
            .into_domain(&Policy::default())
            .unwrap();
        assert_eq!(parsed.email.as_str(), "Bob@Example.com");
        assert_eq!(parsed.send.key.user_id.as_str(), "bob@example.com");
        assert_eq!(parsed.send.key.purpose.as_str(), "default");
    }
}

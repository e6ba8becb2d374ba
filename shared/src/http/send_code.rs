//! `POST /send-code`: a code by SMS or email for any user id and purpose.

use std::sync::Arc;

use axum::extract::State;
use axum::Extension;
use serde::{Deserialize, Serialize};

use super::auth::{Caller, Sending};
use super::body::{Check, Contract, Field, Flag, Valid, ValidationIssue};
use super::reply::ReplyBody;
use super::sending::{SendReply, Subject};
use crate::domain::{Channel, Destination, Email, FieldError, PhoneE164, Purpose, Space, UserId};
use crate::engine::{Engine, SendRequest};
use crate::field;
use crate::limits::ClientIp;
use crate::locale::Locale;
use crate::receipts::PublicOrigin;
use crate::settings::Policy;
use crate::store::RecordKey;

pub const PATH: &str = "/send-code";

/// `POST /send-code` body. Unknown fields are ignored; `null` counts as absent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!(
    {"user_id": "user-123", "method": "sms", "phone": "+14155552671", "purpose": "login"})))]
pub struct SendCodeRequest {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::user_id, required = true))]
    pub user_id: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::method, required = true))]
    pub method: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::phone, required = false))]
    pub phone: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::email_for_method, required = false))]
    pub email: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::purpose, required = false))]
    pub purpose: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::client_ip, required = false))]
    pub client_ip: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::locale, required = false))]
    pub locale: Field,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::trusted, required = false))]
    pub trusted: Flag,
}

/// The end user's address as a backend reports it (`client_ip` of the backend routes).
pub(crate) fn client_ip(raw: &str) -> Result<ClientIp, FieldError> {
    ClientIp::parse(raw).ok_or_else(|| {
        FieldError::new(
            "value_error",
            "Value error, client_ip must be an IPv4 or IPv6 address, e.g. 203.0.113.7",
        )
    })
}

fn channel(raw: &str) -> Result<Channel, FieldError> {
    Channel::parse(raw).ok_or_else(|| {
        FieldError::new(
            "enum",
            "Input should be 'sms', 'whatsapp', 'voice' or 'email'",
        )
    })
}

impl Contract for SendCodeRequest {
    type Domain = SendRequest;

    fn into_domain(self, _: &Policy) -> Result<SendRequest, Vec<ValidationIssue>> {
        let body = self;
        let mut check = Check::default();
        let user_id = field!(check, body.user_id, required, UserId::parse);
        let method = field!(check, body.method, required, channel);
        let phone = field!(check, body.phone, optional, PhoneE164::parse);
        let email = field!(check, body.email, optional, Email::parse);
        let purpose = field!(check, body.purpose, optional, Purpose::parse);
        let client = field!(check, body.client_ip, optional, client_ip);
        let locale = field!(check, body.locale, optional, Locale::parse);
        let trusted = check.flag("trusted", body.trusted);
        // The address the method needs must be there (and valid, which was checked above).
        let (needed, given) = match method {
            Some(Channel::Email) => ("email", &body.email),
            Some(_) => ("phone", &body.phone),
            None => ("", &Field::NotText),
        };
        if *given == Field::Absent {
            let method = method.map_or("", Channel::as_str);
            check.issue(
                needed,
                FieldError::new(
                    "missing",
                    format!("Field required when method is '{method}'"),
                ),
            );
        }
        check.finish(|| {
            let destination = match method? {
                Channel::Email => Destination::Email(email?),
                phone_channel => Destination::phone(phone_channel, phone?)?,
            };
            Some(SendRequest {
                key: RecordKey::new(Space::Backend, purpose.unwrap_or_default(), user_id?),
                destination,
                client,
                caller: None,
                locale: locale.unwrap_or_default(),
                trusted: trusted?,
                origin: None,
            })
        })
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendCodeOk {
    pub message: String,
    pub user_id: String,
    pub method: &'static str,
    pub expires_in: u64,
    /// This send's verification: look it up at `GET /verifications/{verification_id}`, cancel
    /// it at `POST /verifications/{verification_id}/cancel`.
    #[cfg_attr(feature = "openapi", schema(example = "VEq3Zp0d8yPBn6Uu7ZkG4fQw"))]
    pub verification_id: String,
}

impl ReplyBody for SendCodeOk {}

pub async fn handle(
    State(engine): State<Arc<Engine>>,
    caller: Caller<Sending>,
    origin: Option<Extension<PublicOrigin>>,
    Valid(mut request): Valid<SendCodeRequest>,
) -> SendReply<SendCodeOk> {
    let user_id = request.key.user_id.as_str().to_owned();
    request.caller = Some(caller.name);
    request.origin = origin.map(|Extension(origin)| origin);
    match engine.send(request).await {
        Ok(sent) => SendReply::Sent(SendCodeOk {
            message: format!("OTP sent successfully via {}", sent.channel.as_str()),
            user_id,
            method: sent.channel.as_str(),
            expires_in: sent.expires_in,
            verification_id: sent.verification_id.as_str().to_owned(),
        }),
        Err(error) => SendReply::failed(error, Subject::UserId(user_id)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::http::body::parse_object;

    fn parse(body: serde_json::Value) -> Result<SendRequest, Vec<ValidationIssue>> {
        parse_object::<SendCodeRequest>(body.to_string().as_bytes())?
            .into_domain(&Policy::default())
    }

    fn locs(issues: &[ValidationIssue]) -> Vec<String> {
        issues
            .iter()
            .map(|i| i.loc.last().unwrap().to_string().replace('"', ""))
            .collect()
    }

    #[test]
    fn every_bad_field_is_reported() {
        let issues = parse(
            json!({"user_id": "", "method": "fax", "phone": "123", "email": "x", "purpose": "A"}),
        )
        .unwrap_err();
        assert_eq!(
            locs(&issues),
            ["user_id", "method", "phone", "email", "purpose"]
        );
        assert_eq!(issues[1].kind, "enum");
    }

    #[test]
    fn the_address_of_the_method_is_needed() {
        let issues = parse(json!({"user_id": "u", "method": "sms"})).unwrap_err();
        assert_eq!(locs(&issues), ["phone"]);
        assert_eq!(issues[0].kind, "missing");
        let issues = parse(json!({"user_id": "u", "method": "email", "phone": null})).unwrap_err();
        assert_eq!(locs(&issues), ["email"]);
    }

    #[test]
    fn the_client_ip_is_optional_and_checked() {
        let body = |ip: &str| json!({"user_id": "u", "method": "sms", "phone": "+14155552671", "client_ip": ip});
        assert!(parse(body("203.0.113.7")).unwrap().client.is_some());
        assert!(parse(body("2001:db8::1")).unwrap().client.is_some());
        let issues = parse(body("203.0.113.300")).unwrap_err();
        assert_eq!(locs(&issues), ["client_ip"]);
        assert!(
            parse(json!({"user_id": "u", "method": "sms", "phone": "+14155552671"}))
                .unwrap()
                .client
                .is_none()
        );
    }

    #[test]
    fn builds_the_domain_request() {
        let request = parse(
            json!({"user_id": "u1", "method": "sms", "phone": "+14155552671", "purpose": "login"}),
        )
        .unwrap();
        assert_eq!(request.key.purpose.as_str(), "login");
        assert_eq!(request.key.user_id.as_str(), "u1");
        assert_eq!(request.destination.address(), "+14155552671");
        let request =
            parse(json!({"user_id": "u1", "method": "email", "email": "a@example.com"})).unwrap();
        assert_eq!(request.key.purpose.as_str(), "default");
    }
}

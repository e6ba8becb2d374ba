//! Request bodies → domain requests. Every bad field is reported at once, in the shape FastAPI
//! clients already parse: `{"detail": [{"loc": ["body", "phone"], "msg": "...", "type": "..."}]}`.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::{
    Channel, Destination, Email, FieldError, Passcode, PhoneE164, Purpose, UserId,
};
use crate::engine::SendRequest;
use crate::store::RecordKey;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidationIssue {
    /// Where the problem is: `["body"]`, `["body", "<field>"]`, or `["body", <byte offset>]`
    /// for JSON syntax errors.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<LocItem>))]
    pub loc: Vec<Value>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl ValidationIssue {
    fn body(kind: &'static str, msg: impl Into<String>) -> Self {
        Self {
            loc: vec![Value::from("body")],
            msg: msg.into(),
            kind,
        }
    }

    fn field(field: &str, error: FieldError) -> Self {
        Self {
            loc: vec![Value::from("body"), Value::from(field)],
            msg: error.msg,
            kind: error.kind,
        }
    }
}

/// One element of a `loc` path: a name or a position.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used
#[serde(untagged)]
pub enum LocItem {
    Name(String),
    Position(u64),
}

pub type Issues = Vec<ValidationIssue>;

/// The body as a JSON object, or the one issue that says why it is not one.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, Issues> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(vec![ValidationIssue::body("missing", "Field required")]);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(vec![ValidationIssue::body(
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
        )]),
        Err(error) => {
            let position = byte_offset(body, error.line(), error.column());
            Err(vec![ValidationIssue {
                loc: vec![Value::from("body"), Value::from(position)],
                msg: "JSON decode error".to_owned(),
                kind: "json_invalid",
            }])
        }
    }
}

/// serde_json reports 1-based line and column; FastAPI reports a position in the document.
fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let line_start: usize = body
        .split(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    (line_start + column.saturating_sub(1)).min(body.len())
}

/// Reads fields one by one, collecting every issue instead of stopping at the first.
struct Fields<'a> {
    object: &'a Map<String, Value>,
    issues: Issues,
}

impl<'a> Fields<'a> {
    fn new(object: &'a Map<String, Value>) -> Self {
        Self {
            object,
            issues: Vec::new(),
        }
    }

    /// A string field; absent and `null` both count as not given.
    fn string(&mut self, name: &str, required: bool) -> Option<&'a str> {
        match self.object.get(name) {
            None | Some(Value::Null) => {
                if required {
                    self.issue(name, FieldError::new("missing", "Field required"));
                }
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.issue(
                    name,
                    FieldError::new("string_type", "Input should be a valid string"),
                );
                None
            }
        }
    }

    fn parsed<T>(
        &mut self,
        name: &str,
        required: bool,
        parse: impl FnOnce(&str) -> Result<T, FieldError>,
    ) -> Option<T> {
        let raw = self.string(name, required)?;
        parse(raw).map_err(|e| self.issue(name, e)).ok()
    }

    fn issue(&mut self, name: &str, error: FieldError) {
        self.issues.push(ValidationIssue::field(name, error));
    }

    fn purpose(&mut self) -> Option<Purpose> {
        match self.object.get("purpose") {
            None | Some(Value::Null) => Some(Purpose::default()),
            Some(_) => self.parsed("purpose", false, Purpose::parse),
        }
    }

    /// `Ok` only when no issue was found; the closure runs only then.
    fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, Issues> {
        if self.issues.is_empty() {
            if let Some(value) = build() {
                return Ok(value);
            }
        }
        Err(self.issues)
    }
}

fn channel(raw: &str) -> Result<Channel, FieldError> {
    Channel::parse(raw).ok_or_else(|| FieldError::new("enum", "Input should be 'sms' or 'email'"))
}

/// `POST /send-code`.
pub fn send_code(body: &[u8]) -> Result<SendRequest, Issues> {
    let object = json_object(body)?;
    let mut fields = Fields::new(&object);
    let user_id = fields.parsed("user_id", true, UserId::parse);
    let method = fields.parsed("method", true, channel);
    let phone = fields.parsed("phone", false, PhoneE164::parse);
    let email = fields.parsed("email", false, Email::parse);
    let purpose = fields.purpose();
    // The address the method needs must be there (and valid, which `parsed` checked above).
    let needed = match method {
        Some(Channel::Sms) => Some("phone"),
        Some(Channel::Email) => Some("email"),
        None => None,
    };
    if let Some(name) = needed {
        if matches!(object.get(name), None | Some(Value::Null)) {
            let method = if name == "phone" { "sms" } else { "email" };
            fields.issue(
                name,
                FieldError::new(
                    "missing",
                    format!("Field required when method is '{method}'"),
                ),
            );
        }
    }
    fields.finish(|| {
        let destination = match method? {
            Channel::Sms => Destination::Sms(phone?),
            Channel::Email => Destination::Email(email?),
        };
        Some(SendRequest {
            key: RecordKey::new(purpose?, user_id?),
            destination,
        })
    })
}

/// `POST /verify-code`.
pub fn verify_code(body: &[u8], code_length: usize) -> Result<(RecordKey, Passcode), Issues> {
    let object = json_object(body)?;
    let mut fields = Fields::new(&object);
    let user_id = fields.parsed("user_id", true, UserId::parse);
    let passcode = fields.parsed("passcode", true, |raw| Passcode::parse(raw, code_length));
    let purpose = fields.purpose();
    fields.finish(|| Some((RecordKey::new(purpose?, user_id?), passcode?)))
}

/// `POST /auth/request-otp`: the address is both the destination and the user id.
pub fn request_otp(body: &[u8]) -> Result<(Email, SendRequest), Issues> {
    let object = json_object(body)?;
    let mut fields = Fields::new(&object);
    let email = fields.parsed("email", true, Email::parse);
    fields.finish(|| {
        let email = email?;
        let key = RecordKey::new(Purpose::default(), UserId::from_email(&email));
        let request = SendRequest {
            key,
            destination: Destination::Email(email.clone()),
        };
        Some((email, request))
    })
}

/// `POST /auth/verify-otp`.
pub fn verify_otp(body: &[u8], code_length: usize) -> Result<(Email, RecordKey, Passcode), Issues> {
    let object = json_object(body)?;
    let mut fields = Fields::new(&object);
    let email = fields.parsed("email", true, Email::parse);
    let passcode = fields.parsed("otp_code", true, |raw| Passcode::parse(raw, code_length));
    fields.finish(|| {
        let email = email?;
        let key = RecordKey::new(Purpose::default(), UserId::from_email(&email));
        Some((email, key, passcode?))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn locs(issues: &Issues) -> Vec<String> {
        issues
            .iter()
            .map(|i| i.loc.last().unwrap().to_string().replace('"', ""))
            .collect()
    }

    #[test]
    fn send_code_reports_every_bad_field() {
        let body =
            json!({"user_id": "", "method": "fax", "phone": "123", "email": "x", "purpose": "A"});
        let issues = send_code(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            locs(&issues),
            ["user_id", "method", "phone", "email", "purpose"]
        );
        assert_eq!(issues[1].kind, "enum");
    }

    #[test]
    fn send_code_needs_the_address_of_its_method() {
        let issues = send_code(br#"{"user_id": "u", "method": "sms"}"#).unwrap_err();
        assert_eq!(locs(&issues), ["phone"]);
        assert_eq!(issues[0].kind, "missing");
        let issues =
            send_code(br#"{"user_id": "u", "method": "email", "phone": null}"#).unwrap_err();
        assert_eq!(locs(&issues), ["email"]);
    }

    #[test]
    fn send_code_builds_the_domain_request() {
        let request = send_code(
            br#"{"user_id": "u1", "method": "sms", "phone": "+14155552671", "purpose": "login"}"#,
        )
        .unwrap();
        assert_eq!(request.key.storage_key(), "login#u1");
        assert_eq!(request.destination.address(), "+14155552671");
        let request =
            send_code(br#"{"user_id": "u1", "method": "email", "email": "a@example.com"}"#)
                .unwrap();
        assert_eq!(request.key.purpose.as_str(), "default");
    }

    #[test]
    fn wrong_types_are_string_type_errors() {
        let issues = verify_code(br#"{"user_id": 5, "passcode": 123456}"#, 6).unwrap_err();
        assert_eq!(locs(&issues), ["user_id", "passcode"]);
        assert!(issues.iter().all(|i| i.kind == "string_type"));
    }

    #[test]
    fn body_shape_errors() {
        assert_eq!(json_object(b"").unwrap_err()[0].kind, "missing");
        assert_eq!(
            json_object(b"[1]").unwrap_err()[0].kind,
            "model_attributes_type"
        );
        let invalid = json_object(b"{\"a\":\n  tru}").unwrap_err();
        assert_eq!(invalid[0].kind, "json_invalid");
        assert_eq!(invalid[0].loc, vec![json!("body"), json!(11)]);
    }

    #[test]
    fn auth_routes_use_the_lowercased_address_as_user_id() {
        let (email, request) = request_otp(br#"{"email": "Bob@Example.com"}"#).unwrap();
        assert_eq!(email.as_str(), "Bob@Example.com");
        assert_eq!(request.key.storage_key(), "default#bob@example.com");
        let issues =
            verify_otp(br#"{"email": "bob@example.com", "otp_code": "12"}"#, 6).unwrap_err();
        assert_eq!(locs(&issues), ["otp_code"]);
    }
}

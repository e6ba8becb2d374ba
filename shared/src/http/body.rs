//! Request bodies: the extractor that reads, parses and validates a body into a domain request
//! at the edge. Every bad field is reported at once, in the shape FastAPI clients already
//! parse: `{"detail": [{"loc": ["body", "phone"], "msg": "...", "type": "..."}]}`.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::reply::{PlainError, ReplyBody};
use crate::domain::FieldError;
use crate::engine::Engine;
use crate::settings::Policy;

/// Larger bodies are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A request body type: lenient JSON (every field a [`Field`]) that turns into a domain request.
pub trait Contract: DeserializeOwned {
    type Domain;
    /// Called by browsers: the body must say it is JSON. A body without that header (or as a
    /// form or text) is one any web page can make a visitor's browser send without a CORS
    /// preflight, so it is refused (415) instead of read as JSON.
    const FROM_BROWSERS: bool = false;
    fn into_domain(self, policy: &Policy) -> Result<Self::Domain, Vec<ValidationIssue>>;
}

/// A body field as sent. It deserialises from any JSON value, so that one field of the wrong
/// type never hides the others: the domain parse then names each bad field.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum Field {
    /// Missing or `null`.
    #[default]
    Absent,
    Text(String),
    /// A number, boolean, array or object where a string belongs.
    NotText,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Null => Field::Absent,
            Value::String(text) => Field::Text(text),
            _ => Field::NotText,
        })
    }
}

/// A boolean body field as sent: like [`Field`], any JSON value deserialises, and the domain
/// parse names a wrong type.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// Missing or `null`.
    #[default]
    Absent,
    Given(bool),
    NotBool,
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Null => Flag::Absent,
            Value::Bool(value) => Flag::Given(value),
            _ => Flag::NotBool,
        })
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidationIssue {
    /// Where the problem is: `["body"]`, `["body", "<field>"]`, or `["body", <byte offset>]`
    /// for JSON syntax errors.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::http::schema::loc))]
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

    pub fn field(field: &str, error: FieldError) -> Self {
        Self {
            loc: vec![Value::from("body"), Value::from(field)],
            msg: error.msg,
            kind: error.kind,
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidationFailure {
    pub detail: Vec<ValidationIssue>,
}

impl ReplyBody for ValidationFailure {}

crate::outcomes! {
    /// Why a body was refused before the route ran.
    #[derive(Debug)]
    pub enum BodyRejection {
        TooLarge(PlainError) = 413, "Body over 16 KiB";
        NotJson(PlainError) = 415, "Content-Type is not JSON";
        Invalid(ValidationFailure) = 422, "Invalid request; `detail` lists every bad field";
    }
}

impl BodyRejection {
    fn too_large() -> Self {
        Self::TooLarge(PlainError::new(format!(
            "Request body is too large: the limit is {MAX_BODY_BYTES} bytes"
        )))
    }

    fn issues(detail: Vec<ValidationIssue>) -> Self {
        Self::Invalid(ValidationFailure { detail })
    }
}

/// Collects the issues of one body while its fields are parsed, so all are reported together.
/// Use with [`field!`](crate::field) so the name reported is the struct field's own.
#[derive(Default)]
pub struct Check {
    issues: Vec<ValidationIssue>,
}

impl Check {
    /// The field's value parsed, or `None` (an issue is recorded when it was required, of the
    /// wrong type, or did not parse).
    pub fn parse<T>(
        &mut self,
        name: &str,
        field: &Field,
        required: bool,
        parse: impl FnOnce(&str) -> Result<T, FieldError>,
    ) -> Option<T> {
        match field {
            Field::Absent => {
                if required {
                    self.issue(name, FieldError::new("missing", "Field required"));
                }
                None
            }
            Field::NotText => {
                self.issue(
                    name,
                    FieldError::new("string_type", "Input should be a valid string"),
                );
                None
            }
            Field::Text(text) => parse(text).map_err(|e| self.issue(name, e)).ok(),
        }
    }

    /// A boolean field's value (`false` when absent), or `None` with an issue when it is not a
    /// boolean.
    pub fn flag(&mut self, name: &str, flag: Flag) -> Option<bool> {
        match flag {
            Flag::Absent => Some(false),
            Flag::Given(value) => Some(value),
            Flag::NotBool => {
                self.issue(
                    name,
                    FieldError::new("bool_type", "Input should be a valid boolean"),
                );
                None
            }
        }
    }

    pub fn issue(&mut self, name: &str, error: FieldError) {
        self.issues.push(ValidationIssue::field(name, error));
    }

    /// `Ok` only when no issue was found; `build` runs only then.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, Vec<ValidationIssue>> {
        if self.issues.is_empty() {
            if let Some(value) = build() {
                return Ok(value);
            }
        }
        Err(self.issues)
    }
}

/// `field!(check, body.user_id, required, UserId::parse)`: parses a body field, reporting it
/// under the struct field's own name.
#[macro_export]
macro_rules! field {
    ($check:ident, $body:ident . $name:ident, required, $parse:expr) => {
        $check.parse(stringify!($name), &$body.$name, true, $parse)
    };
    ($check:ident, $body:ident . $name:ident, optional, $parse:expr) => {
        $check.parse(stringify!($name), &$body.$name, false, $parse)
    };
}

/// JSON is what we take; a missing Content-Type is accepted as JSON, as FastAPI does, except
/// where `required` (the browser routes).
fn is_json(content_type: Option<&str>, required: bool) -> bool {
    let Some(value) = content_type else {
        return !required;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON object into `T`, or says why the body is not one.
pub fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, Vec<ValidationIssue>> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_none() {
        return Err(vec![ValidationIssue::body("missing", "Field required")]);
    }
    if first == Some(&b'{') {
        match serde_json::from_slice::<T>(body) {
            Ok(parsed) => return Ok(parsed),
            // Every field is lenient, so a data error can only be a repeated key: JSON says the
            // last one counts, which the generic path below does.
            Err(error) if error.is_data() => {}
            Err(error) => return Err(vec![json_invalid(body, &error)]),
        }
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => T::deserialize(value).map_err(|_| vec![not_an_object()]),
        Ok(_) => Err(vec![not_an_object()]),
        Err(error) => Err(vec![json_invalid(body, &error)]),
    }
}

fn not_an_object() -> ValidationIssue {
    ValidationIssue::body(
        "model_attributes_type",
        "Input should be a valid dictionary or object to extract fields from",
    )
}

/// serde_json reports 1-based line and column; FastAPI reports a position in the document.
fn json_invalid(body: &[u8], error: &serde_json::Error) -> ValidationIssue {
    let line_start: usize = body
        .split(|&b| b == b'\n')
        .take(error.line().saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    let position = (line_start + error.column().saturating_sub(1)).min(body.len());
    ValidationIssue {
        loc: vec![Value::from("body"), Value::from(position)],
        msg: "JSON decode error".to_owned(),
        kind: "json_invalid",
    }
}

/// The extractor: the body of `T`, validated into `T::Domain`, or a 413/415/422 rejection.
pub struct Valid<T: Contract>(pub T::Domain);

impl<T: Contract> FromRequest<Arc<Engine>> for Valid<T> {
    type Rejection = BodyRejection;

    async fn from_request(
        request: Request<Body>,
        engine: &Arc<Engine>,
    ) -> Result<Self, Self::Rejection> {
        let json = is_json(
            request
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            T::FROM_BROWSERS,
        );
        // At most one byte more than allowed: enough to know a body is too large without
        // buffering whatever a client chooses to send.
        let bytes = to_bytes(request.into_body(), MAX_BODY_BYTES + 1)
            .await
            .map_err(|_| BodyRejection::too_large())?;
        if bytes.len() > MAX_BODY_BYTES {
            return Err(BodyRejection::too_large());
        }
        if !json {
            return Err(BodyRejection::NotJson(PlainError::new(
                "Content-Type must be application/json",
            )));
        }
        let body: T = parse_object(&bytes).map_err(BodyRejection::issues)?;
        body.into_domain(engine.policy())
            .map(Valid)
            .map_err(BodyRejection::issues)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(default)]
    #[derive(Default)]
    struct Probe {
        a: Field,
        b: Field,
    }

    #[test]
    fn json_content_types() {
        for ok in [
            None,
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/vnd.api+json"),
        ] {
            assert!(is_json(ok, false), "{ok:?}");
            assert_eq!(is_json(ok, true), ok.is_some(), "{ok:?}");
        }
        for bad in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some(""),
        ] {
            assert!(!is_json(bad, false) && !is_json(bad, true), "{bad:?}");
        }
    }

    #[test]
    fn fields_are_lenient_and_the_last_repeated_key_counts() {
        let probe: Probe = parse_object(br#"{"a": 5, "b": null, "c": 1}"#).unwrap();
        assert_eq!((probe.a, probe.b), (Field::NotText, Field::Absent));
        let probe: Probe = parse_object(br#"{"a": "x", "a": "y"}"#).unwrap();
        assert_eq!(probe.a, Field::Text("y".to_owned()));
    }

    #[test]
    fn body_shape_errors() {
        let kind = |body: &[u8]| parse_object::<Probe>(body).unwrap_err()[0].kind;
        assert_eq!(kind(b""), "missing");
        assert_eq!(kind(b"  \n"), "missing");
        assert_eq!(kind(b"[1]"), "model_attributes_type");
        assert_eq!(kind(b"null"), "model_attributes_type");
        assert_eq!(kind("\u{feff}{}".as_bytes()), "json_invalid");
        let invalid = parse_object::<Probe>(b"{\"a\":\n  tru}").unwrap_err();
        assert_eq!(invalid[0].kind, "json_invalid");
        assert_eq!(invalid[0].loc, vec![json!("body"), json!(11)]);
    }
}

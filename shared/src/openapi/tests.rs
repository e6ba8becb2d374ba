use serde_json::{json, Value};

use super::*;
use crate::domain::{
    Email, PhoneE164, Purpose, UserId, EMAIL_MAX_CHARS, PHONE_PATTERN, PURPOSE_PATTERN,
    USER_ID_MAX_CHARS,
};

fn doc(policy: &Policy) -> Value {
    serde_json::to_value(document(policy)).unwrap()
}

fn schema(name: &str) -> Value {
    doc(&Policy::default())["components"]["schemas"][name].clone()
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
        send["properties"]["method"]["enum"],
        json!(["sms", "whatsapp", "voice", "email"])
    );
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
    assert!(Purpose::parse(&"a".repeat(32)).is_ok() && Purpose::parse(&"a".repeat(33)).is_err());
    assert!(UserId::parse(&"u".repeat(128)).is_ok() && UserId::parse(&"u".repeat(129)).is_err());
    assert!(Email::parse("user@example.com").is_ok());
}

#[test]
fn passcode_pattern_follows_the_code_length() {
    let doc = doc(&Policy {
        code_length: 8,
        ..Policy::default()
    });
    for (schema, field) in [
        ("VerifyCodeRequest", "passcode"),
        ("VerifyOtpRequest", "otp_code"),
    ] {
        let property = &doc["components"]["schemas"][schema]["properties"][field];
        assert_eq!(property["pattern"], "^[0-9]{8}$");
        assert_eq!(property["examples"], json!(["12345678"]));
    }
}

#[test]
fn every_route_documents_its_statuses_and_retry_after() {
    let doc = doc(&Policy::default());
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, statuses) in [
        (
            "/send-code",
            vec![
                "200", "401", "403", "413", "415", "422", "429", "502", "503",
            ],
        ),
        (
            "/verify-code",
            vec![
                "200", "400", "401", "403", "404", "409", "410", "413", "415", "422", "429", "503",
            ],
        ),
        (
            "/auth/request-otp",
            vec![
                "200", "403", "404", "413", "415", "422", "429", "502", "503",
            ],
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
    // The backend routes name their credential; the public ones need none.
    for path in ["/send-code", "/verify-code"] {
        assert_eq!(
            doc["paths"][path]["post"]["security"],
            json!([{"apiKey": []}])
        );
    }
    for path in ["/auth/request-otp", "/auth/verify-otp"] {
        assert!(doc["paths"][path]["post"].get("security").is_none());
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["apiKey"]["scheme"],
        "bearer"
    );
    let send = &doc["paths"]["/send-code"]["post"]["responses"];
    assert!(send["429"]["headers"]["Retry-After"].is_object());
    // 422 on a send route: a validation failure or a refused destination.
    let one_of = send["422"]["content"]["application/json"]["schema"]["oneOf"]
        .as_array()
        .unwrap();
    assert_eq!(one_of.len(), 2);
    assert!(doc["info"]["description"]
        .as_str()
        .unwrap()
        .contains("works once"));
    // The key set is a GET with no body.
    let jwks = &doc["paths"]["/.well-known/jwks.json"]["get"];
    assert!(jwks["requestBody"].is_null());
    assert_eq!(
        jwks["responses"]["200"]["content"]["application/json"]["schema"]["required"],
        json!(["keys"])
    );
    // The token is documented on both checks.
    for schema in ["VerifyCodeOk", "AuthVerified"] {
        assert!(
            doc["components"]["schemas"][schema]["properties"]["verification_token"].is_object()
        );
    }
}

#[test]
fn every_referenced_schema_is_defined() {
    let text = document_json(&Policy::default());
    let doc: Value = serde_json::from_str(&text).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for reference in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            schemas.contains_key(name),
            "{name} is referenced but not defined"
        );
    }
}

#[test]
fn optional_fields_accept_null_as_the_api_does() {
    // The API treats `null` like an absent optional field; the schema must say so.
    for (schema_name, field) in [
        ("SendCodeRequest", "phone"),
        ("SendCodeRequest", "email"),
        ("SendCodeRequest", "purpose"),
        ("VerifyCodeRequest", "purpose"),
    ] {
        let property = &schema(schema_name)["properties"][field];
        assert_eq!(
            property["type"],
            json!(["string", "null"]),
            "{schema_name}.{field}"
        );
    }
    for (schema_name, field) in [
        ("SendCodeRequest", "user_id"),
        ("VerifyCodeRequest", "passcode"),
        ("RequestOtpRequest", "email"),
        ("VerifyOtpRequest", "otp_code"),
    ] {
        let property = &schema(schema_name)["properties"][field];
        assert_eq!(property["type"], json!("string"), "{schema_name}.{field}");
    }
}

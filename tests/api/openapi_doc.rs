//! The API reference: the committed `openapi.json` is the generated one, and the local server
//! serves it with interactive docs.

use otp_core::settings::Policy;
use serde_json::Value;

use crate::helpers::{Setup, TestApp};

#[test]
fn committed_openapi_json_is_the_generated_document() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
    let committed = std::fs::read_to_string(path).expect("openapi.json at the repository root");
    let generated = otp_core::openapi::document_json(&Policy::default());
    assert!(
        committed == generated,
        "openapi.json is stale: regenerate it with `make openapi`"
    );
}

#[tokio::test]
async fn the_server_serves_the_document_and_the_docs_pages() {
    let app = TestApp::spawn(Setup::Tcp).await;
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: Value = response.json().await.unwrap();
    assert_eq!(
        served,
        serde_json::to_value(otp_core::openapi::document(&Policy::default())).unwrap()
    );
    for (path, marker) in [
        // /docs redirects to /docs/, Swagger UI's page from this binary, which loads its
        // initializer (and that, the document) from here too.
        ("/docs", "./swagger-initializer.js"),
        ("/docs/swagger-initializer.js", "SwaggerUIBundle"),
        ("/redoc", "<redoc spec-url=\"/openapi.json\">"),
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/html") || content_type.starts_with("text/javascript"),
            "{path}: {content_type}"
        );
        let text = response.text().await.unwrap();
        assert!(text.contains(marker), "{path}");
        assert!(!text.contains("https://cdn") || path == "/redoc", "{path}");
    }
    let initializer = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("\"url\": \"/openapi.json\""));
    let reply = app.request("POST", "/docs", None, Vec::new()).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.headers["allow"], "GET, HEAD");
}

#[tokio::test]
async fn the_served_document_follows_the_code_length() {
    let app = TestApp::builder()
        .policy(Policy {
            code_length: 8,
            ..Policy::default()
        })
        .spawn(Setup::Tcp)
        .await;
    let served: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let passcode = &served["components"]["schemas"]["VerifyCodeRequest"]["properties"]["passcode"];
    assert_eq!(passcode["pattern"], "^[0-9]{8}$");
}

//! The yardstick for `make bench`: a minimal axum endpoint that does the same JSON parse as
//! `/verify-code` and answers 404, with nothing else. Not part of the service.

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)] // parsed, like the real route, but not used
struct VerifyBody {
    user_id: String,
    passcode: String,
    purpose: Option<String>,
}

async fn verify(Json(_body): Json<VerifyBody>) -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, r#"{"detail":"Not Found"}"#)
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8001);
    let app = Router::new().route("/verify-code", post(verify));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    println!(
        "baseline listening on http://{}",
        listener.local_addr().unwrap()
    );
    axum::serve(listener, app).await.unwrap();
}

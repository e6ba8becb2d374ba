//! The verify-code Lambda function: serves /verify-code and /auth/verify-otp. Configuration and clients are built
//! once at init; every request then runs the shared handler.

use otp_core::http::Route;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    otp_core::lambda::init_tracing();
    otp_core::lambda::run(Route::VERIFYING).await
}

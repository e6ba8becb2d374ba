//! The verify-code Lambda function: serves /verify-code and /auth/verify-otp. It links no
//! delivery code. Settings and clients are built once at init; every request then runs the
//! shared router.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), otp_core::lambda::Error> {
    otp_core::lambda::run(otp_core::http::Routes::Verifying).await
}

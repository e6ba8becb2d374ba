//! `/redoc`: ReDoc for the served `/openapi.json`, its bundle compiled into the binary (vendored
//! in `src/redoc/`, see its README), so the page works with no internet access.

use axum::routing::MethodRouter;
use axum::Router;

pub const PATH: &str = "/redoc";

/// ReDoc 2.5.4's standalone bundle (npm `redoc`), unmodified.
const BUNDLE: &[u8] = include_bytes!("redoc/redoc.standalone.js");

const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>OTP verification service - API reference</title>
<link rel="icon" href="data:,">
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="/redoc/redoc.standalone.js"></script>
</body>
</html>
"##;

/// Nothing from elsewhere. ReDoc styles its elements at run time (inline styles), draws its
/// icons as data: images, and runs its search index in a worker made from a blob. The one thing
/// it asks for from elsewhere, the "API docs by Redocly" logo on cdn.redoc.ly, is refused here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                   worker-src 'self' blob:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

fn asset<S: Clone + Send + Sync + 'static>(
    content_type: &'static str,
    body: &'static [u8],
) -> MethodRouter<S> {
    crate::static_asset(content_type, CSP, body)
}

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(PATH, asset("text/html; charset=utf-8", PAGE.as_bytes()))
        .route(
            "/redoc/redoc.standalone.js",
            asset("text/javascript; charset=utf-8", BUNDLE),
        )
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    #[test]
    fn the_vendored_bundle_is_the_published_release() {
        // The digest recorded in src/redoc/README.md: the file is ReDoc 2.5.4's, unmodified.
        let digest = hex::encode(Sha256::digest(super::BUNDLE));
        assert_eq!(
            digest,
            "dcaf76612bc4a3fbcc923a8966dee2f6146a5f32e5ce1b6f02dd60cbbf89500b"
        );
    }
}

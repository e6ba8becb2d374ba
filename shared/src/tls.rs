//! Root certificates: read from the system once per process and shared by the TLS clients of a
//! build that has two (the AWS SDK's, and Twilio's `reqwest` client). Left to themselves, each
//! loads the system's roots on its own: the SDK when its first connector is set up, reqwest's
//! platform verifier when Twilio's client is built, so a cold start that sent an SMS read and
//! parsed the bundle twice. A build without Twilio (verify-code) leaves the SDK to load them.

use std::path::Path;
use std::sync::OnceLock;

use base64::Engine as _;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// CA bundle files of the systems we run on: Amazon Linux 2023 (Lambda's provided.al2023),
/// then Debian/Ubuntu.
const CA_BUNDLES: &[&str] = &[
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

/// The bundle file to read root certificates from, when the environment names none. Without
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`, the system loader reads the bundle *and* every file of the
/// certificate directory (the same roots again). Only an existing file is chosen, so the roots
/// can never end up empty.
pub fn ca_bundle_to_prefer(
    env: impl Fn(&str) -> Option<String>,
    exists: impl Fn(&str) -> bool,
) -> Option<&'static str> {
    if env("SSL_CERT_FILE").is_some() || env("SSL_CERT_DIR").is_some() {
        return None;
    }
    CA_BUNDLES.iter().copied().find(|path| exists(path))
}

/// Applies [`ca_bundle_to_prefer`]. Call at the very start of `main`, before any thread or
/// client exists (it sets an environment variable).
pub fn prefer_single_ca_bundle() {
    let choice = ca_bundle_to_prefer(
        |var| std::env::var(var).ok(),
        |path| Path::new(path).is_file(),
    );
    if let Some(path) = choice {
        std::env::set_var("SSL_CERT_FILE", path);
    }
}

/// The trust anchors every client of this process uses.
pub struct Roots {
    certificates: Vec<CertificateDer<'static>>,
    /// The bundle file as read, when every section of it is in `certificates`: the AWS SDK can
    /// take it as it is.
    bundle: Option<Vec<u8>>,
}

static ROOTS: OnceLock<Option<Roots>> = OnceLock::new();

/// The system's roots, loaded on the first call (where each client would have loaded them:
/// `SSL_CERT_FILE`/`SSL_CERT_DIR`, else the platform's locations). `None` when the system has
/// no usable root: the clients then fall back to their own loading, which reports it.
pub fn roots() -> Option<&'static Roots> {
    ROOTS.get_or_init(load_system_roots).as_ref()
}

fn load_system_roots() -> Option<Roots> {
    // The usual case (on Lambda, `prefer_single_ca_bundle` sees to it): one file, read whole and
    // decoded once, which costs a third of the general loader's line-by-line reading.
    let single = std::env::var_os("SSL_CERT_DIR")
        .is_none()
        .then(|| std::env::var_os("SSL_CERT_FILE"))
        .flatten()
        .and_then(|path| std::fs::read(path).ok())
        .and_then(Roots::from_bundle);
    let (roots, rejected) = single.unwrap_or_else(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "could not load some root certificates");
        }
        Roots::usable(loaded.certs)
    });
    if rejected > 0 {
        tracing::warn!(
            rejected,
            "root certificates that cannot be trust anchors were skipped"
        );
    }
    if roots.certificates.is_empty() {
        tracing::warn!("no usable root certificate found on this system");
        return None;
    }
    Some(roots)
}

impl Roots {
    /// Keeps the certificates that can serve as trust anchors (the test rustls applies to each
    /// root it is given); returns how many it dropped. Both clients refuse the whole list, or
    /// in the SDK's case panic, on a single certificate that fails it.
    pub fn usable(certificates: Vec<CertificateDer<'static>>) -> (Self, usize) {
        let given = certificates.len();
        let certificates: Vec<_> = certificates
            .into_iter()
            .filter(|der| webpki::anchor_from_trusted_cert(der).is_ok())
            .collect();
        let rejected = given - certificates.len();
        let roots = Self {
            certificates,
            bundle: None,
        };
        (roots, rejected)
    }

    /// The certificates of a PEM bundle, decoded as the AWS SDK decodes it; `None` when a
    /// section does not decode (the caller falls back to the general loader).
    pub fn from_bundle(bundle: Vec<u8>) -> Option<(Self, usize)> {
        let certificates = CertificateDer::pem_slice_iter(&bundle)
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let (mut roots, rejected) = Self::usable(certificates);
        if rejected == 0 {
            roots.bundle = Some(bundle);
        }
        Some((roots, rejected))
    }

    pub fn len(&self) -> usize {
        self.certificates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }

    pub fn der(&self) -> impl Iterator<Item = &[u8]> {
        self.certificates.iter().map(|der| der.as_ref())
    }

    /// The roots as one PEM bundle: the form the AWS SDK's trust store takes. The file as read
    /// when it holds exactly these roots, else the roots encoded anew.
    pub fn pem(&self) -> Vec<u8> {
        if let Some(bundle) = &self.bundle {
            return bundle.clone();
        }
        let mut pem =
            Vec::with_capacity(self.certificates.iter().map(|c| c.len() * 4 / 3 + 64).sum());
        for der in &self.certificates {
            let text = base64::engine::general_purpose::STANDARD.encode(der);
            pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
            for line in text.as_bytes().chunks(64) {
                pem.extend_from_slice(line);
                pem.push(b'\n');
            }
            pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
        }
        pem
    }
}

/// The AWS SDK's HTTP client: the SDK's default (hyper 1, rustls with AWS-LC, proxy settings
/// from the environment), trusting [`roots`] instead of loading the system's roots itself.
/// One client for every service client, so one connector (per timeout setting) and one parse
/// of the roots.
pub fn aws_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};

    Builder::new().build_with_connector_fn(|settings, components| {
        let trust = match (settings, settings.and_then(|_| roots())) {
            // Without settings the SDK is only checking a new service client
            // (`validate_base_client_config`): it drops this connector at once, having built it
            // to load the system's roots early. Ours are loaded once for the process; trusting
            // them here would parse them again for every client made (3-4 per cold start, ~2 ms
            // of CPU each on a small Lambda). Requests always come with settings.
            (None, _) => TrustStore::empty(),
            (Some(_), Some(roots)) => TrustStore::empty().with_pem_certificate(roots.pem()),
            (Some(_), None) => TrustStore::default(),
        };
        let context = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .unwrap_or_default();
        let mut builder = ConnectorBuilder::default()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context);
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        tracing::debug!(
            for_requests = settings.is_some(),
            "AWS HTTP connector built"
        );
        builder.build()
    })
}

/// An outbound HTTPS client (Twilio, CAPTCHA siteverify) trusting the roots the AWS SDK already
/// loaded, not a second read of the system's bundle.
#[cfg(feature = "http-client")]
pub fn https_client(
    connect_timeout: std::time::Duration,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent(concat!("otp-service/", env!("CARGO_PKG_VERSION")));
    if let Some(roots) = roots() {
        let certificates = roots.der().map(reqwest::Certificate::from_der);
        builder = builder.tls_certs_only(certificates.collect::<Result<Vec<_>, _>>()?);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_an_existing_bundle_only_when_the_environment_names_none() {
        let none = |_: &str| None;
        let all = |_: &str| true;
        assert_eq!(
            ca_bundle_to_prefer(none, all),
            Some("/etc/pki/tls/certs/ca-bundle.crt")
        );
        assert_eq!(
            ca_bundle_to_prefer(none, |p| p.starts_with("/etc/ssl")),
            Some("/etc/ssl/certs/ca-certificates.crt")
        );
        assert_eq!(
            ca_bundle_to_prefer(none, |_| false),
            None,
            "never a missing file"
        );
        for var in ["SSL_CERT_FILE", "SSL_CERT_DIR"] {
            let set = move |v: &str| (v == var).then(|| "/x".to_owned());
            assert_eq!(ca_bundle_to_prefer(set, all), None, "{var} is respected");
        }
    }

    fn system_roots() -> Vec<CertificateDer<'static>> {
        let loaded = rustls_native_certs::load_native_certs();
        assert!(
            loaded.certs.len() > 10,
            "this test needs the system's CA bundle (ca-certificates)"
        );
        loaded.certs
    }

    #[test]
    fn a_root_that_cannot_be_a_trust_anchor_is_dropped_and_the_rest_kept() {
        let mut certificates = system_roots();
        let good = certificates.len();
        certificates.insert(1, CertificateDer::from(b"not a certificate".to_vec()));
        let mut truncated = certificates[0].to_vec();
        truncated.truncate(truncated.len() / 2);
        certificates.push(CertificateDer::from(truncated));

        let (roots, rejected) = Roots::usable(certificates);
        assert_eq!((roots.len(), rejected), (good, 2));
    }

    #[test]
    fn the_pem_bundle_holds_exactly_the_roots_and_each_client_accepts_it() {
        let (roots, _) = Roots::usable(system_roots());
        let pem = roots.pem();
        // What the SDK does with it (and `expect`s to succeed).
        let parsed = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(
            parsed.iter().map(|c| c.as_ref()).collect::<Vec<_>>(),
            roots.der().collect::<Vec<_>>()
        );
        let mut store = rustls::RootCertStore::empty();
        for der in parsed {
            store
                .add(der)
                .expect("the SDK adds every root with `expect`");
        }
        assert_eq!(store.len(), roots.len());
        assert!(pem.split(|b| *b == b'\n').all(|line| line.len() <= 64));
    }

    fn system_bundle() -> Vec<u8> {
        let path = ca_bundle_to_prefer(|_| None, |p| Path::new(p).is_file())
            .expect("this test needs the system's CA bundle (ca-certificates)");
        std::fs::read(path).unwrap()
    }

    #[test]
    fn a_bundle_of_usable_roots_goes_to_the_sdk_as_read() {
        let bundle = system_bundle();
        let (roots, rejected) = Roots::from_bundle(bundle.clone()).unwrap();
        assert_eq!(rejected, 0);
        assert!(roots.len() > 10);
        assert_eq!(roots.pem(), bundle, "no second encoding of the same roots");
    }

    #[test]
    fn a_bundle_with_an_unusable_root_goes_to_the_sdk_without_it() {
        let mut bundle = system_bundle();
        let junk = base64::engine::general_purpose::STANDARD.encode(b"not a certificate");
        bundle.extend_from_slice(
            format!("-----BEGIN CERTIFICATE-----\n{junk}\n-----END CERTIFICATE-----\n").as_bytes(),
        );
        let (roots, rejected) = Roots::from_bundle(bundle.clone()).unwrap();
        assert_eq!(rejected, 1);
        let pem = roots.pem();
        assert_ne!(pem, bundle);
        let again = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(again.len(), roots.len());
        assert!(again.iter().all(|der| der.as_ref() != b"not a certificate"));
    }

    #[test]
    fn a_bundle_that_does_not_decode_is_left_to_the_general_loader() {
        let mut bundle = system_bundle();
        bundle.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n");
        assert!(Roots::from_bundle(bundle).is_none());
    }
}

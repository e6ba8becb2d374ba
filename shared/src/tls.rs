//! Root certificates. The AWS clients trust what [`AwsRoots`] says: by default in a function the
//! five roots of Amazon Trust Services, built in, which every AWS endpoint chains to (a handful
//! of certificates to decode instead of the system's ~150, and no other CA can stand in for
//! Secrets Manager or DynamoDB). The other TLS clients (Twilio, CAPTCHA, the send hook, webhooks)
//! trust the system's roots, read once per process and shared: left to themselves, each would
//! load and parse the bundle on its own.

use std::path::Path;
use std::sync::{Arc, OnceLock};

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

/// The five roots of Amazon Trust Services (see the file's header).
pub const AMAZON_ROOTS_PEM: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// The roots the AWS clients trust (`OTP_AWS_TRUST_ROOTS`).
#[derive(Clone, PartialEq, Eq)]
pub enum AwsRoots {
    /// [`AMAZON_ROOTS_PEM`]: a function's default outside the China regions.
    Amazon,
    /// The system's roots, as the other clients (`SSL_CERT_FILE`/`SSL_CERT_DIR` honoured).
    System,
    /// Exactly the certificates of a PEM file (an emulator or a proxy behind TLS, a bundle from
    /// a layer), read and checked at start-up.
    File { path: String, pem: Arc<[u8]> },
}

impl std::fmt::Debug for AwsRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Amazon => f.write_str("Amazon"),
            Self::System => f.write_str("System"),
            Self::File { path, .. } => f.debug_struct("File").field("path", path).finish(),
        }
    }
}

impl AwsRoots {
    /// The certificates of the PEM file at `path`, every one of them usable as a trust anchor:
    /// the SDK would panic on one that is not, and a file that trusts nothing would fail every
    /// request instead of the start.
    pub fn from_file(path: &str) -> Result<Self, String> {
        let pem = std::fs::read(path).map_err(|e| format!("cannot be read ({e})"))?;
        let (roots, rejected) = Roots::from_bundle(pem).ok_or("is not a PEM bundle")?;
        if rejected > 0 {
            let given = roots.len() + rejected;
            return Err(format!(
                "holds {rejected} of {given} certificates that cannot be trust anchors"
            ));
        }
        match roots.bundle {
            Some(pem) if !roots.certificates.is_empty() => Ok(Self::File {
                path: path.to_owned(),
                pem: pem.into(),
            }),
            _ => Err("holds no certificate".to_owned()),
        }
    }

    /// The setting's value, as `OTP_AWS_TRUST_ROOTS` takes it.
    pub fn name(&self) -> &str {
        match self {
            Self::Amazon => "amazon",
            Self::System => "system",
            Self::File { path, .. } => path,
        }
    }

    /// The AWS SDK's HTTP client for these roots; `None`: leave the SDK to its own (it then
    /// loads the system's roots itself, once, which is cheaper than our reading them and
    /// handing them over as PEM).
    pub fn aws_http_client(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::http::SharedHttpClient> {
        match self {
            Self::Amazon => Some(aws_http_client(Some(AMAZON_ROOTS_PEM.into()))),
            Self::File { pem, .. } => Some(aws_http_client(Some(pem.clone()))),
            // With an outbound HTTP client in the build (Twilio, CAPTCHA), both clients share
            // the roots read once by [`roots`], read here, at init.
            #[cfg(feature = "http-client")]
            Self::System => Some(aws_http_client(roots().map(|r| r.pem().into()))),
            #[cfg(not(feature = "http-client"))]
            Self::System => None,
        }
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
/// from the environment), trusting exactly the roots of `pem` (`None`: the system's, as the SDK
/// loads them). One client for every service client, so one connector (per timeout setting)
/// and one parse of the roots.
fn aws_http_client(
    pem: Option<Arc<[u8]>>,
) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};

    Builder::new().build_with_connector_fn(move |settings, components| {
        let trust = match (settings, &pem) {
            // Without settings the SDK is only checking a new service client
            // (`validate_base_client_config`): it drops this connector at once, having built it
            // to load the roots early. Ours are loaded once for the process; trusting them here
            // would parse them again for every client made. Requests always come with settings.
            (None, _) => TrustStore::empty(),
            (Some(_), Some(pem)) => TrustStore::empty().with_pem_certificate(pem.to_vec()),
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

    #[test]
    fn the_built_in_roots_are_the_five_amazon_trust_services_publishes() {
        use sha2::Digest as _;
        // The SHA-256 of each root's SubjectPublicKeyInfo, as listed at
        // https://www.amazontrust.com/repository/ (Amazon Root CA 1 to 4, Starfield Services G2).
        let published = [
            "fbe3018031f9586bcbf41727e417b7d1c45c2f47f93be372a17b96b50757d5a2",
            "7f4296fc5b6a4e3b35d3c369623e364ab1af381d8fa7121533c9d6c633ea2461",
            "36abc32656acfc645c61b71613c4bf21c787f5cabbee48348d58597803d7abc9",
            "f7ecded5c66047d28ed6466b543c40e0743abe81d109254dcf845d4c2c7853c5",
            "2b071c59a0a0ae76b0eadb2bad23bad4580b69c3601b630c2eaf0613afa83f92",
        ];
        // As the SDK decodes them (it `expect`s every one to be a usable root).
        let certificates = CertificateDer::pem_slice_iter(AMAZON_ROOTS_PEM)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let hashes: Vec<String> = certificates
            .iter()
            .map(|der| {
                let anchor = webpki::anchor_from_trusted_cert(der).expect("a usable root");
                // webpki keeps the SPKI's contents; the published hash covers its SEQUENCE too.
                let body = anchor.subject_public_key_info.as_ref();
                let mut spki = vec![0x30];
                match body.len() {
                    n if n < 0x80 => spki.push(n as u8),
                    n if n < 0x100 => spki.extend([0x81, n as u8]),
                    n => spki.extend([0x82, (n >> 8) as u8, n as u8]),
                }
                spki.extend_from_slice(body);
                hex::encode(sha2::Sha256::digest(&spki))
            })
            .collect();
        assert_eq!(hashes, published);
        // The file, as `OTP_AWS_TRUST_ROOTS` would name it, is accepted whole.
        let path = std::env::temp_dir().join(format!("otp-amazon-{}.pem", std::process::id()));
        std::fs::write(&path, AMAZON_ROOTS_PEM).unwrap();
        let roots = AwsRoots::from_file(path.to_str().unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(roots, Ok(AwsRoots::File { pem, .. }) if &*pem == AMAZON_ROOTS_PEM));
    }

    #[test]
    fn each_choice_of_roots_gives_the_sdk_its_own_client_but_the_bare_system_choice() {
        assert!(AwsRoots::Amazon.aws_http_client().is_some());
        assert_eq!(AwsRoots::Amazon.name(), "amazon");
        assert_eq!(AwsRoots::System.name(), "system");
        // With an outbound HTTP client in the build, the system's roots are read once and
        // shared; without one, the SDK loads them itself.
        assert_eq!(
            AwsRoots::System.aws_http_client().is_some(),
            cfg!(feature = "http-client")
        );
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

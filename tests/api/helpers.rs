//! `TestApp`: the service built by the production builder from test settings, reached in process
//! through its router (as the Lambda runtime does) or over TCP (as `make run` serves it), with
//! recording senders and a clock the test moves by hand.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use otp_core::clock::Clock as _;
use otp_core::http::Routes;
use otp_core::keys::{HashKey, KeyRing};
use otp_core::limits::ClientIp;
use otp_core::settings::{KeySource, Policy, Runtime, Settings, StoreSettings, TokenKeys};
use otp_core::startup::{build_with, Overrides};
use otp_core::testing::{ManualClock, RecordingSender};
use otp_core::Engine;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tower::ServiceExt as _;

pub const PHONE: &str = "+14155552671";
pub const EMAIL: &str = "user@example.com";
pub const START: u64 = 1_800_000_000;

/// An engine wired by hand on `store`: SMS through a sender that records, the clock at `START`,
/// the default policy, and the limits and fraud guard given (for tests of one part).
pub fn sms_engine(
    store: Arc<dyn otp_core::store::OtpStore>,
    hasher: otp_core::code::CodeHasher,
    limits: otp_core::settings::SendLimits,
    fraud: otp_core::engine::FraudGuard,
) -> (Engine, RecordingSender, Arc<ManualClock>) {
    let sms = RecordingSender::new();
    let clock = Arc::new(ManualClock::new(START));
    let engine = Engine::new(otp_core::engine::EngineParts {
        store,
        senders: otp_core::sender::Senders {
            sms: Some(Arc::new(sms.clone())),
            ..Default::default()
        },
        hasher,
        policy: Policy::default(),
        brand: None,
        autofill: Default::default(),
        clock: clock.clone(),
        callers: otp_core::callers::Callers::Open,
        limits,
        tokens: None,
        gate: Default::default(),
        fraud,
    });
    (engine, sms, clock)
}
/// Where test requests come from unless a test says otherwise.
pub const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// How a test's requests reach the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The router called in process, as the Lambda runtime calls it.
    Router,
    /// The local server over real TCP.
    Tcp,
    /// The local server over real TCP, on the DynamoDB store (moto).
    TcpDynamo,
}

/// Generates one test per setup from `async fn name(setup: Setup) { ... }`: a module `name` with
/// the tests `router`, `tcp` and `tcp_dynamo`.
macro_rules! every_setup {
    ($(#[$meta:meta])* async fn $name:ident($setup:ident: Setup) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            async fn run($setup: $crate::helpers::Setup) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn router() {
                run($crate::helpers::Setup::Router).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn tcp() {
                run($crate::helpers::Setup::Tcp).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn tcp_dynamo() {
                run($crate::helpers::Setup::TcpDynamo).await
            }
        }
    };
}
pub(crate) use every_setup;

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Reply {
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or_default()
    }

    /// The field names a 422 reports, in order.
    pub fn bad_fields(&self) -> Vec<String> {
        self.json["detail"]
            .as_array()
            .unwrap_or_else(|| panic!("no validation list in {}", self.json))
            .iter()
            .map(|issue| {
                let loc = issue["loc"].as_array().unwrap();
                loc.last().unwrap().as_str().unwrap_or("<pos>").to_owned()
            })
            .collect()
    }
}

/// Settings of a local run with a fixed random key and no environment read.
pub fn test_settings() -> Settings {
    let mut settings = Settings::from_lookup(Runtime::Local, &|_| None).expect("defaults");
    settings.keys = KeySource::Ring(KeyRing::single(HashKey::random()));
    // Given, as a function must be: a test app may run as a function (`without_email`).
    settings.token.keys = TokenKeys::Ring("5a".repeat(32).into());
    settings
}

pub struct TestAppBuilder {
    settings: Settings,
    email_channel: bool,
    phone_sender: Option<Arc<dyn otp_core::sender::Sender>>,
    header_read_timeout: std::time::Duration,
}

impl TestAppBuilder {
    /// The local server's header read and idle timeout (30 s in the binary).
    pub fn header_read_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    pub fn policy(mut self, policy: Policy) -> Self {
        self.settings.policy = policy;
        self
    }

    /// A deployment with no email sender.
    pub fn without_email(mut self) -> Self {
        self.email_channel = false;
        self
    }

    /// `OTP_CALLER_AUTH=api_key` with `OTP_API_KEYS=keys`.
    pub fn api_keys(mut self, keys: &str) -> Self {
        let keys = otp_core::callers::ApiKeys::parse(&keys.to_owned().into()).expect("valid keys");
        self.settings.callers = otp_core::settings::CallerAuth::ApiKeys(keys);
        self
    }

    /// A real sender for the phone channels, built by the test (the AWS SMS sender at a fake).
    pub fn phone_sender(mut self, sender: Arc<dyn otp_core::sender::Sender>) -> Self {
        self.phone_sender = Some(sender);
        self
    }

    pub fn brand(mut self, brand: &str) -> Self {
        self.settings.brand = Some(brand.to_owned());
        self
    }

    /// Any other setting; a channel configured here (Twilio, SES) gets its real sender.
    pub fn settings(mut self, change: impl FnOnce(&mut Settings)) -> Self {
        change(&mut self.settings);
        self
    }

    pub async fn spawn(mut self, setup: Setup) -> TestApp {
        let sms = RecordingSender::new();
        let email = RecordingSender::new();
        let clock = Arc::new(ManualClock::new(START));
        if setup == Setup::TcpDynamo {
            let table = crate::moto_peer::create_table(&crate::moto_peer::client().await).await;
            self.settings.store = StoreSettings::DynamoDb { table };
        }
        if !self.email_channel {
            // A function's fallback: a channel with no sender is not offered.
            self.settings.runtime = Runtime::Lambda;
        }
        let overrides = Overrides {
            clock: Some(clock.clone()),
            sms: self.phone_sender.or_else(|| {
                self.settings
                    .delivery
                    .sms
                    .is_none()
                    .then(|| Arc::new(sms.clone()) as Arc<_>)
            }),
            email: (self.email_channel && self.settings.delivery.email.is_none())
                .then(|| Arc::new(email.clone()) as Arc<_>),
        };
        let engine = Arc::new(
            build_with(self.settings, Routes::All, overrides)
                .await
                .expect("the service builds"),
        );
        let (listener, addr) = otp_service::bind(0).await.expect("bind a free port");
        let (stop, stopped) = oneshot::channel::<()>();
        let server_engine = engine.clone();
        let header_read_timeout = self.header_read_timeout;
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            otp_service::serve_with(listener, server_engine, shutdown, header_read_timeout)
                .await
                .expect("server runs");
        });
        TestApp {
            router: otp_service::app(engine.clone()),
            engine,
            sms,
            email,
            clock,
            addr,
            client: reqwest::Client::new(),
            setup,
            _stop: stop,
        }
    }
}

pub struct TestApp {
    pub engine: Arc<Engine>,
    pub router: Router,
    pub sms: RecordingSender,
    pub email: RecordingSender,
    pub clock: Arc<ManualClock>,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    setup: Setup,
    /// Dropping the app stops its server.
    _stop: oneshot::Sender<()>,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            settings: test_settings(),
            email_channel: true,
            phone_sender: None,
            header_read_timeout: otp_service::HEADER_READ_TIMEOUT,
        }
    }

    pub async fn spawn(setup: Setup) -> TestApp {
        Self::builder().spawn(setup).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.request(
            "POST",
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    /// A JSON POST with an `Authorization` header.
    pub async fn post_as(&self, authorization: &str, path: &str, body: Value) -> Reply {
        self.request_with(
            "POST",
            path,
            &[
                ("content-type", "application/json"),
                ("authorization", authorization),
            ],
            body.to_string().into_bytes(),
        )
        .await
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let headers: Vec<(&str, &str)> = content_type
            .map(|value| ("content-type", value))
            .into_iter()
            .collect();
        self.request_with(method, path, &headers, body).await
    }

    pub async fn request_with(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        self.request_from(LOOPBACK, method, path, extra, body).await
    }

    /// A JSON POST from the client address `from` (a loopback address over TCP: the client
    /// socket binds to it; in process, it is what API Gateway would report).
    pub async fn post_from(&self, from: IpAddr, path: &str, body: Value) -> Reply {
        let headers = [("content-type", "application/json")];
        self.request_from(from, "POST", path, &headers, body.to_string().into_bytes())
            .await
    }

    pub async fn request_from(
        &self,
        from: IpAddr,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Reply {
        let (status, headers, bytes) = match self.setup {
            Setup::Router => {
                let mut request = http::Request::builder()
                    .method(method)
                    .uri(path)
                    .extension(ClientIp::new(from));
                for (name, value) in extra {
                    request = request.header(*name, *value);
                }
                let request = request.body(axum::body::Body::from(body)).unwrap();
                let response = self.router.clone().oneshot(request).await.unwrap();
                let (parts, body) = response.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                (parts.status.as_u16(), parts.headers, bytes)
            }
            Setup::Tcp | Setup::TcpDynamo => {
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let client = if from == LOOPBACK {
                    self.client.clone()
                } else {
                    assert!(
                        from.is_loopback(),
                        "over TCP a client can only be 127.x.y.z"
                    );
                    reqwest::Client::builder()
                        .local_address(from)
                        .build()
                        .unwrap()
                };
                let oversized = body.len() > otp_core::http::MAX_BODY_BYTES;
                let mut attempt = 1;
                let response = loop {
                    let mut request = client
                        .request(method.clone(), self.url(path))
                        .body(body.clone());
                    for (name, value) in extra {
                        request = request.header(*name, *value);
                    }
                    match request.send().await {
                        Ok(response) => break response,
                        // The server answers 413 and closes without reading a body it refuses;
                        // the unread bytes turn the close into a reset, which can reach the
                        // client before it reads the answer. Only then, try again.
                        Err(error) if oversized && attempt < 3 => {
                            eprintln!("oversized body, attempt {attempt}: {error}");
                            attempt += 1;
                        }
                        Err(error) => panic!("server answers: {error}"),
                    }
                };
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                (status, headers, response.bytes().await.unwrap())
            }
        };
        // Every response is JSON, but a CORS preflight's, which has no body.
        if !(method == "OPTIONS" && bytes.is_empty()) {
            assert_eq!(
                headers.get("content-type").unwrap(),
                "application/json",
                "every response is JSON"
            );
        }
        Reply {
            status,
            headers,
            json: if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).expect("JSON body")
            },
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None, Vec::new()).await
    }

    /// The `verification_token` of `reply`, checked as a backend would: signature by a key of
    /// the service's JWK Set (the `kid` of its header), `alg`, issuer, audience and lifetime.
    /// Its claims.
    pub async fn checked_token(&self, reply: &Reply) -> Value {
        use aws_lc_rs::signature::{UnparsedPublicKey, ED25519};
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let token = reply.json["verification_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {}", reply.json));
        let decode = |part: &str| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
        };
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{token}");
        let header = decode(parts[0]);
        assert_eq!(header["alg"], "EdDSA");
        let keys = self.get("/.well-known/jwks.json").await;
        assert_eq!(keys.status, 200);
        let key = keys.json["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == header["kid"])
            .unwrap_or_else(|| panic!("kid {} not in {}", header["kid"], keys.json));
        let public = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&ED25519, &public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("the signature checks");
        let claims = decode(parts[1]);
        let policy = &self.engine.tokens().unwrap().policy().clone();
        assert_eq!(claims["iss"], policy.issuer.as_str());
        // Each route family's tokens carry their own audience.
        let audience = match claims.get("email") {
            Some(_) => &policy.audience,
            None => &policy.backend_audience,
        };
        assert_eq!(claims["aud"], audience.as_str());
        assert_eq!(claims["iat"], self.clock.now());
        assert_eq!(claims["exp"], self.clock.now() + policy.ttl_secs);
        claims
    }

    pub async fn send_sms(&self, user_id: &str) -> Reply {
        self.post(
            "/send-code",
            json!({"user_id": user_id, "method": "sms", "phone": PHONE}),
        )
        .await
    }

    pub async fn verify(&self, user_id: &str, passcode: &str) -> Reply {
        self.post(
            "/verify-code",
            json!({"user_id": user_id, "passcode": passcode}),
        )
        .await
    }

    pub fn last_sms_code(&self) -> String {
        self.sms.last_code_to(PHONE).expect("an SMS was delivered")
    }
}

/// A code of the right length that differs from `code` in every digit.
pub fn wrong_code(code: &str) -> String {
    code.bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect()
}

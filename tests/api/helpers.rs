//! `TestApp`: the real service on a random port (or the shared handler called directly), with a
//! recording sender per channel and a clock the test moves by hand.

use std::net::SocketAddr;
use std::sync::Arc;

use otp_core::clock::ManualClock;
use otp_core::code::{CodeHasher, HashKey};
use otp_core::config::Policy;
use otp_core::http::{handle, ApiRequest, Route};
use otp_core::sender::{RecordingSender, Sender, Senders};
use otp_core::store::{MemoryStore, OtpStore};
use otp_core::Engine;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub const PHONE: &str = "+14155552671";
pub const EMAIL: &str = "user@example.com";
pub const START: u64 = 1_800_000_000;

/// How a test's requests reach the handler; status tests run through both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// `otp_core::http::handle` called in-process, as the Lambda adapter does.
    Handler,
    /// The local server over real TCP.
    Tcp,
    /// The local server over real TCP, on the DynamoDB store (moto).
    TcpDynamo,
}

pub const SETUPS: [Setup; 3] = [Setup::Handler, Setup::Tcp, Setup::TcpDynamo];

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

pub struct TestAppBuilder {
    policy: Policy,
    email_channel: bool,
    brand: Option<String>,
    sms_sender: Option<Arc<dyn Sender>>,
    email_sender: Option<Arc<dyn Sender>>,
}

impl TestAppBuilder {
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    pub fn without_email(mut self) -> Self {
        self.email_channel = false;
        self
    }

    /// A real sender for SMS instead of the recording one.
    pub fn sms_sender(mut self, sender: Arc<dyn Sender>) -> Self {
        self.sms_sender = Some(sender);
        self
    }

    /// A real sender for email instead of the recording one.
    pub fn email_sender(mut self, sender: Arc<dyn Sender>) -> Self {
        self.email_sender = Some(sender);
        self
    }

    pub fn brand(mut self, brand: &str) -> Self {
        self.brand = Some(brand.to_owned());
        self
    }

    pub async fn spawn(self, setup: Setup) -> TestApp {
        let sms = RecordingSender::new();
        let email = RecordingSender::new();
        let clock = Arc::new(ManualClock::new(START));
        let hasher = CodeHasher::new(&HashKey::random());
        let store: Arc<dyn OtpStore> = match setup {
            Setup::TcpDynamo => Arc::new(crate::dynamo::store(hasher.clone()).await),
            Setup::Handler | Setup::Tcp => Arc::new(MemoryStore::new()),
        };
        let senders = Senders {
            sms: Some(self.sms_sender.unwrap_or_else(|| Arc::new(sms.clone()))),
            email: self.email_channel.then(|| {
                self.email_sender
                    .unwrap_or_else(|| Arc::new(email.clone()) as Arc<_>)
            }),
        };
        let engine = Arc::new(Engine::new(
            store,
            senders,
            hasher,
            self.policy,
            self.brand,
            clock.clone(),
        ));
        let (listener, addr) = otp_service::bind(0).await.expect("bind a free port");
        let (stop, stopped) = oneshot::channel::<()>();
        let server_engine = engine.clone();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            otp_service::serve(listener, server_engine, shutdown)
                .await
                .expect("server runs");
        });
        TestApp {
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
            policy: Policy::default(),
            email_channel: true,
            brand: None,
            sms_sender: None,
            email_sender: None,
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

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        match self.setup {
            Setup::Handler => {
                let method = http::Method::from_bytes(method.as_bytes()).unwrap();
                let request = ApiRequest {
                    method: &method,
                    path,
                    content_type,
                    body: &body,
                };
                let response = handle(&self.engine, Route::ALL, request)
                    .await
                    .into_http::<Vec<u8>>();
                let status = response.status().as_u16();
                let (parts, body) = response.into_parts();
                Reply {
                    status,
                    headers: parts.headers,
                    json: serde_json::from_slice(&body).expect("JSON body"),
                }
            }
            Setup::Tcp | Setup::TcpDynamo => {
                let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
                let mut request = self.client.request(method, self.url(path)).body(body);
                if let Some(content_type) = content_type {
                    request = request.header("content-type", content_type);
                }
                let response = request.send().await.expect("server answers");
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                assert_eq!(
                    headers.get("content-type").unwrap(),
                    "application/json",
                    "every response is JSON"
                );
                let bytes = response.bytes().await.unwrap();
                Reply {
                    status,
                    headers,
                    json: serde_json::from_slice(&bytes).expect("JSON body"),
                }
            }
        }
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

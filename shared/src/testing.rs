//! Test doubles (feature `testing`, which no Lambda function enables): a sender that records
//! what it delivers and a clock that moves only when told to.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::clock::Clock;
use crate::domain::Destination;
use crate::sender::{Accepted, DeliveryError, Message, Sender};

type MakeError = fn() -> DeliveryError;

/// What a test needs to know about a delivered message.
#[derive(Debug, Clone)]
pub struct RecordedMessage {
    pub destination: Destination,
    pub code: String,
    pub text: String,
}

/// Keeps every message for tests to read back; can be told to fail the next sends.
#[derive(Clone, Default)]
pub struct RecordingSender {
    messages: Arc<Mutex<Vec<RecordedMessage>>>,
    failure: Arc<Mutex<Option<MakeError>>>,
}

impl RecordingSender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every following send fails with the error `make` builds, until [`Self::succeed`].
    pub fn fail_with(&self, make: MakeError) {
        *self.failure.lock().unwrap() = Some(make);
    }

    pub fn succeed(&self) {
        *self.failure.lock().unwrap() = None;
    }

    /// Messages delivered so far.
    pub fn count(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    pub fn messages(&self) -> Vec<RecordedMessage> {
        self.messages.lock().unwrap().clone()
    }

    /// The code of the latest message to `address`.
    pub fn last_code_to(&self, address: &str) -> Option<String> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m.destination.address() == address)
            .map(|m| m.code.clone())
    }
}

#[async_trait]
impl Sender for RecordingSender {
    async fn send(&self, message: &Message) -> Result<Accepted, DeliveryError> {
        let failure = (*self.failure.lock().unwrap()).map(|make| make());
        // An uncertain failure is a message that went out and whose answer was lost: it is
        // recorded, as a phone would have received it.
        match failure {
            None | Some(DeliveryError::Uncertain(_)) => {}
            Some(error) => return Err(error),
        }
        let text = match &message.destination {
            Destination::Sms(_) => message.sms_text(),
            Destination::Whatsapp(_) => format!("whatsapp code {}", message.code.expose()),
            Destination::Voice(_) => message.voice_twiml(),
            Destination::Email(_) => message.email_text(),
        };
        self.messages.lock().unwrap().push(RecordedMessage {
            destination: message.destination.clone(),
            code: message.code.expose().to_owned(),
            text,
        });
        failure.map_or(Ok(Accepted::default()), Err)
    }

    fn describe(&self) -> String {
        "recording (test)".to_owned()
    }

    fn provider(&self) -> &'static str {
        "recording"
    }
}

/// A clock that only moves when told to, so tests can step past expiry and cooldown.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(start: u64) -> Self {
        Self(AtomicU64::new(start))
    }

    pub fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

//! Send and verify: the rules of the service, independent of HTTP, Lambda and storage.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument as _;

use crate::callers::Callers;
use crate::captcha::CaptchaCheck;
use crate::clock::Clock;
use crate::code::{CodeHash, CodeHasher, OneTimeCode};
use crate::directory::UserDirectory;
use crate::domain::{Channel, Destination, Passcode, Space, UserId};
use crate::fraud::{self, FraudMode, FraudSettings, Prefix, Tick, TickSink};
use crate::limits::{Charge, ClientIp, LimitName, SendLimits, Subjects};
use crate::locale::Locale;
use crate::mask;
use crate::meter;
use crate::receipts::PublicOrigin;
use crate::sender::{DeliveryError, Message, Senders};
use crate::settings::Policy;
use crate::settings::UnknownUser;
use crate::store::{
    FraudLedger, GuessAttempt, GuessOutcome, Network, NewCode, OtpRecord, OtpStore, PutOutcome,
    RecordKey, StoreError,
};
use crate::telemetry::error_chain;
use crate::templates::SmsAutofill;
use crate::token::{Subject, TokenSigner};
use crate::verification::{Delivery, Verification, VerificationId};

#[derive(Debug)]
pub struct SendRequest {
    pub key: RecordKey,
    pub destination: Destination,
    /// The end user's address, when known: counted by the per-client limit.
    pub client: Option<ClientIp>,
    /// The authenticated caller's name, for the log lines (`None` on the public routes).
    pub caller: Option<String>,
    /// The language of the message (`locale` in the request; English when absent).
    pub locale: Locale,
    /// The backend vouches for this user (`trusted` on `/send-code`): the fraud guard does
    /// not refuse the send.
    pub trusted: bool,
    /// Where API Gateway was called (in a function): the base of the delivery receipts' URL
    /// when `OTP_PUBLIC_BASE_URL` is not set.
    pub origin: Option<PublicOrigin>,
}

impl SendRequest {
    /// A send of `key`'s code to `destination`, with nothing else known: no client address, no
    /// caller name, English, not trusted, not through API Gateway.
    pub fn new(key: RecordKey, destination: Destination) -> Self {
        Self {
            key,
            destination,
            client: None,
            caller: None,
            locale: Locale::default(),
            trusted: false,
            origin: None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Sent {
    pub channel: Channel,
    pub expires_in: u64,
    /// The verification the send started.
    pub verification_id: VerificationId,
}

/// A guess at a user's code; with `destination`, only a code sent there can match.
#[derive(Debug)]
pub struct VerifyRequest {
    pub key: RecordKey,
    pub passcode: Passcode,
    pub destination: Option<Destination>,
    /// The end user's address, when known: wrong guesses are counted per client network.
    pub client: Option<ClientIp>,
    /// The authenticated caller's name, for the log lines (`None` on the public routes).
    pub caller: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("a code was sent {0} seconds too recently")]
    CoolingDown(u64),
    #[error("the user is locked out for {0} more seconds")]
    Locked(u64),
    /// The fraud guard's breaker for the number's range is open.
    #[error("sends to this number's range are paused: suspected SMS pumping")]
    FraudSuspected,
    #[error("the send limit {} is full for {retry_after} more seconds", .limit.as_str())]
    Limited { limit: LimitName, retry_after: u64 },
    /// The number may not get an SMS at all (its country or kind); `detail` says what to do.
    #[error("the number may not get an SMS: {detail}")]
    NumberRefused { detail: String },
    /// The provider may have sent the code (a timeout or 5xx after the request went out). The
    /// code stays valid and the send counts, so the user waits out the cooldown.
    #[error("delivery may or may not have happened")]
    DeliveryUncertain {
        retry_after: u64,
        /// The verification of the code that may have arrived: its receipts and its cancel.
        verification_id: VerificationId,
    },
    #[error("no sender is configured for {}", .0.as_str())]
    ChannelUnavailable(Channel),
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The code was right; it is now used. Where it had been sent, masked.
    Verified {
        channel: Channel,
        sent_to: String,
    },
    WrongCode {
        /// The fewer of the code's attempts left and the user's failures left before lockout.
        attempts_remaining: u32,
    },
    /// Never sent, already used, withdrawn after a failed delivery, or written by a version
    /// without lockout (a newer code is needed).
    NotFound,
    Expired,
    TooManyAttempts,
    /// Too many wrong guesses across codes; nothing is checked until the window passes. The
    /// guess that reaches the threshold is answered this way too.
    Locked {
        retry_after: u64,
    },
    /// The caller named a destination and the code was sent elsewhere; the guess was not taken.
    WrongDestination,
}

pub struct Engine {
    parts: EngineParts,
    shards: SharedShards,
}

/// How this instance spreads sends over the shards of the shared counters (a country's, the SMS
/// budget; see [`crate::limits::SHARDS`]): in turn, from a random start, so no shard's item is
/// written by more than its share of a burst; and which shards it found full, so a send near the
/// cap goes to one with room instead of being refused by a full one.
struct SharedShards {
    next: std::sync::atomic::AtomicU32,
    /// A full shard's counter → when its window ends.
    full: std::sync::Mutex<HashMap<String, u64>>,
}

/// Tries at a send whose shared counter's shard was full (each with another shard).
const SHARD_ATTEMPTS: u32 = 3;

impl SharedShards {
    fn new() -> Self {
        Self {
            next: std::sync::atomic::AtomicU32::new(rand::random()),
            full: std::sync::Mutex::default(),
        }
    }

    /// The next shard number in turn. Taken modulo 720,720, which every shard count from 1 to
    /// 16 divides, so the turn goes on evenly when the counter wraps.
    fn next(&self) -> u32 {
        self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 720_720
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.full
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The first of `charges` this instance knows to be a full shard.
    fn known_full<'c>(&self, charges: &'c [Charge], now: u64) -> Option<&'c Charge> {
        let full = self.lock();
        charges
            .iter()
            .find(|c| c.shards > 1 && full.get(&c.counter).is_some_and(|&until| until > now))
    }

    fn mark_full(&self, charge: &Charge, now: u64) {
        let mut full = self.lock();
        full.retain(|_, until| *until > now);
        full.insert(charge.counter.clone(), charge.resets_at);
    }
}

/// What an engine is made of; [`crate::startup`] assembles it from the settings.
pub struct EngineParts {
    pub store: Arc<dyn OtpStore>,
    pub senders: Senders,
    pub hasher: CodeHasher,
    pub policy: Policy,
    pub brand: Option<String>,
    /// The SMS lines that let phones fill the code in (none by default).
    pub autofill: SmsAutofill,
    pub clock: Arc<dyn Clock>,
    /// Who may call the backend routes; the HTTP layer asks before a request is read.
    pub callers: Callers,
    /// How many sends, and to which numbers.
    pub limits: SendLimits,
    /// Signs the verification token a successful check returns (units that verify).
    pub tokens: Option<Arc<TokenSigner>>,
    /// What the public send route checks before it sends.
    pub gate: PublicGate,
    /// The fraud guard's send-side part.
    pub fraud: FraudGuard,
}

/// What the fraud guard does on the request path: which sends carry a check on the breakers,
/// and (on the local server) counting each send and verification in process.
#[derive(Default)]
pub struct FraudGuard {
    pub settings: FraudSettings,
    /// Where the breakers are kept, to push out the hold of one that keeps refusing.
    pub ledger: Option<Arc<dyn FraudLedger>>,
    /// Counting in process (the local server); `None` where the table's stream feeds it.
    pub counting: Option<Arc<dyn TickSink>>,
    /// When this instance last pushed out each breaker's hold.
    extended: std::sync::Mutex<HashMap<Prefix, u64>>,
}

impl FraudGuard {
    pub fn new(
        settings: FraudSettings,
        ledger: Option<Arc<dyn FraudLedger>>,
        counting: Option<Arc<dyn TickSink>>,
    ) -> Self {
        Self {
            settings,
            ledger,
            counting,
            extended: std::sync::Mutex::default(),
        }
    }

    /// Counts ticks in process, where this unit does; a failure is logged and costs the request
    /// nothing.
    async fn count(&self, tick: Option<Tick>, now: u64) {
        if let (Some(counting), Some(tick)) = (&self.counting, tick) {
            counting.count(tick, now).await;
        }
    }

    /// A refused attempt keeps its breaker open: the hold starts again, at most once per
    /// [`fraud::EXTEND_EVERY_SECS`] per breaker and instance, so an attack costs few writes.
    async fn extend(&self, prefix: &Prefix, now: u64) {
        let Some(ledger) = &self.ledger else { return };
        {
            let mut extended = self
                .extended
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            if extended
                .get(prefix)
                .is_some_and(|&at| now < at + fraud::EXTEND_EVERY_SECS)
            {
                return;
            }
            extended.retain(|_, at| now < *at + fraud::EXTEND_EVERY_SECS);
            extended.insert(prefix.clone(), now);
        }
        if let Err(error) = ledger.extend(prefix, now + self.settings.hold_secs).await {
            tracing::warn!(error = %error_chain(&error), "fraud guard: could not extend a hold");
        }
    }
}

/// The public send route's checks before a send: a CAPTCHA, and whether the address has an
/// account. Both optional.
#[derive(Clone)]
pub struct PublicGate {
    pub captcha: Option<Arc<dyn CaptchaCheck>>,
    pub directory: Option<Arc<dyn UserDirectory>>,
    pub unknown_user: UnknownUser,
    /// Origins whose pages may call the public routes (the local server's CORS; in AWS, API
    /// Gateway's).
    pub cors_origins: Vec<String>,
}

impl Default for PublicGate {
    fn default() -> Self {
        Self {
            captcha: None,
            directory: None,
            unknown_user: UnknownUser::Conceal,
            cors_origins: Vec::new(),
        }
    }
}

impl Engine {
    pub fn new(parts: EngineParts) -> Self {
        Self {
            parts,
            shards: SharedShards::new(),
        }
    }

    /// `store: ...; delivery: ...`, for the start-up line.
    pub fn describe(&self) -> String {
        format!(
            "store: {}; delivery: {}; caller auth: {}",
            self.parts.store.describe(),
            self.parts.senders.describe(),
            self.parts.callers.describe()
        )
    }

    pub fn policy(&self) -> &Policy {
        &self.parts.policy
    }

    pub fn callers(&self) -> &Callers {
        &self.parts.callers
    }

    pub fn senders(&self) -> &Senders {
        &self.parts.senders
    }

    pub fn limits(&self) -> &SendLimits {
        &self.parts.limits
    }

    pub fn gate(&self) -> &PublicGate {
        &self.parts.gate
    }

    /// Whether `user` may get a code: always without a directory; with one, when it has the
    /// address. The directory's read is timed and counted like the store's.
    pub async fn is_known_user(&self, user: &UserId) -> Result<bool, StoreError> {
        let Some(directory) = &self.parts.gate.directory else {
            return Ok(true);
        };
        let started = Instant::now();
        let known = directory
            .knows(user)
            .instrument(child_span(|| {
                tracing::info_span!("store", operation = "directory")
            }))
            .await;
        meter::store_call("directory", known.is_ok(), started.elapsed());
        known.inspect_err(log_store_error)
    }

    /// Epoch seconds, by the engine's clock.
    pub fn now(&self) -> u64 {
        self.parts.clock.now()
    }

    pub fn tokens(&self) -> Option<&TokenSigner> {
        self.parts.tokens.as_deref()
    }

    /// The token for a check that just succeeded; `None` when this unit signs none.
    pub fn verification_token(&self, subject: Subject<'_>) -> Option<String> {
        let signer = self.parts.tokens.as_deref()?;
        Some(signer.issue(subject, self.parts.clock.now()))
    }

    /// The counters a send is charged to, under the pseudonyms the record already uses: the
    /// destination's keyed hash and the user id's pseudonym (per record space).
    fn charges(
        &self,
        key: &RecordKey,
        destination: &Destination,
        destination_hash: &CodeHash,
        network: Option<&Network>,
        now: u64,
        shard: u32,
    ) -> Vec<Charge> {
        use base64::Engine as _;
        let hasher = &self.parts.hasher;
        let space = match key.space {
            Space::Backend => "backend",
            Space::Public => "public",
        };
        // Counted per mailbox (an address's `+tag`s and Gmail's dots are one destination); for a
        // phone number or a plain address that is the record's own destination hash, not hashed
        // a second time.
        let mailbox = destination.counted();
        let counted = if &mailbox == destination {
            destination_hash.clone()
        } else {
            hasher.destination_hash(&mailbox)
        };
        let subjects = Subjects {
            destination: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(counted.as_bytes()),
            user: format!("{space}:{}", hasher.pseudonym(&key.user_id)),
            client: network.map(|n| n.as_str().to_owned()),
            space: key.space,
            shard,
        };
        self.parts.limits.charges(&subjects, destination, now)
    }

    /// The block a phone send is counted in, and whether the send is checked against the
    /// breakers (not with the guard off or monitoring, for a trusted user or a safe-listed number).
    fn fraud_block(
        &self,
        destination: &Destination,
        trusted: bool,
    ) -> (Option<fraud::Block>, bool) {
        let settings = &self.parts.fraud.settings;
        let Some(phone) = destination.phone_number() else {
            return (None, false);
        };
        if settings.mode == FraudMode::Off {
            return (None, false);
        }
        let Some(digits) = fraud::block_digits(phone.as_str()) else {
            return (None, false);
        };
        let country = phone.calling_code();
        let block = fraud::Block {
            id: self.parts.hasher.block_pseudonym(digits),
            hint: fraud::block_hint(phone.as_str(), country),
        };
        let exempt = trusted || settings.safe_list.covers(phone.as_str());
        (Some(block), settings.mode == FraudMode::Block && !exempt)
    }

    /// The client network a send or a guess is counted under: a keyed pseudonym of its address
    /// (an IPv4 address, an IPv6 /64), or one shared tally when the address is unknown.
    fn network(&self, client: Option<ClientIp>) -> Network {
        client.map_or_else(Network::unknown, |ip| {
            Network::pseudonymous(self.parts.hasher.client_pseudonym(&ip.counted_as()))
        })
    }

    /// On the public route every request costs its caller one send of its own limit, whatever
    /// the address: a refusal about the address (cooldown, lockout, the address's own limits)
    /// charges the caller's counter on its own, and becomes the caller's limit when that is
    /// full. Otherwise a caller at its limit would get 429 for a fresh address and "sent" for
    /// the others, and so learn which addresses exist. The common path (a send) stays one
    /// request: the charge rides in its transaction.
    async fn charge_public_caller(
        &self,
        key: &RecordKey,
        charges: &[Charge],
        refusal: SendError,
        now: u64,
    ) -> SendError {
        let own_limit = matches!(
            refusal,
            SendError::Limited {
                limit: LimitName::ClientIpHour,
                ..
            }
        );
        let client = charges.iter().find(|c| c.limit == LimitName::ClientIpHour);
        match client {
            Some(charge) if key.space == Space::Public && !own_limit => self
                .charge_client(charge, now)
                .await
                .err()
                .unwrap_or(refusal),
            _ => refusal,
        }
    }

    /// One send of the caller's own limit, alone; the 429 when it is full.
    async fn charge_client(&self, charge: &Charge, now: u64) -> Result<(), SendError> {
        let charged = self
            .parts
            .store
            .charge_alone(charge, now)
            .await
            .inspect_err(log_store_error)?;
        if charged {
            return Ok(());
        }
        tracing::warn!(limit = charge.limit.as_str(), "send refused: limit reached");
        Err(SendError::Limited {
            limit: charge.limit,
            retry_after: charge.resets_at.saturating_sub(now).max(1),
        })
    }

    /// The public send route's charge for a request it answers without a send (an address the
    /// user directory lacks): the caller's own limit, as for every other request.
    pub async fn charge_public_request(&self, client: Option<ClientIp>) -> Result<(), SendError> {
        let now = self.parts.clock.now();
        let Some(client) = client else { return Ok(()) };
        let pseudonym = self.parts.hasher.client_pseudonym(&client.counted_as());
        match self.parts.limits.client_charge(&pseudonym, now) {
            Some(charge) => self.charge_client(&charge, now).await,
            None => Ok(()),
        }
    }

    /// Stores a fresh code (replacing any previous one), charged to every send limit, and
    /// delivers it. If delivery fails for certain, the code just stored is removed again and
    /// the limits get their send back (unless the provider refused the destination), so the user
    /// keeps no half-sent code, no cooldown and no spent limit for our fault. If the provider
    /// may have sent it, everything stays: the SMS may have arrived, and been billed.
    pub async fn send(&self, request: SendRequest) -> Result<Sent, SendError> {
        let channel = request.destination.channel();
        let country = request.destination.calling_code();
        let result = self.send_unmeasured(request).await;
        let outcome = send_outcome(&result);
        meter::send(channel, country, outcome);
        if let Err(SendError::Limited { limit, .. }) = &result {
            meter::limit_refusal(*limit);
        }
        tracing::Span::current().record("outcome", outcome);
        result
    }

    async fn send_unmeasured(&self, request: SendRequest) -> Result<Sent, SendError> {
        let SendRequest {
            key,
            destination,
            caller,
            client,
            locale,
            trusted,
            origin,
        } = request;
        // Fields on each line as well as on the request span: the local server makes that span
        // only at `debug` (see `http::observe`), and its lines must still say who they are about.
        let caller = caller.as_deref().unwrap_or("-");
        let channel = destination.channel();
        // Checked before anything is written: a channel we cannot serve must not cost a cooldown.
        let Some(sender) = self.parts.senders.for_channel(channel) else {
            tracing::warn!(
                channel = channel.as_str(),
                "send refused: no sender configured for {}: {}",
                channel.as_str(),
                self.parts.senders.missing(channel)
            );
            return Err(SendError::ChannelUnavailable(channel));
        };
        let user = mask::user_id(key.user_id.as_str());
        let purpose = key.purpose.as_str();
        let to = destination.masked();
        note_subject(caller, &user, purpose, Some(&to));
        if let Some(phone) = destination.phone_number() {
            if let Some(detail) = self.parts.limits.refuse_number(phone) {
                tracing::warn!(
                    %caller, %user, purpose, %to,
                    kind = phone.facts().map_or("-", |facts| facts.kind.as_str()),
                    region = phone.facts().and_then(|facts| facts.region.as_deref()).unwrap_or("-"),
                    "send refused: number not allowed"
                );
                return Err(SendError::NumberRefused { detail });
            }
        }

        let policy = &self.parts.policy;
        let code = OneTimeCode::generate(policy.code_length);
        let hasher = &self.parts.hasher;
        let now = self.parts.clock.now();
        let destination_hash = hasher.destination_hash(&destination);
        // One pseudonym of the client's network for its counters and for the lockout.
        let network = self.network(client);
        let counted = client.is_some();
        let (sent_block, checked) = self.fraud_block(&destination, trusted);
        let verification = Verification {
            block: sent_block.clone(),
            id: VerificationId::generate(),
            space: key.space,
            // The public routes' user id is the address: only its masked form is kept.
            user_id: match key.space {
                Space::Backend => key.user_id.as_str().to_owned(),
                Space::Public => to.clone(),
            },
            purpose: purpose.to_owned(),
            channel,
            sent_to: to.clone(),
            calling_code: destination.calling_code(),
            created_at: now,
            expires_at: now + policy.ttl_secs,
            max_attempts: policy.max_attempts,
            delivery: Delivery::default(),
            ended: None,
            locked_at: None,
        };
        let mut new_code = NewCode {
            record: OtpRecord {
                code_hash: hasher.hash_code(&key, &code),
                channel,
                destination_hash: destination_hash.clone(),
                sent_to: to.clone(),
                sent_country: destination.calling_code(),
                sent_block,
                verification_id: Some(verification.id.clone()),
                sent_at: now,
                expires_at: now + policy.ttl_secs,
                attempts: 0,
                last_guess: None,
                lockout: None,
            },
            markers: hasher.code_markers(&key, &code),
            network,
            checks: Vec::new(),
            verification,
        };
        // The shared counters' shard: the next in turn that this instance does not know to be
        // full. A send refused by a full shard tries another; one the store refused by a
        // shard is a send that wrote nothing.
        let first = self.shards.next();
        let (mut tried, mut offset) = (0, 0);
        let (charges, stored) = loop {
            let counted = counted.then_some(&new_code.network);
            let charges_for =
                |shard| self.charges(&key, &destination, &destination_hash, counted, now, shard);
            let candidate = (offset..crate::limits::SHARDS)
                .map(|k| (k, charges_for(first.wrapping_add(k))))
                .find(|(_, charges)| self.shards.known_full(charges, now).is_none());
            let (k, charges) = candidate.unwrap_or_else(|| (0, charges_for(first)));
            let shard = first.wrapping_add(k);
            if let Some(full) = self.shards.known_full(&charges, now) {
                // Every shard of a shared counter is full here: refused without a request.
                let refused = crate::store::limited(full, now);
                break (charges.clone(), Ok(refused));
            }
            if let (true, Some(block)) = (checked, &new_code.record.sent_block) {
                new_code.checks = fraud::checks(block, new_code.record.sent_country, shard);
            }
            let started = Instant::now();
            let stored = self
                .parts
                .store
                .put_unless_blocked(&key, &new_code, now, policy, &charges)
                .instrument(child_span(|| {
                    tracing::info_span!("store", operation = "send")
                }))
                .await;
            meter::store_call("send", stored.is_ok(), started.elapsed());
            // A shard found full is remembered; one found busy (another send committing on it)
            // is only left for this send. Either way the next try takes another shard.
            let (full_shard, busy) = match &stored {
                Ok(PutOutcome::Limited { limit, .. }) => (
                    charges
                        .iter()
                        .find(|c| c.limit == *limit && c.shards > 1)
                        .cloned(),
                    false,
                ),
                Ok(PutOutcome::Busy { .. }) => (None, true),
                _ => (None, false),
            };
            if let Some(full) = &full_shard {
                self.shards.mark_full(full, now);
            }
            if (full_shard.is_some() || busy) && tried + 1 < SHARD_ATTEMPTS {
                tried += 1;
                offset = k + 1;
                continue;
            }
            break (charges, stored);
        };
        let stored = stored.inspect_err(log_store_error)?;
        let refusal = match stored {
            PutOutcome::Stored => None,
            PutOutcome::Busy { limit } => {
                // Our store's congestion, not the caller's doing: nothing is charged.
                let busy = format!("every {} shard tried was busy", limit.as_str());
                let error = StoreError::Unavailable(busy.into());
                log_store_error(&error);
                return Err(SendError::Store(error));
            }
            PutOutcome::CoolingDown { retry_after } => {
                tracing::info!(%caller, %user, purpose, retry_after, "send refused: cooldown");
                Some(SendError::CoolingDown(retry_after))
            }
            PutOutcome::Locked { retry_after } => {
                tracing::warn!(%caller, %user, purpose, retry_after, "send refused: locked out");
                Some(SendError::Locked(retry_after))
            }
            PutOutcome::FraudSuspected { prefix } => {
                tracing::warn!(
                    %caller, %user, purpose, channel = channel.as_str(), %to,
                    prefix = prefix.kind(), "send refused: fraud guard breaker open"
                );
                meter::fraud_guard(
                    "blocked",
                    FraudMode::Block.as_str(),
                    new_code.record.sent_country,
                );
                self.parts.fraud.extend(&prefix, now).await;
                Some(SendError::FraudSuspected)
            }
            PutOutcome::Limited { limit, retry_after } => {
                tracing::warn!(
                    %caller, %user, purpose, channel = channel.as_str(), limit = limit.as_str(),
                    retry_after, "send refused: limit reached"
                );
                Some(SendError::Limited { limit, retry_after })
            }
        };
        if let Some(refusal) = refusal {
            return Err(self
                .charge_public_caller(&key, &charges, refusal, now)
                .await);
        }
        let code_hash = new_code.record.code_hash.clone();
        let counted_send = |kind| fraud_tick(kind, &new_code.record);
        self.parts
            .fraud
            .count(counted_send(fraud::TickKind::Sent), now)
            .await;

        let receipts = &self.parts.senders.receipts;
        let message = Message {
            // Twilio takes SMS and WhatsApp messages only: email and calls ask for none.
            status_callback: matches!(channel, Channel::Sms | Channel::Whatsapp)
                .then(|| receipts.twilio_callback(origin.as_ref(), &new_code.verification.id))
                .flatten(),
            verification_id: new_code.verification.id.clone(),
            purpose: purpose.to_owned(),
            destination,
            code,
            ttl_secs: self.parts.policy.ttl_secs,
            brand: self.parts.brand.clone(),
            autofill: self.parts.autofill.clone(),
            locale,
        };
        let provider = sender.provider();
        let started = Instant::now();
        let delivered = sender
            .send(&message)
            .instrument(child_span(|| tracing::info_span!("provider", provider)))
            .await;
        meter::provider_call(provider, delivery_result(&delivered), started.elapsed());
        match delivered {
            Ok(accepted) => {
                let verification_id = new_code.verification.id.clone();
                tracing::info!(
                    %caller, %user, purpose, channel = channel.as_str(), %to,
                    verification = %verification_id, "code sent"
                );
                if let Some(message_id) = accepted.message_id {
                    // Only a provider that names its message here (the send hook) costs this
                    // second write; it never fails the send.
                    let _ = self
                        .timed(
                            "message_id",
                            self.parts
                                .store
                                .keep_message_id(&verification_id, &message_id),
                        )
                        .await;
                }
                Ok(Sent {
                    channel,
                    expires_in: self.parts.policy.ttl_secs,
                    verification_id,
                })
            }
            Err(DeliveryError::Uncertain(error)) => {
                tracing::warn!(
                    %caller, %user, purpose, channel = channel.as_str(), %to,
                    error = %error_chain(&*error),
                    "delivery uncertain; the code stays valid and the send counts"
                );
                Err(SendError::DeliveryUncertain {
                    retry_after: policy.cooldown_secs.max(1),
                    verification_id: new_code.verification.id.clone(),
                })
            }
            Err(error) => {
                tracing::warn!(
                    %caller, %user, purpose, channel = channel.as_str(), %to,
                    error = %error_chain(&error), "delivery failed; removing the stored code"
                );
                // A destination the provider refused keeps its charge: probing numbers must
                // still run into the limits. Our own failures give it back.
                let refunds = match error {
                    DeliveryError::InvalidDestination { .. } => &[][..],
                    _ => &charges[..],
                };
                let started = Instant::now();
                let withdrawn = self
                    .parts
                    .store
                    .withdraw_if_holds(&key, &code_hash, refunds)
                    .instrument(child_span(|| {
                        tracing::info_span!("store", operation = "withdraw")
                    }))
                    .await;
                meter::store_call("withdraw", withdrawn.is_ok(), started.elapsed());
                if let Ok(true) = withdrawn {
                    let tick = counted_send(fraud::TickKind::Withdrawn);
                    self.parts.fraud.count(tick, now).await;
                }
                if let Err(store_error) = withdrawn {
                    // The undelivered code stays until it expires; nobody knows it, so it grants
                    // nothing, but the user must wait out the cooldown. Loud, because rare.
                    tracing::error!(
                        %user, purpose, error = %error_chain(&store_error),
                        "could not remove an undelivered code"
                    );
                }
                Err(SendError::Delivery(error))
            }
        }
    }

    /// Checks a guess. The attempt is reserved, the guess recorded and the user's failures
    /// updated in one atomic store step *before* the outcome is known, so concurrent guesses can
    /// never exceed the caps and the right code can succeed only once.
    pub async fn verify(&self, request: &VerifyRequest) -> Result<VerifyOutcome, StoreError> {
        let VerifyRequest {
            key,
            passcode,
            destination,
            client,
            caller,
        } = request;
        let caller = caller.as_deref().unwrap_or("-");
        let user = mask::user_id(key.user_id.as_str());
        let purpose = key.purpose.as_str();
        note_subject(caller, &user, purpose, None);
        let hasher = &self.parts.hasher;
        let guesses = hasher.guess_hashes(key, passcode);
        let destination = destination.as_ref().map(|d| hasher.destination_hash(d));
        let network = self.network(*client);
        let attempt = GuessAttempt {
            guesses: &guesses,
            destination: destination.as_ref(),
            network: &network,
        };
        let now = self.parts.clock.now();
        let policy = &self.parts.policy;
        let started = Instant::now();
        let recorded = self
            .parts
            .store
            .record_guess(key, &attempt, now, policy)
            .instrument(child_span(|| {
                tracing::info_span!("store", operation = "verify")
            }))
            .await;
        meter::store_call("verify", recorded.is_ok(), started.elapsed());
        let recorded = match recorded {
            Ok(recorded) => recorded,
            Err(error) => {
                log_store_error(&error);
                meter::verification("store_error", None);
                tracing::Span::current().record("outcome", "store_error");
                return Err(error);
            }
        };
        let mut verified_country = None;
        let outcome = match recorded {
            GuessOutcome::Recorded(after) if after.is_consumed() => {
                verified_country = after.sent_country;
                let tick = fraud_tick(fraud::TickKind::Verified, &after);
                self.parts.fraud.count(tick, now).await;
                VerifyOutcome::Verified {
                    channel: after.channel,
                    sent_to: after.sent_to,
                }
            }
            GuessOutcome::Recorded(after) => match after.locked_for(now, policy) {
                Some(retry_after) => VerifyOutcome::Locked { retry_after },
                None => VerifyOutcome::WrongCode {
                    attempts_remaining: policy
                        .max_attempts
                        .saturating_sub(after.attempts)
                        .min(after.failures_left(policy)),
                },
            },
            GuessOutcome::Refused(None) => VerifyOutcome::NotFound,
            GuessOutcome::Refused(Some(before)) => refusal(&before, now, policy, &attempt),
        };
        match &outcome {
            VerifyOutcome::Verified { .. } => {
                tracing::info!(%caller, %user, purpose, "code verified")
            }
            VerifyOutcome::TooManyAttempts => {
                tracing::warn!(%caller, %user, purpose, "verify refused: attempts exhausted")
            }
            VerifyOutcome::Locked { retry_after } => {
                tracing::warn!(%caller, %user, purpose, retry_after, "verify refused: locked out")
            }
            VerifyOutcome::WrongDestination => {
                tracing::warn!(%caller, %user, purpose, "verify refused: code sent elsewhere")
            }
            other => tracing::debug!(%caller, %user, purpose, outcome = ?other, "verify refused"),
        }
        let name = outcome.as_str();
        meter::verification(name, verified_country);
        tracing::Span::current().record("outcome", name);
        Ok(outcome)
    }
}

/// Why a record refused a guess. A lockout is named first: whatever else is wrong, the user
/// must wait it out.
fn refusal(
    before: &OtpRecord,
    now: u64,
    policy: &Policy,
    attempt: &GuessAttempt<'_>,
) -> VerifyOutcome {
    if let Some(retry_after) = before.locked_for(now, policy) {
        return VerifyOutcome::Locked { retry_after };
    }
    if before.lockout.is_none() || before.is_consumed() {
        return VerifyOutcome::NotFound;
    }
    if before.is_expired(now) {
        return VerifyOutcome::Expired;
    }
    if attempt.destination.is_some_and(|d| !before.was_sent_to(d)) {
        return VerifyOutcome::WrongDestination;
    }
    if before.attempts >= policy.max_attempts {
        return VerifyOutcome::TooManyAttempts;
    }
    // Refused by a condition we cannot see from here (a concurrent change): nothing to guess.
    VerifyOutcome::NotFound
}

impl VerifyOutcome {
    /// The outcome as metrics and log lines name it.
    pub fn as_str(&self) -> &'static str {
        match self {
            VerifyOutcome::Verified { .. } => "verified",
            VerifyOutcome::WrongCode { .. } => "wrong_code",
            VerifyOutcome::NotFound => "not_found",
            VerifyOutcome::Expired => "expired",
            VerifyOutcome::TooManyAttempts => "too_many_attempts",
            VerifyOutcome::Locked { .. } => "locked",
            VerifyOutcome::WrongDestination => "wrong_destination",
        }
    }
}

/// A send's outcome as metrics and log lines name it.
pub fn send_outcome(result: &Result<Sent, SendError>) -> &'static str {
    match result {
        Ok(_) => "sent",
        Err(SendError::CoolingDown(_)) => "cooldown",
        Err(SendError::Locked(_)) => "locked",
        Err(SendError::Limited { .. }) => "rate_limited",
        Err(SendError::FraudSuspected) => "fraud_suspected",
        Err(SendError::NumberRefused { .. }) => "number_refused",
        Err(SendError::DeliveryUncertain { .. }) => "delivery_uncertain",
        Err(SendError::ChannelUnavailable(_)) => "channel_unavailable",
        Err(SendError::Delivery(DeliveryError::InvalidDestination { .. })) => "invalid_destination",
        Err(SendError::Delivery(_)) => "delivery_failed",
        Err(SendError::Store(_)) => "store_error",
    }
}

/// What the fraud guard counts of a record: a tick for a code sent to a phone number.
fn fraud_tick(kind: fraud::TickKind, record: &OtpRecord) -> Option<Tick> {
    let block = record.sent_block.clone()?;
    Some(Tick {
        kind,
        block: Some(block),
        country: record.sent_country,
        sent_at: record.sent_at,
        event: None,
    })
}

/// A delivery call's result as the `Result` dimension names it.
fn delivery_result(result: &Result<crate::sender::Accepted, DeliveryError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(DeliveryError::Unavailable { .. }) => "unavailable",
        Err(DeliveryError::InvalidDestination { .. }) => "refused_destination",
        Err(DeliveryError::Failed(_)) => "failed",
        Err(DeliveryError::Uncertain(_)) => "uncertain",
    }
}

/// A span under the request's, only when there is one: outside a logged request (the local
/// server at `info`, tests) no span is made at all.
fn child_span(make: impl FnOnce() -> tracing::Span) -> tracing::Span {
    if tracing::Span::current().is_none() {
        tracing::Span::none()
    } else {
        make()
    }
}

/// Who a request is about, masked, on the request's span (see [`crate::http::observe`]), so the
/// request line and every line under it name them.
fn note_subject(caller: &str, user: &str, purpose: &str, to: Option<&str>) {
    let span = tracing::Span::current();
    if span.is_none() {
        return;
    }
    span.record("caller", caller);
    span.record("user", user);
    span.record("purpose", purpose);
    if let Some(to) = to {
        span.record("to", to);
    }
}

fn log_store_error(error: &StoreError) {
    tracing::error!(error = %error_chain(error), "store unavailable");
}

#[path = "engine_lifecycle.rs"]
mod lifecycle;
pub use lifecycle::VerificationView;

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;

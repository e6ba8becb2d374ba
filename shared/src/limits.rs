//! Send limits: what keeps the service from becoming a free SMS relay. Two kinds of rule:
//!
//! - **Who may get an SMS at all** ([`SendLimits::refuse_number`]): an allow-list of countries
//!   and of number kinds (premium-rate and shared-cost ranges are how SMS pumping earns money).
//!   Decided from the number alone, before anything is written.
//! - **How many sends** ([`SendLimits::charges`]): counters per destination, per user, per client
//!   address, per SMS country calling code and for all SMS, each in fixed windows aligned to the
//!   epoch (days start at 00:00 UTC). The store charges every counter in the same atomic step
//!   that writes the code, so a send refused by a limit writes nothing and never reaches a
//!   provider, and concurrent sends can never pass a cap together.
//!
//! A fixed window lets a subject send up to its cap again as soon as the window turns, so up to
//! twice the cap can fall in a short span around the boundary; the daily windows bound that.

use std::net::IpAddr;

use crate::domain::{Destination, PhoneE164, Space};
pub use crate::settings::SendLimits;

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// Which counter refused a send; its name is in the `429` body as `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitName {
    Destination10Minutes,
    DestinationDay,
    /// The public route's sends to one destination from every client network together.
    DestinationCeilingDay,
    UserHour,
    ClientIpHour,
    SmsCountryDay,
    /// The global daily SMS budget: `503 sms_budget_exhausted`, not `429`.
    SmsDailyBudget,
}

impl LimitName {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitName::Destination10Minutes => "destination_per_10_minutes",
            LimitName::DestinationDay => "destination_per_day",
            LimitName::DestinationCeilingDay => "destination_ceiling_per_day",
            LimitName::UserHour => "user_per_hour",
            LimitName::ClientIpHour => "client_ip_per_hour",
            LimitName::SmsCountryDay => "sms_country_per_day",
            LimitName::SmsDailyBudget => "sms_daily_budget",
        }
    }

    /// What hit the limit, for the sentence a user reads.
    pub fn described(self) -> &'static str {
        match self {
            LimitName::Destination10Minutes
            | LimitName::DestinationDay
            | LimitName::DestinationCeilingDay => {
                "Too many codes were sent to this phone number or address"
            }
            LimitName::UserHour => "Too many codes were requested for this user",
            LimitName::ClientIpHour => "Too many codes were requested from this network",
            LimitName::SmsCountryDay => {
                "Too many codes were sent by SMS to this country today; use email or try later"
            }
            LimitName::SmsDailyBudget => "Codes cannot be sent by SMS right now; use email",
        }
    }
}

/// One counter a send increments, refused when it already holds `cap` sends in this window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub limit: LimitName,
    /// The counter's identity: its subject (pseudonymous) and its window's start.
    pub counter: String,
    pub cap: u32,
    /// When this window ends; the refusal's `Retry-After` counts to here.
    pub resets_at: u64,
    /// How many items the counter is split into (1: this one is the whole counter; more: `cap`
    /// is this shard's share, see [`sharded`]).
    pub shards: u32,
}

/// Whom a send is about, in the pseudonymous form counters are kept under (no number, address,
/// user id or IP address is stored).
#[derive(Debug)]
pub struct Subjects {
    pub destination: String,
    pub user: String,
    pub client: Option<String>,
    /// Which route family asks: each keeps its own destination counters, so public traffic
    /// cannot use up what a backend's sends to the same address are allowed.
    pub space: Space,
    /// Which shard of the shared counters (a country's, the budget) this send is charged to:
    /// any number, taken modulo the counter's shard count (see [`sharded`]).
    pub shard: u32,
}

/// The end user's address, as API Gateway or the socket saw it (or as a backend reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(IpAddr);

impl ClientIp {
    pub fn new(ip: IpAddr) -> Self {
        // An IPv4 client behind a dual-stack socket shows up as ::ffff:a.b.c.d.
        Self(ip.to_canonical())
    }

    pub fn parse(raw: &str) -> Option<Self> {
        raw.parse::<IpAddr>().ok().map(Self::new)
    }

    pub fn ip(&self) -> IpAddr {
        self.0
    }

    /// What is counted: the IPv4 address, or the IPv6 /64 (one subscriber's usual allocation, so
    /// rotating through it buys nothing).
    pub fn counted_as(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

impl SendLimits {
    /// Why this number may not get a code at all (by SMS, WhatsApp or a call: the same rules,
    /// since every one of them can be pumped), as a sentence the user can act on.
    pub fn refuse_number(&self, phone: &PhoneE164) -> Option<String> {
        // Every number a send route parsed has its facts; one without them is refused, not
        // waved through.
        let Some(facts) = phone.facts() else {
            return Some(
                "We cannot check this phone number. Use another number or an email address."
                    .to_owned(),
            );
        };
        if let Some(allowed) = &self.sms_countries {
            let region = facts.region.as_deref().unwrap_or("");
            if !allowed.iter().any(|c| c == region) {
                return Some(format!(
                    "We cannot send codes to phone numbers with the country code +{}. Use \
                     another number or an email address.",
                    facts.calling_code
                ));
            }
        }
        let kind = facts.kind;
        if !self.sms_number_kinds.contains(&kind) {
            return Some(format!(
                "This is {}, which cannot receive our codes. Use a mobile number or an \
                 email address.",
                kind.described()
            ));
        }
        None
    }

    /// The per-client counter alone, for a client's pseudonym (`None` when the limit is off).
    pub fn client_charge(&self, client: &str, now: u64) -> Option<Charge> {
        let subject = format!("ip#{client}");
        charge(
            LimitName::ClientIpHour,
            &subject,
            self.client_ip_per_hour,
            HOUR,
            now,
        )
    }

    /// Every counter this send must fit under, most specific first (that is the one a refusal
    /// names when several are full).
    ///
    /// The destination counters depend on the route family. A backend's sends (`/send-code`)
    /// are counted per destination. Public sends (`/auth/request-otp`) are counted per
    /// destination *and client network*, under the same caps, plus a higher daily ceiling for
    /// the destination from all networks together: an attacker's network running out of sends
    /// to an address leaves the owner's network its own, and a distributed attack still stops
    /// at the ceiling.
    pub fn charges(&self, subjects: &Subjects, destination: &Destination, now: u64) -> Vec<Charge> {
        let (dest, ceiling) = match subjects.space {
            Space::Backend => (format!("dest#b:{}", subjects.destination), None),
            Space::Public => {
                let network = subjects.client.as_deref().unwrap_or("-");
                let all = format!("dest#p:{}", subjects.destination);
                (format!("{all}@{network}"), Some(all))
            }
        };
        let user = format!("user#{}", subjects.user);
        let mut charges: Vec<Charge> = [
            charge(
                LimitName::Destination10Minutes,
                &dest,
                self.destination_per_10_minutes,
                10 * MINUTE,
                now,
            ),
            charge(
                LimitName::DestinationDay,
                &dest,
                self.destination_per_day,
                DAY,
                now,
            ),
            ceiling.and_then(|all| {
                charge(
                    LimitName::DestinationCeilingDay,
                    &all,
                    self.destination_ceiling_per_day,
                    DAY,
                    now,
                )
            }),
            charge(LimitName::UserHour, &user, self.user_per_hour, HOUR, now),
            subjects
                .client
                .as_ref()
                .and_then(|client| self.client_charge(client, now)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if destination.phone_number().is_some() {
            // A number without facts was refused before anything is charged.
            let code = destination.calling_code().unwrap_or_default();
            let country = format!("sms-cc#{code}");
            let shard = subjects.shard;
            charges.extend(sharded(
                LimitName::SmsCountryDay,
                &country,
                self.sms_country_per_day,
                now,
                shard,
            ));
            charges.extend(sharded(
                LimitName::SmsDailyBudget,
                "sms-all",
                self.sms_daily_budget,
                now,
                shard,
            ));
        }
        charges
    }
}

/// The most items a shared daily counter is split into.
pub const SHARDS: u32 = 16;

/// Sends a shard holds at least: a send that finds its shard full tries another, so shards of a
/// few sends each would make that the rule rather than the exception. A cap small enough to
/// need fewer shards is one whose items see little traffic anyway (60 a day is no hot item).
pub const SHARD_AT_LEAST: u32 = 10;

/// One shard of a counter every send of a country (or every SMS) is charged to: split over
/// `min(16, cap / 10)` items (at least one) whose caps add up to exactly `cap` (the first
/// `cap % n` take one more), so at the defaults no item is written by more than a sixteenth of
/// a burst and the whole still never passes its cap. A send charged to a full shard tries
/// another (the engine keeps count of which).
fn sharded(limit: LimitName, subject: &str, cap: u32, now: u64, shard: u32) -> Option<Charge> {
    let shards = (cap / SHARD_AT_LEAST).clamp(1, SHARDS);
    let index = shard % shards.max(1);
    let share = cap / shards.max(1) + u32::from(index < cap % shards.max(1));
    charge(limit, subject, share, DAY, now).map(|charge| Charge {
        counter: format!("{}#{index}of{shards}", charge.counter),
        shards,
        ..charge
    })
}

/// `subject`'s counter in the fixed window of `window` seconds around `now`; none when `cap` is 0
/// (the limit is off).
fn charge(limit: LimitName, subject: &str, cap: u32, window: u64, now: u64) -> Option<Charge> {
    (cap > 0).then(|| {
        let start = now - now % window;
        Charge {
            limit,
            counter: format!("{subject}#{window}#{start}"),
            cap,
            resets_at: start + window,
            shards: 1,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_counter_is_split_into_shares_that_add_up_to_its_cap() {
        for cap in [1, 5, 16, 60, 159, 160, 1000, 10_000, 12_345] {
            let shares: Vec<Charge> = (0..SHARDS)
                .filter_map(|shard| sharded(LimitName::SmsDailyBudget, "sms-all", cap, 0, shard))
                .collect();
            let distinct: std::collections::BTreeSet<&str> =
                shares.iter().map(|c| c.counter.as_str()).collect();
            let shards = (cap / SHARD_AT_LEAST).clamp(1, SHARDS) as usize;
            assert_eq!(distinct.len(), shards, "cap {cap}");
            let total: u32 = distinct
                .iter()
                .map(|counter| shares.iter().find(|c| c.counter == *counter).unwrap().cap)
                .sum();
            assert_eq!(total, cap, "the shares of {cap}");
        }
        assert!(
            sharded(LimitName::SmsDailyBudget, "sms-all", 0, 0, 3).is_none(),
            "off"
        );
    }
    use crate::domain::Email;

    fn phone(raw: &str) -> PhoneE164 {
        PhoneE164::parse(raw).unwrap()
    }

    fn subjects(client: Option<&str>) -> Subjects {
        Subjects {
            destination: "D".to_owned(),
            user: "U".to_owned(),
            client: client.map(str::to_owned),
            space: Space::Backend,
            shard: 0,
        }
    }

    #[test]
    fn an_sms_is_charged_to_every_counter_and_an_email_to_the_personal_ones() {
        let limits = SendLimits::default();
        let now = 1_800_000_123;
        let sms = limits.charges(
            &subjects(Some("I")),
            &Destination::Sms(phone("+14155552671")),
            now,
        );
        let names: Vec<_> = sms.iter().map(|c| c.limit.as_str()).collect();
        assert_eq!(
            names,
            [
                "destination_per_10_minutes",
                "destination_per_day",
                "user_per_hour",
                "client_ip_per_hour",
                "sms_country_per_day",
                "sms_daily_budget"
            ]
        );
        assert_eq!(sms[0].counter, "dest#b:D#600#1800000000");
        assert_eq!(sms[0].resets_at, 1_800_000_600);
        assert_eq!(sms[1].resets_at, 1_800_057_600, "midnight UTC");
        assert_eq!(sms[4].counter, "sms-cc#1#86400#1799971200#0of16");
        assert_eq!(
            (sms[4].cap, sms[5].cap),
            (63, 625),
            "1,000 and 10,000 in 16 shares"
        );
        let email = limits.charges(
            &subjects(None),
            &Destination::Email(Email::parse("a@example.com").unwrap()),
            now,
        );
        let names: Vec<_> = email.iter().map(|c| c.limit).collect();
        assert_eq!(
            names,
            [
                LimitName::Destination10Minutes,
                LimitName::DestinationDay,
                LimitName::UserHour
            ]
        );
    }

    #[test]
    fn public_sends_are_counted_per_network_under_a_ceiling_and_apart_from_backend_sends() {
        let limits = SendLimits::default();
        let email = Destination::Email(Email::parse("a@example.com").unwrap());
        let public = |client: Option<&str>| {
            let subjects = Subjects {
                space: Space::Public,
                shard: 0,
                ..subjects(client)
            };
            limits.charges(&subjects, &email, 1_800_000_123)
        };
        let from_i = public(Some("I"));
        let names: Vec<_> = from_i.iter().map(|c| c.limit).collect();
        assert_eq!(
            names,
            [
                LimitName::Destination10Minutes,
                LimitName::DestinationDay,
                LimitName::DestinationCeilingDay,
                LimitName::UserHour,
                LimitName::ClientIpHour
            ]
        );
        assert_eq!(from_i[0].counter, "dest#p:D@I#600#1800000000");
        assert_eq!(from_i[2].counter, "dest#p:D#86400#1799971200");
        assert_eq!(from_i[2].cap, 30);
        let from_j = public(Some("J"));
        assert_ne!(from_i[0].counter, from_j[0].counter, "one per network");
        assert_eq!(from_i[2].counter, from_j[2].counter, "one ceiling for all");
        let backend = limits.charges(&subjects(Some("I")), &email, 1_800_000_123);
        assert!(backend
            .iter()
            .all(|b| from_i.iter().all(|p| p.counter != b.counter
                || b.limit == LimitName::UserHour
                || b.limit == LimitName::ClientIpHour)));
        assert!(backend
            .iter()
            .all(|c| c.limit != LimitName::DestinationCeilingDay));
    }

    #[test]
    fn zero_turns_a_counter_off() {
        let limits = SendLimits {
            user_per_hour: 0,
            sms_daily_budget: 0,
            ..SendLimits::default()
        };
        let charges = limits.charges(&subjects(None), &Destination::Sms(phone("+14155552671")), 0);
        assert!(charges
            .iter()
            .all(|c| !matches!(c.limit, LimitName::UserHour | LimitName::SmsDailyBudget)));
        assert_eq!(charges.len(), 3);
    }

    #[test]
    fn premium_rate_and_foreign_numbers_are_refused_with_a_sentence() {
        let open = SendLimits::default();
        assert_eq!(open.refuse_number(&phone("+14155552671")), None);
        assert_eq!(open.refuse_number(&phone("+447911123456")), None);
        let premium = open.refuse_number(&phone("+449098790000")).unwrap();
        assert!(premium.contains("premium-rate number"), "{premium}");
        assert!(open.refuse_number(&phone("+19005550123")).is_some());
        assert!(open.refuse_number(&phone("+18005550199")).is_some());
        let us_only = SendLimits {
            sms_countries: Some(vec!["US".to_owned()]),
            ..SendLimits::default()
        };
        let refused = us_only.refuse_number(&phone("+4915123456789")).unwrap();
        assert!(refused.contains("+49"), "{refused}");
        assert_eq!(us_only.refuse_number(&phone("+14155552671")), None);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a = ClientIp::parse("2001:db8:1:2:aaaa::1").unwrap();
        let b = ClientIp::parse("2001:db8:1:2:ffff:1:2:3").unwrap();
        let other = ClientIp::parse("2001:db8:1:3::1").unwrap();
        assert_eq!(a.counted_as(), b.counted_as());
        assert_ne!(a.counted_as(), other.counted_as());
        let mapped = ClientIp::parse("::ffff:203.0.113.9").unwrap();
        assert_eq!(mapped.counted_as(), "203.0.113.9");
        assert!(ClientIp::parse("203.0.113.300").is_none());
        assert!(ClientIp::parse("localhost").is_none());
    }
}

//! `otp-service fraud-guard`: the fraud guard's breakers in the DynamoDB table, for operators.

use otp_core::code::CodeHasher;
use otp_core::fraud::{self, OpenBreaker, Prefix};
use otp_core::store::FraudLedger;

pub const USAGE: &str = "\
Usage: otp-service fraud-guard <list | check NUMBER | close PREFIX>

  list            the breakers opened lately: prefix, range, why, when, sends, verified, until
  check NUMBER    whether sends to an E.164 number are refused (its block's or country's breaker)
  close PREFIX    reopen a range now: a listed prefix (blk:..., cc:44) or an E.164 number (its
                  block); its counts start over

Reads OTP_TABLE_NAME (and the AWS credentials); a number is named with the deployment's key
(OTP_HASH_KEY or OTP_HASH_KEY_SECRET_ARN).
";

/// What the subcommand was asked.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    List,
    Check(String),
    Close(String),
}

impl Action {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["list"] => Ok(Self::List),
            ["check", number] => Ok(Self::Check(number.to_owned())),
            ["close", prefix] => Ok(Self::Close(prefix.to_owned())),
            _ => Err(USAGE.to_owned()),
        }
    }
}

/// The block prefix of an E.164 number, named with the deployment's key.
fn block_of(number: &str, hasher: Option<&CodeHasher>) -> Result<(Prefix, Option<u16>), String> {
    let phone = otp_core::domain::PhoneE164::parse(number).map_err(|e| {
        format!(
            "{number:?} is not a phone number this service sends to: {}",
            e.msg
        )
    })?;
    let hasher = hasher.ok_or(
        "naming a number's block needs the deployment's key: set OTP_HASH_KEY or \
         OTP_HASH_KEY_SECRET_ARN",
    )?;
    let digits = fraud::block_digits(phone.as_str()).ok_or("the number is too short")?;
    Ok((
        Prefix::Block(hasher.block_pseudonym(digits)),
        phone.calling_code(),
    ))
}

pub async fn run(
    action: Action,
    ledger: &dyn FraudLedger,
    hasher: Option<&CodeHasher>,
    now: u64,
) -> Result<String, String> {
    let listed = || async { ledger.breakers().await.map_err(|e| e.to_string()) };
    match action {
        Action::List => Ok(table(&listed().await?, now)),
        Action::Check(number) => {
            let (block, country) = block_of(&number, hasher)?;
            let mut held: Vec<OpenBreaker> = listed()
                .await?
                .into_iter()
                .filter(|b| b.until > now)
                .filter(|b| {
                    b.prefix == block.key()
                        || country.is_some_and(|c| b.prefix == Prefix::Country(c).key())
                })
                .collect();
            held.sort_by_key(|b| std::cmp::Reverse(b.until));
            Ok(match held.first() {
                Some(b) => format!(
                    "{number}: REFUSED by the breaker of {} ({}) until {}\n",
                    b.prefix,
                    b.hint,
                    when(b.until, now)
                ),
                None => {
                    format!("{number}: sends go out (no open breaker for its block or country)\n")
                }
            })
        }
        Action::Close(name) => {
            let prefix = match Prefix::parse(&name) {
                Some(prefix) => prefix,
                None => block_of(&name, hasher)?.0,
            };
            let closed = ledger.close(&prefix).await.map_err(|e| e.to_string())?;
            Ok(if closed {
                format!(
                    "closed {}: sends to it go out again; its counts start over\n",
                    prefix.key()
                )
            } else {
                format!(
                    "{} was not listed; its check items and counts were cleared anyway\n",
                    prefix.key()
                )
            })
        }
    }
}

/// `2026-12-02 22:47 UTC (in 3 h 12 min)`.
fn when(at: u64, now: u64) -> String {
    let stamp = i64::try_from(at)
        .ok()
        .and_then(|at| chrono::DateTime::from_timestamp(at, 0))
        .map_or_else(
            || at.to_string(),
            |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
        );
    let (minutes, direction) = if at >= now {
        ((at - now) / 60, "in ")
    } else {
        ((now - at) / 60, "")
    };
    let span = if minutes >= 60 {
        format!("{} h {} min", minutes / 60, minutes % 60)
    } else {
        format!("{minutes} min")
    };
    let ago = if at >= now { "" } else { " ago" };
    format!("{stamp} ({direction}{span}{ago})")
}

fn table(breakers: &[OpenBreaker], now: u64) -> String {
    if breakers.is_empty() {
        return "no breaker has opened lately\n".to_owned();
    }
    let mut out = String::new();
    for b in breakers {
        let state = if b.until > now { "OPEN" } else { "expired" };
        out.push_str(&format!(
            "{state:<8} {:<27} {:<10} {:<8} {:<11} sent {:>5}, verified {:>5}; opened {}; until {}\n",
            b.prefix,
            b.hint,
            b.reason.as_str(),
            if b.prefix.starts_with("cc:") {
                "country"
            } else {
                "block"
            },
            b.sent,
            b.verified,
            when(b.opened_at, now),
            when(b.until, now)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subcommand_takes_exactly_its_arguments() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(Action::parse(&args(&["list"])), Ok(Action::List));
        assert_eq!(
            Action::parse(&args(&["close", "cc:63"])),
            Ok(Action::Close("cc:63".into()))
        );
        assert!(Action::parse(&args(&["list", "extra"])).is_err());
        assert!(Action::parse(&args(&["open", "cc:1"])).is_err());
        assert!(Action::parse(&args(&[])).is_err());
    }

    #[test]
    fn times_are_shown_in_utc_and_from_now() {
        assert_eq!(
            when(1_800_003_660, 1_800_000_000),
            "2027-01-15 09:01 UTC (in 1 h 1 min)"
        );
        assert_eq!(
            when(1_800_000_000, 1_800_000_600),
            "2027-01-15 08:00 UTC (10 min ago)"
        );
    }
}

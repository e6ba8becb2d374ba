//! The phone channels beyond SMS: WhatsApp (`TWILIO_WHATSAPP_FROM`, `TWILIO_WHATSAPP_CONTENT_SID`)
//! and voice calls (`TWILIO_VOICE_FROM`), both through the Twilio account of the SMS channel.
//! Each is offered only when its sender is configured: a call or a WhatsApp message costs more
//! than an SMS, so nobody gets them by surprise.

use super::{ConfigError, Env};
use crate::domain::PhoneE164;
use crate::locale::Locale;

pub const TWILIO_WHATSAPP_FROM: &str = "TWILIO_WHATSAPP_FROM";
pub const TWILIO_WHATSAPP_CONTENT_SID: &str = "TWILIO_WHATSAPP_CONTENT_SID";
pub const TWILIO_VOICE_FROM: &str = "TWILIO_VOICE_FROM";
pub const SMS_PROVIDER: &str = "OTP_SMS_PROVIDER";
pub const AWS_SMS_ORIGINATION_IDENTITY: &str = "OTP_AWS_SMS_ORIGINATION_IDENTITY";
pub const AWS_SMS_PROTECT_CONFIGURATION_ID: &str = "OTP_AWS_SMS_PROTECT_CONFIGURATION_ID";
pub const AWS_SMS_CONFIGURATION_SET: &str = "OTP_AWS_SMS_CONFIGURATION_SET";

/// SMS through AWS End User Messaging SMS (`OTP_SMS_PROVIDER=aws`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSmsSettings {
    /// A phone number, sender ID or pool: its ID or ARN.
    pub origination_identity: String,
    /// Blocks countries at AWS's side as well (the service's own rules run first).
    pub protect_configuration_id: Option<String>,
    pub configuration_set: Option<String>,
}

/// Who sends SMS: `twilio` (the default, when a Twilio account is set) or `aws`.
pub(super) fn aws_sms(
    env: &Env<'_>,
    twilio_configured: bool,
) -> Result<Option<AwsSmsSettings>, ConfigError> {
    match env.get(SMS_PROVIDER).as_deref() {
        None => Ok(None),
        Some("twilio") if twilio_configured => Ok(None),
        Some("twilio") => Err(ConfigError::Missing {
            var: super::TWILIO_ACCOUNT_SID,
            hint: "OTP_SMS_PROVIDER=twilio needs the Twilio account",
        }),
        Some("aws") => {
            let origination_identity =
                env.get(AWS_SMS_ORIGINATION_IDENTITY)
                    .ok_or(ConfigError::Missing {
                        var: AWS_SMS_ORIGINATION_IDENTITY,
                        hint: "OTP_SMS_PROVIDER=aws sends from a phone number, sender ID or pool \
                               of AWS End User Messaging: its ID or ARN",
                    })?;
            Ok(Some(AwsSmsSettings {
                origination_identity,
                protect_configuration_id: env.get(AWS_SMS_PROTECT_CONFIGURATION_ID),
                configuration_set: env.get(AWS_SMS_CONFIGURATION_SET),
            }))
        }
        Some(other) => Err(ConfigError::Invalid {
            var: SMS_PROVIDER,
            reason: format!("must be twilio or aws, got {other:?}"),
        }),
    }
}

/// WhatsApp through Twilio's Messages API with an approved authentication template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsappSettings {
    /// The WhatsApp sender's number, E.164 (sent as `whatsapp:+...`).
    pub from: String,
    /// The template for each language it was approved in; the first is the default. Meta
    /// writes an authentication template's words itself, per language: a language is chosen
    /// by choosing its template.
    pub templates: Vec<(Locale, String)>,
}

impl WhatsappSettings {
    /// The template in the message's language, else in the same language of another region
    /// (`pt` for `pt-BR`), else the default.
    pub fn content_sid(&self, locale: Locale) -> &str {
        let language = |l: Locale| l.tag().split('-').next().unwrap_or_default();
        self.templates
            .iter()
            .find(|(l, _)| *l == locale)
            .or_else(|| {
                self.templates
                    .iter()
                    .find(|(l, _)| language(*l) == language(locale))
            })
            .unwrap_or(&self.templates[0])
            .1
            .as_str()
    }
}

/// The phone channels' settings, read only when a Twilio account is configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneChannels {
    pub whatsapp: Option<WhatsappSettings>,
    /// The number calls come from: one of the account's voice-capable numbers.
    pub voice_from: Option<String>,
}

fn number(env: &Env<'_>, var: &'static str) -> Result<Option<String>, ConfigError> {
    env.get(var)
        .map(|raw| {
            let raw = raw.strip_prefix("whatsapp:").unwrap_or(&raw);
            PhoneE164::parse(raw)
                .map(|p| p.as_str().to_owned())
                .map_err(|_| ConfigError::Invalid {
                    var,
                    reason: "must be a phone number in E.164 format, e.g. +14155552671".to_owned(),
                })
        })
        .transpose()
}

fn content_sid(var: &'static str, raw: &str) -> Result<String, ConfigError> {
    let ok =
        raw.len() == 34 && raw.starts_with("HX") && raw[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ConfigError::Invalid {
            var,
            reason: format!(
                "must be a Content API template SID (HX and 32 hex digits), or a list \
                 `en=HX...,pt-BR=HX...`; got {raw:?}"
            ),
        })
    }
}

/// `HX...` (one template) or `en=HX...,pt-BR=HX...` (one per language, the first the default).
fn templates(raw: &str) -> Result<Vec<(Locale, String)>, ConfigError> {
    let var = TWILIO_WHATSAPP_CONTENT_SID;
    if !raw.contains('=') {
        return Ok(vec![(Locale::english(), content_sid(var, raw)?)]);
    }
    raw.split(',')
        .map(|entry| {
            let (tag, sid) = entry.split_once('=').ok_or_else(|| ConfigError::Invalid {
                var,
                reason: format!("entry {entry:?} is not `language=HX...`"),
            })?;
            let locale = Locale::parse(tag.trim()).map_err(|_| ConfigError::Invalid {
                var,
                reason: format!("{:?} is not a BCP 47 language tag", tag.trim()),
            })?;
            Ok((locale, content_sid(var, sid.trim())?))
        })
        .collect()
}

pub(super) fn phone_channels(
    env: &Env<'_>,
    twilio_configured: bool,
) -> Result<PhoneChannels, ConfigError> {
    let whatsapp_from = number(env, TWILIO_WHATSAPP_FROM)?;
    let content = env.get(TWILIO_WHATSAPP_CONTENT_SID);
    let voice_from = number(env, TWILIO_VOICE_FROM)?;
    if !twilio_configured && (whatsapp_from.is_some() || voice_from.is_some()) {
        return Err(ConfigError::Missing {
            var: super::TWILIO_ACCOUNT_SID,
            hint: "WhatsApp and voice go through Twilio: set the account (and its token) too",
        });
    }
    let whatsapp = match (whatsapp_from, content) {
        (None, None) => None,
        (Some(from), Some(content)) => Some(WhatsappSettings {
            from,
            templates: templates(&content)?,
        }),
        (Some(_), None) => {
            return Err(ConfigError::Missing {
                var: TWILIO_WHATSAPP_CONTENT_SID,
                hint: "WhatsApp sends codes only with an approved authentication template: its \
                       Content API SID (HX...)",
            })
        }
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                var: TWILIO_WHATSAPP_FROM,
                hint: "the WhatsApp sender's number, to use TWILIO_WHATSAPP_CONTENT_SID",
            })
        }
    };
    Ok(PhoneChannels {
        whatsapp,
        voice_from,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SID: &str = "HX0123456789abcdef0123456789abcdef";

    fn parse(vars: &[(&str, &str)], twilio: bool) -> Result<PhoneChannels, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        phone_channels(&Env(&|k| map.get(k).cloned()), twilio)
    }

    #[test]
    fn nothing_is_offered_unless_configured() {
        assert_eq!(parse(&[], true).unwrap(), PhoneChannels::default());
    }

    #[test]
    fn whatsapp_needs_a_sender_and_a_template() {
        let both = parse(
            &[
                ("TWILIO_WHATSAPP_FROM", "whatsapp:+14155550100"),
                ("TWILIO_WHATSAPP_CONTENT_SID", SID),
            ],
            true,
        )
        .unwrap();
        let whatsapp = both.whatsapp.unwrap();
        assert_eq!(whatsapp.from, "+14155550100");
        assert_eq!(whatsapp.content_sid(Locale::english()), SID);
        let only_from = parse(&[("TWILIO_WHATSAPP_FROM", "+14155550100")], true);
        assert!(only_from
            .unwrap_err()
            .to_string()
            .starts_with("TWILIO_WHATSAPP_CONTENT_SID is required"));
        let only_sid = parse(&[("TWILIO_WHATSAPP_CONTENT_SID", SID)], true);
        assert!(only_sid
            .unwrap_err()
            .to_string()
            .starts_with("TWILIO_WHATSAPP_FROM is required"));
        let bad_tag = format!("xx_y={SID}");
        for bad in [
            "HX123",
            "MG0123456789abcdef0123456789abcdef",
            "en=HX1",
            bad_tag.as_str(),
        ] {
            let error = parse(
                &[
                    ("TWILIO_WHATSAPP_FROM", "+14155550100"),
                    ("TWILIO_WHATSAPP_CONTENT_SID", bad),
                ],
                true,
            );
            assert!(error.is_err(), "{bad}");
        }
    }

    #[test]
    fn each_language_gets_its_template_and_others_the_first() {
        let en = SID;
        let pt = "HX00000000000000000000000000000002";
        let de = "HX00000000000000000000000000000003";
        let whatsapp = parse(
            &[
                ("TWILIO_WHATSAPP_FROM", "+14155550100"),
                (
                    "TWILIO_WHATSAPP_CONTENT_SID",
                    &format!("en={en}, pt-BR={pt}, de={de}"),
                ),
            ],
            true,
        )
        .unwrap()
        .whatsapp
        .unwrap();
        let sid = |tag: &str| whatsapp.content_sid(Locale::parse(tag).unwrap()).to_owned();
        assert_eq!(sid("pt-BR"), pt);
        assert_eq!(sid("pt-PT"), pt, "same language, another region");
        assert_eq!(sid("de-AT"), de);
        assert_eq!(sid("ja"), en, "no template in that language: the first");
    }

    #[test]
    fn the_sms_provider_is_twilio_unless_aws_is_asked_for() {
        let env = |vars: &[(&str, &str)], twilio| {
            let map: HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            aws_sms(&Env(&|k| map.get(k).cloned()), twilio)
        };
        assert_eq!(env(&[], true).unwrap(), None);
        assert_eq!(env(&[("OTP_SMS_PROVIDER", "twilio")], true).unwrap(), None);
        assert!(env(&[("OTP_SMS_PROVIDER", "twilio")], false).is_err());
        assert!(env(&[("OTP_SMS_PROVIDER", "sns")], true).is_err());
        let missing = env(&[("OTP_SMS_PROVIDER", "aws")], false).unwrap_err();
        assert!(missing
            .to_string()
            .starts_with("OTP_AWS_SMS_ORIGINATION_IDENTITY is required"));
        let aws = env(
            &[
                ("OTP_SMS_PROVIDER", "aws"),
                ("OTP_AWS_SMS_ORIGINATION_IDENTITY", "pool-123"),
                ("OTP_AWS_SMS_PROTECT_CONFIGURATION_ID", "protect-abc"),
            ],
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(aws.origination_identity, "pool-123");
        assert_eq!(aws.protect_configuration_id.as_deref(), Some("protect-abc"));
        assert_eq!(aws.configuration_set, None);
    }

    #[test]
    fn voice_and_whatsapp_need_the_twilio_account() {
        let error = parse(&[("TWILIO_VOICE_FROM", "+14155550100")], false).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("TWILIO_ACCOUNT_SID is required"));
        let voice = parse(&[("TWILIO_VOICE_FROM", "+14155550100")], true).unwrap();
        assert_eq!(voice.voice_from.as_deref(), Some("+14155550100"));
        assert!(parse(&[("TWILIO_VOICE_FROM", "555")], true).is_err());
    }
}

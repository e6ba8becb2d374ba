//! The OpenAPI 3.1 document, assembled from the real types: each route's request contract and
//! outcome enum, and the body rejections every route shares. The local server serves it; the
//! Lambda functions do not carry it (feature `openapi`).

use std::collections::BTreeMap;

use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HeaderBuilder, InfoBuilder, OneOfBuilder, OpenApi,
    OpenApiBuilder, PathsBuilder, Ref, RefOr, Required, ResponseBuilder, Responses,
    ResponsesBuilder, Tag,
};
use utoipa::{PartialSchema, ToSchema};

use crate::http::auth::{Caller, Sending, Verifying};
use crate::http::body::{BodyRejection, Contract};
use crate::http::request_otp::{RequestOtpReply, RequestOtpRequest};
use crate::http::schema::{self, register, Outcome, Outcomes, Schemas};
use crate::http::send_code::{SendCodeOk, SendCodeRequest};
use crate::http::sending::SendReply;
use crate::http::verifications::{CancelReply, VerificationReply};
use crate::http::verify_code::{VerifyCodeReply, VerifyCodeRequest};
use crate::http::verify_otp::{VerifyOtpReply, VerifyOtpRequest};
use crate::http::{jwks, request_otp, send_code, verifications, verify_code, verify_otp};
use crate::settings::Policy;

/// The security scheme of the backend routes.
const API_KEY: &str = "apiKey";

struct RouteDoc {
    /// Backend routes need a caller credential (401/403 and a security requirement).
    guard: Option<Vec<Outcome>>,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: Option<&'static str>,
}

const CODES: &str = "codes";
const EMAIL_LOGIN: &str = "email login";
const TOKENS: &str = "verification tokens";
#[cfg(feature = "twilio")]
const RECEIPTS: &str = "delivery receipts";

/// Documents `POST doc.path`: request body `R`, outcomes of `O` and of the shared rejections.
/// Outcomes that share a status are documented as one response whose body is any of them.
fn operation<R: Contract + ToSchema, O: Outcomes>(
    doc: RouteDoc,
    paths: PathsBuilder,
    schemas: &mut Schemas,
) -> PathsBuilder {
    register::<R>(schemas);
    let guarded = doc.guard.is_some();
    let outcomes = doc
        .guard
        .unwrap_or_default()
        .into_iter()
        .chain(BodyRejection::outcomes())
        .chain(O::outcomes());
    let operation = OperationBuilder::new()
        .securities(security(guarded))
        .tag(doc.tag)
        .summary(Some(doc.summary))
        .description(doc.description)
        .request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(R::name())))
                        .build(),
                )
                .required(Some(Required::True))
                .build(),
        ))
        .responses(responses(outcomes, schemas))
        .build();
    paths.path(doc.path, PathItem::new(HttpMethod::Post, operation))
}

/// Documents `method doc.path` without a body, its one path parameter `verification_id`.
fn verification_operation<O: Outcomes>(
    method: HttpMethod,
    doc: RouteDoc,
    paths: PathsBuilder,
    schemas: &mut Schemas,
) -> PathsBuilder {
    let guarded = doc.guard.is_some();
    let outcomes = doc
        .guard
        .unwrap_or_default()
        .into_iter()
        .chain(O::outcomes());
    let parameter = verification_id(
        ParameterIn::Path,
        "The `verification_id` of a `/send-code` answer",
    );
    let operation = OperationBuilder::new()
        .securities(security(guarded))
        .tag(doc.tag)
        .summary(Some(doc.summary))
        .description(doc.description)
        .parameter(parameter)
        .responses(responses(outcomes, schemas))
        .build();
    paths.path(doc.path, PathItem::new(method, operation))
}

/// Documents `POST /webhooks/twilio/status`: Twilio's form post, signed, naming the
/// verification in its query.
#[cfg(feature = "twilio")]
fn twilio_status(paths: PathsBuilder, schemas: &mut Schemas) -> PathsBuilder {
    use crate::http::twilio_status::{TwilioStatusReply, PATH};
    let text = |description: &'static str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    };
    let form = ObjectBuilder::new()
        .property("MessageSid", text("Twilio's id of the message (`SM...`)"))
        .property(
            "MessageStatus",
            text("queued, sent, delivered, read, undelivered, failed, ...")
                .pattern(Some(
                    "^(accepted|scheduled|queued|sending|sent|delivered|read|undelivered|failed|canceled)$",
                )),
        )
        .property("ErrorCode", text("With undelivered or failed: 30003, 30005, ..."))
        .required("MessageStatus")
        .build();
    let verification = verification_id(
        ParameterIn::Query,
        "Set by the service in the message's `StatusCallback`",
    );
    let signature = ParameterBuilder::new()
        .name("X-Twilio-Signature")
        .parameter_in(ParameterIn::Header)
        .required(Required::True)
        .description(Some(
            "Base64 HMAC-SHA1, keyed with the account's auth token, of the URL and the sorted \
             form parameters (Twilio's request validation)",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build();
    let operation = OperationBuilder::new()
        .tag(RECEIPTS)
        .summary(Some("Twilio's delivery receipt of a code"))
        .description(Some(
            "Twilio posts here because each SMS and WhatsApp message is created with \
             `StatusCallback` set to this URL (when the service knows its public URL: \
             `OTP_PUBLIC_BASE_URL`, or in AWS the API's own). No API key: a request whose \
             `X-Twilio-Signature` does not match is refused and changes nothing.",
        ))
        .parameter(verification)
        .parameter(signature)
        .request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/x-www-form-urlencoded",
                    ContentBuilder::new().schema(Some(form)).build(),
                )
                .required(Some(Required::True))
                .build(),
        ))
        .responses(responses(
            TwilioStatusReply::outcomes().into_iter(),
            schemas,
        ))
        .build();
    paths.path(PATH, PathItem::new(HttpMethod::Post, operation))
}

/// The `verification_id` parameter, in the path or the query.
fn verification_id(
    location: ParameterIn,
    description: &'static str,
) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("verification_id")
        .parameter_in(location)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(64))
                .pattern(Some("^[A-Za-z0-9_-]+$")),
        ))
        .build()
}

fn security(guarded: bool) -> Option<Vec<SecurityRequirement>> {
    guarded.then(|| vec![SecurityRequirement::new(API_KEY, Vec::<String>::new())])
}

/// The responses of `outcomes`: those that share a status are one response whose body is any
/// of them.
fn responses(outcomes: impl Iterator<Item = Outcome>, schemas: &mut Schemas) -> Responses {
    let mut by_status: BTreeMap<u16, Vec<Outcome>> = BTreeMap::new();
    for outcome in outcomes {
        (outcome.register)(schemas);
        by_status.entry(outcome.status).or_default().push(outcome);
    }
    let mut responses = ResponsesBuilder::new();
    for (status, outcomes) in by_status {
        let description: Vec<&str> = outcomes.iter().map(|o| o.description).collect();
        let mut refs: Vec<String> = outcomes.iter().map(|o| o.body.clone()).collect();
        refs.dedup();
        let schema: RefOr<Schema> = match refs.as_slice() {
            [one] => Ref::from_schema_name(one).into(),
            many => many
                .iter()
                .fold(OneOfBuilder::new(), |b, name| {
                    b.item(Ref::from_schema_name(name))
                })
                .into(),
        };
        let mut response = ResponseBuilder::new()
            .description(description.join("; or "))
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(schema)).build(),
            );
        if outcomes.iter().any(|o| o.retry_after) {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(u64::schema()))
                    .description(Some("Seconds until a new code may be requested"))
                    .build(),
            );
        }
        responses = responses.response(status.to_string(), response.build());
    }
    responses.build()
}

const DESCRIPTION: &str = "One-time passcodes by SMS or email.

**Security semantics.** Codes are uniform random digits from a CSPRNG; only a keyed HMAC-SHA256 \
of each is stored. A code expires `OTP_TTL_SECONDS` after it is sent (default 300), allows \
`OTP_MAX_ATTEMPTS` guesses (default 3; right or wrong, each reserved atomically before the \
comparison, so concurrent guessing cannot exceed it) and works once: concurrent right answers \
succeed exactly once. A new send replaces the pending code for the same user and purpose and \
resets its attempts; a resend within `OTP_RESEND_COOLDOWN_SECONDS` (default 30) is refused with \
`Retry-After` (expiry does not end a cooldown). A failed delivery leaves no code and costs no \
cooldown. Wrong codes count per user across resends: `OTP_LOCKOUT_FAILURES` (default 10) within \
`OTP_LOCKOUT_WINDOW_SECONDS` (default 3600) lock the user out of sending and verifying until the \
window passes (429 `locked`, `Retry-After`); a success resets the count.

**Callers.** `/send-code` and `/verify-code` are for your backend and need `Authorization: Bearer \
<API key>` (or, deployed with IAM auth, a SigV4 signature). `/auth/*` are public. The two pairs \
keep separate records: a code sent through one is never accepted by the other. A `/verify-code` \
success returns the channel and masked destination the code was sent to.

**Verification tokens.** A success on `/verify-code` or `/auth/verify-otp` also returns \
`verification_token`: a compact JWS (`alg` EdDSA, `kid` in the header) with `iss`, `aud` (one \
per route family, so neither kind passes for the other), `sub` (the user id, or the lower-cased \
address), `purpose`, `channel`, `iat`, `exp` and a unique `jti`; \
only `/auth/verify-otp` tokens have `email` and `email_verified`. \
Check it with the keys at `/.well-known/jwks.json`, and remember each `jti` until `exp` so a \
token is accepted once.

**Public routes.** `/auth/*` are for browsers: they need `Content-Type: application/json`, never \
say whether an address has an account or a pending code (refusals about the address are \
answered as a send; every failed check is the same 400), and every answer is `Cache-Control: \
no-store`.

**Errors.** Every error body has a sentence in `detail`; 422 lists each bad field FastAPI-style. \
Other paths answer 404 and other methods 405, both `{\"detail\": ...}`.";

/// `GET /.well-known/jwks.json`: no body, a JWK Set.
fn key_set(paths: PathsBuilder) -> PathsBuilder {
    let jwk = ObjectBuilder::new()
        .property(
            "kty",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["OKP"])),
        )
        .property(
            "crv",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["Ed25519"])),
        )
        .property(
            "x",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The public key, base64url")),
        )
        .property(
            "kid",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("The key's JWK thumbprint (RFC 7638)")),
        )
        .property(
            "alg",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["EdDSA"])),
        )
        .property(
            "use",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["sig"])),
        )
        .required("kty")
        .required("crv")
        .required("x")
        .required("kid");
    let set = ObjectBuilder::new()
        .property("keys", ArrayBuilder::new().items(jwk))
        .required("keys")
        .build();
    let response = ResponseBuilder::new()
        .description("The public keys of the verification tokens; the current one first")
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(set)).build(),
        )
        .build();
    let operation = OperationBuilder::new()
        .tag(TOKENS)
        .summary(Some("The keys that check verification tokens"))
        .description(Some(
            "A JWK Set (RFC 7517). Cache it for up to `max-age`; fetch it again when a token \
             names a `kid` it does not hold (keys rotate).",
        ))
        .responses(ResponsesBuilder::new().response("200", response).build())
        .build();
    paths.path(jwks::PATH, PathItem::new(HttpMethod::Get, operation))
}

/// The document for a running configuration (the passcode pattern follows `OTP_CODE_LENGTH`).
pub fn document(policy: &Policy) -> OpenApi {
    let mut schemas = Schemas::new();
    let mut paths = PathsBuilder::new();
    paths = operation::<SendCodeRequest, SendReply<SendCodeOk>>(
        RouteDoc {
            guard: Some(Caller::<Sending>::outcomes()),
            path: send_code::PATH,
            tag: CODES,
            summary: "Send a code by SMS or email",
            description: Some(
                "Generates a code, stores only its keyed hash, and delivers it. A new send \
                 replaces the user's pending code for the same purpose and resets its attempts.",
            ),
        },
        paths,
        &mut schemas,
    );
    paths = operation::<VerifyCodeRequest, VerifyCodeReply>(
        RouteDoc {
            guard: Some(Caller::<Verifying>::outcomes()),
            path: verify_code::PATH,
            tag: CODES,
            summary: "Check a code",
            description: Some(
                "Each call reserves one attempt before the code is compared; the right code \
                 succeeds once.",
            ),
        },
        paths,
        &mut schemas,
    );
    paths = operation::<RequestOtpRequest, RequestOtpReply>(
        RouteDoc {
            guard: None,
            path: request_otp::PATH,
            tag: EMAIL_LOGIN,
            summary: "Send a code to an email address",
            description: Some(
                "Called by browsers: needs `Content-Type: application/json` (415 otherwise) \
                 and, when the service has a CAPTCHA, `captcha_token`. Answers never tell \
                 whether the address has an account or a pending code.",
            ),
        },
        paths,
        &mut schemas,
    );
    paths = operation::<VerifyOtpRequest, VerifyOtpReply>(
        RouteDoc {
            guard: None,
            path: verify_otp::PATH,
            tag: EMAIL_LOGIN,
            summary: "Check an emailed code",
            description: Some(
                "Called by browsers: needs `Content-Type: application/json`. A success returns \
                 `verification_token` for the application's backend to check; every failure is \
                 the same 400.",
            ),
        },
        paths,
        &mut schemas,
    );
    paths = key_set(paths);
    paths = verification_operation::<VerificationReply>(
        HttpMethod::Get,
        RouteDoc {
            guard: Some(Caller::<Verifying>::outcomes()),
            path: verifications::PATH,
            tag: CODES,
            summary: "Look a verification up",
            description: Some(
                "Its status (`pending`, `approved`, `canceled`, `expired`, \
                 `max_attempts_reached`, `superseded`), its delivery as the provider's receipts \
                 tell it, and what is left of it. Verifications made through the public routes \
                 are not shown. After a newer code replaced it, a verification reads \
                 `superseded` until its ending is written down (at once on the embedded store; \
                 in AWS when the table's stream function has seen the change).",
            ),
        },
        paths,
        &mut schemas,
    );
    paths = verification_operation::<CancelReply>(
        HttpMethod::Post,
        RouteDoc {
            guard: Some(Caller::<Sending>::outcomes()),
            path: verifications::CANCEL_PATH,
            tag: CODES,
            summary: "Cancel a verification",
            description: Some(
                "Withdraws a pending code: it never verifies, and a new code may be sent at \
                 once (for a user who changed their number). Send limits keep the send.",
            ),
        },
        paths,
        &mut schemas,
    );
    #[cfg(feature = "twilio")]
    {
        paths = twilio_status(paths, &mut schemas);
    }
    for (_, schema) in &mut schemas {
        schema::set_code_length(schema, policy.code_length);
    }
    let tag = |name: &str, description: &str| {
        let mut tag = Tag::new(name);
        tag.description = Some(description.to_owned());
        tag
    };
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("OTP verification service")
                .version("1.0.0")
                .description(Some(DESCRIPTION))
                .build(),
        )
        .paths(paths.build())
        .components(Some(
            ComponentsBuilder::new()
                .schemas_from_iter(schemas)
                .security_scheme(
                    API_KEY,
                    SecurityScheme::Http(
                        Http::builder()
                            .scheme(HttpAuthScheme::Bearer)
                            .description(Some(
                                "An API key (`OTP_CALLER_AUTH=api_key`): `Authorization: Bearer \
                                 <key>`. With `iam`, API Gateway checks a SigV4 signature \
                                 instead; with `none`, nothing is checked.",
                            ))
                            .build(),
                    ),
                )
                .build(),
        ))
        .tags(Some(vec![
            tag(CODES, "Send and check codes for any user id and purpose"),
            tag(
                EMAIL_LOGIN,
                "The email-only contract: the address is the user id",
            ),
            #[cfg(feature = "twilio")]
            tag(
                RECEIPTS,
                "What the providers say of each message, posted to the service",
            ),
            tag(
                TOKENS,
                "What proves a verification to your backend: an EdDSA JWS from a successful \
                 check, checked with these keys",
            ),
        ]))
        .build()
}

/// The document as committed in `openapi.json` (stable key order, trailing newline).
pub fn document_json(policy: &Policy) -> String {
    let mut text = document(policy)
        .to_pretty_json()
        .expect("the document serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests;

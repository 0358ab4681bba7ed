//! The `refresh` function's invocations and answers, as typed wire formats shared by the function,
//! the local server and [`super::LambdaTokenSource`] (which sends them):
//!
//! - `{"action": "get"}` → [`TokenAnswer`] `{"access_token": "...", "expires_at": <epoch s>}`
//! - `{"action": "refresh", "stale_token": "..."}` → [`TokenAnswer`] with `"outcome"`
//! - `{"action": "get_ticket"}` → [`TicketAnswer`] `{"expires_at": <epoch s>, "jsapi_ticket": "..."}`
//! - `{"action": "refresh_ticket", "stale_ticket": "..."}` → [`TicketAnswer`] with `"outcome"`
//! - an EventBridge scheduled event (`"source": "aws.events"`, `"detail-type": "Scheduled Event"`)
//!   → [`ScheduleSummary`], without the token: `{"outcome", "detail", "token", "expires_at"}`,
//!   where `token` is the fingerprint, and `"ticket"`: the same four for the jsapi_ticket; a
//!   failed scheduled refresh (of either) is an invocation error, so it shows in the function's
//!   error metrics.
//! - any error → Lambda's error shape [`LambdaError`] `{"errorType", "errorMessage"}`.
//!
//! Invoked through its `ticket` alias ([`TICKET_ENTRY_ALIAS`], [`Entry::TicketOnly`]), the
//! function answers `get_ticket` and `refresh_ticket` only, never the token: the alias is the
//! narrow entry that a function needing only the ticket (the `oauth` function) is allowed to
//! invoke, so it cannot read the access_token. Lambda tells the function which ARN it was invoked
//! by (the alias ARN, for an invocation of the alias); IAM allows a grant on the alias to invoke
//! that alias only, not the function itself.
//!
//! Field order is alphabetical, as the answers were before they were typed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wechat_protocol::secret::Secret;

use super::{AccessToken, RefreshReport, TicketReport, TokenError, TokenService, fingerprint};
pub use crate::aws::LambdaError;
use crate::token::JsapiTicket;
use crate::token::store::TokenStore;

/// The alias of the refresh function that answers only the jsapi_ticket's invocations.
pub const TICKET_ENTRY_ALIAS: &str = "ticket";

/// Through which entry the function was invoked, which decides what it may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The function itself (unqualified or `$LATEST`): every invocation, the token's included.
    Full,
    /// The `ticket` alias: `get_ticket` and `refresh_ticket` only.
    TicketOnly,
}

impl Entry {
    /// The entry of an invocation of `function`, as the Lambda context names it
    /// (`invoked_function_arn`: the alias ARN when the alias was invoked) or as a caller named it
    /// (a name, a partial or full ARN, with or without `:qualifier`).
    pub fn of_invoked(function: &str) -> Self {
        match qualifier(function) {
            Some(TICKET_ENTRY_ALIAS) => Self::TicketOnly,
            _ => Self::Full,
        }
    }

    /// The entry of a Lambda Invoke API request (`POST /2015-03-31/functions/{name}/invocations`
    /// with an optional `?Qualifier=`), for the local emulations of Lambda; `None` for another
    /// path. The name may be percent-encoded, as the AWS SDK sends a qualified one.
    pub fn of_invoke_request(path: &str, query: Option<&str>) -> Option<Self> {
        let name = path
            .strip_prefix("/2015-03-31/functions/")?
            .strip_suffix("/invocations")?;
        if name.is_empty() || name.contains('/') {
            return None;
        }
        let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
        let qualified = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(key, _)| key == "Qualifier")
            .is_some_and(|(_, value)| value == TICKET_ENTRY_ALIAS);
        Some(match qualified {
            true => Self::TicketOnly,
            false => Self::of_invoked(&name),
        })
    }

    /// Whether this entry answers `invocation`.
    pub fn answers(self, invocation: &Invocation) -> bool {
        match self {
            Self::Full => true,
            Self::TicketOnly => matches!(
                invocation,
                Invocation::GetTicket | Invocation::RefreshTicket { .. }
            ),
        }
    }
}

/// The qualifier of a function name or ARN (`name:q`, `account:function:name:q`,
/// `arn:aws:lambda:region:account:function:name:q`), if it has one.
fn qualifier(function: &str) -> Option<&str> {
    let parts: Vec<&str> = function.split(':').collect();
    match parts.as_slice() {
        ["arn", _, _, _, _, "function", _, qualifier]
        | [_, "function", _, qualifier]
        | [_, qualifier] => Some(qualifier),
        _ => None,
    }
}

/// A parsed invocation payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Get,
    Refresh {
        stale_token: Secret<String>,
    },
    GetTicket,
    /// A ticket a page's `wx.config` rejected ("invalid signature" with a correctly signed URL).
    /// WeChat gives a ticket 7200 s, but something outside this service can end it early (a
    /// token reset by another system, a reset of the account's credentials); without this report
    /// a dead ticket would be served until the schedule's margin, up to two hours. Throttled like
    /// stale tokens, so it cannot drain getticket's quota either.
    RefreshTicket {
        stale_ticket: Secret<String>,
    },
    Scheduled,
}

/// The payloads as they travel. The schedule is tried first, as EventBridge sends no `action`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Payload {
    Scheduled(ScheduledEvent),
    Action(Action),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Action {
    Get,
    Refresh {
        #[serde(default)]
        stale_token: Option<String>,
    },
    GetTicket,
    RefreshTicket {
        #[serde(default)]
        stale_ticket: Option<String>,
    },
}

/// The fields of an EventBridge scheduled event that identify it (the rest is ignored).
#[derive(Serialize, Deserialize)]
struct ScheduledEvent {
    source: AwsEvents,
    #[serde(rename = "detail-type")]
    detail_type: ScheduledEventType,
    /// Sent as `{}`; whatever EventBridge puts there is not looked at.
    #[serde(default, skip_deserializing)]
    detail: Detail,
}

#[derive(Serialize, Deserialize)]
enum AwsEvents {
    #[serde(rename = "aws.events")]
    AwsEvents,
}

#[derive(Serialize, Deserialize)]
enum ScheduledEventType {
    #[serde(rename = "Scheduled Event")]
    ScheduledEvent,
}

#[derive(Default, Serialize, Deserialize)]
struct Detail {}

impl Invocation {
    pub fn parse(event: &Value) -> Result<Self, TokenError> {
        // Never echo the payload (or serde's description of it): it may hold a token.
        match Payload::deserialize(event) {
            Ok(Payload::Scheduled(_)) => Ok(Self::Scheduled),
            Ok(Payload::Action(Action::Get)) => Ok(Self::Get),
            Ok(Payload::Action(Action::Refresh { stale_token })) => match stale_token {
                Some(stale) if !stale.is_empty() => Ok(Self::Refresh {
                    stale_token: Secret::new(stale),
                }),
                _ => Err(TokenError::BadInvocation(
                    "the refresh action needs a non-empty \"stale_token\" string",
                )),
            },
            Ok(Payload::Action(Action::GetTicket)) => Ok(Self::GetTicket),
            Ok(Payload::Action(Action::RefreshTicket { stale_ticket })) => match stale_ticket {
                Some(stale) if !stale.is_empty() => Ok(Self::RefreshTicket {
                    stale_ticket: Secret::new(stale),
                }),
                _ => Err(TokenError::BadInvocation(
                    "the refresh_ticket action needs a non-empty \"stale_ticket\" string",
                )),
            },
            Err(_) => Err(TokenError::BadInvocation(
                "expected {\"action\": \"get\"}, {\"action\": \"refresh\", \"stale_token\": \"...\"}, {\"action\": \"get_ticket\"}, {\"action\": \"refresh_ticket\", \"stale_ticket\": \"...\"} or an EventBridge Scheduled Event",
            )),
        }
    }

    /// Its name in log lines and errors (never its secrets).
    pub fn action(&self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Refresh { .. } => "refresh",
            Self::GetTicket => "get_ticket",
            Self::RefreshTicket { .. } => "refresh_ticket",
            Self::Scheduled => "the scheduled event",
        }
    }

    /// The payload that asks for this invocation.
    pub fn to_payload(&self) -> Value {
        let payload = match self {
            Self::Get => Payload::Action(Action::Get),
            Self::Refresh { stale_token } => Payload::Action(Action::Refresh {
                stale_token: Some(stale_token.expose().clone()),
            }),
            Self::GetTicket => Payload::Action(Action::GetTicket),
            Self::RefreshTicket { stale_ticket } => Payload::Action(Action::RefreshTicket {
                stale_ticket: Some(stale_ticket.expose().clone()),
            }),
            Self::Scheduled => Payload::Scheduled(ScheduledEvent {
                source: AwsEvents::AwsEvents,
                detail_type: ScheduledEventType::ScheduledEvent,
                detail: Detail {},
            }),
        };
        // A derived `Serialize` of strings and unit variants into a `Value` cannot fail.
        serde_json::to_value(payload).unwrap_or(Value::Null)
    }
}

/// What the function answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum InvocationAnswer {
    Token(TokenAnswer),
    Ticket(TicketAnswer),
    Schedule(ScheduleSummary),
}

/// The token, to `get` and `refresh`. `Debug` never shows the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenAnswer {
    #[serde(
        serialize_with = "expose",
        deserialize_with = "wechat_protocol::secret::plain_string::deserialize"
    )]
    pub access_token: Secret<String>,
    /// Epoch seconds.
    pub expires_at: i64,
    /// The refresh's outcome code (`refresh` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// The jsapi_ticket, to `get_ticket` and `refresh_ticket`. `Debug` never shows the ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketAnswer {
    /// Epoch seconds.
    pub expires_at: i64,
    #[serde(
        serialize_with = "expose",
        deserialize_with = "wechat_protocol::secret::plain_string::deserialize"
    )]
    pub jsapi_ticket: Secret<String>,
    /// The refresh's outcome code (`refresh_ticket` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// The scheduled run's summary: never the token, only its fingerprint; the ticket's likewise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleSummary {
    pub detail: String,
    pub expires_at: Option<i64>,
    pub outcome: String,
    /// The jsapi_ticket's refresh (absent only in summaries built without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<TicketSummary>,
    pub token: Option<String>,
}

/// The scheduled run's jsapi_ticket refresh: `ticket` is the ticket's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketSummary {
    pub detail: String,
    pub expires_at: Option<i64>,
    pub outcome: String,
    pub ticket: Option<String>,
}

impl From<&TokenError> for LambdaError {
    fn from(e: &TokenError) -> Self {
        Self {
            error_message: e.to_string(),
            error_type: e.kind().into(),
        }
    }
}

fn expose<S: serde::Serializer>(secret: &Secret<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

impl TokenAnswer {
    fn new(token: &AccessToken, report: Option<&RefreshReport>) -> Self {
        Self {
            access_token: token.value.clone(),
            expires_at: token.expires_at_s(),
            outcome: report.map(|r| r.outcome.code().to_string()),
        }
    }

    /// The token it carries, or why it carries none.
    pub fn into_token(self) -> Result<AccessToken, TokenError> {
        if self.access_token.expose().is_empty() {
            return Err(TokenError::Remote(
                "the answer has an empty access_token".into(),
            ));
        }
        Ok(AccessToken {
            value: self.access_token,
            expires_at_ms: self.expires_at.saturating_mul(1000),
        })
    }
}

impl TicketAnswer {
    fn new(ticket: &JsapiTicket, report: Option<&TicketReport>) -> Self {
        Self {
            jsapi_ticket: ticket.value.clone(),
            expires_at: ticket.expires_at_ms.div_euclid(1000),
            outcome: report.map(|r| r.outcome.code().to_string()),
        }
    }

    /// The ticket it carries, or why it carries none.
    pub fn into_ticket(self) -> Result<JsapiTicket, TokenError> {
        if self.jsapi_ticket.expose().is_empty() {
            return Err(TokenError::Remote(
                "the answer has an empty jsapi_ticket".into(),
            ));
        }
        Ok(JsapiTicket {
            value: self.jsapi_ticket,
            expires_at_ms: self.expires_at.saturating_mul(1000),
        })
    }
}

/// Serve one invocation of the `refresh` function with `service`, invoked as the function itself
/// ([`Entry::Full`]).
pub async fn handle_invocation<S: TokenStore>(
    service: &TokenService<S>,
    event: Value,
) -> Result<InvocationAnswer, TokenError> {
    handle_invocation_via(service, Entry::Full, event).await
}

/// Serve one invocation that came through `entry`: one it does not answer is refused
/// ([`TokenError::NotOnThisEntry`]) before anything is read or fetched.
pub async fn handle_invocation_via<S: TokenStore>(
    service: &TokenService<S>,
    entry: Entry,
    event: Value,
) -> Result<InvocationAnswer, TokenError> {
    let invocation = Invocation::parse(&event)?;
    if !entry.answers(&invocation) {
        tracing::warn!(
            action = invocation.action(),
            entry = TICKET_ENTRY_ALIAS,
            "refused: the ticket entry answers get_ticket and refresh_ticket only"
        );
        return Err(TokenError::NotOnThisEntry(invocation.action()));
    }
    match invocation {
        Invocation::Get => Ok(InvocationAnswer::Token(TokenAnswer::new(
            &service.get().await?,
            None,
        ))),
        Invocation::Refresh { stale_token } => {
            let report = service.refresh_stale(stale_token.expose()).await?;
            match &report.token {
                Some(token) => Ok(InvocationAnswer::Token(TokenAnswer::new(
                    token,
                    Some(&report),
                ))),
                None => Err(TokenError::NoUsableToken(report.outcome)),
            }
        }
        Invocation::GetTicket => Ok(InvocationAnswer::Ticket(TicketAnswer::new(
            &service.get_ticket().await?,
            None,
        ))),
        Invocation::RefreshTicket { stale_ticket } => {
            let report = service.refresh_stale_ticket(stale_ticket.expose()).await?;
            match &report.ticket {
                Some(ticket) => Ok(InvocationAnswer::Ticket(TicketAnswer::new(
                    ticket,
                    Some(&report),
                ))),
                None => Err(TokenError::NoUsableTicket(report.outcome)),
            }
        }
        Invocation::Scheduled => {
            let report = service.on_schedule_both().await?;
            let (token, ticket) = (&report.token, &report.ticket);
            let ticket_fingerprint = ticket
                .ticket
                .as_ref()
                .map(|t| fingerprint(t.value.expose()));
            tracing::info!(
                outcome = token.outcome.code(),
                token = token.token.as_ref().map(AccessToken::fingerprint),
                ticket_outcome = ticket.outcome.code(),
                ticket = ticket_fingerprint,
                "scheduled refresh"
            );
            if let Some(token) = &token.token {
                crate::metrics::token_seconds_left(token.expires_at_s());
            }
            if token.outcome.is_failure() {
                return Err(TokenError::ScheduledRefreshFailed(token.outcome.clone()));
            }
            if ticket.outcome.is_failure() {
                return Err(TokenError::ScheduledTicketRefreshFailed(
                    ticket.outcome.clone(),
                ));
            }
            Ok(InvocationAnswer::Schedule(ScheduleSummary {
                outcome: token.outcome.code().into(),
                detail: token.outcome.to_string(),
                token: token.token.as_ref().map(AccessToken::fingerprint),
                expires_at: token.token.as_ref().map(AccessToken::expires_at_s),
                ticket: Some(TicketSummary {
                    outcome: ticket.outcome.code().into(),
                    detail: ticket.outcome.to_string(),
                    ticket: ticket_fingerprint,
                    expires_at: ticket
                        .ticket
                        .as_ref()
                        .map(|t| t.expires_at_ms.div_euclid(1000)),
                }),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_round_trip_through_parse() {
        for invocation in [
            Invocation::Get,
            Invocation::Refresh {
                stale_token: Secret::new("old".into()),
            },
            Invocation::GetTicket,
            Invocation::RefreshTicket {
                stale_ticket: Secret::new("old".into()),
            },
            Invocation::Scheduled,
        ] {
            assert_eq!(
                Invocation::parse(&invocation.to_payload()).unwrap(),
                invocation
            );
        }
    }

    #[test]
    fn payloads_are_the_documented_json() {
        assert_eq!(Invocation::Get.to_payload(), json!({"action": "get"}));
        assert_eq!(
            Invocation::Refresh {
                stale_token: Secret::new("old".into())
            }
            .to_payload(),
            json!({"action": "refresh", "stale_token": "old"})
        );
        assert_eq!(
            Invocation::GetTicket.to_payload(),
            json!({"action": "get_ticket"})
        );
        assert_eq!(
            Invocation::RefreshTicket {
                stale_ticket: Secret::new("old".into())
            }
            .to_payload(),
            json!({"action": "refresh_ticket", "stale_ticket": "old"})
        );
        assert_eq!(
            Invocation::Scheduled.to_payload(),
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
        );
    }

    #[test]
    fn an_eventbridge_schedule_event_is_recognised() {
        let event = json!({
            "version": "0", "id": "53dc4d37", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-01-01T00:00:00Z",
            "region": "us-east-1", "resources": ["arn:aws:events:..."], "detail": {}
        });
        assert_eq!(Invocation::parse(&event).unwrap(), Invocation::Scheduled);
    }

    #[test]
    fn anything_else_is_a_clear_error_that_does_not_echo_the_payload() {
        for event in [
            json!({"action": "delete", "stale_token": "SECRET"}),
            json!({"action": "refresh"}),
            json!({"action": "refresh", "stale_token": ""}),
            json!({"action": "refresh_ticket", "stale_token": "SECRET"}),
            json!({"action": "refresh_ticket", "stale_ticket": ""}),
            json!("get"),
            json!({"source": "aws.events", "detail-type": "Other", "token": "SECRET"}),
        ] {
            let err = Invocation::parse(&event).unwrap_err();
            assert!(matches!(err, TokenError::BadInvocation(_)));
            assert!(!err.to_string().contains("SECRET"));
        }
    }

    #[test]
    fn the_ticket_alias_is_recognised_in_every_form_of_the_function_name() {
        for ticket_only in [
            "arn:aws:lambda:ap-east-1:123456789012:function:stack-refresh:ticket",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:stack-refresh:ticket",
            "123456789012:function:stack-refresh:ticket",
            "stack-refresh:ticket",
        ] {
            assert_eq!(
                Entry::of_invoked(ticket_only),
                Entry::TicketOnly,
                "{ticket_only}"
            );
        }
        for full in [
            "arn:aws:lambda:ap-east-1:123456789012:function:stack-refresh",
            "arn:aws:lambda:ap-east-1:123456789012:function:stack-refresh:$LATEST",
            "arn:aws:lambda:ap-east-1:123456789012:function:ticket",
            "123456789012:function:ticket",
            "ticket",
            "stack-refresh",
            "",
        ] {
            assert_eq!(Entry::of_invoked(full), Entry::Full, "{full}");
        }
        let path = |name: &str| format!("/2015-03-31/functions/{name}/invocations");
        assert_eq!(
            Entry::of_invoke_request(&path("refresh%3Aticket"), None),
            Some(Entry::TicketOnly)
        );
        assert_eq!(
            Entry::of_invoke_request(&path("refresh"), Some("Qualifier=ticket")),
            Some(Entry::TicketOnly)
        );
        assert_eq!(
            Entry::of_invoke_request(&path("refresh"), None),
            Some(Entry::Full)
        );
        assert_eq!(
            Entry::of_invoke_request("/2015-03-31/functions//invocations", None),
            None
        );
        assert_eq!(Entry::of_invoke_request("/other", None), None);
    }

    #[test]
    fn the_ticket_entry_answers_the_tickets_invocations_only() {
        let ticket_only = |invocation: Invocation| Entry::TicketOnly.answers(&invocation);
        assert!(ticket_only(Invocation::GetTicket));
        assert!(ticket_only(Invocation::RefreshTicket {
            stale_ticket: Secret::new("old".into())
        }));
        assert!(!ticket_only(Invocation::Get));
        assert!(!ticket_only(Invocation::Refresh {
            stale_token: Secret::new("old".into())
        }));
        assert!(!ticket_only(Invocation::Scheduled));
        assert!(Entry::Full.answers(&Invocation::Get));
    }

    #[test]
    fn answers_keep_their_wire_shape() {
        let token = AccessToken {
            value: Secret::new("T".into()),
            expires_at_ms: 7_200_999,
        };
        let answer = InvocationAnswer::Token(TokenAnswer::new(&token, None));
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"access_token":"T","expires_at":7200}"#
        );
        let summary = InvocationAnswer::Schedule(ScheduleSummary {
            outcome: "fresh".into(),
            detail: "fresh".into(),
            token: None,
            expires_at: None,
            ticket: None,
        });
        assert_eq!(
            serde_json::to_string(&summary).unwrap(),
            r#"{"detail":"fresh","expires_at":null,"outcome":"fresh","token":null}"#
        );
        let ticket = JsapiTicket {
            value: Secret::new("J".into()),
            expires_at_ms: 7_200_999,
        };
        let answer = InvocationAnswer::Ticket(TicketAnswer::new(&ticket, None));
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"expires_at":7200,"jsapi_ticket":"J"}"#
        );
        assert!(!format!("{answer:?}").contains("\"J\""));
        let error = LambdaError::from(&TokenError::BadInvocation("x"));
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"errorMessage":"invalid invocation: x","errorType":"BadInvocation"}"#
        );
        assert!(!format!("{answer:?}").contains("\"T\""));
    }
}

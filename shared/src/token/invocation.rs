//! The `refresh` function's invocations and answers, as typed wire formats shared by the function,
//! the local server and [`super::LambdaTokenSource`] (which sends them):
//!
//! - `{"action": "get"}` → [`TokenAnswer`] `{"access_token": "...", "expires_at": <epoch s>}`
//! - `{"action": "refresh", "stale_token": "..."}` → [`TokenAnswer`] with `"outcome"`
//! - an EventBridge scheduled event (`"source": "aws.events"`, `"detail-type": "Scheduled Event"`)
//!   → [`ScheduleSummary`], without the token: `{"outcome", "detail", "token", "expires_at"}`,
//!   where `token` is the fingerprint; a failed scheduled refresh is an invocation error, so it
//!   shows in the function's error metrics.
//! - any error → Lambda's error shape [`LambdaError`] `{"errorType", "errorMessage"}`.
//!
//! Field order is alphabetical, as the answers were before they were typed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AccessToken, RefreshReport, TokenError, TokenService};
use crate::config::Secret;
use crate::store::token::TokenStore;

/// A parsed invocation payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Get,
    Refresh { stale_token: Secret<String> },
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
#[serde(tag = "action", rename_all = "lowercase")]
enum Action {
    Get,
    Refresh {
        #[serde(default)]
        stale_token: Option<String>,
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
            Err(_) => Err(TokenError::BadInvocation(
                "expected {\"action\": \"get\"}, {\"action\": \"refresh\", \"stale_token\": \"...\"} or an EventBridge Scheduled Event",
            )),
        }
    }

    /// The payload that asks for this invocation.
    pub fn to_payload(&self) -> Value {
        let payload = match self {
            Self::Get => Payload::Action(Action::Get),
            Self::Refresh { stale_token } => Payload::Action(Action::Refresh {
                stale_token: Some(stale_token.expose().clone()),
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
    Schedule(ScheduleSummary),
}

/// The token, to `get` and `refresh`. `Debug` never shows the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenAnswer {
    #[serde(
        serialize_with = "expose",
        deserialize_with = "crate::wechat_api::secret"
    )]
    pub access_token: Secret<String>,
    /// Epoch seconds.
    pub expires_at: i64,
    /// The refresh's outcome code (`refresh` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// The scheduled run's summary: never the token, only its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleSummary {
    pub detail: String,
    pub expires_at: Option<i64>,
    pub outcome: String,
    pub token: Option<String>,
}

/// Lambda's shape for a function error, as `lambda_runtime` reports a handler's `Err`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaError {
    #[serde(rename = "errorMessage", default)]
    pub error_message: String,
    #[serde(rename = "errorType", default)]
    pub error_type: String,
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

/// Serve one invocation of the `refresh` function with `service`.
pub async fn handle_invocation<S: TokenStore>(
    service: &TokenService<S>,
    event: Value,
) -> Result<InvocationAnswer, TokenError> {
    match Invocation::parse(&event)? {
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
        Invocation::Scheduled => {
            let report = service.on_schedule().await?;
            tracing::info!(
                outcome = report.outcome.code(),
                token = report.token.as_ref().map(AccessToken::fingerprint),
                "scheduled refresh"
            );
            if let Some(token) = &report.token {
                crate::metrics::token_seconds_left(token.expires_at_s());
            }
            if report.outcome.is_failure() {
                return Err(TokenError::ScheduledRefreshFailed(report.outcome));
            }
            Ok(InvocationAnswer::Schedule(ScheduleSummary {
                outcome: report.outcome.code().into(),
                detail: report.outcome.to_string(),
                token: report.token.as_ref().map(AccessToken::fingerprint),
                expires_at: report.token.as_ref().map(AccessToken::expires_at_s),
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
            json!("get"),
            json!({"source": "aws.events", "detail-type": "Other", "token": "SECRET"}),
        ] {
            let err = Invocation::parse(&event).unwrap_err();
            assert!(matches!(err, TokenError::BadInvocation(_)));
            assert!(!err.to_string().contains("SECRET"));
        }
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
        });
        assert_eq!(
            serde_json::to_string(&summary).unwrap(),
            r#"{"detail":"fresh","expires_at":null,"outcome":"fresh","token":null}"#
        );
        let error = LambdaError::from(&TokenError::BadInvocation("x"));
        assert_eq!(
            serde_json::to_string(&error).unwrap(),
            r#"{"errorMessage":"invalid invocation: x","errorType":"BadInvocation"}"#
        );
        assert!(!format!("{answer:?}").contains("\"T\""));
    }
}

//! The `refresh` function's invocations and answers, shared by the function, the local server and
//! [`super::LambdaTokenSource`] (which sends them):
//!
//! - `{"action": "get"}` → `{"access_token": "...", "expires_at": <epoch s>}`
//! - `{"action": "refresh", "stale_token": "..."}` → `{"access_token", "expires_at", "outcome"}`
//! - an EventBridge scheduled event (`"source": "aws.events"`, `"detail-type": "Scheduled Event"`)
//!   → a summary without the token: `{"outcome", "detail", "token", "expires_at"}`, where `token`
//!   is the fingerprint; a failed scheduled refresh is an invocation error, so it shows in the
//!   function's error metrics.

use serde_json::{Value, json};

use super::{AccessToken, RefreshReport, TokenError, TokenService};
use crate::clock::Clock;
use crate::config::Secret;
use crate::store::token::TokenStore;

/// A parsed invocation payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Get,
    Refresh { stale_token: Secret<String> },
    Scheduled,
}

impl Invocation {
    pub fn parse(event: &Value) -> Result<Self, TokenError> {
        let is_schedule = event.get("source").and_then(Value::as_str) == Some("aws.events")
            && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
        if is_schedule {
            return Ok(Self::Scheduled);
        }
        match event.get("action").and_then(Value::as_str) {
            Some("get") => Ok(Self::Get),
            Some("refresh") => match event.get("stale_token").and_then(Value::as_str) {
                Some(stale) if !stale.is_empty() => Ok(Self::Refresh {
                    stale_token: Secret::new(stale.to_string()),
                }),
                _ => Err(TokenError::BadInvocation(
                    "the refresh action needs a non-empty \"stale_token\" string",
                )),
            },
            // Never echo the payload: it may hold a token.
            _ => Err(TokenError::BadInvocation(
                "expected {\"action\": \"get\"}, {\"action\": \"refresh\", \"stale_token\": \"...\"} or an EventBridge Scheduled Event",
            )),
        }
    }

    /// The payload that asks for this invocation.
    pub fn to_payload(&self) -> Value {
        match self {
            Self::Get => json!({ "action": "get" }),
            Self::Refresh { stale_token } => {
                json!({ "action": "refresh", "stale_token": stale_token.expose() })
            }
            Self::Scheduled => json!({
                "source": "aws.events",
                "detail-type": "Scheduled Event",
                "detail": {},
            }),
        }
    }
}

/// Serve one invocation of the `refresh` function with `service`.
pub async fn handle_invocation<S: TokenStore, C: Clock>(
    service: &TokenService<S, C>,
    event: Value,
) -> Result<Value, TokenError> {
    match Invocation::parse(&event)? {
        Invocation::Get => Ok(token_answer(&service.get().await?, None)),
        Invocation::Refresh { stale_token } => {
            let report = service.refresh_stale(stale_token.expose()).await?;
            match &report.token {
                Some(token) => Ok(token_answer(token, Some(&report))),
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
            if report.outcome.is_failure() {
                return Err(TokenError::ScheduledRefreshFailed(report.outcome));
            }
            Ok(json!({
                "outcome": report.outcome.code(),
                "detail": report.outcome.to_string(),
                "token": report.token.as_ref().map(AccessToken::fingerprint),
                "expires_at": report.token.as_ref().map(AccessToken::expires_at_s),
            }))
        }
    }
}

/// The Lambda Invoke API's answer (`POST /2015-03-31/functions/{name}/invocations`) for one
/// invocation, so the local server and tests answer `aws lambda invoke` and
/// [`super::LambdaTokenSource`] exactly as Lambda does: HTTP 200 with the function's JSON, or
/// HTTP 200 with `X-Amz-Function-Error: Unhandled` and `{"errorType", "errorMessage"}`.
pub async fn answer_invoke_request<S: TokenStore, C: Clock>(
    service: &TokenService<S, C>,
    request: &lambda_http::Request,
) -> lambda_http::Response<lambda_http::Body> {
    use lambda_http::http::{HeaderValue, StatusCode};
    let event: Value = serde_json::from_slice(request.body().as_ref()).unwrap_or(Value::Null);
    match handle_invocation(service, event).await {
        Ok(answer) => crate::http::json(StatusCode::OK, &answer),
        Err(e) => {
            let body = json!({ "errorType": e.kind(), "errorMessage": e.to_string() });
            let mut response = crate::http::json(StatusCode::OK, &body);
            response.headers_mut().insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            response
        }
    }
}

fn token_answer(token: &AccessToken, report: Option<&RefreshReport>) -> Value {
    let mut answer = json!({
        "access_token": token.value.expose(),
        "expires_at": token.expires_at_s(),
    });
    if let Some(report) = report {
        answer["outcome"] = json!(report.outcome.code());
    }
    answer
}

/// Read `{"access_token", "expires_at"}` from the function's answer.
pub(super) fn parse_token_answer(answer: &Value) -> Result<AccessToken, TokenError> {
    let value = answer
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    let expires_at_s = answer.get("expires_at").and_then(Value::as_i64);
    match (value, expires_at_s) {
        (Some(value), Some(expires_at_s)) => Ok(AccessToken {
            value: Secret::new(value.to_string()),
            expires_at_ms: expires_at_s * 1000,
        }),
        _ => Err(TokenError::Remote(
            "the answer lacks access_token or expires_at".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            json!("get"),
            json!({"source": "aws.events", "detail-type": "Other", "token": "SECRET"}),
        ] {
            let err = Invocation::parse(&event).unwrap_err();
            assert!(matches!(err, TokenError::BadInvocation(_)));
            assert!(!err.to_string().contains("SECRET"));
        }
    }
}

//! The `api` function: WeChat's server API for the account's other servers without their ever
//! holding the access_token (中控服务器, like 微信云托管's 开放接口服务). A caller invokes it
//! with Lambda Invoke (IAM decides who may) and one of two payloads:
//!
//! - a call, `{"method": "GET"|"POST", "path": "/cgi-bin/...", "query": {..}?, "body": <json>?}`,
//!   relayed to WeChat with the token from the central service when the path is on the
//!   allow-list ([`allow`]) and answered `{"status", "body", "errcode"?, "outcome"}`
//!   ([`proxy`]): WeChat's HTTP status and JSON as they came, the errcode when the body has one,
//!   and a named outcome;
//! - an action, `{"action": "<name>", ...}` ([`Action`]): the function's own reads, e.g. a
//!   template message's receipt.
//!
//! A caller's mistake is an answer (`{"status": 400|403|404, "body": {"error", "message"}}`), never
//! a Lambda error, so it cannot fire the function's error alarm; what the caller cannot fix (no
//! token obtainable, WeChat unreachable, the table unavailable) is a Lambda error
//! ([`ApiFailure`], its `errorType` from [`ApiFailure::kind`]). Adding an action is one variant of
//! [`Action`] and one arm of [`Api::act`].

pub mod allow;
pub mod proxy;
pub mod remote;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use table::{StoreError, Table};
use wechat_api::{ApiError, WeChatHttp};

use crate::clock::SharedClock;
use crate::config::vars::{API_RETRY_ATTEMPTS, API_RETRY_BACKOFF_MS};
use crate::config::{ConfigError, Env, parsed_or, required_app_id};
use crate::notify::{STATUS_PENDING, read_receipt};
use crate::qrcode::{self, ChinaDate, MAX_STATS_DAYS, StatsError};
use crate::token::{RetryPolicy, TokenClient, TokenError, TokenSource};

pub use allow::{AllowList, DEFAULT_ALLOWED_PATHS, Refusal};
pub use remote::{ApiFunction, ApiInvokeError};

/// One invocation's payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Call(CallRequest),
    Action(Action),
}

/// A WeChat API call to relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// The function's own operations, by `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// `{"action": "template_receipt", "msgid": <number|string>}`: one GetItem of the receipt.
    TemplateReceipt { msgid: MsgId },
    /// `{"action": "qrcode_stats", "days": N}` (1 to 90): the channel QR codes' per-scene counts
    /// of the last N China days, newest first; one GetItem a day.
    QrcodeStats { days: u32 },
}

/// A template message's `msgid`, given as WeChat gives it (a number) or as a string; kept as its
/// decimal text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct MsgId(pub String);

impl<'de> Deserialize<'de> for MsgId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Number(n) => n.to_string(),
            Raw::Text(t) => t,
        };
        if (1..=32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(text))
        } else {
            Err(serde::de::Error::custom(
                "msgid must be the number WeChat answered the send with",
            ))
        }
    }
}

impl Payload {
    /// Read an invocation: an object with `action` is an action, any other object a call.
    pub fn parse(event: &Value) -> Result<Self, Refusal> {
        if !event.is_object() {
            return Err(Refusal::BadPayload(
                "the payload must be a JSON object: a call {method, path, query?, body?} or an action {action, ...}".into(),
            ));
        }
        match event.get("action") {
            Some(_) => serde_json::from_value(event.clone())
                .map(Payload::Action)
                .map_err(|e| Refusal::BadPayload(shape_error(&e))),
            None => serde_json::from_value(event.clone())
                .map(Payload::Call)
                .map_err(|e| Refusal::BadPayload(shape_error(&e))),
        }
    }

    /// The payload as JSON, as a caller sends it.
    pub fn to_value(&self) -> Value {
        let value = match self {
            Self::Call(call) => serde_json::to_value(call),
            Self::Action(action) => serde_json::to_value(action),
        };
        // Strings, maps and JSON values: serializing cannot fail.
        value.unwrap_or(Value::Null)
    }
}

/// serde's text when it names a field or an action, never when it would quote a value (a query
/// value may be an openid).
fn shape_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let names_only = ["missing field", "unknown field", "unknown variant"]
        .iter()
        .any(|start| text.starts_with(start))
        || text.starts_with("msgid must");
    match names_only {
        true => text
            .split(" at line ")
            .next()
            .unwrap_or(&text)
            .to_string(),
        false => "a field has the wrong type: method and path are strings, query maps names to strings, body is any JSON".into(),
    }
}

/// What the function answers: WeChat's status and body for a call, or an action's result, or a
/// refusal (`status` 400/403/404, `body` `{"error", "message"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiAnswer {
    pub status: u16,
    pub body: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

impl ApiAnswer {
    pub fn refused(refusal: &Refusal) -> Self {
        Self {
            status: refusal.status(),
            body: json!({"error": refusal.code(), "message": refusal.to_string()}),
            errcode: None,
            outcome: None,
        }
    }

    pub fn ok(body: Value) -> Self {
        Self {
            status: 200,
            body,
            errcode: None,
            outcome: None,
        }
    }
}

/// What the caller cannot fix: the invocation fails (a Lambda error, counted by the function's
/// error alarm).
#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    #[error("no access_token: {0}")]
    Token(#[from] TokenError),
    #[error("{0}")]
    WeChat(ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the random source failed: no client_msg_id could be made")]
    Random,
}

impl ApiFailure {
    /// The Lambda `errorType`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Token(_) => "NoAccessToken",
            Self::WeChat(_) => "WeChatUnreachable",
            Self::Store(_) => "StoreUnavailable",
            Self::Random => "RandomUnavailable",
        }
    }
}

/// The function's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// `API_ALLOWED_PATHS`.
    pub allow: AllowList,
    /// `WECHAT_APP_ID`: whose receipts are read and written.
    pub app_id: String,
    /// `API_RETRY_ATTEMPTS` (default 3) and `API_RETRY_BACKOFF_MS` (default 200, doubling): the
    /// bounded retries when WeChat answers -1 (system busy).
    pub retry: RetryPolicy,
    /// No retry of a -1 begins later than this after the call began ([`RETRY_WINDOW`]).
    pub retry_window: Duration,
}

/// How long after a call began a retry of WeChat's -1 may still begin. The function's timeout
/// (60 s) must cover the last retry's worst case too: a retry begun at 20 s that meets a
/// rejected token (a call, a stale report of at most 12 s, the resend: 22 s) and the pending
/// receipt (2 s) ends by 44 s; the first attempt's token lookup (at most 14 s) is inside the
/// window. Without it, `API_RETRY_ATTEMPTS=5` with a long backoff could outlast the timeout,
/// and a send the function was stopped in the middle of may have reached WeChat.
pub const RETRY_WINDOW: Duration = Duration::from_secs(20);

impl ApiConfig {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let attempts: u32 = parsed_or(env, API_RETRY_ATTEMPTS, 3)?;
        if !(1..=5).contains(&attempts) {
            return Err(ConfigError::new(
                API_RETRY_ATTEMPTS,
                "must be 1 to 5 (the caller waits for every attempt)",
            ));
        }
        Ok(Self {
            allow: AllowList::from_env(env)?,
            app_id: required_app_id(env)?,
            retry: RetryPolicy {
                attempts,
                backoff: Duration::from_millis(parsed_or(env, API_RETRY_BACKOFF_MS, 200)?),
            },
            retry_window: RETRY_WINDOW,
        })
    }
}

/// The function: the table (receipts; and the token's item, through the token source), the
/// WeChat client, the token client, the clock.
pub struct Api<T, S> {
    config: ApiConfig,
    table: T,
    http: WeChatHttp,
    tokens: TokenClient<S>,
    clock: SharedClock,
}

impl<T: Table, S: TokenSource> Api<T, S> {
    pub fn new(
        config: ApiConfig,
        table: T,
        http: WeChatHttp,
        tokens: TokenClient<S>,
        clock: SharedClock,
    ) -> Self {
        Self {
            config,
            table,
            http,
            tokens,
            clock,
        }
    }

    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    pub fn tokens(&self) -> &TokenClient<S> {
        &self.tokens
    }

    /// Serve one invocation.
    pub async fn handle(&self, event: Value) -> Result<ApiAnswer, ApiFailure> {
        let payload = match Payload::parse(&event) {
            Ok(payload) => payload,
            Err(refusal) => {
                tracing::warn!(error = refusal.code(), "api request refused");
                return Ok(ApiAnswer::refused(&refusal));
            }
        };
        match payload {
            Payload::Call(call) => self.call(call).await,
            Payload::Action(action) => self.act(action).await,
        }
    }

    /// The actions.
    async fn act(&self, action: Action) -> Result<ApiAnswer, ApiFailure> {
        match action {
            Action::TemplateReceipt { msgid } => self.template_receipt(&msgid.0).await,
            Action::QrcodeStats { days } => self.qrcode_stats(days).await,
        }
    }

    /// `{"days": [{"date", "scenes": {scene: {"subscribe", "scan"}}}]}`, or 400 for a day count
    /// out of range.
    async fn qrcode_stats(&self, days: u32) -> Result<ApiAnswer, ApiFailure> {
        let today = ChinaDate::of_ms(self.clock.now_ms());
        match qrcode::stats(&self.table, &self.config.app_id, days, today).await {
            Ok(stats) => {
                tracing::info!(
                    action = "qrcode_stats",
                    days,
                    outcome = "read",
                    "api action"
                );
                Ok(ApiAnswer::ok(json!({ "days": stats })))
            }
            Err(StatsError::Days(_)) => {
                let refusal = Refusal::BadPayload(format!(
                    "days must be 1 to {MAX_STATS_DAYS} (one read a day), not {days}"
                ));
                tracing::warn!(
                    action = "qrcode_stats",
                    days,
                    error = refusal.code(),
                    "api request refused"
                );
                Ok(ApiAnswer::refused(&refusal))
            }
            Err(StatsError::Store(err)) => Err(err.into()),
        }
    }

    /// One GetItem: the receipt as kept, or 404.
    async fn template_receipt(&self, msgid: &str) -> Result<ApiAnswer, ApiFailure> {
        let Some(receipt) = read_receipt(&self.table, &self.config.app_id, msgid).await? else {
            let refusal = Refusal::NoReceipt(msgid.to_string());
            tracing::info!(
                action = "template_receipt",
                msgid,
                outcome = "not_found",
                "api action"
            );
            return Ok(ApiAnswer::refused(&refusal));
        };
        let outcome = match receipt.status.as_str() {
            STATUS_PENDING => "pending",
            _ => "finished",
        };
        tracing::info!(action = "template_receipt", msgid, outcome, "api action");
        let mut body = json!({"msgid": receipt.msgid, "status": receipt.status});
        if let Some(at) = receipt.sent_at {
            body["sent_at"] = at.into();
        }
        if let Some(at) = receipt.finished_at {
            body["finished_at"] = at.into();
        }
        Ok(ApiAnswer::ok(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_read_as_calls_or_actions() {
        let call = Payload::parse(
            &json!({"method": "GET", "path": "/cgi-bin/user/info", "query": {"openid": "o1"}}),
        )
        .unwrap();
        let Payload::Call(call) = call else {
            panic!("a call")
        };
        assert_eq!(call.query["openid"], "o1");
        assert_eq!(call.body, None);
        for msgid in [json!(200228332u64), json!("200228332")] {
            assert_eq!(
                Payload::parse(&json!({"action": "template_receipt", "msgid": msgid})).unwrap(),
                Payload::Action(Action::TemplateReceipt {
                    msgid: MsgId("200228332".into())
                })
            );
        }
        assert_eq!(
            Payload::parse(&json!({"action": "qrcode_stats", "days": 7})).unwrap(),
            Payload::Action(Action::QrcodeStats { days: 7 })
        );
        let round = Payload::Action(Action::TemplateReceipt {
            msgid: MsgId("7".into()),
        });
        assert_eq!(
            round.to_value(),
            json!({"action": "template_receipt", "msgid": "7"})
        );
    }

    #[test]
    fn a_malformed_payload_is_refused_without_quoting_its_values() {
        for (event, says) in [
            (json!("GET /cgi-bin/user/info"), "JSON object"),
            (
                json!({"path": "/cgi-bin/user/info"}),
                "missing field `method`",
            ),
            (
                json!({"method": "GET", "path": "/x", "headers": {}}),
                "unknown field `headers`",
            ),
            (
                json!({"action": "drop_table"}),
                "unknown variant `drop_table`",
            ),
            (
                json!({"action": "template_receipt", "msgid": "abc"}),
                "msgid must",
            ),
            (
                json!({"method": "GET", "path": "/x", "query": {"openid": 1234567}}),
                "wrong type",
            ),
        ] {
            let refusal = Payload::parse(&event).unwrap_err();
            let text = refusal.to_string();
            assert!(text.contains(says), "{event}: {text}");
            assert!(!text.contains("1234567"), "{text}");
            assert_eq!(refusal.status(), 400);
        }
    }

    #[test]
    fn answers_keep_their_wire_shape() {
        let refused = ApiAnswer::refused(&Refusal::NotAllowed("/cgi-bin/clear_quota".into()));
        assert_eq!(
            serde_json::to_value(&refused).unwrap(),
            json!({"status": 403, "body": {"error": "path_not_allowed", "message": "/cgi-bin/clear_quota is not on this function's allow-list (API_ALLOWED_PATHS)"}})
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                "\\PC{0,20}".prop_map(Value::from),
                prop_oneof![
                    Just("GET"),
                    Just("POST"),
                    Just("/cgi-bin/user/info"),
                    Just("template_receipt")
                ]
                .prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 24, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(
                        prop_oneof![
                            Just("method".to_string()),
                            Just("path".to_string()),
                            Just("query".to_string()),
                            Just("body".to_string()),
                            Just("action".to_string()),
                            Just("msgid".to_string()),
                            "[a-z]{1,6}"
                        ],
                        inner,
                        0..5
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Any JSON an invoker sends is read or refused with a reason: never a panic.
            #[test]
            fn any_payload_is_read_or_refused(event in json_value()) {
                match Payload::parse(&event) {
                    Ok(payload) => prop_assert!(payload.to_value().is_object()),
                    Err(refusal) => prop_assert!(!refusal.to_string().is_empty()),
                }
            }
        }
    }
}

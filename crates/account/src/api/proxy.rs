//! Relaying a call to WeChat: the allow-list's checks, the token added (and never shown), WeChat's
//! answer handed back as it came, and the retries made on the caller's behalf:
//!
//! - 40001/40014/42001 (the token was rejected): one stale report to the central service and one
//!   retry with its replacement ([`TokenClient::call_with_token`]);
//! - -1 (system busy): up to `API_RETRY_ATTEMPTS` calls in all, pausing `API_RETRY_BACKOFF_MS`,
//!   doubling, none begun later than [`RETRY_WINDOW`](super::RETRY_WINDOW) after the call began
//!   (so that the function's timeout covers every retry's worst case).
//!
//! A template send (`/cgi-bin/message/template/send`) is read as a [`TemplateMessage`] first:
//! checked offline, and given a `client_msg_id` when it has none, so that those retries cannot
//! notify the follower twice; its answer's outcome is the send's ([`SendOutcome`]), and a sent
//! message's receipt starts as `pending`.
//!
//! One log line per call: method, path, errcode, outcome, attempts, latency. Never the query's
//! values, the bodies or the token (openids and message text are personal data).

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Value, json};
use table::Table;
use wechat_api::{ApiError, Method, WireRequest, WireResponse};
use wechat_protocol::secret::Secret;

use super::{Api, ApiAnswer, ApiFailure, CallRequest, Refusal};
use crate::notify::{ReceiptWrite, SendOutcome, TEMPLATE_SEND_PATH, TemplateMessage, record_sent};
use crate::token::{CallError, TokenSource};

/// WeChat's answer as relayed.
#[derive(Debug, Clone, PartialEq)]
pub struct Relayed {
    pub status: u16,
    pub body: Value,
    pub errcode: Option<i64>,
    /// Calls made, retries included.
    pub attempts: u32,
}

impl Relayed {
    fn of(response: &WireResponse) -> Self {
        let body = match serde_json::from_slice::<Value>(&response.body) {
            Ok(json) => json,
            Err(_) => json!({
                "error": "not_json",
                "message": format!(
                    "WeChat answered HTTP {} with {} bytes that are not JSON (not relayed)",
                    response.status,
                    response.body.len()
                ),
            }),
        };
        let errcode = body.get("errcode").and_then(Value::as_i64);
        Self {
            status: response.status,
            body,
            errcode,
            attempts: 1,
        }
    }

    /// The outcome of a call to `path` that answered this.
    fn outcome(&self, path: &str) -> &'static str {
        if !(200..300).contains(&self.status) {
            return "http_error";
        }
        if self.body.get("error").and_then(Value::as_str) == Some("not_json") {
            return "not_json";
        }
        let errcode = self.errcode.unwrap_or(0);
        if path == TEMPLATE_SEND_PATH {
            return SendOutcome::of(errcode, &self.body).code();
        }
        match errcode {
            0 => "ok",
            -1 => "wechat_busy",
            40001 | 40014 | 42001 => "access_token_rejected",
            45009 => "daily_limit",
            _ => "wechat_error",
        }
    }
}

fn wire(
    method: Method,
    path: &str,
    query: &BTreeMap<String, String>,
    token: &Secret<String>,
    json_body: Option<Vec<u8>>,
) -> Result<WireRequest, ApiError> {
    let pairs: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("access_token", token.expose().as_str())])
        .collect();
    let query = serde_urlencoded::to_string(&pairs).map_err(|e| ApiError::Encode(e.to_string()))?;
    Ok(WireRequest {
        method,
        path: path.to_string(),
        query,
        json_body,
    })
}

impl<T: Table, S: TokenSource> Api<T, S> {
    /// Check, relay, answer, log.
    pub(super) async fn call(&self, call: CallRequest) -> Result<ApiAnswer, ApiFailure> {
        let started = Instant::now();
        let CallRequest {
            method,
            path,
            query,
            mut body,
        } = call;
        if let Err(refusal) = self
            .config
            .allow
            .check(&method, &path, &query, body.as_ref())
        {
            // Only what is known to be harmless: a caller's strings may carry anything.
            let shown = super::allow::is_plain_path(&path).then_some(path.as_str());
            let method = matches!(method.as_str(), "GET" | "POST").then_some(method.as_str());
            tracing::warn!(
                method,
                path = shown,
                error = refusal.code(),
                "api call refused"
            );
            return Ok(ApiAnswer::refused(&refusal));
        }
        let method = if method == "GET" {
            Method::Get
        } else {
            Method::Post
        };
        let template = method == Method::Post && path == TEMPLATE_SEND_PATH;
        if template {
            let message = body.as_ref().ok_or_else(|| {
                Refusal::BadBody("a template send needs its message as the body".into())
            });
            let message = match message.and_then(|b| {
                TemplateMessage::from_body(b).map_err(|e| Refusal::BadBody(e.to_string()))
            }) {
                Ok(message) => message,
                Err(refusal) => {
                    tracing::warn!(path, error = refusal.code(), "api call refused");
                    return Ok(ApiAnswer::refused(&refusal));
                }
            };
            let message = message
                .with_client_msg_id()
                .map_err(|_| ApiFailure::Random)?;
            body = Some(message.to_body());
        }
        let relayed = self.relay(method, &path, &query, body.as_ref()).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let relayed = match relayed {
            Ok(relayed) => relayed,
            Err(failure) => {
                tracing::error!(
                    path,
                    latency_ms,
                    error_type = failure.kind(),
                    error = %failure,
                    "api call failed"
                );
                return Err(failure);
            }
        };
        let outcome = relayed.outcome(&path);
        tracing::info!(
            path,
            errcode = relayed.errcode,
            status = relayed.status,
            outcome,
            attempts = relayed.attempts,
            latency_ms,
            "api call"
        );
        if template && outcome == "sent" {
            self.record_pending(&relayed.body).await;
        }
        Ok(ApiAnswer {
            status: relayed.status,
            body: relayed.body,
            errcode: relayed.errcode,
            outcome: Some(outcome.into()),
        })
    }

    /// The `pending` receipt of a sent template message. A failure is logged, not raised: the
    /// message is out, and a caller told otherwise would send it again.
    async fn record_pending(&self, answer: &Value) {
        let SendOutcome::Sent { msgid } = SendOutcome::of(0, answer) else {
            return;
        };
        if msgid.is_empty() {
            return;
        }
        let now_s = self.clock.now_s();
        match record_sent(&self.table, &self.config.app_id, &msgid, now_s).await {
            Ok(ReceiptWrite::Recorded) => {}
            Ok(ReceiptWrite::AlreadyRecorded) => tracing::info!(
                msgid,
                "the receipt was there first (the event came before the send was recorded, or a de-duplicated send)"
            ),
            Err(e) => tracing::error!(
                msgid,
                error = %e,
                outcome = "store_failed",
                "the pending receipt was not recorded (reads say not_found until WeChat's event)"
            ),
        }
    }

    /// The call with the token, retried as the module doc says.
    pub async fn relay(
        &self,
        method: Method,
        path: &str,
        query: &BTreeMap<String, String>,
        body: Option<&Value>,
    ) -> Result<Relayed, ApiFailure> {
        let json_body = body
            .filter(|b| !b.is_null())
            .map(|b| serde_json::to_vec(b).unwrap_or_default());
        let retry = self.config.retry;
        let began = tokio::time::Instant::now();
        let mut pause = retry.backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let answer = self
                .tokens
                .call_with_token(|token| {
                    let request = wire(method, path, query, &token, json_body.clone());
                    async move {
                        let relayed = Relayed::of(&self.http.send_raw(request?).await?);
                        match relayed.errcode {
                            // Turned into the error the token client reports and retries on.
                            Some(code @ (40001 | 40014 | 42001)) => Err(ApiError::WeChat {
                                errcode: code,
                                errmsg: relayed.body["errmsg"].as_str().unwrap_or("").into(),
                            }),
                            _ => Ok(relayed),
                        }
                    }
                })
                .await;
            let relayed = match answer {
                Ok(relayed) => relayed,
                // Rejected again after the one refresh (or no replacement): WeChat's answer.
                Err(CallError::Api(ApiError::WeChat { errcode, errmsg })) => Relayed {
                    status: 200,
                    body: json!({"errcode": errcode, "errmsg": errmsg}),
                    errcode: Some(errcode),
                    attempts: 1,
                },
                Err(CallError::Api(e)) => return Err(ApiFailure::WeChat(e)),
                Err(CallError::Token(e)) => return Err(ApiFailure::Token(e)),
            };
            if relayed.errcode == Some(-1)
                && attempts < retry.attempts
                && began.elapsed() + pause <= self.config.retry_window
            {
                tracing::warn!(path, attempt = attempts, "WeChat is busy (-1); retrying");
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
                continue;
            }
            return Ok(Relayed {
                attempts,
                ..relayed
            });
        }
    }
}

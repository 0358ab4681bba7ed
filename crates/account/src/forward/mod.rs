//! Forwarding messages to the account's own service (a `type = "forward"` rule), answering within
//! WeChat's 5 seconds or later through the customer-service API, and processing each push once
//! however often WeChat retries it.
//!
//! - `crate::rules::ForwardSpec`: the rule (`url`, `timeout_ms`: the passive-reply budget),
//!   checked at load.
//! - [`request`]: what is POSTed (every field, the parsed type and event, the de-duplication key)
//!   and that key; [`client`]: the signed HTTP call ([`Forwarder`], [`HttpForwarder`]) and
//!   [`answer`]: what the service may answer ([`Answer`]: a rule's reply schema plus the late-only
//!   `mpnews` and `msgmenu`).
//! - [`record`]: the `msg#<key>` item and its port ([`MessageLog`]): one conditional transition
//!   per step, so exactly one of "passive reply" and "late send" ever happens.
//! - [`flow`]: the message side ([`MessageSide`], inside the webhook request) and the worker side
//!   ([`Worker`], the `worker` function or a background task), each ending in a named outcome;
//!   [`launch`]: how the message side starts the worker ([`WorkerLauncher`]: in-process task or
//!   asynchronous Lambda invoke); [`late`]: the port the worker sends late answers (and the
//!   typing status) through ([`LateSender`]); [`delivery`]: one late answer within WeChat's
//!   window and allowance (a long text in parts, transient failures sent again with backoff,
//!   and why it gave up when it did).
//! - [`handler`]: [`ForwardingRules`], the webhook's [`wechat_protocol::reply::MessageHandler`] that answers
//!   static rules as before and runs the flow for forward rules.

pub mod answer;
pub mod circuit;
pub mod client;
pub mod delivery;
pub mod flow;
pub mod handler;
pub mod late;
pub mod launch;
pub mod record;
pub mod request;

use std::time::Duration;

use wechat_protocol::reply::Reply;
use wechat_protocol::secret::Secret;

use crate::config::vars::{
    FORWARD_CIRCUIT_REPLY, FORWARD_LATE_TIMEOUT_MS, WECHAT_ENCODING_AES_KEY, WECHAT_FORWARD_SECRET,
};
use crate::config::{ConfigError, Env, optional, parsed_or, required};
use crate::webhook::WebhookConfig;

pub use answer::Answer;
pub use client::{ForwardError, Forwarder, HttpForwarder, signature};
pub use delivery::{DEFAULT_LATE_RETRY, GaveUp, LateResult, LateRetry};
pub use flow::{
    InProcessLauncher, MessageOutcome, MessageSide, RECORD_MARGIN, WORKER_TIME_LIMIT, Worker,
    WorkerOutcome,
};
pub use handler::ForwardingRules;
pub use late::{LateCall, LateDelivery, LateSender, RecordingLateSender};
pub use launch::{ForwardJob, LambdaLauncher, LaunchError, WorkerLauncher};
pub use record::{
    ClaimOf, MIN_RECORD_LIFE_S, MessageLog, MsgRecord, MsgState, MsgStatus, record_life_s,
};
pub use request::{ForwardRequest, dedup_key};

/// `FORWARD_LATE_TIMEOUT_MS` when unset: how long the worker waits for the service.
/// 12 s: long enough for most assistants, short enough that a hung service does not hold a
/// worker (and account concurrency) per push for long.
pub const DEFAULT_LATE_TIMEOUT_MS: u64 = 12_000;
/// Bounds of `FORWARD_LATE_TIMEOUT_MS`; the worker's Lambda timeout must exceed the value.
pub const LATE_TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 1_000..=120_000;
/// The shortest `WECHAT_FORWARD_SECRET` accepted: a short key can be guessed from one request.
pub const MIN_SECRET_LEN: usize = 16;

/// Forward rules take encrypted pushes only. A plaintext push's signature covers the query
/// (timestamp, nonce), not the body: one observed signed URL would let anyone post any message
/// as any user until the timestamp runs out, get the service's answer to it, and, posted twice,
/// make the account send a customer-service message of their choosing. Safe and compatible
/// mode sign the body too (`msg_signature`). This is chosen over making every signed URL
/// single-use in the table: that costs a conditional write per push and still leaves the
/// messages readable on the way.
pub fn check_pushes_are_encrypted(webhook: &WebhookConfig) -> Result<(), ConfigError> {
    match webhook.require_encryption {
        true => Ok(()),
        false => Err(ConfigError::new(
            WECHAT_ENCODING_AES_KEY,
            "must be set (and WECHAT_REQUIRE_ENCRYPTION not false) when a rule forwards: a \
             plaintext push's signature does not cover its body, so one observed request would \
             let anyone speak to your service as any user (use 安全模式 or 兼容模式)",
        )),
    }
}

/// `FORWARD_CIRCUIT_REPLY`: the text users get while a service's circuit is open; unset:
/// `success` (WeChat shows nothing).
pub fn circuit_reply(env: &impl Env) -> Result<Reply, ConfigError> {
    match optional(env, FORWARD_CIRCUIT_REPLY) {
        None => Ok(Reply::Success),
        Some(text) => Reply::text(text)
            .checked()
            .map_err(|e| ConfigError::new(FORWARD_CIRCUIT_REPLY, e.to_string())),
    }
}

/// What the forward client and the worker read from the environment.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// `WECHAT_FORWARD_SECRET` (required, at least [`MIN_SECRET_LEN`] characters): the HMAC key.
    pub secret: Secret<String>,
    /// `FORWARD_LATE_TIMEOUT_MS` (default 12000): the worker's wait for the service.
    pub late_timeout: Duration,
}

impl ForwardConfig {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let secret = required(env, WECHAT_FORWARD_SECRET)?;
        if secret.chars().count() < MIN_SECRET_LEN {
            return Err(ConfigError::new(
                WECHAT_FORWARD_SECRET,
                format!("must be at least {MIN_SECRET_LEN} characters (use a random string)"),
            ));
        }
        let late_ms: u64 = parsed_or(env, FORWARD_LATE_TIMEOUT_MS, DEFAULT_LATE_TIMEOUT_MS)?;
        if !LATE_TIMEOUT_RANGE_MS.contains(&late_ms) {
            return Err(ConfigError::new(
                FORWARD_LATE_TIMEOUT_MS,
                format!(
                    "must be between {} and {} ms",
                    LATE_TIMEOUT_RANGE_MS.start(),
                    LATE_TIMEOUT_RANGE_MS.end()
                ),
            ));
        }
        Ok(Self {
            secret: Secret::new(secret),
            late_timeout: Duration::from_millis(late_ms),
        })
    }
}

/// `text` cut to at most `max` characters (reasons in logs and items stay short).
pub(crate) fn short(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_rules_take_encrypted_pushes_only() {
        use crate::config::vars::{WECHAT_APP_ID, WECHAT_REQUIRE_ENCRYPTION, WECHAT_TOKEN};
        let key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        let webhook = |env: &[(&str, &str)]| {
            let env: std::collections::HashMap<String, String> = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            WebhookConfig::from_env(&env).unwrap()
        };
        let plaintext = webhook(&[(WECHAT_TOKEN, "token")]);
        let err = check_pushes_are_encrypted(&plaintext).unwrap_err();
        assert_eq!(err.variable, WECHAT_ENCODING_AES_KEY);
        let opted_out = webhook(&[
            (WECHAT_TOKEN, "token"),
            (WECHAT_APP_ID, "wx5823bf96d3bd56c7"),
            (WECHAT_ENCODING_AES_KEY, key),
            (WECHAT_REQUIRE_ENCRYPTION, "false"),
        ]);
        assert!(check_pushes_are_encrypted(&opted_out).is_err());
        let encrypted = webhook(&[
            (WECHAT_TOKEN, "token"),
            (WECHAT_APP_ID, "wx5823bf96d3bd56c7"),
            (WECHAT_ENCODING_AES_KEY, key),
        ]);
        assert!(check_pushes_are_encrypted(&encrypted).is_ok());
    }

    #[test]
    fn the_secret_is_required_long_enough_and_never_shown() {
        let err = ForwardConfig::from_env(&[("OTHER", "x")]).unwrap_err();
        assert_eq!(err.variable, WECHAT_FORWARD_SECRET);
        let err = ForwardConfig::from_env(&[(WECHAT_FORWARD_SECRET, "shortsecret")]).unwrap_err();
        assert!(!err.to_string().contains("shortsecret"), "{err}");
        let config =
            ForwardConfig::from_env(&[(WECHAT_FORWARD_SECRET, "0123456789abcdef-long")]).unwrap();
        assert_eq!(config.late_timeout, Duration::from_secs(12));
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
        let err = ForwardConfig::from_env(&[
            (WECHAT_FORWARD_SECRET, "0123456789abcdef-long"),
            (FORWARD_LATE_TIMEOUT_MS, "999999"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, FORWARD_LATE_TIMEOUT_MS);
    }

    #[test]
    fn short_cuts_on_characters() {
        assert_eq!(short("中文字符", 2), "中文…");
        assert_eq!(short("ok", 2), "ok");
    }
}

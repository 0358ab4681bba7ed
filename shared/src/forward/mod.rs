//! Forwarding messages to the account's own service (a `type = "forward"` rule), answering within
//! WeChat's 5 seconds or later through the customer-service API, and processing each push once
//! however often WeChat retries it.
//!
//! - [`ForwardSpec`]: the rule (`url`, `timeout_ms`: the passive-reply budget), checked at load.
//! - [`request`]: what is POSTed (every field, the parsed type and event, the de-duplication key)
//!   and that key; [`client`]: the signed HTTP call ([`Forwarder`], [`HttpForwarder`]) and
//!   [`answer`]: what the service may answer ([`Answer`]: a rule's reply schema plus the late-only
//!   `mpnews` and `msgmenu`).
//! - [`record`]: the `msg#<key>` item and its port ([`MessageLog`]): one conditional transition
//!   per step, so exactly one of "passive reply" and "late send" ever happens.
//! - [`flow`]: the message side ([`MessageSide`], inside the webhook request) and the worker side
//!   ([`Worker`], the `worker` function or a background task), each ending in a named outcome;
//!   [`launch`]: how the message side starts the worker ([`WorkerLauncher`]: in-process task or
//!   asynchronous Lambda invoke); [`late`]: the port the worker sends late answers through
//!   ([`LateSender`]).
//! - [`handler`]: [`ForwardingRules`], the webhook's [`crate::reply::MessageHandler`] that answers
//!   static rules as before and runs the flow for forward rules.

pub mod answer;
pub mod client;
pub mod flow;
pub mod handler;
pub mod late;
pub mod launch;
pub mod record;
pub mod request;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use answer::{Answer, MenuOption, MsgMenu};
pub use client::{ForwardError, Forwarder, HttpForwarder, signature};
pub use flow::{MessageOutcome, MessageSide, Worker, WorkerOutcome};
pub use handler::ForwardingRules;
pub use late::{LateDelivery, LateSender, RecordingLateSender};
pub use launch::{ForwardJob, InProcessLauncher, LambdaLauncher, LaunchError, WorkerLauncher};
pub use record::{MSG_TTL_S, MessageLog, MsgRecord, MsgState, MsgStatus, Transition};
pub use request::{ForwardRequest, dedup_key};

use crate::config::vars::{FORWARD_LATE_TIMEOUT_MS, WECHAT_FORWARD_SECRET};
use crate::config::{ConfigError, Env, Secret, parsed_or, required};

/// The passive-reply budget when a forward rule gives none.
pub const DEFAULT_TIMEOUT_MS: u64 = 3_500;
/// The largest budget a rule may set: WeChat gives up at 5 s, and the request needs time to
/// arrive, be checked and be answered.
pub const MAX_TIMEOUT_MS: u64 = 4_000;
/// `FORWARD_LATE_TIMEOUT_MS` when unset: how long the worker waits for the service.
pub const DEFAULT_LATE_TIMEOUT_MS: u64 = 20_000;
/// Bounds of `FORWARD_LATE_TIMEOUT_MS`; the worker's Lambda timeout must exceed the value.
pub const LATE_TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 1_000..=120_000;
/// The shortest `WECHAT_FORWARD_SECRET` accepted: a short key can be guessed from one request.
pub const MIN_SECRET_LEN: usize = 16;

/// A forward action: POST the message to `url`, wait up to `timeout_ms` for a passive answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardSpec {
    pub url: String,
    /// The passive-reply budget; an answer after it goes out late. 0: always late.
    pub timeout_ms: u64,
}

impl ForwardSpec {
    pub fn budget(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// `https://`, or `http://` on a loopback host (development); a budget WeChat can wait for.
    pub fn check(&self) -> Result<(), String> {
        let (origin, _) = crate::oauth::return_to::split_origin(self.url.trim())
            .map_err(|reason| format!("forward url {reason}"))?;
        if !origin.as_str().starts_with("https://") && !origin.is_loopback() {
            return Err(format!(
                "forward url {:?} must be https (plain http is allowed only on loopback)",
                self.url
            ));
        }
        if self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(format!(
                "forward timeout_ms {} is too long: at most {MAX_TIMEOUT_MS} (WeChat waits 5000 ms \
                 in all; later answers go out through the customer-service API)",
                self.timeout_ms
            ));
        }
        Ok(())
    }
}

/// What the forward client and the worker read from the environment.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// `WECHAT_FORWARD_SECRET` (required, at least [`MIN_SECRET_LEN`] characters): the HMAC key.
    pub secret: Secret<String>,
    /// `FORWARD_LATE_TIMEOUT_MS` (default 20000): the worker's wait for the service.
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

    fn spec(url: &str, timeout_ms: u64) -> ForwardSpec {
        ForwardSpec {
            url: url.into(),
            timeout_ms,
        }
    }

    #[test]
    fn https_anywhere_and_http_only_on_loopback() {
        assert!(spec("https://bot.example.com/wechat", 3500).check().is_ok());
        assert!(spec("http://127.0.0.1:8080/hook", 3500).check().is_ok());
        assert!(spec("http://localhost:8080", 0).check().is_ok());
        for bad in [
            "http://bot.example.com/wechat",
            "ftp://bot.example.com",
            "bot.example.com",
            "https://user:pw@bot.example.com/",
        ] {
            assert!(spec(bad, 3500).check().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_budget_near_wechats_limit_is_refused() {
        let err = spec("https://x.example", 4500).check().unwrap_err();
        assert!(err.contains("at most 4000"), "{err}");
        assert!(spec("https://x.example", MAX_TIMEOUT_MS).check().is_ok());
    }

    #[test]
    fn the_secret_is_required_long_enough_and_never_shown() {
        let err = ForwardConfig::from_env(&[("OTHER", "x")]).unwrap_err();
        assert_eq!(err.variable, WECHAT_FORWARD_SECRET);
        let err = ForwardConfig::from_env(&[(WECHAT_FORWARD_SECRET, "shortsecret")]).unwrap_err();
        assert!(!err.to_string().contains("shortsecret"), "{err}");
        let config =
            ForwardConfig::from_env(&[(WECHAT_FORWARD_SECRET, "0123456789abcdef-long")]).unwrap();
        assert_eq!(config.late_timeout, Duration::from_secs(20));
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

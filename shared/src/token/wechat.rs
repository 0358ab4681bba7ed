//! Fetching an access_token from WeChat: the stable API (`POST /cgi-bin/stable_token`, default)
//! or the classic one (`GET /cgi-bin/token`), with bounded retries for WeChat's "busy" answers and
//! WeChat's error codes sorted into what the service must do about them.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::config::Secret;
use crate::wechat_api::{ApiError, WeChatHttp};

/// WeChat allows 20 forced stable-token refreshes a day (China time)...
pub const FORCE_REFRESH_DAILY_LIMIT: u32 = 20;
/// ...at least 30 seconds apart.
pub const FORCE_REFRESH_MIN_INTERVAL_MS: i64 = 30_000;

/// -1 (system busy) and 45011 (calls too frequent): worth another try after a pause.
const BUSY_ERRCODES: [i64; 2] = [-1, 45011];
/// 45009: the daily quota is used up until midnight China time.
const QUOTA_EXHAUSTED_ERRCODE: i64 = 45009;

/// Which WeChat endpoint hands out tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenApi {
    /// `POST /cgi-bin/stable_token`: the same token while valid, renewed in its last 5 minutes.
    Stable,
    /// `GET /cgi-bin/token`: a new token on every call; the previous one dies 5 minutes later.
    Classic,
}

/// Whether the stable API may hand back the current token (normal) or must replace it (force).
/// The classic API always issues a new token, so it treats both alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    Normal,
    Force,
}

/// A token as WeChat handed it out.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub access_token: Secret<String>,
    pub expires_in_s: i64,
}

/// Why no token came back, sorted by what the service does about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchFailure {
    /// The app's configuration is wrong; retrying cannot help. Already logged at error level.
    #[error("WeChat rejected the app's configuration (errcode {errcode})")]
    Configuration { errcode: i64 },
    /// 45009: stop calling until the quota resets.
    #[error("WeChat's daily quota is exhausted (errcode 45009)")]
    QuotaExhausted,
    /// -1 or 45011 through every allowed attempt.
    #[error("WeChat stayed busy (errcode {errcode}) through {attempts} attempts")]
    Busy { errcode: i64, attempts: u32 },
    /// Timeout, HTTP error, unreachable, an answer that is not a token, or an unexpected errcode.
    #[error(transparent)]
    Unavailable(ApiError),
}

/// Bounded retries with doubling backoff for WeChat's busy answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in total, the first included.
    pub attempts: u32,
    /// The pause before the second call; it doubles before each further one.
    pub backoff: Duration,
}

/// What a configuration error code means and what to fix, for the error log line.
pub fn config_errcode_advice(errcode: i64) -> (&'static str, &'static str) {
    match errcode {
        40001 => (
            "invalid credential: the AppSecret is wrong or belongs to another account",
            "set WECHAT_APP_SECRET to this account's AppSecret (mp.weixin.qq.com > Settings and Development > Basic Configuration)",
        ),
        40013 => (
            "invalid AppID",
            "set WECHAT_APP_ID to the account's AppID (starts with wx)",
        ),
        40125 => (
            "invalid AppSecret",
            "set WECHAT_APP_SECRET to the account's current AppSecret; it changes when reset",
        ),
        40164 => (
            "the calling IP address is not on the account's IP whitelist",
            "add the function's outbound IP (the NAT gateway's Elastic IP) to the IP whitelist in mp.weixin.qq.com > Settings and Development > Basic Configuration",
        ),
        41004 => (
            "the AppSecret is missing from the request",
            "set WECHAT_APP_SECRET",
        ),
        89503 => (
            "calls from this IP address need the account administrator's confirmation",
            "have the administrator confirm in WeChat, or add the function's outbound IP to the IP whitelist",
        ),
        _ => (
            "unknown configuration error",
            "check the WeChat error code table",
        ),
    }
}

/// Error codes that mean the configuration is wrong, not that WeChat is in trouble.
fn is_configuration_errcode(errcode: i64) -> bool {
    matches!(errcode, 40001 | 40013 | 40125 | 40164 | 41004 | 89503)
}

/// Fetches tokens for one app. Build it once; cheap to share.
#[derive(Debug, Clone)]
pub struct TokenFetcher {
    http: WeChatHttp,
    timeout: Duration,
    app_id: String,
    app_secret: Secret<String>,
    api: TokenApi,
    retry: RetryPolicy,
}

impl TokenFetcher {
    pub fn new(
        api_base: &str,
        timeout: Duration,
        app_id: &str,
        app_secret: Secret<String>,
        api: TokenApi,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            http: WeChatHttp::new(api_base, timeout),
            timeout,
            app_id: app_id.into(),
            app_secret,
            api,
            retry,
        }
    }

    pub fn api(&self) -> TokenApi {
        self.api
    }

    /// Fetch a token, retrying WeChat's busy answers up to the policy's attempts, and never
    /// starting an attempt that could not finish before `deadline` (the end of the caller's lease).
    pub async fn fetch(&self, mode: FetchMode, deadline: Instant) -> Result<Fetched, FetchFailure> {
        let mut attempt = 1;
        let mut backoff = self.retry.backoff;
        loop {
            let errcode = match self.fetch_once(mode).await {
                Ok(fetched) => return Ok(fetched),
                Err(ApiError::WeChat { errcode, .. }) if BUSY_ERRCODES.contains(&errcode) => {
                    errcode
                }
                Err(e) => return Err(self.classify(e)),
            };
            let no_time_left = Instant::now() + backoff + self.timeout > deadline;
            if attempt >= self.retry.attempts || no_time_left {
                tracing::warn!(
                    app_id = %self.app_id,
                    errcode,
                    attempts = attempt,
                    "WeChat stayed busy; giving up on this refresh"
                );
                return Err(FetchFailure::Busy {
                    errcode,
                    attempts: attempt,
                });
            }
            tracing::warn!(
                app_id = %self.app_id,
                errcode,
                attempt,
                backoff_ms = backoff.as_millis() as u64,
                "WeChat is busy; retrying"
            );
            tokio::time::sleep(backoff).await;
            attempt += 1;
            backoff *= 2;
        }
    }

    async fn fetch_once(&self, mode: FetchMode) -> Result<Fetched, ApiError> {
        let answer = match self.api {
            TokenApi::Stable => {
                let body = json!({
                    "grant_type": "client_credential",
                    "appid": self.app_id,
                    "secret": self.app_secret.expose(),
                    "force_refresh": mode == FetchMode::Force,
                });
                self.http
                    .post_json("/cgi-bin/stable_token", &[], &body)
                    .await?
            }
            TokenApi::Classic => {
                let query = [
                    ("grant_type", "client_credential"),
                    ("appid", self.app_id.as_str()),
                    ("secret", self.app_secret.expose().as_str()),
                ];
                self.http.get("/cgi-bin/token", &query).await?
            }
        };
        parse_token(&answer)
    }

    fn classify(&self, error: ApiError) -> FetchFailure {
        match error {
            ApiError::WeChat { errcode, errmsg } if is_configuration_errcode(errcode) => {
                let (meaning, fix) = config_errcode_advice(errcode);
                tracing::error!(
                    app_id = %self.app_id,
                    errcode,
                    errmsg = %errmsg,
                    meaning,
                    fix,
                    "WeChat refuses to issue an access_token: configuration error; the stored token is kept"
                );
                FetchFailure::Configuration { errcode }
            }
            ApiError::WeChat { errcode, .. } if errcode == QUOTA_EXHAUSTED_ERRCODE => {
                FetchFailure::QuotaExhausted
            }
            other => {
                tracing::warn!(app_id = %self.app_id, error = %other, "could not fetch an access_token; the stored token is kept");
                FetchFailure::Unavailable(other)
            }
        }
    }
}

/// `{"access_token": "...", "expires_in": 7200}`, or `Malformed` naming what is missing (never
/// echoing the answer, which could hold a token).
fn parse_token(answer: &Value) -> Result<Fetched, ApiError> {
    let access_token = answer
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Malformed("no access_token in the answer".into()))?;
    let expires_in_s = answer
        .get("expires_in")
        .and_then(Value::as_i64)
        .filter(|s| *s > 0)
        .ok_or_else(|| ApiError::Malformed("no positive expires_in in the answer".into()))?;
    Ok(Fetched {
        access_token: Secret::new(access_token.to_string()),
        expires_in_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_without_a_token_or_lifetime_are_malformed_without_echoing_them() {
        let err = parse_token(&json!({"expires_in": 7200})).unwrap_err();
        assert!(matches!(err, ApiError::Malformed(_)));
        let err = parse_token(&json!({"access_token": "SECRET_TOKEN", "expires_in": "7200"}))
            .unwrap_err();
        assert!(!err.to_string().contains("SECRET_TOKEN"));
        let ok = parse_token(&json!({"access_token": "T", "expires_in": 7200})).unwrap();
        assert_eq!(
            (ok.access_token.expose().as_str(), ok.expires_in_s),
            ("T", 7200)
        );
    }

    #[test]
    fn the_whitelist_error_says_so() {
        let (meaning, fix) = config_errcode_advice(40164);
        assert!(meaning.contains("whitelist") && fix.contains("whitelist"));
        assert!(is_configuration_errcode(89503));
        assert!(!is_configuration_errcode(45009));
    }
}

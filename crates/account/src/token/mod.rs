//! The account's access_token and jsapi_ticket: the central control service (中控服务器) that
//! alone fetches them from WeChat (`service`, the refresh engine; `credential`, what differs
//! between the two; `wechat`, the endpoints), the invocation handler of the `refresh`
//! function (`invocation`), and the clients every other function uses to get them and to report
//! a token stale (`client`, `remote`).
//!
//! One token per account is valid at a time and fetches are rationed, so exactly one refresher may
//! fetch at once (a lease in the table), every write is conditional (an older refresh never
//! overwrites a newer token), and callers whose API call failed with 40001/40014/42001 report the
//! failing token instead of fetching themselves: fifty reports of the same stale token cause one
//! fetch. A report of a token fetched less than a minute ago is checked first with one call
//! that spends no token quota: replaced at once when WeChat rejects it (someone fetched a token
//! outside this service), refused when WeChat accepts it. The jsapi_ticket goes through the same
//! logic, with its own item, lease and quota (a ticket cannot be checked: a report of one fetched
//! less than a minute ago is refused).

mod client;
mod credential;
mod invocation;
mod remote;
mod service;
pub mod store;
mod stored;
mod ticket;
mod wechat;

use std::fmt;
use std::time::Duration;

use table::StoreError;
use wechat_api::{ApiError, errcode};
use wechat_protocol::secret::{Secret, fingerprint};

use crate::config::vars::{
    TOKEN_FETCH_ATTEMPTS, TOKEN_LEASE_MS, TOKEN_LEASE_POLL_MS, TOKEN_REFRESH_MARGIN_SECS,
    TOKEN_RETRY_BACKOFF_MS, TOKEN_STALE_MIN_AGE_SECS, WECHAT_TOKEN_API,
};
use crate::config::{ConfigError, Env, WeChatAppConfig, optional, parsed_or};

pub use client::{CallError, TokenClient, TokenSource};
pub use invocation::{
    Entry, Invocation, InvocationAnswer, LambdaError, ScheduleSummary, TICKET_ENTRY_ALIAS,
    TicketAnswer, TicketSummary, TokenAnswer, handle_invocation, handle_invocation_via,
};
pub use remote::{LambdaTokenSource, RefreshFunction};
pub use service::{
    STALE_CHECK_MEMORY_MS, ScheduleReport, TokenService, china_day, next_china_midnight_ms,
};
pub use stored::{Lease, QuotaRecord, TTL_GRACE_S, TicketRecord, TokenRecord};
pub use ticket::{JsapiTicket, TicketReport, TicketSource};
pub use wechat::{
    FORCE_REFRESH_DAILY_LIMIT, FORCE_REFRESH_MIN_INTERVAL_MS, FetchFailure, FetchMode, Fetched,
    RetryPolicy, TOKEN_CHECK_PATH, TokenApi, TokenCheck, TokenFetcher, config_errcode_advice,
};

/// A token with less than this left is not handed out: a call made with it could outlive it.
pub const MIN_REMAINING_MS: i64 = 60_000;

/// How long a failed jsapi_ticket fetch is remembered, both by the token service (in
/// getticket's quota item, for every instance) and by each container's [`TokenClient`]: until
/// then a page's request is answered with that failure instead of another refresh invoke and
/// more WeChat calls, so anonymous `/jssdk/config` requests cannot turn into WeChat calls while
/// no ticket can be had. The scheduled run is not held back by it.
pub const TICKET_FAILURE_MEMORY_MS: i64 = 30_000;

/// An access_token and when it expires. `Debug` never shows the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub value: Secret<String>,
    pub expires_at_ms: i64,
}

impl AccessToken {
    pub fn expires_at_s(&self) -> i64 {
        self.expires_at_ms.div_euclid(1000)
    }

    /// Whether it can still be handed out at `now_ms` (more than [`MIN_REMAINING_MS`] left).
    pub fn is_usable_at(&self, now_ms: i64) -> bool {
        self.expires_at_ms - now_ms > MIN_REMAINING_MS
    }

    /// A short, non-reversible name for log lines.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.value.expose())
    }
}

/// The service's settings, read from the environment.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// The app (`WECHAT_APP_ID`, `WECHAT_APP_SECRET`, `WECHAT_API_BASE`, `WECHAT_HTTP_TIMEOUT_MS`),
    /// as every function reads it.
    pub wechat: WeChatAppConfig,
    /// `WECHAT_TOKEN_API`: `stable` (default, `POST /cgi-bin/stable_token`) or `classic`
    /// (`GET /cgi-bin/token`).
    pub api: TokenApi,
    /// `TOKEN_REFRESH_MARGIN_SECS` (default 900): the scheduled refresh replaces a token with this
    /// little left. With a 5-minute schedule, 900 s gives three chances before expiry; the stable
    /// API only renews in the last 300 s, which one of the three always hits.
    pub refresh_margin: Duration,
    /// `TOKEN_LEASE_MS` (default 10000): how long one refresher may hold the refresh lease. A
    /// refresher that dies holding it is taken over once it runs out, never before.
    pub lease: Duration,
    /// `TOKEN_LEASE_POLL_MS` (default 150): how often a refresher that lost the lease race looks
    /// for the winner's token.
    pub lease_poll: Duration,
    /// `TOKEN_FETCH_ATTEMPTS` (default 3) and `TOKEN_RETRY_BACKOFF_MS` (default 300, doubling):
    /// the bounded retries when WeChat answers -1 (system busy) or 45011 (too frequent).
    pub retry: RetryPolicy,
    /// `TOKEN_STALE_MIN_AGE_SECS` (default 60): a stale report of a token fetched less than
    /// this ago is checked with WeChat before anything is fetched (`confirmed_stale`: fetched at
    /// once; `still_valid`: refused), and one of a ticket fetched less than this ago fetches
    /// nothing (`recently_refreshed`), so get + report rounds cannot drain the daily quota. 0
    /// turns the throttle (and the check) off: every report of the stored token fetches.
    pub stale_min_age: Duration,
}

impl TokenConfig {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let wechat = WeChatAppConfig::from_env(env)?;
        let api = match optional(env, WECHAT_TOKEN_API).as_deref() {
            None | Some("stable") => TokenApi::Stable,
            Some("classic") => TokenApi::Classic,
            Some(other) => {
                return Err(ConfigError::new(
                    WECHAT_TOKEN_API,
                    format!("expected stable or classic, got {other:?}"),
                ));
            }
        };
        let refresh_margin_s: u64 = parsed_or(env, TOKEN_REFRESH_MARGIN_SECS, 900)?;
        if refresh_margin_s >= 7200 {
            return Err(ConfigError::new(
                TOKEN_REFRESH_MARGIN_SECS,
                "must be below 7200 (a token's lifetime), or every scheduled run would refresh",
            ));
        }
        let attempts: u32 = parsed_or(env, TOKEN_FETCH_ATTEMPTS, 3)?;
        if attempts == 0 {
            return Err(ConfigError::new(TOKEN_FETCH_ATTEMPTS, "must be at least 1"));
        }
        let lease_ms: u64 = parsed_or(env, TOKEN_LEASE_MS, 10_000)?;
        let lease_poll_ms: u64 = parsed_or(env, TOKEN_LEASE_POLL_MS, 150)?;
        if lease_ms == 0 || lease_poll_ms == 0 {
            let variable = if lease_ms == 0 {
                TOKEN_LEASE_MS
            } else {
                TOKEN_LEASE_POLL_MS
            };
            return Err(ConfigError::new(variable, "must be at least 1"));
        }
        Ok(Self {
            wechat,
            api,
            refresh_margin: Duration::from_secs(refresh_margin_s),
            lease: Duration::from_millis(lease_ms),
            lease_poll: Duration::from_millis(lease_poll_ms),
            retry: RetryPolicy {
                attempts,
                backoff: Duration::from_millis(parsed_or(env, TOKEN_RETRY_BACKOFF_MS, 300)?),
            },
            stale_min_age: Duration::from_secs(parsed_or(env, TOKEN_STALE_MIN_AGE_SECS, 60)?),
        })
    }
}

/// What a refresh did. Every path of the service ends in one of these, so tests and the
/// scheduled run's summary say exactly what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// No usable token was stored; one was fetched and stored.
    Fresh,
    /// The stored token was good enough; nothing was fetched.
    AlreadyValid,
    /// The stored token was close to expiry or reported stale, and was replaced.
    Refreshed,
    /// The stable API handed back the stored token: it renews only in a token's last 5 minutes.
    Unchanged,
    /// The reported stale token had already been replaced; the newer one is current.
    AlreadyReplaced,
    /// The reported stale credential was fetched less than `TOKEN_STALE_MIN_AGE_SECS` ago and
    /// could not be checked (a ticket; or a token while WeChat gave no verdict, or another token
    /// was checked less than [`STALE_CHECK_MEMORY_MS`] ago): it is kept and nothing was fetched
    /// (reports cannot drain the quota).
    RecentlyRefreshed,
    /// The reported stale token was fetched less than `TOKEN_STALE_MIN_AGE_SECS` ago, and WeChat
    /// accepts it (a check call now, or one less than [`STALE_CHECK_MEMORY_MS`] ago): the report
    /// was false; the token is kept and nothing was fetched.
    StillValid,
    /// The reported stale token was fetched less than `TOKEN_STALE_MIN_AGE_SECS` ago, and WeChat
    /// rejects it on a check call: a fetch outside this service (another server or tool using
    /// the AppSecret) replaced it. A new one was fetched and stored at once.
    ConfirmedStale,
    /// Another refresher held the lease; this one waited and used the token it stored.
    LostRaceUsedWinner,
    /// Another refresher held the lease and gave it back without storing what this one needed
    /// (typically its fetch failed); nothing was fetched here, to spare the quota.
    OtherRefresherFinished,
    /// Another refresher still holds the lease after waiting its full length.
    LeaseBusy,
    /// WeChat's daily quota is exhausted (45009); no call is made until it resets.
    QuotaExhausted { until_ms: i64 },
    /// A forced stable-token refresh is not allowed yet (20 a day, 30 s apart).
    ForceRefreshLimited { until_ms: i64 },
    /// WeChat rejected the app's configuration (wrong app id or secret, IP not whitelisted, ...).
    /// `whitelist_ip`: with 40164, the caller's address WeChat named (the one to whitelist); it
    /// travels in the outcome's text to the refresh function's callers (`wx`).
    ConfigError {
        errcode: i64,
        whitelist_ip: Option<std::net::IpAddr>,
    },
    /// WeChat stayed busy (-1 or 45011) through every allowed attempt.
    WeChatBusy { errcode: i64, attempts: u32 },
    /// WeChat timed out, answered an HTTP error or something that is not a token.
    WeChatUnavailable(ApiError),
    /// (jsapi_ticket, scheduled run) No page has asked for a ticket (none is stored): nothing is
    /// fetched.
    NotInUse,
    /// (jsapi_ticket) No usable access_token to ask for one with; the token's outcome says why.
    TokenUnavailable(Box<RefreshOutcome>),
    /// (jsapi_ticket) WeChat rejected the access_token (40001/40014/42001) even after the one
    /// passive refresh.
    AccessTokenRejected { errcode: i64 },
    /// (jsapi_ticket, not the scheduled run) A fetch failed less than
    /// [`TICKET_FAILURE_MEMORY_MS`] ago with the outcome whose code is `failure`; WeChat is not
    /// asked again before `until_ms`.
    RecentlyFailed { failure: String, until_ms: i64 },
}

impl RefreshOutcome {
    /// A stable snake_case name for JSON answers and log fields.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::AlreadyValid => "already_valid",
            Self::Refreshed => "refreshed",
            Self::Unchanged => "unchanged",
            Self::AlreadyReplaced => "already_replaced",
            Self::RecentlyRefreshed => "recently_refreshed",
            Self::StillValid => "still_valid",
            Self::ConfirmedStale => "confirmed_stale",
            Self::LostRaceUsedWinner => "lost_race_used_winner",
            Self::OtherRefresherFinished => "other_refresher_finished",
            Self::LeaseBusy => "lease_busy",
            Self::QuotaExhausted { .. } => "quota_exhausted",
            Self::ForceRefreshLimited { .. } => "force_refresh_limited",
            Self::ConfigError { .. } => "config_error",
            Self::WeChatBusy { .. } => "wechat_busy",
            Self::WeChatUnavailable(_) => "wechat_unavailable",
            Self::NotInUse => "not_in_use",
            Self::TokenUnavailable(_) => "token_unavailable",
            Self::AccessTokenRejected { .. } => "access_token_rejected",
            Self::RecentlyFailed { .. } => "recently_failed",
        }
    }

    /// Whether this refresh failed. `OtherRefresherFinished` is not: the refresher that held the
    /// lease reports its own outcome, and this one did nothing that could fail.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Self::QuotaExhausted { .. }
                | Self::ForceRefreshLimited { .. }
                | Self::ConfigError { .. }
                | Self::WeChatBusy { .. }
                | Self::WeChatUnavailable(_)
                | Self::LeaseBusy
                | Self::TokenUnavailable(_)
                | Self::AccessTokenRejected { .. }
                | Self::RecentlyFailed { .. }
        )
    }

    /// Whether a jsapi_ticket fetch that ended so is remembered for [`TICKET_FAILURE_MEMORY_MS`]:
    /// the failures of WeChat or of the access_token. Not the quota's (they have their own,
    /// longer block), and not the lease's (nothing was asked of WeChat).
    pub fn is_remembered(&self) -> bool {
        matches!(
            self,
            Self::ConfigError { .. }
                | Self::WeChatBusy { .. }
                | Self::WeChatUnavailable(_)
                | Self::TokenUnavailable(_)
                | Self::AccessTokenRejected { .. }
        )
    }

    /// When the refused call may be tried again, for an outcome that says (epoch ms).
    pub fn retry_at_ms(&self) -> Option<i64> {
        match self {
            Self::RecentlyFailed { until_ms, .. }
            | Self::QuotaExhausted { until_ms }
            | Self::ForceRefreshLimited { until_ms } => Some(*until_ms),
            Self::TokenUnavailable(outcome) => outcome.retry_at_ms(),
            _ => None,
        }
    }
}

impl fmt::Display for RefreshOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::QuotaExhausted { until_ms } => write!(
                f,
                "WeChat's daily quota is exhausted (45009) until epoch {}s",
                until_ms.div_euclid(1000)
            ),
            Self::ForceRefreshLimited { until_ms } => write!(
                f,
                "a forced refresh is not allowed before epoch {}s (20 a day, 30 s apart)",
                until_ms.div_euclid(1000)
            ),
            Self::ConfigError {
                errcode,
                whitelist_ip: Some(ip),
            } => write!(f, "{} (errcode {errcode})", errcode::whitelist_fix(*ip)),
            Self::ConfigError { errcode, .. } => {
                let (meaning, _) = config_errcode_advice(*errcode);
                write!(
                    f,
                    "WeChat rejected the configuration: {errcode} ({meaning})"
                )
            }
            Self::WeChatBusy { errcode, attempts } => write!(
                f,
                "WeChat stayed busy (errcode {errcode}) through {attempts} attempts"
            ),
            // A call with the token refused by the whitelist (a jsapi_ticket fetch): the same
            // sentence as the token fetch's, so the operator sees which IP to add.
            Self::WeChatUnavailable(e) => match e.whitelist_ip() {
                Some(ip) => write!(f, "{} ({e})", errcode::whitelist_fix(ip)),
                None => write!(f, "{e}"),
            },
            Self::TokenUnavailable(outcome) => {
                write!(
                    f,
                    "no access_token to ask for a jsapi_ticket with: {outcome}"
                )
            }
            Self::AccessTokenRejected { errcode } => write!(
                f,
                "WeChat rejected the access_token ({errcode}: {}) even after a refresh",
                wechat::with_token_meaning(*errcode)
            ),
            Self::RecentlyFailed { failure, until_ms } => write!(
                f,
                "a fetch failed ({failure}) less than {} s ago; WeChat is not asked again before epoch {}s",
                TICKET_FAILURE_MEMORY_MS / 1000,
                until_ms.div_euclid(1000)
            ),
            other => f.write_str(other.code()),
        }
    }
}

/// A refresh's outcome and the token current afterwards (`None` when none is left unexpired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshReport {
    pub outcome: RefreshOutcome,
    pub token: Option<AccessToken>,
}

/// Why no token could be had, or an invocation could not be served.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no usable access_token: {0}")]
    NoUsableToken(RefreshOutcome),
    #[error("no usable jsapi_ticket: {0}")]
    NoUsableTicket(RefreshOutcome),
    #[error("scheduled refresh failed: {0}")]
    ScheduledRefreshFailed(RefreshOutcome),
    #[error("scheduled jsapi_ticket refresh failed: {0}")]
    ScheduledTicketRefreshFailed(RefreshOutcome),
    #[error("invalid invocation: {0}")]
    BadInvocation(&'static str),
    #[error("could not invoke the token function: {0}")]
    Invoke(String),
    #[error("the token function failed: {0}")]
    Remote(String),
    /// The invocation came through the refresh function's `ticket` alias, which answers
    /// `get_ticket` and `refresh_ticket` only; the name is the refused action.
    #[error(
        "the refresh function's ticket entry answers get_ticket and refresh_ticket only, not {0}"
    )]
    NotOnThisEntry(&'static str),
    /// (a container's [`TokenClient`]) Getting a jsapi_ticket failed with an error of `kind`
    /// less than [`TICKET_FAILURE_MEMORY_MS`] ago; nobody is asked again before `until_ms`.
    #[error("getting a jsapi_ticket failed ({kind}) less than {} s ago; not asking again before epoch {}s", TICKET_FAILURE_MEMORY_MS / 1000, .until_ms.div_euclid(1000))]
    RecentlyFailed { kind: &'static str, until_ms: i64 },
}

impl TokenError {
    /// A stable name for the Lambda error type.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Store(_) => "StoreUnavailable",
            Self::NoUsableToken(_) => "NoUsableToken",
            Self::NoUsableTicket(_) => "NoUsableTicket",
            // One error type for both, so one metric filter or alarm covers the scheduled run.
            Self::ScheduledRefreshFailed(_) | Self::ScheduledTicketRefreshFailed(_) => {
                "ScheduledRefreshFailed"
            }
            Self::BadInvocation(_) => "BadInvocation",
            Self::Invoke(_) => "InvokeFailed",
            Self::Remote(_) => "TokenFunctionFailed",
            Self::NotOnThisEntry(_) => "NotOnThisEntry",
            // The remembered failure's own kind: a page sees the same answer until it lapses.
            Self::RecentlyFailed { kind, .. } => kind,
        }
    }

    /// When the failed request may be tried again, when known (epoch ms): a remembered failure's
    /// end, or the token service's (a remembered fetch failure, a quota block).
    pub fn retry_at_ms(&self) -> Option<i64> {
        match self {
            Self::RecentlyFailed { until_ms, .. } => Some(*until_ms),
            Self::NoUsableToken(outcome) | Self::NoUsableTicket(outcome) => outcome.retry_at_ms(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> [(&'static str, &'static str); 2] {
        [
            ("WECHAT_APP_ID", "wx0123456789abcdef"),
            ("WECHAT_APP_SECRET", "s3cret"),
        ]
    }

    #[test]
    fn defaults_are_the_stable_api_a_900_s_margin_and_a_10_s_lease() {
        let config = TokenConfig::from_env(&env()).unwrap();
        assert_eq!(config.api, TokenApi::Stable);
        assert_eq!(config.wechat.api_base, wechat_api::DEFAULT_API_BASE);
        assert_eq!(config.refresh_margin, Duration::from_secs(900));
        assert_eq!(config.lease, Duration::from_secs(10));
        assert_eq!(config.retry.attempts, 3);
        assert_eq!(config.stale_min_age, Duration::from_secs(60));
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn unknown_token_api_and_missing_secret_name_their_variable() {
        let err = TokenConfig::from_env(&[
            ("WECHAT_APP_ID", "wx0123456789abcdef"),
            ("WECHAT_APP_SECRET", "s"),
            ("WECHAT_TOKEN_API", "fast"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "WECHAT_TOKEN_API");
        let err = TokenConfig::from_env(&[("WECHAT_APP_ID", "wx0123456789abcdef")]).unwrap_err();
        assert_eq!(err.variable, "WECHAT_APP_SECRET");
    }

    #[test]
    fn a_margin_as_long_as_a_token_lives_is_refused() {
        let err = TokenConfig::from_env(&[
            ("WECHAT_APP_ID", "wx0123456789abcdef"),
            ("WECHAT_APP_SECRET", "s"),
            ("TOKEN_REFRESH_MARGIN_SECS", "7200"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "TOKEN_REFRESH_MARGIN_SECS");
    }

    #[test]
    fn a_zero_http_timeout_is_refused() {
        let err = TokenConfig::from_env(&[
            ("WECHAT_APP_ID", "wx0123456789abcdef"),
            ("WECHAT_APP_SECRET", "s"),
            ("WECHAT_HTTP_TIMEOUT_MS", "0"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "WECHAT_HTTP_TIMEOUT_MS");
    }

    #[test]
    fn tokens_with_a_minute_or_less_left_are_not_usable() {
        let token = AccessToken {
            value: Secret::new("t".into()),
            expires_at_ms: 100_000,
        };
        assert!(token.is_usable_at(39_999));
        assert!(!token.is_usable_at(40_000));
        assert!(!format!("{token:?}").contains("\"t\""));
    }
}

//! Fetching the account's credentials from WeChat: the access_token from the stable API
//! (`POST /cgi-bin/stable_token`, default) or the classic one (`GET /cgi-bin/token`), and the
//! jsapi_ticket (`GET /cgi-bin/ticket/getticket?type=jsapi`, with an access_token), both with the
//! same bounded retries for WeChat's "busy" answers and WeChat's error codes sorted into what the
//! service must do about them; and the check of whether WeChat still accepts a token
//! (`GET /cgi-bin/get_api_domain_ip`), which tells a true stale report from a false one.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wechat_api::errcode::{self, Context, ErrClass};
use wechat_api::{Ack, ApiError, Endpoint, Method, WeChatHttp};
use wechat_protocol::secret::Secret;

use crate::clock::SharedClock;

/// WeChat allows 20 forced stable-token refreshes a day (China time)...
pub const FORCE_REFRESH_DAILY_LIMIT: u32 = 20;
/// ...at least 30 seconds apart.
pub const FORCE_REFRESH_MIN_INTERVAL_MS: i64 = 30_000;

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

/// A credential (access_token or jsapi_ticket) as WeChat handed it out.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub value: Secret<String>,
    pub expires_in_s: i64,
}

impl Fetched {
    /// When it expires if fetched at `now_ms`; saturating, so an absurd `expires_in` cannot
    /// overflow into the past.
    pub fn expires_at_ms(&self, now_ms: i64) -> i64 {
        now_ms.saturating_add(self.expires_in_s.saturating_mul(1000))
    }
}

/// `POST /cgi-bin/stable_token` (fields in the order WeChat's documentation lists them).
#[derive(Serialize)]
struct StableTokenRequest<'a> {
    grant_type: &'static str,
    appid: &'a str,
    secret: &'a str,
    force_refresh: bool,
}

impl Endpoint for StableTokenRequest<'_> {
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/cgi-bin/stable_token";
    type Answer = TokenAnswer;
}

/// `GET /cgi-bin/token`.
#[derive(Serialize)]
struct ClassicTokenRequest<'a> {
    grant_type: &'static str,
    appid: &'a str,
    secret: &'a str,
}

impl Endpoint for ClassicTokenRequest<'_> {
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/cgi-bin/token";
    type Answer = TokenAnswer;
}

/// Both token endpoints answer `{"access_token": "...", "expires_in": 7200}`.
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    #[serde(deserialize_with = "wechat_protocol::secret::plain_string::deserialize")]
    access_token: Secret<String>,
    expires_in: i64,
}

/// `GET /cgi-bin/ticket/getticket?type=jsapi&access_token=…`.
#[derive(Serialize)]
struct JsapiTicketRequest {
    #[serde(rename = "type")]
    kind: &'static str,
}

impl Endpoint for JsapiTicketRequest {
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/cgi-bin/ticket/getticket";
    type Answer = TicketAnswer;
}

/// `{"errcode": 0, "errmsg": "ok", "ticket": "...", "expires_in": 7200}`.
#[derive(Deserialize)]
pub(crate) struct TicketAnswer {
    #[serde(deserialize_with = "wechat_protocol::secret::plain_string::deserialize")]
    ticket: Secret<String>,
    expires_in: i64,
}

/// `GET /cgi-bin/get_api_domain_ip?access_token=…`: the IP addresses of WeChat's API domain
/// (`{"ip_list": [...]}`). A call made with the access_token that spends none of the token
/// endpoints' quota: the service's check of whether WeChat still accepts a token.
#[derive(Serialize)]
struct ApiDomainIpRequest {}

impl Endpoint for ApiDomainIpRequest {
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/cgi-bin/get_api_domain_ip";
    type Answer = Ack;
}

/// The path of the call that checks a token, for tests and documentation.
pub const TOKEN_CHECK_PATH: &str = ApiDomainIpRequest::PATH;

/// What one check call said of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// WeChat answered the call: the token works.
    Accepted,
    /// WeChat rejected the token (40001/40014/42001).
    Rejected { errcode: i64 },
    /// No verdict: a timeout, an HTTP error, busy, or another errcode.
    Unknown(ApiError),
}

/// Why no credential came back, sorted by what the service does about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchFailure {
    /// The app's configuration is wrong; retrying cannot help. Already logged at error level.
    /// `whitelist_ip`: the caller's address WeChat named with 40164 (IP not whitelisted).
    #[error("WeChat rejected the app's configuration (errcode {errcode})")]
    Configuration {
        errcode: i64,
        whitelist_ip: Option<std::net::IpAddr>,
    },
    /// 45009: stop calling until the quota resets.
    #[error("WeChat's daily quota is exhausted (errcode 45009)")]
    QuotaExhausted,
    /// The access_token a jsapi_ticket was asked with was rejected (40001/40014/42001).
    #[error("WeChat rejected the access_token (errcode {errcode}: {})", with_token_meaning(*errcode))]
    AccessTokenRejected { errcode: i64 },
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

/// What a configuration error code means and what to fix, for the error log line (from the one
/// error-code table, `wechat_api::errcode`).
pub fn config_errcode_advice(errcode: i64) -> (&'static str, &'static str) {
    errcode::config_advice(errcode).unwrap_or((
        "unknown configuration error",
        "check the WeChat error code table",
    ))
}

/// What `errcode` means answered to a call made with an access_token.
pub(crate) fn with_token_meaning(errcode: i64) -> &'static str {
    errcode::meaning(errcode, Context::WithToken).unwrap_or("the access_token was rejected")
}

/// Fetches tokens for one app. Build it once; cheap to share.
#[derive(Debug, Clone)]
pub struct TokenFetcher {
    http: WeChatHttp,
    clock: SharedClock,
    timeout: Duration,
    app_id: String,
    app_secret: Secret<String>,
    api: TokenApi,
    retry: RetryPolicy,
}

impl TokenFetcher {
    /// `timeout` is the HTTP client's per-call timeout: no retry starts that could not finish.
    pub fn new(
        http: WeChatHttp,
        clock: SharedClock,
        timeout: Duration,
        app_id: &str,
        app_secret: Secret<String>,
        api: TokenApi,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            http,
            clock,
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
    /// starting an attempt that could not finish before `deadline_ms` (epoch ms on the service's
    /// clock: the end of the caller's lease).
    pub async fn fetch(&self, mode: FetchMode, deadline_ms: i64) -> Result<Fetched, FetchFailure> {
        self.with_retries(deadline_ms, || self.fetch_once(mode))
            .await
            .map_err(|e| self.classify(e))
    }

    /// Fetch a jsapi_ticket with `access_token`, with the same retries and deadline as
    /// [`Self::fetch`].
    pub async fn fetch_ticket(
        &self,
        access_token: &Secret<String>,
        deadline_ms: i64,
    ) -> Result<Fetched, FetchFailure> {
        let request = JsapiTicketRequest { kind: "jsapi" };
        self.with_retries(deadline_ms, || async {
            let answer = self.http.call_with_token(&request, access_token).await?;
            fetched(answer.ticket, answer.expires_in, "ticket")
        })
        .await
        .map_err(|e| self.classify_ticket_error(e))
    }

    /// Ask WeChat once whether it accepts `access_token`, with a call that spends no token
    /// quota. Never retried: a check that gets no verdict is [`TokenCheck::Unknown`].
    pub async fn check_token(&self, access_token: &Secret<String>) -> TokenCheck {
        match self
            .http
            .call_with_token(&ApiDomainIpRequest {}, access_token)
            .await
        {
            Ok(Ack {}) => TokenCheck::Accepted,
            Err(e) if e.is_access_token_invalid() => TokenCheck::Rejected {
                errcode: e.errcode().unwrap_or_default(),
            },
            Err(e) => TokenCheck::Unknown(e),
        }
    }

    /// Run `call` until it answers something other than busy, the attempts are used up, or the
    /// next attempt could not finish before `deadline_ms`. Busy through the end is
    /// [`FetchFailure::Busy`] (`Ok(Err)`); any other error is handed back for classification.
    async fn with_retries<F, Fut>(&self, deadline_ms: i64, call: F) -> Result<Fetched, Retried>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Fetched, ApiError>>,
    {
        let mut attempt = 1;
        let mut backoff = self.retry.backoff;
        loop {
            let errcode = match call().await {
                Ok(fetched) => return Ok(fetched),
                Err(ApiError::WeChat { errcode, .. })
                    if errcode::class(errcode) == ErrClass::Busy =>
                {
                    errcode
                }
                Err(e) => return Err(Retried::Failed(e)),
            };
            let next_attempt_ends_ms = self
                .clock
                .now_ms()
                .saturating_add((backoff + self.timeout).as_millis() as i64);
            let no_time_left = next_attempt_ends_ms > deadline_ms;
            if attempt >= self.retry.attempts || no_time_left {
                tracing::warn!(
                    app_id = %self.app_id,
                    errcode,
                    attempts = attempt,
                    "WeChat stayed busy; giving up on this refresh"
                );
                return Err(Retried::Busy(FetchFailure::Busy {
                    errcode,
                    attempts: attempt,
                }));
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
        let (appid, secret) = (self.app_id.as_str(), self.app_secret.expose().as_str());
        let answer = match self.api {
            TokenApi::Stable => {
                let request = StableTokenRequest {
                    grant_type: "client_credential",
                    appid,
                    secret,
                    force_refresh: mode == FetchMode::Force,
                };
                self.http.call(&request).await?
            }
            TokenApi::Classic => {
                let request = ClassicTokenRequest {
                    grant_type: "client_credential",
                    appid,
                    secret,
                };
                self.http.call(&request).await?
            }
        };
        fetched(answer.access_token, answer.expires_in, "access_token")
    }

    fn classify_ticket_error(&self, error: Retried) -> FetchFailure {
        match error {
            Retried::Busy(failure) => failure,
            Retried::Failed(e) if e.is_access_token_invalid() => {
                FetchFailure::AccessTokenRejected {
                    errcode: e.errcode().unwrap_or_default(),
                }
            }
            Retried::Failed(e) if e.class() == Some(ErrClass::QuotaExhausted) => {
                FetchFailure::QuotaExhausted
            }
            Retried::Failed(other) => {
                tracing::warn!(
                    app_id = %self.app_id,
                    error = %other,
                    whitelist_ip = other.whitelist_ip().map(tracing::field::display),
                    "could not fetch a jsapi_ticket; the stored ticket is kept"
                );
                FetchFailure::Unavailable(other)
            }
        }
    }

    fn classify(&self, error: Retried) -> FetchFailure {
        let error = match error {
            Retried::Busy(failure) => return failure,
            Retried::Failed(e) => e,
        };
        match error {
            ApiError::WeChat {
                errcode,
                ref errmsg,
            } if errcode::config_advice(errcode).is_some() => {
                let (meaning, fix) = config_errcode_advice(errcode);
                // The stack's own outbound address (not personal data): the one to whitelist.
                let whitelist_ip = error.whitelist_ip();
                let fix = match whitelist_ip {
                    Some(ip) => errcode::whitelist_fix(ip),
                    None => fix.to_string(),
                };
                tracing::error!(
                    app_id = %self.app_id,
                    errcode,
                    errmsg = %errmsg,
                    whitelist_ip = whitelist_ip.map(tracing::field::display),
                    meaning,
                    fix,
                    "WeChat refuses to issue an access_token: configuration error; the stored token is kept"
                );
                FetchFailure::Configuration {
                    errcode,
                    whitelist_ip,
                }
            }
            ApiError::WeChat { errcode, .. }
                if errcode::class(errcode) == ErrClass::QuotaExhausted =>
            {
                FetchFailure::QuotaExhausted
            }
            other => {
                tracing::warn!(app_id = %self.app_id, error = %other, "could not fetch an access_token; the stored token is kept");
                FetchFailure::Unavailable(other)
            }
        }
    }
}

/// How a run of attempts ended without a credential.
enum Retried {
    /// Busy through every allowed attempt.
    Busy(FetchFailure),
    /// Another error, to be sorted by the caller.
    Failed(ApiError),
}

/// A usable credential from an answer's `field` and `expires_in`, or `Malformed` naming what is
/// wrong (never echoing the answer, which holds a credential).
fn fetched(
    value: Secret<String>,
    expires_in: i64,
    field: &'static str,
) -> Result<Fetched, ApiError> {
    if value.expose().is_empty() {
        return Err(ApiError::Malformed(format!("no {field} in the answer")));
    }
    if expires_in <= 0 {
        return Err(ApiError::Malformed(
            "no positive expires_in in the answer".into(),
        ));
    }
    Ok(Fetched {
        value,
        expires_in_s: expires_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, SharedClock};
    use std::sync::Arc;
    use wechat_api::decode;
    use wechat_api::double::{InProcessWeChat, ok};

    fn parse_token(answer: &[u8]) -> Result<Fetched, ApiError> {
        decode::<TokenAnswer>(answer)
            .and_then(|a| fetched(a.access_token, a.expires_in, "access_token"))
    }

    fn parse_ticket(answer: &[u8]) -> Result<Fetched, ApiError> {
        decode::<TicketAnswer>(answer).and_then(|a| fetched(a.ticket, a.expires_in, "ticket"))
    }

    #[test]
    fn ticket_answers_are_read_and_empty_tickets_are_malformed() {
        let ok =
            parse_ticket(br#"{"errcode":0,"errmsg":"ok","ticket":"J","expires_in":7200}"#).unwrap();
        assert_eq!((ok.value.expose().as_str(), ok.expires_in_s), ("J", 7200));
        let err = parse_ticket(br#"{"errcode":0,"errmsg":"ok","ticket":"","expires_in":7200}"#)
            .unwrap_err();
        assert!(matches!(err, ApiError::Malformed(_)));
    }

    #[test]
    fn answers_without_a_token_or_lifetime_are_malformed_without_echoing_them() {
        let err = parse_token(br#"{"expires_in": 7200}"#).unwrap_err();
        assert!(matches!(err, ApiError::Malformed(_)));
        let err =
            parse_token(br#"{"access_token": "SECRET_TOKEN", "expires_in": "7200"}"#).unwrap_err();
        assert!(!err.to_string().contains("SECRET_TOKEN"));
        let err = parse_token(br#"{"access_token": "", "expires_in": 7200}"#).unwrap_err();
        assert!(matches!(err, ApiError::Malformed(_)));
        let ok = parse_token(br#"{"access_token": "T", "expires_in": 7200}"#).unwrap();
        assert_eq!((ok.value.expose().as_str(), ok.expires_in_s), ("T", 7200));
    }

    #[test]
    fn the_whitelist_error_says_so() {
        let (meaning, fix) = config_errcode_advice(40164);
        assert!(meaning.contains("whitelist") && fix.contains("whitelist"));
        assert!(errcode::config_advice(89503).is_some());
        assert!(errcode::config_advice(45009).is_none());
    }

    #[test]
    fn a_huge_expires_in_saturates_instead_of_overflowing() {
        let fetched =
            parse_token(br#"{"access_token": "T", "expires_in": 9223372036854775807}"#).unwrap();
        assert_eq!(fetched.expires_at_ms(1_000), i64::MAX);
        let normal = parse_token(br#"{"access_token": "T", "expires_in": 7200}"#).unwrap();
        assert_eq!(normal.expires_at_ms(1_000), 7_201_000);
    }

    fn fetcher(double: &Arc<InProcessWeChat>, api: TokenApi, clock: SharedClock) -> TokenFetcher {
        TokenFetcher::new(
            double.client(),
            clock,
            Duration::from_millis(500),
            "wx1",
            Secret::new("s3cret".into()),
            api,
            RetryPolicy {
                attempts: 3,
                backoff: Duration::from_millis(1),
            },
        )
    }

    #[tokio::test]
    async fn busy_answers_are_retried_and_the_requests_carry_the_credentials_as_wechat_wants() {
        let answers = std::sync::Mutex::new(vec![
            r#"{"access_token":"T","expires_in":7200}"#,
            r#"{"errcode":45011,"errmsg":"too frequent"}"#,
            r#"{"errcode":-1,"errmsg":"system error"}"#,
        ]);
        let double = InProcessWeChat::new(move |_| {
            ok(answers
                .lock()
                .unwrap()
                .pop()
                .expect("no more than three calls"))
        });
        let clock: SharedClock = Arc::new(ManualClock::at_ms(0));
        let got = fetcher(&double, TokenApi::Stable, clock)
            .fetch(FetchMode::Force, 10_000)
            .await
            .unwrap();
        assert_eq!(got.value.expose(), "T");
        let requests = double.requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(requests[0].path, "/cgi-bin/stable_token");
        assert_eq!(
            requests[0].json_body.as_deref(),
            Some(
                &br#"{"grant_type":"client_credential","appid":"wx1","secret":"s3cret","force_refresh":true}"#[..]
            )
        );
    }

    #[tokio::test]
    async fn no_retry_starts_that_could_not_finish_before_the_deadline() {
        let double = InProcessWeChat::new(|_| ok(r#"{"errcode":-1,"errmsg":"system error"}"#));
        let clock: SharedClock = Arc::new(ManualClock::at_ms(0));
        let failure = fetcher(&double, TokenApi::Classic, clock)
            .fetch(FetchMode::Normal, 400)
            .await
            .unwrap_err();
        assert_eq!(
            failure,
            FetchFailure::Busy {
                errcode: -1,
                attempts: 1
            }
        );
        assert_eq!(double.requests().len(), 1);
        assert_eq!(double.requests()[0].path, "/cgi-bin/token");
        assert_eq!(
            double.requests()[0].query,
            "grant_type=client_credential&appid=wx1&secret=s3cret"
        );
    }

    #[tokio::test]
    async fn credential_errors_are_configuration_failures_and_not_retried() {
        let double =
            InProcessWeChat::new(|_| ok(r#"{"errcode":40125,"errmsg":"invalid appsecret"}"#));
        let clock: SharedClock = Arc::new(ManualClock::at_ms(0));
        let failure = fetcher(&double, TokenApi::Stable, clock)
            .fetch(FetchMode::Normal, 10_000)
            .await
            .unwrap_err();
        assert_eq!(
            failure,
            FetchFailure::Configuration {
                errcode: 40125,
                whitelist_ip: None
            }
        );
        assert_eq!(double.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_token_check_is_one_call_to_get_api_domain_ip_with_the_token() {
        let answers = std::sync::Mutex::new(vec![
            r#"<html>bad gateway</html>"#,
            r#"{"errcode":-1,"errmsg":"system error"}"#,
            r#"{"errcode":42001,"errmsg":"access_token expired"}"#,
            r#"{"errcode":40001,"errmsg":"invalid credential"}"#,
            r#"{"ip_list":["101.226.103.0/25"]}"#,
        ]);
        let double = InProcessWeChat::new(move |_| ok(answers.lock().unwrap().pop().unwrap()));
        let clock: SharedClock = Arc::new(ManualClock::at_ms(0));
        let fetcher = fetcher(&double, TokenApi::Classic, clock);
        let token = Secret::new("TOKEN-A".to_string());
        assert_eq!(fetcher.check_token(&token).await, TokenCheck::Accepted);
        assert_eq!(
            fetcher.check_token(&token).await,
            TokenCheck::Rejected { errcode: 40001 }
        );
        assert_eq!(
            fetcher.check_token(&token).await,
            TokenCheck::Rejected { errcode: 42001 }
        );
        // Busy and unreadable answers give no verdict, and are not retried.
        assert!(matches!(
            fetcher.check_token(&token).await,
            TokenCheck::Unknown(ApiError::WeChat { errcode: -1, .. })
        ));
        assert!(matches!(
            fetcher.check_token(&token).await,
            TokenCheck::Unknown(ApiError::Malformed(_))
        ));
        let requests = double.requests();
        assert_eq!(requests.len(), 5);
        assert!(requests.iter().all(|r| r.path == TOKEN_CHECK_PATH
            && r.method == Method::Get
            && r.query == "access_token=TOKEN-A"));
    }

    #[test]
    fn a_rejected_token_reads_as_replaced_not_as_a_wrong_appsecret() {
        let text = FetchFailure::AccessTokenRejected { errcode: 40001 }.to_string();
        assert!(
            text.contains("replaced by a newer fetch elsewhere"),
            "{text}"
        );
        assert!(!text.contains("AppSecret is wrong"), "{text}");
        let (meaning, _) = config_errcode_advice(40001);
        assert!(meaning.contains("AppSecret is wrong"), "{meaning}");
    }
}

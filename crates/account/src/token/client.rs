//! The access_token as the other functions see it: [`TokenClient`] keeps the token for the life of
//! the Lambda container (a warm invocation asks nobody), and [`TokenClient::call_with_token`] runs a
//! WeChat API call with it, reporting the token stale and retrying once when WeChat rejects it.
//!
//! Where the token comes from is the [`TokenSource`] port: the service itself, in process (the
//! refresh function, the local server, tests), or [`super::LambdaTokenSource`] (read the table,
//! report stale tokens to the refresh function). The jsapi_ticket likewise: [`TicketSource`] (on
//! both), cached per container by the same [`TokenClient`], which also throttles the misses: one
//! attempt at a time (concurrent callers share it), and a failed one remembered for
//! [`super::TICKET_FAILURE_MEMORY_MS`] (callers get that failure meanwhile, without asking the
//! source again).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use wechat_api::ApiError;
use wechat_api::errcode::{self, Context};
use wechat_protocol::secret::Secret;

use super::{AccessToken, TokenError, TokenService};
use crate::clock::{self, SharedClock};
use crate::token::store::TokenStore;
use crate::token::{JsapiTicket, TicketSource};

/// Where tokens come from.
pub trait TokenSource: Send + Sync {
    /// A usable token (more than [`super::MIN_REMAINING_MS`] left).
    fn current(&self) -> impl Future<Output = Result<AccessToken, TokenError>> + Send;

    /// `stale` failed a call with 40001/40014/42001: have it replaced (unless that already
    /// happened) and return the token current afterwards.
    fn report_stale(
        &self,
        stale: &str,
    ) -> impl Future<Output = Result<AccessToken, TokenError>> + Send;
}

/// In process: the service's own logic, over its store.
impl<S: TokenStore> TokenSource for TokenService<S> {
    async fn current(&self) -> Result<AccessToken, TokenError> {
        self.get().await
    }

    async fn report_stale(&self, stale: &str) -> Result<AccessToken, TokenError> {
        let report = self.refresh_stale(stale).await?;
        report
            .token
            .ok_or(TokenError::NoUsableToken(report.outcome))
    }
}

/// In process: the service's own logic, over its store.
impl<S: TokenStore> TicketSource for TokenService<S> {
    async fn jsapi_ticket(&self) -> Result<JsapiTicket, TokenError> {
        self.get_ticket().await
    }
}

impl<T: TokenSource> TokenSource for Arc<T> {
    fn current(&self) -> impl Future<Output = Result<AccessToken, TokenError>> + Send {
        (**self).current()
    }

    fn report_stale(
        &self,
        stale: &str,
    ) -> impl Future<Output = Result<AccessToken, TokenError>> + Send {
        (**self).report_stale(stale)
    }
}

/// Why a call made through [`TokenClient::call_with_token`] failed. WeChat's answer reads with
/// what its code means for a call made with an access_token (40001: the token is invalid or
/// was replaced by a fetch elsewhere, not a wrong AppSecret).
#[derive(Debug)]
pub enum CallError {
    Token(TokenError),
    Api(ApiError),
}

impl From<TokenError> for CallError {
    fn from(e: TokenError) -> Self {
        Self::Token(e)
    }
}

impl From<ApiError> for CallError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(e) => write!(f, "no access_token: {e}"),
            Self::Api(e) => match (e.whitelist_ip(), with_token_meaning(e)) {
                (Some(ip), _) => write!(f, "{} ({e})", errcode::whitelist_fix(ip)),
                (None, Some(meaning)) => write!(f, "{e} ({meaning})"),
                (None, None) => write!(f, "{e}"),
            },
        }
    }
}

impl std::error::Error for CallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Token(e) => Some(e),
            Self::Api(e) => e.source(),
        }
    }
}

/// What WeChat's error code means for a call made with an access_token, if the table knows it.
fn with_token_meaning(error: &ApiError) -> Option<&'static str> {
    error
        .errcode()
        .and_then(|code| errcode::meaning(code, Context::WithToken))
}

/// A credential kept for the life of the container and handed out while it has more than
/// [`super::MIN_REMAINING_MS`] left: [`TokenClient`]'s caches of the token and the ticket.
struct ContainerCache<T> {
    clock: SharedClock,
    cached: Mutex<Option<T>>,
}

/// What [`ContainerCache`] needs to know of a credential.
trait Expiring: Clone + PartialEq {
    fn expires_at_ms(&self) -> i64;
}

impl Expiring for AccessToken {
    fn expires_at_ms(&self) -> i64 {
        self.expires_at_ms
    }
}

impl Expiring for JsapiTicket {
    fn expires_at_ms(&self) -> i64 {
        self.expires_at_ms
    }
}

impl<T: Expiring> ContainerCache<T> {
    fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            cached: Mutex::new(None),
        }
    }

    /// The cached credential while it is usable; otherwise what `fetch` gives, cached.
    async fn get_or<E>(&self, fetch: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        if let Some(value) = self.usable() {
            return Ok(value);
        }
        let value = fetch.await?;
        self.set(value.clone());
        Ok(value)
    }

    /// The cached credential while it has more than [`super::MIN_REMAINING_MS`] left.
    fn usable(&self) -> Option<T> {
        let now = self.clock.now_ms();
        self.lock()
            .as_ref()
            .filter(|v| v.expires_at_ms() - now > super::MIN_REMAINING_MS)
            .cloned()
    }

    fn set(&self, value: T) {
        *self.lock() = Some(value);
    }

    /// Drop `value` if it is the cached one (not a newer one another call cached meanwhile).
    fn forget(&self, value: &T) {
        let mut cached = self.lock();
        if cached.as_ref() == Some(value) {
            *cached = None;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<T>> {
        // A panic while holding this lock cannot leave a half-written value: ignore poisoning.
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A failure to get a jsapi_ticket, remembered by [`TokenClient`] for
/// [`super::TICKET_FAILURE_MEMORY_MS`].
struct FailureMemory {
    clock: SharedClock,
    /// The failure's kind ([`TokenError::kind`]) and until when it is remembered (epoch ms).
    remembered: Mutex<Option<(&'static str, i64)>>,
}

impl FailureMemory {
    fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            remembered: Mutex::new(None),
        }
    }

    /// The remembered failure, while it lasts.
    fn recall(&self) -> Option<TokenError> {
        let now = self.clock.now_ms();
        self.lock()
            .filter(|(_, until_ms)| *until_ms > now)
            .map(|(kind, until_ms)| TokenError::RecentlyFailed { kind, until_ms })
    }

    /// Remember `error` until the token service's own memory of it ends, when the error says
    /// (a remembered fetch failure, a quota block), else for [`super::TICKET_FAILURE_MEMORY_MS`];
    /// never longer than that.
    fn remember(&self, error: &TokenError) {
        let now = self.clock.now_ms();
        let longest = now + super::TICKET_FAILURE_MEMORY_MS;
        let until_ms = error
            .retry_at_ms()
            .filter(|at| *at > now)
            .map_or(longest, |at| at.min(longest));
        *self.lock() = Some((error.kind(), until_ms));
    }

    fn forget(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> MutexGuard<'_, Option<(&'static str, i64)>> {
        self.remembered.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The token (and, for a source that has one, the jsapi_ticket) for one container: build it once
/// at start-up and share it between invocations.
pub struct TokenClient<S> {
    source: S,
    cache: ContainerCache<AccessToken>,
    tickets: ContainerCache<JsapiTicket>,
    /// Held while the source is asked for a ticket: concurrent misses wait and share the result.
    ticket_attempt: tokio::sync::Mutex<()>,
    ticket_failure: FailureMemory,
}

impl<S: std::fmt::Debug> std::fmt::Debug for TokenClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenClient")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl<S> TokenClient<S> {
    /// On the system clock.
    pub fn new(source: S) -> Self {
        Self::with_clock(source, clock::system())
    }

    pub fn with_clock(source: S, clock: SharedClock) -> Self {
        Self {
            source,
            cache: ContainerCache::new(clock.clone()),
            tickets: ContainerCache::new(clock.clone()),
            ticket_attempt: tokio::sync::Mutex::new(()),
            ticket_failure: FailureMemory::new(clock),
        }
    }

    pub fn source(&self) -> &S {
        &self.source
    }
}

impl<S: TokenSource> TokenClient<S> {
    /// The cached token while it is usable; otherwise the source's, cached for next time.
    pub async fn current(&self) -> Result<AccessToken, TokenError> {
        self.cache.get_or(self.source.current()).await
    }

    /// Run `call` with the current token. If WeChat rejects the token (40001/40014/42001), report
    /// it stale, and run `call` once more with the replacement; a second rejection is returned
    /// as is (no loop). When the source has no other token to offer, the first error is returned.
    pub async fn call_with_token<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: Fn(Secret<String>) -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let token = self.current().await?;
        let error = match call(token.value.clone()).await {
            Err(e) if e.is_access_token_invalid() => e,
            other => return Ok(other?),
        };
        tracing::warn!(
            errcode = error.errcode(),
            meaning = with_token_meaning(&error),
            token = %token.fingerprint(),
            "WeChat rejected the access_token; reporting it stale and retrying once"
        );
        self.cache.forget(&token);
        let replacement = self.source.report_stale(token.value.expose()).await?;
        if replacement.value == token.value {
            tracing::warn!(
                token = %token.fingerprint(),
                "no replacement for the rejected access_token: the token service kept it (see its outcome)"
            );
            return Err(CallError::Api(error));
        }
        self.cache.set(replacement.clone());
        Ok(call(replacement.value).await?)
    }
}

/// The ticket through the same client: cached for the container's life like the token, so a warm
/// invocation whose cached ticket has more than [`super::MIN_REMAINING_MS`] left asks nobody.
/// A miss asks the source once at a time: callers arriving meanwhile wait for that attempt and
/// take its ticket, or its failure. A failure is remembered for
/// [`super::TICKET_FAILURE_MEMORY_MS`] (or until the service said it may be retried, if sooner),
/// and answered as [`TokenError::RecentlyFailed`] meanwhile, so a page asking again and again
/// while no ticket can be had costs no refresh invoke and no WeChat call.
impl<S: TicketSource> TicketSource for TokenClient<S> {
    async fn jsapi_ticket(&self) -> Result<JsapiTicket, TokenError> {
        let settled = || match self.tickets.usable() {
            Some(ticket) => Some(Ok(ticket)),
            None => self.ticket_failure.recall().map(Err),
        };
        if let Some(settled) = settled() {
            return settled;
        }
        let _attempt = self.ticket_attempt.lock().await;
        // The attempt this one waited for may have settled it.
        if let Some(settled) = settled() {
            return settled;
        }
        match self.source.jsapi_ticket().await {
            Ok(ticket) => {
                self.ticket_failure.forget();
                self.tickets.set(ticket.clone());
                Ok(ticket)
            }
            Err(error) => {
                self.ticket_failure.remember(&error);
                tracing::warn!(
                    kind = error.kind(),
                    remembered_ms = super::TICKET_FAILURE_MEMORY_MS,
                    "no jsapi_ticket; answering this failure without asking again for a while"
                );
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_call_reads_with_what_its_code_means_for_a_call_made_with_a_token() {
        let error = CallError::Api(ApiError::WeChat {
            errcode: 40001,
            errmsg: "invalid credential, access_token is invalid or not latest".into(),
        });
        let text = error.to_string();
        assert!(
            text.contains(
                "the access_token is invalid or was replaced by a newer fetch elsewhere (another server or tool using the AppSecret)"
            ),
            "{text}"
        );
        assert!(!text.contains("AppSecret is wrong"), "{text}");
        assert_eq!(
            CallError::Api(ApiError::Timeout).to_string(),
            ApiError::Timeout.to_string()
        );
        let unknown = CallError::Api(ApiError::WeChat {
            errcode: 99_999,
            errmsg: "m".into(),
        });
        assert_eq!(unknown.to_string(), "WeChat answered errcode 99999: m");
    }
}

//! What sets the service's two credentials apart, said once: [`Kept`], implemented by the stored
//! access_token ([`TokenRecord`]) and the stored jsapi_ticket ([`TicketRecord`]). It names the
//! credential in log lines, reads and writes its record through the [`TokenStore`] port, names its
//! lease and quota items, fetches it from WeChat, and hands it (and reports about it) out in the
//! public types. The refresh engine (`service`) is generic over it and never asks which of the
//! two it refreshes.
//!
//! Fetching the jsapi_ticket needs an access_token, so a fetch gets the engine it runs in through
//! the [`Fetching`] port: this module stays below the engine instead of importing it.

use std::future::Future;

use table::StoreError;
use wechat_protocol::secret::Secret;

use super::store::{ConditionalWrite, TicketRecord, TokenRecord, TokenStore, ticket_id};
use super::wechat::{FetchFailure, FetchMode, Fetched, TokenApi, TokenFetcher};
use super::{
    AccessToken, JsapiTicket, MIN_REMAINING_MS, RefreshOutcome, RefreshReport, TicketReport,
    TokenError,
};

/// How asking WeChat for a credential ended.
#[derive(Debug)]
pub(super) enum FetchStep {
    /// WeChat handed one out.
    Fetched(Fetched),
    /// WeChat was asked and handed none out: the engine records what that means for later calls.
    Failed(FetchFailure),
    /// WeChat could not be asked at all; the refresh ends with this outcome.
    Settled(RefreshOutcome),
}

impl From<Result<Fetched, FetchFailure>> for FetchStep {
    fn from(result: Result<Fetched, FetchFailure>) -> Self {
        match result {
            Ok(fetched) => Self::Fetched(fetched),
            Err(failure) => Self::Failed(failure),
        }
    }
}

/// What a credential's fetch may use of the engine that runs the refresh.
pub(super) trait Fetching: Sync {
    fn app_id(&self) -> &str;

    /// WeChat's credential endpoints.
    fn fetcher(&self) -> &TokenFetcher;

    /// When, as of now, the fetch's last retry must be over: before the refresh lease runs out.
    fn fetch_deadline_ms(&self) -> i64;

    /// A usable access_token, fetched first if none is stored.
    fn access_token(&self) -> impl Future<Output = Result<AccessToken, TokenError>> + Send;

    /// WeChat rejected the access_token `stale`: have it replaced, as a failed call reports it.
    fn refresh_stale_token(
        &self,
        stale: &str,
    ) -> impl Future<Output = Result<RefreshReport, TokenError>> + Send;
}

/// A credential the service keeps, as its stored record. Both records hold the same bookkeeping
/// (value, expiry, fetch time, version) under different attribute names; the accessors and
/// [`Kept::new`] are how the engine sees it whichever it is.
pub(super) trait Kept: Sized + Send + Sync {
    /// The `credential` field of log lines.
    const NAME: &'static str;

    /// Whether a failed fetch is remembered for [`super::TICKET_FAILURE_MEMORY_MS`], so that
    /// callers other than the schedule get that failure instead of more WeChat calls.
    const REMEMBERS_FAILURES: bool;

    /// The credential as handed out to callers.
    type Credential;

    /// A refresh's outcome with the credential current afterwards, as the public API reports it.
    type Report;

    /// The record of a credential fetched at `fetched_at_ms`, to be written as `version`.
    fn new(value: Secret<String>, expires_at_ms: i64, fetched_at_ms: i64, version: u64) -> Self;

    fn value(&self) -> &Secret<String>;

    fn expires_at_ms(&self) -> i64;

    fn fetched_at_ms(&self) -> i64;

    /// Starts at 1 and grows by one with every write: the compare-and-swap's version.
    fn version(&self) -> u64;

    fn credential(&self) -> Self::Credential;

    /// The public report of a refresh that ended with `outcome` and left `current` unexpired.
    fn report(outcome: RefreshOutcome, current: Option<Self::Credential>) -> Self::Report;

    /// The error of a caller that needed a usable one and got none, for the reason `outcome`.
    fn none_usable(outcome: RefreshOutcome) -> TokenError;

    /// The id its lease and quota items are kept under (`lease#<id>`, `quota#<id>`).
    fn lease_and_quota_id(app_id: &str) -> String;

    /// Its record, expired or not (the engine judges expiry).
    fn read<S: TokenStore>(
        store: &S,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<Self>, StoreError>> + Send;

    /// Write this record if the stored one's version is still `replacing` (`None`: absent).
    fn write<S: TokenStore>(
        &self,
        store: &S,
        app_id: &str,
        replacing: Option<u64>,
    ) -> impl Future<Output = Result<ConditionalWrite, StoreError>> + Send;

    /// Whether fetching it in `mode` from `api` spends one of WeChat's forced refreshes (20 a
    /// day, 30 s apart), which the engine counts in the quota item before fetching.
    fn spends_forced_refresh(api: TokenApi, mode: FetchMode) -> bool;

    /// Ask WeChat for a new one.
    fn fetch<E: Fetching>(
        engine: &E,
        mode: FetchMode,
    ) -> impl Future<Output = Result<FetchStep, TokenError>> + Send;

    /// More than [`MIN_REMAINING_MS`] left, as [`AccessToken::is_usable_at`].
    fn is_usable_at(&self, now_ms: i64) -> bool {
        self.expires_at_ms() - now_ms > MIN_REMAINING_MS
    }
}

impl Kept for TokenRecord {
    const NAME: &'static str = "access_token";
    /// No: every function's calls depend on the token, and its fetches are asked for by the
    /// stack's own functions (and token readers), not by anonymous pages.
    const REMEMBERS_FAILURES: bool = false;
    type Credential = AccessToken;
    type Report = RefreshReport;

    fn new(value: Secret<String>, expires_at_ms: i64, fetched_at_ms: i64, version: u64) -> Self {
        Self {
            access_token: value,
            expires_at_ms,
            fetched_at_ms,
            version,
        }
    }

    fn value(&self) -> &Secret<String> {
        &self.access_token
    }

    fn expires_at_ms(&self) -> i64 {
        self.expires_at_ms
    }

    fn fetched_at_ms(&self) -> i64 {
        self.fetched_at_ms
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn credential(&self) -> AccessToken {
        AccessToken {
            value: self.access_token.clone(),
            expires_at_ms: self.expires_at_ms,
        }
    }

    fn report(outcome: RefreshOutcome, token: Option<AccessToken>) -> RefreshReport {
        RefreshReport { outcome, token }
    }

    fn none_usable(outcome: RefreshOutcome) -> TokenError {
        TokenError::NoUsableToken(outcome)
    }

    /// The app id itself: the token's items were named so before the ticket existed.
    fn lease_and_quota_id(app_id: &str) -> String {
        app_id.to_string()
    }

    fn read<S: TokenStore>(
        store: &S,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<Self>, StoreError>> + Send {
        store.read_token(app_id)
    }

    fn write<S: TokenStore>(
        &self,
        store: &S,
        app_id: &str,
        replacing: Option<u64>,
    ) -> impl Future<Output = Result<ConditionalWrite, StoreError>> + Send {
        store.write_token(app_id, self, replacing)
    }

    /// Only the stable API has a forced mode; the classic one issues a new token on every call.
    fn spends_forced_refresh(api: TokenApi, mode: FetchMode) -> bool {
        mode == FetchMode::Force && api == TokenApi::Stable
    }

    async fn fetch<E: Fetching>(engine: &E, mode: FetchMode) -> Result<FetchStep, TokenError> {
        let fetcher = engine.fetcher();
        Ok(fetcher.fetch(mode, engine.fetch_deadline_ms()).await.into())
    }
}

impl Kept for TicketRecord {
    const NAME: &'static str = "jsapi_ticket";
    /// Yes: anonymous `/jssdk/config` requests ask for it.
    const REMEMBERS_FAILURES: bool = true;
    type Credential = JsapiTicket;
    type Report = TicketReport;

    fn new(value: Secret<String>, expires_at_ms: i64, fetched_at_ms: i64, version: u64) -> Self {
        Self {
            jsapi_ticket: value,
            expires_at_ms,
            fetched_at_ms,
            version,
        }
    }

    fn value(&self) -> &Secret<String> {
        &self.jsapi_ticket
    }

    fn expires_at_ms(&self) -> i64 {
        self.expires_at_ms
    }

    fn fetched_at_ms(&self) -> i64 {
        self.fetched_at_ms
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn credential(&self) -> JsapiTicket {
        JsapiTicket {
            value: self.jsapi_ticket.clone(),
            expires_at_ms: self.expires_at_ms,
        }
    }

    fn report(outcome: RefreshOutcome, ticket: Option<JsapiTicket>) -> TicketReport {
        TicketReport { outcome, ticket }
    }

    fn none_usable(outcome: RefreshOutcome) -> TokenError {
        TokenError::NoUsableTicket(outcome)
    }

    fn lease_and_quota_id(app_id: &str) -> String {
        ticket_id(app_id)
    }

    fn read<S: TokenStore>(
        store: &S,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<Self>, StoreError>> + Send {
        store.read_ticket(app_id)
    }

    fn write<S: TokenStore>(
        &self,
        store: &S,
        app_id: &str,
        replacing: Option<u64>,
    ) -> impl Future<Output = Result<ConditionalWrite, StoreError>> + Send {
        store.write_ticket(app_id, self, replacing)
    }

    /// getticket has no forced mode: a stale ticket is replaced by a normal fetch.
    fn spends_forced_refresh(_: TokenApi, _: FetchMode) -> bool {
        false
    }

    /// Asked with the current access_token. If WeChat rejects the token (40001/40014/42001),
    /// it is reported stale (one passive refresh) and the ticket asked for once more with the
    /// replacement. Without a usable token WeChat is not asked ([`FetchStep::Settled`]).
    async fn fetch<E: Fetching>(engine: &E, _: FetchMode) -> Result<FetchStep, TokenError> {
        let token = match engine.access_token().await {
            Ok(token) => token,
            Err(TokenError::NoUsableToken(outcome)) => {
                return Ok(FetchStep::Settled(RefreshOutcome::TokenUnavailable(
                    Box::new(outcome),
                )));
            }
            Err(e) => return Err(e),
        };
        let fetcher = engine.fetcher();
        let first = fetcher
            .fetch_ticket(&token.value, engine.fetch_deadline_ms())
            .await;
        let Err(FetchFailure::AccessTokenRejected { errcode }) = first else {
            return Ok(first.into());
        };
        tracing::warn!(
            app_id = %engine.app_id(),
            errcode,
            meaning = super::wechat::with_token_meaning(errcode),
            token = %token.fingerprint(),
            "WeChat rejected the access_token asking for a jsapi_ticket; reporting it stale and retrying once"
        );
        let report = engine.refresh_stale_token(token.value.expose()).await?;
        Ok(match report.token {
            Some(replacement) if replacement.value != token.value => fetcher
                .fetch_ticket(&replacement.value, engine.fetch_deadline_ms())
                .await
                .into(),
            // The token was not replaced (WeChat accepts it on a check, it could not be checked,
            // no forced refresh allowed, none left): asking again would be rejected the same way.
            _ => FetchStep::Failed(FetchFailure::AccessTokenRejected { errcode }),
        })
    }
}

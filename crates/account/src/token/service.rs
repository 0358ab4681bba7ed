//! The refresh logic of the central control service, for both credentials it keeps (the
//! access_token and the jsapi_ticket): when to fetch, who may fetch (a lease per credential), how a
//! fetched credential is stored (compare-and-swap on the version), what the quota allows, how
//! often a stale report may cause a fetch, and what a refresher that lost the race does (waits
//! for the winner's credential instead of fetching).

use std::sync::atomic::{AtomicU64, Ordering};

use table::StoreError;
use wechat_api::WeChatHttp;
use wechat_protocol::secret::Secret;

use super::wechat::{
    FORCE_REFRESH_DAILY_LIMIT, FORCE_REFRESH_MIN_INTERVAL_MS, FetchFailure, FetchMode, Fetched,
    TokenApi, TokenFetcher,
};
use super::{AccessToken, RefreshOutcome, RefreshReport, TokenConfig, TokenError};
use crate::clock::SharedClock;
use crate::token::JsapiTicket;
use crate::token::store::{
    ConditionalWrite, LeaseAttempt, QuotaRecord, TicketRecord, TokenRecord, TokenStore, ticket_id,
};

const DAY_MS: i64 = 86_400_000;
const CHINA_OFFSET_MS: i64 = 8 * 3_600_000;
/// A refresher that finds the lease run out takes it over; this bounds how often in one call.
const MAX_LEASE_ROUNDS: u32 = 3;
/// Conditional writes of the quota item retried when another instance wrote in between.
const MAX_QUOTA_WRITES: u32 = 3;

/// The China-time (UTC+8) day of `now_ms`, in days since 1970-01-01: WeChat's quotas count per it.
pub fn china_day(now_ms: i64) -> i64 {
    (now_ms + CHINA_OFFSET_MS).div_euclid(DAY_MS)
}

/// The next midnight in China time, when WeChat resets daily quotas, in epoch milliseconds.
pub fn next_china_midnight_ms(now_ms: i64) -> i64 {
    (china_day(now_ms) + 1) * DAY_MS - CHINA_OFFSET_MS
}

/// Which of the account's credentials a refresh is about. Both go through the same lease, wait,
/// quota and compare-and-swap logic; they differ in their items and in how they are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    AccessToken,
    JsapiTicket,
}

impl Credential {
    /// The name in log lines.
    fn name(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::JsapiTicket => "jsapi_ticket",
        }
    }
}

/// A stored credential as the refresh logic sees it, whichever item it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    value: Secret<String>,
    expires_at_ms: i64,
    fetched_at_ms: i64,
    version: u64,
}

impl Held {
    /// More than [`super::MIN_REMAINING_MS`] left, as [`AccessToken::is_usable_at`].
    fn is_usable_at(&self, now_ms: i64) -> bool {
        self.expires_at_ms - now_ms > super::MIN_REMAINING_MS
    }

    fn as_token(&self) -> AccessToken {
        AccessToken {
            value: self.value.clone(),
            expires_at_ms: self.expires_at_ms,
        }
    }

    fn as_ticket(&self) -> JsapiTicket {
        JsapiTicket {
            value: self.value.clone(),
            expires_at_ms: self.expires_at_ms,
        }
    }
}

impl From<TokenRecord> for Held {
    fn from(r: TokenRecord) -> Self {
        Self {
            value: r.access_token,
            expires_at_ms: r.expires_at_ms,
            fetched_at_ms: r.fetched_at_ms,
            version: r.version,
        }
    }
}

impl From<TicketRecord> for Held {
    fn from(r: TicketRecord) -> Self {
        Self {
            value: r.jsapi_ticket,
            expires_at_ms: r.expires_at_ms,
            fetched_at_ms: r.fetched_at_ms,
            version: r.version,
        }
    }
}

/// What the caller needs from the stored credential.
#[derive(Debug, Clone, Copy)]
enum Need<'a> {
    /// Any credential that is not about to expire (`get`).
    Usable,
    /// One with more than the refresh margin left (the scheduled run).
    Margin,
    /// One other than this, which failed a call (the passive path).
    Replacing(&'a str),
}

enum Decision {
    Keep(RefreshOutcome),
    Fetch(FetchMode),
}

/// How waiting for the lease holder ended.
enum Waited {
    /// The holder stored a credential that meets the need.
    Satisfied(Held),
    /// The holder gave the lease back without storing what is needed.
    Released(Option<Held>),
    /// The holder's lease ran out: it died; take over.
    Lapsed,
    /// The lease is still held after waiting its full length.
    StillHeld(Option<Held>),
}

/// How a read-modify-write of the quota item ended.
enum QuotaUpdate<E> {
    Written,
    /// The change was refused (a limit) with this reason.
    Refused(E),
    /// Other instances kept writing in between.
    Contended,
}

/// A refresh's outcome and the credential stored afterwards, whichever it is.
struct Report {
    outcome: RefreshOutcome,
    current: Option<Held>,
}

/// A jsapi_ticket refresh's outcome and the ticket current afterwards (`None` when none is left
/// unexpired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketReport {
    pub outcome: RefreshOutcome,
    pub ticket: Option<JsapiTicket>,
}

/// What one scheduled run did to each credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleReport {
    pub token: RefreshReport,
    pub ticket: TicketReport,
}

impl ScheduleReport {
    /// The first failed refresh, the token's before the ticket's.
    pub fn failure(&self) -> Option<&RefreshOutcome> {
        [&self.token.outcome, &self.ticket.outcome]
            .into_iter()
            .find(|outcome| outcome.is_failure())
    }
}

/// The central credential service for one app (the access_token and the jsapi_ticket), over any
/// [`TokenStore`], calling WeChat through `http` and telling time by `clock` (both built once
/// in `main`). Share it (`Arc`) between concurrent callers; every method is safe to run
/// concurrently, here and on other instances over the same table.
pub struct TokenService<S> {
    config: TokenConfig,
    fetcher: TokenFetcher,
    store: S,
    clock: SharedClock,
}

impl<S> std::fmt::Debug for TokenService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<S: TokenStore> TokenService<S> {
    pub fn new(config: TokenConfig, store: S, http: WeChatHttp, clock: SharedClock) -> Self {
        let fetcher = TokenFetcher::new(
            http,
            clock.clone(),
            config.wechat.http_timeout,
            &config.wechat.app_id,
            config.wechat.app_secret.clone(),
            config.api,
            config.retry,
        );
        Self {
            config,
            fetcher,
            store,
            clock,
        }
    }

    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// The current token, fetching one first if none usable is stored.
    pub async fn get(&self) -> Result<AccessToken, TokenError> {
        self.usable(Credential::AccessToken)
            .await?
            .map(|t| t.as_token())
            .map_err(TokenError::NoUsableToken)
    }

    /// The scheduled run for the token: refresh when the stored token is missing or within the
    /// refresh margin, in the stable API's normal mode (which never invalidates the current token).
    pub async fn on_schedule(&self) -> Result<RefreshReport, TokenError> {
        let report = self.refresh(Credential::AccessToken, Need::Margin).await?;
        Ok(self.token_report(report))
    }

    /// The passive path: a call failed with `stale` (40001/40014/42001). A new token is fetched
    /// (stable API: forced, within WeChat's limits) only if `stale` is still the stored token and
    /// was fetched at least `TOKEN_STALE_MIN_AGE_SECS` ago, so any number of reports of the same
    /// token cause one fetch, and reports cannot drain the quota.
    pub async fn refresh_stale(&self, stale: &str) -> Result<RefreshReport, TokenError> {
        let report = self
            .refresh(Credential::AccessToken, Need::Replacing(stale))
            .await?;
        Ok(self.token_report(report))
    }

    /// The current jsapi_ticket, fetching one first (with the current token) if none usable is
    /// stored.
    pub async fn get_ticket(&self) -> Result<JsapiTicket, TokenError> {
        self.usable(Credential::JsapiTicket)
            .await?
            .map(|t| t.as_ticket())
            .map_err(TokenError::NoUsableTicket)
    }

    /// The scheduled run for the jsapi_ticket, like [`Self::on_schedule`] for the token.
    pub async fn on_schedule_ticket(&self) -> Result<TicketReport, TokenError> {
        let report = self.refresh(Credential::JsapiTicket, Need::Margin).await?;
        Ok(self.ticket_report(report))
    }

    /// A page's `wx.config` failed with `stale`: replaced like a stale token (one fetch for any
    /// number of reports, none for a ticket fetched less than `TOKEN_STALE_MIN_AGE_SECS` ago).
    pub async fn refresh_stale_ticket(&self, stale: &str) -> Result<TicketReport, TokenError> {
        let report = self
            .refresh(Credential::JsapiTicket, Need::Replacing(stale))
            .await?;
        Ok(self.ticket_report(report))
    }

    /// The scheduled run: the token, then the ticket. The ticket is kept fresh only once a page
    /// asked for one (its item exists; it expires a day after the ticket): an account without
    /// JS-SDK permission must not fail every run. When no usable token is left the ticket is not
    /// refreshed (it would only try the failing token fetch again); its outcome says why.
    pub async fn on_schedule_both(&self) -> Result<ScheduleReport, TokenError> {
        let token = self.on_schedule().await?;
        let now = self.clock.now_ms();
        let stored = self.read(Credential::JsapiTicket).await?;
        let skipped = if stored.is_none() {
            Some(RefreshOutcome::NotInUse)
        } else if !token.token.as_ref().is_some_and(|t| t.is_usable_at(now)) {
            Some(RefreshOutcome::TokenUnavailable(Box::new(
                token.outcome.clone(),
            )))
        } else {
            None
        };
        let ticket = match skipped {
            None => self.on_schedule_ticket().await?,
            Some(outcome) => self.ticket_report(Report {
                outcome,
                current: stored,
            }),
        };
        Ok(ScheduleReport { token, ticket })
    }

    /// A usable credential, fetched first if none is stored; `Err(outcome)`: why there is none.
    async fn usable(
        &self,
        credential: Credential,
    ) -> Result<Result<Held, RefreshOutcome>, TokenError> {
        let report = self.refresh(credential, Need::Usable).await?;
        Ok(report
            .current
            .filter(|held| held.is_usable_at(self.clock.now_ms()))
            .ok_or(report.outcome))
    }

    async fn refresh(&self, credential: Credential, need: Need<'_>) -> Result<Report, TokenError> {
        let app_id = self.config.wechat.app_id.as_str();
        let lease_id = self.item_id(credential);
        let mut round = 1;
        loop {
            let now = self.clock.now_ms();
            let stored = self.read(credential).await?;
            if let Decision::Keep(outcome) = self.decide(need, stored.as_ref(), now) {
                return Ok(Report {
                    outcome,
                    current: stored,
                });
            }
            let owner = lease_owner_id(now);
            let until = now + self.config.lease.as_millis() as i64;
            match self
                .store
                .try_acquire_lease(&lease_id, &owner, now, until)
                .await?
            {
                LeaseAttempt::Acquired => {
                    let result = self.refresh_holding_lease(credential, need).await;
                    if let Err(e) = self.store.release_lease(&lease_id, &owner).await {
                        tracing::warn!(app_id, credential = credential.name(), error = %e, "could not release the refresh lease; it runs out on its own");
                    }
                    return result;
                }
                LeaseAttempt::Held => {
                    let outcome = match self.wait_for_lease_holder(credential, need).await? {
                        Waited::Satisfied(held) => (RefreshOutcome::LostRaceUsedWinner, Some(held)),
                        Waited::Released(stored) => {
                            (RefreshOutcome::OtherRefresherFinished, stored)
                        }
                        Waited::Lapsed if round < MAX_LEASE_ROUNDS => {
                            tracing::warn!(
                                app_id,
                                credential = credential.name(),
                                "the refresh lease ran out without a new credential: its holder died; taking over"
                            );
                            round += 1;
                            continue;
                        }
                        Waited::Lapsed => (RefreshOutcome::LeaseBusy, self.read(credential).await?),
                        Waited::StillHeld(stored) => (RefreshOutcome::LeaseBusy, stored),
                    };
                    return Ok(Report {
                        outcome: outcome.0,
                        current: outcome.1,
                    });
                }
            }
        }
    }

    /// Keep the stored credential, or fetch (and how).
    fn decide(&self, need: Need<'_>, stored: Option<&Held>, now: i64) -> Decision {
        let Some(stored) = stored.filter(|s| s.is_usable_at(now)) else {
            return Decision::Fetch(FetchMode::Normal);
        };
        match need {
            Need::Usable => Decision::Keep(RefreshOutcome::AlreadyValid),
            Need::Margin => {
                let margin = self.config.refresh_margin.as_millis() as i64;
                if stored.expires_at_ms - now > margin {
                    Decision::Keep(RefreshOutcome::AlreadyValid)
                } else {
                    Decision::Fetch(FetchMode::Normal)
                }
            }
            Need::Replacing(stale) if stored.value.expose() == stale => {
                let min_age = self.config.stale_min_age.as_millis() as i64;
                if now - stored.fetched_at_ms < min_age {
                    // Not refetched: otherwise every round of get + report would be a fetch,
                    // and with `classic` the daily quota would be gone within the hour.
                    Decision::Keep(RefreshOutcome::RecentlyRefreshed)
                } else {
                    Decision::Fetch(FetchMode::Force)
                }
            }
            Need::Replacing(_) => Decision::Keep(RefreshOutcome::AlreadyReplaced),
        }
    }

    /// With the lease held: check again, ask the quota, fetch, and store what came back.
    async fn refresh_holding_lease(
        &self,
        credential: Credential,
        need: Need<'_>,
    ) -> Result<Report, TokenError> {
        let now = self.clock.now_ms();
        // Read again: the previous holder may have stored one just before we took the lease.
        let stored = self.read(credential).await?;
        let mode = match self.decide(need, stored.as_ref(), now) {
            Decision::Keep(outcome) => {
                return Ok(Report {
                    outcome,
                    current: stored,
                });
            }
            Decision::Fetch(mode) => mode,
        };
        if let Some(refusal) = self.quota_refusal(credential, mode, now).await? {
            return Ok(Report {
                outcome: refusal,
                current: stored,
            });
        }
        let failure = match credential {
            Credential::AccessToken => self.fetcher.fetch(mode, self.fetch_deadline_ms()).await,
            Credential::JsapiTicket => match self.fetch_ticket().await? {
                Ok(fetched) => Ok(fetched),
                Err(Err(outcome)) => {
                    return Ok(Report {
                        outcome,
                        current: stored,
                    });
                }
                Err(Ok(failure)) => Err(failure),
            },
        };
        match failure {
            Ok(fetched) => self.store_fetched(credential, fetched, stored).await,
            Err(failure) => {
                let forced = self.is_forced(credential, mode);
                let outcome = self
                    .record_failure(credential, failure, forced, now)
                    .await?;
                Ok(Report {
                    outcome,
                    current: stored,
                })
            }
        }
    }

    /// Fetch a jsapi_ticket with the current token. If WeChat rejects the token
    /// (40001/40014/42001), report it stale (one passive refresh) and try once more with the
    /// replacement. `Err(Err(outcome))`: no token to ask with.
    async fn fetch_ticket(
        &self,
    ) -> Result<Result<Fetched, Result<FetchFailure, RefreshOutcome>>, TokenError> {
        // Boxed: getting the token runs the same refresh logic as this call (async recursion).
        let token = match Box::pin(self.get()).await {
            Ok(token) => token,
            Err(TokenError::NoUsableToken(outcome)) => {
                return Ok(Err(Err(RefreshOutcome::TokenUnavailable(Box::new(
                    outcome,
                )))));
            }
            Err(e) => return Err(e),
        };
        let first = self
            .fetcher
            .fetch_ticket(&token.value, self.fetch_deadline_ms())
            .await;
        let Err(FetchFailure::AccessTokenRejected { errcode }) = first else {
            return Ok(first.map_err(Ok));
        };
        tracing::warn!(
            app_id = %self.config.wechat.app_id,
            errcode,
            token = %token.fingerprint(),
            "WeChat rejected the access_token asking for a jsapi_ticket; reporting it stale and retrying once"
        );
        let report = Box::pin(self.refresh_stale(token.value.expose())).await?;
        match report.token {
            Some(replacement) if replacement.value != token.value => Ok(self
                .fetcher
                .fetch_ticket(&replacement.value, self.fetch_deadline_ms())
                .await
                .map_err(Ok)),
            _ => Ok(Err(Ok(FetchFailure::AccessTokenRejected { errcode }))),
        }
    }

    /// Whether this fetch spends one of the stable API's forced refreshes.
    fn is_forced(&self, credential: Credential, mode: FetchMode) -> bool {
        credential == Credential::AccessToken
            && mode == FetchMode::Force
            && self.fetcher.api() == TokenApi::Stable
    }

    /// Why WeChat must not be called now, if it must not: the daily quota is blocked, or a forced
    /// refresh is over WeChat's limits. A forced refresh that is allowed is counted here.
    async fn quota_refusal(
        &self,
        credential: Credential,
        mode: FetchMode,
        now: i64,
    ) -> Result<Option<RefreshOutcome>, TokenError> {
        let app_id = self.config.wechat.app_id.as_str();
        let quota = self
            .store
            .read_quota(&self.item_id(credential))
            .await?
            .unwrap_or_default();
        if quota.blocked_until_ms > now {
            tracing::warn!(
                app_id,
                credential = credential.name(),
                blocked_until_s = quota.blocked_until_ms.div_euclid(1000),
                "WeChat's daily quota is exhausted; not calling until it resets"
            );
            return Ok(Some(RefreshOutcome::QuotaExhausted {
                until_ms: quota.blocked_until_ms,
            }));
        }
        if self.is_forced(credential, mode)
            && let Some(until_ms) = self.reserve_forced_refresh(now).await?
        {
            tracing::warn!(
                app_id,
                until_s = until_ms.div_euclid(1000),
                "a forced refresh is not allowed yet (20 a day, 30 s apart); keeping the stored token"
            );
            return Ok(Some(RefreshOutcome::ForceRefreshLimited { until_ms }));
        }
        Ok(None)
    }

    /// Never start a retry that could outlast the lease: a slower refresher must not race a
    /// taker-over (and if it does, the conditional write of its credential is rejected).
    fn fetch_deadline_ms(&self) -> i64 {
        let lease_ms = self.config.lease.as_millis() as i64;
        self.clock.now_ms() + lease_ms - lease_ms / 5
    }

    /// Store a fetched credential over `stored`, unless WeChat handed back the same one.
    async fn store_fetched(
        &self,
        credential: Credential,
        fetched: Fetched,
        stored: Option<Held>,
    ) -> Result<Report, TokenError> {
        let now = self.clock.now_ms();
        let usable = stored.as_ref().filter(|s| s.is_usable_at(now));
        if usable.is_some_and(|current| current.value == fetched.value) {
            // The stable API's normal mode hands back the current token until its last 5 minutes.
            return Ok(Report {
                outcome: RefreshOutcome::Unchanged,
                current: stored,
            });
        }
        let outcome = match usable {
            Some(_) => RefreshOutcome::Refreshed,
            None => RefreshOutcome::Fresh,
        };
        let held = Held {
            expires_at_ms: fetched.expires_at_ms(now),
            value: fetched.value,
            fetched_at_ms: now,
            version: stored.as_ref().map_or(1, |s| s.version + 1),
        };
        let replacing = stored.as_ref().map(|s| s.version);
        let app_id = self.config.wechat.app_id.as_str();
        match self.write(credential, &held, replacing).await? {
            ConditionalWrite::Written => {
                tracing::info!(
                    app_id,
                    credential = credential.name(),
                    outcome = outcome.code(),
                    fingerprint = %super::fingerprint(held.value.expose()),
                    version = held.version,
                    expires_at_s = held.expires_at_ms.div_euclid(1000),
                    "stored a new credential"
                );
                Ok(Report {
                    outcome,
                    current: Some(held),
                })
            }
            ConditionalWrite::Superseded => {
                tracing::warn!(
                    app_id,
                    credential = credential.name(),
                    "another refresher stored one while this one fetched (its lease ran out); keeping theirs"
                );
                Ok(Report {
                    outcome: RefreshOutcome::LostRaceUsedWinner,
                    current: self.read(credential).await?,
                })
            }
        }
    }
    /// Count a forced refresh against WeChat's limits, in the table so every instance sees it.
    /// `Some(until)`: not allowed before `until`.
    async fn reserve_forced_refresh(&self, now: i64) -> Result<Option<i64>, TokenError> {
        let today = china_day(now);
        let limited = self
            .update_quota(Credential::AccessToken, |quota| {
                let count_today = if quota.force_day == today {
                    quota.force_count
                } else {
                    0
                };
                if count_today >= FORCE_REFRESH_DAILY_LIMIT {
                    return Err(next_china_midnight_ms(now));
                }
                let next_allowed = quota.last_force_at_ms + FORCE_REFRESH_MIN_INTERVAL_MS;
                if quota.last_force_at_ms > 0 && now < next_allowed {
                    return Err(next_allowed);
                }
                Ok(QuotaRecord {
                    force_day: today,
                    force_count: count_today + 1,
                    last_force_at_ms: now,
                    ..quota
                })
            })
            .await?;
        Ok(match limited {
            QuotaUpdate::Written => None,
            QuotaUpdate::Refused(until) => Some(until),
            // Lost every write to other instances: they are refreshing; respect the interval.
            QuotaUpdate::Contended => Some(now + FORCE_REFRESH_MIN_INTERVAL_MS),
        })
    }

    /// Record what a failure means for later calls, and name the outcome.
    async fn record_failure(
        &self,
        credential: Credential,
        failure: FetchFailure,
        forced: bool,
        now: i64,
    ) -> Result<RefreshOutcome, TokenError> {
        let app_id = self.config.wechat.app_id.as_str();
        Ok(match failure {
            FetchFailure::Configuration { errcode } => RefreshOutcome::ConfigError { errcode },
            FetchFailure::AccessTokenRejected { errcode } => {
                RefreshOutcome::AccessTokenRejected { errcode }
            }
            FetchFailure::Busy { errcode, attempts } => {
                RefreshOutcome::WeChatBusy { errcode, attempts }
            }
            FetchFailure::Unavailable(e) => RefreshOutcome::WeChatUnavailable(e),
            FetchFailure::QuotaExhausted if forced => {
                // Only the forced refreshes are used up; normal fetches still work.
                let until_ms = next_china_midnight_ms(now);
                let today = china_day(now);
                self.update_quota(credential, |quota| {
                    Ok::<_, ()>(QuotaRecord {
                        force_day: today,
                        force_count: FORCE_REFRESH_DAILY_LIMIT,
                        ..quota
                    })
                })
                .await?;
                tracing::warn!(
                    app_id,
                    "WeChat says today's forced refreshes are used up (45009)"
                );
                RefreshOutcome::ForceRefreshLimited { until_ms }
            }
            FetchFailure::QuotaExhausted => {
                let until_ms = next_china_midnight_ms(now);
                self.update_quota(credential, |quota| {
                    Ok::<_, ()>(QuotaRecord {
                        blocked_until_ms: until_ms,
                        ..quota
                    })
                })
                .await?;
                tracing::error!(
                    app_id,
                    credential = credential.name(),
                    blocked_until_s = until_ms.div_euclid(1000),
                    "WeChat's daily quota for this credential is exhausted (45009); no instance calls again before midnight China time"
                );
                RefreshOutcome::QuotaExhausted { until_ms }
            }
        })
    }

    /// Read-modify-write the quota item with a conditional write, retried when another instance
    /// wrote in between.
    async fn update_quota<E>(
        &self,
        credential: Credential,
        mut change: impl FnMut(QuotaRecord) -> Result<QuotaRecord, E>,
    ) -> Result<QuotaUpdate<E>, TokenError> {
        let quota_id = self.item_id(credential);
        for _ in 0..MAX_QUOTA_WRITES {
            let current = self.store.read_quota(&quota_id).await?;
            let replacing = current.as_ref().map(|q| q.version);
            let base = current.unwrap_or_default();
            let version = base.version + 1;
            let updated = match change(base) {
                Ok(updated) => QuotaRecord { version, ..updated },
                Err(refusal) => return Ok(QuotaUpdate::Refused(refusal)),
            };
            if self
                .store
                .write_quota(&quota_id, &updated, replacing)
                .await?
                == ConditionalWrite::Written
            {
                return Ok(QuotaUpdate::Written);
            }
        }
        Ok(QuotaUpdate::Contended)
    }

    /// Poll until the lease holder stores a credential that meets the need, gives the lease
    /// back, or its lease runs out; at most the lease's length (plus two polls).
    async fn wait_for_lease_holder(
        &self,
        credential: Credential,
        need: Need<'_>,
    ) -> Result<Waited, TokenError> {
        let lease_id = self.item_id(credential);
        let polls = self.config.lease.as_millis() / self.config.lease_poll.as_millis().max(1) + 2;
        let mut stored = None;
        for _ in 0..polls {
            tokio::time::sleep(self.config.lease_poll).await;
            let now = self.clock.now_ms();
            // The lease first: if it is gone, the item read after it shows what its holder stored.
            let lease = self.store.read_lease(&lease_id).await?;
            stored = self.read(credential).await?;
            if let Decision::Keep(_) = self.decide(need, stored.as_ref(), now)
                && let Some(held) = stored
            {
                return Ok(Waited::Satisfied(held));
            }
            match lease {
                None => return Ok(Waited::Released(stored)),
                Some(lease) if !lease.is_held_at(now) => return Ok(Waited::Lapsed),
                Some(_) => {}
            }
        }
        Ok(Waited::StillHeld(stored))
    }

    /// The item this credential's lease and quota are kept under (`lease#<id>`, `quota#<id>`):
    /// the app id for the token (as before the ticket existed), `ticket#<app_id>` for the ticket.
    fn item_id(&self, credential: Credential) -> String {
        let app_id = self.config.wechat.app_id.as_str();
        match credential {
            Credential::AccessToken => app_id.to_string(),
            Credential::JsapiTicket => ticket_id(app_id),
        }
    }

    async fn read(&self, credential: Credential) -> Result<Option<Held>, StoreError> {
        let app_id = self.config.wechat.app_id.as_str();
        Ok(match credential {
            Credential::AccessToken => self.store.read_token(app_id).await?.map(Held::from),
            Credential::JsapiTicket => self.store.read_ticket(app_id).await?.map(Held::from),
        })
    }

    async fn write(
        &self,
        credential: Credential,
        held: &Held,
        replacing: Option<u64>,
    ) -> Result<ConditionalWrite, StoreError> {
        let app_id = self.config.wechat.app_id.as_str();
        let Held {
            value,
            expires_at_ms,
            fetched_at_ms,
            version,
        } = held.clone();
        match credential {
            Credential::AccessToken => {
                let record = TokenRecord {
                    access_token: value,
                    expires_at_ms,
                    fetched_at_ms,
                    version,
                };
                self.store.write_token(app_id, &record, replacing).await
            }
            Credential::JsapiTicket => {
                let record = TicketRecord {
                    jsapi_ticket: value,
                    expires_at_ms,
                    fetched_at_ms,
                    version,
                };
                self.store.write_ticket(app_id, &record, replacing).await
            }
        }
    }

    /// The report with the stored token, if it has not expired (an old token beats none).
    fn token_report(&self, report: Report) -> RefreshReport {
        let now = self.clock.now_ms();
        RefreshReport {
            outcome: report.outcome,
            token: report
                .current
                .filter(|t| t.expires_at_ms > now)
                .map(|t| t.as_token()),
        }
    }

    /// The report with the stored ticket, if it has not expired.
    fn ticket_report(&self, report: Report) -> TicketReport {
        let now = self.clock.now_ms();
        TicketReport {
            outcome: report.outcome,
            ticket: report
                .current
                .filter(|t| t.expires_at_ms > now)
                .map(|t| t.as_ticket()),
        }
    }
}

/// A random id per lease attempt, so a refresher can only release its own lease.
fn lease_owner_id(now_ms: i64) -> String {
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    match getrandom::fill(&mut bytes) {
        Ok(()) => hex::encode(bytes),
        // No OS randomness: still unique within this process, and across processes by time.
        Err(_) => format!("{now_ms}-{}", FALLBACK.fetch_add(1, Ordering::Relaxed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_days_start_at_midnight_utc_plus_8() {
        // 2026-01-01T15:59:59.999Z is 23:59:59.999 in China; a millisecond later is the next day.
        let before = 1_767_283_199_999;
        assert_eq!(china_day(before) + 1, china_day(before + 1));
        assert_eq!(next_china_midnight_ms(before), before + 1);
        assert_eq!(next_china_midnight_ms(before + 1), before + 1 + DAY_MS);
    }

    #[test]
    fn lease_owners_are_unique() {
        assert_ne!(lease_owner_id(1), lease_owner_id(1));
    }
}

//! The refresh engine of the central control service, one for both credentials it keeps (the
//! access_token and the jsapi_ticket, generic over [`Kept`]): when to fetch, who may fetch (a
//! lease per credential), how a fetched credential is stored (compare-and-swap on the version),
//! what the quota allows, how often a stale report may cause a fetch (a report of a token
//! fetched less than `TOKEN_STALE_MIN_AGE_SECS` ago is checked with WeChat first), which failed
//! fetches are remembered for a moment (the ticket's, [`super::TICKET_FAILURE_MEMORY_MS`]), and
//! what a refresher that lost the race does (waits for the winner's credential instead of
//! fetching).
//! Every path ends in a [`RefreshOutcome`] with the record stored afterwards ([`Refresh`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use table::StoreError;
use wechat_api::WeChatHttp;
use wechat_protocol::secret::Secret;

use super::credential::{FetchStep, Fetching, Kept};
use super::wechat::{
    FORCE_REFRESH_DAILY_LIMIT, FORCE_REFRESH_MIN_INTERVAL_MS, FetchFailure, FetchMode, Fetched,
    TOKEN_CHECK_PATH, TokenCheck, TokenFetcher, with_token_meaning,
};
use super::{
    AccessToken, RefreshOutcome, RefreshReport, TICKET_FAILURE_MEMORY_MS, TokenConfig, TokenError,
};
use crate::clock::SharedClock;
use crate::token::store::{
    ConditionalWrite, LeaseAttempt, QuotaRecord, TicketRecord, TokenRecord, TokenStore,
};
use crate::token::{JsapiTicket, TicketReport};

const DAY_MS: i64 = 86_400_000;
const CHINA_OFFSET_MS: i64 = 8 * 3_600_000;
/// A refresher that finds the lease run out takes it over; this bounds how often in one call.
const MAX_LEASE_ROUNDS: u32 = 3;
/// Conditional writes of the quota item retried when another instance wrote in between.
const MAX_QUOTA_WRITES: u32 = 3;
/// How long an instance remembers its last check of a reported token, and the least time
/// between two of its checks: a flood of reports costs at most one check call per this long
/// per instance (and, when the checks say "rejected", at most one fetch).
pub const STALE_CHECK_MEMORY_MS: i64 = 5_000;

/// The China-time (UTC+8) day of `now_ms`, in days since 1970-01-01: WeChat's quotas count per it.
pub fn china_day(now_ms: i64) -> i64 {
    (now_ms + CHINA_OFFSET_MS).div_euclid(DAY_MS)
}

/// The next midnight in China time, when WeChat resets daily quotas, in epoch milliseconds.
pub fn next_china_midnight_ms(now_ms: i64) -> i64 {
    (china_day(now_ms) + 1) * DAY_MS - CHINA_OFFSET_MS
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
    /// One other than this, which WeChat rejected on a check: however young it is.
    ReplacingRejected(&'a str),
}

impl Need<'_> {
    /// Whether a remembered fetch failure answers this need instead of a fetch: yes for the
    /// callers' needs, not for the scheduled run (it comes every few minutes anyway, and is the
    /// one that should find out when WeChat answers again).
    fn heeds_remembered_failure(self) -> bool {
        !matches!(self, Need::Margin)
    }
}

/// The failure `quota` remembers for a credential that remembers failures, while it lasts, as
/// the outcome that answers `need` instead of a fetch.
fn remembered<R: Kept>(quota: &QuotaRecord, need: Need<'_>, now: i64) -> Option<RefreshOutcome> {
    (R::REMEMBERS_FAILURES && need.heeds_remembered_failure() && quota.failed_until_ms > now).then(
        || RefreshOutcome::RecentlyFailed {
            failure: quota.failure.clone(),
            until_ms: quota.failed_until_ms,
        },
    )
}

enum Decision {
    Keep(RefreshOutcome),
    Fetch(FetchMode),
}

/// How waiting for the lease holder ended.
enum Waited<R> {
    /// The holder stored a credential that meets the need.
    Satisfied(R),
    /// The holder gave the lease back without storing what is needed.
    Released(Option<R>),
    /// The holder's lease ran out: it died; take over.
    Lapsed,
    /// The lease is still held after waiting its full length.
    StillHeld(Option<R>),
}

/// How a read-modify-write of the quota item ended.
enum QuotaUpdate<E> {
    Written,
    /// The change was refused (a limit) with this reason.
    Refused(E),
    /// Other instances kept writing in between.
    Contended,
}

/// An instance's last check of a reported token.
struct LastCheck {
    token: Secret<String>,
    at_ms: i64,
    verdict: Verdict,
}

/// What a check of a reported token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Rejected {
        errcode: i64,
    },
    /// The check got no verdict, or was not made (another token was checked too recently).
    Unchecked,
}

/// How a refresh ended: its outcome and the credential's record stored afterwards.
struct Refresh<R> {
    outcome: RefreshOutcome,
    current: Option<R>,
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
    /// The last check of a reported token; held across the check call, so concurrent reports
    /// wait for one check instead of each making one.
    last_check: tokio::sync::Mutex<Option<LastCheck>>,
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
            last_check: tokio::sync::Mutex::new(None),
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
        self.usable::<TokenRecord>().await
    }

    /// The scheduled run for the token: refresh when the stored token is missing or within the
    /// refresh margin, in the stable API's normal mode (which never invalidates the current token).
    pub async fn on_schedule(&self) -> Result<RefreshReport, TokenError> {
        let refresh = self.refresh::<TokenRecord>(Need::Margin).await?;
        Ok(self.report(refresh))
    }

    /// The passive path: a call failed with `stale` (40001/40014/42001). A new token is fetched
    /// (stable API: forced, within WeChat's limits) only if `stale` is still the stored token, so
    /// any number of reports of the same token cause one fetch. A token fetched less than
    /// `TOKEN_STALE_MIN_AGE_SECS` ago is first checked with one call that spends no token quota
    /// ([`TokenFetcher::check_token`]): rejected, it is replaced at once (`confirmed_stale`: a
    /// fetch outside this service replaced it); accepted, the report is refused (`still_valid`).
    /// Each instance checks at most once per [`STALE_CHECK_MEMORY_MS`] and answers reports of
    /// the token it checked from that check meanwhile, so false reports cannot drain the quota
    /// nor turn into a flood of calls; a report that gets no check is refused
    /// (`recently_refreshed`).
    pub async fn refresh_stale(&self, stale: &str) -> Result<RefreshReport, TokenError> {
        let now = self.clock.now_ms();
        let stored = self.read::<TokenRecord>().await?;
        let young = stored
            .as_ref()
            .filter(|record| record.is_usable_at(now) && record.value().expose() == stale)
            .filter(|record| self.is_too_young_to_replace(*record, now));
        let need = match young {
            None => Need::Replacing(stale),
            Some(record) => match self.check_reported(record).await {
                Verdict::Accepted => {
                    return Ok(self.report(Refresh {
                        outcome: RefreshOutcome::StillValid,
                        current: stored,
                    }));
                }
                Verdict::Rejected { .. } => Need::ReplacingRejected(stale),
                Verdict::Unchecked => Need::Replacing(stale),
            },
        };
        let refresh = self.refresh::<TokenRecord>(need).await?;
        Ok(self.report(refresh))
    }

    /// Whether WeChat accepts the reported token `record` (the stored one, fetched less than
    /// `TOKEN_STALE_MIN_AGE_SECS` ago): asked with one check call, unless this instance checked
    /// less than [`STALE_CHECK_MEMORY_MS`] ago (then that check's verdict for the same token,
    /// [`Verdict::Unchecked`] for another). Each check is logged once, with fingerprints only.
    async fn check_reported(&self, record: &TokenRecord) -> Verdict {
        let app_id = self.config.wechat.app_id.as_str();
        let token = super::fingerprint(record.value().expose());
        let mut last = self.last_check.lock().await;
        let now = self.clock.now_ms();
        if let Some(check) = last
            .as_ref()
            .filter(|check| now - check.at_ms < STALE_CHECK_MEMORY_MS)
        {
            let verdict = if check.token == record.access_token {
                check.verdict
            } else {
                Verdict::Unchecked
            };
            tracing::debug!(app_id, %token, ?verdict, "stale report answered from the last check");
            return verdict;
        }
        let age_s = (now - record.fetched_at_ms()).div_euclid(1000);
        let verdict = match self.fetcher.check_token(&record.access_token).await {
            TokenCheck::Accepted => {
                tracing::warn!(
                    app_id,
                    %token,
                    age_s,
                    outcome = RefreshOutcome::StillValid.code(),
                    check = TOKEN_CHECK_PATH,
                    "a stale report of a token WeChat still accepts: refused, nothing fetched"
                );
                Verdict::Accepted
            }
            TokenCheck::Rejected { errcode } => {
                tracing::error!(
                    app_id,
                    %token,
                    age_s,
                    errcode,
                    meaning = with_token_meaning(errcode),
                    outcome = RefreshOutcome::ConfirmedStale.code(),
                    check = TOKEN_CHECK_PATH,
                    "WeChat rejects the token this service fetched {age_s} s ago: a token fetch outside this service replaced it (keep this service the only one using the AppSecret); fetching a new one at once"
                );
                Verdict::Rejected { errcode }
            }
            TokenCheck::Unknown(e) => {
                tracing::warn!(
                    app_id,
                    %token,
                    age_s,
                    error = %e,
                    outcome = RefreshOutcome::RecentlyRefreshed.code(),
                    check = TOKEN_CHECK_PATH,
                    "could not check the reported token with WeChat; keeping it, nothing fetched"
                );
                Verdict::Unchecked
            }
        };
        *last = Some(LastCheck {
            token: record.access_token.clone(),
            at_ms: now,
            verdict,
        });
        verdict
    }

    /// Whether a stale report of `stored` must not cause a fetch on its own: it was fetched less
    /// than `TOKEN_STALE_MIN_AGE_SECS` before `now`.
    fn is_too_young_to_replace<R: Kept>(&self, stored: &R, now: i64) -> bool {
        let min_age = self.config.stale_min_age.as_millis() as i64;
        now - stored.fetched_at_ms() < min_age
    }

    /// The current jsapi_ticket, fetching one first (with the current token) if none usable is
    /// stored.
    pub async fn get_ticket(&self) -> Result<JsapiTicket, TokenError> {
        self.usable::<TicketRecord>().await
    }

    /// The scheduled run for the jsapi_ticket, like [`Self::on_schedule`] for the token.
    pub async fn on_schedule_ticket(&self) -> Result<TicketReport, TokenError> {
        let refresh = self.refresh::<TicketRecord>(Need::Margin).await?;
        Ok(self.report(refresh))
    }

    /// A page's `wx.config` failed with `stale`: replaced like a stale token (one fetch for any
    /// number of reports, none for a ticket fetched less than `TOKEN_STALE_MIN_AGE_SECS` ago).
    pub async fn refresh_stale_ticket(&self, stale: &str) -> Result<TicketReport, TokenError> {
        let refresh = self.refresh::<TicketRecord>(Need::Replacing(stale)).await?;
        Ok(self.report(refresh))
    }

    /// The scheduled run: the token, then the ticket. The ticket is kept fresh only once a page
    /// asked for one (its item exists; it expires a day after the ticket): an account without
    /// JS-SDK permission must not fail every run. When no usable token is left the ticket is not
    /// refreshed (it would only try the failing token fetch again); its outcome says why.
    pub async fn on_schedule_both(&self) -> Result<ScheduleReport, TokenError> {
        let token = self.on_schedule().await?;
        let now = self.clock.now_ms();
        let stored = self.read::<TicketRecord>().await?;
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
            Some(outcome) => self.report(Refresh {
                outcome,
                current: stored,
            }),
        };
        Ok(ScheduleReport { token, ticket })
    }

    /// A usable credential, fetched first if none is stored; when there is none, the error says
    /// why.
    async fn usable<R: Kept>(&self) -> Result<R::Credential, TokenError> {
        let refresh = self.refresh::<R>(Need::Usable).await?;
        match refresh
            .current
            .filter(|record| record.is_usable_at(self.clock.now_ms()))
        {
            Some(record) => Ok(record.credential()),
            None => Err(R::none_usable(refresh.outcome)),
        }
    }

    /// The public report of a refresh, with the stored credential if it has not expired (an old
    /// one beats none).
    fn report<R: Kept>(&self, refresh: Refresh<R>) -> R::Report {
        let now = self.clock.now_ms();
        let current = refresh
            .current
            .filter(|record| record.expires_at_ms() > now)
            .map(|record| record.credential());
        R::report(refresh.outcome, current)
    }

    async fn refresh<R: Kept>(&self, need: Need<'_>) -> Result<Refresh<R>, TokenError> {
        let app_id = self.config.wechat.app_id.as_str();
        let lease_id = R::lease_and_quota_id(app_id);
        let mut round = 1;
        loop {
            let now = self.clock.now_ms();
            let stored = self.read::<R>().await?;
            if let Decision::Keep(outcome) = self.decide(need, stored.as_ref(), now) {
                return Ok(Refresh {
                    outcome,
                    current: stored,
                });
            }
            // Before the lease: a remembered failure is answered at once, without waiting for
            // (or being) a refresher.
            if let Some(outcome) = self.remembered_failure::<R>(need, now).await? {
                return Ok(Refresh {
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
                    let result = self.refresh_holding_lease::<R>(need).await;
                    if let Err(e) = self.store.release_lease(&lease_id, &owner).await {
                        tracing::warn!(app_id, credential = R::NAME, error = %e, "could not release the refresh lease; it runs out on its own");
                    }
                    return result;
                }
                // Another refresher is fetching: wait for what it stores instead of fetching too.
                LeaseAttempt::Held => {}
            }
            let (outcome, current) = match self.wait_for_lease_holder::<R>(need).await? {
                Waited::Satisfied(winner) => (RefreshOutcome::LostRaceUsedWinner, Some(winner)),
                Waited::Released(stored) => (RefreshOutcome::OtherRefresherFinished, stored),
                Waited::Lapsed if round < MAX_LEASE_ROUNDS => {
                    tracing::warn!(
                        app_id,
                        credential = R::NAME,
                        "the refresh lease ran out without a new credential: its holder died; taking over"
                    );
                    round += 1;
                    continue;
                }
                Waited::Lapsed => (RefreshOutcome::LeaseBusy, self.read::<R>().await?),
                Waited::StillHeld(stored) => (RefreshOutcome::LeaseBusy, stored),
            };
            return Ok(Refresh { outcome, current });
        }
    }

    /// Keep the stored credential, or fetch (and how).
    fn decide<R: Kept>(&self, need: Need<'_>, stored: Option<&R>, now: i64) -> Decision {
        let Some(stored) = stored.filter(|s| s.is_usable_at(now)) else {
            return Decision::Fetch(FetchMode::Normal);
        };
        match need {
            Need::Usable => Decision::Keep(RefreshOutcome::AlreadyValid),
            Need::Margin => {
                let margin = self.config.refresh_margin.as_millis() as i64;
                if stored.expires_at_ms() - now > margin {
                    Decision::Keep(RefreshOutcome::AlreadyValid)
                } else {
                    Decision::Fetch(FetchMode::Normal)
                }
            }
            Need::Replacing(stale) if stored.value().expose() == stale => {
                if self.is_too_young_to_replace(stored, now) {
                    // Not refetched unchecked: otherwise every round of get + report would be a
                    // fetch, and with `classic` the daily quota would be gone within the hour.
                    Decision::Keep(RefreshOutcome::RecentlyRefreshed)
                } else {
                    Decision::Fetch(FetchMode::Force)
                }
            }
            Need::ReplacingRejected(stale) if stored.value().expose() == stale => {
                Decision::Fetch(FetchMode::Force)
            }
            Need::Replacing(_) | Need::ReplacingRejected(_) => {
                Decision::Keep(RefreshOutcome::AlreadyReplaced)
            }
        }
    }

    /// With the lease held: check again, ask the quota, fetch, and store what came back.
    async fn refresh_holding_lease<R: Kept>(
        &self,
        need: Need<'_>,
    ) -> Result<Refresh<R>, TokenError> {
        let now = self.clock.now_ms();
        // Read again: the previous holder may have stored one just before we took the lease.
        let stored = self.read::<R>().await?;
        let mode = match self.decide(need, stored.as_ref(), now) {
            Decision::Keep(outcome) => {
                return Ok(Refresh {
                    outcome,
                    current: stored,
                });
            }
            Decision::Fetch(mode) => mode,
        };
        if let Some(refusal) = self.quota_refusal::<R>(need, mode, now).await? {
            return Ok(Refresh {
                outcome: refusal,
                current: stored,
            });
        }
        let outcome = match R::fetch(self, mode).await? {
            FetchStep::Fetched(fetched) => return self.store_fetched(fetched, stored, need).await,
            FetchStep::Failed(failure) => {
                let forced = R::spends_forced_refresh(self.fetcher.api(), mode);
                self.record_failure::<R>(failure, forced, now).await?
            }
            FetchStep::Settled(outcome) => outcome,
        };
        if R::REMEMBERS_FAILURES && outcome.is_remembered() {
            self.remember_failure::<R>(&outcome).await;
        }
        Ok(Refresh {
            outcome,
            current: stored,
        })
    }

    /// The failure remembered for `R` that answers `need` now, if any (one read of its quota
    /// item, and none for a credential that remembers nothing or for the schedule).
    async fn remembered_failure<R: Kept>(
        &self,
        need: Need<'_>,
        now: i64,
    ) -> Result<Option<RefreshOutcome>, TokenError> {
        if !(R::REMEMBERS_FAILURES && need.heeds_remembered_failure()) {
            return Ok(None);
        }
        let quota_id = R::lease_and_quota_id(&self.config.wechat.app_id);
        let quota = self.store.read_quota(&quota_id).await?.unwrap_or_default();
        Ok(remembered::<R>(&quota, need, now))
    }

    /// Remember `outcome`, a failed fetch of `R`, in its quota item for
    /// [`TICKET_FAILURE_MEMORY_MS`], so every instance answers callers with it meanwhile. Best
    /// effort: a store failure here is logged, and the outcome stands.
    async fn remember_failure<R: Kept>(&self, outcome: &RefreshOutcome) {
        let app_id = self.config.wechat.app_id.as_str();
        let quota_id = R::lease_and_quota_id(app_id);
        let until_ms = self.clock.now_ms() + TICKET_FAILURE_MEMORY_MS;
        let failure = outcome.code();
        let written = self
            .update_quota(&quota_id, |quota| {
                Ok::<_, ()>(QuotaRecord {
                    failure: failure.to_string(),
                    failed_until_ms: until_ms,
                    ..quota
                })
            })
            .await;
        match written {
            Ok(QuotaUpdate::Written) => tracing::warn!(
                app_id,
                credential = R::NAME,
                failure,
                until_s = until_ms.div_euclid(1000),
                "fetch failed; callers get this failure until then, without calling WeChat"
            ),
            Ok(_) => tracing::warn!(
                app_id,
                credential = R::NAME,
                failure,
                "could not remember the failed fetch (other instances kept writing)"
            ),
            Err(e) => tracing::warn!(
                app_id,
                credential = R::NAME,
                failure,
                error = %e,
                "could not remember the failed fetch"
            ),
        }
    }

    /// Why WeChat must not be called now, if it must not: the daily quota is blocked, a fetch
    /// failed a moment ago (for a credential that remembers failures, and a need that heeds
    /// them), or a forced refresh is over WeChat's limits. A forced refresh that is allowed is
    /// counted here.
    async fn quota_refusal<R: Kept>(
        &self,
        need: Need<'_>,
        mode: FetchMode,
        now: i64,
    ) -> Result<Option<RefreshOutcome>, TokenError> {
        let app_id = self.config.wechat.app_id.as_str();
        let quota_id = R::lease_and_quota_id(app_id);
        let quota = self.store.read_quota(&quota_id).await?.unwrap_or_default();
        if quota.blocked_until_ms > now {
            tracing::warn!(
                app_id,
                credential = R::NAME,
                blocked_until_s = quota.blocked_until_ms.div_euclid(1000),
                "WeChat's daily quota is exhausted; not calling until it resets"
            );
            return Ok(Some(RefreshOutcome::QuotaExhausted {
                until_ms: quota.blocked_until_ms,
            }));
        }
        if let Some(remembered) = remembered::<R>(&quota, need, now) {
            return Ok(Some(remembered));
        }
        if R::spends_forced_refresh(self.fetcher.api(), mode)
            && let Some(until_ms) = self.reserve_forced_refresh(&quota_id, now).await?
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

    /// Store a fetched credential over `stored`, unless WeChat handed back the same one; `need`
    /// is what the fetch was for.
    async fn store_fetched<R: Kept>(
        &self,
        fetched: Fetched,
        stored: Option<R>,
        need: Need<'_>,
    ) -> Result<Refresh<R>, TokenError> {
        let now = self.clock.now_ms();
        let usable = stored.as_ref().filter(|s| s.is_usable_at(now));
        if usable.is_some_and(|current| *current.value() == fetched.value) {
            // The stable API's normal mode hands back the current token until its last 5 minutes.
            return Ok(Refresh {
                outcome: RefreshOutcome::Unchanged,
                current: stored,
            });
        }
        let outcome = match (usable, need) {
            (Some(_), Need::ReplacingRejected(_)) => RefreshOutcome::ConfirmedStale,
            (Some(_), _) => RefreshOutcome::Refreshed,
            (None, _) => RefreshOutcome::Fresh,
        };
        let expires_at_ms = fetched.expires_at_ms(now);
        let version = stored.as_ref().map_or(1, |s| s.version() + 1);
        let record = R::new(fetched.value, expires_at_ms, now, version);
        let replacing = stored.as_ref().map(|s| s.version());
        let app_id = self.config.wechat.app_id.as_str();
        match record.write(&self.store, app_id, replacing).await? {
            ConditionalWrite::Written => {
                tracing::info!(
                    app_id,
                    credential = R::NAME,
                    outcome = outcome.code(),
                    fingerprint = %super::fingerprint(record.value().expose()),
                    version = record.version(),
                    expires_at_s = record.expires_at_ms().div_euclid(1000),
                    "stored a new credential"
                );
                Ok(Refresh {
                    outcome,
                    current: Some(record),
                })
            }
            ConditionalWrite::Superseded => {
                tracing::warn!(
                    app_id,
                    credential = R::NAME,
                    "another refresher stored one while this one fetched (its lease ran out); keeping theirs"
                );
                Ok(Refresh {
                    outcome: RefreshOutcome::LostRaceUsedWinner,
                    current: self.read::<R>().await?,
                })
            }
        }
    }

    /// Count a forced refresh against WeChat's limits in the quota item `quota_id`, in the table
    /// so every instance sees it. `Some(until)`: not allowed before `until`.
    async fn reserve_forced_refresh(
        &self,
        quota_id: &str,
        now: i64,
    ) -> Result<Option<i64>, TokenError> {
        let today = china_day(now);
        let limited = self
            .update_quota(quota_id, |quota| {
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
    async fn record_failure<R: Kept>(
        &self,
        failure: FetchFailure,
        forced: bool,
        now: i64,
    ) -> Result<RefreshOutcome, TokenError> {
        let app_id = self.config.wechat.app_id.as_str();
        let quota_id = R::lease_and_quota_id(app_id);
        Ok(match failure {
            FetchFailure::Configuration {
                errcode,
                whitelist_ip,
            } => RefreshOutcome::ConfigError {
                errcode,
                whitelist_ip,
            },
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
                self.update_quota(&quota_id, |quota| {
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
                self.update_quota(&quota_id, |quota| {
                    Ok::<_, ()>(QuotaRecord {
                        blocked_until_ms: until_ms,
                        ..quota
                    })
                })
                .await?;
                tracing::error!(
                    app_id,
                    credential = R::NAME,
                    blocked_until_s = until_ms.div_euclid(1000),
                    "WeChat's daily quota for this credential is exhausted (45009); no instance calls again before midnight China time"
                );
                RefreshOutcome::QuotaExhausted { until_ms }
            }
        })
    }

    /// Read-modify-write the quota item `quota_id` with a conditional write, retried when
    /// another instance wrote in between.
    async fn update_quota<E>(
        &self,
        quota_id: &str,
        mut change: impl FnMut(QuotaRecord) -> Result<QuotaRecord, E>,
    ) -> Result<QuotaUpdate<E>, TokenError> {
        for _ in 0..MAX_QUOTA_WRITES {
            let current = self.store.read_quota(quota_id).await?;
            let replacing = current.as_ref().map(|q| q.version);
            let base = current.unwrap_or_default();
            let version = base.version + 1;
            let updated = match change(base) {
                Ok(updated) => QuotaRecord { version, ..updated },
                Err(refusal) => return Ok(QuotaUpdate::Refused(refusal)),
            };
            if self
                .store
                .write_quota(quota_id, &updated, replacing)
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
    async fn wait_for_lease_holder<R: Kept>(
        &self,
        need: Need<'_>,
    ) -> Result<Waited<R>, TokenError> {
        let lease_id = R::lease_and_quota_id(&self.config.wechat.app_id);
        let polls = self.config.lease.as_millis() / self.config.lease_poll.as_millis().max(1) + 2;
        let mut stored = None;
        for _ in 0..polls {
            tokio::time::sleep(self.config.lease_poll).await;
            let now = self.clock.now_ms();
            // The lease first: if it is gone, the item read after it shows what its holder stored.
            let lease = self.store.read_lease(&lease_id).await?;
            stored = self.read::<R>().await?;
            if let Decision::Keep(_) = self.decide(need, stored.as_ref(), now)
                && let Some(record) = stored
            {
                return Ok(Waited::Satisfied(record));
            }
            match lease {
                None => return Ok(Waited::Released(stored)),
                Some(lease) if !lease.is_held_at(now) => return Ok(Waited::Lapsed),
                Some(_) => {}
            }
        }
        Ok(Waited::StillHeld(stored))
    }

    async fn read<R: Kept>(&self) -> Result<Option<R>, StoreError> {
        R::read(&self.store, &self.config.wechat.app_id).await
    }
}

/// What the credentials' fetches use of the service. The jsapi_ticket's runs the token's own
/// refresh for the access_token it is asked for with.
impl<S: TokenStore> Fetching for TokenService<S> {
    fn app_id(&self) -> &str {
        &self.config.wechat.app_id
    }

    fn fetcher(&self) -> &TokenFetcher {
        &self.fetcher
    }

    /// Never start a retry that could outlast the lease: a slower refresher must not race a
    /// taker-over (and if it does, the conditional write of its credential is rejected).
    fn fetch_deadline_ms(&self) -> i64 {
        let lease_ms = self.config.lease.as_millis() as i64;
        self.clock.now_ms() + lease_ms - lease_ms / 5
    }

    fn access_token(&self) -> impl Future<Output = Result<AccessToken, TokenError>> + Send {
        self.get()
    }

    fn refresh_stale_token(
        &self,
        stale: &str,
    ) -> impl Future<Output = Result<RefreshReport, TokenError>> + Send {
        self.refresh_stale(stale)
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

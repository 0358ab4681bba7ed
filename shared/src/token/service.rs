//! The refresh logic of the central control service: when to fetch, who may fetch (the lease),
//! how a fetched token is stored (compare-and-swap on the version), what the quota allows, and
//! what a refresher that lost the race does (waits for the winner's token instead of fetching).

use std::sync::atomic::{AtomicU64, Ordering};

use super::wechat::{
    FORCE_REFRESH_DAILY_LIMIT, FORCE_REFRESH_MIN_INTERVAL_MS, FetchFailure, FetchMode, Fetched,
    TokenApi, TokenFetcher,
};
use super::{AccessToken, RefreshOutcome, RefreshReport, TokenConfig, TokenError};
use crate::clock::SharedClock;
use crate::store::token::{ConditionalWrite, LeaseAttempt, QuotaRecord, TokenRecord, TokenStore};
use crate::wechat_api::WeChatHttp;

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

/// What the caller needs from the stored token.
#[derive(Debug, Clone, Copy)]
enum Need<'a> {
    /// Any token that is not about to expire (`get`).
    Usable,
    /// A token with more than the refresh margin left (the scheduled run).
    Margin,
    /// A token other than this one, which failed a call (the passive path).
    Replacing(&'a str),
}

enum Decision {
    Keep(RefreshOutcome),
    Fetch(FetchMode),
}

/// How waiting for the lease holder ended.
enum Waited {
    /// The holder stored a token that meets the need.
    Satisfied(TokenRecord),
    /// The holder gave the lease back without storing what is needed.
    Released(Option<TokenRecord>),
    /// The holder's lease ran out: it died; take over.
    Lapsed,
    /// The lease is still held after waiting its full length.
    StillHeld(Option<TokenRecord>),
}

/// How a read-modify-write of the quota item ended.
enum QuotaUpdate<E> {
    Written,
    /// The change was refused (a limit) with this reason.
    Refused(E),
    /// Other instances kept writing in between.
    Contended,
}

/// The central access_token service for one app, over any [`TokenStore`], calling WeChat
/// through `http` and telling time by `clock` (both built once in `main`).
/// Share it (`Arc`) between concurrent callers; every method is safe to run concurrently, here
/// and on other instances over the same table.
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
        let report = self.refresh(Need::Usable).await?;
        report
            .token
            .filter(|t| t.is_usable_at(self.clock.now_ms()))
            .ok_or(TokenError::NoUsableToken(report.outcome))
    }

    /// The scheduled run: refresh when the stored token is missing or within the refresh margin,
    /// in the stable API's normal mode (which never invalidates the current token).
    pub async fn on_schedule(&self) -> Result<RefreshReport, TokenError> {
        self.refresh(Need::Margin).await
    }

    /// The passive path: a call failed with `stale` (40001/40014/42001). A new token is fetched
    /// (stable API: forced, within WeChat's limits) only if `stale` is still the stored token, so
    /// any number of reports of the same token cause one fetch.
    pub async fn refresh_stale(&self, stale: &str) -> Result<RefreshReport, TokenError> {
        self.refresh(Need::Replacing(stale)).await
    }

    async fn refresh(&self, need: Need<'_>) -> Result<RefreshReport, TokenError> {
        let app_id = self.config.wechat.app_id.as_str();
        let mut round = 1;
        loop {
            let now = self.clock.now_ms();
            let stored = self.store.read_token(app_id).await?;
            if let Decision::Keep(outcome) = self.decide(need, stored.as_ref(), now) {
                return Ok(self.report(outcome, stored));
            }
            let owner = lease_owner_id(now);
            let until = now + self.config.lease.as_millis() as i64;
            match self
                .store
                .try_acquire_lease(app_id, &owner, now, until)
                .await?
            {
                LeaseAttempt::Acquired => {
                    let result = self.refresh_holding_lease(need).await;
                    if let Err(e) = self.store.release_lease(app_id, &owner).await {
                        tracing::warn!(app_id, error = %e, "could not release the refresh lease; it runs out on its own");
                    }
                    return result;
                }
                LeaseAttempt::Held => match self.wait_for_lease_holder(need).await? {
                    Waited::Satisfied(record) => {
                        return Ok(self.report(RefreshOutcome::LostRaceUsedWinner, Some(record)));
                    }
                    Waited::Released(stored) => {
                        return Ok(self.report(RefreshOutcome::OtherRefresherFinished, stored));
                    }
                    Waited::Lapsed if round < MAX_LEASE_ROUNDS => {
                        tracing::warn!(
                            app_id,
                            "the refresh lease ran out without a token: its holder died; taking over"
                        );
                        round += 1;
                    }
                    Waited::Lapsed => {
                        let stored = self.store.read_token(app_id).await?;
                        return Ok(self.report(RefreshOutcome::LeaseBusy, stored));
                    }
                    Waited::StillHeld(stored) => {
                        return Ok(self.report(RefreshOutcome::LeaseBusy, stored));
                    }
                },
            }
        }
    }

    /// Keep the stored token, or fetch (and how).
    fn decide(&self, need: Need<'_>, stored: Option<&TokenRecord>, now: i64) -> Decision {
        let Some(stored) = stored.filter(|s| as_token(s).is_usable_at(now)) else {
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
            Need::Replacing(stale) if stored.access_token.expose() == stale => {
                Decision::Fetch(FetchMode::Force)
            }
            Need::Replacing(_) => Decision::Keep(RefreshOutcome::AlreadyReplaced),
        }
    }

    /// With the lease held: check again, ask the quota, fetch, and store what came back.
    async fn refresh_holding_lease(&self, need: Need<'_>) -> Result<RefreshReport, TokenError> {
        let app_id = self.config.wechat.app_id.as_str();
        let now = self.clock.now_ms();
        // Read again: the previous holder may have stored a token just before we took the lease.
        let stored = self.store.read_token(app_id).await?;
        let mode = match self.decide(need, stored.as_ref(), now) {
            Decision::Keep(outcome) => return Ok(self.report(outcome, stored)),
            Decision::Fetch(mode) => mode,
        };
        if let Some(refusal) = self.quota_refusal(mode, now).await? {
            return Ok(self.report(refusal, stored));
        }
        match self.fetcher.fetch(mode, self.fetch_deadline_ms()).await {
            Ok(fetched) => self.store_fetched(fetched, stored).await,
            Err(failure) => {
                let outcome = self
                    .record_failure(failure, self.is_forced(mode), now)
                    .await?;
                Ok(self.report(outcome, stored))
            }
        }
    }

    /// Whether this fetch spends one of the stable API's forced refreshes.
    fn is_forced(&self, mode: FetchMode) -> bool {
        mode == FetchMode::Force && self.fetcher.api() == TokenApi::Stable
    }

    /// Why WeChat must not be called now, if it must not: the daily quota is blocked, or a forced
    /// refresh is over WeChat's limits. A forced refresh that is allowed is counted here.
    async fn quota_refusal(
        &self,
        mode: FetchMode,
        now: i64,
    ) -> Result<Option<RefreshOutcome>, TokenError> {
        let app_id = self.config.wechat.app_id.as_str();
        let quota = self.store.read_quota(app_id).await?.unwrap_or_default();
        if quota.blocked_until_ms > now {
            tracing::warn!(
                app_id,
                blocked_until_s = quota.blocked_until_ms.div_euclid(1000),
                "WeChat's daily quota is exhausted; not calling until it resets"
            );
            return Ok(Some(RefreshOutcome::QuotaExhausted {
                until_ms: quota.blocked_until_ms,
            }));
        }
        if self.is_forced(mode)
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
    /// taker-over (and if it does, the conditional write of its token is rejected).
    fn fetch_deadline_ms(&self) -> i64 {
        let lease_ms = self.config.lease.as_millis() as i64;
        self.clock.now_ms() + lease_ms - lease_ms / 5
    }

    /// Store a fetched token over `stored`, unless WeChat handed back the same one.
    async fn store_fetched(
        &self,
        fetched: Fetched,
        stored: Option<TokenRecord>,
    ) -> Result<RefreshReport, TokenError> {
        let now = self.clock.now_ms();
        let usable = stored.as_ref().filter(|s| as_token(s).is_usable_at(now));
        if usable.is_some_and(|current| current.access_token == fetched.access_token) {
            // The stable API's normal mode hands back the current token until its last 5 minutes.
            return Ok(self.report(RefreshOutcome::Unchanged, stored));
        }
        let outcome = match usable {
            Some(_) => RefreshOutcome::Refreshed,
            None => RefreshOutcome::Fresh,
        };
        let record = TokenRecord {
            expires_at_ms: fetched.expires_at_ms(now),
            access_token: fetched.access_token,
            fetched_at_ms: now,
            version: stored.as_ref().map_or(1, |s| s.version + 1),
        };
        let replacing = stored.as_ref().map(|s| s.version);
        let app_id = self.config.wechat.app_id.as_str();
        match self.store.write_token(app_id, &record, replacing).await? {
            ConditionalWrite::Written => {
                log_stored(app_id, &outcome, &record);
                Ok(self.report(outcome, Some(record)))
            }
            ConditionalWrite::Superseded => {
                tracing::warn!(
                    app_id,
                    "another refresher stored a token while this one fetched (its lease ran out); keeping theirs"
                );
                let winner = self.store.read_token(app_id).await?;
                Ok(self.report(RefreshOutcome::LostRaceUsedWinner, winner))
            }
        }
    }

    /// Count a forced refresh against WeChat's limits, in the table so every instance sees it.
    /// `Some(until)`: not allowed before `until`.
    async fn reserve_forced_refresh(&self, now: i64) -> Result<Option<i64>, TokenError> {
        let today = china_day(now);
        let limited = self
            .update_quota(|quota| {
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
        failure: FetchFailure,
        forced: bool,
        now: i64,
    ) -> Result<RefreshOutcome, TokenError> {
        let app_id = self.config.wechat.app_id.as_str();
        Ok(match failure {
            FetchFailure::Configuration { errcode } => RefreshOutcome::ConfigError { errcode },
            FetchFailure::Busy { errcode, attempts } => {
                RefreshOutcome::WeChatBusy { errcode, attempts }
            }
            FetchFailure::Unavailable(e) => RefreshOutcome::WeChatUnavailable(e),
            FetchFailure::QuotaExhausted if forced => {
                // Only the forced refreshes are used up; normal fetches still work.
                let until_ms = next_china_midnight_ms(now);
                let today = china_day(now);
                self.update_quota(|quota| {
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
                self.update_quota(|quota| {
                    Ok::<_, ()>(QuotaRecord {
                        blocked_until_ms: until_ms,
                        ..quota
                    })
                })
                .await?;
                tracing::error!(
                    app_id,
                    blocked_until_s = until_ms.div_euclid(1000),
                    "WeChat's daily access_token quota is exhausted (45009); no instance calls again before midnight China time"
                );
                RefreshOutcome::QuotaExhausted { until_ms }
            }
        })
    }

    /// Read-modify-write the quota item with a conditional write, retried when another instance
    /// wrote in between.
    async fn update_quota<E>(
        &self,
        mut change: impl FnMut(QuotaRecord) -> Result<QuotaRecord, E>,
    ) -> Result<QuotaUpdate<E>, TokenError> {
        let app_id = self.config.wechat.app_id.as_str();
        for _ in 0..MAX_QUOTA_WRITES {
            let current = self.store.read_quota(app_id).await?;
            let replacing = current.as_ref().map(|q| q.version);
            let base = current.unwrap_or_default();
            let version = base.version + 1;
            let updated = match change(base) {
                Ok(updated) => QuotaRecord { version, ..updated },
                Err(refusal) => return Ok(QuotaUpdate::Refused(refusal)),
            };
            if self.store.write_quota(app_id, &updated, replacing).await?
                == ConditionalWrite::Written
            {
                return Ok(QuotaUpdate::Written);
            }
        }
        Ok(QuotaUpdate::Contended)
    }

    /// Poll until the lease holder stores a token that meets the need, gives the lease back, or
    /// its lease runs out; at most the lease's length (plus two polls).
    async fn wait_for_lease_holder(&self, need: Need<'_>) -> Result<Waited, TokenError> {
        let app_id = self.config.wechat.app_id.as_str();
        let polls = self.config.lease.as_millis() / self.config.lease_poll.as_millis().max(1) + 2;
        let mut stored = None;
        for _ in 0..polls {
            tokio::time::sleep(self.config.lease_poll).await;
            let now = self.clock.now_ms();
            // The lease first: if it is gone, the token read after it shows what its holder stored.
            let lease = self.store.read_lease(app_id).await?;
            stored = self.store.read_token(app_id).await?;
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

    /// The outcome with the stored token, if it has not expired (an old token beats none).
    fn report(&self, outcome: RefreshOutcome, stored: Option<TokenRecord>) -> RefreshReport {
        let now = self.clock.now_ms();
        RefreshReport {
            outcome,
            token: stored
                .map(|s| as_token(&s))
                .filter(|t| t.expires_at_ms > now),
        }
    }
}

fn log_stored(app_id: &str, outcome: &RefreshOutcome, record: &TokenRecord) {
    let token = as_token(record);
    tracing::info!(
        app_id,
        outcome = outcome.code(),
        token = %token.fingerprint(),
        version = record.version,
        expires_at_s = token.expires_at_s(),
        "stored a new access_token"
    );
}

fn as_token(record: &TokenRecord) -> AccessToken {
    AccessToken {
        value: record.access_token.clone(),
        expires_at_ms: record.expires_at_ms,
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

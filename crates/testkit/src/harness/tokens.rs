//! What the token tests share: a service configured against the fake WeChat API, a store wrapper
//! that counts token reads, a source wrapper that counts stale reports, and the storage contract
//! every `TokenStore` adapter must meet (run against the embedded store and against dynalite).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fake_wechat::{FAKE_APP_SECRET, FakeWeChat, lock};
use account::clock::{Clock, ManualClock};
use account::token::store::{
    ConditionalWrite, Lease, LeaseAttempt, QuotaRecord, TicketRecord, TokenRecord, TokenStore,
};
use account::token::{
    AccessToken, TokenConfig, TokenError, TokenService, TokenSource, handle_invocation,
};
use serde_json::Value;
use table::StoreError;
use table::embedded::EmbeddedStore;
use wechat_protocol::secret::Secret;

/// 2026-01-01T08:00:00+08:00, a plain morning in China time.
pub const T0_MS: i64 = 1_767_225_600_000;
pub const FIVE_MINUTES_MS: i64 = 300_000;

/// Settings for tests: the fake's base URL and credentials, a short lease polled often, a
/// 1 ms retry backoff, a 500 ms HTTP timeout and no stale-report throttle, plus `extra` (e.g.
/// `WECHAT_TOKEN_API`, or [`THROTTLED`]).
pub fn config(fake: &FakeWeChat, extra: &[(&str, &str)]) -> TokenConfig {
    let mut env: HashMap<String, String> = [
        ("WECHAT_APP_ID", fake.state().app_id.as_str()),
        ("WECHAT_APP_SECRET", FAKE_APP_SECRET),
        ("WECHAT_API_BASE", fake.base_url()),
        ("WECHAT_HTTP_TIMEOUT_MS", "500"),
        ("TOKEN_LEASE_MS", "1000"),
        ("TOKEN_LEASE_POLL_MS", "10"),
        ("TOKEN_RETRY_BACKOFF_MS", "1"),
        // The stale-report throttle off: these tests report tokens right after fetching them;
        // the throttle's own tests turn it on (`THROTTLED`).
        ("TOKEN_STALE_MIN_AGE_SECS", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    TokenConfig::from_env(&env).expect("test configuration is valid")
}

/// A fake WeChat API for `app_id` whose notion of time is `clock`.
pub async fn fake_for(app_id: &str, clock: &ManualClock) -> FakeWeChat {
    let fake = FakeWeChat::start_with(([127, 0, 0, 1], 0).into(), app_id, FAKE_APP_SECRET)
        .await
        .expect("start the fake WeChat API");
    lock(&fake.state().token).use_clock(clock.clone());
    fake
}

/// A fake WeChat API for `app_id` on wall-clock time.
pub async fn fake_on_wall_clock(app_id: &str) -> FakeWeChat {
    FakeWeChat::start_with(([127, 0, 0, 1], 0).into(), app_id, FAKE_APP_SECRET)
        .await
        .expect("start the fake WeChat API")
}

/// The production default of the stale-report throttle, for `config`'s `extra`.
pub const THROTTLED: (&str, &str) = ("TOKEN_STALE_MIN_AGE_SECS", "60");

pub const STABLE: &str = "/cgi-bin/stable_token";
pub const GETTICKET: &str = "/cgi-bin/ticket/getticket";
pub const CLASSIC: &str = "/cgi-bin/token";

/// A store that counts `read_token` calls and otherwise passes everything through.
#[derive(Debug, Clone)]
pub struct CountingStore<S> {
    pub inner: S,
    pub token_reads: Arc<AtomicU64>,
}

impl<S> CountingStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            token_reads: Arc::default(),
        }
    }

    pub fn token_reads(&self) -> u64 {
        self.token_reads.load(Ordering::SeqCst)
    }
}

impl<S: TokenStore> TokenStore for CountingStore<S> {
    async fn read_token(&self, app_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.token_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_token(app_id).await
    }

    async fn write_token(
        &self,
        app_id: &str,
        record: &TokenRecord,
        replacing: Option<u64>,
    ) -> Result<ConditionalWrite, StoreError> {
        self.inner.write_token(app_id, record, replacing).await
    }

    async fn read_ticket(&self, app_id: &str) -> Result<Option<TicketRecord>, StoreError> {
        self.inner.read_ticket(app_id).await
    }

    async fn write_ticket(
        &self,
        app_id: &str,
        record: &TicketRecord,
        replacing: Option<u64>,
    ) -> Result<ConditionalWrite, StoreError> {
        self.inner.write_ticket(app_id, record, replacing).await
    }

    async fn try_acquire_lease(
        &self,
        app_id: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<LeaseAttempt, StoreError> {
        self.inner
            .try_acquire_lease(app_id, owner, now_ms, until_ms)
            .await
    }

    async fn release_lease(&self, app_id: &str, owner: &str) -> Result<(), StoreError> {
        self.inner.release_lease(app_id, owner).await
    }

    async fn read_lease(&self, app_id: &str) -> Result<Option<Lease>, StoreError> {
        self.inner.read_lease(app_id).await
    }

    async fn read_quota(&self, app_id: &str) -> Result<Option<QuotaRecord>, StoreError> {
        self.inner.read_quota(app_id).await
    }

    async fn write_quota(
        &self,
        app_id: &str,
        record: &QuotaRecord,
        replacing: Option<u64>,
    ) -> Result<ConditionalWrite, StoreError> {
        self.inner.write_quota(app_id, record, replacing).await
    }
}

/// A source that counts `current` and `report_stale` calls and passes them through.
pub struct CountingSource<T> {
    pub inner: T,
    pub currents: AtomicU64,
    pub stale_reports: AtomicU64,
}

impl<T> CountingSource<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            currents: AtomicU64::new(0),
            stale_reports: AtomicU64::new(0),
        }
    }

    pub fn stale_reports(&self) -> u64 {
        self.stale_reports.load(Ordering::SeqCst)
    }
}

impl<T: TokenSource> TokenSource for CountingSource<T> {
    async fn current(&self) -> Result<AccessToken, TokenError> {
        self.currents.fetch_add(1, Ordering::SeqCst);
        self.inner.current().await
    }

    async fn report_stale(&self, stale: &str) -> Result<AccessToken, TokenError> {
        self.stale_reports.fetch_add(1, Ordering::SeqCst);
        self.inner.report_stale(stale).await
    }
}

/// A small deterministic pseudo-random sequence (xorshift64*), so simulations are reproducible.
pub struct Xorshift(u64);

impl Xorshift {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
    }
}

fn record(token: &str, version: u64) -> TokenRecord {
    TokenRecord {
        access_token: Secret::new(token.to_string()),
        expires_at_ms: T0_MS + 7_200_000,
        fetched_at_ms: T0_MS,
        version,
    }
}

/// The storage contract: compare-and-swap writes of the token item; an older refresh's write
/// arriving after a newer one is rejected and leaves the newer token in place.
pub async fn older_token_write_is_rejected(store: &impl TokenStore, app_id: &str) {
    assert_eq!(store.read_token(app_id).await.unwrap(), None);
    // Two refreshers both saw version 1...
    assert_eq!(
        store
            .write_token(app_id, &record("first", 1), None)
            .await
            .unwrap(),
        ConditionalWrite::Written
    );
    assert_eq!(
        store
            .write_token(app_id, &record("again-absent", 1), None)
            .await
            .unwrap(),
        ConditionalWrite::Superseded,
        "a write expecting no item must fail once one exists"
    );
    // ...the faster one stores version 2...
    assert_eq!(
        store
            .write_token(app_id, &record("newer", 2), Some(1))
            .await
            .unwrap(),
        ConditionalWrite::Written
    );
    // ...and the slower one's write, based on version 1, arrives afterwards and is rejected.
    assert_eq!(
        store
            .write_token(app_id, &record("older", 2), Some(1))
            .await
            .unwrap(),
        ConditionalWrite::Superseded
    );
    let stored = store.read_token(app_id).await.unwrap().unwrap();
    assert_eq!(stored, record("newer", 2));
}

/// The storage contract for the lease: taken only when free or run out; released only by its owner.
pub async fn lease_is_exclusive_until_it_runs_out(store: &impl TokenStore, app_id: &str) {
    let now = T0_MS;
    assert_eq!(store.read_lease(app_id).await.unwrap(), None);
    assert_eq!(
        store
            .try_acquire_lease(app_id, "a", now, now + 1000)
            .await
            .unwrap(),
        LeaseAttempt::Acquired
    );
    assert_eq!(
        store
            .try_acquire_lease(app_id, "b", now + 999, now + 1999)
            .await
            .unwrap(),
        LeaseAttempt::Held,
        "not before the lease runs out"
    );
    store.release_lease(app_id, "b").await.unwrap();
    assert_eq!(
        store.read_lease(app_id).await.unwrap(),
        Some(Lease {
            owner: "a".into(),
            until_ms: now + 1000
        }),
        "only the owner can release"
    );
    assert_eq!(
        store
            .try_acquire_lease(app_id, "b", now + 1000, now + 2000)
            .await
            .unwrap(),
        LeaseAttempt::Acquired,
        "taken over once it has run out"
    );
    store.release_lease(app_id, "a").await.unwrap();
    assert_eq!(
        store.read_lease(app_id).await.unwrap().map(|l| l.owner),
        Some("b".to_string()),
        "the first owner's late release leaves the new owner's lease alone"
    );
    store.release_lease(app_id, "b").await.unwrap();
    assert_eq!(store.read_lease(app_id).await.unwrap(), None);
    assert_eq!(
        store
            .try_acquire_lease(app_id, "c", now + 1000, now + 2000)
            .await
            .unwrap(),
        LeaseAttempt::Acquired
    );
}

/// The storage contract for the quota item: compare-and-swap like the token item.
pub async fn quota_writes_are_compare_and_swap(store: &impl TokenStore, app_id: &str) {
    assert_eq!(store.read_quota(app_id).await.unwrap(), None);
    let first = QuotaRecord {
        version: 1,
        force_day: 20454,
        force_count: 1,
        last_force_at_ms: T0_MS,
        blocked_until_ms: 0,
        ..QuotaRecord::default()
    };
    assert_eq!(
        store.write_quota(app_id, &first, None).await.unwrap(),
        ConditionalWrite::Written
    );
    let second = QuotaRecord {
        version: 2,
        force_count: 2,
        ..first.clone()
    };
    assert_eq!(
        store.write_quota(app_id, &second, None).await.unwrap(),
        ConditionalWrite::Superseded
    );
    assert_eq!(
        store.write_quota(app_id, &second, Some(1)).await.unwrap(),
        ConditionalWrite::Written
    );
    assert_eq!(
        store.write_quota(app_id, &second, Some(1)).await.unwrap(),
        ConditionalWrite::Superseded
    );
    assert_eq!(store.read_quota(app_id).await.unwrap(), Some(second));
}

/// A refresher that died holding the lease (it never releases) is taken over once the lease has
/// run out on the service's clock, and not a millisecond before. Asserted on outcomes and on the
/// number of calls that reached the fake, with a virtual clock: no timing involved.
pub async fn dead_lease_holder_is_taken_over_only_after_its_lease<S: TokenStore>(
    service: &TokenService<S>,
    clock: &ManualClock,
    fake: &FakeWeChat,
) {
    let app_id = service.config().wechat.app_id.clone();
    let lease_ms = service.config().lease.as_millis() as i64;
    let until = clock.now_ms() + lease_ms;
    assert_eq!(
        service
            .store()
            .try_acquire_lease(&app_id, "refresher-that-died", clock.now_ms(), until)
            .await
            .unwrap(),
        LeaseAttempt::Acquired
    );

    let busy = service.on_schedule().await.unwrap();
    assert_eq!(busy.outcome, account::token::RefreshOutcome::LeaseBusy);
    assert_eq!(busy.token, None);
    clock.set_ms(until - 1);
    let still_busy = service.on_schedule().await.unwrap();
    assert_eq!(
        still_busy.outcome,
        account::token::RefreshOutcome::LeaseBusy
    );
    assert_eq!(fake.calls(STABLE), 0, "nobody fetched while the lease held");

    clock.set_ms(until);
    let taken_over = service.on_schedule().await.unwrap();
    assert_eq!(taken_over.outcome, account::token::RefreshOutcome::Fresh);
    assert_eq!(fake.calls(STABLE), 1);
    let token = taken_over.token.expect("a token after the takeover");
    assert!(fake.state().is_valid_token(token.value.expose()));
}

/// A virtual day on the 5-minute schedule: at every tick run `on_schedule`, and between ticks read
/// the stored token at random moments. The stored token is never expired (nor rejected by the
/// fake) when read, reads never cause a fetch, and the token endpoint is called at most 50 times.
/// Returns the number of calls to the token endpoint.
pub async fn simulate_a_day_on_the_schedule<S: TokenStore>(
    service: &TokenService<S>,
    clock: &ManualClock,
    fake: &FakeWeChat,
    endpoint: &str,
) -> u64 {
    let app_id = service.config().wechat.app_id.clone();
    let start = clock.now_ms();
    let mut random = Xorshift::new(0x5EED_DA7A);
    let mut reads = 0;
    for tick in 0..(24 * 12) {
        let tick_at = start + tick * FIVE_MINUTES_MS;
        clock.set_ms(tick_at);
        let report = service.on_schedule().await.unwrap();
        assert!(
            !report.outcome.is_failure(),
            "tick {tick}: {:?}",
            report.outcome
        );
        let mut offsets: Vec<i64> = (0..3)
            .map(|_| random.below(FIVE_MINUTES_MS as u64) as i64)
            .collect();
        offsets.sort_unstable();
        for offset in offsets {
            let now = tick_at + offset;
            clock.set_ms(now);
            let calls_before = fake.calls(endpoint);
            let stored = service.store().read_token(&app_id).await.unwrap().unwrap();
            assert!(
                stored.expires_at_ms > now,
                "tick {tick} +{offset} ms: the stored token expired {} ms ago",
                now - stored.expires_at_ms
            );
            assert!(fake.state().is_valid_token(stored.access_token.expose()));
            let got = service.get().await.unwrap();
            assert_eq!(got.value, stored.access_token);
            assert_eq!(fake.calls(endpoint), calls_before, "a read fetched");
            reads += 1;
        }
    }
    assert_eq!(reads, 24 * 12 * 3);
    let calls = fake.calls(endpoint);
    assert!(calls <= 50, "{calls} calls to {endpoint} in a day");
    eprintln!("a virtual day on the schedule: {calls} calls to {endpoint}, {reads} reads");
    calls
}

/// The service over the embedded store, as most token tests use it.
pub type Service = TokenService<EmbeddedStore>;

/// A fake on a virtual clock, and a service over a fresh embedded store on the same clock.
pub async fn setup(extra: &[(&str, &str)]) -> (Service, ManualClock, FakeWeChat) {
    let clock = manual_clock();
    let fake = fake_for(crate::fake_wechat::FAKE_APP_ID, &clock).await;
    let service = service(
        config(&fake, extra),
        EmbeddedStore::in_memory(),
        clock.clone(),
    );
    (service, clock, fake)
}

/// The refresh function's answer, as the JSON it sends.
pub async fn invoke(service: &Service, event: Value) -> Result<Value, TokenError> {
    let answer = handle_invocation(service, event).await?;
    Ok(serde_json::to_value(answer).expect("answers serialize"))
}

pub fn manual_clock() -> ManualClock {
    ManualClock::at_ms(T0_MS)
}

/// The service over `store`, calling WeChat where `config` says, on `clock` (any clock: clones of
/// a `ManualClock` share its time).
pub fn service<S: TokenStore>(
    config: TokenConfig,
    store: S,
    clock: impl Clock + 'static,
) -> TokenService<S> {
    let http = config.wechat.client().expect("an HTTP client to the fake");
    TokenService::new(config, store, http, Arc::new(clock))
}

/// The current token according to the fake: is it accepted by an API call?
pub fn accepted(fake: &FakeWeChat, token: &AccessToken) -> bool {
    fake.state().is_valid_token(token.value.expose())
}

pub fn now(clock: &impl Clock) -> i64 {
    clock.now_ms()
}

//! The token client the other functions use: cached for the container's life, and a call whose
//! token WeChat rejects is reported stale once and retried once.

use std::sync::Arc;
use std::time::Duration;

use account::clock::ManualClock;
use account::token::{CallError, TokenClient, TokenService};
use serde_json::Value;
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::{FAKE_APP_ID, FakeWeChat, Scripted, lock};
use testkit::harness::tokens::*;
use wechat_api::{ApiError, WeChatHttp};

const API: &str = "/cgi-bin/get_api_domain_ip";

type Service = TokenService<CountingStore<EmbeddedStore>>;
type Client = TokenClient<Arc<CountingSource<Arc<Service>>>>;

struct Setup {
    clock: ManualClock,
    fake: FakeWeChat,
    store: CountingStore<EmbeddedStore>,
    source: Arc<CountingSource<Arc<Service>>>,
    client: Client,
    http: WeChatHttp,
}

async fn setup() -> Setup {
    let clock = manual_clock();
    let fake = fake_for(FAKE_APP_ID, &clock).await;
    let store = CountingStore::new(EmbeddedStore::in_memory());
    let service = Arc::new(service(config(&fake, &[]), store.clone(), clock.clone()));
    let source = Arc::new(CountingSource::new(service));
    let client = TokenClient::with_clock(source.clone(), Arc::new(clock.clone()));
    let http = WeChatHttp::new(fake.base_url(), Duration::from_secs(2)).unwrap();
    Setup {
        clock,
        fake,
        store,
        source,
        client,
        http,
    }
}

/// A real token-protected WeChat call against the fake.
async fn api_domain_ips(client: &Client, http: &WeChatHttp) -> Result<Value, CallError> {
    client
        .call_with_token(|token| async move {
            http.get(API, &[("access_token", token.expose().as_str())])
                .await
        })
        .await
}

#[tokio::test]
async fn a_warm_client_hands_out_its_cached_token_without_reading_the_store() {
    let s = setup().await;
    let first = s.client.current().await.unwrap();
    let reads = s.store.token_reads();
    assert!(reads >= 1);
    s.clock.advance_ms(3_600_000);
    for _ in 0..10 {
        assert_eq!(s.client.current().await.unwrap(), first);
    }
    assert_eq!(s.store.token_reads(), reads, "warm calls read nothing");
    assert_eq!(
        s.source.currents.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn a_cached_token_within_a_minute_of_expiry_is_read_again() {
    let s = setup().await;
    let first = s.client.current().await.unwrap();
    s.clock.set_ms(first.expires_at_ms - 60_001);
    s.client.current().await.unwrap();
    let reads = s.store.token_reads();
    s.clock.advance_ms(1);
    s.client.current().await.unwrap();
    assert!(s.store.token_reads() > reads);
}

#[tokio::test]
async fn a_rejected_token_is_reported_stale_once_and_the_call_retried_once_with_the_new_one() {
    let s = setup().await;
    let old = s.client.current().await.unwrap();
    // Some other system force-refreshed: the cached token no longer works.
    lock(&s.fake.state().token).revoke_all();
    let answer = api_domain_ips(&s.client, &s.http).await.unwrap();
    assert!(answer["ip_list"].is_array());
    assert_eq!(s.source.stale_reports(), 1);
    assert_eq!(s.fake.calls(API), 2);
    assert_eq!(s.fake.calls(STABLE), 2, "one fetch, one forced refresh");
    let new = s.client.current().await.unwrap();
    assert_ne!(new.value, old.value);
    assert!(accepted(&s.fake, &new));
}

#[tokio::test]
async fn a_second_rejection_on_the_retry_is_returned_without_looping() {
    let s = setup().await;
    s.fake.script(API, Scripted::ErrCode(40001));
    s.fake.script(API, Scripted::ErrCode(40001));
    s.fake.script(API, Scripted::ErrCode(40001));
    let err = api_domain_ips(&s.client, &s.http).await.unwrap_err();
    assert!(matches!(
        err,
        CallError::Api(ApiError::WeChat { errcode: 40001, .. })
    ));
    assert_eq!(s.fake.calls(API), 2);
    assert_eq!(s.source.stale_reports(), 1);
}

#[tokio::test]
async fn other_errors_are_returned_at_once_without_a_stale_report() {
    let s = setup().await;
    s.fake.script(API, Scripted::ErrCode(45009));
    let err = api_domain_ips(&s.client, &s.http).await.unwrap_err();
    assert!(matches!(
        err,
        CallError::Api(ApiError::WeChat { errcode: 45009, .. })
    ));
    assert_eq!((s.fake.calls(API), s.source.stale_reports()), (1, 0));
}

#[tokio::test]
async fn without_a_replacement_token_the_first_rejection_is_returned_after_one_call() {
    let s = setup().await;
    s.client.current().await.unwrap();
    lock(&s.fake.state().token).revoke_all();
    api_domain_ips(&s.client, &s.http).await.unwrap();
    assert_eq!(s.source.stale_reports(), 1);
    // Revoked again within 30 s of the forced refresh: WeChat allows no new one yet.
    lock(&s.fake.state().token).revoke_all();
    let calls = s.fake.calls(API);
    let err = api_domain_ips(&s.client, &s.http).await.unwrap_err();
    assert!(matches!(
        err,
        CallError::Api(ApiError::WeChat { errcode: 40001, .. })
    ));
    assert_eq!(s.fake.calls(API), calls + 1, "no pointless retry");
    assert_eq!(s.source.stale_reports(), 2);
}

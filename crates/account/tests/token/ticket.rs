//! The jsapi_ticket kept by the token service, against the fake WeChat API and the embedded
//! store, on a virtual clock: one fetch with the current token, the passive token refresh when
//! getticket rejects the token, WeChat's errors as named outcomes, its own quota, the schedule
//! refreshing both credentials, the `get_ticket`/`refresh_ticket` invocations, the per-container
//! cache, and the fake's `wx.config` check.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use account::clock::{Clock, ManualClock};
use account::token::store::{TokenStore, ticket_id};
use account::token::{JsapiTicket, TicketSource};
use account::token::{
    RefreshOutcome, TICKET_FAILURE_MEMORY_MS, TokenClient, TokenError, next_china_midnight_ms,
};
use serde_json::{Value, json};
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::jssdk::{INVALID_SIGNATURE, VERIFY_PATH};
use testkit::fake_wechat::{FAKE_APP_ID, FakeWeChat, Scripted, lock};
use testkit::harness::tokens::*;
use wechat_api::ApiError;
use wechat_protocol::signature::jssdk_signature;

fn valid(fake: &FakeWeChat, ticket: &JsapiTicket) -> bool {
    fake.state().is_valid_ticket(ticket.value.expose())
}

/// Another instance of the service, over `store`, on the same clock and fake.
fn service_on(fake: &FakeWeChat, store: EmbeddedStore, clock: &ManualClock) -> Service {
    service(config(fake, &[]), store, clock.clone())
}

fn scheduled_event() -> Value {
    json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
}

#[tokio::test]
async fn the_first_ticket_is_fetched_once_with_the_current_token_and_then_handed_out() {
    let (service, clock, fake) = setup(&[]).await;
    let ticket = service.jsapi_ticket().await.unwrap();
    assert!(valid(&fake, &ticket));
    assert_eq!(ticket.expires_at_ms, clock.now_ms() + 7_200_000);
    assert_eq!((fake.calls(STABLE), fake.calls(GETTICKET)), (1, 1));
    clock.advance_ms(3_600_000);
    assert_eq!(service.jsapi_ticket().await.unwrap(), ticket);
    assert_eq!(fake.calls(GETTICKET), 1);
    assert_eq!(lock(&fake.state().jssdk).issued(), 1);
    // Its own item, next to the token's.
    let stored = service.store().read_ticket(FAKE_APP_ID).await.unwrap();
    assert_eq!(stored.map(|r| r.jsapi_ticket), Some(ticket.value));
    assert!(
        service
            .store()
            .read_token(FAKE_APP_ID)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_token_rejected_by_getticket_is_refreshed_once_and_the_ticket_call_retried_once() {
    let (service, _clock, fake) = setup(&[]).await;
    let old = service.get().await.unwrap();
    // Some other system force-refreshed: the stored token no longer works.
    lock(&fake.state().token).revoke_all();
    let ticket = service.get_ticket().await.unwrap();
    assert!(valid(&fake, &ticket));
    assert_eq!(fake.calls(GETTICKET), 2, "one rejected call, one retry");
    assert_eq!(fake.calls(STABLE), 2, "one fetch, one forced refresh");
    let token = service.get().await.unwrap();
    assert_ne!(token.value, old.value);
    assert!(accepted(&fake, &token));
}

#[tokio::test]
async fn a_second_rejection_is_a_named_outcome_without_a_loop() {
    let (service, _clock, fake) = setup(&[]).await;
    for _ in 0..3 {
        fake.script(GETTICKET, Scripted::ErrCode(42001));
    }
    let report = service.on_schedule_ticket().await.unwrap();
    assert_eq!(
        report.outcome,
        RefreshOutcome::AccessTokenRejected { errcode: 42001 }
    );
    assert_eq!(report.ticket, None);
    assert_eq!((fake.calls(GETTICKET), fake.calls(STABLE)), (2, 2));
    assert!(report.outcome.is_failure());
}

#[tokio::test]
async fn a_just_fetched_token_rejected_by_getticket_is_not_refetched_under_the_throttle() {
    let (service, _clock, fake) = setup(&[THROTTLED]).await;
    fake.script(GETTICKET, Scripted::ErrCode(40001));
    let err = service.get_ticket().await.unwrap_err();
    assert!(matches!(
        err,
        TokenError::NoUsableTicket(RefreshOutcome::AccessTokenRejected { errcode: 40001 })
    ));
    assert_eq!(
        (fake.calls(STABLE), fake.calls(GETTICKET)),
        (1, 1),
        "the token was 0 s old: kept, and no retry with the same token"
    );
}

#[tokio::test]
async fn busy_answers_are_retried_and_named_when_they_last() {
    let (service, _clock, fake) = setup(&[]).await;
    fake.script(GETTICKET, Scripted::ErrCode(-1));
    let report = service.on_schedule_ticket().await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::Fresh);
    assert_eq!(fake.calls(GETTICKET), 2);

    let (service, clock, fake) = setup(&[]).await;
    service.get_ticket().await.unwrap();
    clock.advance_ms(7_200_000 - 200_000);
    for _ in 0..3 {
        fake.script(GETTICKET, Scripted::ErrCode(-1));
    }
    let before = service.store().read_ticket(FAKE_APP_ID).await.unwrap();
    let report = service.on_schedule_ticket().await.unwrap();
    assert_eq!(
        report.outcome,
        RefreshOutcome::WeChatBusy {
            errcode: -1,
            attempts: 3
        }
    );
    assert_eq!(fake.calls(GETTICKET), 4);
    assert_eq!(
        service.store().read_ticket(FAKE_APP_ID).await.unwrap(),
        before,
        "the old ticket stays"
    );
    assert_eq!(
        report.ticket.map(|t| t.value),
        before.map(|r| r.jsapi_ticket)
    );
}

#[tokio::test]
async fn http_errors_and_malformed_answers_are_wechat_unavailable() {
    let (service, _clock, fake) = setup(&[]).await;
    fake.script(GETTICKET, Scripted::HttpStatus(502));
    let report = service.on_schedule_ticket().await.unwrap();
    assert_eq!(
        report.outcome,
        RefreshOutcome::WeChatUnavailable(ApiError::HttpStatus(502))
    );
    fake.script(GETTICKET, Scripted::Malformed);
    let report = service.on_schedule_ticket().await.unwrap();
    assert!(matches!(
        report.outcome,
        RefreshOutcome::WeChatUnavailable(ApiError::Malformed(_))
    ));
    assert_eq!(fake.calls(GETTICKET), 2);
}

#[tokio::test]
async fn a_45009_blocks_getticket_on_every_instance_until_midnight_but_not_the_token() {
    let clock = manual_clock();
    let fake = fake_for(FAKE_APP_ID, &clock).await;
    let store = EmbeddedStore::in_memory();
    let first = service(config(&fake, &[]), store.clone(), clock.clone());
    let second = service(config(&fake, &[]), store.clone(), clock.clone());
    fake.script(GETTICKET, Scripted::ErrCode(45009));
    let midnight = next_china_midnight_ms(clock.now_ms());
    let report = first.on_schedule_ticket().await.unwrap();
    assert_eq!(
        report.outcome,
        RefreshOutcome::QuotaExhausted { until_ms: midnight }
    );
    clock.set_ms(midnight - 1);
    match second.get_ticket().await {
        Err(TokenError::NoUsableTicket(RefreshOutcome::QuotaExhausted { until_ms })) => {
            assert_eq!(until_ms, midnight)
        }
        other => panic!("expected the quota block, got {other:?}"),
    }
    assert_eq!(fake.calls(GETTICKET), 1, "nobody called getticket again");
    // The block is the ticket's own quota item; the token's is untouched.
    let quota = store.read_quota(&ticket_id(FAKE_APP_ID)).await.unwrap();
    assert_eq!(quota.map(|q| q.blocked_until_ms), Some(midnight));
    assert_eq!(store.read_quota(FAKE_APP_ID).await.unwrap(), None);
    second.get().await.unwrap();
    clock.set_ms(midnight);
    assert_eq!(
        second.on_schedule_ticket().await.unwrap().outcome,
        RefreshOutcome::Fresh
    );
}

/// The remembered failure a request is answered with, or a panic naming what came instead.
fn remembered(result: Result<JsapiTicket, TokenError>) -> (String, i64) {
    match result {
        Err(TokenError::NoUsableTicket(RefreshOutcome::RecentlyFailed { failure, until_ms })) => {
            (failure, until_ms)
        }
        other => panic!("expected the remembered failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_failed_getticket_is_remembered_so_ten_requests_make_one_call_on_every_instance() {
    let (service, clock, fake) = setup(&[]).await;
    fake.script(GETTICKET, Scripted::HttpStatus(502));
    fake.script(GETTICKET, Scripted::HttpStatus(502));
    let failed_at = clock.now_ms();
    assert!(matches!(
        service.get_ticket().await,
        Err(TokenError::NoUsableTicket(
            RefreshOutcome::WeChatUnavailable(ApiError::HttpStatus(502))
        ))
    ));
    for _ in 0..9 {
        let (failure, until_ms) = remembered(service.get_ticket().await);
        assert_eq!(failure, "wechat_unavailable");
        assert_eq!(until_ms, failed_at + TICKET_FAILURE_MEMORY_MS);
    }
    assert_eq!(fake.calls(GETTICKET), 1);
    // A stale report is answered from the memory too (there is no ticket to report, but the
    // throttle must not depend on that).
    let report = service.refresh_stale_ticket("A_DEAD_TICKET").await.unwrap();
    assert_eq!(report.outcome.code(), "recently_failed");
    // The memory is in the table: another instance over it calls nobody either.
    let other = service_on(&fake, service.store().clone(), &clock);
    remembered(other.get_ticket().await);
    assert_eq!(fake.calls(GETTICKET), 1);
    let quota = service
        .store()
        .read_quota(&ticket_id(FAKE_APP_ID))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(quota.failure, "wechat_unavailable");
    assert_eq!(quota.blocked_until_ms, 0, "not a quota block");

    // Once it lapses, one new attempt; its failure is remembered again.
    clock.advance_ms(TICKET_FAILURE_MEMORY_MS - 1);
    remembered(service.get_ticket().await);
    clock.advance_ms(1);
    assert!(matches!(
        service.get_ticket().await,
        Err(TokenError::NoUsableTicket(
            RefreshOutcome::WeChatUnavailable(_)
        ))
    ));
    remembered(other.get_ticket().await);
    assert_eq!(fake.calls(GETTICKET), 2);
    clock.advance_ms(TICKET_FAILURE_MEMORY_MS);
    let ticket = service.get_ticket().await.unwrap();
    assert!(valid(&fake, &ticket));
    assert_eq!(other.get_ticket().await.unwrap(), ticket);
    assert_eq!(fake.calls(GETTICKET), 3);
}

#[tokio::test]
async fn ten_requests_while_getticket_stays_busy_make_one_fetch_of_three_attempts_not_thirty_calls()
{
    let (service, _clock, fake) = setup(&[]).await;
    for _ in 0..3 {
        fake.script(GETTICKET, Scripted::ErrCode(-1));
    }
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(service.get_ticket().await.unwrap_err());
    }
    assert!(matches!(
        answers[0],
        TokenError::NoUsableTicket(RefreshOutcome::WeChatBusy {
            errcode: -1,
            attempts: 3
        })
    ));
    assert!(answers[1..].iter().all(|e| matches!(
        e,
        TokenError::NoUsableTicket(RefreshOutcome::RecentlyFailed { failure, .. })
            if failure == "wechat_busy"
    )));
    assert_eq!(fake.calls(GETTICKET), 3);
}

#[tokio::test]
async fn without_a_token_the_ticket_requests_do_not_keep_asking_for_one() {
    let (service, _clock, fake) = setup(&[]).await;
    fake.script(STABLE, Scripted::ErrCode(40164));
    let first = service.get_ticket().await.unwrap_err();
    assert!(matches!(
        first,
        TokenError::NoUsableTicket(RefreshOutcome::TokenUnavailable(_))
    ));
    for _ in 0..9 {
        assert_eq!(
            remembered(service.get_ticket().await).0,
            "token_unavailable"
        );
    }
    assert_eq!((fake.calls(STABLE), fake.calls(GETTICKET)), (1, 0));
    // The token itself is not remembered: the functions that need it still ask.
    service.get().await.unwrap();
    assert_eq!(fake.calls(STABLE), 2);
}

#[tokio::test]
async fn the_schedule_is_not_held_back_by_a_remembered_failure_and_a_45009_is_not_shortened() {
    let (service, _clock, fake) = setup(&[]).await;
    fake.script(GETTICKET, Scripted::HttpStatus(502));
    service.get_ticket().await.unwrap_err();
    remembered(service.get_ticket().await);
    // The scheduled run asks WeChat anyway, and a ticket it stores ends the memory's effect.
    let report = service.on_schedule_ticket().await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::Fresh);
    assert_eq!(fake.calls(GETTICKET), 2);
    assert_eq!(service.get_ticket().await.unwrap(), report.ticket.unwrap());

    // 45009 keeps its own block until midnight, not the 30 s memory.
    let (service, clock, fake) = setup(&[]).await;
    fake.script(GETTICKET, Scripted::ErrCode(45009));
    service.get_ticket().await.unwrap_err();
    clock.advance_ms(TICKET_FAILURE_MEMORY_MS * 10);
    assert!(matches!(
        service.get_ticket().await,
        Err(TokenError::NoUsableTicket(
            RefreshOutcome::QuotaExhausted { .. }
        ))
    ));
    assert_eq!(fake.calls(GETTICKET), 1);
}

#[tokio::test]
async fn the_schedule_keeps_a_ticket_in_use_fresh_and_its_summary_reports_both_without_the_values()
{
    let (service, clock, fake) = setup(&[]).await;
    // No page asked for a ticket yet: the schedule fetches none (an account without JS-SDK
    // permission must not fail every run).
    let summary = invoke(&service, scheduled_event()).await.unwrap();
    assert_eq!(summary["outcome"], "fresh");
    assert_eq!(summary["ticket"]["outcome"], "not_in_use");
    assert_eq!((fake.calls(STABLE), fake.calls(GETTICKET)), (1, 0));

    // The first page's request fetches it; from then on the schedule keeps it.
    let ticket = service.get_ticket().await.unwrap();
    let summary = invoke(&service, scheduled_event()).await.unwrap();
    assert_eq!(summary["outcome"], "already_valid");
    assert_eq!(summary["ticket"]["outcome"], "already_valid");
    assert_eq!(
        summary["ticket"]["ticket"],
        json!(wechat_protocol::secret::fingerprint(ticket.value.expose()))
    );
    assert_eq!(summary["ticket"]["expires_at"], json!(clock.now_s() + 7200));
    assert!(!summary.to_string().contains(ticket.value.expose().as_str()));
    assert_eq!((fake.calls(STABLE), fake.calls(GETTICKET)), (1, 1));

    // Within the margin both are replaced (the stable API hands back the same token until its
    // last 5 minutes; getticket issues a new ticket).
    clock.advance_ms(7_200_000 - 900_000);
    let summary = invoke(&service, scheduled_event()).await.unwrap();
    assert_eq!(summary["outcome"], "unchanged");
    assert_eq!(summary["ticket"]["outcome"], "refreshed");
    let renewed = service.get_ticket().await.unwrap();
    assert_ne!(renewed.value, ticket.value);
    assert!(valid(&fake, &renewed) && valid(&fake, &ticket));

    // A failed ticket refresh fails the scheduled run, so it shows in the error metrics.
    clock.advance_ms(7_200_000 - 900_000);
    fake.script(GETTICKET, Scripted::ErrCode(45009));
    let err = invoke(&service, scheduled_event()).await.unwrap_err();
    assert!(matches!(
        err,
        TokenError::ScheduledTicketRefreshFailed(RefreshOutcome::QuotaExhausted { .. })
    ));
    assert_eq!(err.kind(), "ScheduledRefreshFailed");
}

#[tokio::test]
async fn without_a_token_the_schedule_does_not_try_the_ticket() {
    let (service, clock, fake) = setup(&[]).await;
    service.get_ticket().await.unwrap();
    clock.advance_ms(7_200_000);
    fake.script(STABLE, Scripted::ErrCode(40164));
    let report = service.on_schedule_both().await.unwrap();
    assert_eq!(
        report.token.outcome,
        RefreshOutcome::ConfigError {
            errcode: 40164,
            whitelist_ip: Some(std::net::Ipv4Addr::LOCALHOST.into())
        }
    );
    assert_eq!(
        report.ticket.outcome,
        RefreshOutcome::TokenUnavailable(Box::new(RefreshOutcome::ConfigError {
            errcode: 40164,
            whitelist_ip: Some(std::net::Ipv4Addr::LOCALHOST.into())
        }))
    );
    assert_eq!(report.failure(), Some(&report.token.outcome));
    assert_eq!((fake.calls(STABLE), fake.calls(GETTICKET)), (2, 1));
}

#[tokio::test]
async fn the_refresh_function_answers_get_ticket_and_refresh_ticket() {
    let (service, clock, fake) = setup(&[THROTTLED]).await;
    let got = invoke(&service, json!({"action": "get_ticket"}))
        .await
        .unwrap();
    let ticket = got["jsapi_ticket"].as_str().unwrap().to_string();
    assert!(fake.state().is_valid_ticket(&ticket));
    assert_eq!(got["expires_at"], json!(clock.now_s() + 7200));
    assert_eq!(got.as_object().unwrap().len(), 2, "{got}");

    let stale = json!({"action": "refresh_ticket", "stale_ticket": ticket.clone()});
    // Fetched less than a minute ago: kept, and the answer says so.
    let throttled = invoke(&service, stale.clone()).await.unwrap();
    assert_eq!(throttled["outcome"], "recently_refreshed");
    assert_eq!(throttled["jsapi_ticket"], json!(ticket));
    clock.advance_ms(60_000);
    let refreshed = invoke(&service, stale.clone()).await.unwrap();
    assert_eq!(refreshed["outcome"], "refreshed");
    let fresh = refreshed["jsapi_ticket"].as_str().unwrap().to_string();
    assert_ne!(fresh, ticket);
    let again = invoke(&service, stale).await.unwrap();
    assert_eq!(again["outcome"], "already_replaced");
    assert_eq!(again["jsapi_ticket"], json!(fresh));
    assert_eq!(fake.calls(GETTICKET), 2);
}

/// A ticket source that counts the calls that reach it.
struct Counting<T> {
    inner: T,
    calls: AtomicU64,
}

impl<T: TicketSource> TicketSource for Counting<T> {
    async fn jsapi_ticket(&self) -> Result<JsapiTicket, TokenError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.jsapi_ticket().await
    }
}

#[tokio::test]
async fn a_warm_token_client_hands_out_its_cached_ticket_until_it_nears_expiry() {
    let (service, clock, fake) = setup(&[]).await;
    let source = Arc::new(Counting {
        inner: service,
        calls: AtomicU64::new(0),
    });
    let client = TokenClient::with_clock(source.clone(), Arc::new(clock.clone()));
    let first = client.jsapi_ticket().await.unwrap();
    clock.advance_ms(3_600_000);
    for _ in 0..10 {
        assert_eq!(client.jsapi_ticket().await.unwrap(), first);
    }
    assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    clock.set_ms(first.expires_at_ms - 60_000);
    client.jsapi_ticket().await.unwrap();
    assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        fake.calls(GETTICKET),
        2,
        "the service renewed the expiring ticket"
    );
}

/// What the `jweixin` stand-in posts to the fake, and the fake's answer.
async fn verify(fake: &FakeWeChat, config: Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}{VERIFY_PATH}", fake.base_url()))
        .json(&config)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn wx_config(app_id: &str, ticket: &str, url: &str) -> Value {
    let (nonce, timestamp) = ("Wm3WZYTPz0wzccnW", 1_767_225_600);
    json!({
        "appId": app_id, "timestamp": timestamp, "nonceStr": nonce,
        "signature": jssdk_signature(ticket, nonce, timestamp, url.split('#').next().unwrap()),
        "url": url,
    })
}

#[tokio::test]
async fn the_fake_accepts_signatures_over_its_current_and_previous_ticket_only() {
    let (service, clock, fake) = setup(&[]).await;
    let url = "http://localhost:3000/demo?x=1#section";
    let first = service.get_ticket().await.unwrap();
    let ok = verify(&fake, wx_config(FAKE_APP_ID, first.value.expose(), url)).await;
    assert_eq!(ok, json!({"ok": true}));

    let invalid = json!({"ok": false, "errMsg": INVALID_SIGNATURE});
    let mut forged = wx_config(FAKE_APP_ID, first.value.expose(), url);
    forged["url"] = json!("http://localhost:3000/other");
    assert_eq!(verify(&fake, forged).await, invalid);
    let other_app = wx_config("wx-not-the-fake", first.value.expose(), url);
    assert_eq!(verify(&fake, other_app).await, invalid);
    let unissued = wx_config(FAKE_APP_ID, "A_TICKET_NEVER_ISSUED", url);
    assert_eq!(verify(&fake, unissued).await, invalid);
    assert_eq!(verify(&fake, json!({"appId": FAKE_APP_ID})).await, invalid);
    // jweixin also sends the timestamp as a string.
    let mut as_string = wx_config(FAKE_APP_ID, first.value.expose(), url);
    as_string["timestamp"] = json!("1767225600");
    assert_eq!(verify(&fake, as_string).await, json!({"ok": true}));

    // Two renewals later the first ticket is no longer accepted; the previous one still is.
    clock.advance_ms(7_200_000 - 900_000);
    let second = service.on_schedule_ticket().await.unwrap().ticket.unwrap();
    let ok = verify(&fake, wx_config(FAKE_APP_ID, first.value.expose(), url)).await;
    assert_eq!(ok, json!({"ok": true}), "the previous ticket");
    clock.advance_ms(60_000);
    let third = service
        .refresh_stale_ticket(second.value.expose())
        .await
        .unwrap();
    assert_eq!(third.outcome, RefreshOutcome::Refreshed);
    let old = verify(&fake, wx_config(FAKE_APP_ID, first.value.expose(), url)).await;
    assert_eq!(old, invalid);
    assert_eq!(
        verify(&fake, wx_config(FAKE_APP_ID, second.value.expose(), url)).await,
        json!({"ok": true})
    );
    assert_eq!(lock(&fake.state().jssdk).issued(), 3);
    assert_eq!(
        lock(&fake.state().jssdk).current(),
        third.ticket.as_ref().map(|t| t.value.expose().as_str())
    );
}

#[tokio::test]
async fn the_fake_getticket_checks_the_token_and_the_type_like_wechat() {
    let clock = manual_clock();
    let fake = fake_for(FAKE_APP_ID, &clock).await;
    let http = wechat_api::WeChatHttp::new(fake.base_url(), Duration::from_secs(2)).unwrap();
    let get = |query: Vec<(&'static str, String)>| {
        let http = http.clone();
        async move {
            http.get::<Value>(GETTICKET, &query)
                .await
                .map_err(|e| e.errcode())
        }
    };
    assert_eq!(get(vec![("type", "jsapi".into())]).await, Err(Some(41001)));
    let unknown = vec![("access_token", "forged".into()), ("type", "jsapi".into())];
    assert_eq!(get(unknown).await, Err(Some(40001)));
    let service = service(
        config(&fake, &[]),
        EmbeddedStore::in_memory(),
        clock.clone(),
    );
    let token = service.get().await.unwrap().value.expose().clone();
    let wrong_type = vec![
        ("access_token", token.clone()),
        ("type", "wx_nothing".into()),
    ];
    assert_eq!(get(wrong_type).await, Err(Some(40097)));
    let answer = get(vec![
        ("access_token", token.clone()),
        ("type", "jsapi".into()),
    ])
    .await
    .unwrap();
    assert_eq!(
        (answer["errcode"].clone(), answer["expires_in"].clone()),
        (json!(0), json!(7200))
    );
    clock.advance_ms(7_200_000);
    let expired = vec![("access_token", token), ("type", "jsapi".into())];
    assert_eq!(get(expired).await, Err(Some(42001)));
    assert_eq!(lock(&fake.state().jssdk).issued(), 1);
}

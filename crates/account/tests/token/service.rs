//! The access_token service against the fake WeChat API and the embedded store, on a virtual
//! clock: when it fetches, what each WeChat answer does to the stored token, the quota rules, the
//! lease, a simulated day on the schedule, the `refresh` function's invocations, and the
//! throttle on stale reports.

use std::time::Duration;

use account::clock::Clock;
use account::token::store::TokenStore;
use account::token::{
    RefreshOutcome, RefreshReport, TOKEN_CHECK_PATH, TokenError, next_china_midnight_ms,
};
use serde_json::json;
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::{FAKE_APP_ID, Scripted, lock};
use testkit::harness::tokens::*;
use wechat_api::ApiError;

#[tokio::test]
async fn an_empty_store_gets_one_fresh_stable_token_and_keeps_handing_it_out() {
    let (service, clock, fake) = setup(&[]).await;
    let first = service.get().await.unwrap();
    assert!(accepted(&fake, &first));
    assert_eq!(first.expires_at_ms, clock.now_ms() + 7_200_000);
    clock.advance_ms(3_600_000);
    assert_eq!(service.get().await.unwrap(), first);
    assert_eq!(fake.calls(STABLE), 1);
    assert_eq!(fake.calls(CLASSIC), 0);
}

#[tokio::test]
async fn the_schedule_leaves_a_token_alone_until_it_is_within_the_margin() {
    let (service, clock, fake) = setup(&[]).await;
    assert_eq!(
        service.on_schedule().await.unwrap().outcome,
        RefreshOutcome::Fresh
    );
    clock.advance_ms(7_200_000 - 900_000 - 1);
    assert_eq!(
        service.on_schedule().await.unwrap().outcome,
        RefreshOutcome::AlreadyValid
    );
    assert_eq!(fake.calls(STABLE), 1);
    clock.advance_ms(1);
    // Within the margin: the stable API hands back the same token until its last 5 minutes.
    let unchanged = service.on_schedule().await.unwrap();
    assert_eq!(unchanged.outcome, RefreshOutcome::Unchanged);
    assert_eq!(fake.calls(STABLE), 2);
}

#[tokio::test]
async fn the_stable_api_renews_in_the_last_five_minutes_and_the_old_token_keeps_working() {
    let (service, clock, fake) = setup(&[]).await;
    let first = service.on_schedule().await.unwrap().token.unwrap();
    clock.advance_ms(7_200_000 - 600_000);
    let same = service.on_schedule().await.unwrap();
    assert_eq!(same.outcome, RefreshOutcome::Unchanged);
    assert_eq!(same.token.as_ref(), Some(&first));
    clock.advance_ms(300_000);
    let renewed = service.on_schedule().await.unwrap();
    assert_eq!(renewed.outcome, RefreshOutcome::Refreshed);
    let second = renewed.token.unwrap();
    assert_ne!(second.value, first.value);
    assert_eq!(second.expires_at_ms, clock.now_ms() + 7_200_000);
    assert!(accepted(&fake, &first) && accepted(&fake, &second));
    assert_eq!(service.get().await.unwrap(), second);
}

#[tokio::test]
async fn the_classic_api_is_used_when_configured_and_replaces_the_token_within_the_margin() {
    let (service, clock, fake) = setup(&[("WECHAT_TOKEN_API", "classic")]).await;
    let first = service.get().await.unwrap();
    clock.advance_ms(7_200_000 - 900_000);
    let refreshed = service.on_schedule().await.unwrap();
    assert_eq!(refreshed.outcome, RefreshOutcome::Refreshed);
    let second = refreshed.token.unwrap();
    assert_ne!(second.value, first.value);
    assert_eq!((fake.calls(CLASSIC), fake.calls(STABLE)), (2, 0));
    // WeChat keeps the previous classic token working for 5 more minutes.
    assert!(accepted(&fake, &first));
    clock.advance_ms(300_000);
    assert!(!accepted(&fake, &first) && accepted(&fake, &second));
}

#[tokio::test]
async fn a_stale_report_forces_one_new_stable_token_and_repeated_reports_fetch_nothing() {
    let (service, _clock, fake) = setup(&[]).await;
    let stale = service.get().await.unwrap();
    let refreshed = service.refresh_stale(stale.value.expose()).await.unwrap();
    assert_eq!(refreshed.outcome, RefreshOutcome::Refreshed);
    let fresh = refreshed.token.unwrap();
    assert_ne!(fresh.value, stale.value);
    assert!(
        !accepted(&fake, &stale),
        "a forced refresh kills the old token"
    );
    assert!(accepted(&fake, &fresh));
    let again = service.refresh_stale(stale.value.expose()).await.unwrap();
    assert_eq!(again.outcome, RefreshOutcome::AlreadyReplaced);
    assert_eq!(again.token, Some(fresh));
    assert_eq!(fake.calls(STABLE), 2);
}

#[tokio::test]
async fn forced_refreshes_are_kept_30_s_apart_and_to_20_a_day_across_the_table() {
    let (service, clock, fake) = setup(&[]).await;
    let mut current = service.get().await.unwrap();
    for n in 1..=20 {
        let report = service.refresh_stale(current.value.expose()).await.unwrap();
        assert_eq!(
            report.outcome,
            RefreshOutcome::Refreshed,
            "forced refresh {n}"
        );
        current = report.token.unwrap();
        if n == 20 {
            break;
        }
        // Reported stale again at once: too soon, and WeChat is not even asked.
        clock.advance_ms(29_999);
        let calls = fake.calls(STABLE);
        let too_soon = service.refresh_stale(current.value.expose()).await.unwrap();
        assert_eq!(
            too_soon.outcome,
            RefreshOutcome::ForceRefreshLimited {
                until_ms: clock.now_ms() + 1
            }
        );
        assert_eq!(too_soon.token.as_ref(), Some(&current));
        assert_eq!(fake.calls(STABLE), calls);
        clock.advance_ms(1);
    }
    // The 21st, even 30 s later, waits for the next day (China time).
    clock.advance_ms(30_000);
    let calls = fake.calls(STABLE);
    let exhausted = service.refresh_stale(current.value.expose()).await.unwrap();
    let midnight = next_china_midnight_ms(clock.now_ms());
    assert_eq!(
        exhausted.outcome,
        RefreshOutcome::ForceRefreshLimited { until_ms: midnight }
    );
    assert_eq!(fake.calls(STABLE), calls, "the 21st is never sent");
    clock.set_ms(midnight);
    let current = service.get().await.unwrap();
    let next_day = service.refresh_stale(current.value.expose()).await.unwrap();
    assert_eq!(next_day.outcome, RefreshOutcome::Refreshed);
}

/// A stored token with 200 s left (so the schedule fetches and a success would replace it), then
/// `answers` scripted for the next calls to the stable endpoint, then one scheduled run.
/// Returns the run's report, the calls it made, and whether the stored token stayed as it was.
async fn scheduled_run_after(answers: Vec<Scripted>) -> (RefreshReport, u64, bool) {
    let (service, clock, fake) = setup(&[]).await;
    service.get().await.unwrap();
    clock.advance_ms(7_000_000);
    let before = service.store().read_token(FAKE_APP_ID).await.unwrap();
    for answer in answers {
        fake.script(STABLE, answer);
    }
    let report = service.on_schedule().await.unwrap();
    let after = service.store().read_token(FAKE_APP_ID).await.unwrap();
    let kept = before == after;
    if kept {
        let old = before.unwrap();
        assert_eq!(
            report.token.as_ref().map(|t| &t.value),
            Some(&old.access_token),
            "the old token is still handed out"
        );
    }
    (report, fake.calls(STABLE) - 1, kept)
}

#[tokio::test]
async fn system_busy_is_retried_three_times_in_all_and_the_old_token_stays() {
    let (report, calls, kept) = scheduled_run_after(vec![Scripted::ErrCode(-1); 3]).await;
    assert_eq!(
        report.outcome,
        RefreshOutcome::WeChatBusy {
            errcode: -1,
            attempts: 3
        }
    );
    assert_eq!(calls, 3);
    assert!(kept);
}

#[tokio::test]
async fn one_system_busy_answer_is_retried_and_then_the_token_is_refreshed() {
    let (report, calls, kept) = scheduled_run_after(vec![Scripted::ErrCode(-1)]).await;
    assert_eq!(report.outcome, RefreshOutcome::Refreshed);
    assert_eq!(calls, 2);
    assert!(!kept);
}

#[tokio::test]
async fn minute_quota_answers_are_retried_boundedly() {
    let (report, calls, kept) = scheduled_run_after(vec![Scripted::ErrCode(45011); 5]).await;
    assert_eq!(
        report.outcome,
        RefreshOutcome::WeChatBusy {
            errcode: 45011,
            attempts: 3
        }
    );
    assert_eq!(calls, 3);
    assert!(kept);
}

#[tokio::test]
async fn configuration_errors_are_not_retried_and_never_replace_the_token() {
    for errcode in [40001, 40013, 40125, 40164, 41004, 89503] {
        let (report, calls, kept) = scheduled_run_after(vec![Scripted::ErrCode(errcode)]).await;
        // The fake answers 40164 as WeChat does, naming the caller (here loopback).
        let whitelist_ip = (errcode == 40164).then(|| std::net::Ipv4Addr::LOCALHOST.into());
        assert_eq!(
            report.outcome,
            RefreshOutcome::ConfigError {
                errcode,
                whitelist_ip
            }
        );
        assert_eq!(calls, 1, "errcode {errcode}");
        assert!(kept, "errcode {errcode}");
    }
}

#[tokio::test]
async fn http_errors_timeouts_and_malformed_answers_are_reported_and_the_token_stays() {
    let (report, calls, kept) = scheduled_run_after(vec![Scripted::HttpStatus(500)]).await;
    assert_eq!(
        report.outcome,
        RefreshOutcome::WeChatUnavailable(ApiError::HttpStatus(500))
    );
    assert_eq!((calls, kept), (1, true));

    let (report, calls, kept) =
        scheduled_run_after(vec![Scripted::Hang(Duration::from_secs(3))]).await;
    assert_eq!(
        report.outcome,
        RefreshOutcome::WeChatUnavailable(ApiError::Timeout)
    );
    assert_eq!((calls, kept), (1, true));

    let (report, calls, kept) = scheduled_run_after(vec![Scripted::Malformed]).await;
    assert!(matches!(
        report.outcome,
        RefreshOutcome::WeChatUnavailable(ApiError::Malformed(_))
    ));
    assert_eq!((calls, kept), (1, true));
}

#[tokio::test]
async fn daily_quota_exhaustion_stops_every_instance_from_calling_until_midnight_china_time() {
    let clock = manual_clock();
    let fake = fake_for(FAKE_APP_ID, &clock).await;
    let store = EmbeddedStore::in_memory();
    let first = service(config(&fake, &[]), store.clone(), clock.clone());
    // A second instance over the same table.
    let second = service(config(&fake, &[]), store, clock.clone());
    fake.script(STABLE, Scripted::ErrCode(45009));
    let midnight = next_china_midnight_ms(clock.now_ms());
    let report = first.on_schedule().await.unwrap();
    assert_eq!(
        report.outcome,
        RefreshOutcome::QuotaExhausted { until_ms: midnight }
    );
    assert_eq!(report.token, None);
    clock.set_ms(midnight - 1);
    match second.get().await {
        Err(TokenError::NoUsableToken(RefreshOutcome::QuotaExhausted { until_ms })) => {
            assert_eq!(until_ms, midnight)
        }
        other => panic!("expected the quota block, got {other:?}"),
    }
    assert_eq!(fake.calls(STABLE), 1, "nobody called WeChat again");
    clock.set_ms(midnight);
    assert_eq!(
        second.on_schedule().await.unwrap().outcome,
        RefreshOutcome::Fresh
    );
    assert_eq!(fake.calls(STABLE), 2);
}

#[tokio::test]
async fn a_45009_on_a_forced_refresh_blocks_forced_refreshes_only() {
    let (service, clock, fake) = setup(&[]).await;
    let token = service.get().await.unwrap();
    fake.script(STABLE, Scripted::ErrCode(45009));
    let report = service.refresh_stale(token.value.expose()).await.unwrap();
    assert_eq!(
        report.outcome,
        RefreshOutcome::ForceRefreshLimited {
            until_ms: next_china_midnight_ms(clock.now_ms())
        }
    );
    assert_eq!(report.token, Some(token));
    clock.advance_ms(7_200_000);
    assert_eq!(
        service.on_schedule().await.unwrap().outcome,
        RefreshOutcome::Fresh,
        "normal-mode fetches still work"
    );
}

#[tokio::test]
async fn wrong_credentials_are_configuration_errors_like_wechat_answers_them() {
    let clock = manual_clock();
    let fake = fake_for(FAKE_APP_ID, &clock).await;
    let cases = [
        (vec![("WECHAT_APP_ID", "wx0000000000000bad")], 40013),
        (vec![("WECHAT_APP_SECRET", "not-the-secret")], 40125),
        (
            vec![
                ("WECHAT_APP_SECRET", "not-the-secret"),
                ("WECHAT_TOKEN_API", "classic"),
            ],
            40001,
        ),
    ];
    for (extra, errcode) in cases {
        let service = service(
            config(&fake, &extra),
            EmbeddedStore::in_memory(),
            clock.clone(),
        );
        let report = service.on_schedule().await.unwrap();
        assert_eq!(
            report.outcome,
            RefreshOutcome::ConfigError {
                errcode,
                whitelist_ip: None
            }
        );
        let err = service.get().await.unwrap_err();
        assert!(!err.to_string().contains("not-the-secret"));
        assert!(!format!("{err:?} {report:?}").contains("not-the-secret"));
    }
}

#[tokio::test]
async fn a_dead_lease_holder_is_taken_over_after_its_lease_and_never_before() {
    let (service, clock, fake) = setup(&[]).await;
    dead_lease_holder_is_taken_over_only_after_its_lease(&service, &clock, &fake).await;
}

#[tokio::test]
async fn a_virtual_day_on_the_schedule_never_serves_an_expired_token_stable_api() {
    let (service, clock, fake) = setup(&[]).await;
    let calls = simulate_a_day_on_the_schedule(&service, &clock, &fake, STABLE).await;
    // Three calls per token lifetime: two answered with the same token, the last renewing it.
    assert!(calls >= 30, "{calls}");
}

#[tokio::test]
async fn a_virtual_day_on_the_schedule_never_serves_an_expired_token_classic_api() {
    let (service, clock, fake) = setup(&[("WECHAT_TOKEN_API", "classic")]).await;
    let calls = simulate_a_day_on_the_schedule(&service, &clock, &fake, CLASSIC).await;
    // One call per token lifetime less the margin: 24 h / (7200 s - 900 s) rounded up, plus one.
    assert!(calls <= 15, "{calls}");
}

#[tokio::test]
async fn the_refresh_function_answers_get_refresh_and_the_schedule() {
    let (service, clock, fake) = setup(&[]).await;
    let got = invoke(&service, json!({"action": "get"})).await.unwrap();
    let token = got["access_token"].as_str().unwrap().to_string();
    assert!(fake.state().is_valid_token(&token));
    assert_eq!(got["expires_at"], json!(clock.now_s() + 7200));

    let refreshed = invoke(
        &service,
        json!({"action": "refresh", "stale_token": token.clone()}),
    )
    .await
    .unwrap();
    assert_eq!(refreshed["outcome"], "refreshed");
    let fresh = refreshed["access_token"].as_str().unwrap().to_string();
    assert_ne!(fresh, token);

    let scheduled = json!({
        "version": "0", "id": "c4f1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/refresh"], "detail": {}
    });
    let summary = invoke(&service, scheduled.clone()).await.unwrap();
    assert_eq!(summary["outcome"], "already_valid");
    assert_eq!(
        summary["token"],
        json!(wechat_protocol::secret::fingerprint(&fresh))
    );
    assert!(
        !summary.to_string().contains(&fresh),
        "the summary never carries the token"
    );

    let err = invoke(&service, json!({"action": "rotate"}))
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::BadInvocation(_)));

    // A scheduled run that fails is an invocation error, so it shows in the error metrics.
    clock.advance_ms(7_200_000 - 200_000);
    fake.script(STABLE, Scripted::ErrCode(40164));
    let err = invoke(&service, scheduled).await.unwrap_err();
    assert!(matches!(
        err,
        TokenError::ScheduledRefreshFailed(RefreshOutcome::ConfigError {
            errcode: 40164,
            whitelist_ip: Some(_)
        })
    ));
    assert!(err.to_string().contains("whitelist"));
    assert!(err.to_string().contains("from IP 127.0.0.1"), "{err}");
}

#[tokio::test]
async fn the_fake_refuses_forced_refreshes_30_s_apart_and_after_20_a_day() {
    // The fake itself enforces WeChat's limits, so a service that ignored them would be caught.
    let clock = manual_clock();
    let fake = fake_for(FAKE_APP_ID, &clock).await;
    let http = wechat_api::WeChatHttp::new(fake.base_url(), Duration::from_secs(2)).unwrap();
    let force = json!({
        "grant_type": "client_credential", "appid": FAKE_APP_ID,
        "secret": testkit::fake_wechat::FAKE_APP_SECRET, "force_refresh": true
    });
    http.post_json::<serde_json::Value>(STABLE, &[], &force)
        .await
        .unwrap();
    let err = http
        .post_json::<serde_json::Value>(STABLE, &[], &force)
        .await
        .unwrap_err();
    assert_eq!(err.errcode(), Some(45011));
    for _ in 1..20 {
        clock.advance_ms(30_000);
        http.post_json::<serde_json::Value>(STABLE, &[], &force)
            .await
            .unwrap();
    }
    clock.advance_ms(30_000);
    let err = http
        .post_json::<serde_json::Value>(STABLE, &[], &force)
        .await
        .unwrap_err();
    assert_eq!(err.errcode(), Some(45009));
    assert_eq!(lock(&fake.state().token).issued(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresher_waiting_on_a_holder_that_gives_up_does_not_fetch_itself() {
    let clock = manual_clock();
    let fake = fake_for(FAKE_APP_ID, &clock).await;
    let store = CountingStore::new(EmbeddedStore::in_memory());
    let service = std::sync::Arc::new(service(config(&fake, &[]), store.clone(), clock.clone()));
    let until = clock.now_ms() + 1000;
    store
        .try_acquire_lease(
            FAKE_APP_ID,
            "holder-whose-fetch-failed",
            clock.now_ms(),
            until,
        )
        .await
        .unwrap();
    let waiter = tokio::spawn({
        let service = service.clone();
        async move { service.on_schedule().await }
    });
    // Once the waiter has read the token twice it is polling the lease holder; now give up.
    while store.token_reads() < 2 {
        tokio::task::yield_now().await;
    }
    store
        .release_lease(FAKE_APP_ID, "holder-whose-fetch-failed")
        .await
        .unwrap();
    let report = waiter.await.unwrap().unwrap();
    assert_eq!(report.outcome, RefreshOutcome::OtherRefresherFinished);
    assert_eq!(report.token, None);
    assert_eq!(
        fake.calls(STABLE),
        0,
        "no fetch behind a failed holder's back"
    );
}

#[tokio::test]
async fn fifty_rounds_of_get_and_stale_report_in_classic_mode_cause_a_handful_of_fetches() {
    let (service, clock, fake) = setup(&[("WECHAT_TOKEN_API", "classic"), THROTTLED]).await;
    for _ in 0..50 {
        let token = service.get().await.unwrap();
        let report = service.refresh_stale(token.value.expose()).await.unwrap();
        assert!(!report.outcome.is_failure(), "{:?}", report.outcome);
        assert!(report.token.is_some_and(|t| accepted(&fake, &t)));
        // An attacker (or a buggy caller) as fast as the network allows: a round every 5 s.
        clock.advance_ms(5_000);
    }
    // 250 s of rounds: the first fetch, then one per minute at most.
    let fetches = fake.calls(CLASSIC);
    assert!(fetches <= 5, "{fetches} fetches");
    assert_eq!(fake.calls(STABLE), 0);
}

#[tokio::test]
async fn a_stale_report_of_a_token_fetched_under_a_minute_ago_that_wechat_accepts_fetches_nothing_and_says_so()
 {
    let (service, clock, fake) = setup(&[THROTTLED]).await;
    let token = service.get().await.unwrap();
    clock.advance_ms(59_999);
    // Checked with WeChat (one call that spends no token quota): it still accepts the token.
    let report = service.refresh_stale(token.value.expose()).await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::StillValid);
    assert_eq!(report.token.as_ref(), Some(&token));
    assert!(!report.outcome.is_failure());
    // Through the refresh function: the current token, and the outcome (from the same check).
    let answer = invoke(
        &service,
        json!({"action": "refresh", "stale_token": token.value.expose()}),
    )
    .await
    .unwrap();
    assert_eq!(answer["outcome"], "still_valid");
    assert_eq!(answer["access_token"], json!(token.value.expose()));
    assert_eq!(fake.calls(STABLE), 1);
    assert_eq!(fake.calls(TOKEN_CHECK_PATH), 1);
    clock.advance_ms(1);
    let refreshed = service.refresh_stale(token.value.expose()).await.unwrap();
    assert_eq!(refreshed.outcome, RefreshOutcome::Refreshed);
    assert_eq!(fake.calls(STABLE), 2);
}

#[tokio::test]
async fn a_stale_report_of_a_token_that_is_not_current_returns_the_current_one_under_the_throttle()
{
    let (service, clock, fake) = setup(&[("WECHAT_TOKEN_API", "classic"), THROTTLED]).await;
    let old = service.get().await.unwrap();
    clock.advance_ms(60_000);
    let current = service.refresh_stale(old.value.expose()).await.unwrap();
    assert_eq!(current.outcome, RefreshOutcome::Refreshed);
    let current = current.token.unwrap();
    // The new token is seconds old, and the report names the old one: it is already replaced.
    let report = service.refresh_stale(old.value.expose()).await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::AlreadyReplaced);
    assert_eq!(report.token, Some(current));
    assert_eq!(fake.calls(CLASSIC), 2);
}

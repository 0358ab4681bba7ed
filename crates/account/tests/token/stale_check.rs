//! The stale-report guard tells a true report from a false one (issue 16, item 1): a report of a
//! token fetched less than `TOKEN_STALE_MIN_AGE_SECS` ago is checked with one call that spends no
//! token quota (`GET /cgi-bin/get_api_domain_ip`). A token a fetch outside the stack replaced is
//! repaired on the first report (`confirmed_stale`), with one fetch; a flood of false reports
//! (`still_valid`) fetches nothing and makes at most one check per 5 s. And 40001 reads per
//! context: a wrong AppSecret for the token fetch, a replaced token for a call made with one.

use std::sync::Arc;
use std::time::Duration;

use account::clock::ManualClock;
use account::customer_service::{CustomMessage, CustomerService, SendOutcome};
use account::menu;
use account::token::{
    CallError, RefreshOutcome, RetryPolicy, STALE_CHECK_MEMORY_MS, TOKEN_CHECK_PATH, TokenClient,
    TokenError, TokenService,
};
use serde_json::json;
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::custom::PATH as CUSTOM_SEND;
use testkit::fake_wechat::sns::FAKE_OPENID;
use testkit::fake_wechat::{FAKE_APP_ID, FakeWeChat, Scripted, lock};
use testkit::harness::Logs;
use testkit::harness::tokens::*;
use wechat_api::WeChatHttp;

const CLASSIC_API: (&str, &str) = ("WECHAT_TOKEN_API", "classic");
const MENU_GET: &str = "/cgi-bin/menu/get";
/// What 40001 means answered to a call made with an access_token.
const REPLACED: &str = "the access_token is invalid or was replaced by a newer fetch elsewhere (another server or tool using the AppSecret)";
/// What 40001 means answered to the token fetch.
const WRONG_SECRET: &str = "the AppSecret is wrong";

type Service = TokenService<EmbeddedStore>;
type Source = Arc<CountingSource<Arc<Service>>>;

/// The service in process under the production throttle (60 s), the token client over it, and a
/// customer-service sender, against the fake WeChat API on a virtual clock.
struct Setup {
    clock: ManualClock,
    fake: FakeWeChat,
    service: Arc<Service>,
    source: Source,
    tokens: Arc<TokenClient<Source>>,
    http: WeChatHttp,
    cs: CustomerService<Source>,
}

async fn setup(extra: &[(&str, &str)]) -> Setup {
    let clock = manual_clock();
    let fake = fake_for(FAKE_APP_ID, &clock).await;
    let mut env = vec![THROTTLED];
    env.extend_from_slice(extra);
    let service = Arc::new(service(
        config(&fake, &env),
        EmbeddedStore::in_memory(),
        clock.clone(),
    ));
    let source = Arc::new(CountingSource::new(service.clone()));
    let tokens = Arc::new(TokenClient::with_clock(
        source.clone(),
        Arc::new(clock.clone()),
    ));
    let http = WeChatHttp::new(fake.base_url(), Duration::from_millis(500)).unwrap();
    let cs = CustomerService::new(http.clone(), tokens.clone()).with_retry(RetryPolicy {
        attempts: 1,
        backoff: Duration::from_millis(1),
    });
    Setup {
        clock,
        fake,
        service,
        source,
        tokens,
        http,
        cs,
    }
}

impl Setup {
    fn checks(&self) -> u64 {
        self.fake.calls(TOKEN_CHECK_PATH)
    }
}

#[tokio::test]
async fn classic_a_token_replaced_outside_the_stack_right_after_its_fetch_is_repaired_on_the_first_report()
 {
    let (logs, _guard) = Logs::capture_at(tracing::Level::INFO);
    let s = setup(&[CLASSIC_API]).await;
    let old = s.tokens.current().await.unwrap();
    assert_eq!(s.fake.calls(CLASSIC), 1);
    // Ten seconds later someone fetches a token with the AppSecret (an old server, Postman), and
    // WeChat stops accepting the stored one.
    s.clock.advance_ms(10_000);
    lock(&s.fake.state().token).revoke_all();

    let outcome =
        s.cs.send(&CustomMessage::text(FAKE_OPENID, "late answer"))
            .await;
    assert_eq!(outcome, SendOutcome::Sent, "the late answer is not lost");
    assert_eq!(
        s.fake.calls(CUSTOM_SEND),
        2,
        "the rejected send and one resend"
    );
    assert_eq!(s.source.stale_reports(), 1);
    assert_eq!(s.fake.calls(CLASSIC), 2, "exactly one new token fetch");
    assert_eq!(s.checks(), 1, "one check call");
    let new = s.tokens.current().await.unwrap();
    assert_ne!(new.value, old.value);
    assert!(accepted(&s.fake, &new));

    // More reports of the replaced token (other workers) fetch nothing more.
    let again = s.service.refresh_stale(old.value.expose()).await.unwrap();
    assert_eq!(again.outcome, RefreshOutcome::AlreadyReplaced);
    assert_eq!((s.fake.calls(CLASSIC), s.checks()), (2, 1));

    let text = logs.text();
    let confirmed: Vec<_> = text
        .lines()
        .filter(|line| line.contains("a token fetch outside this service replaced it"))
        .collect();
    assert_eq!(confirmed.len(), 1, "logged once: {text}");
    assert!(confirmed[0].contains("confirmed_stale"), "{}", confirmed[0]);
    assert!(
        confirmed[0].contains(&old.fingerprint()),
        "{}",
        confirmed[0]
    );
    assert!(confirmed[0].contains(REPLACED), "{}", confirmed[0]);
    for token in [&old, &new] {
        assert!(
            !text.contains(token.value.expose().as_str()),
            "a token in the logs"
        );
    }
    assert!(!text.contains(WRONG_SECRET), "{text}");
}

#[tokio::test]
async fn stable_a_token_replaced_by_a_forced_refresh_elsewhere_is_repaired_for_a_menu_read() {
    let s = setup(&[]).await;
    let old = s.tokens.current().await.unwrap();
    s.clock.advance_ms(1_000);
    // Another system's `force_refresh: true` invalidates the stored token at once.
    lock(&s.fake.state().token).revoke_all();

    assert_eq!(menu::fetch(&s.http, &s.tokens).await.unwrap(), None);
    assert_eq!(s.fake.calls(MENU_GET), 2);
    assert_eq!(s.source.stale_reports(), 1);
    assert_eq!(s.fake.calls(STABLE), 2, "one fetch, one forced refresh");
    assert_eq!(s.checks(), 1);
    let new = s.tokens.current().await.unwrap();
    assert_ne!(new.value, old.value);
    assert!(accepted(&s.fake, &new));
}

#[tokio::test]
async fn the_refresh_function_names_a_confirmed_stale_token_and_answers_the_new_one() {
    let s = setup(&[CLASSIC_API]).await;
    let old = s.service.get().await.unwrap();
    lock(&s.fake.state().token).revoke_all();
    let answer = invoke(
        &s.service,
        json!({"action": "refresh", "stale_token": old.value.expose()}),
    )
    .await
    .unwrap();
    assert_eq!(answer["outcome"], "confirmed_stale");
    let new = answer["access_token"].as_str().unwrap();
    assert_ne!(new, old.value.expose());
    assert!(s.fake.state().is_valid_token(new));
    assert_eq!((s.fake.calls(CLASSIC), s.checks()), (2, 1));
}

#[tokio::test]
async fn a_flood_of_false_stale_reports_fetches_nothing_and_checks_at_most_once_per_5_s() {
    let (logs, _guard) = Logs::capture_at(tracing::Level::INFO);
    let s = setup(&[CLASSIC_API]).await;
    let token = s.service.get().await.unwrap();
    // A hundred reports at once (on one instance): one check, answered for all.
    let mut reports = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let service = s.service.clone();
        let stale = token.value.expose().clone();
        reports.spawn(async move { service.refresh_stale(&stale).await.unwrap() });
    }
    while let Some(report) = reports.join_next().await {
        let report = report.unwrap();
        assert_eq!(report.outcome, RefreshOutcome::StillValid);
        assert!(!report.outcome.is_failure());
        assert_eq!(report.token.as_ref(), Some(&token));
    }
    assert_eq!(s.checks(), 1);
    // Then one report a second (ten each) until the token is a minute old: a check every 5 s.
    for second in 1..60 {
        s.clock.set_ms(T0_MS + second * 1_000);
        for _ in 0..10 {
            let report = s.service.refresh_stale(token.value.expose()).await.unwrap();
            assert_eq!(report.outcome, RefreshOutcome::StillValid, "at {second} s");
        }
    }
    assert_eq!(s.checks(), 1 + 59 / (STALE_CHECK_MEMORY_MS as u64 / 1000));
    assert_eq!(s.fake.calls(CLASSIC), 1, "no token fetched");
    // Through the refresh function: the same token, and the outcome.
    let answer = invoke(
        &s.service,
        json!({"action": "refresh", "stale_token": token.value.expose()}),
    )
    .await
    .unwrap();
    assert_eq!(answer["outcome"], "still_valid");
    assert_eq!(answer["access_token"], json!(token.value.expose()));
    assert_eq!(s.fake.calls(CLASSIC), 1);
    // One log line per check, none per remembered answer, and never the token.
    let text = logs.text();
    let refused = text
        .lines()
        .filter(|line| line.contains("a stale report of a token WeChat still accepts"))
        .count() as u64;
    assert_eq!(refused, s.checks(), "{text}");
    assert!(!text.contains(token.value.expose().as_str()));
}

#[tokio::test]
async fn a_false_report_from_a_call_returns_its_error_without_a_fetch_and_names_the_token_not_the_secret()
 {
    let (logs, _guard) = Logs::capture_at(tracing::Level::INFO);
    let s = setup(&[]).await;
    s.tokens.current().await.unwrap();
    // WeChat answers 40001 once although the token works (a glitch, or a forged answer).
    s.fake.script(CUSTOM_SEND, Scripted::ErrCode(40001));
    let outcome = s.cs.send(&CustomMessage::text(FAKE_OPENID, "x")).await;
    assert!(
        matches!(outcome, SendOutcome::Rejected { errcode: 40001, .. }),
        "{outcome:?}"
    );
    assert_eq!(
        s.fake.calls(CUSTOM_SEND),
        1,
        "no resend with the same token"
    );
    assert_eq!((s.fake.calls(STABLE), s.checks()), (1, 1));
    let text = outcome.to_string();
    assert!(text.contains(REPLACED), "{text}");
    assert!(!text.contains(WRONG_SECRET), "{text}");
    let logged = logs.text();
    assert!(logged.contains(REPLACED), "{logged}");
    assert!(!logged.contains(WRONG_SECRET), "{logged}");
}

#[tokio::test]
async fn after_a_repair_a_report_of_the_new_token_within_5_s_is_not_checked_then_is() {
    let s = setup(&[CLASSIC_API]).await;
    let old = s.service.get().await.unwrap();
    lock(&s.fake.state().token).revoke_all();
    let repaired = s.service.refresh_stale(old.value.expose()).await.unwrap();
    assert_eq!(repaired.outcome, RefreshOutcome::ConfirmedStale);
    let new = repaired.token.unwrap();
    // The new token reported at once: this instance checked a token less than 5 s ago, so this
    // one is kept unchecked (a fight with a fetcher elsewhere costs at most a fetch per 5 s).
    s.clock.advance_ms(STALE_CHECK_MEMORY_MS - 1);
    let kept = s.service.refresh_stale(new.value.expose()).await.unwrap();
    assert_eq!(kept.outcome, RefreshOutcome::RecentlyRefreshed);
    assert_eq!((s.fake.calls(CLASSIC), s.checks()), (2, 1));
    s.clock.advance_ms(1);
    let checked = s.service.refresh_stale(new.value.expose()).await.unwrap();
    assert_eq!(checked.outcome, RefreshOutcome::StillValid);
    assert_eq!(checked.token, Some(new));
    assert_eq!((s.fake.calls(CLASSIC), s.checks()), (2, 2));
}

#[tokio::test]
async fn a_check_without_a_verdict_keeps_the_token_and_is_not_repeated_for_5_s() {
    let s = setup(&[CLASSIC_API]).await;
    let token = s.service.get().await.unwrap();
    s.fake.script(TOKEN_CHECK_PATH, Scripted::HttpStatus(502));
    for _ in 0..3 {
        let report = s.service.refresh_stale(token.value.expose()).await.unwrap();
        assert_eq!(report.outcome, RefreshOutcome::RecentlyRefreshed);
        assert_eq!(report.token.as_ref(), Some(&token));
    }
    assert_eq!((s.fake.calls(CLASSIC), s.checks()), (1, 1));
    s.clock.advance_ms(STALE_CHECK_MEMORY_MS);
    let report = s.service.refresh_stale(token.value.expose()).await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::StillValid);
    assert_eq!((s.fake.calls(CLASSIC), s.checks()), (1, 2));
}

#[tokio::test]
async fn two_instances_confirming_the_same_overwrite_fetch_one_token() {
    let clock = manual_clock();
    let fake = fake_for(FAKE_APP_ID, &clock).await;
    let store = EmbeddedStore::in_memory();
    let config = config(&fake, &[CLASSIC_API, THROTTLED]);
    let first = service(config.clone(), store.clone(), clock.clone());
    let second = service(config, store, clock.clone());
    let old = first.get().await.unwrap();
    lock(&fake.state().token).revoke_all();
    let (a, b) = tokio::join!(
        first.refresh_stale(old.value.expose()),
        second.refresh_stale(old.value.expose())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut outcomes = [a.outcome.code(), b.outcome.code()];
    outcomes.sort_unstable();
    assert!(
        outcomes == ["already_replaced", "confirmed_stale"]
            || outcomes == ["confirmed_stale", "lost_race_used_winner"],
        "{outcomes:?}"
    );
    assert_eq!(a.token, b.token);
    assert!(accepted(&fake, &a.token.unwrap()));
    assert_eq!(fake.calls(CLASSIC), 2, "one fetch for both");
    assert!(fake.calls(TOKEN_CHECK_PATH) <= 2);
}

#[tokio::test]
async fn a_report_of_a_token_older_than_the_throttle_is_replaced_without_a_check() {
    let s = setup(&[CLASSIC_API]).await;
    let token = s.service.get().await.unwrap();
    s.clock.advance_ms(60_000);
    let report = s.service.refresh_stale(token.value.expose()).await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::Refreshed);
    assert_eq!((s.fake.calls(CLASSIC), s.checks()), (2, 0));
}

#[tokio::test]
async fn forty_thousand_one_reads_as_a_wrong_appsecret_only_for_the_token_fetch() {
    // The token fetch: WeChat's classic endpoint answers 40001 to a wrong AppSecret.
    let (logs, _guard) = Logs::capture_at(tracing::Level::INFO);
    let clock = manual_clock();
    let fake = fake_for(FAKE_APP_ID, &clock).await;
    let wrong = service(
        config(
            &fake,
            &[CLASSIC_API, ("WECHAT_APP_SECRET", "not-the-secret")],
        ),
        EmbeddedStore::in_memory(),
        clock.clone(),
    );
    let err = wrong.get().await.unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::NoUsableToken(RefreshOutcome::ConfigError {
                errcode: 40001,
                whitelist_ip: None
            })
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(WRONG_SECRET), "{text}");
    assert!(!text.contains("replaced"), "{text}");
    let logged = logs.text();
    assert!(logged.contains(WRONG_SECRET), "{logged}");
    assert!(!logged.contains(REPLACED), "{logged}");

    // A call made with the token: a menu read rejected on both tokens.
    let s = setup(&[]).await;
    s.fake.script(MENU_GET, Scripted::ErrCode(40001));
    s.fake.script(MENU_GET, Scripted::ErrCode(40001));
    let err = menu::fetch(&s.http, &s.tokens).await.unwrap_err();
    assert!(
        matches!(&err, CallError::Api(e) if e.errcode() == Some(40001)),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(REPLACED), "{text}");
    assert!(!text.contains(WRONG_SECRET), "{text}");

    // The ticket asked with a token WeChat rejects even after the refresh.
    let rejected = RefreshOutcome::AccessTokenRejected { errcode: 40001 }.to_string();
    assert!(rejected.contains(REPLACED), "{rejected}");
    assert!(!rejected.contains(WRONG_SECRET), "{rejected}");
}

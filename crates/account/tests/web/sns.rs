//! The sns client against the fake WeChat API: the fake answers like WeChat (single-use,
//! expiring codes; refresh tokens; scope checks; errcodes), and the client turns every answer
//! into a typed result without ever printing a token.

use std::time::Duration;

use account::clock::{Clock, SystemClock};
use account::oauth::{Scope, SnsClient};
use testkit::fake_wechat::sns::{FAKE_OPENID, FAKE_OPENID_2, FAKE_UNIONID};
use testkit::fake_wechat::{FakeWeChat, Scripted, lock};
use wechat_api::ApiError;
use wechat_protocol::secret::Secret;

async fn client() -> (FakeWeChat, SnsClient) {
    let fake = FakeWeChat::start().await;
    let client =
        crate::support::sns_client(&crate::support::config("https://api.example.com", &fake));
    (fake, client)
}

fn code(fake: &FakeWeChat, openid: &str, scope: &str) -> String {
    lock(&fake.state().sns).issue_code(openid, scope)
}

fn now() -> i64 {
    SystemClock.now_s()
}

fn errcode(result: Result<impl std::fmt::Debug, ApiError>) -> i64 {
    result
        .expect_err("expected a WeChat error")
        .errcode()
        .expect("expected an errcode")
}

#[tokio::test]
async fn a_code_is_exchanged_for_the_openid_unionid_and_tokens() {
    let (fake, client) = client().await;
    let code = code(&fake, FAKE_OPENID, "snsapi_userinfo");
    let auth = client.exchange_code(&code, 1_000).await.unwrap();
    assert_eq!(auth.openid, FAKE_OPENID);
    assert_eq!(auth.unionid.as_deref(), Some(FAKE_UNIONID));
    assert_eq!(auth.grant.scope, Scope::UserInfo);
    assert_eq!(auth.grant.access_token_expires_at_s, 1_000 + 7200);
    assert_eq!(auth.grant.refresh_token_expires_at_s, 1_000 + 30 * 86400);
    assert_eq!(
        format!("{auth:?}").matches("***").count(),
        2,
        "tokens print as ***"
    );
    assert!(!format!("{auth:?}").contains(auth.grant.access_token.expose()));
}

#[tokio::test]
async fn a_code_works_once_then_40163_and_an_unknown_code_is_40029() {
    let (fake, client) = client().await;
    let code = code(&fake, FAKE_OPENID, "snsapi_base");
    client.exchange_code(&code, now()).await.unwrap();
    assert_eq!(errcode(client.exchange_code(&code, now()).await), 40163);
    assert_eq!(errcode(client.exchange_code("made-up", now()).await), 40029);
}

#[tokio::test]
async fn a_code_older_than_five_minutes_is_42003() {
    let (fake, client) = client().await;
    let code = code(&fake, FAKE_OPENID, "snsapi_base");
    lock(&fake.state().sns).advance_s(301);
    assert_eq!(errcode(client.exchange_code(&code, now()).await), 42003);
}

#[tokio::test]
async fn a_wrong_app_secret_is_refused_and_not_echoed() {
    let fake = FakeWeChat::start().await;
    let mut config = crate::support::config("https://api.example.com", &fake);
    config.wechat.app_secret = Secret::new("wrong-secret-value".into());
    let client = crate::support::sns_client(&config);
    let code = code(&fake, FAKE_OPENID, "snsapi_base");
    let err = client.exchange_code(&code, now()).await.unwrap_err();
    assert_eq!(err.errcode(), Some(40125));
    assert!(!err.to_string().contains("wrong-secret-value"));
}

#[tokio::test]
async fn refreshing_renews_the_access_token_and_keeps_the_refresh_expiry() {
    let (fake, client) = client().await;
    let auth = client
        .exchange_code(&code(&fake, FAKE_OPENID, "snsapi_userinfo"), 1_000)
        .await
        .unwrap();
    let renewed = client.refresh(&auth.grant, 5_000).await.unwrap();
    assert_ne!(renewed.access_token, auth.grant.access_token);
    assert_eq!(renewed.access_token_expires_at_s, 5_000 + 7200);
    assert_eq!(
        renewed.refresh_token_expires_at_s,
        auth.grant.refresh_token_expires_at_s
    );
    assert_eq!(renewed.scope, Scope::UserInfo);
    // The renewed token reads the profile.
    let (profile, _) = client
        .userinfo(&renewed.access_token, FAKE_OPENID, now())
        .await
        .unwrap();
    assert!(!profile.nickname.is_empty());
}

#[tokio::test]
async fn an_unknown_refresh_token_is_40030_and_one_past_30_days_is_42002() {
    let (fake, client) = client().await;
    let auth = client
        .exchange_code(&code(&fake, FAKE_OPENID, "snsapi_userinfo"), now())
        .await
        .unwrap();
    let mut forged = auth.grant.clone();
    forged.refresh_token = Secret::new("not-issued".into());
    assert_eq!(errcode(client.refresh(&forged, now()).await), 40030);
    lock(&fake.state().sns).advance_s(30 * 86400);
    assert_eq!(errcode(client.refresh(&auth.grant, now()).await), 42002);
}

#[tokio::test]
async fn userinfo_needs_a_live_userinfo_token_for_the_same_openid() {
    let (fake, client) = client().await;
    let userinfo = client
        .exchange_code(&code(&fake, FAKE_OPENID, "snsapi_userinfo"), now())
        .await
        .unwrap();
    let base = client
        .exchange_code(&code(&fake, FAKE_OPENID, "snsapi_base"), now())
        .await
        .unwrap();
    let token = &userinfo.grant.access_token;
    assert_eq!(
        errcode(
            client
                .userinfo(&Secret::new("nope".into()), FAKE_OPENID, now())
                .await
        ),
        40001
    );
    assert_eq!(
        errcode(client.userinfo(token, FAKE_OPENID_2, now()).await),
        40003
    );
    assert_eq!(
        errcode(
            client
                .userinfo(&base.grant.access_token, FAKE_OPENID, now())
                .await
        ),
        48001
    );
    lock(&fake.state().sns).advance_s(7200);
    let expired = client
        .userinfo(token, FAKE_OPENID, now())
        .await
        .unwrap_err();
    assert_eq!(expired.errcode(), Some(42001));
    assert!(expired.is_access_token_invalid());
}

#[tokio::test]
async fn auth_checks_an_access_token() {
    let (fake, client) = client().await;
    let auth = client
        .exchange_code(&code(&fake, FAKE_OPENID, "snsapi_base"), now())
        .await
        .unwrap();
    client
        .check_access_token(&auth.grant.access_token, FAKE_OPENID)
        .await
        .unwrap();
    assert_eq!(
        errcode(
            client
                .check_access_token(&auth.grant.access_token, FAKE_OPENID_2)
                .await
        ),
        40003
    );
    lock(&fake.state().sns).advance_s(7200);
    assert_eq!(
        errcode(
            client
                .check_access_token(&auth.grant.access_token, FAKE_OPENID)
                .await
        ),
        42001
    );
}

#[tokio::test]
async fn transport_failures_are_typed_errors() {
    let fake = FakeWeChat::start().await;
    let mut config = crate::support::config("https://api.example.com", &fake);
    config.wechat.http_timeout = Duration::from_millis(300);
    let client = crate::support::sns_client(&config);
    let path = "/sns/oauth2/access_token";
    fake.script(path, Scripted::HttpStatus(502));
    fake.script(path, Scripted::Malformed);
    fake.script(path, Scripted::ErrCode(-1));
    fake.script(path, Scripted::Hang(Duration::from_secs(3)));
    let code = code(&fake, FAKE_OPENID, "snsapi_base");
    assert_eq!(
        client.exchange_code(&code, now()).await.unwrap_err(),
        ApiError::HttpStatus(502)
    );
    assert!(matches!(
        client.exchange_code(&code, now()).await.unwrap_err(),
        ApiError::Malformed(_)
    ));
    assert_eq!(errcode(client.exchange_code(&code, now()).await), -1);
    assert_eq!(
        client.exchange_code(&code, now()).await.unwrap_err(),
        ApiError::Timeout
    );
}

#[tokio::test]
async fn the_consent_page_redirects_back_with_code_and_state_or_only_state_when_declined() {
    let fake = FakeWeChat::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = |state: &str| {
        format!(
            "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope=snsapi_base&state={state}",
            fake.base_url(),
            testkit::fake_wechat::FAKE_APP_ID,
            crate::support::encode("https://app.example/oauth/callback?x=1"),
        )
    };
    let approved = http.get(consent("abc123")).send().await.unwrap();
    assert_eq!(approved.status(), 302);
    let location = approved.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("https://app.example/oauth/callback?x=1&code=fakecode"));
    assert!(location.ends_with("&state=abc123"));

    lock(&fake.state().sns).decline = true;
    let declined = http.get(consent("abc123")).send().await.unwrap();
    assert_eq!(
        declined.headers()["location"],
        "https://app.example/oauth/callback?x=1&state=abc123"
    );

    // WeChat refuses a state that is not a-zA-Z0-9.
    let bad = http.get(consent("a-b_c")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_snapshot_page_userinfo_sign_in_is_flagged_with_a_virtual_openid_and_base_ones_are_not() {
    let (fake, client) = client().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let code_from_consent = |scope: &'static str| {
        let url = format!(
            "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={scope}&state=abc",
            fake.base_url(),
            testkit::fake_wechat::FAKE_APP_ID,
            crate::support::encode("https://app.example/oauth/callback"),
        );
        let http = http.clone();
        async move {
            let back = http.get(url).send().await.unwrap();
            let location = back.headers()["location"].to_str().unwrap().to_string();
            crate::support::query_param(&location, "code").unwrap()
        }
    };
    let ordinary = client
        .exchange_code(&code_from_consent("snsapi_userinfo").await, now())
        .await
        .unwrap();
    assert_eq!(ordinary.openid, FAKE_OPENID);
    assert!(!ordinary.snapshot_user);

    lock(&fake.state().sns).snapshot_user = true;
    let snapshot = client
        .exchange_code(&code_from_consent("snsapi_userinfo").await, now())
        .await
        .unwrap();
    assert!(snapshot.snapshot_user);
    assert_eq!(
        lock(&fake.state().sns).virtual_openids(),
        [snapshot.openid.as_str()]
    );
    assert!(snapshot.unionid.is_some(), "a virtual unionid, too");
    // WeChat shows the snapshot page for snsapi_userinfo sign-ins; silent ones are unaffected.
    let silent = client
        .exchange_code(&code_from_consent("snsapi_base").await, now())
        .await
        .unwrap();
    assert_eq!(silent.openid, FAKE_OPENID);
    assert!(!silent.snapshot_user);
}

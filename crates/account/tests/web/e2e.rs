//! End to end on loopback with DynamoDB (dynalite): a real reqwest client with a cookie jar
//! follows authorize → fake WeChat consent → callback → `return_to`, then reads `/oauth/me`.
//! Run under `node scripts/with-dynalite.mjs`.

use crate::support::{Browser, Harness, assert_nothing_leaked, encode, issued_tokens};
use account::clock::Clock;
use account::oauth::store::{OAuthStateStore, UserStore};
use table::dynamo::DynamoTable;
use testkit::fake_wechat::sns::{
    FAKE_NICKNAME, FAKE_NICKNAME_2, FAKE_OPENID, FAKE_OPENID_2, FAKE_UNIONID,
};
use testkit::fake_wechat::{Scripted, lock};

/// A fresh openid for this run, so tests sharing the table never see each other's users.
fn fresh_user(h: &Harness<DynamoTable>, template: &str) -> String {
    let openid = testkit::harness::unique("o-e2e-");
    let mut sns = lock(&h.fake.state().sns);
    let mut user = sns.users[template].clone();
    user.openid = openid.clone();
    sns.users.insert(openid.clone(), user);
    sns.signed_in_openid = openid.clone();
    openid
}

/// A browser as the brief describes it: reqwest following redirects itself, with a cookie jar.
fn auto_browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("reqwest client")
}

#[tokio::test]
async fn a_silent_snsapi_base_sign_in_works_end_to_end() {
    let h = Harness::start(testkit::harness::dynalite_table().await).await;
    let openid = fresh_user(&h, FAKE_OPENID);
    let client = auto_browser();

    let landed = client
        .get(h.url("/oauth/authorize?scope=snsapi_base&return_to=%2Fshop%3Fitem%3D42"))
        .send()
        .await
        .unwrap();
    assert_eq!(landed.status(), 200);
    assert_eq!(landed.url().path(), "/shop");
    assert_eq!(landed.url().query(), Some("item=42"));

    let me: serde_json::Value = client
        .get(h.url("/oauth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["openid"], openid.as_str());
    assert_eq!(me["unionid"], FAKE_UNIONID);
    assert_eq!(me["scope"], "snsapi_base");
    assert_eq!(me["nickname"], serde_json::Value::Null);

    let stored = h.store.get_user(&openid).await.unwrap().unwrap();
    assert!(stored.profile.is_none());
    assert!(stored.grant.is_some());
}

#[tokio::test]
async fn a_snsapi_userinfo_sign_in_works_end_to_end_with_the_profile() {
    let h = Harness::start(testkit::harness::dynalite_table().await).await;
    let openid = fresh_user(&h, FAKE_OPENID_2);
    let client = auto_browser();

    let landed = client
        .get(h.url(&format!(
            "/oauth/authorize?scope=snsapi_userinfo&return_to={}",
            encode("/我的/资料")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(landed.status(), 200);
    assert_eq!(
        landed.url().path(),
        "/%E6%88%91%E7%9A%84/%E8%B5%84%E6%96%99"
    );

    let me = client.get(h.url("/oauth/me")).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["openid"], openid.as_str());
    assert_eq!(me["nickname"], FAKE_NICKNAME_2);
    assert_eq!(me["scope"], "snsapi_userinfo");
    assert!(me.get("unionid").is_none(), "this user has no unionid");

    let stored = h.store.get_user(&openid).await.unwrap().unwrap();
    assert_eq!(stored.profile.unwrap().nickname, "Zoë 🌸 测试");
}

#[tokio::test]
async fn no_sns_token_leaves_the_server_end_to_end() {
    let h = Harness::start(testkit::harness::dynalite_table().await).await;
    fresh_user(&h, FAKE_OPENID);
    let mut browser = Browser::new();
    let landed = browser
        .follow(&h.url("/oauth/authorize?scope=snsapi_userinfo&return_to=%2F"))
        .await;
    assert_eq!(landed.status, 200);
    let me = browser.get(&h.url("/oauth/me")).await;
    assert_eq!(me.json()["nickname"], FAKE_NICKNAME);
    assert_nothing_leaked(&browser, &issued_tokens(&h.fake));
}

#[tokio::test]
async fn a_replayed_callback_on_dynamodb_signs_in_again_without_a_second_exchange() {
    let h = Harness::start(testkit::harness::dynalite_table().await).await;
    let openid = fresh_user(&h, FAKE_OPENID);
    let mut browser = Browser::new();
    browser
        .follow(&h.url("/oauth/authorize?scope=snsapi_base&return_to=%2Fhome"))
        .await;
    let callback = browser.hop_to("/oauth/callback").unwrap().url.clone();
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status, 302);
    assert_eq!(replay.location(), Some("/home#"));
    assert_eq!(h.fake.calls("/sns/oauth2/access_token"), 1);
    assert_eq!(
        browser.get(&h.url("/oauth/me")).await.json()["openid"],
        openid.as_str()
    );

    let state = crate::support::query_param(&callback, "state").unwrap();
    let record = h
        .store
        .get_state(&state, h.clock.now_s())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.status,
        account::oauth::StateStatus::Completed { openid }
    );
}

#[tokio::test]
async fn wechat_down_on_dynamodb_leaves_no_user_and_the_state_retryable() {
    let h = Harness::start(testkit::harness::dynalite_table().await).await;
    let openid = fresh_user(&h, FAKE_OPENID);
    let mut browser = Browser::new();
    h.fake
        .script("/sns/oauth2/access_token", Scripted::HttpStatus(500));
    let page = browser
        .follow(&h.url("/oauth/authorize?scope=snsapi_userinfo&return_to=%2F"))
        .await;
    assert_eq!(page.status, 502);
    assert!(page.body.contains("微信暂时无法完成登录"));
    assert_eq!(h.store.get_user(&openid).await.unwrap(), None);

    let callback = browser.hop_to("/oauth/callback").unwrap().url.clone();
    let reload = browser.get(&callback).await;
    assert_eq!(reload.status, 302, "{}", reload.body);
    assert_eq!(reload.location(), Some("/#"));
    assert!(h.store.get_user(&openid).await.unwrap().is_some());
}

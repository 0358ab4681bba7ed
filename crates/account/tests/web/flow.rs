//! The web-authorization flow over real HTTP on loopback against the fake WeChat API, with the
//! embedded store and a manual clock: every way a sign-in can go wrong, and what the user sees.

use crate::support::{
    ALLOWED_ORIGIN, Browser, Harness, assert_nothing_leaked, config, encode, issued_tokens,
    query_param, resolve, session_key,
};
use account::clock::{Clock, ManualClock, SystemClock};
use account::oauth::session::{SessionCodec, SessionError};
use account::oauth::store::{OAuthStateStore, UserStore};
use account::oauth::{OAuth, Scope};
use lambda_http::Body;
use serde_json::Value;
use sha2::{Digest, Sha256};
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::sns::{FAKE_NICKNAME, FAKE_OPENID, FAKE_UNIONID};
use testkit::fake_wechat::{FAKE_APP_ID, FAKE_APP_SECRET, FakeWeChat, Scripted, lock};

const DAY_MS: i64 = 24 * 3600 * 1000;

async fn harness() -> Harness<EmbeddedStore> {
    Harness::start(EmbeddedStore::in_memory()).await
}

fn authorize(h: &Harness<EmbeddedStore>, scope: &str, return_to: &str) -> String {
    h.url(&format!(
        "/oauth/authorize?scope={scope}&return_to={}",
        encode(return_to)
    ))
}

/// Go through authorize and the consent page; return the callback URL without calling it.
async fn callback_url(
    h: &Harness<EmbeddedStore>,
    browser: &mut Browser,
    scope: &str,
    return_to: &str,
) -> String {
    let to_wechat = browser.get(&authorize(h, scope, return_to)).await;
    assert_eq!(to_wechat.status, 302, "{}", to_wechat.body);
    let consent = to_wechat
        .location()
        .expect("location to WeChat")
        .to_string();
    let back = browser.get(&consent).await;
    assert_eq!(back.status, 302, "{}", back.body);
    back.location().expect("location to callback").to_string()
}

/// A complete sign-in; returns the final (app page) hop.
async fn sign_in(
    h: &Harness<EmbeddedStore>,
    browser: &mut Browser,
    scope: &str,
    return_to: &str,
) -> crate::support::Hop {
    let landed = browser.follow(&authorize(h, scope, return_to)).await;
    assert_eq!(landed.status, 200, "{}", landed.body);
    assert_eq!(landed.path(), return_to.split('?').next().unwrap_or("/"));
    landed
}

async fn me(h: &Harness<EmbeddedStore>, browser: &mut Browser) -> crate::support::Hop {
    browser.get(&h.url("/oauth/me")).await
}

fn keys_with_prefix(store: &EmbeddedStore, prefix: &str) -> Vec<String> {
    store
        .transact(|items| {
            (
                items
                    .keys()
                    .filter(|k| k.starts_with(prefix))
                    .cloned()
                    .collect(),
                false,
            )
        })
        .unwrap()
}

fn users(store: &EmbeddedStore) -> Vec<String> {
    keys_with_prefix(store, "user#")
}

fn codes_used(fake: &FakeWeChat) -> usize {
    lock(&fake.state().sns).codes_issued_and_used().1
}

fn assert_no_session_cookie(hop: &crate::support::Hop) {
    assert!(
        hop.set_cookies()
            .iter()
            .all(|c| !c.starts_with("wx_session=") || c.contains("Max-Age=0")),
        "unexpected session cookie: {:?}",
        hop.set_cookies()
    );
}

fn assert_friendly_page(hop: &crate::support::Hop, status: u16, zh: &str) {
    assert_eq!(hop.status, status, "{}", hop.body);
    assert_eq!(hop.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(hop.body.contains(zh), "page lacks {zh:?}: {}", hop.body);
    assert!(
        hop.body.contains("href=\"/oauth/authorize?"),
        "no restart link: {}",
        hop.body
    );
    for dump in [
        "errcode",
        "WeChat answered",
        "store unavailable",
        "panicked",
    ] {
        assert!(
            !hop.body.contains(dump),
            "page leaks internals: {}",
            hop.body
        );
    }
}

async fn exchange_out_of_band(fake: &FakeWeChat, code: &str) {
    let url = format!(
        "{}/sns/oauth2/access_token?appid={FAKE_APP_ID}&secret={FAKE_APP_SECRET}&code={code}&grant_type=authorization_code",
        fake.base_url()
    );
    let answer: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert!(answer.get("access_token").is_some(), "{answer}");
}

// ---- authorize ----

#[tokio::test]
async fn authorize_redirects_to_wechat_with_parameters_in_wechats_order() {
    let h = harness().await;
    let mut browser = h.browser();
    let hop = browser
        .get(&authorize(&h, "snsapi_userinfo", "/profile?tab=1"))
        .await;
    assert_eq!(hop.status, 302);
    assert_eq!(hop.header("cache-control"), Some("no-store"));
    let location = hop.location().unwrap();
    let expected_prefix = format!(
        "{}/connect/oauth2/authorize?appid={FAKE_APP_ID}&redirect_uri={}&response_type=code&scope=snsapi_userinfo&state=",
        h.fake.base_url(),
        encode(&h.url("/oauth/callback")),
    );
    assert!(
        location.starts_with(&expected_prefix),
        "{location}\n  !~ {expected_prefix}"
    );
    let rest = &location[expected_prefix.len()..];
    let (state, fragment) = rest.split_once('#').unwrap();
    assert_eq!(fragment, "wechat_redirect");
    assert_eq!(state.len(), 64);
    assert!(state.bytes().all(|b| b.is_ascii_hexdigit()));

    // The binding cookie is short-lived, HttpOnly, scoped to /oauth; only its hash is stored.
    let cookies = hop.set_cookies();
    let binding_cookie = cookies
        .iter()
        .find(|c| c.starts_with("wx_oauth_binding="))
        .expect("binding cookie");
    for attribute in ["Max-Age=600", "Path=/oauth", "HttpOnly", "SameSite=Lax"] {
        assert!(binding_cookie.contains(attribute), "{binding_cookie}");
    }
    let binding = binding_cookie["wx_oauth_binding=".len()..]
        .split(';')
        .next()
        .unwrap();
    let item = h
        .store
        .item_json(&format!("oauth_state#{state}"))
        .unwrap()
        .unwrap();
    assert_eq!(
        item["browser_hash"],
        hex::encode(Sha256::digest(binding.as_bytes()))
    );
    assert_eq!(item["return_to"], "/profile?tab=1");
    assert_eq!(item["scope"], "snsapi_userinfo");
    assert_eq!(item["status"], "pending");
    assert_eq!(item["ttl"], item["expires_at_s"]);
    assert!(!item.to_string().contains(binding));
}

#[tokio::test]
async fn scope_defaults_to_base_and_other_scopes_are_refused() {
    let h = harness().await;
    let mut browser = h.browser();
    let hop = browser.get(&h.url("/oauth/authorize")).await;
    assert_eq!(hop.status, 302);
    assert!(hop.location().unwrap().contains("&scope=snsapi_base&"));
    let state = query_param(hop.location().unwrap(), "state").unwrap();
    let item = h
        .store
        .item_json(&format!("oauth_state#{state}"))
        .unwrap()
        .unwrap();
    assert_eq!(item["return_to"], "/");

    let before = keys_with_prefix(&h.store, "oauth_state#").len();
    for scope in ["snsapi_login", "SNSAPI_BASE", "snsapi_base,snsapi_userinfo"] {
        let hop = browser
            .get(&h.url(&format!("/oauth/authorize?scope={}", encode(scope))))
            .await;
        assert_eq!(hop.status, 400, "{scope}");
    }
    assert_eq!(keys_with_prefix(&h.store, "oauth_state#").len(), before);
}

#[tokio::test]
async fn open_redirect_attempts_are_refused_before_any_state_is_stored() {
    let h = harness().await;
    let mut browser = h.browser();
    for attack in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "%2F%2Fevil.example",
        "/%2F%2Fevil.example",
        "https:evil.example",
        "javascript:alert(document.cookie)",
        "https://shop.example@evil.example",
        "https://shop.example.evil.example/",
        "/\t/evil.example",
        "data:text/html,<script>alert(1)</script>",
    ] {
        let hop = browser
            .get(&h.url(&format!("/oauth/authorize?return_to={}", encode(attack))))
            .await;
        assert_eq!(hop.status, 400, "{attack:?} was accepted");
        assert!(hop.location().is_none());
    }
    assert!(keys_with_prefix(&h.store, "oauth_state#").is_empty());
}

#[tokio::test]
async fn an_allow_listed_origin_is_accepted_as_return_to() {
    let h = harness().await;
    let mut browser = h.browser();
    let target = format!("{ALLOWED_ORIGIN}/cart?id=7");
    let callback = callback_url(&h, &mut browser, "snsapi_base", &target).await;
    let hop = browser.get(&callback).await;
    assert_eq!(hop.status, 302);
    assert_eq!(hop.location(), Some(format!("{target}#").as_str()));
}

#[tokio::test]
async fn cookies_are_secure_when_the_public_base_url_is_https() {
    let fake = FakeWeChat::start().await;
    let clock = ManualClock::at_ms(SystemClock.now_ms());
    let config = config("https://api.example.com", &fake);
    let http = config.wechat.client().unwrap();
    let oauth = OAuth::new(
        config,
        EmbeddedStore::in_memory(),
        http,
        std::sync::Arc::new(clock),
    );
    let request = |uri: &str, cookie: Option<&str>| {
        let mut builder = lambda_http::http::Request::builder().uri(uri);
        if let Some(cookie) = cookie {
            builder = builder.header("cookie", cookie);
        }
        builder.body(Body::Empty).unwrap()
    };
    let to_wechat = oauth
        .handle(&request("https://api.example.com/oauth/authorize", None))
        .await;
    let binding_cookie = to_wechat.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(binding_cookie.contains("; Secure;"), "{binding_cookie}");
    let location = to_wechat.headers()["location"].to_str().unwrap();
    assert!(location.contains("redirect_uri=https%3A%2F%2Fapi.example.com%2Foauth%2Fcallback&"));

    // Follow the consent page by hand, then the callback in-process with the binding cookie.
    let consent = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(location)
        .send()
        .await
        .unwrap();
    let callback = consent.headers()["location"].to_str().unwrap().to_string();
    let binding = binding_cookie.split(';').next().unwrap();
    let signed_in = oauth.handle(&request(&callback, Some(binding))).await;
    assert_eq!(signed_in.status(), 302);
    let session_cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    // On https the cookie is `__Host-` prefixed (issue 10, item 8); the attributes are unchanged.
    assert!(session_cookie.starts_with("__Host-wx_session="));
    for attribute in [
        "Path=/;",
        "HttpOnly;",
        "Secure;",
        "SameSite=Lax",
        "Max-Age=604800",
    ] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
}

// ---- successful sign-ins ----

#[tokio::test]
async fn a_silent_base_sign_in_lands_on_return_to_and_me_shows_the_openid() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_base", "/account").await;
    let me = me(&h, &mut browser).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.header("cache-control"), Some("no-store"));
    let body = me.json();
    assert_eq!(body["openid"], FAKE_OPENID);
    assert_eq!(body["unionid"], FAKE_UNIONID);
    assert_eq!(body["scope"], "snsapi_base");
    assert_eq!(body["nickname"], Value::Null);
    assert_eq!(body["updated_at"], h.clock.now_s());
    assert_eq!(h.fake.calls("/sns/userinfo"), 0);
}

#[tokio::test]
async fn a_userinfo_sign_in_stores_the_profile_and_utf8_survives() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_userinfo", "/profile").await;
    let body = me(&h, &mut browser).await.json();
    assert_eq!(body["nickname"], FAKE_NICKNAME);
    assert_eq!(
        body["avatar"],
        "https://thirdwx.qlogo.cn/mmopen/fake-0001/132"
    );
    assert_eq!(body["scope"], "snsapi_userinfo");
    let user = h.store.get_user(FAKE_OPENID).await.unwrap().unwrap();
    let profile = user.profile.unwrap();
    assert_eq!(profile.nickname, "小明🐼 Ming");
    assert_eq!(
        (profile.city.as_str(), profile.province.as_str()),
        ("深圳", "广东")
    );
    assert_eq!(user.grant.unwrap().scope, Scope::UserInfo);
}

#[tokio::test]
async fn no_sns_token_reaches_the_browser_in_any_hop() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_userinfo", "/profile").await;
    me(&h, &mut browser).await;
    // Force a refresh too, so renewed tokens are covered.
    h.clock.advance_ms(2 * DAY_MS);
    me(&h, &mut browser).await;
    assert_eq!(h.fake.calls("/sns/oauth2/refresh_token"), 1);
    let tokens = issued_tokens(&h.fake);
    assert!(tokens.len() >= 3, "{tokens:?}");
    assert_nothing_leaked(&browser, &tokens);
    // They are where they belong: in the user item.
    let item = h
        .store
        .item_json(&format!("user#{FAKE_OPENID}"))
        .unwrap()
        .unwrap();
    assert!(tokens.iter().any(|t| item["sns_access_token"] == *t));
}

// ---- states that must not work ----

#[tokio::test]
async fn a_forged_state_is_refused_without_exchanging_the_code() {
    let h = harness().await;
    let mut browser = h.browser();
    browser.get(&authorize(&h, "snsapi_base", "/")).await;
    let code = lock(&h.fake.state().sns).issue_code(FAKE_OPENID, "snsapi_base");
    let forged = "0123456789abcdef".repeat(4);
    let hop = browser
        .get(&h.url(&format!("/oauth/callback?code={code}&state={forged}")))
        .await;
    assert_friendly_page(&hop, 400, "登录链接已失效");
    assert_no_session_cookie(&hop);
    assert_eq!(h.fake.calls("/sns/oauth2/access_token"), 0);
    assert!(users(&h.store).is_empty());
}

#[tokio::test]
async fn a_missing_or_malformed_state_is_refused() {
    let h = harness().await;
    let mut browser = h.browser();
    for query in [
        "code=abc",
        "code=abc&state=",
        "code=abc&state=..%2F..%2Fuser%23x",
        "code=abc&state=ABCDEF",
    ] {
        let hop = browser
            .get(&h.url(&format!("/oauth/callback?{query}")))
            .await;
        assert_friendly_page(&hop, 400, "登录链接已失效");
        assert_no_session_cookie(&hop);
    }
    assert_eq!(h.fake.calls("/sns/oauth2/access_token"), 0);
}

#[tokio::test]
async fn an_expired_state_is_refused_without_exchanging_the_code() {
    let h = harness().await;
    let mut browser = h.browser();
    let callback = callback_url(&h, &mut browser, "snsapi_base", "/").await;
    h.clock.advance_ms(601_000);
    let hop = browser.get(&callback).await;
    assert_friendly_page(&hop, 400, "登录链接已失效");
    assert_no_session_cookie(&hop);
    assert_eq!(codes_used(&h.fake), 0);
    assert!(users(&h.store).is_empty());
}

#[tokio::test]
async fn a_state_from_another_browser_is_refused_and_stays_usable_by_its_own() {
    let h = harness().await;
    let mut victim = h.browser();
    let callback = callback_url(&h, &mut victim, "snsapi_base", "/home").await;

    let mut other = Browser::new();
    let refused = other.get(&callback).await;
    assert_friendly_page(&refused, 403, "请在同一浏览器中完成登录");
    assert_no_session_cookie(&refused);
    assert_eq!(codes_used(&h.fake), 0);

    let landed = victim.follow(&callback).await;
    assert_eq!(landed.path(), "/home");
    assert_eq!(me(&h, &mut victim).await.status, 200);
    assert_eq!(me(&h, &mut other).await.status, 401);
}

#[tokio::test]
async fn a_replayed_callback_re_issues_the_session_only_to_the_same_browser() {
    let h = harness().await;
    let mut browser = h.browser();
    let callback = callback_url(&h, &mut browser, "snsapi_base", "/home").await;
    let first = browser.get(&callback).await;
    assert_eq!(first.location(), Some("/home#"));

    // WeChat's browser calls twice and keeps only the second answer: same binding, no session yet.
    let binding = browser.cookies_for(&h.url("/oauth/callback"));
    let binding = binding
        .split("; ")
        .find(|c| c.starts_with("wx_oauth_binding="))
        .unwrap()
        .to_string();
    let mut second_tab = Browser::new();
    second_tab.set_cookie(&h.base, &format!("{binding}; Path=/oauth"));
    let replay = second_tab.get(&callback).await;
    assert_eq!(replay.status, 302);
    assert_eq!(replay.location(), Some("/home#"));
    assert!(
        replay
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("wx_session="))
    );
    assert_eq!(me(&h, &mut second_tab).await.json()["openid"], FAKE_OPENID);
    assert_eq!(
        h.fake.calls("/sns/oauth2/access_token"),
        1,
        "the code is exchanged once"
    );

    let mut stranger = Browser::new();
    let refused = stranger.get(&callback).await;
    assert_friendly_page(&refused, 403, "请在同一浏览器中完成登录");
    assert_no_session_cookie(&refused);
}

#[tokio::test]
async fn a_callback_that_loses_the_state_to_a_concurrent_one_restarts_the_flow() {
    let h = harness().await;
    let mut browser = h.browser();
    let callback = callback_url(&h, &mut browser, "snsapi_userinfo", "/p").await;
    let state = query_param(&callback, "state").unwrap();
    // The other callback has consumed the state and is still talking to WeChat.
    h.store
        .consume_state(&state, h.clock.now_s())
        .await
        .unwrap();
    let hop = browser.get(&callback).await;
    assert_eq!(hop.status, 302);
    assert_eq!(
        hop.location(),
        Some("/oauth/authorize?scope=snsapi_userinfo&return_to=%2Fp")
    );
    assert_eq!(h.fake.calls("/sns/oauth2/access_token"), 0);
}

// ---- codes WeChat rejects ----

#[tokio::test]
async fn a_code_already_used_40163_restarts_the_flow_once_and_signs_in() {
    let h = harness().await;
    let mut browser = h.browser();
    let callback = callback_url(&h, &mut browser, "snsapi_base", "/home").await;
    exchange_out_of_band(&h.fake, &query_param(&callback, "code").unwrap()).await;

    let landed = browser.follow(&callback).await;
    assert_eq!(landed.path(), "/home");
    let restart = browser
        .hops
        .iter()
        .find(|hop| hop.url.contains("/oauth/authorize") && hop.url.contains("attempt=2"));
    assert!(restart.is_some(), "expected one automatic restart");
    assert_eq!(me(&h, &mut browser).await.status, 200);
}

#[tokio::test]
async fn an_invalid_code_40029_restarts_the_flow_once_and_signs_in() {
    let h = harness().await;
    let mut browser = h.browser();
    h.fake
        .script("/sns/oauth2/access_token", Scripted::ErrCode(40029));
    let landed = browser
        .follow(&authorize(&h, "snsapi_userinfo", "/p"))
        .await;
    assert_eq!(landed.path(), "/p");
    assert_eq!(h.fake.calls("/sns/oauth2/access_token"), 2);
    assert_eq!(me(&h, &mut browser).await.json()["nickname"], FAKE_NICKNAME);
}

#[tokio::test]
async fn an_expired_code_42003_restarts_the_flow_once_and_signs_in() {
    let h = harness().await;
    let mut browser = h.browser();
    let callback = callback_url(&h, &mut browser, "snsapi_base", "/home").await;
    lock(&h.fake.state().sns).advance_s(301);
    let landed = browser.follow(&callback).await;
    assert_eq!(landed.path(), "/home");
    assert_eq!(h.fake.calls("/sns/oauth2/access_token"), 2);
    assert_eq!(me(&h, &mut browser).await.status, 200);
}

#[tokio::test]
async fn a_code_rejected_again_after_the_restart_ends_on_a_page_not_a_loop() {
    let h = harness().await;
    let mut browser = h.browser();
    h.fake
        .script("/sns/oauth2/access_token", Scripted::ErrCode(40029));
    h.fake
        .script("/sns/oauth2/access_token", Scripted::ErrCode(40029));
    let last = browser.follow(&authorize(&h, "snsapi_base", "/home")).await;
    assert_friendly_page(&last, 400, "登录未能完成");
    assert_no_session_cookie(&last);
    assert_eq!(h.fake.calls("/sns/oauth2/access_token"), 2);
    // The "sign in again" link starts a fresh flow (attempt 1) to the same place.
    assert!(
        last.body
            .contains("href=\"/oauth/authorize?scope=snsapi_base&amp;return_to=%2Fhome\"")
    );
    assert!(users(&h.store).is_empty());
}

#[tokio::test]
async fn a_rejected_code_with_a_valid_session_keeps_the_user_signed_in() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_base", "/home").await;
    h.fake
        .script("/sns/oauth2/access_token", Scripted::ErrCode(40163));
    let callback = callback_url(&h, &mut browser, "snsapi_base", "/again").await;
    let hop = browser.get(&callback).await;
    assert_eq!(hop.status, 302);
    assert_eq!(hop.location(), Some("/again#"));
}

// ---- consent declined ----

#[tokio::test]
async fn declining_consent_shows_a_bilingual_page_with_a_restart_link() {
    let h = harness().await;
    let mut browser = h.browser();
    lock(&h.fake.state().sns).decline = true;
    let page = browser
        .follow(&authorize(&h, "snsapi_userinfo", "/profile"))
        .await;
    assert_friendly_page(&page, 200, "您已取消授权");
    assert!(page.body.contains("You declined to sign in"));
    assert!(
        page.body
            .contains("href=\"/oauth/authorize?scope=snsapi_userinfo&amp;return_to=%2Fprofile\"")
    );
    assert_no_session_cookie(&page);
    assert!(users(&h.store).is_empty());
    assert_eq!(h.fake.calls("/sns/oauth2/access_token"), 0);

    // The link works once the user changes their mind.
    lock(&h.fake.state().sns).decline = false;
    let restart = resolve(
        &page.url,
        "/oauth/authorize?scope=snsapi_userinfo&return_to=%2Fprofile",
    );
    let landed = browser.follow(&restart).await;
    assert_eq!(landed.path(), "/profile");
}

// ---- snapshot pages (快照页模式) ----

#[tokio::test]
async fn a_snapshot_page_user_is_neither_stored_nor_signed_in_and_is_told_to_open_the_full_page() {
    let h = harness().await;
    let mut browser = h.browser();
    lock(&h.fake.state().sns).snapshot_user = true;
    let page = browser
        .follow(&authorize(&h, "snsapi_userinfo", "/profile"))
        .await;
    assert_friendly_page(&page, 200, "请打开完整页面后再登录");
    assert!(page.body.contains("使用完整服务"), "{}", page.body);
    assert!(page.body.contains("open the full page"), "{}", page.body);
    assert!(
        page.body
            .contains("href=\"/oauth/authorize?scope=snsapi_userinfo&amp;return_to=%2Fprofile\"")
    );
    assert_no_session_cookie(&page);
    assert!(users(&h.store).is_empty(), "{:?}", users(&h.store));
    let virtual_openids = lock(&h.fake.state().sns).virtual_openids();
    assert_eq!(virtual_openids.len(), 1);
    for hop in &browser.hops {
        assert!(!hop.body.contains(&virtual_openids[0]), "{}", hop.url);
    }
    assert_eq!(h.fake.calls("/sns/oauth2/access_token"), 1);
    assert_eq!(
        h.fake.calls("/sns/userinfo"),
        0,
        "a virtual account's profile is not even read"
    );
    assert_eq!(me(&h, &mut browser).await.status, 401);
    // The code is spent: the state stays consumed, never completed with the virtual openid.
    let callback = browser.hop_to("/oauth/callback").unwrap().url.clone();
    let state = query_param(&callback, "state").unwrap();
    let item = h
        .store
        .item_json(&format!("oauth_state#{state}"))
        .unwrap()
        .unwrap();
    assert_eq!(item["status"], "consumed");

    // Opened in full (使用完整服务), the page's link signs the real user in.
    lock(&h.fake.state().sns).snapshot_user = false;
    let restart = resolve(
        &page.url,
        "/oauth/authorize?scope=snsapi_userinfo&return_to=%2Fprofile",
    );
    let landed = browser.follow(&restart).await;
    assert_eq!(landed.path(), "/profile");
    assert_eq!(me(&h, &mut browser).await.json()["openid"], FAKE_OPENID);
    assert_eq!(users(&h.store), [format!("user#{FAKE_OPENID}")]);
}

#[tokio::test]
async fn a_bare_callback_without_code_or_state_shows_the_link_expired_page_not_declined() {
    let h = harness().await;
    let mut browser = h.browser();
    for query in ["", "?", "?state=", "?code=&state=", "?state=ABCDEF"] {
        let hop = browser
            .get(&h.url(&format!("/oauth/callback{query}")))
            .await;
        assert_friendly_page(&hop, 400, "登录链接已失效");
        assert!(!hop.body.contains("您已取消授权"), "{query}: {}", hop.body);
        assert_no_session_cookie(&hop);
    }
    assert!(users(&h.store).is_empty());
}

// ---- the address bar after sign-in ----

#[tokio::test]
async fn the_redirect_after_sign_in_has_its_own_fragment_so_wechat_redirect_is_not_kept() {
    // WeChat's consent URL ends in `#wechat_redirect`; a browser keeps it across every redirect
    // whose Location has no fragment, so the final one must bring a fragment of its own.
    let h = harness().await;
    let mut browser = h.browser();
    let to_wechat = browser
        .get(&authorize(&h, "snsapi_base", "/home?tab=1"))
        .await;
    assert!(to_wechat.location().unwrap().ends_with("#wechat_redirect"));
    let callback = callback_url(&h, &mut browser, "snsapi_base", "/home?tab=1").await;
    let hop = browser.get(&callback).await;
    assert_eq!(hop.status, 302, "{}", hop.body);
    assert_eq!(hop.location(), Some("/home?tab=1#"));

    // A return_to with a fragment keeps it.
    let mut other = h.browser();
    let callback = callback_url(&h, &mut other, "snsapi_base", "/home#settings").await;
    let hop = other.get(&callback).await;
    assert_eq!(hop.location(), Some("/home#settings"));
}

// ---- WeChat down ----

#[tokio::test]
async fn wechat_http_500_shows_a_retry_page_and_a_reload_of_the_callback_succeeds() {
    let h = harness().await;
    let mut browser = h.browser();
    let callback = callback_url(&h, &mut browser, "snsapi_base", "/home").await;
    h.fake
        .script("/sns/oauth2/access_token", Scripted::HttpStatus(500));
    let page = browser.get(&callback).await;
    assert_friendly_page(&page, 502, "微信暂时无法完成登录");
    assert_no_session_cookie(&page);
    assert!(users(&h.store).is_empty());

    // The code was not used, so the state was released: reloading the callback signs in.
    let reload = browser.get(&callback).await;
    assert_eq!(reload.status, 302);
    assert_eq!(reload.location(), Some("/home#"));
}

#[tokio::test]
async fn wechat_hanging_past_the_timeout_shows_a_retry_page_and_writes_no_user() {
    let h = Harness::start_with(EmbeddedStore::in_memory(), |c| {
        c.wechat.http_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let mut browser = h.browser();
    let callback = callback_url(&h, &mut browser, "snsapi_base", "/home").await;
    h.fake.script(
        "/sns/oauth2/access_token",
        Scripted::Hang(std::time::Duration::from_secs(3)),
    );
    let page = browser.get(&callback).await;
    assert_friendly_page(&page, 503, "微信暂时无法完成登录");
    assert_no_session_cookie(&page);
    assert!(users(&h.store).is_empty());
    let state = query_param(&callback, "state").unwrap();
    let item = h
        .store
        .item_json(&format!("oauth_state#{state}"))
        .unwrap()
        .unwrap();
    assert_eq!(
        item["status"], "pending",
        "the state is released for a retry"
    );
}

#[tokio::test]
async fn wechat_system_error_minus_one_shows_a_retry_page_and_writes_no_user() {
    let h = harness().await;
    let mut browser = h.browser();
    h.fake
        .script("/sns/oauth2/access_token", Scripted::ErrCode(-1));
    let page = browser.follow(&authorize(&h, "snsapi_base", "/")).await;
    assert_friendly_page(&page, 502, "微信暂时无法完成登录");
    assert_no_session_cookie(&page);
    assert!(users(&h.store).is_empty());
}

#[tokio::test]
async fn a_malformed_wechat_answer_shows_a_retry_page_and_writes_no_user() {
    let h = harness().await;
    let mut browser = h.browser();
    h.fake
        .script("/sns/oauth2/access_token", Scripted::Malformed);
    let page = browser.follow(&authorize(&h, "snsapi_base", "/")).await;
    assert_friendly_page(&page, 502, "微信暂时无法完成登录");
    assert!(users(&h.store).is_empty());
}

#[tokio::test]
async fn userinfo_failing_after_the_exchange_writes_no_user_and_a_reload_restarts() {
    let h = harness().await;
    let mut browser = h.browser();
    let callback = callback_url(&h, &mut browser, "snsapi_userinfo", "/p").await;
    h.fake.script("/sns/userinfo", Scripted::HttpStatus(503));
    let page = browser.get(&callback).await;
    assert_friendly_page(&page, 502, "微信暂时无法完成登录");
    assert!(users(&h.store).is_empty(), "no user item with partial data");

    // The code is spent, so the state is too: a reload restarts the flow cleanly.
    let reload = browser.get(&callback).await;
    assert_eq!(reload.status, 302);
    assert!(
        reload
            .location()
            .unwrap()
            .starts_with("/oauth/authorize?scope=snsapi_userinfo")
    );
    let landed = browser.follow(&callback).await;
    assert_eq!(landed.path(), "/p");
    assert_eq!(me(&h, &mut browser).await.json()["nickname"], FAKE_NICKNAME);
}

#[tokio::test]
async fn an_invalid_openid_40003_from_userinfo_writes_no_user() {
    let h = harness().await;
    let mut browser = h.browser();
    h.fake.script("/sns/userinfo", Scripted::ErrCode(40003));
    let page = browser.follow(&authorize(&h, "snsapi_userinfo", "/")).await;
    assert_friendly_page(&page, 502, "微信暂时无法完成登录");
    assert!(users(&h.store).is_empty());
}

// ---- profile refresh ----

fn rename_fake_user(h: &Harness<EmbeddedStore>, nickname: &str) {
    if let Some(user) = lock(&h.fake.state().sns).users.get_mut(FAKE_OPENID) {
        user.nickname = nickname.into();
    }
}

#[tokio::test]
async fn a_fresh_profile_is_served_without_calling_wechat() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_userinfo", "/").await;
    rename_fake_user(&h, "changed");
    h.clock.advance_ms(DAY_MS - 1000);
    assert_eq!(me(&h, &mut browser).await.json()["nickname"], FAKE_NICKNAME);
    assert_eq!(h.fake.calls("/sns/userinfo"), 1);
}

#[tokio::test]
async fn a_stale_profile_is_refreshed_on_me_after_renewing_the_expired_access_token() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_userinfo", "/").await;
    let before = h.store.get_user(FAKE_OPENID).await.unwrap().unwrap();
    rename_fake_user(&h, "新名字 ✨");
    h.clock.advance_ms(DAY_MS + 1000);
    let body = me(&h, &mut browser).await.json();
    assert_eq!(body["nickname"], "新名字 ✨");
    assert_eq!(body.get("profile_stale"), None);
    assert_eq!(h.fake.calls("/sns/oauth2/refresh_token"), 1);
    let after = h.store.get_user(FAKE_OPENID).await.unwrap().unwrap();
    assert_ne!(
        after.grant.as_ref().unwrap().access_token,
        before.grant.as_ref().unwrap().access_token
    );
    assert_eq!(
        after.grant.unwrap().refresh_token_expires_at_s,
        before.grant.unwrap().refresh_token_expires_at_s,
        "refreshing does not extend the 30 days"
    );
    assert_eq!(after.updated_at_s, h.clock.now_s());
}

#[tokio::test]
async fn an_access_token_rejected_with_40001_is_renewed_once_and_the_read_retried() {
    let h = Harness::start_with(EmbeddedStore::in_memory(), |c| c.profile_max_age_s = 60).await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_userinfo", "/").await;
    rename_fake_user(&h, "renamed");
    h.clock.advance_ms(120_000);
    h.fake.script("/sns/userinfo", Scripted::ErrCode(40001));
    assert_eq!(me(&h, &mut browser).await.json()["nickname"], "renamed");
    assert_eq!(h.fake.calls("/sns/oauth2/refresh_token"), 1);
    assert_eq!(h.fake.calls("/sns/userinfo"), 3);
}

async fn assert_refresh_token_rejection_keeps_the_session(
    h: &Harness<EmbeddedStore>,
    browser: &mut Browser,
) {
    let body = me(h, browser).await;
    assert_eq!(body.status, 200, "the session stays valid");
    let body = body.json();
    assert_eq!(
        body["nickname"], FAKE_NICKNAME,
        "the stored profile is served"
    );
    assert_eq!(body["profile_stale"], true);
    let user = h.store.get_user(FAKE_OPENID).await.unwrap().unwrap();
    assert!(user.grant.is_none(), "the dead grant is dropped");
    assert_eq!(user.scope, Scope::UserInfo);

    // Later reads do not keep asking WeChat.
    let calls = h.fake.calls("/sns/oauth2/refresh_token") + h.fake.calls("/sns/userinfo");
    assert_eq!(me(h, browser).await.json()["profile_stale"], true);
    assert_eq!(
        h.fake.calls("/sns/oauth2/refresh_token") + h.fake.calls("/sns/userinfo"),
        calls
    );

    // A new snsapi_userinfo sign-in brings a fresh profile and grant back.
    rename_fake_user(h, "back again");
    browser
        .follow(&h.url("/oauth/authorize?scope=snsapi_userinfo"))
        .await;
    let body = me(h, browser).await.json();
    assert_eq!(body["nickname"], "back again");
    assert_eq!(body.get("profile_stale"), None);
}

#[tokio::test]
async fn an_invalid_refresh_token_40030_keeps_the_session_and_needs_a_new_consent() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_userinfo", "/").await;
    h.clock.advance_ms(DAY_MS + 1000);
    h.fake
        .script("/sns/oauth2/refresh_token", Scripted::ErrCode(40030));
    assert_refresh_token_rejection_keeps_the_session(&h, &mut browser).await;
}

#[tokio::test]
async fn an_expired_refresh_token_42002_keeps_the_session_and_needs_a_new_consent() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_userinfo", "/").await;
    // WeChat's view: 31 days later; ours: 2 days later, so we still try the refresh token.
    lock(&h.fake.state().sns).advance_s(31 * 24 * 3600);
    h.clock.advance_ms(2 * DAY_MS);
    assert_refresh_token_rejection_keeps_the_session(&h, &mut browser).await;
    assert_eq!(h.fake.calls("/sns/oauth2/refresh_token"), 1);
}

#[tokio::test]
async fn wechat_down_during_a_profile_refresh_serves_the_stored_profile_and_keeps_the_grant() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_userinfo", "/").await;
    h.clock.advance_ms(DAY_MS + 1000);
    h.fake
        .script("/sns/oauth2/refresh_token", Scripted::HttpStatus(502));
    let body = me(&h, &mut browser).await;
    assert_eq!(body.status, 200);
    assert_eq!(body.json()["nickname"], FAKE_NICKNAME);
    assert_eq!(body.json()["profile_stale"], true);
    assert!(
        h.store
            .get_user(FAKE_OPENID)
            .await
            .unwrap()
            .unwrap()
            .grant
            .is_some()
    );
    // Next time WeChat answers, the profile refreshes.
    rename_fake_user(&h, "later");
    assert_eq!(me(&h, &mut browser).await.json()["nickname"], "later");
}

#[tokio::test]
async fn a_later_silent_sign_in_refreshes_a_stale_profile_and_keeps_the_userinfo_grant() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_userinfo", "/").await;
    h.clock.advance_ms(2 * DAY_MS);
    rename_fake_user(&h, "silently refreshed");
    let mut other_device = h.browser();
    sign_in(&h, &mut other_device, "snsapi_base", "/").await;
    let user = h.store.get_user(FAKE_OPENID).await.unwrap().unwrap();
    assert_eq!(user.profile.unwrap().nickname, "silently refreshed");
    assert_eq!(user.scope, Scope::UserInfo);
    assert_eq!(user.grant.unwrap().scope, Scope::UserInfo);
}

// ---- sessions and routes ----

#[tokio::test]
async fn me_without_a_session_is_401_json() {
    let h = harness().await;
    let mut browser = h.browser();
    let hop = me(&h, &mut browser).await;
    assert_eq!(hop.status, 401);
    assert_eq!(hop.header("content-type"), Some("application/json"));
    assert_eq!(hop.json()["error"], "not_signed_in");
}

#[tokio::test]
async fn me_with_a_tampered_or_foreign_session_is_401_and_clears_the_cookie() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_base", "/").await;
    let cookies = browser.cookies_for(&h.url("/"));
    let token = cookies
        .split("; ")
        .find_map(|c| c.strip_prefix("wx_session="))
        .unwrap()
        .to_string();
    let (payload, tag) = token.split_once('.').unwrap();
    // Flip one character of the signed payload.
    let mut tampered: Vec<char> = payload.chars().collect();
    tampered[5] = if tampered[5] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let foreign = SessionCodec::new(
        wechat_protocol::secret::Secret::new(b"someone-elses-key-someone-elses-key".to_vec()),
        3600,
    );
    let foreign = foreign.encode(&foreign.issue(FAKE_OPENID, Scope::Base, h.clock.now_s()));
    for bad in [format!("{tampered}.{tag}"), foreign] {
        let mut attacker = Browser::new();
        attacker.set_cookie(&h.base, &format!("wx_session={bad}; Path=/"));
        let hop = me(&h, &mut attacker).await;
        assert_eq!(hop.status, 401);
        assert!(
            hop.set_cookies()
                .iter()
                .any(|c| c.starts_with("wx_session=;") && c.contains("Max-Age=0"))
        );
    }
}

#[tokio::test]
async fn me_with_an_expired_session_is_401() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_base", "/").await;
    h.clock.advance_ms(7 * DAY_MS + 1000);
    assert_eq!(me(&h, &mut browser).await.status, 401);
    let codec = SessionCodec::new(session_key(), 604_800);
    let stale = codec.encode(&codec.issue(FAKE_OPENID, Scope::Base, h.clock.now_s() - 604_800));
    assert_eq!(
        codec.decode(&stale, h.clock.now_s()),
        Err(SessionError::Expired)
    );
}

#[tokio::test]
async fn logout_clears_the_session_and_only_accepts_post() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_base", "/").await;
    let get = browser.get(&h.url("/oauth/logout")).await;
    assert_eq!((get.status, get.header("allow")), (405, Some("POST")));
    assert_eq!(me(&h, &mut browser).await.status, 200);
    let out = browser.post(&h.url("/oauth/logout")).await;
    assert_eq!(out.status, 204);
    assert_eq!(me(&h, &mut browser).await.status, 401);
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_are_405() {
    let h = harness().await;
    let mut browser = h.browser();
    assert_eq!(browser.get(&h.url("/oauth/nope")).await.status, 404);
    assert_eq!(browser.get(&h.url("/oauth/authorize/")).await.status, 404);
    let post = browser.post(&h.url("/oauth/authorize")).await;
    assert_eq!((post.status, post.header("allow")), (405, Some("GET")));
    assert_eq!(browser.post(&h.url("/oauth/callback")).await.status, 405);
    assert_eq!(browser.post(&h.url("/oauth/me")).await.status, 405);
}

//! Ending and protecting a sign-in: logout clears the binding as well as the session, a completed
//! state re-issues its session only for a few seconds (the shared-device Back-button case),
//! logout-everywhere revokes every session through the user's session epoch (same-origin POSTs
//! only), every authorize mints a fresh binding, `__Host-` cookie names on https, and a profile
//! refresh that loses a race never overwrites the newer user item.

use std::sync::{Arc, Mutex};

use crate::support::{Browser, Harness, Hop, config, encode, query_param, sns_client};
use account::clock::{Clock, ManualClock, SystemClock};
use account::oauth::handler::COMPLETED_REPLAY_GRACE_S;
use account::oauth::store::{UserStore, UserWrite};
use account::oauth::{Authorization, OAuth, ProfileStatus, Scope, SnsGrant, User, UserDirectory};
use lambda_http::Body;
use sha2::{Digest, Sha256};
use table::StoreError;
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::FakeWeChat;
use testkit::fake_wechat::sns::FAKE_OPENID;
use wechat_protocol::secret::Secret;

const DAY_MS: i64 = 24 * 3600 * 1000;

async fn harness() -> Harness<EmbeddedStore> {
    Harness::start(EmbeddedStore::in_memory()).await
}

/// Authorize and the consent page; the callback URL WeChat sends the browser to, not yet called.
async fn callback_url(h: &Harness<EmbeddedStore>, browser: &mut Browser, scope: &str) -> String {
    let to_wechat = browser
        .get(&h.url(&format!(
            "/oauth/authorize?scope={scope}&return_to={}",
            encode("/home")
        )))
        .await;
    assert_eq!(to_wechat.status, 302, "{}", to_wechat.body);
    let back = browser.get(to_wechat.location().expect("to WeChat")).await;
    back.location().expect("to the callback").to_string()
}

/// A full sign-in; returns the callback URL it went through.
async fn sign_in(h: &Harness<EmbeddedStore>, browser: &mut Browser, scope: &str) -> String {
    let callback = callback_url(h, browser, scope).await;
    let landed = browser.get(&callback).await;
    assert_eq!(landed.location(), Some("/home#"), "{}", landed.body);
    callback
}

async fn me_status(h: &Harness<EmbeddedStore>, browser: &mut Browser) -> u16 {
    browser.get(&h.url("/oauth/me")).await.status
}

fn binding_of(browser: &Browser, h: &Harness<EmbeddedStore>) -> Option<String> {
    browser
        .cookies_for(&h.url("/oauth/callback"))
        .split("; ")
        .find(|c| c.starts_with("wx_oauth_binding="))
        .map(str::to_string)
}

fn sets_session(hop: &Hop) -> bool {
    hop.set_cookies()
        .iter()
        .any(|c| c.starts_with("wx_session=") && !c.contains("Max-Age=0"))
}

fn logout_everywhere(h: &Harness<EmbeddedStore>) -> String {
    h.url("/oauth/logout?everywhere=1")
}

// ---- logout and replayed callbacks (the shared device) ----

#[tokio::test]
async fn logout_clears_the_binding_cookie_as_well_as_the_session() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_base").await;
    assert!(binding_of(&browser, &h).is_some());
    let out = browser.post(&h.url("/oauth/logout")).await;
    assert_eq!(out.status, 204);
    let cleared = out.set_cookies();
    assert!(
        cleared.iter().any(|c| c.starts_with("wx_oauth_binding=;")
            && c.contains("Max-Age=0")
            && c.contains("Path=/oauth")),
        "{cleared:?}"
    );
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("wx_session=;") && c.contains("Max-Age=0"))
    );
    assert_eq!(binding_of(&browser, &h), None);
    assert_eq!(me_status(&h, &mut browser).await, 401);
}

#[tokio::test]
async fn after_a_logout_the_next_person_replaying_the_callback_is_not_signed_in() {
    let h = harness().await;
    let mut shared_device = h.browser();
    let callback = sign_in(&h, &mut shared_device, "snsapi_base").await;
    shared_device.post(&h.url("/oauth/logout")).await;

    // B presses Back at once: the binding is gone, so the state is not theirs.
    let replay = shared_device.get(&callback).await;
    assert_eq!(replay.status, 403, "{}", replay.body);
    assert!(!sets_session(&replay));
    // B presses Back later: the state has gone too.
    h.clock.advance_ms((COMPLETED_REPLAY_GRACE_S + 1) * 1000);
    let replay = shared_device.get(&callback).await;
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(replay.body.contains("登录链接已失效"), "{}", replay.body);
    assert!(!sets_session(&replay));
    assert_eq!(me_status(&h, &mut shared_device).await, 401);
    assert_eq!(h.fake.calls("/sns/oauth2/access_token"), 1);
}

#[tokio::test]
async fn a_completed_state_re_issues_the_session_only_within_the_grace_period() {
    let h = harness().await;
    let mut browser = h.browser();
    let callback = sign_in(&h, &mut browser, "snsapi_base").await;
    let binding = binding_of(&browser, &h).expect("binding cookie");
    let with_binding = || {
        let tab = Browser::new();
        tab.set_cookie(&h.base, &format!("{binding}; Path=/oauth"));
        tab
    };

    // WeChat's double callback, within the grace: signed in.
    h.clock.advance_ms(COMPLETED_REPLAY_GRACE_S * 1000 - 1000);
    let mut second = with_binding();
    let replay = second.get(&callback).await;
    assert_eq!(replay.location(), Some("/home#"));
    assert!(sets_session(&replay));

    // Past it, even the same binding only gets the readable "link expired" page.
    h.clock.advance_ms(2000);
    let mut late = with_binding();
    let replay = late.get(&callback).await;
    assert_eq!(replay.status, 400);
    assert_eq!(
        replay.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(replay.body.contains("登录链接已失效"), "{}", replay.body);
    assert!(replay.body.contains("href=\"/oauth/authorize?"));
    assert!(!sets_session(&replay));
    assert_eq!(me_status(&h, &mut late).await, 401);
    assert_eq!(h.fake.calls("/sns/oauth2/access_token"), 1);
}

// ---- logout everywhere ----

#[tokio::test]
async fn logout_everywhere_revokes_the_sessions_of_every_browser() {
    let h = harness().await;
    let (mut phone, mut laptop) = (h.browser(), h.browser());
    sign_in(&h, &mut phone, "snsapi_base").await;
    sign_in(&h, &mut laptop, "snsapi_base").await;
    assert_eq!(me_status(&h, &mut phone).await, 200);

    let out = laptop
        .post_with(&logout_everywhere(&h), &[("origin", &h.base)])
        .await;
    assert_eq!(out.status, 204, "{}", out.body);
    assert_eq!(me_status(&h, &mut laptop).await, 401);
    // The phone still holds a validly signed, unexpired cookie: the epoch refuses it.
    let refused = phone.get(&h.url("/oauth/me")).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["error"], "not_signed_in");
    assert!(
        refused
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("wx_session=;") && c.contains("Max-Age=0"))
    );
    assert!(
        h.oauth
            .users()
            .get(FAKE_OPENID)
            .await
            .unwrap()
            .unwrap()
            .session_epoch
            > 0
    );

    // Signing in again works, in the new epoch.
    sign_in(&h, &mut phone, "snsapi_base").await;
    assert_eq!(me_status(&h, &mut phone).await, 200);
}

#[tokio::test]
async fn logout_everywhere_refuses_cross_origin_and_originless_requests() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_base").await;
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "same-site")],
        vec![],
    ] {
        let refused = browser.post_with(&logout_everywhere(&h), &headers).await;
        assert_eq!(refused.status, 403, "{headers:?}");
        assert_eq!(refused.json()["error"], "cross_origin");
        assert_eq!(me_status(&h, &mut browser).await, 200, "{headers:?}");
    }
    let get = browser.get(&logout_everywhere(&h)).await;
    assert_eq!((get.status, get.header("allow")), (405, Some("POST")));
    assert_eq!(me_status(&h, &mut browser).await, 200);

    // A same-origin fetch that sends no Origin but Sec-Fetch-Site is accepted.
    let out = browser
        .post_with(&logout_everywhere(&h), &[("sec-fetch-site", "same-origin")])
        .await;
    assert_eq!(out.status, 204);
    assert_eq!(me_status(&h, &mut browser).await, 401);
}

#[tokio::test]
async fn logout_everywhere_without_a_session_is_401_and_changes_nothing() {
    let h = harness().await;
    let mut signed_in = h.browser();
    sign_in(&h, &mut signed_in, "snsapi_base").await;
    let mut stranger = h.browser();
    let refused = stranger
        .post_with(&logout_everywhere(&h), &[("origin", &h.base)])
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["error"], "not_signed_in");
    assert_eq!(me_status(&h, &mut signed_in).await, 200);
}

// ---- binding fixation and cookie names ----

#[tokio::test]
async fn a_binding_planted_in_the_browser_is_replaced_not_adopted() {
    let h = harness().await;
    let planted = "A".repeat(43);
    let mut victim = h.browser();
    victim.set_cookie(&h.base, &format!("wx_oauth_binding={planted}; Path=/oauth"));
    let callback = callback_url(&h, &mut victim, "snsapi_base").await;
    let fresh = binding_of(&victim, &h).expect("a binding cookie");
    assert_ne!(fresh, format!("wx_oauth_binding={planted}"));
    let state = query_param(&callback, "state").unwrap();
    let item = h
        .store
        .item_json(&format!("oauth_state#{state}"))
        .unwrap()
        .unwrap();
    assert_ne!(
        item["browser_hash"],
        hex::encode(Sha256::digest(planted.as_bytes()))
    );

    // The planter, holding only the planted value, cannot finish the victim's sign-in.
    let mut attacker = Browser::new();
    attacker.set_cookie(&h.base, &format!("wx_oauth_binding={planted}; Path=/oauth"));
    let refused = attacker.get(&callback).await;
    assert_eq!(refused.status, 403);
    assert!(!sets_session(&refused));

    // Every authorize mints another one.
    callback_url(&h, &mut victim, "snsapi_base").await;
    assert_ne!(binding_of(&victim, &h), Some(fresh));
}

fn request(uri: &str, cookie: Option<&str>) -> lambda_http::Request {
    let mut builder = lambda_http::http::Request::builder().uri(uri);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    builder.body(Body::Empty).expect("a request")
}

fn set_cookie(response: &lambda_http::Response<Body>) -> String {
    response.headers()["set-cookie"]
        .to_str()
        .expect("ASCII")
        .to_string()
}

#[tokio::test]
async fn on_https_cookies_are_host_prefixed_and_plain_names_are_ignored() {
    let fake = FakeWeChat::start().await;
    let config = config("https://api.example.com/prod", &fake);
    let http = config.wechat.client().unwrap();
    let clock = Arc::new(ManualClock::at_ms(SystemClock.now_ms()));
    let oauth = OAuth::new(config, EmbeddedStore::in_memory(), http, clock);

    let to_wechat = oauth
        .handle(&request(
            "https://api.example.com/prod/oauth/authorize",
            None,
        ))
        .await;
    let binding_cookie = set_cookie(&to_wechat);
    assert!(
        binding_cookie.starts_with("__Host-wx_oauth_binding="),
        "{binding_cookie}"
    );
    for attribute in ["; Path=/;", "; Secure;", "HttpOnly", "Max-Age=600"] {
        assert!(binding_cookie.contains(attribute), "{binding_cookie}");
    }
    assert!(!binding_cookie.contains("Domain"), "{binding_cookie}");
    let binding = binding_cookie.split(';').next().unwrap().to_string();
    let value = binding.trim_start_matches("__Host-wx_oauth_binding=");

    let consent = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(to_wechat.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    let callback = consent.headers()["location"].to_str().unwrap().to_string();

    // A cookie without the prefix could have been set by a sibling subdomain: not a binding.
    let plain = oauth
        .handle(&request(
            &callback,
            Some(&format!("wx_oauth_binding={value}")),
        ))
        .await;
    assert_eq!(plain.status(), 403);

    let signed_in = oauth.handle(&request(&callback, Some(&binding))).await;
    assert_eq!(signed_in.status(), 302);
    let session_cookie = set_cookie(&signed_in);
    assert!(
        session_cookie.starts_with("__Host-wx_session="),
        "{session_cookie}"
    );
    assert!(session_cookie.contains("; Path=/;") && !session_cookie.contains("Domain"));
    let session = session_cookie.split(';').next().unwrap().to_string();
    let token = session.trim_start_matches("__Host-wx_session=");

    let me = "https://api.example.com/prod/oauth/me";
    assert_eq!(
        oauth.handle(&request(me, Some(&session))).await.status(),
        200
    );
    let plain = format!("wx_session={token}");
    assert_eq!(oauth.handle(&request(me, Some(&plain))).await.status(), 401);
    assert!(oauth.session(&request(me, Some(&session))).await.is_some());
    assert!(oauth.session(&request(me, Some(&plain))).await.is_none());
}

// ---- versioned user item ----

/// Another writer's change to a stored user.
type Change = Arc<dyn Fn(&mut User) + Send + Sync>;

/// A store whose first `put_user` is preceded by another writer's `change` to the stored user:
/// the race a profile refresh or a sign-in can lose.
#[derive(Clone)]
struct RacingStore {
    inner: EmbeddedStore,
    change: Change,
    raced: Arc<Mutex<bool>>,
}

impl RacingStore {
    fn new(inner: EmbeddedStore, change: impl Fn(&mut User) + Send + Sync + 'static) -> Self {
        Self {
            inner,
            change: Arc::new(change),
            raced: Arc::default(),
        }
    }
}

impl UserStore for RacingStore {
    async fn get_user(&self, openid: &str) -> Result<Option<User>, StoreError> {
        self.inner.get_user(openid).await
    }

    async fn put_user(&self, user: &mut User) -> Result<UserWrite, StoreError> {
        let race = {
            let mut raced = self.raced.lock().unwrap();
            !std::mem::replace(&mut *raced, true)
        };
        if race {
            let mut newer = self.inner.get_user(&user.openid).await?.expect("stored");
            (self.change)(&mut newer);
            assert_eq!(self.inner.put_user(&mut newer).await?, UserWrite::Applied);
        }
        self.inner.put_user(user).await
    }
}

#[tokio::test]
async fn a_profile_refresh_that_loses_the_race_keeps_the_newer_grant() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_userinfo").await;
    h.clock.advance_ms(DAY_MS + 1000);

    let store = RacingStore::new(h.store.clone(), |newer| {
        if let Some(grant) = newer.grant.as_mut() {
            grant.access_token = Secret::new("newer-sign-in-grant".into());
        }
    });
    let config = config(&h.base, &h.fake);
    let directory = UserDirectory::new(
        store,
        sns_client(&config),
        Arc::new(h.clock.clone()),
        config.profile_max_age_s,
    );
    let (served, status) = directory.current(FAKE_OPENID).await.unwrap().unwrap();
    assert_eq!(
        h.fake.calls("/sns/oauth2/refresh_token"),
        1,
        "the refresh happened"
    );
    let stored = h.store.get_user(FAKE_OPENID).await.unwrap().unwrap();
    assert_eq!(
        stored.grant.as_ref().unwrap().access_token.expose(),
        "newer-sign-in-grant",
        "the refresh did not overwrite the newer write"
    );
    assert_eq!(served, stored, "the newer user is what is served");
    assert_eq!(status, directory.status(&stored, h.clock.now_s()));
    assert_ne!(status, ProfileStatus::Fresh);
}

#[tokio::test]
async fn a_sign_in_that_races_a_logout_everywhere_merges_into_the_newer_user() {
    let h = harness().await;
    let mut browser = h.browser();
    sign_in(&h, &mut browser, "snsapi_base").await;
    let store = RacingStore::new(h.store.clone(), |newer| newer.session_epoch += 1);
    let config = config(&h.base, &h.fake);
    let directory = UserDirectory::new(
        store,
        sns_client(&config),
        Arc::new(h.clock.clone()),
        config.profile_max_age_s,
    );
    let now = h.clock.now_s();
    let grant = SnsGrant {
        scope: Scope::Base,
        access_token: Secret::new("second-sign-in".into()),
        access_token_expires_at_s: now + 7200,
        refresh_token: Secret::new("second-refresh".into()),
        refresh_token_expires_at_s: now + 30 * 86400,
    };
    let signed_in = directory
        .sign_in(Authorization {
            openid: FAKE_OPENID.into(),
            unionid: None,
            grant,
            snapshot_user: false,
        })
        .await
        .unwrap();
    let stored = h.store.get_user(FAKE_OPENID).await.unwrap().unwrap();
    assert_eq!(signed_in, stored);
    assert_eq!(
        stored.session_epoch, 1,
        "the revocation was not overwritten"
    );
    assert_eq!(
        stored.grant.unwrap().access_token.expose(),
        "second-sign-in",
        "the sign-in's grant was written"
    );
}

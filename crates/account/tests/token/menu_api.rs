//! The custom menu's calls against the fake WeChat API on loopback: apply, read back, diff,
//! delete; WeChat's errcodes for a menu that skipped the offline check; and a token WeChat
//! rejects (40001) costing exactly one stale report and one retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use account::menu::{self, Button, Menu};
use account::token::{AccessToken, CallError, TokenClient, TokenError, TokenSource};
use serde::Deserialize;
use testkit::fake_wechat::{FAKE_APP_ID, FAKE_APP_SECRET, FakeWeChat, Scripted, lock};
use wechat_api::WeChatHttp;
use wechat_protocol::secret::Secret;

/// Tokens straight from the fake's classic endpoint (a new one on every fetch), counting what
/// the token client asks for.
struct CountingSource {
    base: String,
    fetches: AtomicU32,
    stale_reports: AtomicU32,
}

#[derive(Deserialize)]
struct Issued {
    access_token: String,
    expires_in: i64,
}

impl CountingSource {
    fn new(fake: &FakeWeChat) -> Arc<Self> {
        Arc::new(Self {
            base: fake.base_url().to_string(),
            fetches: AtomicU32::new(0),
            stale_reports: AtomicU32::new(0),
        })
    }

    async fn fetch(&self) -> Result<AccessToken, TokenError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let url = format!(
            "{}/cgi-bin/token?grant_type=client_credential&appid={FAKE_APP_ID}&secret={FAKE_APP_SECRET}",
            self.base
        );
        let issued: Issued = reqwest::get(url)
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| TokenError::Invoke(e.to_string()))?
            .json()
            .await
            .map_err(|e| TokenError::Invoke(e.to_string()))?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Ok(AccessToken {
            value: Secret::new(issued.access_token),
            expires_at_ms: now_ms + issued.expires_in * 1000,
        })
    }
}

impl TokenSource for CountingSource {
    async fn current(&self) -> Result<AccessToken, TokenError> {
        self.fetch().await
    }

    async fn report_stale(&self, _stale: &str) -> Result<AccessToken, TokenError> {
        self.stale_reports.fetch_add(1, Ordering::SeqCst);
        self.fetch().await
    }
}

fn http(fake: &FakeWeChat) -> WeChatHttp {
    WeChatHttp::new(fake.base_url(), std::time::Duration::from_secs(5)).unwrap()
}

#[tokio::test]
async fn applied_menus_read_back_identical_and_delete_leaves_none() {
    let fake = FakeWeChat::start().await;
    let source = CountingSource::new(&fake);
    let tokens = TokenClient::new(source.clone());
    let http = http(&fake);

    assert_eq!(menu::fetch(&http, &tokens).await.unwrap(), None);
    let example = Menu::from_toml(menu::EXAMPLE).unwrap();
    menu::create(&http, &tokens, &example).await.unwrap();
    let live = menu::fetch(&http, &tokens).await.unwrap().unwrap();
    assert_eq!(live, example);
    assert!(menu::diff(Some(&live), &example).is_empty());

    menu::delete(&http, &tokens).await.unwrap();
    assert_eq!(menu::fetch(&http, &tokens).await.unwrap(), None);
    assert_eq!(fake.calls("/cgi-bin/menu/create"), 1);
    assert_eq!(fake.calls("/cgi-bin/menu/get"), 3);
    assert_eq!(fake.calls("/cgi-bin/menu/delete"), 1);
    // The client keeps its token: one fetch for five calls.
    assert_eq!(source.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_rejected_token_costs_one_stale_report_and_one_retry() {
    let fake = FakeWeChat::start().await;
    let source = CountingSource::new(&fake);
    let tokens = TokenClient::new(source.clone());
    let http = http(&fake);
    assert_eq!(menu::fetch(&http, &tokens).await.unwrap(), None);

    // Every token issued so far stops working, as after a reset of the AppSecret elsewhere.
    lock(&fake.state().token).revoke_all();
    let example = Menu::from_toml(menu::EXAMPLE).unwrap();
    menu::create(&http, &tokens, &example).await.unwrap();

    assert_eq!(source.stale_reports.load(Ordering::SeqCst), 1);
    assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
    assert_eq!(fake.calls("/cgi-bin/menu/create"), 2);
    assert_eq!(lock(&fake.state().menu).current, Some(example));
}

#[tokio::test]
async fn a_second_rejection_is_returned_not_retried_again() {
    let fake = FakeWeChat::start().await;
    let source = CountingSource::new(&fake);
    let tokens = TokenClient::new(source.clone());
    let http = http(&fake);
    fake.script("/cgi-bin/menu/get", Scripted::ErrCode(40001));
    fake.script("/cgi-bin/menu/get", Scripted::ErrCode(40001));
    let err = menu::fetch(&http, &tokens).await.unwrap_err();
    assert!(
        matches!(&err, CallError::Api(e) if e.errcode() == Some(40001)),
        "{err:?}"
    );
    assert_eq!(fake.calls("/cgi-bin/menu/get"), 2);
    assert_eq!(source.stale_reports.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_fake_refuses_a_menu_over_wechats_limits_with_wechats_errcodes() {
    let fake = FakeWeChat::start().await;
    let tokens = TokenClient::new(CountingSource::new(&fake));
    let http = http(&fake);
    let click = |name: &str| Button {
        kind: Some("click".into()),
        name: name.into(),
        key: Some("K".into()),
        ..Button::default()
    };
    let cases = [
        (Menu { button: vec![] }, 40016),
        (
            Menu {
                button: vec![click("a"), click("b"), click("c"), click("d")],
            },
            40016,
        ),
        (
            Menu {
                button: vec![click("seventeen bytes!!")],
            },
            40018,
        ),
        (
            Menu {
                button: vec![Button {
                    name: "m".into(),
                    sub_button: Some(vec![click(&"x".repeat(61))]),
                    ..Button::default()
                }],
            },
            40025,
        ),
        (
            Menu {
                button: vec![Button {
                    kind: Some("teleport".into()),
                    ..click("a")
                }],
            },
            40017,
        ),
        (
            Menu {
                button: vec![Button {
                    key: Some("k".repeat(129)),
                    ..click("a")
                }],
            },
            40019,
        ),
    ];
    for (menu, errcode) in cases {
        let err = menu::create(&http, &tokens, &menu).await.unwrap_err();
        assert!(
            matches!(&err, CallError::Api(e) if e.errcode() == Some(errcode)),
            "{menu:?}: {err:?}"
        );
    }
    assert_eq!(lock(&fake.state().menu).current, None);
}

//! Channel QR codes against the fake WeChat API on loopback: temporary and permanent codes
//! created through the token client, their images fetched by the URL-encoded ticket with no
//! token, and WeChat's errcodes for what the offline check would have stopped and for the
//! permanent-code limit.

use account::api::ApiConfig;
use account::clock::ManualClock;
use account::qrcode::{self, ChinaDate, CreateQrCode, Lifetime, ScanKind, Scene};
use account::token::{AccessToken, CallError, TokenClient, TokenError, TokenSource};
use serde_json::json;
use table::Table;
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::{FAKE_APP_ID, FAKE_APP_SECRET, FakeWeChat, lock};
use testkit::harness::Logs;
use wechat_api::WeChatHttp;
use wechat_protocol::secret::Secret;

/// Tokens straight from the fake's classic endpoint.
struct FakeTokens {
    base: String,
}

impl TokenSource for FakeTokens {
    async fn current(&self) -> Result<AccessToken, TokenError> {
        let url = format!(
            "{}/cgi-bin/token?grant_type=client_credential&appid={FAKE_APP_ID}&secret={FAKE_APP_SECRET}",
            self.base
        );
        let issued: serde_json::Value = reqwest::get(url)
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| TokenError::Invoke(e.to_string()))?
            .json()
            .await
            .map_err(|e| TokenError::Invoke(e.to_string()))?;
        Ok(AccessToken {
            value: Secret::new(issued["access_token"].as_str().unwrap_or_default().into()),
            expires_at_ms: i64::MAX,
        })
    }

    async fn report_stale(&self, _stale: &str) -> Result<AccessToken, TokenError> {
        self.current().await
    }
}

fn setup(fake: &FakeWeChat) -> (WeChatHttp, TokenClient<FakeTokens>) {
    let http = WeChatHttp::new(fake.base_url(), std::time::Duration::from_secs(5)).unwrap();
    let tokens = TokenClient::new(FakeTokens {
        base: fake.base_url().into(),
    });
    (http, tokens)
}

fn errcode(err: &CallError) -> Option<i64> {
    match err {
        CallError::Api(e) => e.errcode(),
        CallError::Token(_) => None,
    }
}

#[tokio::test]
async fn a_temporary_code_is_created_and_its_image_is_a_png_fetched_without_a_token() {
    let fake = FakeWeChat::start().await;
    let (http, tokens) = setup(&fake);
    let scene = Scene::new("poster-a").unwrap();
    let request = CreateQrCode::new(scene, Lifetime::days(7).unwrap());
    let answer = qrcode::create(&http, &tokens, &request).await.unwrap();
    assert_eq!(answer.expire_seconds, Some(604_800));
    assert!(
        answer.url.starts_with("http://weixin.qq.com/q/"),
        "{}",
        answer.url
    );
    // The ticket holds `+`, `/` and `=`: only the encoded URL finds it.
    assert!(answer.ticket.contains('+') && answer.ticket.contains('/'));

    let url = qrcode::image_url(fake.base_url(), &answer.ticket);
    let image = reqwest::get(&url).await.unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    let bytes = image.bytes().await.unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");

    let unencoded = format!(
        "{}/cgi-bin/showqrcode?ticket={}",
        fake.base_url(),
        answer.ticket
    );
    assert_eq!(reqwest::get(&unencoded).await.unwrap().status(), 404);
    let unknown = qrcode::image_url(fake.base_url(), "gQFnot-issued==");
    assert_eq!(reqwest::get(&unknown).await.unwrap().status(), 404);
}

#[tokio::test]
async fn a_permanent_code_has_no_expiry_and_the_same_scene_is_the_same_code() {
    let fake = FakeWeChat::start().await;
    let (http, tokens) = setup(&fake);
    let request = CreateQrCode::new(Scene::new("门店-01").unwrap(), Lifetime::Permanent);
    let first = qrcode::create(&http, &tokens, &request).await.unwrap();
    let again = qrcode::create(&http, &tokens, &request).await.unwrap();
    assert_eq!(first.expire_seconds, None);
    assert_eq!(first.ticket, again.ticket);
    assert_eq!(lock(&fake.state().qrcode).permanent_count(), 1);
}

#[tokio::test]
async fn past_the_permanent_limit_wechat_answers_45029() {
    let fake = FakeWeChat::start().await;
    let (http, tokens) = setup(&fake);
    lock(&fake.state().qrcode).permanent_limit = 2;
    for name in ["a", "b"] {
        let request = CreateQrCode::new(Scene::new(name).unwrap(), Lifetime::Permanent);
        qrcode::create(&http, &tokens, &request).await.unwrap();
    }
    let third = CreateQrCode::new(Scene::new("c").unwrap(), Lifetime::Permanent);
    let err = qrcode::create(&http, &tokens, &third).await.unwrap_err();
    assert_eq!(errcode(&err), Some(45029), "{err:?}");
    // Temporary codes do not count against it.
    let temporary = CreateQrCode::new(Scene::new("c").unwrap(), Lifetime::days(1).unwrap());
    assert!(qrcode::create(&http, &tokens, &temporary).await.is_ok());
}

/// What the offline check stops, sent anyway, as another tool might: WeChat's answers.
#[tokio::test]
async fn requests_the_offline_check_would_stop_get_wechats_errcodes() {
    let fake = FakeWeChat::start().await;
    let (_, tokens) = setup(&fake);
    let token = tokens.current().await.unwrap().value.expose().clone();
    let url = format!(
        "{}/cgi-bin/qrcode/create?access_token={token}",
        fake.base_url()
    );
    let client = reqwest::Client::new();
    let post = |body: serde_json::Value| client.post(&url).json(&body).send();
    let cases = [
        (
            json!({"action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "a".repeat(65)}}}),
            40053,
        ),
        (
            json!({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": ""}}}),
            40053,
        ),
        (
            json!({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100_001}}}),
            40053,
        ),
        (
            json!({"action_name": "QR_BOGUS", "action_info": {"scene": {"scene_str": "a"}}}),
            40053,
        ),
    ];
    for (body, code) in cases {
        let answer: serde_json::Value = post(body.clone()).await.unwrap().json().await.unwrap();
        assert_eq!(answer["errcode"], code, "{body}");
    }
    // No expire_seconds: WeChat's default of 30 s; past 30 days: capped.
    let default: serde_json::Value = post(json!({"action_name": "QR_STR_SCENE",
        "action_info": {"scene": {"scene_str": "a"}}}))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(default["expire_seconds"], 30);
    let long: serde_json::Value = post(
        json!({"expire_seconds": 9_999_999, "action_name": "QR_STR_SCENE",
        "action_info": {"scene": {"scene_str": "a"}}}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(long["expire_seconds"], 2_592_000);
    let answer: serde_json::Value = client
        .post(format!("{}/cgi-bin/qrcode/create", fake.base_url()))
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["errcode"], 41001);
}

/// The `api` function over `table`, with tokens from the fake and its clock at 2026-12-03 10:00
/// in China.
fn api_function<T: Table>(
    fake: &FakeWeChat,
    table: T,
    app_id: &str,
) -> account::api::Api<T, FakeTokens> {
    let env: std::collections::HashMap<String, String> = [("WECHAT_APP_ID", app_id)]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let (http, tokens) = setup(fake);
    let clock = std::sync::Arc::new(ManualClock::at_ms(1_796_263_200_000));
    account::api::Api::new(
        ApiConfig::from_env(&env).unwrap(),
        table,
        http,
        tokens,
        clock,
    )
}

/// `qrcode_stats` through the api function: counts of the days asked, newest first, in the
/// documented shape; a day count out of range is the caller's mistake (400), not a failure.
async fn the_api_function_serves_qrcode_stats<T: Table + Clone>(table: &T, _id: &str) {
    // Captured (and checked) on this thread, so this test never registers the api function's
    // log callsites while no subscriber listens, which would leave them off for the other
    // tests of this binary that check those lines.
    let (logs, _guard) = Logs::capture();
    let fake = FakeWeChat::start().await;
    let app_id = testkit::harness::unique_app_id();
    let today = ChinaDate::parse("2026-12-03").unwrap();
    let scene = Scene::new("poster-a").unwrap();
    for kind in [ScanKind::Subscribe, ScanKind::Scan, ScanKind::Scan] {
        qrcode::count(table, &app_id, today, &scene, kind)
            .await
            .unwrap();
    }
    qrcode::count(table, &app_id, today.minus(1), &scene, ScanKind::Scan)
        .await
        .unwrap();
    let api = api_function(&fake, table.clone(), &app_id);
    let answer = api
        .handle(json!({"action": "qrcode_stats", "days": 2}))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        json!({"status": 200, "body": {"days": [
            {"date": "2026-12-03", "scenes": {"poster-a": {"subscribe": 1, "scan": 2}}},
            {"date": "2026-12-02", "scenes": {"poster-a": {"subscribe": 0, "scan": 1}}},
        ]}})
    );
    for days in [0, 91] {
        let refused = api
            .handle(json!({"action": "qrcode_stats", "days": days}))
            .await
            .unwrap();
        assert_eq!(refused.status, 400);
        assert_eq!(refused.body["error"], "bad_payload");
    }
    let text = logs.text();
    assert!(
        text.contains("action=\"qrcode_stats\" days=2 outcome=\"read\""),
        "{text}"
    );
}

testkit::on_both_adapters!(the_api_function_serves_qrcode_stats {
    dynamodb: the_api_function_serves_qrcode_stats_on_dynamodb("qrapi"),
    embedded: the_api_function_serves_qrcode_stats_on_the_embedded_store("qrapi"),
});

/// `wx qrcode create`'s call: relayed by the api function to the fake, the answer WeChat's.
#[tokio::test]
async fn the_api_function_relays_qrcode_create() {
    // See `the_api_function_serves_qrcode_stats`: the api function's callsites meet a subscriber.
    let (logs, _guard) = Logs::capture();
    let fake = FakeWeChat::start().await;
    let api = api_function(&fake, EmbeddedStore::in_memory(), FAKE_APP_ID);
    let request = CreateQrCode::new(Scene::new("poster-a").unwrap(), Lifetime::days(1).unwrap());
    let answer = api
        .handle(json!({"method": "POST", "path": "/cgi-bin/qrcode/create",
            "body": serde_json::to_value(&request).unwrap()}))
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    let created: qrcode::QrCodeAnswer = serde_json::from_value(answer.body).unwrap();
    assert_eq!(created.expire_seconds, Some(86_400));
    let code = lock(&fake.state().qrcode)
        .code(&created.ticket)
        .cloned()
        .unwrap();
    assert_eq!(code.scene, "poster-a");
    assert!(logs.text().contains("api call"), "{}", logs.text());
}

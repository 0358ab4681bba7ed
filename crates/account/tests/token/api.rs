//! The `api` function against the fake WeChat API on loopback, with the token service in process
//! as its token source and the table on both adapters: a template send and its receipt end to end
//! (the fake pushes TEMPLATESENDJOBFINISH to the webhook, the receipt is read through the
//! action), a caller's retry with the same key sending once, 40001 costing one refresh and one
//! resend, -1 retried within bounds, refusals that call nobody, and the token in neither an
//! answer nor a log line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use account::api::{Api, ApiConfig, ApiFailure};
use account::clock::{self, SharedClock};
use account::notify::ReceiptRecorder;
use account::rules::Rules;
use account::token::{TokenClient, TokenService};
use account::webhook::{Webhook, WebhookConfig};
use serde_json::{Value, json};
use table::embedded::EmbeddedStore;
use table::{StoreError, Table, Write, WriteOutcome};
use testkit::fake_wechat::template::{FAKE_TEMPLATE_ID, PATH, PushTarget};
use testkit::fake_wechat::{FakeWeChat, Scripted, lock};
use testkit::harness::Logs;
use testkit::harness::tokens::*;
use wechat_protocol::crypto::MessageCrypto;
use wechat_protocol::wechat_side::Mode;

const OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const WEBHOOK_TOKEN: &str = "apiTestWebhookToken0123456789abc";

type Source<T> = Arc<CountingSource<Arc<TokenService<T>>>>;

struct Setup<T: Table + Clone + 'static> {
    fake: FakeWeChat,
    app_id: String,
    table: T,
    source: Source<T>,
    api: Api<T, Source<T>>,
}

async fn setup<T: Table + Clone + 'static>(
    table: T,
    app_id: &str,
    extra: &[(&str, &str)],
) -> Setup<T> {
    setup_with(table, app_id, extra, |_| {}).await
}

/// [`setup`] with the function's configuration changed by `tweak` after it is read.
async fn setup_with<T: Table + Clone + 'static>(
    table: T,
    app_id: &str,
    extra: &[(&str, &str)],
    tweak: impl FnOnce(&mut ApiConfig),
) -> Setup<T> {
    let fake = fake_on_wall_clock(app_id).await;
    let clock: SharedClock = clock::system();
    // The classic token API: every stale report fetches a new token (the stable API's forced
    // refresh is limited to one per 30 s, which the second round below would hit).
    let tokens = config(&fake, &[("WECHAT_TOKEN_API", "classic")]);
    let service = Arc::new(TokenService::new(
        tokens.clone(),
        table.clone(),
        tokens.wechat.client().unwrap(),
        clock.clone(),
    ));
    let source = Arc::new(CountingSource::new(service));
    let mut env: Vec<(&str, &str)> = vec![("WECHAT_APP_ID", app_id), ("API_RETRY_BACKOFF_MS", "1")];
    env.extend_from_slice(extra);
    let env: std::collections::HashMap<String, String> =
        env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    let mut api_config = ApiConfig::from_env(&env).unwrap();
    tweak(&mut api_config);
    let api = Api::new(
        api_config,
        table.clone(),
        config(&fake, &[]).wechat.client().unwrap(),
        TokenClient::with_clock(source.clone(), clock.clone()),
        clock,
    );
    Setup {
        fake,
        app_id: app_id.to_string(),
        table,
        source,
        api,
    }
}

fn send(key: Option<&str>) -> Value {
    let mut body = json!({
        "touser": OPENID, "template_id": FAKE_TEMPLATE_ID, "url": "https://example.com/orders/1",
        "data": {"thing1": {"value": "Your order has shipped"}, "time2": {"value": "2026-01-01 08:00", "color": "#173177"}}
    });
    if let Some(key) = key {
        body["client_msg_id"] = key.into();
    }
    json!({"method": "POST", "path": PATH, "body": body})
}

fn receipt(msgid: &Value) -> Value {
    json!({"action": "template_receipt", "msgid": msgid})
}

impl<T: Table + Clone + 'static> Setup<T> {
    async fn call(&self, payload: Value) -> Value {
        serde_json::to_value(self.api.handle(payload).await.unwrap()).unwrap()
    }

    fn delivered(&self) -> usize {
        lock(&self.fake.state().template).sent().len()
    }

    /// The message function's webhook (safe mode, receipts on), served on loopback.
    async fn webhook(&self) -> String {
        let env: std::collections::HashMap<String, String> = [
            ("WECHAT_TOKEN", WEBHOOK_TOKEN),
            ("WECHAT_APP_ID", self.app_id.as_str()),
            ("WECHAT_ENCODING_AES_KEY", AES_KEY),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        let handler = ReceiptRecorder::recording(
            Rules::from_env(&env).unwrap(),
            self.table.clone(),
            self.app_id.clone(),
            clock::system(),
        );
        let webhook = Arc::new(Webhook::new(
            WebhookConfig::from_env(&env).unwrap(),
            handler,
        ));
        let (base, _task) = testkit::local_server::spawn_on_loopback(move |req| {
            let webhook = webhook.clone();
            async move { webhook.handle(&req).await }
        })
        .await;
        format!("{base}/wechat")
    }

    async fn push_finish(&self, url: &str, msgid: u64, status: &str) -> (u16, String) {
        let crypto = MessageCrypto::new(AES_KEY, &self.app_id).unwrap();
        let target = PushTarget {
            url,
            token: WEBHOOK_TOKEN,
            crypto: Some(&crypto),
            mode: Mode::Safe,
        };
        self.fake
            .push_template_finish(msgid, status, &target)
            .await
            .unwrap()
    }
}

async fn a_template_send_and_its_receipt_end_to_end<T: Table + Clone + 'static>(
    table: &T,
    app_id: &str,
) {
    let s = setup(table.clone(), app_id, &[]).await;
    let answer = s.call(send(None)).await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(answer["errcode"], 0);
    assert_eq!(answer["outcome"], "sent");
    let msgid = answer["body"]["msgid"].clone();
    assert!(msgid.is_u64(), "{answer}");
    // The function gave the send a key of its own.
    let sent = lock(&s.fake.state().template).sent()[0].body.clone();
    assert!(
        sent["client_msg_id"]
            .as_str()
            .is_some_and(|k| k.starts_with("auto-")),
        "{sent}"
    );

    // Before WeChat's event: pending.
    let pending = s.call(receipt(&msgid)).await;
    assert_eq!(pending["status"], 200, "{pending}");
    assert_eq!(pending["body"]["status"], "pending");
    assert_eq!(pending["body"]["msgid"], msgid.to_string());

    let url = s.webhook().await;
    let (status, _) = s
        .push_finish(&url, msgid.as_u64().unwrap(), "failed:user block")
        .await;
    assert_eq!(status, 200);
    let finished = s.call(receipt(&msgid)).await;
    assert_eq!(
        finished["body"]["status"], "failed:user block",
        "{finished}"
    );
    assert!(finished["body"]["finished_at"].is_i64());
    // The event's write updates the pending receipt in place: the send's time stays.
    assert!(pending["body"]["sent_at"].is_i64(), "{pending}");
    assert_eq!(finished["body"]["sent_at"], pending["body"]["sent_at"]);

    // WeChat's retry of the push (or a later one) changes nothing: the first receipt wins.
    let (status, _) = s
        .push_finish(&url, msgid.as_u64().unwrap(), "success")
        .await;
    assert_eq!(status, 200);
    let again = s.call(receipt(&msgid)).await;
    assert_eq!(again["body"]["status"], "failed:user block");

    // A msgid the table has no receipt for: 404.
    let unknown = s.call(receipt(&json!("1"))).await;
    assert_eq!(unknown["status"], 404);
    assert_eq!(unknown["body"]["error"], "not_found");
}

testkit::on_both_adapters!(a_template_send_and_its_receipt_end_to_end_for {
    dynamodb: a_template_send_and_its_receipt_end_to_end_on_dynamodb("api-e2e"),
    embedded: a_template_send_and_its_receipt_end_to_end_on_the_embedded_store("api-e2e"),
});

/// The on_both_adapters contract's second argument is a key prefix; the fake and the receipts
/// need an AppID, unique per run on the shared dynalite table.
async fn a_template_send_and_its_receipt_end_to_end_for<T: Table + Clone + 'static>(
    table: &T,
    _prefix: &str,
) {
    a_template_send_and_its_receipt_end_to_end(table, &testkit::harness::unique_app_id()).await;
}

async fn a_receipt_that_arrives_before_the_send_is_recorded_stays<T: Table + Clone + 'static>(
    table: &T,
    _prefix: &str,
) {
    let app_id = testkit::harness::unique_app_id();
    let s = setup(table.clone(), &app_id, &[]).await;
    let msgid = "4242";
    account::notify::record_finished(&s.table, &app_id, msgid, "success", 1_767_225_600)
        .await
        .unwrap();
    let write = account::notify::record_sent(&s.table, &app_id, msgid, 1_767_225_601)
        .await
        .unwrap();
    assert_eq!(write, account::notify::ReceiptWrite::AlreadyRecorded);
    let read = s.call(receipt(&json!(msgid))).await;
    assert_eq!(read["body"]["status"], "success");
}

testkit::on_both_adapters!(a_receipt_that_arrives_before_the_send_is_recorded_stays {
    dynamodb: an_early_receipt_stays_on_dynamodb("api-early"),
    embedded: an_early_receipt_stays_on_the_embedded_store("api-early"),
});

#[tokio::test]
async fn a_callers_retry_with_the_same_key_sends_once() {
    let s = setup(
        EmbeddedStore::in_memory(),
        testkit::fake_wechat::FAKE_APP_ID,
        &[],
    )
    .await;
    let first = s.call(send(Some("order-1-shipped"))).await;
    let retry = s.call(send(Some("order-1-shipped"))).await;
    assert_eq!(first["outcome"], "sent");
    assert_eq!(retry["outcome"], "sent");
    assert_eq!(first["body"]["msgid"], retry["body"]["msgid"]);
    assert_eq!(s.fake.calls(PATH), 2);
    assert_eq!(s.delivered(), 1);
}

#[tokio::test]
async fn a_rejected_token_on_a_send_is_one_refresh_and_one_resend() {
    let s = setup(
        EmbeddedStore::in_memory(),
        testkit::fake_wechat::FAKE_APP_ID,
        &[],
    )
    .await;
    s.fake.script(PATH, Scripted::ErrCode(40001));
    let answer = s.call(send(None)).await;
    assert_eq!(answer["outcome"], "sent", "{answer}");
    assert_eq!(s.source.stale_reports(), 1);
    assert_eq!(s.fake.calls(PATH), 2);
    assert_eq!(s.delivered(), 1);

    // Rejected again after the refresh: WeChat's answer, no loop.
    s.fake.script(PATH, Scripted::ErrCode(40001));
    s.fake.script(PATH, Scripted::ErrCode(40001));
    let answer = s.call(send(None)).await;
    assert_eq!(answer["errcode"], 40001, "{answer}");
    assert_eq!(answer["outcome"], "access_token_rejected");
    assert_eq!(s.source.stale_reports(), 2);
    assert_eq!(s.fake.calls(PATH), 4);
}

#[tokio::test]
async fn a_busy_wechat_is_retried_within_bounds_and_notifies_once() {
    let s = setup(
        EmbeddedStore::in_memory(),
        testkit::fake_wechat::FAKE_APP_ID,
        &[],
    )
    .await;
    s.fake.script(PATH, Scripted::ErrCode(-1));
    s.fake.script(PATH, Scripted::ErrCode(-1));
    let answer = s.call(send(None)).await;
    assert_eq!(answer["outcome"], "sent", "{answer}");
    assert_eq!(s.fake.calls(PATH), 3);
    for _ in 0..3 {
        s.fake.script(PATH, Scripted::ErrCode(-1));
    }
    let answer = s.call(send(None)).await;
    assert_eq!(answer["errcode"], -1);
    assert_eq!(answer["outcome"], "wechat_busy");
    assert_eq!(
        s.fake.calls(PATH),
        6,
        "3 attempts (API_RETRY_ATTEMPTS), no more"
    );
    assert_eq!(s.delivered(), 1);
}

#[tokio::test]
async fn no_retry_of_a_busy_wechat_begins_after_the_retry_window() {
    // The window is what keeps every retry inside the function's timeout; at zero, the first
    // retry's pause already ends past it.
    let s = setup_with(
        EmbeddedStore::in_memory(),
        testkit::fake_wechat::FAKE_APP_ID,
        &[("API_RETRY_ATTEMPTS", "5")],
        |config| config.retry_window = Duration::ZERO,
    )
    .await;
    s.fake.script(PATH, Scripted::ErrCode(-1));
    let answer = s.call(send(None)).await;
    assert_eq!(answer["outcome"], "wechat_busy", "{answer}");
    assert_eq!(s.fake.calls(PATH), 1, "5 attempts allowed, none begun late");
    assert_eq!(s.delivered(), 0);
}

#[tokio::test]
async fn refusals_are_answers_that_call_nobody() {
    let s = setup(
        EmbeddedStore::in_memory(),
        testkit::fake_wechat::FAKE_APP_ID,
        &[(
            "API_ALLOWED_PATHS",
            "/cgi-bin/message/template/send,/cgi-bin/menu/get",
        )],
    )
    .await;
    for (payload, status, error) in [
        (
            json!({"method": "POST", "path": "/cgi-bin/clear_quota", "body": {}}),
            403,
            "path_not_allowed",
        ),
        (
            json!({"method": "GET", "path": "/cgi-bin/user/info", "query": {"openid": OPENID}}),
            403,
            "path_not_allowed",
        ),
        (
            json!({"method": "GET", "path": "/cgi-bin/../cgi-bin/menu/get"}),
            400,
            "bad_path",
        ),
        (
            json!({"method": "GET", "path": "/cgi-bin/menu/get", "query": {"access_token": "mine"}}),
            400,
            "access_token_in_query",
        ),
        (
            json!({"method": "GET", "path": "/cgi-bin/menu/get", "body": {"x": 1}}),
            400,
            "body_on_get",
        ),
        (
            json!({"method": "POST", "path": PATH, "body": {"touser": OPENID}}),
            400,
            "bad_body",
        ),
        (json!({"action": "unknown"}), 400, "bad_payload"),
    ] {
        let answer = s.call(payload.clone()).await;
        assert_eq!(answer["status"], status, "{payload}: {answer}");
        assert_eq!(answer["body"]["error"], error, "{payload}: {answer}");
        assert!(
            answer["body"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    assert_eq!(s.fake.calls(CLASSIC), 0, "no token was fetched");
    assert_eq!(s.fake.calls(PATH), 0);

    // An allowed GET goes through with its query: WeChat's own errcode, named.
    let menu = s
        .call(json!({"method": "GET", "path": "/cgi-bin/menu/get"}))
        .await;
    assert_eq!(menu["status"], 200);
    assert_eq!(menu["errcode"], 46003, "{menu}");
    assert_eq!(menu["outcome"], "wechat_error");
}

#[tokio::test]
async fn no_obtainable_token_is_a_lambda_error_not_an_answer() {
    let s = setup(
        EmbeddedStore::in_memory(),
        testkit::fake_wechat::FAKE_APP_ID,
        &[],
    )
    .await;
    s.fake.script(CLASSIC, Scripted::ErrCode(40164));
    let failure = s.api.handle(send(None)).await.unwrap_err();
    assert!(matches!(failure, ApiFailure::Token(_)), "{failure}");
    assert_eq!(failure.kind(), "NoAccessToken");
    assert_eq!(s.fake.calls(PATH), 0);
}

#[tokio::test]
async fn the_token_and_personal_data_are_in_neither_answer_nor_log() {
    let (logs, _guard) = Logs::capture();
    let s = setup(
        EmbeddedStore::in_memory(),
        testkit::fake_wechat::FAKE_APP_ID,
        &[],
    )
    .await;
    let first = s.api.tokens().current().await.unwrap();
    s.fake.script(PATH, Scripted::ErrCode(40001));
    let mut answers = vec![s.call(send(Some("order-9"))).await];
    answers.push(
        s.call(json!({"method": "GET", "path": "/cgi-bin/menu/get"}))
            .await,
    );
    answers.push(s.call(json!({"method": "GET", "path": "/cgi-bin/user/info", "query": {"openid": OPENID, "lang": "zh_CN"}})).await);
    let replacement = s.api.tokens().current().await.unwrap();
    assert_ne!(
        first.value, replacement.value,
        "the 40001 replaced the token"
    );
    let tokens = [
        first.value.expose().clone(),
        replacement.value.expose().clone(),
    ];
    let logs = logs.text();
    assert!(logs.contains("api call"), "{logs}");
    assert!(logs.contains("latency_ms"), "{logs}");
    for answer in &answers {
        let text = answer.to_string();
        for token in &tokens {
            assert!(!text.contains(token.as_str()), "{text}");
        }
    }
    for token in &tokens {
        assert!(
            !logs.contains(token.as_str()),
            "a token in the log:\n{logs}"
        );
    }
    for personal in [OPENID, "Your order has shipped", "order-9", "zh_CN"] {
        assert!(!logs.contains(personal), "{personal} in the log:\n{logs}");
    }
}

/// A table that counts every operation and passes it on.
#[derive(Clone)]
struct CountingTable {
    inner: EmbeddedStore,
    operations: Arc<AtomicU64>,
}

impl Table for CountingTable {
    async fn read(&self, pk: &str) -> Result<Option<Value>, StoreError> {
        self.operations.fetch_add(1, Ordering::SeqCst);
        self.inner.read(pk).await
    }

    async fn write(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        self.operations.fetch_add(1, Ordering::SeqCst);
        self.inner.write(write).await
    }
}

#[tokio::test]
async fn with_receipts_off_the_event_never_touches_the_table() {
    use wechat_protocol::message::Message;
    use wechat_protocol::reply::{MessageHandler, Reply};
    let table = CountingTable {
        inner: EmbeddedStore::in_memory(),
        operations: Arc::default(),
    };
    let xml = "<xml><ToUserName><![CDATA[gh_fa4e00000001]]></ToUserName><FromUserName><![CDATA[oUser_1]]></FromUserName><CreateTime>1767225600</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200228332</MsgID><Status><![CDATA[success]]></Status></xml>";
    let event = Message::parse(xml.as_bytes()).unwrap();
    let rules = || Rules::from_env(&[("WECHAT_TOKEN", "t")]).unwrap();

    let off: ReceiptRecorder<Rules, CountingTable> = ReceiptRecorder::off(rules());
    assert_eq!(off.reply(&event).await, rules().reply(&event).await);
    assert_eq!(table.operations.load(Ordering::SeqCst), 0);

    let on = ReceiptRecorder::recording(
        rules(),
        table.clone(),
        "wxfa4e000000000001",
        clock::system(),
    );
    assert_eq!(on.reply(&event).await, Reply::Success);
    assert_eq!(
        table.operations.load(Ordering::SeqCst),
        1,
        "one conditional write, no read"
    );
    // A text message goes to the rules, recording or not, without the table.
    let text = Message::parse(b"<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oUser_1]]></FromUserName><CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>1</MsgId></xml>").unwrap();
    assert_eq!(on.reply(&text).await, rules().reply(&text).await);
    assert_eq!(table.operations.load(Ordering::SeqCst), 1);
}

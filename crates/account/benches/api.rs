//! The api function's warm overhead and the receipt recorder's cost on the webhook.
//!
//! - `api/direct`: one call to the fake WeChat API on loopback (`GET /cgi-bin/menu/get`, answered
//!   46003) through the WeChat client, the token in hand: what a caller holding a token pays.
//! - `api/through_function`: the same call through `Api::handle` (payload parsing, allow-list,
//!   the token client's cached token, the relay, the answer and its log line): the difference is
//!   the function's own warm overhead, Lambda's invoke excluded.
//! - `webhook/<push>/<handler>`: a plaintext push through `Webhook::message` (signature, parse,
//!   handler, reply) with the reply rules alone (before), the rules wrapped in a recorder that is
//!   off (`TEMPLATE_RECEIPTS` unset), and one that records into the embedded store; for a text
//!   message and for `TEMPLATESENDJOBFINISH` (a retry after the first: one conditional write that
//!   loses).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use account::api::{Api, ApiConfig};
use account::clock::ManualClock;
use account::notify::ReceiptRecorder;
use account::rules::Rules;
use account::token::{TokenClient, TokenConfig, TokenService};
use account::webhook::{Webhook, WebhookConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use lambda_http::{Body, Request};
use serde_json::json;
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::{FAKE_APP_ID, FAKE_APP_SECRET, FakeWeChat};
use wechat_api::{Method, WireRequest};
use wechat_protocol::reply::MessageHandler;
use wechat_protocol::wechat_side::{Account, Mode, sign_push};

const TOKEN: &str = "benchToken0123456789";
const NOW_S: i64 = 1_767_225_600;
const TEXT: &str = "<xml><ToUserName><![CDATA[gh_fa4e00000001]]></ToUserName><FromUserName><![CDATA[oUpF8uMuAJO_M2pxb1Q9zNjWeS6o]]></FromUserName><CreateTime>1767225600</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content><MsgId>6060349595123187712</MsgId></xml>";
const FINISH: &str = "<xml><ToUserName><![CDATA[gh_fa4e00000001]]></ToUserName><FromUserName><![CDATA[oUpF8uMuAJO_M2pxb1Q9zNjWeS6o]]></FromUserName><CreateTime>1767225600</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200228332</MsgID><Status><![CDATA[success]]></Status></xml>";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
}

fn api(c: &mut Criterion) {
    let rt = runtime();
    let fake = rt.block_on(FakeWeChat::start());
    let env: std::collections::HashMap<String, String> = [
        ("WECHAT_APP_ID", FAKE_APP_ID),
        ("WECHAT_APP_SECRET", FAKE_APP_SECRET),
        ("WECHAT_API_BASE", fake.base_url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect();
    let config = TokenConfig::from_env(&env).expect("config");
    let http = config.wechat.client().expect("client");
    let clock = account::clock::system();
    let store = EmbeddedStore::in_memory();
    let service = Arc::new(TokenService::new(
        config,
        store.clone(),
        http.clone(),
        clock.clone(),
    ));
    let tokens = TokenClient::with_clock(service, clock.clone());
    let token = rt
        .block_on(tokens.current())
        .expect("a token from the fake");
    let api = Api::new(
        ApiConfig::from_env(&env).expect("api config"),
        store,
        http.clone(),
        tokens,
        clock,
    );

    let direct = || {
        let request = WireRequest {
            method: Method::Get,
            path: "/cgi-bin/menu/get".into(),
            query: format!("access_token={}", token.value.expose()),
            json_body: None,
        };
        http.send_raw(request)
    };
    let answer = rt.block_on(direct()).expect("the fake answers");
    assert!(String::from_utf8_lossy(&answer.body).contains("46003"));
    c.bench_function("api/direct", |b| b.iter(|| rt.block_on(direct())));

    let payload = json!({"method": "GET", "path": "/cgi-bin/menu/get"});
    let answer = rt.block_on(api.handle(payload.clone())).expect("an answer");
    assert_eq!(answer.errcode, Some(46003));
    c.bench_function("api/through_function", |b| {
        b.iter(|| rt.block_on(api.handle(black_box(payload.clone()))))
    });
    // Relay alone (no payload parsing or allow-list), for the split.
    c.bench_function("api/relay_only", |b| {
        b.iter(|| rt.block_on(api.relay(Method::Get, "/cgi-bin/menu/get", &BTreeMap::new(), None)))
    });
    drop(fake);
}

fn signed(xml: &str) -> Request {
    let account = Account {
        token: TOKEN,
        crypto: None,
    };
    let push = sign_push(
        &account,
        Mode::Plaintext,
        xml,
        "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        NOW_S,
        "nonce",
    )
    .expect("signed");
    let query: String = form_urlencoded_pairs(&push.query);
    lambda_http::http::Request::builder()
        .method("POST")
        .uri(format!("/wechat?{query}"))
        .body(Body::Text(push.body))
        .expect("a request")
}

fn form_urlencoded_pairs(pairs: &[(&'static str, String)]) -> String {
    serde_urlencoded::to_string(pairs).expect("a query")
}

fn webhook<H: MessageHandler>(handler: H) -> Webhook<H> {
    let config = WebhookConfig::read(&[("WECHAT_TOKEN", TOKEN)]).expect("config");
    Webhook::new(config, handler).with_clock(Arc::new(ManualClock::at_ms(NOW_S * 1000)))
}

fn receipts(c: &mut Criterion) {
    let rt = runtime();
    let rules = || Rules::from_env(&[("WECHAT_TOKEN", TOKEN)]).expect("rules");
    let before = webhook(rules());
    let off = webhook(ReceiptRecorder::<Rules, EmbeddedStore>::off(rules()));
    let on = webhook(ReceiptRecorder::recording(
        rules(),
        EmbeddedStore::in_memory(),
        FAKE_APP_ID,
        Arc::new(ManualClock::at_ms(NOW_S * 1000)),
    ));
    for (push, xml) in [("text", TEXT), ("template_finish", FINISH)] {
        let request = signed(xml);
        assert_eq!(rt.block_on(before.message(&request)).status(), 200);
        assert_eq!(rt.block_on(on.message(&request)).status(), 200);
        c.bench_function(&format!("webhook/{push}/rules"), |b| {
            b.iter(|| rt.block_on(before.message(black_box(&request))))
        });
        c.bench_function(&format!("webhook/{push}/recorder_off"), |b| {
            b.iter(|| rt.block_on(off.message(black_box(&request))))
        });
        c.bench_function(&format!("webhook/{push}/recorder_on"), |b| {
            b.iter(|| rt.block_on(on.message(black_box(&request))))
        });
    }
}

criterion_group!(benches, api, receipts);
criterion_main!(benches);

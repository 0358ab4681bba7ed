//! The late path with every real part: the message side and the worker on dynalite, the signed
//! forward client against a scripted service on loopback, and the customer-service client sending
//! through the fake WeChat API with tokens from the central token service. What the user gets is
//! read from the fake's record of `/cgi-bin/message/custom/send`. Run under
//! `node scripts/with-dynalite.mjs`.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use account::clock;
use account::customer_service::CustomerService;
use account::forward::{
    ForwardingRules, HttpForwarder, InProcessLauncher, MessageSide, MsgState, Worker,
};
use account::rules::Rules;
use account::token::{TokenClient, TokenService};
use table::dynamo::DynamoTable;
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::custom::PATH as CUSTOM_SEND;
use testkit::fake_wechat::{FakeWeChat, Scripted, lock};
use testkit::harness::tokens::{STABLE, config, fake_on_wall_clock};
use wechat_api::WeChatHttp;
use wechat_protocol::reply::{MessageHandler, Reply};

type Tokens = Arc<TokenService<EmbeddedStore>>;
type Channel = CustomerService<Tokens>;
type Handler = ForwardingRules<DynamoTable, InProcessLauncher<DynamoTable, HttpForwarder, Channel>>;

/// A message-function instance whose worker sends late answers through the fake WeChat API.
async fn instance(service: &ScriptedService, fake: &FakeWeChat, timeout_ms: u64) -> Handler {
    let rules = Rules::from_toml(&format!(
        "[default]\ntype = \"forward\"\nurl = \"{}\"\ntimeout_ms = {timeout_ms}\n",
        service.url
    ))
    .unwrap();
    let tokens: Tokens = Arc::new(testkit::harness::tokens::service(
        config(fake, &[]),
        EmbeddedStore::in_memory(),
        clock::system(),
    ));
    let client = Arc::new(TokenClient::with_clock(tokens, clock::system()));
    let http = WeChatHttp::new(fake.base_url(), Duration::from_millis(500)).unwrap();
    let channel = CustomerService::new(http, client);
    let forwarder = HttpForwarder::new(secret(), Duration::from_secs(20), clock::system()).unwrap();
    let worker = Worker::new(
        testkit::harness::dynalite_table().await,
        forwarder,
        channel,
        &rules,
    );
    let launcher = InProcessLauncher::new(Arc::new(worker));
    let side = MessageSide::new(
        testkit::harness::dynalite_table().await,
        launcher,
        clock::system(),
    );
    ForwardingRules::new(rules, Some(side))
}

fn delivered_to(fake: &FakeWeChat, openid: &str) -> Vec<String> {
    lock(&fake.state().custom)
        .delivered()
        .into_iter()
        .filter(|call| call.touser.as_deref() == Some(openid))
        .map(|call| {
            call.body["text"]["content"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn a_slow_service_answer_reaches_the_user_once_as_a_customer_service_message() {
    let service = ScriptedService::start().await;
    service.answer(600, 200, r#"{"type":"text","content":"slow answer 你好"}"#);
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    let handler = instance(&service, &fake, 300).await;
    let msg = fresh_text("slow");

    assert_eq!(handler.reply(&msg).await, Reply::Success);
    assert_eq!(
        settled_state(&account::forward::dedup_key(&msg)).await,
        Some(MsgState::Sent)
    );
    assert_eq!(
        delivered_to(&fake, &msg.from_user_name),
        ["slow answer 你好"]
    );
    assert_eq!(service.calls(), 1);

    // WeChat's retry of the same push after the late send: no second call, no second message.
    assert_eq!(handler.reply(&msg).await, Reply::Success);
    assert_eq!(service.calls(), 1);
    assert_eq!(fake.calls(CUSTOM_SEND), 1);
}

#[tokio::test]
async fn a_fast_service_answer_is_passive_and_nothing_is_sent_late() {
    let service = ScriptedService::start().await;
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    let handler = instance(&service, &fake, 3500).await;
    let msg = fresh_text("fast");

    assert_eq!(
        handler.reply(&msg).await,
        Reply::text("hello from the service")
    );
    assert!(matches!(
        settled_state(&account::forward::dedup_key(&msg)).await,
        Some(MsgState::Answered(_))
    ));
    assert_eq!(fake.calls(CUSTOM_SEND), 0);
    assert_eq!(fake.calls(STABLE), 0, "no token was even needed");
}

#[tokio::test]
async fn a_token_rejected_on_the_late_send_is_refreshed_once_and_the_answer_resent_once() {
    let service = ScriptedService::start().await;
    service.answer(400, 200, r#"{"type":"text","content":"after a refresh"}"#);
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    let handler = instance(&service, &fake, 100).await;
    fake.script(CUSTOM_SEND, Scripted::ErrCode(40001));
    let msg = fresh_text("stale token");

    assert_eq!(handler.reply(&msg).await, Reply::Success);
    assert_eq!(
        settled_state(&account::forward::dedup_key(&msg)).await,
        Some(MsgState::Sent)
    );
    assert_eq!(
        delivered_to(&fake, &msg.from_user_name),
        ["after a refresh"]
    );
    assert_eq!(
        fake.calls(CUSTOM_SEND),
        2,
        "the rejected send and one resend"
    );
    assert_eq!(
        fake.calls(STABLE),
        2,
        "the first token and one forced refresh"
    );
}

#[tokio::test]
async fn a_service_answering_garbage_sends_the_user_nothing() {
    let service = ScriptedService::start().await;
    service.answer(400, 200, "<html>oops</html>");
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    let handler = instance(&service, &fake, 100).await;
    let msg = fresh_text("garbage");

    assert_eq!(handler.reply(&msg).await, Reply::Success);
    assert!(matches!(
        settled_state(&account::forward::dedup_key(&msg)).await,
        Some(MsgState::Failed { .. })
    ));
    assert_eq!(fake.calls(CUSTOM_SEND), 0);
}

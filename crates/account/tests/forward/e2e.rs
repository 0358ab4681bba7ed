//! The late path with every real part: the message side and the worker on dynalite, the signed
//! forward client against a scripted service on loopback, and the customer-service client sending
//! through the fake WeChat API with tokens from the central token service. What the user gets is
//! read from the fake's record of `/cgi-bin/message/custom/send` (and `…/custom/typing`). Run
//! under `node scripts/with-dynalite.mjs`.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use account::clock;
use account::customer_service::{CustomerService, DEFAULT_RETRY};
use account::forward::{
    ForwardingRules, HttpForwarder, InProcessLauncher, LateRetry, MessageSide, MsgState, Worker,
};
use account::rules::Rules;
use account::token::{RetryPolicy, TokenClient, TokenService};
use table::dynamo::DynamoTable;
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::custom::{MAX_TEXT_BYTES, PATH as CUSTOM_SEND, TYPING_PATH};
use testkit::fake_wechat::{FakeWeChat, Scripted, lock};
use testkit::harness::tokens::{STABLE, config, fake_on_wall_clock};
use wechat_api::WeChatHttp;
use wechat_protocol::reply::{MessageHandler, Reply};

type Tokens = Arc<TokenService<EmbeddedStore>>;
type Channel = CustomerService<Tokens>;
type Handler = ForwardingRules<DynamoTable, InProcessLauncher<DynamoTable, HttpForwarder, Channel>>;

/// A message-function instance whose worker sends late answers through the fake WeChat API.
async fn instance(service: &ScriptedService, fake: &FakeWeChat, timeout_ms: u64) -> Handler {
    let rules = format!(
        "[default]\ntype = \"forward\"\nurl = \"{}\"\ntimeout_ms = {timeout_ms}\n",
        service.url
    );
    instance_with(&rules, fake, DEFAULT_RETRY).await
}

/// [`instance`] with these reply rules, the customer-service client retrying WeChat's busy
/// answers as `busy` says, and the worker trying a late message again after 50 ms, then 100 ms.
async fn instance_with(rules: &str, fake: &FakeWeChat, busy: RetryPolicy) -> Handler {
    let rules = Rules::from_toml(rules).unwrap();
    let tokens: Tokens = Arc::new(testkit::harness::tokens::service(
        config(fake, &[]),
        EmbeddedStore::in_memory(),
        clock::system(),
    ));
    let client = Arc::new(TokenClient::with_clock(tokens, clock::system()));
    let http = WeChatHttp::new(fake.base_url(), Duration::from_millis(500)).unwrap();
    let channel = CustomerService::new(http, client).with_retry(busy);
    let forwarder = HttpForwarder::new(secret(), Duration::from_secs(20), clock::system()).unwrap();
    let worker = Worker::new(
        testkit::harness::dynalite_table().await,
        forwarder,
        channel,
        &rules,
    )
    .with_late_retry(LateRetry {
        first: Duration::from_millis(50),
        max: Duration::from_millis(100),
    });
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

#[tokio::test]
async fn a_5000_byte_chinese_answer_arrives_as_three_parts_in_order() {
    let service = ScriptedService::start().await;
    // 1666 characters of 3 bytes and two of 1: 5000 bytes, over twice WeChat's limit.
    let content = format!("{}ok", "长".repeat(1666));
    assert_eq!(content.len(), 5000);
    let answer = serde_json::json!({"type": "text", "content": content}).to_string();
    service.answer(400, 200, &answer);
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    let handler = instance(&service, &fake, 100).await;
    let msg = fresh_text("tell me everything");

    assert_eq!(handler.reply(&msg).await, Reply::Success);
    assert_eq!(
        settled_state(&account::forward::dedup_key(&msg)).await,
        Some(MsgState::Sent)
    );
    let parts = delivered_to(&fake, &msg.from_user_name);
    assert_eq!(
        parts.len(),
        3,
        "{:?}",
        parts.iter().map(String::len).collect::<Vec<_>>()
    );
    assert!(parts.iter().all(|part| part.len() <= MAX_TEXT_BYTES));
    // In order, cut between characters: together they are the answer.
    assert_eq!(parts.concat(), content);
    assert_eq!(fake.calls(CUSTOM_SEND), 3, "none refused (45002)");
}

#[tokio::test]
async fn an_event_answer_ready_after_its_minute_is_not_sent() {
    let service = ScriptedService::start().await;
    service.answer(
        1_500,
        200,
        r#"{"type":"text","content":"too late for the click"}"#,
    );
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    let rules = format!(
        "[[rules]]\nevent = \"CLICK\"\nevent_key = \"ORDERS\"\n\
         reply = {{ type = \"forward\", url = \"{}\", timeout_ms = 100 }}\n",
        service.url
    );
    let handler = instance_with(&rules, &fake, DEFAULT_RETRY).await;
    // Clicked 59 s ago: the minute WeChat allows is over before the service answers.
    let tap = click(&testkit::harness::unique("o"), "ORDERS", 59);

    assert_eq!(handler.reply(&tap).await, Reply::Success);
    let Some(MsgState::Failed { reason }) = settled_state(&account::forward::dedup_key(&tap)).await
    else {
        panic!("the item records why nothing was sent");
    };
    assert!(reason.starts_with("window_closed: "), "{reason}");
    assert!(reason.contains("1 minute after the event"), "{reason}");
    assert_eq!(service.calls(), 1);
    assert_eq!(fake.calls(CUSTOM_SEND), 0, "nothing sent into a refusal");
    assert_eq!(fake.calls(TYPING_PATH), 0, "no typing after an event");
}

#[tokio::test]
async fn a_message_answer_wechat_refuses_busy_twice_is_sent_again_and_delivered_once() {
    let service = ScriptedService::start().await;
    service.answer(300, 200, r#"{"type":"text","content":"third time lucky"}"#);
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    // One call per send: the worker's own retries are what gets the answer through.
    let one_call = RetryPolicy {
        attempts: 1,
        backoff: Duration::ZERO,
    };
    let rules = format!(
        "[default]\ntype = \"forward\"\nurl = \"{}\"\ntimeout_ms = 100\n",
        service.url
    );
    let handler = instance_with(&rules, &fake, one_call).await;
    fake.script(CUSTOM_SEND, Scripted::ErrCode(-1));
    fake.script(CUSTOM_SEND, Scripted::ErrCode(-1));
    let msg = fresh_text("busy wechat");

    assert_eq!(handler.reply(&msg).await, Reply::Success);
    assert_eq!(
        settled_state(&account::forward::dedup_key(&msg)).await,
        Some(MsgState::Sent)
    );
    assert_eq!(
        delivered_to(&fake, &msg.from_user_name),
        ["third time lucky"]
    );
    assert_eq!(fake.calls(CUSTOM_SEND), 3, "-1, -1, then delivered");
}

#[tokio::test]
async fn the_user_sees_typing_before_a_late_answer() {
    let service = ScriptedService::start().await;
    service.answer(
        1_500,
        200,
        r#"{"type":"text","content":"thought about it"}"#,
    );
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    let handler = instance(&service, &fake, 100).await;
    let msg = fresh_text("think hard");

    assert_eq!(handler.reply(&msg).await, Reply::Success);
    assert_eq!(
        settled_state(&account::forward::dedup_key(&msg)).await,
        Some(MsgState::Sent)
    );
    let custom = lock(&fake.state().custom);
    let typing = custom.typing_calls();
    assert_eq!(typing.len(), 1, "{typing:?}");
    assert_eq!(
        typing[0].touser.as_deref(),
        Some(msg.from_user_name.as_str())
    );
    assert_eq!(
        typing[0].body,
        serde_json::json!({"touser": msg.from_user_name, "command": "Typing"})
    );
    assert_eq!(typing[0].errcode, 0);
    let delivered = custom.delivered();
    assert_eq!(delivered.len(), 1);
    assert!(
        typing[0].seq < delivered[0].seq,
        "typing first, then the answer"
    );
}

#[tokio::test]
async fn a_typing_status_wechat_refuses_does_not_hold_up_the_answer() {
    let service = ScriptedService::start().await;
    service.answer(1_000, 200, r#"{"type":"text","content":"here anyway"}"#);
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    let handler = instance(&service, &fake, 100).await;
    fake.script(TYPING_PATH, Scripted::ErrCode(45080));
    let msg = fresh_text("typing refused");

    assert_eq!(handler.reply(&msg).await, Reply::Success);
    assert_eq!(
        settled_state(&account::forward::dedup_key(&msg)).await,
        Some(MsgState::Sent)
    );
    assert_eq!(fake.calls(TYPING_PATH), 1);
    assert_eq!(delivered_to(&fake, &msg.from_user_name), ["here anyway"]);
}

//! Channel QR code counts through the webhook: the `message` function's handler wrapped in
//! `SceneCounter` as `compose::message` wraps it, fed WeChat's signed scene pushes. Follows and
//! scans are counted per scene and China day on both adapters and read back; the reply is the
//! inner handler's whatever the table does (slow, failing); without `QR_STATS` the table is
//! never touched. Run under `node scripts/with-dynalite.mjs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use account::clock::{ManualClock, SharedClock};
use account::qrcode::{COUNT_BOUND, ChinaDate, SceneCounter, SceneCounts, stats};
use account::webhook::Webhook;
use serde_json::Value;
use table::embedded::EmbeddedStore;
use table::{StoreError, Table, Write, WriteOutcome};
use testkit::fake_wechat::qrcode::{ScenePush, scene_push};
use testkit::harness::tables::{CountingTable, SlowTable};
use testkit::harness::{Logs, unique_app_id};
use wechat_protocol::message::Message;
use wechat_protocol::reply::{MessageHandler, Reply};

use crate::common::{TOKEN, body, plaintext_config, signed_post};

/// 2026-12-03 10:00 in China (02:00 UTC).
const NOW_S: i64 = 1_796_263_200;
const OPENID: &str = "oQrScanner0000000000000001";

/// What the account's rules would answer: the reply the count must never change.
struct Welcome;

impl MessageHandler for Welcome {
    async fn reply(&self, _msg: &Message) -> Reply {
        Reply::text("welcome")
    }
}

fn clock() -> SharedClock {
    Arc::new(ManualClock::at_ms(NOW_S * 1000))
}

fn env(app_id: &str) -> [(&'static str, String); 4] {
    [
        ("WECHAT_TOKEN", TOKEN.into()),
        ("WECHAT_APP_ID", app_id.into()),
        ("TABLE_NAME", "wechat-test".into()),
        ("QR_STATS", "true".into()),
    ]
}

/// The counter as `compose::message` builds it, over `table`.
async fn counted<T: Table>(env: &[(&str, String)], table: T) -> Webhook<SceneCounter<Welcome, T>> {
    let env: std::collections::HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let counter = SceneCounter::from_env(&env, Welcome, |_| async { table }, clock())
        .await
        .expect("QR_STATS configuration");
    Webhook::new(plaintext_config(), counter).with_clock(clock())
}

async fn push<H: MessageHandler>(webhook: &Webhook<H>, kind: ScenePush, scene: &str) -> String {
    let response = webhook
        .message(&scene_push(TOKEN, kind, scene, OPENID, NOW_S))
        .await;
    assert_eq!(response.status(), 200);
    body(&response)
}

fn today() -> ChinaDate {
    ChinaDate::of_ms(NOW_S * 1000)
}

async fn follows_and_scans_are_counted_per_scene_and_read_back<T: Table + Clone>(
    table: &T,
    _id: &str,
) {
    let app_id = unique_app_id();
    let webhook = counted(&env(&app_id), table.clone()).await;
    let (logs, _guard) = Logs::capture();
    for (kind, scene) in [
        (ScenePush::Subscribe, "poster-a"),
        (ScenePush::Scan, "poster-a"),
        (ScenePush::Scan, "poster-a"),
        (ScenePush::Scan, "门店 01"),
    ] {
        assert!(push(&webhook, kind, scene).await.contains("welcome"));
    }
    let days = stats(table, &app_id, 2, today()).await.unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].date.to_string(), "2026-12-03");
    assert_eq!(
        days[0].scenes["poster-a"],
        SceneCounts {
            subscribe: 1,
            scan: 2
        }
    );
    assert_eq!(
        days[0].scenes["门店 01"],
        SceneCounts {
            subscribe: 0,
            scan: 1
        }
    );
    assert!(days[1].scenes.is_empty(), "{:?}", days[1]);
    let text = logs.text();
    assert_eq!(text.matches("qr scene counted").count(), 4, "{text}");
    assert!(!text.contains(OPENID), "{text}");
}

testkit::on_both_adapters!(follows_and_scans_are_counted_per_scene_and_read_back {
    dynamodb: follows_and_scans_are_counted_on_dynamodb("qr"),
    embedded: follows_and_scans_are_counted_on_the_embedded_store("qr"),
});

/// Concurrent pushes of one scene on one day: every one counted, none lost (one atomic add each).
async fn concurrent_scans_lose_no_count<T: Table + Clone>(table: &T, _id: &str) {
    let app_id = unique_app_id();
    let webhook = counted(&env(&app_id), table.clone()).await;
    let pushes = (0..16).map(|_| push(&webhook, ScenePush::Scan, "flyer"));
    let replies = futures_join_all(pushes).await;
    assert!(replies.iter().all(|r| r.contains("welcome")));
    let days = stats(table, &app_id, 1, today()).await.unwrap();
    assert_eq!(days[0].scenes["flyer"].scan, 16);
}

testkit::on_both_adapters!(concurrent_scans_lose_no_count {
    dynamodb: concurrent_scans_lose_no_count_on_dynamodb("qr"),
    embedded: concurrent_scans_lose_no_count_on_the_embedded_store("qr"),
});

/// Polls every future together on this task (no `futures` crate in the tree).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in set.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Rules that take their time (400 ms, under the bound).
struct SlowWelcome;

impl MessageHandler for SlowWelcome {
    async fn reply(&self, _msg: &Message) -> Reply {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Reply::text("welcome")
    }
}

/// A table far slower than the bound, next to rules that take 400 ms: the reply waits the bound
/// (the count runs alongside the rules, not after them), never the table's delay. On tokio's
/// paused clock, so the test reads virtual time exactly and takes no real time.
#[tokio::test(start_paused = true)]
async fn a_slow_table_holds_the_reply_back_no_longer_than_the_bound() {
    let app_id = unique_app_id();
    let store = EmbeddedStore::in_memory();
    let slow = SlowTable {
        inner: store.clone(),
        delay: Duration::from_secs(60),
    };
    let env: std::collections::HashMap<String, String> = env(&app_id)
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let counter = SceneCounter::from_env(&env, SlowWelcome, |_| async { slow }, clock())
        .await
        .unwrap();
    let webhook = Webhook::new(plaintext_config(), counter).with_clock(clock());
    let (logs, _guard) = Logs::capture();
    let started = tokio::time::Instant::now();
    let reply = push(&webhook, ScenePush::Subscribe, "poster-a").await;
    let waited = started.elapsed();
    assert!(reply.contains("welcome"), "{reply}");
    assert_eq!(waited, COUNT_BOUND);
    let text = logs.text();
    assert!(text.contains("qr scene count abandoned"), "{text}");
    assert!(
        text.contains("poster-a") && !text.contains(OPENID),
        "{text}"
    );
    // Abandoned before it reached the store: nothing counted.
    let days = stats(&store, &app_id, 1, today()).await.unwrap();
    assert!(days[0].scenes.is_empty());
}

/// A table that refuses every write.
#[derive(Clone)]
struct Broken;

impl Table for Broken {
    async fn read(&self, _pk: &str) -> Result<Option<Value>, StoreError> {
        Err(StoreError::Unavailable("table down".into()))
    }
    async fn write(&self, _write: Write) -> Result<WriteOutcome, StoreError> {
        Err(StoreError::Unavailable("table down".into()))
    }
}

#[tokio::test]
async fn a_failing_count_is_logged_and_the_reply_is_unchanged() {
    let webhook = counted(&env(&unique_app_id()), Broken).await;
    let (logs, _guard) = Logs::capture();
    assert!(
        push(&webhook, ScenePush::Scan, "poster-b")
            .await
            .contains("welcome")
    );
    let text = logs.text();
    assert!(
        text.contains("qr scene count failed") && text.contains("table down"),
        "{text}"
    );
    assert!(!text.contains(OPENID), "{text}");
}

#[tokio::test]
async fn without_qr_stats_no_table_is_built_or_touched() {
    let store = CountingTable::new(EmbeddedStore::in_memory());
    let built = AtomicBool::new(false);
    let env = [("WECHAT_TOKEN", TOKEN)];
    let counter = SceneCounter::from_env(
        &env,
        Welcome,
        |_| {
            built.store(true, Ordering::SeqCst);
            let store = store.clone();
            async move { store }
        },
        clock(),
    )
    .await
    .unwrap();
    assert!(!counter.is_counting());
    let webhook = Webhook::new(plaintext_config(), counter).with_clock(clock());
    for kind in [ScenePush::Subscribe, ScenePush::Scan] {
        assert!(push(&webhook, kind, "poster-a").await.contains("welcome"));
    }
    assert!(!built.load(Ordering::SeqCst));
    assert_eq!(store.operations(), 0);
}

#[tokio::test]
async fn with_qr_stats_only_scene_events_touch_the_table() {
    let store = CountingTable::new(EmbeddedStore::in_memory());
    let webhook = counted(&env(&unique_app_id()), store.clone()).await;
    let text = format!(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[{OPENID}]]></FromUserName>\
         <CreateTime>{NOW_S}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
         <Content><![CDATA[hi]]></Content><MsgId>1</MsgId></xml>"
    );
    let response = webhook.message(&signed_post(TOKEN, NOW_S, &text)).await;
    assert!(body(&response).contains("welcome"));
    // A plain follow (no scene) is not a channel event either.
    let plain = "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName>\
         <CreateTime>1796263200</CreateTime><MsgType><![CDATA[event]]></MsgType>\
         <Event><![CDATA[subscribe]]></Event></xml>";
    webhook.message(&signed_post(TOKEN, NOW_S, plain)).await;
    assert_eq!(store.operations(), 0);
    push(&webhook, ScenePush::Scan, "poster-a").await;
    assert_eq!(store.writes(), 1);
    assert_eq!(store.reads(), 0);
}

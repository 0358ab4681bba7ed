//! Harness of the forward tests: a scripted forward service on loopback (answers, delays and
//! faults set per test; every request recorded), messages, and log capture.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use account::clock::Clock;
use account::forward::{MessageLog, MsgState};
use lambda_http::{Body, Request, Response};
use wechat_protocol::message::Message;
use wechat_protocol::secret::Secret;

pub const SECRET: &str = "test-forward-secret-0123456789";

pub fn secret() -> Secret<String> {
    Secret::new(SECRET.to_string())
}

/// One request the service received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub headers: http::HeaderMap,
    pub body: String,
}

struct Script {
    delay: Duration,
    status: u16,
    body: String,
    seen: Vec<Seen>,
}

/// The account's service, scripted.
pub struct ScriptedService {
    pub url: String,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedService {
    /// Answers `{"type":"text","content":"hello from the service"}` at once until told otherwise.
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script {
            delay: Duration::ZERO,
            status: 200,
            body: r#"{"type":"text","content":"hello from the service"}"#.into(),
            seen: Vec::new(),
        }));
        let shared = script.clone();
        let (base, task) = testkit::local_server::spawn_on_loopback(move |req: Request| {
            let script = shared.clone();
            async move {
                let (delay, status, body) = {
                    let mut script = script.lock().unwrap();
                    script.seen.push(Seen {
                        headers: req.headers().clone(),
                        body: String::from_utf8_lossy(req.body().as_ref()).into_owned(),
                    });
                    (script.delay, script.status, script.body.clone())
                };
                tokio::time::sleep(delay).await;
                let mut response = Response::new(if body.is_empty() {
                    Body::Empty
                } else {
                    Body::Text(body)
                });
                *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                response
            }
        })
        .await;
        Self {
            url: format!("{base}/wechat"),
            script,
            task,
        }
    }

    /// Every later request waits `delay_ms`, then gets `status` and `body`.
    pub fn answer(&self, delay_ms: u64, status: u16, body: &str) {
        let mut script = self.script.lock().unwrap();
        script.delay = Duration::from_millis(delay_ms);
        script.status = status;
        script.body = body.to_string();
    }

    pub fn calls(&self) -> usize {
        self.script.lock().unwrap().seen.len()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }
}

/// A text message from `openid` with `msg_id`, sent now (a late answer to a message more than
/// 48 hours old is not sent).
pub fn text(openid: &str, msg_id: &str, content: &str) -> Message {
    let now = account::clock::system().now_s();
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>{now}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    );
    Message::parse(xml.as_bytes()).unwrap()
}

/// A menu click on `event_key` by `openid`, `age_s` seconds ago.
pub fn click(openid: &str, event_key: &str, age_s: i64) -> Message {
    let at = account::clock::system().now_s() - age_s;
    let xml = format!(
        "<xml><ToUserName>gh_account</ToUserName><FromUserName>{openid}</FromUserName><CreateTime>{at}</CreateTime><MsgType>event</MsgType><Event>CLICK</Event><EventKey>{event_key}</EventKey></xml>"
    );
    Message::parse(xml.as_bytes()).unwrap()
}

/// A text from a fresh user (the fake accepts openids of letters, digits, `-` and `_`).
pub fn fresh_text(content: &str) -> Message {
    text(
        &testkit::harness::unique("o"),
        &testkit::harness::unique(""),
        content,
    )
}

/// Waits (bounded) for the worker to finish a late send; the worker runs in the background.
pub async fn settled_state(key: &str) -> Option<MsgState> {
    let table = testkit::harness::dynalite_table().await;
    for _ in 0..100 {
        match table.state(key).await.unwrap() {
            Some(MsgState::Pending | MsgState::Late | MsgState::Sending) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => return other,
        }
    }
    table.state(key).await.unwrap()
}

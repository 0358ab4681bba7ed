//! Harness of the forward tests: a scripted forward service on loopback (answers, delays and
//! faults set per test; every request recorded), messages, and log capture.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// A text message from `openid` with `msg_id`.
pub fn text(openid: &str, msg_id: &str, content: &str) -> Message {
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    );
    Message::parse(xml.as_bytes()).unwrap()
}

/// Everything logged while the guard lives, on this thread (use a current-thread runtime).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The text once it contains every one of `needles`, or after 5 s: a background worker logs
    /// its outcome just after the item's last transition, which is what tests wait for.
    pub async fn text_once_it_has(&self, needles: &[&str]) -> String {
        for _ in 0..100 {
            let text = self.text();
            if needles.iter().all(|needle| text.contains(needle)) {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.text()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

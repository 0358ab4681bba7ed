//! Shared helpers of the webhook tests: API Gateway HTTP API (payload 2.0) fixtures loaded with
//! `lambda_http::request::from_str`, re-signed when a test changes their query or body.

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use account::clock::ManualClock;
use account::webhook::{Webhook, WebhookConfig};
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use wechat_protocol::message::Message;
use wechat_protocol::reply::{MessageHandler, Reply};
use wechat_protocol::signature::sign;

/// Token and time of the plaintext fixtures (the published verification vector).
pub const TOKEN: &str = "test";
pub const FIXTURE_TIME: i64 = 1410685589;
pub const NONCE: &str = "test";

/// The published safe-mode vector.
pub const SAFE_TOKEN: &str = "pamtest";
pub const SAFE_APP_ID: &str = "wxb11529c136998cb6";
pub const SAFE_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
pub const SAFE_TIME: i64 = 1458300676;
pub const SAFE_NONCE: &str = "260774613";

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Real WeChat XML of every message type and event, by name.
pub fn samples() -> Vec<(String, String)> {
    let Value::Object(map) = fixture("messages.json") else {
        panic!("messages.json is an object of name → XML");
    };
    map.into_iter()
        .map(|(name, xml)| (name, xml.as_str().unwrap_or_default().to_string()))
        .collect()
}

pub fn sample(name: &str) -> String {
    samples()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, xml)| xml)
        .unwrap_or_else(|| panic!("no sample {name}"))
}

/// The Lambda request API Gateway would deliver for `event`.
pub fn request(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway HTTP API event")
}

/// Replaces the query string (raw and parsed, as API Gateway sends both).
pub fn set_query(event: &mut Value, params: &[(&str, &str)]) {
    let raw = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let parsed: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    event["rawQueryString"] = Value::String(raw);
    event["queryStringParameters"] = Value::Object(parsed);
}

pub fn set_body(event: &mut Value, body: &str) {
    event["body"] = Value::String(body.to_string());
}

/// A plaintext POST of `body`, signed with `token` at `timestamp`.
pub fn signed_post(token: &str, timestamp: i64, body: &str) -> Request {
    // Read once: the fuzz test posts tens of thousands of bodies.
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    let mut event = TEMPLATE
        .get_or_init(|| fixture("post_plaintext_text.json"))
        .clone();
    let ts = timestamp.to_string();
    let signature = sign(&[token, &ts, NONCE]);
    set_query(
        &mut event,
        &[
            ("signature", &signature),
            ("timestamp", &ts),
            ("nonce", NONCE),
        ],
    );
    set_body(&mut event, body);
    request(&event)
}

/// A safe-mode POST: `encrypt` in an envelope, signed (`signature` and `msg_signature`).
pub fn encrypted_post(encrypt: &str, msg_signature: Option<&str>) -> Request {
    let mut event = fixture("post_safe_mode.json");
    let ts = SAFE_TIME.to_string();
    let signature = sign(&[SAFE_TOKEN, &ts, SAFE_NONCE]);
    let msg_signature = msg_signature
        .map(str::to_string)
        .unwrap_or_else(|| sign(&[SAFE_TOKEN, &ts, SAFE_NONCE, encrypt]));
    set_query(
        &mut event,
        &[
            ("signature", &signature),
            ("timestamp", &ts),
            ("nonce", SAFE_NONCE),
            ("encrypt_type", "aes"),
            ("msg_signature", &msg_signature),
        ],
    );
    set_body(
        &mut event,
        &format!(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        ),
    );
    request(&event)
}

pub fn plaintext_config() -> WebhookConfig {
    WebhookConfig::from_env(&[("WECHAT_TOKEN", TOKEN)]).expect("plaintext config")
}

pub fn safe_config() -> WebhookConfig {
    WebhookConfig::from_env(&[
        ("WECHAT_TOKEN", SAFE_TOKEN),
        ("WECHAT_APP_ID", SAFE_APP_ID),
        ("WECHAT_ENCODING_AES_KEY", SAFE_KEY),
    ])
    .expect("safe-mode config")
}

/// Safe-mode settings with the explicit opt-out (`WECHAT_REQUIRE_ENCRYPTION=false`, for a
/// migration from 明文模式): plaintext pushes are accepted next to encrypted ones.
pub fn compatible_config() -> WebhookConfig {
    WebhookConfig::from_env(&[
        ("WECHAT_TOKEN", SAFE_TOKEN),
        ("WECHAT_APP_ID", SAFE_APP_ID),
        ("WECHAT_ENCODING_AES_KEY", SAFE_KEY),
        ("WECHAT_REQUIRE_ENCRYPTION", "false"),
    ])
    .expect("compatible-mode config")
}

/// The plaintext webhook with the bundled rules, its clock at the fixtures' time.
pub fn plaintext_webhook() -> Webhook {
    Webhook::from_env(&[("WECHAT_TOKEN", TOKEN)])
        .expect("plaintext config")
        .with_clock(Arc::new(ManualClock::at_ms(FIXTURE_TIME * 1000)))
}

pub fn at<H: MessageHandler>(webhook: Webhook<H>, epoch_s: i64) -> Webhook<H> {
    webhook.with_clock(Arc::new(ManualClock::at_ms(epoch_s * 1000)))
}

pub fn body(response: &Response<Body>) -> String {
    String::from_utf8(response.body().to_vec()).expect("UTF-8 response")
}

pub fn content_type(response: &Response<Body>) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A handler that records every message it is given and answers `success`.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<Message>>>);

impl Recorder {
    pub fn last(&self) -> Option<Message> {
        self.0.lock().ok().and_then(|seen| seen.last().cloned())
    }
}

impl MessageHandler for Recorder {
    fn reply(&self, msg: &Message) -> impl Future<Output = Reply> + Send {
        if let Ok(mut seen) = self.0.lock() {
            seen.push(msg.clone());
        }
        std::future::ready(Reply::Success)
    }
}

/// A handler that answers a text message with its own content: what owners who write Rust do.
pub struct Echo;

impl MessageHandler for Echo {
    fn reply(&self, msg: &Message) -> impl Future<Output = Reply> + Send {
        let reply = match &msg.kind {
            wechat_protocol::message::MessageKind::Text { content } => Reply::text(content.clone()),
            _ => Reply::Success,
        };
        std::future::ready(reply)
    }
}

//! Fake `POST /cgi-bin/message/custom/send` (客服消息), answering like WeChat:
//!
//! - the access_token first: missing → 41001, unknown or replaced → 40001, expired → 42001 (the
//!   tokens the fake's token endpoints issued, [`super::FakeState::token_rejection`]);
//! - then the body: empty → 44002, not a JSON object → 47001, `touser` missing or not shaped
//!   like an openid → 40003, `msgtype` missing or unknown → 40008, the object named by `msgtype`
//!   missing or lacking a required field → 47001 (40007 for a blank `media_id`), blank text →
//!   44004, text content over [`MAX_TEXT_BYTES`] bytes → 45002, news without articles → 44003
//!   or with more than one → 45008;
//! - then the user: a window closed with [`CustomState::close_window`] → 45015, more messages
//!   than [`CustomState::limit_per_user`] → 45047; otherwise `{"errcode":0,"errmsg":"ok"}`.
//!
//! And `POST /cgi-bin/message/custom/typing` ([`TYPING_PATH`], 客服输入状态): the token as
//! above, then empty → 44002, not a JSON object → 47001, `touser` → 40003, `command` other than
//! `Typing` or `CancelTyping` → 45072, a closed window → 45080 (WeChat wants a message from the
//! user in the last 30 s); otherwise ok.
//!
//! Every call the fake answers itself, refused ones included, is recorded
//! ([`CustomState::calls`], [`CustomState::typing_calls`]) with its errcode and its place among
//! both (`seq`); calls answered by a scripted fault are counted by [`super::FakeWeChat::calls`]
//! only.
//!
//! What it delivers is what a user would see in WeChat, so under `make run` it is shown: each
//! delivered message is logged at info with its content ([`CustomState::log_deliveries`], which
//! `wx serve` turns on), and `GET /fake/custom/messages`
//! ([`MESSAGES_PATH`], the fake's own, not WeChat's) lists them as JSON, oldest first.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::{FakeRequest, FakeResponse, FakeState, lock};

pub const PATH: &str = "/cgi-bin/message/custom/send";
/// The fake's listing of the messages it delivered (`{"messages": [{touser, msgtype, body}]}`).
pub const MESSAGES_PATH: &str = "/fake/custom/messages";
pub const TYPING_PATH: &str = "/cgi-bin/message/custom/typing";

/// The longest text content WeChat accepts, in UTF-8 bytes (45002 beyond).
pub const MAX_TEXT_BYTES: usize = 2048;

/// One call as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomCall {
    pub touser: Option<String>,
    pub msgtype: Option<String>,
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
    /// What the fake answered: 0 when the message was delivered.
    pub errcode: i64,
    /// Its place among every message and typing call the fake answered, from 0.
    pub seq: u64,
}

/// One typing-status call as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct TypingCall {
    pub touser: Option<String>,
    pub command: Option<String>,
    pub body: Value,
    pub errcode: i64,
    /// Its place among every message and typing call the fake answered, from 0.
    pub seq: u64,
}

/// The calls so far and the per-user rules.
#[derive(Debug, Default)]
pub struct CustomState {
    calls: Vec<CustomCall>,
    typing_calls: Vec<TypingCall>,
    seq: u64,
    closed_windows: HashSet<String>,
    delivered_per_user: HashMap<String, u32>,
    /// Messages accepted per user before 45047 (WeChat: 5 per interaction); `None`: no limit.
    pub limit_per_user: Option<u32>,
    /// Log each delivered message with its content, at info (`wx serve` turns it on; off in
    /// tests, whose log captures check that the code under test never logs a message's text).
    pub log_deliveries: bool,
}

impl CustomState {
    /// Every call the fake answered itself, oldest first.
    pub fn calls(&self) -> &[CustomCall] {
        &self.calls
    }

    /// Every typing-status call the fake answered itself, oldest first.
    pub fn typing_calls(&self) -> &[TypingCall] {
        &self.typing_calls
    }

    /// The messages delivered (answered errcode 0), oldest first.
    pub fn delivered(&self) -> Vec<CustomCall> {
        self.calls
            .iter()
            .filter(|c| c.errcode == 0)
            .cloned()
            .collect()
    }

    /// From now on `openid` has not interacted for 48 hours: messages to them get 45015.
    pub fn close_window(&mut self, openid: &str) {
        self.closed_windows.insert(openid.to_string());
    }

    /// What WeChat answers a well-authorized `body`, counting what it delivers.
    fn judge(&mut self, body: &Value) -> i64 {
        match check(body) {
            Err(code) => code,
            Ok(touser) if self.closed_windows.contains(touser) => 45015,
            Ok(touser) => {
                let delivered = self
                    .delivered_per_user
                    .entry(touser.to_string())
                    .or_default();
                if self.limit_per_user.is_some_and(|limit| *delivered >= limit) {
                    45047
                } else {
                    *delivered += 1;
                    0
                }
            }
        }
    }

    fn record(&mut self, body: Value, errcode: i64) {
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(String::from);
        let (touser, msgtype) = (text("touser"), text("msgtype"));
        let seq = self.next_seq();
        self.calls.push(CustomCall {
            touser,
            msgtype,
            body,
            errcode,
            seq,
        });
    }

    /// What WeChat answers a well-authorized typing `body`.
    fn judge_typing(&self, body: &Value) -> i64 {
        if !body.is_object() {
            return 47001;
        }
        let Some(touser) = body
            .get("touser")
            .and_then(Value::as_str)
            .filter(|t| looks_like_openid(t))
        else {
            return 40003;
        };
        match body.get("command").and_then(Value::as_str) {
            Some("Typing" | "CancelTyping") if self.closed_windows.contains(touser) => 45080,
            Some("Typing" | "CancelTyping") => 0,
            _ => 45072,
        }
    }

    fn record_typing(&mut self, body: Value, errcode: i64) {
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(String::from);
        let (touser, command) = (text("touser"), text("command"));
        let seq = self.next_seq();
        self.typing_calls.push(TypingCall {
            touser,
            command,
            body,
            errcode,
            seq,
        });
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq - 1
    }
}

pub fn handle(state: &FakeState, req: &FakeRequest) -> Option<FakeResponse> {
    let typing = match (req.method.as_str(), req.path.as_str()) {
        ("POST", PATH) => false,
        ("POST", TYPING_PATH) => true,
        ("GET", MESSAGES_PATH) => return Some(listing(&lock(&state.custom))),
        _ => return None,
    };
    let token = req.query.get("access_token").map(String::as_str);
    let rejection = state.token_rejection(token);
    let body = req.json();
    let mut custom = lock(&state.custom);
    let errcode = match rejection {
        Some(code) => code,
        None if req.body.trim_ascii().is_empty() => 44002,
        None if typing => custom.judge_typing(&body),
        None => custom.judge(&body),
    };
    if errcode == 0 && !typing && custom.log_deliveries {
        // The fake is local only: the content is what the user would read, so show it.
        let text = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
        let (touser, msgtype) = (text("touser"), text("msgtype"));
        tracing::info!(
            touser,
            msgtype,
            content = %shown(&body),
            "fake WeChat API: customer-service message delivered"
        );
    }
    match typing {
        true => custom.record_typing(body, errcode),
        false => custom.record(body, errcode),
    }
    Some(if errcode == 0 {
        FakeResponse::json(json!({"errcode": 0, "errmsg": "ok"}))
    } else {
        FakeResponse::errcode(errcode)
    })
}

/// `GET /fake/custom/messages`: the delivered messages, oldest first.
fn listing(custom: &CustomState) -> FakeResponse {
    let messages: Vec<Value> = custom
        .delivered()
        .into_iter()
        .map(|call| json!({"touser": call.touser, "msgtype": call.msgtype, "body": call.body}))
        .collect();
    FakeResponse::json(json!({ "messages": messages }))
}

/// A delivered message's content for the log: a text's words, else the object its `msgtype`
/// names, as JSON.
fn shown(body: &Value) -> String {
    let msgtype = body
        .get("msgtype")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let content = body.get(msgtype);
    match content
        .and_then(|c| c.get("content"))
        .and_then(Value::as_str)
    {
        Some(text) if msgtype == "text" => text.to_string(),
        _ => content.map(Value::to_string).unwrap_or_default(),
    }
}

/// The recipient of a well-formed message, or the errcode WeChat answers for its shape.
fn check(body: &Value) -> Result<&str, i64> {
    if !body.is_object() {
        return Err(47001);
    }
    let touser = body
        .get("touser")
        .and_then(Value::as_str)
        .filter(|t| looks_like_openid(t))
        .ok_or(40003)?;
    let msgtype = body.get("msgtype").and_then(Value::as_str).ok_or(40008)?;
    let required: &[&str] = match msgtype {
        "text" => &["content"],
        "image" | "voice" | "mpnews" | "video" => &["media_id"],
        "music" => &["thumb_media_id"],
        "news" => &[],
        "mpnewsarticle" => &["article_id"],
        "msgmenu" => &[],
        _ => return Err(40008),
    };
    let content = body.get(msgtype).filter(|c| c.is_object()).ok_or(47001)?;
    let field = |name: &str| content.get(name).and_then(Value::as_str);
    for name in required {
        match field(name) {
            None => return Err(47001),
            Some(value) if value.trim().is_empty() => {
                return Err(if *name == "content" { 44004 } else { 40007 });
            }
            Some(_) => {}
        }
    }
    match msgtype {
        "text" if field("content").is_some_and(|c| c.len() > MAX_TEXT_BYTES) => {
            return Err(45002);
        }
        "news" => {
            let articles = content
                .get("articles")
                .and_then(Value::as_array)
                .ok_or(47001)?;
            match articles.len() {
                0 => return Err(44003),
                1 => {}
                _ => return Err(45008),
            }
        }
        "msgmenu" => {
            let list = content.get("list").and_then(Value::as_array).ok_or(47001)?;
            if list.is_empty() {
                return Err(47001);
            }
        }
        _ => {}
    }
    Ok(touser)
}

/// Openids are short strings of letters, digits, `-` and `_` (28 characters in practice).
fn looks_like_openid(touser: &str) -> bool {
    (1..=64).contains(&touser.len())
        && touser
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_wechat::{FAKE_APP_ID, FAKE_APP_SECRET, FakeWeChat, token};
    use crate::harness::Logs;

    async fn token(fake: &FakeWeChat) -> String {
        let answer: Value = reqwest::get(format!(
            "{}/cgi-bin/token?grant_type=client_credential&appid={FAKE_APP_ID}&secret={FAKE_APP_SECRET}",
            fake.base_url()
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        answer["access_token"].as_str().unwrap().to_string()
    }

    async fn send(fake: &FakeWeChat, token: &str, body: Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}{PATH}?access_token={token}", fake.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn delivered_messages_are_logged_with_their_content_and_listed_oldest_first() {
        let (logs, _guard) = Logs::capture_at(tracing::Level::INFO);
        let fake = FakeWeChat::start().await;
        lock(&fake.state().custom).log_deliveries = true;
        let token = token(&fake).await;
        let text = json!({"touser": "o_user", "msgtype": "text", "text": {"content": "You said: hello\nbye"}});
        assert_eq!(send(&fake, &token, text.clone()).await["errcode"], 0);
        let image =
            json!({"touser": "o_user", "msgtype": "image", "image": {"media_id": "MEDIA_1"}});
        assert_eq!(send(&fake, &token, image.clone()).await["errcode"], 0);
        // A refused message is neither logged as delivered nor listed.
        let blank = json!({"touser": "o_user", "msgtype": "text", "text": {"content": " "}});
        assert_eq!(send(&fake, &token, blank).await["errcode"], 44004);

        let listed: Value = reqwest::get(format!("{}{MESSAGES_PATH}", fake.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            listed,
            json!({"messages": [
                {"touser": "o_user", "msgtype": "text", "body": text},
                {"touser": "o_user", "msgtype": "image", "body": image},
            ]})
        );

        let logs = logs.text();
        assert_eq!(
            logs.matches("customer-service message delivered").count(),
            2,
            "{logs}"
        );
        assert!(logs.contains("You said: hello"), "{logs}");
        assert!(logs.contains("MEDIA_1"), "{logs}");
        assert!(logs.contains("touser=\"o_user\""), "{logs}");
    }

    #[tokio::test]
    async fn by_default_a_delivery_is_not_logged_but_still_listed() {
        let (logs, _guard) = Logs::capture_at(tracing::Level::INFO);
        let fake = FakeWeChat::start().await;
        let token = token(&fake).await;
        let text =
            json!({"touser": "o_user", "msgtype": "text", "text": {"content": "quiet words"}});
        assert_eq!(send(&fake, &token, text).await["errcode"], 0);
        assert!(!logs.text().contains("quiet words"), "{}", logs.text());
        assert_eq!(lock(&fake.state().custom).delivered().len(), 1);
    }

    #[test]
    fn a_texts_words_are_shown_and_other_kinds_as_their_object() {
        assert_eq!(
            shown(&json!({"msgtype": "text", "text": {"content": "hi"}})),
            "hi"
        );
        assert_eq!(
            shown(&json!({"msgtype": "image", "image": {"media_id": "m"}})),
            r#"{"media_id":"m"}"#
        );
        assert_eq!(shown(&json!({"msgtype": "voice"})), "");
    }

    fn request(path: &str, query: &[(&str, &str)], body: &str) -> FakeRequest {
        FakeRequest {
            method: hyper::Method::POST,
            path: path.into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    /// A fake with one access_token issued.
    fn state_with_token() -> (FakeState, String) {
        let state = FakeState::new(FAKE_APP_ID, FAKE_APP_SECRET);
        let body = json!({"grant_type": "client_credential", "appid": FAKE_APP_ID, "secret": FAKE_APP_SECRET});
        let fetch = request("/cgi-bin/stable_token", &[], &body.to_string());
        let answer = token::handle(&state, &fetch).unwrap();
        let answer: Value = serde_json::from_str(&answer.body).unwrap();
        let token = answer["access_token"].as_str().unwrap().to_string();
        (state, token)
    }

    fn errcode(answer: FakeResponse) -> i64 {
        let body: Value = serde_json::from_str(&answer.body).unwrap();
        body["errcode"].as_i64().unwrap()
    }

    #[test]
    fn typing_checks_the_token_the_body_and_the_command_and_records_every_call() {
        let (state, token) = state_with_token();
        let typing = |query: &[(&str, &str)], body: &str| {
            errcode(handle(&state, &request(TYPING_PATH, query, body)).unwrap())
        };
        let with_token = [("access_token", token.as_str())];
        let ok = r#"{"touser":"oUser_1","command":"Typing"}"#;
        assert_eq!(typing(&[], ok), 41001);
        assert_eq!(typing(&[("access_token", "forged")], ok), 40001);
        assert_eq!(typing(&with_token, ""), 44002);
        assert_eq!(typing(&with_token, "[1]"), 47001);
        assert_eq!(typing(&with_token, r#"{"command":"Typing"}"#), 40003);
        assert_eq!(
            typing(&with_token, r#"{"touser":"oUser_1","command":"Dance"}"#),
            45072
        );
        assert_eq!(typing(&with_token, r#"{"touser":"oUser_1"}"#), 45072);
        assert_eq!(typing(&with_token, ok), 0);
        assert_eq!(
            typing(
                &with_token,
                r#"{"touser":"oUser_1","command":"CancelTyping"}"#
            ),
            0
        );
        lock(&state.custom).close_window("oUser_1");
        assert_eq!(typing(&with_token, ok), 45080);

        let custom = lock(&state.custom);
        let calls = custom.typing_calls();
        assert_eq!(calls.len(), 10);
        assert_eq!(calls[7].touser.as_deref(), Some("oUser_1"));
        assert_eq!(calls[7].command.as_deref(), Some("Typing"));
        assert_eq!(calls[7].errcode, 0);
        assert!(custom.calls().is_empty(), "typing is not a message");
    }

    #[test]
    fn a_text_over_2048_bytes_is_refused_with_45002_and_calls_keep_their_order() {
        let (state, token) = state_with_token();
        let query = [("access_token", token.as_str())];
        let text = |content: &str| {
            let body =
                json!({"touser": "oUser_1", "msgtype": "text", "text": {"content": content}});
            errcode(handle(&state, &request(PATH, &query, &body.to_string())).unwrap())
        };
        let typing = r#"{"touser":"oUser_1","command":"Typing"}"#;
        errcode(handle(&state, &request(TYPING_PATH, &query, typing)).unwrap());
        // 682 characters of 3 bytes: 2046 bytes; one more is 2049.
        assert_eq!(text(&"中".repeat(682)), 0);
        assert_eq!(text(&format!("{}ab", "中".repeat(682))), 0);
        assert_eq!(text(&"中".repeat(683)), 45002);
        let custom = lock(&state.custom);
        assert_eq!(custom.delivered().len(), 2);
        assert_eq!(custom.typing_calls()[0].seq, 0);
        let seqs: Vec<u64> = custom.calls().iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
    }
}

//! Fake `POST /cgi-bin/message/template/send` (模板消息), answering like WeChat:
//!
//! - the access_token first: missing → 41001, unknown or replaced → 40001, expired → 42001;
//! - then the body: empty → 44002, not a JSON object → 47001, `touser` missing or not shaped
//!   like an openid → 40003, a user who does not follow ([`TemplateState::unfollow`]) → 43004,
//!   `template_id` missing or blank → 40036, not one of the account's templates
//!   ([`TemplateState::templates`], [`FAKE_TEMPLATE_ID`] by default) → 40037, `data` missing, not
//!   an object of `{value}` objects, or empty → 47003, `client_msg_id` over 64 bytes → 45067, a
//!   user who refused the account's notifications ([`TemplateState::refuse`]) → 43101, the daily
//!   quota used ([`TemplateState::daily_limit`]) → 45009;
//! - otherwise `{"errcode":0,"errmsg":"ok","msgid":N}`. A send with the same `touser` and
//!   `client_msg_id` as one accepted less than [`DEDUP_WINDOW_MS`] before is not delivered
//!   again and is answered with the first one's msgid (WeChat documents one message per openid
//!   + client_msg_id within 10 minutes; what it answers the duplicate is not documented).
//!
//! Time is the token state's clock ([`super::token::TokenState::use_clock`]). Every answered call
//! is recorded ([`TemplateState::calls`]), the delivered messages too ([`TemplateState::sent`]).
//!
//! WeChat then pushes `TEMPLATESENDJOBFINISH` (MsgID, Status) to the account's server:
//! [`super::FakeWeChat::push_template_finish`] does that for a sent msgid, signed (and encrypted)
//! as WeChat does, to any webhook URL.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::{FakeRequest, FakeResponse, FakeState, lock};

pub const PATH: &str = "/cgi-bin/message/template/send";

/// The template the fake's account has by default.
pub const FAKE_TEMPLATE_ID: &str = "fa4eTPL-OrderShipped_0000000000000000000001";

/// How long a `touser` + `client_msg_id` pair is remembered: 10 minutes.
pub const DEDUP_WINDOW_MS: i64 = 600_000;

/// The account's original id in the fake's pushes (`ToUserName`).
pub const FAKE_ACCOUNT_ID: &str = "gh_fa4e00000001";

/// One call as the fake answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateCall {
    pub body: Value,
    pub errcode: i64,
    /// The msgid answered (a de-duplicated send gets the first one's).
    pub msgid: Option<u64>,
    /// Whether a message reached the user (a de-duplicated send did not).
    pub delivered: bool,
}

/// A delivered message.
#[derive(Debug, Clone, PartialEq)]
pub struct SentTemplate {
    pub msgid: u64,
    pub touser: String,
    pub template_id: String,
    pub body: Value,
}

#[derive(Debug)]
pub struct TemplateState {
    calls: Vec<TemplateCall>,
    sent: Vec<SentTemplate>,
    next_msgid: u64,
    /// (touser, client_msg_id) → (msgid, accepted at ms).
    keys: HashMap<(String, String), (u64, i64)>,
    not_following: HashSet<String>,
    refused: HashSet<String>,
    delivered_today: u32,
    /// The account's templates.
    pub templates: HashSet<String>,
    /// Messages accepted before 45009; `None`: no limit.
    pub daily_limit: Option<u32>,
}

impl Default for TemplateState {
    fn default() -> Self {
        Self {
            calls: Vec::new(),
            sent: Vec::new(),
            // WeChat's msgids are large numbers; these look alike.
            next_msgid: 200_228_332,
            keys: HashMap::new(),
            not_following: HashSet::new(),
            refused: HashSet::new(),
            delivered_today: 0,
            templates: HashSet::from([FAKE_TEMPLATE_ID.to_string()]),
            daily_limit: None,
        }
    }
}

impl TemplateState {
    pub fn calls(&self) -> &[TemplateCall] {
        &self.calls
    }

    /// The messages delivered, oldest first (a de-duplicated send adds none).
    pub fn sent(&self) -> &[SentTemplate] {
        &self.sent
    }

    pub fn sent_message(&self, msgid: u64) -> Option<&SentTemplate> {
        self.sent.iter().find(|s| s.msgid == msgid)
    }

    /// `openid` no longer follows the account: 43004.
    pub fn unfollow(&mut self, openid: &str) {
        self.not_following.insert(openid.to_string());
    }

    /// `openid` refused the account's notifications: 43101.
    pub fn refuse(&mut self, openid: &str) {
        self.refused.insert(openid.to_string());
    }

    fn judge(&mut self, body: &Value, now_ms: i64) -> (i64, Option<u64>, bool) {
        let Some(object) = body.as_object() else {
            return (47001, None, false);
        };
        let text = |name: &str| object.get(name).and_then(Value::as_str);
        let Some(touser) = text("touser").filter(|t| looks_like_openid(t)) else {
            return (40003, None, false);
        };
        if self.not_following.contains(touser) {
            return (43004, None, false);
        }
        let Some(template_id) = text("template_id").filter(|t| !t.trim().is_empty()) else {
            return (40036, None, false);
        };
        if !self.templates.contains(template_id) {
            return (40037, None, false);
        }
        let data_ok = object
            .get("data")
            .and_then(Value::as_object)
            .is_some_and(|data| {
                !data.is_empty()
                    && data
                        .values()
                        .all(|item| item.get("value").is_some_and(Value::is_string))
            });
        if !data_ok {
            return (47003, None, false);
        }
        let key = match object.get("client_msg_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(key)) if key.len() <= 64 => Some(key.clone()),
            Some(_) => return (45067, None, false),
        };
        if self.refused.contains(touser) {
            return (43101, None, false);
        }
        if let Some(key) = &key
            && let Some((msgid, at)) = self.keys.get(&(touser.to_string(), key.clone()))
            && now_ms - at < DEDUP_WINDOW_MS
        {
            return (0, Some(*msgid), false);
        }
        if self
            .daily_limit
            .is_some_and(|limit| self.delivered_today >= limit)
        {
            return (45009, None, false);
        }
        let msgid = self.next_msgid;
        self.next_msgid += 1;
        self.delivered_today += 1;
        if let Some(key) = key {
            self.keys.insert((touser.to_string(), key), (msgid, now_ms));
        }
        self.sent.push(SentTemplate {
            msgid,
            touser: touser.to_string(),
            template_id: template_id.to_string(),
            body: body.clone(),
        });
        (0, Some(msgid), true)
    }
}

pub fn handle(state: &FakeState, req: &FakeRequest) -> Option<FakeResponse> {
    if (req.method.as_str(), req.path.as_str()) != ("POST", PATH) {
        return None;
    }
    let token = req.query.get("access_token").map(String::as_str);
    let rejection = state.token_rejection(token);
    let now_ms = lock(&state.token).now_ms();
    let body = req.json();
    let mut templates = lock(&state.template);
    let (errcode, msgid, delivered) = match rejection {
        Some(code) => (code, None, false),
        None if req.body.trim_ascii().is_empty() => (44002, None, false),
        None => templates.judge(&body, now_ms),
    };
    templates.calls.push(TemplateCall {
        body,
        errcode,
        msgid,
        delivered,
    });
    Some(match (errcode, msgid) {
        (0, Some(msgid)) => {
            FakeResponse::json(json!({"errcode": 0, "errmsg": "ok", "msgid": msgid}))
        }
        _ => FakeResponse::errcode(errcode),
    })
}

/// Openids are short strings of letters, digits, `-` and `_` (28 characters in practice).
fn looks_like_openid(touser: &str) -> bool {
    (1..=64).contains(&touser.len())
        && touser
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `TEMPLATESENDJOBFINISH` push WeChat sends for `sent`, as WeChat builds it.
pub fn finish_xml(sent: &SentTemplate, status: &str, create_time: i64) -> String {
    use wechat_protocol::xml::cdata_element;
    let mut xml = String::from("<xml>");
    cdata_element(&mut xml, "ToUserName", FAKE_ACCOUNT_ID);
    cdata_element(&mut xml, "FromUserName", &sent.touser);
    xml.push_str(&format!("<CreateTime>{create_time}</CreateTime>"));
    cdata_element(&mut xml, "MsgType", "event");
    cdata_element(&mut xml, "Event", "TEMPLATESENDJOBFINISH");
    xml.push_str(&format!("<MsgID>{}</MsgID>", sent.msgid));
    cdata_element(&mut xml, "Status", status);
    xml.push_str("</xml>");
    xml
}

/// Where and how the fake pushes to the account's webhook, as WeChat would.
pub struct PushTarget<'a> {
    /// The webhook's URL (`http://127.0.0.1:PORT/wechat`).
    pub url: &'a str,
    /// The account's `WECHAT_TOKEN`.
    pub token: &'a str,
    /// The account's EncodingAESKey, for the compatible and safe modes.
    pub crypto: Option<&'a wechat_protocol::crypto::MessageCrypto>,
    pub mode: wechat_protocol::wechat_side::Mode,
}

impl super::FakeWeChat {
    /// Push `TEMPLATESENDJOBFINISH` with `status` (`success`, `failed:user block`,
    /// `failed: system failed`) for the delivered message `msgid` to `target`, signed (and
    /// sealed) as WeChat does; the webhook's HTTP status and body. `Err` names what went wrong.
    pub async fn push_template_finish(
        &self,
        msgid: u64,
        status: &str,
        target: &PushTarget<'_>,
    ) -> Result<(u16, String), String> {
        use wechat_protocol::wechat_side::{Account, sign_push};
        let (sent, now_ms) = {
            let templates = lock(&self.state().template);
            let sent = templates
                .sent_message(msgid)
                .cloned()
                .ok_or_else(|| format!("the fake sent no message {msgid}"))?;
            (sent, lock(&self.state().token).now_ms())
        };
        let create_time = now_ms.div_euclid(1000);
        let xml = finish_xml(&sent, status, create_time);
        let account = Account {
            token: target.token,
            crypto: target.crypto,
        };
        let nonce = format!("{msgid}");
        let signed = sign_push(
            &account,
            target.mode,
            &xml,
            &sent.touser,
            create_time,
            &nonce,
        )
        .map_err(|e| e.to_string())?;
        let response = reqwest::Client::new()
            .post(target.url)
            .query(&signed.query)
            .body(signed.body)
            .send()
            .await
            .map_err(|e| format!("the push to the webhook failed: {e}"))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_wechat::{FAKE_APP_ID, FAKE_APP_SECRET, token};

    fn request(query: &[(&str, &str)], body: &str) -> FakeRequest {
        FakeRequest {
            method: hyper::Method::POST,
            path: PATH.into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    fn state_with_token() -> (FakeState, String) {
        let state = FakeState::new(FAKE_APP_ID, FAKE_APP_SECRET);
        let body = json!({"grant_type": "client_credential", "appid": FAKE_APP_ID, "secret": FAKE_APP_SECRET});
        let fetch = FakeRequest {
            method: hyper::Method::POST,
            path: "/cgi-bin/stable_token".into(),
            query: HashMap::new(),
            body: bytes::Bytes::from(body.to_string()),
        };
        let answer: Value =
            serde_json::from_str(&token::handle(&state, &fetch).unwrap().body).unwrap();
        (state, answer["access_token"].as_str().unwrap().to_string())
    }

    fn message(edit: impl FnOnce(&mut Value)) -> String {
        let mut body = json!({"touser": "oUser_1", "template_id": FAKE_TEMPLATE_ID, "data": {"thing1": {"value": "shipped"}}});
        edit(&mut body);
        body.to_string()
    }

    #[test]
    fn each_documented_refusal_has_its_errcode() {
        let (state, token) = state_with_token();
        let send = |query: &[(&str, &str)], body: &str| {
            let answer: Value =
                serde_json::from_str(&handle(&state, &request(query, body)).unwrap().body).unwrap();
            answer["errcode"].as_i64().unwrap()
        };
        let t = [("access_token", token.as_str())];
        assert_eq!(send(&[], &message(|_| {})), 41001);
        assert_eq!(send(&[("access_token", "forged")], &message(|_| {})), 40001);
        assert_eq!(send(&t, ""), 44002);
        assert_eq!(send(&t, "[1]"), 47001);
        assert_eq!(send(&t, &message(|b| b["touser"] = json!("o user"))), 40003);
        assert_eq!(send(&t, &message(|b| b["template_id"] = json!(""))), 40036);
        assert_eq!(
            send(&t, &message(|b| b["template_id"] = json!("other"))),
            40037
        );
        assert_eq!(send(&t, &message(|b| b["data"] = json!({}))), 47003);
        assert_eq!(
            send(&t, &message(|b| b["data"] = json!({"k": {"v": 1}}))),
            47003
        );
        assert_eq!(
            send(&t, &message(|b| b["client_msg_id"] = json!("k".repeat(65)))),
            45067
        );
        lock(&state.template).unfollow("oGone");
        assert_eq!(send(&t, &message(|b| b["touser"] = json!("oGone"))), 43004);
        lock(&state.template).refuse("oNo");
        assert_eq!(send(&t, &message(|b| b["touser"] = json!("oNo"))), 43101);
        lock(&state.template).daily_limit = Some(1);
        assert_eq!(send(&t, &message(|_| {})), 0);
        assert_eq!(send(&t, &message(|_| {})), 45009);
        let templates = lock(&state.template);
        assert_eq!(templates.sent().len(), 1);
        assert_eq!(templates.calls().len(), 14);
    }

    #[test]
    fn the_same_key_to_the_same_user_within_ten_minutes_is_one_message_with_the_first_msgid() {
        let (state, token) = state_with_token();
        let clock = account::clock::ManualClock::at_ms(1_767_225_600_000);
        lock(&state.token).use_clock(clock.clone());
        let t = [("access_token", token.as_str())];
        let msgid = |body: &str| {
            let answer: Value =
                serde_json::from_str(&handle(&state, &request(&t, body)).unwrap().body).unwrap();
            assert_eq!(answer["errcode"], 0, "{answer}");
            answer["msgid"].as_u64().unwrap()
        };
        let keyed = message(|b| b["client_msg_id"] = json!("order-1"));
        let first = msgid(&keyed);
        clock.advance_ms(DEDUP_WINDOW_MS - 1);
        assert_eq!(msgid(&keyed), first);
        // Another user, or another key, is another message.
        assert_ne!(
            msgid(&message(|b| {
                b["client_msg_id"] = json!("order-1");
                b["touser"] = json!("oUser_2");
            })),
            first
        );
        assert_ne!(
            msgid(&message(|b| b["client_msg_id"] = json!("order-2"))),
            first
        );
        // Without a key every send is a message.
        let plain = message(|_| {});
        assert_ne!(msgid(&plain), msgid(&plain));
        clock.advance_ms(1);
        assert_ne!(msgid(&keyed), first, "the window is over");
        let templates = lock(&state.template);
        assert_eq!(templates.sent().len(), 6);
        assert_eq!(templates.calls().iter().filter(|c| !c.delivered).count(), 1);
    }

    #[test]
    fn the_finish_push_is_the_event_wechat_sends() {
        let sent = SentTemplate {
            msgid: 200228332,
            touser: "oUser_1".into(),
            template_id: FAKE_TEMPLATE_ID.into(),
            body: Value::Null,
        };
        let xml = finish_xml(&sent, "failed:user block", 1_767_225_600);
        let msg = wechat_protocol::message::Message::parse(xml.as_bytes()).unwrap();
        assert_eq!(msg.msg_id.as_deref(), Some("200228332"));
        assert_eq!(
            msg.kind,
            wechat_protocol::message::MessageKind::Event(
                wechat_protocol::message::Event::TemplateSendJobFinish {
                    status: "failed:user block".into()
                }
            )
        );
    }
}

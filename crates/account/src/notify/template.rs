//! The template message (`POST /cgi-bin/message/template/send`) as a type: what WeChat's
//! documentation lists for a 服务号 (`touser`, `template_id`, `url`, `miniprogram {appid,
//! pagepath}`, `data {keyword: {value, color?}}`, `client_msg_id`), checked offline, and the
//! send's named outcomes.
//!
//! `client_msg_id` is WeChat's de-duplication key: for one openid and one client_msg_id WeChat
//! sends one message within 10 minutes (beyond that it promises nothing). A send without one
//! gets a random one here, before any attempt, so that the retries made on the caller's behalf
//! (a stale token, WeChat busy) reuse it and the follower is notified once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The path of the send.
pub const TEMPLATE_SEND_PATH: &str = "/cgi-bin/message/template/send";

/// The longest `client_msg_id` WeChat accepts (45067 beyond, reported by developers; the
/// documentation gives no number).
pub const CLIENT_MSG_ID_MAX_BYTES: usize = 64;

/// A template message. Fields WeChat may add and this type does not know are kept in `extra` and
/// sent as they came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateMessage {
    pub touser: String,
    pub template_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miniprogram: Option<MiniProgram>,
    pub data: BTreeMap<String, DataItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Where a tap on the message opens a mini program (preferred by WeChat over `url` when both are
/// set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiniProgram {
    pub appid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagepath: Option<String>,
}

/// One keyword's value (`{{keyword.DATA}}` in the template).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataItem {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// Why a template message is refused before WeChat is asked. Texts name the field, never its
/// value (an openid is personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the body is not a template message: {0}")]
    Shape(String),
    #[error("touser must be an openid (letters, digits, - and _, 1 to 64 of them)")]
    Touser,
    #[error("template_id must be a template's id (letters, digits, - and _, 1 to 64 of them)")]
    TemplateId,
    #[error("data must name at least one keyword")]
    NoData,
    #[error("data keyword names must be letters, digits and _ (1 to 64 of them)")]
    Keyword,
    #[error("data.{0}.color must be #RRGGBB")]
    Color(String),
    #[error("url must be an http or https URL")]
    Url,
    #[error("miniprogram.appid must be an AppID (wx and 16 hexadecimal digits)")]
    MiniProgramAppId,
    #[error("client_msg_id must be 1 to {CLIENT_MSG_ID_MAX_BYTES} bytes")]
    ClientMsgId,
}

impl TemplateError {
    /// A stable name for answers and log lines.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Shape(_) => "not_a_template_message",
            Self::Touser => "invalid_touser",
            Self::TemplateId => "invalid_template_id",
            Self::NoData => "no_data",
            Self::Keyword => "invalid_keyword",
            Self::Color(_) => "invalid_color",
            Self::Url => "invalid_url",
            Self::MiniProgramAppId => "invalid_miniprogram_appid",
            Self::ClientMsgId => "invalid_client_msg_id",
        }
    }
}

fn is_token(value: &str, extra: &[u8]) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

impl TemplateMessage {
    /// Read a request body as a template message, checked ([`Self::check`]).
    pub fn from_body(body: &Value) -> Result<Self, TemplateError> {
        let message: Self = serde_json::from_value(body.clone()).map_err(|e| {
            let text = e.to_string();
            // "missing field `data`" names the field only; serde's other texts quote the value
            // (an openid, say), so they are replaced.
            TemplateError::Shape(match text.starts_with("missing field") {
                true => text,
                false => "a field has the wrong type (every value is a string, data maps \
                          keywords to {value, color?})"
                    .into(),
            })
        })?;
        message.check()?;
        Ok(message)
    }

    /// The checks that need no call: shapes WeChat would refuse anyway (40003, 40036/40037,
    /// 47001, 45067), so a caller's mistake costs no quota and reads clearly.
    pub fn check(&self) -> Result<(), TemplateError> {
        if !is_token(&self.touser, b"-_") {
            return Err(TemplateError::Touser);
        }
        if !is_token(&self.template_id, b"-_") {
            return Err(TemplateError::TemplateId);
        }
        if self.data.is_empty() {
            return Err(TemplateError::NoData);
        }
        for (keyword, item) in &self.data {
            if !is_token(keyword, b"_") {
                return Err(TemplateError::Keyword);
            }
            if let Some(color) = &item.color {
                let hex = color.strip_prefix('#').unwrap_or("");
                if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(TemplateError::Color(keyword.clone()));
                }
            }
        }
        if let Some(url) = &self.url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(TemplateError::Url);
        }
        if let Some(mini) = &self.miniprogram
            && !crate::config::is_app_id(&mini.appid)
        {
            return Err(TemplateError::MiniProgramAppId);
        }
        if let Some(key) = &self.client_msg_id
            && (key.is_empty() || key.len() > CLIENT_MSG_ID_MAX_BYTES)
        {
            return Err(TemplateError::ClientMsgId);
        }
        Ok(())
    }

    /// This message with a `client_msg_id`: its own, or a new random one.
    pub fn with_client_msg_id(
        mut self,
    ) -> Result<Self, wechat_protocol::random::RandomUnavailable> {
        if self.client_msg_id.is_none() {
            self.client_msg_id = Some(new_client_msg_id()?);
        }
        Ok(self)
    }

    /// The JSON body WeChat expects.
    pub fn to_body(&self) -> Value {
        // A struct of strings and maps of strings: serializing cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A fresh `client_msg_id`: 128 random bits, hex (32 bytes, within WeChat's 64).
pub fn new_client_msg_id() -> Result<String, wechat_protocol::random::RandomUnavailable> {
    Ok(format!(
        "auto-{}",
        hex::encode(wechat_protocol::random::bytes::<16>()?)
    ))
}

/// How a send ended, by WeChat's errcode. The codes are the ones WeChat documents for the send;
/// the names are what answers and log lines carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// 0: accepted; `msgid` is what the `TEMPLATESENDJOBFINISH` event will name.
    Sent { msgid: String },
    /// 43004: the user does not follow the account.
    UserNotFollowing,
    /// 40003: not an openid of this account.
    InvalidOpenid,
    /// 40037 (or 40036): not a template of this account.
    InvalidTemplateId,
    /// 45009: the account's daily quota of template messages is used up.
    DailyLimit,
    /// 43101: the user refused this account's notifications.
    UserRefused,
    /// -1 through every attempt.
    WeChatBusy,
    /// 40001/40014/42001 even after the one refresh.
    AccessTokenRejected,
    /// Anything else WeChat answered.
    Rejected { errcode: i64 },
}

impl SendOutcome {
    /// The outcome of WeChat's answer `body` to a send.
    pub fn of(errcode: i64, body: &Value) -> Self {
        match errcode {
            0 => Self::Sent {
                msgid: match body.get("msgid") {
                    Some(Value::String(id)) => id.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                },
            },
            43004 => Self::UserNotFollowing,
            40003 => Self::InvalidOpenid,
            40036 | 40037 => Self::InvalidTemplateId,
            45009 => Self::DailyLimit,
            43101 => Self::UserRefused,
            -1 => Self::WeChatBusy,
            40001 | 40014 | 42001 => Self::AccessTokenRejected,
            other => Self::Rejected { errcode: other },
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Sent { .. } => "sent",
            Self::UserNotFollowing => "user_not_following",
            Self::InvalidOpenid => "invalid_openid",
            Self::InvalidTemplateId => "invalid_template_id",
            Self::DailyLimit => "daily_limit",
            Self::UserRefused => "user_refused",
            Self::WeChatBusy => "wechat_busy",
            Self::AccessTokenRejected => "access_token_rejected",
            Self::Rejected { .. } => "rejected",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Value {
        json!({
            "touser": "oUser_1", "template_id": "TPL-abc_1", "url": "https://example.com/o/1",
            "data": {"thing1": {"value": "Order shipped"}, "time2": {"value": "2026-01-01 08:00", "color": "#173177"}}
        })
    }

    #[test]
    fn a_documented_message_reads_and_writes_back_the_same_json() {
        let message = TemplateMessage::from_body(&body()).unwrap();
        assert_eq!(message.to_body(), body());
        let mut with_mini = body();
        with_mini["miniprogram"] =
            json!({"appid": "wxfa4e000000000001", "pagepath": "index?foo=bar"});
        with_mini["topcolor"] = json!("#FF0000");
        assert_eq!(
            TemplateMessage::from_body(&with_mini).unwrap().to_body(),
            with_mini
        );
    }

    #[test]
    fn offline_checks_name_the_field_and_never_echo_the_value() {
        let refused = |edit: &dyn Fn(&mut Value)| {
            let mut b = body();
            edit(&mut b);
            TemplateMessage::from_body(&b).unwrap_err()
        };
        assert_eq!(
            refused(&|b| b["touser"] = json!("o user<script>")),
            TemplateError::Touser
        );
        assert_eq!(
            refused(&|b| b["template_id"] = json!("")),
            TemplateError::TemplateId
        );
        assert_eq!(refused(&|b| b["data"] = json!({})), TemplateError::NoData);
        assert_eq!(
            refused(&|b| b["data"]["thing1"]["color"] = json!("red")),
            TemplateError::Color("thing1".into())
        );
        assert_eq!(
            refused(&|b| b["url"] = json!("javascript:x")),
            TemplateError::Url
        );
        assert_eq!(
            refused(&|b| b["miniprogram"] = json!({"appid": "nope"})),
            TemplateError::MiniProgramAppId
        );
        assert_eq!(
            refused(&|b| b["client_msg_id"] = json!("k".repeat(65))),
            TemplateError::ClientMsgId
        );
        let shape = refused(&|b| b["touser"] = json!(12345678));
        assert_eq!(shape.code(), "not_a_template_message");
        assert!(!shape.to_string().contains("12345678"), "{shape}");
        let missing = refused(&|b| {
            b.as_object_mut().unwrap().remove("data");
        });
        assert!(missing.to_string().contains("data"), "{missing}");
    }

    #[test]
    fn a_message_without_a_key_gets_a_fresh_one_and_keeps_its_own() {
        let message = TemplateMessage::from_body(&body()).unwrap();
        let (a, b) = (
            message.clone().with_client_msg_id().unwrap(),
            message.clone().with_client_msg_id().unwrap(),
        );
        let key = a.client_msg_id.clone().unwrap();
        assert!(key.len() <= CLIENT_MSG_ID_MAX_BYTES);
        assert_ne!(a.client_msg_id, b.client_msg_id);
        let own = TemplateMessage {
            client_msg_id: Some("order-1".into()),
            ..message
        };
        assert_eq!(
            own.with_client_msg_id().unwrap().client_msg_id.as_deref(),
            Some("order-1")
        );
    }

    #[test]
    fn errcodes_have_their_documented_names() {
        let named = |code| SendOutcome::of(code, &json!({})).code();
        assert_eq!(named(43004), "user_not_following");
        assert_eq!(named(40003), "invalid_openid");
        assert_eq!(named(40037), "invalid_template_id");
        assert_eq!(named(45009), "daily_limit");
        assert_eq!(named(43101), "user_refused");
        assert_eq!(named(47003), "rejected");
        assert_eq!(
            SendOutcome::of(0, &json!({"errcode": 0, "msgid": 200228332})),
            SendOutcome::Sent {
                msgid: "200228332".into()
            }
        );
    }
}

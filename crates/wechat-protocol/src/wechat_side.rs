//! WeChat's side of the webhook protocol, for tools that play WeChat (`wx push`, `wx verify-url`):
//! a push's XML as WeChat builds it, its query signed as WeChat signs it (plaintext, compatible
//! or safe mode), and the reply checked and opened as WeChat would. The signing and the
//! encryption are the webhook's own ([`crate::signature`], [`crate::crypto`]); only the
//! envelope's direction differs.

use std::fmt;

use crate::crypto::{CryptoError, MessageCrypto};
use crate::message::EventType;
use crate::signature;
use crate::xml::{Fields, cdata_element};

/// How a push travels, as set in the WeChat console (消息加解密方式).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 明文模式: the XML as it is, signed by `signature` only.
    Plaintext,
    /// 兼容模式: the plaintext fields and their `Encrypt`ed copy in one body.
    Compatible,
    /// 安全模式: only `ToUserName` and `Encrypt`, with `msg_signature`.
    Safe,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Compatible => "compatible",
            Self::Safe => "safe",
        }
    }
}

/// What the push carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A text message from the user.
    Text(String),
    /// An event, with its `EventKey` when it has one (CLICK's menu key, VIEW's URL, a scene).
    Event {
        event: EventType,
        key: Option<String>,
    },
    /// A whole push XML, sent as it is.
    Xml(String),
}

/// The envelope fields WeChat sets on every push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `ToUserName`: the account.
    pub to_user: String,
    /// `FromUserName`: the user's openid.
    pub from_user: String,
    /// `CreateTime`, epoch seconds.
    pub create_time: i64,
    /// `MsgId` of a message (events have none).
    pub msg_id: u64,
}

/// The push's plaintext XML, element order as WeChat sends it.
pub fn push_xml(content: &Content, envelope: &Envelope) -> String {
    let mut xml = String::with_capacity(256);
    let head = |xml: &mut String, msg_type: &str| {
        xml.push_str("<xml>");
        cdata_element(xml, "ToUserName", &envelope.to_user);
        cdata_element(xml, "FromUserName", &envelope.from_user);
        xml.push_str(&format!(
            "<CreateTime>{}</CreateTime>",
            envelope.create_time
        ));
        cdata_element(xml, "MsgType", msg_type);
    };
    match content {
        Content::Xml(raw) => return raw.clone(),
        Content::Text(text) => {
            head(&mut xml, "text");
            cdata_element(&mut xml, "Content", text);
            xml.push_str(&format!("<MsgId>{}</MsgId>", envelope.msg_id));
        }
        Content::Event { event, key } => {
            head(&mut xml, "event");
            cdata_element(&mut xml, "Event", event.as_str());
            if let Some(key) = key {
                cdata_element(&mut xml, "EventKey", key);
            }
        }
    }
    xml.push_str("</xml>");
    xml
}

/// The account's secrets that sign and seal pushes.
pub struct Account<'a> {
    pub token: &'a str,
    /// Needed for compatible and safe mode.
    pub crypto: Option<&'a MessageCrypto>,
}

/// Why a push could not be built or its reply could not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0} mode needs WECHAT_ENCODING_AES_KEY (and WECHAT_APP_ID)")]
    NoKey(&'static str),
    #[error("the operating system's random source failed")]
    Random,
    #[error("the reply is not XML WeChat can read: {0}")]
    ReplyXml(String),
    #[error("the encrypted reply lacks {0}")]
    ReplyField(&'static str),
    #[error("the reply's MsgSignature does not match: WeChat would drop it")]
    ReplySignature,
    #[error("the encrypted reply does not decrypt: {0}")]
    ReplyDecrypt(CryptoError),
    #[error("the reply is plaintext, but in safe mode WeChat accepts only encrypted replies")]
    PlaintextReplyInSafeMode,
}

/// A push ready to POST: its query (signature, timestamp, nonce, openid, and for encrypted
/// modes encrypt_type and msg_signature) and its body.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedPush {
    pub query: Vec<(&'static str, String)>,
    pub body: String,
}

impl fmt::Debug for SignedPush {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body of an encrypted push is opaque anyway; the query names no secret.
        f.debug_struct("SignedPush")
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

/// Sign (and seal) `xml` as WeChat does at `timestamp` with `nonce`, for the user `openid`.
pub fn sign_push(
    account: &Account<'_>,
    mode: Mode,
    xml: &str,
    openid: &str,
    timestamp: i64,
    nonce: &str,
) -> Result<SignedPush, PushError> {
    let timestamp = timestamp.to_string();
    let mut query = vec![
        (
            "signature",
            signature::sign(&[account.token, &timestamp, nonce]),
        ),
        ("timestamp", timestamp.clone()),
        ("nonce", nonce.to_string()),
        ("openid", openid.to_string()),
    ];
    if mode == Mode::Plaintext {
        return Ok(SignedPush {
            query,
            body: xml.to_string(),
        });
    }
    let crypto = account.crypto.ok_or(PushError::NoKey(mode.name()))?;
    let prefix = crate::crypto::random_prefix().map_err(|_| PushError::Random)?;
    let encrypt = crypto.encrypt_with_prefix(&prefix, xml);
    let msg_signature = signature::sign(&[account.token, &timestamp, nonce, &encrypt]);
    query.push(("encrypt_type", "aes".into()));
    query.push(("msg_signature", msg_signature));
    let body = match mode {
        Mode::Safe => {
            let to_user = Fields::parse(xml)
                .ok()
                .and_then(|f| f.get("ToUserName").map(String::from))
                .unwrap_or_default();
            let mut body = String::with_capacity(encrypt.len() + 128);
            body.push_str("<xml>");
            cdata_element(&mut body, "ToUserName", &to_user);
            cdata_element(&mut body, "Encrypt", &encrypt);
            body.push_str("</xml>");
            body
        }
        // The plaintext fields stay; the encrypted copy goes last, before `</xml>`.
        _ => {
            let end = xml.rfind("</xml>").unwrap_or(xml.len());
            let mut body = String::with_capacity(xml.len() + encrypt.len() + 64);
            body.push_str(&xml[..end]);
            cdata_element(&mut body, "Encrypt", &encrypt);
            body.push_str("</xml>");
            body
        }
    };
    Ok(SignedPush { query, body })
}

/// The query of the server-URL verification WeChat's console sends when Submit is pressed.
pub fn verification_query(
    token: &str,
    timestamp: i64,
    nonce: &str,
    echostr: &str,
) -> Vec<(&'static str, String)> {
    let timestamp = timestamp.to_string();
    vec![
        ("signature", signature::sign(&[token, &timestamp, nonce])),
        ("timestamp", timestamp),
        ("nonce", nonce.to_string()),
        ("echostr", echostr.to_string()),
    ]
}

/// The webhook's answer as WeChat reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceivedReply {
    /// `success` or an empty body: no message to the user.
    Nothing,
    /// A reply message; `encrypted` when it came sealed (its signature checked).
    Message {
        xml: String,
        fields: Fields,
        encrypted: bool,
    },
}

/// Check and open the webhook's `body` as WeChat does in `mode`.
pub fn open_reply(
    account: &Account<'_>,
    mode: Mode,
    body: &str,
) -> Result<ReceivedReply, PushError> {
    let trimmed = body.trim();
    if trimmed.is_empty() || trimmed == "success" {
        return Ok(ReceivedReply::Nothing);
    }
    let fields = Fields::parse(trimmed).map_err(|e| PushError::ReplyXml(e.to_string()))?;
    let Some(encrypt) = fields.get("Encrypt") else {
        if mode == Mode::Safe {
            return Err(PushError::PlaintextReplyInSafeMode);
        }
        return Ok(ReceivedReply::Message {
            xml: trimmed.to_string(),
            fields,
            encrypted: false,
        });
    };
    let crypto = account.crypto.ok_or(PushError::NoKey(mode.name()))?;
    let field = |name: &'static str| fields.get(name).ok_or(PushError::ReplyField(name));
    let (msg_signature, timestamp, nonce) =
        (field("MsgSignature")?, field("TimeStamp")?, field("Nonce")?);
    if !signature::verify(msg_signature, &[account.token, timestamp, nonce, encrypt]) {
        return Err(PushError::ReplySignature);
    }
    let xml = crypto.decrypt(encrypt).map_err(PushError::ReplyDecrypt)?;
    let fields = Fields::parse(&xml).map_err(|e| PushError::ReplyXml(e.to_string()))?;
    Ok(ReceivedReply::Message {
        xml,
        fields,
        encrypted: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    fn envelope() -> Envelope {
        Envelope {
            to_user: "gh_account".into(),
            from_user: "o_user".into(),
            create_time: 1_700_000_000,
            msg_id: 42,
        }
    }

    #[test]
    fn a_text_push_has_the_envelope_content_and_msg_id() {
        let xml = push_xml(&Content::Text("你好 <&>".into()), &envelope());
        let fields = Fields::parse(&xml).unwrap();
        assert_eq!(fields.get("ToUserName"), Some("gh_account"));
        assert_eq!(fields.get("FromUserName"), Some("o_user"));
        assert_eq!(fields.get("CreateTime"), Some("1700000000"));
        assert_eq!(fields.get("MsgType"), Some("text"));
        assert_eq!(fields.get("Content"), Some("你好 <&>"));
        assert_eq!(fields.get("MsgId"), Some("42"));
    }

    #[test]
    fn an_event_push_has_its_key_and_no_msg_id() {
        let content = Content::Event {
            event: EventType::Click,
            key: Some("V1001".into()),
        };
        let fields = Fields::parse(&push_xml(&content, &envelope())).unwrap();
        assert_eq!(fields.get("MsgType"), Some("event"));
        assert_eq!(fields.get("Event"), Some("CLICK"));
        assert_eq!(fields.get("EventKey"), Some("V1001"));
        assert_eq!(fields.get("MsgId"), None);
    }

    #[test]
    fn a_plaintext_push_is_signed_over_token_timestamp_and_nonce() {
        let account = Account {
            token: "devtoken",
            crypto: None,
        };
        let push = sign_push(&account, Mode::Plaintext, "<xml/>", "o_user", 1, "n").unwrap();
        let query: std::collections::HashMap<_, _> = push.query.into_iter().collect();
        assert!(signature::verify(
            &query["signature"],
            &["devtoken", "1", "n"]
        ));
        assert!(!query.contains_key("encrypt_type"));
        assert_eq!(push.body, "<xml/>");
    }

    #[test]
    fn safe_mode_without_a_key_is_refused() {
        let account = Account {
            token: "devtoken",
            crypto: None,
        };
        let err = sign_push(&account, Mode::Safe, "<xml/>", "o", 1, "n").unwrap_err();
        assert!(matches!(err, PushError::NoKey("safe")));
    }

    #[test]
    fn a_safe_push_carries_only_the_account_and_the_encrypted_xml() {
        let crypto = MessageCrypto::new(KEY, "wx1").unwrap();
        let account = Account {
            token: "devtoken",
            crypto: Some(&crypto),
        };
        let xml = push_xml(&Content::Text("hi".into()), &envelope());
        let push = sign_push(&account, Mode::Safe, &xml, "o_user", 7, "n").unwrap();
        let fields = Fields::parse(&push.body).unwrap();
        assert_eq!(fields.get("ToUserName"), Some("gh_account"));
        assert_eq!(fields.get("Content"), None);
        let encrypt = fields.get("Encrypt").unwrap();
        assert_eq!(crypto.decrypt(encrypt).unwrap(), xml);
        let query: std::collections::HashMap<_, _> = push.query.into_iter().collect();
        assert_eq!(query["encrypt_type"], "aes");
        assert!(signature::verify(
            &query["msg_signature"],
            &["devtoken", "7", "n", encrypt]
        ));
    }

    #[test]
    fn a_compatible_push_keeps_the_plaintext_next_to_its_encrypted_copy() {
        let crypto = MessageCrypto::new(KEY, "wx1").unwrap();
        let account = Account {
            token: "devtoken",
            crypto: Some(&crypto),
        };
        let xml = push_xml(&Content::Text("hi".into()), &envelope());
        let push = sign_push(&account, Mode::Compatible, &xml, "o_user", 7, "n").unwrap();
        let fields = Fields::parse(&push.body).unwrap();
        assert_eq!(fields.get("Content"), Some("hi"));
        assert_eq!(crypto.decrypt(fields.get("Encrypt").unwrap()).unwrap(), xml);
    }

    #[test]
    fn an_encrypted_reply_is_checked_and_opened_and_a_forged_one_refused() {
        let crypto = MessageCrypto::new(KEY, "wx1").unwrap();
        let account = Account {
            token: "devtoken",
            crypto: Some(&crypto),
        };
        let reply = "<xml><ToUserName><![CDATA[o_user]]></ToUserName><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[ok]]></Content></xml>";
        let encrypt = crypto.encrypt(reply);
        let sig = signature::sign(&["devtoken", "5", "n", &encrypt]);
        let envelope = |sig: &str| {
            format!(
                "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature><TimeStamp>5</TimeStamp><Nonce><![CDATA[n]]></Nonce></xml>"
            )
        };
        let ReceivedReply::Message {
            fields, encrypted, ..
        } = open_reply(&account, Mode::Safe, &envelope(&sig)).unwrap()
        else {
            panic!("expected a message");
        };
        assert!(encrypted);
        assert_eq!(fields.get("Content"), Some("ok"));
        let forged = "0".repeat(40);
        assert!(matches!(
            open_reply(&account, Mode::Safe, &envelope(&forged)),
            Err(PushError::ReplySignature)
        ));
        assert!(matches!(
            open_reply(&account, Mode::Safe, reply),
            Err(PushError::PlaintextReplyInSafeMode)
        ));
        assert_eq!(
            open_reply(&account, Mode::Compatible, "success").unwrap(),
            ReceivedReply::Nothing
        );
    }

    #[test]
    fn the_verification_query_is_signed_as_the_console_signs_it() {
        let query: std::collections::HashMap<_, _> = verification_query("devtoken", 9, "n", "echo")
            .into_iter()
            .collect();
        assert!(signature::verify(
            &query["signature"],
            &["devtoken", "9", "n"]
        ));
        assert_eq!(query["echostr"], "echo");
    }
}

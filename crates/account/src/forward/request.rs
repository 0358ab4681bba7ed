//! What the account's service receives ([`ForwardRequest`], POSTed as JSON) and the key that
//! identifies one push across WeChat's retries ([`dedup_key`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wechat_protocol::message::{Message, MsgType};

/// The de-duplication key of a push, as hex SHA-256 (fixed length, whatever the EventKey):
/// `MsgId` + `FromUserName` for messages (MsgId alone has collided in practice), and
/// `FromUserName` + `CreateTime` + `Event` + `EventKey` for events, as WeChat advises, plus the
/// event's own id when it has one (`MsgID` of TEMPLATESENDJOBFINISH and MASSSENDJOBFINISH: two
/// reports for one user in one second are two pushes). A message without a `MsgId` is keyed like
/// an event, by its type.
pub fn dedup_key(msg: &Message) -> String {
    let is_event = msg.known_type == Some(MsgType::Event);
    let create_time = msg.create_time.to_string();
    let parts: Vec<&str> = match (&msg.msg_id, is_event) {
        (Some(msg_id), false) => vec!["msg", &msg.from_user_name, msg_id],
        _ => vec![
            if is_event { "event" } else { "untracked" },
            &msg.from_user_name,
            &create_time,
            msg.event_name().unwrap_or(&msg.msg_type),
            msg.event_key().unwrap_or_default(),
            msg.msg_id.as_deref().unwrap_or_default(),
        ],
    };
    let mut digest = Sha256::new();
    for part in parts {
        // Length-prefixed, so no two different field lists hash the same bytes.
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    hex::encode(digest.finalize())
}

/// One field's value: most fields occur once; lists (`SendPicsInfo/PicList/item/PicMd5Sum`)
/// repeat and become arrays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    One(String),
    Many(Vec<String>),
}

/// The body POSTed to the service.
///
/// ```json
/// {"idempotency_key": "9f2c…", "type": "text", "openid": "oUser…", "account": "gh_…",
///  "create_time": 1700000000, "msg_id": "2345…",
///  "fields": {"Content": "hi", "CreateTime": "1700000000", "FromUserName": "oUser…", …}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardRequest {
    /// The de-duplication key: the same for every retry of one push.
    pub idempotency_key: String,
    /// The message type, spelled as this code's vocabulary does (`text`, `event`, …), or as sent
    /// when unknown.
    #[serde(rename = "type")]
    pub msg_type: String,
    /// The event (`subscribe`, `CLICK`, …) of an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The sender (`FromUserName`).
    pub openid: String,
    /// The official account (`ToUserName`).
    pub account: String,
    pub create_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    /// Every field WeChat sent, by its path below the root.
    pub fields: BTreeMap<String, FieldValue>,
}

impl ForwardRequest {
    /// Hex SHA-256 of the request as it is POSTed: the message side stores it on the `msg#`
    /// item when it claims the push, and the worker forwards only a request that hashes to it,
    /// so an invoke payload cannot change what is sent, or to whom the answer goes.
    pub fn digest(&self) -> String {
        // Serializing a struct of strings, numbers and a BTreeMap cannot fail, and is
        // deterministic: the same request always hashes the same on both sides.
        let body = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&body))
    }

    pub fn new(msg: &Message) -> Self {
        let mut fields: BTreeMap<String, FieldValue> = BTreeMap::new();
        for (path, value) in msg.fields.iter() {
            let entry = fields
                .entry(path.to_string())
                .or_insert_with(|| FieldValue::Many(Vec::new()));
            if let FieldValue::Many(values) = entry {
                values.push(value.to_string());
            }
        }
        for value in fields.values_mut() {
            if let FieldValue::Many(values) = value
                && values.len() == 1
            {
                *value = FieldValue::One(values.remove(0));
            }
        }
        Self {
            idempotency_key: dedup_key(msg),
            msg_type: msg
                .known_type
                .map_or_else(|| msg.msg_type.clone(), |t| t.as_str().to_string()),
            event: msg.event_name().map(|raw| {
                msg.known_event
                    .map_or_else(|| raw.to_string(), |e| e.as_str().to_string())
            }),
            openid: msg.from_user_name.clone(),
            account: msg.to_user_name.clone(),
            create_time: msg.create_time,
            msg_id: msg.msg_id.clone(),
            fields,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> Message {
        let xml = format!(
            "<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>7</CreateTime>{body}</xml>"
        );
        Message::parse(xml.as_bytes()).unwrap()
    }

    #[test]
    fn messages_are_keyed_by_sender_and_msgid() {
        let a = message("<MsgType>text</MsgType><Content>a</Content><MsgId>42</MsgId>");
        let retry = message("<MsgType>text</MsgType><Content>a</Content><MsgId>42</MsgId>");
        assert_eq!(dedup_key(&a), dedup_key(&retry));
        assert_eq!(dedup_key(&a).len(), 64);
        let other_sender = Message::parse(
            b"<xml><ToUserName>gh</ToUserName><FromUserName>o2</FromUserName><CreateTime>7</CreateTime><MsgType>text</MsgType><Content>a</Content><MsgId>42</MsgId></xml>",
        )
        .unwrap();
        assert_ne!(dedup_key(&a), dedup_key(&other_sender));
        let other_id = message("<MsgType>text</MsgType><Content>a</Content><MsgId>43</MsgId>");
        assert_ne!(dedup_key(&a), dedup_key(&other_id));
    }

    #[test]
    fn events_are_keyed_by_sender_time_event_and_key_even_when_long() {
        let click = |key: &str| {
            message(&format!(
                "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>{key}</EventKey>"
            ))
        };
        assert_eq!(dedup_key(&click("A")), dedup_key(&click("A")));
        assert_ne!(dedup_key(&click("A")), dedup_key(&click("B")));
        let long = "k".repeat(5000);
        assert_eq!(dedup_key(&click(&long)).len(), 64);
        let view = message("<MsgType>event</MsgType><Event>VIEW</Event><EventKey>A</EventKey>");
        assert_ne!(dedup_key(&click("A")), dedup_key(&view));
    }

    #[test]
    fn two_job_reports_for_one_user_in_one_second_are_two_pushes() {
        let report = |id: &str| {
            message(&format!(
                "<MsgType>event</MsgType><Event>TEMPLATESENDJOBFINISH</Event><MsgID>{id}</MsgID><Status>success</Status>"
            ))
        };
        assert_ne!(
            dedup_key(&report("200163836")),
            dedup_key(&report("200163840"))
        );
        assert_eq!(
            dedup_key(&report("200163836")),
            dedup_key(&report("200163836"))
        );
    }

    #[test]
    fn the_request_carries_every_field_the_parsed_type_and_the_key() {
        let msg = message(
            "<MsgType>event</MsgType><Event>pic_weixin</Event><EventKey>k</EventKey><SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum>a</PicMd5Sum></item><item><PicMd5Sum>b</PicMd5Sum></item></PicList></SendPicsInfo>",
        );
        let request = ForwardRequest::new(&msg);
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["type"], "event");
        assert_eq!(json["event"], "pic_weixin");
        assert_eq!(json["openid"], "o1");
        assert_eq!(json["idempotency_key"], dedup_key(&msg));
        assert_eq!(json["fields"]["EventKey"], "k");
        assert_eq!(
            json["fields"]["SendPicsInfo/PicList/item/PicMd5Sum"],
            serde_json::json!(["a", "b"])
        );
        let back: ForwardRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, request);
    }
}

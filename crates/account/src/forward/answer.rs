//! What the account's service may answer: a reply in the schema of a rule's reply
//! (`{"type":"text","content":"…"}`, read through [`Reply`] and its checks), or one of the types
//! only the customer-service API can send (`mpnews`, `msgmenu`). `{"type":"success"}`, a 204 and
//! an empty body all mean "no answer".

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wechat_protocol::reply::Reply;

/// A menu message (customer-service `msgmenu`): the customer-service API's own type, so an
/// answer goes out exactly as the service wrote it.
use crate::customer_service::MsgMenu;

/// An answer to deliver to the user, passively or late.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A type a passive reply carries (never [`Reply::Success`], which is no answer).
    Reply(Reply),
    /// An article already published or saved in the account's material library.
    MpNews { media_id: String },
    /// A message with choices the user taps (customer-service `msgmenu`).
    MsgMenu(MsgMenu),
}

/// The late-only types, as written (tagged by `type` like a [`Reply`]).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum LateOnly {
    Mpnews { media_id: String },
    Msgmenu(MsgMenu),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum LateOnlyRef<'a> {
    Mpnews { media_id: &'a str },
    Msgmenu(&'a MsgMenu),
}

impl Answer {
    /// The answer a reply stands for; `None` for [`Reply::Success`].
    pub fn from_reply(reply: Reply) -> Option<Self> {
        (reply != Reply::Success).then_some(Self::Reply(reply))
    }

    /// The passive reply carrying this answer, if a passive reply can.
    pub fn passive(&self) -> Option<&Reply> {
        match self {
            Self::Reply(reply) => Some(reply),
            Self::MpNews { .. } | Self::MsgMenu(_) => None,
        }
    }

    /// Whether the customer-service API can send it (handing over to an agent is passive only).
    pub fn can_send_late(&self) -> bool {
        !matches!(self, Self::Reply(Reply::TransferCustomerService { .. }))
    }

    /// The answer's `type`, for logs.
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Reply(reply) => reply.msg_type(),
            Self::MpNews { .. } => "mpnews",
            Self::MsgMenu(_) => "msgmenu",
        }
    }

    fn checked(self) -> Result<Self, String> {
        let blank = |field: &str, value: &str| {
            if value.trim().is_empty() {
                Err(format!("{field} must not be empty"))
            } else {
                Ok(())
            }
        };
        match &self {
            Self::Reply(_) => {}
            Self::MpNews { media_id } => blank("media_id", media_id)?,
            Self::MsgMenu(menu) => {
                if menu.list.is_empty() {
                    return Err("a msgmenu needs at least one choice in list".into());
                }
                for option in &menu.list {
                    blank("list id", &option.id)?;
                    blank("list content", &option.content)?;
                }
            }
        }
        Ok(self)
    }
}

impl<'de> Deserialize<'de> for Answer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Tag {
            #[serde(rename = "type")]
            kind: String,
        }
        // Buffered once, so the `type` decides which schema (and which error messages) apply.
        let value = serde_json::Value::deserialize(deserializer)?;
        let Tag { kind } = Tag::deserialize(&value).map_err(D::Error::custom)?;
        let answer = match kind.as_str() {
            "mpnews" | "msgmenu" => match LateOnly::deserialize(value).map_err(D::Error::custom)? {
                LateOnly::Mpnews { media_id } => Self::MpNews { media_id },
                LateOnly::Msgmenu(menu) => Self::MsgMenu(menu),
            },
            _ => Self::Reply(<Reply as Deserialize>::deserialize(value).map_err(D::Error::custom)?),
        };
        answer.checked().map_err(D::Error::custom)
    }
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Reply(reply) => reply.serialize(serializer),
            Self::MpNews { media_id } => LateOnlyRef::Mpnews { media_id }.serialize(serializer),
            Self::MsgMenu(menu) => LateOnlyRef::Msgmenu(menu).serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Answer, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn replies_read_in_the_rules_schema_and_late_only_types_beside_them() {
        assert_eq!(
            parse(r#"{"type":"text","content":"hi"}"#),
            Ok(Answer::Reply(Reply::text("hi")))
        );
        assert_eq!(
            parse(r#"{"type":"mpnews","media_id":"M1"}"#),
            Ok(Answer::MpNews {
                media_id: "M1".into()
            })
        );
        let menu = parse(
            r#"{"type":"msgmenu","head_content":"Rate us","list":[{"id":"101","content":"good"},{"id":"102","content":"bad"}],"tail_content":"thanks"}"#,
        )
        .unwrap();
        let Answer::MsgMenu(menu) = &menu else {
            panic!("{menu:?}")
        };
        assert_eq!(menu.list[1].id, "102");
    }

    #[test]
    fn bad_answers_are_refused_saying_why() {
        let refusal = |json: &str| parse(json).unwrap_err();
        assert!(refusal(r#"{"type":"text","content":" "}"#).contains("content must not be empty"));
        assert!(refusal(r#"{"type":"txt","content":"x"}"#).contains("txt"));
        assert!(refusal(r#"{"type":"mpnews","media_id":""}"#).contains("media_id"));
        assert!(refusal(r#"{"type":"mpnews","media_id":"m","x":1}"#).contains("x"));
        assert!(refusal(r#"{"type":"msgmenu","list":[]}"#).contains("at least one"));
        assert!(refusal(r#"{"content":"x"}"#).contains("type"));
        assert!(parse(r#"["text"]"#).is_err());
        assert!(parse(r#"["mpnews", "m"]"#).is_err());
    }

    #[test]
    fn answers_serialize_to_what_they_are_read_from() {
        for json in [
            r#"{"type":"text","content":"hi"}"#,
            r#"{"type":"mpnews","media_id":"M1"}"#,
            r#"{"type":"msgmenu","head_content":"h","list":[{"id":"1","content":"a"}],"tail_content":"t"}"#,
        ] {
            let answer = parse(json).unwrap();
            assert_eq!(serde_json::to_string(&answer).unwrap(), json);
        }
    }

    #[test]
    fn success_is_no_answer_and_late_only_types_have_no_passive_form() {
        assert_eq!(Answer::from_reply(Reply::Success), None);
        let mpnews = Answer::MpNews {
            media_id: "m".into(),
        };
        assert_eq!(mpnews.passive(), None);
        assert!(mpnews.can_send_late());
        let transfer = Answer::Reply(Reply::TransferCustomerService { kf_account: None });
        assert!(transfer.passive().is_some() && !transfer.can_send_late());
    }
}

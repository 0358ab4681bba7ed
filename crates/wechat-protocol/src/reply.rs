//! Passive replies: the answers WeChat accepts in the HTTP response to a push (text, image,
//! voice, video, music, news, transfer to customer service, or plain `success`), their XML
//! rendering, and the [`MessageHandler`] trait that decides which reply a message gets.
//!
//! [`Reply`] is also the one schema of a reply written down elsewhere: a reply rule in the TOML
//! rules file and a JSON answer (`{"type":"text","content":"…"}`) deserialize into it alike, and
//! every deserialized reply is checked in one place ([`Reply::checked`]).

use std::fmt::Write as _;
use std::future::Future;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::message::Message;
use crate::xml::cdata_element;

/// WeChat shows at most this many articles in a news reply.
pub const MAX_ARTICLES: usize = 8;

/// Decides the passive reply to a message. The reply rules (`account::rules::Rules`) are the
/// default implementation; owners who write Rust implement this to reply from code.
pub trait MessageHandler: Send + Sync {
    fn reply(&self, msg: &Message) -> impl Future<Output = Reply> + Send;
}

/// A passive reply. Written down as a table or JSON object tagged by `type` (`success`, `text`,
/// `image`, `voice`, `video`, `music`, `news`, `transfer_customer_service`) with the fields below.
///
/// Deserializing through serde (`toml::from_str`, `serde_json::from_str`, `<Reply as
/// Deserialize>`) checks the reply ([`Reply::checked`]); the inherent `Reply::deserialize` is
/// the unchecked derive that check wraps.
// `remote = "Self"` derives the plain serde code as inherent functions, so that the trait impls
// below can add the checks every deserialized reply must pass without a mirror type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields,
    remote = "Self"
)]
pub enum Reply {
    /// The literal body `success`: WeChat shows nothing and does not retry.
    Success,
    Text {
        content: String,
    },
    Image {
        media_id: String,
    },
    Voice {
        media_id: String,
    },
    Video {
        media_id: String,
        #[serde(default)]
        title: String,
        #[serde(default)]
        description: String,
    },
    Music(Music),
    News(News),
    /// Hands the conversation to the customer-service system, optionally to one agent.
    TransferCustomerService {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kf_account: Option<String>,
    },
}

impl<'de> Deserialize<'de> for Reply {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Reply::deserialize(deserializer)?
            .checked()
            .map_err(D::Error::custom)
    }
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Reply::serialize(self, serializer)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Music {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub music_url: String,
    #[serde(default)]
    pub hq_music_url: String,
    pub thumb_media_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Article {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub pic_url: String,
    pub url: String,
}

/// The articles of a news reply: between 1 and [`MAX_ARTICLES`], enforced on construction
/// and on deserialization (`articles = [...]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct News {
    articles: Vec<Article>,
}

impl<'de> Deserialize<'de> for News {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Articles {
            articles: Vec<Article>,
        }
        let Articles { articles } = Articles::deserialize(deserializer)?;
        News::new(articles).map_err(D::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("a news reply needs at least one article")]
    NoArticles,
    #[error("a news reply has at most {MAX_ARTICLES} articles, got {0}")]
    TooManyArticles(usize),
    #[error("{0} must not be empty")]
    Blank(&'static str),
}

impl News {
    pub fn new(articles: Vec<Article>) -> Result<Self, ReplyError> {
        match articles.len() {
            0 => Err(ReplyError::NoArticles),
            n if n > MAX_ARTICLES => Err(ReplyError::TooManyArticles(n)),
            _ => Ok(Self { articles }),
        }
    }

    pub fn articles(&self) -> &[Article] {
        &self.articles
    }
}

impl Reply {
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text {
            content: content.into(),
        }
    }

    /// The reply as written, checked: the texts WeChat needs are not blank (the article count
    /// is checked by [`News::new`]); a blank `kf_account` means any agent.
    pub fn checked(self) -> Result<Self, ReplyError> {
        fn non_blank(field: &'static str, value: &str) -> Result<(), ReplyError> {
            if value.trim().is_empty() {
                Err(ReplyError::Blank(field))
            } else {
                Ok(())
            }
        }
        match self {
            Self::Text { ref content } => non_blank("content", content)?,
            Self::Image { ref media_id } | Self::Voice { ref media_id } => {
                non_blank("media_id", media_id)?
            }
            Self::Video { ref media_id, .. } => non_blank("media_id", media_id)?,
            Self::Music(ref music) => non_blank("thumb_media_id", &music.thumb_media_id)?,
            Self::News(ref news) => {
                for article in news.articles() {
                    non_blank("article title", &article.title)?;
                    non_blank("article url", &article.url)?;
                }
            }
            Self::TransferCustomerService { kf_account } => {
                return Ok(Self::TransferCustomerService {
                    kf_account: kf_account.filter(|k| !k.trim().is_empty()),
                });
            }
            Self::Success => {}
        }
        Ok(self)
    }

    /// Every reply's `type`, as written in a rules file or a JSON answer, in declaration order.
    pub const TYPES: [&'static str; 8] = [
        "success",
        "text",
        "image",
        "voice",
        "video",
        "music",
        "news",
        "transfer_customer_service",
    ];

    /// The `MsgType` of the reply (`success` for [`Reply::Success`]).
    pub fn msg_type(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Text { .. } => "text",
            Self::Image { .. } => "image",
            Self::Voice { .. } => "voice",
            Self::Video { .. } => "video",
            Self::Music(_) => "music",
            Self::News(_) => "news",
            Self::TransferCustomerService { .. } => "transfer_customer_service",
        }
    }

    /// The reply XML answering `msg`: users swapped, `CreateTime` = `now_s`.
    /// `None` for [`Reply::Success`], which is answered with the plain body `success`.
    pub fn answer(&self, msg: &Message, now_s: i64) -> Option<String> {
        self.to_xml(&msg.from_user_name, &msg.to_user_name, now_s)
    }

    /// The reply XML with explicit addressing; `None` for [`Reply::Success`].
    pub fn to_xml(&self, to_user: &str, from_user: &str, create_time: i64) -> Option<String> {
        if matches!(self, Self::Success) {
            return None;
        }
        let mut xml = String::with_capacity(256);
        xml.push_str("<xml>");
        cdata_element(&mut xml, "ToUserName", to_user);
        cdata_element(&mut xml, "FromUserName", from_user);
        // Writing to a String cannot fail.
        let _ = write!(xml, "<CreateTime>{create_time}</CreateTime>");
        cdata_element(&mut xml, "MsgType", self.msg_type());
        match self {
            Self::Success => {}
            Self::Text { content } => cdata_element(&mut xml, "Content", content),
            Self::Image { media_id } => {
                xml.push_str("<Image>");
                cdata_element(&mut xml, "MediaId", media_id);
                xml.push_str("</Image>");
            }
            Self::Voice { media_id } => {
                xml.push_str("<Voice>");
                cdata_element(&mut xml, "MediaId", media_id);
                xml.push_str("</Voice>");
            }
            Self::Video {
                media_id,
                title,
                description,
            } => {
                xml.push_str("<Video>");
                cdata_element(&mut xml, "MediaId", media_id);
                cdata_element(&mut xml, "Title", title);
                cdata_element(&mut xml, "Description", description);
                xml.push_str("</Video>");
            }
            Self::Music(music) => {
                xml.push_str("<Music>");
                cdata_element(&mut xml, "Title", &music.title);
                cdata_element(&mut xml, "Description", &music.description);
                cdata_element(&mut xml, "MusicUrl", &music.music_url);
                cdata_element(&mut xml, "HQMusicUrl", &music.hq_music_url);
                cdata_element(&mut xml, "ThumbMediaId", &music.thumb_media_id);
                xml.push_str("</Music>");
            }
            Self::News(news) => {
                let _ = write!(
                    xml,
                    "<ArticleCount>{}</ArticleCount><Articles>",
                    news.articles.len()
                );
                for article in &news.articles {
                    xml.push_str("<item>");
                    cdata_element(&mut xml, "Title", &article.title);
                    cdata_element(&mut xml, "Description", &article.description);
                    cdata_element(&mut xml, "PicUrl", &article.pic_url);
                    cdata_element(&mut xml, "Url", &article.url);
                    xml.push_str("</item>");
                }
                xml.push_str("</Articles>");
            }
            Self::TransferCustomerService { kf_account } => {
                if let Some(account) = kf_account {
                    xml.push_str("<TransInfo>");
                    cdata_element(&mut xml, "KfAccount", account);
                    xml.push_str("</TransInfo>");
                }
            }
        }
        xml.push_str("</xml>");
        Some(xml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Fields;

    fn article(n: usize) -> Article {
        Article {
            title: format!("t{n}"),
            ..Article::default()
        }
    }

    #[test]
    fn a_text_reply_swaps_the_users_and_stamps_the_time() {
        let msg = Message::parse(
            b"<xml><ToUserName>gh_account</ToUserName><FromUserName>oUser</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content></xml>",
        )
        .unwrap();
        let xml = Reply::text("hello").answer(&msg, 1700000000).unwrap();
        assert_eq!(
            xml,
            "<xml><ToUserName><![CDATA[oUser]]></ToUserName><FromUserName><![CDATA[gh_account]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content></xml>"
        );
    }

    #[test]
    fn cdata_terminators_emoji_and_newlines_survive_a_round_trip() {
        let content = "a]]>b]]]>c ]]> 😀\n第二行\n]]>";
        let xml = Reply::text(content).to_xml("u", "a", 1).unwrap();
        assert!(!xml.contains("a]]>b"));
        let fields = Fields::parse(&xml).unwrap();
        assert_eq!(fields.get("Content"), Some(content));
    }

    #[test]
    fn the_list_of_types_is_every_types_name_and_each_one_reads() {
        let every = [
            Reply::Success,
            Reply::text("t"),
            Reply::Image {
                media_id: "m".into(),
            },
            Reply::Voice {
                media_id: "m".into(),
            },
            Reply::Video {
                media_id: "m".into(),
                title: String::new(),
                description: String::new(),
            },
            Reply::Music(Music {
                thumb_media_id: "m".into(),
                ..Music::default()
            }),
            Reply::News(
                News::new(vec![Article {
                    title: "t".into(),
                    description: String::new(),
                    pic_url: String::new(),
                    url: "https://x".into(),
                }])
                .unwrap(),
            ),
            Reply::TransferCustomerService { kf_account: None },
        ];
        let names: Vec<&str> = every.iter().map(Reply::msg_type).collect();
        assert_eq!(names, Reply::TYPES);
        for reply in every {
            let json = serde_json::to_string(&reply).unwrap();
            assert_eq!(
                serde_json::from_str::<Reply>(&json).unwrap(),
                reply,
                "{json}"
            );
        }
    }

    #[test]
    fn a_json_answer_reads_in_the_schema_of_a_rules_reply() {
        let parse = |json: &str| serde_json::from_str::<Reply>(json).ok();
        assert_eq!(
            parse(r#"{"type":"text","content":"hi"}"#),
            Some(Reply::text("hi"))
        );
        assert_eq!(parse(r#"{"type":"success"}"#), Some(Reply::Success));
        assert_eq!(
            parse(r#"{"type":"video","media_id":"m"}"#),
            Some(Reply::Video {
                media_id: "m".into(),
                title: String::new(),
                description: String::new()
            })
        );
        let news =
            parse(r#"{"type":"news","articles":[{"title":"t","url":"https://x"}]}"#).unwrap();
        let Reply::News(news) = news else {
            panic!("{news:?}");
        };
        assert_eq!(news.articles()[0].url, "https://x");
        assert_eq!(
            parse(r#"{"type":"transfer_customer_service","kf_account":" "}"#),
            Some(Reply::TransferCustomerService { kf_account: None })
        );
    }

    #[test]
    fn a_json_answer_that_is_no_valid_reply_is_refused_saying_why() {
        let refusal = |json: &str| serde_json::from_str::<Reply>(json).unwrap_err().to_string();
        assert!(refusal(r#"{"type":"text","content":"  "}"#).contains("content must not be empty"));
        assert!(refusal(r#"{"type":"txt","content":"x"}"#).contains("txt"));
        assert!(refusal(r#"{"type":"text","content":"x","extra":1}"#).contains("extra"));
        assert!(refusal(r#"{"content":"x"}"#).contains("type"));
        assert!(refusal(r#"{"type":"news","articles":[]}"#).contains("at least one"));
        assert!(refusal(r#"{"type":"music","thumb_media_id":"m","hq":"x"}"#).contains("hq"));
    }

    #[test]
    fn a_reply_serializes_to_the_json_it_is_read_from() {
        let reply = Reply::TransferCustomerService { kf_account: None };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"type":"transfer_customer_service"}"#
        );
        let news = Reply::News(News::new(vec![article(1)]).unwrap());
        let json = serde_json::to_value(&news).unwrap();
        assert_eq!(json["type"], "news");
        assert_eq!(json["articles"][0]["title"], "t1");
    }

    #[test]
    fn success_has_no_xml() {
        assert_eq!(Reply::Success.to_xml("u", "a", 1), None);
    }

    #[test]
    fn news_takes_one_to_eight_articles() {
        assert_eq!(News::new(vec![]), Err(ReplyError::NoArticles));
        assert!(News::new((0..8).map(article).collect()).is_ok());
        assert_eq!(
            News::new((0..9).map(article).collect()),
            Err(ReplyError::TooManyArticles(9))
        );
    }

    #[test]
    fn news_renders_count_and_items_in_order() {
        let news = News::new(vec![article(1), article(2)]).unwrap();
        let xml = Reply::News(news).to_xml("u", "a", 1).unwrap();
        let fields = Fields::parse(&xml).unwrap();
        assert_eq!(fields.get("ArticleCount"), Some("2"));
        assert_eq!(
            fields.get_all("Articles/item/Title").collect::<Vec<_>>(),
            ["t1", "t2"]
        );
    }

    #[test]
    fn transfer_names_the_agent_only_when_given() {
        let any = Reply::TransferCustomerService { kf_account: None }
            .to_xml("u", "a", 1)
            .unwrap();
        assert!(any.contains("<![CDATA[transfer_customer_service]]>"));
        assert!(!any.contains("TransInfo"));
        let one = Reply::TransferCustomerService {
            kf_account: Some("kf2001@gh".into()),
        }
        .to_xml("u", "a", 1)
        .unwrap();
        let fields = Fields::parse(&one).unwrap();
        assert_eq!(fields.get("TransInfo/KfAccount"), Some("kf2001@gh"));
    }

    #[test]
    fn media_replies_nest_their_fields_as_wechat_expects() {
        let cases = [
            (
                Reply::Image {
                    media_id: "m1".into(),
                },
                "Image/MediaId",
                "m1",
            ),
            (
                Reply::Voice {
                    media_id: "m2".into(),
                },
                "Voice/MediaId",
                "m2",
            ),
            (
                Reply::Video {
                    media_id: "m3".into(),
                    title: "T".into(),
                    description: "D".into(),
                },
                "Video/Title",
                "T",
            ),
            (
                Reply::Music(Music {
                    hq_music_url: "https://hq".into(),
                    ..Music::default()
                }),
                "Music/HQMusicUrl",
                "https://hq",
            ),
        ];
        for (reply, path, value) in cases {
            let fields = Fields::parse(&reply.to_xml("u", "a", 1).unwrap()).unwrap();
            assert_eq!(fields.get(path), Some(value), "{path}");
            assert_eq!(fields.get("MsgType"), Some(reply.msg_type()));
        }
    }
}

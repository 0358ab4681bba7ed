//! Passive replies: the answers WeChat accepts in the HTTP response to a push (text, image,
//! voice, video, music, news, transfer to customer service, or plain `success`), their XML
//! rendering, and the [`MessageHandler`] trait that decides which reply a message gets.

use std::fmt::Write as _;
use std::future::Future;

use crate::message::Message;

/// WeChat shows at most this many articles in a news reply.
pub const MAX_ARTICLES: usize = 8;

/// Decides the passive reply to a message. The reply rules ([`crate::rules::Rules`]) are the
/// default implementation; owners who write Rust implement this to reply from code.
pub trait MessageHandler: Send + Sync {
    fn reply(&self, msg: &Message) -> impl Future<Output = Reply> + Send;
}

/// A passive reply.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        title: String,
        description: String,
    },
    Music(Music),
    News(News),
    /// Hands the conversation to the customer-service system, optionally to one agent.
    TransferCustomerService {
        kf_account: Option<String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Music {
    pub title: String,
    pub description: String,
    pub music_url: String,
    pub hq_music_url: String,
    pub thumb_media_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Article {
    pub title: String,
    pub description: String,
    pub pic_url: String,
    pub url: String,
}

/// The articles of a news reply: between 1 and [`MAX_ARTICLES`], enforced on construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct News(Vec<Article>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("a news reply needs at least one article")]
    NoArticles,
    #[error("a news reply has at most {MAX_ARTICLES} articles, got {0}")]
    TooManyArticles(usize),
}

impl News {
    pub fn new(articles: Vec<Article>) -> Result<Self, ReplyError> {
        match articles.len() {
            0 => Err(ReplyError::NoArticles),
            n if n > MAX_ARTICLES => Err(ReplyError::TooManyArticles(n)),
            _ => Ok(Self(articles)),
        }
    }

    pub fn articles(&self) -> &[Article] {
        &self.0
    }
}

impl Reply {
    pub fn text(content: impl Into<String>) -> Self {
        Self::Text {
            content: content.into(),
        }
    }

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
                    news.0.len()
                );
                for article in &news.0 {
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

/// `<name><![CDATA[value]]></name>`, with any `]]>` in the value split across two sections.
pub(crate) fn cdata_element(xml: &mut String, name: &str, value: &str) {
    xml.push('<');
    xml.push_str(name);
    xml.push_str("><![CDATA[");
    let mut rest = value;
    while let Some(at) = rest.find("]]>") {
        xml.push_str(&rest[..at]);
        xml.push_str("]]]]><![CDATA[>");
        rest = &rest[at + 3..];
    }
    xml.push_str(rest);
    xml.push_str("]]></");
    xml.push_str(name);
    xml.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Fields;

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

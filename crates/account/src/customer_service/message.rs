//! The wire format of customer-service messages: [`CustomMessage`] (`touser`, the body tagged by
//! `msgtype`, the optional agent) and every body type WeChat documents, the endpoint they are
//! POSTed to ([`PATH`]), and [`CustomMessage::from_reply`], which turns a passive [`Reply`] into
//! its customer-service counterpart; and the typing status ([`TypingStatus`], [`TYPING_PATH`]).
//! No I/O.

use serde::{Deserialize, Serialize};
use wechat_api::{Ack, Endpoint, Method};
use wechat_protocol::reply::{self, Reply};

/// WeChat's path for sending a customer-service message.
pub const PATH: &str = "/cgi-bin/message/custom/send";

/// WeChat's path for showing (or hiding) "typing…" to a user (客服输入状态).
pub const TYPING_PATH: &str = "/cgi-bin/message/custom/typing";

/// Customer-service news carries one article since October 2018; more are refused with 45008.
pub const MAX_NEWS_ARTICLES: usize = 1;

/// One customer-service message: `{"touser": …, "msgtype": …, "<msgtype>": {…}}`, plus
/// `"customservice": {"kf_account": …}` when sent as a named agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomMessage {
    /// The recipient's openid.
    pub touser: String,
    #[serde(flatten)]
    pub body: CustomBody,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customservice: Option<KfAccount>,
}

/// The message itself, tagged by `msgtype`, its content under the key of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "msgtype", rename_all = "lowercase")]
pub enum CustomBody {
    Text {
        text: Text,
    },
    Image {
        image: Media,
    },
    Voice {
        voice: Media,
    },
    Video {
        video: Video,
    },
    Music {
        music: Music,
    },
    /// An article linking to any page (图文消息, 点击跳转到外链).
    News {
        news: News,
    },
    /// A news material by its `media_id` (图文消息, 点击跳转到图文消息页面).
    #[serde(rename = "mpnews")]
    MpNews {
        mpnews: Media,
    },
    /// A published article by its `article_id` (from the publishing API).
    #[serde(rename = "mpnewsarticle")]
    MpNewsArticle {
        mpnewsarticle: ArticleRef,
    },
    /// A menu the user answers by tapping one of its items (菜单消息).
    #[serde(rename = "msgmenu")]
    MsgMenu {
        msgmenu: MsgMenu,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    pub media_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Video {
    pub media_id: String,
    /// Optional: a passive video reply has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumb_media_id: Option<String>,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Music {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub musicurl: String,
    #[serde(default)]
    pub hqmusicurl: String,
    pub thumb_media_id: String,
}

/// `{"articles": [one article]}`: the array has room for exactly [`MAX_NEWS_ARTICLES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct News {
    pub articles: [Article; MAX_NEWS_ARTICLES],
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub url: String,
    #[serde(default)]
    pub picurl: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleRef {
    pub article_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsgMenu {
    #[serde(default)]
    pub head_content: String,
    pub list: Vec<MsgMenuItem>,
    #[serde(default)]
    pub tail_content: String,
}

/// A menu item: when tapped, the user sends a text message `content` carrying `bizmsgmenuid = id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsgMenuItem {
    pub id: String,
    pub content: String,
}

/// Sends the message as this agent (`kf_account`, e.g. `kf2001@gh_account`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KfAccount {
    pub kf_account: String,
}

/// Why a passive reply has no customer-service counterpart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FromReplyError {
    #[error("a `success` reply means no answer: there is nothing to send")]
    NothingToSend,
    #[error("a transfer to customer-service agents is a passive reply only, not a message")]
    TransferToAgents,
}

impl CustomMessage {
    pub fn new(touser: impl Into<String>, body: CustomBody) -> Self {
        Self {
            touser: touser.into(),
            body,
            customservice: None,
        }
    }

    pub fn text(touser: impl Into<String>, content: impl Into<String>) -> Self {
        let text = Text {
            content: content.into(),
        };
        Self::new(touser, CustomBody::Text { text })
    }

    pub fn image(touser: impl Into<String>, media_id: impl Into<String>) -> Self {
        let image = media(media_id);
        Self::new(touser, CustomBody::Image { image })
    }

    pub fn voice(touser: impl Into<String>, media_id: impl Into<String>) -> Self {
        let voice = media(media_id);
        Self::new(touser, CustomBody::Voice { voice })
    }

    pub fn video(touser: impl Into<String>, video: Video) -> Self {
        Self::new(touser, CustomBody::Video { video })
    }

    pub fn music(touser: impl Into<String>, music: Music) -> Self {
        Self::new(touser, CustomBody::Music { music })
    }

    pub fn news(touser: impl Into<String>, article: Article) -> Self {
        let news = News {
            articles: [article],
        };
        Self::new(touser, CustomBody::News { news })
    }

    pub fn mpnews(touser: impl Into<String>, media_id: impl Into<String>) -> Self {
        let mpnews = media(media_id);
        Self::new(touser, CustomBody::MpNews { mpnews })
    }

    pub fn mpnews_article(touser: impl Into<String>, article_id: impl Into<String>) -> Self {
        let mpnewsarticle = ArticleRef {
            article_id: article_id.into(),
        };
        Self::new(touser, CustomBody::MpNewsArticle { mpnewsarticle })
    }

    pub fn menu(touser: impl Into<String>, menu: MsgMenu) -> Self {
        Self::new(touser, CustomBody::MsgMenu { msgmenu: menu })
    }

    /// The same message, sent as the agent `kf_account`.
    pub fn as_agent(mut self, kf_account: impl Into<String>) -> Self {
        self.customservice = Some(KfAccount {
            kf_account: kf_account.into(),
        });
        self
    }

    /// The customer-service counterpart of the passive reply `reply`, addressed to `touser`.
    ///
    /// A news reply with more articles than customer-service news allows sends its first
    /// article and logs a warning: the lead article is the one a news reply is built around, and
    /// refusing would leave the user with no answer at all, since WeChat refuses the whole
    /// message (45008).
    pub fn from_reply(touser: impl Into<String>, reply: &Reply) -> Result<Self, FromReplyError> {
        let touser = touser.into();
        Ok(match reply {
            Reply::Success => return Err(FromReplyError::NothingToSend),
            Reply::TransferCustomerService { .. } => {
                return Err(FromReplyError::TransferToAgents);
            }
            Reply::Text { content } => Self::text(touser, content.clone()),
            Reply::Image { media_id } => Self::image(touser, media_id.clone()),
            Reply::Voice { media_id } => Self::voice(touser, media_id.clone()),
            Reply::Video {
                media_id,
                title,
                description,
            } => Self::video(
                touser,
                Video {
                    media_id: media_id.clone(),
                    thumb_media_id: None,
                    title: title.clone(),
                    description: description.clone(),
                },
            ),
            Reply::Music(music) => Self::music(
                touser,
                Music {
                    title: music.title.clone(),
                    description: music.description.clone(),
                    musicurl: music.music_url.clone(),
                    hqmusicurl: music.hq_music_url.clone(),
                    thumb_media_id: music.thumb_media_id.clone(),
                },
            ),
            Reply::News(news) => Self::news(touser, first_article(news)),
        })
    }

    /// The `msgtype` on the wire.
    pub fn msgtype(&self) -> &'static str {
        match self.body {
            CustomBody::Text { .. } => "text",
            CustomBody::Image { .. } => "image",
            CustomBody::Voice { .. } => "voice",
            CustomBody::Video { .. } => "video",
            CustomBody::Music { .. } => "music",
            CustomBody::News { .. } => "news",
            CustomBody::MpNews { .. } => "mpnews",
            CustomBody::MpNewsArticle { .. } => "mpnewsarticle",
            CustomBody::MsgMenu { .. } => "msgmenu",
        }
    }
}

fn media(media_id: impl Into<String>) -> Media {
    Media {
        media_id: media_id.into(),
    }
}

/// The lead article of a news reply (a [`reply::News`] always has at least one).
fn first_article(news: &reply::News) -> Article {
    let articles = news.articles();
    if articles.len() > MAX_NEWS_ARTICLES {
        tracing::warn!(
            articles = articles.len(),
            sent = MAX_NEWS_ARTICLES,
            "customer-service news carries one article: sending the first, dropping the rest"
        );
    }
    articles
        .first()
        .map(|a| Article {
            title: a.title.clone(),
            description: a.description.clone(),
            url: a.url.clone(),
            picurl: a.pic_url.clone(),
        })
        .unwrap_or_default()
}

impl Endpoint for CustomMessage {
    const METHOD: Method = Method::Post;
    const PATH: &'static str = PATH;
    type Answer = Ack;
}

/// `{"touser": …, "command": "Typing"}`: the user sees "typing…" for up to 15 s, until a
/// message arrives, or until `CancelTyping`. WeChat accepts it within 30 s of a message from the
/// user (45080 otherwise), and not again while it shows (45081).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingStatus {
    pub touser: String,
    pub command: TypingCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TypingCommand {
    Typing,
    CancelTyping,
}

impl TypingStatus {
    /// Show "typing…" to `touser`.
    pub fn typing(touser: impl Into<String>) -> Self {
        Self {
            touser: touser.into(),
            command: TypingCommand::Typing,
        }
    }
}

impl Endpoint for TypingStatus {
    const METHOD: Method = Method::Post;
    const PATH: &'static str = TYPING_PATH;
    type Answer = Ack;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn to_json(message: &CustomMessage) -> serde_json::Value {
        serde_json::to_value(message).unwrap()
    }

    #[test]
    fn text_is_wrapped_under_its_msgtype() {
        assert_eq!(
            to_json(&CustomMessage::text("OPENID", "Hello World")),
            json!({"touser": "OPENID", "msgtype": "text", "text": {"content": "Hello World"}})
        );
    }

    #[test]
    fn typing_is_the_openid_and_the_command() {
        assert_eq!(
            serde_json::to_value(TypingStatus::typing("OPENID")).unwrap(),
            json!({"touser": "OPENID", "command": "Typing"})
        );
    }

    #[test]
    fn an_agent_is_named_under_customservice_only_when_given() {
        let message = CustomMessage::text("OPENID", "hi").as_agent("test1@kftest");
        assert_eq!(
            to_json(&message),
            json!({
                "touser": "OPENID",
                "msgtype": "text",
                "text": {"content": "hi"},
                "customservice": {"kf_account": "test1@kftest"}
            })
        );
    }

    #[test]
    fn success_and_transfer_have_no_customer_service_counterpart() {
        assert_eq!(
            CustomMessage::from_reply("o", &Reply::Success),
            Err(FromReplyError::NothingToSend)
        );
        assert_eq!(
            CustomMessage::from_reply(
                "o",
                &Reply::TransferCustomerService {
                    kf_account: Some("kf@gh".into())
                }
            ),
            Err(FromReplyError::TransferToAgents)
        );
    }

    #[test]
    fn a_news_reply_with_several_articles_sends_its_first() {
        let articles = (1..=3)
            .map(|n| reply::Article {
                title: format!("t{n}"),
                url: format!("https://x/{n}"),
                pic_url: format!("https://x/{n}.png"),
                description: String::new(),
            })
            .collect();
        let reply = Reply::News(reply::News::new(articles).unwrap());
        let message = CustomMessage::from_reply("o", &reply).unwrap();
        assert_eq!(
            to_json(&message)["news"],
            json!({"articles": [{"title": "t1", "description": "", "url": "https://x/1", "picurl": "https://x/1.png"}]})
        );
    }
}

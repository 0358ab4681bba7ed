//! Customer-service messages (客服消息): answers sent to a user outside the 5-second passive
//! reply, with `POST /cgi-bin/message/custom/send?access_token=…`.
//!
//! - [`CustomMessage`]: the wire format, one variant per message type WeChat documents (text,
//!   image, voice, video, music, news, mpnews, mpnewsarticle, msgmenu), optionally sent as one
//!   customer-service agent (`customservice.kf_account`); [`CustomMessage::from_reply`] turns a
//!   passive [`Reply`] into its customer-service counterpart.
//! - [`CustomerService`]: sends one message with the account's access_token through the
//!   [`TokenClient`] (a rejected token is reported stale once and the message resent once),
//!   retries WeChat's busy answers a bounded number of times, and ends every send in one
//!   [`SendOutcome`], logged once.
//!
//! WeChat accepts these messages only within 48 hours of the user's last interaction (45015
//! afterwards) and only a few per interaction (45047).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wechat_api::errcode::{self, ErrClass};
use wechat_api::{Ack, ApiError, Endpoint, Method, WeChatHttp};
use wechat_protocol::reply::{self, Reply};
use wechat_protocol::secret::{Secret, fingerprint};

use crate::token::{CallError, RetryPolicy, TokenClient, TokenSource};

/// WeChat's path for sending a customer-service message.
pub const PATH: &str = "/cgi-bin/message/custom/send";

/// Customer-service news carries one article since October 2018; more are refused with 45008.
pub const MAX_NEWS_ARTICLES: usize = 1;

/// The retries of WeChat's busy answers (-1, 45011) unless configured otherwise: 3 calls in
/// all, 300 ms then 600 ms apart.
pub const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    attempts: 3,
    backoff: Duration::from_millis(300),
};

/// The outcome codes of WeChat that have an outcome of their own.
const WINDOW_CLOSED: i64 = 45015;
const TOO_MANY_MESSAGES: i64 = 45047;
const INVALID_OPENID: i64 = 40003;

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

/// How a send ended. Every path of [`CustomerService::send`] ends in one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// WeChat accepted the message.
    Sent,
    /// 45015: the user has not interacted with the account in the last 48 hours (or unfollowed):
    /// WeChat no longer accepts messages to them until they do.
    WindowClosed,
    /// 45047: the messages allowed since the user's last interaction are used up.
    TooManyMessages,
    /// 40003: the openid is not a follower of this account.
    InvalidOpenid,
    /// WeChat stayed busy (-1 or 45011) through every allowed attempt.
    WeChatBusy { errcode: i64, attempts: u32 },
    /// No access_token could be had; nothing was sent.
    TokenUnavailable { kind: &'static str, reason: String },
    /// WeChat refused the message for another reason (a bad media_id, a token rejected again
    /// after the refresh, ...).
    Rejected { errcode: i64, errmsg: String },
    /// WeChat timed out, answered an HTTP error or something that is not JSON. Not retried: the
    /// message may have been delivered.
    WeChatUnavailable(ApiError),
}

impl SendOutcome {
    /// A stable snake_case name for log fields and stored records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::WindowClosed => "window_closed",
            Self::TooManyMessages => "too_many_messages",
            Self::InvalidOpenid => "invalid_openid",
            Self::WeChatBusy { .. } => "wechat_busy",
            Self::TokenUnavailable { .. } => "token_unavailable",
            Self::Rejected { .. } => "rejected",
            Self::WeChatUnavailable(_) => "wechat_unavailable",
        }
    }

    /// Whether the message did not reach the user.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::Sent)
    }

    /// The outcome of a call's final result.
    fn of(result: Result<Ack, CallError>, busy_attempts: u32) -> Self {
        let error = match result {
            Ok(Ack {}) => return Self::Sent,
            Err(CallError::Token(e)) => {
                return Self::TokenUnavailable {
                    kind: e.kind(),
                    reason: e.to_string(),
                };
            }
            Err(CallError::Api(e)) => e,
        };
        match error {
            ApiError::WeChat { errcode, .. } if errcode::class(errcode) == ErrClass::Busy => {
                Self::WeChatBusy {
                    errcode,
                    attempts: busy_attempts,
                }
            }
            ApiError::WeChat {
                errcode: WINDOW_CLOSED,
                ..
            } => Self::WindowClosed,
            ApiError::WeChat {
                errcode: TOO_MANY_MESSAGES,
                ..
            } => Self::TooManyMessages,
            ApiError::WeChat {
                errcode: INVALID_OPENID,
                ..
            } => Self::InvalidOpenid,
            ApiError::WeChat { errcode, errmsg } => Self::Rejected { errcode, errmsg },
            other => Self::WeChatUnavailable(other),
        }
    }
}

impl fmt::Display for SendOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sent => f.write_str("sent"),
            Self::WindowClosed => f.write_str(
                "not sent: the user has not interacted with the account in the last 48 hours (45015)",
            ),
            Self::TooManyMessages => f.write_str(
                "not sent: too many messages to this user since their last interaction (45047)",
            ),
            Self::InvalidOpenid => {
                f.write_str("not sent: the openid is not a follower of this account (40003)")
            }
            Self::WeChatBusy { errcode, attempts } => write!(
                f,
                "not sent: WeChat stayed busy (errcode {errcode}) through {attempts} attempts"
            ),
            Self::TokenUnavailable { reason, .. } => write!(f, "not sent: {reason}"),
            Self::Rejected { errcode, errmsg } => {
                let meaning = errcode::lookup(*errcode).map_or(errmsg.as_str(), |r| r.meaning);
                write!(f, "not sent: WeChat refused it with {errcode} ({meaning})")
            }
            Self::WeChatUnavailable(e) => write!(f, "not known to be sent: {e}"),
        }
    }
}

/// Sends customer-service messages for one account. Build it once per container, next to the
/// token client it shares.
pub struct CustomerService<S> {
    http: WeChatHttp,
    tokens: Arc<TokenClient<S>>,
    retry: RetryPolicy,
}

impl<S> fmt::Debug for CustomerService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerService")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl<S: TokenSource> CustomerService<S> {
    /// With [`DEFAULT_RETRY`] for WeChat's busy answers.
    pub fn new(http: WeChatHttp, tokens: Arc<TokenClient<S>>) -> Self {
        Self {
            http,
            tokens,
            retry: DEFAULT_RETRY,
        }
    }

    /// The same service with `retry` for WeChat's busy answers (at least one call is made).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = RetryPolicy {
            attempts: retry.attempts.max(1),
            ..retry
        };
        self
    }

    /// Send `message`, logging its outcome once (the openid as a fingerprint, never the
    /// content or the token).
    ///
    /// A token WeChat rejects (40001/40014/42001) is reported stale once and the message resent
    /// once with the replacement ([`TokenClient::call_with_token`]); WeChat's busy answers are
    /// retried within the retry policy, counted across both tokens. Nothing else is retried.
    pub async fn send(&self, message: &CustomMessage) -> SendOutcome {
        let busy_attempts = AtomicU32::new(0);
        let result = self
            .tokens
            .call_with_token(|token| self.send_retrying_busy(message, token, &busy_attempts))
            .await;
        let outcome = SendOutcome::of(result, busy_attempts.load(Ordering::SeqCst));
        log(message, &outcome);
        outcome
    }

    /// One token's calls: again after a pause while WeChat answers busy and attempts are left.
    async fn send_retrying_busy(
        &self,
        message: &CustomMessage,
        token: Secret<String>,
        attempts: &AtomicU32,
    ) -> Result<Ack, ApiError> {
        loop {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            let result = self.http.call_with_token(message, &token).await;
            let busy = result
                .as_ref()
                .err()
                .and_then(ApiError::class)
                .is_some_and(|class| class == ErrClass::Busy);
            if !busy || attempt >= self.retry.attempts {
                return result;
            }
            // Doubling from the policy's backoff: 1x before the 2nd call, 2x before the 3rd, ...
            let pause = self.retry.backoff * 2u32.saturating_pow(attempt - 1);
            tracing::warn!(
                openid = %fingerprint(&message.touser),
                attempt,
                backoff_ms = pause.as_millis() as u64,
                "WeChat is busy; sending the customer-service message again"
            );
            tokio::time::sleep(pause).await;
        }
    }
}

/// One line per outcome: info when sent, warn when WeChat refused for the user's sake, error
/// when the account or WeChat is at fault.
fn log(message: &CustomMessage, outcome: &SendOutcome) {
    let openid = fingerprint(&message.touser);
    let msgtype = message.msgtype();
    let code = outcome.code();
    match outcome {
        SendOutcome::Sent => {
            tracing::info!(outcome = code, %openid, msgtype, "customer-service message sent");
        }
        SendOutcome::WindowClosed | SendOutcome::TooManyMessages | SendOutcome::InvalidOpenid => {
            tracing::warn!(outcome = code, %openid, msgtype, "{outcome}");
        }
        SendOutcome::Rejected { errcode, .. } => {
            tracing::error!(outcome = code, %openid, msgtype, errcode, "{outcome}");
        }
        SendOutcome::WeChatBusy { .. }
        | SendOutcome::TokenUnavailable { .. }
        | SendOutcome::WeChatUnavailable(_) => {
            tracing::error!(outcome = code, %openid, msgtype, "{outcome}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{AccessToken, TokenError};
    use serde_json::json;
    use std::sync::Mutex;
    use wechat_api::double::{InProcessWeChat, ok};
    use wechat_protocol::reply::{self, Reply};

    /// Hands out token `A`; a stale report of it yields `B`.
    struct TwoTokens;

    fn token(value: &str) -> AccessToken {
        AccessToken {
            value: Secret::new(value.into()),
            expires_at_ms: i64::MAX,
        }
    }

    impl TokenSource for TwoTokens {
        async fn current(&self) -> Result<AccessToken, TokenError> {
            Ok(token("A"))
        }

        async fn report_stale(&self, _stale: &str) -> Result<AccessToken, TokenError> {
            Ok(token("B"))
        }
    }

    /// A service over a double answering `answers` in order.
    fn service(answers: &[&'static str]) -> (Arc<InProcessWeChat>, CustomerService<TwoTokens>) {
        let answers = Mutex::new(answers.iter().rev().copied().collect::<Vec<_>>());
        let double = InProcessWeChat::new(move |_| {
            ok(answers
                .lock()
                .unwrap()
                .pop()
                .unwrap_or(r#"{"errcode":0,"errmsg":"ok"}"#))
        });
        let tokens = Arc::new(TokenClient::new(TwoTokens));
        let cs = CustomerService::new(double.client(), tokens).with_retry(RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(1),
        });
        (double, cs)
    }

    fn access_tokens(double: &InProcessWeChat) -> Vec<String> {
        double
            .requests()
            .iter()
            .map(|r| r.query.trim_start_matches("access_token=").to_string())
            .collect()
    }

    #[tokio::test]
    async fn the_message_is_posted_as_json_with_the_token_in_the_query() {
        let (double, cs) = service(&[]);
        let message = CustomMessage::text("oUser", "hi");
        assert_eq!(cs.send(&message).await, SendOutcome::Sent);
        let requests = double.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, Method::Post);
        assert_eq!(requests[0].path, PATH);
        assert_eq!(requests[0].query, "access_token=A");
        let body: serde_json::Value =
            serde_json::from_slice(requests[0].json_body.as_deref().unwrap()).unwrap();
        assert_eq!(body, to_json(&message));
    }

    #[tokio::test]
    async fn busy_attempts_are_counted_across_the_token_refresh() {
        let busy = r#"{"errcode":-1,"errmsg":"system error"}"#;
        let rejected = r#"{"errcode":40001,"errmsg":"invalid credential"}"#;
        let (double, cs) = service(&[busy, rejected, busy, busy]);
        let outcome = cs.send(&CustomMessage::text("oUser", "hi")).await;
        assert_eq!(
            outcome,
            SendOutcome::WeChatBusy {
                errcode: -1,
                attempts: 3
            }
        );
        assert_eq!(access_tokens(&double), ["A", "A", "B"]);
    }

    #[tokio::test]
    async fn a_retry_policy_of_zero_attempts_still_sends_once() {
        let (double, cs) = service(&[r#"{"errcode":-1,"errmsg":"system error"}"#]);
        let cs = cs.with_retry(RetryPolicy {
            attempts: 0,
            backoff: Duration::ZERO,
        });
        let outcome = cs.send(&CustomMessage::text("oUser", "hi")).await;
        assert_eq!(
            outcome,
            SendOutcome::WeChatBusy {
                errcode: -1,
                attempts: 1
            }
        );
        assert_eq!(double.requests().len(), 1);
    }

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

    #[test]
    fn outcome_codes_are_distinct_and_only_sent_is_no_failure() {
        let outcomes = [
            SendOutcome::Sent,
            SendOutcome::WindowClosed,
            SendOutcome::TooManyMessages,
            SendOutcome::InvalidOpenid,
            SendOutcome::WeChatBusy {
                errcode: -1,
                attempts: 3,
            },
            SendOutcome::TokenUnavailable {
                kind: "NoUsableToken",
                reason: "r".into(),
            },
            SendOutcome::Rejected {
                errcode: 40007,
                errmsg: "invalid media_id".into(),
            },
            SendOutcome::WeChatUnavailable(ApiError::Timeout),
        ];
        let mut codes: Vec<_> = outcomes.iter().map(SendOutcome::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), outcomes.len());
        assert_eq!(
            outcomes.iter().filter(|o| !o.is_failure()).count(),
            1,
            "only sent is a success"
        );
        assert!(!SendOutcome::Sent.is_failure());
    }

    #[test]
    fn wechat_answers_sort_into_outcomes() {
        let api = |errcode: i64| {
            Err(CallError::Api(ApiError::WeChat {
                errcode,
                errmsg: "m".into(),
            }))
        };
        assert_eq!(SendOutcome::of(Ok(Ack {}), 1), SendOutcome::Sent);
        assert_eq!(SendOutcome::of(api(45015), 1), SendOutcome::WindowClosed);
        assert_eq!(SendOutcome::of(api(45047), 1), SendOutcome::TooManyMessages);
        assert_eq!(SendOutcome::of(api(40003), 1), SendOutcome::InvalidOpenid);
        assert_eq!(
            SendOutcome::of(api(-1), 3),
            SendOutcome::WeChatBusy {
                errcode: -1,
                attempts: 3
            }
        );
        assert_eq!(
            SendOutcome::of(api(40001), 1),
            SendOutcome::Rejected {
                errcode: 40001,
                errmsg: "m".into()
            }
        );
        assert_eq!(
            SendOutcome::of(Err(CallError::Api(ApiError::HttpStatus(502))), 1),
            SendOutcome::WeChatUnavailable(ApiError::HttpStatus(502))
        );
    }
}

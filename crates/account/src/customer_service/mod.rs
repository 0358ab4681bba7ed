//! Customer-service messages (客服消息): answers sent to a user outside the 5-second passive
//! reply, with `POST /cgi-bin/message/custom/send?access_token=…`.
//!
//! - `message`: the wire format, [`CustomMessage`], one variant per message type WeChat documents
//!   (text, image, voice, video, music, news, mpnews, mpnewsarticle, msgmenu), optionally sent as
//!   one customer-service agent (`customservice.kf_account`); [`CustomMessage::from_reply`] turns
//!   a passive [`wechat_protocol::reply::Reply`] into its customer-service counterpart.
//! - `outcome`: [`SendOutcome`], how a send ended, and the one log line each send gets.
//! - `sender`: [`CustomerService`] sends one message with the account's access_token through the
//!   [`crate::token::TokenClient`] (a rejected token is reported stale once and the message
//!   resent once), retries WeChat's busy answers a bounded number of times, and ends every send
//!   in one [`SendOutcome`], logged once.
//!
//! Each imports only the ones listed before it.
//!
//! WeChat accepts these messages only within 48 hours of the user's last interaction (45015
//! afterwards) and only a few per interaction (45047).

mod message;
mod outcome;
mod sender;

pub use message::{
    Article, ArticleRef, CustomBody, CustomMessage, FromReplyError, KfAccount, MAX_NEWS_ARTICLES,
    Media, MsgMenu, MsgMenuItem, Music, News, PATH, Text, Video,
};
pub use outcome::SendOutcome;
pub use sender::{CustomerService, DEFAULT_RETRY};

//! Customer-service messages (客服消息): answers sent to a user outside the 5-second passive
//! reply, with `POST /cgi-bin/message/custom/send?access_token=…`.
//!
//! - `message`: the wire format, [`CustomMessage`], one variant per message type WeChat documents
//!   (text, image, voice, video, music, news, mpnews, mpnewsarticle, msgmenu), optionally sent as
//!   one customer-service agent (`customservice.kf_account`); [`CustomMessage::from_reply`] turns
//!   a passive [`wechat_protocol::reply::Reply`] into its customer-service counterpart; and the
//!   typing status, [`TypingStatus`] (`/cgi-bin/message/custom/typing`).
//! - `split`: long texts as several messages within WeChat's [`MAX_TEXT_BYTES`] ([`split_text`],
//!   [`fit_text`]), cut at character boundaries.
//! - `window`: how long and how many messages one interaction allows ([`Window`]).
//! - `outcome`: [`SendOutcome`], how a send ended, and the one log line each send gets.
//! - `sender`: [`CustomerService`] sends one message with the account's access_token through the
//!   [`crate::token::TokenClient`] (a rejected token is reported stale once and the message
//!   resent once), retries WeChat's busy answers a bounded number of times, and ends every send
//!   in one [`SendOutcome`], logged once; [`CustomerService::typing`] shows "typing…".
//!
//! Each imports only the ones listed before it.
//!
//! WeChat accepts these messages only within 48 hours of the user's last message (1 minute of an
//! event) and only a few per interaction (5, or 3 after an event; 45047 beyond): see [`Window`].

mod message;
mod outcome;
mod sender;
mod split;
mod window;

pub use message::{
    Article, ArticleRef, CustomBody, CustomMessage, FromReplyError, KfAccount, MAX_NEWS_ARTICLES,
    Media, MsgMenu, MsgMenuItem, Music, News, PATH, TYPING_PATH, Text, TypingCommand, TypingStatus,
    Video,
};
pub use outcome::SendOutcome;
pub use sender::{CustomerService, DEFAULT_RETRY};
pub use split::{Fitted, MAX_TEXT_BYTES, TRUNCATION_MARKER, fit_text, split_text};
pub use window::{
    EVENT_ALLOWANCE, EVENT_WINDOW_S, Interaction, MESSAGE_ALLOWANCE, MESSAGE_WINDOW_S,
    TYPING_WINDOW_S, Window,
};

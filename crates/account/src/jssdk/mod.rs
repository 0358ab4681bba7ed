//! JS-SDK (`wx.config`) for the account's web pages: the `jsapi_ticket` as its consumers see it
//! (`crate::token::TicketSource`; kept fresh centrally by the refresh function, like the
//! access_token), WeChat's signature over it (`wechat_protocol::signature::jssdk_signature`), which page URLs get one ([`page_url`]), the
//! `GET /jssdk/config` route with its CORS ([`handler`]), its configuration ([`config`]) and the
//! demo page that exercises sign-in and `wx.config` together ([`demo`]).
//!
//! The routes are served by the `oauth` function rather than a function of their own: it already
//! serves the account's web pages (sign-in, sessions) under the same domain, the demo page needs
//! both, and a page that signs in and calls `wx.config` then talks to one origin. The function
//! gets tickets as every non-refresh function gets tokens: from the table, asking the refresh
//! function (`TOKEN_FUNCTION_NAME`) when none is stored.

pub mod config;
pub mod demo;
pub mod handler;
pub mod page_url;

pub use config::JssdkConfig;
pub use handler::{Jssdk, JssdkError, WxConfig, sign_page};

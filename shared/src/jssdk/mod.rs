//! JS-SDK (`wx.config`) for the account's web pages: the `jsapi_ticket` as its consumers see it
//! ([`TicketSource`]; kept fresh centrally by the refresh function, like the access_token),
//! WeChat's signature over it ([`signature`]), which page URLs get one ([`page_url`]), the
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

use std::future::Future;
use std::sync::Arc;

use sha1::{Digest, Sha1};

use crate::config::Secret;
use crate::token::TokenError;

/// A jsapi_ticket and when it expires. `Debug` never shows the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsapiTicket {
    pub value: Secret<String>,
    pub expires_at_ms: i64,
}

/// Where jsapi_tickets come from: the token service in process (refresh function, local server,
/// tests), or the table plus the refresh function by Lambda Invoke (every other function).
pub trait TicketSource: Send + Sync {
    /// A usable jsapi_ticket (more than [`crate::token::MIN_REMAINING_MS`] left), fetched once
    /// centrally if none is stored.
    fn jsapi_ticket(&self) -> impl Future<Output = Result<JsapiTicket, TokenError>> + Send;
}

impl<T: TicketSource> TicketSource for Arc<T> {
    fn jsapi_ticket(&self) -> impl Future<Output = Result<JsapiTicket, TokenError>> + Send {
        (**self).jsapi_ticket()
    }
}

/// WeChat's JS-SDK signature: the hex SHA-1 of
/// `jsapi_ticket=…&noncestr=…&timestamp=…&url=…`, where `url` is the page URL without its
/// `#fragment` (callers strip it; this function signs exactly what it is given).
pub fn signature(ticket: &str, nonce_str: &str, timestamp: i64, url: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(
        format!("jsapi_ticket={ticket}&noncestr={nonce_str}&timestamp={timestamp}&url={url}")
            .as_bytes(),
    );
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_wechats_published_example() {
        assert_eq!(
            signature(
                "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
                "Wm3WZYTPz0wzccnW",
                1414587457,
                "http://mp.weixin.qq.com?params=value",
            ),
            "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
        );
    }
}

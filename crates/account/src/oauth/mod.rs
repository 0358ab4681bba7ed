//! Web authorization (网页授权): the `/oauth/*` routes that tell the account's web pages who the
//! WeChat user is.
//!
//! This module owns the whole sign-in flow: the authorize redirect with a browser-bound,
//! single-use `state` ([`binding`]), the callback that exchanges the `code` for sns tokens
//! ([`callback`], over the sns API in [`sns`]), the user directory that stores users and keeps
//! their profiles fresh ([`users`]), the `return_to` allow-list ([`return_to`]), the URLs the
//! flow sends browsers to ([`links`]), the friendly pages shown when something goes wrong
//! ([`pages`]) and the HTTP handler that routes to them ([`handler`], refusing with
//! [`OAuthError`] from [`error`]), and the domain verification file WeChat fetches before it
//! accepts the domain ([`verify_file`]). Sessions are signed cookies ([`session`]), set and read with
//! the binding cookie in [`cookies`]. The stored entities are defined here — the sign-in state
//! ([`state`]) and the user ([`user`]) — and stored through the ports in `crate::oauth::store`.
//!
//! Within this module, files import downwards only: `handler` → `callback` → `cookies`,
//! `links`, `pages` → the entities, ports and clients below them.

pub mod binding;
pub mod callback;
pub mod config;
pub mod cookies;
pub mod error;
pub mod handler;
pub mod links;
pub mod pages;
pub mod return_to;
pub mod session;
pub mod sns;
pub mod state;
pub mod store;
pub mod user;
pub mod users;
pub mod verify_file;

pub use callback::CallbackOutcome;
pub use config::OAuthConfig;
pub use error::OAuthError;
pub use handler::OAuth;
pub use return_to::{ReturnTo, ReturnToError};
pub use sns::{Authorization, SnsClient};
pub use state::{AuthState, StateStatus};
pub use user::{Profile, SnsGrant, User};
pub use users::{ProfileStatus, SignInError, UserDirectory};
pub use verify_file::VerifyFile;

/// The two scopes of WeChat web authorization, stored and sent as their WeChat names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Scope {
    /// `snsapi_base`: silent, yields only the `openid` (and `unionid` when bound).
    Base,
    /// `snsapi_userinfo`: asks for consent, and the sns token may read the profile.
    UserInfo,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::UserInfo => "snsapi_userinfo",
        }
    }

    /// Exactly `snsapi_base` or `snsapi_userinfo`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "snsapi_base" => Some(Scope::Base),
            "snsapi_userinfo" => Some(Scope::UserInfo),
            _ => None,
        }
    }
}

impl From<Scope> for &'static str {
    fn from(scope: Scope) -> Self {
        scope.as_str()
    }
}

impl TryFrom<String> for Scope {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        Scope::parse(&raw).ok_or_else(|| format!("unknown scope {raw:?}"))
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parses_only_the_two_wechat_names() {
        assert_eq!(Scope::parse("snsapi_base"), Some(Scope::Base));
        assert_eq!(Scope::parse("snsapi_userinfo"), Some(Scope::UserInfo));
        assert_eq!(Scope::parse("snsapi_login"), None);
        assert_eq!(Scope::parse("SNSAPI_BASE"), None);
        assert_eq!(Scope::UserInfo.to_string(), "snsapi_userinfo");
    }
}

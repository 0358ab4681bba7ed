//! The URLs a sign-in sends browsers to: WeChat's consent page, this server's `/oauth/authorize`
//! (restarts and "try again" links) and the landing after a sign-in.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::oauth::Scope;
use crate::oauth::config::OAuthConfig;

/// RFC 3986 unreserved characters stay; everything else in a query value is escaped.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The deployment's URLs, built once from its configuration.
#[derive(Debug, Clone)]
pub struct Links {
    public_base_url: String,
    path_prefix: String,
    open_base: String,
    app_id: String,
}

impl Links {
    pub fn new(config: &OAuthConfig) -> Self {
        Self {
            public_base_url: config.public_base_url.clone(),
            path_prefix: config.path_prefix.clone(),
            open_base: config.wechat.open_base.clone(),
            app_id: config.wechat.app_id.clone(),
        }
    }

    /// WeChat's consent URL; the parameters in the order WeChat documents, which it insists on.
    pub fn wechat_consent(&self, scope: Scope, state: &str) -> String {
        let callback = format!("{}/oauth/callback", self.public_base_url);
        format!(
            "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={}&state={}#wechat_redirect",
            self.open_base,
            utf8_percent_encode(&self.app_id, QUERY_VALUE),
            utf8_percent_encode(&callback, QUERY_VALUE),
            scope.as_str(),
            state,
        )
    }

    /// `/oauth/authorize` on this server, for restarts and "try again" links.
    pub fn authorize(&self, scope: Scope, return_to: &str, attempt: u8) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("scope", scope.as_str());
        query.append_pair("return_to", return_to);
        if attempt > 1 {
            query.append_pair("attempt", &attempt.to_string());
        }
        format!("{}/oauth/authorize?{}", self.path_prefix, query.finish())
    }
}

/// Where a finished sign-in sends the browser: `return_to` with a fragment of its own (empty if
/// it has none). A browser keeps the URL's fragment across a redirect whose `Location` has none
/// (RFC 9110 §10.2.2), so WeChat's `#wechat_redirect` would otherwise reach the app's page.
pub fn landing(return_to: &str) -> String {
    if return_to.contains('#') {
        return_to.to_string()
    } else {
        format!("{return_to}#")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Links {
        Links {
            public_base_url: "https://api.example.com/prod".into(),
            path_prefix: "/prod".into(),
            open_base: "https://open.weixin.qq.com".into(),
            app_id: "wx app".into(),
        }
    }

    #[test]
    fn the_consent_url_escapes_its_values_and_keeps_wechats_order() {
        assert_eq!(
            links().wechat_consent(Scope::UserInfo, "abc"),
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx%20app\
             &redirect_uri=https%3A%2F%2Fapi.example.com%2Fprod%2Foauth%2Fcallback\
             &response_type=code&scope=snsapi_userinfo&state=abc#wechat_redirect"
        );
    }

    #[test]
    fn authorize_links_carry_the_attempt_only_after_a_restart() {
        let links = links();
        assert_eq!(
            links.authorize(Scope::Base, "/home?a=1", 1),
            "/prod/oauth/authorize?scope=snsapi_base&return_to=%2Fhome%3Fa%3D1"
        );
        assert_eq!(
            links.authorize(Scope::Base, "/", 2),
            "/prod/oauth/authorize?scope=snsapi_base&return_to=%2F&attempt=2"
        );
    }

    #[test]
    fn the_landing_always_has_a_fragment() {
        assert_eq!(landing("/home"), "/home#");
        assert_eq!(landing("/home#top"), "/home#top");
    }
}

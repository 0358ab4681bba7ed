//! The JS-SDK part of the `oauth` function's configuration: which pages may be signed, where the
//! pages load `jweixin` from, and whether the demo page is served.

use wechat_protocol::origin::{Origin, split_origin};

use crate::config::vars::{DEMO_PAGE_ENABLED, JSSDK_ALLOWED_ORIGINS, JSSDK_SCRIPT_URL};
use crate::config::{ConfigError, Env, flag_or, optional};

/// WeChat's own JS-SDK script, version 1.6.0.
pub const DEFAULT_SCRIPT_URL: &str = "https://res.wx.qq.com/open/js/jweixin-1.6.0.js";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JssdkConfig {
    /// `JSSDK_ALLOWED_ORIGINS`: comma-separated origins (`https://example.com`), the account's
    /// JS接口安全域名. Only pages on them are signed; empty (unset) turns signing off, and then
    /// the function needs no ticket source at all.
    pub allowed_origins: Vec<Origin>,
    /// `JSSDK_SCRIPT_URL`, default WeChat's `jweixin-1.6.0.js`; `make run` with the fake WeChat
    /// API points it at the fake's stand-in.
    pub script_url: String,
    /// The origin of `script_url`: the demo page's Content-Security-Policy lets scripts load from
    /// it and lets them connect to it (the fake's stand-in verifies signatures there).
    pub script_origin: Origin,
    /// `DEMO_PAGE_ENABLED` (default false): serve the demo page at `/demo`.
    pub demo_page: bool,
}

impl JssdkConfig {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let mut allowed_origins = Vec::new();
        for raw in optional(env, JSSDK_ALLOWED_ORIGINS)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let origin = Origin::parse(raw)
                .map_err(|reason| ConfigError::new(JSSDK_ALLOWED_ORIGINS, reason))?;
            if !allowed_origins.contains(&origin) {
                allowed_origins.push(origin);
            }
        }
        let script_url =
            optional(env, JSSDK_SCRIPT_URL).unwrap_or_else(|| DEFAULT_SCRIPT_URL.into());
        let (script_origin, _) = split_origin(&script_url)
            .map_err(|reason| ConfigError::new(JSSDK_SCRIPT_URL, reason))?;
        // A page on https cannot load a plain-http script; only the local fake may be http.
        if !script_origin.as_str().starts_with("https://") && !script_origin.is_loopback() {
            return Err(ConfigError::new(
                JSSDK_SCRIPT_URL,
                format!("{script_url:?} must be https (plain http is allowed only for localhost)"),
            ));
        }
        if script_url.contains(['"', '\'', '<', '>', ' ', '\\']) {
            return Err(ConfigError::new(
                JSSDK_SCRIPT_URL,
                format!("{script_url:?} has characters not allowed in a script URL"),
            ));
        }
        Ok(Self {
            allowed_origins,
            script_url,
            script_origin,
            demo_page: flag_or(env, DEMO_PAGE_ENABLED, false)?,
        })
    }

    /// Whether any page may be signed (a ticket source is needed only then).
    pub fn signing_enabled(&self) -> bool {
        !self.allowed_origins.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_signing_and_the_demo_are_off_and_the_script_is_wechats() {
        let config = JssdkConfig::from_env(&[("OTHER", "x")]).unwrap();
        assert!(!config.signing_enabled());
        assert!(!config.demo_page);
        assert_eq!(config.script_url, DEFAULT_SCRIPT_URL);
        assert_eq!(config.script_origin.as_str(), "https://res.wx.qq.com");
    }

    #[test]
    fn allowed_origins_are_normalised_and_deduplicated() {
        let config = JssdkConfig::from_env(&[(
            "JSSDK_ALLOWED_ORIGINS",
            "https://Shop.Example, https://shop.example:443 ,http://localhost:3000,",
        )])
        .unwrap();
        let origins: Vec<_> = config.allowed_origins.iter().map(Origin::as_str).collect();
        assert_eq!(origins, ["https://shop.example", "http://localhost:3000"]);
        assert!(config.signing_enabled());
    }

    #[test]
    fn each_invalid_variable_is_named() {
        let variable =
            |pairs: [(&str, &str); 1]| JssdkConfig::from_env(&pairs).unwrap_err().variable;
        assert_eq!(
            variable([("JSSDK_ALLOWED_ORIGINS", "https://shop.example/page")]),
            "JSSDK_ALLOWED_ORIGINS"
        );
        assert_eq!(
            variable([("JSSDK_SCRIPT_URL", "http://cdn.example/jweixin.js")]),
            "JSSDK_SCRIPT_URL"
        );
        assert_eq!(
            variable([("JSSDK_SCRIPT_URL", "https://cdn.example/a\"><script>")]),
            "JSSDK_SCRIPT_URL"
        );
        assert_eq!(
            variable([("DEMO_PAGE_ENABLED", "sometimes")]),
            "DEMO_PAGE_ENABLED"
        );
    }

    #[test]
    fn the_fake_script_on_loopback_may_be_plain_http() {
        let config = JssdkConfig::from_env(&[
            (
                "JSSDK_SCRIPT_URL",
                "http://127.0.0.1:4567/open/js/jweixin-1.6.0.js",
            ),
            ("DEMO_PAGE_ENABLED", "true"),
        ])
        .unwrap();
        assert_eq!(config.script_origin.as_str(), "http://127.0.0.1:4567");
        assert!(config.demo_page);
    }
}

//! The WeChat app every function talks to WeChat as: one struct, read and validated once, shared
//! by the token service, web authorization and whatever calls WeChat next.

use std::time::Duration;

use wechat_api::{ClientBuildError, DEFAULT_API_BASE, WeChatHttp};
use wechat_protocol::origin::split_origin;
use wechat_protocol::secret::Secret;

use super::vars::{
    WECHAT_API_BASE, WECHAT_APP_ID, WECHAT_APP_SECRET, WECHAT_HTTP_TIMEOUT_MS, WECHAT_OPEN_BASE,
};
use super::{ConfigError, Env, optional, parsed_or, required};

pub const DEFAULT_OPEN_BASE: &str = "https://open.weixin.qq.com";
pub const DEFAULT_HTTP_TIMEOUT_MS: u64 = 5_000;

/// The app's credentials and where and how its calls to WeChat go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeChatAppConfig {
    /// `WECHAT_APP_ID` (required).
    pub app_id: String,
    /// `WECHAT_APP_SECRET` (required).
    pub app_secret: Secret<String>,
    /// `WECHAT_API_BASE`, default `https://api.weixin.qq.com`, without a trailing slash.
    pub api_base: String,
    /// `WECHAT_OPEN_BASE`, default `https://open.weixin.qq.com` (the consent page browsers visit).
    pub open_base: String,
    /// `WECHAT_HTTP_TIMEOUT_MS`, default 5000: per call to WeChat.
    pub http_timeout: Duration,
}

impl WeChatAppConfig {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let api = WeChatApiConfig::from_env(env)?;
        Ok(Self {
            app_id: required(env, WECHAT_APP_ID)?,
            app_secret: Secret::new(required(env, WECHAT_APP_SECRET)?),
            api_base: api.api_base,
            open_base: base_url(env, WECHAT_OPEN_BASE, DEFAULT_OPEN_BASE)?,
            http_timeout: api.http_timeout,
        })
    }

    /// The client for the app's `WECHAT_API_BASE` and `WECHAT_HTTP_TIMEOUT_MS`.
    pub fn client(&self) -> Result<WeChatHttp, ClientBuildError> {
        WeChatHttp::new(&self.api_base, self.http_timeout)
    }
}

/// Where and how calls to WeChat's API go, without the app's credentials: what a function that
/// calls WeChat with an access_token from the token service (the worker) needs, and no more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeChatApiConfig {
    /// `WECHAT_API_BASE`, default `https://api.weixin.qq.com`, without a trailing slash.
    pub api_base: String,
    /// `WECHAT_HTTP_TIMEOUT_MS`, default 5000: per call to WeChat.
    pub http_timeout: Duration,
}

impl WeChatApiConfig {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let http_timeout_ms: u64 = parsed_or(env, WECHAT_HTTP_TIMEOUT_MS, DEFAULT_HTTP_TIMEOUT_MS)?;
        if http_timeout_ms == 0 {
            return Err(ConfigError::new(
                WECHAT_HTTP_TIMEOUT_MS,
                "must be at least 1 (every call to WeChat would time out at once)",
            ));
        }
        Ok(Self {
            api_base: base_url(env, WECHAT_API_BASE, DEFAULT_API_BASE)?,
            http_timeout: Duration::from_millis(http_timeout_ms),
        })
    }

    /// The client for `WECHAT_API_BASE` and `WECHAT_HTTP_TIMEOUT_MS`.
    pub fn client(&self) -> Result<WeChatHttp, ClientBuildError> {
        WeChatHttp::new(&self.api_base, self.http_timeout)
    }
}

/// An `https://` base URL, or `http://` on a loopback host (the fake WeChat API, `make run`): the
/// app secret travels in these requests, so it never goes out in clear text.
fn base_url(env: &impl Env, name: &'static str, default: &str) -> Result<String, ConfigError> {
    let raw = optional(env, name).unwrap_or_else(|| default.to_string());
    let (origin, _) = split_origin(&raw).map_err(|reason| ConfigError::new(name, reason))?;
    if !origin.as_str().starts_with("https://") && !origin.is_loopback() {
        return Err(ConfigError::new(
            name,
            format!("{raw:?} must be https (plain http is allowed only on loopback)"),
        ));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: [(&str, &str); 2] = [(WECHAT_APP_ID, "wx1"), (WECHAT_APP_SECRET, "s3cret")];

    fn with(extra: (&'static str, &'static str)) -> Result<WeChatAppConfig, ConfigError> {
        WeChatAppConfig::from_env(&[APP[0], APP[1], extra])
    }

    #[test]
    fn defaults_are_wechats_https_bases_and_a_5_s_timeout() {
        let config = WeChatAppConfig::from_env(&APP).unwrap();
        assert_eq!(config.api_base, DEFAULT_API_BASE);
        assert_eq!(config.open_base, DEFAULT_OPEN_BASE);
        assert_eq!(config.http_timeout, Duration::from_secs(5));
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn plain_http_bases_are_accepted_only_on_loopback() {
        let local = with((WECHAT_API_BASE, "http://127.0.0.1:9000/")).unwrap();
        assert_eq!(local.api_base, "http://127.0.0.1:9000");
        assert!(with((WECHAT_OPEN_BASE, "http://localhost:9000")).is_ok());
        assert!(with((WECHAT_API_BASE, "https://proxy.example.com/wechat")).is_ok());
        for (name, raw) in [
            (WECHAT_API_BASE, "http://api.weixin.qq.com"),
            (WECHAT_API_BASE, "ftp://x"),
            (WECHAT_OPEN_BASE, "http://open.example.com"),
        ] {
            assert_eq!(with((name, raw)).unwrap_err().variable, name);
        }
    }

    #[test]
    fn the_api_config_needs_no_credentials_and_checks_like_the_app_config() {
        let api = WeChatApiConfig::from_env(&[(WECHAT_API_BASE, "http://127.0.0.1:9/")]).unwrap();
        assert_eq!(api.api_base, "http://127.0.0.1:9");
        assert_eq!(api.http_timeout, Duration::from_secs(5));
        let err = WeChatApiConfig::from_env(&[(WECHAT_API_BASE, "http://api.weixin.qq.com")]);
        assert_eq!(err.unwrap_err().variable, WECHAT_API_BASE);
        let err = WeChatApiConfig::from_env(&[(WECHAT_HTTP_TIMEOUT_MS, "0")]).unwrap_err();
        assert_eq!(err.variable, WECHAT_HTTP_TIMEOUT_MS);
    }

    #[test]
    fn a_zero_timeout_and_missing_credentials_name_their_variable() {
        let err = with((WECHAT_HTTP_TIMEOUT_MS, "0")).unwrap_err();
        assert_eq!(err.variable, WECHAT_HTTP_TIMEOUT_MS);
        let err = WeChatAppConfig::from_env(&[APP[0]]).unwrap_err();
        assert_eq!(err.variable, WECHAT_APP_SECRET);
        let err = WeChatAppConfig::from_env(&[APP[1]]).unwrap_err();
        assert_eq!(err.variable, WECHAT_APP_ID);
    }
}

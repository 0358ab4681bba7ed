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
            app_id: required_app_id(env)?,
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

/// Whether `value` is shaped like a WeChat AppID (开发者ID): `wx` and 16 hexadecimal digits.
pub fn is_app_id(value: &str) -> bool {
    value.len() == 18
        && value.starts_with("wx")
        && value.bytes().skip(2).all(|b| b.is_ascii_hexdigit())
}

/// `WECHAT_APP_ID` when it is set, checked to be shaped like an AppID (a typo shows at start-up,
/// not as WeChat's 40013 or a safe-mode push that no longer decrypts).
pub fn app_id(env: &impl Env) -> Result<Option<String>, ConfigError> {
    match optional(env, WECHAT_APP_ID) {
        None => Ok(None),
        Some(id) if is_app_id(&id) => Ok(Some(id)),
        // An AppID is public (it is in every sign-in link): it may be quoted.
        Some(id) => Err(ConfigError::new(
            WECHAT_APP_ID,
            format!(
                "{id:?} is not an AppID: that is wx followed by 16 hexadecimal digits, as \
                 开发者ID(AppID) in the console's 设置与开发 → 基本配置 (e.g. wx0123456789abcdef)"
            ),
        )),
    }
}

/// `WECHAT_APP_ID`, required and checked as [`app_id`] checks it.
pub fn required_app_id(env: &impl Env) -> Result<String, ConfigError> {
    app_id(env)?.ok_or_else(|| ConfigError::new(WECHAT_APP_ID, "is required but not set"))
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
pub fn base_url(env: &impl Env, name: &'static str, default: &str) -> Result<String, ConfigError> {
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

    const APP: [(&str, &str); 2] = [
        (WECHAT_APP_ID, "wx0123456789abcdef"),
        (WECHAT_APP_SECRET, "s3cret"),
    ];

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
    fn an_app_id_is_wx_and_16_hex_digits() {
        for good in ["wx0123456789abcdef", "wxB11529C136998CB6"] {
            assert!(is_app_id(good), "{good}");
            assert_eq!(
                app_id(&[(WECHAT_APP_ID, good)]).unwrap().as_deref(),
                Some(good)
            );
        }
        for bad in [
            "12345",
            "wx1",
            "wx0123456789abcdeg",
            "wx0123456789abcdef0",
            "gh_0123456789ab",
            "WX0123456789abcdef",
        ] {
            assert!(!is_app_id(bad), "{bad}");
            let err = app_id(&[(WECHAT_APP_ID, bad)]).unwrap_err();
            assert_eq!(err.variable, WECHAT_APP_ID);
            assert!(err.reason.contains("16 hexadecimal digits"), "{err}");
        }
        assert_eq!(app_id(&[(WECHAT_APP_SECRET, "s")]).unwrap(), None);
        let err = WeChatAppConfig::from_env(&[(WECHAT_APP_ID, "12345"), APP[1]]).unwrap_err();
        assert_eq!(err.variable, WECHAT_APP_ID);
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

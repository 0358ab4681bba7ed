//! The `oauth` function's configuration, read and validated once at start-up.

use wechat_protocol::origin::{Origin, split_origin};
use wechat_protocol::secret::Secret;

use crate::config::vars::{
    OAUTH_ALLOWED_ORIGINS, OAUTH_PROFILE_MAX_AGE_SECS, PUBLIC_BASE_URL, SESSION_SECRET,
    SESSION_TTL_SECS, TABLE_NAME,
};
use crate::config::{ConfigError, Env, WeChatAppConfig, optional, parsed_or, required};
use crate::oauth::verify_file::VerifyFile;

pub const DEFAULT_SESSION_TTL_S: i64 = 7 * 24 * 3600;
pub const DEFAULT_PROFILE_MAX_AGE_S: i64 = 24 * 3600;
pub const MIN_SESSION_SECRET_BYTES: usize = 32;

/// Everything the OAuth handler needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// The app (`WECHAT_APP_ID`, `WECHAT_APP_SECRET`, `WECHAT_API_BASE`, `WECHAT_OPEN_BASE`,
    /// `WECHAT_HTTP_TIMEOUT_MS`), as every function reads it.
    pub wechat: WeChatAppConfig,
    /// `PUBLIC_BASE_URL`: where browsers reach this API, without a trailing slash
    /// (e.g. `https://api.example.com` or `https://abc.execute-api.region.amazonaws.com/prod`).
    pub public_base_url: String,
    /// The path part of `public_base_url` (`""` or e.g. `/prod`), put in front of every route
    /// this server links to.
    pub path_prefix: String,
    /// Whether cookies carry `Secure`. Always true, except when `PUBLIC_BASE_URL` is plain
    /// `http` on a loopback host (`make run` in a browser): then browsers would drop them.
    pub secure_cookies: bool,
    /// `SESSION_SECRET`: the HMAC key of session cookies, at least 32 bytes.
    pub session_secret: Secret<Vec<u8>>,
    /// `OAUTH_ALLOWED_ORIGINS` plus the origin of `PUBLIC_BASE_URL`: where `return_to` may point
    /// besides relative paths.
    pub allowed_origins: Vec<Origin>,
    /// `TABLE_NAME`.
    pub table_name: String,
    /// `SESSION_TTL_SECS`, default 7 days.
    pub session_ttl_s: i64,
    /// `OAUTH_PROFILE_MAX_AGE_SECS`, default 1 day: older profiles are refreshed when possible.
    pub profile_max_age_s: i64,
    /// `WECHAT_MP_VERIFY_FILE`: the domain verification file to serve, if any.
    pub verify_file: Option<VerifyFile>,
}

impl OAuthConfig {
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let wechat = WeChatAppConfig::from_env(env)?;

        let public_base_url = required(env, PUBLIC_BASE_URL)?;
        let public = PublicBase::parse(&public_base_url)
            .map_err(|reason| ConfigError::new(PUBLIC_BASE_URL, reason))?;

        let session_secret = required(env, SESSION_SECRET)?.into_bytes();
        if session_secret.len() < MIN_SESSION_SECRET_BYTES {
            return Err(ConfigError::new(
                SESSION_SECRET,
                format!(
                    "must be at least {MIN_SESSION_SECRET_BYTES} bytes (got {})",
                    session_secret.len()
                ),
            ));
        }

        let mut allowed_origins = vec![public.origin.clone()];
        for raw in optional(env, OAUTH_ALLOWED_ORIGINS)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let origin = Origin::parse(raw)
                .map_err(|reason| ConfigError::new(OAUTH_ALLOWED_ORIGINS, reason))?;
            if !allowed_origins.contains(&origin) {
                allowed_origins.push(origin);
            }
        }

        let session_ttl_s = positive(env, SESSION_TTL_SECS, DEFAULT_SESSION_TTL_S)?;
        let profile_max_age_s =
            positive(env, OAUTH_PROFILE_MAX_AGE_SECS, DEFAULT_PROFILE_MAX_AGE_S)?;

        Ok(Self {
            wechat,
            public_base_url: public.url,
            path_prefix: public.path,
            secure_cookies: public.secure,
            session_secret: Secret::new(session_secret),
            allowed_origins,
            table_name: required(env, TABLE_NAME)?,
            session_ttl_s,
            profile_max_age_s,
            verify_file: VerifyFile::from_env(env)?,
        })
    }
}

struct PublicBase {
    url: String,
    origin: Origin,
    path: String,
    secure: bool,
}

impl PublicBase {
    fn parse(raw: &str) -> Result<Self, String> {
        let (origin, path) = split_origin(raw)?;
        if path.contains(['?', '#']) {
            return Err(format!("{raw:?} must not have a query or fragment"));
        }
        if path.ends_with('/') {
            return Err(format!("{raw:?} must not end with a slash"));
        }
        if path
            .chars()
            .any(|c| !(c.is_ascii_graphic()) || c == '\\' || c == '%')
        {
            return Err(format!("{raw:?} has characters not allowed in its path"));
        }
        let secure = origin.as_str().starts_with("https://");
        if !secure && !origin.is_loopback() {
            return Err(format!(
                "{raw:?} must be https (plain http is allowed only for localhost)"
            ));
        }
        Ok(Self {
            url: raw.to_string(),
            origin,
            path: path.to_string(),
            secure,
        })
    }
}

fn positive(env: &impl Env, name: &'static str, default: i64) -> Result<i64, ConfigError> {
    let value = parsed_or(env, name, default)?;
    if value <= 0 {
        return Err(ConfigError::new(
            name,
            "must be a positive number of seconds",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(overrides: &[(&str, &str)]) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = [
            ("WECHAT_APP_ID", "wx0123456789abcdef"),
            ("WECHAT_APP_SECRET", "app-secret"),
            ("PUBLIC_BASE_URL", "https://api.example.com"),
            ("SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
            ("TABLE_NAME", "wechat"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in overrides {
            env.insert(k.to_string(), v.to_string());
        }
        env
    }

    fn error_variable(overrides: &[(&str, &str)]) -> &'static str {
        OAuthConfig::from_env(&env(overrides)).unwrap_err().variable
    }

    #[test]
    fn defaults_apply_and_cookies_are_secure_on_https() {
        let config = OAuthConfig::from_env(&env(&[])).unwrap();
        assert!(config.secure_cookies);
        assert_eq!(config.path_prefix, "");
        assert_eq!(config.wechat.open_base, "https://open.weixin.qq.com");
        assert_eq!(config.wechat.api_base, "https://api.weixin.qq.com");
        assert_eq!(config.session_ttl_s, 7 * 24 * 3600);
        assert_eq!(config.profile_max_age_s, 24 * 3600);
        assert_eq!(
            config.allowed_origins,
            vec![Origin::parse("https://api.example.com").unwrap()]
        );
        assert_eq!(format!("{:?}", config.wechat.app_secret), "***");
    }

    #[test]
    fn plain_http_is_allowed_only_on_loopback_and_drops_secure() {
        let local =
            OAuthConfig::from_env(&env(&[("PUBLIC_BASE_URL", "http://127.0.0.1:9000")])).unwrap();
        assert!(!local.secure_cookies);
        assert!(
            !OAuthConfig::from_env(&env(&[("PUBLIC_BASE_URL", "http://localhost:3000")]))
                .unwrap()
                .secure_cookies
        );
        assert_eq!(
            error_variable(&[("PUBLIC_BASE_URL", "http://api.example.com")]),
            "PUBLIC_BASE_URL"
        );
    }

    #[test]
    fn public_base_url_keeps_its_stage_path_as_prefix() {
        let config = OAuthConfig::from_env(&env(&[(
            "PUBLIC_BASE_URL",
            "https://abc.execute-api.ap-east-1.amazonaws.com/prod",
        )]))
        .unwrap();
        assert_eq!(config.path_prefix, "/prod");
    }

    #[test]
    fn each_invalid_variable_is_named() {
        assert_eq!(
            error_variable(&[("PUBLIC_BASE_URL", "https://api.example.com/")]),
            "PUBLIC_BASE_URL"
        );
        assert_eq!(
            error_variable(&[("PUBLIC_BASE_URL", "api.example.com")]),
            "PUBLIC_BASE_URL"
        );
        assert_eq!(
            error_variable(&[("SESSION_SECRET", "too-short")]),
            "SESSION_SECRET"
        );
        assert_eq!(
            error_variable(&[(
                "OAUTH_ALLOWED_ORIGINS",
                "https://ok.example, https://bad.example/path"
            )]),
            "OAUTH_ALLOWED_ORIGINS"
        );
        assert_eq!(
            error_variable(&[("WECHAT_API_BASE", "ftp://x")]),
            "WECHAT_API_BASE"
        );
        assert_eq!(
            error_variable(&[("SESSION_TTL_SECS", "0")]),
            "SESSION_TTL_SECS"
        );
        assert_eq!(
            error_variable(&[("OAUTH_PROFILE_MAX_AGE_SECS", "a day")]),
            "OAUTH_PROFILE_MAX_AGE_SECS"
        );
        assert_eq!(error_variable(&[("TABLE_NAME", " ")]), "TABLE_NAME");
        assert_eq!(
            error_variable(&[("WECHAT_APP_SECRET", "")]),
            "WECHAT_APP_SECRET"
        );
    }

    #[test]
    fn allowed_origins_are_parsed_and_normalised() {
        let config = OAuthConfig::from_env(&env(&[(
            "OAUTH_ALLOWED_ORIGINS",
            "https://Shop.Example, http://localhost:5173,",
        )]))
        .unwrap();
        let origins: Vec<_> = config.allowed_origins.iter().map(Origin::as_str).collect();
        assert_eq!(
            origins,
            [
                "https://api.example.com",
                "https://shop.example",
                "http://localhost:5173"
            ]
        );
    }
}

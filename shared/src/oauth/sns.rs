//! The `/sns/*` calls of web authorization: exchange a `code`, refresh an sns token, read the
//! profile, check a token. Tokens come back wrapped in `Secret` and never appear in an error.

use serde_json::Value;

use crate::config::Secret;
use crate::oauth::{OAuthConfig, Scope};
use crate::store::oauth::{Profile, SnsGrant};
use crate::wechat_api::{ApiError, WeChatHttp};

/// WeChat's refresh tokens live 30 days from the authorization and refreshing does not extend them.
pub const REFRESH_TOKEN_LIFETIME_S: i64 = 30 * 24 * 3600;
/// Used when WeChat leaves out `expires_in` (it documents 7200).
const DEFAULT_ACCESS_TOKEN_LIFETIME_S: i64 = 7200;

/// 40029 invalid code, 40163 code already used, 42003 code expired: the code cannot be used.
pub fn is_code_rejected(err: &ApiError) -> bool {
    matches!(err.errcode(), Some(40029 | 40163 | 42003))
}

/// 40030 invalid refresh token, 42002 refresh token expired: only a new consent helps.
pub fn is_refresh_token_rejected(err: &ApiError) -> bool {
    matches!(err.errcode(), Some(40030 | 42002))
}

/// What a `code` was exchanged for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub openid: String,
    pub unionid: Option<String>,
    pub grant: SnsGrant,
}

/// The sns API of one app. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SnsClient {
    http: WeChatHttp,
    app_id: String,
    app_secret: Secret<String>,
}

impl SnsClient {
    pub fn new(config: &OAuthConfig) -> Self {
        Self {
            http: WeChatHttp::new(&config.api_base, config.api_timeout),
            app_id: config.app_id.clone(),
            app_secret: config.app_secret.clone(),
        }
    }

    /// `GET /sns/oauth2/access_token`: the code's openid and sns tokens.
    pub async fn exchange_code(&self, code: &str, now_s: i64) -> Result<Authorization, ApiError> {
        let answer = self
            .http
            .get(
                "/sns/oauth2/access_token",
                &[
                    ("appid", &self.app_id),
                    ("secret", self.app_secret.expose()),
                    ("code", code),
                    ("grant_type", "authorization_code"),
                ],
            )
            .await?;
        let grant = grant_from(&answer, now_s, now_s + REFRESH_TOKEN_LIFETIME_S)?;
        Ok(Authorization {
            openid: string(&answer, "openid")?,
            unionid: optional_string(&answer, "unionid"),
            grant,
        })
    }

    /// `GET /sns/oauth2/refresh_token`: a new access token for `grant`; the refresh token keeps
    /// its original expiry.
    pub async fn refresh(&self, grant: &SnsGrant, now_s: i64) -> Result<SnsGrant, ApiError> {
        let answer = self
            .http
            .get(
                "/sns/oauth2/refresh_token",
                &[
                    ("appid", &self.app_id),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", grant.refresh_token.expose()),
                ],
            )
            .await?;
        grant_from(&answer, now_s, grant.refresh_token_expires_at_s)
    }

    /// `GET /sns/userinfo` (needs a `snsapi_userinfo` token): the profile and the unionid.
    pub async fn userinfo(
        &self,
        access_token: &Secret<String>,
        openid: &str,
        now_s: i64,
    ) -> Result<(Profile, Option<String>), ApiError> {
        let answer = self
            .http
            .get(
                "/sns/userinfo",
                &[
                    ("access_token", access_token.expose()),
                    ("openid", openid),
                    ("lang", "zh_CN"),
                ],
            )
            .await?;
        if string(&answer, "openid")? != openid {
            return Err(ApiError::Malformed("userinfo is for another openid".into()));
        }
        let profile = Profile {
            nickname: optional_string(&answer, "nickname").unwrap_or_default(),
            sex: answer
                .get("sex")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            province: optional_string(&answer, "province").unwrap_or_default(),
            city: optional_string(&answer, "city").unwrap_or_default(),
            country: optional_string(&answer, "country").unwrap_or_default(),
            headimgurl: optional_string(&answer, "headimgurl").unwrap_or_default(),
            privilege: answer
                .get("privilege")
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            fetched_at_s: now_s,
        };
        Ok((profile, optional_string(&answer, "unionid")))
    }

    /// `GET /sns/auth`: `Ok(())` while the access token is valid for `openid`.
    pub async fn check_access_token(
        &self,
        access_token: &Secret<String>,
        openid: &str,
    ) -> Result<(), ApiError> {
        self.http
            .get(
                "/sns/auth",
                &[("access_token", access_token.expose()), ("openid", openid)],
            )
            .await
            .map(drop)
    }
}

fn grant_from(
    answer: &Value,
    now_s: i64,
    refresh_token_expires_at_s: i64,
) -> Result<SnsGrant, ApiError> {
    let expires_in = answer
        .get("expires_in")
        .and_then(Value::as_i64)
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME_S);
    // WeChat documents `scope` as the granted scopes, comma-separated.
    let scope = string(answer, "scope")?;
    let scope = if scope
        .split(',')
        .any(|s| s.trim() == Scope::UserInfo.as_str())
    {
        Scope::UserInfo
    } else {
        Scope::Base
    };
    Ok(SnsGrant {
        scope,
        access_token: Secret::new(string(answer, "access_token")?),
        access_token_expires_at_s: now_s + expires_in,
        refresh_token: Secret::new(string(answer, "refresh_token")?),
        refresh_token_expires_at_s,
    })
}

fn optional_string(answer: &Value, field: &str) -> Option<String> {
    answer
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn string(answer: &Value, field: &'static str) -> Result<String, ApiError> {
    optional_string(answer, field).ok_or_else(|| ApiError::Malformed(format!("no {field}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_grant_reads_the_scope_and_expiries() {
        let answer = json!({
            "access_token": "at", "expires_in": 7200, "refresh_token": "rt",
            "openid": "o1", "scope": "snsapi_userinfo"
        });
        let grant = grant_from(&answer, 1_000, 9_999).unwrap();
        assert_eq!(grant.scope, Scope::UserInfo);
        assert_eq!(grant.access_token_expires_at_s, 8_200);
        assert_eq!(grant.refresh_token_expires_at_s, 9_999);
        assert_eq!(grant.access_token.expose(), "at");
    }

    #[test]
    fn an_answer_without_tokens_is_malformed_and_does_not_echo_values() {
        let answer = json!({"access_token": "secret-at", "openid": "o1", "scope": "snsapi_base"});
        let err = grant_from(&answer, 0, 0).unwrap_err();
        assert!(matches!(err, ApiError::Malformed(_)));
        assert!(!err.to_string().contains("secret-at"));
    }

    #[test]
    fn code_and_refresh_token_errors_are_classified() {
        let wechat = |errcode| ApiError::WeChat {
            errcode,
            errmsg: String::new(),
        };
        for code in [40029, 40163, 42003] {
            assert!(is_code_rejected(&wechat(code)));
        }
        for code in [40030, 42002] {
            assert!(is_refresh_token_rejected(&wechat(code)));
        }
        assert!(!is_code_rejected(&wechat(-1)));
        assert!(!is_code_rejected(&ApiError::Timeout));
    }
}

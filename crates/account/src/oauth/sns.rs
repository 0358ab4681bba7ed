//! The `/sns/*` calls of web authorization: exchange a `code`, refresh an sns token, read the
//! profile, check a token. Each call is a request type and an answer type; tokens come back
//! wrapped in `Secret` and never appear in an error.

use serde::{Deserialize, Serialize};
use wechat_api::{Ack, ApiError, Endpoint, ErrClass, Method, WeChatHttp};
use wechat_protocol::secret::Secret;
use wechat_protocol::secret::plain_string;

use crate::config::WeChatAppConfig;
use crate::oauth::Scope;
use crate::oauth::store::{Profile, SnsGrant};

/// WeChat's refresh tokens live 30 days from the authorization and refreshing does not extend them.
pub const REFRESH_TOKEN_LIFETIME_S: i64 = 30 * 24 * 3600;
/// Used when WeChat leaves out `expires_in` (it documents 7200).
const DEFAULT_ACCESS_TOKEN_LIFETIME_S: i64 = 7200;

/// 40029 invalid code, 40163 code already used, 42003 code expired: the code cannot be used.
pub fn is_code_rejected(err: &ApiError) -> bool {
    err.class() == Some(ErrClass::CodeRejected)
}

/// 40030 invalid refresh token, 42002 refresh token expired: only a new consent helps.
pub fn is_refresh_token_rejected(err: &ApiError) -> bool {
    err.class() == Some(ErrClass::RefreshTokenRejected)
}

/// What a `code` was exchanged for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub openid: String,
    pub unionid: Option<String>,
    pub grant: SnsGrant,
    /// WeChat said `is_snapshotuser: 1`: the page was opened in snapshot mode (快照页模式, since
    /// 2022), and the openid, unionid and profile are a virtual account's, not the user's. Such
    /// an authorization must never be stored or signed in.
    pub snapshot_user: bool,
}

/// `GET /sns/oauth2/access_token`.
#[derive(Serialize)]
struct ExchangeCode<'a> {
    appid: &'a str,
    secret: &'a str,
    code: &'a str,
    grant_type: &'static str,
}

impl Endpoint for ExchangeCode<'_> {
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/sns/oauth2/access_token";
    type Answer = GrantAnswer;
}

/// `GET /sns/oauth2/refresh_token`.
#[derive(Serialize)]
struct RefreshGrant<'a> {
    appid: &'a str,
    grant_type: &'static str,
    refresh_token: &'a str,
}

impl Endpoint for RefreshGrant<'_> {
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/sns/oauth2/refresh_token";
    type Answer = GrantAnswer;
}

/// `GET /sns/userinfo`.
#[derive(Serialize)]
struct UserInfo<'a> {
    access_token: &'a str,
    openid: &'a str,
    lang: &'static str,
}

impl Endpoint for UserInfo<'_> {
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/sns/userinfo";
    type Answer = UserInfoAnswer;
}

/// `GET /sns/auth`.
#[derive(Serialize)]
struct CheckToken<'a> {
    access_token: &'a str,
    openid: &'a str,
}

impl Endpoint for CheckToken<'_> {
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/sns/auth";
    type Answer = Ack;
}

/// The answer of the code exchange and of a grant refresh.
#[derive(Deserialize)]
struct GrantAnswer {
    #[serde(deserialize_with = "plain_string::deserialize")]
    access_token: Secret<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(deserialize_with = "plain_string::deserialize")]
    refresh_token: Secret<String>,
    /// The granted scopes, comma-separated.
    scope: String,
    #[serde(default)]
    openid: String,
    #[serde(default)]
    unionid: Option<String>,
    /// `1` for a snapshot-page (快照页模式) virtual account; absent or `0` otherwise. Read
    /// leniently (a number, a boolean or a string of digits), as a missed flag would store a
    /// virtual account as a user.
    #[serde(default, deserialize_with = "snapshot_flag")]
    is_snapshotuser: bool,
}

/// `is_snapshotuser`: true for anything but absent, `null`, `0`, `false`, `""` or `"0"`.
fn snapshot_flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    use serde_json::Value;
    Ok(match Value::deserialize(d)? {
        Value::Null => false,
        Value::Bool(b) => b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !matches!(s.trim(), "" | "0"),
        Value::Array(_) | Value::Object(_) => true,
    })
}

/// The user's profile as `/sns/userinfo` answers it.
#[derive(Deserialize)]
struct UserInfoAnswer {
    openid: String,
    #[serde(default)]
    nickname: String,
    #[serde(default)]
    sex: i64,
    #[serde(default)]
    province: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    headimgurl: String,
    #[serde(default)]
    privilege: Vec<String>,
    #[serde(default)]
    unionid: Option<String>,
}

/// The sns API of one app. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SnsClient {
    http: WeChatHttp,
    app_id: String,
    app_secret: Secret<String>,
}

impl SnsClient {
    /// Calls for `app` through `http` (built once in `main`).
    pub fn new(app: &WeChatAppConfig, http: WeChatHttp) -> Self {
        Self {
            http,
            app_id: app.app_id.clone(),
            app_secret: app.app_secret.clone(),
        }
    }

    /// `GET /sns/oauth2/access_token`: the code's openid and sns tokens.
    pub async fn exchange_code(&self, code: &str, now_s: i64) -> Result<Authorization, ApiError> {
        let request = ExchangeCode {
            appid: &self.app_id,
            secret: self.app_secret.expose(),
            code,
            grant_type: "authorization_code",
        };
        let mut answer = self.http.call(&request).await?;
        let openid = non_empty(std::mem::take(&mut answer.openid), "openid")?;
        let unionid = answer.unionid.take().filter(|u| !u.is_empty());
        let snapshot_user = answer.is_snapshotuser;
        let grant = grant_from(
            answer,
            now_s,
            now_s.saturating_add(REFRESH_TOKEN_LIFETIME_S),
        )?;
        Ok(Authorization {
            openid,
            unionid,
            grant,
            snapshot_user,
        })
    }

    /// `GET /sns/oauth2/refresh_token`: a new access token for `grant`; the refresh token keeps
    /// its original expiry.
    pub async fn refresh(&self, grant: &SnsGrant, now_s: i64) -> Result<SnsGrant, ApiError> {
        let request = RefreshGrant {
            appid: &self.app_id,
            grant_type: "refresh_token",
            refresh_token: grant.refresh_token.expose(),
        };
        let answer = self.http.call(&request).await?;
        grant_from(answer, now_s, grant.refresh_token_expires_at_s)
    }

    /// `GET /sns/userinfo` (needs a `snsapi_userinfo` token): the profile and the unionid.
    pub async fn userinfo(
        &self,
        access_token: &Secret<String>,
        openid: &str,
        now_s: i64,
    ) -> Result<(Profile, Option<String>), ApiError> {
        let request = UserInfo {
            access_token: access_token.expose(),
            openid,
            lang: "zh_CN",
        };
        let answer = self.http.call(&request).await?;
        if non_empty(answer.openid, "openid")? != openid {
            return Err(ApiError::Malformed("userinfo is for another openid".into()));
        }
        let profile = Profile {
            nickname: answer.nickname,
            sex: answer.sex,
            province: answer.province,
            city: answer.city,
            country: answer.country,
            headimgurl: answer.headimgurl,
            privilege: answer.privilege,
            fetched_at_s: now_s,
        };
        Ok((profile, answer.unionid.filter(|u| !u.is_empty())))
    }

    /// `GET /sns/auth`: `Ok(())` while the access token is valid for `openid`.
    pub async fn check_access_token(
        &self,
        access_token: &Secret<String>,
        openid: &str,
    ) -> Result<(), ApiError> {
        let request = CheckToken {
            access_token: access_token.expose(),
            openid,
        };
        self.http.call(&request).await.map(drop)
    }
}

fn grant_from(
    answer: GrantAnswer,
    now_s: i64,
    refresh_token_expires_at_s: i64,
) -> Result<SnsGrant, ApiError> {
    let expires_in = answer
        .expires_in
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME_S);
    let scope = if answer
        .scope
        .split(',')
        .any(|s| s.trim() == Scope::UserInfo.as_str())
    {
        Scope::UserInfo
    } else if answer.scope.is_empty() {
        return Err(ApiError::Malformed("no scope".into()));
    } else {
        Scope::Base
    };
    if answer.access_token.expose().is_empty() {
        return Err(ApiError::Malformed("no access_token".into()));
    }
    if answer.refresh_token.expose().is_empty() {
        return Err(ApiError::Malformed("no refresh_token".into()));
    }
    Ok(SnsGrant {
        scope,
        access_token: answer.access_token,
        // Saturating: an absurd `expires_in` must not overflow into the past.
        access_token_expires_at_s: now_s.saturating_add(expires_in),
        refresh_token: answer.refresh_token,
        refresh_token_expires_at_s,
    })
}

fn non_empty(value: String, field: &'static str) -> Result<String, ApiError> {
    if value.is_empty() {
        return Err(ApiError::Malformed(format!("no {field}")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wechat_api::decode;
    use wechat_api::double::{InProcessWeChat, ok};

    fn grant(answer: &[u8], now_s: i64, refresh_expires_s: i64) -> Result<SnsGrant, ApiError> {
        decode::<GrantAnswer>(answer).and_then(|a| grant_from(a, now_s, refresh_expires_s))
    }

    #[test]
    fn a_grant_reads_the_scope_and_expiries() {
        let answer = br#"{
            "access_token": "at", "expires_in": 7200, "refresh_token": "rt",
            "openid": "o1", "scope": "snsapi_userinfo"
        }"#;
        let grant = grant(answer, 1_000, 9_999).unwrap();
        assert_eq!(grant.scope, Scope::UserInfo);
        assert_eq!(grant.access_token_expires_at_s, 8_200);
        assert_eq!(grant.refresh_token_expires_at_s, 9_999);
        assert_eq!(grant.access_token.expose(), "at");
    }

    #[test]
    fn an_answer_without_tokens_is_malformed_and_does_not_echo_values() {
        let answer = br#"{"access_token": "secret-at", "openid": "o1", "scope": "snsapi_base"}"#;
        let err = grant(answer, 0, 0).unwrap_err();
        assert!(matches!(err, ApiError::Malformed(_)));
        assert!(!err.to_string().contains("secret-at"));
    }

    #[test]
    fn a_huge_expires_in_saturates_instead_of_overflowing() {
        let answer = br#"{"access_token": "at", "expires_in": 9223372036854775807,
            "refresh_token": "rt", "openid": "o1", "scope": "snsapi_base"}"#;
        let grant = grant(answer, 1_000, 9_999).unwrap();
        assert_eq!(grant.access_token_expires_at_s, i64::MAX);
    }

    #[test]
    fn the_snapshot_flag_is_read_leniently_and_absent_means_a_real_user() {
        let flag = |extra: &str| {
            let answer = format!(
                r#"{{"access_token": "at", "refresh_token": "rt", "openid": "o1",
                    "scope": "snsapi_userinfo"{extra}}}"#
            );
            decode::<GrantAnswer>(answer.as_bytes())
                .unwrap()
                .is_snapshotuser
        };
        for (extra, snapshot) in [
            ("", false),
            (r#", "is_snapshotuser": 0"#, false),
            (r#", "is_snapshotuser": null"#, false),
            (r#", "is_snapshotuser": "0""#, false),
            (r#", "is_snapshotuser": 1"#, true),
            (r#", "is_snapshotuser": "1""#, true),
            (r#", "is_snapshotuser": true"#, true),
        ] {
            assert_eq!(flag(extra), snapshot, "{extra}");
        }
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

    fn client(double: &std::sync::Arc<InProcessWeChat>) -> SnsClient {
        let app = WeChatAppConfig::from_env(&[
            ("WECHAT_APP_ID", "wx0123456789abcdef"),
            ("WECHAT_APP_SECRET", "s3cret"),
        ])
        .unwrap();
        SnsClient::new(&app, double.client())
    }

    #[tokio::test]
    async fn userinfo_for_another_openid_is_refused_and_the_request_names_the_user() {
        let double = InProcessWeChat::new(|_| {
            ok(r#"{"openid":"someone-else","nickname":"Eve","privilege":["x"]}"#)
        });
        let err = client(&double)
            .userinfo(&Secret::new("at".into()), "o1", 0)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ApiError::Malformed("userinfo is for another openid".into())
        );
        let requests = double.requests();
        assert_eq!(requests[0].path, "/sns/userinfo");
        assert_eq!(requests[0].query, "access_token=at&openid=o1&lang=zh_CN");
    }

    #[tokio::test]
    async fn a_profile_with_missing_fields_reads_as_empty_ones() {
        let double = InProcessWeChat::new(|_| ok(r#"{"openid":"o1","nickname":"小明","sex":1}"#));
        let (profile, unionid) = client(&double)
            .userinfo(&Secret::new("at".into()), "o1", 42)
            .await
            .unwrap();
        assert_eq!(
            (
                profile.nickname.as_str(),
                profile.sex,
                profile.city.as_str()
            ),
            ("小明", 1, "")
        );
        assert!(profile.privilege.is_empty() && unionid.is_none());
        assert_eq!(profile.fetched_at_s, 42);
    }
}

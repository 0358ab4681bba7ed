//! A signed-in WeChat user ([`User`], with its [`Profile`] and [`SnsGrant`]) and the item it is
//! stored as.
//!
//! User item `user#<openid>`: `openid`, `unionid`, `scope`, profile fields (`nickname`, `sex`,
//! `province`, `city`, `country`, `headimgurl`, `privilege`, `profile_fetched_at_s`), the sns
//! grant (`sns_scope`, `sns_access_token`, `sns_access_token_expires_at_s`, `sns_refresh_token`,
//! `sns_refresh_token_expires_at_s`), `created_at_s`, `updated_at_s`, `session_epoch` (sessions
//! signed with an older epoch are revoked; absent = 0) and `version` (bumped by every write, which
//! is a compare-and-swap on it; absent on items written before versioning). No `ttl`: users are
//! kept. All times are epoch seconds; absent parts leave their attributes out.

use serde::{Deserialize, Serialize};
use table::StoreError;
use table::{Item, key};
use wechat_protocol::secret::Secret;

use crate::oauth::Scope;

/// The user's WeChat profile, as `/sns/userinfo` returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub nickname: String,
    /// 0 unknown, 1 male, 2 female (WeChat now answers 0).
    pub sex: i64,
    pub province: String,
    pub city: String,
    pub country: String,
    pub headimgurl: String,
    pub privilege: Vec<String>,
    pub fetched_at_s: i64,
}

/// The sns tokens of one authorization. Never leaves the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsGrant {
    pub scope: Scope,
    pub access_token: Secret<String>,
    pub access_token_expires_at_s: i64,
    pub refresh_token: Secret<String>,
    pub refresh_token_expires_at_s: i64,
}

/// A signed-in WeChat user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub openid: String,
    pub unionid: Option<String>,
    /// The broadest scope the user has granted; `snsapi_userinfo` once a profile was shared.
    pub scope: Scope,
    pub profile: Option<Profile>,
    /// `None` once WeChat rejected the refresh token: refreshing the profile needs a new sign-in.
    pub grant: Option<SnsGrant>,
    pub created_at_s: i64,
    pub updated_at_s: i64,
    /// Sessions carry the epoch they were issued in; bumping it signs the user out everywhere.
    pub session_epoch: u64,
    /// The stored item's version this user was read at (0: not stored yet, or stored before
    /// versioning). `UserStore::put_user` writes only over this version and then advances it.
    pub version: u64,
}

/// The user item as stored: the profile and the grant flattened into optional attributes.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct UserItem {
    pub openid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sex: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headimgurl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privilege: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_fetched_at_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_scope: Option<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_access_token_expires_at_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_refresh_token_expires_at_s: Option<i64>,
    pub created_at_s: i64,
    pub updated_at_s: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub session_epoch: u64,
    /// Absent (0) only on items written before versioning; every write stores at least 1.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Item for UserItem {
    const PREFIX: &'static str = "user#";
    fn ttl(&self) -> Option<i64> {
        None
    }
}

impl UserItem {
    pub fn from_user(user: &User) -> Self {
        let profile = user.profile.as_ref();
        let grant = user.grant.as_ref();
        Self {
            openid: user.openid.clone(),
            unionid: user.unionid.clone(),
            scope: user.scope,
            nickname: profile.map(|p| p.nickname.clone()),
            sex: profile.map(|p| p.sex),
            province: profile.map(|p| p.province.clone()),
            city: profile.map(|p| p.city.clone()),
            country: profile.map(|p| p.country.clone()),
            headimgurl: profile.map(|p| p.headimgurl.clone()),
            privilege: profile.map(|p| p.privilege.clone()),
            profile_fetched_at_s: profile.map(|p| p.fetched_at_s),
            sns_scope: grant.map(|g| g.scope),
            sns_access_token: grant.map(|g| g.access_token.expose().clone()),
            sns_access_token_expires_at_s: grant.map(|g| g.access_token_expires_at_s),
            sns_refresh_token: grant.map(|g| g.refresh_token.expose().clone()),
            sns_refresh_token_expires_at_s: grant.map(|g| g.refresh_token_expires_at_s),
            created_at_s: user.created_at_s,
            updated_at_s: user.updated_at_s,
            session_epoch: user.session_epoch,
            version: user.version,
        }
    }

    pub fn into_user(self) -> Result<User, StoreError> {
        // A profile is stored whole or not at all; `profile_fetched_at_s` marks its presence.
        let profile = self.profile_fetched_at_s.map(|fetched_at_s| Profile {
            nickname: self.nickname.unwrap_or_default(),
            sex: self.sex.unwrap_or_default(),
            province: self.province.unwrap_or_default(),
            city: self.city.unwrap_or_default(),
            country: self.country.unwrap_or_default(),
            headimgurl: self.headimgurl.unwrap_or_default(),
            privilege: self.privilege.unwrap_or_default(),
            fetched_at_s,
        });
        let grant = match (
            self.sns_scope,
            self.sns_access_token,
            self.sns_access_token_expires_at_s,
            self.sns_refresh_token,
            self.sns_refresh_token_expires_at_s,
        ) {
            (None, None, None, None, None) => None,
            (Some(scope), Some(access), Some(access_exp), Some(refresh), Some(refresh_exp)) => {
                Some(SnsGrant {
                    scope,
                    access_token: Secret::new(access),
                    access_token_expires_at_s: access_exp,
                    refresh_token: Secret::new(refresh),
                    refresh_token_expires_at_s: refresh_exp,
                })
            }
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "{}: incomplete sns grant",
                    key::<Self>(&self.openid)
                )));
            }
        };
        Ok(User {
            openid: self.openid,
            unionid: self.unionid,
            scope: self.scope,
            profile,
            grant,
            created_at_s: self.created_at_s,
            updated_at_s: self.updated_at_s,
            session_epoch: self.session_epoch,
            version: self.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            openid: "o6_bmjrPTlm6_2sgVt7hMZOPfL2M".into(),
            unionid: Some("union-1".into()),
            scope: Scope::UserInfo,
            profile: Some(Profile {
                nickname: "小明🐼".into(),
                sex: 1,
                province: "广东".into(),
                city: "深圳".into(),
                country: "中国".into(),
                headimgurl: "https://thirdwx.qlogo.cn/x/132".into(),
                privilege: vec!["chinaunicom".into()],
                fetched_at_s: 100,
            }),
            grant: Some(SnsGrant {
                scope: Scope::UserInfo,
                access_token: Secret::new("at".into()),
                access_token_expires_at_s: 7300,
                refresh_token: Secret::new("rt".into()),
                refresh_token_expires_at_s: 2_592_100,
            }),
            created_at_s: 100,
            updated_at_s: 100,
            session_epoch: 2,
            version: 7,
        }
    }

    #[test]
    fn user_survives_the_item_round_trip() {
        let original = user();
        let back = UserItem::from_user(&original).into_user().unwrap();
        assert_eq!(back, original);
        let base_only = User {
            profile: None,
            grant: None,
            unionid: None,
            scope: Scope::Base,
            ..original
        };
        assert_eq!(
            UserItem::from_user(&base_only).into_user().unwrap(),
            base_only
        );
    }

    #[test]
    fn an_incomplete_grant_is_corrupt_not_silently_dropped() {
        let mut item = UserItem::from_user(&user());
        item.sns_refresh_token = None;
        assert!(matches!(item.into_user(), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn an_unknown_scope_is_refused_when_read() {
        let mut stored = serde_json::to_value(UserItem::from_user(&user())).unwrap();
        stored["sns_scope"] = "snsapi_login".into();
        assert!(serde_json::from_value::<UserItem>(stored).is_err());
    }
}

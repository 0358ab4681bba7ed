//! Storage ports of web authorization: pending sign-in `state`s (`oauth_state#<state>`) and users
//! (`user#<openid>`), plus the one item layout both adapters store.
//!
//! State item: `pk`, `browser_hash` (hex SHA-256 of the browser binding cookie), `scope`,
//! `return_to`, `attempt`, `created_at_s`, `expires_at_s`, `ttl` (= `expires_at_s`), `status`
//! (`pending` → `consumed` → `completed`), `consumed_at_s`, `openid` (once completed).
//!
//! User item: `pk`, `openid`, `unionid`, `scope`, profile fields (`nickname`, `sex`, `province`,
//! `city`, `country`, `headimgurl`, `privilege`, `profile_fetched_at_s`), the sns grant
//! (`sns_scope`, `sns_access_token`, `sns_access_token_expires_at_s`, `sns_refresh_token`,
//! `sns_refresh_token_expires_at_s`), `created_at_s`, `updated_at_s`. No `ttl`: users are kept.
//! All times are epoch seconds.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::oauth::Scope;
use crate::store::StoreError;

pub const STATE_KEY_PREFIX: &str = "oauth_state#";
pub const USER_KEY_PREFIX: &str = "user#";

pub fn state_key(state: &str) -> String {
    format!("{STATE_KEY_PREFIX}{state}")
}

pub fn user_key(openid: &str) -> String {
    format!("{USER_KEY_PREFIX}{openid}")
}

/// Where a sign-in `state` is in its single use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateStatus {
    /// Issued by `/oauth/authorize`, waiting for its callback.
    Pending,
    /// A callback took it and is exchanging (or has failed to use) the code.
    Consumed,
    /// The callback signed this user in; a replay from the same browser may re-issue the session.
    Completed { openid: String },
}

/// A sign-in `state` and what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthState {
    pub state: String,
    /// Hex SHA-256 of the browser binding cookie; the cookie itself is never stored.
    pub browser_hash: String,
    pub scope: Scope,
    pub return_to: String,
    /// 1 for a flow the user started, 2 for the one automatic restart after a rejected code.
    pub attempt: u8,
    pub created_at_s: i64,
    pub expires_at_s: i64,
    pub status: StateStatus,
}

/// The answer to inserting a new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateInsert {
    Inserted,
    /// An item with this key exists already (only with a broken random source).
    Collision,
}

/// The answer to a conditional state transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Applied,
    /// The state was absent, expired or not in the expected status: someone else moved it.
    Lost,
}

/// Sign-in states. Every read treats an item past `expires_at_s` as absent.
pub trait OAuthStateStore: Send + Sync {
    /// Insert a new state if no item has its key.
    fn insert_state(
        &self,
        state: &AuthState,
    ) -> impl Future<Output = Result<StateInsert, StoreError>> + Send;

    /// The state, if present and unexpired at `now_s`.
    fn get_state(
        &self,
        state: &str,
        now_s: i64,
    ) -> impl Future<Output = Result<Option<AuthState>, StoreError>> + Send;

    /// `pending` and unexpired → `consumed`, exactly once.
    fn consume_state(
        &self,
        state: &str,
        now_s: i64,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;

    /// `consumed` and unexpired → `pending` again: the code was not used, so the callback may be retried.
    fn release_state(
        &self,
        state: &str,
        now_s: i64,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;

    /// `consumed` → `completed` by `openid`, so a replayed callback can re-issue the session.
    fn complete_state(
        &self,
        state: &str,
        openid: &str,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
}

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
}

/// Users by openid.
pub trait UserStore: Send + Sync {
    fn get_user(
        &self,
        openid: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// Insert or replace the whole user item (merging is the directory's job).
    fn put_user(&self, user: &User) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The state item as both adapters store it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StateItem {
    pub pk: String,
    pub browser_hash: String,
    pub scope: String,
    pub return_to: String,
    pub attempt: u8,
    pub created_at_s: i64,
    pub expires_at_s: i64,
    pub ttl: i64,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed_at_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
}

pub(crate) const STATUS_PENDING: &str = "pending";
pub(crate) const STATUS_CONSUMED: &str = "consumed";
pub(crate) const STATUS_COMPLETED: &str = "completed";

impl StateItem {
    pub fn from_state(state: &AuthState) -> Self {
        let (status, openid) = match &state.status {
            StateStatus::Pending => (STATUS_PENDING, None),
            StateStatus::Consumed => (STATUS_CONSUMED, None),
            StateStatus::Completed { openid } => (STATUS_COMPLETED, Some(openid.clone())),
        };
        Self {
            pk: state_key(&state.state),
            browser_hash: state.browser_hash.clone(),
            scope: state.scope.as_str().to_string(),
            return_to: state.return_to.clone(),
            attempt: state.attempt,
            created_at_s: state.created_at_s,
            expires_at_s: state.expires_at_s,
            ttl: state.expires_at_s,
            status: status.to_string(),
            consumed_at_s: None,
            openid,
        }
    }

    /// The state, or `None` when expired at `now_s` (TTL deletion is lazy).
    pub fn into_state(self, now_s: i64) -> Result<Option<AuthState>, StoreError> {
        if self.expires_at_s <= now_s || self.ttl <= now_s {
            return Ok(None);
        }
        let corrupt = |what: &str| StoreError::Corrupt(format!("{}: {what}", self.pk));
        let state = self
            .pk
            .strip_prefix(STATE_KEY_PREFIX)
            .ok_or_else(|| corrupt("not a state key"))?
            .to_string();
        let scope = Scope::parse(&self.scope).ok_or_else(|| corrupt("unknown scope"))?;
        let status = match (self.status.as_str(), self.openid) {
            (STATUS_PENDING, _) => StateStatus::Pending,
            (STATUS_CONSUMED, _) => StateStatus::Consumed,
            (STATUS_COMPLETED, Some(openid)) => StateStatus::Completed { openid },
            _ => return Err(corrupt("unknown status")),
        };
        Ok(Some(AuthState {
            state,
            browser_hash: self.browser_hash,
            scope,
            return_to: self.return_to,
            attempt: self.attempt,
            created_at_s: self.created_at_s,
            expires_at_s: self.expires_at_s,
            status,
        }))
    }
}

/// The user item as both adapters store it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct UserItem {
    pub pk: String,
    pub openid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    pub scope: String,
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
    pub sns_scope: Option<String>,
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
}

impl UserItem {
    pub fn from_user(user: &User) -> Self {
        let profile = user.profile.as_ref();
        let grant = user.grant.as_ref();
        Self {
            pk: user_key(&user.openid),
            openid: user.openid.clone(),
            unionid: user.unionid.clone(),
            scope: user.scope.as_str().to_string(),
            nickname: profile.map(|p| p.nickname.clone()),
            sex: profile.map(|p| p.sex),
            province: profile.map(|p| p.province.clone()),
            city: profile.map(|p| p.city.clone()),
            country: profile.map(|p| p.country.clone()),
            headimgurl: profile.map(|p| p.headimgurl.clone()),
            privilege: profile.map(|p| p.privilege.clone()),
            profile_fetched_at_s: profile.map(|p| p.fetched_at_s),
            sns_scope: grant.map(|g| g.scope.as_str().to_string()),
            sns_access_token: grant.map(|g| g.access_token.expose().clone()),
            sns_access_token_expires_at_s: grant.map(|g| g.access_token_expires_at_s),
            sns_refresh_token: grant.map(|g| g.refresh_token.expose().clone()),
            sns_refresh_token_expires_at_s: grant.map(|g| g.refresh_token_expires_at_s),
            created_at_s: user.created_at_s,
            updated_at_s: user.updated_at_s,
        }
    }

    pub fn into_user(self) -> Result<User, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("{}: {what}", self.pk));
        let scope = Scope::parse(&self.scope).ok_or_else(|| corrupt("unknown scope"))?;
        // A profile is stored whole or not at all; `profile_fetched_at_s` marks its presence.
        let profile = match self.profile_fetched_at_s {
            None => None,
            Some(fetched_at_s) => Some(Profile {
                nickname: self.nickname.clone().unwrap_or_default(),
                sex: self.sex.unwrap_or_default(),
                province: self.province.clone().unwrap_or_default(),
                city: self.city.clone().unwrap_or_default(),
                country: self.country.clone().unwrap_or_default(),
                headimgurl: self.headimgurl.clone().unwrap_or_default(),
                privilege: self.privilege.clone().unwrap_or_default(),
                fetched_at_s,
            }),
        };
        let grant = match (
            self.sns_scope.as_deref(),
            self.sns_access_token.clone(),
            self.sns_access_token_expires_at_s,
            self.sns_refresh_token.clone(),
            self.sns_refresh_token_expires_at_s,
        ) {
            (None, None, None, None, None) => None,
            (Some(sns_scope), Some(access), Some(access_exp), Some(refresh), Some(refresh_exp)) => {
                Some(SnsGrant {
                    scope: Scope::parse(sns_scope).ok_or_else(|| corrupt("unknown sns_scope"))?,
                    access_token: Secret::new(access),
                    access_token_expires_at_s: access_exp,
                    refresh_token: Secret::new(refresh),
                    refresh_token_expires_at_s: refresh_exp,
                })
            }
            _ => return Err(corrupt("incomplete sns grant")),
        };
        Ok(User {
            openid: self.openid,
            unionid: self.unionid,
            scope,
            profile,
            grant,
            created_at_s: self.created_at_s,
            updated_at_s: self.updated_at_s,
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
    fn an_expired_state_reads_as_absent() {
        let state = AuthState {
            state: "ab".into(),
            browser_hash: "h".into(),
            scope: Scope::Base,
            return_to: "/".into(),
            attempt: 1,
            created_at_s: 0,
            expires_at_s: 600,
            status: StateStatus::Completed {
                openid: "o1".into(),
            },
        };
        let item = StateItem::from_state(&state);
        assert_eq!(item.pk, "oauth_state#ab");
        assert_eq!(item.clone().into_state(599).unwrap(), Some(state));
        assert_eq!(item.into_state(600).unwrap(), None);
    }
}

//! The user directory: who signed in, with which profile, and keeping that profile fresh.
//!
//! This is the API later features call: [`UserDirectory::get`] (as stored),
//! [`UserDirectory::current`] (refreshed first when older than `OAUTH_PROFILE_MAX_AGE_SECS`,
//! best-effort) and [`UserDirectory::refresh_profile`] (now). A refresh uses the stored
//! `snsapi_userinfo` grant: an expired access token is renewed with the refresh token first, and
//! when WeChat rejects the refresh token (40030/42002) the grant is dropped and the profile stays
//! as it was until the user signs in with `snsapi_userinfo` again. WeChat being unreachable never
//! fails a read: the stored profile is served and the failure is logged.
//!
//! Every write is a compare-and-swap on the user item's version: a sign-in that loses a race
//! merges into the newer item and tries again; a profile refresh that loses one keeps the newer
//! item (it may hold a newer grant) and serves that. Sessions are revoked by bumping the user's
//! session epoch ([`UserDirectory::revoke_sessions`]). Logs name users by a short hash only.

use std::sync::Arc;

use table::StoreError;
use wechat_api::ApiError;
use wechat_protocol::secret::fingerprint;

use crate::clock::Clock;
use crate::oauth::Scope;
use crate::oauth::sns::{Authorization, SnsClient, is_refresh_token_rejected};
use crate::oauth::store::{UserStore, UserWrite};
use crate::oauth::user::{Profile, SnsGrant, User};

/// An access token this close to its expiry is renewed before use.
const ACCESS_TOKEN_EARLY_RENEWAL_S: i64 = 60;
/// Read-merge-write rounds before a write that keeps losing races gives up.
const MAX_WRITE_ATTEMPTS: usize = 4;

/// Where a user's profile stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileStatus {
    /// Younger than the maximum age (possibly just refreshed).
    Fresh,
    /// The user only ever signed in with `snsapi_base`: there is no profile to show.
    NotShared,
    /// Stale, and the stored grant can refresh it (before a refresh is tried).
    Stale,
    /// Stale, and only a new `snsapi_userinfo` sign-in can refresh it.
    NeedsConsent,
    /// Stale, and WeChat could not be asked just now; the stored profile is served.
    StaleUnavailable,
}

/// Why a sign-in could not be recorded. Nothing was written in any case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// The authorization is a snapshot-page (快照页模式) virtual account's: nothing is stored.
    #[error("a snapshot-page virtual account is never signed in")]
    SnapshotUser,
    #[error("reading the profile from WeChat failed: {0}")]
    WeChat(ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Users by openid, backed by a [`UserStore`] and the sns API.
pub struct UserDirectory<S> {
    store: S,
    sns: SnsClient,
    clock: Arc<dyn Clock>,
    profile_max_age_s: i64,
}

impl<S: UserStore> UserDirectory<S> {
    pub fn new(store: S, sns: SnsClient, clock: Arc<dyn Clock>, profile_max_age_s: i64) -> Self {
        Self {
            store,
            sns,
            clock,
            profile_max_age_s,
        }
    }

    /// The user as stored, without calling WeChat.
    pub async fn get(&self, openid: &str) -> Result<Option<User>, StoreError> {
        self.store.get_user(openid).await
    }

    /// The user, with the profile refreshed first if it is stale and can be refreshed.
    pub async fn current(&self, openid: &str) -> Result<Option<(User, ProfileStatus)>, StoreError> {
        let Some(user) = self.store.get_user(openid).await? else {
            return Ok(None);
        };
        self.refreshed(user).await.map(Some)
    }

    /// The user a session of `session_epoch` names, refreshed like [`Self::current`]; `None`
    /// when the user is unknown or the session was revoked (an older epoch).
    pub async fn current_for_session(
        &self,
        openid: &str,
        session_epoch: u64,
    ) -> Result<Option<(User, ProfileStatus)>, StoreError> {
        match self.store.get_user(openid).await? {
            Some(user) if user.session_epoch == session_epoch => {
                self.refreshed(user).await.map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Sign the user out of every browser: sessions issued before now stop being accepted.
    /// Returns the new epoch, or `None` for an unknown user.
    pub async fn revoke_sessions(&self, openid: &str) -> Result<Option<u64>, StoreError> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let Some(mut user) = self.store.get_user(openid).await? else {
                return Ok(None);
            };
            user.session_epoch = user.session_epoch.saturating_add(1);
            if self.store.put_user(&mut user).await? == UserWrite::Applied {
                tracing::info!(user = %fingerprint(openid), epoch = user.session_epoch, "sessions revoked");
                return Ok(Some(user.session_epoch));
            }
        }
        Err(contended(openid))
    }

    async fn refreshed(&self, mut user: User) -> Result<(User, ProfileStatus), StoreError> {
        let now_s = self.clock.now_s();
        let status = match self.status(&user, now_s) {
            // `NeedsConsent` too: an expired grant is dropped, without calling WeChat.
            ProfileStatus::Stale | ProfileStatus::NeedsConsent => {
                self.refresh_and_save(&mut user, now_s).await?
            }
            settled => settled,
        };
        Ok((user, status))
    }

    /// Refresh the profile now, whatever its age.
    pub async fn refresh_profile(
        &self,
        mut user: User,
    ) -> Result<(User, ProfileStatus), StoreError> {
        let now_s = self.clock.now_s();
        let status = self.refresh_and_save(&mut user, now_s).await?;
        Ok((user, status))
    }

    /// Record a sign-in: for `snsapi_userinfo`, read the profile first (a failure writes
    /// nothing); then merge into the stored user and save the whole item once. A snapshot-page
    /// virtual account ([`Authorization::snapshot_user`]) is refused before anything is read or
    /// written.
    pub async fn sign_in(&self, authorization: Authorization) -> Result<User, SignInError> {
        let now_s = self.clock.now_s();
        let Authorization {
            openid,
            unionid,
            grant,
            snapshot_user,
        } = authorization;
        if snapshot_user {
            return Err(SignInError::SnapshotUser);
        }
        let fetched = match grant.scope {
            Scope::UserInfo => Some(
                self.sns
                    .userinfo(&grant.access_token, &openid, now_s)
                    .await
                    .map_err(SignInError::WeChat)?,
            ),
            Scope::Base => None,
        };
        let (profile, profile_unionid) = fetched.map_or((None, None), |(p, u)| (Some(p), u));
        let unionid = unionid.or(profile_unionid);
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            let existing = self.store.get_user(&openid).await?;
            let mut user = merge(
                existing,
                &openid,
                unionid.clone(),
                grant.clone(),
                profile.clone(),
                now_s,
            );
            if attempt == 0 && self.status(&user, now_s) == ProfileStatus::Stale {
                // A silent sign-in is a good moment to refresh a stale profile; it must not fail the sign-in.
                self.refresh_in_memory(&mut user, now_s).await;
            }
            match self.store.put_user(&mut user).await? {
                UserWrite::Applied => return Ok(user),
                // The newest grant is this one: merge it into what was written meanwhile.
                UserWrite::Conflict => {
                    tracing::info!(user = %fingerprint(&openid), "user changed while signing in; merging again")
                }
            }
        }
        Err(SignInError::Store(contended(&openid)))
    }

    /// Where the stored profile stands at `now_s`, before any refresh.
    pub fn status(&self, user: &User, now_s: i64) -> ProfileStatus {
        match &user.profile {
            None if user.scope == Scope::Base => ProfileStatus::NotShared,
            Some(p) if p.fetched_at_s.saturating_add(self.profile_max_age_s) > now_s => {
                ProfileStatus::Fresh
            }
            _ if usable_grant(user, now_s).is_some() => ProfileStatus::Stale,
            _ => ProfileStatus::NeedsConsent,
        }
    }

    async fn refresh_and_save(
        &self,
        user: &mut User,
        now_s: i64,
    ) -> Result<ProfileStatus, StoreError> {
        let (status, changed) = self.refresh_in_memory(user, now_s).await;
        if !changed || self.store.put_user(user).await? == UserWrite::Applied {
            return Ok(status);
        }
        // Lost to a newer write (a sign-in with a newer grant): never overwrite it; serve it.
        tracing::info!(user = %fingerprint(&user.openid), "profile refresh lost to a newer write; keeping the newer user");
        match self.store.get_user(&user.openid).await? {
            Some(newer) => {
                *user = newer;
                Ok(self.status(user, now_s))
            }
            None => Ok(status),
        }
    }

    /// Refresh `user` in place; returns the outcome and whether `user` changed. An access token
    /// about to expire is renewed before the call; one WeChat rejects is renewed once after it.
    async fn refresh_in_memory(&self, user: &mut User, now_s: i64) -> (ProfileStatus, bool) {
        let Some(grant) = usable_grant(user, now_s) else {
            return drop_dead_grant(user, now_s);
        };
        let renew_first = grant.access_token_expires_at_s <= now_s + ACCESS_TOKEN_EARLY_RENEWAL_S;
        let grant = if renew_first {
            match self.renew(user, &grant, now_s).await {
                Ok(renewed) => renewed,
                Err(status) => return renewal_failed(status),
            }
        } else {
            grant
        };
        match self.fetch_profile(user, &grant, now_s).await {
            Err(err) if err.is_access_token_invalid() && !renew_first => {
                self.renew_and_fetch_profile(user, &grant, now_s).await
            }
            fetched => profile_outcome(user, fetched, renew_first),
        }
    }

    /// The access token was rejected: renew it and read the profile once more.
    async fn renew_and_fetch_profile(
        &self,
        user: &mut User,
        grant: &SnsGrant,
        now_s: i64,
    ) -> (ProfileStatus, bool) {
        match self.renew(user, grant, now_s).await {
            Ok(renewed) => {
                let fetched = self.fetch_profile(user, &renewed, now_s).await;
                profile_outcome(user, fetched, true)
            }
            Err(status) => renewal_failed(status),
        }
    }

    /// Read the profile with `grant` into `user`.
    async fn fetch_profile(
        &self,
        user: &mut User,
        grant: &SnsGrant,
        now_s: i64,
    ) -> Result<(), ApiError> {
        let (profile, unionid) = self
            .sns
            .userinfo(&grant.access_token, &user.openid, now_s)
            .await?;
        user.profile = Some(profile);
        if unionid.is_some() {
            user.unionid = unionid;
        }
        user.updated_at_s = now_s;
        tracing::info!(user = %fingerprint(&user.openid), "profile refreshed");
        Ok(())
    }

    /// Renew the access token; on success the new grant is stored in `user`.
    async fn renew(
        &self,
        user: &mut User,
        grant: &SnsGrant,
        now_s: i64,
    ) -> Result<SnsGrant, ProfileStatus> {
        match self.sns.refresh(grant, now_s).await {
            Ok(renewed) => {
                user.grant = Some(renewed.clone());
                user.updated_at_s = now_s;
                Ok(renewed)
            }
            Err(err) if is_refresh_token_rejected(&err) => {
                tracing::info!(user = %fingerprint(&user.openid), error = %err, "refresh token rejected; the profile needs a new snsapi_userinfo sign-in");
                drop_grant(user, now_s);
                Err(ProfileStatus::NeedsConsent)
            }
            Err(err) => {
                tracing::warn!(user = %fingerprint(&user.openid), error = %err, "sns token refresh failed; serving the stored profile");
                Err(ProfileStatus::StaleUnavailable)
            }
        }
    }
}

fn contended(openid: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "user {} kept changing during {MAX_WRITE_ATTEMPTS} write attempts",
        fingerprint(openid)
    ))
}

/// The stored `snsapi_userinfo` grant, while its refresh token has not expired.
fn usable_grant(user: &User, now_s: i64) -> Option<SnsGrant> {
    user.grant
        .clone()
        .filter(|g| g.scope == Scope::UserInfo && g.refresh_token_expires_at_s > now_s)
}

fn drop_grant(user: &mut User, now_s: i64) {
    user.grant = None;
    user.updated_at_s = now_s;
}

/// No usable grant: drop a `snsapi_userinfo` grant whose refresh token has expired (a change to
/// save) and say what the user must do.
fn drop_dead_grant(user: &mut User, now_s: i64) -> (ProfileStatus, bool) {
    let dead = user
        .grant
        .as_ref()
        .is_some_and(|g| g.scope == Scope::UserInfo && g.refresh_token_expires_at_s <= now_s);
    if dead {
        drop_grant(user, now_s);
    }
    let status = if user.scope == Scope::Base && user.profile.is_none() {
        ProfileStatus::NotShared
    } else {
        ProfileStatus::NeedsConsent
    };
    (status, dead)
}

/// Renewing failed: a rejected refresh token dropped the grant, which must be saved.
fn renewal_failed(status: ProfileStatus) -> (ProfileStatus, bool) {
    (status, status == ProfileStatus::NeedsConsent)
}

/// The outcome of reading the profile; `renewed`: the grant in `user` changed before the read.
fn profile_outcome(
    user: &User,
    fetched: Result<(), ApiError>,
    renewed: bool,
) -> (ProfileStatus, bool) {
    match fetched {
        Ok(()) => (ProfileStatus::Fresh, true),
        Err(err) => {
            tracing::warn!(user = %fingerprint(&user.openid), error = %err, "profile refresh failed; serving the stored profile");
            (ProfileStatus::StaleUnavailable, renewed)
        }
    }
}

/// The user after this sign-in. A `snsapi_base` sign-in keeps a still-refreshable
/// `snsapi_userinfo` grant (its tokens can read the profile; the new ones cannot).
fn merge(
    existing: Option<User>,
    openid: &str,
    unionid: Option<String>,
    grant: SnsGrant,
    profile: Option<Profile>,
    now_s: i64,
) -> User {
    let Some(mut user) = existing else {
        return User {
            openid: openid.to_string(),
            unionid,
            scope: grant.scope,
            profile,
            grant: Some(grant),
            created_at_s: now_s,
            updated_at_s: now_s,
            session_epoch: 0,
            version: 0,
        };
    };
    if unionid.is_some() {
        user.unionid = unionid;
    }
    let keep_stored_grant = grant.scope == Scope::Base && usable_grant(&user, now_s).is_some();
    if grant.scope == Scope::UserInfo {
        user.scope = Scope::UserInfo;
    }
    if !keep_stored_grant {
        user.grant = Some(grant);
    }
    if profile.is_some() {
        user.profile = profile;
    }
    user.updated_at_s = now_s;
    user
}

#[cfg(test)]
mod tests {
    use super::*;
    use wechat_protocol::secret::Secret;

    fn grant(scope: Scope, token: &str, refresh_expires_at_s: i64) -> SnsGrant {
        SnsGrant {
            scope,
            access_token: Secret::new(format!("at-{token}")),
            access_token_expires_at_s: 7_200,
            refresh_token: Secret::new(format!("rt-{token}")),
            refresh_token_expires_at_s: refresh_expires_at_s,
        }
    }

    fn profile(nickname: &str) -> Profile {
        Profile {
            nickname: nickname.into(),
            sex: 0,
            province: String::new(),
            city: String::new(),
            country: String::new(),
            headimgurl: String::new(),
            privilege: vec![],
            fetched_at_s: 0,
        }
    }

    #[test]
    fn a_base_sign_in_keeps_a_refreshable_userinfo_grant_and_the_profile() {
        let first = merge(
            None,
            "o1",
            None,
            grant(Scope::UserInfo, "1", 1_000),
            Some(profile("小明")),
            0,
        );
        let second = merge(
            Some(first),
            "o1",
            Some("u1".into()),
            grant(Scope::Base, "2", 2_000),
            None,
            10,
        );
        assert_eq!(second.scope, Scope::UserInfo);
        assert_eq!(second.profile, Some(profile("小明")));
        assert_eq!(second.grant.unwrap().access_token.expose(), "at-1");
        assert_eq!(second.unionid.as_deref(), Some("u1"));
        assert_eq!((second.created_at_s, second.updated_at_s), (0, 10));
    }

    #[test]
    fn a_base_sign_in_replaces_a_dead_userinfo_grant() {
        let first = merge(
            None,
            "o1",
            None,
            grant(Scope::UserInfo, "1", 5),
            Some(profile("小明")),
            0,
        );
        let second = merge(
            Some(first),
            "o1",
            None,
            grant(Scope::Base, "2", 2_000),
            None,
            10,
        );
        let stored = second.grant.unwrap();
        assert_eq!(stored.scope, Scope::Base);
        assert_eq!(stored.access_token.expose(), "at-2");
        assert_eq!(second.profile, Some(profile("小明")));
    }
}

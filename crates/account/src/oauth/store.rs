//! Storage ports of web authorization, implemented once over the table kernel for every
//! [`Table`]: pending sign-in `state`s (`oauth_state#<state>`) and users (`user#<openid>`). The
//! items are defined by the domain in `crate::oauth::state` and `crate::oauth::user`, and
//! re-exported here as the ports' vocabulary.

use std::future::Future;

use table::StoreError;
use table::{Condition, TTL, Table, Transition, Update, VERSION, WriteOutcome};

use crate::oauth::state::{StateItem, Status};
use crate::oauth::user::UserItem;

pub use crate::oauth::state::{AuthState, StateStatus};
pub use crate::oauth::user::{Profile, SnsGrant, User};

/// The answer to inserting a new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateInsert {
    Inserted,
    /// An item with this key exists already (only with a broken random source).
    Collision,
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

    /// `consumed` → `completed` by `openid`, so a replayed callback can re-issue the session,
    /// and expiring at `replayable_until_s` (a few seconds: the double-callback case, not a
    /// Back button on a shared device).
    fn complete_state(
        &self,
        state: &str,
        openid: &str,
        replayable_until_s: i64,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;
}

/// The state is in `status` and, at `now_s`, unexpired.
fn live_in(status: Status, now_s: i64) -> Condition {
    Condition::All(vec![
        Condition::equals(StateItem::STATUS, status),
        Condition::Above(StateItem::EXPIRES_AT_S, now_s),
        Condition::Above(TTL, now_s),
    ])
}

impl<T: Table> OAuthStateStore for T {
    async fn insert_state(&self, state: &AuthState) -> Result<StateInsert, StoreError> {
        let item = StateItem::from_state(state);
        Ok(
            match self
                .put(&state.state, &item, Some(Condition::Absent))
                .await?
            {
                WriteOutcome::Applied => StateInsert::Inserted,
                WriteOutcome::ConditionFailed => StateInsert::Collision,
            },
        )
    }

    async fn get_state(&self, state: &str, now_s: i64) -> Result<Option<AuthState>, StoreError> {
        match self.get::<StateItem>(state).await? {
            None => Ok(None),
            Some(item) => item.into_state(state, now_s),
        }
    }

    async fn consume_state(&self, state: &str, now_s: i64) -> Result<Transition, StoreError> {
        let update = Update::new()
            .set(StateItem::STATUS, Status::Consumed)
            .set(StateItem::CONSUMED_AT_S, now_s);
        let condition = live_in(Status::Pending, now_s);
        Ok(self
            .update::<StateItem>(state, update, condition)
            .await?
            .into())
    }

    async fn release_state(&self, state: &str, now_s: i64) -> Result<Transition, StoreError> {
        let update = Update::new()
            .set(StateItem::STATUS, Status::Pending)
            .remove(StateItem::CONSUMED_AT_S);
        let condition = live_in(Status::Consumed, now_s);
        Ok(self
            .update::<StateItem>(state, update, condition)
            .await?
            .into())
    }

    async fn complete_state(
        &self,
        state: &str,
        openid: &str,
        replayable_until_s: i64,
    ) -> Result<Transition, StoreError> {
        let update = Update::new()
            .set(StateItem::STATUS, Status::Completed)
            .set(StateItem::OPENID, openid)
            .set(StateItem::EXPIRES_AT_S, replayable_until_s)
            .set(TTL, replayable_until_s);
        let condition = Condition::equals(StateItem::STATUS, Status::Consumed);
        Ok(self
            .update::<StateItem>(state, update, condition)
            .await?
            .into())
    }
}

/// The answer to writing a user item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserWrite {
    /// Written; the user's `version` now names the stored item.
    Applied,
    /// The stored item is no longer the version the user was read at: nothing was written.
    Conflict,
}

/// Users by openid.
pub trait UserStore: Send + Sync {
    fn get_user(
        &self,
        openid: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// Replace the whole user item if it is still at `user.version` (compare-and-swap; 0: no
    /// item, or one written before versioning), then advance `user.version`. Merging is the
    /// directory's job; a [`UserWrite::Conflict`] means re-read and merge again.
    fn put_user(
        &self,
        user: &mut User,
    ) -> impl Future<Output = Result<UserWrite, StoreError>> + Send;
}

impl<T: Table> UserStore for T {
    async fn get_user(&self, openid: &str) -> Result<Option<User>, StoreError> {
        self.get::<UserItem>(openid)
            .await?
            .map(UserItem::into_user)
            .transpose()
    }

    async fn put_user(&self, user: &mut User) -> Result<UserWrite, StoreError> {
        let next = user.version.checked_add(1).ok_or_else(|| {
            StoreError::Corrupt(format!("user#{}: version overflow", user.openid))
        })?;
        let mut item = UserItem::from_user(user);
        item.version = next;
        // Version 0 also matches an item stored before versioning (it has no attribute).
        let condition = match user.version {
            0 => Condition::Missing(VERSION),
            current => Condition::equals(VERSION, current),
        };
        match self.put(&user.openid, &item, Some(condition)).await? {
            WriteOutcome::Applied => {
                user.version = next;
                Ok(UserWrite::Applied)
            }
            WriteOutcome::ConditionFailed => Ok(UserWrite::Conflict),
        }
    }
}

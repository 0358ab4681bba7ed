//! Embedded adapter of the web-authorization ports: the same items and the same conditional
//! transitions as `crate::dynamo::oauth`, each done inside one `transact`.

use serde_json::Value;

use super::{EmbeddedStore, Items};
use crate::store::StoreError;
use crate::store::oauth::{
    AuthState, OAuthStateStore, STATUS_COMPLETED, STATUS_CONSUMED, STATUS_PENDING, StateInsert,
    StateItem, Transition, User, UserItem, UserStore, state_key, user_key,
};

fn to_value<T: serde::Serialize>(item: &T) -> Result<Value, StoreError> {
    serde_json::to_value(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn read_state_item(items: &Items, pk: &str) -> Result<Option<StateItem>, StoreError> {
    items
        .get(pk)
        .map(|v| {
            serde_json::from_value(v.clone()).map_err(|e| StoreError::Corrupt(format!("{pk}: {e}")))
        })
        .transpose()
}

impl EmbeddedStore {
    /// Move a state from `from` to `to` if it is present, unexpired (when `now_s` is given) and in `from`.
    fn transition_state(
        &self,
        state: &str,
        from: &str,
        now_s: Option<i64>,
        apply: impl FnOnce(&mut StateItem),
    ) -> Result<Transition, StoreError> {
        let pk = state_key(state);
        self.transact(|items| {
            let item = match read_state_item(items, &pk) {
                Ok(Some(item)) => item,
                Ok(None) => return (Ok(Transition::Lost), false),
                Err(e) => return (Err(e), false),
            };
            let unexpired = now_s.is_none_or(|now| item.expires_at_s > now && item.ttl > now);
            if item.status != from || !unexpired {
                return (Ok(Transition::Lost), false);
            }
            let mut item = item;
            apply(&mut item);
            match to_value(&item) {
                Ok(value) => {
                    items.insert(pk.clone(), value);
                    (Ok(Transition::Applied), true)
                }
                Err(e) => (Err(e), false),
            }
        })?
    }
}

impl OAuthStateStore for EmbeddedStore {
    async fn insert_state(&self, state: &AuthState) -> Result<StateInsert, StoreError> {
        let item = StateItem::from_state(state);
        let value = to_value(&item)?;
        self.transact(|items| {
            if items.contains_key(&item.pk) {
                (StateInsert::Collision, false)
            } else {
                items.insert(item.pk.clone(), value);
                (StateInsert::Inserted, true)
            }
        })
    }

    async fn get_state(&self, state: &str, now_s: i64) -> Result<Option<AuthState>, StoreError> {
        let pk = state_key(state);
        let item = self.transact(|items| (read_state_item(items, &pk), false))??;
        match item {
            Some(item) => item.into_state(now_s),
            None => Ok(None),
        }
    }

    async fn consume_state(&self, state: &str, now_s: i64) -> Result<Transition, StoreError> {
        self.transition_state(state, STATUS_PENDING, Some(now_s), |item| {
            item.status = STATUS_CONSUMED.into();
            item.consumed_at_s = Some(now_s);
        })
    }

    async fn release_state(&self, state: &str, now_s: i64) -> Result<Transition, StoreError> {
        self.transition_state(state, STATUS_CONSUMED, Some(now_s), |item| {
            item.status = STATUS_PENDING.into();
            item.consumed_at_s = None;
        })
    }

    async fn complete_state(&self, state: &str, openid: &str) -> Result<Transition, StoreError> {
        self.transition_state(state, STATUS_CONSUMED, None, |item| {
            item.status = STATUS_COMPLETED.into();
            item.openid = Some(openid.to_string());
        })
    }
}

impl UserStore for EmbeddedStore {
    async fn get_user(&self, openid: &str) -> Result<Option<User>, StoreError> {
        let pk = user_key(openid);
        match self.get(&pk)? {
            None => Ok(None),
            Some(value) => serde_json::from_value::<UserItem>(value)
                .map_err(|e| StoreError::Corrupt(format!("{pk}: {e}")))?
                .into_user()
                .map(Some),
        }
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        let item = UserItem::from_user(user);
        let value = to_value(&item)?;
        self.transact(|items| {
            items.insert(item.pk.clone(), value);
            ((), true)
        })
    }
}

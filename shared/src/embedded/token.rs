//! The token service's storage on the embedded store: the same items and conditions as the
//! DynamoDB adapter, each conditional write checked and applied inside one `transact`.

use serde_json::{Value, json};

use super::{EmbeddedStore, Items};
use crate::config::Secret;
use crate::store::StoreError;
use crate::store::token::{
    ConditionalWrite, Lease, LeaseAttempt, QuotaRecord, TokenRecord, TokenStore, lease_key,
    quota_key, token_key,
};

impl TokenStore for EmbeddedStore {
    async fn read_token(&self, app_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.get(&token_key(app_id))?
            .map(|item| token_from_item(&item))
            .transpose()
    }

    async fn write_token(
        &self,
        app_id: &str,
        record: &TokenRecord,
        replacing: Option<u64>,
    ) -> Result<ConditionalWrite, StoreError> {
        let pk = token_key(app_id);
        let item = json!({
            "pk": pk,
            "access_token": record.access_token.expose(),
            "expires_at_ms": record.expires_at_ms,
            "fetched_at_ms": record.fetched_at_ms,
            "version": record.version,
            "ttl": record.ttl_s(),
        });
        self.transact(|items| compare_and_swap(items, pk, item, replacing))
    }

    async fn try_acquire_lease(
        &self,
        app_id: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<LeaseAttempt, StoreError> {
        let pk = lease_key(app_id);
        self.transact(|items| {
            let held = items
                .get(&pk)
                .and_then(|item| number(item, "lease_until_ms"))
                .is_some_and(|until| until > now_ms);
            if held {
                return (LeaseAttempt::Held, false);
            }
            let item = json!({
                "pk": pk,
                "owner": owner,
                "lease_until_ms": until_ms,
                "ttl": Lease::ttl_s(until_ms),
            });
            items.insert(pk.clone(), item);
            (LeaseAttempt::Acquired, true)
        })
    }

    async fn release_lease(&self, app_id: &str, owner: &str) -> Result<(), StoreError> {
        let pk = lease_key(app_id);
        self.transact(|items| {
            let ours = items
                .get(&pk)
                .and_then(|item| item.get("owner"))
                .and_then(Value::as_str)
                == Some(owner);
            if ours {
                items.remove(&pk);
            }
            ((), ours)
        })
    }

    async fn read_lease(&self, app_id: &str) -> Result<Option<Lease>, StoreError> {
        let Some(item) = self.get(&lease_key(app_id))? else {
            return Ok(None);
        };
        Ok(Some(Lease {
            owner: string(&item, "owner")?,
            until_ms: required_number(&item, "lease_until_ms")?,
        }))
    }

    async fn read_quota(&self, app_id: &str) -> Result<Option<QuotaRecord>, StoreError> {
        let Some(item) = self.get(&quota_key(app_id))? else {
            return Ok(None);
        };
        Ok(Some(QuotaRecord {
            version: required_number(&item, "version")? as u64,
            force_day: required_number(&item, "force_day")?,
            force_count: required_number(&item, "force_count")? as u32,
            last_force_at_ms: required_number(&item, "last_force_at_ms")?,
            blocked_until_ms: required_number(&item, "blocked_until_ms")?,
        }))
    }

    async fn write_quota(
        &self,
        app_id: &str,
        record: &QuotaRecord,
        replacing: Option<u64>,
    ) -> Result<ConditionalWrite, StoreError> {
        let pk = quota_key(app_id);
        let item = json!({
            "pk": pk,
            "version": record.version,
            "force_day": record.force_day,
            "force_count": record.force_count,
            "last_force_at_ms": record.last_force_at_ms,
            "blocked_until_ms": record.blocked_until_ms,
            "ttl": record.ttl_s(),
        });
        self.transact(|items| compare_and_swap(items, pk, item, replacing))
    }
}

/// Write `item` under `pk` if the stored `version` is `replacing` (`None`: nothing stored).
fn compare_and_swap(
    items: &mut Items,
    pk: String,
    item: Value,
    replacing: Option<u64>,
) -> (ConditionalWrite, bool) {
    let stored_version = items
        .get(&pk)
        .map(|stored| stored.get("version").and_then(Value::as_u64));
    let matches = match (stored_version, replacing) {
        (None, None) => true,
        (Some(Some(stored)), Some(expected)) => stored == expected,
        _ => false,
    };
    if !matches {
        return (ConditionalWrite::Superseded, false);
    }
    items.insert(pk, item);
    (ConditionalWrite::Written, true)
}

fn token_from_item(item: &Value) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        access_token: Secret::new(string(item, "access_token")?),
        expires_at_ms: required_number(item, "expires_at_ms")?,
        fetched_at_ms: required_number(item, "fetched_at_ms")?,
        version: required_number(item, "version")? as u64,
    })
}

fn number(item: &Value, name: &str) -> Option<i64> {
    item.get(name).and_then(Value::as_i64)
}

fn required_number(item: &Value, name: &str) -> Result<i64, StoreError> {
    number(item, name)
        .ok_or_else(|| StoreError::Corrupt(format!("token service item lacks number {name}")))
}

fn string(item: &Value, name: &str) -> Result<String, StoreError> {
    item.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| StoreError::Corrupt(format!("token service item lacks string {name}")))
}

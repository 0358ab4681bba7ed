//! The token service's storage on DynamoDB: strongly consistent reads, and conditional puts whose
//! `ConditionalCheckFailedException` is the domain outcome "someone else got there first".

use aws_sdk_dynamodb::types::AttributeValue;

use super::{DynamoTable, Item, n, s, unavailable};
use crate::config::Secret;
use crate::store::StoreError;
use crate::store::token::{
    ConditionalWrite, Lease, LeaseAttempt, QuotaRecord, TokenRecord, TokenStore, lease_key,
    quota_key, token_key,
};

impl TokenStore for DynamoTable {
    async fn read_token(&self, app_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let Some(item) = self.read_item(&token_key(app_id)).await? else {
            return Ok(None);
        };
        Ok(Some(TokenRecord {
            access_token: Secret::new(string(&item, "access_token")?),
            expires_at_ms: number(&item, "expires_at_ms")?,
            fetched_at_ms: number(&item, "fetched_at_ms")?,
            version: number(&item, "version")?,
        }))
    }

    async fn write_token(
        &self,
        app_id: &str,
        record: &TokenRecord,
        replacing: Option<u64>,
    ) -> Result<ConditionalWrite, StoreError> {
        let item = Item::from([
            ("pk".into(), s(token_key(app_id))),
            ("access_token".into(), s(record.access_token.expose())),
            ("expires_at_ms".into(), n(record.expires_at_ms)),
            ("fetched_at_ms".into(), n(record.fetched_at_ms)),
            ("version".into(), n(record.version)),
            ("ttl".into(), n(record.ttl_s())),
        ]);
        compare_and_swap(self, item, replacing).await
    }

    async fn try_acquire_lease(
        &self,
        app_id: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<LeaseAttempt, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(lease_key(app_id)))
            .item("owner", s(owner))
            .item("lease_until_ms", n(until_ms))
            .item("ttl", n(Lease::ttl_s(until_ms)))
            .condition_expression("attribute_not_exists(pk) OR #until <= :now")
            .expression_attribute_names("#until", "lease_until_ms")
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(LeaseAttempt::Acquired),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(LeaseAttempt::Held)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn release_lease(&self, app_id: &str, owner: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(lease_key(app_id)))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone took the lease over after ours ran out: theirs now, leave it.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn read_lease(&self, app_id: &str) -> Result<Option<Lease>, StoreError> {
        let Some(item) = self.read_item(&lease_key(app_id)).await? else {
            return Ok(None);
        };
        Ok(Some(Lease {
            owner: string(&item, "owner")?,
            until_ms: number(&item, "lease_until_ms")?,
        }))
    }

    async fn read_quota(&self, app_id: &str) -> Result<Option<QuotaRecord>, StoreError> {
        let Some(item) = self.read_item(&quota_key(app_id)).await? else {
            return Ok(None);
        };
        Ok(Some(QuotaRecord {
            version: number(&item, "version")?,
            force_day: number(&item, "force_day")?,
            force_count: number(&item, "force_count")?,
            last_force_at_ms: number(&item, "last_force_at_ms")?,
            blocked_until_ms: number(&item, "blocked_until_ms")?,
        }))
    }

    async fn write_quota(
        &self,
        app_id: &str,
        record: &QuotaRecord,
        replacing: Option<u64>,
    ) -> Result<ConditionalWrite, StoreError> {
        let item = Item::from([
            ("pk".into(), s(quota_key(app_id))),
            ("version".into(), n(record.version)),
            ("force_day".into(), n(record.force_day)),
            ("force_count".into(), n(record.force_count)),
            ("last_force_at_ms".into(), n(record.last_force_at_ms)),
            ("blocked_until_ms".into(), n(record.blocked_until_ms)),
            ("ttl".into(), n(record.ttl_s())),
        ]);
        compare_and_swap(self, item, replacing).await
    }
}

/// Put `item` if the stored `version` is `replacing` (`None`: no item stored).
async fn compare_and_swap(
    table: &DynamoTable,
    item: Item,
    replacing: Option<u64>,
) -> Result<ConditionalWrite, StoreError> {
    let request = table
        .client
        .put_item()
        .table_name(&table.table)
        .set_item(Some(item));
    let request = match replacing {
        None => request.condition_expression("attribute_not_exists(pk)"),
        Some(version) => request
            .condition_expression("#version = :replacing")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":replacing", n(version)),
    };
    match request.send().await {
        Ok(_) => Ok(ConditionalWrite::Written),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(ConditionalWrite::Superseded)
        }
        Err(e) => Err(unavailable(e)),
    }
}

fn string(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(StoreError::Corrupt(format!(
            "token service item lacks string {name}"
        ))),
    }
}

fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("token service item has a bad {name}"))),
        _ => Err(StoreError::Corrupt(format!(
            "token service item lacks number {name}"
        ))),
    }
}

//! Storage port of the access_token service (which also keeps the jsapi_ticket), implemented once over the table kernel for every
//! [`Table`] (DynamoDB and the embedded store alike). The items are defined by the domain (`crate::token`,
//! file `token/stored.rs`) and re-exported here as the port's vocabulary.
//!
//! Leases and quota items are named by an id: the app id for the access_token's
//! (`lease#<app_id>`, `quota#<app_id>`), `ticket#<app_id>` for the jsapi_ticket's
//! ([`ticket_id`]), so each credential has its own lease and quota under the same key prefixes.
//!
//! Writes of the token, ticket and quota items are compare-and-swap on `version`: a writer states the
//! version it read (or that the item was absent), so a slower, older refresh can never overwrite
//! what a newer one wrote; the loser gets [`ConditionalWrite::Superseded`]. Expiry is judged by the
//! service against its clock, never by the store: an item whose time is past counts as absent
//! whether or not DynamoDB's lazy TTL deletion has removed it yet.

use std::future::Future;

use table::StoreError;
use table::{Condition, Item, Table, WriteOutcome};

pub use crate::token::{Lease, QuotaRecord, TTL_GRACE_S, TicketRecord, TokenRecord};

/// The id of the jsapi_ticket's lease and quota items: `ticket#<app_id>`.
pub fn ticket_id(app_id: &str) -> String {
    table::key::<TicketRecord>(app_id)
}

/// The result of a conditional (compare-and-swap) write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionalWrite {
    Written,
    /// The item changed since it was read: someone else wrote first, nothing was written.
    Superseded,
}

impl From<WriteOutcome> for ConditionalWrite {
    fn from(outcome: WriteOutcome) -> Self {
        match outcome {
            WriteOutcome::Applied => Self::Written,
            WriteOutcome::ConditionFailed => Self::Superseded,
        }
    }
}

/// The result of trying to take the refresh lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseAttempt {
    Acquired,
    /// Someone else holds an unexpired lease.
    Held,
}

/// The token service's storage, for any [`Table`].
pub trait TokenStore: Send + Sync {
    /// The token item, expired or not (the caller judges expiry).
    fn read_token(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send;

    /// Write `record` if the item's version is still `replacing` (`None`: the item must be absent).
    fn write_token(
        &self,
        app_id: &str,
        record: &TokenRecord,
        replacing: Option<u64>,
    ) -> impl Future<Output = Result<ConditionalWrite, StoreError>> + Send;

    /// The jsapi_ticket item, expired or not (the caller judges expiry).
    fn read_ticket(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<TicketRecord>, StoreError>> + Send;

    /// Write `record` if the item's version is still `replacing` (`None`: the item must be absent).
    fn write_ticket(
        &self,
        app_id: &str,
        record: &TicketRecord,
        replacing: Option<u64>,
    ) -> impl Future<Output = Result<ConditionalWrite, StoreError>> + Send;

    /// Take the lease `id` until `until_ms` if it is free: absent, or its time is at or before
    /// `now_ms`.
    fn try_acquire_lease(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> impl Future<Output = Result<LeaseAttempt, StoreError>> + Send;

    /// Give the lease `id` back if `owner` still holds it (someone who took it over keeps it).
    fn release_lease(
        &self,
        id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The lease item `id`, expired or not (use [`Lease::is_held_at`]).
    fn read_lease(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send;

    /// The quota item `id`.
    fn read_quota(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<QuotaRecord>, StoreError>> + Send;

    /// Write `record` if the item's version is still `replacing` (`None`: the item must be absent).
    fn write_quota(
        &self,
        id: &str,
        record: &QuotaRecord,
        replacing: Option<u64>,
    ) -> impl Future<Output = Result<ConditionalWrite, StoreError>> + Send;
}

/// Write `record` if the stored item's version is still `replacing` (`None`: absent).
async fn compare_and_swap<I: Item>(
    table: &impl Table,
    id: &str,
    record: &I,
    replacing: Option<u64>,
) -> Result<ConditionalWrite, StoreError> {
    let condition = Condition::version(replacing);
    Ok(table.put(id, record, Some(condition)).await?.into())
}

impl<T: Table> TokenStore for T {
    fn read_token(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<TokenRecord>, StoreError>> + Send {
        self.get(app_id)
    }

    fn write_token(
        &self,
        app_id: &str,
        record: &TokenRecord,
        replacing: Option<u64>,
    ) -> impl Future<Output = Result<ConditionalWrite, StoreError>> + Send {
        compare_and_swap(self, app_id, record, replacing)
    }

    fn read_ticket(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<TicketRecord>, StoreError>> + Send {
        self.get(app_id)
    }

    fn write_ticket(
        &self,
        app_id: &str,
        record: &TicketRecord,
        replacing: Option<u64>,
    ) -> impl Future<Output = Result<ConditionalWrite, StoreError>> + Send {
        compare_and_swap(self, app_id, record, replacing)
    }

    async fn try_acquire_lease(
        &self,
        id: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<LeaseAttempt, StoreError> {
        let lease = Lease {
            owner: owner.to_string(),
            until_ms,
        };
        let free = Condition::Any(vec![
            Condition::Absent,
            Condition::AtMost(Lease::UNTIL_ATTRIBUTE, now_ms),
        ]);
        Ok(match self.put(id, &lease, Some(free)).await? {
            WriteOutcome::Applied => LeaseAttempt::Acquired,
            WriteOutcome::ConditionFailed => LeaseAttempt::Held,
        })
    }

    async fn release_lease(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        let ours = Condition::equals(Lease::OWNER_ATTRIBUTE, owner);
        // A failed condition means someone took the lease over after ours ran out: theirs now.
        self.delete::<Lease>(id, ours).await.map(drop)
    }

    fn read_lease(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send {
        self.get(id)
    }

    fn read_quota(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<QuotaRecord>, StoreError>> + Send {
        self.get(id)
    }

    fn write_quota(
        &self,
        id: &str,
        record: &QuotaRecord,
        replacing: Option<u64>,
    ) -> impl Future<Output = Result<ConditionalWrite, StoreError>> + Send {
        compare_and_swap(self, id, record, replacing)
    }
}

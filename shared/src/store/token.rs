//! Storage port of the access_token service: the token item, the refresh lease and the quota
//! bookkeeping, each one item of the table keyed by the app id.
//!
//! Item layout (all times in epoch milliseconds, `ttl` in epoch seconds as DynamoDB wants):
//! - `token#<app_id>`: `access_token` S, `expires_at_ms` N, `fetched_at_ms` N, `version` N, `ttl` N
//! - `lease#<app_id>`: `owner` S, `lease_until_ms` N, `ttl` N
//! - `quota#<app_id>`: `version` N, `force_day` N (days since epoch in China time, UTC+8),
//!   `force_count` N, `last_force_at_ms` N (0: never), `blocked_until_ms` N (0: not blocked), `ttl` N
//!
//! Writes of the token and quota items are compare-and-swap on `version`: a writer states the
//! version it read (or that the item was absent), so a slower, older refresh can never overwrite
//! what a newer one wrote; the loser gets [`ConditionalWrite::Superseded`]. Expiry is judged by the
//! service against its clock, never by the adapter: an item whose time is past counts as absent
//! whether or not DynamoDB's lazy TTL deletion has removed it yet.

use std::future::Future;

use crate::config::Secret;
use crate::store::StoreError;

/// How long expired items are kept before DynamoDB's TTL may delete them, in seconds.
pub const TTL_GRACE_S: i64 = 24 * 3600;

pub fn token_key(app_id: &str) -> String {
    format!("token#{app_id}")
}

pub fn lease_key(app_id: &str) -> String {
    format!("lease#{app_id}")
}

pub fn quota_key(app_id: &str) -> String {
    format!("quota#{app_id}")
}

/// The stored access_token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub access_token: Secret<String>,
    pub expires_at_ms: i64,
    pub fetched_at_ms: i64,
    /// Starts at 1 and grows by one with every write.
    pub version: u64,
}

impl TokenRecord {
    /// The item's `ttl` (epoch seconds): a day after the token expires.
    pub fn ttl_s(&self) -> i64 {
        self.expires_at_ms.div_euclid(1000) + TTL_GRACE_S
    }
}

/// Who holds the refresh lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until_ms: i64,
}

impl Lease {
    /// A lease whose time has run out is free, even if its item still exists.
    pub fn is_held_at(&self, now_ms: i64) -> bool {
        self.until_ms > now_ms
    }

    pub fn ttl_s(until_ms: i64) -> i64 {
        until_ms.div_euclid(1000) + 60
    }
}

/// Quota bookkeeping shared by every instance: forced stable-token refreshes per day, and the
/// daily-quota block after WeChat answered 45009.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaRecord {
    /// 0 for a record never written.
    pub version: u64,
    /// The China-time day (days since 1970-01-01 in UTC+8) that `force_count` counts.
    pub force_day: i64,
    pub force_count: u32,
    /// 0 when no forced refresh was ever made.
    pub last_force_at_ms: i64,
    /// 0 when not blocked.
    pub blocked_until_ms: i64,
}

impl QuotaRecord {
    /// The item's `ttl` (epoch seconds): a day after everything it records has lapsed.
    pub fn ttl_s(&self) -> i64 {
        let force_day_end_ms = (self.force_day + 1) * 86_400_000 - 8 * 3_600_000;
        force_day_end_ms.max(self.blocked_until_ms).div_euclid(1000) + TTL_GRACE_S
    }
}

/// The result of a conditional (compare-and-swap) write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionalWrite {
    Written,
    /// The item changed since it was read: someone else wrote first, nothing was written.
    Superseded,
}

/// The result of trying to take the refresh lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseAttempt {
    Acquired,
    /// Someone else holds an unexpired lease.
    Held,
}

/// The token service's storage. Implemented for `DynamoTable` (production) and `EmbeddedStore`
/// (local development, tests).
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

    /// Take the lease until `until_ms` if it is free: absent, or its time is at or before `now_ms`.
    fn try_acquire_lease(
        &self,
        app_id: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> impl Future<Output = Result<LeaseAttempt, StoreError>> + Send;

    /// Give the lease back if `owner` still holds it (someone who took it over keeps it).
    fn release_lease(
        &self,
        app_id: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The lease item, expired or not (use [`Lease::is_held_at`]).
    fn read_lease(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send;

    fn read_quota(
        &self,
        app_id: &str,
    ) -> impl Future<Output = Result<Option<QuotaRecord>, StoreError>> + Send;

    /// Write `record` if the item's version is still `replacing` (`None`: the item must be absent).
    fn write_quota(
        &self,
        app_id: &str,
        record: &QuotaRecord,
        replacing: Option<u64>,
    ) -> impl Future<Output = Result<ConditionalWrite, StoreError>> + Send;
}

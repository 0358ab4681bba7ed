//! Storage: the table kernel ([`table`]: the item trait and the few conditional operations every
//! stored item goes through) and the domain ports built once on it ([`token`], [`oauth`]).
//! Adapters implement only the kernel: `crate::dynamo` (production) and `crate::embedded` (local
//! development, tests).
//!
//! Everything lives in one DynamoDB table: string partition key `pk`, no sort key, TTL attribute
//! `ttl` (epoch seconds). Each item type prefixes its keys (`token#…`, `lease#…`, `user#…`, …).

pub mod oauth;
pub mod table;
pub mod token;

/// A storage failure that is not a domain outcome (a lost conditional write is a domain outcome
/// and is returned as an enum variant by the trait method, never as this error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

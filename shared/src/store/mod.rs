//! Storage ports: the small traits the domain uses, one submodule per domain. Adapters live in
//! `crate::dynamo` (production) and `crate::embedded` (local development, tests).
//!
//! Everything lives in one DynamoDB table: string partition key `pk`, no sort key, TTL attribute
//! `ttl` (epoch seconds). Each domain prefixes its keys (`token#…`, `lease#…`, `user#…`, …).

pub mod oauth;
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

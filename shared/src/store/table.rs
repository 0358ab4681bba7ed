//! The table kernel: the few operations every stored item goes through, implemented once for
//! DynamoDB (`crate::dynamo`) and once for the embedded store (`crate::embedded`).
//!
//! An item is a serde struct implementing [`Item`]. Both adapters store it as [`Stored`]: `pk`
//! (the item's key prefix and id), the struct's own fields, and `ttl` when the item has one, so
//! the two store the same shape by construction. Conditions and updates are typed values
//! ([`Condition`], [`Update`]) that each adapter interprets: DynamoDB renders them as expressions,
//! the embedded store evaluates them under its lock. A failed condition is
//! [`WriteOutcome::ConditionFailed`], never an error; each port turns it into its domain outcome.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::store::StoreError;

/// The partition key attribute of every item.
pub const PK: &str = "pk";
/// The TTL attribute (epoch seconds) DynamoDB deletes expired items by, lazily.
pub const TTL: &str = "ttl";
/// The attribute compare-and-swap writes check ([`Condition::version`]).
pub const VERSION: &str = "version";

/// A type stored as one item of the table. Its fields must not be named `pk` or `ttl`: the
/// kernel writes those.
pub trait Item: Serialize + DeserializeOwned + Send + Sync {
    /// The key prefix: the item's partition key is this followed by its id (`token#<app_id>`).
    const PREFIX: &'static str;

    /// The `ttl` attribute (epoch seconds) after which the item may be deleted; `None`: kept.
    /// Expiry is still judged by the domain against its clock, since TTL deletion is lazy.
    fn ttl(&self) -> Option<i64>;
}

/// The partition key of the item `I` with `id`.
pub fn key<I: Item>(id: &str) -> String {
    format!("{}{id}", I::PREFIX)
}

/// What both adapters serialize for an item: `pk`, the item's fields, `ttl` if any.
#[derive(Serialize)]
pub struct Stored<'a, I> {
    pk: String,
    #[serde(flatten)]
    item: &'a I,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<i64>,
}

impl<'a, I: Item> Stored<'a, I> {
    pub fn new(id: &str, item: &'a I) -> Self {
        Self {
            pk: key::<I>(id),
            item,
            ttl: item.ttl(),
        }
    }
}

/// A condition on the stored item, checked atomically with the write. On an absent item every
/// comparison is false (as in DynamoDB): only [`Condition::Absent`] holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// No item is stored under the key.
    Absent,
    /// The attribute equals the value (a string or an integer).
    Equals(&'static str, Value),
    /// The attribute is a number greater than the value.
    Above(&'static str, i64),
    /// The attribute is a number at most the value.
    AtMost(&'static str, i64),
    /// Every condition holds.
    All(Vec<Condition>),
    /// At least one condition holds.
    Any(Vec<Condition>),
}

impl Condition {
    pub fn equals(name: &'static str, value: impl Into<Value>) -> Self {
        Self::Equals(name, value.into())
    }

    /// Compare-and-swap on [`VERSION`]: the stored version is `replacing` (`None`: no item).
    pub fn version(replacing: Option<u64>) -> Self {
        match replacing {
            None => Self::Absent,
            Some(version) => Self::equals(VERSION, version),
        }
    }
}

/// An in-place change of some attributes of a stored item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    pub set: Vec<(&'static str, Value)>,
    pub remove: Vec<&'static str>,
}

impl Update {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.set.push((name, value.into()));
        self
    }

    pub fn remove(mut self, name: &'static str) -> Self {
        self.remove.push(name);
        self
    }
}

/// Whether a conditional write happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Applied,
    /// The condition did not hold: nothing was written.
    ConditionFailed,
}

/// The storage kernel. Reads are strongly consistent: every conditional decision is made on what
/// was read, so a stale read would be a bug.
pub trait Table: Send + Sync {
    /// The item `I` with `id`, expired or not.
    fn get<I: Item>(&self, id: &str) -> impl Future<Output = Result<Option<I>, StoreError>> + Send;

    /// Store the whole item if `condition` holds (`None`: unconditionally).
    fn put<I: Item>(
        &self,
        id: &str,
        item: &I,
        condition: Option<Condition>,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// Change attributes of the stored item `I` if `condition` holds.
    fn update<I: Item>(
        &self,
        id: &str,
        update: Update,
        condition: Condition,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// Delete the item `I` if `condition` holds.
    fn delete<I: Item>(
        &self,
        id: &str,
        condition: Condition,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
}

/// `#[serde(with = "secret_string")]`: a `Secret<String>` stored as its plain string.
pub mod secret_string {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::config::Secret;

    pub fn serialize<S: Serializer>(secret: &Secret<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret<String>, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize)]
    struct Probe {
        n: i64,
    }

    impl Item for Probe {
        const PREFIX: &'static str = "probe#";
        fn ttl(&self) -> Option<i64> {
            (self.n > 0).then_some(self.n)
        }
    }

    #[test]
    fn the_stored_form_is_key_fields_and_ttl() {
        let with_ttl = serde_json::to_value(Stored::new("a", &Probe { n: 5 })).unwrap();
        assert_eq!(
            with_ttl,
            serde_json::json!({"pk": "probe#a", "n": 5, "ttl": 5})
        );
        let kept = serde_json::to_value(Stored::new("b", &Probe { n: 0 })).unwrap();
        assert_eq!(kept, serde_json::json!({"pk": "probe#b", "n": 0}));
    }

    #[test]
    fn version_condition_is_absent_for_a_first_write() {
        assert_eq!(Condition::version(None), Condition::Absent);
        assert_eq!(
            Condition::version(Some(3)),
            Condition::Equals(VERSION, Value::from(3u64))
        );
    }
}

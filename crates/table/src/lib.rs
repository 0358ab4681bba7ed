//! The table every item of the stack lives in, and the kernel of operations each item goes
//! through; its two adapters: DynamoDB ([`dynamo`], feature `dynamodb`: production) and an
//! embedded store ([`embedded`]: local development, tests). The domains keep their ports next to
//! their items (`account::token::store`, `account::oauth::store`, `account::forward::record`).
//!
//! Everything lives in one DynamoDB table: string partition key `pk`, no sort key, TTL attribute
//! `ttl` (epoch seconds). Each item type prefixes its keys (`token#…`, `lease#…`, `user#…`, …).
//!
//! An item is a serde struct implementing [`Item`]. Its stored form is computed once, here
//! ([`stored_form`]): `pk` (the item's key prefix and id), the struct's own fields, and `ttl` when
//! the item has one. Adapters implement only [`Table::read`] and [`Table::write`] on stored forms
//! (as JSON: DynamoDB maps it to attributes with `serde_dynamo`, the embedded store keeps it as
//! is), so both store the same shape by construction; the typed operations (`get`, `put`,
//! `update`, `delete`, `add`) are provided on top. Conditions and updates are typed values
//! ([`Condition`], [`Update`]) that each adapter interprets: DynamoDB renders them as expressions,
//! the embedded store evaluates them under its lock. A failed condition is
//! [`WriteOutcome::ConditionFailed`], never an error; each port turns it into its domain outcome.

#[cfg(feature = "dynamodb")]
pub mod dynamo;
pub mod embedded;

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A storage failure that is not a domain outcome (a lost conditional write is a domain outcome
/// and is returned as an enum variant by the trait method, never as this error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

/// The partition key attribute of every item.
pub const PK: &str = "pk";
/// The TTL attribute (epoch seconds) DynamoDB deletes expired items by, lazily.
pub const TTL: &str = "ttl";
/// The attribute compare-and-swap writes check ([`Condition::version`]).
pub const VERSION: &str = "version";

/// A type stored as one item of the table. It must serialize as a struct (a map) with no field
/// named `pk` or `ttl`: the kernel writes those.
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

/// The attributes stored for `item`: `pk`, its fields, `ttl` if it has one.
pub fn stored_form<I: Item>(id: &str, item: &I) -> Result<Map<String, Value>, StoreError> {
    let pk = key::<I>(id);
    let Value::Object(mut attributes) =
        serde_json::to_value(item).map_err(|e| StoreError::Corrupt(format!("{pk}: {e}")))?
    else {
        return Err(StoreError::Corrupt(format!("{pk}: not stored as a struct")));
    };
    if let Some(ttl) = item.ttl() {
        attributes.insert(TTL.to_string(), ttl.into());
    }
    attributes.insert(PK.to_string(), pk.into());
    Ok(attributes)
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
    /// The item lacks the attribute (true on an absent item, as `attribute_not_exists`).
    Missing(&'static str),
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

/// A state transition guarded by a condition, as the domain ports answer it: applied, or lost
/// to someone who moved the item first (another instance, a retry, an expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Applied,
    /// The condition did not hold: the item was absent, expired or in another state.
    Lost,
}

impl From<WriteOutcome> for Transition {
    fn from(outcome: WriteOutcome) -> Self {
        match outcome {
            WriteOutcome::Applied => Self::Applied,
            WriteOutcome::ConditionFailed => Self::Lost,
        }
    }
}

/// What a write does to the item at a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Store this whole stored form (from [`stored_form`]), replacing any item.
    Put(Map<String, Value>),
    /// Change some attributes; on an absent item (only if the condition allows it) create it.
    Update(Update),
    /// Add each number to its attribute, atomically: an absent attribute counts from 0 and an
    /// absent item is created (DynamoDB's `ADD`). Attribute names are data here (a counter per
    /// scene, say), so they are owned strings, unlike [`Update`]'s fixed field names; a map, since
    /// DynamoDB refuses an expression that names one attribute twice.
    Add(BTreeMap<String, i64>),
    Delete,
}

/// One conditional write: `change` to the item at `pk`, if `condition` holds (`None`: always).
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub pk: String,
    pub change: Change,
    pub condition: Option<Condition>,
}

/// The storage kernel. Adapters implement `read` and `write`; items go through the provided
/// typed operations. Reads are strongly consistent: every conditional decision is made on what
/// was read, so a stale read would be a bug.
pub trait Table: Send + Sync {
    /// The stored form of the item at partition key `pk`.
    fn read(&self, pk: &str) -> impl Future<Output = Result<Option<Value>, StoreError>> + Send;

    /// Apply the write if its condition holds.
    fn write(&self, write: Write) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// The item `I` with `id`, expired or not.
    fn get<I: Item>(&self, id: &str) -> impl Future<Output = Result<Option<I>, StoreError>> + Send {
        async move {
            let pk = key::<I>(id);
            let Some(stored) = self.read(&pk).await? else {
                return Ok(None);
            };
            serde_json::from_value(stored)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{pk}: {e}")))
        }
    }

    /// Store the whole item if `condition` holds (`None`: unconditionally).
    fn put<I: Item>(
        &self,
        id: &str,
        item: &I,
        condition: Option<Condition>,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        async move {
            let stored = stored_form(id, item)?;
            let pk = key::<I>(id);
            let change = Change::Put(stored);
            self.write(Write {
                pk,
                change,
                condition,
            })
            .await
        }
    }

    /// Change attributes of the stored item `I` if `condition` holds.
    fn update<I: Item>(
        &self,
        id: &str,
        update: Update,
        condition: Condition,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        self.write(Write {
            pk: key::<I>(id),
            change: Change::Update(update),
            condition: Some(condition),
        })
    }

    /// Add each number to its attribute of the item `I` with `id` in one atomic write, creating
    /// the item or the attribute as needed: concurrent adds never lose a count, with no read
    /// and no condition to retry. Only for counter items (read them with [`Table::read`]): the
    /// item's other fields are left as they are, and none are required.
    fn add<I: Item>(
        &self,
        id: &str,
        counts: BTreeMap<String, i64>,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        self.write(Write {
            pk: key::<I>(id),
            change: Change::Add(counts),
            condition: None,
        })
    }

    /// Delete the item `I` if `condition` holds.
    fn delete<I: Item>(
        &self,
        id: &str,
        condition: Condition,
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send {
        self.write(Write {
            pk: key::<I>(id),
            change: Change::Delete,
            condition: Some(condition),
        })
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
        let with_ttl = Value::Object(stored_form("a", &Probe { n: 5 }).unwrap());
        assert_eq!(
            with_ttl,
            serde_json::json!({"pk": "probe#a", "n": 5, "ttl": 5})
        );
        let kept = Value::Object(stored_form("b", &Probe { n: 0 }).unwrap());
        assert_eq!(kept, serde_json::json!({"pk": "probe#b", "n": 0}));
    }

    #[derive(Serialize, serde::Deserialize)]
    struct NotAStruct(i64);

    impl Item for NotAStruct {
        const PREFIX: &'static str = "bad#";
        fn ttl(&self) -> Option<i64> {
            None
        }
    }

    #[test]
    fn an_item_that_is_not_a_struct_is_refused() {
        assert!(matches!(
            stored_form("x", &NotAStruct(1)),
            Err(StoreError::Corrupt(_))
        ));
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

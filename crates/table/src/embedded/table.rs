//! The table kernel on the embedded store: stored forms kept as JSON (the same attributes the
//! DynamoDB adapter writes), every conditional write checked and applied inside one `transact`,
//! with DynamoDB's semantics (a comparison on an absent item or attribute is false; an update
//! whose condition holds on an absent item creates it).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::EmbeddedStore;
use crate::StoreError;
use crate::{Change, Condition, PK, Table, Update, Write, WriteOutcome};

impl Table for EmbeddedStore {
    async fn read(&self, pk: &str) -> Result<Option<Value>, StoreError> {
        self.item_json(pk)
    }

    async fn write(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        let pk = write.pk;
        self.transact(|items| {
            let stored = items.get(&pk);
            if !write.condition.is_none_or(|c| holds(&c, stored)) {
                return (Ok(WriteOutcome::ConditionFailed), false);
            }
            match write.change {
                Change::Put(item) => items.insert(pk, Value::Object(item)),
                Change::Update(update) => {
                    let updated = updated(&pk, stored, update);
                    items.insert(pk, updated)
                }
                Change::Add(counts) => match added(&pk, stored, counts) {
                    Ok(added) => items.insert(pk, added),
                    Err(err) => return (Err(err), false),
                },
                Change::Delete => items.remove(&pk),
            };
            (Ok(WriteOutcome::Applied), true)
        })?
    }
}

/// `stored` (or a new item with only its key) with each number added to its attribute, an absent
/// one counting from 0. Adding to an attribute that is not a number is refused, as DynamoDB
/// refuses it (a validation error, not a failed condition).
fn added(
    pk: &str,
    stored: Option<&Value>,
    counts: BTreeMap<String, i64>,
) -> Result<Value, StoreError> {
    let mut attributes = match stored {
        Some(Value::Object(attributes)) => attributes.clone(),
        _ => Map::from_iter([(PK.to_string(), Value::from(pk))]),
    };
    if counts.is_empty() {
        return Err(StoreError::Corrupt("an add with no attributes".into()));
    }
    for (name, n) in counts {
        let sum = match attributes.get(&name) {
            None => n,
            Some(value) => value
                .as_i64()
                .and_then(|current| current.checked_add(n))
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("{pk}: {name} is not a number to add to"))
                })?,
        };
        attributes.insert(name, sum.into());
    }
    Ok(Value::Object(attributes))
}

/// `stored` (or a new item with only its key) with `update` applied.
fn updated(pk: &str, stored: Option<&Value>, update: Update) -> Value {
    let mut attributes = match stored {
        Some(Value::Object(attributes)) => attributes.clone(),
        _ => Map::from_iter([(PK.to_string(), Value::from(pk))]),
    };
    for (name, value) in update.set {
        attributes.insert(name.to_string(), value);
    }
    for name in update.remove {
        attributes.remove(name);
    }
    Value::Object(attributes)
}

/// Whether `condition` holds for `item` (`None`: no item stored).
fn holds(condition: &Condition, item: Option<&Value>) -> bool {
    let attribute = |name: &str| item.and_then(|i| i.get(name));
    let number = |name: &str| attribute(name).and_then(Value::as_i64);
    match condition {
        Condition::Absent => item.is_none(),
        Condition::Equals(name, value) => attribute(name) == Some(value),
        Condition::Above(name, bound) => number(name).is_some_and(|n| n > *bound),
        Condition::AtMost(name, bound) => number(name).is_some_and(|n| n <= *bound),
        Condition::Missing(name) => attribute(name).is_none(),
        Condition::All(all) => all.iter().all(|c| holds(c, item)),
        Condition::Any(any) => any.iter().any(|c| holds(c, item)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comparisons_on_an_absent_item_or_attribute_are_false() {
        let item = json!({"pk": "x#1", "n": 5, "s": "a"});
        assert!(holds(&Condition::Absent, None));
        assert!(!holds(&Condition::Absent, Some(&item)));
        assert!(!holds(&Condition::equals("s", "a"), None));
        assert!(holds(&Condition::equals("s", "a"), Some(&item)));
        assert!(holds(&Condition::equals("n", 5u64), Some(&item)));
        assert!(!holds(&Condition::Above("missing", 0), Some(&item)));
        assert!(holds(&Condition::AtMost("n", 5), Some(&item)));
        assert!(!holds(&Condition::Above("n", 5), Some(&item)));
        // A string is not a number, as in DynamoDB.
        assert!(!holds(&Condition::AtMost("s", 5), Some(&item)));
        assert!(holds(&Condition::Missing("n"), None));
        assert!(holds(&Condition::Missing("other"), Some(&item)));
        assert!(!holds(&Condition::Missing("n"), Some(&item)));
        assert!(holds(&Condition::All(vec![]), None));
        assert!(!holds(&Condition::Any(vec![]), Some(&item)));
    }
}

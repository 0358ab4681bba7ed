//! The table kernel on the embedded store: items serialized to JSON as [`Stored`] (the same
//! shape the DynamoDB adapter writes), and every conditional write checked and applied inside one
//! `transact`, with DynamoDB's semantics (a comparison on an absent item or attribute is false; an
//! update whose condition holds on an absent item creates it).

use serde_json::{Map, Value};

use super::EmbeddedStore;
use crate::store::StoreError;
use crate::store::table::{Condition, Item, PK, Stored, Table, Update, WriteOutcome, key};

impl Table for EmbeddedStore {
    async fn get<I: Item>(&self, id: &str) -> Result<Option<I>, StoreError> {
        let pk = key::<I>(id);
        self.item_json(&pk)?
            .map(|stored| serde_json::from_value(stored).map_err(|e| corrupt(&pk, e)))
            .transpose()
    }

    async fn put<I: Item>(
        &self,
        id: &str,
        item: &I,
        condition: Option<Condition>,
    ) -> Result<WriteOutcome, StoreError> {
        let pk = key::<I>(id);
        let stored = serde_json::to_value(Stored::new(id, item)).map_err(|e| corrupt(&pk, e))?;
        self.write(pk, condition.as_ref(), |_| Some(stored))
    }

    async fn update<I: Item>(
        &self,
        id: &str,
        update: Update,
        condition: Condition,
    ) -> Result<WriteOutcome, StoreError> {
        let pk = key::<I>(id);
        let new_item = Value::Object(Map::from_iter([(PK.to_string(), Value::from(pk.clone()))]));
        self.write(pk, Some(&condition), |stored| {
            let mut item = stored.cloned().unwrap_or(new_item);
            if let Value::Object(attributes) = &mut item {
                for (name, value) in update.set {
                    attributes.insert(name.to_string(), value);
                }
                for name in update.remove {
                    attributes.remove(name);
                }
            }
            Some(item)
        })
    }

    async fn delete<I: Item>(
        &self,
        id: &str,
        condition: Condition,
    ) -> Result<WriteOutcome, StoreError> {
        self.write(key::<I>(id), Some(&condition), |_| None)
    }
}

impl EmbeddedStore {
    /// If `condition` holds for the item at `pk`, replace it with `change(stored)` (`None`: delete).
    fn write(
        &self,
        pk: String,
        condition: Option<&Condition>,
        change: impl FnOnce(Option<&Value>) -> Option<Value>,
    ) -> Result<WriteOutcome, StoreError> {
        self.transact(|items| {
            let stored = items.get(&pk);
            if !condition.is_none_or(|c| holds(c, stored)) {
                return (WriteOutcome::ConditionFailed, false);
            }
            match change(stored) {
                Some(item) => items.insert(pk, item),
                None => items.remove(&pk),
            };
            (WriteOutcome::Applied, true)
        })
    }
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
        Condition::All(all) => all.iter().all(|c| holds(c, item)),
        Condition::Any(any) => any.iter().any(|c| holds(c, item)),
    }
}

fn corrupt(pk: &str, err: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{pk}: {err}"))
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
        assert!(holds(&Condition::All(vec![]), None));
        assert!(!holds(&Condition::Any(vec![]), Some(&item)));
    }
}

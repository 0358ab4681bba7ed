//! The table kernel on DynamoDB: stored forms mapped to attributes and back by `serde_dynamo`,
//! conditions and updates rendered as expressions in which every attribute name is a placeholder
//! (so reserved words such as `status`, `ttl` or `owner` need no care), and
//! `ConditionalCheckFailedException` turned into [`WriteOutcome::ConditionFailed`] in exactly one
//! place.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use super::DynamoTable;
use crate::StoreError;
use crate::{Change, Condition, PK, Table, Update, Write, WriteOutcome};

type Attributes = HashMap<String, AttributeValue>;

/// Put, update and delete requests are different types with the same condition setters: set the
/// condition and its placeholders, send, and map the result to a [`WriteOutcome`].
macro_rules! send_conditional {
    ($request:expr, $condition:expr, $expression:expr) => {{
        let (names, values) = $expression.placeholders();
        let result = $request
            .set_condition_expression($condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await;
        outcome(result)
    }};
}

impl Table for DynamoTable {
    async fn read(&self, pk: &str) -> Result<Option<Value>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(pk.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .item
            .map(|item| serde_dynamo::from_item(item).map_err(|e| corrupt(pk, e)))
            .transpose()
    }

    async fn write(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        let mut expression = Expression::default();
        let condition = write
            .condition
            .map(|c| expression.condition(&c))
            .transpose()?;
        let pk = write.pk;
        let key = AttributeValue::S(pk.clone());
        let table = &self.table;
        match write.change {
            Change::Put(stored) => {
                let item: Attributes =
                    serde_dynamo::to_item(stored).map_err(|e| corrupt(&pk, e))?;
                let request = self
                    .client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item));
                send_conditional!(request, condition, expression)
            }
            Change::Update(update) => {
                let changes = expression.update(&update)?;
                let request = self.client.update_item().table_name(table).key(PK, key);
                send_conditional!(request.update_expression(changes), condition, expression)
            }
            Change::Add(counts) => {
                let changes = expression.add(&counts)?;
                let request = self.client.update_item().table_name(table).key(PK, key);
                send_conditional!(request.update_expression(changes), condition, expression)
            }
            Change::Delete => {
                let request = self.client.delete_item().table_name(table).key(PK, key);
                send_conditional!(request, condition, expression)
            }
        }
    }
}

/// The one place a failed condition becomes a domain outcome rather than an error.
fn outcome<O, E, R>(result: Result<O, SdkError<E, R>>) -> Result<WriteOutcome, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(WriteOutcome::Applied),
        Err(err)
            if err.as_service_error().and_then(ProvideErrorMetadata::code)
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(WriteOutcome::ConditionFailed)
        }
        Err(err) => Err(unavailable(err)),
    }
}

/// Any SDK failure that is not a domain outcome, with its full context.
fn unavailable<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(&err).to_string())
}

fn corrupt(pk: &str, err: serde_dynamo::Error) -> StoreError {
    StoreError::Corrupt(format!("{pk}: {err}"))
}

/// The placeholders of one request's expressions: `#aN` for names, `:vN` for values.
#[derive(Debug, Default)]
struct Expression {
    names: HashMap<String, String>,
    values: Attributes,
}

impl Expression {
    fn name(&mut self, name: &str) -> String {
        let placeholder = format!("#a{}", self.names.len());
        self.names.insert(placeholder.clone(), name.to_string());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn json(&mut self, value: &Value) -> Result<String, StoreError> {
        let value = serde_dynamo::to_attribute_value(value)
            .map_err(|e| StoreError::Corrupt(format!("expression value {value}: {e}")))?;
        Ok(self.value(value))
    }

    fn number(&mut self, value: i64) -> String {
        self.value(AttributeValue::N(value.to_string()))
    }

    fn condition(&mut self, condition: &Condition) -> Result<String, StoreError> {
        Ok(match condition {
            Condition::Absent => format!("attribute_not_exists({PK})"),
            Condition::Equals(name, value) => {
                format!("{} = {}", self.name(name), self.json(value)?)
            }
            Condition::Above(name, n) => format!("{} > {}", self.name(name), self.number(*n)),
            Condition::AtMost(name, n) => format!("{} <= {}", self.name(name), self.number(*n)),
            Condition::Missing(name) => format!("attribute_not_exists({})", self.name(name)),
            // DynamoDB has no literal true or false: an empty `All` holds, an empty `Any` does not.
            Condition::All(all) if all.is_empty() => {
                format!("(attribute_exists({PK}) OR attribute_not_exists({PK}))")
            }
            Condition::Any(any) if any.is_empty() => {
                format!("(attribute_exists({PK}) AND attribute_not_exists({PK}))")
            }
            Condition::All(all) => self.join(all, " AND ")?,
            Condition::Any(any) => self.join(any, " OR ")?,
        })
    }

    fn join(&mut self, conditions: &[Condition], operator: &str) -> Result<String, StoreError> {
        let parts = conditions
            .iter()
            .map(|c| self.condition(c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(format!("({})", parts.join(operator)))
    }

    fn update(&mut self, update: &Update) -> Result<String, StoreError> {
        let mut clauses = Vec::new();
        if !update.set.is_empty() {
            let assignments = update
                .set
                .iter()
                .map(|(name, value)| Ok(format!("{} = {}", self.name(name), self.json(value)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            clauses.push(format!("SET {}", assignments.join(", ")));
        }
        if !update.remove.is_empty() {
            let names: Vec<_> = update.remove.iter().map(|name| self.name(name)).collect();
            clauses.push(format!("REMOVE {}", names.join(", ")));
        }
        Ok(clauses.join(" "))
    }

    /// `ADD #a0 :v0, #a1 :v1`: numbers added atomically, an absent attribute counting from 0.
    fn add(&mut self, counts: &BTreeMap<String, i64>) -> Result<String, StoreError> {
        if counts.is_empty() {
            // DynamoDB refuses an empty update expression; nothing to add is a caller's slip.
            return Err(StoreError::Corrupt("an add with no attributes".into()));
        }
        let additions: Vec<_> = counts
            .iter()
            .map(|(name, n)| format!("{} {}", self.name(name), self.number(*n)))
            .collect();
        Ok(format!("ADD {}", additions.join(", ")))
    }

    /// The name and value placeholders; `None` for an empty map, which DynamoDB refuses.
    fn placeholders(self) -> (Option<HashMap<String, String>>, Option<Attributes>) {
        let names = (!self.names.is_empty()).then_some(self.names);
        let values = (!self.values.is_empty()).then_some(self.values);
        (names, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_name_every_attribute_through_a_placeholder() {
        let mut expression = Expression::default();
        let rendered = expression
            .condition(&Condition::Any(vec![
                Condition::Absent,
                Condition::All(vec![
                    Condition::equals("status", "pending"),
                    Condition::AtMost("ttl", 5),
                ]),
            ]))
            .unwrap();
        assert_eq!(
            rendered,
            "(attribute_not_exists(pk) OR (#a0 = :v0 AND #a1 <= :v1))"
        );
        assert_eq!(expression.names["#a0"], "status");
        assert_eq!(expression.names["#a1"], "ttl");
        assert_eq!(
            expression.values[":v0"],
            AttributeValue::S("pending".into())
        );
        assert_eq!(expression.values[":v1"], AttributeValue::N("5".into()));
    }

    #[test]
    fn updates_set_and_remove_in_one_expression() {
        let mut expression = Expression::default();
        let update = Update::new()
            .set("status", "consumed")
            .set("consumed_at_s", 7)
            .remove("openid");
        assert_eq!(
            expression.update(&update).unwrap(),
            "SET #a0 = :v0, #a1 = :v1 REMOVE #a2"
        );
        assert_eq!(expression.values[":v1"], AttributeValue::N("7".into()));
        assert_eq!(Expression::default().placeholders(), (None, None));
    }

    #[test]
    fn adds_name_every_attribute_through_a_placeholder() {
        let mut expression = Expression::default();
        let counts = BTreeMap::from([("c:poster a".to_string(), 2), ("s:poster a".to_string(), 1)]);
        assert_eq!(expression.add(&counts).unwrap(), "ADD #a0 :v0, #a1 :v1");
        assert_eq!(expression.names["#a0"], "c:poster a");
        assert_eq!(expression.values[":v0"], AttributeValue::N("2".into()));
        assert!(Expression::default().add(&BTreeMap::new()).is_err());
    }
}

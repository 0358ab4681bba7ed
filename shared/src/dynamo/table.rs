//! The table kernel on DynamoDB: items mapped to attributes by `serde_dynamo`, conditions and
//! updates rendered as expressions in which every attribute name is a placeholder (so reserved
//! words such as `status`, `ttl` or `owner` need no care), and `ConditionalCheckFailedException`
//! turned into [`WriteOutcome::ConditionFailed`] in exactly one place.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use super::DynamoTable;
use crate::store::StoreError;
use crate::store::table::{Condition, Item, PK, Stored, Table, Update, WriteOutcome, key};

type Attributes = HashMap<String, AttributeValue>;

impl Table for DynamoTable {
    async fn get<I: Item>(&self, id: &str) -> Result<Option<I>, StoreError> {
        let pk = key::<I>(id);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(pk.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .item
            .map(|item| serde_dynamo::from_item(item).map_err(|e| corrupt(&pk, e)))
            .transpose()
    }

    async fn put<I: Item>(
        &self,
        id: &str,
        item: &I,
        condition: Option<Condition>,
    ) -> Result<WriteOutcome, StoreError> {
        let attributes: Attributes =
            serde_dynamo::to_item(Stored::new(id, item)).map_err(|e| corrupt(&key::<I>(id), e))?;
        let mut expression = Expression::default();
        let condition = condition.map(|c| expression.condition(&c)).transpose()?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attributes))
            .set_condition_expression(condition)
            .set_expression_attribute_names(expression.names())
            .set_expression_attribute_values(expression.values())
            .send()
            .await;
        outcome(result)
    }

    async fn update<I: Item>(
        &self,
        id: &str,
        update: Update,
        condition: Condition,
    ) -> Result<WriteOutcome, StoreError> {
        let mut expression = Expression::default();
        let changes = expression.update(&update)?;
        let condition = expression.condition(&condition)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(key::<I>(id)))
            .update_expression(changes)
            .condition_expression(condition)
            .set_expression_attribute_names(expression.names())
            .set_expression_attribute_values(expression.values())
            .send()
            .await;
        outcome(result)
    }

    async fn delete<I: Item>(
        &self,
        id: &str,
        condition: Condition,
    ) -> Result<WriteOutcome, StoreError> {
        let mut expression = Expression::default();
        let condition = expression.condition(&condition)?;
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(key::<I>(id)))
            .condition_expression(condition)
            .set_expression_attribute_names(expression.names())
            .set_expression_attribute_values(expression.values())
            .send()
            .await;
        outcome(result)
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

    /// DynamoDB refuses empty placeholder maps: `None` when there are none.
    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<Attributes> {
        (!self.values.is_empty()).then(|| self.values.clone())
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
        assert!(Expression::default().values().is_none());
    }
}

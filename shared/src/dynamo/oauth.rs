//! DynamoDB adapter of the web-authorization ports. Items are the serde shapes of
//! `crate::store::oauth` mapped attribute by attribute (strings `S`, numbers `N`, lists `L`);
//! state transitions are conditional `UpdateItem`s, and a failed condition is `Transition::Lost`.

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

use super::{DynamoTable, Item, n, s, unavailable};
use crate::store::StoreError;
use crate::store::oauth::{
    AuthState, OAuthStateStore, STATUS_COMPLETED, STATUS_CONSUMED, STATUS_PENDING, StateInsert,
    StateItem, Transition, User, UserItem, UserStore, state_key, user_key,
};

type Attributes = Item;

fn to_attribute(value: Value) -> Option<AttributeValue> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(AttributeValue::Bool(b)),
        Value::Number(n) => Some(AttributeValue::N(n.to_string())),
        Value::String(s) => Some(AttributeValue::S(s)),
        Value::Array(values) => Some(AttributeValue::L(
            values.into_iter().filter_map(to_attribute).collect(),
        )),
        Value::Object(map) => Some(AttributeValue::M(
            map.into_iter()
                .filter_map(|(k, v)| to_attribute(v).map(|a| (k, a)))
                .collect(),
        )),
    }
}

fn to_attributes<T: serde::Serialize>(item: &T) -> Result<Attributes, StoreError> {
    match serde_json::to_value(item).map_err(|e| StoreError::Corrupt(e.to_string()))? {
        Value::Object(map) => Ok(map
            .into_iter()
            .filter_map(|(k, v)| to_attribute(v).map(|a| (k, a)))
            .collect()),
        _ => Err(StoreError::Corrupt("item is not an object".into())),
    }
}

fn from_attribute(attribute: &AttributeValue) -> Result<Value, StoreError> {
    Ok(match attribute {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => {
            let number = match n.parse::<i64>() {
                Ok(i) => Number::from(i),
                Err(_) => n
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .ok_or_else(|| StoreError::Corrupt(format!("not a number: {n:?}")))?,
            };
            Value::Number(number)
        }
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(values) => Value::Array(
            values
                .iter()
                .map(from_attribute)
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::M(map) => Value::Object(from_map(map)?),
        AttributeValue::Ss(values) => {
            Value::Array(values.iter().cloned().map(Value::String).collect())
        }
        other => {
            return Err(StoreError::Corrupt(format!(
                "unsupported attribute type {other:?}"
            )));
        }
    })
}

fn from_map(map: &Attributes) -> Result<Map<String, Value>, StoreError> {
    map.iter()
        .map(|(k, v)| Ok((k.clone(), from_attribute(v)?)))
        .collect()
}

fn from_attributes<T: serde::de::DeserializeOwned>(
    pk: &str,
    map: &Attributes,
) -> Result<T, StoreError> {
    serde_json::from_value(Value::Object(from_map(map)?))
        .map_err(|e| StoreError::Corrupt(format!("{pk}: {e}")))
}

impl DynamoTable {
    async fn update_state(
        &self,
        state: &str,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<Transition, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(state_key(state)))
            .update_expression(update)
            .condition_expression(condition)
            // `status` and `ttl` are DynamoDB reserved words.
            .expression_attribute_names("#status", "status");
        if condition.contains("#ttl") {
            request = request.expression_attribute_names("#ttl", "ttl");
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(Transition::Applied),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(Transition::Lost)
            }
            Err(err) => Err(unavailable(err)),
        }
    }
}

impl OAuthStateStore for DynamoTable {
    async fn insert_state(&self, state: &AuthState) -> Result<StateInsert, StoreError> {
        let item = to_attributes(&StateItem::from_state(state))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(StateInsert::Inserted),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(StateInsert::Collision)
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn get_state(&self, state: &str, now_s: i64) -> Result<Option<AuthState>, StoreError> {
        let pk = state_key(state);
        match self.read_item(&pk).await? {
            None => Ok(None),
            Some(map) => from_attributes::<StateItem>(&pk, &map)?.into_state(now_s),
        }
    }

    async fn consume_state(&self, state: &str, now_s: i64) -> Result<Transition, StoreError> {
        self.update_state(
            state,
            "SET #status = :to, consumed_at_s = :now",
            "#status = :from AND expires_at_s > :now AND #ttl > :now",
            vec![
                (":to", s(STATUS_CONSUMED)),
                (":from", s(STATUS_PENDING)),
                (":now", n(now_s)),
            ],
        )
        .await
    }

    async fn release_state(&self, state: &str, now_s: i64) -> Result<Transition, StoreError> {
        self.update_state(
            state,
            "SET #status = :to REMOVE consumed_at_s",
            "#status = :from AND expires_at_s > :now AND #ttl > :now",
            vec![
                (":to", s(STATUS_PENDING)),
                (":from", s(STATUS_CONSUMED)),
                (":now", n(now_s)),
            ],
        )
        .await
    }

    async fn complete_state(&self, state: &str, openid: &str) -> Result<Transition, StoreError> {
        self.update_state(
            state,
            "SET #status = :to, openid = :openid",
            "#status = :from",
            vec![
                (":to", s(STATUS_COMPLETED)),
                (":from", s(STATUS_CONSUMED)),
                (":openid", s(openid)),
            ],
        )
        .await
    }
}

impl UserStore for DynamoTable {
    async fn get_user(&self, openid: &str) -> Result<Option<User>, StoreError> {
        let pk = user_key(openid);
        match self.read_item(&pk).await? {
            None => Ok(None),
            Some(map) => from_attributes::<UserItem>(&pk, &map)?
                .into_user()
                .map(Some),
        }
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        let item = to_attributes(&UserItem::from_user(user))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_items_map_to_attributes_and_back() {
        let value = json!({"pk": "user#o", "n": 7, "list": ["a", "b"], "gone": null});
        let attributes = to_attributes(&value).unwrap();
        assert_eq!(attributes["n"], AttributeValue::N("7".into()));
        assert!(!attributes.contains_key("gone"));
        let back: Value = from_attributes("user#o", &attributes).unwrap();
        assert_eq!(back, json!({"pk": "user#o", "n": 7, "list": ["a", "b"]}));
    }
}

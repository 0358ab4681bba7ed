//! DynamoDB adapter: one table (name from `TABLE_NAME`), client built once per container.
//! The endpoint follows the standard `AWS_ENDPOINT_URL_DYNAMODB`, so tests point it at dynalite.

pub mod token;

use std::collections::HashMap;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::store::StoreError;

pub mod oauth;

/// The project's table and the client to reach it.
#[derive(Debug, Clone)]
pub struct DynamoTable {
    pub client: Client,
    pub table: String,
}

impl DynamoTable {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Build the client from the standard AWS environment (region, credentials, endpoint),
    /// using rustls with ring, the one TLS stack of this project.
    pub async fn from_env(table: impl Into<String>) -> Self {
        let http_client = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .load()
            .await;
        Self::new(Client::new(&config), table)
    }
}

/// Any SDK failure that is not a domain outcome becomes `StoreError::Unavailable` with its full context.
pub fn unavailable<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(&err).to_string())
}

/// A DynamoDB item: attribute name to value.
pub type Item = HashMap<String, AttributeValue>;

/// A string attribute value.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute value.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl DynamoTable {
    /// The item at `pk`, read consistently: every domain's conditional logic decides on what it
    /// reads, so a stale eventually-consistent read would be a bug.
    pub async fn read_item(&self, pk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }
}

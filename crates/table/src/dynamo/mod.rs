//! DynamoDB adapter: one table, its client built once per container by the composition root
//! (`account::aws`), and the table kernel on it. The endpoint follows the standard
//! `AWS_ENDPOINT_URL_DYNAMODB`, so tests point it at dynalite.

mod table;

use aws_sdk_dynamodb::Client;

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
}

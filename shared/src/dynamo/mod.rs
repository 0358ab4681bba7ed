//! DynamoDB adapter: one table (name from `TABLE_NAME`), client built once per container, and the
//! table kernel on it ([`table`]). The endpoint follows the standard `AWS_ENDPOINT_URL_DYNAMODB`,
//! so tests point it at dynalite.

mod table;

use aws_config::BehaviorVersion;
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

//! The AWS SDK configuration, loaded once per container in `main` from the standard AWS
//! environment (region, credentials, `AWS_ENDPOINT_URL_*` overrides), with one HTTP client
//! (rustls with ring, the project's one TLS stack) shared by every AWS client built from it.

use aws_config::{BehaviorVersion, SdkConfig};

/// Load the configuration every AWS client of the container is built from.
pub async fn sdk_config() -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}

/// A Lambda client (for invoking the refresh function); `endpoint_url` overrides the endpoint
/// (tests, the local server), otherwise `AWS_ENDPOINT_URL_LAMBDA` does, if set.
pub fn lambda_client(config: &SdkConfig, endpoint_url: Option<&str>) -> aws_sdk_lambda::Client {
    let mut builder = aws_sdk_lambda::config::Builder::from(config);
    if let Some(url) = endpoint_url {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_lambda::Client::from_conf(builder.build())
}

/// A DynamoDB client.
pub fn dynamodb_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// A Secrets Manager client (the stack's secret, read at cold start); `AWS_ENDPOINT_URL_SECRETS_MANAGER`
/// overrides its endpoint, if set.
pub fn secrets_manager_client(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(config)
}

//! The AWS SDK configuration, loaded once per container in `main` from the standard AWS
//! environment (region, credentials, `AWS_ENDPOINT_URL_*` overrides), with one HTTP client
//! (rustls with ring, the project's one TLS stack) shared by every AWS client built from it; and
//! the lean Secrets Manager client of the cold start.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_secretsmanager::config::SharedHttpClient;

use crate::config::vars::{
    AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_REGION,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
};
use crate::config::{ConfigError, Env, optional, required};

/// Load the configuration every AWS client of the container is built from.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
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

/// A Secrets Manager client for the one `GetSecretValue` of a cold start, configured from the
/// variables Lambda sets (region, the role's credentials) rather than through `aws-config`'s
/// provider chains, which would double verify's bootstrap and add to its cold start;
/// `AWS_ENDPOINT_URL_SECRETS_MANAGER` (or `AWS_ENDPOINT_URL`) overrides the endpoint.
pub fn secrets_manager_client(
    env: &impl Env,
) -> Result<aws_sdk_secretsmanager::Client, ConfigError> {
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Builder, Credentials, Region};
    let credentials = Credentials::new(
        required(env, AWS_ACCESS_KEY_ID)?,
        required(env, AWS_SECRET_ACCESS_KEY)?,
        optional(env, AWS_SESSION_TOKEN),
        None,
        "lambda-environment",
    );
    let mut builder = Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(required(env, AWS_REGION)?))
        .credentials_provider(credentials)
        .http_client(https_client());
    if let Some(url) =
        optional(env, AWS_ENDPOINT_URL_SECRETS_MANAGER).or_else(|| optional(env, AWS_ENDPOINT_URL))
    {
        builder = builder.endpoint_url(url);
    }
    Ok(aws_sdk_secretsmanager::Client::from_conf(builder.build()))
}

/// The one HTTPS client stack: rustls with ring.
fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

//! The AWS SDK configuration, loaded once per container in `main` from the standard AWS
//! environment (region, credentials, `AWS_ENDPOINT_URL_*` overrides), with one HTTP client
//! (rustls with ring, the project's one TLS stack) shared by every AWS client built from it; and
//! the lean Secrets Manager client of the cold start.

mod secrets;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_lambda::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_lambda::error::BoxError;
use aws_sdk_secretsmanager::config::SharedHttpClient;
use wechat_protocol::secret::Secret;

use crate::config::vars::{
    AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_REGION,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, LOCAL_INVOKE_KEY,
};
use crate::config::{ConfigError, Env, optional, required};

pub use secrets::SecretsEnv;

/// The header the local server's Lambda Invoke emulation requires (`wx serve` prints its value).
pub const LOCAL_INVOKE_KEY_HEADER: &str = "x-local-invoke-key";

/// Load the configuration every AWS client of the container is built from.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .load()
        .await
}

/// For the local server's Invoke emulation, which checks its key, not a signature: a fixed
/// region and dummy credentials, so nothing is looked up (no profile, no instance metadata).
pub async fn local_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            "local", "local", None, None, "local",
        ))
        .load()
        .await
}

/// A Lambda client (for invoking the refresh function); `endpoint_url` overrides the endpoint
/// (tests, the local server), otherwise `AWS_ENDPOINT_URL_LAMBDA` does, if set. Like that
/// variable, `LOCAL_INVOKE_KEY` is read from the process environment: set, every invoke carries
/// it for the local server's emulation.
pub fn lambda_client(config: &SdkConfig, endpoint_url: Option<&str>) -> aws_sdk_lambda::Client {
    let key = std::env::var(LOCAL_INVOKE_KEY)
        .ok()
        .filter(|k| !k.trim().is_empty())
        .map(Secret::new);
    lambda_client_with_key(config, endpoint_url, key)
}

/// [`lambda_client`] with the local server's invoke key given, not read from the environment.
pub fn lambda_client_with_key(
    config: &SdkConfig,
    endpoint_url: Option<&str>,
    local_invoke_key: Option<Secret<String>>,
) -> aws_sdk_lambda::Client {
    let mut builder = aws_sdk_lambda::config::Builder::from(config);
    if let Some(url) = endpoint_url {
        builder = builder.endpoint_url(url);
    }
    if let Some(key) = local_invoke_key {
        builder = builder.interceptor(LocalInvokeKey(key));
    }
    aws_sdk_lambda::Client::from_conf(builder.build())
}

/// Adds [`LOCAL_INVOKE_KEY_HEADER`] to every request (before signing, so a signature covers it).
#[derive(Debug)]
struct LocalInvokeKey(Secret<String>);

impl Intercept for LocalInvokeKey {
    fn name(&self) -> &'static str {
        "LocalInvokeKey"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        context
            .request_mut()
            .headers_mut()
            .try_insert(LOCAL_INVOKE_KEY_HEADER, self.0.expose().clone())
            .map_err(|_| BoxError::from("LOCAL_INVOKE_KEY is not a valid header value"))?;
        Ok(())
    }
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

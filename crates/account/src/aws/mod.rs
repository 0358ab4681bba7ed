//! The AWS SDK configuration, loaded once per container in `main` from the standard AWS
//! environment (region, credentials, `AWS_ENDPOINT_URL_*` overrides), with one HTTP client
//! (rustls with ring, the project's one TLS stack) shared by every AWS client built from it; and
//! the lean Secrets Manager client of the cold start; and the synchronous JSON Invoke of the
//! functions' Rust callers ([`JsonFunction`]).

mod invoke;
mod secrets;

pub use invoke::{Invoked, JsonFunction, LambdaError};

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_lambda::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_lambda::error::BoxError;
use aws_sdk_secretsmanager::config::SharedHttpClient;
use wechat_protocol::secret::Secret;

use crate::config::vars::{
    AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_REGION,
    AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, LOCAL_INVOKE_KEY,
};
use crate::config::{ConfigError, Env, optional, required};

pub use secrets::{SecretRead, SecretSource, SecretsEnv, SecretsManagerSource};

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

/// A Lambda client for synchronous invokes (the refresh function); `endpoint_url` overrides the endpoint
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
    let mut builder = aws_sdk_lambda::config::Builder::from(config)
        .timeout_config(timeouts(INVOKE_ATTEMPT, INVOKE_OPERATION));
    if let Some(url) = endpoint_url {
        builder = builder.endpoint_url(url);
    }
    if let Some(key) = local_invoke_key {
        builder = builder.interceptor(LocalInvokeKey(key));
    }
    aws_sdk_lambda::Client::from_conf(builder.build())
}

/// A Lambda client for asynchronous invokes (the worker's start), bounded to fit the message
/// side's answer to WeChat; otherwise as [`lambda_client`].
pub fn event_lambda_client(config: &SdkConfig) -> aws_sdk_lambda::Client {
    let client = lambda_client(config, None);
    let config = client
        .config()
        .to_builder()
        .timeout_config(timeouts(EVENT_INVOKE_ATTEMPT, EVENT_INVOKE_OPERATION))
        .build();
    aws_sdk_lambda::Client::from_conf(config)
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

/// A DynamoDB client. An item read or conditional write takes milliseconds: a slow table becomes
/// an error the domain handles (a named outcome) in time, not the function's timeout.
pub fn dynamodb_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(config)
        .timeout_config(timeouts(DYNAMODB_ATTEMPT, DYNAMODB_OPERATION))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Bounds of one DynamoDB attempt and of one call with the SDK's retries.
pub const DYNAMODB_ATTEMPT: Duration = Duration::from_millis(800);
pub const DYNAMODB_OPERATION: Duration = Duration::from_millis(2_000);
/// Bounds of a synchronous invoke of the refresh function, which may wait on another instance's
/// lease and on WeChat (its own calls are bounded by WECHAT_HTTP_TIMEOUT_MS).
pub const INVOKE_ATTEMPT: Duration = Duration::from_secs(11);
pub const INVOKE_OPERATION: Duration = Duration::from_secs(12);
/// Bounds of an asynchronous invoke (the worker's start): Lambda queues it and answers at once,
/// and the message side must still answer WeChat within 5 s.
pub const EVENT_INVOKE_ATTEMPT: Duration = Duration::from_millis(800);
pub const EVENT_INVOKE_OPERATION: Duration = Duration::from_millis(1_500);
/// Bounds of the cold start's one secret read.
pub const SECRET_ATTEMPT: Duration = Duration::from_millis(1_500);
pub const SECRET_OPERATION: Duration = Duration::from_secs(3);
/// Every AWS connection: the SDK's default (3.1 s) is most of WeChat's 5 s.
pub const CONNECT: Duration = Duration::from_millis(1_000);

fn timeouts(attempt: Duration, operation: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT)
        .operation_attempt_timeout(attempt)
        .operation_timeout(operation)
        .build()
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
        .timeout_config(timeouts(SECRET_ATTEMPT, SECRET_OPERATION))
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

//! The `oauth` Lambda: WeChat web authorization (`/oauth/authorize`, `/oauth/callback`,
//! `/oauth/me`, `/oauth/logout`) behind API Gateway HTTP API. All logic is in `shared::oauth`.
//! WECHAT_APP_SECRET and SESSION_SECRET come from the stack's secret when SECRETS_ARN is set.

use std::convert::Infallible;

use lambda_http::{Request, service_fn};
use shared::clock;
use shared::config::vars::{SESSION_SECRET, WECHAT_APP_SECRET};
use shared::config::{ConfigError, ProcessEnv, SecretsEnv};
use shared::dynamo::DynamoTable;
use shared::oauth::{OAuth, OAuthConfig};
use shared::wechat_api::WeChatHttp;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    // JSON logs when the function's log format is JSON (AWS_LAMBDA_LOG_FORMAT), like the others.
    shared::telemetry::init();

    let config = match config().await {
        Ok(config) => config,
        Err(err) => {
            tracing::error!(variable = err.variable, error = %err, "invalid configuration");
            return Err(err.into());
        }
    };
    let http = WeChatHttp::from_config(&config.wechat)?;
    let table = DynamoTable::from_env(config.table_name.clone()).await;
    let oauth = OAuth::new(config, table, http, clock::system());
    let oauth = &oauth;

    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Infallible>(oauth.handle(&req).await)
    }))
    .await
}

async fn config() -> Result<OAuthConfig, ConfigError> {
    OAuthConfig::from_env(
        &SecretsEnv::load(ProcessEnv, &[WECHAT_APP_SECRET, SESSION_SECRET]).await?,
    )
}

//! Lambda `verify` (GET /wechat): WeChat's server URL verification (answers echostr to a correctly signed request).
//! Configuration: WECHAT_TOKEN, WECHAT_APP_ID, WECHAT_ENCODING_AES_KEY, WECHAT_REPLY_RULES,
//! WECHAT_MAX_CLOCK_SKEW_SECS, WECHAT_REQUIRE_ENCRYPTION (see `shared::webhook`); WECHAT_TOKEN from
//! the stack's secret when SECRETS_ARN is set.

use std::convert::Infallible;

use lambda_http::{Error, Request, service_fn};
use shared::config::vars::WECHAT_TOKEN;
use shared::config::{ConfigError, ProcessEnv, SecretsEnv};
use shared::webhook::Webhook;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // Fails the cold start with a message naming the variable when configuration is wrong.
    let webhook = webhook().await.inspect_err(|e| tracing::error!("{e}"))?;
    let webhook = &webhook;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Infallible>(webhook.verify(&req))
    }))
    .await
}

async fn webhook() -> Result<Webhook, ConfigError> {
    Webhook::from_env(&SecretsEnv::load(ProcessEnv, &[WECHAT_TOKEN]).await?)
}

//! The `oauth` Lambda: the account's web side behind API Gateway HTTP API — WeChat web
//! authorization (`/oauth/authorize`, `/oauth/callback`, `/oauth/me`, `/oauth/logout`), JS-SDK
//! signatures (`/jssdk/config`) and, with `DEMO_PAGE_ENABLED`, the demo page (`/demo`). One
//! function serves them because the pages that sign in are the pages that call `wx.config`: one
//! origin, one set of sessions. All logic is in `shared::oauth` and `shared::jssdk`.
//!
//! The jsapi_ticket comes from the central service as every non-refresh function gets tokens:
//! read from the table, the refresh function invoked (`TOKEN_FUNCTION_NAME`) when none is
//! stored. The Lambda client is built only when `JSSDK_ALLOWED_ORIGINS` turns signing on.
//! WECHAT_APP_SECRET and SESSION_SECRET come from the stack's secret when SECRETS_ARN is set.

use std::convert::Infallible;

use lambda_http::{Request, service_fn};
use shared::config::vars::{SESSION_SECRET, WECHAT_APP_SECRET};
use shared::config::{ConfigError, Env, ProcessEnv, SecretsEnv};
use shared::dynamo::DynamoTable;
use shared::jssdk::{Jssdk, JssdkConfig};
use shared::oauth::{OAuth, OAuthConfig};
use shared::token::{LambdaTokenSource, TokenClient};
use shared::wechat_api::WeChatHttp;
use shared::{aws, clock};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    // JSON logs when the function's log format is JSON (AWS_LAMBDA_LOG_FORMAT), like the others.
    shared::telemetry::init();

    let env = match SecretsEnv::load(ProcessEnv, &[WECHAT_APP_SECRET, SESSION_SECRET]).await {
        Ok(env) => env,
        Err(err) => {
            tracing::error!(variable = err.variable, error = %err, "invalid configuration");
            return Err(err.into());
        }
    };
    let (config, jssdk_config) = match configs(&env) {
        Ok(configs) => configs,
        Err(err) => {
            tracing::error!(variable = err.variable, error = %err, "invalid configuration");
            return Err(err.into());
        }
    };
    let clock = clock::system();
    let http = WeChatHttp::from_config(&config.wechat)?;
    let sdk = aws::sdk_config().await;
    let table = DynamoTable::new(aws::dynamodb_client(&sdk), config.table_name.clone());
    let tickets = match jssdk_config.signing_enabled() {
        true => {
            let source = LambdaTokenSource::from_env(
                &env,
                table.clone(),
                aws::lambda_client(&sdk, None),
                clock.clone(),
            )
            .inspect_err(|err| {
                tracing::error!(variable = err.variable, error = %err, "invalid configuration")
            })?;
            // A warm container asks nobody while its ticket is usable.
            Some(TokenClient::with_clock(source, clock.clone()))
        }
        false => None,
    };
    let jssdk = Jssdk::new(
        jssdk_config,
        config.wechat.app_id.clone(),
        config.path_prefix.clone(),
        tickets,
        clock.clone(),
    );
    let oauth = OAuth::new(config, table, http, clock);
    let (oauth, jssdk) = (&oauth, &jssdk);

    lambda_http::run(service_fn(move |req: Request| async move {
        let response = match jssdk.handle(&req).await {
            Some(response) => response,
            None => oauth.handle(&req).await,
        };
        Ok::<_, Infallible>(response)
    }))
    .await
}

fn configs(env: &impl Env) -> Result<(OAuthConfig, JssdkConfig), ConfigError> {
    Ok((OAuthConfig::from_env(env)?, JssdkConfig::from_env(env)?))
}

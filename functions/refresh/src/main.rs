//! The `refresh` Lambda: the account's central access_token service (中控服务器). Invoked by the
//! EventBridge schedule and directly (`{"action": "get"}`, `{"action": "refresh", "stale_token"}`);
//! all logic is `shared::token::handle_invocation`. WECHAT_APP_SECRET comes from the stack's
//! secret when SECRETS_ARN is set.

// The token service's futures nest the AWS SDK's deeply: the default limit (128) is within a few
// levels of what computing their layout needs.
#![recursion_limit = "256"]

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use shared::clock;
use shared::config::vars::{TABLE_NAME, WECHAT_APP_SECRET};
use shared::config::{ProcessEnv, SecretsEnv, required};
use shared::dynamo::DynamoTable;
use shared::token::{TokenConfig, TokenService, handle_invocation};
use shared::wechat_api::WeChatHttp;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let env = SecretsEnv::load(ProcessEnv, &[WECHAT_APP_SECRET]).await?;
    // Configuration and clients once per container; a wrong variable fails the cold start.
    let config = TokenConfig::from_env(&env)?;
    let http = WeChatHttp::from_config(&config.wechat)?;
    let table = DynamoTable::from_env(required(&env, TABLE_NAME)?).await;
    let service = TokenService::new(config, table, http, clock::system());
    let service = &service;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handle_invocation(service, event.payload)
            .await
            .map_err(|e| Diagnostic {
                error_type: e.kind().into(),
                error_message: e.to_string(),
            })
    }))
    .await
}

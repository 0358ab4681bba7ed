//! Lambda `message` (POST /wechat): messages and events pushed by WeChat, answered with a passive
//! reply chosen by the reply rules. A `forward` rule hands the message to the account's own
//! service (`shared::forward`): then, and only then, the function builds a DynamoDB client (the
//! `msg#` de-duplication item) and a Lambda client (the worker); static rules make no AWS call.
//! Configuration: WECHAT_TOKEN, WECHAT_APP_ID, WECHAT_ENCODING_AES_KEY, WECHAT_REPLY_RULES,
//! WECHAT_MAX_CLOCK_SKEW_SECS, WECHAT_REQUIRE_ENCRYPTION (see `shared::webhook`); with a forward
//! rule also TABLE_NAME and WORKER_FUNCTION_NAME. WECHAT_TOKEN and WECHAT_ENCODING_AES_KEY come
//! from the stack's secret when SECRETS_ARN is set.

use std::convert::Infallible;

use lambda_http::{Error, Request, service_fn};
use shared::config::vars::{TABLE_NAME, WECHAT_ENCODING_AES_KEY, WECHAT_TOKEN};
use shared::config::{ConfigError, ProcessEnv, SecretsEnv, required};
use shared::dynamo::DynamoTable;
use shared::forward::{ForwardingRules, LambdaLauncher, MessageSide};
use shared::rules::Rules;
use shared::webhook::{Webhook, WebhookConfig};
use shared::{aws, clock};

type Handler = ForwardingRules<DynamoTable, LambdaLauncher>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // Fails the cold start with a message naming the variable when configuration is wrong.
    let webhook = webhook().await.inspect_err(|e| tracing::error!("{e}"))?;
    let webhook = &webhook;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Infallible>(webhook.message(&req).await)
    }))
    .await
}

async fn webhook() -> Result<Webhook<Handler>, ConfigError> {
    let env = SecretsEnv::load(ProcessEnv, &[WECHAT_TOKEN, WECHAT_ENCODING_AES_KEY]).await?;
    let config = WebhookConfig::from_env(&env)?;
    let rules = Rules::from_env(&env)?;
    let forwarding = match rules.has_forward() {
        false => None,
        true => {
            let table_name = required(&env, TABLE_NAME)?;
            let sdk = aws::sdk_config().await;
            let table = DynamoTable::new(aws::dynamodb_client(&sdk), table_name);
            let launcher = LambdaLauncher::from_env(&env, aws::lambda_client(&sdk, None))?;
            Some(MessageSide::new(table, launcher, clock::system()))
        }
    };
    Ok(Webhook::new(
        config,
        ForwardingRules::new(rules, forwarding),
    ))
}

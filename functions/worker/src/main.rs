//! The `worker` Lambda: finishes a forward that ran past the passive-reply budget. Started by the
//! message function with an asynchronous invoke (`shared::forward::LambdaLauncher`), it calls the
//! account's service once, stores its answer on the `msg#` item, and when the message function
//! gave up waiting, sends the answer through the customer-service API with the access_token from
//! the central token service. All logic is `shared::forward::Worker`. WECHAT_FORWARD_SECRET comes
//! from the stack's secret when SECRETS_ARN is set.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};
use shared::config::vars::{TABLE_NAME, WECHAT_FORWARD_SECRET};
use shared::config::{ProcessEnv, SecretsEnv, WeChatApiConfig, required};
use shared::customer_service::CustomerService;
use shared::dynamo::DynamoTable;
use shared::forward::{ForwardConfig, ForwardJob, HttpForwarder, Worker};
use shared::token::{LambdaTokenSource, TokenClient};
use shared::wechat_api::WeChatHttp;
use shared::{aws, clock};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let env = SecretsEnv::load(ProcessEnv, &[WECHAT_FORWARD_SECRET]).await?;
    // Configuration and clients once per container; a wrong variable fails the cold start.
    let forward = ForwardConfig::from_env(&env)?;
    let api = WeChatApiConfig::from_env(&env)?;
    let clock = clock::system();
    let sdk = aws::sdk_config().await;
    let table = DynamoTable::new(aws::dynamodb_client(&sdk), required(&env, TABLE_NAME)?);
    // The token comes from the central service: read from the table, refreshed by invoking it.
    let source = LambdaTokenSource::from_env(
        &env,
        table.clone(),
        aws::lambda_client(&sdk, None),
        clock.clone(),
    )?;
    let tokens = Arc::new(TokenClient::with_clock(source, clock.clone()));
    let late_channel =
        CustomerService::new(WeChatHttp::new(&api.api_base, api.http_timeout)?, tokens);
    let forwarder = HttpForwarder::new(forward.secret, forward.late_timeout, clock)?;
    let worker = Worker::new(table, forwarder, late_channel);
    let worker = &worker;

    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ForwardJob>| async move {
            let outcome = worker.run(&event.payload).await;
            if outcome.is_failure() {
                // An invocation error: the Errors metric and the failure destination see it; the
                // function's async retries are 0, so nothing is sent twice.
                return Err(Diagnostic {
                    error_type: outcome.code().into(),
                    error_message: format!("{outcome:?}"),
                });
            }
            Ok::<Value, Diagnostic>(json!({ "outcome": outcome.code() }))
        },
    ))
    .await
}

//! The `refresh` Lambda: the account's central access_token service (中控服务器). Invoked by the
//! EventBridge schedule and directly (`{"action": "get"}`, `{"action": "refresh", "stale_token"}`,
//! and the jsapi_ticket's `get_ticket`, `refresh_ticket`); built by `account::compose::refresh`,
//! answered by `account::token::handle_invocation_via`. Invoked through its `ticket` alias (the
//! only grant of the `oauth` function), it answers the ticket's actions only: the entry comes
//! from the ARN Lambda says it was invoked by.

// The token service's futures nest the AWS SDK's deeply: the default limit (128) is within a few
// levels of what computing their layout needs.
#![recursion_limit = "256"]

use account::compose;
use account::token::{Entry, handle_invocation_via};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let service = &compose::cold_start(compose::refresh()).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let entry = Entry::of_invoked(&event.context.invoked_function_arn);
        handle_invocation_via(service, entry, event.payload)
            .await
            .map_err(|e| Diagnostic {
                error_type: e.kind().into(),
                error_message: e.to_string(),
            })
    }))
    .await
}

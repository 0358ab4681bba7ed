//! The `api` Lambda: WeChat's server API for the account's other servers, the token added by
//! the function (`{"method", "path", "query"?, "body"?}`), and its own actions
//! (`{"action": "template_receipt", "msgid"}`); built by `account::compose::api`, answered by
//! `account::api::Api::handle`. A caller's mistake is an answer; a Lambda error means something
//! the caller cannot fix (no token, WeChat unreachable, the table unavailable).

// The token client's futures nest the AWS SDK's deeply (as in the refresh function).
#![recursion_limit = "256"]

use account::compose;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let api = &compose::cold_start(compose::api()).await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        api.handle(event.payload).await.map_err(|e| Diagnostic {
            error_type: e.kind().into(),
            error_message: e.to_string(),
        })
    }))
    .await
}

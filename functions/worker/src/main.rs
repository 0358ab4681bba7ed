//! The `worker` Lambda: finishes a forward that ran past the passive-reply budget. Started by the
//! message function with an asynchronous invoke (`account::forward::LambdaLauncher`), it calls the
//! account's service once, stores its answer on the `msg#` item, and when the message function
//! gave up waiting, sends the answer through the customer-service API with the access_token from
//! the central token service. Built by `account::compose::worker`; all logic is
//! `account::forward::Worker`.

use account::compose;
use account::forward::ForwardJob;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};
use std::time::SystemTime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let worker = &compose::cold_start(compose::worker()).await?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ForwardJob>| async move {
            // Sends stop in time to record the outcome before Lambda's timeout.
            let time_left = event
                .context
                .deadline()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            // Boxed: the worker's future (forward call, token client, sends) nests too deep
            // for rustc's layout query when inlined into this block; one allocation per job.
            let outcome = Box::pin(worker.run_within(&event.payload, time_left)).await;
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

//! Lambda `message` (POST /wechat): messages and events pushed by WeChat, answered with a passive
//! reply chosen by the reply rules; a `forward` rule hands the message to the account's own
//! service (`account::forward`). Built by `account::compose::message`: static rules make no AWS
//! call, a forward rule adds the DynamoDB (`msg#` item) and Lambda (worker) clients.

use std::convert::Infallible;

use account::compose;
use lambda_http::{Error, Request, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let webhook = &compose::cold_start(compose::message()).await?;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Infallible>(webhook.message(&req).await)
    }))
    .await
}

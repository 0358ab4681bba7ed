//! Lambda `message` (POST /wechat): messages and events pushed by WeChat, answered with a passive reply.
//! Configuration: WECHAT_TOKEN, WECHAT_APP_ID, WECHAT_ENCODING_AES_KEY, WECHAT_REPLY_RULES,
//! WECHAT_MAX_CLOCK_SKEW_SECS, WECHAT_REQUIRE_ENCRYPTION (see `shared::webhook`).

use std::convert::Infallible;

use lambda_http::{Error, Request, service_fn};
use shared::config::ProcessEnv;
use shared::webhook::Webhook;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    // Fails the cold start with a message naming the variable when configuration is wrong.
    let webhook = Webhook::from_env(&ProcessEnv).inspect_err(|e| tracing::error!("{e}"))?;
    let webhook = &webhook;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Infallible>(webhook.message(&req).await)
    }))
    .await
}

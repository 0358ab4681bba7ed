//! Lambda `verify` (GET /wechat): WeChat's server URL verification (answers `echostr` to a
//! correctly signed request). Built by `account::compose::verify`: WECHAT_TOKEN (from the
//! stack's secret when SECRETS_ARN is set), WECHAT_APP_ID, WECHAT_ENCODING_AES_KEY,
//! WECHAT_MAX_CLOCK_SKEW_SECS, WECHAT_REQUIRE_ENCRYPTION; no reply rules.

use std::convert::Infallible;

use account::compose;
use lambda_http::{Error, Request, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let webhook = &compose::cold_start(compose::verify()).await?;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Infallible>(webhook.verify(&req).await)
    }))
    .await
}

//! The `oauth` Lambda: the account's web side behind API Gateway HTTP API — WeChat web
//! authorization (`/oauth/*`), JS-SDK signatures (`/jssdk/config`) and, with
//! `DEMO_PAGE_ENABLED`, the demo page (`/demo`). One function serves them because the pages that
//! sign in are the pages that call `wx.config`: one origin, one set of sessions. Built by
//! `account::compose::web`; the jsapi_ticket comes from the central token service.

use std::convert::Infallible;

use account::compose;
use lambda_http::{Error, Request, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let web = &compose::cold_start(compose::web()).await?;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Infallible>(web.handle(&req).await)
    }))
    .await
}

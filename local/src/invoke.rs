//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`) emulated for the
//! `refresh` function, so `aws lambda invoke` and `shared::token::LambdaTokenSource` work against
//! the local server exactly as against Lambda: HTTP 200 with the function's JSON, or HTTP 200 with
//! `X-Amz-Function-Error: Unhandled` and Lambda's `{"errorType", "errorMessage"}`.

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use shared::http::json;
use shared::store::token::TokenStore;
use shared::token::{LambdaError, TokenService, handle_invocation};

/// Answer one invocation request with `service`.
pub async fn answer_invoke_request<S: TokenStore>(
    service: &TokenService<S>,
    request: &Request,
) -> Response<Body> {
    // A body that is not JSON is a bad invocation, answered like any other.
    let event: Value = serde_json::from_slice(request.body().as_ref()).unwrap_or(Value::Null);
    match handle_invocation(service, event).await {
        Ok(answer) => json(StatusCode::OK, &answer),
        Err(e) => {
            let mut response = json(StatusCode::OK, &LambdaError::from(&e));
            response.headers_mut().insert(
                "x-amz-function-error",
                HeaderValue::from_static("Unhandled"),
            );
            response
        }
    }
}

//! The api function as `wx` calls it: the deployed one by Lambda Invoke (`API_FUNCTION_NAME`, the
//! caller's AWS credentials) or, with `--local`, the local server's emulation of it (with this
//! run's key). Either way WeChat is called by the function, with the token from the central
//! service: an operator's laptop needs no place on the account's IP whitelist and never holds a
//! token.

use account::api::{Action, ApiFunction, ApiInvokeError, Payload};
use account::config::vars::API_FUNCTION_NAME;

pub use account::api::{ApiAnswer, CallRequest as ApiRequest};

use crate::CliError;
use crate::config::Config;
use crate::token::{Via, function_client};

/// The function to invoke: the deployed one, or the local server's.
async fn function(config: &Config, via: &Via) -> Result<ApiFunction, CliError> {
    let (lambda, name, _) = function_client(
        config,
        via,
        API_FUNCTION_NAME,
        "api function (its ApiFunctionName output)",
        "api",
    )
    .await?;
    Ok(ApiFunction::new(lambda, name))
}

fn invoke_failed(e: ApiInvokeError) -> CliError {
    CliError::Message(e.to_string())
}

/// Relay `request` to WeChat through the api function: WeChat's status and JSON, its errcode and
/// the outcome; a refusal (400/403) comes back as an answer too.
pub async fn call(config: &Config, via: &Via, request: &ApiRequest) -> Result<ApiAnswer, CliError> {
    function(config, via)
        .await?
        .invoke(&Payload::Call(request.clone()))
        .await
        .map_err(invoke_failed)
}

/// One of the function's own actions.
pub async fn act(config: &Config, via: &Via, action: Action) -> Result<ApiAnswer, CliError> {
    function(config, via)
        .await?
        .invoke(&Payload::Action(action))
        .await
        .map_err(invoke_failed)
}

/// The answer when WeChat accepted the call (HTTP 2xx, errcode absent or 0); otherwise one error
/// line: the refusal's message, or WeChat's errcode with what it means.
pub fn accepted(answer: ApiAnswer) -> Result<ApiAnswer, CliError> {
    if let Some(error) = answer.body.get("error").and_then(|e| e.as_str())
        && answer.status >= 400
    {
        let message = answer.body["message"].as_str().unwrap_or_default();
        return Err(CliError::Message(format!(
            "the api function refused the call ({error}): {message}"
        )));
    }
    if !(200..300).contains(&answer.status) {
        return Err(CliError::Message(format!(
            "WeChat answered HTTP {}",
            answer.status
        )));
    }
    match answer.errcode.filter(|code| *code != 0) {
        None => Ok(answer),
        Some(code) => Err(CliError::Message(wechat_refusal(code, &answer))),
    }
}

/// `WeChat answered errcode N (meaning): errmsg [outcome]`.
pub fn wechat_refusal(code: i64, answer: &ApiAnswer) -> String {
    let errmsg = answer.body["errmsg"].as_str().unwrap_or_default();
    let meaning = wechat_api::errcode::meaning(code, wechat_api::errcode::Context::WithToken)
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    let outcome = answer
        .outcome
        .as_deref()
        .map(|o| format!(" [{o}]"))
        .unwrap_or_default();
    format!("WeChat answered errcode {code}{meaning}: {errmsg}{outcome}")
}

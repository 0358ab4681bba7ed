//! A synchronous Lambda Invoke with a JSON payload, as the Rust callers of the `refresh` and `api`
//! functions make it (`token::RefreshFunction`, `api::ApiFunction`): the function's answer, or
//! the function error Lambda reports, or why no answer came back at all.

use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::error::{DisplayErrorContext, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use serde::{Deserialize, Serialize};

/// Lambda's shape for a function error, as `lambda_runtime` reports a handler's `Err`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaError {
    #[serde(rename = "errorMessage", default)]
    pub error_message: String,
    #[serde(rename = "errorType", default)]
    pub error_type: String,
}

/// What an invocation came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invoked {
    /// The function's answer, its payload as sent (`null` when it sent none).
    Answer(Vec<u8>),
    /// The function failed: Lambda's `X-Amz-Function-Error` (`Unhandled`, …) and the error's
    /// payload, when it is Lambda's `{errorType, errorMessage}`.
    Failed {
        kind: String,
        error: Option<LambdaError>,
    },
}

/// A function its Rust callers invoke synchronously with JSON: the Lambda client and the
/// function's name or ARN (never more in its `Debug`).
#[derive(Clone)]
pub struct JsonFunction {
    lambda: aws_sdk_lambda::Client,
    name: String,
}

impl std::fmt::Debug for JsonFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonFunction")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl JsonFunction {
    pub fn new(lambda: aws_sdk_lambda::Client, name: impl Into<String>) -> Self {
        Self {
            lambda,
            name: name.into(),
        }
    }

    /// The function's name or ARN, as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Invoke with the JSON `payload` and wait for the answer; `Err` says why no answer came
    /// (the SDK's error chain, or a non-Lambda refusal's status and first line).
    pub async fn invoke(&self, payload: Vec<u8>) -> Result<Invoked, String> {
        let output = self
            .lambda
            .invoke()
            .function_name(&self.name)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| invoke_error(&e))?;
        let body = output
            .payload()
            .map_or_else(|| b"null".to_vec(), |blob| blob.as_ref().to_vec());
        Ok(match output.function_error() {
            Some(kind) => Invoked::Failed {
                kind: kind.to_string(),
                error: serde_json::from_slice(&body).ok(),
            },
            None => Invoked::Answer(body),
        })
    }
}

/// The SDK's error chain; for an answer that is not Lambda's JSON (a proxy's or the local
/// server's refusal), its status and first line instead of the SDK's parse error.
fn invoke_error(e: &SdkError<InvokeError, HttpResponse>) -> String {
    if let Some(raw) = e.raw_response() {
        let status = raw.status().as_u16();
        let body = raw.body().bytes().unwrap_or_default();
        if !(200..300).contains(&status) && body.trim_ascii_start().first() != Some(&b'{') {
            let text = String::from_utf8_lossy(body);
            let line: String = text
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            return format!("HTTP {status}: {line}");
        }
    }
    DisplayErrorContext(e).to_string()
}

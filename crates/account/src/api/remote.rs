//! [`ApiFunction`]: the `api` function as its callers in Rust see it (the `wx` CLI): one Lambda
//! Invoke per payload, the answer read back as [`ApiAnswer`], a function error as
//! [`ApiInvokeError::Remote`].

use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;

use super::{ApiAnswer, Payload};
use crate::token::LambdaError;

/// Why no answer came back.
#[derive(Debug, thiserror::Error)]
pub enum ApiInvokeError {
    #[error("could not invoke the api function: {0}")]
    Invoke(String),
    /// The function failed (a Lambda error): its `errorType` and `errorMessage`.
    #[error("the api function failed: {kind}: {message}")]
    Remote { kind: String, message: String },
    #[error("the api function's answer is not {{status, body}}: {0}")]
    Answer(String),
}

/// The deployed function (or the local server's emulation of it), by name or ARN.
#[derive(Clone)]
pub struct ApiFunction {
    lambda: aws_sdk_lambda::Client,
    function_name: String,
}

impl std::fmt::Debug for ApiFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiFunction")
            .field("function_name", &self.function_name)
            .finish_non_exhaustive()
    }
}

impl ApiFunction {
    pub fn new(lambda: aws_sdk_lambda::Client, function_name: impl Into<String>) -> Self {
        Self {
            lambda,
            function_name: function_name.into(),
        }
    }

    pub fn function_name(&self) -> &str {
        &self.function_name
    }

    /// Invoke with `payload` and read the answer.
    pub async fn invoke(&self, payload: &Payload) -> Result<ApiAnswer, ApiInvokeError> {
        let bytes = serde_json::to_vec(&payload.to_value())
            .map_err(|e| ApiInvokeError::Invoke(e.to_string()))?;
        let output = self
            .lambda
            .invoke()
            .function_name(&self.function_name)
            .payload(Blob::new(bytes))
            .send()
            .await
            .map_err(|e| ApiInvokeError::Invoke(invoke_error(&e)))?;
        let body = output
            .payload()
            .map(|blob| blob.as_ref())
            .unwrap_or(b"null");
        if output.function_error().is_some() {
            let error: LambdaError = serde_json::from_slice(body).unwrap_or(LambdaError {
                error_message: "no message".into(),
                error_type: "error".into(),
            });
            return Err(ApiInvokeError::Remote {
                kind: error.error_type,
                message: error.error_message,
            });
        }
        serde_json::from_slice(body).map_err(|e| ApiInvokeError::Answer(e.to_string()))
    }
}

/// The SDK's error chain; for an answer that is not Lambda's (the local server's 403), its status
/// and first line.
fn invoke_error(
    e: &aws_sdk_lambda::error::SdkError<
        aws_sdk_lambda::operation::invoke::InvokeError,
        aws_sdk_lambda::config::http::HttpResponse,
    >,
) -> String {
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

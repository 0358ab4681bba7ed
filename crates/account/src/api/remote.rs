//! [`ApiFunction`]: the `api` function as its callers in Rust see it (the `wx` CLI): one Lambda
//! Invoke per payload, the answer read back as [`ApiAnswer`], a function error as
//! [`ApiInvokeError::Remote`].

use super::{ApiAnswer, Payload};
use crate::aws::{Invoked, JsonFunction, LambdaError};

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
#[derive(Debug, Clone)]
pub struct ApiFunction {
    function: JsonFunction,
}

impl ApiFunction {
    pub fn new(lambda: aws_sdk_lambda::Client, function_name: impl Into<String>) -> Self {
        Self {
            function: JsonFunction::new(lambda, function_name),
        }
    }

    pub fn function_name(&self) -> &str {
        self.function.name()
    }

    /// Invoke with `payload` and read the answer.
    pub async fn invoke(&self, payload: &Payload) -> Result<ApiAnswer, ApiInvokeError> {
        let bytes = serde_json::to_vec(&payload.to_value())
            .map_err(|e| ApiInvokeError::Invoke(e.to_string()))?;
        let body = match self
            .function
            .invoke(bytes)
            .await
            .map_err(ApiInvokeError::Invoke)?
        {
            Invoked::Answer(body) => body,
            Invoked::Failed { error, .. } => {
                let error = error.unwrap_or(LambdaError {
                    error_message: "no message".into(),
                    error_type: "error".into(),
                });
                return Err(ApiInvokeError::Remote {
                    kind: error.error_type,
                    message: error.error_message,
                });
            }
        };
        serde_json::from_slice(&body).map_err(|e| ApiInvokeError::Answer(e.to_string()))
    }
}

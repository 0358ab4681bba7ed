//! The token source of the functions other than `refresh`: they read the token item straight from
//! the table (read-only access), and anything that needs a fetch — no usable token stored, or a
//! token WeChat rejected — goes to the `refresh` function by Lambda Invoke, so that function stays
//! the only one that ever calls WeChat's token endpoint.

use aws_config::BehaviorVersion;
use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;

use super::invocation::parse_token_answer;
use super::{AccessToken, Invocation, TokenError, TokenSource};
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, Env, Secret, required};
use crate::dynamo::DynamoTable;
use crate::store::token::TokenStore;

/// Reads `token#<app_id>` from DynamoDB; invokes the refresh function (`TOKEN_FUNCTION_NAME`) for
/// `get` when nothing usable is stored, and for every stale report.
#[derive(Debug, Clone)]
pub struct LambdaTokenSource {
    table: DynamoTable,
    lambda: aws_sdk_lambda::Client,
    function_name: String,
    app_id: String,
}

impl LambdaTokenSource {
    pub fn new(
        table: DynamoTable,
        lambda: aws_sdk_lambda::Client,
        function_name: impl Into<String>,
        app_id: impl Into<String>,
    ) -> Self {
        Self {
            table,
            lambda,
            function_name: function_name.into(),
            app_id: app_id.into(),
        }
    }

    /// `TOKEN_FUNCTION_NAME` (name or ARN of the refresh function) and `WECHAT_APP_ID` from `env`;
    /// the Lambda client from the standard AWS environment (endpoint override:
    /// `AWS_ENDPOINT_URL_LAMBDA`), sharing the table client's HTTP client (rustls with ring).
    pub async fn from_env(env: &impl Env, table: DynamoTable) -> Result<Self, ConfigError> {
        let function_name = required(env, "TOKEN_FUNCTION_NAME")?;
        let app_id = required(env, "WECHAT_APP_ID")?;
        let lambda = Self::lambda_client(&table, None).await;
        Ok(Self::new(table, lambda, function_name, app_id))
    }

    /// A Lambda client from the standard AWS environment that shares `table`'s HTTP client (one
    /// TLS stack, one connection pool). `endpoint_url` overrides the endpoint (tests); without
    /// it, `AWS_ENDPOINT_URL_LAMBDA` does, if set.
    pub async fn lambda_client(
        table: &DynamoTable,
        endpoint_url: Option<&str>,
    ) -> aws_sdk_lambda::Client {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(http_client) = table.client.config().http_client() {
            loader = loader.http_client(http_client);
        }
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        aws_sdk_lambda::Client::new(&loader.load().await)
    }

    async fn invoke(&self, invocation: Invocation) -> Result<AccessToken, TokenError> {
        let payload = serde_json::to_vec(&invocation.to_payload())
            .map_err(|e| TokenError::Invoke(e.to_string()))?;
        let output = self
            .lambda
            .invoke()
            .function_name(&self.function_name)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| TokenError::Invoke(DisplayErrorContext(&e).to_string()))?;
        let body: Value = output
            .payload()
            .map(|blob| serde_json::from_slice(blob.as_ref()))
            .transpose()
            .map_err(|e| TokenError::Remote(format!("the answer is not JSON: {e}")))?
            .unwrap_or(Value::Null);
        if let Some(kind) = output.function_error() {
            // Lambda's error shape: {"errorType": "...", "errorMessage": "..."}.
            let error_type = body.get("errorType").and_then(Value::as_str);
            let message = body.get("errorMessage").and_then(Value::as_str);
            return Err(TokenError::Remote(format!(
                "{kind}: {}: {}",
                error_type.unwrap_or("error"),
                message.unwrap_or("no message")
            )));
        }
        parse_token_answer(&body)
    }
}

impl TokenSource for LambdaTokenSource {
    async fn current(&self) -> Result<AccessToken, TokenError> {
        let now = SystemClock.now_ms();
        let stored = self
            .table
            .read_token(&self.app_id)
            .await?
            .map(|record| AccessToken {
                value: record.access_token,
                expires_at_ms: record.expires_at_ms,
            });
        match stored {
            Some(token) if token.is_usable_at(now) => Ok(token),
            _ => self.invoke(Invocation::Get).await,
        }
    }

    async fn report_stale(&self, stale: &str) -> Result<AccessToken, TokenError> {
        self.invoke(Invocation::Refresh {
            stale_token: Secret::new(stale.to_string()),
        })
        .await
    }
}

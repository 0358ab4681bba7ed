//! The token and ticket source of the functions other than `refresh`: they read the token or
//! ticket item straight from the table (read-only access), and anything that needs a fetch — none
//! usable stored, or a token WeChat rejected — goes to the `refresh` function by Lambda Invoke,
//! so that function stays the only one that ever calls WeChat's token and ticket endpoints. The
//! table reader, the Lambda client and the clock come from `main`. [`RefreshFunction`] is the Invoke half alone, for callers that
//! cannot read the table (the `wx` CLI).

use serde::de::DeserializeOwned;
use wechat_protocol::secret::Secret;

use super::invocation::{TicketAnswer, TokenAnswer};
use super::{AccessToken, Invocation, MIN_REMAINING_MS, TokenError, TokenSource};
use crate::aws::{Invoked, JsonFunction};
use crate::clock::SharedClock;
use crate::config::vars::TOKEN_FUNCTION_NAME;
use crate::config::{ConfigError, Env, required};
use crate::token::store::TokenStore;
use crate::token::{JsapiTicket, TicketSource};

/// The refresh function, asked by Lambda Invoke: [`Invocation::Get`] and [`Invocation::Refresh`]
/// answered with the token, [`Invocation::GetTicket`] with the ticket, or the function's error. Also a [`TokenSource`] of its own, for
/// callers with no table access (the `wx` CLI): every lookup is an invoke.
#[derive(Debug, Clone)]
pub struct RefreshFunction {
    function: JsonFunction,
}

impl RefreshFunction {
    pub fn new(lambda: aws_sdk_lambda::Client, function_name: impl Into<String>) -> Self {
        Self {
            function: JsonFunction::new(lambda, function_name),
        }
    }

    pub fn function_name(&self) -> &str {
        self.function.name()
    }

    /// Invoke the function with `invocation`'s payload and read the token it answers.
    pub async fn invoke(&self, invocation: Invocation) -> Result<AccessToken, TokenError> {
        self.invoke_for::<TokenAnswer>(invocation, "access_token or expires_at")
            .await?
            .into_token()
    }

    /// Invoke the function for the jsapi_ticket (`get_ticket`).
    pub async fn invoke_for_ticket(&self) -> Result<JsapiTicket, TokenError> {
        self.invoke_for::<TicketAnswer>(Invocation::GetTicket, "jsapi_ticket or expires_at")
            .await?
            .into_ticket()
    }

    /// Invoke the function and read its answer as `A`; `fields` names what `A` needs, for the
    /// error when the answer lacks it.
    async fn invoke_for<A: DeserializeOwned>(
        &self,
        invocation: Invocation,
        fields: &str,
    ) -> Result<A, TokenError> {
        let payload = serde_json::to_vec(&invocation.to_payload())
            .map_err(|e| TokenError::Invoke(e.to_string()))?;
        let body = match self
            .function
            .invoke(payload)
            .await
            .map_err(TokenError::Invoke)?
        {
            Invoked::Answer(body) => body,
            Invoked::Failed { kind, error } => {
                let (error_type, message) = error.map_or((None, None), |e| {
                    (Some(e.error_type), Some(e.error_message))
                });
                return Err(TokenError::Remote(format!(
                    "{kind}: {}: {}",
                    error_type
                        .filter(|t| !t.is_empty())
                        .as_deref()
                        .unwrap_or("error"),
                    message
                        .filter(|m| !m.is_empty())
                        .as_deref()
                        .unwrap_or("no message")
                )));
            }
        };
        serde_json::from_slice::<A>(&body).map_err(|e| {
            if e.is_data() {
                TokenError::Remote(format!("the answer lacks {fields}"))
            } else {
                TokenError::Remote(format!("the answer is not JSON: {e}"))
            }
        })
    }
}

impl TicketSource for RefreshFunction {
    async fn jsapi_ticket(&self) -> Result<JsapiTicket, TokenError> {
        self.invoke_for_ticket().await
    }
}

impl TokenSource for RefreshFunction {
    async fn current(&self) -> Result<AccessToken, TokenError> {
        self.invoke(Invocation::Get).await
    }

    async fn report_stale(&self, stale: &str) -> Result<AccessToken, TokenError> {
        self.invoke(Invocation::Refresh {
            stale_token: Secret::new(stale.to_string()),
        })
        .await
    }
}

/// Reads `token#<app_id>` (and `ticket#<app_id>`) through `tokens` (the DynamoDB table in
/// production); invokes the refresh function (`TOKEN_FUNCTION_NAME`) for `get` (`get_ticket`)
/// when nothing usable is stored, and for every stale report.
pub struct LambdaTokenSource<R> {
    tokens: R,
    function: RefreshFunction,
    app_id: String,
    clock: SharedClock,
}

impl<R> std::fmt::Debug for LambdaTokenSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaTokenSource")
            .field("function_name", &self.function.function_name())
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl<R: TokenStore> LambdaTokenSource<R> {
    pub fn new(
        tokens: R,
        lambda: aws_sdk_lambda::Client,
        function_name: impl Into<String>,
        app_id: impl Into<String>,
        clock: SharedClock,
    ) -> Self {
        Self {
            tokens,
            function: RefreshFunction::new(lambda, function_name),
            app_id: app_id.into(),
            clock,
        }
    }

    /// `TOKEN_FUNCTION_NAME` (name or ARN of the refresh function) and `WECHAT_APP_ID` from `env`.
    pub fn from_env(
        env: &impl Env,
        tokens: R,
        lambda: aws_sdk_lambda::Client,
        clock: SharedClock,
    ) -> Result<Self, ConfigError> {
        let function_name = required(env, TOKEN_FUNCTION_NAME)?;
        let app_id = crate::config::required_app_id(env)?;
        Ok(Self::new(tokens, lambda, function_name, app_id, clock))
    }
}

impl<R: TokenStore> TokenSource for LambdaTokenSource<R> {
    async fn current(&self) -> Result<AccessToken, TokenError> {
        let now = self.clock.now_ms();
        let stored = self
            .tokens
            .read_token(&self.app_id)
            .await?
            .map(|record| AccessToken {
                value: record.access_token,
                expires_at_ms: record.expires_at_ms,
            });
        match stored {
            Some(token) if token.is_usable_at(now) => Ok(token),
            _ => self.function.invoke(Invocation::Get).await,
        }
    }

    async fn report_stale(&self, stale: &str) -> Result<AccessToken, TokenError> {
        self.function
            .invoke(Invocation::Refresh {
                stale_token: Secret::new(stale.to_string()),
            })
            .await
    }
}

impl<R: TokenStore> TicketSource for LambdaTokenSource<R> {
    async fn jsapi_ticket(&self) -> Result<JsapiTicket, TokenError> {
        let now = self.clock.now_ms();
        let stored = self.tokens.read_ticket(&self.app_id).await?;
        match stored {
            Some(record) if record.expires_at_ms - now > MIN_REMAINING_MS => Ok(JsapiTicket {
                value: record.jsapi_ticket,
                expires_at_ms: record.expires_at_ms,
            }),
            _ => self.function.invoke_for_ticket().await,
        }
    }
}

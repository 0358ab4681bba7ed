//! [`CustomerService`]: sends one [`CustomMessage`] with the account's access_token through the
//! [`TokenClient`] (a rejected token is reported stale once and the message resent once),
//! retries WeChat's busy answers within a [`RetryPolicy`] ([`DEFAULT_RETRY`] unless configured),
//! and ends every send in one [`SendOutcome`], logged once.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use wechat_api::errcode::ErrClass;
use wechat_api::{Ack, ApiError, WeChatHttp};
use wechat_protocol::secret::{Secret, fingerprint};

use super::message::{CustomMessage, TypingStatus};
use super::outcome::{SendOutcome, log, log_call};
use crate::token::{RetryPolicy, TokenClient, TokenSource};

/// The retries of WeChat's busy answers (-1, 45011) unless configured otherwise: 3 calls in
/// all, 300 ms then 600 ms apart.
pub const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    attempts: 3,
    backoff: Duration::from_millis(300),
};

/// Sends customer-service messages for one account. Build it once per container, next to the
/// token client it shares.
pub struct CustomerService<S> {
    http: WeChatHttp,
    tokens: Arc<TokenClient<S>>,
    retry: RetryPolicy,
}

impl<S> fmt::Debug for CustomerService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerService")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl<S: TokenSource> CustomerService<S> {
    /// With [`DEFAULT_RETRY`] for WeChat's busy answers.
    pub fn new(http: WeChatHttp, tokens: Arc<TokenClient<S>>) -> Self {
        Self {
            http,
            tokens,
            retry: DEFAULT_RETRY,
        }
    }

    /// The same service with `retry` for WeChat's busy answers (at least one call is made).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = RetryPolicy {
            attempts: retry.attempts.max(1),
            ..retry
        };
        self
    }

    /// Send `message`, logging its outcome once (the openid as a fingerprint, never the
    /// content or the token).
    ///
    /// A token WeChat rejects (40001/40014/42001) is reported stale once and the message resent
    /// once with the replacement ([`TokenClient::call_with_token`]); WeChat's busy answers are
    /// retried within the retry policy, counted across both tokens. Nothing else is retried.
    pub async fn send(&self, message: &CustomMessage) -> SendOutcome {
        let busy_attempts = AtomicU32::new(0);
        let result = self
            .tokens
            .call_with_token(|token| self.send_retrying_busy(message, token, &busy_attempts))
            .await;
        let outcome = SendOutcome::of(result, busy_attempts.load(Ordering::SeqCst));
        log(message, &outcome);
        outcome
    }

    /// Show "typing…" to `touser` ([`TypingStatus`]), logging its outcome once. One call (and
    /// the one resend after a rejected token): the status is a courtesy, not worth a retry.
    pub async fn typing(&self, touser: &str) -> SendOutcome {
        let status = &TypingStatus::typing(touser);
        let result = self
            .tokens
            .call_with_token(|token| async move { self.http.call_with_token(status, &token).await })
            .await;
        let outcome = SendOutcome::of(result, 1);
        log_call(touser, "typing", &outcome);
        outcome
    }

    /// One token's calls: again after a pause while WeChat answers busy and attempts are left.
    async fn send_retrying_busy(
        &self,
        message: &CustomMessage,
        token: Secret<String>,
        attempts: &AtomicU32,
    ) -> Result<Ack, ApiError> {
        loop {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            let result = self.http.call_with_token(message, &token).await;
            let busy = result
                .as_ref()
                .err()
                .and_then(ApiError::class)
                .is_some_and(|class| class == ErrClass::Busy);
            if !busy || attempt >= self.retry.attempts {
                return result;
            }
            // Doubling from the policy's backoff: 1x before the 2nd call, 2x before the 3rd, ...
            let pause = self.retry.backoff * 2u32.saturating_pow(attempt - 1);
            tracing::warn!(
                openid = %fingerprint(&message.touser),
                attempt,
                backoff_ms = pause.as_millis() as u64,
                "WeChat is busy; sending the customer-service message again"
            );
            tokio::time::sleep(pause).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer_service::message::PATH;
    use crate::token::{AccessToken, TokenError};
    use std::sync::Mutex;
    use wechat_api::Method;
    use wechat_api::double::{InProcessWeChat, ok};

    /// Hands out token `A`; a stale report of it yields `B`.
    struct TwoTokens;

    fn token(value: &str) -> AccessToken {
        AccessToken {
            value: Secret::new(value.into()),
            expires_at_ms: i64::MAX,
        }
    }

    impl TokenSource for TwoTokens {
        async fn current(&self) -> Result<AccessToken, TokenError> {
            Ok(token("A"))
        }

        async fn report_stale(&self, _stale: &str) -> Result<AccessToken, TokenError> {
            Ok(token("B"))
        }
    }

    /// A service over a double answering `answers` in order.
    fn service(answers: &[&'static str]) -> (Arc<InProcessWeChat>, CustomerService<TwoTokens>) {
        let answers = Mutex::new(answers.iter().rev().copied().collect::<Vec<_>>());
        let double = InProcessWeChat::new(move |_| {
            ok(answers
                .lock()
                .unwrap()
                .pop()
                .unwrap_or(r#"{"errcode":0,"errmsg":"ok"}"#))
        });
        let tokens = Arc::new(TokenClient::new(TwoTokens));
        let cs = CustomerService::new(double.client(), tokens).with_retry(RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(1),
        });
        (double, cs)
    }

    fn access_tokens(double: &InProcessWeChat) -> Vec<String> {
        double
            .requests()
            .iter()
            .map(|r| r.query.trim_start_matches("access_token=").to_string())
            .collect()
    }

    #[tokio::test]
    async fn the_message_is_posted_as_json_with_the_token_in_the_query() {
        let (double, cs) = service(&[]);
        let message = CustomMessage::text("oUser", "hi");
        assert_eq!(cs.send(&message).await, SendOutcome::Sent);
        let requests = double.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, Method::Post);
        assert_eq!(requests[0].path, PATH);
        assert_eq!(requests[0].query, "access_token=A");
        let body: serde_json::Value =
            serde_json::from_slice(requests[0].json_body.as_deref().unwrap()).unwrap();
        assert_eq!(body, to_json(&message));
    }

    #[tokio::test]
    async fn busy_attempts_are_counted_across_the_token_refresh() {
        let busy = r#"{"errcode":-1,"errmsg":"system error"}"#;
        let rejected = r#"{"errcode":40001,"errmsg":"invalid credential"}"#;
        let (double, cs) = service(&[busy, rejected, busy, busy]);
        let outcome = cs.send(&CustomMessage::text("oUser", "hi")).await;
        assert_eq!(
            outcome,
            SendOutcome::WeChatBusy {
                errcode: -1,
                attempts: 3
            }
        );
        assert_eq!(access_tokens(&double), ["A", "A", "B"]);
    }

    #[tokio::test]
    async fn a_retry_policy_of_zero_attempts_still_sends_once() {
        let (double, cs) = service(&[r#"{"errcode":-1,"errmsg":"system error"}"#]);
        let cs = cs.with_retry(RetryPolicy {
            attempts: 0,
            backoff: Duration::ZERO,
        });
        let outcome = cs.send(&CustomMessage::text("oUser", "hi")).await;
        assert_eq!(
            outcome,
            SendOutcome::WeChatBusy {
                errcode: -1,
                attempts: 1
            }
        );
        assert_eq!(double.requests().len(), 1);
    }

    fn to_json(message: &CustomMessage) -> serde_json::Value {
        serde_json::to_value(message).unwrap()
    }
}

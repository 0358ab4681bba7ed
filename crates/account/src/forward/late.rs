//! The port the worker sends late answers (and the typing status) through, its production
//! adapter (the customer-service API: [`CustomerService`]), and [`RecordingLateSender`], an
//! in-memory double that records every call.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use wechat_api::ApiError;

use super::answer::Answer;
use crate::customer_service::{CustomMessage, CustomerService, SendOutcome};
use crate::token::TokenSource;

/// What became of one late send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LateDelivery {
    Sent,
    /// WeChat refused it for good (the 48-hour window passed, too many messages, bad openid, a
    /// type it cannot send, …): `code` is a stable snake_case name for logs.
    Rejected {
        code: &'static str,
        reason: String,
    },
    /// Not sent, and worth another try later: WeChat stayed busy through the sender's own
    /// retries, could not be reached, or no access_token could be had.
    Unavailable {
        reason: String,
    },
    /// Not known to be sent: WeChat timed out, answered an HTTP error or something that is not
    /// JSON. It may have arrived, so it counts against the allowance; sending it again may
    /// deliver it twice.
    Uncertain {
        reason: String,
    },
}

/// Sends an answer to a user outside the request (`POST /cgi-bin/message/custom/send`), and shows
/// them "typing…" meanwhile (`POST /cgi-bin/message/custom/typing`).
pub trait LateSender: Send + Sync {
    /// One message, with the sender's own bounded retries at most.
    fn send(&self, openid: &str, answer: &Answer) -> impl Future<Output = LateDelivery> + Send;

    /// Show "typing…" to `openid`: a courtesy, never retried.
    fn typing(&self, openid: &str) -> impl Future<Output = LateDelivery> + Send;
}

impl<S: LateSender> LateSender for Arc<S> {
    fn send(&self, openid: &str, answer: &Answer) -> impl Future<Output = LateDelivery> + Send {
        (**self).send(openid, answer)
    }

    fn typing(&self, openid: &str) -> impl Future<Output = LateDelivery> + Send {
        (**self).typing(openid)
    }
}

/// One call a [`RecordingLateSender`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LateCall {
    Typing(String),
    Send(String, Answer),
}

/// Records every call, in order, and answers scripted deliveries: the queued ones first
/// ([`Self::answer_next`]), then the standing one ([`Self::answer_with`], [`LateDelivery::Sent`]
/// by default). Typing is always [`LateDelivery::Sent`]. Clones share the record.
#[derive(Debug, Clone)]
pub struct RecordingLateSender {
    calls: Arc<Mutex<Vec<LateCall>>>,
    delivery: Arc<Mutex<LateDelivery>>,
    next: Arc<Mutex<VecDeque<LateDelivery>>>,
}

impl Default for RecordingLateSender {
    fn default() -> Self {
        Self {
            calls: Arc::default(),
            delivery: Arc::new(Mutex::new(LateDelivery::Sent)),
            next: Arc::default(),
        }
    }
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl RecordingLateSender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every later send answers `delivery` (once the queued ones are used).
    pub fn answer_with(&self, delivery: LateDelivery) {
        *locked(&self.delivery) = delivery;
    }

    /// The next sends answer `deliveries`, in order.
    pub fn answer_next(&self, deliveries: impl IntoIterator<Item = LateDelivery>) {
        locked(&self.next).extend(deliveries);
    }

    /// Every send so far: the openid and the answer.
    pub fn sent(&self) -> Vec<(String, Answer)> {
        locked(&self.calls)
            .iter()
            .filter_map(|call| match call {
                LateCall::Send(openid, answer) => Some((openid.clone(), answer.clone())),
                LateCall::Typing(_) => None,
            })
            .collect()
    }

    /// Every call so far, sends and typing, in order.
    pub fn calls(&self) -> Vec<LateCall> {
        locked(&self.calls).clone()
    }
}

impl LateSender for RecordingLateSender {
    fn send(&self, openid: &str, answer: &Answer) -> impl Future<Output = LateDelivery> + Send {
        locked(&self.calls).push(LateCall::Send(openid.to_string(), answer.clone()));
        let queued = locked(&self.next).pop_front();
        let delivery = queued.unwrap_or_else(|| locked(&self.delivery).clone());
        std::future::ready(delivery)
    }

    fn typing(&self, openid: &str) -> impl Future<Output = LateDelivery> + Send {
        locked(&self.calls).push(LateCall::Typing(openid.to_string()));
        std::future::ready(LateDelivery::Sent)
    }
}

/// The forward worker's late channel: the service's [`Answer`] goes out as a customer-service
/// message. WeChat's refusals become [`LateDelivery::Rejected`] under the outcome's code (so the
/// worker's log and the message item say `window_closed`, `invalid_openid`, …); what may pass
/// with time (busy, unreachable, no token) is [`LateDelivery::Unavailable`], and what may have
/// arrived (a timeout, an HTTP error) [`LateDelivery::Uncertain`].
impl<S: TokenSource> LateSender for CustomerService<S> {
    async fn send(&self, openid: &str, answer: &Answer) -> LateDelivery {
        let message = match answer {
            Answer::Reply(reply) => match CustomMessage::from_reply(openid, reply) {
                Ok(message) => message,
                Err(e) => {
                    return LateDelivery::Rejected {
                        code: "not_sendable",
                        reason: e.to_string(),
                    };
                }
            },
            Answer::MpNews { media_id } => CustomMessage::mpnews(openid, media_id.as_str()),
            Answer::MsgMenu(menu) => CustomMessage::menu(openid, menu.clone()),
        };
        // The inherent `send`: one customer-service call with its retries and token refresh.
        delivery(CustomerService::send(self, &message).await)
    }

    async fn typing(&self, openid: &str) -> LateDelivery {
        delivery(CustomerService::typing(self, openid).await)
    }
}

/// A send's outcome as the worker sees it: what may pass with time, what may have arrived, and
/// WeChat's refusals under the outcome's code.
fn delivery(outcome: SendOutcome) -> LateDelivery {
    match outcome {
        SendOutcome::Sent => LateDelivery::Sent,
        // The request did not get through (DNS, connect, TLS): nothing arrived.
        SendOutcome::WeChatBusy { .. }
        | SendOutcome::TokenUnavailable { .. }
        | SendOutcome::WeChatUnavailable(ApiError::Transport(_)) => LateDelivery::Unavailable {
            reason: outcome.to_string(),
        },
        SendOutcome::WeChatUnavailable(ApiError::Encode(_)) => LateDelivery::Rejected {
            code: "not_sendable",
            reason: outcome.to_string(),
        },
        SendOutcome::WeChatUnavailable(_) => LateDelivery::Uncertain {
            reason: outcome.to_string(),
        },
        outcome => LateDelivery::Rejected {
            code: outcome.code(),
            reason: outcome.to_string(),
        },
    }
}

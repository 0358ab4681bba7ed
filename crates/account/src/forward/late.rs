//! The port the worker sends late answers through, its production adapter (the customer-service
//! API: [`CustomerService`]), and [`RecordingLateSender`], an in-memory double that records every
//! send.

use std::future::Future;
use std::sync::{Arc, Mutex};

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
    /// WeChat could not be reached or stayed busy through the allowed retries.
    Unavailable {
        reason: String,
    },
}

/// Sends an answer to a user outside the request (`POST /cgi-bin/message/custom/send`).
pub trait LateSender: Send + Sync {
    fn send(&self, openid: &str, answer: &Answer) -> impl Future<Output = LateDelivery> + Send;
}

impl<S: LateSender> LateSender for Arc<S> {
    fn send(&self, openid: &str, answer: &Answer) -> impl Future<Output = LateDelivery> + Send {
        (**self).send(openid, answer)
    }
}

/// Records every send and answers a scripted delivery ([`LateDelivery::Sent`] by default).
/// Clones share the record.
#[derive(Debug, Clone)]
pub struct RecordingLateSender {
    sent: Arc<Mutex<Vec<(String, Answer)>>>,
    delivery: Arc<Mutex<LateDelivery>>,
}

impl Default for RecordingLateSender {
    fn default() -> Self {
        Self {
            sent: Arc::default(),
            delivery: Arc::new(Mutex::new(LateDelivery::Sent)),
        }
    }
}

impl RecordingLateSender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every later send answers `delivery`.
    pub fn answer_with(&self, delivery: LateDelivery) {
        *self.delivery.lock().unwrap_or_else(|e| e.into_inner()) = delivery;
    }

    /// Every send so far: the openid and the answer.
    pub fn sent(&self) -> Vec<(String, Answer)> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl LateSender for RecordingLateSender {
    fn send(&self, openid: &str, answer: &Answer) -> impl Future<Output = LateDelivery> + Send {
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((openid.to_string(), answer.clone()));
        let delivery = self
            .delivery
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        std::future::ready(delivery)
    }
}

/// The forward worker's late channel: the service's [`Answer`] goes out as a customer-service
/// message. WeChat's refusals become [`LateDelivery::Rejected`] under the outcome's code (so the
/// worker's log and the message item say `window_closed`, `invalid_openid`, …); what may pass
/// with time (busy, unreachable, no token) is [`LateDelivery::Unavailable`].
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
        match CustomerService::send(self, &message).await {
            SendOutcome::Sent => LateDelivery::Sent,
            outcome @ (SendOutcome::WeChatBusy { .. }
            | SendOutcome::TokenUnavailable { .. }
            | SendOutcome::WeChatUnavailable(_)) => LateDelivery::Unavailable {
                reason: outcome.to_string(),
            },
            outcome => LateDelivery::Rejected {
                code: outcome.code(),
                reason: outcome.to_string(),
            },
        }
    }
}

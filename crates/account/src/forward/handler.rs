//! The webhook's message handler when rules may forward: static rules answer exactly as
//! [`Rules`] alone does; a forward rule runs the message side of the flow. Built without a
//! forwarding context (no table, no launcher, no AWS client) when the rules have no forward.

use std::future::Future;

use wechat_protocol::message::Message;
use wechat_protocol::reply::{MessageHandler, Reply};

use super::circuit::CircuitLog;
use super::flow::MessageSide;
use super::launch::WorkerLauncher;
use super::record::MessageLog;
use crate::rules::{Action, Rules};

/// [`Rules`] plus, when they forward, the message side of forwarding.
pub struct ForwardingRules<T, L> {
    rules: Rules,
    forwarding: Option<MessageSide<T, L>>,
}

impl<T, L> ForwardingRules<T, L> {
    /// `forwarding` is needed exactly when [`Rules::has_forward`]; without it a forward rule
    /// answers `success` and logs an error.
    pub fn new(rules: Rules, forwarding: Option<MessageSide<T, L>>) -> Self {
        Self { rules, forwarding }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }
}

impl<T: MessageLog + CircuitLog, L: WorkerLauncher> ForwardingRules<T, L> {
    async fn answer(&self, msg: &Message) -> Reply {
        match self.rules.action_for(msg) {
            None => Reply::Success,
            Some(Action::Reply(reply)) => reply.clone(),
            Some(Action::Forward(spec)) => match &self.forwarding {
                Some(side) => side.handle(msg, spec).await.reply(),
                None => {
                    tracing::error!(
                        url = %spec.url,
                        "a forward rule matched but forwarding is not set up; answered success"
                    );
                    Reply::Success
                }
            },
        }
    }
}

impl<T: MessageLog + CircuitLog, L: WorkerLauncher> MessageHandler for ForwardingRules<T, L> {
    fn reply(&self, msg: &Message) -> impl Future<Output = Reply> + Send {
        self.answer(msg)
    }
}

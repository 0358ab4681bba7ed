//! [`ReceiptRecorder`]: records WeChat's `TEMPLATESENDJOBFINISH` event (the final status of a
//! template message) in the table and answers it `success`; every other push goes to the handler
//! it wraps. Off (the message function without `TEMPLATE_RECEIPTS=true`), it is a plain
//! pass-through that never touches the table, and the event goes to the wrapped handler too.

use table::Table;
use wechat_protocol::message::{Event, Message, MessageKind};
use wechat_protocol::reply::{MessageHandler, Reply};

use super::receipt::{ReceiptWrite, record_finished};
use crate::clock::SharedClock;

/// Where receipts go when recording is on.
struct Receipts<T> {
    table: T,
    app_id: String,
    clock: SharedClock,
}

/// A message handler that records template-message receipts before `inner` sees anything.
pub struct ReceiptRecorder<H, T> {
    inner: H,
    receipts: Option<Receipts<T>>,
}

impl<H, T> ReceiptRecorder<H, T> {
    /// Recording into `table` under `app_id`'s receipts.
    pub fn recording(inner: H, table: T, app_id: impl Into<String>, clock: SharedClock) -> Self {
        Self {
            inner,
            receipts: Some(Receipts {
                table,
                app_id: app_id.into(),
                clock,
            }),
        }
    }

    /// Not recording: every push, the event included, goes to `inner`.
    pub fn off(inner: H) -> Self {
        Self {
            inner,
            receipts: None,
        }
    }

    pub fn is_recording(&self) -> bool {
        self.receipts.is_some()
    }

    /// The wrapped handler.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

impl<H: MessageHandler, T: Table> MessageHandler for ReceiptRecorder<H, T> {
    async fn reply(&self, msg: &Message) -> Reply {
        let (Some(receipts), MessageKind::Event(Event::TemplateSendJobFinish { status })) =
            (&self.receipts, &msg.kind)
        else {
            return self.inner.reply(msg).await;
        };
        let Some(msgid) = msg.msg_id.as_deref().filter(|id| !id.is_empty()) else {
            tracing::warn!(
                outcome = "no_msgid",
                "TEMPLATESENDJOBFINISH without a MsgID: nothing to record"
            );
            return Reply::Success;
        };
        let now_s = receipts.clock.now_s();
        // The msgid and WeChat's status are not personal data; the openid is not logged.
        match record_finished(&receipts.table, &receipts.app_id, msgid, status, now_s).await {
            Ok(ReceiptWrite::Recorded) => {
                tracing::info!(msgid, status = %status, outcome = "recorded", "template receipt")
            }
            Ok(ReceiptWrite::AlreadyRecorded) => tracing::info!(
                msgid,
                status = %status,
                outcome = "already_recorded",
                "template receipt (a retry of the push: the first one stays)"
            ),
            // WeChat retries a push it got no answer to, not one answered `success`: the receipt
            // is lost, and the log line says so.
            Err(e) => tracing::error!(
                msgid,
                error = %e,
                outcome = "store_failed",
                "template receipt not recorded"
            ),
        }
        Reply::Success
    }
}

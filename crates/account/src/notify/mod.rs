//! Notifications to followers: template messages (模板消息) and their delivery receipts.
//!
//! - `template`: the typed send (`touser`, `template_id`, `url` or `miniprogram`, `data`,
//!   `client_msg_id`) checked offline before WeChat is asked, the send's named outcomes, and the
//!   `client_msg_id` a send gets when it has none (so internal retries cannot notify twice).
//! - `receipt`: the `receipt#<AppId>#<MsgID>` item: `pending` once a send through the `api`
//!   function succeeded, then WeChat's final status from the `TEMPLATESENDJOBFINISH` event (first
//!   one wins: WeChat retries pushes).
//! - `recorder`: [`ReceiptRecorder`], the message handler decorator that records that event
//!   (`TEMPLATE_RECEIPTS=true`) and hands every other push to the handler it wraps.

mod receipt;
mod recorder;
mod template;

pub use receipt::{
    RECEIPT_TTL_S, Receipt, ReceiptWrite, STATUS_PENDING, read_receipt, receipt_id,
    record_finished, record_sent,
};
pub use recorder::ReceiptRecorder;
pub use template::{
    CLIENT_MSG_ID_MAX_BYTES, DataItem, MiniProgram, SendOutcome, TEMPLATE_SEND_PATH, TemplateError,
    TemplateMessage, new_client_msg_id,
};

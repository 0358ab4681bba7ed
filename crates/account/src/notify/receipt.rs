//! The delivery receipt of a template message: one item per message,
//! `receipt#<AppId>#<MsgID>`, kept [`RECEIPT_TTL_S`] (about 30 days).
//!
//! ```text
//!            send through the api function (errcode 0)     TEMPLATESENDJOBFINISH
//!   (none) ──────────────── pending ──────────────────────────────► <WeChat's Status>
//!     └──────────────────────────── TEMPLATESENDJOBFINISH ────────► <WeChat's Status>
//! ```
//!
//! Each arrow is one conditional write (a PutItem for the send, an UpdateItem for the event, which
//! keeps the send's `sent_at`). `pending` is written only where nothing is (a send
//! recorded after its event arrived leaves the event's status alone); the event's status only
//! where nothing or `pending` is, so the first receipt wins and WeChat's retries of the push
//! change nothing.

use serde::{Deserialize, Serialize};
use table::{Condition, Item, StoreError, Table, Transition, Update};

/// How long a receipt is kept: 30 days.
pub const RECEIPT_TTL_S: i64 = 30 * 24 * 3600;

/// The status of a message sent but not yet reported on by WeChat.
pub const STATUS_PENDING: &str = "pending";

/// The stored receipt. `status` is `pending` or WeChat's `Status` as it came (`success`,
/// `failed:user block`, `failed: system failed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub msgid: String,
    pub status: String,
    /// When the api function recorded the send (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    /// When the `TEMPLATESENDJOBFINISH` event was recorded (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// Epoch seconds; the table's TTL.
    #[serde(skip)]
    pub expires_at: i64,
}

impl Item for Receipt {
    const PREFIX: &'static str = "receipt#";

    fn ttl(&self) -> Option<i64> {
        Some(self.expires_at)
    }
}

/// The item id of `msgid`'s receipt for `app_id`.
pub fn receipt_id(app_id: &str, msgid: &str) -> String {
    format!("{app_id}#{msgid}")
}

/// What a receipt write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptWrite {
    Recorded,
    /// A receipt was already there (a pending one for a send; a final one for an event).
    AlreadyRecorded,
}

impl From<Transition> for ReceiptWrite {
    fn from(transition: Transition) -> Self {
        match transition {
            Transition::Applied => Self::Recorded,
            Transition::Lost => Self::AlreadyRecorded,
        }
    }
}

/// Record that `msgid` was sent at `now_s` (only where no receipt is).
pub async fn record_sent(
    table: &impl Table,
    app_id: &str,
    msgid: &str,
    now_s: i64,
) -> Result<ReceiptWrite, StoreError> {
    let receipt = Receipt {
        msgid: msgid.to_string(),
        status: STATUS_PENDING.into(),
        sent_at: Some(now_s),
        finished_at: None,
        expires_at: now_s + RECEIPT_TTL_S,
    };
    let id = receipt_id(app_id, msgid);
    let outcome = table.put(&id, &receipt, Some(Condition::Absent)).await?;
    Ok(Transition::from(outcome).into())
}

/// Record WeChat's final `status` for `msgid` at `now_s`, in one conditional write: only where no
/// receipt or a pending one is (the first event wins). An update rather than a put, so that a
/// pending receipt keeps its `sent_at` without a read first.
pub async fn record_finished(
    table: &impl Table,
    app_id: &str,
    msgid: &str,
    status: &str,
    now_s: i64,
) -> Result<ReceiptWrite, StoreError> {
    let update = Update::new()
        .set("msgid", msgid)
        .set("status", status)
        .set("finished_at", now_s)
        .set(table::TTL, now_s + RECEIPT_TTL_S);
    let condition = Condition::Any(vec![
        Condition::Absent,
        Condition::equals("status", STATUS_PENDING),
    ]);
    let outcome = table
        .update::<Receipt>(&receipt_id(app_id, msgid), update, condition)
        .await?;
    Ok(Transition::from(outcome).into())
}

/// `msgid`'s receipt, if one is kept (one GetItem).
pub async fn read_receipt(
    table: &impl Table,
    app_id: &str,
    msgid: &str,
) -> Result<Option<Receipt>, StoreError> {
    table.get(&receipt_id(app_id, msgid)).await
}

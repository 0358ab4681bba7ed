//! The `msg#<key>` item: one per push that a forward rule handles, so WeChat's retries (on any
//! instance) are processed once, and the port over the table kernel that moves it between
//! statuses ([`MessageLog`], implemented once for every [`Table`]).
//!
//! ```text
//! (absent) ─claim→ pending ─┬→ answered              passive reply (the worker won)
//!                           ├→ no_answer / failed    nothing sent
//!                           ├→ sending → sent|failed a late-only answer, sent at once
//!                           └→ late ─┬→ sending → sent | failed
//!                                    └→ no_answer / failed
//! ```
//! Every arrow is one conditional write on `status`, so of "the message side gives up waiting"
//! (`pending → late`) and "the worker stores the answer" (`pending → answered`) exactly one
//! happens: an answer is never both passive and late, and only one writer ever reaches `sending`.

use std::future::Future;

use serde::{Deserialize, Serialize};
use table::StoreError;
use table::{Condition, Item, TTL, Table, Transition, Update, WriteOutcome};

use super::answer::Answer;

/// The shortest life of an item: well past WeChat's last retry (about 15 s after the push) and
/// the worker's longest run (the service's late timeout, at most 120 s, and the sends).
pub const MIN_RECORD_LIFE_S: i64 = 300;

/// How long an item is kept when the webhook accepts timestamps up to `max_clock_skew_secs` off
/// (exclusive): a push stays replayable until its timestamp plus the window, and its timestamp
/// may be up to the window ahead of the claim, so twice the window (plus a margin) from the
/// claim covers every replay the signature check lets through; never less than
/// [`MIN_RECORD_LIFE_S`].
pub fn record_life_s(max_clock_skew_secs: u64) -> i64 {
    let window = i64::try_from(max_clock_skew_secs).unwrap_or(i64::MAX / 4);
    (2 * window + 60).max(MIN_RECORD_LIFE_S)
}

/// Where one push stands, as stored (`status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MsgStatus {
    /// Claimed; the worker is asking the service.
    Pending,
    /// The worker stored a passive answer in time.
    Answered,
    /// The message side stopped waiting: the answer goes out late.
    Late,
    /// The worker is sending the answer through the customer-service API.
    Sending,
    Sent,
    /// Nothing was (or could be) sent; `reason` says why.
    Failed,
    /// The service answered nothing.
    NoAnswer,
}

impl MsgStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Answered => "answered",
            Self::Late => "late",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::NoAnswer => "no_answer",
        }
    }
}

/// The stored item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MsgRecord {
    pub status: MsgStatus,
    /// Who the answer goes to (`FromUserName`).
    pub openid: String,
    /// The service's answer, once there is one (`answered`, `sending`, `sent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// Why nothing was sent (`failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Hex SHA-256 of the request the message side claimed the push with
    /// ([`super::ForwardRequest::digest`]): the worker forwards only that request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sha256: Option<String>,
    pub created_at_s: i64,
    pub expires_at_s: i64,
}

impl MsgRecord {
    pub const STATUS: &'static str = "status";
    pub const ANSWER: &'static str = "answer";
    pub const REASON: &'static str = "reason";
}

impl Item for MsgRecord {
    const PREFIX: &'static str = "msg#";

    fn ttl(&self) -> Option<i64> {
        Some(self.expires_at_s)
    }
}

/// Where one push stands, with what each status carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsgState {
    Pending,
    Answered(Answer),
    Late,
    Sending,
    Sent,
    Failed { reason: String },
    NoAnswer,
}

impl MsgRecord {
    /// The state the record stands for; an `answered` record without its answer is corrupt.
    pub fn state(self) -> Result<MsgState, String> {
        Ok(match self.status {
            MsgStatus::Pending => MsgState::Pending,
            MsgStatus::Answered => MsgState::Answered(
                self.answer
                    .ok_or_else(|| "status answered without an answer".to_string())?,
            ),
            MsgStatus::Late => MsgState::Late,
            MsgStatus::Sending => MsgState::Sending,
            MsgStatus::Sent => MsgState::Sent,
            MsgStatus::Failed => MsgState::Failed {
                reason: self.reason.unwrap_or_default(),
            },
            MsgStatus::NoAnswer => MsgState::NoAnswer,
        })
    }
}

/// Whether a claim made the caller the one that processes the push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Claimed,
    /// A live item exists: this is a retry (or a duplicate delivery).
    Seen,
}

/// What the message side records when it claims a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimOf<'a> {
    /// Who the answer goes to (`FromUserName`).
    pub openid: &'a str,
    /// [`super::ForwardRequest::digest`] of the request the worker is to forward.
    pub request_sha256: &'a str,
    pub now_s: i64,
    /// How long the item lives ([`record_life_s`]).
    pub life_s: i64,
}

/// The typed transitions of the `msg#` item.
pub trait MessageLog: Send + Sync {
    /// Create the item as `pending` if no live one exists (an expired one counts as absent).
    fn claim(
        &self,
        key: &str,
        claim: ClaimOf<'_>,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// The stored item, when there is a live one: what the worker checks a job against.
    fn record(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<MsgRecord>, StoreError>> + Send;

    /// The item's state; `None` when there is none.
    fn state(&self, key: &str)
    -> impl Future<Output = Result<Option<MsgState>, StoreError>> + Send;

    /// `pending → answered` with the passive answer (the worker, in time).
    fn answer(
        &self,
        key: &str,
        answer: &Answer,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;

    /// `pending → late` (the message side, out of budget, or a retry while pending).
    fn give_up_waiting(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;

    /// `pending | late → sending` with the answer (the worker, about to send late).
    fn start_sending(
        &self,
        key: &str,
        answer: &Answer,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;

    /// `sending → sent`.
    fn sent(&self, key: &str) -> impl Future<Output = Result<Transition, StoreError>> + Send;

    /// `pending | late | sending → failed` with the reason.
    fn fail(
        &self,
        key: &str,
        reason: &str,
    ) -> impl Future<Output = Result<Transition, StoreError>> + Send;

    /// `pending | late → no_answer`.
    fn no_answer(&self, key: &str) -> impl Future<Output = Result<Transition, StoreError>> + Send;
}

fn status_in(statuses: &[MsgStatus]) -> Condition {
    let each = |status: &MsgStatus| Condition::equals(MsgRecord::STATUS, status.as_str());
    match statuses {
        [one] => each(one),
        many => Condition::Any(many.iter().map(each).collect()),
    }
}

fn to(status: MsgStatus) -> Update {
    Update::new().set(MsgRecord::STATUS, status.as_str())
}

fn answer_value(answer: &Answer) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(answer).map_err(|e| StoreError::Corrupt(format!("answer: {e}")))
}

impl<T: Table> MessageLog for T {
    async fn claim(&self, key: &str, claim: ClaimOf<'_>) -> Result<Claim, StoreError> {
        let now_s = claim.now_s;
        let record = MsgRecord {
            status: MsgStatus::Pending,
            openid: claim.openid.to_string(),
            answer: None,
            reason: None,
            request_sha256: Some(claim.request_sha256.to_string()),
            created_at_s: now_s,
            expires_at_s: now_s + claim.life_s,
        };
        // TTL deletion is lazy: an expired item still lingering counts as absent.
        let free = Condition::Any(vec![Condition::Absent, Condition::AtMost(TTL, now_s)]);
        Ok(match self.put(key, &record, Some(free)).await? {
            WriteOutcome::Applied => Claim::Claimed,
            WriteOutcome::ConditionFailed => Claim::Seen,
        })
    }

    async fn record(&self, key: &str) -> Result<Option<MsgRecord>, StoreError> {
        self.get::<MsgRecord>(key).await
    }

    async fn state(&self, key: &str) -> Result<Option<MsgState>, StoreError> {
        let Some(record) = self.get::<MsgRecord>(key).await? else {
            return Ok(None);
        };
        record
            .state()
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("msg#{key}: {e}")))
    }

    async fn answer(&self, key: &str, answer: &Answer) -> Result<Transition, StoreError> {
        let update = to(MsgStatus::Answered).set(MsgRecord::ANSWER, answer_value(answer)?);
        let from = status_in(&[MsgStatus::Pending]);
        Ok(self.update::<MsgRecord>(key, update, from).await?.into())
    }

    async fn give_up_waiting(&self, key: &str) -> Result<Transition, StoreError> {
        let from = status_in(&[MsgStatus::Pending]);
        Ok(self
            .update::<MsgRecord>(key, to(MsgStatus::Late), from)
            .await?
            .into())
    }

    async fn start_sending(&self, key: &str, answer: &Answer) -> Result<Transition, StoreError> {
        let update = to(MsgStatus::Sending).set(MsgRecord::ANSWER, answer_value(answer)?);
        let from = status_in(&[MsgStatus::Pending, MsgStatus::Late]);
        Ok(self.update::<MsgRecord>(key, update, from).await?.into())
    }

    async fn sent(&self, key: &str) -> Result<Transition, StoreError> {
        let from = status_in(&[MsgStatus::Sending]);
        Ok(self
            .update::<MsgRecord>(key, to(MsgStatus::Sent), from)
            .await?
            .into())
    }

    async fn fail(&self, key: &str, reason: &str) -> Result<Transition, StoreError> {
        let update = to(MsgStatus::Failed).set(MsgRecord::REASON, reason);
        let from = status_in(&[MsgStatus::Pending, MsgStatus::Late, MsgStatus::Sending]);
        Ok(self.update::<MsgRecord>(key, update, from).await?.into())
    }

    async fn no_answer(&self, key: &str) -> Result<Transition, StoreError> {
        let from = status_in(&[MsgStatus::Pending, MsgStatus::Late]);
        Ok(self
            .update::<MsgRecord>(key, to(MsgStatus::NoAnswer), from)
            .await?
            .into())
    }
}

//! The two halves of a forward: the message side ([`MessageSide`], inside WeChat's request) and
//! the worker side ([`Worker`], which calls the service once and delivers the answer). Every
//! path of each ends in a named outcome ([`MessageOutcome`], [`WorkerOutcome`]) that drives its
//! one log line.
//!
//! The message side claims the `msg#` item, starts the worker and waits (polling the item with
//! consistent reads) up to the rule's budget. Whichever conditional write wins decides the
//! channel: the worker's `pending → answered` makes the answer the passive reply; the message
//! side's `pending → late` at the budget makes it answer `success` and leaves the worker to send
//! late. A retry finds the item: answered → the same reply; pending → marked late; else `success`.
//! The same key again within [`SAME_KEY_NOT_A_RETRY_S`] of the claim is a second push (WeChat
//! retries only after 5 s): it waits for the answer without making it late. When whether the
//! answer was made late cannot be known (the write and the read fail), no reply is given in
//! time, so that WeChat's retry decides ([`MessageOutcome::Unresolved`]).
//!
//! The worker sends a late answer within WeChat's window and allowance for the push (an event's
//! minute and 3 messages, a message's 48 hours and 5; see [`super::delivery`]), shows a message's
//! sender "typing…" once the message side has given up waiting, and retries the item's reads and
//! writes while the table fails.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use subtle::ConstantTimeEq;
use table::{StoreError, Table};
use tokio::time::Instant;
use wechat_protocol::message::Message;
use wechat_protocol::reply::Reply;

use super::answer::Answer;
use super::circuit::{CircuitLog, CircuitView};
use super::client::{ForwardError, Forwarder};
use super::delivery::{DEFAULT_LATE_RETRY, GaveUp, LateResult, LateRetry, Limits, deliver_late};
use super::late::LateSender;
use super::launch::{ForwardJob, LaunchError, WorkerLauncher};
use super::record::{Claim, ClaimOf, MessageLog, MsgRecord, MsgState, MsgStatus, record_life_s};
use super::request::ForwardRequest;
use super::short;
use crate::clock::SharedClock;
use crate::customer_service::{Interaction, Window};
use crate::rules::{ForwardSpec, Rules};
use crate::webhook::DEFAULT_MAX_CLOCK_SKEW_SECS;
use table::Transition;

/// The first pause between two reads of the item; it doubles up to the longest.
const FIRST_POLL: Duration = Duration::from_millis(25);
/// The longest pause between two reads: a passive answer waits at most this long to be seen.
pub const MAX_POLL: Duration = Duration::from_millis(150);
/// WeChat retries a push only after waiting 5 s for its answer: a second arrival of the same key
/// sooner than this after the claim is a second push (two taps of a menu button in one second),
/// not a retry, and must not push the first one's answer to the late path.
pub const SAME_KEY_NOT_A_RETRY_S: i64 = 4;
/// WeChat's wait for an answer; an answer held this long reaches nobody, and WeChat retries.
const WECHAT_WAIT: Duration = Duration::from_secs(5);
/// Attempts of the "give up waiting" write before its outcome counts as unknown.
const GIVE_UP_ATTEMPTS: u32 = 3;
/// Every store call of the message side ends by then (from the push's arrival), so that its
/// answer still reaches WeChat within its 5 s whatever the table does.
const ANSWER_WITHIN: Duration = Duration::from_millis(4_500);
/// A read started near the deadline still gets this long.
const MIN_READ: Duration = Duration::from_millis(100);

/// How the message side answered one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageOutcome {
    /// The worker stored the answer within the budget: it is the passive reply.
    Passive(Reply),
    /// The service answered nothing within the budget.
    NoAnswer,
    /// The budget passed (or a retry gave up first): `success` now, the worker answers late.
    Late,
    /// The answer is a type only the customer-service API sends: the worker sends it.
    SendingLate,
    /// The service failed within the budget: nothing is sent.
    ForwardFailed { reason: String },
    /// A retry of a push already answered passively: the same reply again.
    RetryAnswered(Reply),
    /// A retry while the worker still works: the answer will go out late.
    RetryMarkedLate,
    /// A retry of a push that is done, failed or going out late: `success`.
    RetryDone,
    /// The same key again within seconds of the first (a second tap, not WeChat's retry): it
    /// waited for the first one's answer without moving it, and got it in time.
    DuplicateAnswered(Reply),
    /// The same, but no passive answer came in its budget: `success`; the first push's own
    /// wait decides whether the answer goes out late.
    DuplicateNotAnswered,
    /// Whether the answer was made late is unknown (the write failed, and so did reading the
    /// item): no answer is given in time, so that WeChat's retry, which finds the item, decides.
    Unresolved(StoreError),
    /// The service's circuit is open (it timed out repeatedly): the fallback reply, nothing
    /// forwarded.
    CircuitOpen(Reply),
    /// The worker could not be started: nothing is sent.
    LaunchFailed(LaunchError),
    /// The table could not be used: `success`, and nothing is forwarded.
    StoreUnavailable(StoreError),
}

impl MessageOutcome {
    /// A stable snake_case name for log fields.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Passive(_) => "passive",
            Self::NoAnswer => "no_answer",
            Self::Late => "late",
            Self::SendingLate => "sending_late",
            Self::ForwardFailed { .. } => "forward_failed",
            Self::RetryAnswered(_) => "retry_answered",
            Self::RetryMarkedLate => "retry_marked_late",
            Self::RetryDone => "retry_done",
            Self::DuplicateAnswered(_) => "duplicate_answered",
            Self::DuplicateNotAnswered => "duplicate_not_answered",
            Self::Unresolved(_) => "unresolved",
            Self::CircuitOpen(_) => "circuit_open",
            Self::LaunchFailed(_) => "launch_failed",
            Self::StoreUnavailable(_) => "store_unavailable",
        }
    }

    /// The passive reply: the answer when there is one in time, else `success`.
    pub fn reply(&self) -> Reply {
        match self {
            Self::Passive(reply)
            | Self::RetryAnswered(reply)
            | Self::DuplicateAnswered(reply)
            | Self::CircuitOpen(reply) => reply.clone(),
            _ => Reply::Success,
        }
    }
}

/// The message side of forwarding, one per container.
pub struct MessageSide<T, L> {
    table: T,
    launcher: L,
    clock: SharedClock,
    /// How long a `msg#` item lives: past every replay the webhook's signature check accepts.
    record_life_s: i64,
    /// What this container last read of each service's circuit.
    circuits: CircuitView,
    /// The reply while a service's circuit is open (`FORWARD_CIRCUIT_REPLY`, else `success`).
    circuit_reply: Reply,
}

impl<T: MessageLog + CircuitLog, L: WorkerLauncher> MessageSide<T, L> {
    /// With the webhook's default replay window; see [`Self::with_replay_window`].
    pub fn new(table: T, launcher: L, clock: SharedClock) -> Self {
        Self {
            table,
            launcher,
            clock,
            record_life_s: record_life_s(DEFAULT_MAX_CLOCK_SKEW_SECS),
            circuits: CircuitView::default(),
            circuit_reply: Reply::Success,
        }
    }

    /// Answer `reply` instead of `success` while a service's circuit is open.
    pub fn with_circuit_reply(mut self, reply: Reply) -> Self {
        self.circuit_reply = reply;
        self
    }

    /// Keep each push's item for as long as the webhook accepts a replay of it
    /// (`WECHAT_MAX_CLOCK_SKEW_SECS`): a replayed push then finds it and is not forwarded twice.
    pub fn with_replay_window(mut self, max_clock_skew_secs: u64) -> Self {
        self.record_life_s = record_life_s(max_clock_skew_secs);
        self
    }

    /// Answers `msg` by the forward rule `spec`, within its budget.
    pub async fn handle(&self, msg: &Message, spec: &ForwardSpec) -> MessageOutcome {
        let started = Instant::now();
        let request = ForwardRequest::new(msg);
        let key = request.idempotency_key.clone();
        let now_s = self.clock.now_s();
        if self.circuits.is_open(&self.table, &spec.url, now_s).await {
            let outcome = MessageOutcome::CircuitOpen(self.circuit_reply.clone());
            tracing::warn!(outcome = outcome.code(), %key, "the service timed out repeatedly; answered the fallback without forwarding");
            return outcome;
        }
        let outcome = self
            .run(
                &key,
                spec,
                request,
                started + spec.budget(),
                started + ANSWER_WITHIN,
            )
            .await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let code = outcome.code();
        match &outcome {
            MessageOutcome::ForwardFailed { reason } => {
                tracing::warn!(outcome = code, %key, elapsed_ms, %reason, "forward failed; answered success")
            }
            MessageOutcome::LaunchFailed(error) => {
                tracing::error!(outcome = code, %key, elapsed_ms, %error, "forward not started; answered success")
            }
            MessageOutcome::StoreUnavailable(error) => {
                tracing::error!(outcome = code, %key, elapsed_ms, %error, "forward not tracked; answered success")
            }
            MessageOutcome::Unresolved(error) => {
                tracing::error!(outcome = code, %key, elapsed_ms, %error, "whether the answer goes late is unknown; holding the reply so WeChat retries");
                // Past WeChat's wait the reply reaches nobody: WeChat retries, and the retry
                // finds the item (answered: the same reply; pending: late). On Lambda the
                // function's 5 s timeout may end this wait first, to the same effect.
                tokio::time::sleep_until(started + WECHAT_WAIT).await;
            }
            other => tracing::info!(
                outcome = code,
                %key,
                elapsed_ms,
                reply = other.reply().msg_type(),
                "forward answered"
            ),
        }
        outcome
    }

    async fn run(
        &self,
        key: &str,
        spec: &ForwardSpec,
        request: ForwardRequest,
        deadline: Instant,
        answer_by: Instant,
    ) -> MessageOutcome {
        let claim = ClaimOf {
            openid: &request.openid,
            request_sha256: &request.digest(),
            now_s: self.clock.now_s(),
            life_s: self.record_life_s,
        };
        match bounded(answer_by, self.table.claim(key, claim)).await {
            Err(error) => MessageOutcome::StoreUnavailable(error),
            Ok(Claim::Seen) => self.retry(key, deadline, answer_by).await,
            Ok(Claim::Claimed) => {
                let job = ForwardJob {
                    key: key.to_string(),
                    spec: spec.clone(),
                    request,
                };
                if let Err(error) = self.launcher.launch(job).await {
                    if let Err(store) = self.table.fail(key, &error.to_string()).await {
                        tracing::error!(%key, error = %store, "could not record the failed start");
                    }
                    return MessageOutcome::LaunchFailed(error);
                }
                self.wait(key, deadline, answer_by).await
            }
        }
    }

    /// Polls the item until the worker settles it or the budget is spent, then tries to make
    /// the answer late; losing that write means the worker settled it just before.
    async fn wait(&self, key: &str, deadline: Instant, answer_by: Instant) -> MessageOutcome {
        if let Some(settled) = self.poll(key, deadline).await {
            return settled;
        }
        self.give_up(key, answer_by).await
    }

    /// The item's settled state once it leaves `pending`, or `None` at the deadline.
    async fn poll(&self, key: &str, deadline: Instant) -> Option<MessageOutcome> {
        let mut pause = FIRST_POLL;
        loop {
            match bounded(deadline, self.table.state(key)).await {
                Ok(Some(MsgState::Pending)) => {}
                Ok(state) => return Some(settled(state)),
                // Keep waiting: the write at the deadline decides anyway.
                Err(error) => tracing::warn!(%key, %error, "could not read the message item"),
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// `pending → late`, retried while its outcome is unknown: of "the answer is late" and "the
    /// worker answered in time" exactly one must be known before `success` is answered, or the
    /// answer could be stored as passive with nobody left to serve it.
    async fn give_up(&self, key: &str, answer_by: Instant) -> MessageOutcome {
        let mut last_error = None;
        for attempt in 0..GIVE_UP_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(FIRST_POLL * 2u32.pow(attempt)).await;
            }
            let written = match bounded(answer_by, self.table.give_up_waiting(key)).await {
                Ok(Transition::Applied) => return MessageOutcome::Late,
                Ok(Transition::Lost) => Ok(()),
                Err(error) => Err(error),
            };
            // Lost, or unknown: the item says which of the two happened, if it can be read.
            match (written, bounded(answer_by, self.table.state(key)).await) {
                (_, Ok(Some(MsgState::Late))) => return MessageOutcome::Late,
                (_, Ok(Some(MsgState::Pending))) => continue,
                (_, Ok(state)) => return settled(state),
                // Lost to the worker but unreadable: its answer may be passive, and only a
                // reply held past WeChat's wait lets the retry serve it.
                (Ok(()), Err(error)) | (Err(error), Err(_)) => last_error = Some(error),
            }
        }
        MessageOutcome::Unresolved(
            last_error.unwrap_or_else(|| {
                StoreError::Unavailable("the message item stayed pending".into())
            }),
        )
    }

    async fn retry(&self, key: &str, deadline: Instant, answer_by: Instant) -> MessageOutcome {
        let record = match bounded(answer_by, self.table.record(key)).await {
            Ok(record) => record,
            Err(error) => return MessageOutcome::StoreUnavailable(error),
        };
        let state = record.map(|record| {
            let created_at_s = record.created_at_s;
            (record.state(), created_at_s)
        });
        match state {
            Some((Ok(MsgState::Answered(answer)), _)) => retry_answered(answer),
            Some((Ok(MsgState::Pending), created_at_s))
                if self.clock.now_s() - created_at_s < SAME_KEY_NOT_A_RETRY_S =>
            {
                match self.poll(key, deadline).await {
                    Some(MessageOutcome::Passive(reply)) => {
                        MessageOutcome::DuplicateAnswered(reply)
                    }
                    _ => MessageOutcome::DuplicateNotAnswered,
                }
            }
            Some((Ok(MsgState::Pending), _)) => match self.give_up(key, answer_by).await {
                MessageOutcome::Late => MessageOutcome::RetryMarkedLate,
                MessageOutcome::Passive(reply) => MessageOutcome::RetryAnswered(reply),
                MessageOutcome::Unresolved(error) => MessageOutcome::Unresolved(error),
                MessageOutcome::StoreUnavailable(error) => MessageOutcome::StoreUnavailable(error),
                _ => MessageOutcome::RetryDone,
            },
            Some((Err(reason), _)) => MessageOutcome::StoreUnavailable(StoreError::Corrupt(
                format!("msg#{key}: {reason}"),
            )),
            _ => MessageOutcome::RetryDone,
        }
    }
}

/// `call`, or a store error once `by` has passed (at least [`MIN_READ`] from now): the SDK's
/// own timeouts bound each call, this bounds them by what is left of WeChat's wait.
async fn bounded<T>(
    by: Instant,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let left = by.saturating_duration_since(Instant::now()).max(MIN_READ);
    match tokio::time::timeout(left, call).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(format!(
            "no answer from the table within {} ms",
            left.as_millis()
        ))),
    }
}

fn retry_answered(answer: Answer) -> MessageOutcome {
    match answer.passive() {
        Some(reply) => MessageOutcome::RetryAnswered(reply.clone()),
        None => MessageOutcome::RetryDone,
    }
}

/// The outcome for an item the worker (or a retry) moved out of `pending`.
fn settled(state: Option<MsgState>) -> MessageOutcome {
    match state {
        Some(MsgState::Answered(answer)) => match answer.passive() {
            Some(reply) => MessageOutcome::Passive(reply.clone()),
            None => MessageOutcome::SendingLate,
        },
        Some(MsgState::NoAnswer) => MessageOutcome::NoAnswer,
        Some(MsgState::Failed { reason }) => MessageOutcome::ForwardFailed { reason },
        Some(MsgState::Sending | MsgState::Sent) => MessageOutcome::SendingLate,
        Some(MsgState::Late | MsgState::Pending) => MessageOutcome::Late,
        None => MessageOutcome::StoreUnavailable(StoreError::Corrupt(
            "the message item vanished while waiting".into(),
        )),
    }
}

/// What the worker did with one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerOutcome {
    /// Stored in time: the message side replies with it passively.
    Answered,
    /// The service answered nothing: nothing is sent.
    NoAnswer,
    /// Sent late through the customer-service API, as `parts` messages (a long text is split).
    SentLate {
        parts: u32,
    },
    /// A text that needed more messages than WeChat allows after the push (`needed`): the first
    /// `parts` were sent, the last ending with `…`.
    SentTruncated {
        parts: u32,
        needed: u32,
    },
    /// The late answer was not sent, or not all of it (`sent` of `parts`): `why` names the
    /// outcome (`window_closed`, `allowance_spent`, `out_of_time`, or WeChat's refusal), and
    /// `reason`, as recorded in the item, says it with what was sent and the last error.
    LateNotSent {
        why: GaveUp,
        sent: u32,
        parts: u32,
        reason: String,
    },
    /// A passive-only answer (handing over to an agent) came too late to be a passive reply.
    NotSendableLate,
    /// The service failed: nothing is sent (recorded in the item).
    ForwardFailed(ForwardError),
    /// The push was already handled (a duplicate delivery of the job, or an expired item).
    AlreadyHandled,
    /// The job is not one the message side started: its request is not the one claimed, or it
    /// names a service no forward rule of this worker has. Nothing is forwarded or sent, and
    /// the item is left as it is (it belongs to a real push).
    Refused {
        reason: &'static str,
    },
    StoreUnavailable(StoreError),
}

impl WorkerOutcome {
    /// A stable snake_case name for log fields and the worker's answer.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::NoAnswer => "no_answer",
            Self::SentLate { .. } => "sent_late",
            Self::SentTruncated { .. } => "sent_truncated",
            Self::LateNotSent { why, .. } => why.code(),
            Self::NotSendableLate => "not_sendable_late",
            Self::ForwardFailed(_) => "forward_failed",
            Self::AlreadyHandled => "already_handled",
            Self::Refused { .. } => "refused_job",
            Self::StoreUnavailable(_) => "store_unavailable",
        }
    }

    /// Whether the job failed for a reason an operator must look at (the service or the store
    /// down, WeChat unavailable until the worker gave up): the worker function reports these as
    /// invocation errors, so they show in its `Errors` metric and land in its failure
    /// destination (never retried). WeChat refusing a late message (the 48-hour window, …), or
    /// the window closing on a slow service, is an answer, not a failure.
    pub fn is_failure(&self) -> bool {
        match self {
            Self::ForwardFailed(_) | Self::StoreUnavailable(_) | Self::Refused { .. } => true,
            Self::LateNotSent { why, .. } => why.is_failure(),
            _ => false,
        }
    }
}

/// The worker function's Lambda timeout: a job run with [`Worker::run`] stops sending this long
/// after it started, less [`RECORD_MARGIN`].
pub const WORKER_TIME_LIMIT: Duration = Duration::from_secs(60);
/// Kept at the end of the worker's time to record the outcome on the item.
pub const RECORD_MARGIN: Duration = Duration::from_secs(3);
/// Attempts of each of the worker's reads and writes of the item while the table fails.
const STORE_ATTEMPTS: u32 = 3;
/// Reads of the item, [`MAX_POLL`] apart, for the message side to give up waiting once the
/// budget has passed, before the typing status is shown.
const TYPING_LOOKS: u32 = 10;
/// How long an answer waits for a typing status already on its way, at most.
const TYPING_GRACE: Duration = Duration::from_secs(2);

/// The worker side: one call to the service, then the one delivery its answer gets.
///
/// It trusts nothing of its invoke payload but the key: the request must be the one the message
/// side claimed the push with (its digest is on the item), the service's URL must be one of its
/// own forward rules, and the answer goes to the openid on the item. The request says whether
/// the push was an event or a message and when it came, hence WeChat's window and allowance
/// for sending late.
pub struct Worker<T, F, S> {
    table: T,
    forwarder: F,
    sender: S,
    /// The forward rules of this deployment: the only services a job may be forwarded to.
    specs: Vec<ForwardSpec>,
    clock: SharedClock,
    retry: LateRetry,
}

impl<T: MessageLog + CircuitLog, F: Forwarder, S: LateSender> Worker<T, F, S> {
    /// `rules` are the deployment's reply rules (the message function's): their forward actions
    /// are the services this worker forwards to. On the system clock, with
    /// [`DEFAULT_LATE_RETRY`].
    pub fn new(table: T, forwarder: F, sender: S, rules: &Rules) -> Self {
        Self {
            table,
            forwarder,
            sender,
            specs: rules.forward_specs(),
            clock: crate::clock::system(),
            retry: DEFAULT_LATE_RETRY,
        }
    }

    /// The same worker telling WeChat's window by `clock`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The same worker pausing as `retry` says between tries of a late message.
    pub fn with_late_retry(mut self, retry: LateRetry) -> Self {
        self.retry = retry;
        self
    }

    /// [`Self::run_within`] the worker function's [`WORKER_TIME_LIMIT`].
    pub async fn run(&self, job: &ForwardJob) -> WorkerOutcome {
        self.run_within(job, WORKER_TIME_LIMIT).await
    }

    /// Runs one job to its outcome and logs it, sending nothing after `time_left` less
    /// [`RECORD_MARGIN`]. Never fails: every failure is recorded in the item and the outcome, so
    /// an asynchronous invoke has nothing to retry.
    pub async fn run_within(&self, job: &ForwardJob, time_left: Duration) -> WorkerOutcome {
        let started = Instant::now();
        let deadline = started + time_left.saturating_sub(RECORD_MARGIN);
        let outcome = self.process(job, deadline).await;
        let key = &job.key;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let code = outcome.code();
        match &outcome {
            WorkerOutcome::ForwardFailed(error) => tracing::error!(
                outcome = code,
                %key,
                elapsed_ms,
                reason = error.code(),
                %error,
                "forward service failed; nothing sent"
            ),
            WorkerOutcome::LateNotSent {
                why,
                sent,
                parts,
                reason,
            } if why.is_failure() => tracing::error!(
                outcome = code,
                %key,
                elapsed_ms,
                sent,
                parts,
                %reason,
                "late answer not sent: WeChat stayed unavailable"
            ),
            WorkerOutcome::LateNotSent {
                sent,
                parts,
                reason,
                ..
            } => {
                tracing::warn!(outcome = code, %key, elapsed_ms, sent, parts, %reason, "late answer not sent")
            }
            WorkerOutcome::SentTruncated { parts, needed } => tracing::warn!(
                outcome = code,
                %key,
                elapsed_ms,
                parts,
                needed,
                "late answer cut short: it needs more messages than WeChat allows"
            ),
            WorkerOutcome::SentLate { parts } => {
                tracing::info!(outcome = code, %key, elapsed_ms, parts, "forward done")
            }
            WorkerOutcome::NotSendableLate => tracing::warn!(
                outcome = code,
                %key,
                elapsed_ms,
                "a transfer_customer_service answer came too late; nothing sent"
            ),
            WorkerOutcome::StoreUnavailable(error) => {
                tracing::error!(outcome = code, %key, elapsed_ms, %error, "message item unavailable")
            }
            WorkerOutcome::Refused { reason } => {
                tracing::error!(outcome = code, %key, %reason, "job refused: not started by the message side")
            }
            _ => tracing::info!(outcome = code, %key, elapsed_ms, "forward done"),
        }
        outcome
    }

    async fn process(&self, job: &ForwardJob, deadline: Instant) -> WorkerOutcome {
        let key = job.key.as_str();
        // A duplicate delivery of the job must not call the service again.
        let record = match self.record(key).await {
            Ok(Some(record)) if matches!(record.status, MsgStatus::Pending | MsgStatus::Late) => {
                record
            }
            Ok(_) => return WorkerOutcome::AlreadyHandled,
            Err(error) => return WorkerOutcome::StoreUnavailable(error),
        };
        let spec = match self.vouch(job, &record) {
            Ok(spec) => spec,
            Err(reason) => return WorkerOutcome::Refused { reason },
        };
        // Vouched for: the push's kind and time are WeChat's.
        let interaction = Interaction::of_msg_type(&job.request.msg_type);
        let window = Window::after(interaction, job.request.create_time);
        let limits = Limits {
            window,
            window_closes: Instant::now()
                + Duration::from_millis(window.left_ms(self.clock.now_ms())),
            deadline,
            retry: self.retry,
        };
        let openid = record.openid.as_str();
        let forwarded = self
            .forward_typing_when_late(key, spec, job, openid, &window)
            .await;
        self.report_to_circuit(&spec.url, &forwarded).await;
        match forwarded {
            Err(error) => {
                let reason = error.to_string();
                match self
                    .store(
                        key,
                        || self.table.fail(key, &reason),
                        |r| failed_with(r, &reason),
                    )
                    .await
                {
                    Ok(_) => WorkerOutcome::ForwardFailed(error),
                    Err(store) => WorkerOutcome::StoreUnavailable(store),
                }
            }
            Ok(None) => {
                let no_answer = |r: &MsgRecord| r.status == MsgStatus::NoAnswer;
                match self
                    .store(key, || self.table.no_answer(key), no_answer)
                    .await
                {
                    Ok(Transition::Applied) => WorkerOutcome::NoAnswer,
                    Ok(Transition::Lost) => WorkerOutcome::AlreadyHandled,
                    Err(error) => WorkerOutcome::StoreUnavailable(error),
                }
            }
            Ok(Some(answer)) => self.deliver(key, openid, answer, &limits).await,
        }
    }

    /// The service's answer. While it takes longer than the passive budget, a message's sender is
    /// shown "typing…" once the message side has given up waiting (the item says `late`): the
    /// answer will come late. A typing status on its way when the answer comes is waited for
    /// (briefly), so that it shows before the answer; its failure changes nothing.
    async fn forward_typing_when_late(
        &self,
        key: &str,
        spec: &ForwardSpec,
        job: &ForwardJob,
        openid: &str,
        window: &Window,
    ) -> Result<Option<Answer>, ForwardError> {
        let typing_started = AtomicBool::new(false);
        let forward = self.forwarder.forward(&spec.url, &job.request);
        let typing = self.type_once_late(key, openid, spec.budget(), window, &typing_started);
        tokio::pin!(forward, typing);
        let answered = tokio::select! {
            answer = &mut forward => Some(answer),
            () = &mut typing => None,
        };
        match answered {
            Some(answer) => {
                if typing_started.load(Ordering::SeqCst) {
                    let _ = tokio::time::timeout(TYPING_GRACE, typing).await;
                }
                answer
            }
            None => forward.await,
        }
    }

    /// After `budget`, once the item is `late`, shows "typing…" to the sender of a message
    /// while WeChat allows it; returns at once for an event.
    async fn type_once_late(
        &self,
        key: &str,
        openid: &str,
        budget: Duration,
        window: &Window,
        started: &AtomicBool,
    ) {
        if window.interaction != Interaction::Message {
            return;
        }
        tokio::time::sleep(budget).await;
        // The message side gives up at its own deadline, a moment before this one.
        for look in 1..=TYPING_LOOKS {
            match self.table.state(key).await {
                Ok(Some(MsgState::Late)) => break,
                Ok(Some(MsgState::Pending)) | Err(_) if look < TYPING_LOOKS => {}
                _ => return,
            }
            tokio::time::sleep(MAX_POLL).await;
        }
        if !window.typing_allowed(self.clock.now_ms()) {
            return;
        }
        started.store(true, Ordering::SeqCst);
        // Logged by the sender; an answer goes out whatever became of it.
        let _ = self.sender.typing(openid).await;
    }

    /// A timeout counts towards opening the service's circuit, an answer in time resets it; the
    /// circuit protects capacity, so a failure to record either is logged and ignored.
    async fn report_to_circuit(&self, url: &str, forwarded: &Result<Option<Answer>, ForwardError>) {
        let now_s = self.clock.now_s();
        let recorded = match forwarded {
            Err(ForwardError::Timeout(_)) => match self.table.timed_out(url, now_s).await {
                Ok(true) => {
                    tracing::warn!(
                        open_s = super::circuit::OPEN_S,
                        "the service timed out {} times in a row: its circuit is open",
                        super::circuit::TRIP_AFTER
                    );
                    Ok(())
                }
                other => other.map(|_| ()),
            },
            Err(_) => Ok(()),
            Ok(_) => self.table.answered(url, now_s).await,
        };
        if let Err(error) = recorded {
            tracing::warn!(%error, "could not record the service's health for its circuit");
        }
    }

    /// The rule to forward `job` by, if the job is one the message side started for `record`.
    fn vouch(&self, job: &ForwardJob, record: &MsgRecord) -> Result<&ForwardSpec, &'static str> {
        if job.request.idempotency_key != job.key {
            return Err("the request is not the push the key names");
        }
        let claimed = record.request_sha256.as_deref().map(str::as_bytes);
        let digest = job.request.digest();
        if !claimed.is_some_and(|claimed| claimed.ct_eq(digest.as_bytes()).into()) {
            return Err("the request is not the one the message side claimed");
        }
        self.specs
            .iter()
            .find(|spec| spec.url == job.spec.url)
            .filter(|spec| spec.check().is_ok())
            .ok_or("the service is not one of this deployment's forward rules")
    }

    async fn deliver(
        &self,
        key: &str,
        openid: &str,
        answer: Answer,
        limits: &Limits,
    ) -> WorkerOutcome {
        let holds = |status: MsgStatus| {
            let answer = &answer;
            move |r: &MsgRecord| r.status == status && r.answer.as_ref() == Some(answer)
        };
        if answer.passive().is_some() {
            let write = || self.table.answer(key, &answer);
            match self.store(key, write, holds(MsgStatus::Answered)).await {
                Ok(Transition::Applied) => return WorkerOutcome::Answered,
                // The message side gave up waiting (or the push is done): late, if at all.
                Ok(Transition::Lost) => {}
                Err(error) => return WorkerOutcome::StoreUnavailable(error),
            }
        }
        if !answer.can_send_late() {
            let reason = format!("a {} answer cannot be sent late", answer.msg_type());
            let write = || self.table.fail(key, &reason);
            return match self.store(key, write, |r| failed_with(r, &reason)).await {
                Ok(Transition::Applied) => WorkerOutcome::NotSendableLate,
                Ok(Transition::Lost) => WorkerOutcome::AlreadyHandled,
                Err(error) => WorkerOutcome::StoreUnavailable(error),
            };
        }
        let write = || self.table.start_sending(key, &answer);
        match self.store(key, write, holds(MsgStatus::Sending)).await {
            Ok(Transition::Applied) => {}
            Ok(Transition::Lost) => return WorkerOutcome::AlreadyHandled,
            Err(error) => return WorkerOutcome::StoreUnavailable(error),
        }
        let result = deliver_late(&self.sender, openid, &answer, limits).await;
        let reason = result
            .reason()
            .map(|reason| short(&reason, MAX_REASON_CHARS));
        let recorded = match &reason {
            None => {
                let sent = |r: &MsgRecord| r.status == MsgStatus::Sent;
                self.store(key, || self.table.sent(key), sent).await
            }
            Some(reason) => {
                let write = || self.table.fail(key, reason);
                self.store(key, write, |r| failed_with(r, reason)).await
            }
        };
        if let Err(error) = recorded {
            // The send happened (or was refused) regardless; the item just says `sending`.
            tracing::error!(%key, %error, "could not record the late delivery");
        }
        match result {
            LateResult::Sent { parts } => WorkerOutcome::SentLate { parts },
            LateResult::Truncated { parts, needed } => {
                WorkerOutcome::SentTruncated { parts, needed }
            }
            LateResult::GaveUp {
                why, sent, parts, ..
            } => WorkerOutcome::LateNotSent {
                why,
                sent,
                parts,
                reason: reason.unwrap_or_default(),
            },
        }
    }

    /// The item, read again while the table fails.
    async fn record(&self, key: &str) -> Result<Option<MsgRecord>, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.table.record(key).await {
                Err(error) if attempt < STORE_ATTEMPTS => {
                    tracing::warn!(%key, attempt, %error, "could not read the message item; trying again");
                    tokio::time::sleep(FIRST_POLL * 2u32.pow(attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// One transition of the item, written again while the table fails. A write that failed
    /// may have been applied all the same: when a later one then loses, the item says whether
    /// it holds what was written (`applied`).
    async fn store<W, Fut>(
        &self,
        key: &str,
        write: W,
        applied: impl Fn(&MsgRecord) -> bool,
    ) -> Result<Transition, StoreError>
    where
        W: Fn() -> Fut,
        Fut: Future<Output = Result<Transition, StoreError>>,
    {
        let mut failed = None;
        for attempt in 1..=STORE_ATTEMPTS {
            match write().await {
                Ok(Transition::Applied) => return Ok(Transition::Applied),
                Ok(Transition::Lost) if failed.is_none() => return Ok(Transition::Lost),
                Ok(Transition::Lost) => {
                    return match self.record(key).await? {
                        Some(record) if applied(&record) => Ok(Transition::Applied),
                        _ => Ok(Transition::Lost),
                    };
                }
                Err(error) => {
                    if attempt < STORE_ATTEMPTS {
                        tracing::warn!(%key, attempt, %error, "could not write the message item; trying again");
                        tokio::time::sleep(FIRST_POLL * 2u32.pow(attempt)).await;
                    }
                    failed = Some(error);
                }
            }
        }
        Err(failed.unwrap_or_else(|| {
            StoreError::Unavailable("the message item could not be written".into())
        }))
    }
}

/// The longest reason stored on the item, in characters.
const MAX_REASON_CHARS: usize = 600;

fn failed_with(record: &MsgRecord, reason: &str) -> bool {
    record.status == MsgStatus::Failed && record.reason.as_deref() == Some(reason)
}

/// Runs the worker as a tokio task of this process.
pub struct InProcessLauncher<T, F, S> {
    worker: Arc<Worker<T, F, S>>,
}

impl<T, F, S> InProcessLauncher<T, F, S> {
    pub fn new(worker: Arc<Worker<T, F, S>>) -> Self {
        Self { worker }
    }
}

impl<T, F, S> WorkerLauncher for InProcessLauncher<T, F, S>
where
    T: Table + 'static,
    F: Forwarder + 'static,
    S: LateSender + 'static,
{
    fn launch(&self, job: ForwardJob) -> impl Future<Output = Result<(), LaunchError>> + Send {
        let worker = self.worker.clone();
        // The outcome is logged by the worker itself.
        tokio::spawn(async move { worker.run(&job).await });
        std::future::ready(Ok(()))
    }
}

//! One late answer's delivery within WeChat's terms for customer-service messages: the answer as
//! its messages (a long text in parts within [`MAX_TEXT_BYTES`] and the allowance: [`messages`]),
//! each sent through the [`LateSender`] and sent again with backoff while WeChat is unavailable,
//! for as long as the window is open, the allowance lasts and the worker has time
//! ([`deliver_late`]). It ends in a [`LateResult`]: all sent, sent cut short, or why it gave up
//! ([`GaveUp`]).

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
use wechat_protocol::reply::Reply;
use wechat_protocol::secret::fingerprint;

use super::answer::Answer;
use super::late::{LateDelivery, LateSender};
use crate::customer_service::{Interaction, MAX_TEXT_BYTES, Window, fit_text};

/// The pauses between two tries of one message while WeChat is unavailable: doubling from
/// `first` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateRetry {
    pub first: Duration,
    pub max: Duration,
}

/// 1 s, 2 s, 4 s, then every 8 s: about 9 tries in the worker's minute, each with the customer-
/// service client's own 3 calls for WeChat's busy answers.
pub const DEFAULT_LATE_RETRY: LateRetry = LateRetry {
    first: Duration::from_secs(1),
    max: Duration::from_secs(8),
};

/// What a late delivery may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The window the push opened (its kind and allowance).
    pub window: Window,
    /// When the window closes, on tokio's clock: nothing is sent from then on.
    pub window_closes: Instant,
    /// When the worker must stop sending to record its outcome in time.
    pub deadline: Instant,
    pub retry: LateRetry,
}

/// Why a late answer was not sent, or not all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaveUp {
    /// WeChat refused a message for good (`code`: `window_closed` for 45015, `too_many_messages`,
    /// `invalid_openid`, `rejected`, `not_sendable`, …).
    Refused { code: &'static str, reason: String },
    /// The window (1 minute after an event, 48 hours after a message) closed before the answer
    /// went out: the service took too long, or WeChat stayed unavailable until then.
    WindowClosed { last_error: Option<String> },
    /// The messages the window allows are spent: sends that may have arrived count.
    AllowanceSpent { last_error: Option<String> },
    /// The worker's own time ran out while WeChat stayed unavailable.
    OutOfTime { last_error: Option<String> },
}

impl GaveUp {
    /// A stable snake_case name for log fields and the item's reason.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused { code, .. } => code,
            Self::WindowClosed { .. } => "window_closed",
            Self::AllowanceSpent { .. } => "allowance_spent",
            Self::OutOfTime { .. } => "out_of_time",
        }
    }

    /// The last transient error before giving up, if one led to it.
    pub fn last_error(&self) -> Option<&str> {
        match self {
            Self::Refused { .. } => None,
            Self::WindowClosed { last_error }
            | Self::AllowanceSpent { last_error }
            | Self::OutOfTime { last_error } => last_error.as_deref(),
        }
    }

    /// Whether WeChat's unavailability (not the user's window or WeChat's refusal) is why: the
    /// allowance is spent only by sends that may have arrived after a timeout.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::OutOfTime { .. } | Self::AllowanceSpent { .. })
            || self.last_error().is_some()
    }
}

/// How a late delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LateResult {
    /// Every message went out (`parts` of them).
    Sent { parts: u32 },
    /// The text needed more messages than the allowance (`needed`): the first `parts` went out,
    /// the last ending with [`crate::customer_service::TRUNCATION_MARKER`].
    Truncated { parts: u32, needed: u32 },
    /// It gave up after `sent` of `parts` messages.
    GaveUp {
        why: GaveUp,
        window: Window,
        sent: u32,
        parts: u32,
    },
}

impl LateResult {
    /// The item's reason and the log's when it gave up: the code first, then why, what was sent,
    /// and the last error.
    pub fn reason(&self) -> Option<String> {
        let Self::GaveUp {
            why,
            window,
            sent,
            parts,
        } = self
        else {
            return None;
        };
        Some(
            Reason {
                why,
                window,
                sent: *sent,
                parts: *parts,
            }
            .to_string(),
        )
    }
}

struct Reason<'a> {
    why: &'a GaveUp,
    window: &'a Window,
    sent: u32,
    parts: u32,
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let after = match self.window.interaction {
            Interaction::Message => "48 hours after the message",
            Interaction::Event => "1 minute after the event",
        };
        write!(f, "{}: ", self.why.code())?;
        match self.why {
            GaveUp::Refused { reason, .. } => f.write_str(reason)?,
            GaveUp::WindowClosed { .. } => write!(
                f,
                "WeChat's window ({after}) closed before the answer went out"
            )?,
            GaveUp::AllowanceSpent { .. } => write!(
                f,
                "the {} messages WeChat allows ({after}) are spent (sends that may have arrived count)",
                self.window.allowance()
            )?,
            GaveUp::OutOfTime { .. } => {
                f.write_str("the worker's time ran out while WeChat was unavailable")?
            }
        }
        if self.parts > 1 || self.sent > 0 {
            write!(f, "; {} of {} parts sent", self.sent, self.parts)?;
        }
        if let Some(last) = self.why.last_error() {
            write!(f, "; last error: {last}")?;
        }
        Ok(())
    }
}

/// The messages `answer` goes out as, and how many the whole of it needs: a text longer than
/// [`MAX_TEXT_BYTES`] in parts, at most `allowance` of them; anything else as one message.
pub fn messages(answer: &Answer, allowance: u32) -> (Vec<Answer>, u32) {
    let Answer::Reply(Reply::Text { content }) = answer else {
        return (vec![answer.clone()], 1);
    };
    let fitted = fit_text(content, MAX_TEXT_BYTES, allowance as usize);
    let needed = u32::try_from(fitted.needed).unwrap_or(u32::MAX);
    let parts = fitted
        .parts
        .into_iter()
        .map(|part| Answer::Reply(Reply::text(part)))
        .collect();
    (parts, needed)
}

/// Sends `answer` to `openid` within `limits`. A message WeChat could not take (busy, unreachable,
/// no token, or not known to have arrived) is sent again after a pause, while the window is
/// open, the allowance lasts and the deadline is not reached; one it refuses ends the delivery.
pub async fn deliver_late<S: LateSender>(
    sender: &S,
    openid: &str,
    answer: &Answer,
    limits: &Limits,
) -> LateResult {
    let allowance = limits.window.allowance();
    let (parts, needed) = messages(answer, allowance);
    let total = u32::try_from(parts.len()).unwrap_or(u32::MAX);
    let mut spent = 0;
    for (sent, part) in (0..).zip(&parts) {
        let mut pause = limits.retry.first;
        let mut last_error: Option<String> = None;
        let gave_up = |why| LateResult::GaveUp {
            why,
            window: limits.window,
            sent,
            parts: total,
        };
        loop {
            let now = Instant::now();
            if now >= limits.window_closes {
                return gave_up(GaveUp::WindowClosed { last_error });
            }
            if spent >= allowance {
                return gave_up(GaveUp::AllowanceSpent { last_error });
            }
            if now >= limits.deadline {
                return gave_up(GaveUp::OutOfTime { last_error });
            }
            let delivery = tokio::time::timeout_at(limits.deadline, sender.send(openid, part))
                .await
                .unwrap_or_else(|_| LateDelivery::Uncertain {
                    reason: "the send was still going when the worker's time ran out".into(),
                });
            let reason = match delivery {
                LateDelivery::Sent => {
                    spent += 1;
                    break;
                }
                LateDelivery::Rejected { code, reason } => {
                    return gave_up(GaveUp::Refused { code, reason });
                }
                LateDelivery::Unavailable { reason } => reason,
                LateDelivery::Uncertain { reason } => {
                    spent += 1;
                    reason
                }
            };
            // Only a try that can start before the window closes and the time runs out.
            let next = Instant::now() + pause;
            if next >= limits.window_closes {
                return gave_up(GaveUp::WindowClosed {
                    last_error: Some(reason),
                });
            }
            if next >= limits.deadline {
                return gave_up(GaveUp::OutOfTime {
                    last_error: Some(reason),
                });
            }
            tracing::warn!(
                openid = %fingerprint(openid),
                part = sent + 1,
                parts = total,
                backoff_ms = pause.as_millis() as u64,
                error = %reason,
                "the late answer did not go through; sending it again"
            );
            last_error = Some(reason);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(limits.retry.max);
        }
    }
    match needed > total {
        true => LateResult::Truncated {
            parts: total,
            needed,
        },
        false => LateResult::Sent { parts: total },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer_service::TRUNCATION_MARKER;
    use crate::forward::late::{LateCall, RecordingLateSender};

    const OPENID: &str = "oUser";

    fn limits(interaction: Interaction, window_left: Duration) -> Limits {
        let now = Instant::now();
        Limits {
            window: Window::after(interaction, 1_700_000_000),
            window_closes: now + window_left,
            deadline: now + Duration::from_secs(57),
            retry: DEFAULT_LATE_RETRY,
        }
    }

    fn text(content: &str) -> Answer {
        Answer::Reply(Reply::text(content))
    }

    fn sent_texts(sender: &RecordingLateSender) -> Vec<String> {
        sender
            .sent()
            .into_iter()
            .map(|(_, answer)| match answer {
                Answer::Reply(Reply::Text { content }) => content,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn busy() -> LateDelivery {
        LateDelivery::Unavailable {
            reason: "not sent: WeChat stayed busy (errcode -1) through 3 attempts".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_chinese_text_goes_out_as_parts_in_order() {
        let sender = RecordingLateSender::new();
        let content = format!("{}ab", "中".repeat(1666));
        let hour = Duration::from_secs(3600);
        let result = deliver_late(
            &sender,
            OPENID,
            &text(&content),
            &limits(Interaction::Message, hour),
        )
        .await;
        assert_eq!(result, LateResult::Sent { parts: 3 });
        let parts = sent_texts(&sender);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() <= MAX_TEXT_BYTES));
        assert_eq!(parts.concat(), content);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_sent_once_the_window_has_closed() {
        let sender = RecordingLateSender::new();
        let limits = limits(Interaction::Event, Duration::ZERO);
        let result = deliver_late(&sender, OPENID, &text("late"), &limits).await;
        assert_eq!(
            result.reason().unwrap(),
            "window_closed: WeChat's window (1 minute after the event) closed before the answer went out"
        );
        assert!(matches!(
            result,
            LateResult::GaveUp {
                why: GaveUp::WindowClosed { last_error: None },
                sent: 0,
                ..
            }
        ));
        assert!(sender.calls().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn busy_twice_then_sent_is_delivered_once_after_backing_off() {
        let sender = RecordingLateSender::new();
        sender.answer_next([busy(), busy()]);
        let started = Instant::now();
        let hour = Duration::from_secs(3600);
        let result = deliver_late(
            &sender,
            OPENID,
            &text("hi"),
            &limits(Interaction::Message, hour),
        )
        .await;
        assert_eq!(result, LateResult::Sent { parts: 1 });
        assert_eq!(sender.sent().len(), 3);
        assert_eq!(started.elapsed(), Duration::from_secs(3), "1 s, then 2 s");
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_answer_stops_trying_when_its_minute_is_over_and_says_why() {
        let sender = RecordingLateSender::new();
        sender.answer_with(busy());
        let limits = limits(Interaction::Event, Duration::from_secs(20));
        let started = Instant::now();
        let result = deliver_late(&sender, OPENID, &text("hi"), &limits).await;
        assert!(started.elapsed() < Duration::from_secs(20));
        let reason = result.reason().unwrap();
        assert!(reason.starts_with("window_closed: "), "{reason}");
        assert!(
            reason.contains("last error: not sent: WeChat stayed busy"),
            "{reason}"
        );
        let LateResult::GaveUp { why, .. } = result else {
            panic!("{result:?}")
        };
        assert!(why.is_failure());
        // 1 + 2 + 4 + 8 s of pauses fit in 20 s; the next would not.
        assert_eq!(sender.sent().len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn sends_that_may_have_arrived_count_against_the_allowance() {
        let sender = RecordingLateSender::new();
        sender.answer_with(LateDelivery::Uncertain {
            reason: "not known to be sent: WeChat did not answer in time".into(),
        });
        let limits = limits(Interaction::Event, Duration::from_secs(60));
        let result = deliver_late(&sender, OPENID, &text("hi"), &limits).await;
        let reason = result.reason().unwrap();
        assert!(reason.starts_with("allowance_spent: "), "{reason}");
        assert_eq!(sender.sent().len(), 3, "an event allows 3");
    }

    #[tokio::test(start_paused = true)]
    async fn the_worker_stops_before_its_own_time_runs_out() {
        let sender = RecordingLateSender::new();
        sender.answer_with(busy());
        let mut limits = limits(Interaction::Message, Duration::from_secs(3600));
        limits.deadline = Instant::now() + Duration::from_secs(10);
        let result = deliver_late(&sender, OPENID, &text("hi"), &limits).await;
        assert!(Instant::now() <= limits.deadline);
        assert!(matches!(
            result,
            LateResult::GaveUp {
                why: GaveUp::OutOfTime {
                    last_error: Some(_)
                },
                ..
            }
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_final_and_names_what_was_sent() {
        let sender = RecordingLateSender::new();
        sender.answer_next([LateDelivery::Sent]);
        sender.answer_with(LateDelivery::Rejected {
            code: "too_many_messages",
            reason: "not sent: too many messages (45047)".into(),
        });
        let content = "字".repeat(1000);
        let hour = Duration::from_secs(3600);
        let result = deliver_late(
            &sender,
            OPENID,
            &text(&content),
            &limits(Interaction::Message, hour),
        )
        .await;
        assert_eq!(
            result.reason().unwrap(),
            "too_many_messages: not sent: too many messages (45047); 1 of 2 parts sent"
        );
        assert_eq!(sender.sent().len(), 2, "not retried");
    }

    #[tokio::test(start_paused = true)]
    async fn a_text_longer_than_the_allowance_is_cut_with_a_marker() {
        let sender = RecordingLateSender::new();
        let content = "中".repeat(3000);
        let minute = Duration::from_secs(60);
        let result = deliver_late(
            &sender,
            OPENID,
            &text(&content),
            &limits(Interaction::Event, minute),
        )
        .await;
        assert_eq!(
            result,
            LateResult::Truncated {
                parts: 3,
                needed: 5
            }
        );
        let parts = sent_texts(&sender);
        assert!(parts[2].ends_with(TRUNCATION_MARKER));
        assert!(
            !sender
                .calls()
                .iter()
                .any(|c| matches!(c, LateCall::Typing(_)))
        );
    }

    #[test]
    fn only_texts_are_split() {
        let news = Answer::MpNews {
            media_id: "M".into(),
        };
        assert_eq!(messages(&news, 5), (vec![news.clone()], 1));
    }
}

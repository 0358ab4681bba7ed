//! WeChat's terms for customer-service messages after one interaction with a user: how long
//! messages are accepted ([`Window`]: 48 hours after a message, 1 minute after an event), how
//! many ([`Window::allowance`]), and when the typing status may be shown. No I/O: times are epoch
//! seconds and milliseconds from the caller's clock.

/// How long after a message from the user customer-service messages are accepted (45015 after).
pub const MESSAGE_WINDOW_S: i64 = 48 * 60 * 60;
/// How many customer-service messages one message from the user allows (45047 beyond).
pub const MESSAGE_ALLOWANCE: u32 = 5;
/// How long after an event (a menu click, a follow, a scan) messages are accepted.
pub const EVENT_WINDOW_S: i64 = 60;
/// How many customer-service messages one event allows.
pub const EVENT_ALLOWANCE: u32 = 3;
/// The typing status needs a message from the user in the last 30 seconds (45080 otherwise).
pub const TYPING_WINDOW_S: i64 = 30;

/// What the user did that opens a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    /// The user sent a message (text, image, voice, …).
    Message,
    /// An event: a menu click, a follow, a scan, …
    Event,
}

impl Interaction {
    /// A push's interaction by its `MsgType`: `event` is an event, anything else a message.
    pub fn of_msg_type(msg_type: &str) -> Self {
        match msg_type {
            "event" => Self::Event,
            _ => Self::Message,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Event => "event",
        }
    }
}

/// The customer-service window one interaction opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub interaction: Interaction,
    /// When the interaction happened (the push's `CreateTime`), epoch seconds.
    pub opened_at_s: i64,
}

impl Window {
    /// The window `interaction` opened at `create_time_s`.
    pub fn after(interaction: Interaction, create_time_s: i64) -> Self {
        Self {
            interaction,
            opened_at_s: create_time_s,
        }
    }

    /// How long it stays open, in seconds.
    pub fn length_s(&self) -> i64 {
        match self.interaction {
            Interaction::Message => MESSAGE_WINDOW_S,
            Interaction::Event => EVENT_WINDOW_S,
        }
    }

    /// How many messages it allows.
    pub fn allowance(&self) -> u32 {
        match self.interaction {
            Interaction::Message => MESSAGE_ALLOWANCE,
            Interaction::Event => EVENT_ALLOWANCE,
        }
    }

    /// When it closes, epoch milliseconds.
    pub fn closes_at_ms(&self) -> i64 {
        self.opened_at_s
            .saturating_add(self.length_s())
            .saturating_mul(1000)
    }

    /// Milliseconds left at `now_ms`: 0 once it has closed.
    pub fn left_ms(&self, now_ms: i64) -> u64 {
        u64::try_from(self.closes_at_ms().saturating_sub(now_ms)).unwrap_or(0)
    }

    /// Whether the typing status may be shown at `now_ms`: after a message, within
    /// [`TYPING_WINDOW_S`] of it.
    pub fn typing_allowed(&self, now_ms: i64) -> bool {
        self.interaction == Interaction::Message
            && now_ms < self.opened_at_s.saturating_add(TYPING_WINDOW_S) * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_allows_three_messages_for_a_minute_a_message_five_for_two_days() {
        let event = Window::after(Interaction::of_msg_type("event"), 1_000);
        assert_eq!(event.allowance(), 3);
        assert_eq!(event.left_ms(1_000_000), 60_000);
        assert_eq!(event.left_ms(1_059_999), 1);
        assert_eq!(event.left_ms(1_060_000), 0);
        assert_eq!(event.left_ms(2_000_000), 0);
        let message = Window::after(Interaction::of_msg_type("text"), 1_000);
        assert_eq!(message.allowance(), 5);
        assert_eq!(message.left_ms(1_000_000), 48 * 3600 * 1000);
    }

    #[test]
    fn typing_is_shown_only_within_30_s_of_a_message() {
        let message = Window::after(Interaction::Message, 1_000);
        assert!(message.typing_allowed(1_029_999));
        assert!(!message.typing_allowed(1_030_000));
        assert!(!Window::after(Interaction::Event, 1_000).typing_allowed(1_000_000));
    }
}

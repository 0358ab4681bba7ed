//! Long texts as several customer-service messages. WeChat refuses a text over
//! [`MAX_TEXT_BYTES`] (45002), so [`split_text`] cuts one into parts within the limit, only at
//! character boundaries (never inside a UTF-8 sequence), and at a line or sentence end when one
//! is close to the limit; [`fit_text`] keeps the parts within an allowance of messages, cutting
//! the text with [`TRUNCATION_MARKER`] when it needs more. No I/O.

use std::ops::Range;

/// The longest text WeChat accepts in one customer-service message, in UTF-8 bytes of the
/// content (45002 beyond).
pub const MAX_TEXT_BYTES: usize = 2048;

/// Ends the last part sent when a text needs more messages than the allowance: the reader sees
/// that the text goes on.
pub const TRUNCATION_MARKER: &str = "…";

/// A part may end this share of the limit early (a quarter) to end at a line or sentence.
const LOOK_BACK_DIVISOR: usize = 4;

/// The smallest limit honoured: every character fits (UTF-8 takes at most 4 bytes per char).
const MIN_LIMIT: usize = 4;

/// `text` in parts of at most `max_bytes` bytes (at least 4) that concatenate to it, each cut at
/// a character boundary: after the last line break, else sentence end (`。！？；` or `.!?;` before
/// a space), else space, in the last quarter of the limit; at the limit when there is none.
/// The empty text has no parts.
pub fn split_text(text: &str, max_bytes: usize) -> Vec<&str> {
    ranges(text, max_bytes, true)
        .into_iter()
        .map(|range| &text[range])
        .collect()
}

/// The parts of a text that fit an allowance of messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// What to send, in order: never blank (WeChat refuses a blank text with 44004), each within
    /// the limit.
    pub parts: Vec<String>,
    /// How many messages the whole text needs: more than `parts.len()` when it was cut.
    pub needed: usize,
}

impl Fitted {
    /// Whether the text was cut to fit the allowance.
    pub fn truncated(&self) -> bool {
        self.needed > self.parts.len()
    }
}

/// `text` as at most `max_parts` messages of at most `max_bytes` bytes. Parts of whitespace
/// only are dropped. When the text needs more parts than allowed it is split at the limit
/// rather than at line and sentence ends (fewer parts); when even that is too many, the first
/// `max_parts` parts are kept and the last ends with [`TRUNCATION_MARKER`].
pub fn fit_text(text: &str, max_bytes: usize, max_parts: usize) -> Fitted {
    let visible = |text: &str, ranges: Vec<Range<usize>>| -> Vec<Range<usize>> {
        ranges
            .into_iter()
            .filter(|range| !text[range.clone()].trim().is_empty())
            .collect()
    };
    let owned = |text: &str, ranges: &[Range<usize>]| -> Vec<String> {
        ranges.iter().map(|r| text[r.clone()].to_string()).collect()
    };
    let nicely = visible(text, ranges(text, max_bytes, true));
    if nicely.len() <= max_parts {
        let needed = nicely.len();
        return Fitted {
            parts: owned(text, &nicely),
            needed,
        };
    }
    let tightly = visible(text, ranges(text, max_bytes, false));
    let needed = tightly.len();
    if needed <= max_parts {
        return Fitted {
            parts: owned(text, &tightly),
            needed,
        };
    }
    let Some(kept) = max_parts.checked_sub(1) else {
        return Fitted {
            parts: Vec::new(),
            needed,
        };
    };
    let mut parts = owned(text, &nicely[..kept]);
    let rest_at = nicely[..kept].last().map_or(0, |range| range.end);
    let rest = &text[rest_at..];
    let room = max_bytes.max(MIN_LIMIT + TRUNCATION_MARKER.len()) - TRUNCATION_MARKER.len();
    if let Some(last) = visible(rest, ranges(rest, room, true)).first() {
        parts.push(format!(
            "{}{TRUNCATION_MARKER}",
            rest[last.clone()].trim_end()
        ));
    }
    Fitted { parts, needed }
}

/// The byte ranges of the parts, in order, covering `text`.
fn ranges(text: &str, max_bytes: usize, prefer_breaks: bool) -> Vec<Range<usize>> {
    let max = max_bytes.max(MIN_LIMIT);
    let mut parts = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let rest = &text[start..];
        let len = match rest.len() <= max {
            true => rest.len(),
            false => cut(rest, max, prefer_breaks),
        };
        parts.push(start..start + len);
        start += len;
    }
    parts
}

/// The length of the next part of `rest`, which is longer than `max` (at least 4): never 0.
fn cut(rest: &str, max: usize, prefer_breaks: bool) -> usize {
    let hard = rest.floor_char_boundary(max);
    if !prefer_breaks {
        return hard;
    }
    let from = rest.floor_char_boundary(hard - (max / LOOK_BACK_DIVISOR).min(hard));
    let near = &rest[from..hard];
    let after = |at: usize, c: char| from + at + c.len_utf8();
    if let Some(at) = near.rfind('\n') {
        return after(at, '\n');
    }
    let sentence_end = near.char_indices().rev().find_map(|(at, c)| {
        let next = rest[after(at, c)..].chars().next();
        match c {
            '。' | '！' | '？' | '；' => Some(after(at, c)),
            // Not inside "3.14" or "example.com": a space must follow, and goes with it.
            '.' | '!' | '?' | ';' => match next {
                Some(space) if space.is_whitespace() => {
                    let end = after(at, c) + space.len_utf8();
                    Some(if end <= hard { end } else { after(at, c) })
                }
                _ => None,
            },
            _ => None,
        }
    });
    if let Some(end) = sentence_end {
        return end;
    }
    match near.char_indices().rev().find(|(_, c)| c.is_whitespace()) {
        Some((at, c)) => after(at, c),
        None => hard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_5000_byte_chinese_text_is_three_parts_cut_between_characters() {
        let text = format!("{}ab", "中".repeat(1666));
        assert_eq!(text.len(), 5000);
        let parts = split_text(&text, MAX_TEXT_BYTES);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() <= MAX_TEXT_BYTES));
        assert_eq!(parts[0].len(), 2046, "682 characters of 3 bytes");
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn parts_end_at_a_line_then_a_sentence_then_a_space_when_one_is_near() {
        let line = format!("{}\n{}", "a".repeat(20), "b".repeat(20));
        assert_eq!(
            split_text(&line, 24),
            ["a".repeat(20) + "\n", "b".repeat(20)]
        );
        let sentences = format!("{}。{}", "字".repeat(7), "字".repeat(7));
        assert_eq!(
            split_text(&sentences, 30)[0],
            format!("{}。", "字".repeat(7))
        );
        let english = "One two three. Four five six seven";
        assert_eq!(split_text(english, 17)[0], "One two three. ");
        // Not inside a number: a `.` is a sentence end only before a space.
        let number = format!("{} 3.14159{}", "x".repeat(28), "y".repeat(20));
        assert_eq!(split_text(&number, 40)[0].len(), 40);
        let words = "alpha beta gamma delta";
        assert_eq!(split_text(words, 12), ["alpha beta ", "gamma delta"]);
        // A break far from the limit is not taken: the part would be needlessly short.
        let early = format!("a\n{}", "b".repeat(30));
        assert_eq!(split_text(&early, 16)[0].len(), 16);
    }

    #[test]
    fn a_text_within_the_allowance_is_sent_whole() {
        let fitted = fit_text("hello", MAX_TEXT_BYTES, 3);
        assert_eq!(fitted.parts, ["hello"]);
        assert!(!fitted.truncated());
    }

    #[test]
    fn more_parts_than_allowed_split_tightly_before_they_are_cut() {
        // Line breaks early in each part make 4 parts; at the limit 3 do.
        let text = format!(
            "{}\n{}\n{}\n{}",
            "a".repeat(9),
            "b".repeat(9),
            "c".repeat(9),
            "d".repeat(5)
        );
        assert_eq!(split_text(&text, 12).len(), 4);
        let fitted = fit_text(&text, 12, 3);
        assert_eq!(fitted.parts.len(), 3);
        assert_eq!(fitted.parts.concat(), text);
        assert!(!fitted.truncated());
    }

    #[test]
    fn a_text_too_long_for_the_allowance_ends_with_the_marker() {
        let text = "中".repeat(3000);
        let fitted = fit_text(&text, MAX_TEXT_BYTES, 3);
        assert_eq!(fitted.needed, 5);
        assert!(fitted.truncated());
        assert_eq!(fitted.parts.len(), 3);
        assert!(fitted.parts.iter().all(|p| p.len() <= MAX_TEXT_BYTES));
        assert!(fitted.parts[2].ends_with(TRUNCATION_MARKER));
        let shown = fitted.parts.concat();
        assert!(text.starts_with(shown.trim_end_matches(TRUNCATION_MARKER)));
    }

    #[test]
    fn blank_parts_are_not_sent() {
        let text = format!("{}{}", "a".repeat(10), " ".repeat(30));
        let fitted = fit_text(&text, 10, 5);
        assert_eq!(fitted.parts, ["a".repeat(10)]);
    }

    proptest! {
        #[test]
        fn parts_concatenate_to_the_input_within_the_limit(text in any::<String>(), limit in 4usize..64) {
            let parts = split_text(&text, limit);
            prop_assert_eq!(parts.concat(), text.clone());
            let mut at = 0;
            for part in &parts {
                prop_assert!(!part.is_empty());
                prop_assert!(part.len() <= limit, "{} bytes over {}", part.len(), limit);
                prop_assert!(std::str::from_utf8(part.as_bytes()).is_ok());
                prop_assert!(text.is_char_boundary(at));
                at += part.len();
            }
        }

        #[test]
        fn long_texts_split_within_wechats_limit(text in "(\\PC|\n| ){0,3000}") {
            let parts = split_text(&text, MAX_TEXT_BYTES);
            prop_assert_eq!(parts.concat(), text.clone());
            prop_assert!(parts.iter().all(|p| p.len() <= MAX_TEXT_BYTES));
        }

        #[test]
        fn fitted_parts_keep_the_allowance_and_the_limit(
            text in "(\\PC|\n| ){1,400}",
            limit in 8usize..64,
            allowance in 0usize..6,
        ) {
            let fitted = fit_text(&text, limit, allowance);
            prop_assert!(fitted.parts.len() <= allowance);
            for part in &fitted.parts {
                prop_assert!(part.len() <= limit);
                prop_assert!(!part.trim().is_empty());
            }
            if !fitted.truncated() {
                let visible: String = text.split_whitespace().collect();
                let sent: String = fitted.parts.concat().split_whitespace().collect();
                prop_assert_eq!(sent, visible);
            }
        }
    }
}

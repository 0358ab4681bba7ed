//! The circuit in front of a hung service: after [`TRIP_AFTER`] timeouts in a row the worker
//! opens the service's `circuit#<id>` item for [`OPEN_S`], and while it is open the message side
//! answers pushes for that service with the configured fallback (`FORWARD_CIRCUIT_REPLY`, else
//! `success`) instead of starting a worker that would wait out the late timeout. Without it a
//! hung service holds one worker per push for the whole late timeout, and on an account with the
//! default concurrency quota a fraction of a push per second throttles every other function.
//!
//! The count is a heuristic, not a ledger: two workers timing out at once may count one, which
//! only opens the circuit one timeout later. The message side reads the item at most once per
//! [`CHECK_EVERY`] per container, so a closed circuit costs the hot path nothing most of the time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use table::{Item, StoreError, Table};

/// Timeouts in a row that open the circuit.
pub const TRIP_AFTER: u32 = 3;
/// How long an open circuit answers with the fallback before letting a push through again.
pub const OPEN_S: i64 = 60;
/// How long a container trusts what it last read of a circuit.
pub const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// The longest a message side waits to read a circuit before forwarding anyway.
pub const READ_WITHIN: std::time::Duration = std::time::Duration::from_millis(300);

/// The stored item, one per service URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitRecord {
    /// The service's timeouts since its last answer in time.
    pub timeouts_in_row: u32,
    /// Until when pushes for the service get the fallback (epoch seconds); 0: closed.
    pub open_until_s: i64,
    /// Kept a day past its last change: an idle circuit disappears.
    pub expires_at_s: i64,
}

impl Item for CircuitRecord {
    const PREFIX: &'static str = "circuit#";

    fn ttl(&self) -> Option<i64> {
        Some(self.expires_at_s)
    }
}

/// The item's id for a service URL: fixed length, whatever the URL.
pub fn circuit_id(url: &str) -> String {
    hex::encode(&Sha256::digest(url.trim().as_bytes())[..16])
}

/// What the worker reports of each call, and what the message side asks.
pub trait CircuitLog: Send + Sync {
    /// Whether pushes for `url` get the fallback at `now_s`.
    fn is_open(
        &self,
        url: &str,
        now_s: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The service at `url` timed out at `now_s`; returns whether this opened the circuit.
    fn timed_out(
        &self,
        url: &str,
        now_s: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The service at `url` answered in time: the count starts again.
    fn answered(
        &self,
        url: &str,
        now_s: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl<T: Table> CircuitLog for T {
    async fn is_open(&self, url: &str, now_s: i64) -> Result<bool, StoreError> {
        let record = self.get::<CircuitRecord>(&circuit_id(url)).await?;
        Ok(record.is_some_and(|record| record.open_until_s > now_s))
    }

    async fn timed_out(&self, url: &str, now_s: i64) -> Result<bool, StoreError> {
        let id = circuit_id(url);
        let before = self.get::<CircuitRecord>(&id).await?;
        let timeouts_in_row = before.map_or(0, |record| record.timeouts_in_row) + 1;
        let opens = timeouts_in_row >= TRIP_AFTER;
        let record = CircuitRecord {
            // Opening starts the count again: after the pause, TRIP_AFTER more timeouts reopen it.
            timeouts_in_row: if opens { 0 } else { timeouts_in_row },
            open_until_s: if opens { now_s + OPEN_S } else { 0 },
            expires_at_s: now_s + 86_400,
        };
        self.put(&id, &record, None).await?;
        Ok(opens)
    }

    async fn answered(&self, url: &str, now_s: i64) -> Result<(), StoreError> {
        let id = circuit_id(url);
        // The usual case (no timeouts lately) reads once and writes nothing.
        match self.get::<CircuitRecord>(&id).await? {
            Some(record) if record.timeouts_in_row > 0 => {
                let record = CircuitRecord {
                    timeouts_in_row: 0,
                    expires_at_s: now_s + 86_400,
                    ..record
                };
                self.put(&id, &record, None).await.map(|_| ())
            }
            _ => Ok(()),
        }
    }
}

/// What a message-side container last read of each circuit, and when.
#[derive(Debug, Default)]
pub struct CircuitView {
    seen: Mutex<HashMap<String, (tokio::time::Instant, bool)>>,
}

impl CircuitView {
    /// Whether `url`'s circuit is open, read from `log` at most once per [`CHECK_EVERY`] and
    /// within [`READ_WITHIN`]. A failed or slow read counts as closed: the circuit protects
    /// capacity, never the answer.
    pub async fn is_open(&self, log: &impl CircuitLog, url: &str, now_s: i64) -> bool {
        let now = tokio::time::Instant::now();
        let cached = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(url)
            .copied();
        if let Some((read_at, open)) = cached
            && now.duration_since(read_at) < CHECK_EVERY
        {
            return open;
        }
        let open = match tokio::time::timeout(READ_WITHIN, log.is_open(url, now_s)).await {
            Ok(Ok(open)) => open,
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not read the forward circuit; forwarding");
                false
            }
            Err(_) => {
                tracing::warn!("the forward circuit was not read in time; forwarding");
                false
            }
        };
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url.to_string(), (now, open));
        open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use table::embedded::EmbeddedStore;

    const URL: &str = "https://bot.example.com/wechat";

    #[tokio::test]
    async fn three_timeouts_in_a_row_open_the_circuit_for_a_minute() {
        let table = EmbeddedStore::in_memory();
        let now = 1_800_000_000;
        assert!(!table.timed_out(URL, now).await.unwrap());
        assert!(!table.timed_out(URL, now + 1).await.unwrap());
        assert!(!table.is_open(URL, now + 2).await.unwrap());
        assert!(table.timed_out(URL, now + 2).await.unwrap());
        assert!(table.is_open(URL, now + 3).await.unwrap());
        assert!(table.is_open(URL, now + 2 + OPEN_S - 1).await.unwrap());
        assert!(!table.is_open(URL, now + 2 + OPEN_S).await.unwrap());
        assert!(
            !table
                .is_open("https://other.example/", now + 3)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_answer_in_time_starts_the_count_again() {
        let table = EmbeddedStore::in_memory();
        let now = 1_800_000_000;
        table.timed_out(URL, now).await.unwrap();
        table.timed_out(URL, now).await.unwrap();
        table.answered(URL, now).await.unwrap();
        assert!(!table.timed_out(URL, now).await.unwrap());
        assert!(!table.is_open(URL, now).await.unwrap());
    }
}

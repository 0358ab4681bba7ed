//! Time as a port, so token expiry, leases, deadlines and sessions can be tested on a virtual
//! clock. Every "now" in the code comes from a [`Clock`], held as a [`SharedClock`]
//! (`Arc<dyn Clock>`): [`SystemClock`] in production, [`ManualClock`] in tests. Only waiting
//! (backoff pauses, lease polls) uses tokio's timer.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time in epoch milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;

    fn now_s(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// How every component holds its clock: built once in `main` (or a test) and shared.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn at_ms(epoch_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(epoch_ms)))
    }

    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn set_ms(&self, epoch_ms: i64) {
        self.0.store(epoch_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let clock = ManualClock::at_ms(1_000_500);
        let other = clock.clone();
        assert_eq!(clock.now_s(), 1000);
        other.advance_ms(1_500);
        assert_eq!(clock.now_ms(), 1_002_000);
        assert_eq!(clock.now_s(), 1002);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_s() > 1_577_836_800);
    }
}

//! Log capture: what the code under test logged, as text, for tests that check what a log line
//! says and, above all, what it never says (tokens, openids, message text).

use std::sync::{Arc, Mutex};

/// Everything logged while the guard lives, on this thread (use a current-thread runtime).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        Self::capture_at(tracing::Level::TRACE)
    }

    /// [`Logs::capture`] of the lines at `level` and above.
    pub fn capture_at(level: tracing::Level) -> (Self, tracing::subscriber::DefaultGuard) {
        Undecided::install();
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(level)
            .with_writer(move || writer.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The text once it contains every one of `needles`, or after 5 s: a background worker logs
    /// its outcome just after the item's last transition, which is what tests wait for.
    pub async fn text_once_it_has(&self, needles: &[&str]) -> String {
        for _ in 0..100 {
            let text = self.text();
            if needles.iter().all(|needle| text.contains(needle)) {
                return text;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.text()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process's global subscriber in tests that capture logs: it records nothing, but answers
/// every callsite "sometimes". tracing caches each callsite's interest across all subscribers;
/// a callsite first hit on a thread with no subscriber while another test swaps its own in could
/// be cached as "never" and stay off for a later capture (a race seen as a missing log line under
/// load). With this one registered, no callsite is ever "never", and each event asks the
/// current thread's subscriber.
struct Undecided;

impl Undecided {
    fn install() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // A binary that set its own global subscriber first keeps it.
        ONCE.call_once(|| drop(tracing::subscriber::set_global_default(Undecided)));
    }
}

impl tracing::Subscriber for Undecided {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

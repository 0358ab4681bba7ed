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

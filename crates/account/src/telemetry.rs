//! Every function's log subscriber: `tracing` to stdout, JSON when the function's log format is
//! JSON (`AWS_LAMBDA_LOG_FORMAT`), at `AWS_LAMBDA_LOG_LEVEL` or else `RUST_LOG` (default INFO), as
//! the runtime's default subscriber does, with one difference: the Lambda runtime crates are
//! capped at INFO whatever those say, because at TRACE they log each raw event (cookies, OAuth
//! codes, stale tokens).

use std::str::FromStr;

use lambda_http::tracing::subscriber::filter::{EnvFilter, LevelFilter, Targets};
use lambda_http::tracing::subscriber::layer::SubscriberExt;
use lambda_http::tracing::subscriber::util::SubscriberInitExt;
use lambda_http::tracing::subscriber::{self, Layer, Registry};

/// The crates that log raw events below INFO.
const RUNTIME_CRATES: [&str; 3] = ["lambda_runtime", "lambda_runtime_api_client", "lambda_http"];

/// Install the subscriber for this process (once, first thing in `main`).
pub fn init() {
    let var = |name| std::env::var(name).ok();
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    let filter = env_filter(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
    );
    let fmt = subscriber::fmt::layer().with_target(false).without_time();
    let fmt = match json {
        true => fmt.json().boxed(),
        false => fmt.boxed(),
    };
    // `try_init`: a second call (tests) keeps the first subscriber.
    let _ = Registry::default()
        .with(filter)
        .with(runtime_cap())
        .with(fmt)
        .try_init();
}

/// The filter from Lambda's log level (it wins, as in the runtime's own subscriber) or `RUST_LOG`
/// directives, INFO when neither is set or Lambda's level does not parse.
pub fn env_filter(lambda_log_level: Option<&str>, rust_log: Option<&str>) -> EnvFilter {
    let level = lambda_log_level
        .and_then(|level| LevelFilter::from_str(level).ok())
        .unwrap_or(LevelFilter::INFO);
    let directives = match lambda_log_level {
        Some(_) => "",
        None => rust_log.unwrap_or(""),
    };
    EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy(directives)
}

/// A global filter that refuses the runtime crates' events below INFO. A separate layer rather
/// than directives in the `EnvFilter`, which a more specific `RUST_LOG` directive (a module path,
/// a span filter) would override.
pub fn runtime_cap() -> Targets {
    RUNTIME_CRATES.into_iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |targets, krate| targets.with_target(krate, LevelFilter::INFO),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What reaches the log with the filter built from these settings.
    fn logged(lambda_log_level: Option<&str>, rust_log: &str) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = Registry::default()
            .with(env_filter(lambda_log_level, Some(rust_log)))
            .with(runtime_cap())
            .with(
                subscriber::fmt::layer()
                    .json()
                    .with_writer(move || writer.clone()),
            );
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "lambda_runtime", "raw event runtime");
            tracing::debug!(target: "lambda_runtime::layers::trace", "raw event layers");
            tracing::trace!(target: "lambda_runtime_api_client", "raw event client");
            tracing::trace!(target: "lambda_http", "raw event http");
            tracing::info!(target: "lambda_runtime", "runtime info");
            tracing::trace!(target: "shared::token", "ours at trace");
        });
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn rust_log_trace_does_not_enable_the_runtimes_raw_event_logs() {
        for rust_log in [
            "trace",
            "lambda_runtime=trace,lambda_http=trace,lambda_runtime_api_client=trace",
            "lambda_runtime::layers=trace,trace",
        ] {
            let logs = logged(None, rust_log);
            assert!(!logs.contains("raw event"), "{rust_log}: {logs}");
            assert!(logs.contains("runtime info"), "{rust_log}: {logs}");
        }
        assert!(logged(None, "trace").contains("ours at trace"));
    }

    #[test]
    fn lambdas_log_level_wins_over_rust_log_and_is_capped_too() {
        let logs = logged(Some("TRACE"), "warn");
        assert!(
            logs.contains("ours at trace") && !logs.contains("raw event"),
            "{logs}"
        );
        let logs = logged(Some("WARN"), "trace");
        assert!(
            !logs.contains("ours at trace") && !logs.contains("runtime info"),
            "{logs}"
        );
    }

    #[test]
    fn info_is_the_default() {
        let logs = logged(None, "");
        assert!(
            logs.contains("runtime info") && !logs.contains("ours at trace"),
            "{logs}"
        );
    }
}

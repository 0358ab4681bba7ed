//! The `forward` action of a rule: where the message goes and how long the passive reply may
//! wait (run by the `forward` module).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The passive-reply budget when a forward rule gives none.
pub const DEFAULT_TIMEOUT_MS: u64 = 3_500;
/// The largest budget a rule may set: WeChat gives up at 5 s, and the request needs time to
/// arrive, be checked and be answered.
pub const MAX_TIMEOUT_MS: u64 = 4_000;
/// A forward action: POST the message to `url`, wait up to `timeout_ms` for a passive answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardSpec {
    pub url: String,
    /// The passive-reply budget; an answer after it goes out late. 0: always late.
    pub timeout_ms: u64,
}

impl ForwardSpec {
    pub fn budget(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// `https://`, or `http://` on a loopback host (development); a budget WeChat can wait for.
    pub fn check(&self) -> Result<(), String> {
        let (origin, _) = wechat_protocol::origin::split_origin(self.url.trim())
            .map_err(|reason| format!("forward url {reason}"))?;
        if !origin.as_str().starts_with("https://") && !origin.is_loopback() {
            return Err(format!(
                "forward url {:?} must be https (plain http is allowed only on loopback)",
                self.url
            ));
        }
        if self.timeout_ms > MAX_TIMEOUT_MS {
            return Err(format!(
                "forward timeout_ms {} is too long: at most {MAX_TIMEOUT_MS} (WeChat waits 5000 ms \
                 in all; later answers go out through the customer-service API)",
                self.timeout_ms
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str, timeout_ms: u64) -> ForwardSpec {
        ForwardSpec {
            url: url.into(),
            timeout_ms,
        }
    }

    #[test]
    fn https_anywhere_and_http_only_on_loopback() {
        assert!(spec("https://bot.example.com/wechat", 3500).check().is_ok());
        assert!(spec("http://127.0.0.1:8080/hook", 3500).check().is_ok());
        assert!(spec("http://localhost:8080", 0).check().is_ok());
        for bad in [
            "http://bot.example.com/wechat",
            "ftp://bot.example.com",
            "bot.example.com",
            "https://user:pw@bot.example.com/",
        ] {
            assert!(spec(bad, 3500).check().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_budget_near_wechats_limit_is_refused() {
        let err = spec("https://x.example", 4500).check().unwrap_err();
        assert!(err.contains("at most 4000"), "{err}");
        assert!(spec("https://x.example", MAX_TIMEOUT_MS).check().is_ok());
    }
}

//! Why a `wx` subcommand failed: one variant per source, each printed as one `error:` line (a
//! menu file's violations follow it, one per line).

use account::config::ConfigError;
use account::menu::MenuError;
use account::token::{CallError, TokenError};
use wechat_protocol::wechat_side::PushError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Call(#[from] CallError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error("{file}: {source}")]
    Menu { file: String, source: MenuError },
    /// The cause chain, never the URL's query (it may carry a signature worth replaying).
    #[error("cannot reach {url}: {reason}")]
    Http { url: String, reason: String },
}

impl CliError {
    /// A request error, with its causes (connection refused, timeout) but without the query.
    pub fn http(url: &str, e: &reqwest::Error) -> Self {
        let mut reason = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            "connection failed".to_string()
        } else {
            "request failed".to_string()
        };
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            reason.push_str(": ");
            reason.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::Http {
            url: url.to_string(),
            reason,
        }
    }
}

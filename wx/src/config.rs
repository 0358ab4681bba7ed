//! The configuration every `wx` subcommand reads: the real environment, then a `.env` file in the
//! current directory, then the local server's development defaults (so `wx push` signs with the
//! token `wx serve` checks when neither sets one).

use std::collections::HashMap;

use account::config::vars::WECHAT_TOKEN;
use account::config::vars::{
    HOST, LOCAL_REFRESH_INTERVAL_SECS, LOCAL_STORE, PORT, SESSION_SECRET, TABLE_NAME,
    WECHAT_FORWARD_SECRET,
};

use crate::env;

/// Values used when neither the environment nor `.env` sets a variable. None of them is fit for
/// production; the banner names the ones in use.
pub const DEV_DEFAULTS: &[(&str, &str)] = &[
    (HOST, "127.0.0.1"),
    (PORT, "3000"),
    (WECHAT_TOKEN, DEV_TOKEN),
    (LOCAL_STORE, DEFAULT_STORE),
    (LOCAL_REFRESH_INTERVAL_SECS, "300"),
    (TABLE_NAME, "local"),
    (SESSION_SECRET, "local-development-only-session-secret-0000"),
    (
        WECHAT_FORWARD_SECRET,
        "local-development-only-forward-secret-000",
    ),
];

/// The webhook token when nothing sets `WECHAT_TOKEN` (what the quick start signs with).
pub const DEV_TOKEN: &str = "devtoken";
pub const DOTENV_FILE: &str = ".env";
pub const DEFAULT_STORE: &str = ".local/store.json";
pub const DEFAULT_FAKE_STORE: &str = ".local/store-fake.json";

/// The merged configuration and the names that fell back to a development default.
#[derive(Debug)]
pub struct Config {
    pub env: HashMap<String, String>,
    pub defaulted: Vec<&'static str>,
}

impl Config {
    /// Whether `name` came from a development default rather than the environment or `.env`.
    pub fn is_default(&self, name: &str) -> bool {
        self.defaulted.contains(&name)
    }
}

/// Read the environment and `.env` (its unparsable lines are warned about on stderr).
pub fn load() -> Result<Config, String> {
    let dotenv = match std::fs::read_to_string(DOTENV_FILE) {
        Ok(text) => env::parse_dotenv(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => env::DotEnv::default(),
        Err(e) => return Err(format!("cannot read {DOTENV_FILE}: {e}")),
    };
    for warning in &dotenv.warnings {
        tracing::warn!("{warning}");
    }
    // `vars_os`: a variable that is not Unicode is skipped rather than aborting.
    let real = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let (env, defaulted) = env::merge_env(real, &dotenv.vars, DEV_DEFAULTS);
    Ok(Config { env, defaulted })
}

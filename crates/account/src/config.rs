//! Reading typed configuration from the environment: one error type that names the variable
//! ([`ConfigError`]), where values come from ([`Env`]: the process, a map in tests, or the
//! stack's secret layered over the process by the AWS adapter), every variable's name ([`vars`])
//! and the WeChat app configuration every function shares ([`WeChatAppConfig`]).

pub mod vars;
mod wechat;

use std::fmt;
use std::str::FromStr;

pub use wechat::{
    DEFAULT_HTTP_TIMEOUT_MS, DEFAULT_OPEN_BASE, WeChatApiConfig, WeChatAppConfig, app_id, base_url,
    is_app_id, required_app_id,
};

/// A configuration problem found at start-up. The message always names the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error in {variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, reason: impl Into<String>) -> Self {
        Self {
            variable,
            reason: reason.into(),
        }
    }
}

/// Where configuration values come from. The process environment in production; a map in tests.
pub trait Env {
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_string())
    }
}

/// A set, non-blank variable, trimmed.
pub fn optional(env: &impl Env, name: &'static str) -> Option<String> {
    env.get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A variable that must be set and non-blank.
pub fn required(env: &impl Env, name: &'static str) -> Result<String, ConfigError> {
    optional(env, name).ok_or_else(|| ConfigError::new(name, "is required but not set"))
}

/// An optional variable parsed with `FromStr`, falling back to `default` when unset.
pub fn parsed_or<T>(env: &impl Env, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    match optional(env, name) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|e| ConfigError::new(name, format!("cannot parse {raw:?}: {e}"))),
    }
}

/// A boolean flag: `1/true/yes/on` or `0/false/no/off` (any case).
pub fn flag_or(env: &impl Env, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match optional(env, name).map(|v| v.to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
        Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
        Some(v) => Err(ConfigError::new(
            name,
            format!("expected true, false, 1, 0, yes, no, on or off (any case), got {v:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_required_variable_is_named_in_the_error() {
        let env = [("OTHER", "x")];
        let err = required(&env, "WECHAT_TOKEN").unwrap_err();
        assert_eq!(err.variable, "WECHAT_TOKEN");
        assert!(err.to_string().contains("WECHAT_TOKEN"));
    }

    #[test]
    fn blank_values_count_as_unset() {
        let env = [("WECHAT_TOKEN", "   ")];
        assert!(required(&env, "WECHAT_TOKEN").is_err());
        assert_eq!(optional(&env, "WECHAT_TOKEN"), None);
    }

    #[test]
    fn unparsable_number_names_the_variable_and_value() {
        let env = [("WINDOW", "five")];
        let err = parsed_or::<u64>(&env, "WINDOW", 300).unwrap_err();
        assert!(err.to_string().contains("WINDOW") && err.to_string().contains("five"));
        assert_eq!(
            parsed_or::<u64>(&[("WINDOW", "60")], "WINDOW", 300).unwrap(),
            60
        );
        assert_eq!(parsed_or::<u64>(&env, "UNSET", 300).unwrap(), 300);
    }

    #[test]
    fn flags_accept_common_spellings_and_reject_others() {
        assert!(flag_or(&[("F", "Yes")], "F", false).unwrap());
        assert!(!flag_or(&[("F", "off")], "F", true).unwrap());
        let err = flag_or(&[("F", "maybe")], "F", true)
            .unwrap_err()
            .to_string();
        for spelling in ["true", "false", "1", "0", "yes", "no", "on", "off"] {
            assert!(err.contains(spelling), "{spelling} missing: {err}");
        }
    }
}

//! `.local/run.json`: what a running `wx serve` tells the other subcommands started in the same
//! directory (its URL, this run's Lambda Invoke key, the WeChat API it talks to), so that
//! `wx token --local` and `wx menu --local` need no flags. Written owner-only (0600), like the
//! store it sits next to, and removed when the server stops cleanly.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub const RUN_FILE: &str = ".local/run.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `http://localhost:PORT`.
    pub url: String,
    /// The `X-Local-Invoke-Key` of this run.
    pub invoke_key: String,
    /// The WeChat API base the server's token service uses (the fake's loopback URL with
    /// `LOCAL_FAKE_WECHAT`); absent when the token service is off.
    pub wechat_api: Option<String>,
}

pub fn write(path: &Path, info: &RunInfo) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(info).map_err(std::io::Error::other)?;
    // Replace, not truncate: an older file may have wider permissions.
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// The running server's details; `None` when no server wrote them (or they are unreadable).
pub fn read(path: &Path) -> Option<RunInfo> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_run_file_round_trips_and_is_owner_only() {
        let dir = std::env::temp_dir().join(format!("wx-run-{}", std::process::id()));
        let path = dir.join("run.json");
        let info = RunInfo {
            url: "http://localhost:3000".into(),
            invoke_key: "k".repeat(32),
            wechat_api: Some("http://127.0.0.1:4000".into()),
        };
        write(&path, &info).unwrap();
        assert_eq!(read(&path), Some(info));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        remove(&path);
        assert_eq!(read(&path), None);
        let _ = std::fs::remove_dir(&dir);
    }
}

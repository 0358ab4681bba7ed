//! `.local/run-PORT.json`: what a running `wx serve` tells the other subcommands started in the
//! same directory (its URL, this run's Lambda Invoke key, the WeChat API it talks to, its AppID
//! and safe mode), so that `wx token --local`, `wx menu --local` and `wx push --local` need no
//! flags. One file per port, so a second server on another port neither overwrites nor, when it
//! stops, removes the first one's. Written owner-only (0600), like the store it sits next to, and
//! removed when the server stops cleanly. It holds no secret other than the per-run invoke key.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The folder of the run files (and of the embedded store).
pub const RUN_DIR: &str = ".local";
/// How the run files are named, for messages: `.local/run-PORT.json`.
pub const RUN_FILES: &str = ".local/run-PORT.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// `http://localhost:PORT`.
    pub url: String,
    /// The `X-Local-Invoke-Key` of this run.
    pub invoke_key: String,
    /// The WeChat API base the server's token service uses (the fake's loopback URL with
    /// `LOCAL_FAKE_WECHAT`); absent when the token service is off.
    pub wechat_api: Option<String>,
    /// The AppID the server runs as (not a secret): what `wx push --encrypt` seals for and
    /// `wx jssdk sign` signs for when `WECHAT_APP_ID` is not set for `wx`.
    #[serde(default)]
    pub app_id: Option<String>,
    /// The webhook's safe mode: `off` (no EncodingAESKey), `required` (encrypted pushes only)
    /// or `optional` (plaintext accepted too); for `wx push` to explain a refusal.
    #[serde(default)]
    pub safe_mode: Option<String>,
    /// Whether the webhook checks the development default token (`devtoken`), so that `wx` can
    /// say whether its own token is the server's. The token itself is never written here.
    #[serde(default)]
    pub default_token: bool,
}

impl RunInfo {
    /// The port of [`Self::url`].
    pub fn port(&self) -> Option<u16> {
        port_of(&self.url)
    }
}

/// `.local/run-PORT.json` below `dir`.
pub fn path_for(dir: &Path, port: u16) -> PathBuf {
    dir.join(RUN_DIR).join(format!("run-{port}.json"))
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

/// Every run file below `dir`, ordered by port.
pub fn all(dir: &Path) -> Vec<RunInfo> {
    let Ok(entries) = std::fs::read_dir(dir.join(RUN_DIR)) else {
        return Vec::new();
    };
    let mut found: Vec<RunInfo> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("run-")
                .and_then(|rest| rest.strip_suffix(".json"))
                .is_some_and(|port| port.parse::<u16>().is_ok())
        })
        .filter_map(|entry| read(&entry.path()))
        .collect();
    found.sort_by_key(RunInfo::port);
    found
}

/// Which local server a `--local` command talks to, by its run file below `dir`.
///
/// - `--local=URL`: the run file of that URL's port, if it names the same server; `None` when
///   there is none (a server started in another directory, or none at all).
/// - `--local` alone: the server on `port` when `PORT` is set for `wx` too; else the only server
///   with a run file here; with several, the only one that still answers (a server killed
///   without stopping cleanly leaves its file behind).
pub fn find(dir: &Path, url: Option<&str>, port: Option<u16>) -> Result<Option<RunInfo>, String> {
    if let Some(url) = url {
        let Some(port) = port_of(url).filter(|_| is_loopback_url(url)) else {
            return Ok(None);
        };
        return Ok(read(&path_for(dir, port)).filter(|info| info.port() == Some(port)));
    }
    let all = all(dir);
    if let Some(port) = port {
        return match all.into_iter().find(|info| info.port() == Some(port)) {
            Some(info) => Ok(Some(info)),
            None => Err(format!(
                "no local server on port {port} found ({} is missing): start `make run` in this \
                 directory, or pass --local URL",
                path_for(Path::new(""), port).display()
            )),
        };
    }
    let live: Vec<RunInfo> = match all.len() {
        0 => {
            return Err(format!(
                "no local server found (no {RUN_FILES} in this directory): start `make run` in \
                 this directory, or pass --local URL"
            ));
        }
        1 => return Ok(all.into_iter().next()),
        _ => all.iter().filter(|info| answers(info)).cloned().collect(),
    };
    match live.as_slice() {
        [one] => Ok(Some(one.clone())),
        [] => Err(format!(
            "no local server answers (the {RUN_FILES} files here are left from servers that did \
             not stop cleanly): start `make run` in this directory"
        )),
        several => Err(format!(
            "{} local servers run in this directory ({}): choose one with --local=URL, or set \
             PORT to its port",
            several.len(),
            several
                .iter()
                .map(|info| info.url.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The servers whose run files are below `dir` and that answer.
pub fn running(dir: &Path) -> Vec<RunInfo> {
    all(dir).into_iter().filter(answers).collect()
}

/// The servers other than the one on `port` whose run files are below `dir` and that answer.
pub fn others_running(dir: &Path, port: u16) -> Vec<RunInfo> {
    running(dir)
        .into_iter()
        .filter(|info| info.port() != Some(port))
        .collect()
}

/// Whether the server of `info` accepts a connection (briefly: it is on this machine).
fn answers(info: &RunInfo) -> bool {
    let Some(port) = info.port() else {
        return false;
    };
    let Ok(addresses) = ("localhost", port).to_socket_addrs() else {
        return false;
    };
    addresses
        .into_iter()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok())
}

/// The port of an `http://host:port[/…]` URL (80 when it names none).
pub fn port_of(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let port = match authority.rsplit_once(':') {
        // `[::1]` alone: the colon is inside the brackets.
        Some((_, port)) if !port.ends_with(']') => port.parse().ok()?,
        _ => 80,
    };
    Some(port)
}

/// Whether `url` names this machine (`localhost`, `127.x.x.x`, `[::1]`).
fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wx-run-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn info(port: u16) -> RunInfo {
        RunInfo {
            url: format!("http://localhost:{port}"),
            invoke_key: "k".repeat(32),
            wechat_api: Some("http://127.0.0.1:4000".into()),
            app_id: Some("wxfa4e000000000001".into()),
            safe_mode: Some("off".into()),
            default_token: true,
        }
    }

    #[test]
    fn the_run_file_round_trips_and_is_owner_only() {
        let dir = scratch("round-trip");
        let path = path_for(&dir, 3000);
        assert!(path.ends_with(".local/run-3000.json"), "{}", path.display());
        write(&path, &info(3000)).unwrap();
        assert_eq!(read(&path), Some(info(3000)));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        remove(&path);
        assert_eq!(read(&path), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_run_file_of_an_older_wx_still_reads() {
        let dir = scratch("older");
        let path = path_for(&dir, 3000);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"url":"http://localhost:3000","invoke_key":"k","wechat_api":null}"#,
        )
        .unwrap();
        let read = read(&path).unwrap();
        assert_eq!(read.app_id, None);
        assert!(!read.default_token);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_server_is_found_alone_by_port_or_by_url_and_none_means_start_one() {
        let dir = scratch("find");
        let err = find(&dir, None, None).unwrap_err();
        assert!(err.contains("make run"), "{err}");
        write(&path_for(&dir, 3001), &info(3001)).unwrap();
        assert_eq!(find(&dir, None, None).unwrap(), Some(info(3001)));
        assert_eq!(find(&dir, None, Some(3001)).unwrap(), Some(info(3001)));
        let err = find(&dir, None, Some(3000)).unwrap_err();
        assert!(err.contains("port 3000"), "{err}");
        for url in [
            "http://localhost:3001",
            "http://127.0.0.1:3001/",
            "http://[::1]:3001",
        ] {
            assert_eq!(
                find(&dir, Some(url), None).unwrap(),
                Some(info(3001)),
                "{url}"
            );
        }
        // Another port, or another machine: no run file describes it.
        assert_eq!(
            find(&dir, Some("http://localhost:3002"), None).unwrap(),
            None
        );
        assert_eq!(
            find(&dir, Some("http://example.com:3001"), None).unwrap(),
            None
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn with_several_servers_only_one_that_answers_is_chosen_without_asking() {
        let dir = scratch("several");
        let live = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let live_port = live.local_addr().unwrap().port();
        let dead_port = {
            let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            gone.local_addr().unwrap().port()
        };
        write(&path_for(&dir, live_port), &info(live_port)).unwrap();
        write(&path_for(&dir, dead_port), &info(dead_port)).unwrap();
        assert_eq!(find(&dir, None, None).unwrap(), Some(info(live_port)));

        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other_port = other.local_addr().unwrap().port();
        write(&path_for(&dir, other_port), &info(other_port)).unwrap();
        let err = find(&dir, None, None).unwrap_err();
        assert!(err.contains("2 local servers"), "{err}");
        assert!(err.contains("--local=URL"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ports_come_from_http_urls() {
        assert_eq!(port_of("http://localhost:3000"), Some(3000));
        assert_eq!(port_of("http://localhost:3000/wechat"), Some(3000));
        assert_eq!(port_of("http://[::1]:8080"), Some(8080));
        assert_eq!(port_of("http://[::1]"), Some(80));
        assert_eq!(port_of("http://localhost"), Some(80));
        assert_eq!(port_of("https://localhost:3000"), None);
        assert!(is_loopback_url("http://127.0.0.2:1"));
        assert!(!is_loopback_url("http://192.168.1.5:3000"));
    }
}

//! A fake WeChat API server on loopback for tests and for `make run` without a real account.
//! It answers like the real one (HTTP 200 with `errcode` JSON on failure), counts calls per path,
//! and can be scripted to misbehave on the next call(s) to a path.
//!
//! Each endpoint family lives in its own submodule with a `handle` function that returns `None`
//! for paths it does not own.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub mod custom;
pub mod jssdk;
pub mod jweixin;
pub mod menu;
pub mod qrcode;
pub mod sns;
pub mod template;
pub mod token;
pub mod whitelist;

/// The app credentials the fake accepts by default. The AppID is shaped like a real one (`wx` and
/// 16 hexadecimal digits, as `WECHAT_APP_ID` is checked), its digits spelling "fa4e".
pub const FAKE_APP_ID: &str = "wxfa4e000000000001";
pub const FAKE_APP_SECRET: &str = "fake-app-secret";

/// A forced answer for the next call to a path.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// HTTP 200 with `{"errcode": code, "errmsg": ...}`.
    ErrCode(i64),
    /// A bare HTTP status with an HTML body, as a proxy in front of WeChat would send.
    HttpStatus(u16),
    /// Wait this long, then answer normally (use a duration past the client's timeout).
    Hang(Duration),
    /// HTTP 200 with a body that is not JSON.
    Malformed,
}

/// A request as the endpoint handlers see it.
#[derive(Debug, Clone)]
pub struct FakeRequest {
    pub method: hyper::Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub body: Bytes,
}

impl FakeRequest {
    /// The JSON body, or `Value::Null` when the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A response from an endpoint handler.
#[derive(Debug, Clone)]
pub struct FakeResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub location: Option<String>,
}

impl FakeResponse {
    pub fn json(value: serde_json::Value) -> Self {
        Self {
            status: 200,
            content_type: "application/json; encoding=utf-8",
            body: value.to_string(),
            location: None,
        }
    }

    /// WeChat's error shape.
    pub fn errcode(code: i64) -> Self {
        Self::json(serde_json::json!({ "errcode": code, "errmsg": errmsg(code) }))
    }

    pub fn redirect(location: String) -> Self {
        Self {
            status: 302,
            content_type: "text/html",
            body: String::new(),
            location: Some(location),
        }
    }
}

/// WeChat's message for `code`, from the one error-code table (`wechat_api::errcode`).
pub fn errmsg(code: i64) -> &'static str {
    wechat_api::errcode::lookup(code).map_or("error", |row| row.errmsg)
}

/// State shared by all endpoint handlers.
#[derive(Debug)]
pub struct FakeState {
    pub app_id: String,
    pub app_secret: String,
    calls: Mutex<HashMap<String, u64>>,
    scripts: Mutex<HashMap<String, VecDeque<Scripted>>>,
    pub token: Mutex<token::TokenState>,
    pub sns: Mutex<sns::SnsState>,
    pub custom: Mutex<custom::CustomState>,
    pub jssdk: Mutex<jssdk::TicketState>,
    pub menu: Mutex<menu::MenuState>,
    /// The account's IP whitelist: none unless set ([`whitelist`]).
    pub whitelist: Mutex<whitelist::Whitelist>,
    pub qrcode: Mutex<qrcode::QrState>,
    pub template: Mutex<template::TemplateState>,
    /// Where a persistent fake keeps what WeChat would remember across its restarts.
    persisted_at: Option<PathBuf>,
}

/// What a persistent fake keeps on disk: the access_tokens and jsapi_tickets it issued (with
/// their lifetimes and quotas), so that what a store kept from an earlier run is still accepted,
/// as WeChat still accepts it after a restart of the account's server.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Persisted {
    token: token::TokenSnapshot,
    jssdk: jssdk::TicketState,
}

/// Lock a mutex, ignoring poisoning (a panicking test thread must not wedge the fake).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeState {
    fn new(app_id: &str, app_secret: &str) -> Self {
        Self {
            app_id: app_id.into(),
            app_secret: app_secret.into(),
            calls: Mutex::default(),
            scripts: Mutex::default(),
            token: Mutex::default(),
            sns: Mutex::default(),
            custom: Mutex::default(),
            jssdk: Mutex::default(),
            menu: Mutex::default(),
            whitelist: Mutex::default(),
            qrcode: Mutex::default(),
            template: Mutex::default(),
            persisted_at: None,
        }
    }

    /// A state restored from `path` when it holds one (a missing file is a first run).
    fn load(app_id: &str, app_secret: &str, path: &Path) -> std::io::Result<Self> {
        let mut state = Self::new(app_id, app_secret);
        match std::fs::read(path) {
            Ok(bytes) => {
                let persisted: Persisted = serde_json::from_slice(&bytes).map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{}: {e} (delete it to start the fake afresh)",
                            path.display()
                        ),
                    )
                })?;
                lock(&state.token).restore(persisted.token);
                *lock(&state.jssdk) = persisted.jssdk;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        state.persisted_at = Some(path.to_path_buf());
        Ok(state)
    }

    /// Write what WeChat would remember, when persistent: to a temporary file renamed into
    /// place, readable by its owner only (it holds tokens, if fake ones).
    fn persist(&self) {
        let Some(path) = &self.persisted_at else {
            return;
        };
        let persisted = Persisted {
            token: lock(&self.token).snapshot(),
            jssdk: lock(&self.jssdk).clone(),
        };
        let Ok(json) = serde_json::to_vec(&persisted) else {
            return;
        };
        let tmp = path.with_extension("tmp");
        let written = write_private(&tmp, &json).and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "the fake WeChat API could not save its state");
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// The running fake. Dropping it stops the server.
pub struct FakeWeChat {
    base_url: String,
    state: Arc<FakeState>,
    task: JoinHandle<()>,
}

impl FakeWeChat {
    /// Start on a free loopback port with the default fake credentials.
    pub async fn start() -> Self {
        Self::start_with(([127, 0, 0, 1], 0).into(), FAKE_APP_ID, FAKE_APP_SECRET)
            .await
            .expect("bind a loopback port for the fake WeChat API")
    }

    /// Start on `addr` accepting the given app credentials.
    pub async fn start_with(
        addr: SocketAddr,
        app_id: &str,
        app_secret: &str,
    ) -> std::io::Result<Self> {
        Self::serve_state(addr, FakeState::new(app_id, app_secret)).await
    }

    /// [`Self::start_with`], keeping what WeChat remembers (issued tokens and tickets, quotas)
    /// in `path` across restarts, as `wx serve` does beside its store: a token the store kept
    /// from the last run is then still accepted, as the real WeChat would accept it.
    pub async fn start_persistent(
        addr: SocketAddr,
        app_id: &str,
        app_secret: &str,
        path: &Path,
    ) -> std::io::Result<Self> {
        Self::serve_state(addr, FakeState::load(app_id, app_secret, path)?).await
    }

    async fn serve_state(addr: SocketAddr, state: FakeState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let state = Arc::new(state);
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let state = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| serve(state.clone(), peer.ip(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            base_url: format!("http://{local}"),
            state,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`: use as `WECHAT_API_BASE` and `WECHAT_OPEN_BASE`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn state(&self) -> &FakeState {
        &self.state
    }

    /// How many requests reached `path` (e.g. `/cgi-bin/stable_token`).
    pub fn calls(&self, path: &str) -> u64 {
        lock(&self.state.calls).get(path).copied().unwrap_or(0)
    }

    /// Answer 40164 to every call with the token or the AppSecret from an address not in
    /// `allowed` ([`whitelist`]); e.g. a whitelist without `127.0.0.1` refuses every local caller.
    pub fn set_ip_whitelist(&self, allowed: Vec<IpAddr>) {
        lock(&self.state.whitelist).set(allowed);
    }

    /// Queue a forced answer for the next call to `path`.
    pub fn script(&self, path: &str, answer: Scripted) {
        lock(&self.state.scripts)
            .entry(path.to_string())
            .or_default()
            .push_back(answer);
    }
}

impl Drop for FakeWeChat {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    state: Arc<FakeState>,
    caller: IpAddr,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let query = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let req = FakeRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query,
        body,
    };
    *lock(&state.calls).entry(req.path.clone()).or_default() += 1;
    if let Some(image) = qrcode::image(&state, &req) {
        return Ok(image);
    }

    let scripted = lock(&state.scripts)
        .get_mut(&req.path)
        .and_then(VecDeque::pop_front);
    let answer = match scripted {
        Some(Scripted::ErrCode(code)) => FakeResponse::errcode(code),
        Some(Scripted::HttpStatus(status)) => FakeResponse {
            status,
            content_type: "text/html",
            body: format!("<html><body>{status}</body></html>"),
            location: None,
        },
        Some(Scripted::Malformed) => FakeResponse {
            status: 200,
            content_type: "application/json",
            body: "{\"access_token\": tru".into(),
            location: None,
        },
        Some(Scripted::Hang(pause)) => {
            tokio::time::sleep(pause).await;
            route(&state, &req)
        }
        None => whitelist::refusal(&state, &req, caller).unwrap_or_else(|| route(&state, &req)),
    };
    state.persist();
    Ok(to_hyper(answer))
}

fn route(state: &FakeState, req: &FakeRequest) -> FakeResponse {
    token::handle(state, req)
        .or_else(|| sns::handle(state, req))
        .or_else(|| custom::handle(state, req))
        .or_else(|| jssdk::handle(state, req))
        .or_else(|| jweixin::handle(req))
        .or_else(|| menu::handle(state, req))
        .or_else(|| qrcode::handle(state, req))
        .or_else(|| template::handle(state, req))
        .unwrap_or_else(|| FakeResponse {
            status: 404,
            content_type: "text/plain",
            body: "not found".into(),
            location: None,
        })
}

fn to_hyper(answer: FakeResponse) -> hyper::Response<Full<Bytes>> {
    // Any origin may call the fake: the jweixin stand-in posts to it from the page's origin.
    let mut builder = hyper::Response::builder()
        .status(answer.status)
        .header("content-type", answer.content_type)
        .header("access-control-allow-origin", "*")
        .header("access-control-allow-methods", "GET, POST, OPTIONS")
        .header("access-control-allow-headers", "content-type");
    if let Some(location) = answer.location {
        builder = builder.header("location", location);
    }
    builder
        .body(Full::new(Bytes::from(answer.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

//! Fake `GET /cgi-bin/token` (classic) and `POST /cgi-bin/stable_token`, answering like WeChat:
//!
//! - credentials: a wrong `grant_type` → 40002, missing appid → 41002, wrong appid → 40013,
//!   missing secret → 41004, wrong secret → 40001 (classic) / 40125 (stable), stable body not
//!   JSON → 47001;
//! - classic: a new token on every call, the previous one valid for 5 more minutes at most,
//!   2000 calls a day (China time), then 45009;
//! - stable, normal mode: the current token (with its remaining lifetime) while more than 5
//!   minutes are left, else a new token, the old one staying valid until it expires;
//! - stable, forced: a new token at once, the previous one invalid at once; 20 a day (then 45009),
//!   30 s apart (else 45011).
//!
//! Tokens live 7200 s on the fake's clock, which tests can replace with the service's virtual
//! clock ([`TokenState::use_clock`]) so a simulated day is honest. `GET /cgi-bin/get_api_domain_ip`
//! is a token-protected call (41001 without a token, 42001 expired, 40001 invalid or replaced),
//! and [`FakeState::is_valid_token`] lets other fake endpoints check tokens the same way.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use account::clock::{Clock, SystemClock};
use account::token::china_day;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{FakeRequest, FakeResponse, FakeState, lock};

/// The lifetime of every issued token, in seconds.
pub const TOKEN_LIFETIME_S: i64 = 7200;
/// The overlap WeChat grants: the stable API renews in a token's last 5 minutes, and a classic
/// fetch leaves the previous token valid for 5 more minutes.
pub const OVERLAP_MS: i64 = 300_000;
/// Classic fetches allowed per China-time day.
pub const CLASSIC_DAILY_QUOTA: u32 = 2000;
const FORCE_DAILY_LIMIT: u32 = 20;
const FORCE_MIN_INTERVAL_MS: i64 = 30_000;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Life {
    expires_at_ms: i64,
    /// When it was replaced and stopped working, if it was.
    revoked_at_ms: Option<i64>,
}

/// Tokens issued so far and the stable-token bookkeeping.
pub struct TokenState {
    clock: Arc<dyn Clock>,
    issued: u64,
    tokens: HashMap<String, Life>,
    classic_current: Option<String>,
    classic_day: i64,
    classic_count: u32,
    stable_current: Option<String>,
    force_day: i64,
    force_count: u32,
    last_force_at_ms: Option<i64>,
}

impl Default for TokenState {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            issued: 0,
            tokens: HashMap::new(),
            classic_current: None,
            classic_day: 0,
            classic_count: 0,
            stable_current: None,
            force_day: 0,
            force_count: 0,
            last_force_at_ms: None,
        }
    }
}

impl fmt::Debug for TokenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenState")
            .field("issued", &self.issued)
            .field("now_ms", &self.clock.now_ms())
            .finish_non_exhaustive()
    }
}

/// What WeChat remembers of the tokens it issued, kept across restarts of a persistent fake.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct TokenSnapshot {
    issued: u64,
    tokens: HashMap<String, Life>,
    classic_current: Option<String>,
    classic_day: i64,
    classic_count: u32,
    stable_current: Option<String>,
    force_day: i64,
    force_count: u32,
    last_force_at_ms: Option<i64>,
}

impl TokenState {
    pub(super) fn snapshot(&self) -> TokenSnapshot {
        TokenSnapshot {
            issued: self.issued,
            tokens: self.tokens.clone(),
            classic_current: self.classic_current.clone(),
            classic_day: self.classic_day,
            classic_count: self.classic_count,
            stable_current: self.stable_current.clone(),
            force_day: self.force_day,
            force_count: self.force_count,
            last_force_at_ms: self.last_force_at_ms,
        }
    }

    pub(super) fn restore(&mut self, snapshot: TokenSnapshot) {
        self.issued = snapshot.issued;
        self.tokens = snapshot.tokens;
        self.classic_current = snapshot.classic_current;
        self.classic_day = snapshot.classic_day;
        self.classic_count = snapshot.classic_count;
        self.stable_current = snapshot.stable_current;
        self.force_day = snapshot.force_day;
        self.force_count = snapshot.force_count;
        self.last_force_at_ms = snapshot.last_force_at_ms;
    }

    /// Judge lifetimes and quotas by `clock` (e.g. the test's `ManualClock`) instead of wall time.
    pub fn use_clock(&mut self, clock: impl Clock + 'static) {
        self.clock = Arc::new(clock);
    }

    /// The fake's time now (epoch ms), on the clock set with [`Self::use_clock`].
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// How many tokens the fake has issued (the stable API handing back its current token does
    /// not count).
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// Whether `token` would be accepted by an API call now.
    pub fn is_valid(&self, token: &str) -> bool {
        self.rejection(token).is_none()
    }

    /// Invalidate every token at once, as a forced refresh by some other system would.
    pub fn revoke_all(&mut self) {
        let now = self.clock.now_ms();
        for life in self.tokens.values_mut() {
            life.revoked_at_ms.get_or_insert(now);
        }
    }

    /// The errcode an API call made with `token` gets, if any.
    fn rejection(&self, token: &str) -> Option<i64> {
        let now = self.clock.now_ms();
        match self.tokens.get(token) {
            None => Some(40001),
            Some(life) if life.revoked_at_ms.is_some_and(|at| at <= now) => Some(40001),
            Some(life) if life.expires_at_ms <= now => Some(42001),
            Some(_) => None,
        }
    }

    fn issue(&mut self) -> (String, i64) {
        self.issued += 1;
        let token = format!("FAKE_ACCESS_TOKEN_{:08}", self.issued);
        let expires_at_ms = self.clock.now_ms() + TOKEN_LIFETIME_S * 1000;
        self.tokens.insert(
            token.clone(),
            Life {
                expires_at_ms,
                revoked_at_ms: None,
            },
        );
        (token, expires_at_ms)
    }

    /// Make `token` stop working at `at_ms` (unless it already stops earlier).
    fn revoke_at(&mut self, token: &str, at_ms: i64) {
        if let Some(life) = self.tokens.get_mut(token) {
            let at = life.revoked_at_ms.map_or(at_ms, |r| r.min(at_ms));
            life.revoked_at_ms = Some(at);
        }
    }

    fn classic(&mut self) -> FakeResponse {
        let now = self.clock.now_ms();
        let today = china_day(now);
        if self.classic_day != today {
            self.classic_day = today;
            self.classic_count = 0;
        }
        if self.classic_count >= CLASSIC_DAILY_QUOTA {
            return FakeResponse::errcode(45009);
        }
        self.classic_count += 1;
        if let Some(previous) = self.classic_current.take() {
            self.revoke_at(&previous, now + OVERLAP_MS);
        }
        let (token, _) = self.issue();
        self.classic_current = Some(token.clone());
        token_answer(&token, TOKEN_LIFETIME_S)
    }

    fn stable(&mut self, force: bool) -> FakeResponse {
        let now = self.clock.now_ms();
        if force {
            let today = china_day(now);
            if self.force_day != today {
                self.force_day = today;
                self.force_count = 0;
            }
            if self.force_count >= FORCE_DAILY_LIMIT {
                return FakeResponse::errcode(45009);
            }
            if self
                .last_force_at_ms
                .is_some_and(|last| now - last < FORCE_MIN_INTERVAL_MS)
            {
                return FakeResponse::errcode(45011);
            }
            self.force_count += 1;
            self.last_force_at_ms = Some(now);
            if let Some(previous) = self.stable_current.take() {
                self.revoke_at(&previous, now);
            }
        } else if let Some(current) = &self.stable_current
            && self.rejection(current).is_none()
        {
            let remaining_ms = self.tokens[current].expires_at_ms - now;
            if remaining_ms > OVERLAP_MS {
                return token_answer(current, remaining_ms / 1000);
            }
        }
        let (token, _) = self.issue();
        self.stable_current = Some(token.clone());
        token_answer(&token, TOKEN_LIFETIME_S)
    }
}

impl FakeState {
    /// Whether an API call made with `token` would be accepted (for other fake endpoints).
    pub fn is_valid_token(&self, token: &str) -> bool {
        lock(&self.token).is_valid(token)
    }

    /// The errcode WeChat answers a call made with `token` (None: accepted).
    pub fn token_rejection(&self, token: Option<&str>) -> Option<i64> {
        match token {
            None | Some("") => Some(41001),
            Some(token) => lock(&self.token).rejection(token),
        }
    }

    fn check_credentials(
        &self,
        grant_type: Option<&str>,
        appid: Option<&str>,
        secret: Option<&str>,
        wrong_secret_errcode: i64,
    ) -> Result<(), i64> {
        if grant_type != Some("client_credential") {
            return Err(40002);
        }
        match appid {
            None | Some("") => return Err(41002),
            Some(appid) if appid != self.app_id => return Err(40013),
            Some(_) => {}
        }
        match secret {
            None | Some("") => Err(41004),
            Some(secret) if secret != self.app_secret => Err(wrong_secret_errcode),
            Some(_) => Ok(()),
        }
    }
}

pub fn handle(state: &FakeState, req: &FakeRequest) -> Option<FakeResponse> {
    let query = |name: &str| req.query.get(name).map(String::as_str);
    Some(match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/cgi-bin/token") => {
            match state.check_credentials(
                query("grant_type"),
                query("appid"),
                query("secret"),
                40001,
            ) {
                Err(code) => FakeResponse::errcode(code),
                Ok(()) => lock(&state.token).classic(),
            }
        }
        ("POST", "/cgi-bin/stable_token") => {
            let body = req.json();
            if !body.is_object() {
                return Some(FakeResponse::errcode(47001));
            }
            let field = |name: &str| body.get(name).and_then(Value::as_str);
            match state.check_credentials(
                field("grant_type"),
                field("appid"),
                field("secret"),
                40125,
            ) {
                Err(code) => FakeResponse::errcode(code),
                Ok(()) => {
                    let force = body
                        .get("force_refresh")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    lock(&state.token).stable(force)
                }
            }
        }
        ("GET", "/cgi-bin/get_api_domain_ip") => match state.token_rejection(query("access_token"))
        {
            Some(code) => FakeResponse::errcode(code),
            None => {
                FakeResponse::json(json!({ "ip_list": ["101.226.103.0/25", "101.226.62.0/26"] }))
            }
        },
        _ => return None,
    })
}

fn token_answer(token: &str, expires_in_s: i64) -> FakeResponse {
    FakeResponse::json(json!({ "access_token": token, "expires_in": expires_in_s }))
}

//! The fake's JS-SDK side: `GET /cgi-bin/ticket/getticket?type=jsapi` issuing jsapi_tickets (with
//! the token endpoint's call counter and scripted faults, which the server applies to every path),
//! and `POST /fake/jssdk/verify`, the check behind the stand-in for `jweixin`'s `wx.config`.
//!
//! - getticket checks the access_token as every token-protected call does (41001 without one,
//!   40001 for one the fake never issued or revoked, 42001 for an expired one) and answers a new
//!   ticket on every call, valid 7200 s on the token state's clock; the previous ticket keeps
//!   working until it expires, any older one stops.
//! - verify takes `{"appId", "timestamp", "nonceStr", "signature", "url"}` and answers
//!   `{"ok": true}` when the signature is `wechat_protocol::signature::jssdk_signature` over the current or the
//!   previous ticket, the URL without its `#fragment` (as jweixin signs `location.href`), and
//!   `appId` is the fake's; otherwise `{"ok": false, "errMsg": "config:invalid signature"}`, the
//!   real jweixin's message. Every answer allows any origin, since the page calling it is served
//!   by another server.

use std::fmt;

use serde_json::{Value, json};

use super::{FakeRequest, FakeResponse, FakeState, lock};

/// The lifetime of every issued ticket, in seconds.
pub const TICKET_LIFETIME_S: i64 = 7200;
/// The verify route the `jweixin` stand-in posts to.
pub const VERIFY_PATH: &str = "/fake/jssdk/verify";
/// The real jweixin's `errMsg` for a signature that does not match.
pub const INVALID_SIGNATURE: &str = "config:invalid signature";

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Issued {
    ticket: String,
    expires_at_ms: i64,
}

/// Tickets issued so far: the current one and the one before it. Serialized as is by a
/// persistent fake.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TicketState {
    issued: u64,
    current: Option<Issued>,
    previous: Option<Issued>,
}

impl fmt::Debug for TicketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketState")
            .field("issued", &self.issued)
            .finish_non_exhaustive()
    }
}

impl TicketState {
    /// How many tickets the fake has issued.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// The ticket issued last, if any.
    pub fn current(&self) -> Option<&str> {
        self.current.as_ref().map(|i| i.ticket.as_str())
    }

    /// Stop accepting every ticket issued so far, as an AppSecret reset would.
    pub fn revoke_all(&mut self) {
        self.current = None;
        self.previous = None;
    }

    /// The tickets a signature is checked against at `now_ms`: the current and the previous one,
    /// while unexpired.
    fn accepted(&self, now_ms: i64) -> impl Iterator<Item = &str> {
        [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .filter(move |i| i.expires_at_ms > now_ms)
            .map(|i| i.ticket.as_str())
    }

    fn issue(&mut self, now_ms: i64) -> FakeResponse {
        self.issued += 1;
        let issued = Issued {
            ticket: format!("FAKE_JSAPI_TICKET_{:08}", self.issued),
            expires_at_ms: now_ms + TICKET_LIFETIME_S * 1000,
        };
        self.previous = self.current.replace(issued.clone());
        FakeResponse::json(json!({
            "errcode": 0, "errmsg": "ok", "ticket": issued.ticket, "expires_in": TICKET_LIFETIME_S
        }))
    }
}

impl FakeState {
    /// Whether `ticket` would pass a `wx.config` now (for tests).
    pub fn is_valid_ticket(&self, ticket: &str) -> bool {
        let now = lock(&self.token).now_ms();
        lock(&self.jssdk).accepted(now).any(|t| t == ticket)
    }
}

pub fn handle(state: &FakeState, req: &FakeRequest) -> Option<FakeResponse> {
    Some(match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/cgi-bin/ticket/getticket") => {
            let query = |name: &str| req.query.get(name).map(String::as_str);
            if let Some(code) = state.token_rejection(query("access_token")) {
                return Some(FakeResponse::errcode(code));
            }
            if query("type") != Some("jsapi") {
                // WeChat's "invalid args" for a missing or unknown ticket type.
                return Some(FakeResponse::errcode(40097));
            }
            let now = lock(&state.token).now_ms();
            lock(&state.jssdk).issue(now)
        }
        ("OPTIONS", VERIFY_PATH) => FakeResponse {
            status: 204,
            content_type: "text/plain",
            body: String::new(),
            location: None,
        },
        ("POST", VERIFY_PATH) => FakeResponse::json(verify(state, &req.json())),
        _ => return None,
    })
}

/// The answer `wx.config` gets for `config`.
fn verify(state: &FakeState, config: &Value) -> Value {
    let field = |name: &str| config.get(name).and_then(Value::as_str);
    // jweixin takes the timestamp as a number or a string of digits.
    let timestamp = config.get("timestamp").and_then(|t| {
        t.as_i64()
            .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
    });
    let (Some(app_id), Some(timestamp), Some(nonce), Some(signature), Some(url)) = (
        field("appId"),
        timestamp,
        field("nonceStr"),
        field("signature"),
        field("url"),
    ) else {
        return json!({ "ok": false, "errMsg": INVALID_SIGNATURE });
    };
    let url = url.split('#').next().unwrap_or(url);
    let now = lock(&state.token).now_ms();
    let signed = app_id == state.app_id
        && lock(&state.jssdk).accepted(now).any(|ticket| {
            wechat_protocol::signature::jssdk_signature(ticket, nonce, timestamp, url) == signature
        });
    if signed {
        json!({ "ok": true })
    } else {
        json!({ "ok": false, "errMsg": INVALID_SIGNATURE })
    }
}

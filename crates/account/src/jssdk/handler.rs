//! `Jssdk<T>`: the JS-SDK routes of the `oauth` function, over `lambda_http::Request` so that
//! Lambda, the local server and tests run the same code.
//!
//! Routes (below the path of `PUBLIC_BASE_URL`):
//! - `GET /jssdk/config?url=<page url>` → `{"appId","timestamp","nonceStr","signature"}` for
//!   `wx.config`, or `{"error": "..."}` (400 for a URL that is not signed, 503 with
//!   `Retry-After` when no jsapi_ticket can be had, 404 when signing is off). `OPTIONS` answers
//!   the CORS preflight. Anonymous requests cannot turn into WeChat calls: the ticket source the
//!   Lambda uses (`crate::token::TokenClient`) asks for a missing ticket once at a time and
//!   remembers a failure for `crate::token::TICKET_FAILURE_MEMORY_MS`, as the token service does.
//!   CORS: `Access-Control-Allow-Origin` echoes the request's `Origin` only when it is one of the
//!   JS-SDK domains; every answer carries `Vary: Origin`.
//! - `GET /demo` → the demo page ([`super::demo`]), only with `DEMO_PAGE_ENABLED`.
//!
//! Other paths are not this handler's: [`Jssdk::handle`] returns `None` and the caller routes on.

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use wechat_protocol::origin::Origin;
use wechat_protocol::random::RandomUnavailable;
use wechat_protocol::signature::jssdk_signature;

use super::config::JssdkConfig;
use super::demo;
use super::page_url::{PageUrlError, signable};
use crate::clock::SharedClock;
use crate::http::{json, query, text};
use crate::token::{JsapiTicket, TICKET_FAILURE_MEMORY_MS, TicketSource, TokenError};

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE_S: &str = "600";

/// Why `/jssdk/config` (or `/demo`) did not answer what was asked. [`JssdkError::status`] is the
/// one mapping to HTTP; the message is the JSON answer's `error` and never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum JssdkError {
    #[error("JS-SDK signing is off: JSSDK_ALLOWED_ORIGINS is not set")]
    SigningOff,
    #[error(transparent)]
    PageUrl(#[from] PageUrlError),
    /// Only the error's kind is shown; the whole error is logged.
    #[error("no jsapi_ticket is available right now ({})", .0.kind())]
    Ticket(TokenError),
    #[error("the random number source failed")]
    Random(#[from] RandomUnavailable),
    #[error("method not allowed")]
    MethodNotAllowed,
}

impl JssdkError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SigningOff => StatusCode::NOT_FOUND,
            Self::PageUrl(_) => StatusCode::BAD_REQUEST,
            Self::Ticket(_) | Self::Random(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// For a 503, how many seconds the client should wait: until the remembered failure (or the
    /// token service's block) ends, else the length of the memory. At least 1.
    pub fn retry_after_s(&self, now_ms: i64) -> Option<u64> {
        let Self::Ticket(cause) = self else {
            return None;
        };
        let wait_ms = cause
            .retry_at_ms()
            .map_or(TICKET_FAILURE_MEMORY_MS, |at| at - now_ms);
        Some((wait_ms.max(1) as u64).div_ceil(1000))
    }

    fn log(&self) {
        let status = self.status().as_u16();
        match self {
            // Logged as an error when it happened; its repeats are not news.
            Self::Ticket(cause @ TokenError::RecentlyFailed { .. }) => {
                tracing::info!(status, error = %cause, "jssdk: no jsapi_ticket (failure remembered)")
            }
            Self::Ticket(cause) => {
                tracing::error!(status, error = %cause, "jssdk: no jsapi_ticket")
            }
            Self::Random(_) => tracing::error!(status, error = %self, "jssdk failed"),
            _ => tracing::info!(status, error = %self, "jssdk request refused"),
        }
    }

    fn into_response(self, allow: &'static str) -> Response<Body> {
        self.log();
        let mut response = no_store(json(self.status(), &json!({ "error": self.to_string() })));
        if matches!(self, Self::MethodNotAllowed) {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// What `wx.config` needs besides `jsApiList`, named as `wx.config` names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WxConfig {
    pub app_id: String,
    pub timestamp: i64,
    pub nonce_str: String,
    pub signature: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Config,
    Demo,
}

/// The JS-SDK handler. Build it once per container; `handle` serves `/jssdk/config` and `/demo`.
pub struct Jssdk<T> {
    config: JssdkConfig,
    app_id: String,
    path_prefix: String,
    /// `None` when signing is off (no JS-SDK domain configured): nothing to ask for tickets.
    /// The Lambda wraps its source in `crate::token::TokenClient`, so a warm container asks
    /// nobody while its ticket is usable.
    tickets: Option<T>,
    clock: SharedClock,
}

impl<T: TicketSource> Jssdk<T> {
    /// `app_id` and `path_prefix` are the oauth function's (`OAuthConfig::wechat.app_id`,
    /// `OAuthConfig::path_prefix`); `tickets` is needed only when
    /// [`JssdkConfig::signing_enabled`], and is ignored otherwise.
    pub fn new(
        config: JssdkConfig,
        app_id: impl Into<String>,
        path_prefix: impl Into<String>,
        tickets: Option<T>,
        clock: SharedClock,
    ) -> Self {
        let tickets = tickets.filter(|_| config.signing_enabled());
        Self {
            config,
            app_id: app_id.into(),
            path_prefix: path_prefix.into(),
            tickets,
            clock,
        }
    }

    /// Serve `req` if its path is this handler's (`/jssdk/config`, and `/demo` when enabled).
    pub async fn handle(&self, req: &Request) -> Option<Response<Body>> {
        Some(match self.route(req.uri().path())? {
            Route::Config => self.config_route(req).await,
            Route::Demo => self.demo(req),
        })
    }

    fn route(&self, path: &str) -> Option<Route> {
        // API Gateway strips the stage; a custom domain or the local server may not.
        let path = match path.strip_prefix(self.path_prefix.as_str()) {
            Some(rest) if !self.path_prefix.is_empty() && rest.starts_with('/') => rest,
            _ => path,
        };
        match path {
            "/jssdk/config" => Some(Route::Config),
            "/demo" if self.config.demo_page => Some(Route::Demo),
            _ => None,
        }
    }

    // ---- /jssdk/config ----

    async fn config_route(&self, req: &Request) -> Response<Body> {
        let mut response = match *req.method() {
            Method::GET => match self.sign(req).await {
                Ok(answer) => no_store(json(StatusCode::OK, &answer)),
                Err(err) => {
                    let retry_after = err.retry_after_s(self.clock.now_ms());
                    let mut response = err.into_response("GET, OPTIONS");
                    if let Some(seconds) = retry_after {
                        response
                            .headers_mut()
                            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                    }
                    response
                }
            },
            Method::OPTIONS => preflight(),
            _ => JssdkError::MethodNotAllowed.into_response("GET, OPTIONS"),
        };
        let headers = response.headers_mut();
        // Answers differ by Origin, so shared caches must key on it.
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed_request_origin(req) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        response
    }

    /// The request's `Origin` header, when it names one of the JS-SDK domains.
    fn allowed_request_origin(&self, req: &Request) -> Option<HeaderValue> {
        let raw = req.headers().get(header::ORIGIN)?;
        let origin = Origin::parse(raw.to_str().ok()?).ok()?;
        self.config
            .allowed_origins
            .contains(&origin)
            .then(|| raw.clone())
    }

    async fn sign(&self, req: &Request) -> Result<WxConfig, JssdkError> {
        let tickets = self.tickets.as_ref().ok_or(JssdkError::SigningOff)?;
        let raw = query(req).remove("url").unwrap_or_default();
        let url = signable(&raw, &self.config.allowed_origins)?;
        let ticket = tickets.jsapi_ticket().await.map_err(JssdkError::Ticket)?;
        let config = sign_page(&self.app_id, &ticket, &url, self.clock.now_s())?;
        // The page's origin and path only: its query may carry the user's data.
        tracing::info!(
            page = url.split('?').next().unwrap_or_default(),
            "jssdk: signed"
        );
        Ok(config)
    }

    // ---- /demo ----

    fn demo(&self, req: &Request) -> Response<Body> {
        if *req.method() != Method::GET && *req.method() != Method::HEAD {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            return response;
        }
        match demo::csp_nonce() {
            Ok(nonce) => demo::render(&self.config, &self.path_prefix, &nonce),
            Err(err) => {
                tracing::error!(error = %err, "demo page failed");
                text(StatusCode::SERVICE_UNAVAILABLE, "try again later")
            }
        }
    }
}

/// `wx.config`'s parameters for the page `url` (already without its `#fragment`), signed with
/// `ticket` at `timestamp` under a fresh nonce: what `/jssdk/config` answers and `wx jssdk sign`
/// prints.
pub fn sign_page(
    app_id: &str,
    ticket: &JsapiTicket,
    url: &str,
    timestamp: i64,
) -> Result<WxConfig, RandomUnavailable> {
    let nonce_str = nonce()?;
    let signature = jssdk_signature(ticket.value.expose(), &nonce_str, timestamp, url);
    Ok(WxConfig {
        app_id: app_id.to_string(),
        timestamp,
        nonce_str,
        signature,
    })
}

/// 16 random hex characters (64 bits): WeChat asks for a random string of at most 32.
fn nonce() -> Result<String, RandomUnavailable> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|_| RandomUnavailable)?;
    Ok(hex::encode(bytes))
}

fn preflight() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE_S),
    );
    response
}

fn no_store(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_16_hex_characters_and_differ() {
        let (a, b) = (nonce().unwrap(), nonce().unwrap());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn each_error_maps_to_one_status() {
        assert_eq!(JssdkError::SigningOff.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            JssdkError::PageUrl(PageUrlError::Missing).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            JssdkError::Ticket(TokenError::Invoke("timeout".into())).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            JssdkError::Random(RandomUnavailable).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            JssdkError::MethodNotAllowed.status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn a_ticket_error_asks_to_retry_when_its_memory_ends_or_after_the_memory_length() {
        let remembered = JssdkError::Ticket(TokenError::RecentlyFailed {
            kind: "InvokeFailed",
            until_ms: 10_500,
        });
        assert_eq!(remembered.retry_after_s(1_000), Some(10));
        assert_eq!(remembered.retry_after_s(10_499), Some(1));
        assert_eq!(remembered.retry_after_s(20_000), Some(1));
        let fresh = JssdkError::Ticket(TokenError::Invoke("timeout".into()));
        assert_eq!(
            fresh.retry_after_s(0),
            Some((TICKET_FAILURE_MEMORY_MS / 1000) as u64)
        );
        assert_eq!(JssdkError::SigningOff.retry_after_s(0), None);
        assert_eq!(JssdkError::Random(RandomUnavailable).retry_after_s(0), None);
        // The remembered failure answers as the original did.
        assert_eq!(
            remembered.to_string(),
            "no jsapi_ticket is available right now (InvokeFailed)"
        );
    }

    #[test]
    fn a_ticket_error_shows_its_kind_not_its_details() {
        let err = JssdkError::Ticket(TokenError::Remote(
            "details from the refresh function".into(),
        ));
        assert_eq!(
            err.to_string(),
            "no jsapi_ticket is available right now (TokenFunctionFailed)"
        );
    }
}

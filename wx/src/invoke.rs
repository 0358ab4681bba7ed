//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`) emulated for the
//! `refresh` function (and the `api` function, named `api`), so `wx token --local` and `account::token::LambdaTokenSource` work against
//! the local server exactly as against Lambda: HTTP 200 with the function's JSON, or HTTP 200 with
//! `X-Amz-Function-Error: Unhandled` and Lambda's `{"errorType", "errorMessage"}`. A name with the
//! `ticket` qualifier (`refresh:ticket`, or `?Qualifier=ticket`) is the function's ticket-only
//! entry, as deployed.
//!
//! The answer is a live access_token, so it is served only to this machine: a loopback client
//! that names a loopback host (a tunnel or a DNS-rebinding page sends another `Host`) and sends
//! this run's [`InvokeKey`] in `X-Local-Invoke-Key`. Anything else gets 403 saying why.

use std::net::IpAddr;

use account::api::Api;
use account::aws::LOCAL_INVOKE_KEY_HEADER;
use account::http::json;
use account::token::store::TokenStore;
use account::token::{Entry, LambdaError, TokenService, TokenSource, handle_invocation_via};
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use subtle::ConstantTimeEq;
use table::embedded::EmbeddedStore;
use testkit::local_server::ClientAddr;
use wechat_protocol::secret::Secret;

/// The per-run secret the emulation requires; random unless `LOCAL_INVOKE_KEY` names one.
#[derive(Debug, Clone)]
pub struct InvokeKey(Secret<String>);

/// Shortest `LOCAL_INVOKE_KEY` accepted: guessing it must not be an option.
pub const MIN_KEY_LEN: usize = 16;

impl InvokeKey {
    /// 128 random bits, hex-encoded.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)?;
        Ok(Self(Secret::new(hex::encode(bytes))))
    }

    /// A key chosen by the operator (`LOCAL_INVOKE_KEY`); `None` when it is too short.
    pub fn chosen(key: &str) -> Option<Self> {
        (key.len() >= MIN_KEY_LEN && HeaderValue::from_str(key).is_ok())
            .then(|| Self(Secret::new(key.to_string())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    fn matches(&self, sent: &[u8]) -> bool {
        self.0.expose().as_bytes().ct_eq(sent).into()
    }
}

/// Why an invocation request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the local Lambda Invoke emulation answers only this machine (the request came from \
         another address)"
    )]
    NotLoopbackClient,
    #[error(
        "the local Lambda Invoke emulation answers only requests to localhost, 127.0.0.1 or \
         [::1] (the Host header names another host: a tunnel or a web page?)"
    )]
    NotLoopbackHost,
    #[error(
        "missing X-Local-Invoke-Key header: send the key the `wx serve` banner prints \
         (`wx token get --local` does; so does a Lambda client with LOCAL_INVOKE_KEY set)"
    )]
    MissingKey,
    #[error("wrong X-Local-Invoke-Key: the key changes with every start of `wx serve`")]
    WrongKey,
}

/// Whether `request` may reach the token service.
pub fn check(key: &InvokeKey, request: &Request) -> Result<(), Refusal> {
    let client = request.extensions().get::<ClientAddr>();
    if !client.is_some_and(|ClientAddr(addr)| is_loopback(addr.ip())) {
        return Err(Refusal::NotLoopbackClient);
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    if !host.is_some_and(is_loopback_host) {
        return Err(Refusal::NotLoopbackHost);
    }
    match request.headers().get(LOCAL_INVOKE_KEY_HEADER) {
        None => Err(Refusal::MissingKey),
        Some(sent) if key.matches(sent.as_bytes()) => Ok(()),
        Some(_) => Err(Refusal::WrongKey),
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `localhost`, `127.0.0.1` (any 127/8 address) or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, port)) if port.is_empty() || port.starts_with(':') => inside,
            _ => return false,
        },
        None => host.split_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(is_loopback)
}

/// Answer one invocation request with `service`, once [`check`] let it through.
pub async fn answer_invoke_request<S: TokenStore>(
    service: &TokenService<S>,
    key: &InvokeKey,
    request: &Request,
) -> Response<Body> {
    if let Err(refusal) = check(key, request) {
        return refused(refusal);
    }
    let event = event_of(request);
    let entry = Entry::of_invoke_request(request.uri().path(), request.uri().query())
        .unwrap_or(Entry::Full);
    match handle_invocation_via(service, entry, event).await {
        Ok(answer) => json(StatusCode::OK, &answer),
        Err(e) => function_error(&LambdaError::from(&e)),
    }
}

/// Answer one invocation of the `api` function with `api`, once [`check`] let it through: its
/// answer with HTTP 200, or Lambda's function error.
pub async fn answer_api_invoke_request<S: TokenSource>(
    api: &Api<EmbeddedStore, S>,
    key: &InvokeKey,
    request: &Request,
) -> Response<Body> {
    if let Err(refusal) = check(key, request) {
        return refused(refusal);
    }
    let event = event_of(request);
    match api.handle(event).await {
        Ok(answer) => json(StatusCode::OK, &answer),
        Err(e) => function_error(&LambdaError {
            error_message: e.to_string(),
            error_type: e.kind().into(),
        }),
    }
}

/// The 403 that says why [`check`] refused the request.
fn refused(refusal: Refusal) -> Response<Body> {
    tracing::warn!(%refusal, "Lambda Invoke request refused");
    account::http::text(StatusCode::FORBIDDEN, format!("{refusal}\n"))
}

/// The invocation's event: a body that is not JSON is a bad invocation, answered like any other.
fn event_of(request: &Request) -> Value {
    serde_json::from_slice(request.body().as_ref()).unwrap_or(Value::Null)
}

/// A function error as Lambda's Invoke API answers it: HTTP 200, `X-Amz-Function-Error`, and
/// `{"errorType", "errorMessage"}`.
fn function_error(error: &LambdaError) -> Response<Body> {
    let mut response = json(StatusCode::OK, error);
    response.headers_mut().insert(
        "x-amz-function-error",
        HeaderValue::from_static("Unhandled"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: Option<&str>, host: Option<&str>, key: Option<&str>) -> Request {
        let mut builder = lambda_http::http::Request::builder()
            .method("POST")
            .uri("/2015-03-31/functions/refresh/invocations");
        if let Some(host) = host {
            builder = builder.header("host", host);
        }
        if let Some(key) = key {
            builder = builder.header(LOCAL_INVOKE_KEY_HEADER, key);
        }
        let mut request = builder.body(Body::Empty).unwrap();
        if let Some(peer) = peer {
            request
                .extensions_mut()
                .insert(ClientAddr(peer.parse().unwrap()));
        }
        request
    }

    fn key() -> InvokeKey {
        InvokeKey::chosen("0123456789abcdef0123").unwrap()
    }

    #[test]
    fn a_loopback_client_naming_a_loopback_host_with_the_right_key_is_let_through() {
        for (peer, host) in [
            ("127.0.0.1:5000", "localhost:3000"),
            ("127.0.0.1:5000", "127.0.0.1:3000"),
            ("[::1]:5000", "[::1]:3000"),
            ("[::ffff:127.0.0.1]:5000", "LOCALHOST"),
        ] {
            let req = request(Some(peer), Some(host), Some("0123456789abcdef0123"));
            assert_eq!(check(&key(), &req), Ok(()), "{peer} {host}");
        }
    }

    #[test]
    fn a_non_loopback_host_header_is_refused_even_from_loopback() {
        for host in [
            "abc.trycloudflare.com",
            "evil.example:3000",
            "127.0.0.1.evil.example",
            "[::1]x",
            "192.168.1.5:3000",
        ] {
            let req = request(
                Some("127.0.0.1:5000"),
                Some(host),
                Some("0123456789abcdef0123"),
            );
            assert_eq!(check(&key(), &req), Err(Refusal::NotLoopbackHost), "{host}");
        }
        let req = request(Some("127.0.0.1:5000"), None, Some("0123456789abcdef0123"));
        assert_eq!(check(&key(), &req), Err(Refusal::NotLoopbackHost));
    }

    #[test]
    fn a_client_from_another_address_or_of_unknown_origin_is_refused() {
        let req = request(
            Some("192.168.1.9:5000"),
            Some("localhost"),
            Some("0123456789abcdef0123"),
        );
        assert_eq!(check(&key(), &req), Err(Refusal::NotLoopbackClient));
        let req = request(None, Some("localhost"), Some("0123456789abcdef0123"));
        assert_eq!(check(&key(), &req), Err(Refusal::NotLoopbackClient));
    }

    #[test]
    fn a_missing_or_wrong_key_is_refused() {
        let req = request(Some("127.0.0.1:5000"), Some("localhost"), None);
        assert_eq!(check(&key(), &req), Err(Refusal::MissingKey));
        let req = request(
            Some("127.0.0.1:5000"),
            Some("localhost"),
            Some("0123456789abcdef0124"),
        );
        assert_eq!(check(&key(), &req), Err(Refusal::WrongKey));
        let req = request(Some("127.0.0.1:5000"), Some("localhost"), Some(""));
        assert_eq!(check(&key(), &req), Err(Refusal::WrongKey));
    }

    #[test]
    fn random_keys_differ_and_short_chosen_keys_are_refused() {
        let (a, b) = (InvokeKey::random().unwrap(), InvokeKey::random().unwrap());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 32);
        assert!(InvokeKey::chosen("short").is_none());
        assert_eq!(format!("{a:?}"), "InvokeKey(***)");
    }
}

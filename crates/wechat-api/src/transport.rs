//! The port to WeChat's HTTP API: one method that sends a request and hands back the status and
//! body. [`ReqwestTransport`] is the real adapter, built once per container in `main`; tests of
//! the domain may use an in-process double (`super::double`), while the fake WeChat server on
//! loopback keeps testing this adapter.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

use super::ApiError;

/// The future a transport returns (boxed, so the port can be shared as `Arc<dyn WeChatTransport>`).
pub type Pending<'a> = Pin<Box<dyn Future<Output = Result<WireResponse, ApiError>> + Send + 'a>>;

/// The two HTTP methods WeChat's API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One request, relative to the API base. `Debug` shows only the method and path: the query and
/// body may carry the app secret or a token.
#[derive(Clone, PartialEq, Eq)]
pub struct WireRequest {
    pub method: Method,
    /// E.g. `/cgi-bin/stable_token`.
    pub path: String,
    /// The form-encoded query string, without `?`; empty for none.
    pub query: String,
    /// The JSON body of a `POST`.
    pub json_body: Option<Vec<u8>>,
}

impl fmt::Debug for WireRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {}", self.method, self.path)
    }
}

/// What came back: the HTTP status and the body, undecoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireResponse {
    pub status: u16,
    pub body: Bytes,
}

/// Sends requests to WeChat. Errors are only [`ApiError::Timeout`] and [`ApiError::Transport`];
/// decoding the answer is the caller's ([`super::WeChatHttp`]).
pub trait WeChatTransport: Send + Sync {
    fn send(&self, request: WireRequest) -> Pending<'_>;
}

/// The HTTP client could not be built (start-up fails rather than run without a timeout).
#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client to WeChat: {0}")]
pub struct ClientBuildError(String);

/// The real transport: reqwest with rustls, a per-call timeout, one connection pool.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    base: String,
}

impl ReqwestTransport {
    pub fn new(base: &str, timeout: Duration) -> Result<Self, ClientBuildError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .build()
            .map_err(|e| ClientBuildError(error_chain(&e)))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
        })
    }

    async fn send_now(&self, request: WireRequest) -> Result<WireResponse, ApiError> {
        let mut url = format!("{}{}", self.base, request.path);
        if !request.query.is_empty() {
            url.push('?');
            url.push_str(&request.query);
        }
        let builder = match request.method {
            Method::Get => self.client.get(url),
            Method::Post => self.client.post(url),
        };
        let builder = match request.json_body {
            Some(body) => builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body),
            None => builder,
        };
        let response = builder.send().await.map_err(transport_error)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport_error)?;
        Ok(WireResponse { status, body })
    }
}

impl WeChatTransport for ReqwestTransport {
    fn send(&self, request: WireRequest) -> Pending<'_> {
        Box::pin(self.send_now(request))
    }
}

fn transport_error(e: reqwest::Error) -> ApiError {
    if e.is_timeout() {
        ApiError::Timeout
    } else {
        // `without_url`: the URL may carry the app secret in its query. The causes below it
        // (DNS, connect, TLS) never contain the URL.
        ApiError::Transport(error_chain(&e.without_url()))
    }
}

/// An error and every cause under it, `outer: inner: innermost`, skipping a cause whose text the
/// previous one already ends with (hyper repeats its source in its own message).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_wechat_is_a_transport_error_naming_the_cause_without_the_url() {
        // A port that was just free: nothing listens on it, so the connection is refused.
        let port = {
            let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
            listener.local_addr().unwrap().port()
        };
        let transport =
            ReqwestTransport::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2))
                .unwrap();
        let request = WireRequest {
            method: Method::Get,
            path: "/cgi-bin/token".into(),
            query: "appid=wx1&secret=TOP-SECRET".into(),
            json_body: None,
        };
        let err = transport.send(request).await.unwrap_err();
        let ApiError::Transport(text) = &err else {
            panic!("expected a transport error, got {err:?}");
        };
        assert!(
            text.to_ascii_lowercase().contains("connect") && text.contains("refused"),
            "the cause is named: {text}"
        );
        assert!(
            !text.contains("TOP-SECRET") && !text.contains("127.0.0.1:"),
            "{text}"
        );
        assert!(err.to_string().starts_with("could not reach WeChat: "));
    }

    #[test]
    fn requests_print_without_their_query_or_body() {
        let request = WireRequest {
            method: Method::Post,
            path: "/cgi-bin/stable_token".into(),
            query: "access_token=T".into(),
            json_body: Some(br#"{"secret":"S"}"#.to_vec()),
        };
        assert_eq!(format!("{request:?}"), "Post /cgi-bin/stable_token");
    }
}

//! The call to the account's service: the port ([`Forwarder`]) and its HTTP adapter
//! ([`HttpForwarder`]: reqwest with rustls, built once, no redirects, one timeout for the whole
//! call). Requests are signed with HMAC-SHA256 keyed by `WECHAT_FORWARD_SECRET` over
//! `"<timestamp>.<body>"` ([`signature`]); every failure is a named [`ForwardError`] with a short
//! reason, never the answer's body.

use std::future::Future;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wechat_api::error_chain;
use wechat_protocol::secret::Secret;

use super::answer::Answer;
use super::request::ForwardRequest;
use super::short;
use crate::clock::SharedClock;

/// Header with the unix time (seconds) the request was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Forward-Timestamp";
/// Header with `sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "X-Forward-Signature";
/// Header with `sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<url>.<body>")>`, `url` being the
/// forward rule's URL as written: what a service that shares the secret with another checks.
pub const URL_SIGNATURE_HEADER: &str = "X-Forward-Url-Signature";
/// Header with the de-duplication key (also in the body as `idempotency_key`).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Answers larger than this are refused unread: a reply is a few KiB at most.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Reasons quoted from the service's answer are cut to this many characters.
const MAX_REASON_CHARS: usize = 160;

/// Why the service gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("the service did not answer within {0} ms")]
    Timeout(u128),
    #[error("the service could not be reached: {0}")]
    Unreachable(String),
    #[error("the service answered HTTP {0}{hint}", hint = status_hint(*.0))]
    Status(u16),
    #[error("the service's answer is larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("the service's answer is not JSON: {0}")]
    NotJson(String),
    #[error("the service's answer is not a valid answer: {0}")]
    BadAnswer(String),
}

/// What a refusal status most likely means, for the log: a 401 or 403 is a service refusing the
/// signature, as the forward service contract (and `examples/forward_service.py`) answers it.
fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            " (the service refused the request: if it checks X-Forward-Signature, it must use the \
             same WECHAT_FORWARD_SECRET as this function)"
        }
        _ => "",
    }
}

impl ForwardError {
    /// A stable snake_case name for log fields.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::Status(_) => "http_status",
            Self::TooLarge => "too_large",
            Self::NotJson(_) => "not_json",
            Self::BadAnswer(_) => "bad_answer",
        }
    }
}

/// Calls the account's service with one message; `Ok(None)`: it answered nothing.
pub trait Forwarder: Send + Sync {
    fn forward(
        &self,
        url: &str,
        request: &ForwardRequest,
    ) -> impl Future<Output = Result<Option<Answer>, ForwardError>> + Send;
}

/// `sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &Secret<String>, timestamp: i64, body: &[u8]) -> String {
    sign(secret, &[timestamp.to_string().as_bytes(), body])
}

/// `sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<url>.<body>")>`: the signature bound to the
/// rule's URL as written, so a request signed for one service cannot be replayed to another
/// that shares the secret ([`URL_SIGNATURE_HEADER`]).
pub fn url_signature(secret: &Secret<String>, timestamp: i64, url: &str, body: &[u8]) -> String {
    sign(
        secret,
        &[timestamp.to_string().as_bytes(), url.as_bytes(), body],
    )
}

/// HMAC-SHA256 over `parts` joined by `.`.
fn sign(secret: &Secret<String>, parts: &[&[u8]]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(b".");
        }
        mac.update(part);
    }
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Why a JSON answer is not a valid answer, without quoting it: serde's own texts quote the
/// values and names they met (`invalid type: string "…"`, `unknown variant `…``), and an answer
/// holds what the user is told, while the reason goes to logs, the item and the failure queue.
/// The answer schema's own checks (`content must not be empty`, …) name no input and are kept.
fn redacted(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let what = if text.starts_with("invalid type") || text.starts_with("invalid value") {
        "a field has the wrong type or value"
    } else if text.starts_with("invalid length") {
        "a list has the wrong length"
    } else if text.starts_with("unknown variant") {
        "an unknown type"
    } else if text.starts_with("unknown field") {
        "an unknown field"
    } else {
        // `missing field `content``, the schema's checks: the schema's words, not the input's.
        return short(&text, MAX_REASON_CHARS);
    };
    // Answers are read through a JSON value first (`Answer`'s tag), which loses the position.
    match e.line() {
        0 => what.to_string(),
        line => format!("{what} at line {line} column {}", e.column()),
    }
}

/// The answer in `body` (status 2xx): empty or `{"type":"success"}` is no answer.
pub fn read_answer(body: &[u8]) -> Result<Option<Answer>, ForwardError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Answer>(body) {
        Ok(Answer::Reply(reply)) => Ok(Answer::from_reply(reply)),
        Ok(answer) => Ok(Some(answer)),
        Err(e) if e.is_data() => Err(ForwardError::BadAnswer(redacted(&e))),
        // Only where: the body may be anything, including what the user was to be told.
        Err(e) => Err(ForwardError::NotJson(format!(
            "line {}, column {}",
            e.line(),
            e.column()
        ))),
    }
}

/// The HTTP client could not be built (start-up fails rather than run without a timeout).
#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client to the forward service: {0}")]
pub struct BuildError(String);

/// The real forwarder. `Debug` never shows the secret.
#[derive(Debug, Clone)]
pub struct HttpForwarder {
    client: reqwest::Client,
    secret: Secret<String>,
    timeout: Duration,
    clock: SharedClock,
}

impl HttpForwarder {
    /// Built once per container: `timeout` bounds each whole call (connect, send, answer).
    pub fn new(
        secret: Secret<String>,
        timeout: Duration,
        clock: SharedClock,
    ) -> Result<Self, BuildError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            // A redirect would carry the signed message somewhere the rule did not name.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wechat-forward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BuildError(error_chain(&e)))?;
        Ok(Self {
            client,
            secret,
            timeout,
            clock,
        })
    }

    async fn call(
        &self,
        url: &str,
        request: &ForwardRequest,
    ) -> Result<Option<Answer>, ForwardError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| ForwardError::Unreachable(format!("cannot encode the message: {e}")))?;
        let timestamp = self.clock.now_s();
        let url = url.trim();
        let signed = signature(&self.secret, timestamp, &body);
        let url_signed = url_signature(&self.secret, timestamp, url, &body);
        let mut response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signed)
            .header(URL_SIGNATURE_HEADER, url_signed)
            .header(IDEMPOTENCY_HEADER, &request.idempotency_key)
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ForwardError::Status(status.as_u16()));
        }
        if status == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let mut answer = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ForwardError::TooLarge);
            }
            answer.extend_from_slice(&chunk);
        }
        read_answer(&answer)
    }

    fn transport_error(&self, e: reqwest::Error) -> ForwardError {
        if e.is_timeout() {
            ForwardError::Timeout(self.timeout.as_millis())
        } else {
            ForwardError::Unreachable(short(&error_chain(&e.without_url()), MAX_REASON_CHARS))
        }
    }
}

impl Forwarder for HttpForwarder {
    fn forward(
        &self,
        url: &str,
        request: &ForwardRequest,
    ) -> impl Future<Output = Result<Option<Answer>, ForwardError>> + Send {
        self.call(url, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wechat_protocol::reply::Reply;

    #[test]
    fn the_url_signature_covers_the_url_too() {
        // python3 -c "import hmac,hashlib; print(hmac.new(b'key', b'1.https://a.example/w.body', hashlib.sha256).hexdigest())"
        let key = Secret::new("key".to_string());
        assert_eq!(
            url_signature(&key, 1, "https://a.example/w", b"body"),
            "sha256=dcdffe1470614a510ae0f7cc8ba8ea86ed8d799296677df736b4714baf9b7864"
        );
        assert_ne!(
            url_signature(&key, 1, "https://a.example/w", b"body"),
            url_signature(&key, 1, "https://b.example/w", b"body")
        );
    }

    #[test]
    fn a_refusal_names_the_forward_secret_and_other_statuses_stay_plain() {
        for status in [401, 403] {
            let text = ForwardError::Status(status).to_string();
            assert!(
                text.starts_with(&format!("the service answered HTTP {status} (")),
                "{text}"
            );
            assert!(text.contains("WECHAT_FORWARD_SECRET"), "{text}");
        }
        assert_eq!(
            ForwardError::Status(500).to_string(),
            "the service answered HTTP 500"
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Computed independently: python3 -c "import hmac,hashlib; hmac.new(b'key', b'1.body', hashlib.sha256)"
        let secret = Secret::new("key".to_string());
        assert_eq!(
            signature(&secret, 1, b"body"),
            "sha256=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
        );
    }

    #[test]
    fn empty_and_success_answers_are_no_answer() {
        assert_eq!(read_answer(b""), Ok(None));
        assert_eq!(read_answer(b" \n"), Ok(None));
        assert_eq!(read_answer(br#"{"type":"success"}"#), Ok(None));
        assert_eq!(
            read_answer(br#"{"type":"text","content":"hi"}"#),
            Ok(Some(Answer::Reply(Reply::text("hi"))))
        );
    }

    #[test]
    fn garbage_is_named_without_quoting_the_body() {
        let garbage = format!("<html>{}</html>", "x".repeat(10_000));
        let err = read_answer(garbage.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "not_json");
        assert!(err.to_string().len() < 300, "{err}");
        let err = read_answer(br#"{"type":"text","content":""}"#).unwrap_err();
        assert_eq!(err.code(), "bad_answer");
        assert!(
            err.to_string().contains("content must not be empty"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_answer_is_named_by_position_never_by_what_it_says() {
        for (body, said) in [
            (
                &br#"{"type":"text","content":["my order 4711"]}"#[..],
                "my order 4711",
            ),
            (br#"{"type":"call me at 555-0100"}"#, "555-0100"),
            (
                br#"{"type":"text","content":"hi","oUserOpenid123":1}"#,
                "oUserOpenid123",
            ),
            (br#"{"type":"news","articles":"Dear Ms Li"}"#, "Dear Ms Li"),
            (b"my order 4711 is late", "4711"),
        ] {
            let err = read_answer(body).unwrap_err().to_string();
            assert!(!err.contains(said), "{err}");
            assert!(
                err.contains("not JSON") || err.contains("not a valid answer"),
                "{err}"
            );
        }
    }
}

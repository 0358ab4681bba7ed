//! The WeChat webhook: server URL verification (`GET /wechat`) and two-way messaging
//! (`POST /wechat`) in plaintext, compatible and safe mode. Owns the webhook's configuration,
//! the order of checks (body size → signature → timestamp window → msg_signature and
//! decryption → parse), and the mapping of every refusal to an HTTP status. Once a push is
//! authenticated, only a broken envelope or hostile XML is refused: unreadable details are
//! logged at warn and the push is answered by its type (see [`wechat_protocol::message`]).

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use wechat_protocol::crypto::{CryptoError, MessageCrypto, random_prefix};
use wechat_protocol::message::Message;
use wechat_protocol::reply::{MessageHandler, Reply};
use wechat_protocol::secret::Secret;
use wechat_protocol::signature;
use wechat_protocol::xml::cdata_element;
use wechat_protocol::xml::{Fields, ParseError};

use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, Env, flag_or, optional, parsed_or, required};
use crate::http::{body_bytes, query, text, xml};
use crate::rules::Rules;

/// Bodies above this size are refused with 413 before anything else is looked at.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_CLOCK_SKEW_SECS: u64 = 300;
/// The widest replay window accepted: every push stays replayable for that long, and the forward
/// rules' de-duplication items must outlive it (`forward::record_life_s`).
pub const MAX_CLOCK_SKEW_CAP_SECS: u64 = 600;

use crate::config::vars::{
    WECHAT_APP_ID, WECHAT_ENCODING_AES_KEY, WECHAT_MAX_CLOCK_SKEW_SECS, WECHAT_REQUIRE_ENCRYPTION,
    WECHAT_TOKEN,
};

/// What the webhook needs to know about the account, read once at start-up.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The Token entered on the WeChat admin page.
    pub token: Secret<String>,
    pub app_id: Option<String>,
    /// Set when an EncodingAESKey is configured (compatible or safe mode).
    pub crypto: Option<MessageCrypto>,
    /// How far a request's timestamp may be from now, either way: a push that far off or more
    /// counts as a replay (`WECHAT_MAX_CLOCK_SKEW_SECS`, 1 to [`MAX_CLOCK_SKEW_CAP_SECS`]).
    pub max_clock_skew_secs: u64,
    /// Refuse plaintext pushes. Defaults to true whenever a key is set: `encrypt_type` is not
    /// signed, so accepting plaintext next to a key lets one observed signature carry any XML.
    /// 兼容模式 pushes carry `encrypt_type=aes` and are answered from their encrypted copy, so
    /// only a migration from 明文模式 needs `WECHAT_REQUIRE_ENCRYPTION=false` (for its duration).
    pub require_encryption: bool,
}

impl WebhookConfig {
    /// The configuration, with a warning in the log when the token is shorter than 32
    /// characters.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let config = Self::read(env)?;
        if config.token_is_short() {
            // One observed signature lets anyone brute-force a short token offline (SHA-1).
            tracing::warn!(
                variable = WECHAT_TOKEN,
                length = config.token.expose().len(),
                "the token is shorter than 32 characters; a random 32-character token resists offline guessing"
            );
        }
        Ok(config)
    }

    /// [`Self::from_env`] without the short-token warning: for the local server, which runs
    /// with its development default token (its banner says so) unless told otherwise.
    pub fn read(env: &impl Env) -> Result<Self, ConfigError> {
        let token = Secret::new(token(env)?);
        let app_id = crate::config::app_id(env)?;
        let crypto = match optional(env, WECHAT_ENCODING_AES_KEY) {
            None => None,
            Some(key) => {
                let app_id = app_id.as_deref().ok_or_else(|| {
                    ConfigError::new(
                        WECHAT_APP_ID,
                        format!("is required when {WECHAT_ENCODING_AES_KEY} is set"),
                    )
                })?;
                let crypto = MessageCrypto::new(&key, app_id)
                    .map_err(|e| ConfigError::new(WECHAT_ENCODING_AES_KEY, e.to_string()))?;
                Some(crypto)
            }
        };
        let max_clock_skew_secs =
            parsed_or(env, WECHAT_MAX_CLOCK_SKEW_SECS, DEFAULT_MAX_CLOCK_SKEW_SECS)?;
        if !(1..=MAX_CLOCK_SKEW_CAP_SECS).contains(&max_clock_skew_secs) {
            return Err(ConfigError::new(
                WECHAT_MAX_CLOCK_SKEW_SECS,
                format!("must be between 1 and {MAX_CLOCK_SKEW_CAP_SECS} seconds"),
            ));
        }
        // Key set ⇒ encrypted pushes only, unless the operator opts out explicitly.
        let require_encryption = flag_or(env, WECHAT_REQUIRE_ENCRYPTION, crypto.is_some())?;
        if require_encryption && crypto.is_none() {
            return Err(ConfigError::new(
                WECHAT_REQUIRE_ENCRYPTION,
                format!("is true but {WECHAT_ENCODING_AES_KEY} is not set"),
            ));
        }
        Ok(Self {
            token,
            app_id,
            crypto,
            max_clock_skew_secs,
            require_encryption,
        })
    }
}

impl WebhookConfig {
    /// Whether the token is shorter than the 32 characters the console allows.
    pub fn token_is_short(&self) -> bool {
        self.token.expose().len() < *TOKEN_LENGTHS.end()
    }
}

/// Shortest and longest Token the WeChat console accepts.
pub const TOKEN_LENGTHS: std::ops::RangeInclusive<usize> = 3..=32;

/// `WECHAT_TOKEN`, held to the console's rule (3–32 ASCII letters or digits, as template.yaml's
/// `WeChatToken` parameter) so that a typo shows at start-up, not in the WeChat console.
fn token(env: &impl Env) -> Result<String, ConfigError> {
    let token = required(env, WECHAT_TOKEN)?;
    if !TOKEN_LENGTHS.contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        // The value is a secret: say what is wrong with it, never what it is.
        return Err(ConfigError::new(
            WECHAT_TOKEN,
            format!(
                "must be {} to {} letters or digits (A-Z, a-z, 0-9), as in the WeChat console (this one has {} characters)",
                TOKEN_LENGTHS.start(),
                TOKEN_LENGTHS.end(),
                token.chars().count()
            ),
        ));
    }
    Ok(token)
}

/// Why a webhook request was refused. [`WebhookError::status`] is the one mapping to HTTP.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request body too large")]
    BodyTooLarge,
    #[error("missing query parameter {0}")]
    MissingParameter(&'static str),
    #[error("invalid signature")]
    BadSignature,
    #[error("invalid timestamp")]
    InvalidTimestamp,
    #[error("timestamp outside the allowed window")]
    Replayed,
    #[error("unsupported encrypt_type")]
    UnsupportedEncryptType,
    #[error("plaintext messages are not accepted")]
    EncryptionRequired,
    /// Every safe-mode failure gets this one answer; the cause is only logged.
    #[error("invalid encrypted message")]
    Crypto(CryptoFailure),
    #[error("bad request: {0}")]
    Parse(#[from] ParseError),
    #[error("internal error")]
    Internal,
}

/// The precise, logged-only cause of a [`WebhookError::Crypto`].
#[derive(Debug, thiserror::Error)]
pub enum CryptoFailure {
    #[error("encrypted push but {WECHAT_ENCODING_AES_KEY} is not set")]
    NotConfigured,
    #[error("msg_signature does not match")]
    MsgSignature,
    #[error(transparent)]
    Decrypt(CryptoError),
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MissingParameter(_)
            | Self::InvalidTimestamp
            | Self::UnsupportedEncryptType
            | Self::Parse(_) => StatusCode::BAD_REQUEST,
            // A plaintext push to an encrypted-only webhook is refused like a forged one.
            Self::BadSignature | Self::Replayed | Self::EncryptionRequired | Self::Crypto(_) => {
                StatusCode::FORBIDDEN
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn into_response(self) -> Response<Body> {
        let status = self.status();
        match &self {
            Self::Crypto(cause) => {
                tracing::warn!(status = status.as_u16(), %cause, "encrypted push refused")
            }
            Self::Internal => tracing::error!(status = status.as_u16(), "webhook failed"),
            other => tracing::warn!(status = status.as_u16(), reason = %other, "request refused"),
        }
        let mut response = text(status, self.to_string());
        if matches!(self, Self::MethodNotAllowed) {
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, POST"));
        }
        response
    }
}

/// The webhook for one account, generic over how replies are decided.
pub struct Webhook<H = Rules> {
    token: Secret<String>,
    crypto: Option<MessageCrypto>,
    max_clock_skew_secs: u64,
    require_encryption: bool,
    handler: H,
    clock: Arc<dyn Clock>,
}

impl Webhook<Rules> {
    /// The webhook configured from the environment, replying by the reply rules.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        Ok(Self::new(
            WebhookConfig::from_env(env)?,
            Rules::from_env(env)?,
        ))
    }
}

/// The handler of a webhook that only verifies its URL (the `verify` function): it loads no
/// reply rules, and would answer `success` if it were ever asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReplies;

impl MessageHandler for NoReplies {
    fn reply(&self, _msg: &Message) -> impl std::future::Future<Output = Reply> + Send {
        std::future::ready(Reply::Success)
    }
}

/// Query parameters the signature check reads.
struct Signed<'a> {
    timestamp: &'a str,
    nonce: &'a str,
}

impl<H: MessageHandler> Webhook<H> {
    /// `handler` decides the replies: the reply rules, or an owner's own [`MessageHandler`].
    pub fn new(config: WebhookConfig, handler: H) -> Self {
        Self {
            token: config.token,
            crypto: config.crypto,
            max_clock_skew_secs: config.max_clock_skew_secs,
            require_encryption: config.require_encryption,
            handler,
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// `GET /wechat`: answers `echostr` when the signature and timestamp check out.
    pub fn verify(&self, req: &Request) -> Response<Body> {
        let query = query(req);
        let checked = parameter(&query, "echostr").and_then(|echostr| {
            self.check_signature(&query)?;
            Ok(echostr)
        });
        match checked {
            Ok(echostr) => {
                tracing::info!("server URL verified");
                text(StatusCode::OK, echostr)
            }
            Err(e) => e.into_response(),
        }
    }

    /// `POST /wechat`: a pushed message in, its passive reply out.
    pub async fn message(&self, req: &Request) -> Response<Body> {
        match self.try_message(req).await {
            Ok(response) => response,
            Err(e) => e.into_response(),
        }
    }

    /// Dispatch on the method: GET verifies, POST messages, anything else is 405.
    pub async fn handle(&self, req: &Request) -> Response<Body> {
        match *req.method() {
            Method::GET => self.verify(req),
            Method::POST => self.message(req).await,
            _ => WebhookError::MethodNotAllowed.into_response(),
        }
    }

    async fn try_message(&self, req: &Request) -> Result<Response<Body>, WebhookError> {
        let body = body_bytes(req);
        if body.len() > MAX_BODY_BYTES {
            return Err(WebhookError::BodyTooLarge);
        }
        let query = query(req);
        let signed = self.check_signature(&query)?;
        let encrypted = match query.get("encrypt_type").map(|t| t.trim()) {
            None | Some("") => false,
            Some(t) if t.eq_ignore_ascii_case("raw") => false,
            Some(t) if t.eq_ignore_ascii_case("aes") => true,
            Some(_) => return Err(WebhookError::UnsupportedEncryptType),
        };

        let msg = if encrypted {
            let crypto = self
                .crypto
                .as_ref()
                .ok_or(WebhookError::Crypto(CryptoFailure::NotConfigured))?;
            let msg_signature = parameter(&query, "msg_signature")?;
            let plaintext = self.open_envelope(crypto, body, msg_signature, &signed)?;
            Message::parse(plaintext.as_bytes())?
        } else {
            if self.require_encryption && self.crypto.is_some() {
                return Err(WebhookError::EncryptionRequired);
            }
            Message::parse(body)?
        };
        tracing::info!(
            msg_type = %msg.msg_type,
            event = msg.event_name().unwrap_or_default(),
            msg_id = msg.msg_id.as_deref().unwrap_or_default(),
            encrypted,
            "message received"
        );
        if let Some(problem) = &msg.detail_error {
            // Authenticated, so never refused: WeChat would show the user an error.
            tracing::warn!(
                msg_type = %msg.msg_type,
                event = msg.event_name().unwrap_or_default(),
                %problem,
                "message details unreadable; handled by its type and raw fields"
            );
        }

        let reply = self.handler.reply(&msg).await;
        let now = self.clock.now_s();
        let Some(reply_xml) = reply.answer(&msg, now) else {
            return Ok(text(StatusCode::OK, "success"));
        };
        tracing::info!(reply = reply.msg_type(), "replying");
        match (&self.crypto, encrypted) {
            (Some(crypto), true) => Ok(xml(self.seal(crypto, &reply_xml, now)?)),
            _ => Ok(xml(reply_xml)),
        }
    }

    /// Checks `signature` over token, timestamp and nonce, then the timestamp window.
    fn check_signature<'q>(
        &self,
        query: &'q std::collections::HashMap<String, String>,
    ) -> Result<Signed<'q>, WebhookError> {
        let signature = parameter(query, "signature")?;
        let timestamp = parameter(query, "timestamp")?;
        let nonce = parameter(query, "nonce")?;
        if !signature::verify(signature, &[self.token.expose().as_str(), timestamp, nonce]) {
            return Err(WebhookError::BadSignature);
        }
        let sent_at: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| WebhookError::InvalidTimestamp)?;
        // Exclusive: a push is replayable for strictly less than the window, which is what the
        // forward rules' de-duplication items are kept for.
        let skew = self.clock.now_s().saturating_sub(sent_at).unsigned_abs();
        if skew >= self.max_clock_skew_secs {
            return Err(WebhookError::Replayed);
        }
        Ok(Signed { timestamp, nonce })
    }

    /// Safe mode in: the `Encrypt` field, its msg_signature, then decryption.
    fn open_envelope(
        &self,
        crypto: &MessageCrypto,
        body: &[u8],
        msg_signature: &str,
        signed: &Signed<'_>,
    ) -> Result<String, WebhookError> {
        let envelope = std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8)?;
        let fields = Fields::parse(envelope)?;
        let encrypt = fields
            .get("Encrypt")
            .filter(|e| !e.trim().is_empty())
            .ok_or(ParseError::MissingField("Encrypt"))?;
        let parts = [
            self.token.expose().as_str(),
            signed.timestamp,
            signed.nonce,
            encrypt,
        ];
        if !signature::verify(msg_signature, &parts) {
            return Err(WebhookError::Crypto(CryptoFailure::MsgSignature));
        }
        crypto
            .decrypt(encrypt)
            .map_err(|e| WebhookError::Crypto(CryptoFailure::Decrypt(e)))
    }

    /// Safe mode out: the reply encrypted with a fresh prefix and signed over its own
    /// timestamp and nonce.
    fn seal(
        &self,
        crypto: &MessageCrypto,
        reply_xml: &str,
        now: i64,
    ) -> Result<String, WebhookError> {
        let prefix = random_prefix().map_err(|_| WebhookError::Internal)?;
        let nonce = getrandom::u32()
            .map_err(|_| WebhookError::Internal)?
            .to_string();
        let timestamp = now.to_string();
        let encrypt = crypto.encrypt_with_prefix(&prefix, reply_xml);
        let msg_signature =
            signature::sign(&[self.token.expose().as_str(), &timestamp, &nonce, &encrypt]);
        let mut envelope = String::with_capacity(encrypt.len() + 200);
        envelope.push_str("<xml>");
        cdata_element(&mut envelope, "Encrypt", &encrypt);
        cdata_element(&mut envelope, "MsgSignature", &msg_signature);
        envelope.push_str("<TimeStamp>");
        envelope.push_str(&timestamp);
        envelope.push_str("</TimeStamp>");
        cdata_element(&mut envelope, "Nonce", &nonce);
        envelope.push_str("</xml>");
        Ok(envelope)
    }
}

fn parameter<'q>(
    query: &'q std::collections::HashMap<String, String>,
    name: &'static str,
) -> Result<&'q str, WebhookError> {
    query
        .get(name)
        .map(String::as_str)
        .ok_or(WebhookError::MissingParameter(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    #[test]
    fn a_missing_token_is_named() {
        let err = WebhookConfig::from_env(&[("OTHER", "x")]).unwrap_err();
        assert_eq!(err.variable, WECHAT_TOKEN);
    }

    #[test]
    fn plaintext_mode_needs_only_the_token() {
        let config = WebhookConfig::from_env(&[(WECHAT_TOKEN, "token")]).unwrap();
        assert!(config.crypto.is_none());
        assert_eq!(config.max_clock_skew_secs, DEFAULT_MAX_CLOCK_SKEW_SECS);
        assert!(!config.require_encryption);
        assert_eq!(format!("{:?}", config.token), "***");
    }

    #[test]
    fn a_token_outside_the_consoles_rule_is_refused_naming_the_variable_not_the_value() {
        let long = "a".repeat(33);
        for bad in [
            "x",
            "ab",
            "my token!",
            "dev-token",
            "中文令牌abc",
            long.as_str(),
        ] {
            let err = WebhookConfig::from_env(&[(WECHAT_TOKEN, bad)]).unwrap_err();
            assert_eq!(err.variable, WECHAT_TOKEN, "{bad}");
            assert!(
                err.to_string().contains("3 to 32 letters or digits"),
                "{err}"
            );
            if bad.len() > 2 {
                assert!(!err.to_string().contains(bad), "{err}");
            }
        }
        let longest = "Z9".repeat(16);
        for good in ["abc", "devtoken123", longest.as_str()] {
            assert!(
                WebhookConfig::from_env(&[(WECHAT_TOKEN, good)]).is_ok(),
                "{good}"
            );
        }
    }

    /// What `run` logged, as plain text.
    fn logs_of(run: impl FnOnce()) -> String {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                if let Ok(mut buffer) = self.0.lock() {
                    buffer.extend_from_slice(bytes);
                }
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, run);
        let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn a_token_shorter_than_32_characters_warns_at_start_up_without_showing_it() {
        let logs = logs_of(|| {
            WebhookConfig::from_env(&[(WECHAT_TOKEN, "abc123")]).unwrap();
        });
        assert!(logs.contains("WARN"), "{logs}");
        assert!(logs.contains("shorter than 32 characters"), "{logs}");
        assert!(!logs.contains("abc123"), "{logs}");
        let full = "Z9".repeat(16);
        let logs = logs_of(|| {
            WebhookConfig::from_env(&[(WECHAT_TOKEN, full.as_str())]).unwrap();
        });
        assert!(!logs.contains("shorter than 32"), "{logs}");
        // Reading without the warning (the local server with its development default).
        let logs = logs_of(|| {
            let config = WebhookConfig::read(&[(WECHAT_TOKEN, "abc123")]).unwrap();
            assert!(config.token_is_short());
        });
        assert!(!logs.contains("shorter than 32"), "{logs}");
    }

    #[test]
    fn a_key_needs_an_app_id() {
        let err =
            WebhookConfig::from_env(&[(WECHAT_TOKEN, "token"), (WECHAT_ENCODING_AES_KEY, KEY)])
                .unwrap_err();
        assert_eq!(err.variable, WECHAT_APP_ID);
    }

    #[test]
    fn a_key_of_the_wrong_length_is_named_but_not_shown() {
        let key = "tooshortkey";
        let err = WebhookConfig::from_env(&[
            (WECHAT_TOKEN, "token"),
            (WECHAT_APP_ID, "wx0123456789abcdef"),
            (WECHAT_ENCODING_AES_KEY, key),
        ])
        .unwrap_err();
        assert_eq!(err.variable, WECHAT_ENCODING_AES_KEY);
        assert!(err.to_string().contains("43"));
        assert!(!err.to_string().contains(key));
    }

    #[test]
    fn requiring_encryption_without_a_key_is_a_configuration_error() {
        let err = WebhookConfig::from_env(&[
            (WECHAT_TOKEN, "token"),
            (WECHAT_REQUIRE_ENCRYPTION, "true"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, WECHAT_REQUIRE_ENCRYPTION);
    }

    #[test]
    fn safe_mode_settings_are_read() {
        let config = WebhookConfig::from_env(&[
            (WECHAT_TOKEN, "token"),
            (WECHAT_APP_ID, "wx0123456789abcdef"),
            (WECHAT_ENCODING_AES_KEY, KEY),
            (WECHAT_MAX_CLOCK_SKEW_SECS, "60"),
            (WECHAT_REQUIRE_ENCRYPTION, "yes"),
        ])
        .unwrap();
        assert_eq!(
            config.crypto.as_ref().map(|c| c.app_id()),
            Some("wx0123456789abcdef")
        );
        assert_eq!(config.max_clock_skew_secs, 60);
        assert!(config.require_encryption);
    }

    #[test]
    fn a_key_means_encrypted_pushes_only_unless_explicitly_opted_out() {
        let safe = [
            (WECHAT_TOKEN, "token"),
            (WECHAT_APP_ID, "wx0123456789abcdef"),
            (WECHAT_ENCODING_AES_KEY, KEY),
        ];
        assert!(WebhookConfig::from_env(&safe).unwrap().require_encryption);
        for opt_out in ["false", "0", "no", "off"] {
            let [token, app_id, key] = safe;
            let env = [token, app_id, key, (WECHAT_REQUIRE_ENCRYPTION, opt_out)];
            let config = WebhookConfig::from_env(&env).unwrap();
            assert!(!config.require_encryption, "{opt_out}");
        }
    }

    #[test]
    fn a_bad_skew_is_named() {
        let err =
            WebhookConfig::from_env(&[(WECHAT_TOKEN, "token"), (WECHAT_MAX_CLOCK_SKEW_SECS, "-5")])
                .unwrap_err();
        assert_eq!(err.variable, WECHAT_MAX_CLOCK_SKEW_SECS);
    }

    #[test]
    fn the_replay_window_is_between_one_second_and_ten_minutes() {
        let window = |raw| {
            WebhookConfig::from_env(&[(WECHAT_TOKEN, "token"), (WECHAT_MAX_CLOCK_SKEW_SECS, raw)])
                .map(|config| config.max_clock_skew_secs)
        };
        assert_eq!(window("1").unwrap(), 1);
        assert_eq!(window("600").unwrap(), MAX_CLOCK_SKEW_CAP_SECS);
        for refused in ["0", "601", "86400"] {
            let err = window(refused).unwrap_err();
            assert_eq!(err.variable, WECHAT_MAX_CLOCK_SKEW_SECS, "{refused}");
        }
    }

    #[test]
    fn every_refusal_has_a_client_or_auth_status_and_crypto_causes_share_one_answer() {
        let a = WebhookError::Crypto(CryptoFailure::MsgSignature);
        let b = WebhookError::Crypto(CryptoFailure::Decrypt(CryptoError::Padding));
        assert_eq!(a.status(), b.status());
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(
            WebhookError::BodyTooLarge.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            WebhookError::MethodNotAllowed.into_response().headers()[header::ALLOW],
            "GET, POST"
        );
    }
}

//! The WeChat webhook: server URL verification (`GET /wechat`) and two-way messaging
//! (`POST /wechat`) in plaintext, compatible and safe mode. Owns the webhook's configuration,
//! the order of checks (body size → signature → timestamp window → msg_signature and
//! decryption → parse), and the mapping of every refusal to an HTTP status. Once a push is
//! authenticated, only a broken envelope or hostile XML is refused: unreadable details are
//! logged at warn and the push is answered by its type (see [`wechat_protocol::message`]).
//! The token and key are a [`KeyRing`]: during a rotation the previous ones are accepted until
//! `WECHAT_PREVIOUS_KEYS_UNTIL`, and from the stack's secret they are read again (`webhook/keys.rs`).

mod keys;

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use wechat_protocol::crypto::{CryptoError, MessageCrypto, random_prefix};
use wechat_protocol::keys::{Generation, KeyRing, Previous};
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
use keys::Keys;
pub use keys::{
    DEFAULT_SECRETS_MAX_AGE_SECS, KeySource, MAX_GRACE_SECS, PREVIOUS_KEYS, PREVIOUS_TOKEN_KEYS,
    REREAD_MIN_INTERVAL_SECS, SecretKeys, format_instant, parse_instant,
};

/// Bodies above this size are refused with 413 before anything else is looked at.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_CLOCK_SKEW_SECS: u64 = 300;
/// The widest replay window accepted: every push stays replayable for that long, and the forward
/// rules' de-duplication items must outlive it (`forward::record_life_s`).
pub const MAX_CLOCK_SKEW_CAP_SECS: u64 = 600;

use crate::config::vars::{
    WECHAT_APP_ID, WECHAT_ENCODING_AES_KEY, WECHAT_ENCODING_AES_KEY_PREVIOUS,
    WECHAT_MAX_CLOCK_SKEW_SECS, WECHAT_PREVIOUS_KEYS_UNTIL, WECHAT_REQUIRE_ENCRYPTION,
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
    /// The previous token and key during a rotation, with the end of their grace.
    pub previous: Option<Previous>,
    /// How old keys read from the stack's secret may grow before a request reads them again
    /// (`SECRETS_MAX_AGE_SECS`).
    pub secrets_max_age_secs: u64,
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
        if let Some(until) = config.previous.as_ref().map(|p| p.until_s)
            && until <= SystemClock.now_s()
        {
            tracing::warn!(
                variable = WECHAT_PREVIOUS_KEYS_UNTIL,
                until = %format_instant(until),
                "the previous token or key is past its grace and no longer accepted; remove it"
            );
        }
        Ok(config)
    }

    /// [`Self::from_env`] without the short-token warning: for the local server, which runs
    /// with its development default token (its banner says so) unless told otherwise.
    pub fn read(env: &impl Env) -> Result<Self, ConfigError> {
        Self::read_at(env, SystemClock.now_s())
    }

    /// [`Self::read`] at `now_s`, which bounds `WECHAT_PREVIOUS_KEYS_UNTIL` ([`MAX_GRACE_SECS`]).
    pub fn read_at(env: &impl Env, now_s: i64) -> Result<Self, ConfigError> {
        let token = Secret::new(check_token(WECHAT_TOKEN, required(env, WECHAT_TOKEN)?)?);
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
        let previous = keys::previous(env, app_id.as_deref(), now_s)?;
        if previous.as_ref().is_some_and(|p| p.crypto.is_some()) && crypto.is_none() {
            return Err(ConfigError::new(
                WECHAT_ENCODING_AES_KEY_PREVIOUS,
                format!("is set but {WECHAT_ENCODING_AES_KEY} is not"),
            ));
        }
        Ok(Self {
            token,
            app_id,
            crypto,
            max_clock_skew_secs,
            require_encryption,
            previous,
            secrets_max_age_secs: keys::max_age_secs(env)?,
        })
    }

    /// The token and keys, current and previous.
    pub fn key_ring(&self) -> KeyRing {
        let ring = KeyRing::new(self.token.clone(), self.crypto.clone());
        match &self.previous {
            Some(previous) => ring.with_previous(previous.clone()),
            None => ring,
        }
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

/// `WECHAT_TOKEN` (or its previous value, `variable`), held to the console's rule (3–32 ASCII
/// letters or digits, as template.yaml's `WeChatToken` parameter) so that a typo shows at
/// start-up, not in the WeChat console.
fn check_token(variable: &'static str, token: String) -> Result<String, ConfigError> {
    if !TOKEN_LENGTHS.contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        // The value is a secret: say what is wrong with it, never what it is.
        return Err(ConfigError::new(
            variable,
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
    /// Whether the push was refused for a signature or key none of the keys in hand matches:
    /// what a rotation looks like to a container that has not read the secret again yet.
    pub fn is_unknown_key(&self) -> bool {
        matches!(
            self,
            Self::BadSignature
                | Self::Crypto(CryptoFailure::MsgSignature | CryptoFailure::Decrypt(_))
        )
    }

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
        // `outcome` is what the stack's metric filters count (PushesRefused, VerificationsRefused
        // in template.yaml): a stable field rather than the wording of a message.
        let outcome = match status {
            StatusCode::FORBIDDEN => "refused",
            _ => "invalid",
        };
        match &self {
            Self::Crypto(cause) => {
                tracing::warn!(status = status.as_u16(), outcome, %cause, "encrypted push refused")
            }
            Self::Internal => tracing::error!(status = status.as_u16(), "webhook failed"),
            other => {
                tracing::warn!(status = status.as_u16(), outcome, reason = %other, "request refused")
            }
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
    keys: Keys,
    secrets_max_age_secs: u64,
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

/// Query parameters the signature check reads, and the generation of the token that signed.
struct Signed<'a> {
    timestamp: &'a str,
    nonce: &'a str,
    token: Generation,
}

/// An authenticated push: its message, whether it came encrypted, and the generation of the
/// token and (when encrypted) of the key that opened it, which the reply uses.
struct Authenticated {
    msg: Message,
    encrypted: bool,
    token: Generation,
    key: Generation,
}

impl<H: MessageHandler> Webhook<H> {
    /// `handler` decides the replies: the reply rules, or an owner's own [`MessageHandler`].
    pub fn new(config: WebhookConfig, handler: H) -> Self {
        Self {
            keys: Keys::fixed(config.key_ring()),
            secrets_max_age_secs: config.secrets_max_age_secs,
            max_clock_skew_secs: config.max_clock_skew_secs,
            require_encryption: config.require_encryption,
            handler,
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self.keys.read_at(self.clock.now_s());
        self
    }

    /// Keys read again from `source` (the stack's secret, [`SecretKeys::of`]) once they are
    /// `SECRETS_MAX_AGE_SECS` old, and when a push verifies with none of them; `None` (plain
    /// variables) keeps them as they are. The keys in hand count as read now.
    pub fn with_key_source(mut self, source: Option<Arc<dyn KeySource>>) -> Self {
        if let Some(source) = source {
            let now_s = self.clock.now_s();
            self.keys = self
                .keys
                .refreshed(source, self.secrets_max_age_secs, now_s);
        }
        self
    }

    /// The keys in hand (the current token and key, and the previous ones during a rotation).
    pub fn keys(&self) -> Arc<KeyRing> {
        self.keys.in_hand()
    }

    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// `GET /wechat`: answers `echostr` when the signature and timestamp check out (with the
    /// previous token too, during a rotation: the console checks the URL when a new one is
    /// submitted, and WeChat may check it again with either).
    pub async fn verify(&self, req: &Request) -> Response<Body> {
        let query = query(req);
        let checked = async {
            let echostr = parameter(&query, "echostr")?;
            let now = self.clock.now_s();
            let keys = self.keys.for_request(now).await;
            match self.check_signature(&keys, &query) {
                Err(e) if e.is_unknown_key() => {
                    let fresh = self.keys.after_unknown_key(now).await.ok_or(e)?;
                    self.check_signature(&fresh, &query)?;
                }
                checked => {
                    checked?;
                }
            }
            Ok::<_, WebhookError>(echostr)
        };
        match checked.await {
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
            Method::GET => self.verify(req).await,
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
        let now = self.clock.now_s();
        let mut keys = self.keys.for_request(now).await;
        let pushed = match self.authenticate(&keys, &query, body) {
            Err(e) if e.is_unknown_key() => {
                // Perhaps the secret changed under this container: read it again (rate-limited)
                // and check once more; the first refusal stands if nothing new came.
                let fresh = self.keys.after_unknown_key(now).await.ok_or(e)?;
                keys = fresh;
                self.authenticate(&keys, &query, body)?
            }
            pushed => pushed?,
        };
        let Authenticated {
            msg,
            encrypted,
            token,
            key,
        } = pushed;
        if token == Generation::Previous || key == Generation::Previous {
            // The operator's signal that WeChat still uses the old values.
            tracing::info!(
                token = generation_name(token),
                key = generation_name(key),
                "push verified with a previous value"
            );
        }
        tracing::info!(
            msg_type = %msg.msg_type,
            event = msg.event_name().unwrap_or_default(),
            msg_id = msg.msg_id.as_deref().unwrap_or_default(),
            encrypted,
            outcome = "accepted",
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
        match (keys.crypto(key), encrypted) {
            (Some(crypto), true) => Ok(xml(seal(crypto, keys.token(token), &reply_xml, now)?)),
            _ => Ok(xml(reply_xml)),
        }
    }

    /// Signature, timestamp window, then for an encrypted push its msg_signature and
    /// decryption: the message, and which token and key opened it.
    fn authenticate(
        &self,
        keys: &KeyRing,
        query: &std::collections::HashMap<String, String>,
        body: &[u8],
    ) -> Result<Authenticated, WebhookError> {
        let signed = self.check_signature(keys, query)?;
        let encrypted = match query.get("encrypt_type").map(|t| t.trim()) {
            None | Some("") => false,
            Some(t) if t.eq_ignore_ascii_case("raw") => false,
            Some(t) if t.eq_ignore_ascii_case("aes") => true,
            Some(_) => return Err(WebhookError::UnsupportedEncryptType),
        };
        if encrypted {
            if keys.current_crypto().is_none() {
                return Err(WebhookError::Crypto(CryptoFailure::NotConfigured));
            }
            let msg_signature = parameter(query, "msg_signature")?;
            let (plaintext, key) = self.open_envelope(keys, body, msg_signature, &signed)?;
            Ok(Authenticated {
                msg: Message::parse(plaintext.as_bytes())?,
                encrypted,
                token: signed.token,
                key,
            })
        } else {
            if self.require_encryption && keys.current_crypto().is_some() {
                return Err(WebhookError::EncryptionRequired);
            }
            Ok(Authenticated {
                msg: Message::parse(body)?,
                encrypted,
                token: signed.token,
                key: Generation::Current,
            })
        }
    }

    /// Checks `signature` over token, timestamp and nonce (the current token, then the
    /// previous one during its grace), then the timestamp window.
    fn check_signature<'q>(
        &self,
        keys: &KeyRing,
        query: &'q std::collections::HashMap<String, String>,
    ) -> Result<Signed<'q>, WebhookError> {
        let signature = parameter(query, "signature")?;
        let timestamp = parameter(query, "timestamp")?;
        let nonce = parameter(query, "nonce")?;
        let now = self.clock.now_s();
        let token = keys
            .signed_by(signature, &[timestamp, nonce], now)
            .ok_or(WebhookError::BadSignature)?;
        let sent_at: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| WebhookError::InvalidTimestamp)?;
        // Exclusive: a push is replayable for strictly less than the window, which is what the
        // forward rules' de-duplication items are kept for.
        let skew = now.saturating_sub(sent_at).unsigned_abs();
        if skew >= self.max_clock_skew_secs {
            return Err(WebhookError::Replayed);
        }
        Ok(Signed {
            timestamp,
            nonce,
            token,
        })
    }

    /// Safe mode in: the `Encrypt` field, its msg_signature (by the token that signed the
    /// query), then decryption with the current key or the previous one.
    fn open_envelope(
        &self,
        keys: &KeyRing,
        body: &[u8],
        msg_signature: &str,
        signed: &Signed<'_>,
    ) -> Result<(String, Generation), WebhookError> {
        let envelope = std::str::from_utf8(body).map_err(|_| ParseError::NotUtf8)?;
        let fields = Fields::parse(envelope)?;
        let encrypt = fields
            .get("Encrypt")
            .filter(|e| !e.trim().is_empty())
            .ok_or(ParseError::MissingField("Encrypt"))?;
        let rest = [signed.timestamp, signed.nonce, encrypt];
        if !keys.is_signed_by(signed.token, msg_signature, &rest) {
            return Err(WebhookError::Crypto(CryptoFailure::MsgSignature));
        }
        match keys.decrypt(encrypt, self.clock.now_s()) {
            Some(Ok(opened)) => Ok(opened),
            Some(Err(e)) => Err(WebhookError::Crypto(CryptoFailure::Decrypt(e))),
            None => Err(WebhookError::Crypto(CryptoFailure::NotConfigured)),
        }
    }
}

fn generation_name(generation: Generation) -> &'static str {
    match generation {
        Generation::Current => "current",
        Generation::Previous => "previous",
    }
}

/// Safe mode out: the reply encrypted with a fresh prefix and signed with `token` over its own
/// timestamp and nonce.
fn seal(
    crypto: &MessageCrypto,
    token: &str,
    reply_xml: &str,
    now: i64,
) -> Result<String, WebhookError> {
    let prefix = random_prefix().map_err(|_| WebhookError::Internal)?;
    let nonce = getrandom::u32()
        .map_err(|_| WebhookError::Internal)?
        .to_string();
    let timestamp = now.to_string();
    let encrypt = crypto.encrypt_with_prefix(&prefix, reply_xml);
    let msg_signature = signature::sign(&[token, &timestamp, &nonce, &encrypt]);
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

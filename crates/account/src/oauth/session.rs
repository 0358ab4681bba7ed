//! Browser sessions as signed cookies, and the `Set-Cookie` values the OAuth flow sends.
//!
//! A session token is `base64url(payload) "." base64url(HMAC-SHA256(key, "wx-session.v1." payload))`
//! with the JSON payload `{"v":1,"openid":..,"scope":..,"iat":..,"exp":..,"ep":..}`: the expiry is
//! inside the signed part, so an old cookie replayed past `Max-Age` is still refused; `ep` is the
//! user's session epoch at issue (left out when 0), which the handler compares with the stored
//! one so that sessions can be revoked server-side. Nothing secret is in it (no sns token); the
//! signature is checked in constant time before the payload is parsed.
//!
//! Cookie names: `__Host-` prefixed (`Secure`, `Path=/`, no `Domain`, so no sibling subdomain
//! can plant or overwrite them) whenever the public origin is https; plain names on plain-http
//! localhost (`make run`), where browsers refuse `__Host-` cookies.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use wechat_protocol::secret::Secret;

use crate::oauth::Scope;

/// The session cookie's name on plain-http localhost.
pub const SESSION_COOKIE: &str = "wx_session";
/// The session cookie's name on https.
pub const HOST_SESSION_COOKIE: &str = "__Host-wx_session";

/// Longer cookies are refused before any work is done on them.
const MAX_TOKEN_LEN: usize = 2048;
const MAC_CONTEXT: &[u8] = b"wx-session.v1.";
const PAYLOAD_VERSION: u8 = 1;

/// A signed-in browser: who, with which scope, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub openid: String,
    pub scope: Scope,
    pub issued_at_s: i64,
    pub expires_at_s: i64,
    /// The user's session epoch when this session was issued; a newer stored epoch revokes it.
    pub epoch: u64,
}

impl Session {
    /// This session, issued in the user's session `epoch`.
    pub fn in_epoch(self, epoch: u64) -> Self {
        Self { epoch, ..self }
    }
}

/// Why a session cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("session cookie is malformed")]
    Malformed,
    #[error("session signature does not verify")]
    BadSignature,
    #[error("session has expired")]
    Expired,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    v: u8,
    openid: String,
    scope: String,
    iat: i64,
    exp: i64,
    /// Absent in sessions of epoch 0 (and in every session issued before epochs existed).
    #[serde(default, skip_serializing_if = "is_zero")]
    ep: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Issues and checks session tokens with one key.
#[derive(Debug, Clone)]
pub struct SessionCodec {
    key: Secret<Vec<u8>>,
    ttl_s: i64,
}

impl SessionCodec {
    pub fn new(key: Secret<Vec<u8>>, ttl_s: i64) -> Self {
        Self { key, ttl_s }
    }

    pub fn ttl_s(&self) -> i64 {
        self.ttl_s
    }

    /// A new session for `openid`, valid for the configured TTL from `now_s`, in epoch 0
    /// (see [`Session::in_epoch`]).
    pub fn issue(&self, openid: &str, scope: Scope, now_s: i64) -> Session {
        Session {
            openid: openid.to_string(),
            scope,
            issued_at_s: now_s,
            expires_at_s: now_s.saturating_add(self.ttl_s),
            epoch: 0,
        }
    }

    /// The cookie value for `session`.
    pub fn encode(&self, session: &Session) -> String {
        let payload = Payload {
            v: PAYLOAD_VERSION,
            openid: session.openid.clone(),
            scope: session.scope.as_str().to_string(),
            iat: session.issued_at_s,
            exp: session.expires_at_s,
            ep: session.epoch,
        };
        // Serializing a struct of strings and integers cannot fail.
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let payload_b64 = URL_SAFE_NO_PAD.encode(json);
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&payload_b64).finalize().into_bytes());
        format!("{payload_b64}.{tag}")
    }

    /// The session in `token`, if it is signed with this key and unexpired at `now_s`.
    pub fn decode(&self, token: &str, now_s: i64) -> Result<Session, SessionError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(SessionError::Malformed);
        }
        let (payload_b64, tag_b64) = token.split_once('.').ok_or(SessionError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag_b64)
            .map_err(|_| SessionError::Malformed)?;
        // `verify_slice` compares in constant time.
        self.mac(payload_b64)
            .verify_slice(&tag)
            .map_err(|_| SessionError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| SessionError::Malformed)?;
        let payload: Payload =
            serde_json::from_slice(&json).map_err(|_| SessionError::Malformed)?;
        let scope = Scope::parse(&payload.scope).ok_or(SessionError::Malformed)?;
        if payload.v != PAYLOAD_VERSION || payload.openid.is_empty() {
            return Err(SessionError::Malformed);
        }
        if payload.exp <= now_s {
            return Err(SessionError::Expired);
        }
        Ok(Session {
            openid: payload.openid,
            scope,
            issued_at_s: payload.iat,
            expires_at_s: payload.exp,
            epoch: payload.ep,
        })
    }

    fn mac(&self, payload_b64: &str) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; the config demands at least 32 bytes.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(MAC_CONTEXT);
        mac.update(payload_b64.as_bytes());
        mac
    }
}

/// One cookie's fixed attributes: `HttpOnly; SameSite=Lax`, `Path`, and `Secure` unless the
/// deployment is plain-http localhost (see `OAuthConfig::secure_cookies`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSpec {
    pub name: &'static str,
    pub path: String,
    pub secure: bool,
}

impl CookieSpec {
    /// The session cookie: `__Host-wx_session` on https, `wx_session` on plain-http localhost.
    pub fn session(secure: bool) -> Self {
        let name = if secure {
            HOST_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        };
        Self {
            name,
            path: "/".into(),
            secure,
        }
    }

    /// The browser binding cookie: `__Host-wx_oauth_binding` with `Path=/` on https (the prefix
    /// demands it), `wx_oauth_binding` scoped to `<path_prefix>/oauth` on plain-http localhost.
    pub fn binding(path_prefix: &str, secure: bool) -> Self {
        use crate::oauth::binding::{BINDING_COOKIE, HOST_BINDING_COOKIE};
        if secure {
            Self {
                name: HOST_BINDING_COOKIE,
                path: "/".into(),
                secure,
            }
        } else {
            Self {
                name: BINDING_COOKIE,
                path: format!("{path_prefix}/oauth"),
                secure,
            }
        }
    }

    /// `Set-Cookie` value storing `value` for `max_age_s` seconds.
    pub fn set(&self, value: &str, max_age_s: i64) -> String {
        format!(
            "{}={}; Max-Age={}; Path={}; HttpOnly;{} SameSite=Lax",
            self.name,
            value,
            max_age_s.max(0),
            self.path,
            if self.secure { " Secure;" } else { "" }
        )
    }

    /// `Set-Cookie` value deleting the cookie.
    pub fn clear(&self) -> String {
        self.set("", 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(key: &str) -> SessionCodec {
        SessionCodec::new(Secret::new(key.as_bytes().to_vec()), 3600)
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_session_round_trips_until_it_expires() {
        let codec = codec(KEY);
        let session = codec.issue("o-user", Scope::UserInfo, 1_000);
        let token = codec.encode(&session);
        assert_eq!(codec.decode(&token, 1_000).unwrap(), session);
        assert_eq!(codec.decode(&token, 4_599).unwrap().expires_at_s, 4_600);
        assert_eq!(codec.decode(&token, 4_600), Err(SessionError::Expired));
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let codec = codec(KEY);
        let token = codec.encode(&codec.issue("o-user", Scope::Base, 1_000));
        let (_, tag) = token.split_once('.').unwrap();
        // The same signature over a payload naming someone else, or living longer.
        for forged in [
            r#"{"v":1,"openid":"o-admin","scope":"snsapi_base","iat":1000,"exp":4600}"#,
            r#"{"v":1,"openid":"o-user","scope":"snsapi_base","iat":1000,"exp":99999999999}"#,
        ] {
            let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged));
            assert_eq!(
                codec.decode(&forged, 1_000),
                Err(SessionError::BadSignature)
            );
        }
        let mut flipped = token.into_bytes();
        flipped[3] ^= 0x01;
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(codec.decode(&flipped, 1_000).is_err());
    }

    #[test]
    fn a_session_signed_with_another_key_is_refused() {
        let token = codec("another-key-another-key-another-k").encode(&Session {
            openid: "o-user".into(),
            scope: Scope::Base,
            issued_at_s: 1_000,
            expires_at_s: 4_600,
            epoch: 0,
        });
        assert_eq!(
            codec(KEY).decode(&token, 1_000),
            Err(SessionError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let codec = codec(KEY);
        for token in ["", ".", "abc", "a.b.c", "!!!.###", &"a".repeat(5000)] {
            assert!(codec.decode(token, 0).is_err(), "{token:?}");
        }
    }

    #[test]
    fn the_payload_holds_nothing_but_identity_and_times() {
        let codec = codec(KEY);
        let token = codec.encode(&codec.issue("o-user", Scope::Base, 1_000));
        let (payload, _) = token.split_once('.').unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["exp", "iat", "openid", "scope", "v"]);
    }

    #[test]
    fn the_epoch_is_signed_and_round_trips() {
        let codec = codec(KEY);
        let session = codec.issue("o-user", Scope::Base, 1_000).in_epoch(3);
        let token = codec.encode(&session);
        assert_eq!(codec.decode(&token, 1_000).unwrap().epoch, 3);
        // The same signature over a payload claiming the current epoch is refused.
        let (_, tag) = token.split_once('.').unwrap();
        let forged =
            r#"{"v":1,"openid":"o-user","scope":"snsapi_base","iat":1000,"exp":4600,"ep":4}"#;
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged));
        assert_eq!(
            codec.decode(&forged, 1_000),
            Err(SessionError::BadSignature)
        );
    }

    #[test]
    fn cookie_names_are_host_prefixed_on_https_and_plain_on_localhost() {
        let session = CookieSpec::session(true);
        assert_eq!(
            session.set("v", 60),
            "__Host-wx_session=v; Max-Age=60; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
        let binding = CookieSpec::binding("/prod", true);
        assert_eq!(
            binding.clear(),
            "__Host-wx_oauth_binding=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
        assert_eq!(CookieSpec::session(false).name, "wx_session");
        let local = CookieSpec::binding("", false);
        assert_eq!(
            (local.name, local.path.as_str(), local.secure),
            ("wx_oauth_binding", "/oauth", false)
        );
    }

    #[test]
    fn cookies_carry_the_security_attributes() {
        let spec = CookieSpec {
            name: SESSION_COOKIE,
            path: "/".into(),
            secure: true,
        };
        assert_eq!(
            spec.set("v", 60),
            "wx_session=v; Max-Age=60; Path=/; HttpOnly; Secure; SameSite=Lax"
        );
        let local = CookieSpec {
            secure: false,
            ..spec
        };
        assert_eq!(
            local.clear(),
            "wx_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
        );
    }
}

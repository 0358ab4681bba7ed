//! Values that must never reach a log line or an answer ([`Secret`]), and the short,
//! non-reversible names log lines use instead of them or of personal data ([`fingerprint`]).

use std::fmt;

use sha2::{Digest, Sha256};

/// A value that must never be logged or returned: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself; call sites are easy to audit by searching for `expose`.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The first 8 hex digits of `value`'s SHA-256: enough to correlate log lines (a token, an
/// openid), useless to call WeChat with or to find the person.
pub fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    hex::encode(&digest[..4])
}

/// `#[serde(with = "wechat_protocol::secret::plain_string")]`: a `Secret<String>` stored as its
/// plain string (the token service's items). `Secret` itself implements no serde, so that no
/// answer or log serializes one by accident.
pub mod plain_string {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Secret;

    pub fn serialize<S: Serializer>(secret: &Secret<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret<String>, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("wx-app-secret".to_string());
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "wx-app-secret");
    }

    #[test]
    fn fingerprints_are_short_stable_and_do_not_contain_the_token() {
        let a = fingerprint("ACCESS_TOKEN_VALUE");
        assert_eq!(a.len(), 8);
        assert_eq!(a, fingerprint("ACCESS_TOKEN_VALUE"));
        assert_ne!(a, fingerprint("ACCESS_TOKEN_VALUF"));
    }
}

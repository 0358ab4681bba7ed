//! The random values that make a sign-in `state` unguessable and tie it to one browser.
//!
//! `state` is 32 random bytes as 64 lower-case hex characters: WeChat accepts at most 128 bytes of
//! `a-zA-Z0-9`, so base64 is out. The browser binding is another 32 random bytes kept in a short
//! `HttpOnly` cookie (`__Host-` prefixed on https); the state item stores only its SHA-256, and
//! the callback compares hashes in constant time. A fresh binding is minted for every authorize:
//! a binding someone planted in the browser is never adopted (binding fixation).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use wechat_protocol::random::{self, RandomUnavailable};

/// The browser binding cookie's name on plain-http localhost.
pub const BINDING_COOKIE: &str = "wx_oauth_binding";
/// The browser binding cookie's name on https.
pub const HOST_BINDING_COOKIE: &str = "__Host-wx_oauth_binding";

const RANDOM_BYTES: usize = 32;
const STATE_LEN: usize = RANDOM_BYTES * 2;
const BINDING_LEN: usize = 43; // 32 bytes in unpadded base64url

fn random_bytes() -> Result<[u8; RANDOM_BYTES], RandomUnavailable> {
    random::bytes()
}

/// A fresh `state` value (256 bits, hex).
pub fn new_state() -> Result<String, RandomUnavailable> {
    Ok(hex::encode(random_bytes()?))
}

/// Whether `raw` has the shape of a state this server issues; anything else is not looked up.
pub fn is_well_formed_state(raw: &str) -> bool {
    raw.len() == STATE_LEN && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A fresh browser binding (256 bits, base64url).
pub fn new_binding() -> Result<String, RandomUnavailable> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes()?))
}

/// Whether a binding cookie has the shape this server issues (anything else is not hashed).
pub fn is_well_formed_binding(raw: &str) -> bool {
    raw.len() == BINDING_LEN
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the state item stores instead of the binding: hex SHA-256.
pub fn binding_hash(binding: &str) -> String {
    hex::encode(Sha256::digest(binding.as_bytes()))
}

/// Whether the browser's binding cookie hashes to `stored_hash`, compared in constant time.
pub fn binding_matches(cookie: Option<&str>, stored_hash: &str) -> bool {
    let Some(binding) = cookie.filter(|b| is_well_formed_binding(b)) else {
        return false;
    };
    let presented = binding_hash(binding);
    presented.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_long_hex_and_distinct() {
        let a = new_state().unwrap();
        let b = new_state().unwrap();
        assert_ne!(a, b);
        assert!(is_well_formed_state(&a), "{a}");
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()) && a.len() <= 128);
        assert!(!is_well_formed_state(&a[1..]));
        assert!(!is_well_formed_state(&a.to_uppercase()));
    }

    #[test]
    fn a_binding_matches_only_its_own_hash() {
        let binding = new_binding().unwrap();
        assert!(is_well_formed_binding(&binding));
        let hash = binding_hash(&binding);
        assert!(binding_matches(Some(&binding), &hash));
        let other = new_binding().unwrap();
        assert!(!binding_matches(Some(&other), &hash));
        assert!(!binding_matches(None, &hash));
        assert!(!binding_matches(Some(&hash), &hash));
    }
}

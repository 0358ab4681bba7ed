//! The webhook's keys across a rotation: the current Token and EncodingAESKey, and, for a grace
//! period, the previous ones. WeChat's FAQ on message encryption (消息加解密): "公众账号需要保存当前的和
//! 上一次的EncodingAESKey，若当前的EncodingAESKey解密失败，则尝试用上一次的EncodingAESKey解密。回包时，
//! 用哪个Key解密成功，则用此Key加密对应的回包". The same holds here for the Token: the current one is
//! tried first, the previous one only while its grace lasts, and the reply is sealed with the key
//! and signed with the token that worked.
//!
//! Without previous values (or once their grace is over) every check costs what it did before:
//! one signature, one decryption.

use crate::crypto::{CryptoError, MessageCrypto};
use crate::secret::Secret;
use crate::signature;

/// Which generation of a value verified or decrypted a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    Current,
    Previous,
}

/// The previous values, accepted until `until_s` (epoch seconds, exclusive).
#[derive(Debug, Clone)]
pub struct Previous {
    pub token: Option<Secret<String>>,
    pub crypto: Option<MessageCrypto>,
    pub until_s: i64,
}

/// The current Token and EncodingAESKey, and the previous ones during a rotation.
#[derive(Debug, Clone)]
pub struct KeyRing {
    token: Secret<String>,
    crypto: Option<MessageCrypto>,
    previous: Option<Previous>,
}

impl KeyRing {
    pub fn new(token: Secret<String>, crypto: Option<MessageCrypto>) -> Self {
        Self {
            token,
            crypto,
            previous: None,
        }
    }

    /// With previous values; a `previous` holding neither a token nor a key is dropped.
    pub fn with_previous(mut self, previous: Previous) -> Self {
        self.previous = (previous.token.is_some() || previous.crypto.is_some()).then_some(previous);
        self
    }

    /// The current token.
    pub fn current_token(&self) -> &Secret<String> {
        &self.token
    }

    /// The current key, when one is configured (compatible or safe mode).
    pub fn current_crypto(&self) -> Option<&MessageCrypto> {
        self.crypto.as_ref()
    }

    /// The end of the previous values' grace (epoch seconds), when there are previous values.
    pub fn previous_until_s(&self) -> Option<i64> {
        self.previous.as_ref().map(|p| p.until_s)
    }

    /// The previous values, while their grace lasts at `now_s`.
    fn previous_at(&self, now_s: i64) -> Option<&Previous> {
        self.previous.as_ref().filter(|p| now_s < p.until_s)
    }

    /// The token of `generation`; the current one when that generation has none.
    pub fn token(&self, generation: Generation) -> &str {
        match (generation, &self.previous) {
            (Generation::Previous, Some(Previous { token: Some(t), .. })) => t.expose(),
            _ => self.token.expose(),
        }
    }

    /// The key of `generation`; the current one when that generation has none.
    pub fn crypto(&self, generation: Generation) -> Option<&MessageCrypto> {
        match (generation, &self.previous) {
            (
                Generation::Previous,
                Some(Previous {
                    crypto: Some(c), ..
                }),
            ) => Some(c),
            _ => self.crypto.as_ref(),
        }
    }

    /// Which token signed `signature` over the token and `rest` (timestamp, nonce, and for
    /// `msg_signature` the `Encrypt` value): the current one, else the previous one while its
    /// grace lasts. Each comparison is constant-time; that the second one ran tells a forger only
    /// that the first failed, which a wrong guess always does.
    pub fn signed_by(&self, signature: &str, rest: &[&str], now_s: i64) -> Option<Generation> {
        if signed_with(self.token.expose(), signature, rest) {
            return Some(Generation::Current);
        }
        let previous = self.previous_at(now_s)?.token.as_ref()?;
        signed_with(previous.expose(), signature, rest).then_some(Generation::Previous)
    }

    /// Whether `generation`'s token signed `signature` over the token and `rest`.
    pub fn is_signed_by(&self, generation: Generation, signature: &str, rest: &[&str]) -> bool {
        signed_with(self.token(generation), signature, rest)
    }

    /// Decrypts an `Encrypt` value with the current key, else with the previous one while its
    /// grace lasts. The error is the current key's: the previous key's failure says nothing new.
    /// `None` when no key is configured.
    pub fn decrypt(
        &self,
        encrypted: &str,
        now_s: i64,
    ) -> Option<Result<(String, Generation), CryptoError>> {
        let current = self.crypto.as_ref()?;
        let first = match current.decrypt(encrypted) {
            Ok(plaintext) => return Some(Ok((plaintext, Generation::Current))),
            Err(e) => e,
        };
        let Some(previous) = self.previous_at(now_s).and_then(|p| p.crypto.as_ref()) else {
            return Some(Err(first));
        };
        Some(
            previous
                .decrypt(encrypted)
                .map(|plaintext| (plaintext, Generation::Previous))
                .map_err(|_| first),
        )
    }
}

/// Whether `signature` is the signature of `token` with `rest` (at most three parts).
fn signed_with(token: &str, signature: &str, rest: &[&str]) -> bool {
    let mut parts = [""; 4];
    let Some(tail) = parts.get_mut(1..=rest.len()) else {
        return false;
    };
    tail.copy_from_slice(rest);
    parts[0] = token;
    signature::verify(signature, &parts[..=rest.len()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::sign;

    const APP_ID: &str = "wxb11529c136998cb6";
    const OLD_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const NEW_KEY: &str = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut";
    const UNTIL: i64 = 1_000;

    fn crypto(key: &str) -> MessageCrypto {
        MessageCrypto::new(key, APP_ID).unwrap()
    }

    fn rotating() -> KeyRing {
        KeyRing::new(Secret::new("newtoken".into()), Some(crypto(NEW_KEY))).with_previous(
            Previous {
                token: Some(Secret::new("oldtoken".into())),
                crypto: Some(crypto(OLD_KEY)),
                until_s: UNTIL,
            },
        )
    }

    #[test]
    fn the_current_token_verifies_first_and_the_previous_one_only_during_its_grace() {
        let ring = rotating();
        let new = sign(&["newtoken", "1", "n"]);
        let old = sign(&["oldtoken", "1", "n"]);
        assert_eq!(
            ring.signed_by(&new, &["1", "n"], UNTIL + 5),
            Some(Generation::Current)
        );
        assert_eq!(
            ring.signed_by(&old, &["1", "n"], UNTIL - 1),
            Some(Generation::Previous)
        );
        assert_eq!(ring.signed_by(&old, &["1", "n"], UNTIL), None);
        assert_eq!(
            ring.signed_by(&sign(&["other", "1", "n"]), &["1", "n"], 0),
            None
        );
        assert!(ring.is_signed_by(Generation::Previous, &old, &["1", "n"]));
        assert!(!ring.is_signed_by(Generation::Current, &old, &["1", "n"]));
    }

    #[test]
    fn msg_signatures_over_four_parts_verify_and_more_parts_never_do() {
        let ring = rotating();
        let msg = sign(&["oldtoken", "1", "n", "ENC"]);
        assert_eq!(
            ring.signed_by(&msg, &["1", "n", "ENC"], 0),
            Some(Generation::Previous)
        );
        assert_eq!(ring.signed_by(&msg, &["1", "n", "ENC", "x"], 0), None);
    }

    #[test]
    fn a_push_sealed_with_the_previous_key_decrypts_during_the_grace_and_names_that_key() {
        let ring = rotating();
        let sealed = crypto(OLD_KEY).encrypt("<xml>hi</xml>");
        let (plaintext, generation) = ring.decrypt(&sealed, UNTIL - 1).unwrap().unwrap();
        assert_eq!(plaintext, "<xml>hi</xml>");
        assert_eq!(generation, Generation::Previous);
        let replied = ring.crypto(generation).unwrap().encrypt("<xml>re</xml>");
        assert_eq!(crypto(OLD_KEY).decrypt(&replied).unwrap(), "<xml>re</xml>");
        assert!(ring.decrypt(&sealed, UNTIL).unwrap().is_err());
        let fresh = crypto(NEW_KEY).encrypt("x");
        assert_eq!(
            ring.decrypt(&fresh, UNTIL + 9).unwrap().unwrap().1,
            Generation::Current
        );
    }

    #[test]
    fn a_rotation_of_the_token_alone_keeps_the_current_key_for_both_generations() {
        let ring = KeyRing::new(Secret::new("newtoken".into()), Some(crypto(NEW_KEY)))
            .with_previous(Previous {
                token: Some(Secret::new("oldtoken".into())),
                crypto: None,
                until_s: UNTIL,
            });
        let sealed = crypto(NEW_KEY).encrypt("x");
        assert_eq!(
            ring.decrypt(&sealed, 0).unwrap().unwrap().1,
            Generation::Current
        );
        // A push under an unknown key is refused with the current key's reason.
        let other = crypto(OLD_KEY).encrypt("x");
        let current_refusal = crypto(NEW_KEY).decrypt(&other).unwrap_err();
        assert_eq!(ring.decrypt(&other, 0).unwrap(), Err(current_refusal));
        assert_eq!(ring.token(Generation::Previous), "oldtoken");
        assert!(ring.crypto(Generation::Previous).is_some());
    }

    #[test]
    fn without_a_key_nothing_decrypts_and_an_empty_previous_is_dropped() {
        let ring = KeyRing::new(Secret::new("t0k".into()), None).with_previous(Previous {
            token: None,
            crypto: None,
            until_s: UNTIL,
        });
        assert!(ring.decrypt("abc", 0).is_none());
        assert_eq!(ring.previous_until_s(), None);
        assert_eq!(ring.token(Generation::Previous), "t0k");
    }

    #[test]
    fn debug_output_shows_no_token_or_key() {
        let shown = format!("{:?}", rotating());
        assert!(
            !shown.contains("newtoken") && !shown.contains("oldtoken"),
            "{shown}"
        );
        assert!(
            !shown.contains("abcdefgh") && !shown.contains("ZYXWVU"),
            "{shown}"
        );
    }
}

//! WeChat safe-mode message encryption: AES-256-CBC keyed by the account's EncodingAESKey, with
//! WeChat's framing (16 random bytes, 4-byte big-endian length, message, AppId) and PKCS#7
//! padding to a 32-byte block. Owns the key schedule, built once at start-up.

use std::fmt;

use aes::Aes256;
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use cbc::cipher::generic_array::GenericArray;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use subtle::ConstantTimeEq;

/// Length of an EncodingAESKey as shown on the WeChat admin page.
pub const ENCODING_AES_KEY_LEN: usize = 43;
/// WeChat pads to 32-byte blocks, not to the AES block size.
const PAD_BLOCK: usize = 32;
const AES_BLOCK: usize = 16;
const PREFIX_LEN: usize = 16;
const LENGTH_LEN: usize = 4;

/// Real EncodingAESKeys have non-zero bits after the 256th, which a strict decoder refuses.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Why a key could not be used or a message could not be decrypted. The texts never contain
/// key material; the webhook answers every decryption failure identically and logs these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the EncodingAESKey must be {ENCODING_AES_KEY_LEN} characters, got {0}")]
    KeyLength(usize),
    #[error(
        "the EncodingAESKey is not valid base64: its {ENCODING_AES_KEY_LEN} characters may only be \
         the letters A-Z and a-z and the digits 0-9 (the console's alphabet; base64's + and / are \
         accepted too)"
    )]
    KeyEncoding,
    #[error("the AppId is empty")]
    EmptyAppId,
    #[error("the ciphertext is not valid base64")]
    Base64,
    #[error("the ciphertext length {0} is not a positive multiple of the AES block")]
    CiphertextLength(usize),
    #[error("the PKCS#7 padding is invalid")]
    Padding,
    #[error("the decrypted frame is too short for its declared message length")]
    Frame,
    #[error("the decrypted message is not UTF-8")]
    Utf8,
    #[error("the decrypted message belongs to another AppId")]
    AppIdMismatch,
    #[error("the operating system's random source failed")]
    Random,
}

/// A new EncodingAESKey from the operating system's random source: [`ENCODING_AES_KEY_LEN`]
/// characters of A-Z, a-z and 0-9, as the console's 随机生成 makes them (a key of 256 bits,
/// base64 without its padding). The last character is one of the 16 that leave no bits after the
/// 256th, so strict base64 decoders accept the key too.
pub fn generate_encoding_aes_key() -> Result<String, CryptoError> {
    const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // The characters whose base64 value is a multiple of 4: its last two bits are padding.
    const LAST: &[u8] = b"AEIMQUYcgkosw048";
    let mut key = String::with_capacity(ENCODING_AES_KEY_LEN);
    while key.len() < ENCODING_AES_KEY_LEN {
        let batch: [u8; 64] = crate::random::bytes().map_err(|_| CryptoError::Random)?;
        for byte in batch {
            let last = key.len() == ENCODING_AES_KEY_LEN - 1;
            // Rejection sampling: only bytes below a multiple of the alphabet's size, so every
            // character is equally likely.
            let (alphabet, limit) = if last {
                (LAST, 256 - 256 % LAST.len())
            } else {
                (ALPHANUMERIC, 256 - 256 % ALPHANUMERIC.len())
            };
            if usize::from(byte) < limit {
                key.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
                if key.len() == ENCODING_AES_KEY_LEN {
                    break;
                }
            }
        }
    }
    Ok(key)
}

/// Encrypts and decrypts messages for one account (EncodingAESKey and AppId).
#[derive(Clone)]
pub struct MessageCrypto {
    cipher: Aes256,
    iv: [u8; AES_BLOCK],
    app_id: String,
}

impl fmt::Debug for MessageCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageCrypto")
            .field("app_id", &self.app_id)
            .field("key", &"***")
            .finish()
    }
}

impl MessageCrypto {
    /// Builds the key schedule from the 43-character EncodingAESKey.
    pub fn new(encoding_aes_key: &str, app_id: &str) -> Result<Self, CryptoError> {
        let encoding_aes_key = encoding_aes_key.trim();
        if encoding_aes_key.len() != ENCODING_AES_KEY_LEN {
            return Err(CryptoError::KeyLength(encoding_aes_key.len()));
        }
        if app_id.is_empty() {
            return Err(CryptoError::EmptyAppId);
        }
        let mut padded = String::with_capacity(ENCODING_AES_KEY_LEN + 1);
        padded.push_str(encoding_aes_key);
        padded.push('=');
        let key = LENIENT_BASE64
            .decode(padded)
            .map_err(|_| CryptoError::KeyEncoding)?;
        let cipher = Aes256::new_from_slice(&key).map_err(|_| CryptoError::KeyEncoding)?;
        let mut iv = [0u8; AES_BLOCK];
        iv.copy_from_slice(&key[..AES_BLOCK]);
        Ok(Self {
            cipher,
            iv,
            app_id: app_id.to_string(),
        })
    }

    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Encrypts `plaintext` with a fresh random prefix; returns base64.
    ///
    /// # Panics
    /// Only if the operating system's random source fails. Request paths use
    /// [`random_prefix`] and [`Self::encrypt_with_prefix`] to answer an error instead.
    pub fn encrypt(&self, plaintext: &str) -> String {
        match random_prefix() {
            Ok(prefix) => self.encrypt_with_prefix(&prefix, plaintext),
            Err(e) => panic!("cannot encrypt: {e}"),
        }
    }

    /// Encrypts with a given 16-byte prefix: deterministic, for test vectors and benchmarks.
    pub fn encrypt_with_prefix(&self, prefix: &[u8; PREFIX_LEN], plaintext: &str) -> String {
        let message = plaintext.as_bytes();
        let framed_len = PREFIX_LEN + LENGTH_LEN + message.len() + self.app_id.len();
        let pad = PAD_BLOCK - framed_len % PAD_BLOCK;
        let mut buf = Vec::with_capacity(framed_len + pad);
        buf.extend_from_slice(prefix);
        // A body is limited far below 4 GiB; saturating keeps this total without a panic path.
        buf.extend_from_slice(
            &u32::try_from(message.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        buf.extend_from_slice(message);
        buf.extend_from_slice(self.app_id.as_bytes());
        // `pad` is in 1..=32, so it fits a byte.
        buf.resize(framed_len + pad, pad as u8);

        let mut encryptor = cbc::Encryptor::<Aes256>::inner_iv_init(
            self.cipher.clone(),
            GenericArray::from_slice(&self.iv),
        );
        for block in buf.chunks_exact_mut(AES_BLOCK) {
            encryptor.encrypt_block_mut(GenericArray::from_mut_slice(block));
        }
        STANDARD.encode(buf)
    }

    /// Decrypts a base64 `Encrypt` value, validating padding, framing and AppId.
    pub fn decrypt(&self, encrypted: &str) -> Result<String, CryptoError> {
        let mut buf = STANDARD
            .decode(encrypted.trim())
            .map_err(|_| CryptoError::Base64)?;
        if buf.is_empty() || buf.len() % AES_BLOCK != 0 {
            return Err(CryptoError::CiphertextLength(buf.len()));
        }
        let mut decryptor = cbc::Decryptor::<Aes256>::inner_iv_init(
            self.cipher.clone(),
            GenericArray::from_slice(&self.iv),
        );
        for block in buf.chunks_exact_mut(AES_BLOCK) {
            decryptor.decrypt_block_mut(GenericArray::from_mut_slice(block));
        }

        let unpadded_len = unpadded_len(&buf)?;
        let frame = &buf[..unpadded_len];
        if frame.len() < PREFIX_LEN + LENGTH_LEN {
            return Err(CryptoError::Frame);
        }
        let mut length = [0u8; LENGTH_LEN];
        length.copy_from_slice(&frame[PREFIX_LEN..PREFIX_LEN + LENGTH_LEN]);
        let message_len = u32::from_be_bytes(length) as usize;
        let rest = &frame[PREFIX_LEN + LENGTH_LEN..];
        if message_len > rest.len() {
            return Err(CryptoError::Frame);
        }
        let (message, app_id) = rest.split_at(message_len);
        if !bool::from(app_id.ct_eq(self.app_id.as_bytes())) {
            return Err(CryptoError::AppIdMismatch);
        }
        String::from_utf8(message.to_vec()).map_err(|_| CryptoError::Utf8)
    }
}

/// The unpadded length of a decrypted buffer: PKCS#7 with pad values 1..=32, all pad bytes equal.
fn unpadded_len(buf: &[u8]) -> Result<usize, CryptoError> {
    let pad = usize::from(*buf.last().ok_or(CryptoError::Padding)?);
    if pad == 0 || pad > PAD_BLOCK || pad > buf.len() {
        return Err(CryptoError::Padding);
    }
    let (body, padding) = buf.split_at(buf.len() - pad);
    if padding.iter().any(|&b| usize::from(b) != pad) {
        return Err(CryptoError::Padding);
    }
    Ok(body.len())
}

/// 16 fresh random bytes for the front of an encrypted frame.
pub fn random_prefix() -> Result<[u8; PREFIX_LEN], CryptoError> {
    crate::random::bytes().map_err(|_| CryptoError::Random)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const APP_ID: &str = "wxb11529c136998cb6";
    const PUBLISHED_ENCRYPT: &str = "rTNFcsut4LfGuAFKEUVVpwcaCOTJzOd9twZdIW910jb3k+iicx2uvhttIZ3Qg9Qgty3BEF2xbOrz6boTfb30dMomcgrkTqdFPwnhqbk+kIQ7rZiwny9D7NUrTgA5kpX3KsZvrXzUZyP2x9YOlxbgm572lmxKvM7HAQQhIQ/p6HBmoY30bGXFK0BtIu1pW9TjhOYrLQoU18nWYjWqDA1ynkmOytpv7QRI1P1+0NoxL0q2zO1DgeSvnE8CZGo/o5Ap/WHK5W2RAsinpzN4/LjPnmB6U01I5XCoJoC0GK/yMZycd2Oh8Nq6+wBkC1U85oy0ktOY4nLvsQMLrourmMGdZHuTbqpeJ8Ao/5PRYJ+WBvRUwPfGKBL2+2IKZF49vAJqkcGWSHGE76ZN2erXeuNazf/o9o3lIE3q739o4c8t9QGPe31GT2Go/rOz1BsrASwvauNulCh+++yz+CQzBIuikA==";

    fn crypto() -> MessageCrypto {
        MessageCrypto::new(KEY, APP_ID).unwrap()
    }

    /// Encrypts a raw frame (prefix, length, message, app id, caller's padding) for tamper tests.
    fn encrypt_raw(frame: &[u8]) -> String {
        let c = crypto();
        let mut buf = frame.to_vec();
        let mut enc = cbc::Encryptor::<Aes256>::inner_iv_init(
            c.cipher.clone(),
            GenericArray::from_slice(&c.iv),
        );
        for block in buf.chunks_exact_mut(AES_BLOCK) {
            enc.encrypt_block_mut(GenericArray::from_mut_slice(block));
        }
        STANDARD.encode(buf)
    }

    #[test]
    fn published_vector_decrypts_to_a_293_byte_text_message_saying_hello() {
        let message = crypto().decrypt(PUBLISHED_ENCRYPT).unwrap();
        assert_eq!(message.len(), 293);
        assert!(message.contains("<MsgType><![CDATA[text]]></MsgType>"));
        assert!(message.contains("<Content><![CDATA[hello]]></Content>"));
    }

    #[test]
    fn published_vector_carries_21_bytes_of_padding() {
        // 16 prefix + 4 length + 293 message + 18 AppId = 331; 331 + 21 = 352 = 11 * 32.
        let c = crypto();
        let mut buf = STANDARD.decode(PUBLISHED_ENCRYPT).unwrap();
        let mut dec = cbc::Decryptor::<Aes256>::inner_iv_init(
            c.cipher.clone(),
            GenericArray::from_slice(&c.iv),
        );
        for block in buf.chunks_exact_mut(AES_BLOCK) {
            dec.decrypt_block_mut(GenericArray::from_mut_slice(block));
        }
        assert_eq!(buf.last(), Some(&21));
        assert_eq!(unpadded_len(&buf).unwrap(), buf.len() - 21);
    }

    #[test]
    fn published_vector_encrypts_with_a_fixed_prefix() {
        assert_eq!(
            crypto().encrypt_with_prefix(b"aaaabbbbccccdddd", "我是中文abcd123"),
            "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
        );
    }

    #[test]
    fn encrypt_then_decrypt_round_trips_and_uses_a_fresh_prefix_each_time() {
        let c = crypto();
        let text = "<xml><Content><![CDATA[😀\n]]]]><![CDATA[>]]></Content></xml>";
        let a = c.encrypt(text);
        let b = c.encrypt(text);
        assert_ne!(a, b);
        assert_eq!(c.decrypt(&a).unwrap(), text);
        assert_eq!(c.decrypt(&b).unwrap(), text);
    }

    #[test]
    fn every_frame_length_pads_to_a_multiple_of_32_and_round_trips() {
        let c = crypto();
        for len in 0..70 {
            let text = "x".repeat(len);
            let encrypted = c.encrypt_with_prefix(&[7; 16], &text);
            assert_eq!(STANDARD.decode(&encrypted).unwrap().len() % PAD_BLOCK, 0);
            assert_eq!(c.decrypt(&encrypted).unwrap(), text);
        }
    }

    #[test]
    fn another_accounts_app_id_is_refused() {
        let other = MessageCrypto::new(KEY, "wx0000000000000000").unwrap();
        assert_eq!(
            other.decrypt(PUBLISHED_ENCRYPT),
            Err(CryptoError::AppIdMismatch)
        );
    }

    #[test]
    fn malformed_ciphertexts_are_refused_with_a_reason() {
        let c = crypto();
        assert_eq!(c.decrypt("not base64!"), Err(CryptoError::Base64));
        assert_eq!(c.decrypt(""), Err(CryptoError::CiphertextLength(0)));
        assert_eq!(
            c.decrypt(&STANDARD.encode([0u8; 20])),
            Err(CryptoError::CiphertextLength(20))
        );
        // Cut the last block: the padding byte is now garbage.
        let mut raw = STANDARD.decode(PUBLISHED_ENCRYPT).unwrap();
        raw.truncate(raw.len() - 16);
        assert!(c.decrypt(&STANDARD.encode(&raw)).is_err());
    }

    #[test]
    fn padding_values_outside_1_to_32_or_uneven_are_refused() {
        let mut frame = vec![0u8; 64];
        frame[63] = 0;
        assert_eq!(
            crypto().decrypt(&encrypt_raw(&frame)),
            Err(CryptoError::Padding)
        );
        frame[63] = 33;
        assert_eq!(
            crypto().decrypt(&encrypt_raw(&frame)),
            Err(CryptoError::Padding)
        );
        // Claims 3 bytes of padding but the bytes before differ.
        frame[61..].copy_from_slice(&[3, 2, 3]);
        assert_eq!(
            crypto().decrypt(&encrypt_raw(&frame)),
            Err(CryptoError::Padding)
        );
    }

    #[test]
    fn a_declared_length_beyond_the_frame_is_refused() {
        let mut frame = vec![0u8; 32];
        frame[16..20].copy_from_slice(&1000u32.to_be_bytes());
        frame[20..].fill(12);
        assert_eq!(
            crypto().decrypt(&encrypt_raw(&frame)),
            Err(CryptoError::Frame)
        );
    }

    #[test]
    fn keys_of_the_wrong_length_or_alphabet_are_refused_without_echoing_them() {
        let err = MessageCrypto::new("short", APP_ID).unwrap_err();
        assert_eq!(err, CryptoError::KeyLength(5));
        let bad = "!".repeat(43);
        let err = MessageCrypto::new(&bad, APP_ID).unwrap_err();
        assert_eq!(err, CryptoError::KeyEncoding);
        assert!(!err.to_string().contains(&bad));
        assert_eq!(
            MessageCrypto::new(KEY, "").unwrap_err(),
            CryptoError::EmptyAppId
        );
    }

    #[test]
    fn a_bad_keys_error_names_the_allowed_characters() {
        let text = CryptoError::KeyEncoding.to_string();
        assert!(
            text.contains("A-Z") && text.contains("a-z") && text.contains("0-9"),
            "{text}"
        );
    }

    #[test]
    fn generated_keys_are_43_alphanumerics_that_decode_strictly_and_differ() {
        let strict = GeneralPurpose::new(&alphabet::STANDARD, GeneralPurposeConfig::new());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let key = generate_encoding_aes_key().unwrap();
            assert_eq!(key.len(), ENCODING_AES_KEY_LEN, "{key}");
            assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
            assert_eq!(strict.decode(format!("{key}=")).unwrap().len(), 32, "{key}");
            let crypto = MessageCrypto::new(&key, APP_ID).unwrap();
            assert_eq!(crypto.decrypt(&crypto.encrypt("hi")).unwrap(), "hi");
            assert!(seen.insert(key));
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let shown = format!("{:?}", crypto());
        assert!(shown.contains(APP_ID) && shown.contains("***"));
        assert!(!shown.contains("abcdefgh"));
    }
}

//! WeChat request signatures: the lowercase hex SHA-1 of the lexicographically sorted parts,
//! concatenated. The server-URL check signs `[token, timestamp, nonce]`; safe mode's
//! `msg_signature` also signs the `Encrypt` payload. The JS-SDK's `wx.config` signature
//! ([`jssdk_signature`]) is another SHA-1, over a fixed `key=value` string.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// The signature WeChat computes over `parts`: hex SHA-1 of the sorted parts, concatenated.
pub fn sign(parts: &[&str]) -> String {
    hex::encode(digest(parts))
}

/// Whether `expected_hex` is the signature of `parts`, compared in constant time so that a
/// forger learns nothing from how long a wrong guess took.
pub fn verify(expected_hex: &str, parts: &[&str]) -> bool {
    let mut actual = [0u8; 40];
    // Encoding 20 bytes into 40 hex digits cannot fail; a mismatch would simply not verify.
    if hex::encode_to_slice(digest(parts), &mut actual).is_err() {
        return false;
    }
    actual.ct_eq(expected_hex.as_bytes()).into()
}

fn digest(parts: &[&str]) -> [u8; 20] {
    // At most four parts: sorting a small vector of borrowed slices costs nothing worth avoiding.
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut hasher = Sha1::new();
    for part in sorted {
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// WeChat's JS-SDK signature: the hex SHA-1 of
/// `jsapi_ticket=…&noncestr=…&timestamp=…&url=…`, where `url` is the page URL without its
/// `#fragment` (callers strip it; this function signs exactly what it is given).
pub fn jssdk_signature(ticket: &str, nonce_str: &str, timestamp: i64, url: &str) -> String {
    let mut hasher = Sha1::new();
    hasher.update(
        format!("jsapi_ticket={ticket}&noncestr={nonce_str}&timestamp={timestamp}&url={url}")
            .as_bytes(),
    );
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_server_verification_vector_signs_as_wechat_does() {
        assert_eq!(
            sign(&["test", "1410685589", "test"]),
            "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
        );
    }

    #[test]
    fn published_safe_mode_msg_signature_vector_verifies() {
        let encrypt = "rTNFcsut4LfGuAFKEUVVpwcaCOTJzOd9twZdIW910jb3k+iicx2uvhttIZ3Qg9Qgty3BEF2xbOrz6boTfb30dMomcgrkTqdFPwnhqbk+kIQ7rZiwny9D7NUrTgA5kpX3KsZvrXzUZyP2x9YOlxbgm572lmxKvM7HAQQhIQ/p6HBmoY30bGXFK0BtIu1pW9TjhOYrLQoU18nWYjWqDA1ynkmOytpv7QRI1P1+0NoxL0q2zO1DgeSvnE8CZGo/o5Ap/WHK5W2RAsinpzN4/LjPnmB6U01I5XCoJoC0GK/yMZycd2Oh8Nq6+wBkC1U85oy0ktOY4nLvsQMLrourmMGdZHuTbqpeJ8Ao/5PRYJ+WBvRUwPfGKBL2+2IKZF49vAJqkcGWSHGE76ZN2erXeuNazf/o9o3lIE3q739o4c8t9QGPe31GT2Go/rOz1BsrASwvauNulCh+++yz+CQzBIuikA==";
        assert!(verify(
            "4f3ad57b6989f09f4eb392acce4f9e93942ed890",
            &["pamtest", "1458300676", "260774613", encrypt]
        ));
    }

    #[test]
    fn order_of_parts_does_not_matter() {
        assert_eq!(sign(&["b", "a", "c"]), sign(&["c", "b", "a"]));
    }

    #[test]
    fn wrong_truncated_or_uppercase_signatures_do_not_verify() {
        let parts = ["test", "1410685589", "test"];
        let good = "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff";
        assert!(verify(good, &parts));
        assert!(!verify("f21891de399b4e33a1a93c9a7b8a8fffb5a443fe", &parts));
        assert!(!verify(&good[..39], &parts));
        assert!(!verify("", &parts));
        assert!(!verify(&format!("{good}0"), &parts));
        assert!(!verify(&good.to_uppercase(), &parts));
    }

    #[test]
    fn signature_matches_wechats_published_example() {
        assert_eq!(
            jssdk_signature(
                "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
                "Wm3WZYTPz0wzccnW",
                1414587457,
                "http://mp.weixin.qq.com?params=value",
            ),
            "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
        );
    }
}

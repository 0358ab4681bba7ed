//! Where a finished sign-in may send the browser: a same-site relative path, or a URL on an
//! allow-listed origin. Everything else is refused, so `/oauth/authorize` is never an open redirect.
//!
//! Browsers are generous when they parse URLs (`\` reads as `/`, tabs and newlines are dropped,
//! `//host` is another site, percent-escapes get decoded by some hops), so the rules are strict
//! and are checked on the value and on each percent-decoded layer of it.

use percent_encoding::{CONTROLS, percent_decode_str, utf8_percent_encode};
use wechat_protocol::origin::{Origin, split_origin};

/// Longer values are refused; real return paths are short.
pub const MAX_RETURN_TO_LEN: usize = 2048;
/// How many layers of percent-encoding are peeled off and checked.
const DECODE_LAYERS: usize = 4;

/// Why a `return_to` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReturnToError {
    #[error("return_to is empty")]
    Empty,
    #[error("return_to is longer than {MAX_RETURN_TO_LEN} bytes")]
    TooLong,
    #[error("return_to contains a control character, whitespace or a backslash")]
    ForbiddenCharacter,
    #[error("return_to starts with // (another site)")]
    ProtocolRelative,
    #[error("return_to is neither a relative path nor an http(s) URL")]
    NotAPathOrUrl,
    #[error("return_to names an origin that is not allowed")]
    OriginNotAllowed,
}

/// A checked `return_to`: safe to put in a `Location` header as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    /// `/`, where a sign-in returns when the page did not say.
    pub fn root() -> Self {
        Self("/".into())
    }

    /// Accept `raw` (already query-decoded) if it is a relative path or a URL on an allowed origin.
    pub fn parse(raw: &str, allowed: &[Origin]) -> Result<Self, ReturnToError> {
        if raw.is_empty() {
            return Err(ReturnToError::Empty);
        }
        if raw.len() > MAX_RETURN_TO_LEN {
            return Err(ReturnToError::TooLong);
        }
        let mut layer = raw.to_string();
        for _ in 0..DECODE_LAYERS {
            check_layer(&layer)?;
            let decoded = percent_decode_str(&layer).decode_utf8_lossy().into_owned();
            if decoded == layer {
                break;
            }
            layer = decoded;
        }
        check_layer(&layer)?;

        if raw.starts_with('/') {
            // Checked above on every layer: it does not start with `//` or `/\`.
        } else {
            let (origin, _) = split_origin(raw).map_err(|_| ReturnToError::NotAPathOrUrl)?;
            if !allowed.contains(&origin) {
                return Err(ReturnToError::OriginNotAllowed);
            }
        }
        // Non-ASCII stays meaningful but must be escaped to be a valid header value.
        Ok(Self(utf8_percent_encode(raw, CONTROLS).to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_layer(layer: &str) -> Result<(), ReturnToError> {
    if layer
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err(ReturnToError::ForbiddenCharacter);
    }
    if layer.starts_with("//") {
        return Err(ReturnToError::ProtocolRelative);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed() -> Vec<Origin> {
        vec![
            Origin::parse("https://shop.example").unwrap(),
            Origin::parse("http://localhost:3000").unwrap(),
        ]
    }

    fn parse(raw: &str) -> Result<ReturnTo, ReturnToError> {
        ReturnTo::parse(raw, &allowed())
    }

    #[test]
    fn relative_paths_are_accepted() {
        for raw in ["/", "/page", "/a/b?x=1&y=%2F#top", "/a:b", "/x/%E4%B8%AD"] {
            assert_eq!(parse(raw).unwrap().as_str(), raw);
        }
    }

    #[test]
    fn non_ascii_paths_are_escaped_for_the_location_header() {
        assert_eq!(parse("/页面").unwrap().as_str(), "/%E9%A1%B5%E9%9D%A2");
    }

    #[test]
    fn open_redirect_attempts_are_refused() {
        for raw in [
            "//evil.example",
            "///evil.example",
            "https://evil.example",
            "http://evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "%2F%2Fevil.example",
            "/%2F%2Fevil.example",
            "/%5Cevil.example",
            "%252F%252Fevil.example",
            "/%252F%252Fevil.example",
            "https:evil.example",
            "https:/evil.example",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,hi",
            "/\t/evil.example",
            "/\n/evil.example",
            "/%09/evil.example",
            " /page",
            "evil.example",
            "https://shop.example@evil.example",
            "https://shop.example.evil.example",
            "https://evil.example#https://shop.example",
            "https://shop.example%2F@evil.example",
            "https://shop.example:443\\@evil.example",
            "http://shop.example",
            "",
        ] {
            assert!(parse(raw).is_err(), "{raw:?} must be refused");
        }
        assert_eq!(
            parse(&format!("/{}", "a".repeat(MAX_RETURN_TO_LEN))),
            Err(ReturnToError::TooLong)
        );
    }

    #[test]
    fn urls_on_allowed_origins_are_accepted() {
        for raw in [
            "https://shop.example",
            "https://shop.example/cart?id=1",
            "HTTPS://SHOP.EXAMPLE/cart",
            "https://shop.example:443/x",
            "http://localhost:3000/dev",
        ] {
            assert_eq!(parse(raw).unwrap().as_str(), raw);
        }
    }
}

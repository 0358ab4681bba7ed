//! Where a finished sign-in may send the browser: a same-site relative path, or a URL on an
//! allow-listed origin. Everything else is refused, so `/oauth/authorize` is never an open redirect.
//!
//! Browsers are generous when they parse URLs (`\` reads as `/`, tabs and newlines are dropped,
//! `//host` is another site, percent-escapes get decoded by some hops), so the rules are strict
//! and are checked on the value and on each percent-decoded layer of it.

use std::fmt;

use percent_encoding::{CONTROLS, percent_decode_str, utf8_percent_encode};

/// Longer values are refused; real return paths are short.
pub const MAX_RETURN_TO_LEN: usize = 2048;
/// How many layers of percent-encoding are peeled off and checked.
const DECODE_LAYERS: usize = 4;

/// An origin `scheme://host[:port]`: lower-case, `http` or `https`, default port left out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin(String);

impl Origin {
    /// Parse exactly `scheme://host[:port]` (no path, query, fragment or credentials).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (origin, rest) = split_origin(raw)?;
        if !rest.is_empty() {
            return Err(format!(
                "{raw:?} is not scheme://host[:port] (found {rest:?} after the host)"
            ));
        }
        Ok(origin)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the host is `localhost`, `127.0.0.1` or `[::1]`: the only hosts plain http is
    /// accepted for (development, the fake WeChat API).
    pub fn is_loopback(&self) -> bool {
        let host_and_port = self
            .0
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let host = match host_and_port.strip_prefix('[') {
            Some(v6) => v6.split(']').next().map(|h| format!("[{h}]")),
            None => host_and_port.split(':').next().map(str::to_string),
        };
        matches!(host.as_deref(), Some("localhost" | "127.0.0.1" | "[::1]"))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The origin at the start of an absolute `http(s)://` URL and what follows it (path, query, fragment).
pub(crate) fn split_origin(raw: &str) -> Result<(Origin, &str), String> {
    let (scheme, after_scheme) = raw
        .split_once("://")
        .ok_or_else(|| format!("{raw:?} does not start with http:// or https://"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err(format!("{raw:?} is not an http or https URL")),
    };
    let end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let (authority, rest) = after_scheme.split_at(end);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{raw:?} has an unclosed IPv6 host"))?;
        if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(format!("{raw:?} has an invalid IPv6 host"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("{raw:?} has junk after the IPv6 host"))?,
            ),
        };
        (format!("[{}]", inside.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        // Letters, digits, dots and hyphens only: no credentials (`@`), escapes (`%`) or `\`.
        let valid = !host.is_empty()
            && !host.starts_with(['.', '-'])
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !valid {
            return Err(format!("{raw:?} has an invalid host"));
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) => {
            let number: u16 = p
                .parse()
                .ok()
                .filter(|n| *n > 0 && p.chars().all(|c| c.is_ascii_digit()))
                .ok_or_else(|| format!("{raw:?} has an invalid port"))?;
            (number != default_port).then_some(number)
        }
    };
    let origin = match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    };
    Ok((Origin(origin), rest))
}

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

    #[test]
    fn origins_are_normalised_and_validated() {
        assert_eq!(
            Origin::parse("HTTPS://Shop.Example:443").unwrap().as_str(),
            "https://shop.example"
        );
        assert_eq!(
            Origin::parse("http://[::1]:8080").unwrap().as_str(),
            "http://[::1]:8080"
        );
        for bad in [
            "shop.example",
            "ftp://shop.example",
            "https://shop.example/",
            "https://shop.example/path",
            "https://user@shop.example",
            "https://shop.example:0",
            "https://shop.example:99999",
            "https://",
            "https://shop_example",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad:?}");
        }
    }
}

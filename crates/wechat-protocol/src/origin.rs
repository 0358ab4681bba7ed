//! URL origins (`scheme://host[:port]`), the unit WeChat's domain settings and browsers' CORS
//! speak in: the JS-SDK safe domains, the allowed return origins of a sign-in, the https-only
//! rule for every base URL that carries a secret.

use std::fmt;

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
pub fn split_origin(raw: &str) -> Result<(Origin, &str), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

//! Which page URLs get a signature: an absolute http(s) URL on one of the account's JS-SDK
//! domains, signed exactly as the page will present it to `wx.config` (its `location.href`
//! without the `#fragment`).

use wechat_protocol::origin::{Origin, split_origin};

/// Longer URLs are refused; WeChat's own limit for page URLs is far below this.
pub const MAX_PAGE_URL_LEN: usize = 4096;

/// Why a page URL is not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageUrlError {
    #[error("url parameter is missing")]
    Missing,
    #[error("url is longer than {MAX_PAGE_URL_LEN} bytes")]
    TooLong,
    #[error("url contains whitespace or a control character (send location.href as is)")]
    ForbiddenCharacter,
    #[error("url is not an absolute http(s) URL: {0}")]
    NotAUrl(String),
    #[error("{0} is not one of the account's JS-SDK domains (JSSDK_ALLOWED_ORIGINS)")]
    OriginNotAllowed(Origin),
}

/// The string to sign for `raw` (the page's URL, query-decoded): `raw` up to its first `#`, if
/// its origin is in `allowed`. Nothing else is normalised: the signature must cover the very
/// string the page's `wx.config` is checked against.
pub fn signable(raw: &str, allowed: &[Origin]) -> Result<String, PageUrlError> {
    if raw.is_empty() {
        return Err(PageUrlError::Missing);
    }
    if raw.len() > MAX_PAGE_URL_LEN {
        return Err(PageUrlError::TooLong);
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(PageUrlError::ForbiddenCharacter);
    }
    let without_fragment = raw.split('#').next().unwrap_or_default();
    let (origin, _) = split_origin(without_fragment).map_err(PageUrlError::NotAUrl)?;
    if !allowed.contains(&origin) {
        return Err(PageUrlError::OriginNotAllowed(origin));
    }
    Ok(without_fragment.to_string())
}

/// The origin of the page `raw` (for a caller that signs on any domain, such as `wx jssdk sign`
/// without `JSSDK_ALLOWED_ORIGINS`).
pub fn page_origin(raw: &str) -> Result<Origin, PageUrlError> {
    let without_fragment = raw.split('#').next().unwrap_or_default();
    split_origin(without_fragment)
        .map(|(origin, _)| origin)
        .map_err(PageUrlError::NotAUrl)
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

    #[test]
    fn the_fragment_is_cut_and_the_rest_signed_as_given() {
        assert_eq!(
            signable(
                "https://shop.example/a/b?x=1&y=%E4%BD%A0#/route?z=2",
                &allowed()
            ),
            Ok("https://shop.example/a/b?x=1&y=%E4%BD%A0".to_string())
        );
        assert_eq!(
            signable("https://SHOP.example:443/", &allowed()),
            Ok("https://SHOP.example:443/".to_string())
        );
        assert_eq!(
            signable("http://localhost:3000/demo#", &allowed()),
            Ok("http://localhost:3000/demo".to_string())
        );
    }

    #[test]
    fn pages_on_other_origins_are_refused_with_the_origin_named() {
        let err = signable("https://evil.example/shop.example", &allowed()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "https://evil.example is not one of the account's JS-SDK domains (JSSDK_ALLOWED_ORIGINS)"
        );
        for other in [
            "http://shop.example/",
            "https://shop.example:8443/",
            "https://shop.example.evil.example/",
            "https://shop.example@evil.example/",
            "http://localhost:3001/",
        ] {
            assert!(signable(other, &allowed()).is_err(), "{other}");
        }
    }

    #[test]
    fn malformed_urls_are_refused() {
        assert_eq!(signable("", &allowed()), Err(PageUrlError::Missing));
        assert_eq!(
            signable("https://shop.example/a b", &allowed()),
            Err(PageUrlError::ForbiddenCharacter)
        );
        assert_eq!(
            signable("https://shop.example/\n", &allowed()),
            Err(PageUrlError::ForbiddenCharacter)
        );
        let long = format!("https://shop.example/{}", "a".repeat(MAX_PAGE_URL_LEN));
        assert_eq!(signable(&long, &allowed()), Err(PageUrlError::TooLong));
        for bad in [
            "/relative",
            "//shop.example/",
            "javascript:alert(1)",
            "ftp://shop.example/",
        ] {
            assert!(
                matches!(signable(bad, &allowed()), Err(PageUrlError::NotAUrl(_))),
                "{bad}"
            );
        }
    }
}

//! Small helpers shared by every HTTP handler: reading the query and building responses.
//! Handlers work on `lambda_http::Request` so API Gateway, tests and the local server call the same code.

use std::collections::HashMap;

use lambda_http::http::{StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};

/// Query parameters, decoded. API Gateway HTTP API requests carry the raw query string in the URI;
/// the extension filled by `lambda_http` is the fallback.
pub fn query(req: &Request) -> HashMap<String, String> {
    match req.uri().query() {
        Some(q) if !q.is_empty() => form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        _ => req
            .query_string_parameters()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The request body as bytes, whether API Gateway delivered it as text or base64 binary.
pub fn body_bytes(req: &Request) -> &[u8] {
    req.body().as_ref()
}

/// A cookie value from the `Cookie` header(s), if present.
pub fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn respond(status: StatusCode, content_type: &str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        resp.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    resp
}

pub fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", Body::Text(body.into()))
}

pub fn xml(body: impl Into<String>) -> Response<Body> {
    respond(
        StatusCode::OK,
        "application/xml; charset=utf-8",
        Body::Text(body.into()),
    )
}

/// The font stack of every HTML page (the demo page, the sign-in error pages). It names a CJK
/// font for each platform (PingFang SC on Apple's, Noto Sans CJK SC on Linux, Microsoft YaHei on
/// Windows), each with Latin letters of its own, so the English lines of a bilingual page are
/// set in the same font as the Chinese ones; with a bare `sans-serif`, Linux picks another font
/// for `lang="en"` text than for Chinese.
pub const FONT_FAMILY: &str = "-apple-system,BlinkMacSystemFont,\"PingFang SC\",\"Noto Sans CJK SC\",\"Microsoft YaHei\",sans-serif";

pub fn html(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    respond(status, "text/html; charset=utf-8", Body::Text(body.into()))
}

/// A JSON answer of any `Serialize` value (typed answers and `json!` alike).
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(body) => respond(status, "application/json", Body::Text(body)),
        // Only a map with non-string keys or a failing custom `Serialize` gets here.
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}

/// A `302 Found` to `location`, uncacheable (OAuth redirects carry one-time values).
pub fn redirect(location: &str) -> Response<Body> {
    let mut resp = respond(StatusCode::FOUND, "text/plain; charset=utf-8", Body::Empty);
    if let Ok(value) = location.parse() {
        resp.headers_mut().insert(header::LOCATION, value);
    }
    if let Ok(value) = "no-store".parse() {
        resp.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    resp
}

/// `raw` as HTML text or attribute value: the five characters that could end either, escaped.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> Request {
        lambda_http::http::Request::builder()
            .uri(uri)
            .header("cookie", "a=1; sid=abc.def ; other=2")
            .body(Body::Empty)
            .unwrap()
    }

    #[test]
    fn query_is_decoded_from_the_uri() {
        let q = query(&request("https://x/wechat?echostr=a%2Bb+c&nonce=1"));
        assert_eq!(q["echostr"], "a+b c");
        assert_eq!(q["nonce"], "1");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let req = request("/");
        assert_eq!(cookie(&req, "sid"), Some("abc.def"));
        assert_eq!(cookie(&req, "missing"), None);
    }

    #[test]
    fn redirect_sets_location_and_no_store() {
        let resp = redirect("/home?a=1");
        assert_eq!(resp.status(), StatusCode::FOUND);
        assert_eq!(resp.headers()[header::LOCATION], "/home?a=1");
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    }
}

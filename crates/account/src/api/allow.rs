//! Which WeChat API paths the `api` function calls for its callers: `API_ALLOWED_PATHS`
//! (comma-separated exact paths), else [`DEFAULT_ALLOWED_PATHS`], and the checks every request
//! passes before a token is read: a method WeChat uses, an exact path (no scheme, host, query,
//! `..`, or anything but `/`-separated path characters), no `access_token` of the caller's own in
//! the query, and no body on a GET.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::config::vars::API_ALLOWED_PATHS;
use crate::config::{ConfigError, Env, optional};

/// What a 服务号's business servers call, and what `wx menu` and `wx notify` need.
pub const DEFAULT_ALLOWED_PATHS: &[&str] = &[
    // Notifications.
    "/cgi-bin/message/template/send",
    "/cgi-bin/message/subscribe/bizsend",
    "/cgi-bin/template/get_all_private_template",
    // Followers.
    "/cgi-bin/user/info",
    "/cgi-bin/user/info/batchget",
    "/cgi-bin/user/get",
    // Parameterised QR codes.
    "/cgi-bin/qrcode/create",
    // The custom menu: reads, and `wx menu apply` / `wx menu delete`.
    "/cgi-bin/menu/get",
    "/cgi-bin/get_current_selfmenu_info",
    "/cgi-bin/menu/create",
    "/cgi-bin/menu/delete",
    // Customer-service messages.
    "/cgi-bin/message/custom/send",
    "/cgi-bin/message/custom/typing",
];

/// The paths the function calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    paths: BTreeSet<String>,
}

impl Default for AllowList {
    fn default() -> Self {
        Self {
            paths: DEFAULT_ALLOWED_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect(),
        }
    }
}

/// Why a request is refused: the caller's mistake, answered (HTTP-style `status`) rather than
/// raised, so it never fires the function's error alarm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    BadPayload(String),
    #[error("method must be GET or POST")]
    Method,
    #[error(
        "path must be an exact WeChat API path such as /cgi-bin/user/info: no scheme, host, query, `..` or empty segment"
    )]
    Path,
    #[error("{0} is not on this function's allow-list (API_ALLOWED_PATHS)")]
    NotAllowed(String),
    #[error("the query must not carry access_token: the function adds its own")]
    TokenInQuery,
    #[error("a GET has no body")]
    BodyOnGet,
    #[error("{0}")]
    BadBody(String),
    #[error("no receipt is kept for msgid {0} (unknown, another account's, or older than 30 days)")]
    NoReceipt(String),
}

impl Refusal {
    /// The answer's `error`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadPayload(_) => "bad_payload",
            Self::Method => "bad_method",
            Self::Path => "bad_path",
            Self::NotAllowed(_) => "path_not_allowed",
            Self::TokenInQuery => "access_token_in_query",
            Self::BodyOnGet => "body_on_get",
            Self::BadBody(_) => "bad_body",
            Self::NoReceipt(_) => "not_found",
        }
    }

    /// The answer's `status`: 403 for a path the function will not call, 404 for a receipt it
    /// does not keep, 400 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotAllowed(_) => 403,
            Self::NoReceipt(_) => 404,
            _ => 400,
        }
    }
}

/// Whether `path` is a plain absolute path: `/` then segments of letters, digits, `_`, `-` and
/// `.`, none empty, none `.` or `..`.
pub fn is_plain_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    path.len() <= 256
        && rest.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        })
}

impl AllowList {
    /// `API_ALLOWED_PATHS` when set (each entry must be a plain path), else the default list.
    pub fn from_env(env: &impl Env) -> Result<Self, ConfigError> {
        let Some(raw) = optional(env, API_ALLOWED_PATHS) else {
            return Ok(Self::default());
        };
        let mut paths = BTreeSet::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if !is_plain_path(entry) {
                return Err(ConfigError::new(
                    API_ALLOWED_PATHS,
                    format!(
                        "{entry:?} is not an exact path such as /cgi-bin/user/info (no host, query or wildcard)"
                    ),
                ));
            }
            paths.insert(entry.to_string());
        }
        if paths.is_empty() {
            return Err(ConfigError::new(
                API_ALLOWED_PATHS,
                "names no path (unset it for the default list)",
            ));
        }
        Ok(Self { paths })
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.paths.iter().map(String::as_str)
    }

    pub fn allows(&self, path: &str) -> bool {
        self.paths.contains(path)
    }

    /// Every check of a call, in the order a caller would fix them.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        query: &BTreeMap<String, String>,
        body: Option<&Value>,
    ) -> Result<(), Refusal> {
        if !matches!(method, "GET" | "POST") {
            return Err(Refusal::Method);
        }
        if !is_plain_path(path) {
            return Err(Refusal::Path);
        }
        if !self.allows(path) {
            return Err(Refusal::NotAllowed(path.to_string()));
        }
        if query.keys().any(|k| k.eq_ignore_ascii_case("access_token")) {
            return Err(Refusal::TokenInQuery);
        }
        if method == "GET" && body.is_some_and(|b| !b.is_null()) {
            return Err(Refusal::BodyOnGet);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_plain_exact_paths_pass() {
        for ok in [
            "/cgi-bin/user/info",
            "/cgi-bin/message/template/send",
            "/a.b/c-d_e",
        ] {
            assert!(is_plain_path(ok), "{ok}");
        }
        for bad in [
            "cgi-bin/user/info",
            "https://api.weixin.qq.com/cgi-bin/user/info",
            "//evil.example/cgi-bin/user/info",
            "/cgi-bin/../sns/userinfo",
            "/cgi-bin/./user/info",
            "/cgi-bin/user/info?access_token=x",
            "/cgi-bin/user/info#x",
            "/cgi-bin/user/info/",
            "/cgi-bin/user%2Finfo",
            "/cgi-bin/user info",
            "",
            "/",
        ] {
            assert!(!is_plain_path(bad), "{bad}");
        }
    }

    #[test]
    fn each_mistake_is_refused_with_its_own_code_and_status() {
        let allow = AllowList::default();
        let none = BTreeMap::new();
        let check = |method, path, query: &BTreeMap<String, String>, body: Option<&Value>| {
            allow
                .check(method, path, query, body)
                .map_err(|r| (r.code(), r.status()))
        };
        assert_eq!(check("GET", "/cgi-bin/user/info", &none, None), Ok(()));
        assert_eq!(
            check("DELETE", "/cgi-bin/user/info", &none, None),
            Err(("bad_method", 400))
        );
        assert_eq!(
            check("GET", "/cgi-bin/../x", &none, None),
            Err(("bad_path", 400))
        );
        assert_eq!(
            check("POST", "/cgi-bin/clear_quota", &none, None),
            Err(("path_not_allowed", 403))
        );
        let with_token = BTreeMap::from([("ACCESS_TOKEN".to_string(), "x".to_string())]);
        assert_eq!(
            check("GET", "/cgi-bin/user/info", &with_token, None),
            Err(("access_token_in_query", 400))
        );
        assert_eq!(
            check("GET", "/cgi-bin/user/info", &none, Some(&json!({"a": 1}))),
            Err(("body_on_get", 400))
        );
    }

    #[test]
    fn the_variable_replaces_the_list_and_a_pattern_is_refused_naming_it() {
        let allow = AllowList::from_env(&[(
            API_ALLOWED_PATHS,
            " /cgi-bin/user/info , /cgi-bin/user/get,",
        )])
        .unwrap();
        assert_eq!(
            allow.paths().collect::<Vec<_>>(),
            ["/cgi-bin/user/get", "/cgi-bin/user/info"]
        );
        assert!(!allow.allows("/cgi-bin/message/template/send"));
        for bad in [
            "/cgi-bin/*",
            "https://api.weixin.qq.com/cgi-bin/user/get",
            ",",
        ] {
            let err = AllowList::from_env(&[(API_ALLOWED_PATHS, bad)]).unwrap_err();
            assert_eq!(err.variable, API_ALLOWED_PATHS, "{bad}");
        }
        assert_eq!(
            AllowList::from_env(&[("OTHER", "x")]).unwrap(),
            AllowList::default()
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever a caller sends as the path, the check answers (never panics), and what
            /// passes is one of the allowed paths exactly: nothing with a host, a query, a
            /// traversal or an encoded character reaches WeChat.
            #[test]
            fn a_path_passes_only_when_it_is_an_allowed_plain_path(path in "\\PC{0,80}|/cgi-bin/[a-z./%?#_-]{0,40}") {
                let allow = AllowList::default();
                let query = BTreeMap::new();
                if allow.check("POST", &path, &query, None).is_ok() {
                    prop_assert!(DEFAULT_ALLOWED_PATHS.contains(&path.as_str()));
                    prop_assert!(is_plain_path(&path));
                }
            }

            /// A plain path never holds what a URL would read as another host, a query or a
            /// traversal.
            #[test]
            fn a_plain_path_has_no_host_query_or_traversal(path in "\\PC{0,80}") {
                if is_plain_path(&path) {
                    prop_assert!(path.starts_with('/') && !path.starts_with("//"));
                    prop_assert!(!path.contains(['?', '#', '%', '\\', ':', '@']));
                    prop_assert!(!path.split('/').any(|s| s == ".."));
                }
            }
        }
    }
}

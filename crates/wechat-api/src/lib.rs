//! The client to WeChat's API: typed calls over a transport port.
//!
//! - [`Endpoint`]: one WeChat call as one type, its path, method and answer type. A `GET` sends
//!   the request's fields as the query, a `POST` as the JSON body; [`WeChatHttp::call_with_token`]
//!   adds the `access_token` query parameter for the calls that need one.
//! - [`WeChatHttp`]: encodes requests from `Serialize` types and decodes answers into
//!   `DeserializeOwned` types; WeChat's `{"errcode": N, "errmsg": "..."}` (with HTTP 200) becomes
//!   [`ApiError::WeChat`]. Built once per container in `main` and cloned freely.
//! - [`WeChatTransport`]: the port that moves bytes ([`ReqwestTransport`] in production, an
//!   in-process double in domain tests).
//! - [`errcode`]: the one table of WeChat's error codes.
//!
//! Error texts never contain the request URL, because some URLs carry the app secret.

pub mod errcode;
mod transport;

#[cfg(any(test, feature = "double"))]
pub mod double;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wechat_protocol::secret::Secret;

pub use errcode::ErrClass;
pub use transport::error_chain;
pub use transport::{
    ClientBuildError, Method, Pending, ReqwestTransport, WeChatTransport, WireRequest, WireResponse,
};

/// WeChat's API base URL (`WECHAT_API_BASE` overrides it: a proxy, the fake WeChat API).
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// Why a call to WeChat did not produce a usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("WeChat answered errcode {errcode}: {errmsg}")]
    WeChat { errcode: i64, errmsg: String },
    #[error("WeChat did not answer in time")]
    Timeout,
    #[error("WeChat answered HTTP {0}")]
    HttpStatus(u16),
    /// The whole cause chain (DNS, connect, TLS), never the URL.
    #[error("could not reach WeChat: {0}")]
    Transport(String),
    #[error("WeChat's answer was not the expected JSON: {0}")]
    Malformed(String),
    #[error("the request to WeChat could not be encoded: {0}")]
    Encode(String),
}

impl ApiError {
    /// The WeChat error code, when WeChat answered with one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            ApiError::WeChat { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// How to react to WeChat's error code (`None` when WeChat did not answer one).
    pub fn class(&self) -> Option<ErrClass> {
        self.errcode().map(errcode::class)
    }

    /// 40001 (invalid credential), 40014 (invalid access_token), 42001 (access_token expired):
    /// the token used for the call is no longer good and must be reported stale.
    pub fn is_access_token_invalid(&self) -> bool {
        self.class() == Some(ErrClass::AccessTokenInvalid)
    }
}

/// One WeChat API call. Adding a call is adding one request type (its fields are the query of a
/// `GET` or the body of a `POST`) and one answer type.
pub trait Endpoint: Serialize + Sync {
    const METHOD: Method;
    /// The path under the API base, e.g. `/cgi-bin/stable_token`.
    const PATH: &'static str;
    /// The answer when `errcode` is absent or 0.
    type Answer: DeserializeOwned;
}

/// The answer of calls whose success carries nothing but `{"errcode": 0, "errmsg": "ok"}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Ack {}

/// WeChat's API for one app's calls: the transport built in `main`, shared by clones.
#[derive(Clone)]
pub struct WeChatHttp {
    transport: Arc<dyn WeChatTransport>,
}

impl fmt::Debug for WeChatHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeChatHttp")
    }
}

impl WeChatHttp {
    /// The real client for `base`, with `timeout` per call; fails rather than run without one.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, ClientBuildError> {
        Ok(Self::with_transport(Arc::new(ReqwestTransport::new(
            base, timeout,
        )?)))
    }

    /// Over any transport (an in-process double in tests).
    pub fn with_transport(transport: Arc<dyn WeChatTransport>) -> Self {
        Self { transport }
    }

    /// Make the call `request` describes.
    pub async fn call<E: Endpoint>(&self, request: &E) -> Result<E::Answer, ApiError> {
        self.call_with(request, None).await
    }

    /// Make the call with `access_token` as the `access_token` query parameter.
    pub async fn call_with_token<E: Endpoint>(
        &self,
        request: &E,
        access_token: &Secret<String>,
    ) -> Result<E::Answer, ApiError> {
        self.call_with(request, Some(access_token)).await
    }

    async fn call_with<E: Endpoint>(
        &self,
        request: &E,
        access_token: Option<&Secret<String>>,
    ) -> Result<E::Answer, ApiError> {
        let token = access_token.map(|t| [("access_token", t.expose().as_str())]);
        let token = token.as_ref().map_or(&[][..], |t| &t[..]);
        match E::METHOD {
            Method::Get => {
                let mut query = form(request)?;
                let extra = form(token)?;
                if !query.is_empty() && !extra.is_empty() {
                    query.push('&');
                }
                query.push_str(&extra);
                self.send(Method::Get, E::PATH, query, None).await
            }
            Method::Post => self.post_json(E::PATH, token, request).await,
        }
    }

    /// Send `request` as it is and hand back WeChat's status and body undecoded: for callers that
    /// relay WeChat's answer (the `api` function), not for typed calls.
    pub async fn send_raw(&self, request: WireRequest) -> Result<WireResponse, ApiError> {
        self.transport.send(request).await
    }

    /// `GET {base}{path}?{query}`, decoded as `T`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &(impl Serialize + ?Sized),
    ) -> Result<T, ApiError> {
        self.send(Method::Get, path, form(query)?, None).await
    }

    /// `POST {base}{path}?{query}` with `body` as JSON, decoded as `T`.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, ApiError> {
        let body = serde_json::to_vec(body).map_err(|e| ApiError::Encode(e.to_string()))?;
        self.send(Method::Post, path, form(query)?, Some(body))
            .await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: String,
        json_body: Option<Vec<u8>>,
    ) -> Result<T, ApiError> {
        let request = WireRequest {
            method,
            path: path.to_string(),
            query,
            json_body,
        };
        let response = self.transport.send(request).await?;
        if !(200..300).contains(&response.status) {
            return Err(ApiError::HttpStatus(response.status));
        }
        decode(&response.body)
    }
}

fn form(fields: &(impl Serialize + ?Sized)) -> Result<String, ApiError> {
    serde_urlencoded::to_string(fields).map_err(|e| ApiError::Encode(e.to_string()))
}

/// WeChat's error fields, present on failures (and as `errcode: 0` on some successes).
#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

/// Decode a WeChat answer body: a JSON object, with a non-zero `errcode` meaning failure.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::Malformed("not a JSON object".into()));
    }
    let status: Status = serde_json::from_slice(bytes).map_err(malformed)?;
    if status.errcode != 0 {
        return Err(ApiError::WeChat {
            errcode: status.errcode,
            errmsg: status.errmsg,
        });
    }
    serde_json::from_slice(bytes).map_err(malformed)
}

/// A decoding failure, described without echoing any value of the answer (it may hold a token).
fn malformed(e: serde_json::Error) -> ApiError {
    let text = e.to_string();
    let what = if text.starts_with("missing field") {
        // Names the field only, e.g. "missing field `access_token` at line 1 column 20".
        return ApiError::Malformed(text);
    } else if e.is_data() {
        "a field has the wrong type or value"
    } else {
        "not valid JSON"
    };
    ApiError::Malformed(format!("{what} at line {} column {}", e.line(), e.column()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IgnoredAny;

    #[test]
    fn errcode_zero_or_absent_is_success() {
        assert!(decode::<IgnoredAny>(br#"{"access_token":"t","expires_in":7200}"#).is_ok());
        assert!(decode::<IgnoredAny>(br#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
    }

    #[test]
    fn non_zero_errcode_is_a_typed_error() {
        let err = decode::<IgnoredAny>(br#"{"errcode":40001,"errmsg":"invalid credential"}"#)
            .unwrap_err();
        assert_eq!(err.errcode(), Some(40001));
        assert!(err.is_access_token_invalid());
        assert!(
            !decode::<IgnoredAny>(br#"{"errcode":45009,"errmsg":"limit"}"#)
                .unwrap_err()
                .is_access_token_invalid()
        );
    }

    #[test]
    fn non_json_and_non_object_answers_are_malformed() {
        assert!(matches!(
            decode::<IgnoredAny>(b"<html>"),
            Err(ApiError::Malformed(_))
        ));
        assert!(matches!(
            decode::<IgnoredAny>(b"[1,2]"),
            Err(ApiError::Malformed(_))
        ));
    }

    #[test]
    fn a_wrongly_typed_field_is_malformed_without_echoing_the_value() {
        #[derive(Debug, Deserialize)]
        struct Answer {
            #[allow(dead_code)]
            expires_in: i64,
        }
        let err = decode::<Answer>(br#"{"expires_in":"SECRET-ISH"}"#).unwrap_err();
        assert!(matches!(err, ApiError::Malformed(_)));
        assert!(!err.to_string().contains("SECRET-ISH"), "{err}");
        let err = decode::<Answer>(br#"{}"#).unwrap_err();
        assert!(err.to_string().contains("expires_in"), "{err}");
    }
}

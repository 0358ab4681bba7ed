//! The HTTP client to WeChat's API (`WECHAT_API_BASE`, default `https://api.weixin.qq.com`).
//! WeChat answers HTTP 200 with `{"errcode": N, "errmsg": "..."}` on failure; this turns that into
//! a typed error. Error texts never contain the request URL, because some URLs carry the app secret.

use std::time::Duration;

use serde_json::Value;

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
    #[error("could not reach WeChat: {0}")]
    Transport(String),
    #[error("WeChat's answer was not the expected JSON: {0}")]
    Malformed(String),
}

impl ApiError {
    /// The WeChat error code, when WeChat answered with one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            ApiError::WeChat { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// 40001 (invalid credential), 40014 (invalid access_token), 42001 (access_token expired):
    /// the token used for the call is no longer good and must be reported stale.
    pub fn is_access_token_invalid(&self) -> bool {
        matches!(self.errcode(), Some(40001 | 40014 | 42001))
    }
}

/// A configured client for one API base URL. Build it once per container and clone freely.
#[derive(Debug, Clone)]
pub struct WeChatHttp {
    client: reqwest::Client,
    base: String,
}

impl WeChatHttp {
    pub fn new(base: &str, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .build()
            .unwrap_or_default();
        Self {
            client,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET {base}{path}?{query}` and decode WeChat's JSON answer.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ApiError> {
        let request = self.client.get(format!("{}{path}", self.base)).query(query);
        Self::send(request).await
    }

    /// `POST {base}{path}?{query}` with a JSON body and decode WeChat's JSON answer.
    pub async fn post_json(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Result<Value, ApiError> {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .query(query)
            .json(body);
        Self::send(request).await
    }

    async fn send(request: reqwest::RequestBuilder) -> Result<Value, ApiError> {
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(ApiError::HttpStatus(status.as_u16()));
        }
        let bytes = response.bytes().await.map_err(transport_error)?;
        decode(&bytes)
    }
}

/// Decode a WeChat answer body: JSON object, with a non-zero `errcode` meaning failure.
pub fn decode(bytes: &[u8]) -> Result<Value, ApiError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::Malformed(e.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::Malformed("not a JSON object".into()));
    }
    match value.get("errcode").and_then(Value::as_i64) {
        Some(0) | None => Ok(value),
        Some(errcode) => Err(ApiError::WeChat {
            errcode,
            errmsg: value
                .get("errmsg")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }),
    }
}

fn transport_error(e: reqwest::Error) -> ApiError {
    if e.is_timeout() {
        ApiError::Timeout
    } else {
        // `without_url`: the URL may carry the app secret in its query.
        ApiError::Transport(e.without_url().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errcode_zero_or_absent_is_success() {
        assert!(decode(br#"{"access_token":"t","expires_in":7200}"#).is_ok());
        assert!(decode(br#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
    }

    #[test]
    fn non_zero_errcode_is_a_typed_error() {
        let err = decode(br#"{"errcode":40001,"errmsg":"invalid credential"}"#).unwrap_err();
        assert_eq!(err.errcode(), Some(40001));
        assert!(err.is_access_token_invalid());
        assert!(
            !decode(br#"{"errcode":45009,"errmsg":"limit"}"#)
                .unwrap_err()
                .is_access_token_invalid()
        );
    }

    #[test]
    fn non_json_and_non_object_answers_are_malformed() {
        assert!(matches!(decode(b"<html>"), Err(ApiError::Malformed(_))));
        assert!(matches!(decode(b"[1,2]"), Err(ApiError::Malformed(_))));
    }
}

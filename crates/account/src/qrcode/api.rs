//! The QR code side of WeChat's API: `POST /cgi-bin/qrcode/create` ([`CreateQrCode`], answered
//! by [`QrCodeAnswer`]) made through the token client ([`create`]), and the image URL on
//! `mp.weixin.qq.com` that needs no access_token ([`image_url`]).

use serde::{Deserialize, Serialize};
use wechat_api::{Endpoint, Method, WeChatHttp};

use super::scene::{Lifetime, Scene};
use crate::config::vars::WECHAT_MP_BASE;
use crate::config::{ConfigError, Env, base_url};
use crate::token::{CallError, TokenClient, TokenSource};

/// Where WeChat serves QR code images.
pub const DEFAULT_MP_BASE: &str = "https://mp.weixin.qq.com";

/// `POST /cgi-bin/qrcode/create` for a string scene:
/// `{"expire_seconds": N, "action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "…"}}}`
/// (no `expire_seconds` for a permanent `QR_LIMIT_STR_SCENE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateQrCode {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_seconds: Option<u32>,
    pub action_name: &'static str,
    pub action_info: ActionInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionInfo {
    pub scene: SceneInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SceneInfo {
    pub scene_str: Scene,
}

impl CreateQrCode {
    pub fn new(scene: Scene, lifetime: Lifetime) -> Self {
        let expire_seconds = match lifetime {
            Lifetime::Temporary { expire_seconds } => Some(expire_seconds),
            Lifetime::Permanent => None,
        };
        Self {
            expire_seconds,
            action_name: lifetime.action_name(),
            action_info: ActionInfo {
                scene: SceneInfo { scene_str: scene },
            },
        }
    }
}

/// The created code: its `ticket` (exchanged for the image), `expire_seconds` (temporary codes
/// only) and `url` (the content the QR code encodes, to draw it yourself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrCodeAnswer {
    pub ticket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_seconds: Option<u64>,
    pub url: String,
}

impl Endpoint for CreateQrCode {
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/cgi-bin/qrcode/create";
    type Answer = QrCodeAnswer;
}

/// Create the code, through the token client: a rejected token is reported stale once and the
/// call retried once.
pub async fn create<S: TokenSource>(
    http: &WeChatHttp,
    tokens: &TokenClient<S>,
    request: &CreateQrCode,
) -> Result<QrCodeAnswer, CallError> {
    tokens
        .call_with_token(|token| async move { http.call_with_token(request, &token).await })
        .await
}

/// `WECHAT_MP_BASE` (default `https://mp.weixin.qq.com`; `http://` only on loopback, for the
/// fake), without a trailing slash.
pub fn mp_base(env: &impl Env) -> Result<String, ConfigError> {
    base_url(env, WECHAT_MP_BASE, DEFAULT_MP_BASE)
}

/// `<mp_base>/cgi-bin/showqrcode?ticket=<ticket, URL-encoded>`: the image, for anyone holding the
/// ticket (no access_token, no IP whitelist). Tickets are base64 and hold `+`, `/` and `=`,
/// which WeChat's docs say to encode.
pub fn image_url(mp_base: &str, ticket: &str) -> String {
    let ticket: String = form_urlencoded::byte_serialize(ticket.as_bytes()).collect();
    format!("{mp_base}/cgi-bin/showqrcode?ticket={ticket}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_wire_format_is_wechats_json() {
        let scene = Scene::new("poster-a").unwrap();
        let temporary = CreateQrCode::new(scene.clone(), Lifetime::days(7).unwrap());
        assert_eq!(
            serde_json::to_value(temporary).unwrap(),
            json!({"expire_seconds": 604800, "action_name": "QR_STR_SCENE",
                   "action_info": {"scene": {"scene_str": "poster-a"}}})
        );
        let permanent = CreateQrCode::new(scene, Lifetime::Permanent);
        assert_eq!(
            serde_json::to_value(permanent).unwrap(),
            json!({"action_name": "QR_LIMIT_STR_SCENE",
                   "action_info": {"scene": {"scene_str": "poster-a"}}})
        );
    }

    #[test]
    fn answers_read_with_and_without_expiry() {
        let temporary: QrCodeAnswer = serde_json::from_value(json!({
            "ticket": "gQH47joAAAAAAAAAASxodHRwOi8v==", "expire_seconds": 60,
            "url": "http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI"
        }))
        .unwrap();
        assert_eq!(temporary.expire_seconds, Some(60));
        let permanent: QrCodeAnswer =
            serde_json::from_value(json!({"ticket": "t", "url": "http://weixin.qq.com/q/x"}))
                .unwrap();
        assert_eq!(permanent.expire_seconds, None);
    }

    #[test]
    fn the_image_url_encodes_the_ticket() {
        assert_eq!(
            image_url(DEFAULT_MP_BASE, "gQH+47/jo=="),
            "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQH%2B47%2Fjo%3D%3D"
        );
    }

    #[test]
    fn the_mp_base_is_https_or_loopback() {
        assert_eq!(mp_base(&[("X", "")]).unwrap(), DEFAULT_MP_BASE);
        let fake = [(WECHAT_MP_BASE, "http://127.0.0.1:9/")];
        assert_eq!(mp_base(&fake).unwrap(), "http://127.0.0.1:9");
        assert!(mp_base(&[(WECHAT_MP_BASE, "http://example.com")]).is_err());
    }
}

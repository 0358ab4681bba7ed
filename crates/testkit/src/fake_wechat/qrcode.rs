//! Fake channel QR codes: `POST /cgi-bin/qrcode/create` and `GET /cgi-bin/showqrcode`,
//! answering like WeChat:
//!
//! - create: the access_token first (41001 missing, 40001 unknown or replaced, 42001 expired);
//!   a body that is not JSON → 47001; an `action_name` other than `QR_SCENE`, `QR_STR_SCENE`,
//!   `QR_LIMIT_SCENE`, `QR_LIMIT_STR_SCENE`, or a scene that breaks its limits (`scene_str` 1 to
//!   64 bytes; `scene_id` a non-zero 32-bit number, 1 to 100000 for permanent codes) → 40053
//!   `invalid action info`; a permanent code past the account's limit (100,000; settable with
//!   [`QrState::permanent_limit`]) → 45029 `qrcode count out of limit`. A temporary code lives
//!   `expire_seconds`, 30 s when absent, at most 2592000 (a longer one is capped). A permanent
//!   code made again for the same scene is the same code and does not count twice. The answer is
//!   `{"ticket", "expire_seconds" (temporary only), "url"}`.
//! - showqrcode: no access_token; a known, unexpired `ticket` → 200 with a PNG image; anything
//!   else → 404, as WeChat answers an invalid ticket.
//!
//! And the other half of a channel code for tests: [`scene_push`], the signed push WeChat sends
//! when someone follows through a code or scans it.

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};
use wechat_protocol::message::EventType;
use wechat_protocol::wechat_side::{Account, Content, Envelope, Mode, push_xml, sign_push};

use super::{FakeRequest, FakeResponse, FakeState, lock};

pub const CREATE: &str = "/cgi-bin/qrcode/create";
pub const SHOW: &str = "/cgi-bin/showqrcode";

/// WeChat's default lifetime of a temporary code sent without `expire_seconds`.
pub const DEFAULT_EXPIRE_SECONDS: i64 = 30;
pub const MAX_EXPIRE_SECONDS: i64 = 2_592_000;

/// The codes the account has.
#[derive(Debug)]
pub struct QrState {
    codes: HashMap<String, Issued>,
    permanent: HashMap<String, String>,
    /// How many permanent codes the account may have (WeChat: 100,000).
    pub permanent_limit: usize,
    issued: u64,
}

impl Default for QrState {
    fn default() -> Self {
        Self {
            codes: HashMap::new(),
            permanent: HashMap::new(),
            permanent_limit: 100_000,
            issued: 0,
        }
    }
}

/// One issued code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// `scene_str`, or `scene_id` as text.
    pub scene: String,
    /// `None`: permanent.
    pub expires_at_ms: Option<i64>,
}

impl QrState {
    /// The code behind `ticket`, expired or not.
    pub fn code(&self, ticket: &str) -> Option<&Issued> {
        self.codes.get(ticket)
    }

    /// How many permanent codes exist.
    pub fn permanent_count(&self) -> usize {
        self.permanent.len()
    }

    fn issue(&mut self, scene: String, expires_at_ms: Option<i64>) -> String {
        self.issued += 1;
        // Shaped like WeChat's base64 tickets, with the `+`, `/` and `=` a client must encode.
        let ticket = format!(
            "gQF{:08x}+qr/{:016x}==",
            self.issued,
            fnv1a(scene.as_bytes())
        );
        self.codes.insert(
            ticket.clone(),
            Issued {
                scene,
                expires_at_ms,
            },
        );
        ticket
    }
}

pub fn handle(state: &FakeState, req: &FakeRequest) -> Option<FakeResponse> {
    if (req.method.as_str(), req.path.as_str()) != ("POST", CREATE) {
        return None;
    }
    let token = req.query.get("access_token").map(String::as_str);
    if let Some(code) = state.token_rejection(token) {
        return Some(FakeResponse::errcode(code));
    }
    let now_ms = lock(&state.token).now_ms();
    let mut codes = lock(&state.qrcode);
    Some(match create(&mut codes, req, now_ms) {
        Ok(answer) => FakeResponse::json(answer),
        Err(code) => FakeResponse::errcode(code),
    })
}

fn create(codes: &mut QrState, req: &FakeRequest, now_ms: i64) -> Result<Value, i64> {
    let body: Value = serde_json::from_slice(&req.body).map_err(|_| 47001)?;
    let action = body.get("action_name").and_then(Value::as_str);
    let scene = &body["action_info"]["scene"];
    let (permanent, scene) = match action {
        Some("QR_STR_SCENE") => (false, scene_str(scene)?),
        Some("QR_LIMIT_STR_SCENE") => (true, scene_str(scene)?),
        Some("QR_SCENE") => (false, scene_id(scene, u32::MAX.into())?),
        Some("QR_LIMIT_SCENE") => (true, scene_id(scene, 100_000)?),
        _ => return Err(40053),
    };
    let url = |ticket: &str| format!("http://weixin.qq.com/q/{:016x}", fnv1a(ticket.as_bytes()));
    if permanent {
        if let Some(ticket) = codes.permanent.get(&scene) {
            return Ok(json!({"ticket": ticket, "url": url(ticket)}));
        }
        if codes.permanent.len() >= codes.permanent_limit {
            return Err(45029);
        }
        let ticket = codes.issue(scene.clone(), None);
        codes.permanent.insert(scene, ticket.clone());
        return Ok(json!({"ticket": ticket, "url": url(&ticket)}));
    }
    let expire_seconds = match body.get("expire_seconds") {
        None => DEFAULT_EXPIRE_SECONDS,
        Some(n) => n.as_i64().filter(|n| *n > 0).ok_or(40053)?,
    }
    .min(MAX_EXPIRE_SECONDS);
    let ticket = codes.issue(scene, Some(now_ms + expire_seconds * 1000));
    Ok(json!({"ticket": ticket, "expire_seconds": expire_seconds, "url": url(&ticket)}))
}

fn scene_str(scene: &Value) -> Result<String, i64> {
    match scene.get("scene_str").and_then(Value::as_str) {
        Some(s) if (1..=64).contains(&s.len()) => Ok(s.to_string()),
        _ => Err(40053),
    }
}

fn scene_id(scene: &Value, max: u64) -> Result<String, i64> {
    match scene.get("scene_id").and_then(Value::as_u64) {
        Some(id) if (1..=max).contains(&id) => Ok(id.to_string()),
        _ => Err(40053),
    }
}

/// `GET /cgi-bin/showqrcode?ticket=…`: the image, or 404. Answered apart from the JSON
/// endpoints because its body is binary.
pub fn image(state: &FakeState, req: &FakeRequest) -> Option<hyper::Response<Full<Bytes>>> {
    if (req.method.as_str(), req.path.as_str()) != ("GET", SHOW) {
        return None;
    }
    let now_ms = lock(&state.token).now_ms();
    let codes = lock(&state.qrcode);
    let live = req
        .query
        .get("ticket")
        .and_then(|ticket| codes.code(ticket).map(|code| (ticket, code)))
        .filter(|(_, code)| code.expires_at_ms.is_none_or(|at| at > now_ms));
    let (status, content_type, body) = match live {
        Some((ticket, _)) => (200, "image/png", png(ticket)),
        None => (404, "text/html", b"<html><body>404</body></html>".to_vec()),
    };
    hyper::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .ok()
}

/// Modules per side and pixels per module of the image.
const MODULES: usize = 21;
const SCALE: usize = 4;

/// A QR-code-looking greyscale PNG for `ticket`: the three finder squares and a pattern drawn
/// from the ticket, so different codes give different images. Not a decodable QR code: the
/// fake stands in for WeChat's image server, and tests check it is a well-formed PNG.
pub fn png(ticket: &str) -> Vec<u8> {
    let side = (MODULES + 2) * SCALE;
    let seed = fnv1a(ticket.as_bytes());
    let dark = |x: usize, y: usize| -> bool {
        let finder = |fx: usize, fy: usize| {
            let (dx, dy) = (x.wrapping_sub(fx), y.wrapping_sub(fy));
            (dx < 7 && dy < 7).then(|| {
                let ring = dx.min(dy).min(6 - dx).min(6 - dy);
                ring != 1
            })
        };
        finder(0, 0)
            .or_else(|| finder(MODULES - 7, 0))
            .or_else(|| finder(0, MODULES - 7))
            .unwrap_or_else(|| {
                (seed.rotate_left((x * MODULES + y) as u32 % 64) ^ (x * 31 + y * 17) as u64) & 1
                    == 1
            })
    };
    let mut raw = Vec::with_capacity(side * (side + 1));
    for py in 0..side {
        raw.push(0); // filter: none
        for px in 0..side {
            let (x, y) = ((px / SCALE).wrapping_sub(1), (py / SCALE).wrapping_sub(1));
            let inside = x < MODULES && y < MODULES;
            raw.push(if inside && dark(x, y) { 0 } else { 255 });
        }
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&(side as u32).to_be_bytes());
    header.extend_from_slice(&(side as u32).to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, no filter, no interlace
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = png.len();
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32(&png[start..]);
    png.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream of stored (uncompressed) deflate blocks: no compression crate needed.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// CRC-32 (IEEE), bit by bit: the image is small.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Which scene event to push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScenePush {
    /// Someone followed through the code: `subscribe`, `EventKey` `qrscene_<scene>`.
    Subscribe,
    /// A follower scanned the code: `SCAN`, `EventKey` `<scene>`.
    Scan,
}

/// The plaintext push WeChat sends for a scene event of `scene` by `openid` at `timestamp`,
/// signed with `token`, as the Lambda request API Gateway delivers to the webhook (`Ticket`
/// included, as WeChat sends it).
pub fn scene_push(
    token: &str,
    kind: ScenePush,
    scene: &str,
    openid: &str,
    timestamp: i64,
) -> lambda_http::Request {
    let (event, key) = match kind {
        ScenePush::Subscribe => (EventType::Subscribe, format!("qrscene_{scene}")),
        ScenePush::Scan => (EventType::Scan, scene.to_string()),
    };
    let envelope = Envelope {
        to_user: "gh_fa4e00000001".into(),
        from_user: openid.into(),
        create_time: timestamp,
        msg_id: 0,
    };
    let xml = push_xml(
        &Content::Event {
            event,
            key: Some(key),
        },
        &envelope,
    );
    let ticket = format!(
        "<Ticket><![CDATA[gQF{:016x}==]]></Ticket>",
        fnv1a(scene.as_bytes())
    );
    let xml = xml.replacen("</xml>", &format!("{ticket}</xml>"), 1);
    let account = Account {
        token,
        crypto: None,
    };
    // Plaintext signing needs no key and no randomness: it cannot fail.
    let push = sign_push(
        &account,
        Mode::Plaintext,
        &xml,
        openid,
        timestamp,
        "qrnonce",
    )
    .unwrap_or_else(|e| unreachable!("plaintext signing: {e}"));
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(push.query.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let parameters: HashMap<String, Vec<String>> = push
        .query
        .iter()
        .map(|(k, v)| (k.to_string(), vec![v.clone()]))
        .collect();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("/wechat?{query}"))
        .header("content-type", "text/xml")
        .body(lambda_http::Body::Text(push.body))
        .unwrap_or_default();
    lambda_http::RequestExt::with_query_string_parameters(request, parameters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn the_image_is_a_well_formed_png() {
        let image = png("gQF00000001+qr/0==");
        assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");
        // Walk the chunks: each length, kind, data and CRC must add up, ending with IEND.
        let mut at = 8;
        let mut kinds = Vec::new();
        while at < image.len() {
            let len = u32::from_be_bytes(image[at..at + 4].try_into().unwrap()) as usize;
            let body = &image[at + 4..at + 8 + len];
            let crc = u32::from_be_bytes(image[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc32(body), crc);
            kinds.push(String::from_utf8(body[..4].to_vec()).unwrap());
            at += 12 + len;
        }
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        assert_ne!(png("a"), png("b"));
    }
}

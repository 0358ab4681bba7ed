//! Channel QR codes (带参数二维码): codes that carry a scene name, and per-scene daily counts of
//! the followers and scans they bring.
//!
//! From the bottom up: the scene name and the code's lifetime, checked offline against WeChat's
//! limits (`scene`: [`Scene`], [`Lifetime`]); the `/cgi-bin/qrcode/create` call and the image URL
//! (`api`: [`CreateQrCode`], [`QrCodeAnswer`], [`image_url`]); the counter items and reading them
//! back (`stats`: one `qrstat#<AppId>#<YYYY-MM-DD>` item per China day, [`stats()`]); and the
//! message-handler decorator that counts scene events next to the reply (`counter`:
//! [`SceneCounter`], on when `QR_STATS` is set).

mod api;
mod counter;
mod scene;
mod stats;

pub use api::{CreateQrCode, DEFAULT_MP_BASE, QrCodeAnswer, create, image_url, mp_base};
pub use counter::{COUNT_BOUND, QrStatsConfig, SceneCounter};
pub use scene::{
    Lifetime, MAX_EXPIRE_SECONDS, MAX_PERMANENT_CODES, MAX_SCENE_BYTES, Scene, SceneError,
};
pub use stats::{
    ChinaDate, DayStats, MAX_STATS_DAYS, QrStatDay, ScanKind, SceneCounts, StatsError, count, stats,
};

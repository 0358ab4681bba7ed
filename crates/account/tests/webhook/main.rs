//! The webhook (`verify`, `message`) as WeChat and wechat-shaped attackers meet it: API Gateway fixtures, every mode, hostile and lenient input, property tests.

mod common;
mod hostile;
mod lenient;
mod messages;
mod properties;
mod qrcode;
mod rotation;
mod safe_mode;
mod verify;

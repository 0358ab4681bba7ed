//! WeChat's webhook protocol, with no I/O and no AWS: what an Official Account's server and
//! WeChat say to each other, and the small pieces every layer above needs.
//!
//! - [`signature`]: the SHA-1 signatures of a push (`signature`, `msg_signature`) and of
//!   `wx.config` (JS-SDK), compared in constant time.
//! - [`crypto`]: safe and compatible mode (AES-256-CBC with WeChat's framing).
//! - [`keys`]: the current Token and EncodingAESKey and, during a rotation, the previous ones.
//! - [`xml`]: the hostile-input reader of pushed XML, and the CDATA writer.
//! - [`message`]: typed messages and events, and the vocabulary of their names.
//! - [`reply`]: passive replies and their XML, and the [`reply::MessageHandler`] port.
//! - [`wechat_side`]: WeChat's side of a push, for tools that play WeChat (`wx push`).
//! - [`secret`], [`origin`], [`random`]: secrets that never print and log fingerprints, URL
//!   origins, the operating system's random source.

pub mod crypto;
pub mod keys;
pub mod message;
pub mod origin;
pub mod random;
pub mod reply;
pub mod secret;
pub mod signature;
pub mod wechat_side;
pub mod xml;

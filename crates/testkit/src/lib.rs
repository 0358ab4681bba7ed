//! What tests and `wx serve` play against: the fake WeChat API (`fake_wechat`), the local HTTP
//! server that serves the functions' handlers (`local_server`), and the integration tests'
//! shared harness (`harness`: log capture, both-adapters runner, request builders).

pub mod fake_wechat;
pub mod harness;
pub mod local_server;

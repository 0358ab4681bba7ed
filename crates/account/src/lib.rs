//! The Official Account backend: what the Lambda functions and `wx serve` are made of, above the
//! protocol (`wechat_protocol`), the WeChat API client (`wechat_api`) and the table (`table`).
//!
//! From the bottom up: configuration (`config`: every variable's name, typed settings), time
//! (`clock`), HTTP responses (`http`), CloudWatch metrics as log lines (`metrics`), every
//! function's log subscriber (`telemetry`), the AWS adapters (`aws`: SDK configuration, the
//! stack's secret); the central token service and its clients (`token`), customer-service
//! messages (`customer_service`: the late channel), web authorization and its sessions (`oauth`),
//! JS-SDK signatures and the demo page (`jssdk`); template messages and their receipts
//! (`notify`); the reply rules (`rules`), the custom menu (`menu`), channel QR codes and their
//! per-scene counts (`qrcode`), forwarding to the account's own service (`forward`), the webhook
//! (`webhook`), the token-free WeChat API function (`api`); and at the top the composition roots
//! (`compose`) the functions' mains and `wx serve` share.

pub mod api;
pub mod aws;
pub mod clock;
pub mod compose;
pub mod config;
pub mod customer_service;
pub mod forward;
pub mod http;
pub mod jssdk;
pub mod menu;
pub mod metrics;
pub mod notify;
pub mod oauth;
pub mod qrcode;
pub mod rules;
pub mod telemetry;
pub mod token;
pub mod webhook;

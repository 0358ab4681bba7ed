//! WeChat Official Account backend: everything the Lambda functions share.
//!
//! Protocol (`signature`, `crypto`, `message`, `reply`, `rules`, `webhook`), forwarding messages
//! to the account's own service with late answers and retry de-duplication (`forward`), access
//! tokens (`token`), customer-service messages (`customer_service`: the late channel), web
//! authorization and its sessions (`oauth`), JS-SDK signatures and the demo page (`jssdk`), the
//! custom menu (`menu`), WeChat's side of a push for tools that play WeChat (`push`), storage
//! (`store`: the table kernel and the domain ports built on it) and the kernel's two adapters
//! (`dynamo`, `embedded`), the WeChat API client (`wechat_api`: typed calls over a transport port,
//! the one error-code table), configuration (`config`: variable names, the WeChat app config),
//! time (`clock`), the AWS SDK configuration (`aws`), every function's log subscriber
//! (`telemetry`), CloudWatch metrics as log lines (`metrics`), and the fake WeChat API used by
//! tests and local runs (`fake_wechat`, feature `fake-wechat`).

pub mod aws;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod customer_service;
pub mod dynamo;
pub mod embedded;
pub mod forward;
pub mod http;
pub mod jssdk;
pub mod menu;
pub mod message;
pub mod metrics;
pub mod oauth;
pub mod push;
pub mod reply;
pub mod rules;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod webhook;
pub mod wechat_api;

#[cfg(feature = "fake-wechat")]
pub mod fake_wechat;

#[cfg(feature = "local-server")]
pub mod local_server;

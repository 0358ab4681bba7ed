//! The central token service and its clients: the service on the embedded store and on dynalite, the token client, the jsapi_ticket, and the calls made with a token (custom menu, customer service).

// The api function's futures over DynamoDB and the in-process token service nest deeply.
#![recursion_limit = "256"]

mod api;
mod client;
mod customer_service;
mod dynamo;
mod menu_api;
mod qrcode_api;
mod service;
mod stale_check;
mod ticket;
mod whitelist;

//! Forwarding to the account's own service: the signed client, the message side and the worker on the embedded store and dynalite, end to end with the fake WeChat API.

mod client;
mod e2e;
mod flow;
mod support;

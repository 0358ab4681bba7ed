//! The `oauth` function's routes: WeChat web authorization over real HTTP next to the fake WeChat API, sessions, the OAuth store ports, and JS-SDK signatures.

mod e2e;
mod flow;
mod jssdk;
mod jssdk_logs;
mod properties;
mod sessions;
mod sns;
mod store;
mod support;
mod verify_file;

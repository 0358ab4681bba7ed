//! What `/jssdk/config` logs: the signed page by origin and path, failures by kind, never the
//! jsapi_ticket. Alone in its test binary: a thread-local log subscriber in a binary whose other
//! tests run the same call sites on other threads can miss events (tracing's interest cache).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use testkit::harness::Logs;

use account::clock::ManualClock;
use account::jssdk::{Jssdk, JssdkConfig};
use account::token::TokenError;
use account::token::{JsapiTicket, TicketSource};
use lambda_http::{Body, Request};
use wechat_protocol::secret::Secret;

const TICKET: &str =
    "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";

#[derive(Default)]
struct Tickets {
    failing: AtomicBool,
}

impl TicketSource for Tickets {
    async fn jsapi_ticket(&self) -> Result<JsapiTicket, TokenError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(TokenError::Invoke(
                "connection refused to the refresh function".into(),
            ));
        }
        Ok(JsapiTicket {
            value: Secret::new(TICKET.into()),
            expires_at_ms: i64::MAX,
        })
    }
}

fn get(uri: &str) -> Request {
    lambda_http::http::Request::builder()
        .uri(uri)
        .body(Body::Empty)
        .unwrap()
}

#[tokio::test]
async fn the_ticket_never_reaches_a_log_line_or_an_answer() {
    let (logs, _guard) = Logs::capture();

    let tickets = Arc::new(Tickets::default());
    let config =
        JssdkConfig::from_env(&[("JSSDK_ALLOWED_ORIGINS", "https://shop.example")]).unwrap();
    let jssdk = Jssdk::new(
        config,
        "wx1",
        "",
        Some(tickets.clone()),
        Arc::new(ManualClock::at_ms(1_414_587_457_000)),
    );
    let mut answers = String::new();
    for uri in [
        "/jssdk/config?url=https%3A%2F%2Fshop.example%2Fpay%3Fcard%3D4711",
        "/jssdk/config?url=https%3A%2F%2Fevil.example%2F",
    ] {
        let response = jssdk.handle(&get(uri)).await.unwrap();
        answers.push_str(&String::from_utf8_lossy(response.body().as_ref()));
    }
    tickets.failing.store(true, Ordering::SeqCst);
    let response = jssdk
        .handle(&get("/jssdk/config?url=https%3A%2F%2Fshop.example%2F"))
        .await
        .unwrap();
    answers.push_str(&String::from_utf8_lossy(response.body().as_ref()));

    let logged = logs.text();
    assert!(logged.contains("jssdk: signed"), "{logged}");
    assert!(
        logged.contains("InvokeFailed") || logged.contains("could not invoke"),
        "{logged}"
    );
    for text in [&logged, &answers] {
        assert!(!text.contains(TICKET), "{text}");
    }
    // A page's query may hold the user's data: only its origin and path are logged.
    assert!(!logged.contains("4711"), "{logged}");
}

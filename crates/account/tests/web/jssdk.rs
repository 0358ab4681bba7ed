//! `GET /jssdk/config` and `GET /demo` through `Jssdk::handle`, with a scripted ticket source.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use account::clock::ManualClock;
use account::jssdk::{Jssdk, JssdkConfig, WxConfig};
use account::token::{
    JsapiTicket, TICKET_FAILURE_MEMORY_MS, TicketSource, TokenClient, TokenError,
};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use wechat_protocol::secret::Secret;
use wechat_protocol::signature::jssdk_signature;

const TICKET: &str =
    "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
const NOW_MS: i64 = 1_414_587_457_000;

/// Hands out `TICKET` (valid two hours from `NOW_MS`) or, while `failing`, an invoke error;
/// after `delay`, when one is set.
#[derive(Default)]
struct ScriptedTickets {
    calls: AtomicUsize,
    failing: Mutex<bool>,
    delay: Mutex<std::time::Duration>,
}

impl TicketSource for ScriptedTickets {
    async fn jsapi_ticket(&self) -> Result<JsapiTicket, TokenError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if *self.failing.lock().unwrap() {
            return Err(TokenError::Invoke(
                "connection refused to the refresh function".into(),
            ));
        }
        Ok(JsapiTicket {
            value: Secret::new(TICKET.into()),
            expires_at_ms: NOW_MS + 7_200_000,
        })
    }
}

struct Setup {
    jssdk: Jssdk<Arc<ScriptedTickets>>,
    tickets: Arc<ScriptedTickets>,
}

fn setup(env: &[(&str, &str)]) -> Setup {
    let env: std::collections::HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = JssdkConfig::from_env(&env).unwrap();
    let tickets = Arc::new(ScriptedTickets::default());
    let jssdk = Jssdk::new(
        config,
        "wx1234567890",
        "",
        Some(tickets.clone()),
        Arc::new(ManualClock::at_ms(NOW_MS)),
    );
    Setup { jssdk, tickets }
}

fn signing() -> Setup {
    setup(&[(
        "JSSDK_ALLOWED_ORIGINS",
        "https://shop.example, http://localhost:3000",
    )])
}

fn request(method: &str, uri: &str, origin: Option<&str>) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(uri);
    if let Some(origin) = origin {
        builder = builder.header("origin", origin);
    }
    builder.body(Body::Empty).unwrap()
}

async fn get(s: &Setup, uri: &str, origin: Option<&str>) -> Response<Body> {
    s.jssdk
        .handle(&request("GET", uri, origin))
        .await
        .expect("a route of the jssdk handler")
}

fn json_body(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).unwrap()
}

fn encode(raw: &str) -> String {
    form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

#[tokio::test]
async fn an_allowed_page_gets_wechats_signature_of_its_url_without_the_fragment() {
    let s = signing();
    let page = "https://shop.example/pay?item=42&from=menu#/step/2";
    let response = get(&s, &format!("/jssdk/config?url={}", encode(page)), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let answer: WxConfig = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(answer.app_id, "wx1234567890");
    assert_eq!(answer.timestamp, NOW_MS / 1000);
    assert_eq!(answer.nonce_str.len(), 16);
    assert_eq!(
        answer.signature,
        jssdk_signature(
            TICKET,
            &answer.nonce_str,
            answer.timestamp,
            "https://shop.example/pay?item=42&from=menu"
        )
    );
    let keys: Vec<String> = json_body(&response)
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, ["appId", "nonceStr", "signature", "timestamp"]);
}

#[tokio::test]
async fn wechats_published_example_comes_out_of_the_handler_too() {
    let s = setup(&[("JSSDK_ALLOWED_ORIGINS", "http://mp.weixin.qq.com")]);
    let response = get(
        &s,
        "/jssdk/config?url=http%3A%2F%2Fmp.weixin.qq.com%3Fparams%3Dvalue",
        None,
    )
    .await;
    let answer: WxConfig = serde_json::from_slice(response.body().as_ref()).unwrap();
    // The handler's nonce is random: sign the example's own nonce over the same inputs.
    assert_eq!(answer.timestamp, 1414587457);
    assert_eq!(
        jssdk_signature(
            TICKET,
            "Wm3WZYTPz0wzccnW",
            answer.timestamp,
            "http://mp.weixin.qq.com?params=value"
        ),
        "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    );
    assert_eq!(
        answer.signature,
        jssdk_signature(
            TICKET,
            &answer.nonce_str,
            1414587457,
            "http://mp.weixin.qq.com?params=value"
        )
    );
}

#[tokio::test]
async fn two_requests_get_different_nonces() {
    let s = signing();
    let uri = "/jssdk/config?url=https%3A%2F%2Fshop.example%2F";
    let a = json_body(&get(&s, uri, None).await);
    let b = json_body(&get(&s, uri, None).await);
    assert_ne!(a["nonceStr"], b["nonceStr"]);
    assert_ne!(a["signature"], b["signature"]);
}

#[tokio::test]
async fn a_page_on_another_origin_is_refused_with_the_reason() {
    let s = signing();
    let response = get(
        &s,
        "/jssdk/config?url=https%3A%2F%2Fevil.example%2Fshop.example",
        Some("https://evil.example"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_body(&response)["error"],
        "https://evil.example is not one of the account's JS-SDK domains (JSSDK_ALLOWED_ORIGINS)"
    );
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    assert_eq!(s.tickets.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_missing_or_invalid_url_is_a_bad_request() {
    let s = signing();
    for (uri, reason) in [
        ("/jssdk/config", "url parameter is missing"),
        ("/jssdk/config?url=", "url parameter is missing"),
        (
            "/jssdk/config?url=%2Fpay",
            "url is not an absolute http(s) URL",
        ),
        (
            "/jssdk/config?url=https%3A%2F%2Fshop.example%2Fa%20b",
            "url contains whitespace",
        ),
    ] {
        let response = get(&s, uri, None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
        let error = json_body(&response)["error"].as_str().unwrap().to_string();
        assert!(error.starts_with(reason), "{uri}: {error}");
    }
    assert_eq!(s.tickets.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_failing_ticket_source_is_503_with_a_reason_and_no_detail() {
    let s = signing();
    *s.tickets.failing.lock().unwrap() = true;
    let response = get(&s, "/jssdk/config?url=https%3A%2F%2Fshop.example%2F", None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let error = json_body(&response)["error"].as_str().unwrap().to_string();
    assert_eq!(
        error,
        "no jsapi_ticket is available right now (InvokeFailed)"
    );
}

#[tokio::test]
async fn a_failing_ticket_source_says_when_to_retry() {
    let s = signing();
    *s.tickets.failing.lock().unwrap() = true;
    let response = get(&s, "/jssdk/config?url=https%3A%2F%2Fshop.example%2F", None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()["retry-after"],
        (TICKET_FAILURE_MEMORY_MS / 1000).to_string().as_str()
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
}

/// The handler as the Lambda builds it: over a `TokenClient` (one per container) on `clock`.
fn through_a_token_client(
    tickets: Arc<ScriptedTickets>,
    clock: &ManualClock,
) -> Arc<Jssdk<TokenClient<Arc<ScriptedTickets>>>> {
    let config =
        JssdkConfig::from_env(&[("JSSDK_ALLOWED_ORIGINS", "https://shop.example")]).unwrap();
    let clock: account::clock::SharedClock = Arc::new(clock.clone());
    let client = TokenClient::with_clock(tickets, clock.clone());
    Arc::new(Jssdk::new(config, "wx1", "", Some(client), clock))
}

async fn config_status(jssdk: &Jssdk<TokenClient<Arc<ScriptedTickets>>>) -> (u16, Option<String>) {
    let response = jssdk
        .handle(&request(
            "GET",
            "/jssdk/config?url=https%3A%2F%2Fshop.example%2F",
            None,
        ))
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (response.status().as_u16(), retry_after)
}

#[tokio::test]
async fn a_container_asks_again_only_after_the_failure_memory_and_says_so_with_retry_after() {
    let clock = ManualClock::at_ms(NOW_MS);
    let tickets = Arc::new(ScriptedTickets::default());
    *tickets.failing.lock().unwrap() = true;
    let jssdk = through_a_token_client(tickets.clone(), &clock);
    assert_eq!(config_status(&jssdk).await, (503, Some("30".into())));
    clock.advance_ms(10_000);
    for _ in 0..9 {
        assert_eq!(config_status(&jssdk).await, (503, Some("20".into())));
    }
    assert_eq!(
        tickets.calls.load(Ordering::SeqCst),
        1,
        "ten requests, one attempt"
    );

    clock.advance_ms(TICKET_FAILURE_MEMORY_MS - 10_000);
    assert_eq!(config_status(&jssdk).await, (503, Some("30".into())));
    assert_eq!(tickets.calls.load(Ordering::SeqCst), 2, "one new attempt");
    clock.advance_ms(TICKET_FAILURE_MEMORY_MS);
    *tickets.failing.lock().unwrap() = false;
    assert_eq!(config_status(&jssdk).await, (200, None));
    assert_eq!(config_status(&jssdk).await, (200, None));
    assert_eq!(tickets.calls.load(Ordering::SeqCst), 3, "then cached");
}

#[tokio::test]
async fn concurrent_misses_in_one_container_share_one_attempt() {
    let clock = ManualClock::at_ms(NOW_MS);
    let tickets = Arc::new(ScriptedTickets::default());
    *tickets.failing.lock().unwrap() = true;
    *tickets.delay.lock().unwrap() = std::time::Duration::from_millis(100);
    let jssdk = through_a_token_client(tickets.clone(), &clock);
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let jssdk = jssdk.clone();
        requests.spawn(async move { config_status(&jssdk).await.0 });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), 503);
    }
    assert_eq!(tickets.calls.load(Ordering::SeqCst), 1);

    // A successful attempt is shared the same way.
    clock.advance_ms(TICKET_FAILURE_MEMORY_MS);
    *tickets.failing.lock().unwrap() = false;
    for _ in 0..10 {
        let jssdk = jssdk.clone();
        requests.spawn(async move { config_status(&jssdk).await.0 });
    }
    while let Some(status) = requests.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(tickets.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn with_no_js_sdk_domain_signing_is_off_and_no_ticket_is_asked_for() {
    let s = setup(&[]);
    let response = get(&s, "/jssdk/config?url=https%3A%2F%2Fshop.example%2F", None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        json_body(&response)["error"],
        "JS-SDK signing is off: JSSDK_ALLOWED_ORIGINS is not set"
    );
    assert_eq!(s.tickets.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn cors_echoes_only_an_allowed_origin_and_always_varies_on_origin() {
    let s = signing();
    let uri = "/jssdk/config?url=https%3A%2F%2Fshop.example%2F";
    let allowed = get(&s, uri, Some("https://shop.example")).await;
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(allowed.headers()["vary"], "Origin");
    assert!(
        !allowed
            .headers()
            .contains_key("access-control-allow-credentials")
    );

    for foreign in [
        "https://evil.example",
        "null",
        "https://shop.example.evil.example",
    ] {
        let refused = get(&s, uri, Some(foreign)).await;
        // The answer itself is the same; only the browser is not allowed to read it.
        assert_eq!(refused.status(), StatusCode::OK);
        assert!(
            !refused
                .headers()
                .contains_key("access-control-allow-origin"),
            "{foreign}"
        );
        assert_eq!(refused.headers()["vary"], "Origin");
    }
    let error = get(
        &s,
        "/jssdk/config?url=ftp%3A%2F%2Fx",
        Some("http://localhost:3000"),
    )
    .await;
    assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        error.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
}

#[tokio::test]
async fn the_preflight_is_answered_for_allowed_origins() {
    let s = signing();
    let response = s
        .jssdk
        .handle(&request(
            "OPTIONS",
            "/jssdk/config",
            Some("https://shop.example"),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(headers["access-control-allow-methods"], "GET, OPTIONS");
    assert_eq!(headers["vary"], "Origin");

    let foreign = s
        .jssdk
        .handle(&request(
            "OPTIONS",
            "/jssdk/config",
            Some("https://evil.example"),
        ))
        .await
        .unwrap();
    assert!(
        !foreign
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let post = s
        .jssdk
        .handle(&request("POST", "/jssdk/config", None))
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()["allow"], "GET, OPTIONS");
}

#[tokio::test]
async fn the_demo_page_is_served_only_when_enabled() {
    let off = signing();
    assert!(
        off.jssdk
            .handle(&request("GET", "/demo", None))
            .await
            .is_none()
    );

    let on = setup(&[("DEMO_PAGE_ENABLED", "true")]);
    let page = on
        .jssdk
        .handle(&request("GET", "/demo", None))
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers().contains_key("content-security-policy"));
    let html = String::from_utf8_lossy(page.body().as_ref()).into_owned();
    assert!(html.contains("https://res.wx.qq.com/open/js/jweixin-1.6.0.js"));
    let post = on
        .jssdk
        .handle(&request("POST", "/demo", None))
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn routes_are_found_below_the_stage_prefix_and_other_paths_are_not_claimed() {
    let config = JssdkConfig::from_env(&[
        ("JSSDK_ALLOWED_ORIGINS", "https://shop.example"),
        ("DEMO_PAGE_ENABLED", "true"),
    ])
    .unwrap();
    let jssdk = Jssdk::new(
        config,
        "wx1",
        "/prod",
        Some(Arc::new(ScriptedTickets::default())),
        Arc::new(ManualClock::at_ms(NOW_MS)),
    );
    let signed = jssdk
        .handle(&request(
            "GET",
            "/prod/jssdk/config?url=https%3A%2F%2Fshop.example%2F",
            None,
        ))
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    let page = jssdk
        .handle(&request("GET", "/prod/demo", None))
        .await
        .unwrap();
    let html = String::from_utf8_lossy(page.body().as_ref()).into_owned();
    assert!(html.contains("return_to=%2Fprod%2Fdemo"));
    for other in ["/oauth/me", "/jssdk", "/jssdk/config/x", "/demo/x", "/"] {
        assert!(
            jssdk.handle(&request("GET", other, None)).await.is_none(),
            "{other}"
        );
    }
}

/// The whole chain offline: the token service in process fetches the ticket from the fake WeChat
/// API, the handler signs with it, and the fake's `wx.config` check (what the jweixin stand-in
/// posts) accepts exactly that page.
#[tokio::test]
async fn the_fakes_wx_config_check_accepts_the_handlers_signature_for_that_page_only() {
    use account::token::{TokenConfig, TokenService};
    use table::embedded::EmbeddedStore;
    use testkit::fake_wechat::{FAKE_APP_ID, FAKE_APP_SECRET, FakeWeChat};

    let fake = FakeWeChat::start().await;
    let env = [
        ("WECHAT_APP_ID", FAKE_APP_ID),
        ("WECHAT_APP_SECRET", FAKE_APP_SECRET),
        ("WECHAT_API_BASE", fake.base_url()),
    ];
    let tokens = TokenConfig::from_env(&env).unwrap();
    let http = tokens.wechat.client().unwrap();
    let clock = account::clock::system();
    let service = Arc::new(TokenService::new(
        tokens,
        EmbeddedStore::in_memory(),
        http,
        clock.clone(),
    ));
    let config =
        JssdkConfig::from_env(&[("JSSDK_ALLOWED_ORIGINS", "http://localhost:3000")]).unwrap();
    let jssdk = Jssdk::new(config, FAKE_APP_ID, "", Some(service), clock);

    let page = "http://localhost:3000/demo?from=menu#top";
    let response = jssdk
        .handle(&request(
            "GET",
            &format!("/jssdk/config?url={}", encode(page)),
            None,
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: WxConfig = serde_json::from_slice(response.body().as_ref()).unwrap();

    let verify = |url: &'static str| {
        let body = serde_json::json!({
            "appId": answer.app_id,
            "timestamp": answer.timestamp,
            "nonceStr": answer.nonce_str,
            "signature": answer.signature,
            "url": url,
        });
        let endpoint = format!("{}/fake/jssdk/verify", fake.base_url());
        async move {
            reqwest::Client::new()
                .post(endpoint)
                .body(body.to_string())
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(verify(page).await["ok"], true);
    let other = verify("http://localhost:3000/demo?from=share").await;
    assert_eq!(other["ok"], false);
    assert_eq!(other["errMsg"], "config:invalid signature");
    assert_eq!(fake.calls("/cgi-bin/ticket/getticket"), 1);
}

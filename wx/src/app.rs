//! The local server's routes: the same handlers the Lambda functions run, on one HTTP server,
//! over the embedded store.
//!
//! | route | Lambda function |
//! |---|---|
//! | `GET`/`POST /wechat` | `verify` / `message` |
//! | `/oauth/*`, `/jssdk/config`, `/demo`, `/MP_verify_….txt` | `oauth` |
//! | `POST /2015-03-31/functions/api/invocations` | `api`, as the Lambda Invoke API |
//! | `POST /2015-03-31/functions/{name}/invocations` | `refresh`, as the Lambda Invoke API |

use std::collections::HashMap;
use std::sync::Arc;

use account::api::{Api, ApiConfig};
use account::clock::{self, SharedClock};
use account::compose::Web;
use account::config::vars::{
    JSSDK_SCRIPT_URL, LOCAL_FAKE_WECHAT, LOCAL_FAKE_WECHAT_IP_WHITELIST, TEMPLATE_RECEIPTS,
    WECHAT_API_BASE, WECHAT_APP_ID, WECHAT_APP_SECRET, WECHAT_OPEN_BASE, WECHAT_TOKEN,
};
use account::config::{Env, flag_or, optional};
use account::customer_service::CustomerService;
use account::forward::{
    Answer, ForwardConfig, ForwardingRules, HttpForwarder, InProcessLauncher, LateDelivery,
    LateSender, MessageSide, Worker,
};
use account::jssdk::JssdkConfig;
use account::notify::ReceiptRecorder;
use account::oauth::OAuthConfig;
use account::qrcode::SceneCounter;
use account::rules::Rules;
use account::token::{TokenClient, TokenConfig, TokenService};
use account::webhook::{Webhook, WebhookConfig};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::{FAKE_APP_ID, FAKE_APP_SECRET, FakeWeChat, jweixin};

use crate::config::DEV_TOKEN;
use crate::invoke::{InvokeKey, answer_api_invoke_request, answer_invoke_request};

pub type LocalTokenService = TokenService<EmbeddedStore>;

/// The `api` function over the embedded store, with tokens from the token service in process.
pub type LocalApi = Api<EmbeddedStore, Arc<LocalTokenService>>;

/// Where the token service and OAuth talk to WeChat.
pub enum WeChatApi {
    /// `LOCAL_FAKE_WECHAT=true`: the bundled fake WeChat API on a loopback port.
    Fake(FakeWeChat),
    /// `WECHAT_APP_SECRET` is set: the real WeChat API (`WECHAT_API_BASE`).
    Real,
    /// Neither: token refresh and OAuth are off; the webhook still works.
    Off,
}

/// The webhook's replies: the rules, and a forward rule's flow with the worker as a background
/// task of this server (Lambda freezes a function once it answered; this process does not);
/// with `TEMPLATE_RECEIPTS=true`, template-message receipts recorded in the store first; with
/// `QR_STATS`, scene events counted in the store, as the message function counts them.
pub type LocalHandler = SceneCounter<
    ReceiptRecorder<ForwardingRules<EmbeddedStore, LocalLauncher>, EmbeddedStore>,
    EmbeddedStore,
>;

/// Runs the worker in this process.
pub type LocalLauncher = InProcessLauncher<EmbeddedStore, HttpForwarder, LocalLateChannel>;

/// Where the local worker sends late answers: the customer-service API of the WeChat API in use
/// (real or fake), through the local token service; nowhere when there is none.
pub enum LocalLateChannel {
    CustomerService(CustomerService<Arc<LocalTokenService>>),
    Off,
}

impl LateSender for LocalLateChannel {
    async fn send(&self, openid: &str, answer: &Answer) -> LateDelivery {
        match self {
            Self::CustomerService(channel) => LateSender::send(channel, openid, answer).await,
            Self::Off => no_channel(),
        }
    }

    async fn typing(&self, openid: &str) -> LateDelivery {
        match self {
            Self::CustomerService(channel) => LateSender::typing(channel, openid).await,
            Self::Off => no_channel(),
        }
    }
}

/// Without a WeChat API nothing can be sent, however often the worker tries: a refusal.
fn no_channel() -> LateDelivery {
    LateDelivery::Rejected {
        code: "no_late_channel",
        reason: "no token service to send with: set WECHAT_APP_SECRET for the real WeChat API, \
                 or LOCAL_FAKE_WECHAT=true for the bundled fake"
            .into(),
    }
}

pub struct App {
    pub webhook: Webhook<LocalHandler>,
    /// The `oauth` function's routes (`/oauth/*`, `/jssdk/config`, `/demo`), with tickets from
    /// the token service in process.
    pub web: Option<Web<EmbeddedStore, Arc<LocalTokenService>>>,
    pub tokens: Option<Arc<LocalTokenService>>,
    /// The `api` function, whenever the token service runs.
    pub api: Option<LocalApi>,
    pub wechat_api: WeChatApi,
    /// What a Lambda Invoke request must carry (see [`crate::invoke`]).
    pub invoke_key: InvokeKey,
}

impl App {
    /// Build every handler from `env`; with `LOCAL_FAKE_WECHAT` the fake WeChat API is started
    /// first and `env` is pointed at it.
    pub async fn build(
        env: &mut HashMap<String, String>,
        store: EmbeddedStore,
        invoke_key: InvokeKey,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let wechat_api = if flag_or(env, LOCAL_FAKE_WECHAT, false)? {
            let app_id = account::config::app_id(env)?.unwrap_or_else(|| FAKE_APP_ID.into());
            let secret = optional(env, WECHAT_APP_SECRET).unwrap_or_else(|| FAKE_APP_SECRET.into());
            let addr = ([127, 0, 0, 1], 0).into();
            // Beside a persisted store, the fake keeps what WeChat remembers (the tokens and
            // tickets it issued), so what the store kept from the last run is still accepted.
            let fake = match store.path() {
                Some(path) => {
                    let remembered = fake_wechat_state_path(path);
                    FakeWeChat::start_persistent(addr, &app_id, &secret, &remembered).await?
                }
                None => FakeWeChat::start_with(addr, &app_id, &secret).await?,
            };
            for (name, value) in [
                (WECHAT_APP_ID, app_id),
                (WECHAT_APP_SECRET, secret),
                (WECHAT_API_BASE, fake.base_url().to_string()),
                (WECHAT_OPEN_BASE, fake.base_url().to_string()),
                (
                    JSSDK_SCRIPT_URL,
                    format!("{}{}", fake.base_url(), jweixin::SCRIPT_PATH),
                ),
            ] {
                env.insert(name.into(), value);
            }
            // To see (and test) what WeChat answers a server whose IP is not whitelisted.
            if let Some(list) = optional(env, LOCAL_FAKE_WECHAT_IP_WHITELIST) {
                let allowed = testkit::fake_wechat::whitelist::parse(&list).map_err(|reason| {
                    account::config::ConfigError::new(LOCAL_FAKE_WECHAT_IP_WHITELIST, reason)
                })?;
                fake.set_ip_whitelist(allowed);
            }
            // Under `make run` the developer sees what a late answer delivered, in the log.
            testkit::fake_wechat::lock(&fake.state().custom).log_deliveries = true;
            WeChatApi::Fake(fake)
        } else if optional(env, WECHAT_APP_SECRET).is_some() {
            WeChatApi::Real
        } else {
            WeChatApi::Off
        };

        let clock = clock::system();
        let (web, tokens, http, api) = match wechat_api {
            WeChatApi::Off => (None, None, None, None),
            _ => {
                let tokens = TokenConfig::from_env(env)?;
                // One client to WeChat for all, as one Lambda container would build it.
                let http = tokens.wechat.client()?;
                let tokens = Arc::new(TokenService::new(
                    tokens,
                    store.clone(),
                    http.clone(),
                    clock.clone(),
                ));
                let web = Web::new(
                    OAuthConfig::from_env(env)?,
                    JssdkConfig::from_env(env)?,
                    store.clone(),
                    Some(tokens.clone()),
                    clock.clone(),
                )?;
                let api = Api::new(
                    ApiConfig::from_env(env)?,
                    store.clone(),
                    http.clone(),
                    TokenClient::with_clock(tokens.clone(), clock.clone()),
                    clock.clone(),
                );
                (Some(web), Some(tokens), Some(http), Some(api))
            }
        };
        let rules = Rules::from_env(env)?;
        let (stats_store, stats_clock) = (store.clone(), clock.clone());
        let forwarding = match rules.has_forward() {
            false => None,
            true => {
                let late_channel = match (&tokens, http) {
                    (Some(tokens), Some(http)) => {
                        let client = TokenClient::with_clock(tokens.clone(), clock.clone());
                        LocalLateChannel::CustomerService(CustomerService::new(
                            http,
                            Arc::new(client),
                        ))
                    }
                    _ => LocalLateChannel::Off,
                };
                Some(local_forwarding(
                    env,
                    &rules,
                    store.clone(),
                    late_channel,
                    clock.clone(),
                )?)
            }
        };
        // The development default token is short on purpose and the banner says it is a
        // default: no warning about its length on every start.
        let webhook_config = match optional(env, WECHAT_TOKEN).as_deref() {
            Some(DEV_TOKEN) => WebhookConfig::read(env)?,
            _ => WebhookConfig::from_env(env)?,
        };
        let handler = ForwardingRules::new(rules, forwarding);
        let handler = match (
            flag_or(env, TEMPLATE_RECEIPTS, false)?,
            account::config::app_id(env)?,
        ) {
            (true, Some(app_id)) => ReceiptRecorder::recording(handler, store, app_id, clock),
            (true, None) => {
                return Err(format!("{TEMPLATE_RECEIPTS}=true needs {WECHAT_APP_ID}").into());
            }
            (false, _) => ReceiptRecorder::off(handler),
        };
        let counted = |_| async { stats_store };
        let handler = SceneCounter::from_env(env, handler, counted, stats_clock).await?;
        let webhook = Webhook::new(webhook_config, handler);
        Ok(Self {
            webhook,
            web,
            tokens,
            api,
            wechat_api,
            invoke_key,
        })
    }

    pub async fn route(&self, req: Request) -> Response<Body> {
        let path = req.uri().path();
        if path == "/wechat" {
            return self.webhook.handle(&req).await;
        }
        if let Some(response) = match &self.web {
            Some(web) => web.jssdk.handle(&req).await,
            None if path.starts_with("/jssdk/") || path == "/demo" => Some(off("The JS-SDK")),
            None => None,
        } {
            return response;
        }
        let web_serves = self.web.as_ref().is_some_and(|web| web.oauth.serves(path));
        if path == "/oauth" || path.starts_with("/oauth/") || web_serves {
            return match &self.web {
                Some(web) => web.oauth.handle(&req).await,
                None => off("OAuth"),
            };
        }
        if is_invoke_path(path) && invoked_function(path) == Some("api") {
            return match (&self.api, req.method()) {
                (Some(api), &Method::POST) => {
                    answer_api_invoke_request(api, &self.invoke_key, &req).await
                }
                (Some(_), _) => account::http::text(StatusCode::METHOD_NOT_ALLOWED, "use POST"),
                (None, _) => off("The api function"),
            };
        }
        if is_invoke_path(path) {
            return match (&self.tokens, req.method()) {
                (Some(tokens), &Method::POST) => {
                    answer_invoke_request(tokens, &self.invoke_key, &req).await
                }
                (Some(_), _) => account::http::text(StatusCode::METHOD_NOT_ALLOWED, "use POST"),
                (None, _) => off("The token service"),
            };
        }
        if path == "/" {
            return account::http::text(StatusCode::OK, INDEX);
        }
        account::http::text(StatusCode::NOT_FOUND, "not found")
    }
}

/// A forward rule's message side over the embedded store, starting the worker in process.
fn local_forwarding(
    env: &impl Env,
    rules: &Rules,
    store: EmbeddedStore,
    late_channel: LocalLateChannel,
    clock: SharedClock,
) -> Result<MessageSide<EmbeddedStore, LocalLauncher>, Box<dyn std::error::Error>> {
    let config = ForwardConfig::from_env(env)?;
    let forwarder = HttpForwarder::new(config.secret, config.late_timeout, clock.clone())?;
    let worker = Worker::new(store.clone(), forwarder, late_channel, rules);
    let launcher = InProcessLauncher::new(Arc::new(worker));
    let webhook = WebhookConfig::from_env(env)?;
    // Deployed, the message function refuses to start like this; locally a sandbox account
    // (测试号, plaintext only) must still be able to try a forward rule.
    if let Err(refusal) = account::forward::check_pushes_are_encrypted(&webhook) {
        tracing::warn!("{refusal}; allowed by the local server only");
    }
    let replay_window = webhook.max_clock_skew_secs;
    Ok(MessageSide::new(store, launcher, clock)
        .with_replay_window(replay_window)
        .with_circuit_reply(account::forward::circuit_reply(env)?))
}

/// Where the fake WeChat API keeps its state beside the store at `store`:
/// `.local/store-fake.json` → `.local/store-fake.wechat.json`.
pub fn fake_wechat_state_path(store: &std::path::Path) -> std::path::PathBuf {
    store.with_extension("wechat.json")
}

/// `/2015-03-31/functions/{name}/invocations`: `api` reaches the api function, any other name
/// the token service.
fn is_invoke_path(path: &str) -> bool {
    invoked_function(path).is_some()
}

/// The function name of an invoke path.
fn invoked_function(path: &str) -> Option<&str> {
    path.strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .filter(|name| !name.is_empty() && !name.contains('/'))
}

fn off(what: &str) -> Response<Body> {
    account::http::text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "{what} is off: set WECHAT_APP_SECRET for the real WeChat API, \
             or LOCAL_FAKE_WECHAT=true for the bundled fake\n"
        ),
    )
}

const INDEX: &str = "WeChat Official Account backend (local development server)\n\
GET  /wechat              server URL verification (verify)\n\
POST /wechat              messages and events (message)\n\
GET  /oauth/authorize     web authorization (oauth); also /oauth/callback, /oauth/me, POST /oauth/logout\n\
GET  /jssdk/config?url=   wx.config signature for a page on JSSDK_ALLOWED_ORIGINS (oauth)\n\
GET  /demo                the demo page: sign-in, profile, wx.config (oauth)\n\
POST /2015-03-31/functions/refresh/invocations   the refresh function, as the Lambda Invoke API\n\
POST /2015-03-31/functions/api/invocations       the api function (WeChat's API, token added), likewise\n\
                                                 (loopback only, with the X-Local-Invoke-Key the banner prints)\n";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn dev_env(extra: &[(&str, &str)]) -> HashMap<String, String> {
        [
            ("WECHAT_TOKEN", "devtoken"),
            ("TABLE_NAME", "local"),
            ("PUBLIC_BASE_URL", "http://localhost:3000"),
            ("SESSION_SECRET", "local-development-session-secret-0000"),
        ]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn request(method: &str, uri: &str, body: &str) -> Request {
        lambda_http::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::Text(body.into()))
            .unwrap()
    }

    const KEY: &str = "test-invoke-key-0123456789";

    fn key() -> InvokeKey {
        InvokeKey::chosen(KEY).unwrap()
    }

    /// An invocation as `wx token --local` sends it: from loopback, to localhost, with the key.
    fn invoke(body: &str, key: &str) -> Request {
        invoke_function("refresh", body, key)
    }

    /// [`invoke`] of `function` (a name, possibly qualified and percent-encoded as the SDK sends it).
    fn invoke_function(function: &str, body: &str, key: &str) -> Request {
        let path = format!("/2015-03-31/functions/{function}/invocations");
        let mut req = request("POST", &path, body);
        req.headers_mut()
            .insert("host", "localhost:3000".parse().unwrap());
        req.headers_mut()
            .insert("x-local-invoke-key", key.parse().unwrap());
        req.extensions_mut()
            .insert(testkit::local_server::ClientAddr(
                "127.0.0.1:40000".parse().unwrap(),
            ));
        req
    }

    #[tokio::test]
    async fn without_a_secret_only_the_webhook_runs_and_the_rest_says_how_to_turn_it_on() {
        let mut env = dev_env(&[]);
        let app = App::build(&mut env, EmbeddedStore::in_memory(), key())
            .await
            .unwrap();
        assert!(matches!(app.wechat_api, WeChatApi::Off));
        let resp = app.route(request("GET", "/oauth/authorize", "")).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = String::from_utf8_lossy(resp.body().as_ref()).to_string();
        assert!(body.contains("LOCAL_FAKE_WECHAT"));
        let resp = app
            .route(request(
                "POST",
                "/2015-03-31/functions/refresh/invocations",
                "{}",
            ))
            .await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        // The webhook answers (400: the verification parameters are missing).
        let resp = app.route(request("GET", "/wechat", "")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let resp = app.route(request("GET", "/elsewhere", "")).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn with_the_fake_wechat_api_the_token_service_and_oauth_run() {
        let mut env = dev_env(&[("LOCAL_FAKE_WECHAT", "true")]);
        let app = App::build(&mut env, EmbeddedStore::in_memory(), key())
            .await
            .unwrap();
        let WeChatApi::Fake(fake) = &app.wechat_api else {
            panic!("expected the fake WeChat API");
        };
        assert_eq!(env["WECHAT_API_BASE"], fake.base_url());

        let resp = app.route(invoke(r#"{"action":"get"}"#, KEY)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let answer: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        assert!(
            answer["access_token"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        assert!(answer["expires_at"].as_i64().is_some());
        assert_eq!(fake.calls("/cgi-bin/stable_token"), 1);

        // A second get is served from the embedded store, not from WeChat.
        app.route(invoke(r#"{"action":"get"}"#, KEY)).await;
        assert_eq!(fake.calls("/cgi-bin/stable_token"), 1);

        let resp = app
            .route(request(
                "GET",
                "/oauth/authorize?scope=snsapi_base&return_to=/",
                "",
            ))
            .await;
        assert_eq!(resp.status(), StatusCode::FOUND);
        let location = resp.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(&format!("{}/connect/oauth2/authorize?", fake.base_url())));
    }

    #[tokio::test]
    async fn the_emulated_ticket_alias_answers_the_ticket_but_never_the_token() {
        let mut env = dev_env(&[("LOCAL_FAKE_WECHAT", "true")]);
        let app = App::build(&mut env, EmbeddedStore::in_memory(), key())
            .await
            .unwrap();
        for function in ["refresh%3Aticket", "refresh:ticket"] {
            let ticket = app
                .route(invoke_function(function, r#"{"action":"get_ticket"}"#, KEY))
                .await;
            assert_eq!(ticket.status(), StatusCode::OK);
            assert!(!ticket.headers().contains_key("x-amz-function-error"));
            let answer: Value = serde_json::from_slice(ticket.body().as_ref()).unwrap();
            assert!(
                answer["jsapi_ticket"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            );

            let refused = app
                .route(invoke_function(function, r#"{"action":"get"}"#, KEY))
                .await;
            assert_eq!(refused.headers()["x-amz-function-error"], "Unhandled");
            let error: Value = serde_json::from_slice(refused.body().as_ref()).unwrap();
            assert_eq!(error["errorType"], "NotOnThisEntry");
            assert!(error.get("access_token").is_none());
        }
        // Unqualified, the function answers the token as before.
        let token = app.route(invoke(r#"{"action":"get"}"#, KEY)).await;
        let answer: Value = serde_json::from_slice(token.body().as_ref()).unwrap();
        assert!(answer["access_token"].as_str().is_some());
    }

    #[tokio::test]
    async fn with_the_fake_the_demo_page_loads_the_fakes_jweixin_and_pages_are_signed_with_its_ticket()
     {
        let mut env = dev_env(&[
            ("LOCAL_FAKE_WECHAT", "true"),
            ("JSSDK_ALLOWED_ORIGINS", "http://localhost:3000"),
            ("DEMO_PAGE_ENABLED", "true"),
        ]);
        let app = App::build(&mut env, EmbeddedStore::in_memory(), key())
            .await
            .unwrap();
        let WeChatApi::Fake(fake) = &app.wechat_api else {
            panic!("expected the fake WeChat API");
        };
        let page = app.route(request("GET", "/demo", "")).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = String::from_utf8_lossy(page.body().as_ref()).to_string();
        assert!(html.contains(&format!("{}/open/js/jweixin-1.6.0.js", fake.base_url())));

        let resp = app
            .route(request(
                "GET",
                "/jssdk/config?url=http%3A%2F%2Flocalhost%3A3000%2Fdemo%23x",
                "",
            ))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let answer: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        let ticket = testkit::fake_wechat::lock(&fake.state().jssdk)
            .current()
            .map(str::to_string)
            .unwrap();
        assert_eq!(
            answer["signature"],
            wechat_protocol::signature::jssdk_signature(
                &ticket,
                answer["nonceStr"].as_str().unwrap(),
                answer["timestamp"].as_i64().unwrap(),
                "http://localhost:3000/demo"
            )
        );
    }

    #[tokio::test]
    async fn without_a_secret_the_js_sdk_routes_say_how_to_turn_them_on() {
        let mut env = dev_env(&[("DEMO_PAGE_ENABLED", "true")]);
        let app = App::build(&mut env, EmbeddedStore::in_memory(), key())
            .await
            .unwrap();
        for path in ["/demo", "/jssdk/config?url=x"] {
            let resp = app.route(request("GET", path, "")).await;
            assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        }
    }

    #[tokio::test]
    async fn a_bad_invocation_is_answered_as_lambda_reports_a_function_error() {
        let mut env = dev_env(&[("LOCAL_FAKE_WECHAT", "true")]);
        let app = App::build(&mut env, EmbeddedStore::in_memory(), key())
            .await
            .unwrap();
        let resp = app.route(invoke(r#"{"action":"delete"}"#, KEY)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-amz-function-error"], "Unhandled");
    }

    #[tokio::test]
    async fn an_invocation_without_the_runs_key_or_through_a_tunnel_gets_403_and_no_token() {
        let mut env = dev_env(&[("LOCAL_FAKE_WECHAT", "true")]);
        let app = App::build(&mut env, EmbeddedStore::in_memory(), key())
            .await
            .unwrap();
        let resp = app
            .route(invoke(r#"{"action":"get"}"#, "wrong-key-0123456789"))
            .await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body = String::from_utf8_lossy(resp.body().as_ref()).to_string();
        assert!(body.contains("X-Local-Invoke-Key"), "{body}");
        assert!(!body.contains("access_token"), "{body}");

        let mut tunnelled = invoke(r#"{"action":"get"}"#, KEY);
        tunnelled
            .headers_mut()
            .insert("host", "abc.trycloudflare.com".parse().unwrap());
        let resp = app.route(tunnelled).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let WeChatApi::Fake(fake) = &app.wechat_api else {
            panic!("expected the fake WeChat API");
        };
        assert_eq!(fake.calls("/cgi-bin/stable_token"), 0);
    }

    /// The receipt's status, read through the emulated api function.
    async fn receipt_status(app: &App, msgid: u64) -> String {
        let read = serde_json::json!({"action": "template_receipt", "msgid": msgid});
        let resp = app
            .route(invoke_function("api", &read.to_string(), KEY))
            .await;
        let answer: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        answer["body"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    #[tokio::test]
    async fn the_api_function_sends_through_the_fake_and_the_webhook_records_the_receipt() {
        use testkit::fake_wechat::template::{FAKE_TEMPLATE_ID, finish_xml};
        use wechat_protocol::wechat_side::{Account, Mode, sign_push};
        let mut env = dev_env(&[("LOCAL_FAKE_WECHAT", "true"), ("TEMPLATE_RECEIPTS", "true")]);
        let app = App::build(&mut env, EmbeddedStore::in_memory(), key())
            .await
            .unwrap();
        let send = serde_json::json!({"method": "POST", "path": "/cgi-bin/message/template/send", "body": {
            "touser": "oUser_1", "template_id": FAKE_TEMPLATE_ID, "data": {"thing1": {"value": "shipped"}}
        }});
        let resp = app
            .route(invoke_function("api", &send.to_string(), KEY))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let answer: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        assert_eq!(answer["outcome"], "sent", "{answer}");
        let msgid = answer["body"]["msgid"].as_u64().unwrap();
        assert_eq!(receipt_status(&app, msgid).await, "pending");

        // WeChat's event, as the fake would push it, to the local webhook.
        let WeChatApi::Fake(fake) = &app.wechat_api else {
            panic!("expected the fake WeChat API");
        };
        let sent = testkit::fake_wechat::lock(&fake.state().template).sent()[0].clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let xml = finish_xml(&sent, "success", now);
        let account = Account {
            token: "devtoken",
            crypto: None,
        };
        let push = sign_push(&account, Mode::Plaintext, &xml, &sent.touser, now, "n1").unwrap();
        // Hex, digits and the openid: nothing to escape.
        let query: Vec<String> = push.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let query = query.join("&");
        let resp = app
            .route(request("POST", &format!("/wechat?{query}"), &push.body))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(receipt_status(&app, msgid).await, "success");
    }

    #[test]
    fn only_well_formed_invoke_paths_reach_the_token_service() {
        assert!(is_invoke_path("/2015-03-31/functions/refresh/invocations"));
        assert!(!is_invoke_path("/2015-03-31/functions//invocations"));
        assert!(!is_invoke_path("/2015-03-31/functions/a/b/invocations"));
        assert!(!is_invoke_path("/2015-03-31/functions/refresh"));
    }
}

//! The local server's routes: the same handlers the Lambda functions run, on one HTTP server,
//! over the embedded store.
//!
//! | route | Lambda function |
//! |---|---|
//! | `GET`/`POST /wechat` | `verify` / `message` |
//! | `/oauth/*` | `oauth` |
//! | `POST /2015-03-31/functions/{name}/invocations` | `refresh`, as the Lambda Invoke API |

use std::collections::HashMap;
use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use shared::clock::SystemClock;
use shared::config::{flag_or, optional};
use shared::embedded::EmbeddedStore;
use shared::fake_wechat::{FAKE_APP_ID, FAKE_APP_SECRET, FakeWeChat};
use shared::oauth::{OAuth, OAuthConfig};
use shared::token::{TokenConfig, TokenService, answer_invoke_request};
use shared::webhook::Webhook;

pub type LocalTokenService = TokenService<EmbeddedStore, SystemClock>;

/// Where the token service and OAuth talk to WeChat.
pub enum WeChatApi {
    /// `LOCAL_FAKE_WECHAT=true`: the bundled fake WeChat API on a loopback port.
    Fake(FakeWeChat),
    /// `WECHAT_APP_SECRET` is set: the real WeChat API (`WECHAT_API_BASE`).
    Real,
    /// Neither: token refresh and OAuth are off; the webhook still works.
    Off,
}

pub struct App {
    pub webhook: Webhook,
    pub oauth: Option<OAuth<EmbeddedStore>>,
    pub tokens: Option<Arc<LocalTokenService>>,
    pub wechat_api: WeChatApi,
}

impl App {
    /// Build every handler from `env`; with `LOCAL_FAKE_WECHAT` the fake WeChat API is started
    /// first and `env` is pointed at it.
    pub async fn build(
        env: &mut HashMap<String, String>,
        store: EmbeddedStore,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let wechat_api = if flag_or(env, "LOCAL_FAKE_WECHAT", false)? {
            let app_id = optional(env, "WECHAT_APP_ID").unwrap_or_else(|| FAKE_APP_ID.into());
            let secret =
                optional(env, "WECHAT_APP_SECRET").unwrap_or_else(|| FAKE_APP_SECRET.into());
            let fake = FakeWeChat::start_with(([127, 0, 0, 1], 0).into(), &app_id, &secret).await?;
            for (name, value) in [
                ("WECHAT_APP_ID", app_id),
                ("WECHAT_APP_SECRET", secret),
                ("WECHAT_API_BASE", fake.base_url().to_string()),
                ("WECHAT_OPEN_BASE", fake.base_url().to_string()),
            ] {
                env.insert(name.into(), value);
            }
            WeChatApi::Fake(fake)
        } else if optional(env, "WECHAT_APP_SECRET").is_some() {
            WeChatApi::Real
        } else {
            WeChatApi::Off
        };

        let webhook = Webhook::from_env(env)?;
        let (oauth, tokens) = match wechat_api {
            WeChatApi::Off => (None, None),
            _ => {
                let oauth = OAuth::new(OAuthConfig::from_env(env)?, store.clone(), SystemClock);
                let tokens = TokenService::new(TokenConfig::from_env(env)?, store, SystemClock);
                (Some(oauth), Some(Arc::new(tokens)))
            }
        };
        Ok(Self {
            webhook,
            oauth,
            tokens,
            wechat_api,
        })
    }

    pub async fn route(&self, req: Request) -> Response<Body> {
        let path = req.uri().path();
        if path == "/wechat" {
            return self.webhook.handle(&req).await;
        }
        if path == "/oauth" || path.starts_with("/oauth/") {
            return match &self.oauth {
                Some(oauth) => oauth.handle(&req).await,
                None => off("OAuth"),
            };
        }
        if is_invoke_path(path) {
            return match (&self.tokens, req.method()) {
                (Some(tokens), &Method::POST) => answer_invoke_request(tokens, &req).await,
                (Some(_), _) => shared::http::text(StatusCode::METHOD_NOT_ALLOWED, "use POST"),
                (None, _) => off("The token service"),
            };
        }
        if path == "/" {
            return shared::http::text(StatusCode::OK, INDEX);
        }
        shared::http::text(StatusCode::NOT_FOUND, "not found")
    }
}

/// `/2015-03-31/functions/{name}/invocations`: any function name reaches the token service.
fn is_invoke_path(path: &str) -> bool {
    path.strip_prefix("/2015-03-31/functions/")
        .and_then(|rest| rest.strip_suffix("/invocations"))
        .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

fn off(what: &str) -> Response<Body> {
    shared::http::text(
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
POST /2015-03-31/functions/refresh/invocations   the refresh function, as the Lambda Invoke API\n";

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

    #[tokio::test]
    async fn without_a_secret_only_the_webhook_runs_and_the_rest_says_how_to_turn_it_on() {
        let mut env = dev_env(&[]);
        let app = App::build(&mut env, EmbeddedStore::in_memory())
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
        let app = App::build(&mut env, EmbeddedStore::in_memory())
            .await
            .unwrap();
        let WeChatApi::Fake(fake) = &app.wechat_api else {
            panic!("expected the fake WeChat API");
        };
        assert_eq!(env["WECHAT_API_BASE"], fake.base_url());

        let resp = app
            .route(request(
                "POST",
                "/2015-03-31/functions/refresh/invocations",
                r#"{"action":"get"}"#,
            ))
            .await;
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
        app.route(request(
            "POST",
            "/2015-03-31/functions/refresh/invocations",
            r#"{"action":"get"}"#,
        ))
        .await;
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
    async fn a_bad_invocation_is_answered_as_lambda_reports_a_function_error() {
        let mut env = dev_env(&[("LOCAL_FAKE_WECHAT", "true")]);
        let app = App::build(&mut env, EmbeddedStore::in_memory())
            .await
            .unwrap();
        let resp = app
            .route(request(
                "POST",
                "/2015-03-31/functions/refresh/invocations",
                r#"{"action":"delete"}"#,
            ))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-amz-function-error"], "Unhandled");
    }

    #[test]
    fn only_well_formed_invoke_paths_reach_the_token_service() {
        assert!(is_invoke_path("/2015-03-31/functions/refresh/invocations"));
        assert!(!is_invoke_path("/2015-03-31/functions//invocations"));
        assert!(!is_invoke_path("/2015-03-31/functions/a/b/invocations"));
        assert!(!is_invoke_path("/2015-03-31/functions/refresh"));
    }
}

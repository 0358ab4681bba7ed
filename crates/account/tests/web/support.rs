//! Harness for the OAuth integration tests: the `oauth` handler served over real HTTP on
//! loopback next to the fake WeChat API, a manual clock, and "browsers" (reqwest with a cookie
//! jar) that follow redirects hop by hop and record every response.

use std::sync::Arc;
use std::time::Duration;

use account::clock::{Clock, ManualClock, SystemClock};
use account::oauth::store::{OAuthStateStore, UserStore};
use account::oauth::{OAuth, OAuthConfig};
use lambda_http::{Body, Request, Response};
use reqwest::Url;
use reqwest::cookie::{CookieStore, Jar};
use testkit::fake_wechat::{FAKE_APP_ID, FAKE_APP_SECRET, FakeWeChat, lock};
use wechat_protocol::secret::Secret;

pub const SESSION_SECRET: &str = "test-session-secret-0123456789abcdef";
pub const ALLOWED_ORIGIN: &str = "https://shop.example";

/// A config for `public_base_url` talking to `fake`.
pub fn config(public_base_url: &str, fake: &FakeWeChat) -> OAuthConfig {
    let env = [
        ("WECHAT_APP_ID", FAKE_APP_ID),
        ("WECHAT_APP_SECRET", FAKE_APP_SECRET),
        ("PUBLIC_BASE_URL", public_base_url),
        ("SESSION_SECRET", SESSION_SECRET),
        ("OAUTH_ALLOWED_ORIGINS", ALLOWED_ORIGIN),
        ("TABLE_NAME", "unused-by-these-tests"),
        ("WECHAT_API_BASE", fake.base_url()),
        ("WECHAT_OPEN_BASE", fake.base_url()),
        ("WECHAT_HTTP_TIMEOUT_MS", "10000"),
    ];
    OAuthConfig::from_env(&env).expect("test config is valid")
}

/// The sns client of `config`'s app, over the real HTTP client.
pub fn sns_client(config: &OAuthConfig) -> account::oauth::SnsClient {
    let http = config.wechat.client().expect("an HTTP client to the fake");
    account::oauth::SnsClient::new(&config.wechat, http)
}

/// The oauth server, the fake WeChat it talks to, and the clock and store behind it.
pub struct Harness<S> {
    pub fake: FakeWeChat,
    pub store: S,
    pub clock: ManualClock,
    /// `http://127.0.0.1:PORT` of the oauth server.
    pub base: String,
    pub oauth: Arc<OAuth<S>>,
    server: tokio::task::JoinHandle<()>,
}

impl<S> Harness<S>
where
    S: OAuthStateStore + UserStore + Clone + 'static,
{
    pub async fn start(store: S) -> Self {
        Self::start_with(store, |_| {}).await
    }

    /// Start with the config adjusted by `adjust` (timeouts, ages).
    pub async fn start_with(store: S, adjust: impl FnOnce(&mut OAuthConfig)) -> Self {
        let fake = FakeWeChat::start().await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let mut config = config(&base, &fake);
        adjust(&mut config);
        let clock = ManualClock::at_ms(SystemClock.now_ms());
        let http = config.wechat.client().expect("an HTTP client to the fake");
        let oauth = Arc::new(OAuth::new(
            config,
            store.clone(),
            http,
            Arc::new(clock.clone()),
        ));
        let served = oauth.clone();
        let server = tokio::spawn(testkit::local_server::serve(listener, move |req| {
            let oauth = served.clone();
            async move { site(&oauth, req).await }
        }));
        Self {
            fake,
            store,
            clock,
            base,
            oauth,
            server,
        }
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    pub fn browser(&self) -> Browser {
        Browser::new()
    }
}

impl<S> Drop for Harness<S> {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The whole site: `/oauth/*` is the handler under test, any other path is an app page.
async fn site<S>(oauth: &OAuth<S>, req: Request) -> Response<Body>
where
    S: OAuthStateStore + UserStore + Clone,
{
    if req.uri().path().starts_with("/oauth/") {
        oauth.handle(&req).await
    } else {
        account::http::text(
            lambda_http::http::StatusCode::OK,
            format!("app page {}", req.uri()),
        )
    }
}

/// One response as the browser saw it.
#[derive(Debug, Clone)]
pub struct Hop {
    pub url: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Hop {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn path(&self) -> String {
        Url::parse(&self.url)
            .map(|u| u.path().to_string())
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A browser: its own cookie jar, redirects followed by hand so every hop is recorded.
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<Jar>,
    pub hops: Vec<Hop>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");
        Self {
            client,
            jar,
            hops: Vec::new(),
        }
    }

    async fn send(&mut self, method: reqwest::Method, url: &str) -> Hop {
        self.send_with(method, url, &[]).await
    }

    async fn send_with(
        &mut self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Hop {
        let mut request = self.client.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response.text().await.unwrap_or_default();
        let hop = Hop {
            url: url.to_string(),
            status,
            headers,
            body,
        };
        self.hops.push(hop.clone());
        hop
    }

    /// One GET, no redirect followed.
    pub async fn get(&mut self, url: &str) -> Hop {
        self.send(reqwest::Method::GET, url).await
    }

    pub async fn post(&mut self, url: &str) -> Hop {
        self.send(reqwest::Method::POST, url).await
    }

    /// One POST with extra request headers (`Origin`, `Sec-Fetch-Site`), no redirect followed.
    pub async fn post_with(&mut self, url: &str, headers: &[(&str, &str)]) -> Hop {
        self.send_with(reqwest::Method::POST, url, headers).await
    }

    /// GET and follow redirects until a non-redirect answer (at most 12 hops).
    pub async fn follow(&mut self, url: &str) -> Hop {
        let mut url = url.to_string();
        for _ in 0..12 {
            let hop = self.get(&url).await;
            match (hop.status, hop.location()) {
                (300..=399, Some(location)) => url = resolve(&url, location),
                _ => return hop,
            }
        }
        panic!("too many redirects from {url}");
    }

    /// The first recorded hop to `path` (e.g. the callback URL WeChat sent the browser to).
    pub fn hop_to(&self, path: &str) -> Option<&Hop> {
        self.hops.iter().find(|h| h.path() == path)
    }

    /// The `Cookie` header this browser would send to `url`.
    pub fn cookies_for(&self, url: &str) -> String {
        let url = Url::parse(url).expect("absolute url");
        self.jar
            .cookies(&url)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default()
    }

    /// Put a cookie in the jar as if the server had set it.
    pub fn set_cookie(&self, url: &str, cookie: &str) {
        let url = Url::parse(url).expect("absolute url");
        self.jar.add_cookie_str(cookie, &url);
    }
}

/// Resolve a `Location` against the URL it came from.
pub fn resolve(current: &str, location: &str) -> String {
    Url::parse(current)
        .and_then(|base| base.join(location))
        .map(|u| u.to_string())
        .unwrap_or_else(|_| location.to_string())
}

/// Percent-encode a query value.
pub fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The value of query parameter `name` in `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// All sns tokens the fake has issued: none of them may ever reach the browser.
pub fn issued_tokens(fake: &FakeWeChat) -> Vec<String> {
    lock(&fake.state().sns).issued_tokens()
}

/// Assert that no hop of `browser` carries any of `secrets` in a URL, header or body.
pub fn assert_nothing_leaked(browser: &Browser, secrets: &[String]) {
    assert!(
        !secrets.is_empty(),
        "expected the fake to have issued tokens"
    );
    for hop in &browser.hops {
        for secret in secrets {
            assert!(!hop.url.contains(secret), "token in URL {}", hop.url);
            assert!(!hop.body.contains(secret), "token in body of {}", hop.url);
            for (name, value) in &hop.headers {
                assert!(
                    !value.contains(secret),
                    "token in header {name} of {}",
                    hop.url
                );
            }
        }
    }
}

/// The session secret, for tests that forge or re-sign cookies.
pub fn session_key() -> Secret<Vec<u8>> {
    Secret::new(SESSION_SECRET.as_bytes().to_vec())
}

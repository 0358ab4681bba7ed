//! The domain verification file (`WECHAT_MP_VERIFY_FILE`) as the `oauth` function serves it:
//! through `compose::Web` (what the Lambda and `wx serve` route through), over real HTTP.

use std::sync::Arc;

use account::clock::SystemClock;
use account::compose::Web;
use account::jssdk::JssdkConfig;
use account::oauth::{OAuthConfig, VerifyFile};
use account::token::TokenService;
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::FakeWeChat;

use crate::support::config;

/// The web function with `file` configured, served on loopback; its base URL.
async fn serve(fake: &FakeWeChat, file: Option<&str>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut oauth: OAuthConfig = config(&base, fake);
    oauth.verify_file = file.map(|name| VerifyFile::parse(name).unwrap());
    let jssdk = JssdkConfig::from_env(&[("OTHER", "")]).unwrap();
    let web = Arc::new(
        Web::new(
            oauth,
            jssdk,
            EmbeddedStore::in_memory(),
            None::<Arc<TokenService<EmbeddedStore>>>,
            Arc::new(SystemClock),
        )
        .unwrap(),
    );
    let server = tokio::spawn(testkit::local_server::serve(listener, move |req| {
        let web = web.clone();
        async move { web.handle(&req).await }
    }));
    (base, server)
}

async fn get(url: &str) -> (u16, String, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn the_configured_file_answers_its_code_as_plain_text_and_other_names_are_404() {
    let fake = FakeWeChat::start().await;
    let (base, server) = serve(&fake, Some("MP_verify_AbC123xyz.txt")).await;
    let (status, content_type, body) = get(&format!("{base}/MP_verify_AbC123xyz.txt")).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    // Exactly the code: no newline, no quotes.
    assert_eq!(body, "AbC123xyz");
    for other in [
        "/MP_verify_Other1.txt",
        "/MP_verify_abc123xyz.txt",
        "/oauth/MP_verify_AbC123xyz.txt",
        "/MP_verify_AbC123xyz.txt/",
    ] {
        assert_eq!(get(&format!("{base}{other}")).await.0, 404, "{other}");
    }
    // The other routes are unchanged.
    assert_eq!(get(&format!("{base}/oauth/me")).await.0, 401);
    server.abort();
}

#[tokio::test]
async fn without_the_setting_no_verification_file_is_served() {
    let fake = FakeWeChat::start().await;
    let (base, server) = serve(&fake, None).await;
    assert_eq!(get(&format!("{base}/MP_verify_AbC123xyz.txt")).await.0, 404);
    server.abort();
}

#[test]
fn the_setting_is_read_with_the_oauth_configuration_and_a_bad_name_is_refused_by_name() {
    fn env(file: &str) -> [(&'static str, &str); 6] {
        [
            ("WECHAT_APP_ID", "wxfa4e000000000001"),
            ("WECHAT_APP_SECRET", "fake-app-secret"),
            ("PUBLIC_BASE_URL", "https://api.example.com"),
            ("SESSION_SECRET", "test-session-secret-0123456789abcdef"),
            ("TABLE_NAME", "t"),
            ("WECHAT_MP_VERIFY_FILE", file),
        ]
    }
    let config = OAuthConfig::from_env(&env("MP_verify_AbC123xyz.txt")).unwrap();
    assert_eq!(config.verify_file.unwrap().code(), "AbC123xyz");
    let err = OAuthConfig::from_env(&env("MP_verify_AbC.html")).unwrap_err();
    assert_eq!(err.variable, "WECHAT_MP_VERIFY_FILE");
    assert!(err.to_string().contains("MP_verify_"), "{err}");
}

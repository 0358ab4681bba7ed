//! The stack's secret read from a Secrets-Manager-compatible server on loopback (moto's
//! `moto_server`, installed by `make test` from requirements.txt): every function's configuration
//! loads from it, and a missing key, an unknown secret or an unreachable endpoint fails the cold
//! start with an error that names `SECRETS_ARN`, the secret and the cause, never a secret value.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use account::aws::SecretsEnv;
use account::config::ConfigError;
use account::config::vars::*;
use account::forward::ForwardConfig;
use account::oauth::OAuthConfig;
use account::token::TokenConfig;
use account::webhook::WebhookConfig;

const TOKEN: &str = "secretToken0123456789abcdefghijk";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
const SESSION: &str = "session-secret-0123456789abcdef0123456789";
const FORWARD: &str = "forward-secret-0123456789abcdef0123456789";

/// A `moto_server` on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    fn start() -> Self {
        let program = std::env::var_os("MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/moto_server")
            });
        assert!(
            program.exists(),
            "these tests need moto's server ({}): `make test` installs it (requirements.txt), \
             or set MOTO_SERVER",
            program.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto_server never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What Lambda sets (region, credentials), and the endpoint override.
fn aws_env(endpoint: &str) -> HashMap<String, String> {
    [
        (AWS_REGION, "us-east-1"),
        (AWS_ACCESS_KEY_ID, "test"),
        (AWS_SECRET_ACCESS_KEY, "test"),
        (AWS_SESSION_TOKEN, "test"),
        (AWS_ENDPOINT_URL_SECRETS_MANAGER, endpoint),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The client the functions build, from that environment.
fn client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    account::aws::secrets_manager_client(&aws_env(endpoint)).expect("a client")
}

/// A function's environment as the template sets it: the plain variables, SECRETS_ARN, and
/// what Lambda adds.
fn deployed_env(endpoint: &str, arn: &str) -> HashMap<String, String> {
    let mut env = aws_env(endpoint);
    env.extend(PLAIN.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env.insert(SECRETS_ARN.into(), arn.into());
    env
}

/// Creates a secret holding `json` and answers its ARN.
async fn secret(client: &aws_sdk_secretsmanager::Client, json: &str) -> String {
    let name = format!("wechat-{}", std::process::id());
    let created = client
        .create_secret()
        .name(name)
        .secret_string(json)
        .send()
        .await
        .expect("create the secret in moto");
    created.arn().expect("an ARN").to_string()
}

fn full_secret() -> String {
    serde_json::json!({
        WECHAT_TOKEN: TOKEN,
        WECHAT_ENCODING_AES_KEY: AES_KEY,
        WECHAT_APP_SECRET: APP_SECRET,
        SESSION_SECRET: SESSION,
        WECHAT_FORWARD_SECRET: FORWARD,
    })
    .to_string()
}

/// The plain variables each function keeps in its environment, beside SECRETS_ARN.
const PLAIN: [(&str, &str); 4] = [
    (WECHAT_APP_ID, "wx0000000000000000"),
    (PUBLIC_BASE_URL, "https://api.example.com"),
    (TABLE_NAME, "wechat"),
    // A plain value the secret shadows: the secret wins.
    (WECHAT_TOKEN, "plain-token-is-not-used"),
];

#[tokio::test]
async fn every_functions_configuration_loads_from_the_stacks_secret() {
    let moto = Moto::start();
    let client = client(&moto.url);
    let arn = secret(&client, &full_secret()).await;

    // verify, message: as in their `main`, from the environment alone.
    let deployed = deployed_env(&moto.url, &arn);
    let env = SecretsEnv::load(deployed, &[WECHAT_TOKEN, WECHAT_ENCODING_AES_KEY])
        .await
        .unwrap();
    let webhook = WebhookConfig::from_env(&env).unwrap();
    assert_eq!(webhook.token.expose(), TOKEN);
    assert!(webhook.crypto.is_some());
    // refresh
    let env = SecretsEnv::fetch(&client, &arn, PLAIN, &[WECHAT_APP_SECRET])
        .await
        .unwrap();
    let token = TokenConfig::from_env(&env).unwrap();
    assert_eq!(token.wechat.app_secret.expose(), APP_SECRET);
    // oauth
    let env = SecretsEnv::fetch(&client, &arn, PLAIN, &[WECHAT_APP_SECRET, SESSION_SECRET])
        .await
        .unwrap();
    let oauth = OAuthConfig::from_env(&env).unwrap();
    assert_eq!(oauth.wechat.app_secret.expose(), APP_SECRET);
    assert_eq!(oauth.session_secret.expose().as_slice(), SESSION.as_bytes());
    // worker
    let env = SecretsEnv::fetch(&client, &arn, PLAIN, &[WECHAT_FORWARD_SECRET])
        .await
        .unwrap();
    assert_eq!(
        ForwardConfig::from_env(&env).unwrap().secret.expose(),
        FORWARD
    );
    // A function reads only its own keys: the worker has no session key.
    assert!(OAuthConfig::from_env(&env).is_err());
}

fn assert_clear(err: &ConfigError, arn: &str, cause: &str) {
    let message = err.to_string();
    assert_eq!(err.variable, SECRETS_ARN);
    assert!(
        message.contains(arn) && message.contains(cause),
        "{message}"
    );
    for secret in [TOKEN, AES_KEY, APP_SECRET, SESSION, FORWARD] {
        assert!(!message.contains(secret), "{message}");
    }
}

#[tokio::test]
async fn a_key_missing_from_the_secret_fails_naming_the_key() {
    let moto = Moto::start();
    let client = client(&moto.url);
    let arn = secret(&client, &format!(r#"{{"{WECHAT_TOKEN}": "{TOKEN}"}}"#)).await;
    let keys = [WECHAT_TOKEN, WECHAT_ENCODING_AES_KEY];
    let err = SecretsEnv::fetch(&client, &arn, PLAIN, &keys)
        .await
        .unwrap_err();
    assert_clear(&err, &arn, "no key WECHAT_ENCODING_AES_KEY");
}

#[tokio::test]
async fn an_unknown_secret_fails_naming_it() {
    let moto = Moto::start();
    let client = client(&moto.url);
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf";
    let err = SecretsEnv::fetch(&client, arn, PLAIN, &[WECHAT_TOKEN])
        .await
        .unwrap_err();
    assert_clear(&err, arn, "ResourceNotFoundException");
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_naming_the_secret_and_the_cause() {
    // A port nothing listens on: bound, then released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = client(&format!("http://127.0.0.1:{port}"));
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wechat-AbCdEf";
    let err = SecretsEnv::fetch(&client, arn, PLAIN, &[WECHAT_TOKEN])
        .await
        .unwrap_err();
    assert_clear(&err, arn, "cannot read the secret");
    assert!(err.to_string().to_lowercase().contains("connect"), "{err}");
}

#[tokio::test]
async fn without_aws_credentials_the_cold_start_fails_naming_the_variable() {
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wechat-AbCdEf";
    let mut env = deployed_env("http://127.0.0.1:9", arn);
    env.remove(AWS_ACCESS_KEY_ID);
    let err = SecretsEnv::load(env, &[WECHAT_TOKEN]).await.unwrap_err();
    assert_eq!(err.variable, AWS_ACCESS_KEY_ID);
}

/// The server-URL check WeChat's console sends, signed with `token` at `at`.
fn url_check(token: &str, at: i64) -> lambda_http::Request {
    let query = wechat_protocol::wechat_side::verification_query(token, at, "77", "echo-me");
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    lambda_http::http::Request::builder()
        .method("GET")
        .uri(format!("https://api.example.com/wechat?{query}"))
        .body(lambda_http::Body::Empty)
        .expect("a request")
}

#[tokio::test]
async fn a_rotation_put_into_secrets_manager_reaches_a_warm_verify_function() {
    use account::clock::{Clock, ManualClock, SystemClock};
    use account::webhook::{NoReplies, PREVIOUS_TOKEN_KEYS, SecretKeys, Webhook, format_instant};
    use lambda_http::http::StatusCode;
    use std::sync::Arc;

    const NEW_TOKEN: &str = "NewToken0123456789abcdefghijklmn";
    let moto = Moto::start();
    let client = client(&moto.url);
    let arn = secret(&client, &full_secret()).await;
    // The verify function as compose builds it, from the environment alone.
    let env = SecretsEnv::load_with_optional(
        deployed_env(&moto.url, &arn),
        &[WECHAT_TOKEN],
        PREVIOUS_TOKEN_KEYS,
    )
    .await
    .unwrap();
    let now = SystemClock.now_s();
    let clock = ManualClock::at_ms(now * 1000);
    let webhook = Webhook::new(WebhookConfig::from_env(&env).unwrap(), NoReplies)
        .with_clock(Arc::new(clock.clone()))
        .with_key_source(SecretKeys::of(&env));
    assert_eq!(
        webhook.verify(&url_check(TOKEN, now)).await.status(),
        StatusCode::OK
    );

    // What `wx rotate token` has the operator put: the new token current, the old one previous.
    let mut rotated: serde_json::Value = serde_json::from_str(&full_secret()).unwrap();
    rotated[WECHAT_TOKEN_PREVIOUS] = TOKEN.into();
    rotated[WECHAT_TOKEN] = NEW_TOKEN.into();
    rotated[WECHAT_PREVIOUS_KEYS_UNTIL] = format_instant(now + 3_600).into();
    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(rotated.to_string())
        .send()
        .await
        .expect("put the rotated secret in moto");

    // The console's check with the new token, 31 s later: read again, then passed.
    clock.set_ms((now + 31) * 1000);
    let response = webhook.verify(&url_check(NEW_TOKEN, now + 31)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(webhook.keys().current_token().expose(), NEW_TOKEN);
    // WeChat's pushes signed with the old token still pass during the grace.
    assert_eq!(
        webhook.verify(&url_check(TOKEN, now + 32)).await.status(),
        StatusCode::OK
    );
}

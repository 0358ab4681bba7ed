//! The development server behind `make run`: serves every Lambda function's handler on one local
//! HTTP server, over an embedded store persisted in `.local/` (so restarts keep the access_token
//! and do not burn quota), refreshing the token in the background as the schedule would.
//!
//! Configuration comes from the real environment, then a `.env` file in the current directory,
//! then the development defaults below (announced in the banner).

mod app;
mod env;
mod invoke;

use std::collections::HashMap;
use std::error::Error;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use shared::config::vars::{
    DEMO_PAGE_ENABLED, HOST, JSSDK_ALLOWED_ORIGINS, LOCAL_FAKE_WECHAT, LOCAL_REFRESH_INTERVAL_SECS,
    LOCAL_STORE, PORT, PUBLIC_BASE_URL, SESSION_SECRET, TABLE_NAME, WECHAT_API_BASE,
    WECHAT_FORWARD_SECRET,
};
use shared::config::{optional, parsed_or};
use shared::embedded::EmbeddedStore;
use shared::webhook::{ENCODING_AES_KEY_VARIABLE, TOKEN_VARIABLE};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use app::{App, LocalTokenService, WeChatApi};

/// Values used when neither the environment nor `.env` sets a variable. None of them is fit for
/// production; the banner names the ones in use.
const DEV_DEFAULTS: &[(&str, &str)] = &[
    (HOST, "127.0.0.1"),
    (PORT, "3000"),
    (TOKEN_VARIABLE, "devtoken"),
    (LOCAL_STORE, DEFAULT_STORE),
    (LOCAL_REFRESH_INTERVAL_SECS, "300"),
    (TABLE_NAME, "local"),
    (SESSION_SECRET, "local-development-only-session-secret-0000"),
    (
        WECHAT_FORWARD_SECRET,
        "local-development-only-forward-secret-000",
    ),
];

const DOTENV_FILE: &str = ".env";
const DEFAULT_STORE: &str = ".local/store.json";
const DEFAULT_FAKE_STORE: &str = ".local/store-fake.json";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let dotenv = match std::fs::read_to_string(DOTENV_FILE) {
        Ok(text) => env::parse_dotenv(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => env::DotEnv::default(),
        Err(e) => return Err(format!("cannot read {DOTENV_FILE}: {e}").into()),
    };
    for warning in &dotenv.warnings {
        tracing::warn!("{warning}");
    }
    // `vars_os`: a variable that is not Unicode is skipped rather than aborting the server.
    let real = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let (mut env, defaulted) = env::merge_env(real, &dotenv.vars, DEV_DEFAULTS);

    let host = optional(&env, HOST).unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = parsed_or(&env, PORT, 3000)?;
    let listener = listen(&host, port).await?;
    let address = listener.local_addr()?;
    let base = format!("http://{}:{}", display_host(&host), address.port());
    // OAuth accepts plain http only on localhost: a LAN HOST still gets a working default.
    env.entry(PUBLIC_BASE_URL.into())
        .or_insert_with(|| format!("http://localhost:{}", address.port()));
    // The demo page is always on here, and pages on this server's own origin are signed.
    env.insert(DEMO_PAGE_ENABLED.into(), "true".into());
    let own_origin = origin_of(&env[PUBLIC_BASE_URL]).to_string();
    env.entry(JSSDK_ALLOWED_ORIGINS.into())
        .or_insert(own_origin);

    let store_path = store_path(&env, &defaulted)?;
    let store = EmbeddedStore::open(&store_path)?;
    let app = Arc::new(App::build(&mut env, store).await?);

    print_banner(&env, &defaulted, &base, &store_path, &app);
    if let Some(tokens) = &app.tokens {
        let every = Duration::from_secs(parsed_or(&env, LOCAL_REFRESH_INTERVAL_SECS, 300)?.max(1));
        tokio::spawn(refresh_on_schedule(tokens.clone(), every));
    }
    let server = shared::local_server::serve(listener, move |req| {
        let app = app.clone();
        async move { app.route(req).await }
    });
    tokio::select! {
        () = server => {}
        signal = stop_signal() => {
            let name = signal?;
            eprintln!("\n{name}: local server stopped");
        }
    }
    Ok(())
}

/// Why the server could not listen; each says what to change.
#[derive(Debug, thiserror::Error)]
enum ListenError {
    #[error(
        "port {port} on {host} is already in use (another `make run`?); stop that server, or set \
         PORT={next} (in the environment or .env) to use another port"
    )]
    PortInUse { host: String, port: u16, next: u16 },
    #[error("cannot listen on {host} port {port}: {source} (check HOST and PORT)")]
    Other {
        host: String,
        port: u16,
        source: std::io::Error,
    },
}

async fn listen(host: &str, port: u16) -> Result<TcpListener, ListenError> {
    TcpListener::bind((host, port)).await.map_err(|source| {
        let host = host.to_string();
        if source.kind() == std::io::ErrorKind::AddrInUse {
            ListenError::PortInUse {
                host,
                port,
                next: port.checked_add(1).unwrap_or(3001),
            }
        } else {
            ListenError::Other { host, port, source }
        }
    })
}

/// Ctrl-C (SIGINT) or SIGTERM: the server stops and the process exits 0, so `make run` ends
/// without make reporting the recipe as killed.
async fn stop_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = interrupt.recv() => {
            // Ctrl-C reaches `make` too. GNU make 4.3 prints "wait: No child processes" when
            // its child has exited before make's own SIGINT handler runs: let make go first.
            tokio::time::sleep(INTERRUPT_GRACE).await;
            Ok("interrupted")
        }
        _ = terminate.recv() => Ok("terminated"),
    }
}

const INTERRUPT_GRACE: Duration = Duration::from_millis(200);

/// The embedded store's file. Against the fake WeChat API the default is a separate file, so
/// a fake token never ends up served as the real account's token.
fn store_path(env: &HashMap<String, String>, defaulted: &[&str]) -> Result<String, Box<dyn Error>> {
    let path = optional(env, LOCAL_STORE).unwrap_or_else(|| DEFAULT_STORE.into());
    let fake = shared::config::flag_or(env, LOCAL_FAKE_WECHAT, false)?;
    Ok(if fake && defaulted.contains(&LOCAL_STORE) {
        DEFAULT_FAKE_STORE.into()
    } else {
        path
    })
}

/// What the EventBridge schedule does in AWS: run the scheduled refresh every `every`.
async fn refresh_on_schedule(tokens: Arc<LocalTokenService>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match tokens.on_schedule().await {
            Ok(report) if report.outcome.is_failure() => {
                tracing::warn!(outcome = report.outcome.code(), detail = %report.outcome, "scheduled token refresh failed");
            }
            Ok(report) => tracing::info!(
                outcome = report.outcome.code(),
                token = report.token.as_ref().map(|t| t.fingerprint()),
                "scheduled token refresh"
            ),
            Err(e) => tracing::warn!(error = %e, "scheduled token refresh failed"),
        }
    }
}

/// `scheme://host[:port]` of a base URL (what follows is a path).
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

/// `localhost` for the loopback and unspecified addresses: what a browser and the WeChat
/// sandbox's tunnel will use, and what `PUBLIC_BASE_URL` accepts over plain http.
fn display_host(host: &str) -> &str {
    match host {
        "127.0.0.1" | "0.0.0.0" | "::" | "::1" => "localhost",
        other => other,
    }
}

fn print_banner(
    env: &HashMap<String, String>,
    defaulted: &[&str],
    base: &str,
    store: &str,
    app: &App,
) {
    let token = env
        .get(TOKEN_VARIABLE)
        .map(String::as_str)
        .unwrap_or_default();
    let safe_mode = if optional(env, ENCODING_AES_KEY_VARIABLE).is_some() {
        "on (EncodingAESKey set: compatible/safe mode)"
    } else {
        "off (plaintext mode)"
    };
    println!("WeChat Official Account backend (local development server)");
    println!("  Webhook URL:   {base}/wechat");
    // The local token is printed on purpose: it is what the developer pastes into the sandbox.
    println!("  Token:         {token}");
    println!("  Safe mode:     {safe_mode}");
    println!("  Store:         {store} (embedded; survives restarts)");
    match &app.wechat_api {
        WeChatApi::Fake(fake) => {
            println!(
                "  WeChat API:    bundled fake at {} (LOCAL_FAKE_WECHAT)",
                fake.base_url()
            );
        }
        WeChatApi::Real => {
            let api = optional(env, WECHAT_API_BASE)
                .unwrap_or_else(|| shared::config::DEFAULT_API_BASE.into());
            println!(
                "  WeChat API:    {api} (real; this machine's IP must be on the account's whitelist)"
            );
        }
        WeChatApi::Off => {
            println!(
                "  WeChat API:    off: no WECHAT_APP_SECRET, so token refresh and OAuth are off"
            );
            println!(
                "                 (set it, or LOCAL_FAKE_WECHAT=true to use the bundled fake)"
            );
        }
    }
    if app.tokens.is_some() {
        // A `fileb://` payload is read the same way by AWS CLI v1 and v2 (an inline one is not).
        println!("  access_token:  refreshed in the background; get it as callers of the refresh");
        println!("                 function do (AWS CLI v1 or v2; any region, dummy credentials):");
        println!("                 echo '{{\"action\":\"get\"}}' > get.json");
        println!(
            "                 aws lambda invoke --endpoint-url {base} --function-name refresh \\"
        );
        println!("                   --payload fileb://get.json out.json");
    }
    if app.oauth.is_some() {
        println!(
            "  OAuth:         {base}/oauth/authorize?scope=snsapi_userinfo&return_to=/oauth/me"
        );
    }
    if app.jssdk.is_some() {
        println!("  Demo page:     {base}/demo (sign-in, profile, wx.config)");
    }
    if !defaulted.is_empty() {
        println!(
            "  Development defaults in use (not for production): {}",
            defaulted.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_fake_wechat_api_gets_its_own_store_unless_one_is_named() {
        let fake = env(&[
            ("LOCAL_FAKE_WECHAT", "true"),
            ("LOCAL_STORE", DEFAULT_STORE),
        ]);
        assert_eq!(
            store_path(&fake, &["LOCAL_STORE"]).unwrap(),
            DEFAULT_FAKE_STORE
        );
        let named = env(&[
            ("LOCAL_FAKE_WECHAT", "true"),
            ("LOCAL_STORE", "/tmp/s.json"),
        ]);
        assert_eq!(store_path(&named, &[]).unwrap(), "/tmp/s.json");
        let real = env(&[("LOCAL_STORE", DEFAULT_STORE)]);
        assert_eq!(store_path(&real, &["LOCAL_STORE"]).unwrap(), DEFAULT_STORE);
    }

    #[tokio::test]
    async fn a_port_in_use_is_reported_with_the_address_the_port_and_the_variable_to_change() {
        let taken = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = listen("127.0.0.1", port).await.unwrap_err();
        assert!(matches!(err, ListenError::PortInUse { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("port {port} on 127.0.0.1 is already in use")),
            "{message}"
        );
        assert!(message.contains("PORT="), "{message}");
    }

    #[tokio::test]
    async fn a_free_port_is_listened_on() {
        let listener = listen("127.0.0.1", 0).await.unwrap();
        assert!(listener.local_addr().unwrap().port() > 0);
    }

    #[test]
    fn the_origin_of_a_base_url_drops_its_path() {
        assert_eq!(origin_of("http://localhost:3000"), "http://localhost:3000");
        assert_eq!(origin_of("https://abc.example/prod"), "https://abc.example");
    }

    #[test]
    fn loopback_and_wildcard_hosts_are_shown_as_localhost() {
        assert_eq!(display_host("127.0.0.1"), "localhost");
        assert_eq!(display_host("0.0.0.0"), "localhost");
        assert_eq!(display_host("192.168.1.5"), "192.168.1.5");
    }
}

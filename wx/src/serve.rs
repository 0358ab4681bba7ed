//! `wx serve`, the development server behind `make run`: serves every Lambda function's handler
//! on one local HTTP server, over an embedded store persisted in `.local/` (so restarts keep the
//! access_token and do not burn quota), refreshing the token in the background as the schedule
//! would.
//!
//! Configuration comes from the real environment, then a `.env` file in the current directory,
//! then the development defaults of [`crate::config`] (announced in the banner).

use std::collections::HashMap;
use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use account::config::vars::{
    DEMO_PAGE_ENABLED, HOST, JSSDK_ALLOWED_ORIGINS, LOCAL_FAKE_WECHAT, LOCAL_INVOKE_KEY,
    LOCAL_REFRESH_INTERVAL_SECS, LOCAL_STORE, PORT, PUBLIC_BASE_URL, WECHAT_API_BASE,
};
use account::config::vars::{
    WECHAT_APP_ID, WECHAT_ENCODING_AES_KEY, WECHAT_FORWARD_SECRET, WECHAT_REQUIRE_ENCRYPTION,
    WECHAT_TOKEN,
};
use account::config::{flag_or, optional, parsed_or};
use table::embedded::EmbeddedStore;
use tokio::net::TcpListener;

use testkit::fake_wechat::template::PushTarget;
use testkit::fake_wechat::{FAKE_APP_ID, custom};
use wechat_protocol::crypto::MessageCrypto;
use wechat_protocol::wechat_side::Mode;

use crate::app::{App, LocalTokenService, WeChatApi};
use crate::config::{Config, DEFAULT_FAKE_STORE, DEFAULT_STORE};
use crate::invoke::{InvokeKey, MIN_KEY_LEN};
use crate::run_file::{self, RunInfo};

/// Serve until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> Result<(), Box<dyn Error>> {
    let Config { mut env, defaulted } = config;
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

    let invoke_key = match optional(&env, LOCAL_INVOKE_KEY) {
        Some(chosen) => InvokeKey::chosen(&chosen).ok_or_else(|| {
            format!("{LOCAL_INVOKE_KEY} must be at least {MIN_KEY_LEN} characters (unset: a random key per run)")
        })?,
        None => InvokeKey::random().map_err(|e| format!("no random invoke key: {e}"))?,
    };
    let store_path = store_path(&env, &defaulted)?;
    let store = EmbeddedStore::open(&store_path)?;
    let app = Arc::new(App::build(&mut env, store, invoke_key).await?);

    // One run file per port: a second server on another port leaves the first one's alone.
    let run_file = run_file::path_for(Path::new(""), address.port());
    let info = RunInfo {
        url: format!("http://localhost:{}", address.port()),
        invoke_key: app.invoke_key.expose().to_string(),
        wechat_api: app.tokens.as_ref().map(|_| {
            optional(&env, WECHAT_API_BASE).unwrap_or_else(|| wechat_api::DEFAULT_API_BASE.into())
        }),
        app_id: optional(&env, WECHAT_APP_ID),
        safe_mode: Some(safe_mode(&env).0.to_string()),
        default_token: defaulted.contains(&WECHAT_TOKEN),
    };
    print_banner(&env, &defaulted, &base, &store_path, &app, &run_file);
    for other in run_file::others_running(Path::new(""), address.port()) {
        tracing::warn!(
            other = %other.url,
            "another local server runs in this directory: `wx … --local` now needs --local=URL \
             to pick one, and both write the same store files unless LOCAL_STORE differs (give \
             this one its own, e.g. LOCAL_STORE=.local/store-{}.json)",
            address.port()
        );
    }
    // Last: the run file tells `wx` (and the CLI tests) that the server is up, banner printed.
    if let Err(e) = run_file::write(&run_file, &info) {
        tracing::warn!(error = %e, file = %run_file.display(), "cannot write the run file; `wx --local` commands need --local URL and LOCAL_INVOKE_KEY");
    }
    if let Some(tokens) = &app.tokens {
        let every = Duration::from_secs(parsed_or(&env, LOCAL_REFRESH_INTERVAL_SECS, 300)?.max(1));
        tokio::spawn(refresh_on_schedule(tokens.clone(), every));
    }
    if let WeChatApi::Fake(_) = &app.wechat_api {
        let webhook = format!("http://127.0.0.1:{}/wechat", address.port());
        match ReceiptPusher::from_env(&env, webhook) {
            Ok(pusher) => {
                tokio::spawn(pusher.run(app.clone()));
            }
            Err(e) => tracing::warn!(error = %e, "the fake will not push template receipts"),
        }
    }
    let server = testkit::local_server::serve(listener, move |req| {
        let app = app.clone();
        async move { app.route(req).await }
    });
    let stopped = tokio::select! {
        () = server => Ok(()),
        signal = stop_signal() => signal.map(|name| eprintln!("\n{name}: local server stopped")),
    };
    // Only this run's file, and only if it is still this run's: a server started on this port
    // after this one stopped listening may have replaced it.
    if run_file::read(&run_file).is_some_and(|current| current == info) {
        run_file::remove(&run_file);
    }
    Ok(stopped?)
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
    let fake = account::config::flag_or(env, LOCAL_FAKE_WECHAT, false)?;
    Ok(if fake && defaulted.contains(&LOCAL_STORE) {
        DEFAULT_FAKE_STORE.into()
    } else {
        path
    })
}

/// What the EventBridge schedule does in AWS: run the scheduled refresh (the token, and the
/// jsapi_ticket once a page asked for one) every `every`.
async fn refresh_on_schedule(tokens: Arc<LocalTokenService>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match tokens.on_schedule_both().await {
            Ok(report) => match report.failure() {
                Some(failure) => tracing::warn!(
                    outcome = failure.code(),
                    detail = %failure,
                    "scheduled refresh failed"
                ),
                None => tracing::info!(
                    outcome = report.token.outcome.code(),
                    token = report.token.token.as_ref().map(|t| t.fingerprint()),
                    ticket_outcome = report.ticket.outcome.code(),
                    "scheduled refresh"
                ),
            },
            Err(e) => tracing::warn!(error = %e, "scheduled refresh failed"),
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

/// The webhook's safe mode, mirroring its own rule (with a key, encrypted pushes only unless
/// opted out): the run file's code (`off`, `required`, `optional`) and the banner's text.
fn safe_mode(env: &HashMap<String, String>) -> (&'static str, &'static str) {
    let key_set = optional(env, WECHAT_ENCODING_AES_KEY).is_some();
    match (key_set, flag_or(env, WECHAT_REQUIRE_ENCRYPTION, key_set)) {
        (false, _) => ("off", "off (plaintext mode)"),
        (true, Ok(false)) => (
            "optional",
            "on, plaintext pushes accepted too (WECHAT_REQUIRE_ENCRYPTION=false: migration only)",
        ),
        (true, _) => (
            "required",
            "on (EncodingAESKey set: encrypted pushes only, 兼容模式 or 安全模式)",
        ),
    }
}

fn print_banner(
    env: &HashMap<String, String>,
    defaulted: &[&str],
    base: &str,
    store: &str,
    app: &App,
    run_file: &Path,
) {
    print!("{}", banner(env, defaulted, base, store, app, run_file));
}

/// The banner's lines, each ending in a newline.
fn banner(
    env: &HashMap<String, String>,
    defaulted: &[&str],
    base: &str,
    store: &str,
    app: &App,
    run_file: &Path,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut line = |text: String| {
        let _ = writeln!(out, "{text}");
    };
    let token = env
        .get(WECHAT_TOKEN)
        .map(String::as_str)
        .unwrap_or_default();
    let run_file = run_file.display();
    line("WeChat Official Account backend (local development server)".into());
    line(format!("  Webhook URL:   {base}/wechat"));
    // The local token is printed on purpose: it is what the developer pastes into the sandbox.
    line(format!("  Token:         {token}"));
    line(format!("  Safe mode:     {}", safe_mode(env).1));
    line(match (optional(env, WECHAT_APP_ID), &app.wechat_api) {
        (Some(id), WeChatApi::Fake(_)) if id == FAKE_APP_ID => {
            format!("  App ID:        {id} (the bundled fake's; set WECHAT_APP_ID for another)")
        }
        (Some(id), _) => format!("  App ID:        {id} (WECHAT_APP_ID)"),
        (None, _) => {
            "  App ID:        not set (WECHAT_APP_ID; needed with an EncodingAESKey)".into()
        }
    });
    line(format!(
        "  Store:         {store} (embedded; survives restarts)"
    ));
    match &app.wechat_api {
        WeChatApi::Fake(fake) => {
            line(format!(
                "  WeChat API:    bundled fake at {} (LOCAL_FAKE_WECHAT)",
                fake.base_url()
            ));
        }
        WeChatApi::Real => {
            let api = optional(env, WECHAT_API_BASE)
                .unwrap_or_else(|| wechat_api::DEFAULT_API_BASE.into());
            line(format!(
                "  WeChat API:    {api} (real; this machine's IP must be on the account's whitelist)"
            ));
        }
        WeChatApi::Off => {
            line(
                "  WeChat API:    off: no WECHAT_APP_SECRET, so token refresh and OAuth are off"
                    .into(),
            );
            line(
                "                 (set it, or LOCAL_FAKE_WECHAT=true to use the bundled fake)"
                    .into(),
            );
        }
    }
    let forward_urls = app.webhook.handler().inner().inner().rules().forward_urls();
    if forward_urls.is_empty() {
        line("  Forwarding:    off (no forward rule in the reply rules)".into());
    } else {
        line(format!(
            "  Forwarding:    on, to {}",
            forward_urls.join(", ")
        ));
        // A development default is printed on purpose: the service must be given the same value.
        line(match defaulted.contains(&WECHAT_FORWARD_SECRET) {
            true => format!(
                "                 signed with WECHAT_FORWARD_SECRET={} (a development default: \
                 give your service the same)",
                env.get(WECHAT_FORWARD_SECRET)
                    .map(String::as_str)
                    .unwrap_or_default()
            ),
            false => "                 signed with WECHAT_FORWARD_SECRET (as set; give your \
                      service the same)"
                .into(),
        });
        line(match &app.wechat_api {
            WeChatApi::Fake(fake) => format!(
                "                 late answers: the fake's customer-service API, listed at \
                 {}{} and in this log",
                fake.base_url(),
                custom::MESSAGES_PATH
            ),
            WeChatApi::Real => {
                "                 late answers: WeChat's customer-service API (real users)".into()
            }
            WeChatApi::Off => {
                "                 late answers: cannot be sent (no token service; see above)".into()
            }
        });
    }
    if app.tokens.is_some() {
        line(
            "  access_token:  refreshed in the background; get it as callers of the refresh".into(),
        );
        line("                 function do: cargo run -p wx -- token get --local".into());
        // The key is printed on purpose: other local clients (LambdaTokenSource) need it.
        line(format!(
            "  Lambda Invoke: {base}/2015-03-31/functions/refresh/invocations, loopback only, with"
        ));
        line(format!(
            "                 header X-Local-Invoke-Key: {} (new every run; also in {run_file})",
            app.invoke_key.expose()
        ));
    }
    if app.web.is_some() {
        line(format!(
            "  OAuth:         {base}/oauth/authorize?scope=snsapi_userinfo&return_to=/oauth/me"
        ));
        line(format!(
            "  Demo page:     {base}/demo (sign-in, profile, wx.config)"
        ));
    }
    if !defaulted.is_empty() {
        line(format!(
            "  Development defaults in use (not for production): {}",
            defaulted.join(", ")
        ));
    }
    out
}

/// What WeChat does once it has delivered a template message: a `TEMPLATESENDJOBFINISH` push to
/// the webhook, a moment later. The fake delivers at once; this pushes `success` for each new
/// delivery, signed (and sealed) with this server's own settings, so that under `make run` a send
/// through the api function gets its receipt end to end (recorded with `TEMPLATE_RECEIPTS=true`).
struct ReceiptPusher {
    webhook: String,
    token: String,
    crypto: Option<MessageCrypto>,
}

impl ReceiptPusher {
    fn from_env(env: &HashMap<String, String>, webhook: String) -> Result<Self, Box<dyn Error>> {
        let token = optional(env, WECHAT_TOKEN).ok_or("no WECHAT_TOKEN")?;
        // The fake answers for WECHAT_APP_ID, or its own AppID when none is set (`App::build`).
        let app_id = account::config::app_id(env)?.unwrap_or_else(|| FAKE_APP_ID.into());
        let crypto = optional(env, WECHAT_ENCODING_AES_KEY)
            .map(|key| MessageCrypto::new(&key, &app_id))
            .transpose()?;
        Ok(Self {
            webhook,
            token,
            crypto,
        })
    }

    async fn run(self, app: Arc<App>) {
        let WeChatApi::Fake(fake) = &app.wechat_api else {
            return;
        };
        let delivered = || {
            testkit::fake_wechat::lock(&fake.state().template)
                .sent()
                .len()
        };
        // Deliveries of earlier runs (the fake's state persists) were pushed then.
        let mut pushed = delivered();
        let mode = match self.crypto {
            Some(_) => Mode::Safe,
            None => Mode::Plaintext,
        };
        let target = PushTarget {
            url: &self.webhook,
            token: &self.token,
            crypto: self.crypto.as_ref(),
            mode,
        };
        let mut ticks = tokio::time::interval(RECEIPT_DELAY);
        loop {
            ticks.tick().await;
            let new: Vec<u64> = {
                let templates = testkit::fake_wechat::lock(&fake.state().template);
                let sent = templates.sent();
                sent[pushed.min(sent.len())..]
                    .iter()
                    .map(|sent| sent.msgid)
                    .collect()
            };
            for msgid in new {
                pushed += 1;
                match fake.push_template_finish(msgid, "success", &target).await {
                    Ok((200, _)) => {}
                    Ok((status, _)) => {
                        tracing::warn!(
                            msgid,
                            status,
                            "the webhook refused the fake's template receipt"
                        )
                    }
                    Err(e) => {
                        tracing::warn!(msgid, error = %e, "the fake's template receipt was not pushed")
                    }
                }
            }
        }
    }
}

/// How soon after a delivery the fake pushes its receipt (WeChat's come within seconds).
const RECEIPT_DELAY: Duration = Duration::from_secs(1);

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

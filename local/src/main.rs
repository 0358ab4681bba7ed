//! The development server behind `make run`: serves the Lambda handlers on one local HTTP server.
//!
//! Configuration comes from the real environment, then a `.env` file in the current directory,
//! then the development defaults below (announced in the banner), in that order of precedence.
//! `HOST` (default 127.0.0.1) and `PORT` (default 3000) choose where to listen.

use std::collections::HashMap;
use std::error::Error;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::config::{optional, parsed_or};
use shared::webhook::{ENCODING_AES_KEY_VARIABLE, TOKEN_VARIABLE, Webhook};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Values used when neither the environment nor `.env` sets a variable. Extend this list when a
/// handler needs more configuration to run locally.
const DEV_DEFAULTS: &[(&str, &str)] = &[
    ("HOST", "127.0.0.1"),
    ("PORT", "3000"),
    (TOKEN_VARIABLE, "dev-token"),
];

const DOTENV_FILE: &str = ".env";

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
        Ok(text) => parse_dotenv(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
        Err(e) => return Err(format!("cannot read {DOTENV_FILE}: {e}").into()),
    };
    // `vars_os`: a variable that is not Unicode is skipped rather than aborting the server.
    let real = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let (env, defaulted) = merge_env(real, &dotenv, DEV_DEFAULTS);

    let webhook = Arc::new(Webhook::from_env(&env)?);
    let host = optional(&env, "HOST").unwrap_or_else(|| "127.0.0.1".into());
    let port: u16 = parsed_or(&env, "PORT", 3000)?;
    let listener = TcpListener::bind((host.as_str(), port)).await?;
    let address = listener.local_addr()?;

    print_banner(&env, &defaulted, &format!("http://{address}/wechat"));
    shared::local_server::serve(listener, move |req| {
        let webhook = webhook.clone();
        async move { route(&webhook, req).await }
    })
    .await;
    Ok(())
}

async fn route(webhook: &Webhook, req: Request) -> Response<Body> {
    match req.uri().path() {
        "/wechat" => webhook.handle(&req).await,
        _ => shared::http::text(StatusCode::NOT_FOUND, "not found"),
    }
}

fn print_banner(env: &HashMap<String, String>, defaulted: &[&str], url: &str) {
    let token = env
        .get(TOKEN_VARIABLE)
        .map(String::as_str)
        .unwrap_or_default();
    let safe_mode = if optional(env, ENCODING_AES_KEY_VARIABLE).is_some() {
        "on (EncodingAESKey set: compatible/safe mode)"
    } else {
        "off (plaintext mode)"
    };
    println!("WeChat webhook (local development server)");
    println!("  URL:       {url}");
    // The local token is printed on purpose: it is what the developer pastes into the sandbox.
    println!("  Token:     {token}");
    println!("  Safe mode: {safe_mode}");
    if !defaulted.is_empty() {
        println!("  Using development defaults for: {}", defaulted.join(", "));
    }
}

/// The configuration the local server runs with: `real` (the process environment) over
/// `dotenv` over `defaults`; blank values count as unset. Also returns the names that fell back
/// to a default, for the banner.
fn merge_env<'d>(
    real: impl IntoIterator<Item = (String, String)>,
    dotenv: &HashMap<String, String>,
    defaults: &[(&'d str, &str)],
) -> (HashMap<String, String>, Vec<&'d str>) {
    let mut env: HashMap<String, String> = defaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut overridden = Vec::new();
    let layers = dotenv
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(real);
    for (key, value) in layers.filter(|(_, v)| !v.trim().is_empty()) {
        overridden.push(key.clone());
        env.insert(key, value);
    }
    let defaulted = defaults
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !overridden.iter().any(|o| o == k))
        .collect();
    (env, defaulted)
}

/// `KEY=VALUE` lines; blank lines and `#` comments are skipped, an optional `export ` prefix
/// and matching single or double quotes around the value are removed.
fn parse_dotenv(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            let key = key.trim();
            if key.is_empty() {
                return None;
            }
            Some((key.to_string(), unquote(value.trim()).to_string()))
        })
        .collect()
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dotenv_lines_are_parsed_with_comments_quotes_and_export() {
        let parsed = parse_dotenv(
            "# comment\n\nWECHAT_TOKEN=abc\nexport WECHAT_APP_ID = \"wx123\" \nQUOTED='a b'\nnot a pair\n=novalue\nEMPTY=\n",
        );
        assert_eq!(parsed["WECHAT_TOKEN"], "abc");
        assert_eq!(parsed["WECHAT_APP_ID"], "wx123");
        assert_eq!(parsed["QUOTED"], "a b");
        assert_eq!(parsed["EMPTY"], "");
        assert_eq!(parsed.len(), 4);
    }

    #[test]
    fn real_environment_beats_dotenv_beats_defaults() {
        let dotenv: HashMap<String, String> =
            pairs(&[("WECHAT_TOKEN", "from-dotenv"), ("PORT", "4000")])
                .into_iter()
                .collect();
        let (env, defaulted) = merge_env(pairs(&[("PORT", "5000")]), &dotenv, DEV_DEFAULTS);
        assert_eq!(env["WECHAT_TOKEN"], "from-dotenv");
        assert_eq!(env["PORT"], "5000");
        assert_eq!(env["HOST"], "127.0.0.1");
        assert_eq!(defaulted, ["HOST"]);
    }

    #[test]
    fn with_nothing_set_the_development_defaults_are_used_and_announced() {
        let (env, defaulted) = merge_env(Vec::new(), &HashMap::new(), DEV_DEFAULTS);
        assert_eq!(env["WECHAT_TOKEN"], "dev-token");
        assert_eq!(defaulted, ["HOST", "PORT", "WECHAT_TOKEN"]);
        assert!(Webhook::from_env(&env).is_ok());
    }

    #[tokio::test]
    async fn only_the_wechat_path_is_served() {
        let (env, _) = merge_env(Vec::new(), &HashMap::new(), DEV_DEFAULTS);
        let webhook = Webhook::from_env(&env).unwrap();
        let req = lambda_http::http::Request::builder()
            .uri("/other")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(route(&webhook, req).await.status(), StatusCode::NOT_FOUND);
        let req = lambda_http::http::Request::builder()
            .uri("/wechat")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(route(&webhook, req).await.status(), StatusCode::BAD_REQUEST);
    }
}

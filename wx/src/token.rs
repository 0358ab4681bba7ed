//! `wx token get | refresh --stale TOKEN`: the access_token from the refresh function, by Lambda
//! Invoke (`TOKEN_FUNCTION_NAME`, the caller's AWS credentials) or, with `--local`, from the
//! local server's Invoke emulation (with this run's key). Both send the refresh function's own
//! payloads through [`account::token::RefreshFunction`].
//!
//! By default only the token's fingerprint and expiry are printed: the token is a live credential
//! for the whole account, and terminals end up in scrollback, screen shares and CI logs.
//! `--show-secret` prints it for the one who needs to paste it somewhere.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use account::config::vars::{LOCAL_INVOKE_KEY, PORT, TOKEN_FUNCTION_NAME};
use account::config::{optional, required};
use account::token::{AccessToken, Invocation, RefreshFunction};
use clap::{Args, Subcommand};
use serde::Serialize;
use wechat_protocol::secret::Secret;

use crate::config::Config;
use crate::run_file::{self, RUN_FILES, RunInfo};
use crate::{CliError, Output};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// The current token (fetched first when none with more than a minute left is stored)
    Get(TokenArgs),
    /// Report TOKEN as rejected by WeChat (40001/42001): replaced unless that already happened
    Refresh {
        /// The token WeChat rejected (`-`: read it from stdin, so it stays out of shell history)
        #[arg(long, value_name = "TOKEN")]
        stale: String,
        #[command(flatten)]
        args: TokenArgs,
    },
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub via: Via,
    /// Also print the token itself (a live credential for the whole account)
    #[arg(long)]
    show_secret: bool,
}

/// Where the token comes from.
#[derive(Debug, Clone, Args)]
pub struct Via {
    /// Ask the local server (`wx serve`) instead of the deployed refresh function; URL defaults
    /// to the server running in this directory (from its .local/run-PORT.json)
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "", global = true)]
    pub local: Option<String>,
}

/// The local server a `--local` command talks to: its URL, and its run file when there is one
/// in this directory (a server started elsewhere has none here).
#[derive(Debug, Clone)]
pub struct LocalServer {
    pub url: String,
    pub info: Option<RunInfo>,
}

/// `--local` (`local` empty: the server whose run file is here) or `--local=URL`.
pub fn local_server(config: &Config, local: &str) -> Result<LocalServer, CliError> {
    let url = Some(local.trim().trim_end_matches('/')).filter(|url| !url.is_empty());
    // `PORT` set for wx too (in .env, say) picks the server on that port.
    let port = match config.is_default(PORT) {
        true => None,
        false => optional(&config.env, PORT)
            .and_then(|port| port.parse::<u16>().ok())
            .filter(|port| *port != 0),
    };
    let info = run_file::find(Path::new("."), url, port).map_err(CliError::Message)?;
    let url = match (url, &info) {
        (Some(url), _) => url.to_string(),
        (None, Some(info)) => info.url.clone(),
        (None, None) => {
            return Err(CliError::Message(format!(
                "no local server found (no {RUN_FILES} here): start `make run` in this directory, or pass --local URL"
            )));
        }
    };
    Ok(LocalServer { url, info })
}

/// The refresh function to ask, and the local server when it is the local one.
pub async fn refresh_function(
    config: &Config,
    via: &Via,
) -> Result<(RefreshFunction, Option<LocalServer>), CliError> {
    let (lambda, name, local) = function_client(
        config,
        via,
        TOKEN_FUNCTION_NAME,
        "refresh function (its RefreshFunctionName output)",
        "refresh",
    )
    .await?;
    Ok((RefreshFunction::new(lambda, name), local))
}

/// A Lambda client for one of the stack's functions and the name to invoke: the deployed one
/// named by `variable` (the caller's AWS credentials), or with `--local` the local server's
/// emulation of `local_name` (with this run's invoke key), and then that server.
pub async fn function_client(
    config: &Config,
    via: &Via,
    variable: &'static str,
    function: &str,
    local_name: &str,
) -> Result<(aws_sdk_lambda::Client, String, Option<LocalServer>), CliError> {
    let Some(local) = &via.local else {
        let name = required(&config.env, variable)
            .map_err(|e| CliError::Message(needs_a_stack_named(&e.to_string(), function)))?;
        let sdk = account::aws::sdk_config().await;
        return Ok((account::aws::lambda_client(&sdk, None), name, None));
    };
    let server = local_server(config, local)?;
    let key = optional(&config.env, LOCAL_INVOKE_KEY)
        .or_else(|| server.info.as_ref().map(|info| info.invoke_key.clone()))
        .ok_or_else(|| {
            CliError::Message(format!(
                "no invoke key for {}: set {LOCAL_INVOKE_KEY} to the X-Local-Invoke-Key its `wx serve` banner prints",
                server.url
            ))
        })?;
    let sdk = account::aws::local_sdk_config().await;
    let lambda =
        account::aws::lambda_client_with_key(&sdk, Some(&server.url), Some(Secret::new(key)));
    Ok((lambda, local_name.to_string(), Some(server)))
}

/// `problem` (a deployed stack's setting that names the stack's `function` is missing), with the
/// way to the local server instead.
fn needs_a_stack_named(problem: &str, function: &str) -> String {
    let running = run_file::running(Path::new("."));
    let local = match running.first() {
        Some(info) => format!(
            "a local server runs here ({}): add --local to use it",
            info.url
        ),
        None => "against the local server (`make run`), add --local".to_string(),
    };
    format!("{problem}: it names the deployed stack's {function}; {local}")
}

/// What `wx token --json` prints.
#[derive(Debug, Serialize)]
struct TokenReport {
    fingerprint: String,
    /// Epoch seconds.
    expires_at: i64,
    expires_in_s: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_token: Option<String>,
}

pub async fn run(config: &Config, out: &Output, command: TokenCommand) -> Result<(), CliError> {
    let (args, invocation) = match command {
        TokenCommand::Get(args) => (args, Invocation::Get),
        TokenCommand::Refresh { stale, args } => {
            let stale = read_stale(stale)?;
            (
                args,
                Invocation::Refresh {
                    stale_token: Secret::new(stale),
                },
            )
        }
    };
    let (function, _) = refresh_function(config, &args.via).await?;
    let token = function.invoke(invocation).await?;
    let report = report(&token, args.show_secret);
    out.emit(&report, || {
        let mut text = format!(
            "access_token {} expires at {} (in {})\n",
            report.fingerprint,
            report.expires_at,
            human_duration(report.expires_in_s)
        );
        if let Some(token) = &report.access_token {
            text.push_str(token);
            text.push('\n');
        }
        text
    });
    Ok(())
}

fn report(token: &AccessToken, show_secret: bool) -> TokenReport {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    TokenReport {
        fingerprint: token.fingerprint(),
        expires_at: token.expires_at_s(),
        expires_in_s: token.expires_at_s().saturating_sub(now),
        access_token: show_secret.then(|| token.value.expose().clone()),
    }
}

/// `--stale -` reads the token from stdin (first line), refusing an interactive terminal.
fn read_stale(stale: String) -> Result<String, CliError> {
    if stale != "-" {
        return Ok(stale);
    }
    if std::io::stdin().is_terminal() {
        return Err(CliError::Message(
            "--stale - reads the token from stdin: pipe it in".into(),
        ));
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| CliError::Message(format!("cannot read stdin: {e}")))?;
    let token = text.lines().next().unwrap_or_default().trim().to_string();
    if token.is_empty() {
        return Err(CliError::Message("stdin held no token".into()));
    }
    Ok(token)
}

fn human_duration(seconds: i64) -> String {
    if seconds <= 0 {
        return "the past: expired".into();
    }
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_itself_is_printed_only_when_asked() {
        let token = AccessToken {
            value: Secret::new("SECRET-TOKEN-VALUE".into()),
            expires_at_ms: 4_102_444_800_000,
        };
        let hidden = serde_json::to_string(&report(&token, false)).unwrap();
        assert!(!hidden.contains("SECRET-TOKEN-VALUE"), "{hidden}");
        assert!(hidden.contains(&token.fingerprint()), "{hidden}");
        let shown = serde_json::to_string(&report(&token, true)).unwrap();
        assert!(shown.contains("SECRET-TOKEN-VALUE"), "{shown}");
    }

    #[test]
    fn durations_read_as_hours_minutes_or_seconds() {
        assert_eq!(human_duration(7199), "1h 59m");
        assert_eq!(human_duration(125), "2m 5s");
        assert_eq!(human_duration(9), "9s");
        assert_eq!(human_duration(-1), "the past: expired");
    }
}

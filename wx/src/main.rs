//! `wx`, the operator CLI of the account: the local development server (`wx serve`, what
//! `make run` runs), WeChat's pushes and server-URL check played against any webhook
//! (`wx push`, `wx verify-url`), the access_token from the central service (`wx token`), and the
//! custom menu from a file (`wx menu`), JS-SDK signatures for a page (`wx jssdk sign`), and new
//! random settings for the console (`wx keygen`).
//!
//! Every subcommand reads the same configuration (the environment, then `.env`, then the local
//! server's development defaults), prints text by default and JSON with `--json`, and exits 1 with
//! one `error: …` line on failure (2 for a usage error).

mod api;
mod app;
mod config;
mod doctor;
mod env;
mod error;
mod invoke;
mod jssdk;
mod keygen;
mod menu;
mod notify;
mod push;
mod qrcode;
mod rotate;
mod run_file;
mod serve;
mod token;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

pub use error::CliError;

#[derive(Debug, Parser)]
#[command(
    name = "wx",
    version,
    about = "Operator CLI of the WeChat Official Account backend",
    after_help = "Configuration: the environment, then .env in the current directory.\n\
                  Exit codes: 0 success, 1 failure (one `error:` line on stderr), 2 usage error."
)]
struct Cli {
    /// Print JSON on stdout (for scripts) instead of text
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every function on one local HTTP server (what `make run` runs)
    Serve,
    /// POST a push to a webhook, signed (and encrypted) as WeChat does; check and print the reply
    Push(push::PushArgs),
    /// Verify a webhook URL as the WeChat console does when you press Submit
    VerifyUrl(push::VerifyArgs),
    /// The access_token, from the deployed refresh function or the local server
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// The custom menu: show, diff, apply, delete (files checked offline first)
    Menu(menu::MenuArgs),
    /// Template messages: send one to a follower, read its delivery receipt
    Notify(notify::NotifyArgs),
    /// Channel QR codes: create one for a scene (image saved), per-scene follows and scans
    Qrcode(qrcode::QrcodeArgs),
    /// JS-SDK: sign a page URL for wx.config with the account's jsapi_ticket
    Jssdk(jssdk::JssdkArgs),
    /// Check a deployment as WeChat will: webhook URL, token, encryption, access_token (IP
    /// whitelist), domain verification file, domains, menu against the rules
    Doctor(doctor::DoctorArgs),
    /// New random settings: an EncodingAESKey (aes-key) or a Token (token)
    #[command(subcommand)]
    Keygen(keygen::KeygenCommand),
    /// Rotate the EncodingAESKey (aes-key) or the Token (token) without downtime: the steps
    #[command(subcommand)]
    Rotate(rotate::RotateCommand),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let serving = matches!(cli.command, Command::Serve);
    // The server logs requests at info; the other commands only what goes wrong.
    let default_level = if serving { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let config = config::load().map_err(CliError::Message)?;
    let out = Output { json: cli.json };
    match cli.command {
        Command::Serve => serve::run(config)
            .await
            .map_err(|e| CliError::Message(e.to_string())),
        Command::Push(args) => push::push(&config, &out, args).await,
        Command::VerifyUrl(args) => push::verify_url(&config, &out, args).await,
        Command::Token(command) => token::run(&config, &out, command).await,
        Command::Menu(args) => menu::run(&config, &out, args).await,
        Command::Notify(args) => notify::run(&config, &out, args).await,
        Command::Qrcode(args) => qrcode::run(&config, &out, args).await,
        Command::Jssdk(args) => jssdk::run(&config, &out, args).await,
        Command::Keygen(command) => keygen::run(&out, command),
        Command::Doctor(args) => doctor::run(&config, &out, args).await,
        Command::Rotate(command) => rotate::run(&config, &out, command),
    }
}

/// Where results go: text for people, or one JSON document for scripts.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Print `value` as JSON with `--json`, else the text `human` builds.
    pub fn emit(&self, value: &impl serde::Serialize, human: impl FnOnce() -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("error: cannot encode the result as JSON: {e}"),
            }
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn push_needs_exactly_one_content() {
        let ok = Cli::try_parse_from(["wx", "push", "--url", "http://x", "--text", "hi"]);
        assert!(ok.is_ok(), "{ok:?}");
        assert!(Cli::try_parse_from(["wx", "push", "--url", "http://x"]).is_err());
        assert!(
            Cli::try_parse_from([
                "wx",
                "push",
                "--url",
                "u",
                "--text",
                "a",
                "--event",
                "subscribe"
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from(["wx", "push", "--url", "u", "--compat", "--text", "a"]).is_err()
        );
    }

    #[test]
    fn local_takes_an_optional_url_anywhere_after_the_subcommand() {
        let cli = Cli::try_parse_from(["wx", "token", "get", "--local"]).unwrap();
        let Command::Token(token::TokenCommand::Get(args)) = cli.command else {
            panic!("expected token get");
        };
        assert_eq!(args.via.local.as_deref(), Some(""));
        let cli = Cli::try_parse_from([
            "wx",
            "--json",
            "menu",
            "show",
            "--local",
            "http://localhost:3001",
        ])
        .unwrap();
        assert!(cli.json);
        let Command::Menu(args) = cli.command else {
            panic!("expected menu");
        };
        assert_eq!(args.via.local.as_deref(), Some("http://localhost:3001"));
    }
}

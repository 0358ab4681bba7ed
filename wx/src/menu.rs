//! `wx menu show | check FILE | diff FILE | apply FILE | delete [--yes]`: the custom menu from a
//! `menu.toml` ([`account::menu`]). Files are checked offline against WeChat's limits before any
//! call; calls go through the token client (a rejected token is reported stale once and the call
//! retried once); `diff` and `apply` warn about click keys the reply rules do not answer and
//! CLICK rules no button sends.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use account::config::vars::WECHAT_API_BASE;
use account::config::{WeChatApiConfig, optional};
use account::menu::{self, Change, Menu, MenuError, Violation};
use account::rules::Rules;
use account::token::{RefreshFunction, TokenClient};
use clap::{Args, Subcommand};
use serde::Serialize;
use wechat_api::WeChatHttp;

use crate::config::Config;
use crate::token::{LocalServer, Via, refresh_function};
use crate::{CliError, Output};

#[derive(Debug, Args)]
pub struct MenuArgs {
    #[command(subcommand)]
    command: MenuCommand,
    #[command(flatten)]
    pub via: Via,
}

#[derive(Debug, Subcommand)]
enum MenuCommand {
    /// Print the live menu
    Show,
    /// Check FILE against WeChat's limits, offline (no call)
    Check { file: PathBuf },
    /// Check FILE and print what `apply` would change
    Diff { file: PathBuf },
    /// Check FILE and make it the live menu
    Apply { file: PathBuf },
    /// Remove the live menu (asks first on a terminal)
    Delete {
        /// Do not ask (required when stdin is not a terminal)
        #[arg(long)]
        yes: bool,
    },
}

/// The WeChat API and the token for menu calls (`wx doctor` reads the live menu the same way).
pub(crate) struct Api {
    pub(crate) http: WeChatHttp,
    pub(crate) tokens: TokenClient<RefreshFunction>,
}

pub(crate) async fn api(config: &Config, via: &Via) -> Result<Api, CliError> {
    let (function, local) = refresh_function(config, via).await?;
    let mut env = config.env.clone();
    if let Some(server) = local {
        // With --local, WeChat is whatever the local server talks to (the fake with
        // LOCAL_FAKE_WECHAT), never the real API by default: the token comes from that server.
        env.insert(WECHAT_API_BASE.into(), local_wechat_api(config, &server)?);
    }
    let api = WeChatApiConfig::from_env(&env)?;
    let http = WeChatHttp::new(&api.api_base, api.http_timeout)
        .map_err(|e| CliError::Message(format!("cannot build the HTTP client: {e}")))?;
    Ok(Api {
        http,
        tokens: TokenClient::new(function),
    })
}

/// The WeChat API the local server `server` uses, from its run file; without one (a server
/// started in another directory), only an explicit `WECHAT_API_BASE`.
fn local_wechat_api(config: &Config, server: &LocalServer) -> Result<String, CliError> {
    match &server.info {
        Some(info) => info.wechat_api.clone().ok_or_else(|| {
            CliError::Message(format!(
                "the local server at {} runs no token service (no WECHAT_APP_SECRET and no \
                 LOCAL_FAKE_WECHAT), so menu calls cannot be made through it: start it with \
                 LOCAL_FAKE_WECHAT=true for the bundled fake",
                server.url
            ))
        }),
        None => optional(&config.env, WECHAT_API_BASE).ok_or_else(|| {
            CliError::Message(format!(
                "no run file of the local server at {} in this directory, so wx does not know \
                 which WeChat API it uses (the bundled fake's URL changes every run): run wx in \
                 the server's directory, or set {WECHAT_API_BASE} to the WeChat API its banner \
                 prints",
                server.url
            ))
        }),
    }
}

/// What `diff`, `apply` and `check` print with `--json`.
#[derive(Debug, Serialize)]
struct Plan {
    file: String,
    changes: Vec<Change>,
    warnings: Vec<String>,
    applied: bool,
}

pub async fn run(config: &Config, out: &Output, args: MenuArgs) -> Result<(), CliError> {
    match args.command {
        MenuCommand::Show => {
            let api = api(config, &args.via).await?;
            let live = menu::fetch(&api.http, &api.tokens).await?;
            out.emit(&live, || match &live {
                None => "no menu".into(),
                Some(menu) => tree(menu),
            });
            Ok(())
        }
        MenuCommand::Check { file } => {
            let (file, desired) = load(out, &file)?;
            let warnings = warnings(config, &desired)?;
            let plan = Plan {
                file,
                changes: Vec::new(),
                warnings,
                applied: false,
            };
            out.emit(&plan, || {
                format!(
                    "{}: ok, within WeChat's limits\n{}",
                    plan.file,
                    warning_lines(&plan.warnings)
                )
            });
            Ok(())
        }
        MenuCommand::Diff { file } => plan(config, out, &args.via, &file, false).await,
        MenuCommand::Apply { file } => plan(config, out, &args.via, &file, true).await,
        MenuCommand::Delete { yes } => {
            if !yes {
                confirm()?;
            }
            let api = api(config, &args.via).await?;
            menu::delete(&api.http, &api.tokens).await?;
            out.emit(&serde_json::json!({ "deleted": true }), || {
                "deleted the menu (and any conditional menus)".into()
            });
            Ok(())
        }
    }
}

/// `diff` (apply: false) or `apply`: check the file, compare it with the live menu, and create
/// it when something changes.
async fn plan(
    config: &Config,
    out: &Output,
    via: &Via,
    file: &std::path::Path,
    apply: bool,
) -> Result<(), CliError> {
    let (file, desired) = load(out, file)?;
    let warnings = warnings(config, &desired)?;
    let api = api(config, via).await?;
    let live = menu::fetch(&api.http, &api.tokens).await?;
    let changes = menu::diff(live.as_ref(), &desired);
    let applied = apply && !changes.is_empty();
    if applied {
        menu::create(&api.http, &api.tokens, &desired).await?;
    }
    let plan = Plan {
        file,
        changes,
        warnings,
        applied,
    };
    out.emit(&plan, || {
        let mut text = String::new();
        if plan.changes.is_empty() {
            text.push_str(&format!("the live menu already matches {}\n", plan.file));
        } else {
            for change in &plan.changes {
                text.push_str(&format!("{change}\n"));
            }
            text.push_str(&match (apply, plan.applied) {
                (true, true) => format!("applied {} ({} changes)\n", plan.file, plan.changes.len()),
                _ => format!(
                    "{} changes; `{}` makes them\n",
                    plan.changes.len(),
                    apply_command(&plan.file, via)
                ),
            });
        }
        text.push_str(&warning_lines(&plan.warnings));
        text
    });
    Ok(())
}

/// The command that applies `file` where `diff` looked: against the same local server, if any.
fn apply_command(file: &str, via: &Via) -> String {
    match via.local.as_deref() {
        None => format!("wx menu apply {file}"),
        Some("") => format!("wx menu apply {file} --local"),
        Some(url) => format!("wx menu apply {file} --local={url}"),
    }
}

/// Read and check `file`; with `--json`, the violations are printed as JSON too.
fn load(out: &Output, file: &std::path::Path) -> Result<(String, Menu), CliError> {
    let name = file.display().to_string();
    match Menu::load(&name) {
        Ok(menu) => Ok((name, menu)),
        Err(source) => {
            if let (true, MenuError::Invalid(violations)) = (out.json, &source) {
                #[derive(Serialize)]
                struct Refused<'a> {
                    file: &'a str,
                    violations: &'a [Violation],
                }
                out.emit(
                    &Refused {
                        file: &name,
                        violations,
                    },
                    String::new,
                );
            }
            Err(CliError::Menu { file: name, source })
        }
    }
}

/// The cross-check with the reply rules the webhook uses (`WECHAT_REPLY_RULES`, else bundled).
fn warnings(config: &Config, menu: &Menu) -> Result<Vec<String>, CliError> {
    let rules = Rules::from_env(&config.env)?;
    Ok(menu::rule_warnings(menu, &rules))
}

fn warning_lines(warnings: &[String]) -> String {
    warnings.iter().map(|w| format!("warning: {w}\n")).collect()
}

/// `delete` asks on a terminal and refuses without one.
fn confirm() -> Result<(), CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Message(
            "refusing to delete the menu without --yes (stdin is not a terminal)".into(),
        ));
    }
    print!("Delete the account's live menu (and any conditional menus)? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::Message(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(CliError::Message("not deleted".into()))
    }
}

/// The menu as an indented list of buttons with their paths.
fn tree(menu: &Menu) -> String {
    menu.buttons()
        .into_iter()
        .map(|(path, button)| {
            let indent = if path.contains(".sub_button") {
                "  "
            } else {
                ""
            };
            format!("{indent}{path} {}\n", button.summary())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_follow_up_of_a_diff_goes_where_the_diff_looked() {
        let via = |local: Option<&str>| Via {
            local: local.map(String::from),
        };
        assert_eq!(apply_command("m.toml", &via(None)), "wx menu apply m.toml");
        assert_eq!(
            apply_command("m.toml", &via(Some(""))),
            "wx menu apply m.toml --local"
        );
        assert_eq!(
            apply_command("m.toml", &via(Some("http://localhost:3001"))),
            "wx menu apply m.toml --local=http://localhost:3001"
        );
    }
}

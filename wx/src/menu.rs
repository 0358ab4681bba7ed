//! `wx menu show | check FILE | diff FILE | apply FILE | delete [--yes]`: the custom menu from a
//! `menu.toml` ([`account::menu`]). Files are checked offline against WeChat's limits before any
//! call; calls go through the api function (deployed, or the local server's with `--local`),
//! which adds the token and retries a rejected one once, so the operator's machine needs no
//! place on the IP whitelist; `diff` and `apply` warn about click keys the reply rules do not answer and
//! CLICK rules no button sends.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use account::menu::{
    self, Change, CreateMenu, DeleteMenu, GetMenu, Menu, MenuAnswer, MenuError, NO_MENU_ERRCODE,
    Violation,
};
use account::rules::Rules;
use clap::{Args, Subcommand};
use serde::Serialize;
use wechat_api::Endpoint;

use crate::api::{self, ApiRequest};
use crate::config::Config;
use crate::token::Via;
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

/// The live menu (`None`: the account has none), through the api function.
async fn fetch(config: &Config, via: &Via) -> Result<Option<Menu>, CliError> {
    let answer = api::call(config, via, &request("GET", GetMenu::PATH, None)).await?;
    if answer.errcode == Some(NO_MENU_ERRCODE) {
        return Ok(None);
    }
    let answer = api::accepted(answer)?;
    let live: MenuAnswer = serde_json::from_value(answer.body)
        .map_err(|e| CliError::Message(format!("WeChat's menu is not one wx can read: {e}")))?;
    Ok(Some(live.menu.normalized()))
}

/// Make `menu` the live menu, through the api function.
async fn create(config: &Config, via: &Via, menu: &Menu) -> Result<(), CliError> {
    let body = serde_json::to_value(CreateMenu(menu.clone()))
        .map_err(|e| CliError::Message(format!("cannot encode the menu: {e}")))?;
    api::accepted(api::call(config, via, &request("POST", CreateMenu::PATH, Some(body))).await?)?;
    Ok(())
}

/// Remove the live menu, through the api function.
async fn delete(config: &Config, via: &Via) -> Result<(), CliError> {
    api::accepted(api::call(config, via, &request("GET", DeleteMenu::PATH, None)).await?)?;
    Ok(())
}

fn request(method: &str, path: &str, body: Option<serde_json::Value>) -> ApiRequest {
    ApiRequest {
        method: method.into(),
        path: path.into(),
        query: Default::default(),
        body,
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
            let live = fetch(config, &args.via).await?;
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
            delete(config, &args.via).await?;
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
    let live = fetch(config, via).await?;
    let changes = menu::diff(live.as_ref(), &desired);
    let applied = apply && !changes.is_empty();
    if applied {
        create(config, via, &desired).await?;
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

//! `wx notify send --to OPENID --template ID --data k=v ... [--url URL] [--key CLIENT_MSG_ID]`
//! and `wx notify status MSGID`: a template message sent through the api function (checked
//! offline first, [`account::notify::TemplateMessage`]) and its delivery receipt read back.
//!
//! Sending again with the same `--key` within 10 minutes sends nothing new (WeChat's
//! `client_msg_id`); without `--key` the function makes one, so its own retries cannot notify
//! twice, but running the command twice sends twice.

use std::collections::BTreeMap;

use account::api::{Action, MsgId};
use account::notify::{DataItem, SendOutcome, TEMPLATE_SEND_PATH, TemplateMessage};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::Value;

use crate::api::{self, ApiRequest};
use crate::config::Config;
use crate::token::Via;
use crate::{CliError, Output};

#[derive(Debug, Args)]
pub struct NotifyArgs {
    #[command(subcommand)]
    command: NotifyCommand,
    #[command(flatten)]
    pub via: Via,
}

#[derive(Debug, Subcommand)]
enum NotifyCommand {
    /// Send a template message to a follower
    Send(SendArgs),
    /// A sent message's delivery receipt: pending, success, failed:user block, failed: system failed
    Status {
        /// The msgid `send` printed
        msgid: String,
    },
}

#[derive(Debug, Args)]
struct SendArgs {
    /// The follower's openid
    #[arg(long = "to", value_name = "OPENID")]
    to: String,
    /// The template's id (公众号后台 → 模板消息)
    #[arg(long = "template", value_name = "ID")]
    template: String,
    /// A keyword's value, KEYWORD=VALUE (repeat for each keyword; KEYWORD=VALUE#RRGGBB for a colour)
    #[arg(long = "data", value_name = "KEYWORD=VALUE", required = true)]
    data: Vec<String>,
    /// The page a tap opens
    #[arg(long)]
    url: Option<String>,
    /// De-duplication key (client_msg_id): the same key to the same follower within 10 minutes sends once
    #[arg(long = "key", value_name = "CLIENT_MSG_ID")]
    key: Option<String>,
}

/// `KEYWORD=VALUE` or `KEYWORD=VALUE#RRGGBB`.
fn data_item(arg: &str) -> Result<(String, DataItem), CliError> {
    let (keyword, value) = arg
        .split_once('=')
        .ok_or_else(|| CliError::Message(format!("--data {arg:?}: expected KEYWORD=VALUE")))?;
    let (value, color) = match value.rsplit_once('#') {
        Some((value, hex)) if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (value, Some(format!("#{hex}")))
        }
        _ => (value, None),
    };
    Ok((
        keyword.trim().to_string(),
        DataItem {
            value: value.to_string(),
            color,
        },
    ))
}

fn message(args: &SendArgs) -> Result<TemplateMessage, CliError> {
    let data: BTreeMap<String, DataItem> = args
        .data
        .iter()
        .map(|arg| data_item(arg))
        .collect::<Result<_, _>>()?;
    let message = TemplateMessage {
        touser: args.to.clone(),
        template_id: args.template.clone(),
        url: args.url.clone(),
        miniprogram: None,
        data,
        client_msg_id: args.key.clone(),
        extra: Default::default(),
    };
    message
        .check()
        .map_err(|e| CliError::Message(format!("not sent: {e}")))?;
    Ok(message)
}

/// What `wx notify send --json` prints.
#[derive(Debug, Serialize)]
struct Sent {
    msgid: String,
    outcome: String,
}

pub async fn run(config: &Config, out: &Output, args: NotifyArgs) -> Result<(), CliError> {
    match args.command {
        NotifyCommand::Send(send) => {
            let message = message(&send)?;
            let request = ApiRequest {
                method: "POST".into(),
                path: TEMPLATE_SEND_PATH.into(),
                query: BTreeMap::new(),
                body: Some(message.to_body()),
            };
            let answer = api::accepted(api::call(config, &args.via, &request).await?)?;
            let SendOutcome::Sent { msgid } = SendOutcome::of(0, &answer.body) else {
                return Err(CliError::Message("WeChat's answer has no msgid".into()));
            };
            let sent = Sent {
                msgid,
                outcome: answer.outcome.unwrap_or_else(|| "sent".into()),
            };
            out.emit(&sent, || {
                format!(
                    "sent: msgid {} (`wx notify status {}` reads its receipt)",
                    sent.msgid, sent.msgid
                )
            });
            Ok(())
        }
        NotifyCommand::Status { msgid } => {
            let msgid: MsgId = serde_json::from_value(Value::String(msgid))
                .map_err(|e| CliError::Message(e.to_string()))?;
            let answer = api::act(config, &args.via, Action::TemplateReceipt { msgid }).await?;
            let receipt = api::accepted(answer)?.body;
            out.emit(&receipt, || {
                let status = receipt["status"].as_str().unwrap_or_default();
                let msgid = receipt["msgid"].as_str().unwrap_or_default();
                match status {
                    "pending" => {
                        format!("{msgid}: pending (sent; WeChat has not reported on it yet)")
                    }
                    other => format!("{msgid}: {other}"),
                }
            });
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_arguments_read_as_keyword_value_and_an_optional_colour() {
        let (k, item) = data_item("thing1=Order #12 shipped").unwrap();
        assert_eq!(
            (k.as_str(), item.value.as_str(), item.color),
            ("thing1", "Order #12 shipped", None)
        );
        let (_, item) = data_item("amount1=9.90#FF0000").unwrap();
        assert_eq!(
            (item.value.as_str(), item.color.as_deref()),
            ("9.90", Some("#FF0000"))
        );
        assert!(data_item("no equals sign").is_err());
    }
}

//! `wx jssdk sign URL`: `wx.config`'s parameters for a page, signed with the account's
//! jsapi_ticket from the refresh function (Lambda Invoke, or `--local`), exactly as the oauth
//! function's `/jssdk/config` signs them. For checking a page by hand, or signing a static page.

use account::config::vars::WECHAT_APP_ID;
use account::jssdk::{JssdkConfig, page_url, sign_page};
use clap::Args;
use serde::Serialize;
use wechat_protocol::secret::fingerprint;

use crate::config::Config;
use crate::token::{Via, refresh_function};
use crate::{CliError, Output};

#[derive(Debug, Args)]
pub struct JssdkArgs {
    #[command(subcommand)]
    command: JssdkCommand,
}

#[derive(Debug, clap::Subcommand)]
enum JssdkCommand {
    /// Sign a page URL for wx.config (its #fragment is cut, as the page must do too)
    Sign {
        /// The page's URL, as its location.href
        url: String,
        #[command(flatten)]
        via: Via,
    },
}

/// What `wx jssdk sign --json` prints: `wx.config`'s fields, the URL signed and the ticket's
/// fingerprint (never the ticket).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Signed {
    app_id: String,
    timestamp: i64,
    nonce_str: String,
    signature: String,
    url: String,
    ticket: String,
    ticket_expires_at: i64,
}

pub async fn run(config: &Config, out: &Output, args: JssdkArgs) -> Result<(), CliError> {
    let JssdkCommand::Sign { url, via } = args.command;
    // The account's JS-SDK domains when configured, as the oauth function checks them.
    let mut allowed = JssdkConfig::from_env(&config.env)?.allowed_origins;
    if allowed.is_empty() {
        eprintln!(
            "note: JSSDK_ALLOWED_ORIGINS is not set: the URL is not checked against the account's JS接口安全域名"
        );
        allowed.push(page_origin(&url)?);
    }
    let page = page_url::signable(&url, &allowed).map_err(|e| CliError::Message(e.to_string()))?;
    let (function, local) = refresh_function(config, &via).await?;
    // The server's AppID from its run file when wx has none of its own (the fake's under
    // `LOCAL_FAKE_WECHAT=true make run`).
    let app_id = match (
        account::config::app_id(&config.env)?,
        local.and_then(|server| server.info?.app_id),
    ) {
        (Some(app_id), _) | (None, Some(app_id)) => app_id,
        (None, None) => {
            return Err(CliError::Message(format!(
                "{WECHAT_APP_ID} is not set: wx.config needs the account's AppID"
            )));
        }
    };
    let ticket = function.invoke_for_ticket().await?;
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let signed =
        sign_page(&app_id, &ticket, &page, now_s).map_err(|e| CliError::Message(e.to_string()))?;
    let report = Signed {
        app_id: signed.app_id,
        timestamp: signed.timestamp,
        nonce_str: signed.nonce_str,
        signature: signed.signature,
        url: page,
        ticket: fingerprint(ticket.value.expose()),
        ticket_expires_at: ticket.expires_at_ms.div_euclid(1000),
    };
    out.emit(&report, || {
        format!(
            "signed {}\nwx.config({{ appId: \"{}\", timestamp: {}, nonceStr: \"{}\", signature: \"{}\", jsApiList: [/* … */] }})\njsapi_ticket {} expires at {}\n",
            report.url,
            report.app_id,
            report.timestamp,
            report.nonce_str,
            report.signature,
            report.ticket,
            report.ticket_expires_at
        )
    });
    Ok(())
}

fn page_origin(url: &str) -> Result<wechat_protocol::origin::Origin, CliError> {
    page_url::page_origin(url).map_err(|e| CliError::Message(e.to_string()))
}

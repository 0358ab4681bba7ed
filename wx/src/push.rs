//! `wx push` and `wx verify-url`: WeChat's web debugger, offline. A push is built, signed and
//! sealed as WeChat does it ([`wechat_protocol::wechat_side`], the webhook's own signing and encryption), POSTed
//! to any webhook, and its reply checked (signature, decryption, addressing) and printed with
//! the round-trip time; `verify-url` is the console's GET with a random `echostr`.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use account::config::vars::{WECHAT_APP_ID, WECHAT_ENCODING_AES_KEY, WECHAT_TOKEN};
use account::config::{optional, required};
use clap::Args;
use serde::Serialize;
use wechat_protocol::crypto::MessageCrypto;
use wechat_protocol::message::EventType;
use wechat_protocol::wechat_side::{self, Account, Content, Envelope, Mode, ReceivedReply};

use crate::config::Config;
use crate::{CliError, Output};

/// The openid pushes come from unless `--from` names one.
pub const TEST_OPENID: &str = "o_wx_cli_test_user_000000000";

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The webhook URL, e.g. http://localhost:3000/wechat or the stack's WebhookUrl
    #[arg(long)]
    url: String,
    /// Encrypt the push (safe mode; needs WECHAT_ENCODING_AES_KEY and WECHAT_APP_ID)
    #[arg(long)]
    encrypt: bool,
    /// With --encrypt: compatible mode (plaintext fields and their encrypted copy in one body)
    #[arg(long, requires = "encrypt")]
    compat: bool,
    #[command(flatten)]
    content: ContentArgs,
    /// The event's EventKey (required for CLICK: the menu button's key)
    #[arg(long)]
    key: Option<String>,
    /// FromUserName: the user's openid
    #[arg(long, default_value = TEST_OPENID)]
    from: String,
    /// ToUserName: the account (WeChat sends its original ID, gh_…); default WECHAT_APP_ID
    #[arg(long)]
    to: Option<String>,
    /// Seconds to wait for the reply (WeChat waits 5, then retries)
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct ContentArgs {
    /// A text message with this content
    #[arg(long)]
    text: Option<String>,
    /// An event: subscribe, unsubscribe, CLICK (with --key), VIEW, SCAN, …
    #[arg(long)]
    event: Option<String>,
    /// A whole push XML from FILE, sent as it is (signed and sealed as the mode says)
    #[arg(long, value_name = "FILE")]
    xml: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The webhook URL, as entered in the console (服务器地址(URL))
    url: String,
    /// Seconds to wait for the answer
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

/// What `wx push --json` prints.
#[derive(Debug, Serialize)]
struct PushReport {
    url: String,
    mode: &'static str,
    status: u16,
    elapsed_ms: u128,
    reply: Option<ReplyReport>,
}

#[derive(Debug, Serialize)]
struct ReplyReport {
    encrypted: bool,
    /// `[path, value]` in document order (`Articles/item/Title` repeats).
    fields: Vec<(String, String)>,
    xml: String,
}

pub async fn push(config: &Config, out: &Output, args: PushArgs) -> Result<(), CliError> {
    let env = &config.env;
    let token = required(env, WECHAT_TOKEN)?;
    if config.is_default(WECHAT_TOKEN) {
        tracing::warn!(
            "WECHAT_TOKEN is not set: signing with the local server's default (devtoken)"
        );
    }
    let mode = match (args.encrypt, args.compat) {
        (false, _) => Mode::Plaintext,
        (true, false) => Mode::Safe,
        (true, true) => Mode::Compatible,
    };
    let crypto = match mode {
        Mode::Plaintext => None,
        _ => Some(
            MessageCrypto::new(
                &required(env, WECHAT_ENCODING_AES_KEY)?,
                &required(env, WECHAT_APP_ID)?,
            )
            .map_err(|e| {
                account::config::ConfigError::new(WECHAT_ENCODING_AES_KEY, e.to_string())
            })?,
        ),
    };
    let content = content(&args)?;
    let now = now_s();
    let envelope = Envelope {
        to_user: args
            .to
            .clone()
            .or_else(|| optional(env, WECHAT_APP_ID))
            .unwrap_or_else(|| "gh_account".into()),
        from_user: args.from.clone(),
        create_time: now,
        msg_id: random_u64()? >> 1,
    };
    let xml = wechat_side::push_xml(&content, &envelope);
    let account = Account {
        token: &token,
        crypto: crypto.as_ref(),
    };
    let nonce = random_u64()?.to_string();
    let signed = wechat_side::sign_push(&account, mode, &xml, &args.from, now, &nonce)?;

    let client = client(args.timeout)?;
    let started = Instant::now();
    let response = client
        .post(&args.url)
        .query(&signed.query)
        .header("content-type", "text/xml; charset=utf-8")
        .body(signed.body)
        .send()
        .await
        .map_err(|e| CliError::http(&args.url, &e))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| CliError::http(&args.url, &e))?;
    let elapsed = started.elapsed();
    if status != 200 {
        return Err(CliError::Message(format!(
            "{} answered HTTP {status} after {} ms: {}",
            args.url,
            elapsed.as_millis(),
            first_line(&body)
        )));
    }
    let reply = wechat_side::open_reply(&account, mode, &body)?;
    let reply = match reply {
        ReceivedReply::Nothing => None,
        ReceivedReply::Message {
            xml,
            fields,
            encrypted,
        } => {
            check_addressing(&fields, &envelope)?;
            Some(ReplyReport {
                encrypted,
                fields: fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                xml,
            })
        }
    };
    let report = PushReport {
        url: args.url.clone(),
        mode: mode.name(),
        status,
        elapsed_ms: elapsed.as_millis(),
        reply,
    };
    out.emit(&report, || human_push(&report, &content));
    Ok(())
}

/// WeChat drops a reply not addressed back to the user by the account.
fn check_addressing(
    fields: &wechat_protocol::xml::Fields,
    envelope: &Envelope,
) -> Result<(), CliError> {
    let to = fields.get("ToUserName").unwrap_or_default();
    if to != envelope.from_user {
        return Err(CliError::Message(format!(
            "the reply's ToUserName is {to:?}, not the user {:?} who pushed",
            envelope.from_user
        )));
    }
    Ok(())
}

fn content(args: &PushArgs) -> Result<Content, CliError> {
    let ContentArgs { text, event, xml } = &args.content;
    if args.key.is_some() && event.is_none() {
        return Err(CliError::Message(
            "--key goes with --event (the event's EventKey)".into(),
        ));
    }
    if let Some(text) = text {
        return Ok(Content::Text(text.clone()));
    }
    if let Some(path) = xml {
        let raw = std::fs::read_to_string(path)
            .map_err(|e| CliError::Message(format!("cannot read {}: {e}", path.display())))?;
        return Ok(Content::Xml(raw));
    }
    let name = event.as_deref().unwrap_or_default();
    let event = EventType::from_wire(name).ok_or_else(|| {
        let known: Vec<&str> = EventType::ALL.iter().map(|e| e.as_str()).collect();
        CliError::Message(format!(
            "unknown event {name:?} (known: {})",
            known.join(", ")
        ))
    })?;
    if event == EventType::Click && args.key.is_none() {
        return Err(CliError::Message(
            "--event CLICK needs --key (the menu button's key)".into(),
        ));
    }
    Ok(Content::Event {
        event,
        key: args.key.clone(),
    })
}

fn human_push(report: &PushReport, content: &Content) -> String {
    let what = match content {
        Content::Text(text) => format!("text {text:?}"),
        Content::Event { event, key } => match key {
            Some(key) => format!("event {event} (key {key:?})"),
            None => format!("event {event}"),
        },
        Content::Xml(_) => "XML file".into(),
    };
    let mut text = format!(
        "pushed {what} to {} ({} mode): HTTP {} in {} ms\n",
        report.url, report.mode, report.status, report.elapsed_ms
    );
    match &report.reply {
        None => text.push_str("reply: none (success)\n"),
        Some(reply) => {
            text.push_str(if reply.encrypted {
                "reply: encrypted, signature and decryption ok\n"
            } else {
                "reply: plaintext\n"
            });
            let width = reply.fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (name, value) in &reply.fields {
                text.push_str(&format!("  {name:width$}  {value}\n"));
            }
        }
    }
    text
}

/// What `wx verify-url --json` prints.
#[derive(Debug, Serialize)]
struct VerifyReport {
    url: String,
    verified: bool,
    status: u16,
    elapsed_ms: u128,
}

pub async fn verify_url(config: &Config, out: &Output, args: VerifyArgs) -> Result<(), CliError> {
    let token = required(&config.env, WECHAT_TOKEN)?;
    if config.is_default(WECHAT_TOKEN) {
        tracing::warn!(
            "WECHAT_TOKEN is not set: signing with the local server's default (devtoken)"
        );
    }
    let echostr = random_u64()?.to_string();
    let nonce = random_u64()?.to_string();
    let query = wechat_side::verification_query(&token, now_s(), &nonce, &echostr);
    let started = Instant::now();
    let response = client(args.timeout)?
        .get(&args.url)
        .query(&query)
        .send()
        .await
        .map_err(|e| CliError::http(&args.url, &e))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| CliError::http(&args.url, &e))?;
    let elapsed = started.elapsed().as_millis();
    // The console accepts the exact echostr only (no whitespace, no quotes).
    if status != 200 || body != echostr {
        return Err(CliError::Message(format!(
            "{} failed the check: HTTP {status} in {elapsed} ms, {} (check WECHAT_TOKEN: it must be the console's Token)",
            args.url,
            if status == 200 {
                "the body is not the echostr".to_string()
            } else {
                format!("body {:?}", first_line(&body))
            }
        )));
    }
    let report = VerifyReport {
        url: args.url,
        verified: true,
        status,
        elapsed_ms: elapsed,
    };
    out.emit(&report, || {
        format!(
            "verified: {} echoed the echostr (HTTP 200 in {} ms); the console's Submit will pass",
            report.url, report.elapsed_ms
        )
    });
    Ok(())
}

fn client(timeout_s: u64) -> Result<reqwest::Client, CliError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_s.max(1)))
        .build()
        .map_err(|e| CliError::Message(format!("cannot build the HTTP client: {e}")))
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn random_u64() -> Result<u64, CliError> {
    getrandom::u64().map_err(|e| CliError::Message(format!("the random source failed: {e}")))
}

fn first_line(body: &str) -> String {
    let line = body.lines().next().unwrap_or_default();
    line.chars().take(200).collect()
}

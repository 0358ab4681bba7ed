//! `wx push` and `wx verify-url`: WeChat's web debugger, offline. A push is built, signed and
//! sealed as WeChat does it ([`wechat_protocol::wechat_side`], the webhook's own signing and encryption), POSTed
//! to any webhook, and its reply checked (signature, decryption, addressing) and printed with
//! the round-trip time; `verify-url` is the console's GET with a random `echostr`.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use account::config::required;
use account::config::vars::{WECHAT_APP_ID, WECHAT_ENCODING_AES_KEY, WECHAT_TOKEN};
use clap::Args;
use serde::Serialize;
use wechat_protocol::crypto::MessageCrypto;
use wechat_protocol::message::EventType;
use wechat_protocol::wechat_side::{self, Account, Content, Envelope, Mode, ReceivedReply};

use crate::config::Config;
use crate::run_file::{self, RunInfo};
use crate::token::local_server;
use crate::{CliError, Output};

/// The openid pushes come from unless `--from` names one.
pub const TEST_OPENID: &str = "o_wx_cli_test_user_000000000";

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The webhook URL, e.g. http://localhost:3000/wechat or the stack's WebhookUrl
    #[arg(long, required_unless_present = "local")]
    url: Option<String>,
    /// Push to the local server's webhook (`wx serve`; its URL and AppID from its run file in
    /// .local/, or the server at URL)
    #[arg(
        long,
        value_name = "URL",
        num_args = 0..=1,
        default_missing_value = "",
        conflicts_with = "url"
    )]
    local: Option<String>,
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
    // The local server this push goes to, when it is one with a run file here: its AppID is the
    // default for wx too, as `make run` defaults it (the fake's) without wx being told.
    let (url, server) = match (&args.local, &args.url) {
        (Some(local), _) => {
            let server = local_server(config, local)?;
            (format!("{}/wechat", server.url), server.info)
        }
        (None, Some(url)) => {
            let base = url.strip_suffix("/wechat").unwrap_or(url);
            let server = run_file::find(std::path::Path::new("."), Some(base), None)
                .ok()
                .flatten();
            (url.clone(), server)
        }
        (None, None) => unreachable!("clap requires --url or --local"),
    };
    let app_id = match account::config::app_id(env)? {
        Some(app_id) => Some(app_id),
        None => server.as_ref().and_then(|info| info.app_id.clone()),
    };
    let mode = match (args.encrypt, args.compat) {
        (false, _) => Mode::Plaintext,
        (true, false) => Mode::Safe,
        (true, true) => Mode::Compatible,
    };
    let crypto = match mode {
        Mode::Plaintext => None,
        _ => {
            let key = required(env, WECHAT_ENCODING_AES_KEY).map_err(|e| {
                CliError::Message(format!(
                    "{e} (--encrypt seals the push with the server's EncodingAESKey: set it in .env \
                     for wx and the server alike; `wx keygen aes-key` makes one)"
                ))
            })?;
            let app_id = app_id.as_deref().ok_or_else(|| {
                CliError::Message(format!(
                    "{WECHAT_APP_ID} is required with --encrypt (the AppID is sealed into the \
                     push), and no local server's run file names one: set it, or use --local \
                     against `make run`"
                ))
            })?;
            Some(MessageCrypto::new(&key, app_id).map_err(|e| {
                account::config::ConfigError::new(WECHAT_ENCODING_AES_KEY, e.to_string())
            })?)
        }
    };
    let content = content(&args)?;
    let now = now_s();
    let envelope = Envelope {
        to_user: args
            .to
            .clone()
            .or_else(|| app_id.clone())
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
        .post(&url)
        .query(&signed.query)
        .header("content-type", "text/xml; charset=utf-8")
        .body(signed.body)
        .send()
        .await
        .map_err(|e| CliError::http(&url, &e))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| CliError::http(&url, &e))?;
    let elapsed = started.elapsed();
    if status != 200 {
        let sent = Sent {
            mode,
            token_defaulted: config.is_default(WECHAT_TOKEN),
            app_id: app_id.as_deref(),
            server: server.as_ref(),
        };
        let mut message = format!(
            "{url} answered HTTP {status} after {} ms: {}",
            elapsed.as_millis(),
            first_line(&body)
        );
        if let Some(hint) = refusal_hint(status, &body, &sent) {
            message.push('\n');
            message.push_str(&hint);
        }
        return Err(CliError::Message(message));
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
        url,
        mode: mode.name(),
        status,
        elapsed_ms: elapsed.as_millis(),
        reply,
    };
    out.emit(&report, || human_push(&report, &content));
    Ok(())
}

/// What wx sent, for explaining a refusal.
struct Sent<'a> {
    mode: Mode,
    /// Whether wx signed with the development default token (nothing set `WECHAT_TOKEN`).
    token_defaulted: bool,
    app_id: Option<&'a str>,
    /// The run file of the local server pushed to, if it is one.
    server: Option<&'a RunInfo>,
}

/// Where a local server logs why it refused a push.
const SERVER_LOG: &str = "the server's log (for `make run`, its terminal) says which";

/// The likely causes of a webhook's refusal, from its answer (the webhook names the check that
/// failed, never more: a safe-mode failure is one answer whatever its cause, so that it cannot
/// serve as a decryption oracle) and what wx knows about the server.
fn refusal_hint(status: u16, body: &str, sent: &Sent<'_>) -> Option<String> {
    let token_source = match sent.token_defaulted {
        true => "the development default devtoken (nothing sets WECHAT_TOKEN for wx)",
        false => "WECHAT_TOKEN as set for wx (environment or .env)",
    };
    let server_token = match sent.server {
        Some(info) if info.default_token && sent.token_defaulted => {
            " The local server uses devtoken too, so check the clocks and the URL."
        }
        Some(info) if info.default_token => {
            " The local server uses the development default devtoken: unset WECHAT_TOKEN for wx, or set the same for both."
        }
        Some(_) if sent.token_defaulted => {
            " The local server was started with its own WECHAT_TOKEN: set the same for wx."
        }
        _ => "",
    };
    let body = body.trim();
    let hint = match (status, body) {
        (403, "invalid signature") => format!(
            "hint: the signature did not match: wx signed with {token_source}, which must be the \
             server's WECHAT_TOKEN (the console's Token for a deployed stack).{server_token}"
        ),
        (403, "invalid encrypted message") => match sent.server {
            Some(info) if info.safe_mode.as_deref() == Some("off") => {
                "hint: the local server has no EncodingAESKey (its banner says `Safe mode: off`), \
                 so it cannot open an encrypted push: set WECHAT_ENCODING_AES_KEY in .env (`wx \
                 keygen aes-key` makes one) and restart it, or push without --encrypt"
                    .to_string()
            }
            Some(RunInfo {
                app_id: Some(theirs),
                ..
            }) if sent.app_id.is_some_and(|ours| ours != theirs) => format!(
                "hint: wx sealed the push for the AppID {}, but the local server runs as \
                 {theirs}: set WECHAT_APP_ID={theirs} for wx, or unset it",
                sent.app_id.unwrap_or_default()
            ),
            _ => {
                let sealed_for = sent
                    .app_id
                    .map(|app_id| format!(" (wx sealed it for {app_id})"))
                    .unwrap_or_default();
                format!(
                    "hint: the server could not open the encrypted push. Likely causes: another \
                     WECHAT_ENCODING_AES_KEY than the server's, another WECHAT_APP_ID{sealed_for}, \
                     or another WECHAT_TOKEN (the push's msg_signature); {SERVER_LOG} \
                     (`encrypted push refused`)"
                )
            }
        },
        (403, "plaintext messages are not accepted") => "hint: the server has an EncodingAESKey \
             and accepts encrypted pushes only: add --encrypt (with its WECHAT_ENCODING_AES_KEY)"
            .to_string(),
        (403, "timestamp outside the allowed window") => "hint: this machine's clock and the \
             server's differ by more than WECHAT_MAX_CLOCK_SKEW_SECS (300 s by default)"
            .to_string(),
        (404, _) => "hint: nothing answers at this path: the webhook is at /wechat \
             (e.g. http://localhost:3000/wechat)"
            .to_string(),
        _ if sent.mode != Mode::Plaintext && status == 403 => {
            format!("hint: {SERVER_LOG}.")
        }
        _ => return None,
    };
    Some(hint)
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
            // A value's further lines start under its first, not at the left margin.
            let continuation = format!("\n{}", " ".repeat(width + 4));
            for (name, value) in &reply.fields {
                let value = value.replace('\n', &continuation);
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
            "{} failed the check: HTTP {status} in {elapsed} ms, {} (check WECHAT_TOKEN: it must be the console's Token; wx signed with {})",
            args.url,
            if status == 200 {
                "the body is not the echostr".to_string()
            } else {
                format!("body {:?}", first_line(&body))
            },
            match config.is_default(WECHAT_TOKEN) {
                true => "the development default devtoken, as nothing sets it for wx",
                false => "the one set for wx in the environment or .env",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn local(safe_mode: &str, app_id: &str, default_token: bool) -> RunInfo {
        RunInfo {
            url: "http://localhost:3000".into(),
            invoke_key: "k".repeat(32),
            wechat_api: None,
            app_id: Some(app_id.into()),
            safe_mode: Some(safe_mode.into()),
            default_token,
        }
    }

    fn hint(body: &str, mode: Mode, app_id: Option<&str>, server: Option<&RunInfo>) -> String {
        let sent = Sent {
            mode,
            token_defaulted: false,
            app_id,
            server,
        };
        refusal_hint(403, body, &sent).unwrap_or_default()
    }

    #[test]
    fn a_refused_encrypted_push_is_explained_by_what_the_local_server_says_about_itself() {
        const OURS: &str = "wx0123456789abcdef";
        const THEIRS: &str = "wxfa4e000000000001";
        let plain = local("off", THEIRS, true);
        let text = hint(
            "invalid encrypted message",
            Mode::Safe,
            Some(OURS),
            Some(&plain),
        );
        assert!(text.contains("no EncodingAESKey"), "{text}");
        assert!(text.contains("wx keygen aes-key"), "{text}");

        let keyed = local("required", THEIRS, true);
        let text = hint(
            "invalid encrypted message",
            Mode::Safe,
            Some(OURS),
            Some(&keyed),
        );
        assert!(
            text.contains(&format!("set WECHAT_APP_ID={THEIRS}")),
            "{text}"
        );

        // Any other server: every likely cause, and where the exact one is logged.
        let text = hint("invalid encrypted message", Mode::Safe, Some(OURS), None);
        for cause in [
            "WECHAT_ENCODING_AES_KEY",
            "WECHAT_APP_ID",
            OURS,
            "WECHAT_TOKEN",
            "log",
        ] {
            assert!(text.contains(cause), "{cause} missing: {text}");
        }
    }

    #[test]
    fn other_refusals_name_the_setting_to_check() {
        let text = hint("invalid signature", Mode::Plaintext, None, None);
        assert!(text.contains("WECHAT_TOKEN"), "{text}");
        let server = local("off", "wxfa4e000000000001", true);
        let text = hint("invalid signature", Mode::Plaintext, None, Some(&server));
        assert!(text.contains("development default devtoken"), "{text}");
        let text = hint(
            "plaintext messages are not accepted",
            Mode::Plaintext,
            None,
            None,
        );
        assert!(text.contains("--encrypt"), "{text}");
        let text = hint(
            "timestamp outside the allowed window",
            Mode::Plaintext,
            None,
            None,
        );
        assert!(text.contains("clock"), "{text}");
        let sent = Sent {
            mode: Mode::Plaintext,
            token_defaulted: true,
            app_id: None,
            server: None,
        };
        assert_eq!(refusal_hint(500, "internal error", &sent), None);
    }

    #[test]
    fn a_multi_line_value_continues_under_its_first_line() {
        let report = PushReport {
            url: "http://localhost:3000/wechat".into(),
            mode: "plaintext",
            status: 200,
            elapsed_ms: 3,
            reply: Some(ReplyReport {
                encrypted: false,
                fields: vec![
                    ("MsgType".into(), "text".into()),
                    ("Content".into(), "first line\nsecond line".into()),
                ],
                xml: String::new(),
            }),
        };
        let text = human_push(&report, &Content::Text("hi".into()));
        assert!(
            text.ends_with("  Content  first line\n           second line\n"),
            "{text}"
        );
    }
}

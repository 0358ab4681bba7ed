//! `wx doctor`: after a deploy (or against `make run` with `--local`), check each thing WeChat
//! checks, one line per check: ✓ passed, ✗ failed (with the fix), – skipped (with why).
//!
//! | check | what WeChat does | how it is checked here |
//! |---|---|---|
//! | `webhook_url` | accepts a server URL on port 80 or 443 only | the URL: https, port 443 |
//! | `verification` | the console's Submit: a signed GET, the `echostr` echoed exactly | that GET |
//! | `encryption` | pushes in the console's 消息加解密方式 | a signed push in the configured mode; its answer opened with our key |
//! | `token` | the access_token (IP whitelist: 40164) | the refresh function, as `wx token get` |
//! | `verify_file` | fetches `MP_verify_….txt` before accepting a domain | that GET on the OAuth domain |
//! | `domains` | 网页授权域名 and JS接口安全域名: ICP-filed domains, default port | `PUBLIC_BASE_URL`, `JSSDK_ALLOWED_ORIGINS` |
//! | `menu` | sends a click button's key as a CLICK event | the live menu against the reply rules |
//!
//! Each check is a function returning a [`Outcome`]; the command prints them and fails (exit 1)
//! when any failed. The webhook's URL is not in the configuration the functions read (the stack
//! prints it as its `WebhookUrl` output): `--webhook` gives it, or `--outputs FILE` (the stack's
//! outputs as `aws cloudformation describe-stacks` prints them, which also name the functions and
//! the public base URL when `.env` does not); `--local` uses the local server's.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use account::config::vars::{
    API_FUNCTION_NAME, JSSDK_ALLOWED_ORIGINS, PUBLIC_BASE_URL, TOKEN_FUNCTION_NAME,
    WECHAT_ENCODING_AES_KEY, WECHAT_MP_VERIFY_FILE, WECHAT_TOKEN,
};
use account::config::{optional, required};
use account::oauth::VerifyFile;
use account::rules::{Action, Rules};
use account::token::Invocation;
use clap::Args;
use reqwest::Url;
use serde::Serialize;
use wechat_api::errcode::whitelist_fix;
use wechat_protocol::crypto::MessageCrypto;
use wechat_protocol::message::{EventType, Message};
use wechat_protocol::wechat_side::{self, Account, Content, Envelope, Mode, ReceivedReply};

use crate::config::Config;
use crate::token::{LocalServer, Via, local_server, refresh_function};
use crate::{CliError, Output};

/// The openid the check push comes from: no follower has it, so nothing is sent to a person.
pub const DOCTOR_OPENID: &str = "o_wx_doctor_check_000000000000";

/// How long each HTTP check waits: WeChat itself gives up after 5 s.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The webhook URL WeChat is given (the stack's WebhookUrl output); with --local, the local
    /// server's /wechat unless this is set
    #[arg(long, value_name = "URL")]
    webhook: Option<String>,
    /// The stack's outputs, as `aws cloudformation describe-stacks --stack-name STACK` prints
    /// them (the whole answer, or its `Stacks[0].Outputs`): WebhookUrl, and the function names and
    /// public URL for settings `.env` leaves unset
    #[arg(long, value_name = "FILE")]
    outputs: Option<std::path::PathBuf>,
    #[command(flatten)]
    via: Via,
}

/// What the doctor takes from a stack's outputs, by output key.
#[derive(Debug, Default, PartialEq, Eq)]
struct StackOutputs {
    webhook: Option<String>,
    /// Settings `.env` may lack, as (variable, value).
    settings: Vec<(&'static str, String)>,
}

impl StackOutputs {
    /// Read `describe-stacks`' JSON: `{"Stacks": [{"Outputs": [...]}]}` or the outputs' list
    /// alone, each `{"OutputKey", "OutputValue"}`.
    fn parse(json: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
        let list = match &value {
            serde_json::Value::Array(list) => list,
            _ => value
                .pointer("/Stacks/0/Outputs")
                .and_then(|outputs| outputs.as_array())
                .ok_or(
                    "neither a list of outputs nor describe-stacks' answer with Stacks[0].Outputs",
                )?,
        };
        let output = |key: &str| {
            list.iter()
                .find(|o| o["OutputKey"] == key)
                .and_then(|o| o["OutputValue"].as_str())
                .map(str::to_string)
        };
        let mut settings = Vec::new();
        if let Some(name) = output("RefreshFunctionName") {
            settings.push((TOKEN_FUNCTION_NAME, name));
        }
        if let Some(name) = output("ApiFunctionName") {
            settings.push((API_FUNCTION_NAME, name));
        }
        if let Some(base) = output("OAuthAuthorizeUrl")
            .as_deref()
            .and_then(|url| url.strip_suffix("/oauth/authorize"))
        {
            settings.push((PUBLIC_BASE_URL, base.to_string()));
        }
        Ok(Self {
            webhook: output("WebhookUrl"),
            settings,
        })
    }

    fn read(path: &std::path::Path) -> Result<Self, CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Message(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| CliError::Message(format!("{}: {e}", path.display())))
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Pass { detail: String },
    Fail { why: String, fix: String },
    Skip { why: String },
}

impl Outcome {
    fn pass(detail: impl Into<String>) -> Self {
        Self::Pass {
            detail: detail.into(),
        }
    }

    fn fail(why: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::Fail {
            why: why.into(),
            fix: fix.into(),
        }
    }

    fn skip(why: impl Into<String>) -> Self {
        Self::Skip { why: why.into() }
    }

    pub fn failed(&self) -> bool {
        matches!(self, Self::Fail { .. })
    }
}

/// A named check and its outcome, as printed.
#[derive(Debug, Serialize)]
pub struct Check {
    pub check: &'static str,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What `wx doctor --json` prints.
#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    checks: Vec<Check>,
}

/// Where the checks look: the deployed stack, or a local server.
struct Target {
    webhook: Option<String>,
    local: Option<LocalServer>,
}

pub async fn run(config: &Config, out: &Output, mut args: DoctorArgs) -> Result<(), CliError> {
    let outputs = match &args.outputs {
        Some(path) => StackOutputs::read(path)?,
        None => StackOutputs::default(),
    };
    // `.env` and the environment win over the outputs: they are what the owner chose.
    let mut env = config.env.clone();
    for (variable, value) in outputs.settings {
        env.entry(variable.to_string()).or_insert(value);
    }
    let config = &Config {
        env,
        defaulted: config.defaulted.clone(),
    };
    args.webhook = args.webhook.take().or(outputs.webhook);
    let local = match &args.via.local {
        Some(local) => Some(local_server(config, local)?),
        None => None,
    };
    let webhook = args.webhook.clone().or_else(|| {
        local
            .as_ref()
            .map(|server| format!("{}/wechat", server.url))
    });
    let target = Target { webhook, local };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| CliError::Message(format!("cannot build the HTTP client: {e}")))?;

    let checks = vec![
        Check {
            check: "webhook_url",
            outcome: match (&args.webhook, &target.local) {
                (Some(url), _) => webhook_url(url),
                (None, Some(server)) => Outcome::skip(format!(
                    "{}/wechat is the local server, which WeChat cannot reach; pass --webhook with the deployed URL to check it",
                    server.url
                )),
                (None, None) => no_webhook(),
            },
        },
        Check {
            check: "verification",
            outcome: match &target.webhook {
                Some(url) => verification(config, &client, url).await,
                None => no_webhook(),
            },
        },
        Check {
            check: "encryption",
            outcome: match &target.webhook {
                Some(url) => encryption(config, &client, url, target.local.as_ref()).await,
                None => no_webhook(),
            },
        },
        Check {
            check: "token",
            outcome: token(config, &args.via).await,
        },
        Check {
            check: "verify_file",
            outcome: verify_file(config, &client, target.local.as_ref()).await,
        },
        Check {
            check: "domains",
            outcome: match &target.local {
                Some(_) => Outcome::skip(
                    "the domains WeChat checks are the deployed ones: run without --local",
                ),
                None => domains(config, &client).await,
            },
        },
        Check {
            check: "menu",
            outcome: menu(config, &args.via).await,
        },
    ];
    let failed = checks.iter().filter(|c| c.outcome.failed()).count();
    let report = Report {
        ok: failed == 0,
        checks,
    };
    out.emit(&report, || human(&report.checks));
    match failed {
        0 => Ok(()),
        n => Err(CliError::Message(format!(
            "{n} of {} checks failed",
            report.checks.len()
        ))),
    }
}

/// One line per check, and the fix under a failure.
fn human(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let mut text = String::new();
    for check in checks {
        let name = check.check;
        match &check.outcome {
            Outcome::Pass { detail } => text.push_str(&format!("✓ {name:width$}  {detail}\n")),
            Outcome::Fail { why, fix } => {
                text.push_str(&format!("✗ {name:width$}  {why}\n"));
                text.push_str(&format!("  {:width$}  fix: {fix}\n", ""));
            }
            Outcome::Skip { why } => text.push_str(&format!("– {name:width$}  skipped: {why}\n")),
        }
    }
    text
}

fn no_webhook() -> Outcome {
    Outcome::fail(
        "no webhook URL to check",
        "pass --webhook with the stack's WebhookUrl output (or --local for `make run`)",
    )
}

/// (a) WeChat calls a server URL on port 80 or 443 only, and this stack serves https: the URL
/// must be `https://` on the default port.
pub fn webhook_url(url: &str) -> Outcome {
    let parsed = match Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => {
            return Outcome::fail(
                format!("{url:?} is not a URL: {e}"),
                "pass the full URL, e.g. https://wx.example.com/wechat",
            );
        }
    };
    if parsed.scheme() != "https" {
        return Outcome::fail(
            format!("{url} is not https"),
            "use the https URL (the stack's WebhookUrl output, or your custom domain's)",
        );
    }
    if let Some(port) = parsed.port() {
        return Outcome::fail(
            format!("{url} is on port {port}: WeChat calls ports 80 and 443 only"),
            "serve it on the default https port (443) and drop the port from the URL",
        );
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Outcome::fail(format!("{url} has no host"), "pass the full URL");
    }
    Outcome::pass(format!("{url}: https on port 443"))
}

/// (b) The console's Submit: a signed GET whose `echostr` must come back exactly.
async fn verification(config: &Config, client: &reqwest::Client, url: &str) -> Outcome {
    let token = match required(&config.env, WECHAT_TOKEN) {
        Ok(token) => token,
        Err(e) => return Outcome::fail(e.to_string(), "set WECHAT_TOKEN (the console's Token)"),
    };
    let (Ok(echostr), Ok(nonce)) = (getrandom::u64(), getrandom::u64()) else {
        return Outcome::fail("the random source failed", "run again");
    };
    let echostr = echostr.to_string();
    let query = wechat_side::verification_query(&token, now_s(), &nonce.to_string(), &echostr);
    let answer = match client.get(url).query(&query).send().await {
        Ok(response) => (response.status().as_u16(), response.text().await),
        Err(e) => return unreachable(url, &e),
    };
    match answer {
        (200, Ok(body)) if body == echostr => Outcome::pass(format!(
            "{url} echoed the echostr (the console's Submit will pass)"
        )),
        (status, body) => Outcome::fail(
            format!(
                "{url} answered HTTP {status}{}",
                match body {
                    Ok(_) if status == 200 => " but not the echostr".to_string(),
                    Ok(body) => format!(": {}", first_line(&body)),
                    Err(_) => String::new(),
                }
            ),
            token_fix(config),
        ),
    }
}

/// Which token wx signed with, for the fix of a refused signature.
fn token_fix(config: &Config) -> String {
    let source = match config.is_default(WECHAT_TOKEN) {
        true => "the development default devtoken, as nothing sets it for wx",
        false => "the one set for wx in the environment or .env",
    };
    format!(
        "WECHAT_TOKEN must be the deployed token and the console's Token (wx signed with {source})"
    )
}

/// (c) A push in the configured mode (safe mode when an EncodingAESKey is configured): the
/// webhook must accept it, and its reply must verify and decrypt with our key. The push is an
/// event from [`DOCTOR_OPENID`] that no forward rule takes, so nothing leaves the webhook.
async fn encryption(
    config: &Config,
    client: &reqwest::Client,
    url: &str,
    local: Option<&LocalServer>,
) -> Outcome {
    let env = &config.env;
    let Ok(token) = required(env, WECHAT_TOKEN) else {
        return Outcome::fail(
            "WECHAT_TOKEN is not set",
            "set WECHAT_TOKEN (the console's Token)",
        );
    };
    let app_id = match account::config::app_id(env) {
        Ok(Some(app_id)) => Some(app_id),
        Ok(None) => local.and_then(|server| server.info.as_ref()?.app_id.clone()),
        Err(e) => return Outcome::fail(e.to_string(), "set WECHAT_APP_ID to the account's AppID"),
    };
    let key = optional(env, WECHAT_ENCODING_AES_KEY);
    let crypto = match (&key, &app_id) {
        (None, _) => None,
        (Some(_), None) => {
            return Outcome::fail(
                "an EncodingAESKey is set but no AppID (it is sealed into every push)",
                "set WECHAT_APP_ID to the account's AppID",
            );
        }
        (Some(key), Some(app_id)) => match MessageCrypto::new(key, app_id) {
            Ok(crypto) => Some(crypto),
            Err(e) => {
                return Outcome::fail(
                    format!("WECHAT_ENCODING_AES_KEY: {e}"),
                    "set it to the console's EncodingAESKey (43 characters)",
                );
            }
        },
    };
    let mode = match crypto {
        Some(_) => Mode::Safe,
        None => Mode::Plaintext,
    };
    let rules = match Rules::from_env(env) {
        Ok(rules) => rules,
        Err(e) => return Outcome::fail(e.to_string(), "fix WECHAT_REPLY_RULES"),
    };
    let envelope = Envelope {
        to_user: app_id.clone().unwrap_or_else(|| "gh_account".into()),
        from_user: DOCTOR_OPENID.into(),
        create_time: now_s(),
        msg_id: 0,
    };
    let Some(content) = harmless_push(&rules, &envelope) else {
        return Outcome::skip(
            "every event the check could push is forwarded by a rule: `wx push --encrypt` checks it by hand",
        );
    };
    let xml = wechat_side::push_xml(&content, &envelope);
    let account = Account {
        token: &token,
        crypto: crypto.as_ref(),
    };
    let Ok(nonce) = getrandom::u64() else {
        return Outcome::fail("the random source failed", "run again");
    };
    let signed = match wechat_side::sign_push(
        &account,
        mode,
        &xml,
        DOCTOR_OPENID,
        envelope.create_time,
        &nonce.to_string(),
    ) {
        Ok(signed) => signed,
        Err(e) => return Outcome::fail(e.to_string(), "check WECHAT_ENCODING_AES_KEY"),
    };
    let answer = client
        .post(url)
        .query(&signed.query)
        .header("content-type", "text/xml; charset=utf-8")
        .body(signed.body)
        .send()
        .await;
    let (status, body) = match answer {
        Ok(response) => (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        ),
        Err(e) => return unreachable(url, &e),
    };
    let fix = match mode {
        Mode::Safe => format!(
            "WECHAT_ENCODING_AES_KEY and WECHAT_APP_ID must be the deployed ones (the console's \
             EncodingAESKey and AppID), and the console set to 安全模式; {}",
            token_fix(config)
        ),
        _ => format!(
            "the webhook refuses plaintext pushes when it has an EncodingAESKey: set the same \
             WECHAT_ENCODING_AES_KEY for wx; {}",
            token_fix(config)
        ),
    };
    if status != 200 {
        return Outcome::fail(
            format!(
                "{url} refused a {} push: HTTP {status}: {}",
                mode.name(),
                first_line(&body)
            ),
            fix,
        );
    }
    match wechat_side::open_reply(&account, mode, &body) {
        Ok(ReceivedReply::Nothing) => Outcome::pass(format!(
            "{} mode: the push was accepted (no reply to open)",
            mode.name()
        )),
        Ok(ReceivedReply::Message { encrypted, .. }) => Outcome::pass(match encrypted {
            true => format!(
                "{} mode: the reply verified and decrypted with our key",
                mode.name()
            ),
            false => format!("{} mode: the reply is plaintext", mode.name()),
        }),
        Err(e) => Outcome::fail(format!("the reply could not be opened: {e}"), fix),
    }
}

/// A push no forward rule takes: a VIEW event (a menu link opened), else a CLICK of a key no
/// menu has. `None` when rules forward both.
fn harmless_push(rules: &Rules, envelope: &Envelope) -> Option<Content> {
    let candidates = [
        (EventType::View, "https://wx-doctor.invalid/"),
        (EventType::Click, "WX_DOCTOR_CHECK"),
    ];
    candidates.into_iter().find_map(|(event, key)| {
        let content = Content::Event {
            event,
            key: Some(key.into()),
        };
        let xml = wechat_side::push_xml(&content, envelope);
        let message = Message::parse(xml.as_bytes()).ok()?;
        match rules.action_for(&message) {
            Some(Action::Forward(_)) => None,
            _ => Some(content),
        }
    })
}

/// (d) A token, the way `wx token get` has one: the refresh function, or the local server's
/// Invoke emulation. A 40164 names the IP to whitelist.
async fn token(config: &Config, via: &Via) -> Outcome {
    let function = match refresh_function(config, via).await {
        Ok((function, _)) => function,
        Err(e) => {
            let fix = match via.local {
                Some(_) => "start `make run` in this directory, or pass --local URL",
                None => "set TOKEN_FUNCTION_NAME (the stack's RefreshFunctionName output)",
            };
            return Outcome::fail(e.to_string(), fix);
        }
    };
    match function.invoke(Invocation::Get).await {
        Ok(token) => Outcome::pass(format!(
            "access_token {} from the refresh function",
            token.fingerprint()
        )),
        Err(e) => {
            let why = e.to_string();
            let fix = match refused_ip(&why) {
                Some(ip) => whitelist_fix(ip),
                None => "see the refresh function's log (`config_error` names the fix)".into(),
            };
            Outcome::fail(why, fix)
        }
    }
}

/// The IP a whitelist refusal named in an error's text ("… from IP 203.0.113.7: …"), which is all
/// that crosses the Lambda Invoke boundary.
pub fn refused_ip(text: &str) -> Option<IpAddr> {
    let rest = &text[text.find("from IP ")? + "from IP ".len()..];
    let word = rest.split([' ', ',']).next()?.trim_end_matches(':');
    word.parse().ok()
}

/// (e) The domain verification file on the OAuth domain, with the exact content.
async fn verify_file(
    config: &Config,
    client: &reqwest::Client,
    local: Option<&LocalServer>,
) -> Outcome {
    let file = match VerifyFile::from_env(&config.env) {
        Ok(Some(file)) => file,
        Ok(None) => {
            return Outcome::skip(format!(
                "{WECHAT_MP_VERIFY_FILE} is not set (needed before the console accepts the OAuth or JS-SDK domain)"
            ));
        }
        Err(e) => {
            return Outcome::fail(
                e.to_string(),
                "set it to the name of the file the console offers",
            );
        }
    };
    let base = match local {
        Some(server) => server.url.clone(),
        None => match optional(&config.env, PUBLIC_BASE_URL).map(|url| domain_root(&url)) {
            Some(Ok(root)) => root,
            Some(Err(why)) => return Outcome::fail(why, format!("fix {PUBLIC_BASE_URL}")),
            None => {
                return Outcome::fail(
                    format!("{PUBLIC_BASE_URL} is not set for wx"),
                    format!(
                        "set {PUBLIC_BASE_URL} (the OAuth domain, as deployed) in .env or the environment"
                    ),
                );
            }
        },
    };
    fetch_file(client, &base, &file).await
}

/// GET `base/<file>`: passes when the body is exactly the code.
async fn fetch_file(client: &reqwest::Client, base: &str, file: &VerifyFile) -> Outcome {
    let url = format!("{base}/{}", file.name());
    let fix = format!(
        "deploy with {WECHAT_MP_VERIFY_FILE}={} (the template's MpVerifyFile) behind this domain",
        file.name()
    );
    match client.get(&url).send().await {
        Err(e) => Outcome::fail(unreachable_text(&url, &e), fix),
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            match (status, body == file.code()) {
                (200, true) => Outcome::pass(format!("{url} serves the code")),
                (200, false) => Outcome::fail(
                    format!(
                        "{url} answers, but not with exactly the code {:?}",
                        file.code()
                    ),
                    fix,
                ),
                _ => Outcome::fail(format!("{url} answered HTTP {status}"), fix),
            }
        }
    }
}

/// `https://host` of a URL: WeChat fetches the file at the domain's root.
fn domain_root(url: &str) -> Result<String, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url} has no host"))?;
    Ok(match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    })
}

/// (f) The OAuth domain (host of `PUBLIC_BASE_URL`) and the JS-SDK origins as WeChat will see
/// them; each JS-SDK domain must serve the verification file too.
async fn domains(config: &Config, client: &reqwest::Client) -> Outcome {
    let Some(public) = optional(&config.env, PUBLIC_BASE_URL) else {
        return Outcome::skip(format!(
            "{PUBLIC_BASE_URL} is not set for wx (set it as deployed to check the OAuth domain)"
        ));
    };
    let origins: Vec<String> = optional(&config.env, JSSDK_ALLOWED_ORIGINS)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(String::from)
        .collect();
    let hosts = match domain_problems(&public, &origins) {
        Ok(hosts) => hosts,
        Err((why, fix)) => return Outcome::fail(why, fix),
    };
    let file = match VerifyFile::from_env(&config.env) {
        Ok(file) => file,
        Err(e) => return Outcome::fail(e.to_string(), "fix it"),
    };
    if let Some(file) = &file {
        // The OAuth domain's file is check (e); here the JS-SDK domains' own.
        for host in hosts.iter().skip(1) {
            if let Outcome::Fail { why, fix } =
                fetch_file(client, &format!("https://{host}"), file).await
            {
                return Outcome::fail(format!("JS-SDK domain {host}: {why}"), fix);
            }
        }
    }
    Outcome::pass(format!(
        "{} (https, port 443, not an execute-api host){}",
        hosts.join(", "),
        match file {
            Some(_) if hosts.len() > 1 => "; the JS-SDK domains serve the verification file",
            _ => "",
        }
    ))
}

/// The pure part of (f): the OAuth domain first, then each other JS-SDK domain; or why and the
/// fix for the first that WeChat would not accept.
pub fn domain_problems(public: &str, origins: &[String]) -> Result<Vec<String>, (String, String)> {
    let mut hosts = vec![acceptable_host(PUBLIC_BASE_URL, public)?];
    for origin in origins {
        let host = acceptable_host(JSSDK_ALLOWED_ORIGINS, origin)?;
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    Ok(hosts)
}

/// The host of `url` (from `variable`) when WeChat can accept it as a domain: https on the
/// default port, and not API Gateway's own host (a subdomain of amazonaws.com, which its owner
/// cannot ICP-file, and WeChat asks for filed domains).
fn acceptable_host(variable: &str, url: &str) -> Result<String, (String, String)> {
    let parsed = Url::parse(url).map_err(|e| {
        (
            format!("{variable}: {url:?} is not a URL: {e}"),
            format!("set {variable} to https://your.domain"),
        )
    })?;
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    if parsed.scheme() != "https" {
        return Err((
            format!("{variable}: {url} is not https"),
            format!("use https in {variable}"),
        ));
    }
    if let Some(port) = parsed.port() {
        return Err((
            format!("{variable}: {url} is on port {port}; WeChat's domains take no port"),
            "serve it on port 443 and drop the port".into(),
        ));
    }
    if host.contains(".execute-api.") && host.ends_with(".amazonaws.com") {
        return Err((
            format!(
                "{variable}: {host} is API Gateway's own host: it cannot be ICP-filed, so WeChat will not accept it as a domain"
            ),
            "use a custom domain (docs/deploy.md) and set it here".into(),
        ));
    }
    Ok(host)
}

/// (g) The live menu against the reply rules: a click key no rule answers gets no reply.
async fn menu(config: &Config, via: &Via) -> Outcome {
    let rules = match Rules::from_env(&config.env) {
        Ok(rules) => rules,
        Err(e) => return Outcome::fail(e.to_string(), "fix WECHAT_REPLY_RULES"),
    };
    let live = match crate::menu::fetch(config, via).await {
        Ok(Some(live)) => live,
        Ok(None) => return Outcome::skip("no custom menu is live"),
        Err(e) => {
            let why = format!("cannot read the live menu: {e}");
            let fix = match refused_ip(&why) {
                Some(ip) => whitelist_fix(ip),
                None => "see `wx menu show`".into(),
            };
            return Outcome::fail(why, fix);
        }
    };
    let warnings = account::menu::rule_warnings(&live, &rules);
    match warnings.is_empty() {
        true => Outcome::pass(format!(
            "{} buttons; every click key has a rule",
            live.buttons().len()
        )),
        false => Outcome::fail(
            warnings.join("; "),
            "add a CLICK rule for each key to WECHAT_REPLY_RULES, or change the menu (`wx menu diff FILE`)",
        ),
    }
}

fn unreachable(url: &str, e: &reqwest::Error) -> Outcome {
    Outcome::fail(
        unreachable_text(url, e),
        "check the URL and that the stack is deployed (or `make run` runs)",
    )
}

fn unreachable_text(url: &str, e: &reqwest::Error) -> String {
    CliError::http(url, e).to_string()
}

fn first_line(body: &str) -> String {
    body.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stack_outputs_name_the_webhook_the_functions_and_the_public_url() {
        let list = r#"[
            {"OutputKey": "WebhookUrl", "OutputValue": "https://wx.example.com/wechat"},
            {"OutputKey": "RefreshFunctionName", "OutputValue": "stack-RefreshFunction-1"},
            {"OutputKey": "ApiFunctionName", "OutputValue": "stack-ApiFunction-1"},
            {"OutputKey": "OAuthAuthorizeUrl", "OutputValue": "https://wx.example.com/oauth/authorize"}
        ]"#;
        let outputs = StackOutputs::parse(list).unwrap();
        assert_eq!(
            outputs.webhook.as_deref(),
            Some("https://wx.example.com/wechat")
        );
        assert_eq!(
            outputs.settings,
            vec![
                (TOKEN_FUNCTION_NAME, "stack-RefreshFunction-1".to_string()),
                (API_FUNCTION_NAME, "stack-ApiFunction-1".to_string()),
                (PUBLIC_BASE_URL, "https://wx.example.com".to_string()),
            ]
        );
        // describe-stacks' whole answer reads the same.
        let whole = format!(r#"{{"Stacks": [{{"StackName": "s", "Outputs": {list}}}]}}"#);
        assert_eq!(StackOutputs::parse(&whole).unwrap(), outputs);
        // Missing outputs are simply absent; anything else is refused with a reason.
        assert_eq!(StackOutputs::parse("[]").unwrap(), StackOutputs::default());
        assert!(StackOutputs::parse(r#"{"Stacks": []}"#).is_err());
        assert!(StackOutputs::parse("not json").is_err());
    }

    use super::*;

    fn why(outcome: Outcome) -> String {
        match outcome {
            Outcome::Fail { why, .. } => why,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn the_webhook_must_be_https_on_the_default_port() {
        assert!(matches!(
            webhook_url("https://example.com"),
            Outcome::Pass { .. }
        ));
        assert!(matches!(
            webhook_url("https://wx.example.com/wechat"),
            Outcome::Pass { .. }
        ));
        assert!(why(webhook_url("http://example.com/wechat")).contains("not https"));
        assert!(why(webhook_url("https://example.com:8443/wechat")).contains("port 8443"));
        assert!(why(webhook_url("example.com/wechat")).contains("not a URL"));
        // `:443` spelled out is the default port.
        assert!(matches!(
            webhook_url("https://example.com:443/wechat"),
            Outcome::Pass { .. }
        ));
    }

    #[test]
    fn domains_must_be_https_default_port_and_not_api_gateways_host() {
        let origins = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            domain_problems(
                "https://wx.example.com",
                &origins(&["https://shop.example.com", "https://wx.example.com"])
            ),
            Ok(vec!["wx.example.com".into(), "shop.example.com".into()])
        );
        let (why, fix) = domain_problems(
            "https://abc123.execute-api.ap-east-1.amazonaws.com/prod",
            &[],
        )
        .unwrap_err();
        assert!(why.contains("API Gateway"), "{why}");
        assert!(fix.contains("custom domain"), "{fix}");
        let (why, _) = domain_problems(
            "https://wx.example.com",
            &origins(&["http://shop.example.com"]),
        )
        .unwrap_err();
        assert!(
            why.contains("JSSDK_ALLOWED_ORIGINS") && why.contains("not https"),
            "{why}"
        );
        let (why, _) = domain_problems("https://wx.example.com:8443", &[]).unwrap_err();
        assert!(why.contains("port 8443"), "{why}");
    }

    #[test]
    fn the_ip_of_a_whitelist_refusal_is_read_back_from_its_text() {
        let text = format!(
            "the token function failed: no usable access_token: {} (errcode 40164)",
            whitelist_fix("203.0.113.7".parse().unwrap())
        );
        assert_eq!(refused_ip(&text), Some("203.0.113.7".parse().unwrap()));
        assert_eq!(refused_ip("WeChat rejected the configuration: 40125"), None);
        assert_eq!(refused_ip("from IP nonsense"), None);
    }

    #[test]
    fn the_check_push_is_an_event_no_forward_rule_takes() {
        let envelope = Envelope {
            to_user: "wxfa4e000000000001".into(),
            from_user: DOCTOR_OPENID.into(),
            create_time: 1,
            msg_id: 0,
        };
        let plain = Rules::from_toml("").unwrap();
        assert!(matches!(
            harmless_push(&plain, &envelope),
            Some(Content::Event {
                event: EventType::View,
                ..
            })
        ));
        let forward = |event: &str| {
            format!(
                "[[rules]]\nevent = \"{event}\"\nreply = {{ type = \"forward\", url = \"https://svc.example.com/in\" }}\n"
            )
        };
        let views_forwarded = Rules::from_toml(&forward("VIEW")).unwrap();
        assert!(matches!(
            harmless_push(&views_forwarded, &envelope),
            Some(Content::Event {
                event: EventType::Click,
                ..
            })
        ));
        let both = Rules::from_toml(&format!("{}{}", forward("VIEW"), forward("CLICK"))).unwrap();
        assert_eq!(harmless_push(&both, &envelope), None);
    }

    #[test]
    fn a_failure_prints_its_fix_under_it() {
        let text = human(&[
            Check {
                check: "token",
                outcome: Outcome::fail("refused", "whitelist it"),
            },
            Check {
                check: "menu",
                outcome: Outcome::skip("no custom menu is live"),
            },
        ]);
        assert_eq!(
            text,
            "✗ token  refused\n         fix: whitelist it\n– menu   skipped: no custom menu is live\n"
        );
    }
}

//! `wx qrcode create --scene NAME [--days N | --permanent] [--out FILE.png]` and
//! `wx qrcode stats [--days N]`: channel QR codes ([`account::qrcode`]) through the api function
//! (deployed, or the local server's emulation with `--local`), so WeChat is called with the
//! central token and the laptop needs no place on the IP whitelist. The scene is checked offline
//! first; the image comes from `showqrcode`, which needs no token.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use account::api::Action;
use account::config::vars::WECHAT_MP_BASE;
use account::config::{ConfigError, optional};
use account::qrcode::{CreateQrCode, DayStats, Lifetime, QrCodeAnswer, Scene, image_url, mp_base};
use clap::{Args, Subcommand};
use serde::Serialize;
use wechat_api::Endpoint;

use crate::api::{self, ApiRequest};
use crate::config::Config;
use crate::token::{Via, local_server};
use crate::{CliError, Output};

#[derive(Debug, Args)]
pub struct QrcodeArgs {
    #[command(subcommand)]
    command: QrcodeCommand,
    #[command(flatten)]
    pub via: Via,
}

#[derive(Debug, Subcommand)]
enum QrcodeCommand {
    /// Create a channel QR code for a scene and save its image
    Create(CreateArgs),
    /// Follows and scans per scene and China day (needs QR_STATS on the message function)
    Stats {
        /// How many days back from today (China time), 1 to 90
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The scene the code carries (1 to 64 bytes): WeChat pushes it back on every follow and scan
    #[arg(long)]
    scene: String,
    /// A temporary code living N days, 1 to 30 (the default: 30)
    #[arg(long, value_name = "N", conflicts_with = "permanent")]
    days: Option<u64>,
    /// A permanent code (at most 100,000 per account; they never expire)
    #[arg(long)]
    permanent: bool,
    /// Save the image here (a PNG or JPEG, as served)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// What `wx qrcode create --json` prints.
#[derive(Debug, Serialize)]
struct Created {
    scene: Scene,
    ticket: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expire_seconds: Option<u64>,
    url: String,
    image_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    saved: Option<PathBuf>,
}

pub async fn run(config: &Config, out: &Output, args: QrcodeArgs) -> Result<(), CliError> {
    match args.command {
        QrcodeCommand::Create(create) => {
            let created = create_code(config, &args.via, create).await?;
            out.emit(&created, || human_created(&created));
            Ok(())
        }
        QrcodeCommand::Stats { days } => {
            let answer = api::act(config, &args.via, Action::QrcodeStats { days }).await?;
            let body = api::accepted(answer)?.body;
            let days: Vec<DayStats> = serde_json::from_value(body["days"].clone())
                .map_err(|e| CliError::Message(format!("the api function's answer: {e}")))?;
            out.emit(&body, || stats_table(&days));
            Ok(())
        }
    }
}

/// The scene and lifetime checked offline, before any call.
fn request(args: &CreateArgs) -> Result<CreateQrCode, CliError> {
    let invalid = |e: account::qrcode::SceneError| CliError::Message(format!("not created: {e}"));
    let scene = Scene::new(&args.scene).map_err(invalid)?;
    let lifetime = match (args.permanent, args.days) {
        (true, _) => Lifetime::Permanent,
        (false, days) => Lifetime::days(days.unwrap_or(30)).map_err(invalid)?,
    };
    Ok(CreateQrCode::new(scene, lifetime))
}

async fn create_code(config: &Config, via: &Via, args: CreateArgs) -> Result<Created, CliError> {
    let request = request(&args)?;
    let call = ApiRequest {
        method: "POST".into(),
        path: CreateQrCode::PATH.into(),
        query: BTreeMap::new(),
        body: Some(serde_json::to_value(&request).map_err(|e| CliError::Message(e.to_string()))?),
    };
    let answer = api::accepted(api::call(config, via, &call).await?)?;
    let code: QrCodeAnswer = serde_json::from_value(answer.body)
        .map_err(|e| CliError::Message(format!("WeChat's answer has no ticket: {e}")))?;
    let image_url = image_url(&image_base(config, via)?, &code.ticket);
    let saved = match args.out {
        None => None,
        Some(path) => {
            save_image(&image_url, &path).await?;
            Some(path)
        }
    };
    Ok(Created {
        scene: request.action_info.scene.scene_str,
        ticket: code.ticket,
        expire_seconds: code.expire_seconds,
        url: code.url,
        image_url,
        saved,
    })
}

/// `WECHAT_MP_BASE`; with `--local` and no explicit one, the WeChat API the local server uses
/// (the fake serves the images too), never the real one for a fake's ticket.
fn image_base(config: &Config, via: &Via) -> Result<String, CliError> {
    let explicit = optional(&config.env, WECHAT_MP_BASE).is_some();
    let local = match (&via.local, explicit) {
        (Some(local), false) => local_server(config, local)?
            .info
            .and_then(|info| info.wechat_api),
        _ => None,
    };
    let mut env = config.env.clone();
    if let Some(base) = local {
        env.insert(WECHAT_MP_BASE.into(), base);
    }
    mp_base(&env).map_err(|e: ConfigError| CliError::Message(e.to_string()))
}

async fn save_image(url: &str, path: &PathBuf) -> Result<(), CliError> {
    let failed =
        |e: reqwest::Error| CliError::Message(format!("the image could not be fetched: {e}"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(failed)?;
    let response = client.get(url).send().await.map_err(failed)?;
    let status = response.status();
    let is_image = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("image/"));
    if !status.is_success() || !is_image {
        return Err(CliError::Message(format!(
            "the image could not be fetched: {url} answered HTTP {status}{}",
            if is_image { "" } else { " without an image" }
        )));
    }
    let bytes = response.bytes().await.map_err(failed)?;
    std::fs::write(path, &bytes)
        .map_err(|e| CliError::Message(format!("cannot write {}: {e}", path.display())))
}

fn human_created(created: &Created) -> String {
    let expiry = match created.expire_seconds {
        Some(seconds) => format!("expires in {} (temporary)", duration(seconds)),
        None => "permanent (never expires)".to_string(),
    };
    let mut text = format!(
        "scene:  {}\nticket: {}\n{expiry}\nurl:    {}\nimage:  {}\n",
        created.scene, created.ticket, created.url, created.image_url
    );
    if let Some(path) = &created.saved {
        text.push_str(&format!("saved:  {}\n", path.display()));
    }
    text
}

fn duration(seconds: u64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s % 3_600 == 0 => format!("{} hours", s / 3_600),
        s => format!("{s} s"),
    }
}

/// One line per day and scene, newest day first; `-` for a day without events. Scene names
/// are padded by terminal columns, so Chinese names line up too.
fn stats_table(days: &[DayStats]) -> String {
    let width = days
        .iter()
        .flat_map(|d| d.scenes.keys())
        .map(|s| columns(s))
        .chain([5])
        .max()
        .unwrap_or(5);
    let padded = |s: &str| format!("{s}{}", " ".repeat(width.saturating_sub(columns(s))));
    let line = |date: &str, scene: &str, follows: u64, scans: u64| {
        format!("{date:<10}  {}  {follows:>7}  {scans:>7}\n", padded(scene))
    };
    let mut text = format!(
        "{:<10}  {}  {:>7}  {:>7}\n",
        "date",
        padded("scene"),
        "follows",
        "scans"
    );
    for day in days {
        let date = day.date.to_string();
        if day.scenes.is_empty() {
            text.push_str(&line(&date, "-", 0, 0));
        }
        for (scene, counts) in &day.scenes {
            text.push_str(&line(&date, scene, counts.subscribe, counts.scan));
        }
    }
    text
}

/// Terminal columns of `s`: East Asian wide characters (CJK, Hangul, full-width forms) take two.
fn columns(s: &str) -> usize {
    s.chars()
        .map(|c| match u32::from(c) {
            0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use account::qrcode::{ChinaDate, SceneCounts};

    fn args(scene: &str, days: Option<u64>, permanent: bool) -> CreateArgs {
        CreateArgs {
            scene: scene.into(),
            days,
            permanent,
            out: None,
        }
    }

    #[test]
    fn the_scene_and_lifetime_are_checked_before_any_call() {
        let temporary = request(&args("poster-a", None, false)).unwrap();
        assert_eq!(temporary.expire_seconds, Some(2_592_000));
        assert_eq!(
            request(&args("a", Some(1), false)).unwrap().expire_seconds,
            Some(86_400)
        );
        assert_eq!(
            request(&args("a", None, true)).unwrap().action_name,
            "QR_LIMIT_STR_SCENE"
        );
        for (bad, says) in [
            (args("", None, false), "empty"),
            (args(&"x".repeat(65), None, false), "65 bytes"),
            (args("a", Some(31), false), "30 days"),
            (args("a", Some(0), false), "30 days"),
        ] {
            let CliError::Message(text) = request(&bad).unwrap_err() else {
                panic!("a message");
            };
            assert!(
                text.starts_with("not created:") && text.contains(says),
                "{text}"
            );
        }
    }

    #[test]
    fn the_stats_table_lines_up_wide_scene_names() {
        let days = vec![
            DayStats {
                date: ChinaDate::parse("2026-12-03").unwrap(),
                scenes: BTreeMap::from([
                    (
                        "poster-a".into(),
                        SceneCounts {
                            subscribe: 3,
                            scan: 5,
                        },
                    ),
                    (
                        "门店".into(),
                        SceneCounts {
                            subscribe: 1,
                            scan: 0,
                        },
                    ),
                ]),
            },
            DayStats {
                date: ChinaDate::parse("2026-12-02").unwrap(),
                scenes: BTreeMap::new(),
            },
        ];
        let table = stats_table(&days);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "date        scene     follows    scans");
        assert_eq!(lines[1], "2026-12-03  poster-a        3        5");
        assert_eq!(lines[3], "2026-12-02  -               0        0");
        // The Chinese name takes 4 of the 8 columns: every line is as wide on a terminal.
        assert!(
            lines[2].starts_with("2026-12-03  门店      "),
            "{}",
            lines[2]
        );
        assert!(
            lines.iter().all(|l| columns(l) == columns(lines[0])),
            "{table}"
        );
    }
}

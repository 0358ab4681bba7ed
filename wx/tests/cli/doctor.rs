//! `wx doctor --local` against `wx serve` with the bundled fake WeChat API: every check passes
//! (or is skipped with its reason) on a healthy setup, and each check fails, with its fix, when
//! what WeChat checks is wrong.

use std::process::Output;

use serde_json::Value;

use super::{KEY, Server, Setup, repo, text};

const VERIFY_FILE: &str = "MP_verify_AbC123xyz.txt";

/// `wx --json doctor --local ARGS` in `server`'s directory with `env` on top of its setup: the
/// process output and the report.
fn doctor(server: &Server, env: &[(&str, &str)], args: &[&str]) -> (Output, Value) {
    let output = server
        .wx()
        .envs(env.iter().copied())
        .args(["--json", "doctor", "--local"])
        .args(args)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}): {}\n{}",
            text(&output.stdout),
            text(&output.stderr)
        )
    });
    (output, report)
}

/// The outcome of the check named `name`.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

fn status<'a>(report: &'a Value, name: &str) -> &'a str {
    check(report, name)["status"].as_str().unwrap()
}

fn keyed(name: &str, env: &[(&str, &str)]) -> Server {
    Server::start_with(
        name,
        Setup {
            encrypted: true,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Setup::default()
        },
    )
}

#[test]
fn a_healthy_local_setup_passes_every_check_it_can_make() {
    let server = keyed("doctor-ok", &[("WECHAT_MP_VERIFY_FILE", VERIFY_FILE)]);
    let example = repo().join("examples/menu.toml");
    server.json(&["menu", "apply", example.to_str().unwrap(), "--local"]);

    let (output, report) = doctor(&server, &[], &[]);
    assert!(
        output.status.success(),
        "{report}\n{}",
        text(&output.stderr)
    );
    assert_eq!(report["ok"], true);
    for (name, expected) in [
        ("webhook_url", "skip"),
        ("verification", "pass"),
        ("encryption", "pass"),
        ("token", "pass"),
        ("verify_file", "pass"),
        ("domains", "skip"),
        ("menu", "pass"),
    ] {
        assert_eq!(status(&report, name), expected, "{name}: {report}");
    }
    assert!(
        check(&report, "encryption")["detail"]
            .as_str()
            .unwrap()
            .starts_with("safe mode"),
        "{report}"
    );

    // The text form: one line per check, ✓ or –.
    let output = server.run(&["doctor", "--local"]);
    let printed = text(&output.stdout);
    assert_eq!(printed.lines().count(), 7, "{printed}");

    // Told another file than the one deployed: WeChat would not find it.
    let (output, report) = doctor(
        &server,
        &[("WECHAT_MP_VERIFY_FILE", "MP_verify_Other999.txt")],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let file = check(&report, "verify_file");
    assert_eq!(file["status"], "fail", "{report}");
    assert!(
        file["why"]
            .as_str()
            .unwrap()
            .contains("/MP_verify_Other999.txt answered HTTP 404"),
        "{file}"
    );
    assert!(
        printed
            .lines()
            .all(|l| l.starts_with('✓') || l.starts_with('–')),
        "{printed}"
    );
}

#[test]
fn each_wrong_setting_fails_its_check_with_a_fix() {
    // The menu sends a key no rule answers.
    let dir = std::env::temp_dir().join(format!("wx-doctor-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nevent = \"CLICK\"\nevent_key = \"HAS_RULE\"\nreply = { type = \"text\", content = \"x\" }\n",
    )
    .unwrap();
    let menu = dir.join("menu.toml");
    std::fs::write(
        &menu,
        "[[button]]\ntype = \"click\"\nname = \"a\"\nkey = \"HAS_RULE\"\n\
         [[button]]\ntype = \"click\"\nname = \"b\"\nkey = \"NO_RULE\"\n",
    )
    .unwrap();
    // No verification file on the server.
    let server = keyed(
        "doctor-bad",
        &[("WECHAT_REPLY_RULES", rules.to_str().unwrap())],
    );
    let output = server.run(&["menu", "apply", menu.to_str().unwrap(), "--local"]);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let (output, report) = doctor(&server, &[("WECHAT_MP_VERIFY_FILE", VERIFY_FILE)], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("checks failed"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(report["ok"], false);
    let file = check(&report, "verify_file");
    assert_eq!(file["status"], "fail", "{report}");
    assert!(file["why"].as_str().unwrap().contains("HTTP 404"), "{file}");
    assert!(
        file["fix"].as_str().unwrap().contains(VERIFY_FILE),
        "{file}"
    );
    let menu_check = check(&report, "menu");
    assert_eq!(menu_check["status"], "fail", "{report}");
    assert!(
        menu_check["why"].as_str().unwrap().contains("NO_RULE"),
        "{menu_check}"
    );
    // The rest is fine.
    for name in ["verification", "encryption", "token"] {
        assert_eq!(status(&report, name), "pass", "{name}: {report}");
    }

    // Another token: the console's Submit would fail, and so would every push.
    let (_, report) = doctor(
        &server,
        &[("WECHAT_TOKEN", "another-token-0123456789abcdef")],
        &[],
    );
    let verification = check(&report, "verification");
    assert_eq!(verification["status"], "fail", "{report}");
    assert!(
        verification["fix"]
            .as_str()
            .unwrap()
            .contains("WECHAT_TOKEN"),
        "{verification}"
    );
    assert_eq!(status(&report, "encryption"), "fail");

    // Another EncodingAESKey: the URL check passes (it is not encrypted), the push does not.
    let other_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    assert_ne!(other_key, KEY);
    let (_, report) = doctor(&server, &[("WECHAT_ENCODING_AES_KEY", other_key)], &[]);
    assert_eq!(status(&report, "verification"), "pass", "{report}");
    let encryption = check(&report, "encryption");
    assert_eq!(encryption["status"], "fail", "{report}");
    assert!(
        encryption["why"]
            .as_str()
            .unwrap()
            .contains("refused a safe push"),
        "{encryption}"
    );
    assert!(
        encryption["fix"]
            .as_str()
            .unwrap()
            .contains("WECHAT_ENCODING_AES_KEY"),
        "{encryption}"
    );

    // A plain-http webhook URL: WeChat needs https on 443 (the server itself still answers).
    let webhook = server.webhook();
    let (_, report) = doctor(&server, &[], &["--webhook", &webhook]);
    let url = check(&report, "webhook_url");
    assert_eq!(url["status"], "fail", "{report}");
    assert!(url["why"].as_str().unwrap().contains("not https"), "{url}");
    assert_eq!(status(&report, "verification"), "pass", "{report}");

    // The same URL read from the stack's outputs, as `aws cloudformation describe-stacks` prints
    // them: the webhook is the outputs' WebhookUrl.
    let outputs = dir.join("outputs.json");
    let described = serde_json::json!({"Stacks": [{"Outputs": [
        {"OutputKey": "WebhookUrl", "OutputValue": webhook},
    ]}]});
    std::fs::write(&outputs, described.to_string()).unwrap();
    let (_, report) = doctor(&server, &[], &["--outputs", outputs.to_str().unwrap()]);
    let url = check(&report, "webhook_url");
    assert_eq!(url["status"], "fail", "{report}");
    assert!(url["why"].as_str().unwrap().contains("not https"), "{url}");
    assert_eq!(status(&report, "verification"), "pass", "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn off_the_fake_whitelist_the_token_check_and_other_commands_name_the_ip_to_add() {
    let server = keyed(
        "doctor-whitelist",
        &[("LOCAL_FAKE_WECHAT_IP_WHITELIST", "203.0.113.7")],
    );
    let (output, report) = doctor(&server, &[], &[]);
    assert_eq!(output.status.code(), Some(1));
    let token = check(&report, "token");
    assert_eq!(token["status"], "fail", "{report}");
    assert!(
        token["why"].as_str().unwrap().contains("127.0.0.1"),
        "{token}"
    );
    let fix = token["fix"].as_str().unwrap();
    assert!(
        fix.starts_with(
            "WeChat refused the call from IP 127.0.0.1: add 127.0.0.1 to the IP whitelist"
        ),
        "{fix}"
    );
    assert!(fix.contains("IP白名单"), "{fix}");

    // Every command that surfaces WeChat's refusal says the same.
    let page = format!("{}/demo", server.url);
    for args in [
        &["token", "get", "--local"][..],
        &["menu", "show", "--local"][..],
        &["jssdk", "sign", &page, "--local"][..],
    ] {
        let output = server.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(
                "WeChat refused the call from IP 127.0.0.1: add 127.0.0.1 to the IP whitelist"
            ),
            "{args:?}: {stderr}"
        );
    }
}

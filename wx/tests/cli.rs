//! `wx` end to end, as an operator runs it: `wx serve` (the built binary, with the bundled fake
//! WeChat API) in a scratch directory, and the other subcommands against it: pushes in all three
//! modes, the URL check, the token through the guarded Invoke emulation, and the menu.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "wxclitesttoken0123456789abcdefgh";
const APP_ID: &str = "wx5823bf96d3bd56c7";
const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running `wx serve` in its own directory; killed on drop.
struct Server {
    dir: PathBuf,
    child: Child,
    url: String,
    encrypted: bool,
}

impl Server {
    fn start(name: &str, encrypted: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("wx-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (child, url) = serve(&dir, encrypted);
        Self {
            dir,
            child,
            url,
            encrypted,
        }
    }

    /// Stop the server and start another in the same directory, as Ctrl-C and `make run` again
    /// would: the store and the fake WeChat API's state stay on disk.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::remove_file(self.dir.join(".local/run.json")).unwrap();
        (self.child, self.url) = serve(&self.dir, self.encrypted);
    }

    fn webhook(&self) -> String {
        format!("{}/wechat", self.url)
    }

    /// Run `wx args…` in the server's directory with its configuration.
    fn run(&self, args: &[&str]) -> Output {
        wx(&self.dir, self.encrypted).args(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.run(&all);
        assert!(
            output.status.success(),
            "wx {args:?}: {}",
            text(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "wx {args:?} printed no JSON ({e}): {}",
                text(&output.stdout)
            )
        })
    }
}

/// `wx serve` with the bundled fake WeChat API in `dir`, and its URL once it runs.
// The caller owns the child and waits on it (`Server`'s drop and restart).
#[allow(clippy::zombie_processes)]
fn serve(dir: &Path, encrypted: bool) -> (Child, String) {
    let mut command = wx(dir, encrypted);
    command
        .arg("serve")
        .env("PORT", "0")
        .env("LOCAL_FAKE_WECHAT", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = command.spawn().unwrap();
    let run_file = dir.join(".local/run.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(url) = std::fs::read_to_string(&run_file)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["url"].as_str().map(String::from))
        {
            return (child, url);
        }
        assert!(Instant::now() < deadline, "wx serve did not start in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `wx` with only this test's configuration (no developer `.env`: the directory is fresh).
fn wx(dir: &Path, encrypted: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wx"));
    command.current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("WECHAT_")
            || name.starts_with("LOCAL_")
            || name == "TOKEN_FUNCTION_NAME"
        {
            command.env_remove(name);
        }
    }
    command
        .env("HOST", "127.0.0.1")
        .env("RUST_LOG", "warn")
        // The token test reports a token seconds after its fetch; the stale-report throttle
        // would (rightly) keep it. The throttle has its own tests in `account`.
        .env("TOKEN_STALE_MIN_AGE_SECS", "0")
        .env("WECHAT_TOKEN", TOKEN)
        .env("WECHAT_APP_ID", APP_ID)
        .env(
            "WECHAT_REPLY_RULES",
            repo().join("crates/account/rules/example.toml"),
        );
    if encrypted {
        command.env("WECHAT_ENCODING_AES_KEY", KEY);
    }
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn field<'a>(reply: &'a Value, name: &str) -> Option<&'a str> {
    reply["fields"]
        .as_array()?
        .iter()
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].as_str())
}

#[test]
fn pushes_in_all_three_modes_are_answered_and_their_replies_checked() {
    let plain = Server::start("plain", false);
    let report = plain.json(&["push", "--url", &plain.webhook(), "--text", "hello"]);
    assert_eq!(report["mode"], "plaintext");
    assert_eq!(report["status"], 200);
    assert_eq!(report["reply"]["encrypted"], false);
    assert_eq!(field(&report["reply"], "MsgType"), Some("text"));
    assert!(report["elapsed_ms"].as_u64().is_some());

    let keyed = Server::start("keyed", true);
    let url = keyed.webhook();
    for (flags, mode) in [
        (&["--encrypt"][..], "safe"),
        (&["--encrypt", "--compat"][..], "compatible"),
    ] {
        let mut args = vec!["push", "--url", &url];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--event", "CLICK", "--key", "V1001_TODAY_MUSIC"]);
        let report = keyed.json(&args);
        assert_eq!(report["mode"], mode);
        assert_eq!(report["reply"]["encrypted"], true, "{report}");
        assert_eq!(
            field(&report["reply"], "Content"),
            Some("Today's music: https://example.com/today")
        );
    }

    // A push signed with another token is refused by the webhook: exit 1, one error line.
    let output = plain.run(&["push", "--url", &plain.webhook(), "--event", "subscribe"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = wx(&plain.dir, false)
        .env("WECHAT_TOKEN", "anothertoken")
        .args(["push", "--url", &plain.webhook(), "--text", "hi"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("HTTP 4"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn verify_url_passes_with_the_right_token_and_fails_with_another() {
    let server = Server::start("verify", false);
    let report = server.json(&["verify-url", &server.webhook()]);
    assert_eq!(report["verified"], true);
    let output = wx(&server.dir, false)
        .env("WECHAT_TOKEN", "anothertoken")
        .args(["verify-url", &server.webhook()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).starts_with("error: "));
}

#[test]
fn the_token_comes_through_the_guarded_invoke_emulation_and_stays_hidden_unless_asked() {
    let server = Server::start("token", false);
    let report = server.json(&["token", "get", "--local"]);
    assert!(
        report["fingerprint"]
            .as_str()
            .is_some_and(|f| !f.is_empty())
    );
    assert!(report["expires_in_s"].as_i64().is_some_and(|s| s > 0));
    assert!(report.get("access_token").is_none(), "{report}");

    let shown = server.json(&["token", "get", "--local", "--show-secret"]);
    let token = shown["access_token"].as_str().unwrap().to_string();
    assert_eq!(shown["fingerprint"], report["fingerprint"]);
    let refreshed = server.json(&["token", "refresh", "--local", "--stale", &token]);
    assert_ne!(refreshed["fingerprint"], report["fingerprint"]);

    // Without this run's key the emulation answers 403, and wx says so.
    let output = wx(&server.dir, false)
        .env("LOCAL_INVOKE_KEY", "not-this-runs-key-0000")
        .args(["token", "get", "--local"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("X-Local-Invoke-Key"), "{stderr}");
}

#[test]
fn the_menu_is_checked_applied_shown_diffed_and_deleted_against_the_fake() {
    let server = Server::start("menu", false);
    let example = repo().join("examples/menu.toml");
    let example = example.to_str().unwrap();

    assert_eq!(server.json(&["menu", "show", "--local"]), Value::Null);
    let plan = server.json(&["menu", "diff", example, "--local"]);
    assert_eq!(plan["applied"], false);
    assert_eq!(plan["changes"].as_array().unwrap().len(), 3);
    // example.toml answers V1001_TODAY_MUSIC and has a catch-all CLICK rule: no warning.
    assert_eq!(plan["warnings"], serde_json::json!([]));

    let applied = server.json(&["menu", "apply", example, "--local"]);
    assert_eq!(applied["applied"], true);
    let live = server.json(&["menu", "show", "--local"]);
    assert_eq!(live["button"].as_array().unwrap().len(), 3);
    let again = server.json(&["menu", "diff", example, "--local"]);
    assert_eq!(again["changes"], serde_json::json!([]));

    // An invalid file is refused before any call, every violation named.
    let bad = server.dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[button]]\ntype = \"click\"\nname = \"seventeen bytes!!\"\n[[button]]\ntype = \"view\"\nname = \"v\"\n",
    )
    .unwrap();
    let output = server.run(&["menu", "apply", bad.to_str().unwrap(), "--local"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    for problem in [
        "button[0].name: 17 bytes, at most 16",
        "button[0].key: required for type \"click\"",
        "button[1].url: required for type \"view\"",
    ] {
        assert!(stderr.contains(problem), "{problem} missing: {stderr}");
    }

    // Delete refuses without a terminal and without --yes.
    let output = server.run(&["menu", "delete", "--local"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("--yes"));
    server.json(&["menu", "delete", "--yes", "--local"]);
    assert_eq!(server.json(&["menu", "show", "--local"]), Value::Null);
}

#[test]
fn after_a_restart_the_stored_token_and_ticket_still_work_with_the_fake_wechat_api() {
    let mut server = Server::start("restart", false);
    // The stale-report throttle at its default: a token rejected right after a restart must not
    // need it (the real WeChat still accepts a token it issued before the account's server
    // restarted, and so does the fake).
    let throttled = |server: &Server, args: &[&str]| {
        let output = wx(&server.dir, false)
            .env_remove("TOKEN_STALE_MIN_AGE_SECS")
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "wx {args:?}: {}",
            text(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    assert_eq!(
        throttled(&server, &["menu", "show", "--local"]),
        Value::Null
    );
    let before = throttled(&server, &["token", "get", "--local"]);
    let page = format!("{}/demo", server.url);
    throttled(&server, &["jssdk", "sign", &page, "--local"]);

    server.restart();
    assert_eq!(
        throttled(&server, &["menu", "show", "--local"]),
        Value::Null
    );
    let after = throttled(&server, &["token", "get", "--local"]);
    assert_eq!(
        after["fingerprint"], before["fingerprint"],
        "the stored token is kept"
    );
    // The ticket the store kept still passes the new fake's jweixin check.
    let page = format!("{}/demo", server.url);
    let signed = throttled(&server, &["jssdk", "sign", &page, "--local"]);
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(server.dir.join(".local/run.json")).unwrap())
            .unwrap();
    let verdict = post_json(
        &format!("{}/fake/jssdk/verify", run["wechat_api"].as_str().unwrap()),
        &serde_json::json!({
            "appId": signed["appId"], "timestamp": signed["timestamp"],
            "nonceStr": signed["nonceStr"], "signature": signed["signature"], "url": page,
        }),
    );
    assert_eq!(verdict["ok"], true, "{verdict}");
}

#[test]
fn a_usage_error_exits_2_and_a_missing_setting_exits_1_naming_it() {
    let dir = std::env::temp_dir().join(format!("wx-cli-usage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = wx(&dir, false)
        .args(["push", "--url", "http://x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = wx(&dir, false).args(["token", "get"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("TOKEN_FUNCTION_NAME"),
        "{}",
        text(&output.stderr)
    );
    let output = wx(&dir, false)
        .args(["token", "get", "--local"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("make run"),
        "{}",
        text(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn jssdk_sign_signs_a_page_with_the_ticket_the_fake_issued_and_refuses_other_domains() {
    let server = Server::start("jssdk", false);
    let page = format!("{}/demo?from=cli", server.url);
    let signed = server.json(&["jssdk", "sign", &format!("{page}#section"), "--local"]);
    assert_eq!(signed["appId"], APP_ID);
    assert_eq!(signed["url"], page.as_str(), "the fragment is not signed");
    assert!(signed.get("jsapi_ticket").is_none() && signed["ticket"].is_string());

    // The fake's stand-in for jweixin checks signatures against the tickets it issued: this one
    // passes there, and the same fields for another page do not.
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(server.dir.join(".local/run.json")).unwrap())
            .unwrap();
    let fake = run["wechat_api"].as_str().unwrap();
    let verify = |url: &str| {
        post_json(
            &format!("{fake}/fake/jssdk/verify"),
            &serde_json::json!({
                "appId": signed["appId"], "timestamp": signed["timestamp"],
                "nonceStr": signed["nonceStr"], "signature": signed["signature"], "url": url,
            }),
        )
    };
    assert_eq!(verify(&page)["ok"], true);
    assert_eq!(verify(&format!("{page}&other=1"))["ok"], false);

    // With the account's JS-SDK domains configured, a page elsewhere is refused.
    let output = wx(&server.dir, false)
        .env("JSSDK_ALLOWED_ORIGINS", "https://shop.example")
        .args(["jssdk", "sign", "https://evil.example/", "--local"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("not one of the account's JS-SDK domains"),
        "{stderr}"
    );
}

/// POST `body` as JSON to a loopback `http://` URL and read the JSON answer (HTTP/1.1, no
/// keep-alive): enough for the fake WeChat API without an HTTP client in the test.
fn post_json(url: &str, body: &Value) -> Value {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("a loopback http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let body = body.to_string();
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (_, json) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"))
}

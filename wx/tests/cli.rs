//! `wx` end to end, as an operator runs it: `wx serve` (the built binary, with the bundled fake
//! WeChat API) in a scratch directory, and the other subcommands against it: pushes in all three
//! modes, the URL check, the token through the guarded Invoke emulation, and the menu.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "wxclitesttoken0123456789abcdefgh";
const APP_ID: &str = "wx5823bf96d3bd56c7";
const KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";

// In a folder of its own: a file directly under tests/ would be a test binary of its own.
#[path = "cli/doctor.rs"]
mod doctor;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running `wx serve` in its own directory; killed on drop.
struct Server {
    dir: PathBuf,
    child: Child,
    url: String,
    setup: Setup,
}

/// How a server and the `wx` commands run against it are configured.
#[derive(Debug, Clone, Default)]
struct Setup {
    /// With this test's EncodingAESKey.
    encrypted: bool,
    /// As a newcomer runs the quick start: nothing set but `LOCAL_FAKE_WECHAT=true` for the
    /// server (no token, AppID or rules of this test's own).
    quick_start: bool,
    /// Set for the server and every command.
    env: Vec<(String, String)>,
}

impl Setup {
    fn command(&self, dir: &Path) -> Command {
        let mut command = match self.quick_start {
            true => newcomer(dir),
            false => wx(dir, self.encrypted),
        };
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }
}

impl Server {
    fn start(name: &str, encrypted: bool) -> Self {
        Self::start_with(
            name,
            Setup {
                encrypted,
                ..Setup::default()
            },
        )
    }

    fn start_with(name: &str, setup: Setup) -> Self {
        let dir = std::env::temp_dir().join(format!("wx-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self::start_in(dir, setup)
    }

    /// Another server in `dir`, beside any that runs there already.
    fn start_in(dir: PathBuf, setup: Setup) -> Self {
        let (child, url) = serve(&dir, &setup);
        Self {
            dir,
            child,
            url,
            setup,
        }
    }

    /// Stop the server and start another in the same directory, as Ctrl-C and `make run` again
    /// would: the store and the fake WeChat API's state stay on disk.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Killed, not stopped: its run file stays, as after a crash.
        std::fs::remove_file(self.run_file()).unwrap();
        (self.child, self.url) = serve(&self.dir, &self.setup);
    }

    /// Stop the server as Ctrl-C in its terminal would (SIGINT), and wait for it to exit.
    fn interrupt(&mut self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "wx serve exited with {status}");
    }

    /// What the server printed on stdout (the banner) and stderr (its log) so far.
    fn stdout(&self) -> String {
        std::fs::read_to_string(self.output_file("out")).unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.output_file("err")).unwrap_or_default()
    }

    fn output_file(&self, stream: &str) -> PathBuf {
        let port = self.url.rsplit(':').next().unwrap();
        self.dir.join(format!("serve-{port}.{stream}"))
    }

    /// `.local/run-PORT.json` of this server.
    fn run_file(&self) -> PathBuf {
        let port = self.url.rsplit(':').next().unwrap();
        self.dir.join(format!(".local/run-{port}.json"))
    }

    /// What the server wrote in its run file.
    fn run_info(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.run_file()).unwrap()).unwrap()
    }

    fn webhook(&self) -> String {
        format!("{}/wechat", self.url)
    }

    /// `wx` in the server's directory with its configuration.
    fn wx(&self) -> Command {
        self.setup.command(&self.dir)
    }

    /// Run `wx args…` in the server's directory with its configuration.
    fn run(&self, args: &[&str]) -> Output {
        self.wx().args(args).output().unwrap()
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

/// `wx serve` with the bundled fake WeChat API in `dir`, and its URL once it runs. Its stdout
/// and stderr go to `serve-PORT.out` and `serve-PORT.err` in `dir` (renamed once the port is
/// known).
// The caller owns the child and waits on it (`Server`'s drop and restart).
#[allow(clippy::zombie_processes)]
fn serve(dir: &Path, setup: &Setup) -> (Child, String) {
    let (out, err) = (dir.join("serve-new.out"), dir.join("serve-new.err"));
    let mut command = setup.command(dir);
    command
        .arg("serve")
        .env("PORT", "0")
        .env("LOCAL_FAKE_WECHAT", "true")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let before = run_files(dir);
    let child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The new server's run file: `.local/run-PORT.json`, one per server.
        if let Some(url) = run_files(dir)
            .into_iter()
            .filter(|file| !before.contains(file))
            .find_map(|file| {
                std::fs::read_to_string(file)
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .and_then(|v| v["url"].as_str().map(String::from))
            })
        {
            let port = url.rsplit(':').next().unwrap();
            std::fs::rename(&out, dir.join(format!("serve-{port}.out"))).unwrap();
            std::fs::rename(&err, dir.join(format!("serve-{port}.err"))).unwrap();
            return (child, url);
        }
        assert!(Instant::now() < deadline, "wx serve did not start in 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The run files in `dir/.local`.
fn run_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join(".local")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("run-") && name.ends_with(".json")
        })
        .collect()
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

/// `wx` as a newcomer runs it after a fresh clone: nothing of the developer's own WeChat,
/// local-server or logging settings, and no `.env` (the directory is fresh).
fn newcomer(dir: &Path) -> Command {
    newcomers(env!("CARGO_BIN_EXE_wx"), dir)
}

/// `program` in `dir` with a newcomer's environment (see [`newcomer`]).
fn newcomers(program: &str, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command.current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("WECHAT_")
            || name.starts_with("LOCAL_")
            || name.starts_with("JSSDK_")
            || ["TOKEN_FUNCTION_NAME", "PORT", "HOST", "RUST_LOG"].contains(&name.as_str())
        {
            command.env_remove(name);
        }
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
    let run = server.run_info();
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
    let run = server.run_info();
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

#[test]
fn an_encrypted_push_to_the_local_server_needs_only_a_key_from_wx_keygen() {
    let dir = std::env::temp_dir().join(format!("wx-cli-keygen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = newcomer(&dir).args(["keygen", "aes-key"]).output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let key = text(&output.stdout).trim().to_string();
    assert_eq!(key.len(), 43, "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
    assert!(text(&output.stderr).contains("WECHAT_ENCODING_AES_KEY"));
    let _ = std::fs::remove_dir_all(&dir);

    // `make run` with only that key in .env: the fake's AppID, the development token.
    let server = Server::start_with(
        "keygen",
        Setup {
            quick_start: true,
            env: vec![("WECHAT_ENCODING_AES_KEY".into(), key)],
            ..Setup::default()
        },
    );
    assert!(
        server
            .stdout()
            .contains("  App ID:        wxfa4e000000000001 (the bundled fake's"),
        "{}",
        server.stdout()
    );
    // wx takes the server's AppID from its run file: no WECHAT_APP_ID needed, and no warning.
    let output = server.run(&["push", "--local", "--encrypt", "--text", "hello"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stderr), "");
    assert!(
        text(&output.stdout).contains("reply: encrypted, signature and decryption ok"),
        "{}",
        text(&output.stdout)
    );

    // Another AppID: the server answers its one answer for every safe-mode failure, and wx says
    // which AppID the server runs as.
    let output = server
        .wx()
        .env("WECHAT_APP_ID", APP_ID)
        .args(["push", "--local", "--encrypt", "--text", "hello"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    assert!(stderr.contains("invalid encrypted message"), "{stderr}");
    assert!(
        stderr.contains("set WECHAT_APP_ID=wxfa4e000000000001"),
        "{stderr}"
    );
    // The server logged the exact cause, as the hint says.
    assert!(
        server.log().contains("encrypted push refused"),
        "{}",
        server.log()
    );

    // Plaintext to a server with a key: the hint names --encrypt.
    let output = server.run(&["push", "--local", "--text", "hello"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("add --encrypt"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn verify_url_with_the_development_token_prints_no_warning() {
    let server = Server::start_with(
        "quiet",
        Setup {
            quick_start: true,
            ..Setup::default()
        },
    );
    let output = server.run(&["verify-url", &server.webhook()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stderr), "");
    // Nor does the server warn about the length of its development default token.
    assert!(
        !server.log().contains("shorter than 32"),
        "{}",
        server.log()
    );
    assert!(server.stdout().contains("  Token:         devtoken"));
}

#[test]
fn a_second_server_on_another_port_leaves_the_first_ones_run_file_alone() {
    let first = Server::start("two-servers", false);
    // Its own store, as its warning advises: two servers writing one store file overwrite each
    // other's items (a refresh lease of one keeps the other waiting).
    let mut setup = first.setup.clone();
    setup
        .env
        .push(("LOCAL_STORE".into(), ".local/store-second.json".into()));
    let mut second = Server::start_in(first.dir.clone(), setup);
    assert_ne!(first.run_file(), second.run_file());
    assert!(first.run_file().exists() && second.run_file().exists());
    assert!(
        second
            .log()
            .contains("another local server runs in this directory"),
        "{}",
        second.log()
    );

    // Two servers: `--local` alone asks which, `--local=URL` picks one.
    let output = first.run(&["token", "get", "--local"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("2 local servers"), "{stderr}");
    assert!(
        stderr.contains(&first.url) && stderr.contains(&second.url),
        "{stderr}"
    );
    let local = format!("--local={}", second.url);
    first.json(&["token", "get", &local]);
    assert_eq!(first.json(&["menu", "show", &local]), Value::Null);

    // Stopping the second removes its own file only; `--local` finds the first again.
    second.interrupt();
    assert!(!second.run_file().exists());
    assert!(first.run_file().exists());
    first.json(&["token", "get", "--local"]);
    assert_eq!(first.json(&["menu", "show", "--local"]), Value::Null);
}

#[test]
fn a_local_server_without_a_run_file_here_serves_menu_calls_through_its_api_function() {
    let server = Server::start("elsewhere", false);
    let key = server.run_info()["invoke_key"]
        .as_str()
        .unwrap()
        .to_string();
    // Another directory: no run file, but the menu calls go through that server's api function,
    // which calls the WeChat API that server uses (its fake), never the real one from here.
    let elsewhere = std::env::temp_dir().join(format!("wx-cli-another-dir-{}", std::process::id()));
    std::fs::create_dir_all(&elsewhere).unwrap();
    let local = format!("--local={}", server.url);
    let output = wx(&elsewhere, false)
        .env("LOCAL_INVOKE_KEY", &key)
        // Unreachable, so a call that went anywhere but the local server would fail.
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .args(["--json", "menu", "show", &local])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).trim(), "null");
    // Without the key the server refuses, and says which header it wants.
    let output = wx(&elsewhere, false)
        .env("LOCAL_INVOKE_KEY", "wrong-key-0123456789")
        .args(["menu", "show", &local])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("X-Local-Invoke-Key"),
        "{}",
        text(&output.stderr)
    );
    let _ = std::fs::remove_dir_all(&elsewhere);
}

/// Under `make run` the fake pushes WeChat's `TEMPLATESENDJOBFINISH` for each delivery, sealed
/// in the server's own mode: with `TEMPLATE_RECEIPTS=true` the receipt turns `success` by itself.
#[test]
fn under_the_local_server_a_sent_template_message_gets_its_receipt_from_the_fake() {
    let server = Server::start_with(
        "notify-receipt",
        Setup {
            encrypted: true,
            env: vec![("TEMPLATE_RECEIPTS".into(), "true".into())],
            ..Setup::default()
        },
    );
    let sent = server.json(&[
        "notify",
        "send",
        "--to",
        "o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
        "--template",
        "fa4eTPL-OrderShipped_0000000000000000000001",
        "--data",
        "thing1=Order #14 shipped",
        "--local",
    ]);
    assert_eq!(sent["outcome"], "sent", "{sent}");
    let msgid = sent["msgid"].as_str().unwrap().to_string();
    // The push comes about a second after the delivery; wait for it, boundedly.
    let mut status = Value::Null;
    for _ in 0..100 {
        status = server.json(&["notify", "status", &msgid, "--local"]);
        if status["status"] != "pending" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(status["status"], "success", "{status}");
    assert!(
        status["sent_at"].is_i64() && status["finished_at"].is_i64(),
        "{status}"
    );
}

#[test]
fn a_template_message_is_sent_once_per_key_and_its_receipt_read_through_the_local_api_function() {
    let server = Server::start("notify", false);
    let send = |key: &str| {
        server.json(&[
            "notify",
            "send",
            "--to",
            "o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
            "--template",
            "fa4eTPL-OrderShipped_0000000000000000000001",
            "--data",
            "thing1=Order #12 shipped",
            "--data",
            "time2=2026-01-01 08:00#173177",
            "--url",
            "https://example.com/orders/12",
            "--key",
            key,
            "--local",
        ])
    };
    let sent = send("order-12-shipped");
    assert_eq!(sent["outcome"], "sent");
    let msgid = sent["msgid"].as_str().unwrap().to_string();
    // The same key again: WeChat's de-duplication, the same msgid.
    assert_eq!(send("order-12-shipped")["msgid"], msgid.as_str());
    assert_ne!(send("order-13-shipped")["msgid"], msgid.as_str());

    let status = server.json(&["notify", "status", &msgid, "--local"]);
    assert_eq!(status["status"], "pending");
    assert_eq!(status["msgid"], msgid.as_str());
    let output = server.run(&["notify", "status", "1", "--local"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("not_found"),
        "{}",
        text(&output.stderr)
    );

    // Refused offline, before any call; and by WeChat, with the errcode's meaning.
    let output = server.run(&[
        "notify",
        "send",
        "--to",
        "not an openid",
        "--template",
        "t",
        "--data",
        "k=v",
        "--local",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("not sent: touser"),
        "{}",
        text(&output.stderr)
    );
    let output = server.run(&[
        "notify",
        "send",
        "--to",
        "oUser_1",
        "--template",
        "unknownTemplate",
        "--data",
        "k=v",
        "--local",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("40037") && stderr.contains("invalid_template_id"),
        "{stderr}"
    );
    // Neither the openid nor the message text reached the server's log.
    let log = server.log();
    assert!(
        !log.contains("o6_bmjrPTlm6_2sgVt7hMZOPfL2M") && !log.contains("Order #12"),
        "{log}"
    );
}

#[test]
fn a_channel_code_is_created_with_its_image_and_its_follows_and_scans_are_counted_per_scene() {
    let server = Server::start_with(
        "qrcode",
        Setup {
            env: vec![("QR_STATS".into(), "true".into())],
            ..Setup::default()
        },
    );
    let created = server.json(&[
        "qrcode",
        "create",
        "--scene",
        "poster-a",
        "--days",
        "7",
        "--out",
        "poster-a.png",
        "--local",
    ]);
    assert_eq!(created["scene"], "poster-a");
    assert_eq!(created["expire_seconds"], 604_800);
    let image = std::fs::read(server.dir.join("poster-a.png")).unwrap();
    assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");

    // Checked offline: no call for a scene WeChat would refuse.
    let output = server.run(&["qrcode", "create", "--scene", &"x".repeat(65), "--local"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("not created: the scene name is 65 bytes long"));

    let webhook = server.webhook();
    for (event, key) in [
        ("subscribe", "qrscene_poster-a"),
        ("SCAN", "poster-a"),
        ("SCAN", "poster-a"),
    ] {
        let pushed = server.run(&["push", "--url", &webhook, "--event", event, "--key", key]);
        assert!(pushed.status.success(), "{}", text(&pushed.stderr));
    }
    let stats = server.json(&["qrcode", "stats", "--days", "2", "--local"]);
    let days = stats["days"].as_array().unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(
        days[0]["scenes"]["poster-a"],
        serde_json::json!({"subscribe": 1, "scan": 2})
    );
    let table = text(&server.run(&["qrcode", "stats", "--local"]).stdout);
    assert!(
        table.starts_with("date        scene     follows    scans"),
        "{table}"
    );
    assert!(table.contains("poster-a        1        2"), "{table}");
}

#[test]
fn commands_that_need_a_stack_say_that_local_exists_and_a_local_diff_says_how_to_apply_locally() {
    let server = Server::start("hints", false);
    for (args, variable) in [
        (&["token", "get"][..], "TOKEN_FUNCTION_NAME"),
        (&["menu", "show"][..], "API_FUNCTION_NAME"),
        (&["notify", "status", "1"][..], "API_FUNCTION_NAME"),
        (
            &["jssdk", "sign", "http://localhost:3000/demo"][..],
            "TOKEN_FUNCTION_NAME",
        ),
    ] {
        let output = server.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.contains(variable), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("a local server runs here ({})", server.url)),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("add --local"), "{args:?}: {stderr}");
    }
    let example = repo().join("examples/menu.toml");
    let output = server.run(&["menu", "diff", example.to_str().unwrap(), "--local"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "3 changes; `wx menu apply {} --local` makes them",
            example.display()
        )),
        "{stdout}"
    );
}

/// A forward service on loopback for one test: answers every call with `status` and `body`,
/// and counts the calls.
fn forward_service(
    status: u16,
    body: &'static str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/wechat", listener.local_addr().unwrap());
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = calls.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            // The request: headers, then Content-Length bytes.
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if rest.len() >= length {
                        break;
                    }
                }
            }
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, calls)
}

/// The late answers the fake WeChat API delivered (`GET /fake/custom/messages`), once there are
/// `count` of them, or after 10 s.
fn delivered(server: &Server, count: usize) -> Vec<Value> {
    let fake = server.run_info()["wechat_api"]
        .as_str()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = get_json(&format!("{fake}/fake/custom/messages"));
        let messages = listed["messages"].as_array().cloned().unwrap_or_default();
        if messages.len() >= count || Instant::now() > deadline {
            return messages;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_banner_names_the_forward_url_and_secret_and_a_late_answer_is_shown_where_it_went() {
    let (url, calls) = forward_service(200, r#"{"type":"text","content":"a late hello"}"#);
    let dir = std::env::temp_dir().join(format!("wx-cli-forward-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // timeout_ms = 0: every answer comes late, as a customer-service message.
    let rules = dir.join("forward.toml");
    std::fs::write(
        &rules,
        format!("[default]\ntype = \"forward\"\nurl = \"{url}\"\ntimeout_ms = 0\n"),
    )
    .unwrap();
    // As `make run` logs: at info.
    let setup = Setup {
        quick_start: true,
        env: vec![("WECHAT_REPLY_RULES".into(), rules.display().to_string())],
        ..Setup::default()
    };
    let server = Server::start_in(dir, setup);
    let banner = server.stdout();
    assert!(
        banner.contains(&format!("  Forwarding:    on, to {url}\n")),
        "{banner}"
    );
    assert!(
        banner.contains(
            "signed with WECHAT_FORWARD_SECRET=local-development-only-forward-secret-000 (a development default"
        ),
        "{banner}"
    );
    assert!(banner.contains("/fake/custom/messages"), "{banner}");

    let report = server.json(&["push", "--local", "--text", "hi"]);
    assert_eq!(report["reply"], Value::Null, "answered late: success now");
    let messages = delivered(&server, 1);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["msgtype"], "text");
    assert_eq!(messages[0]["body"]["text"]["content"], "a late hello");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    // And the server's log shows what the user got.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains("a late hello") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.log().contains("customer-service message delivered"),
        "{}",
        server.log()
    );
    assert!(server.log().contains("a late hello"), "{}", server.log());
}

#[test]
fn a_service_that_refuses_the_signature_is_logged_with_the_forward_secret_to_check() {
    let (url, calls) = forward_service(401, "");
    let dir = std::env::temp_dir().join(format!("wx-cli-refused-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("forward.toml");
    std::fs::write(
        &rules,
        format!("[default]\ntype = \"forward\"\nurl = \"{url}\"\n"),
    )
    .unwrap();
    let setup = Setup {
        env: vec![
            ("WECHAT_REPLY_RULES".into(), rules.display().to_string()),
            (
                "WECHAT_FORWARD_SECRET".into(),
                "a-secret-the-service-does-not-know".into(),
            ),
        ],
        ..Setup::default()
    };
    let server = Server::start_in(dir, setup);
    // A secret that is set is not printed.
    assert!(
        server
            .stdout()
            .contains("signed with WECHAT_FORWARD_SECRET (as set"),
        "{}",
        server.stdout()
    );
    assert!(
        !server
            .stdout()
            .contains("a-secret-the-service-does-not-know")
    );
    server.json(&["push", "--local", "--text", "hi"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("HTTP 401") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.log();
    assert!(log.contains("the service answered HTTP 401 ("), "{log}");
    assert!(log.contains("WECHAT_FORWARD_SECRET"), "{log}");
    assert!(!log.contains("a-secret-the-service-does-not-know"), "{log}");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// GET a loopback `http://` URL and read the JSON answer (see [`post_json`]).
fn get_json(url: &str) -> Value {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("a loopback http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (_, json) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"))
}

/// The line before a fenced block of commands whose output, in `# ` lines, the test checks.
const CHECKED_OUTPUT: &str = "<!-- output checked by wx/tests/cli.rs -->";
/// The line before a fenced block that is the banner of `LOCAL_FAKE_WECHAT=true make run`.
const CHECKED_BANNER: &str = "<!-- banner checked by wx/tests/cli.rs -->";
/// The documents with checked blocks.
const CHECKED_DOCS: [&str; 3] = ["README.md", "docs/cli.md", "docs/console.md"];

/// A checked block of a document.
#[derive(Debug)]
struct DocBlock {
    /// `README.md:63`: where its fence opens.
    at: String,
    banner: bool,
    lines: Vec<String>,
}

/// The checked blocks of `doc`, in order.
fn checked_blocks(doc: &str) -> Vec<DocBlock> {
    let text = std::fs::read_to_string(repo().join(doc)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let banner = match line.trim() {
            CHECKED_OUTPUT => false,
            CHECKED_BANNER => true,
            _ => continue,
        };
        let fence = lines.get(i + 1).copied().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "{doc}:{}: a checked block's marker must be followed by its fence",
            i + 1
        );
        let body: Vec<String> = lines[i + 2..]
            .iter()
            .take_while(|l| !l.starts_with("```"))
            .map(|l| l.to_string())
            .collect();
        blocks.push(DocBlock {
            at: format!("{doc}:{}", i + 2),
            banner,
            lines: body,
        });
    }
    blocks
}

/// A line's shape: every run of 6 or more hex digits with a digit in it (fingerprints, keys,
/// timestamps) becomes `#`, every other run of digits `0`; the rest stays as it is.
fn shape(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let hex_end = (i..chars.len())
            .find(|&j| !matches!(chars[j], '0'..='9' | 'a'..='f'))
            .unwrap_or(chars.len());
        let run = &chars[i..hex_end];
        if run.len() >= 6 && run.iter().any(char::is_ascii_digit) {
            out.push('#');
            i = hex_end;
        } else if chars[i].is_ascii_digit() {
            let end = (i..chars.len())
                .find(|&j| !chars[j].is_ascii_digit())
                .unwrap_or(chars.len());
            out.push('0');
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Whether `actual` has the shape of `expected`, where `…` in `expected` stands for anything.
fn same_shape(expected: &str, actual: &str) -> bool {
    let actual = shape(actual);
    let parts: Vec<String> = expected.split('…').map(shape).collect();
    let (first, rest) = parts.split_first().unwrap();
    let Some(mut tail) = actual.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return tail.is_empty();
    };
    for part in middle {
        match tail.find(part.as_str()) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last.as_str())
}

/// Whether the `actual` lines have the shapes of the `expected` ones, where a line that is only
/// `…` stands for any number of lines.
fn same_lines(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((wild, rest)) if wild.trim() == "…" => {
            (0..=actual.len()).any(|skip| same_lines(rest, &actual[skip..]))
        }
        Some((line, rest)) => actual
            .split_first()
            .is_some_and(|(first, others)| same_shape(line, first) && same_lines(rest, others)),
    }
}

#[test]
fn shapes_ignore_numbers_and_hex_digits_and_ellipses_stand_for_anything() {
    assert!(same_shape(
        "access_token 3f2a9c1d expires at 1767225600 (in 1h 59m)",
        "access_token 51229aab expires at 1796322673 (in 1h 58m)"
    ));
    assert!(!same_shape(
        "access_token 3f2a9c1d expires at 1767225600 (in 1h 59m)",
        "access_token 51229aab expires 1796322673 (in 1h 58m)"
    ));
    assert!(same_shape(
        "{\"a\":\"…\",\"b\":…}",
        "{\"a\":\"x y\",\"b\":17}"
    ));
    assert!(!same_shape("{\"a\":\"…\"}", "{\"a\":\"x\",\"c\":1}"));
    assert!(same_shape("… tail", "head and tail"));
    assert!(!same_shape("headless", "head"));
    let lines = |text: &str| text.lines().map(String::from).collect::<Vec<_>>();
    assert!(same_lines(&lines("a\n…\nz"), &lines("a\nb\nc\nz")));
    assert!(same_lines(&lines("a\n…\nz"), &lines("a\nz")));
    assert!(!same_lines(&lines("a\nz"), &lines("a\nb\nz")));
}

/// The blocks of `doc` marked as checked: the banner block against `banner`, the command blocks
/// run in one shell (so a variable set in one block is there in the next) in `server`'s
/// directory, each block's output against its `# ` lines. Returns the mismatches.
fn check_doc(doc: &str, server: &Server, banner: &str) -> Vec<String> {
    let blocks = checked_blocks(doc);
    let mut problems = Vec::new();
    let compare = |at: &str, expected: &[String], actual: &[String], problems: &mut Vec<String>| {
        if !same_lines(expected, actual) {
            problems.push(format!(
                "{at}: the documented output\n  {}\nis not what the program printed\n  {}",
                expected.join("\n  "),
                actual.join("\n  ")
            ));
        }
    };
    let banner_lines: Vec<String> = banner.lines().map(String::from).collect();
    let wx = env!("CARGO_BIN_EXE_wx");
    // What a terminal shows: stderr with stdout, and no progress meter of curl (which draws it
    // only when its output is not a terminal).
    let mut script = String::from("exec 2>&1\ncurl() { command curl -sS \"$@\"; }\n");
    let mut expected = Vec::new();
    for block in blocks.iter() {
        if block.banner {
            compare(&block.at, &block.lines, &banner_lines, &mut problems);
            continue;
        }
        let mut outputs = Vec::new();
        for line in &block.lines {
            match line.strip_prefix("# ") {
                // The output a command above printed, perhaps without a final newline.
                Some(output) => {
                    outputs.push(output.to_string());
                    script.push_str("echo\n");
                }
                None => {
                    let line = line
                        .replace("cargo run -q -p wx --", &format!("'{wx}'"))
                        .replace("http://localhost:3000", &server.url);
                    script.push_str(&line);
                    script.push('\n');
                }
            }
        }
        script.push_str("echo\necho '@@@ end of block'\n");
        expected.push((block.at.clone(), outputs));
    }
    if expected.is_empty() {
        return problems;
    }
    let output = newcomers("bash", &server.dir)
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("bash: {e}"));
    let printed = text(&output.stdout);
    let mut printed_blocks = printed.split("@@@ end of block\n");
    for (at, outputs) in expected {
        let actual: Vec<String> = printed_blocks
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect();
        compare(&at, &outputs, &actual, &mut problems);
    }
    problems
}

#[test]
fn the_docs_examples_print_what_the_docs_say() {
    let server = Server::start_with(
        "docs",
        Setup {
            quick_start: true,
            ..Setup::default()
        },
    );
    // The examples name files of the project by their path in it.
    std::fs::create_dir_all(server.dir.join("examples")).unwrap();
    std::fs::copy(
        repo().join("examples/menu.toml"),
        server.dir.join("examples/menu.toml"),
    )
    .unwrap();
    // The banner is complete once its last line is out.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.stdout().contains("Development defaults") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let banner = server.stdout();
    let mut problems = Vec::new();
    let mut checked = 0;
    for doc in CHECKED_DOCS {
        checked += checked_blocks(doc).len();
        problems.extend(check_doc(doc, &server, &banner));
    }
    assert!(
        checked >= 6,
        "only {checked} checked blocks: were markers lost?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// `wx rotate` in a fresh directory with the current values set, as for `wx push`.
fn rotate(args: &[&str]) -> Output {
    // One directory per call: the tests run in parallel.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("wx-cli-rotate-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let output = newcomer(&dir)
        .env("WECHAT_TOKEN", TOKEN)
        .env("WECHAT_ENCODING_AES_KEY", KEY)
        .env("WECHAT_APP_ID", APP_ID)
        .env(
            "SECRETS_ARN",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:wechat-AbCdEf",
        )
        .args(args)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    output
}

#[test]
fn rotate_prints_four_ordered_steps_for_a_valid_new_key_and_never_the_current_secret() {
    let output = rotate(&["--json", "rotate", "aes-key"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let rotation: Value = serde_json::from_str(&stdout).unwrap();
    let key = rotation["value"].as_str().unwrap();
    assert_eq!(key.len(), 43, "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()), "{key}");
    assert_ne!(key, KEY);
    wechat_protocol::crypto::MessageCrypto::new(key, APP_ID).expect("the webhook accepts it");
    assert_eq!(rotation["variable"], "WECHAT_ENCODING_AES_KEY");
    assert_eq!(
        rotation["previous_variable"],
        "WECHAT_ENCODING_AES_KEY_PREVIOUS"
    );
    // The end of the grace: RFC 3339, 24 h ahead by default, which the functions accept.
    let until = rotation["until"].as_str().unwrap();
    let until_s = account::webhook::parse_instant(until).expect("RFC 3339");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now + 86_300..=now + 86_500).contains(&until_s), "{until}");
    let steps = rotation["steps"].as_array().unwrap();
    let numbers: Vec<u64> = steps.iter().map(|s| s["step"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wechat-AbCdEf";
    let put = steps[0]["command"].as_str().unwrap();
    assert!(
        put.starts_with(&format!(
            "aws secretsmanager get-secret-value --secret-id {arn} "
        )),
        "{put}"
    );
    assert!(
        put.contains(&format!("--arg new {key} --arg until {until}")),
        "{put}"
    );
    assert!(put.contains(".WECHAT_ENCODING_AES_KEY_PREVIOUS = .WECHAT_ENCODING_AES_KEY | .WECHAT_ENCODING_AES_KEY = $new"), "{put}");
    assert!(
        put.ends_with(&format!(
            "put-secret-value --secret-id {arn} --secret-string file:///dev/stdin"
        )),
        "{put}"
    );
    let check = steps[1]["command"].as_str().unwrap();
    assert!(
        check.starts_with(&format!(
            "WECHAT_ENCODING_AES_KEY={key} wx push --url \"$WEBHOOK_URL\" --encrypt"
        )),
        "{check}"
    );
    assert!(steps[2]["command"].is_null());
    assert!(
        steps[2]["note"]
            .as_str()
            .unwrap()
            .contains("基本配置 → 服务器配置 → 修改配置")
    );
    let remove = steps[3]["command"].as_str().unwrap();
    assert!(remove.contains("del(.WECHAT_TOKEN_PREVIOUS, .WECHAT_ENCODING_AES_KEY_PREVIOUS, .WECHAT_PREVIOUS_KEYS_UNTIL)"), "{remove}");
    for current in [KEY, TOKEN] {
        assert!(!stdout.contains(current) && !text(&output.stderr).contains(current));
    }
}

#[test]
fn rotate_token_prints_the_steps_as_text_and_bounds_the_grace_to_seven_days() {
    let output = rotate(&["rotate", "token", "--stack", "wechat", "--grace-hours", "2"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let first = stdout.lines().next().unwrap();
    let token = first.strip_prefix("New WECHAT_TOKEN: ").expect(first);
    assert_eq!(token.len(), 32, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()), "{token}");
    let order: Vec<usize> = ["\n1. ", "\n2. ", "\n3. ", "\n4. "]
        .iter()
        .map(|step| {
            stdout
                .find(step)
                .unwrap_or_else(|| panic!("{step} in {stdout}"))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{stdout}");
    assert!(
        stdout.contains(&format!("WECHAT_TOKEN={token} wx verify-url ")),
        "{stdout}"
    );
    assert!(
        stdout.contains(".WECHAT_TOKEN_PREVIOUS = .WECHAT_TOKEN | .WECHAT_TOKEN = $new"),
        "{stdout}"
    );
    assert!(!stdout.contains(TOKEN) && !stdout.contains(KEY), "{stdout}");
    let output = rotate(&["rotate", "token", "--grace-hours", "169"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
}

//! The forward client against a scripted service on loopback: what it sends (every field, the
//! key, a signature the service can recompute), what it makes of each kind of answer, and that
//! the secret never reaches a log. Also the README's example service, run against the client.

use std::time::Duration;
use testkit::harness::Logs;

use crate::support::*;
use account::clock::{self, ManualClock};
use account::forward::client::url_signature;
use account::forward::{Answer, ForwardError, ForwardRequest, Forwarder, HttpForwarder, signature};
use wechat_protocol::reply::Reply;
use wechat_protocol::secret::Secret;

const NOW_MS: i64 = 1_800_000_000_000;

fn client(timeout_ms: u64) -> HttpForwarder {
    let clock = std::sync::Arc::new(ManualClock::at_ms(NOW_MS));
    HttpForwarder::new(secret(), Duration::from_millis(timeout_ms), clock).unwrap()
}

fn request() -> ForwardRequest {
    ForwardRequest::new(&text("oUser", "4242", "hi"))
}

#[tokio::test]
async fn the_request_is_the_message_as_json_signed_over_timestamp_and_body() {
    let service = ScriptedService::start().await;
    let answer = client(2000).forward(&service.url, &request()).await;
    assert_eq!(
        answer,
        Ok(Some(Answer::Reply(Reply::text("hello from the service"))))
    );
    let seen = &service.requests()[0];
    let header = |name: &str| seen.headers[name].to_str().unwrap().to_string();
    assert_eq!(header("x-forward-timestamp"), (NOW_MS / 1000).to_string());
    // Recomputed here from the raw body, as the service would.
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{}.{}", NOW_MS / 1000, seen.body).as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(header("x-forward-signature"), expected);
    assert_eq!(
        signature(&secret(), NOW_MS / 1000, seen.body.as_bytes()),
        expected
    );
    assert_eq!(header("content-type"), "application/json");
    let body: serde_json::Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(header("idempotency-key"), body["idempotency_key"]);
    assert_eq!(body["type"], "text");
    assert_eq!(body["openid"], "oUser");
    assert_eq!(body["msg_id"], "4242");
    assert_eq!(body["fields"]["Content"], "hi");
    assert_eq!(body["fields"]["ToUserName"], "gh_account");
    assert!(!seen.body.contains(SECRET));
}

#[tokio::test]
async fn no_content_an_empty_body_and_success_are_no_answer() {
    let service = ScriptedService::start().await;
    for (status, body) in [(204, ""), (200, ""), (200, r#"{"type":"success"}"#)] {
        service.answer(0, status, body);
        let answer = client(2000).forward(&service.url, &request()).await;
        assert_eq!(answer, Ok(None), "{status} {body:?}");
    }
}

#[tokio::test]
async fn late_only_types_are_answers_too() {
    let service = ScriptedService::start().await;
    service.answer(0, 200, r#"{"type":"mpnews","media_id":"MEDIA"}"#);
    assert_eq!(
        client(2000).forward(&service.url, &request()).await,
        Ok(Some(Answer::MpNews {
            media_id: "MEDIA".into()
        }))
    );
}

#[tokio::test]
async fn every_failure_is_named_with_a_short_reason_and_never_the_body() {
    let service = ScriptedService::start().await;
    let huge_html = format!("<html>{}</html>", "secret page ".repeat(1000));
    let cases: Vec<(u64, u16, String, &str)> = vec![
        (0, 500, "internal error".into(), "http_status"),
        (0, 302, String::new(), "http_status"),
        (0, 404, String::new(), "http_status"),
        (0, 200, huge_html.clone(), "not_json"),
        (
            0,
            200,
            r#"{"type":"txt","content":"x"}"#.into(),
            "bad_answer",
        ),
        (
            0,
            200,
            r#"{"type":"text","content":""}"#.into(),
            "bad_answer",
        ),
        (
            0,
            200,
            format!(r#"{{"type":"text","content":"{}"}}"#, "x".repeat(70_000)),
            "too_large",
        ),
        (
            800,
            200,
            r#"{"type":"text","content":"slow"}"#.into(),
            "timeout",
        ),
    ];
    for (delay_ms, status, body, code) in cases {
        service.answer(delay_ms, status, &body);
        let err = client(300)
            .forward(&service.url, &request())
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{status}: {err}");
        assert!(err.to_string().len() < 300, "{err}");
        assert!(!err.to_string().contains("secret page"), "{err}");
    }
    assert_eq!(
        client(300)
            .forward(&service.url, &request())
            .await
            .unwrap_err(),
        ForwardError::Timeout(300)
    );
}

#[tokio::test]
async fn an_unreachable_service_is_named() {
    let port = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = client(1000)
        .forward(&format!("http://127.0.0.1:{port}/wechat"), &request())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unreachable", "{err}");
}

#[tokio::test]
async fn the_secret_never_reaches_a_log() {
    let (logs, _guard) = Logs::capture();
    let service = ScriptedService::start().await;
    let forwarder = HttpForwarder::new(secret(), Duration::from_secs(2), clock::system()).unwrap();
    tracing::info!(?forwarder, "built");
    forwarder.forward(&service.url, &request()).await.unwrap();
    service.answer(0, 200, "garbage");
    forwarder
        .forward(&service.url, &request())
        .await
        .unwrap_err();
    let text = logs.text();
    assert!(text.contains("built"), "the capture works: {text}");
    assert!(!text.contains(SECRET), "{text}");
}

/// The example service of docs/forwarding.md ("An example service"), run with Python against the
/// client: a correct signature is answered, a wrong one refused, an event gets no answer.
#[tokio::test]
async fn the_readme_example_service_verifies_the_signature() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = root.join(".venv/bin/python");
    let python = if venv.exists() {
        venv
    } else {
        "python3".into()
    };
    let port = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let child = std::process::Command::new(&python)
        .arg(root.join("examples/forward_service.py"))
        .env("WECHAT_FORWARD_SECRET", SECRET)
        .env("PORT", port.to_string())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs Python 3 ({python:?}): {e}"));
    let _stop = KillOnDrop(child);
    let url = format!("http://127.0.0.1:{port}/wechat");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let real_time = |secret: Secret<String>| {
        HttpForwarder::new(secret, Duration::from_secs(5), clock::system()).unwrap()
    };
    assert_eq!(
        real_time(secret()).forward(&url, &request()).await,
        Ok(Some(Answer::Reply(Reply::text("You said: hi"))))
    );
    let wrong = Secret::new("another-secret-0123456789".to_string());
    assert_eq!(
        real_time(wrong).forward(&url, &request()).await,
        Err(ForwardError::Status(401))
    );
    let click = wechat_protocol::message::Message::parse(
        b"<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>CLICK</Event><EventKey>K</EventKey></xml>",
    )
    .unwrap();
    assert_eq!(
        real_time(secret())
            .forward(&url, &ForwardRequest::new(&click))
            .await,
        Ok(None)
    );

    // A captured request replayed within the window is refused; so is one signed for another
    // service's URL with the same secret.
    let mut fresh = request();
    fresh.idempotency_key = "a-request-not-sent-before".into();
    let body = serde_json::to_vec(&fresh).unwrap();
    let now = clock::system().now_s();
    let post = |url_signed: String| {
        reqwest::Client::new()
            .post(&url)
            .header("X-Forward-Timestamp", now.to_string())
            .header("X-Forward-Url-Signature", url_signed)
            .body(body.clone())
            .send()
    };
    let signed = url_signature(&secret(), now, &url, &body);
    assert_eq!(post(signed.clone()).await.unwrap().status(), 200);
    assert_eq!(post(signed).await.unwrap().status(), 409, "a replay");
    let elsewhere = url_signature(&secret(), now, "https://other.example/wechat", &body);
    assert_eq!(post(elsewhere).await.unwrap().status(), 401);

    // Odd header values are refused before anything else, and the service keeps serving.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for odd in [
        "Content-Length: \u{b2}\r\n",
        "Content-Length: 2\r\nX-Forward-Timestamp: \u{b9}\u{b2}\r\n",
        "Content-Length: 2\r\nX-Forward-Timestamp: 1\r\nX-Forward-Url-Signature: sha256=\u{e9}\r\n",
    ] {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let raw = format!("POST /wechat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{odd}\r\n{{}}");
        stream.write_all(raw.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        assert!(
            answer.starts_with("HTTP/1.0 4") || answer.starts_with("HTTP/1.1 4"),
            "{odd:?}: {answer:?}"
        );
    }
    let mut another = ForwardRequest::new(&click);
    another.idempotency_key = "another-push".into();
    assert_eq!(
        real_time(secret()).forward(&url, &another).await,
        Ok(None),
        "still serving"
    );
}

/// Stops the example service however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

//! Key rotation without downtime: the previous Token and EncodingAESKey are accepted until
//! `WECHAT_PREVIOUS_KEYS_UNTIL` (replies go out with the values that worked), and a container
//! follows a rotation written to the stack's secret, by age and on a push with an unknown key,
//! reading the secret at most once per 30 s. The secret is an in-process source counting reads.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::common::*;
use account::aws::{SecretRead, SecretSource, SecretsEnv};
use account::clock::{Clock as _, ManualClock};
use account::config::ConfigError;
use account::config::vars::*;
use account::webhook::{PREVIOUS_KEYS, SecretKeys, Webhook, WebhookConfig};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::json;
use testkit::harness::Logs;
use wechat_protocol::crypto::MessageCrypto;
use wechat_protocol::secret::Secret;
use wechat_protocol::signature::sign;
use wechat_protocol::wechat_side::{
    Account, Mode, ReceivedReply, SignedPush, open_reply, sign_push, verification_query,
};

const APP_ID: &str = "wxfa4e000000000001";
const OLD_TOKEN: &str = "OldToken0123456789abcdefghijklmn";
const NEW_TOKEN: &str = "NewToken0123456789abcdefghijklmn";
const OLD_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const NEW_KEY: &str = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut";
const UNKNOWN_KEY: &str = "UnknownKey0123456789abcdefghijklmnopqrstuvw";
/// The tests' "now", and the end of the grace an hour later.
const NOW: i64 = 1_764_000_000;
const UNTIL: i64 = NOW + 3_600;

fn crypto(key: &str) -> MessageCrypto {
    MessageCrypto::new(key, APP_ID).unwrap()
}

/// A text push from WeChat's side, signed with `token` (and sealed with `key` in safe mode).
fn push(token: &str, key: Option<&str>, mode: Mode, text: &str, at: i64) -> Request {
    to_request(&signed(token, key, mode, text, at))
}

fn signed(token: &str, key: Option<&str>, mode: Mode, text: &str, at: i64) -> SignedPush {
    let crypto = key.map(crypto);
    let account = Account {
        token,
        crypto: crypto.as_ref(),
    };
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_user]]></FromUserName><CreateTime>{at}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content><MsgId>1</MsgId></xml>"
    );
    sign_push(&account, mode, &xml, "o_user", at, "4242").unwrap()
}

fn to_request(signed: &SignedPush) -> Request {
    let mut event = fixture("post_safe_mode.json");
    let query: Vec<(&str, &str)> = signed.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    set_query(&mut event, &query);
    set_body(&mut event, &signed.body);
    request(&event)
}

/// The console's server-URL check, signed with `token`.
fn url_check(token: &str, at: i64) -> Request {
    let mut event = fixture("get_verify.json");
    let query = verification_query(token, at, "77", "echo-me");
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    set_query(&mut event, &query);
    request(&event)
}

/// The reply as WeChat reads it, with `token` and `key`: the text it carries.
fn reply_text(response: &Response<Body>, token: &str, key: &str) -> Result<String, String> {
    let crypto = crypto(key);
    let account = Account {
        token,
        crypto: Some(&crypto),
    };
    match open_reply(&account, Mode::Safe, &body(response)) {
        Ok(ReceivedReply::Message { fields, .. }) => {
            Ok(fields.get("Content").unwrap_or_default().to_string())
        }
        Ok(ReceivedReply::Nothing) => Err("no reply".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn config(env: &[(&str, &str)]) -> Result<WebhookConfig, ConfigError> {
    let env: std::collections::HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    WebhookConfig::read_at(&env, NOW)
}

fn webhook(env: &[(&str, &str)], clock: &ManualClock) -> Webhook<Echo> {
    Webhook::new(config(env).expect("a valid configuration"), Echo)
        .with_clock(Arc::new(clock.clone()))
}

fn until() -> String {
    UNTIL.to_string()
}

#[tokio::test]
async fn a_push_sealed_with_the_previous_key_is_answered_with_it_during_the_grace_and_refused_after()
 {
    let until = until();
    let clock = ManualClock::at_ms(NOW * 1000);
    let webhook = webhook(
        &[
            (WECHAT_TOKEN, NEW_TOKEN),
            (WECHAT_APP_ID, APP_ID),
            (WECHAT_ENCODING_AES_KEY, NEW_KEY),
            (WECHAT_ENCODING_AES_KEY_PREVIOUS, OLD_KEY),
            (WECHAT_PREVIOUS_KEYS_UNTIL, &until),
        ],
        &clock,
    );
    let old = webhook
        .message(&push(NEW_TOKEN, Some(OLD_KEY), Mode::Safe, "old key", NOW))
        .await;
    assert_eq!(old.status(), StatusCode::OK, "{}", body(&old));
    assert_eq!(
        reply_text(&old, NEW_TOKEN, OLD_KEY).as_deref(),
        Ok("old key")
    );
    assert!(reply_text(&old, NEW_TOKEN, NEW_KEY).is_err());
    let new = webhook
        .message(&push(NEW_TOKEN, Some(NEW_KEY), Mode::Safe, "new key", NOW))
        .await;
    assert_eq!(
        reply_text(&new, NEW_TOKEN, NEW_KEY).as_deref(),
        Ok("new key")
    );

    clock.set_ms(UNTIL * 1000);
    let late = webhook
        .message(&push(NEW_TOKEN, Some(OLD_KEY), Mode::Safe, "late", UNTIL))
        .await;
    assert_eq!(late.status(), StatusCode::FORBIDDEN);
    let new = webhook
        .message(&push(NEW_TOKEN, Some(NEW_KEY), Mode::Safe, "still", UNTIL))
        .await;
    assert_eq!(reply_text(&new, NEW_TOKEN, NEW_KEY).as_deref(), Ok("still"));
}

#[tokio::test]
async fn a_push_signed_with_the_previous_token_is_accepted_during_the_grace_in_plaintext_and_safe_mode()
 {
    let until = until();
    let clock = ManualClock::at_ms(NOW * 1000);
    let plaintext = webhook(
        &[
            (WECHAT_TOKEN, NEW_TOKEN),
            (WECHAT_TOKEN_PREVIOUS, OLD_TOKEN),
            (WECHAT_PREVIOUS_KEYS_UNTIL, &until),
        ],
        &clock,
    );
    let safe = webhook(
        &[
            (WECHAT_TOKEN, NEW_TOKEN),
            (WECHAT_TOKEN_PREVIOUS, OLD_TOKEN),
            (WECHAT_APP_ID, APP_ID),
            (WECHAT_ENCODING_AES_KEY, NEW_KEY),
            (WECHAT_PREVIOUS_KEYS_UNTIL, &until),
        ],
        &clock,
    );
    let answered = plaintext
        .message(&push(OLD_TOKEN, None, Mode::Plaintext, "hi", NOW))
        .await;
    assert_eq!(answered.status(), StatusCode::OK);
    assert!(
        body(&answered).contains("<![CDATA[hi]]>"),
        "{}",
        body(&answered)
    );
    let sealed = safe
        .message(&push(OLD_TOKEN, Some(NEW_KEY), Mode::Safe, "safe hi", NOW))
        .await;
    // Signed with the token WeChat used, which is the one it checks the reply with.
    assert_eq!(
        reply_text(&sealed, OLD_TOKEN, NEW_KEY).as_deref(),
        Ok("safe hi")
    );
    assert_eq!(
        reply_text(&sealed, NEW_TOKEN, NEW_KEY),
        Err("the reply's MsgSignature does not match: WeChat would drop it".into())
    );
    // A query signed with one token cannot carry a msg_signature by the other.
    let mut mixed = signed(OLD_TOKEN, Some(NEW_KEY), Mode::Safe, "mixed", NOW);
    for (name, value) in &mut mixed.query {
        if *name == "signature" {
            *value = sign(&[NEW_TOKEN, &NOW.to_string(), "4242"]);
        }
    }
    assert_eq!(
        safe.message(&to_request(&mixed)).await.status(),
        StatusCode::FORBIDDEN
    );

    clock.set_ms(UNTIL * 1000);
    for (webhook_answer, mode) in [
        (
            plaintext
                .message(&push(OLD_TOKEN, None, Mode::Plaintext, "hi", UNTIL))
                .await,
            "plaintext",
        ),
        (
            safe.message(&push(OLD_TOKEN, Some(NEW_KEY), Mode::Safe, "hi", UNTIL))
                .await,
            "safe",
        ),
    ] {
        assert_eq!(webhook_answer.status(), StatusCode::FORBIDDEN, "{mode}");
    }
}

#[tokio::test]
async fn the_server_url_check_passes_with_the_previous_token_only_during_the_grace() {
    let until = until();
    let clock = ManualClock::at_ms(NOW * 1000);
    let webhook = webhook(
        &[
            (WECHAT_TOKEN, NEW_TOKEN),
            (WECHAT_TOKEN_PREVIOUS, OLD_TOKEN),
            (WECHAT_PREVIOUS_KEYS_UNTIL, &until),
        ],
        &clock,
    );
    for token in [OLD_TOKEN, NEW_TOKEN] {
        let response = webhook.verify(&url_check(token, NOW)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body(&response), "echo-me");
    }
    clock.set_ms(UNTIL * 1000);
    let response = webhook.verify(&url_check(OLD_TOKEN, UNTIL)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_ne!(body(&response), "echo-me");
    assert_eq!(
        webhook.verify(&url_check(NEW_TOKEN, UNTIL)).await.status(),
        StatusCode::OK
    );
}

#[test]
fn previous_values_need_an_end_at_most_seven_days_ahead_named_in_the_error() {
    let err = config(&[
        (WECHAT_TOKEN, NEW_TOKEN),
        (WECHAT_TOKEN_PREVIOUS, OLD_TOKEN),
    ])
    .unwrap_err();
    assert_eq!(err.variable, WECHAT_PREVIOUS_KEYS_UNTIL);
    assert!(!err.to_string().contains(OLD_TOKEN), "{err}");
    let far = (NOW + 7 * 86_400 + 1).to_string();
    let err = config(&[
        (WECHAT_TOKEN, NEW_TOKEN),
        (WECHAT_TOKEN_PREVIOUS, OLD_TOKEN),
        (WECHAT_PREVIOUS_KEYS_UNTIL, &far),
    ])
    .unwrap_err();
    assert_eq!(err.variable, WECHAT_PREVIOUS_KEYS_UNTIL);
    assert!(err.to_string().contains("7 days"), "{err}");
    for bad in ["tomorrow", "2025-11-25"] {
        let err = config(&[
            (WECHAT_TOKEN, NEW_TOKEN),
            (WECHAT_TOKEN_PREVIOUS, OLD_TOKEN),
            (WECHAT_PREVIOUS_KEYS_UNTIL, bad),
        ])
        .unwrap_err();
        assert_eq!(err.variable, WECHAT_PREVIOUS_KEYS_UNTIL, "{bad}");
    }
    let err = config(&[
        (WECHAT_TOKEN, NEW_TOKEN),
        (WECHAT_TOKEN_PREVIOUS, "bad token!"),
        (WECHAT_PREVIOUS_KEYS_UNTIL, "2025-11-24T17:40:00Z"),
    ])
    .unwrap_err();
    assert_eq!(err.variable, WECHAT_TOKEN_PREVIOUS);
    let err = config(&[
        (WECHAT_TOKEN, NEW_TOKEN),
        (WECHAT_APP_ID, APP_ID),
        (WECHAT_ENCODING_AES_KEY, NEW_KEY),
        (WECHAT_ENCODING_AES_KEY_PREVIOUS, "short"),
        (WECHAT_PREVIOUS_KEYS_UNTIL, "2025-11-24T17:40:00Z"),
    ])
    .unwrap_err();
    assert_eq!(err.variable, WECHAT_ENCODING_AES_KEY_PREVIOUS);
    // An RFC 3339 end with an offset, or an end without previous values, is fine.
    let ok = config(&[
        (WECHAT_TOKEN, NEW_TOKEN),
        (WECHAT_TOKEN_PREVIOUS, OLD_TOKEN),
        (WECHAT_PREVIOUS_KEYS_UNTIL, "2025-11-25T00:00:00+08:00"),
    ])
    .unwrap();
    assert_eq!(ok.key_ring().previous_until_s(), Some(NOW));
    assert!(config(&[(WECHAT_TOKEN, NEW_TOKEN), (WECHAT_PREVIOUS_KEYS_UNTIL, "0")]).is_ok());
}

/// The stack's secret in memory: its JSON, how often it was read, and whether reads fail.
#[derive(Debug, Default)]
struct FakeSecret {
    json: Mutex<String>,
    reads: AtomicUsize,
    failing: AtomicBool,
}

impl FakeSecret {
    fn holding(value: serde_json::Value) -> Arc<Self> {
        let secret = Arc::new(Self::default());
        secret.put(value);
        secret
    }

    fn put(&self, value: serde_json::Value) {
        *self.json.lock().unwrap() = value.to_string();
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl SecretSource for FakeSecret {
    fn read(&self) -> SecretRead<'_> {
        Box::pin(async move {
            self.reads.fetch_add(1, Ordering::SeqCst);
            // Let concurrent requests run while this read is in flight.
            tokio::task::yield_now().await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(ConfigError::new(
                    SECRETS_ARN,
                    "cannot read the secret arn:fake: service unavailable",
                ));
            }
            Ok(Secret::new(self.json.lock().unwrap().clone()))
        })
    }

    fn name(&self) -> &str {
        "arn:fake"
    }
}

/// The message function as compose builds it, over `secret`, its clock at `clock`.
async fn message_function(secret: &Arc<FakeSecret>, clock: &ManualClock) -> Webhook<Echo> {
    let base = [(WECHAT_APP_ID, APP_ID), (SECRETS_MAX_AGE_SECS, "300")];
    let env = SecretsEnv::from_source(
        secret.clone(),
        base,
        &[WECHAT_TOKEN, WECHAT_ENCODING_AES_KEY],
        PREVIOUS_KEYS,
    )
    .await
    .expect("the secret loads");
    let config = WebhookConfig::read_at(&env, clock.now_s()).expect("a valid configuration");
    Webhook::new(config, Echo)
        .with_clock(Arc::new(clock.clone()))
        .with_key_source(SecretKeys::of(&env))
}

#[tokio::test]
async fn a_new_current_key_in_the_secret_is_picked_up_once_the_keys_are_max_age_old() {
    let secret =
        FakeSecret::holding(json!({"WECHAT_TOKEN": OLD_TOKEN, "WECHAT_ENCODING_AES_KEY": OLD_KEY}));
    let clock = ManualClock::at_ms(NOW * 1000);
    let webhook = message_function(&secret, &clock).await;
    assert_eq!(secret.reads(), 1);
    // Key replaced outright (no previous value): until the container reads the secret again,
    // pushes under the new key are refused, and a read within 30 s of the last one is not due.
    secret.put(json!({"WECHAT_TOKEN": OLD_TOKEN, "WECHAT_ENCODING_AES_KEY": NEW_KEY}));
    clock.set_ms((NOW + 10) * 1000);
    let early = webhook
        .message(&push(
            OLD_TOKEN,
            Some(NEW_KEY),
            Mode::Safe,
            "early",
            NOW + 10,
        ))
        .await;
    assert_eq!(early.status(), StatusCode::FORBIDDEN);
    assert_eq!(secret.reads(), 1);
    // A push under the old key at 299 s is still answered from the keys in hand, unread.
    clock.set_ms((NOW + 299) * 1000);
    let old = webhook
        .message(&push(
            OLD_TOKEN,
            Some(OLD_KEY),
            Mode::Safe,
            "old",
            NOW + 299,
        ))
        .await;
    assert_eq!(reply_text(&old, OLD_TOKEN, OLD_KEY).as_deref(), Ok("old"));
    assert_eq!(secret.reads(), 1);
    // At 300 s the request reads the secret first, and the new key answers.
    clock.set_ms((NOW + 300) * 1000);
    let new = webhook
        .message(&push(
            OLD_TOKEN,
            Some(NEW_KEY),
            Mode::Safe,
            "new",
            NOW + 300,
        ))
        .await;
    assert_eq!(reply_text(&new, OLD_TOKEN, NEW_KEY).as_deref(), Ok("new"));
    assert_eq!(secret.reads(), 2);
    assert_eq!(
        webhook.keys().current_crypto().map(|c| c.app_id()),
        Some(APP_ID)
    );
}

#[tokio::test]
async fn a_rotation_written_to_the_secret_is_followed_without_refusing_a_push_old_or_new() {
    let secret =
        FakeSecret::holding(json!({"WECHAT_TOKEN": OLD_TOKEN, "WECHAT_ENCODING_AES_KEY": OLD_KEY}));
    let clock = ManualClock::at_ms(NOW * 1000);
    let webhook = message_function(&secret, &clock).await;
    // What `wx rotate` writes: new values current, old ones previous, and the end of the grace.
    secret.put(json!({
        "WECHAT_TOKEN": NEW_TOKEN,
        "WECHAT_TOKEN_PREVIOUS": OLD_TOKEN,
        "WECHAT_ENCODING_AES_KEY": NEW_KEY,
        "WECHAT_ENCODING_AES_KEY_PREVIOUS": OLD_KEY,
        "WECHAT_PREVIOUS_KEYS_UNTIL": "2025-11-24T17:00:00Z",
    }));
    clock.set_ms((NOW + 60) * 1000);
    // WeChat still uses the old values: answered from the keys in hand, nothing read.
    let old = webhook
        .message(&push(OLD_TOKEN, Some(OLD_KEY), Mode::Safe, "old", NOW + 60))
        .await;
    assert_eq!(reply_text(&old, OLD_TOKEN, OLD_KEY).as_deref(), Ok("old"));
    assert_eq!(secret.reads(), 1);
    // The console switched WeChat to the new values: the unknown token makes the container read
    // the secret again, and the same push is answered with the new values.
    let new = webhook
        .message(&push(NEW_TOKEN, Some(NEW_KEY), Mode::Safe, "new", NOW + 60))
        .await;
    assert_eq!(reply_text(&new, NEW_TOKEN, NEW_KEY).as_deref(), Ok("new"));
    assert_eq!(secret.reads(), 2);
    // A retry of an older push still opens with the previous values, until the grace ends.
    let retried = webhook
        .message(&push(
            OLD_TOKEN,
            Some(OLD_KEY),
            Mode::Safe,
            "retried",
            NOW + 61,
        ))
        .await;
    assert_eq!(
        reply_text(&retried, OLD_TOKEN, OLD_KEY).as_deref(),
        Ok("retried")
    );
    clock.set_ms(NOW * 1000 + 3_600_000);
    let late = webhook
        .message(&push(
            OLD_TOKEN,
            Some(OLD_KEY),
            Mode::Safe,
            "late",
            NOW + 3_600,
        ))
        .await;
    assert_eq!(late.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn pushes_under_an_unknown_key_read_the_secret_once_per_30_seconds_even_in_a_burst() {
    let secret =
        FakeSecret::holding(json!({"WECHAT_TOKEN": OLD_TOKEN, "WECHAT_ENCODING_AES_KEY": OLD_KEY}));
    let clock = ManualClock::at_ms((NOW) * 1000);
    let webhook = Arc::new(message_function(&secret, &clock).await);
    clock.set_ms((NOW + 30) * 1000);
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..20 {
        let webhook = webhook.clone();
        burst.spawn(async move {
            let forged = push(
                OLD_TOKEN,
                Some(UNKNOWN_KEY),
                Mode::Safe,
                &format!("{i}"),
                NOW + 30,
            );
            webhook.message(&forged).await.status()
        });
    }
    while let Some(status) = burst.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        secret.reads(),
        2,
        "the cold start's read and one for the burst"
    );
    // Forged signatures too, and the server-URL check: no read within 30 s of the last.
    clock.set_ms((NOW + 59) * 1000);
    let forged = push("WrongToken", Some(OLD_KEY), Mode::Safe, "x", NOW + 59);
    assert_eq!(
        webhook.message(&forged).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        webhook
            .verify(&url_check("WrongToken", NOW + 59))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(secret.reads(), 2);
    clock.set_ms((NOW + 60) * 1000);
    assert_eq!(
        webhook.message(&forged).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(secret.reads(), 3);
    // Pushes under the keys in hand never read it.
    clock.set_ms((NOW + 200) * 1000);
    let good = push(OLD_TOKEN, Some(OLD_KEY), Mode::Safe, "ok", NOW + 200);
    assert_eq!(webhook.message(&good).await.status(), StatusCode::OK);
    assert_eq!(secret.reads(), 3);
}

#[tokio::test]
async fn a_failed_read_keeps_the_keys_in_hand_and_warns_without_a_value() {
    let (logs, _guard) = Logs::capture();
    let secret =
        FakeSecret::holding(json!({"WECHAT_TOKEN": OLD_TOKEN, "WECHAT_ENCODING_AES_KEY": OLD_KEY}));
    let clock = ManualClock::at_ms(NOW * 1000);
    let webhook = message_function(&secret, &clock).await;
    secret.failing.store(true, Ordering::SeqCst);
    clock.set_ms((NOW + 300) * 1000);
    let response = webhook
        .message(&push(
            OLD_TOKEN,
            Some(OLD_KEY),
            Mode::Safe,
            "kept",
            NOW + 300,
        ))
        .await;
    assert_eq!(
        reply_text(&response, OLD_TOKEN, OLD_KEY).as_deref(),
        Ok("kept")
    );
    assert_eq!(secret.reads(), 2);
    // A secret that no longer makes a valid configuration is refused the same way.
    secret.failing.store(false, Ordering::SeqCst);
    secret.put(json!({"WECHAT_TOKEN": OLD_TOKEN, "WECHAT_ENCODING_AES_KEY": "short"}));
    clock.set_ms((NOW + 330) * 1000);
    let response = webhook
        .message(&push(
            OLD_TOKEN,
            Some(OLD_KEY),
            Mode::Safe,
            "kept again",
            NOW + 330,
        ))
        .await;
    assert_eq!(
        reply_text(&response, OLD_TOKEN, OLD_KEY).as_deref(),
        Ok("kept again")
    );
    assert_eq!(secret.reads(), 3);
    let text = logs.text();
    assert_eq!(
        text.matches("could not be read again; keeping the keys in hand")
            .count(),
        2,
        "{text}"
    );
    assert!(text.contains("WECHAT_ENCODING_AES_KEY"), "{text}");
    for value in [OLD_TOKEN, OLD_KEY, "kept"] {
        assert!(!text.contains(value), "{value} in {text}");
    }
}

#[tokio::test]
async fn without_a_secret_the_keys_never_change_and_nothing_is_read() {
    let clock = ManualClock::at_ms(NOW * 1000);
    let env =
        SecretsEnv::load_with_optional([(WECHAT_TOKEN, OLD_TOKEN)], &[WECHAT_TOKEN], PREVIOUS_KEYS)
            .await
            .unwrap();
    assert!(SecretKeys::of(&env).is_none());
    let webhook = Webhook::new(WebhookConfig::read_at(&env, NOW).unwrap(), Echo)
        .with_clock(Arc::new(clock.clone()))
        .with_key_source(SecretKeys::of(&env));
    clock.set_ms((NOW + 10_000) * 1000);
    let response = webhook.verify(&url_check(OLD_TOKEN, NOW + 10_000)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// The stack's PushesRefused and PushesAccepted metric filters (template.yaml) match
/// `outcome = "refused"` and `outcome = "accepted"`: a key mismatch, the failure every user sees,
/// alarms only while these fields are logged.
#[tokio::test]
async fn a_refused_push_and_an_accepted_one_log_the_outcome_the_alarm_counts() {
    let (logs, _guard) = Logs::capture();
    let clock = ManualClock::at_ms(NOW * 1000);
    let webhook = webhook(
        &[
            (WECHAT_TOKEN, NEW_TOKEN),
            (WECHAT_APP_ID, APP_ID),
            (WECHAT_ENCODING_AES_KEY, NEW_KEY),
        ],
        &clock,
    );
    let refused = webhook
        .message(&push(NEW_TOKEN, Some(OLD_KEY), Mode::Safe, "old key", NOW))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let text = logs.text();
    assert!(text.contains("outcome=\"refused\""), "{text}");
    assert!(!text.contains("outcome=\"accepted\""), "{text}");
    let accepted = webhook
        .message(&push(NEW_TOKEN, Some(NEW_KEY), Mode::Safe, "new key", NOW))
        .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    let text = logs.text();
    assert!(text.contains("outcome=\"accepted\""), "{text}");
}

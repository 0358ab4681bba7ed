//! `POST /wechat` in safe and compatible mode: the published vector, encrypted replies, and the
//! one identical answer to every crypto failure.

use crate::common::*;
use account::rules::Rules;
use account::webhook::Webhook;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use wechat_protocol::crypto::MessageCrypto;
use wechat_protocol::signature::{sign, verify};
use wechat_protocol::xml::Fields;

const PUBLISHED_ENCRYPT: &str = "rTNFcsut4LfGuAFKEUVVpwcaCOTJzOd9twZdIW910jb3k+iicx2uvhttIZ3Qg9Qgty3BEF2xbOrz6boTfb30dMomcgrkTqdFPwnhqbk+kIQ7rZiwny9D7NUrTgA5kpX3KsZvrXzUZyP2x9YOlxbgm572lmxKvM7HAQQhIQ/p6HBmoY30bGXFK0BtIu1pW9TjhOYrLQoU18nWYjWqDA1ynkmOytpv7QRI1P1+0NoxL0q2zO1DgeSvnE8CZGo/o5Ap/WHK5W2RAsinpzN4/LjPnmB6U01I5XCoJoC0GK/yMZycd2Oh8Nq6+wBkC1U85oy0ktOY4nLvsQMLrourmMGdZHuTbqpeJ8Ao/5PRYJ+WBvRUwPfGKBL2+2IKZF49vAJqkcGWSHGE76ZN2erXeuNazf/o9o3lIE3q739o4c8t9QGPe31GT2Go/rOz1BsrASwvauNulCh+++yz+CQzBIuikA==";

fn safe_webhook() -> Webhook {
    at(
        Webhook::new(
            safe_config(),
            Rules::bundled().expect("the bundled rules load"),
        ),
        SAFE_TIME,
    )
}

fn crypto() -> MessageCrypto {
    MessageCrypto::new(SAFE_KEY, SAFE_APP_ID).unwrap()
}

/// Checks the envelope's MsgSignature over its own timestamp and nonce; returns the reply XML.
fn open_reply(response: &Response<Body>) -> Fields {
    assert_eq!(response.status(), StatusCode::OK, "{}", body(response));
    let envelope = Fields::parse(&body(response)).unwrap();
    let encrypt = envelope.get("Encrypt").expect("Encrypt");
    let timestamp = envelope.get("TimeStamp").expect("TimeStamp");
    let nonce = envelope.get("Nonce").expect("Nonce");
    let msg_signature = envelope.get("MsgSignature").expect("MsgSignature");
    assert!(verify(
        msg_signature,
        &[SAFE_TOKEN, timestamp, nonce, encrypt]
    ));
    assert_eq!(timestamp, SAFE_TIME.to_string());
    Fields::parse(&crypto().decrypt(encrypt).unwrap()).unwrap()
}

#[tokio::test]
async fn the_published_safe_mode_push_gets_an_encrypted_reply_for_the_right_user() {
    let response = safe_webhook()
        .message(&request(&fixture("post_safe_mode.json")))
        .await;
    let reply = open_reply(&response);
    assert_eq!(reply.get("ToUserName"), Some("asdasdasdsadasd"));
    assert_eq!(reply.get("FromUserName"), Some("asdasdasd"));
    assert_eq!(reply.get("MsgType"), Some("text"));
    assert_eq!(
        reply.get("CreateTime"),
        Some(SAFE_TIME.to_string().as_str())
    );
}

#[tokio::test]
async fn each_encrypted_reply_uses_a_fresh_prefix_and_nonce() {
    let webhook = safe_webhook();
    let req = request(&fixture("post_safe_mode.json"));
    let a = Fields::parse(&body(&webhook.message(&req).await)).unwrap();
    let b = Fields::parse(&body(&webhook.message(&req).await)).unwrap();
    assert_ne!(a.get("Encrypt"), b.get("Encrypt"));
}

#[tokio::test]
async fn cdata_terminators_emoji_and_newlines_survive_encryption_both_ways() {
    let content = "a]]>b 😀\n第二行";
    let inner =
        sample("text").replace("this is a test", &content.replace("]]>", "]]]]><![CDATA[>"));
    let webhook = at(Webhook::new(safe_config(), Echo), SAFE_TIME);
    let response = webhook
        .message(&encrypted_post(&crypto().encrypt(&inner), None))
        .await;
    let reply = open_reply(&response);
    assert_eq!(reply.get("Content"), Some(content));
    assert_eq!(
        reply.get("ToUserName"),
        Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    );
}

#[tokio::test]
async fn success_stays_plaintext_even_for_an_encrypted_push() {
    let inner = sample("event_unsubscribe");
    let response = safe_webhook()
        .message(&encrypted_post(&crypto().encrypt(&inner), None))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(&response), "success");
}

/// The published ciphertext with its byte `index_from_end` (counted from the end) XOR-ed with `mask`.
fn tampered(index_from_end: usize, mask: u8) -> String {
    let mut raw = STANDARD.decode(PUBLISHED_ENCRYPT).unwrap();
    let at = raw.len() - index_from_end;
    raw[at] ^= mask;
    STANDARD.encode(raw)
}

#[tokio::test]
async fn every_crypto_failure_gets_one_and_the_same_answer() {
    let other_app = MessageCrypto::new(SAFE_KEY, "wx0000000000000000").unwrap();
    let other_key =
        MessageCrypto::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq", SAFE_APP_ID).unwrap();
    // Each case fails for the reason it is named after.
    use wechat_protocol::crypto::CryptoError;
    assert_eq!(
        crypto().decrypt(&tampered(17, 0x80)),
        Err(CryptoError::Padding)
    );
    assert_eq!(
        crypto().decrypt(&other_app.encrypt(&sample("text"))),
        Err(CryptoError::AppIdMismatch)
    );
    let cases: Vec<(&str, lambda_http::Request)> = vec![
        (
            "wrong msg_signature",
            encrypted_post(
                PUBLISHED_ENCRYPT,
                Some("0000000000000000000000000000000000000000"),
            ),
        ),
        (
            "wrong AppId",
            encrypted_post(&other_app.encrypt(&sample("text")), None),
        ),
        // Flipping the last byte of the second-to-last block rewrites the pad byte to 21 ^ 0x80.
        ("bad padding", encrypted_post(&tampered(17, 0x80), None)),
        (
            "wrong key",
            encrypted_post(&other_key.encrypt(&sample("text")), None),
        ),
        ("bad base64", encrypted_post("%%%not-base64%%%", None)),
        (
            "bad length",
            encrypted_post(&STANDARD.encode([7u8; 20]), None),
        ),
    ];
    let webhook = safe_webhook();
    let reference = webhook.message(&cases[0].1).await;
    assert_eq!(reference.status(), StatusCode::FORBIDDEN);
    for (name, req) in &cases {
        let response = webhook.message(req).await;
        assert_eq!(response.status(), reference.status(), "{name}");
        assert_eq!(body(&response), body(&reference), "{name}");
        assert_eq!(content_type(&response), content_type(&reference), "{name}");
    }
}

#[tokio::test]
async fn an_encrypted_push_to_a_plaintext_only_webhook_gets_the_crypto_answer() {
    let plaintext_only = Webhook::from_env(&[("WECHAT_TOKEN", SAFE_TOKEN)]).unwrap();
    let response = at(plaintext_only, SAFE_TIME)
        .message(&request(&fixture("post_safe_mode.json")))
        .await;
    let reference = safe_webhook()
        .message(&encrypted_post(PUBLISHED_ENCRYPT, Some(&"0".repeat(40))))
        .await;
    assert_eq!(response.status(), reference.status());
    assert_eq!(body(&response), body(&reference));
}

#[tokio::test]
async fn an_encrypted_push_without_encrypt_or_msg_signature_is_a_bad_request() {
    let mut event = fixture("post_safe_mode.json");
    set_body(
        &mut event,
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName></xml>",
    );
    let response = safe_webhook().message(&request(&event)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(body(&response).contains("Encrypt"));

    let mut event = fixture("post_safe_mode.json");
    let query = event["rawQueryString"].as_str().unwrap().to_string();
    let without: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k != "msg_signature")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let pairs: Vec<(&str, &str)> = without
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    set_query(&mut event, &pairs);
    let response = safe_webhook().message(&request(&event)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(body(&response).contains("msg_signature"));
}

/// Compatible mode: WeChat sends the plaintext fields next to `Encrypt`.
fn compatible_body(plain_content: &str, encrypted_content: &str) -> String {
    let encrypted = crypto().encrypt(&sample("text").replace("this is a test", encrypted_content));
    sample("text")
        .replace("this is a test", plain_content)
        .replace(
            "</xml>",
            &format!("<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"),
        )
}

#[tokio::test]
async fn compatible_mode_with_encrypt_type_aes_answers_from_the_encrypted_copy() {
    let body_xml = compatible_body("plain copy", "encrypted copy");
    let mut event = fixture("post_safe_mode.json");
    let encrypt = Fields::parse(&body_xml)
        .unwrap()
        .get("Encrypt")
        .unwrap()
        .to_string();
    let ts = SAFE_TIME.to_string();
    let signature = sign(&[SAFE_TOKEN, &ts, SAFE_NONCE]);
    let msg_signature = sign(&[SAFE_TOKEN, &ts, SAFE_NONCE, &encrypt]);
    set_query(
        &mut event,
        &[
            ("signature", &signature),
            ("timestamp", &ts),
            ("nonce", SAFE_NONCE),
            ("encrypt_type", "aes"),
            ("msg_signature", &msg_signature),
        ],
    );
    set_body(&mut event, &body_xml);
    let webhook = at(Webhook::new(safe_config(), Echo), SAFE_TIME);
    let reply = open_reply(&webhook.message(&request(&event)).await);
    assert_eq!(reply.get("Content"), Some("encrypted copy"));
}

#[tokio::test]
async fn compatible_mode_accepts_plaintext_pushes_and_answers_in_plaintext() {
    let webhook = at(Webhook::new(compatible_config(), Echo), SAFE_TIME);
    let req = signed_post(
        SAFE_TOKEN,
        SAFE_TIME,
        &compatible_body("plain copy", "encrypted copy"),
    );
    let response = webhook.message(&req).await;
    assert_eq!(response.status(), StatusCode::OK);
    let reply = Fields::parse(&body(&response)).unwrap();
    assert_eq!(reply.get("Content"), Some("plain copy"));
    assert_eq!(reply.get("Encrypt"), None);
}

#[tokio::test]
async fn plaintext_pushes_are_refused_when_encryption_is_required() {
    let webhook = Webhook::from_env(&[
        ("WECHAT_TOKEN", SAFE_TOKEN),
        ("WECHAT_APP_ID", SAFE_APP_ID),
        ("WECHAT_ENCODING_AES_KEY", SAFE_KEY),
        ("WECHAT_REQUIRE_ENCRYPTION", "true"),
    ])
    .unwrap();
    let webhook = at(webhook, SAFE_TIME);
    let response = webhook
        .message(&signed_post(SAFE_TOKEN, SAFE_TIME, &sample("text")))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // The encrypted push still works.
    let response = webhook
        .message(&request(&fixture("post_safe_mode.json")))
        .await;
    assert_eq!(open_reply(&response).get("MsgType"), Some("text"));
}

#[tokio::test]
async fn with_a_key_plaintext_pushes_are_refused_by_default_and_encrypted_ones_answered() {
    // `encrypt_type` is not signed: without this default, one observed (signature, timestamp,
    // nonce) would let anyone post plaintext XML for the whole clock-skew window.
    let webhook = at(Webhook::new(safe_config(), Echo), SAFE_TIME);
    for body_xml in [
        sample("text"),
        compatible_body("plain copy", "encrypted copy"),
    ] {
        let response = webhook
            .message(&signed_post(SAFE_TOKEN, SAFE_TIME, &body_xml))
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(body(&response), "plaintext messages are not accepted");
    }
    let mut raw = fixture("post_safe_mode.json");
    let query = raw["rawQueryString"]
        .as_str()
        .unwrap()
        .replace("encrypt_type=aes", "encrypt_type=raw");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    set_query(&mut raw, &pairs);
    set_body(&mut raw, &sample("text"));
    let response = webhook.message(&request(&raw)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "encrypt_type=raw");
    let response = webhook
        .message(&encrypted_post(&crypto().encrypt(&sample("text")), None))
        .await;
    assert_eq!(open_reply(&response).get("MsgType"), Some("text"));
}

#[tokio::test]
async fn an_unknown_encrypt_type_is_a_bad_request() {
    let mut event = fixture("post_safe_mode.json");
    let query = event["rawQueryString"]
        .as_str()
        .unwrap()
        .replace("encrypt_type=aes", "encrypt_type=rsa");
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    set_query(&mut event, &pairs);
    let response = safe_webhook().message(&request(&event)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

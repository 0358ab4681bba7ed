//! Webhook CPU cost: signature check, XML parse, and full exchanges through `Webhook::message`
//! on prepared API Gateway requests (plaintext, and safe mode: verify, decrypt, parse, route,
//! build the reply, encrypt). Budget: well under 50 µs for a full safe-mode exchange.

use std::hint::black_box;
use std::sync::Arc;

use account::clock::ManualClock;
use account::rules::Rules;
use account::webhook::{Webhook, WebhookConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use wechat_protocol::crypto::MessageCrypto;
use wechat_protocol::message::Message;
use wechat_protocol::signature;

const PLAINTEXT_FIXTURE: &str = include_str!("../tests/fixtures/post_plaintext_text.json");
const SAFE_MODE_FIXTURE: &str = include_str!("../tests/fixtures/post_safe_mode.json");
const TEXT: &str = "<xml><ToUserName><![CDATA[gh_3c884a361561]]></ToUserName>\n<FromUserName><![CDATA[oUpF8uMuAJO_M2pxb1Q9zNjWeS6o]]></FromUserName>\n<CreateTime>1410685589</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n<MsgId>6060349595123187712</MsgId>\n</xml>";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

fn signature_check(c: &mut Criterion) {
    c.bench_function("signature/verify", |b| {
        b.iter(|| {
            signature::verify(
                black_box("f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"),
                black_box(&["test", "1410685589", "test"]),
            )
        })
    });
}

fn xml_parse(c: &mut Criterion) {
    c.bench_function("xml/parse_text_message", |b| {
        b.iter(|| Message::parse(black_box(TEXT.as_bytes())))
    });
}

fn crypto(c: &mut Criterion) {
    let crypto = MessageCrypto::new(
        "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "wxb11529c136998cb6",
    )
    .expect("the published key");
    let encrypted = crypto.encrypt_with_prefix(b"aaaabbbbccccdddd", TEXT);
    c.bench_function("crypto/encrypt_text_message", |b| {
        b.iter(|| crypto.encrypt_with_prefix(b"aaaabbbbccccdddd", black_box(TEXT)))
    });
    c.bench_function("crypto/decrypt_text_message", |b| {
        b.iter(|| crypto.decrypt(black_box(&encrypted)))
    });
}

fn exchanges(c: &mut Criterion) {
    let rt = runtime();

    let plaintext = Webhook::from_env(&[("WECHAT_TOKEN", "test")])
        .expect("plaintext config")
        .with_clock(Arc::new(ManualClock::at_ms(1_410_685_589_000)));
    let request = lambda_http::request::from_str(PLAINTEXT_FIXTURE).expect("fixture");
    assert_eq!(rt.block_on(plaintext.message(&request)).status(), 200);
    c.bench_function("exchange/plaintext_text", |b| {
        b.iter(|| rt.block_on(plaintext.message(black_box(&request))))
    });

    let safe = Webhook::from_env(&[
        ("WECHAT_TOKEN", "pamtest"),
        ("WECHAT_APP_ID", "wxb11529c136998cb6"),
        (
            "WECHAT_ENCODING_AES_KEY",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        ),
    ])
    .expect("safe-mode config")
    .with_clock(Arc::new(ManualClock::at_ms(1_458_300_676_000)));
    let request = lambda_http::request::from_str(SAFE_MODE_FIXTURE).expect("fixture");
    let response = rt.block_on(safe.message(&request));
    assert_eq!(response.status(), 200);
    assert!(String::from_utf8_lossy(response.body()).contains("<Encrypt>"));
    c.bench_function("exchange/safe_mode_text", |b| {
        b.iter(|| rt.block_on(safe.message(black_box(&request))))
    });

    // During a rotation, a push under the previous key: one failed decryption first.
    let fixture_time = 1_458_300_676;
    let until = (fixture_time + 3_600).to_string();
    let env = [
        ("WECHAT_TOKEN", "pamtest"),
        ("WECHAT_APP_ID", "wxb11529c136998cb6"),
        (
            "WECHAT_ENCODING_AES_KEY",
            "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut",
        ),
        (
            "WECHAT_ENCODING_AES_KEY_PREVIOUS",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        ),
        ("WECHAT_PREVIOUS_KEYS_UNTIL", until.as_str()),
    ];
    let config = WebhookConfig::read_at(&env, fixture_time).expect("rotation config");
    let rotating = Webhook::new(config, Rules::bundled().expect("the bundled rules"))
        .with_clock(Arc::new(ManualClock::at_ms(fixture_time * 1000)));
    let response = rt.block_on(rotating.message(&request));
    assert_eq!(response.status(), 200);
    c.bench_function("exchange/safe_mode_text_previous_key", |b| {
        b.iter(|| rt.block_on(rotating.message(black_box(&request))))
    });
}

criterion_group!(benches, signature_check, xml_parse, crypto, exchanges);
criterion_main!(benches);

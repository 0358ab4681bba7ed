//! `POST /wechat` against hostile or broken input: size limit, signature before parsing,
//! replays, XML bombs and external entities, malformed XML, missing fields, and a cheap fuzz
//! over truncated and mutated real messages. Nothing may panic.

use crate::common::*;
use account::webhook::MAX_BODY_BYTES;
use lambda_http::http::StatusCode;

async fn post(xml: &str) -> (StatusCode, String) {
    let response = plaintext_webhook()
        .message(&signed_post(TOKEN, FIXTURE_TIME, xml))
        .await;
    (response.status(), body(&response))
}

#[tokio::test]
async fn a_body_over_64_kib_is_refused_with_413_before_the_signature_is_checked() {
    let padding = " ".repeat(MAX_BODY_BYTES);
    let xml = sample("text").replace("</xml>", &format!("{padding}</xml>"));
    assert_eq!(post(&xml).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // Even unsigned.
    let response = plaintext_webhook()
        .message(&signed_post("wrong-token", FIXTURE_TIME, &xml))
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Exactly at the limit is fine.
    let base = sample("text");
    let at_limit = base.replace(
        "</xml>",
        &format!("{}</xml>", " ".repeat(MAX_BODY_BYTES - base.len())),
    );
    assert_eq!(at_limit.len(), MAX_BODY_BYTES);
    assert_eq!(post(&at_limit).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_bad_signature_is_refused_before_the_body_is_parsed() {
    for xml in [
        sample("text"),
        "<!DOCTYPE x [<!ENTITY e \"e\">]><xml/>".to_string(),
        "garbage".into(),
    ] {
        let response = plaintext_webhook()
            .message(&signed_post("wrong-token", FIXTURE_TIME, &xml))
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(body(&response), "invalid signature");
    }
}

#[tokio::test]
async fn a_replayed_push_is_refused_after_the_signature_check() {
    let stale = FIXTURE_TIME - 301;
    let response = plaintext_webhook()
        .message(&signed_post(TOKEN, stale, &sample("text")))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(body(&response).contains("timestamp"));
    let future = FIXTURE_TIME + 301;
    let response = plaintext_webhook()
        .message(&signed_post(TOKEN, future, &sample("text")))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // A stale timestamp with a bad signature is reported as the bad signature.
    let response = plaintext_webhook()
        .message(&signed_post("wrong-token", stale, &sample("text")))
        .await;
    assert_eq!(body(&response), "invalid signature");
}

#[tokio::test]
async fn doctype_and_entity_declarations_are_refused_with_400() {
    let billion_laughs = concat!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">",
        "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>",
        "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime>",
        "<MsgType>text</MsgType><Content>&lol2;</Content></xml>"
    );
    let external = "<!DOCTYPE xml [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><xml><Content>&xxe;</Content></xml>";
    let bare_entity = "<!ENTITY xxe SYSTEM \"file:///etc/passwd\"><xml/>";
    for xml in [billion_laughs, external, bare_entity] {
        let (status, reason) = post(xml).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{xml}");
        assert!(
            reason.contains("DOCTYPE and ENTITY declarations are not allowed"),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn processing_instructions_and_unknown_entities_are_refused_with_400() {
    let pi = sample("text").replace("<Content>", "<?evil run?><Content>");
    let (status, reason) = post(&pi).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reason.contains("processing instruction"), "{reason}");

    let entity = sample("text").replace("<![CDATA[this is a test]]>", "&xxe;");
    let (status, reason) = post(&entity).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reason.contains("entity"), "{reason}");
}

#[tokio::test]
async fn malformed_xml_is_refused_with_400_and_a_short_reason() {
    for xml in [
        "",
        "hello",
        "<xml>",
        "<xml><A></B></xml>",
        "<xml></xml><xml></xml>",
    ] {
        let (status, reason) = post(xml).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{xml:?}");
        assert!(reason.len() < 80, "{reason}");
    }
}

#[tokio::test]
async fn each_missing_required_field_is_refused_with_400_naming_it() {
    for field in ["ToUserName", "FromUserName", "CreateTime", "MsgType"] {
        let xml = sample("text")
            .replace(&format!("<{field}>"), "<Renamed>")
            .replace(&format!("</{field}>"), "</Renamed>");
        let (status, reason) = post(&xml).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(reason, format!("bad request: missing field {field}"));
    }
}

#[tokio::test]
async fn a_push_missing_its_signature_parameters_is_a_bad_request() {
    let mut event = fixture("post_plaintext_text.json");
    set_query(
        &mut event,
        &[("timestamp", "1410685589"), ("nonce", "test")],
    );
    let response = plaintext_webhook().message(&request(&event)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(body(&response).contains("signature"));
}

/// Every prefix and many single-byte mutations of every real sample, through the whole
/// handler: each answer is 200 or 400, never a panic or a 5xx.
#[tokio::test]
async fn truncated_and_mutated_messages_never_panic_or_fail_the_server() {
    let webhook = plaintext_webhook();
    // The fixture's URI (with its signed query), reused without a JSON round trip per body.
    let uri = signed_post(TOKEN, FIXTURE_TIME, "").uri().clone();
    let replacements = [
        "<", ">", "&", "/", "!", "?", "]", "\"", "&#0;", "&#xD800;", "\u{0}", "é",
    ];
    for (name, xml) in samples() {
        let mut cases: Vec<String> = Vec::new();
        for end in (0..xml.len()).filter(|&i| xml.is_char_boundary(i)) {
            cases.push(xml[..end].to_string());
        }
        for (i, _) in xml.char_indices().step_by(3) {
            for r in replacements {
                let mut mutated = xml.clone();
                let next = mutated[i..].chars().next().map_or(0, char::len_utf8);
                mutated.replace_range(i..i + next, r);
                cases.push(mutated);
            }
        }
        for body in cases {
            let req = lambda_http::http::Request::builder()
                .method("POST")
                .uri(uri.clone())
                .body(lambda_http::Body::Text(body.clone()))
                .unwrap();
            let response = webhook.message(&req).await;
            assert!(
                matches!(response.status(), StatusCode::OK | StatusCode::BAD_REQUEST),
                "{name}: {} for {body:?}",
                response.status()
            );
        }
    }
}

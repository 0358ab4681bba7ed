//! `GET /wechat`: WeChat's server URL verification, from API Gateway HTTP API fixtures.

use crate::common::*;
use lambda_http::http::{Method, StatusCode};

#[test]
fn shared_http_query_sees_the_query_of_an_api_gateway_fixture() {
    let req = request(&fixture("get_verify.json"));
    assert_eq!(req.method(), Method::GET);
    assert_eq!(req.uri().path(), "/wechat");
    let query = account::http::query(&req);
    assert_eq!(
        query["signature"],
        "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"
    );
    assert_eq!(query["timestamp"], "1410685589");
    assert_eq!(query["nonce"], "test");
    assert_eq!(query["echostr"], "5837397520665436492");
}

#[tokio::test]
async fn a_correctly_signed_verification_echoes_echostr_as_plain_text() {
    let response = plaintext_webhook()
        .verify(&request(&fixture("get_verify.json")))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(&response), "5837397520665436492");
    assert!(content_type(&response).starts_with("text/plain"));
}

#[tokio::test]
async fn a_wrong_signature_is_forbidden_and_never_echoes_echostr() {
    let mut event = fixture("get_verify.json");
    set_query(
        &mut event,
        &[
            ("signature", "0000000000000000000000000000000000000000"),
            ("echostr", "5837397520665436492"),
            ("timestamp", "1410685589"),
            ("nonce", "test"),
        ],
    );
    let response = plaintext_webhook().verify(&request(&event)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!body(&response).contains("5837397520665436492"));
}

#[tokio::test]
async fn a_verification_signed_with_another_token_is_forbidden() {
    let webhook = at(
        account::webhook::Webhook::from_env(&[("WECHAT_TOKEN", "other")]).unwrap(),
        FIXTURE_TIME,
    );
    let response = webhook.verify(&request(&fixture("get_verify.json"))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn each_missing_parameter_is_a_bad_request_naming_it() {
    let all = [
        ("signature", "f21891de399b4e33a1a93c9a7b8a8fffb5a443ff"),
        ("echostr", "5837397520665436492"),
        ("timestamp", "1410685589"),
        ("nonce", "test"),
    ];
    for missing in ["signature", "echostr", "timestamp", "nonce"] {
        let params: Vec<_> = all.iter().copied().filter(|(k, _)| *k != missing).collect();
        let mut event = fixture("get_verify.json");
        set_query(&mut event, &params);
        let response = plaintext_webhook().verify(&request(&event)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{missing}");
        assert!(body(&response).contains(missing));
        assert!(!body(&response).contains("5837397520665436492"));
    }
}

#[tokio::test]
async fn a_replayed_verification_is_refused_in_either_direction() {
    let req = request(&fixture("get_verify.json"));
    let webhook = || account::webhook::Webhook::from_env(&[("WECHAT_TOKEN", TOKEN)]).unwrap();
    assert_eq!(
        at(webhook(), FIXTURE_TIME + 299)
            .verify(&req)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        at(webhook(), FIXTURE_TIME - 299)
            .verify(&req)
            .await
            .status(),
        StatusCode::OK
    );
    // The window is exclusive: a push 300 s off is a replay (its msg# item is kept for longer).
    for now in [
        FIXTURE_TIME + 300,
        FIXTURE_TIME - 300,
        FIXTURE_TIME + 301,
        FIXTURE_TIME - 301,
        FIXTURE_TIME + 86_400,
    ] {
        let response = at(webhook(), now).verify(&req).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "at {now}");
        assert!(!body(&response).contains("5837397520665436492"));
    }
}

#[tokio::test]
async fn the_replay_window_is_configurable() {
    let webhook = account::webhook::Webhook::from_env(&[
        ("WECHAT_TOKEN", TOKEN),
        ("WECHAT_MAX_CLOCK_SKEW_SECS", "10"),
    ])
    .unwrap();
    let response = at(webhook, FIXTURE_TIME + 11)
        .verify(&request(&fixture("get_verify.json")))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn handle_sends_get_to_verification_and_refuses_other_methods() {
    let webhook = plaintext_webhook();
    let response = webhook.handle(&request(&fixture("get_verify.json"))).await;
    assert_eq!(body(&response), "5837397520665436492");
    for method in ["PUT", "DELETE", "PATCH", "HEAD"] {
        let mut event = fixture("get_verify.json");
        event["requestContext"]["http"]["method"] = method.into();
        let response = webhook.handle(&request(&event)).await;
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.headers()["allow"], "GET, POST");
    }
}

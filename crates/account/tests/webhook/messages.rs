//! `POST /wechat` in plaintext mode: every message type and event WeChat sends parses from real
//! WeChat XML, replies go back to the sender, and custom Rust handlers replace the rules.

use crate::common::*;
use account::webhook::Webhook;
use lambda_http::http::StatusCode;
use wechat_protocol::message::{Event, MessageKind, ScanCodeInfo, SendLocationInfo, SendPicsInfo};
use wechat_protocol::xml::Fields;

#[tokio::test]
async fn a_plaintext_text_message_gets_a_text_reply_addressed_back_to_the_sender() {
    let response = plaintext_webhook()
        .message(&request(&fixture("post_plaintext_text.json")))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).contains("xml"));
    let reply = Fields::parse(&body(&response)).unwrap();
    assert_eq!(
        reply.get("ToUserName"),
        Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    );
    assert_eq!(reply.get("FromUserName"), Some("gh_3c884a361561"));
    assert_eq!(
        reply.get("CreateTime"),
        Some(FIXTURE_TIME.to_string().as_str())
    );
    assert_eq!(reply.get("MsgType"), Some("text"));
    assert!(!reply.get("Content").unwrap_or_default().is_empty());
}

#[tokio::test]
async fn the_bundled_rules_welcome_a_new_follower() {
    let response = plaintext_webhook()
        .message(&signed_post(
            TOKEN,
            FIXTURE_TIME,
            &sample("event_subscribe"),
        ))
        .await;
    let reply = Fields::parse(&body(&response)).unwrap();
    assert_eq!(reply.get("MsgType"), Some("text"));
    assert!(
        reply
            .get("Content")
            .unwrap_or_default()
            .contains("Thanks for following")
    );
}

/// Posts `name`'s sample through the webhook with a recording handler; returns the parsed kind.
async fn parsed(name: &str) -> (MessageKind, wechat_protocol::message::Message) {
    let recorder = Recorder::default();
    let webhook = at(
        Webhook::new(plaintext_config(), recorder.clone()),
        FIXTURE_TIME,
    );
    let response = webhook
        .message(&signed_post(TOKEN, FIXTURE_TIME, &sample(name)))
        .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{name}: {}",
        body(&response)
    );
    assert_eq!(body(&response), "success");
    let msg = recorder
        .last()
        .unwrap_or_else(|| panic!("{name} reached no handler"));
    assert_eq!(msg.to_user_name, "gh_3c884a361561");
    assert_eq!(msg.from_user_name, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    assert_eq!(msg.create_time, FIXTURE_TIME);
    (msg.kind.clone(), msg)
}

fn s(v: &str) -> String {
    v.to_string()
}

#[tokio::test]
async fn every_user_message_type_parses_into_its_kind() {
    let (kind, msg) = parsed("text").await;
    assert_eq!(
        kind,
        MessageKind::Text {
            content: s("this is a test")
        }
    );
    assert_eq!(msg.msg_id.as_deref(), Some("1234567890123456"));
    assert_eq!(msg.fields.get("MsgDataId"), Some("xxxx"));

    assert_eq!(
        parsed("image").await.0,
        MessageKind::Image {
            pic_url: s("http://mmbiz.qpic.cn/mmbiz_jpg/abc/0"),
            media_id: s("image_media_id")
        }
    );
    assert_eq!(
        parsed("voice").await.0,
        MessageKind::Voice {
            media_id: s("voice_media_id"),
            format: s("amr"),
            recognition: Some(s("腾讯微信团队"))
        }
    );
    assert_eq!(
        parsed("video").await.0,
        MessageKind::Video {
            media_id: s("video_media_id"),
            thumb_media_id: s("thumb_media_id")
        }
    );
    assert_eq!(
        parsed("shortvideo").await.0,
        MessageKind::ShortVideo {
            media_id: s("short_media_id"),
            thumb_media_id: s("short_thumb_id")
        }
    );
    assert_eq!(
        parsed("location").await.0,
        MessageKind::Location {
            latitude: 23.134521,
            longitude: 113.358803,
            scale: 20,
            label: s("位置信息")
        }
    );
    assert_eq!(
        parsed("link").await.0,
        MessageKind::Link {
            title: s("公众平台官网链接"),
            description: s("公众平台官网链接"),
            url: s("https://mp.weixin.qq.com")
        }
    );
}

#[tokio::test]
async fn follow_scan_and_location_events_parse() {
    assert_eq!(
        parsed("event_subscribe").await.0,
        MessageKind::Event(Event::Subscribe {
            scene: None,
            ticket: None
        })
    );
    let (kind, msg) = parsed("event_subscribe_scan").await;
    let MessageKind::Event(Event::Subscribe { scene, ticket }) = kind else {
        panic!("scan-subscribe parsed as {kind:?}");
    };
    assert_eq!(scene.as_deref(), Some("123123"));
    assert!(
        ticket
            .unwrap_or_default()
            .starts_with("gQH47joAAAAAAAAAASxodHRw")
    );
    assert_eq!(msg.event_key(), Some("qrscene_123123"));

    assert_eq!(
        parsed("event_unsubscribe").await.0,
        MessageKind::Event(Event::Unsubscribe)
    );
    let (kind, _) = parsed("event_scan").await;
    assert!(
        matches!(kind, MessageKind::Event(Event::Scan { ref scene, ticket: Some(_) }) if scene == "123123")
    );
    assert_eq!(
        parsed("event_location").await.0,
        MessageKind::Event(Event::Location {
            latitude: 23.137466,
            longitude: 113.352425,
            precision: 119.38504
        })
    );
}

#[tokio::test]
async fn menu_events_parse_with_their_nested_info() {
    assert_eq!(
        parsed("event_click").await.0,
        MessageKind::Event(Event::Click {
            key: s("V1001_TODAY_MUSIC")
        })
    );
    assert_eq!(
        parsed("event_view").await.0,
        MessageKind::Event(Event::View {
            url: s("https://www.qq.com/"),
            menu_id: Some(s("401"))
        })
    );
    let (kind, msg) = parsed("event_scancode_push").await;
    assert_eq!(
        kind,
        MessageKind::Event(Event::ScanCodePush {
            key: s("rselfmenu_0_1"),
            scan: ScanCodeInfo {
                scan_type: s("qrcode"),
                scan_result: s("https://example.com/qr")
            }
        })
    );
    assert_eq!(
        msg.fields.get("ScanCodeInfo/ScanResult"),
        Some("https://example.com/qr")
    );
    assert_eq!(
        parsed("event_scancode_waitmsg").await.0,
        MessageKind::Event(Event::ScanCodeWaitMsg {
            key: s("rselfmenu_0_0"),
            scan: ScanCodeInfo {
                scan_type: s("barcode"),
                scan_result: s("EAN_13,6901234567892")
            }
        })
    );
    assert_eq!(
        parsed("event_pic_sysphoto").await.0,
        MessageKind::Event(Event::PicSysPhoto {
            key: s("rselfmenu_1_0"),
            pictures: SendPicsInfo {
                count: 1,
                pic_md5_sums: vec![s("1b5f7c23b5bf75682a53e7b6d163e185")]
            }
        })
    );
    assert_eq!(
        parsed("event_pic_photo_or_album").await.0,
        MessageKind::Event(Event::PicPhotoOrAlbum {
            key: s("rselfmenu_1_1"),
            pictures: SendPicsInfo {
                count: 1,
                pic_md5_sums: vec![s("5a75aaca956d97be686719218f275c6b")]
            }
        })
    );
    assert_eq!(
        parsed("event_pic_weixin").await.0,
        MessageKind::Event(Event::PicWeixin {
            key: s("rselfmenu_1_2"),
            pictures: SendPicsInfo {
                count: 2,
                pic_md5_sums: vec![
                    s("5a75aaca956d97be686719218f275c6b"),
                    s("1b5f7c23b5bf75682a53e7b6d163e185")
                ]
            }
        })
    );
    assert_eq!(
        parsed("event_location_select").await.0,
        MessageKind::Event(Event::LocationSelect {
            key: s("rselfmenu_2_0"),
            location: SendLocationInfo {
                latitude: 23.0,
                longitude: 113.0,
                scale: 15,
                label: s(" 广州市海珠区客村艺苑路 106号"),
                poiname: s("")
            }
        })
    );
    assert_eq!(
        parsed("event_view_miniprogram").await.0,
        MessageKind::Event(Event::ViewMiniprogram {
            page_path: s("pages/index/index"),
            menu_id: Some(s("MENUID"))
        })
    );
}

#[tokio::test]
async fn job_finished_events_parse_with_their_counts() {
    let (kind, msg) = parsed("event_templatesendjobfinish").await;
    assert_eq!(
        kind,
        MessageKind::Event(Event::TemplateSendJobFinish {
            status: s("success")
        })
    );
    assert_eq!(msg.msg_id.as_deref(), Some("200163836"));

    let (kind, msg) = parsed("event_masssendjobfinish").await;
    assert_eq!(
        kind,
        MessageKind::Event(Event::MassSendJobFinish {
            status: s("err(30003)"),
            total_count: 100,
            filter_count: 80,
            sent_count: 75,
            error_count: 5
        })
    );
    assert_eq!(msg.msg_id.as_deref(), Some("1000001625"));
    assert_eq!(
        msg.fields
            .get_all("CopyrightCheckResult/ResultList/item/OriginalArticleUrl")
            .collect::<Vec<_>>(),
        ["Url_1", "Url_2"]
    );
    assert_eq!(
        msg.fields
            .get("ArticleUrlResult/ResultList/item/ArticleUrl"),
        Some("https://mp.weixin.qq.com/s/abc")
    );
}

#[tokio::test]
async fn unknown_types_and_events_are_kept_and_answered_success() {
    let (kind, msg) = parsed("unknown_type").await;
    assert_eq!(kind, MessageKind::Unknown);
    assert_eq!(msg.msg_type, "miniprogrampage");
    assert_eq!(msg.fields.get("PagePath"), Some("pages/index/index"));

    let (kind, msg) = parsed("unknown_event").await;
    assert_eq!(
        kind,
        MessageKind::Event(Event::Unknown {
            name: s("subscribe_msg_popup_event")
        })
    );
    assert_eq!(
        msg.fields
            .get("SubscribeMsgPopupEvent/List/SubscribeStatusString"),
        Some("accept")
    );

    // The rules answer them `success` too, even with a default reply configured.
    let webhook = at(
        Webhook::from_env(&[
            ("WECHAT_TOKEN", TOKEN),
            ("WECHAT_REPLY_RULES", &example_rules()),
        ])
        .unwrap(),
        FIXTURE_TIME,
    );
    for name in ["unknown_type", "unknown_event"] {
        let response = webhook
            .message(&signed_post(TOKEN, FIXTURE_TIME, &sample(name)))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body(&response), "success", "{name}");
    }
}

#[tokio::test]
async fn every_sample_is_accepted_by_the_example_rules() {
    let webhook = at(
        Webhook::from_env(&[
            ("WECHAT_TOKEN", TOKEN),
            ("WECHAT_REPLY_RULES", &example_rules()),
        ])
        .unwrap(),
        FIXTURE_TIME,
    );
    for (name, xml) in samples() {
        let response = webhook
            .message(&signed_post(TOKEN, FIXTURE_TIME, &xml))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{name}: {}",
            body(&response)
        );
    }
}

fn example_rules() -> String {
    format!("{}/rules/example.toml", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn a_rules_file_from_the_environment_decides_the_reply_type() {
    let webhook = at(
        Webhook::from_env(&[
            ("WECHAT_TOKEN", TOKEN),
            ("WECHAT_REPLY_RULES", &example_rules()),
        ])
        .unwrap(),
        FIXTURE_TIME,
    );
    let text = sample("text").replace("this is a test", "news");
    let response = webhook
        .message(&signed_post(TOKEN, FIXTURE_TIME, &text))
        .await;
    let reply = Fields::parse(&body(&response)).unwrap();
    assert_eq!(reply.get("MsgType"), Some("news"));
    assert_eq!(reply.get("ArticleCount"), Some("2"));
}

#[tokio::test]
async fn cdata_terminators_emoji_and_newlines_survive_the_round_trip() {
    let content = "end]]>of cdata ]]]]> 😀👍🏽\n第二行\r\nthird & <b>";
    // WeChat escapes `]]>` in its CDATA the same way we do.
    let escaped = content.replace("]]>", "]]]]><![CDATA[>");
    let xml = sample("text").replace("this is a test", &escaped);
    let webhook = at(Webhook::new(plaintext_config(), Echo), FIXTURE_TIME);
    let response = webhook
        .message(&signed_post(TOKEN, FIXTURE_TIME, &xml))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let reply = Fields::parse(&body(&response)).unwrap();
    // XML normalises CRLF to LF; everything else comes back byte for byte.
    assert_eq!(
        reply.get("Content"),
        Some(content.replace("\r\n", "\n").as_str())
    );
}

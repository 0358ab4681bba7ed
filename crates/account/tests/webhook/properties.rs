//! Property tests (proptest, a fixed number of cases each so that `make test` stays fast):
//! the XML reader and message parser, the safe-mode envelope opener and the rules loader never
//! panic on arbitrary input; authenticated, envelope-valid pushes with random extra and missing
//! details are always answered 200; encrypt → decrypt and reply → XML → parse round-trip.

use crate::common::*;
use account::rules::Rules;
use lambda_http::http::StatusCode;
use proptest::prelude::*;
use wechat_protocol::crypto::MessageCrypto;
use wechat_protocol::message::{EventType, Message, MsgType};
use wechat_protocol::reply::{Article, Music, News, Reply};
use wechat_protocol::xml::Fields;

/// Cases per property; the whole file runs in a few seconds.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(CASES)
}

/// Text made of XML's own punctuation and a few names, which reaches the reader's corners far
/// more often than uniformly random bytes do.
fn xmlish() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("<".to_string()),
        Just(">".to_string()),
        Just("</".to_string()),
        Just("/>".to_string()),
        Just("<xml>".to_string()),
        Just("</xml>".to_string()),
        Just("<![CDATA[".to_string()),
        Just("]]>".to_string()),
        Just("<!DOCTYPE x [".to_string()),
        Just("<!ENTITY e \"v\">".to_string()),
        Just("<?xml version=\"1.0\"?>".to_string()),
        Just("<!--".to_string()),
        Just("-->".to_string()),
        Just("&amp;".to_string()),
        Just("&#x1F600;".to_string()),
        Just("&#0;".to_string()),
        Just("&e;".to_string()),
        Just("<MsgType>".to_string()),
        Just("</MsgType>".to_string()),
        "[A-Za-z_/ =\"']{0,8}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(pieces, 0..40).prop_map(|parts| parts.concat())
}

/// `<name><![CDATA[value]]></name>`, splitting `]]>` as WeChat does.
fn cdata(name: &str, value: &str) -> String {
    format!(
        "<{name}><![CDATA[{}]]></{name}>",
        value.replace("]]>", "]]]]><![CDATA[>")
    )
}

/// Detail element names WeChat uses, plus made-up ones; values of any shape.
fn detail_field() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "Content",
            "PicUrl",
            "MediaId",
            "Format",
            "Recognition",
            "ThumbMediaId",
            "Location_X",
            "Location_Y",
            "Scale",
            "Label",
            "Title",
            "Description",
            "Url",
            "EventKey",
            "Ticket",
            "Latitude",
            "Longitude",
            "Precision",
            "MenuId",
            "Status",
            "TotalCount",
            "FilterCount",
            "SentCount",
            "ErrorCount",
            "MsgId",
            "MsgID",
        ])
        .prop_map(str::to_string),
        "[A-Z][A-Za-z_]{0,12}",
    ];
    let value = prop_oneof!["[0-9.+-]{0,12}", any::<String>()];
    (name, value)
}

/// Nested detail blocks of the menu events, present, partial or malformed.
fn detail_block() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[0-9x]{0,3}".prop_map(|count| format!(
            "<SendPicsInfo><Count>{count}</Count><PicList><item><PicMd5Sum>a</PicMd5Sum></item></PicList></SendPicsInfo>"
        )),
        Just("<SendPicsInfo><PicList></PicList></SendPicsInfo>".to_string()),
        Just("<ScanCodeInfo><ScanType>qrcode</ScanType></ScanCodeInfo>".to_string()),
        "[0-9.a-z]{0,6}".prop_map(|x| format!(
            "<SendLocationInfo><Location_X>{x}</Location_X><Location_Y>1</Location_Y><Scale>15</Scale><Label/></SendLocationInfo>"
        )),
    ]
}

/// An authenticated push that has its envelope and anything else: a known or unknown type
/// and event, random detail fields and blocks.
fn envelope_valid_push() -> impl Strategy<Value = (String, String, Option<String>)> {
    let msg_type = prop_oneof![
        prop::sample::select(MsgType::ALL.to_vec()).prop_map(|t| t.as_str().to_string()),
        "[a-z]{1,12}",
    ];
    let event = prop_oneof![
        prop::sample::select(EventType::ALL.to_vec()).prop_map(|e| e.as_str().to_string()),
        "[a-z_]{1,20}",
    ];
    (
        msg_type,
        event,
        prop::collection::vec(detail_field(), 0..8),
        detail_block(),
    )
        .prop_map(|(msg_type, event, details, block)| {
            let is_event = msg_type == "event";
            let mut xml = String::from("<xml>");
            xml.push_str(&cdata("ToUserName", "gh_3c884a361561"));
            xml.push_str(&cdata("FromUserName", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"));
            xml.push_str("<CreateTime>1410685589</CreateTime>");
            xml.push_str(&cdata("MsgType", &msg_type));
            if is_event {
                xml.push_str(&cdata("Event", &event));
            }
            for (name, value) in &details {
                xml.push_str(&cdata(name, value));
            }
            xml.push_str(&block);
            xml.push_str("</xml>");
            (xml, msg_type, is_event.then_some(event))
        })
}

/// Text without CR: XML turns CR and CRLF into LF, so only such text comes back byte for byte.
fn xml_text() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| s.replace('\r', ""))
}

fn article() -> impl Strategy<Value = Article> {
    (xml_text(), xml_text(), xml_text(), xml_text()).prop_map(
        |(title, description, pic_url, url)| Article {
            title,
            description,
            pic_url,
            url,
        },
    )
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        Just(Reply::Success),
        xml_text().prop_map(|content| Reply::Text { content }),
        xml_text().prop_map(|media_id| Reply::Image { media_id }),
        xml_text().prop_map(|media_id| Reply::Voice { media_id }),
        (xml_text(), xml_text(), xml_text()).prop_map(|(media_id, title, description)| {
            Reply::Video {
                media_id,
                title,
                description,
            }
        }),
        (xml_text(), xml_text(), xml_text(), xml_text(), xml_text()).prop_map(
            |(title, description, music_url, hq_music_url, thumb_media_id)| Reply::Music(Music {
                title,
                description,
                music_url,
                hq_music_url,
                thumb_media_id,
            })
        ),
        prop::collection::vec(article(), 1..=8)
            .prop_map(|articles| Reply::News(News::new(articles).expect("1 to 8 articles"))),
        prop::option::of(xml_text())
            .prop_map(|kf_account| Reply::TransferCustomerService { kf_account }),
    ]
}

/// Every field a reply puts in its XML, as `(path, value)`.
fn expected_fields(reply: &Reply) -> Vec<(String, String)> {
    let one = |path: &str, value: &str| vec![(path.to_string(), value.to_string())];
    match reply {
        Reply::Success => vec![],
        Reply::Text { content } => one("Content", content),
        Reply::Image { media_id } => one("Image/MediaId", media_id),
        Reply::Voice { media_id } => one("Voice/MediaId", media_id),
        Reply::Video {
            media_id,
            title,
            description,
        } => [
            one("Video/MediaId", media_id),
            one("Video/Title", title),
            one("Video/Description", description),
        ]
        .concat(),
        Reply::Music(m) => [
            one("Music/Title", &m.title),
            one("Music/Description", &m.description),
            one("Music/MusicUrl", &m.music_url),
            one("Music/HQMusicUrl", &m.hq_music_url),
            one("Music/ThumbMediaId", &m.thumb_media_id),
        ]
        .concat(),
        Reply::News(news) => {
            let mut fields = one("ArticleCount", &news.articles().len().to_string());
            for a in news.articles() {
                fields.extend(one("Articles/item/Title", &a.title));
                fields.extend(one("Articles/item/Description", &a.description));
                fields.extend(one("Articles/item/PicUrl", &a.pic_url));
                fields.extend(one("Articles/item/Url", &a.url));
            }
            fields
        }
        Reply::TransferCustomerService { kf_account } => kf_account
            .as_deref()
            .map(|k| one("TransInfo/KfAccount", k))
            .unwrap_or_default(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_message_parser_never_panics_on_arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Message::parse(&body);
    }

    #[test]
    fn the_xml_reader_never_panics_on_xml_like_text(xml in xmlish()) {
        let _ = Fields::parse(&xml);
        let _ = Message::parse(xml.as_bytes());
    }

    #[test]
    fn an_envelope_valid_push_with_any_details_parses_and_is_answered_200(
        (xml, msg_type, event) in envelope_valid_push()
    ) {
        let msg = Message::parse(xml.as_bytes()).expect("only the envelope is required");
        prop_assert_eq!(&msg.msg_type, &msg_type);
        prop_assert_eq!(msg.known_type, MsgType::from_wire(&msg_type));
        prop_assert_eq!(msg.event_name(), event.as_deref());
        prop_assert_eq!(msg.known_event, event.as_deref().and_then(EventType::from_wire));

        let response = runtime().block_on(
            plaintext_webhook().message(&signed_post(TOKEN, FIXTURE_TIME, &xml)),
        );
        prop_assert_eq!(response.status(), StatusCode::OK, "{}", body(&response));
    }

    #[test]
    fn decryption_never_panics_on_arbitrary_text(encrypted in prop_oneof![
        "[A-Za-z0-9+/=]{0,200}",
        any::<String>(),
    ]) {
        let _ = safe_crypto().decrypt(&encrypted);
    }

    #[test]
    fn the_safe_mode_opener_never_panics_and_refuses_what_it_cannot_open(
        encrypted in "[A-Za-z0-9+/]{0,120}={0,2}",
    ) {
        let webhook = at(account::webhook::Webhook::new(safe_config(), Echo), SAFE_TIME);
        let response = runtime().block_on(webhook.message(&encrypted_post(&encrypted, None)));
        prop_assert!(
            matches!(response.status(), StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST),
            "{}",
            response.status()
        );
    }

    #[test]
    fn encrypt_then_decrypt_gives_back_the_text(
        text in any::<String>(),
        prefix in any::<[u8; 16]>(),
    ) {
        let crypto = safe_crypto();
        let encrypted = crypto.encrypt_with_prefix(&prefix, &text);
        prop_assert_eq!(crypto.decrypt(&encrypted), Ok(text));
    }

    #[test]
    fn the_rules_loader_never_panics_on_arbitrary_text(text in prop_oneof![
        any::<String>(),
        rules_like(),
    ]) {
        let _ = Rules::from_toml(&text);
    }

    #[test]
    fn a_reply_renders_to_xml_that_parses_back_to_its_fields(reply in reply()) {
        let Some(xml) = reply.to_xml("oUser", "gh_account", 1_700_000_000) else {
            prop_assert_eq!(reply, Reply::Success);
            return Ok(());
        };
        let fields = Fields::parse(&xml).expect("our own XML parses");
        prop_assert_eq!(fields.get("ToUserName"), Some("oUser"));
        prop_assert_eq!(fields.get("FromUserName"), Some("gh_account"));
        prop_assert_eq!(fields.get("CreateTime"), Some("1700000000"));
        prop_assert_eq!(fields.get("MsgType"), Some(reply.msg_type()));
        for (path, value) in expected_fields(&reply) {
            prop_assert!(
                fields.iter().any(|(p, v)| p == path && v == value),
                "{} = {:?} missing from {}", path, value, xml
            );
        }
    }

    #[test]
    fn a_checked_reply_round_trips_through_json_and_an_unchecked_one_is_refused(reply in reply()) {
        let json = serde_json::to_string(&reply).expect("a reply serializes");
        let parsed = serde_json::from_str::<Reply>(&json);
        match reply.clone().checked() {
            Ok(checked) => prop_assert_eq!(parsed.expect("a checked reply parses"), checked),
            Err(problem) => prop_assert!(parsed.is_err(), "{} accepted: {}", problem, json),
        }
    }
}

fn safe_crypto() -> MessageCrypto {
    MessageCrypto::new(SAFE_KEY, SAFE_APP_ID).expect("the published key")
}

/// Lines of the example rules file, shuffled, dropped and repeated: text that is nearly a
/// rules file and so reaches the loader's own checks, not only the TOML parser.
fn rules_like() -> impl Strategy<Value = String> {
    let lines: Vec<&'static str> = include_str!("../../rules/example.toml")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    prop::collection::vec(prop::sample::select(lines), 0..30).prop_map(|lines| lines.join("\n"))
}

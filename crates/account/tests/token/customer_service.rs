//! Customer-service messages: the real client against the fake WeChat API on loopback, with the
//! token service in process over the embedded store as the token source. Every message type's
//! JSON, every outcome, exactly one token refresh and resend on a rejected token, and no message
//! delivered twice.

use std::sync::Arc;
use std::time::Duration;
use testkit::harness::Logs;

use account::clock::ManualClock;
use account::customer_service::{
    Article, CustomMessage, CustomerService, FromReplyError, MsgMenu, MsgMenuItem, Music,
    SendOutcome, Video,
};
use account::token::{RetryPolicy, TokenClient, TokenService};
use serde_json::{Value, json};
use table::embedded::EmbeddedStore;
use testkit::fake_wechat::custom::{CustomCall, PATH};
use testkit::fake_wechat::sns::FAKE_OPENID;
use testkit::fake_wechat::{FAKE_APP_ID, FakeWeChat, Scripted, lock};
use testkit::harness::tokens::*;
use wechat_api::{ApiError, WeChatHttp};
use wechat_protocol::reply::{self, Reply};

type Service = TokenService<EmbeddedStore>;
type Source = Arc<CountingSource<Arc<Service>>>;

struct Setup {
    clock: ManualClock,
    fake: FakeWeChat,
    source: Source,
    tokens: Arc<TokenClient<Source>>,
    cs: CustomerService<Source>,
}

async fn setup() -> Setup {
    let clock = manual_clock();
    let fake = fake_for(FAKE_APP_ID, &clock).await;
    let service = Arc::new(service(
        config(&fake, &[]),
        EmbeddedStore::in_memory(),
        clock.clone(),
    ));
    let source = Arc::new(CountingSource::new(service));
    let tokens = Arc::new(TokenClient::with_clock(
        source.clone(),
        Arc::new(clock.clone()),
    ));
    let http = WeChatHttp::new(fake.base_url(), Duration::from_millis(500)).unwrap();
    let cs = CustomerService::new(http, tokens.clone()).with_retry(RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(1),
    });
    Setup {
        clock,
        fake,
        source,
        tokens,
        cs,
    }
}

impl Setup {
    fn sends(&self) -> u64 {
        self.fake.calls(PATH)
    }

    fn delivered(&self) -> Vec<CustomCall> {
        lock(&self.fake.state().custom).delivered()
    }

    fn token_fetches(&self) -> u64 {
        self.fake.calls(STABLE)
    }
}

/// Each documented message type and the JSON body WeChat documents for it.
fn every_message_type() -> Vec<(CustomMessage, Value)> {
    let to = FAKE_OPENID;
    vec![
        (
            CustomMessage::text(to, "Hello World"),
            json!({"touser": to, "msgtype": "text", "text": {"content": "Hello World"}}),
        ),
        (
            CustomMessage::image(to, "MEDIA_ID"),
            json!({"touser": to, "msgtype": "image", "image": {"media_id": "MEDIA_ID"}}),
        ),
        (
            CustomMessage::voice(to, "MEDIA_ID"),
            json!({"touser": to, "msgtype": "voice", "voice": {"media_id": "MEDIA_ID"}}),
        ),
        (
            CustomMessage::video(
                to,
                Video {
                    media_id: "MEDIA_ID".into(),
                    thumb_media_id: Some("THUMB_ID".into()),
                    title: "TITLE".into(),
                    description: "DESCRIPTION".into(),
                },
            ),
            json!({"touser": to, "msgtype": "video", "video": {
                "media_id": "MEDIA_ID",
                "thumb_media_id": "THUMB_ID",
                "title": "TITLE",
                "description": "DESCRIPTION"
            }}),
        ),
        (
            CustomMessage::music(
                to,
                Music {
                    title: "MUSIC_TITLE".into(),
                    description: "MUSIC_DESCRIPTION".into(),
                    musicurl: "MUSIC_URL".into(),
                    hqmusicurl: "HQ_MUSIC_URL".into(),
                    thumb_media_id: "THUMB_MEDIA_ID".into(),
                },
            ),
            json!({"touser": to, "msgtype": "music", "music": {
                "title": "MUSIC_TITLE",
                "description": "MUSIC_DESCRIPTION",
                "musicurl": "MUSIC_URL",
                "hqmusicurl": "HQ_MUSIC_URL",
                "thumb_media_id": "THUMB_MEDIA_ID"
            }}),
        ),
        (
            CustomMessage::news(
                to,
                Article {
                    title: "Happy Day".into(),
                    description: "Is Really A Happy Day".into(),
                    url: "URL".into(),
                    picurl: "PIC_URL".into(),
                },
            ),
            json!({"touser": to, "msgtype": "news", "news": {"articles": [{
                "title": "Happy Day",
                "description": "Is Really A Happy Day",
                "url": "URL",
                "picurl": "PIC_URL"
            }]}}),
        ),
        (
            CustomMessage::mpnews(to, "MEDIA_ID"),
            json!({"touser": to, "msgtype": "mpnews", "mpnews": {"media_id": "MEDIA_ID"}}),
        ),
        (
            CustomMessage::mpnews_article(to, "ARTICLE_ID"),
            json!({"touser": to, "msgtype": "mpnewsarticle", "mpnewsarticle": {"article_id": "ARTICLE_ID"}}),
        ),
        (
            CustomMessage::menu(
                to,
                MsgMenu {
                    head_content: "您对本次服务是否满意呢? ".into(),
                    list: vec![
                        MsgMenuItem {
                            id: "101".into(),
                            content: "满意".into(),
                        },
                        MsgMenuItem {
                            id: "102".into(),
                            content: "不满意".into(),
                        },
                    ],
                    tail_content: "欢迎再次光临".into(),
                },
            ),
            json!({"touser": to, "msgtype": "msgmenu", "msgmenu": {
                "head_content": "您对本次服务是否满意呢? ",
                "list": [{"id": "101", "content": "满意"}, {"id": "102", "content": "不满意"}],
                "tail_content": "欢迎再次光临"
            }}),
        ),
        (
            CustomMessage::text(to, "Hello World").as_agent("test1@kftest"),
            json!({
                "touser": to,
                "msgtype": "text",
                "text": {"content": "Hello World"},
                "customservice": {"kf_account": "test1@kftest"}
            }),
        ),
    ]
}

#[test]
fn every_message_type_serializes_to_the_json_wechat_documents_and_reads_back() {
    for (message, expected) in every_message_type() {
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            expected,
            "{}",
            message.msgtype()
        );
        assert_eq!(
            expected["msgtype"],
            message.msgtype(),
            "msgtype() names the wire type"
        );
        let back: CustomMessage = serde_json::from_value(expected).unwrap();
        assert_eq!(back, message);
    }
}

#[test]
fn every_passive_reply_with_a_counterpart_becomes_that_customer_service_message() {
    let to = FAKE_OPENID;
    let cases = [
        (
            Reply::text("hi"),
            json!({"touser": to, "msgtype": "text", "text": {"content": "hi"}}),
        ),
        (
            Reply::Image {
                media_id: "m1".into(),
            },
            json!({"touser": to, "msgtype": "image", "image": {"media_id": "m1"}}),
        ),
        (
            Reply::Voice {
                media_id: "m2".into(),
            },
            json!({"touser": to, "msgtype": "voice", "voice": {"media_id": "m2"}}),
        ),
        (
            Reply::Video {
                media_id: "m3".into(),
                title: "T".into(),
                description: "D".into(),
            },
            json!({"touser": to, "msgtype": "video", "video": {"media_id": "m3", "title": "T", "description": "D"}}),
        ),
        (
            Reply::Music(reply::Music {
                title: "T".into(),
                description: "D".into(),
                music_url: "https://m".into(),
                hq_music_url: "https://hq".into(),
                thumb_media_id: "th".into(),
            }),
            json!({"touser": to, "msgtype": "music", "music": {
                "title": "T", "description": "D", "musicurl": "https://m",
                "hqmusicurl": "https://hq", "thumb_media_id": "th"
            }}),
        ),
        (
            Reply::News(
                reply::News::new(vec![reply::Article {
                    title: "T".into(),
                    description: "D".into(),
                    pic_url: "https://p".into(),
                    url: "https://u".into(),
                }])
                .unwrap(),
            ),
            json!({"touser": to, "msgtype": "news", "news": {"articles": [
                {"title": "T", "description": "D", "url": "https://u", "picurl": "https://p"}
            ]}}),
        ),
    ];
    for (reply, expected) in cases {
        let message = CustomMessage::from_reply(to, &reply).unwrap();
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            expected,
            "{}",
            reply.msg_type()
        );
    }
    assert_eq!(
        CustomMessage::from_reply(to, &Reply::Success),
        Err(FromReplyError::NothingToSend)
    );
    assert_eq!(
        CustomMessage::from_reply(to, &Reply::TransferCustomerService { kf_account: None }),
        Err(FromReplyError::TransferToAgents)
    );
}

#[tokio::test]
async fn every_message_type_is_delivered_once_with_its_documented_body() {
    let s = setup().await;
    let cases = every_message_type();
    for (message, _) in &cases {
        assert_eq!(s.cs.send(message).await, SendOutcome::Sent, "{message:?}");
    }
    let delivered = s.delivered();
    assert_eq!(delivered.len(), cases.len(), "each message delivered once");
    for (call, (message, expected)) in delivered.iter().zip(&cases) {
        assert_eq!(&call.body, expected);
        assert_eq!(call.touser.as_deref(), Some(FAKE_OPENID));
        assert_eq!(call.msgtype.as_deref(), Some(message.msgtype()));
    }
    assert_eq!(s.sends(), cases.len() as u64);
    assert_eq!(s.token_fetches(), 1, "one token for every send");
}

#[tokio::test]
async fn a_user_silent_for_48_hours_is_window_closed_and_nothing_is_retried() {
    let s = setup().await;
    lock(&s.fake.state().custom).close_window(FAKE_OPENID);
    let outcome = s.cs.send(&CustomMessage::text(FAKE_OPENID, "late")).await;
    assert_eq!(outcome, SendOutcome::WindowClosed);
    assert_eq!(outcome.code(), "window_closed");
    assert!(outcome.is_failure());
    assert_eq!((s.sends(), s.delivered().len()), (1, 0));
    assert_eq!(s.source.stale_reports(), 0);
}

#[tokio::test]
async fn messages_past_the_per_user_allowance_are_too_many_messages() {
    let s = setup().await;
    lock(&s.fake.state().custom).limit_per_user = Some(2);
    let message = CustomMessage::text(FAKE_OPENID, "n");
    assert_eq!(s.cs.send(&message).await, SendOutcome::Sent);
    assert_eq!(s.cs.send(&message).await, SendOutcome::Sent);
    assert_eq!(s.cs.send(&message).await, SendOutcome::TooManyMessages);
    assert_eq!((s.sends(), s.delivered().len()), (3, 2));
    // WeChat's own 45047 reads the same.
    s.fake.script(PATH, Scripted::ErrCode(45047));
    let other = CustomMessage::text("oLVPpjqs9BhvzwPj5A-vTYAX3GLc", "n");
    assert_eq!(s.cs.send(&other).await, SendOutcome::TooManyMessages);
    assert_eq!(s.sends(), 4, "not retried");
}

#[tokio::test]
async fn a_malformed_or_foreign_openid_is_invalid_openid() {
    let s = setup().await;
    let outcome = s.cs.send(&CustomMessage::text("not an openid!", "x")).await;
    assert_eq!(outcome, SendOutcome::InvalidOpenid);
    s.fake.script(PATH, Scripted::ErrCode(40003));
    let outcome = s.cs.send(&CustomMessage::text(FAKE_OPENID, "x")).await;
    assert_eq!(outcome, SendOutcome::InvalidOpenid);
    assert_eq!((s.sends(), s.delivered().len()), (2, 0));
}

#[tokio::test]
async fn wechat_busy_twice_then_accepting_delivers_the_message_once_on_the_third_call() {
    let s = setup().await;
    s.fake.script(PATH, Scripted::ErrCode(-1));
    s.fake.script(PATH, Scripted::ErrCode(-1));
    let outcome = s.cs.send(&CustomMessage::text(FAKE_OPENID, "x")).await;
    assert_eq!(outcome, SendOutcome::Sent);
    assert_eq!(s.sends(), 3);
    assert_eq!(s.delivered().len(), 1);
    assert_eq!(s.source.stale_reports(), 0);
}

#[tokio::test]
async fn wechat_busy_through_every_attempt_stops_after_three_calls() {
    let s = setup().await;
    for _ in 0..4 {
        s.fake.script(PATH, Scripted::ErrCode(-1));
    }
    let outcome = s.cs.send(&CustomMessage::text(FAKE_OPENID, "x")).await;
    assert_eq!(
        outcome,
        SendOutcome::WeChatBusy {
            errcode: -1,
            attempts: 3
        }
    );
    assert_eq!(outcome.code(), "wechat_busy");
    assert_eq!((s.sends(), s.delivered().len()), (3, 0));
}

#[tokio::test]
async fn a_rejected_token_causes_exactly_one_refresh_and_one_resend() {
    let s = setup().await;
    let old = s.tokens.current().await.unwrap();
    assert_eq!(s.token_fetches(), 1);
    // Some other system force-refreshed: the token the client holds no longer works.
    lock(&s.fake.state().token).revoke_all();
    let outcome = s.cs.send(&CustomMessage::text(FAKE_OPENID, "x")).await;
    assert_eq!(outcome, SendOutcome::Sent);
    assert_eq!(s.sends(), 2, "the rejected send and one resend");
    assert_eq!(s.token_fetches(), 2, "exactly one refresh");
    assert_eq!(s.source.stale_reports(), 1);
    let calls = lock(&s.fake.state().custom).calls().to_vec();
    assert_eq!(
        calls.iter().map(|c| c.errcode).collect::<Vec<_>>(),
        [40001, 0]
    );
    assert_eq!(s.delivered().len(), 1);
    let new = s.tokens.current().await.unwrap();
    assert_ne!(new.value, old.value);
    assert!(accepted(&s.fake, &new));
}

#[tokio::test]
async fn a_token_wechat_calls_expired_is_refreshed_once_and_the_message_resent() {
    let s = setup().await;
    s.tokens.current().await.unwrap();
    // The cached token still looks usable, but WeChat says it expired.
    s.fake.script(PATH, Scripted::ErrCode(42001));
    let outcome = s.cs.send(&CustomMessage::text(FAKE_OPENID, "x")).await;
    assert_eq!(outcome, SendOutcome::Sent);
    assert_eq!((s.sends(), s.source.stale_reports()), (2, 1));
    assert_eq!(s.delivered().len(), 1);
}

#[tokio::test]
async fn a_second_token_rejection_after_the_resend_is_rejected_without_looping() {
    let s = setup().await;
    for _ in 0..3 {
        s.fake.script(PATH, Scripted::ErrCode(40001));
    }
    let outcome = s.cs.send(&CustomMessage::text(FAKE_OPENID, "x")).await;
    assert!(
        matches!(outcome, SendOutcome::Rejected { errcode: 40001, .. }),
        "{outcome:?}"
    );
    assert_eq!(s.sends(), 2);
    assert_eq!(s.source.stale_reports(), 1);
    assert_eq!(s.token_fetches(), 2, "one refresh only");
    assert!(s.delivered().is_empty());
}

#[tokio::test]
async fn a_timeout_or_an_http_error_is_wechat_unavailable_and_not_resent() {
    let s = setup().await;
    s.fake
        .script(PATH, Scripted::Hang(Duration::from_millis(1500)));
    let outcome = s.cs.send(&CustomMessage::text(FAKE_OPENID, "x")).await;
    assert_eq!(outcome, SendOutcome::WeChatUnavailable(ApiError::Timeout));
    assert_eq!(
        s.sends(),
        1,
        "a timed-out message may have arrived: no resend"
    );

    s.fake.script(PATH, Scripted::HttpStatus(502));
    let outcome = s.cs.send(&CustomMessage::text(FAKE_OPENID, "x")).await;
    assert_eq!(
        outcome,
        SendOutcome::WeChatUnavailable(ApiError::HttpStatus(502))
    );
    s.fake.script(PATH, Scripted::Malformed);
    let outcome = s.cs.send(&CustomMessage::text(FAKE_OPENID, "x")).await;
    assert!(matches!(
        outcome,
        SendOutcome::WeChatUnavailable(ApiError::Malformed(_))
    ));
    assert_eq!(outcome.code(), "wechat_unavailable");
    assert_eq!(s.sends(), 3, "none of them resent");
}

#[tokio::test]
async fn no_token_means_nothing_is_sent() {
    let s = setup().await;
    s.fake.script(STABLE, Scripted::ErrCode(40013));
    let outcome = s.cs.send(&CustomMessage::text(FAKE_OPENID, "x")).await;
    assert!(
        matches!(outcome, SendOutcome::TokenUnavailable { .. }),
        "{outcome:?}"
    );
    assert_eq!(outcome.code(), "token_unavailable");
    assert_eq!(s.sends(), 0);
}

#[tokio::test]
async fn other_refusals_are_rejected_with_their_errcode() {
    let s = setup().await;
    let outcome = s.cs.send(&CustomMessage::image(FAKE_OPENID, " ")).await;
    assert_eq!(
        outcome,
        SendOutcome::Rejected {
            errcode: 40007,
            errmsg: "invalid media_id".into()
        }
    );
    assert!(outcome.to_string().contains("40007"));
    assert_eq!((s.sends(), s.source.stale_reports()), (1, 0));
}

#[tokio::test]
async fn the_fake_answers_malformed_bodies_as_wechat_does() {
    let s = setup().await;
    let token = s.tokens.current().await.unwrap();
    let client = reqwest::Client::new();
    let url = format!(
        "{}{PATH}?access_token={}",
        s.fake.base_url(),
        token.value.expose()
    );
    let errcode = |body: String| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let answer: Value = client
                .post(url)
                .body(body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["errcode"].as_i64().unwrap()
        }
    };
    let to = FAKE_OPENID;
    let cases = [
        (String::new(), 44002),
        ("not json".into(), 47001),
        (json!({"msgtype": "text", "text": {"content": "x"}}).to_string(), 40003),
        (json!({"touser": to, "text": {"content": "x"}}).to_string(), 40008),
        (json!({"touser": to, "msgtype": "fax"}).to_string(), 40008),
        (json!({"touser": to, "msgtype": "text"}).to_string(), 47001),
        (json!({"touser": to, "msgtype": "text", "text": {"content": ""}}).to_string(), 44004),
        (json!({"touser": to, "msgtype": "news", "news": {"articles": []}}).to_string(), 44003),
        (
            json!({"touser": to, "msgtype": "news", "news": {"articles": [{"title": "a"}, {"title": "b"}]}})
                .to_string(),
            45008,
        ),
        (json!({"touser": to, "msgtype": "msgmenu", "msgmenu": {"list": []}}).to_string(), 47001),
    ];
    for (body, expected) in cases {
        assert_eq!(errcode(body.clone()).await, expected, "{body}");
    }
    // The access_token is checked first: missing, unknown, expired.
    let text = json!({"touser": to, "msgtype": "text", "text": {"content": "x"}}).to_string();
    let post = |query: String| {
        let client = client.clone();
        let (url, body) = (format!("{}{PATH}{query}", s.fake.base_url()), text.clone());
        async move {
            let answer: Value = client
                .post(url)
                .body(body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["errcode"].as_i64().unwrap()
        }
    };
    assert_eq!(post(String::new()).await, 41001);
    assert_eq!(post("?access_token=forged".into()).await, 40001);
    s.clock.set_ms(token.expires_at_ms);
    assert_eq!(
        post(format!("?access_token={}", token.value.expose())).await,
        42001
    );
    let refused = lock(&s.fake.state().custom).calls().len();
    assert_eq!(refused, 13, "refused calls are recorded too");
    assert!(s.delivered().is_empty());
}

#[tokio::test]
async fn logs_name_the_outcome_and_a_fingerprint_never_the_token_the_openid_or_the_content() {
    let (logs, _guard) = Logs::capture_at(tracing::Level::INFO);

    let s = setup().await;
    let token = s.tokens.current().await.unwrap();
    lock(&s.fake.state().token).revoke_all();
    let secret_words = "my order number is 4711";
    assert_eq!(
        s.cs.send(&CustomMessage::text(FAKE_OPENID, secret_words))
            .await,
        SendOutcome::Sent
    );
    let fresh = s.tokens.current().await.unwrap();
    lock(&s.fake.state().custom).close_window(FAKE_OPENID);
    s.cs.send(&CustomMessage::text(FAKE_OPENID, secret_words))
        .await;

    let logs = logs.text();
    assert!(
        logs.contains("outcome=\"sent\"") || logs.contains("outcome=sent"),
        "{logs}"
    );
    assert!(logs.contains("window_closed"), "{logs}");
    assert!(
        logs.contains(&wechat_protocol::secret::fingerprint(FAKE_OPENID)),
        "{logs}"
    );
    for secret in [
        token.value.expose().as_str(),
        fresh.value.expose().as_str(),
        FAKE_OPENID,
        secret_words,
    ] {
        assert!(!logs.contains(secret), "{secret} was logged:\n{logs}");
    }
}

/// The forward worker's late channel: answers of every kind reach the user as their
/// customer-service message, and WeChat's refusals come back under the outcome's code.
#[tokio::test]
async fn as_the_late_channel_answers_go_out_as_customer_service_messages() {
    use account::forward::{Answer, LateDelivery, LateSender};
    let s = setup().await;
    let menu = MsgMenu {
        head_content: "Pick one".into(),
        list: vec![MsgMenuItem {
            id: "101".into(),
            content: "Yes".into(),
        }],
        tail_content: String::new(),
    };
    for answer in [
        Answer::Reply(Reply::text("late hello")),
        Answer::MpNews {
            media_id: "MEDIA".into(),
        },
        Answer::MsgMenu(menu),
    ] {
        assert_eq!(
            LateSender::send(&s.cs, FAKE_OPENID, &answer).await,
            LateDelivery::Sent
        );
    }
    let types: Vec<String> = s
        .delivered()
        .iter()
        .filter_map(|call| call.msgtype.clone())
        .collect();
    assert_eq!(types, ["text", "mpnews", "msgmenu"]);

    let nothing = LateSender::send(&s.cs, FAKE_OPENID, &Answer::Reply(Reply::Success)).await;
    assert!(matches!(
        nothing,
        LateDelivery::Rejected {
            code: "not_sendable",
            ..
        }
    ));
    lock(&s.fake.state().custom).close_window(FAKE_OPENID);
    let closed = LateSender::send(&s.cs, FAKE_OPENID, &Answer::Reply(Reply::text("x"))).await;
    assert!(matches!(
        closed,
        LateDelivery::Rejected {
            code: "window_closed",
            ..
        }
    ));
    assert_eq!(s.delivered().len(), 3, "nothing more was delivered");
}

/// The typing status goes to `/cgi-bin/message/custom/typing` with the token; it is not a
/// message, and WeChat's refusal comes back as the outcome.
#[tokio::test]
async fn typing_is_shown_with_the_token_and_a_refusal_is_an_outcome() {
    use account::forward::{LateDelivery, LateSender};
    use testkit::fake_wechat::custom::TYPING_PATH;
    let s = setup().await;
    assert_eq!(s.cs.typing(FAKE_OPENID).await, SendOutcome::Sent);
    assert_eq!(
        LateSender::typing(&s.cs, FAKE_OPENID).await,
        LateDelivery::Sent
    );
    let calls = lock(&s.fake.state().custom).typing_calls().to_vec();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].body,
        json!({"touser": FAKE_OPENID, "command": "Typing"})
    );
    assert!(s.delivered().is_empty(), "typing is not a message");
    assert_eq!(s.fake.calls(TYPING_PATH), 2);

    lock(&s.fake.state().custom).close_window(FAKE_OPENID);
    assert!(matches!(
        s.cs.typing(FAKE_OPENID).await,
        SendOutcome::Rejected { errcode: 45080, .. }
    ));
    assert_eq!(s.token_fetches(), 1, "one token for all three");
}

/// What the worker does next depends on what a late send's failure means: refused for good,
/// worth another try, or perhaps delivered.
#[tokio::test]
async fn as_the_late_channel_failures_say_whether_the_message_may_have_arrived() {
    use account::forward::{Answer, LateDelivery, LateSender};
    let s = setup().await;
    let answer = Answer::Reply(Reply::text("x"));
    for _ in 0..3 {
        s.fake.script(PATH, Scripted::ErrCode(-1));
    }
    assert!(matches!(
        LateSender::send(&s.cs, FAKE_OPENID, &answer).await,
        LateDelivery::Unavailable { .. }
    ));
    s.fake.script(PATH, Scripted::HttpStatus(502));
    assert!(matches!(
        LateSender::send(&s.cs, FAKE_OPENID, &answer).await,
        LateDelivery::Uncertain { .. }
    ));
    let too_long = Answer::Reply(Reply::text("中".repeat(683)));
    let LateDelivery::Rejected { code, reason } =
        LateSender::send(&s.cs, FAKE_OPENID, &too_long).await
    else {
        panic!("a text over 2048 bytes is refused");
    };
    assert_eq!(code, "rejected");
    assert!(reason.contains("45002"), "{reason}");
    assert!(s.delivered().is_empty());
}

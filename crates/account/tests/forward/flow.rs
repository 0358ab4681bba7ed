//! The forward flow end to end on dynalite, a scripted service on loopback and a recording late
//! sender: passive in time, late past the budget, WeChat's retries (sequential and concurrent, on
//! separate instances) processed once, garbage answered with nothing, and the `msg#` item's
//! transitions on both adapters. Run under `node scripts/with-dynalite.mjs`.

use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::harness::Logs;

use crate::support::*;
use account::clock;
use account::forward::circuit::CircuitLog;
use account::forward::record::{Claim, ClaimOf};
use account::forward::{
    Answer, ForwardingRules, HttpForwarder, InProcessLauncher, LambdaLauncher, LateCall,
    LateDelivery, MessageLog, MessageOutcome, MessageSide, MsgRecord, MsgState,
    RecordingLateSender, Worker, WorkerLauncher, dedup_key,
};
use account::rules::ForwardSpec;
use account::rules::Rules;
use table::dynamo::DynamoTable;
use table::embedded::EmbeddedStore;
use table::{Table, Transition};
use wechat_protocol::message::Message;
use wechat_protocol::reply::{MessageHandler, Reply};

type Launcher = InProcessLauncher<DynamoTable, HttpForwarder, RecordingLateSender>;
type Handler = ForwardingRules<DynamoTable, Launcher>;

/// One message-function instance: its own DynamoDB client, its own in-process worker.
async fn instance(
    service: &ScriptedService,
    timeout_ms: u64,
    sender: &RecordingLateSender,
) -> Handler {
    let rules = format!(
        "[default]\ntype = \"forward\"\nurl = \"{}\"\ntimeout_ms = {timeout_ms}\n\
         [[rules]]\nkeyword = \"static\"\nreply = {{ type = \"text\", content = \"static answer\" }}\n",
        service.url
    );
    instance_with(&rules, sender).await
}

/// [`instance`] with these reply rules.
async fn instance_with(rules: &str, sender: &RecordingLateSender) -> Handler {
    let rules = Rules::from_toml(rules).unwrap();
    assert!(rules.has_forward());
    let forwarder = HttpForwarder::new(secret(), Duration::from_secs(20), clock::system()).unwrap();
    let worker = Worker::new(
        testkit::harness::dynalite_table().await,
        forwarder,
        sender.clone(),
        &rules,
    );
    let launcher = InProcessLauncher::new(Arc::new(worker));
    let side = MessageSide::new(
        testkit::harness::dynalite_table().await,
        launcher,
        clock::system(),
    );
    ForwardingRules::new(rules, Some(side))
}

fn key(msg: &Message) -> String {
    account::forward::dedup_key(msg)
}

#[tokio::test]
async fn a_fast_service_answers_passively_and_nothing_goes_out_late() {
    let service = ScriptedService::start().await;
    let sender = RecordingLateSender::new();
    let handler = instance(&service, 3500, &sender).await;
    let msg = fresh_text("hi");
    assert_eq!(
        handler.reply(&msg).await,
        Reply::text("hello from the service")
    );
    assert_eq!(service.calls(), 1);
    assert_eq!(
        settled_state(&key(&msg)).await,
        Some(MsgState::Answered(Answer::Reply(Reply::text(
            "hello from the service"
        ))))
    );
    assert!(sender.sent().is_empty());
}

#[tokio::test]
async fn static_rules_beside_a_forward_answer_without_calling_the_service() {
    let service = ScriptedService::start().await;
    let sender = RecordingLateSender::new();
    let handler = instance(&service, 3500, &sender).await;
    let msg = fresh_text("static");
    assert_eq!(handler.reply(&msg).await, Reply::text("static answer"));
    assert_eq!(service.calls(), 0);
    assert_eq!(
        testkit::harness::dynalite_table()
            .await
            .state(&key(&msg))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_slow_service_gets_success_now_and_exactly_one_late_send() {
    let service = ScriptedService::start().await;
    service.answer(600, 200, r#"{"type":"text","content":"slow answer"}"#);
    let sender = RecordingLateSender::new();
    let handler = instance(&service, 300, &sender).await;
    let msg = fresh_text("slow");
    assert_eq!(handler.reply(&msg).await, Reply::Success);
    assert_eq!(settled_state(&key(&msg)).await, Some(MsgState::Sent));
    assert_eq!(
        sender.sent(),
        vec![(
            msg.from_user_name.clone(),
            Answer::Reply(Reply::text("slow answer"))
        )]
    );
    assert_eq!(service.calls(), 1);
}

#[tokio::test]
async fn with_the_default_budget_a_6_s_service_is_answered_in_time_and_sent_late_once() {
    let service = ScriptedService::start().await;
    service.answer(6000, 200, r#"{"type":"text","content":"six seconds"}"#);
    let sender = RecordingLateSender::new();
    let handler = instance(&service, account::rules::DEFAULT_TIMEOUT_MS, &sender).await;
    let msg = fresh_text("slow");
    let started = Instant::now();
    assert_eq!(handler.reply(&msg).await, Reply::Success);
    // WeChat's limit is 5 s; the budget is 3.5 s (the margin absorbs a busy machine).
    assert!(
        started.elapsed() < Duration::from_millis(4900),
        "{:?}",
        started.elapsed()
    );
    assert!(sender.sent().is_empty());
    assert_eq!(settled_state(&key(&msg)).await, Some(MsgState::Sent));
    assert_eq!(sender.sent().len(), 1);
    assert_eq!(service.calls(), 1);
}

#[tokio::test]
async fn a_late_only_answer_in_time_still_goes_out_late() {
    let service = ScriptedService::start().await;
    service.answer(0, 200, r#"{"type":"mpnews","media_id":"MEDIA"}"#);
    let sender = RecordingLateSender::new();
    let handler = instance(&service, 3500, &sender).await;
    let msg = fresh_text("news please");
    assert_eq!(handler.reply(&msg).await, Reply::Success);
    assert_eq!(settled_state(&key(&msg)).await, Some(MsgState::Sent));
    assert_eq!(
        sender.sent()[0].1,
        Answer::MpNews {
            media_id: "MEDIA".into()
        }
    );
}

#[tokio::test]
async fn wechats_three_retries_in_sequence_on_separate_instances_call_once_and_answer_once() {
    // Fast: the first instance answers passively, the retries get the same reply.
    let service = ScriptedService::start().await;
    let sender = RecordingLateSender::new();
    let msg = fresh_text("retry");
    let mut replies = Vec::new();
    for _ in 0..4 {
        let handler = instance(&service, 3500, &sender).await;
        replies.push(handler.reply(&msg).await);
    }
    assert!(
        replies
            .iter()
            .all(|r| *r == Reply::text("hello from the service")),
        "{replies:?}"
    );
    assert_eq!(service.calls(), 1);
    assert!(sender.sent().is_empty());

    // Slow: the first instance gives up waiting, a retry while the worker works answers
    // success, and the answer goes out late once.
    service.answer(900, 200, r#"{"type":"text","content":"late once"}"#);
    let msg = fresh_text("retry slow");
    let mut replies = Vec::new();
    for _ in 0..4 {
        let handler = instance(&service, 200, &sender).await;
        replies.push(handler.reply(&msg).await);
    }
    assert!(replies.iter().all(|r| *r == Reply::Success), "{replies:?}");
    assert_eq!(settled_state(&key(&msg)).await, Some(MsgState::Sent));
    assert_eq!(service.calls(), 2);
    assert_eq!(sender.sent().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wechats_retries_at_once_on_separate_instances_call_once_and_answer_once() {
    let service = ScriptedService::start().await;
    service.answer(200, 200, r#"{"type":"text","content":"one answer"}"#);
    let sender = RecordingLateSender::new();
    let msg = fresh_text("concurrent");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let handler = instance(&service, 3500, &sender).await;
        let msg = msg.clone();
        tasks.push(tokio::spawn(async move { handler.reply(&msg).await }));
    }
    let mut passive = 0;
    for task in tasks {
        match task.await.unwrap() {
            Reply::Success => {}
            reply => {
                assert_eq!(reply, Reply::text("one answer"));
                passive += 1;
            }
        }
    }
    let state = settled_state(&key(&msg)).await;
    let late = sender.sent().len();
    assert_eq!(service.calls(), 1);
    // One answer: passive (to the first and any retry after it) or late, never both.
    match state {
        Some(MsgState::Answered(_)) => assert!(passive >= 1 && late == 0, "{passive} {late}"),
        Some(MsgState::Sent) => assert!(passive == 0 && late == 1, "{passive} {late}"),
        other => panic!("unexpected state {other:?}"),
    }
}

#[tokio::test]
async fn a_service_answering_garbage_gets_nothing_sent_and_a_clear_log() {
    let (logs, _guard) = Logs::capture();
    let service = ScriptedService::start().await;
    service.answer(0, 200, "<html>oops</html>");
    let sender = RecordingLateSender::new();
    let handler = instance(&service, 3500, &sender).await;
    let msg = fresh_text("garbage");
    assert_eq!(handler.reply(&msg).await, Reply::Success);
    let Some(MsgState::Failed { reason }) = settled_state(&key(&msg)).await else {
        panic!("the item records the failure");
    };
    assert!(reason.contains("not JSON"), "{reason}");
    // Slow garbage: the failure comes after the budget, and still nothing is sent.
    service.answer(500, 500, "upstream down");
    let slow = instance(&service, 200, &sender).await;
    let msg = fresh_text("garbage late");
    assert_eq!(slow.reply(&msg).await, Reply::Success);
    assert!(matches!(
        settled_state(&key(&msg)).await,
        Some(MsgState::Failed { .. })
    ));
    assert!(sender.sent().is_empty());
    let text = logs
        .text_once_it_has(&["forward service failed; nothing sent", "HTTP 500"])
        .await;
    assert!(
        text.contains("forward service failed; nothing sent") && text.contains("not_json"),
        "{text}"
    );
    assert!(text.contains("HTTP 500"), "{text}");
    assert!(!text.contains("oops"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
}

#[tokio::test]
async fn the_forward_secret_is_never_logged_along_the_whole_flow() {
    let (logs, _guard) = Logs::capture();
    let service = ScriptedService::start().await;
    let sender = RecordingLateSender::new();
    let handler = instance(&service, 3500, &sender).await;
    handler.reply(&fresh_text("hi")).await;
    service.answer(400, 200, r#"{"type":"text","content":"late"}"#);
    let slow = instance(&service, 100, &sender).await;
    let msg = fresh_text("late");
    slow.reply(&msg).await;
    settled_state(&key(&msg)).await;
    let config = account::forward::ForwardConfig::from_env(&[(
        account::config::vars::WECHAT_FORWARD_SECRET,
        SECRET,
    )])
    .unwrap();
    tracing::info!(?config, "config");
    let text = logs
        .text_once_it_has(&["forward answered", "forward done"])
        .await;
    assert!(
        text.contains("forward answered") && text.contains("forward done"),
        "{text}"
    );
    assert!(!text.contains(SECRET), "{text}");
}

#[tokio::test]
async fn a_late_send_wechat_refuses_is_recorded_and_not_retried() {
    let service = ScriptedService::start().await;
    service.answer(500, 200, r#"{"type":"text","content":"too late"}"#);
    let sender = RecordingLateSender::new();
    sender.answer_with(LateDelivery::Rejected {
        code: "window_closed",
        reason: "45015: the 48-hour window has passed".into(),
    });
    let handler = instance(&service, 100, &sender).await;
    let msg = fresh_text("late refused");
    assert_eq!(handler.reply(&msg).await, Reply::Success);
    let Some(MsgState::Failed { reason }) = settled_state(&key(&msg)).await else {
        panic!("the refusal is recorded");
    };
    assert!(reason.contains("45015"), "{reason}");
    assert_eq!(sender.sent().len(), 1);
}

#[tokio::test]
async fn a_worker_that_cannot_start_leaves_nothing_pending_and_answers_success() {
    struct Broken;
    impl WorkerLauncher for Broken {
        async fn launch(
            &self,
            _job: account::forward::ForwardJob,
        ) -> Result<(), account::forward::LaunchError> {
            Err(account::forward::LaunchError("throttled".into()))
        }
    }
    let side = MessageSide::new(
        testkit::harness::dynalite_table().await,
        Broken,
        clock::system(),
    );
    let spec = ForwardSpec {
        url: "http://127.0.0.1:9/x".into(),
        timeout_ms: 3500,
    };
    let msg = fresh_text("x");
    let outcome = side.handle(&msg, &spec).await;
    assert!(
        matches!(outcome, MessageOutcome::LaunchFailed(_)),
        "{outcome:?}"
    );
    assert_eq!(outcome.reply(), Reply::Success);
    assert!(matches!(
        testkit::harness::dynalite_table()
            .await
            .state(&key(&msg))
            .await
            .unwrap(),
        Some(MsgState::Failed { .. })
    ));
}

#[tokio::test]
async fn the_lambda_launcher_invokes_the_worker_asynchronously_with_the_job() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let (endpoint, _task) =
        testkit::local_server::spawn_on_loopback(move |req: lambda_http::Request| {
            let record = record.clone();
            async move {
                let invocation_type = req
                    .headers()
                    .get("x-amz-invocation-type")
                    .map(|v| v.to_str().unwrap_or_default().to_string());
                record.lock().unwrap().push((
                    req.uri().path().to_string(),
                    invocation_type,
                    String::from_utf8_lossy(req.body().as_ref()).into_owned(),
                ));
                let mut response = lambda_http::Response::new(lambda_http::Body::Empty);
                *response.status_mut() = http::StatusCode::ACCEPTED;
                response
            }
        })
        .await;
    let aws = account::aws::sdk_config().await;
    let launcher = LambdaLauncher::new(
        account::aws::lambda_client(&aws, Some(&endpoint)),
        "worker-fn",
    );
    let msg = fresh_text("lambda");
    let job = account::forward::ForwardJob {
        key: key(&msg),
        spec: ForwardSpec {
            url: "https://bot.example.com".into(),
            timeout_ms: 3500,
        },
        request: account::forward::ForwardRequest::new(&msg),
    };
    launcher.launch(job.clone()).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (path, invocation_type, body) = &seen[0];
    assert!(path.contains("/functions/worker-fn/invocations"), "{path}");
    assert_eq!(invocation_type.as_deref(), Some("Event"));
    let sent: account::forward::ForwardJob = serde_json::from_str(body).unwrap();
    assert_eq!(sent, job);
}

/// The `msg#` item's transitions mean the same on both adapters.
async fn the_message_log_moves_one_way<T: Table>(table: &T, prefix: &str) {
    use Transition::{Applied, Lost};
    let now = 1_800_000_000;
    let key = |n: u8| format!("{prefix}-{n}");
    let answer = Answer::Reply(Reply::text("hi"));

    // Claimed once; in time the worker's answer wins and giving up loses.
    assert_eq!(
        table.claim(&key(1), claim(now)).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(table.claim(&key(1), claim(now)).await.unwrap(), Claim::Seen);
    assert_eq!(table.state(&key(1)).await.unwrap(), Some(MsgState::Pending));
    assert_eq!(table.answer(&key(1), &answer).await.unwrap(), Applied);
    assert_eq!(table.give_up_waiting(&key(1)).await.unwrap(), Lost);
    assert_eq!(table.start_sending(&key(1), &answer).await.unwrap(), Lost);
    assert_eq!(
        table.state(&key(1)).await.unwrap(),
        Some(MsgState::Answered(answer.clone()))
    );

    // Out of time: late wins, the passive answer loses, one sender gets to send.
    table.claim(&key(2), claim(now)).await.unwrap();
    assert_eq!(table.give_up_waiting(&key(2)).await.unwrap(), Applied);
    assert_eq!(table.answer(&key(2), &answer).await.unwrap(), Lost);
    assert_eq!(
        table.start_sending(&key(2), &answer).await.unwrap(),
        Applied
    );
    assert_eq!(table.start_sending(&key(2), &answer).await.unwrap(), Lost);
    assert_eq!(table.sent(&key(2)).await.unwrap(), Applied);
    assert_eq!(table.fail(&key(2), "late").await.unwrap(), Lost);
    assert_eq!(table.state(&key(2)).await.unwrap(), Some(MsgState::Sent));

    // Failure and no answer are final; nothing moves an absent item.
    table.claim(&key(3), claim(now)).await.unwrap();
    assert_eq!(table.fail(&key(3), "HTTP 500").await.unwrap(), Applied);
    assert_eq!(table.no_answer(&key(3)).await.unwrap(), Lost);
    assert_eq!(
        table.state(&key(3)).await.unwrap(),
        Some(MsgState::Failed {
            reason: "HTTP 500".into()
        })
    );
    table.claim(&key(4), claim(now)).await.unwrap();
    assert_eq!(table.no_answer(&key(4)).await.unwrap(), Applied);
    assert_eq!(
        table.state(&key(4)).await.unwrap(),
        Some(MsgState::NoAnswer)
    );
    assert_eq!(table.answer(&key(5), &answer).await.unwrap(), Lost);
    assert_eq!(table.state(&key(5)).await.unwrap(), None);

    // An expired item lingering (TTL deletion is lazy) is claimed anew.
    let ttl_passed = now + LIFE_S;
    assert_eq!(
        table.claim(&key(1), claim(ttl_passed - 1)).await.unwrap(),
        Claim::Seen
    );
    assert_eq!(
        table.claim(&key(1), claim(ttl_passed)).await.unwrap(),
        Claim::Claimed
    );
    let record = table.get::<MsgRecord>(&key(1)).await.unwrap().unwrap();
    assert_eq!(record.expires_at_s, ttl_passed + LIFE_S);
}

/// How long the items of these tests live: the default replay window's.
const LIFE_S: i64 = 660;

/// A claim by the message side for user `o` at `now_s`.
fn claim(now_s: i64) -> ClaimOf<'static> {
    ClaimOf {
        openid: "o",
        request_sha256: "0f0f",
        now_s,
        life_s: LIFE_S,
    }
}

testkit::on_both_adapters!(the_message_log_moves_one_way {
    dynamodb: the_message_log_on_dynamodb("m"),
    embedded: the_message_log_on_the_embedded_store("m"),
});

#[tokio::test]
async fn both_adapters_store_the_same_msg_item() {
    let table = testkit::harness::dynalite_table().await;
    let store = EmbeddedStore::in_memory();
    let id = testkit::harness::unique("same");
    let answer = Answer::MsgMenu(account::customer_service::MsgMenu {
        head_content: "Rate us".into(),
        list: vec![account::customer_service::MsgMenuItem {
            id: "1".into(),
            content: "good".into(),
        }],
        tail_content: String::new(),
    });
    table.claim(&id, claim(1_800_000_000)).await.unwrap();
    store.claim(&id, claim(1_800_000_000)).await.unwrap();
    table.start_sending(&id, &answer).await.unwrap();
    store.start_sending(&id, &answer).await.unwrap();
    let pk = format!("msg#{id}");
    let dynamo = table
        .client
        .get_item()
        .table_name(&table.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let embedded: std::collections::HashMap<_, _> =
        serde_dynamo::to_item(store.item_json(&pk).unwrap().unwrap()).unwrap();
    assert_eq!(dynamo, embedded);
    let mut names: Vec<_> = dynamo.keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "answer",
            "created_at_s",
            "expires_at_s",
            "openid",
            "pk",
            "request_sha256",
            "status",
            "ttl"
        ]
    );
    assert!(matches!(
        dynamo["answer"],
        aws_sdk_dynamodb::types::AttributeValue::M(_)
    ));
    assert_eq!(table.state(&id).await.unwrap(), Some(MsgState::Sending));
    assert_eq!(
        table.get::<MsgRecord>(&id).await.unwrap().unwrap().answer,
        Some(answer)
    );
}

/// A worker over the embedded store whose rules forward to `service`, and a push claimed for it
/// as the message side claims one: the job the message side would start.
async fn claimed_job(
    service: &ScriptedService,
    sender: &RecordingLateSender,
) -> (
    Worker<EmbeddedStore, HttpForwarder, RecordingLateSender>,
    EmbeddedStore,
    account::forward::ForwardJob,
) {
    let rules = Rules::from_toml(&format!(
        "[default]\ntype = \"forward\"\nurl = \"{}\"\ntimeout_ms = 0\n",
        service.url
    ))
    .unwrap();
    let store = EmbeddedStore::in_memory();
    let forwarder = HttpForwarder::new(secret(), Duration::from_secs(5), clock::system()).unwrap();
    let worker = Worker::new(store.clone(), forwarder, sender.clone(), &rules);
    let request = account::forward::ForwardRequest::new(&text("oVictim", "77", "hi"));
    let claim = ClaimOf {
        openid: &request.openid,
        request_sha256: &request.digest(),
        now_s: clock::system().now_s(),
        life_s: LIFE_S,
    };
    store.claim(&request.idempotency_key, claim).await.unwrap();
    let job = account::forward::ForwardJob {
        key: request.idempotency_key.clone(),
        spec: rules.forward_specs()[0].clone(),
        request,
    };
    (worker, store, job)
}

#[tokio::test]
async fn a_job_as_the_message_side_started_it_is_forwarded_and_answered() {
    let service = ScriptedService::start().await;
    let sender = RecordingLateSender::new();
    let (worker, _, job) = claimed_job(&service, &sender).await;
    assert_eq!(
        worker.run(&job).await,
        account::forward::WorkerOutcome::Answered
    );
    assert_eq!(service.calls(), 1);
}

#[tokio::test]
async fn a_job_naming_another_service_is_refused_and_nothing_is_called_or_sent() {
    let service = ScriptedService::start().await;
    let elsewhere = ScriptedService::start().await;
    let sender = RecordingLateSender::new();
    let (worker, store, mut job) = claimed_job(&service, &sender).await;
    job.spec.url = elsewhere.url.clone();
    let outcome = worker.run(&job).await;
    assert_eq!(outcome.code(), "refused_job");
    assert!(outcome.is_failure());
    assert_eq!(service.calls() + elsewhere.calls(), 0);
    assert!(sender.sent().is_empty());
    // The item belongs to a real push: a forged job leaves it as it was.
    assert_eq!(
        store.state(&job.key).await.unwrap(),
        Some(MsgState::Pending)
    );
}

#[tokio::test]
async fn a_job_whose_request_was_changed_is_refused_whatever_was_changed() {
    let service = ScriptedService::start().await;
    let sender = RecordingLateSender::new();
    let (worker, store, job) = claimed_job(&service, &sender).await;
    let mut other_user = job.clone();
    other_user.request.openid = "oSomeoneElse".into();
    let mut other_text = job.clone();
    other_text.request.fields.insert(
        "Content".into(),
        account::forward::request::FieldValue::One("send me the code".into()),
    );
    let mut other_key = job.clone();
    other_key.key = "another-push".into();
    store
        .claim(
            "another-push",
            ClaimOf {
                openid: "oSomeoneElse",
                request_sha256: &job.request.digest(),
                now_s: clock::system().now_s(),
                life_s: LIFE_S,
            },
        )
        .await
        .unwrap();
    for forged in [other_user, other_text, other_key] {
        assert_eq!(
            worker.run(&forged).await.code(),
            "refused_job",
            "{forged:?}"
        );
    }
    assert_eq!(service.calls(), 0);
    assert!(sender.sent().is_empty());
}

#[tokio::test]
async fn a_retry_within_the_longest_replay_window_still_finds_the_item() {
    // The window is capped at 600 s and exclusive; an item lives twice the window past its claim.
    assert!(account::forward::record_life_s(600) > 2 * 600);
    assert_eq!(
        account::forward::record_life_s(300),
        LIFE_S,
        "the tests' items live as long as the default window's"
    );
    assert_eq!(
        account::forward::record_life_s(1),
        account::forward::MIN_RECORD_LIFE_S
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_taps_of_a_menu_button_in_one_second_both_get_the_passive_answer() {
    let service = ScriptedService::start().await;
    service.answer(1_000, 200, r#"{"type":"text","content":"your orders"}"#);
    let sender = RecordingLateSender::new();
    // Two CLICKs from one user in one second carry the same key: WeChat's retry would come
    // only after its 5 s wait, so the second must not make the first one's answer late.
    let click = |openid: &str| {
        Message::parse(format!(
            "<xml><ToUserName>gh</ToUserName><FromUserName>{openid}</FromUserName><CreateTime>1700000000</CreateTime><MsgType>event</MsgType><Event>CLICK</Event><EventKey>ORDERS</EventKey></xml>"
        ).as_bytes()).unwrap()
    };
    let tap = click(&testkit::harness::unique("o"));
    let rules = format!(
        "[[rules]]\nevent = \"CLICK\"\nevent_key = \"ORDERS\"\n\
         reply = {{ type = \"forward\", url = \"{}\", timeout_ms = 3500 }}\n",
        service.url
    );
    let first = {
        let handler = instance_with(&rules, &sender).await;
        let tap = tap.clone();
        tokio::spawn(async move { handler.reply(&tap).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = instance_with(&rules, &sender).await.reply(&tap).await;
    assert_eq!(first.await.unwrap(), Reply::text("your orders"));
    assert_eq!(second, Reply::text("your orders"));
    assert_eq!(service.calls(), 1);
    assert!(sender.sent().is_empty(), "nothing goes late");
}

/// The message side's table with faults: "give up waiting" fails its first `fail_give_ups`
/// times, and once one has failed, reads fail too while `reads_fail` is set.
#[derive(Clone)]
struct Faulty {
    inner: EmbeddedStore,
    fail_give_ups: Arc<std::sync::atomic::AtomicU32>,
    reads_fail: bool,
    failed: Arc<std::sync::atomic::AtomicBool>,
}

impl Faulty {
    fn new(inner: &EmbeddedStore, fail_give_ups: u32, reads_fail: bool) -> Self {
        Self {
            inner: inner.clone(),
            fail_give_ups: Arc::new(fail_give_ups.into()),
            reads_fail,
            failed: Arc::default(),
        }
    }

    fn down() -> table::StoreError {
        table::StoreError::Unavailable("injected: the table timed out".into())
    }
}

impl MessageLog for Faulty {
    async fn claim(&self, key: &str, claim: ClaimOf<'_>) -> Result<Claim, table::StoreError> {
        self.inner.claim(key, claim).await
    }
    async fn record(&self, key: &str) -> Result<Option<MsgRecord>, table::StoreError> {
        self.inner.record(key).await
    }
    async fn state(&self, key: &str) -> Result<Option<MsgState>, table::StoreError> {
        if self.reads_fail && self.failed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Self::down());
        }
        self.inner.state(key).await
    }
    async fn answer(&self, key: &str, answer: &Answer) -> Result<Transition, table::StoreError> {
        self.inner.answer(key, answer).await
    }
    async fn give_up_waiting(&self, key: &str) -> Result<Transition, table::StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let left = self.fail_give_ups.load(SeqCst);
        if left > 0 {
            self.fail_give_ups.store(left - 1, SeqCst);
            self.failed.store(true, SeqCst);
            return Err(Self::down());
        }
        self.inner.give_up_waiting(key).await
    }
    async fn start_sending(
        &self,
        key: &str,
        answer: &Answer,
    ) -> Result<Transition, table::StoreError> {
        self.inner.start_sending(key, answer).await
    }
    async fn sent(&self, key: &str) -> Result<Transition, table::StoreError> {
        self.inner.sent(key).await
    }
    async fn fail(&self, key: &str, reason: &str) -> Result<Transition, table::StoreError> {
        self.inner.fail(key, reason).await
    }
    async fn no_answer(&self, key: &str) -> Result<Transition, table::StoreError> {
        self.inner.no_answer(key).await
    }
}

impl CircuitLog for Faulty {
    async fn is_open(&self, url: &str, now_s: i64) -> Result<bool, table::StoreError> {
        self.inner.is_open(url, now_s).await
    }
    async fn timed_out(&self, url: &str, now_s: i64) -> Result<bool, table::StoreError> {
        self.inner.timed_out(url, now_s).await
    }
    async fn answered(&self, url: &str, now_s: i64) -> Result<(), table::StoreError> {
        self.inner.answered(url, now_s).await
    }
}

/// A service a test expects never to be called.
struct NeverCalled;

impl account::forward::Forwarder for NeverCalled {
    async fn forward(
        &self,
        _url: &str,
        _request: &account::forward::ForwardRequest,
    ) -> Result<Option<Answer>, account::forward::ForwardError> {
        panic!("the service was called through an open circuit")
    }
}

/// An in-process service that answers `text` after `delay` (on tokio's clock).
struct SlowService {
    delay: Duration,
    text: &'static str,
}

impl account::forward::Forwarder for SlowService {
    async fn forward(
        &self,
        _url: &str,
        _request: &account::forward::ForwardRequest,
    ) -> Result<Option<Answer>, account::forward::ForwardError> {
        tokio::time::sleep(self.delay).await;
        Ok(Some(Answer::Reply(Reply::text(self.text))))
    }
}

/// The message side over `log`, its worker over the healthy `store`, and a rule with a 100 ms
/// budget to an in-process service answering after 1 s.
fn faulty_side(
    log: Faulty,
    store: &EmbeddedStore,
    sender: &RecordingLateSender,
    clock: account::clock::SharedClock,
) -> (
    MessageSide<Faulty, InProcessLauncher<EmbeddedStore, SlowService, RecordingLateSender>>,
    ForwardSpec,
) {
    let spec = ForwardSpec {
        url: "https://service.example/wechat".into(),
        timeout_ms: 100,
    };
    let rules = Rules::from_toml(
        "[default]\ntype = \"forward\"\nurl = \"https://service.example/wechat\"\ntimeout_ms = 100\n",
    )
    .unwrap();
    let service = SlowService {
        delay: Duration::from_secs(1),
        text: "worth the wait",
    };
    let worker = Worker::new(store.clone(), service, sender.clone(), &rules);
    let launcher = InProcessLauncher::new(Arc::new(worker));
    (MessageSide::new(log, launcher, clock), spec)
}

#[tokio::test(start_paused = true)]
async fn a_give_up_write_that_fails_once_is_retried_and_the_answer_goes_late_once() {
    let store = EmbeddedStore::in_memory();
    let sender = RecordingLateSender::new();
    let (side, spec) = faulty_side(
        Faulty::new(&store, 1, false),
        &store,
        &sender,
        clock::system(),
    );
    let msg = text("oUser", "9001", "hi");
    assert_eq!(side.handle(&msg, &spec).await, MessageOutcome::Late);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sender.sent().len(), 1, "sent late, once");
    let key = account::forward::dedup_key(&msg);
    assert_eq!(store.state(&key).await.unwrap(), Some(MsgState::Sent));
}

#[tokio::test(start_paused = true)]
async fn when_the_give_up_outcome_stays_unknown_the_reply_is_held_until_wechat_retries() {
    let store = EmbeddedStore::in_memory();
    let sender = RecordingLateSender::new();
    let wall = Arc::new(account::clock::ManualClock::at_ms(1_800_000_000_000));
    let (side, spec) = faulty_side(
        Faulty::new(&store, u32::MAX, true),
        &store,
        &sender,
        wall.clone(),
    );
    let msg = text("oUser", "9002", "hi");
    let started = tokio::time::Instant::now();
    let outcome = side.handle(&msg, &spec).await;
    assert_eq!(outcome.code(), "unresolved");
    // No answer within WeChat's 5 s: WeChat drops the connection and retries.
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The worker stored its answer as passive meanwhile; WeChat's retry (the table healthy
    // again) is answered with it: one delivery, and nothing late.
    wall.advance_ms(5_000);
    let (retry, spec) = faulty_side(Faulty::new(&store, 0, false), &store, &sender, wall);
    assert_eq!(
        retry.handle(&msg, &spec).await,
        MessageOutcome::RetryAnswered(Reply::text("worth the wait"))
    );
    assert!(sender.sent().is_empty());
}

/// A table that takes 30 s to answer anything.
struct Slow(EmbeddedStore);

impl Slow {
    async fn after<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        tokio::time::sleep(Duration::from_secs(30)).await;
        call.await
    }
}

impl MessageLog for Slow {
    async fn claim(&self, key: &str, claim: ClaimOf<'_>) -> Result<Claim, table::StoreError> {
        self.after(self.0.claim(key, claim)).await
    }
    async fn record(&self, key: &str) -> Result<Option<MsgRecord>, table::StoreError> {
        self.after(self.0.record(key)).await
    }
    async fn state(&self, key: &str) -> Result<Option<MsgState>, table::StoreError> {
        self.after(self.0.state(key)).await
    }
    async fn answer(&self, key: &str, answer: &Answer) -> Result<Transition, table::StoreError> {
        self.after(self.0.answer(key, answer)).await
    }
    async fn give_up_waiting(&self, key: &str) -> Result<Transition, table::StoreError> {
        self.after(self.0.give_up_waiting(key)).await
    }
    async fn start_sending(
        &self,
        key: &str,
        answer: &Answer,
    ) -> Result<Transition, table::StoreError> {
        self.after(self.0.start_sending(key, answer)).await
    }
    async fn sent(&self, key: &str) -> Result<Transition, table::StoreError> {
        self.after(self.0.sent(key)).await
    }
    async fn fail(&self, key: &str, reason: &str) -> Result<Transition, table::StoreError> {
        self.after(self.0.fail(key, reason)).await
    }
    async fn no_answer(&self, key: &str) -> Result<Transition, table::StoreError> {
        self.after(self.0.no_answer(key)).await
    }
}

impl CircuitLog for Slow {
    async fn is_open(&self, url: &str, now_s: i64) -> Result<bool, table::StoreError> {
        self.after(self.0.is_open(url, now_s)).await
    }
    async fn timed_out(&self, url: &str, now_s: i64) -> Result<bool, table::StoreError> {
        self.after(self.0.timed_out(url, now_s)).await
    }
    async fn answered(&self, url: &str, now_s: i64) -> Result<(), table::StoreError> {
        self.after(self.0.answered(url, now_s)).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_table_slower_than_wechats_wait_still_gets_wechat_an_answer_in_time() {
    let store = EmbeddedStore::in_memory();
    let sender = RecordingLateSender::new();
    let rules = Rules::from_toml(
        "[default]\ntype = \"forward\"\nurl = \"https://service.example/wechat\"\ntimeout_ms = 3500\n",
    )
    .unwrap();
    let service = SlowService {
        delay: Duration::from_millis(10),
        text: "never seen",
    };
    let worker = Worker::new(store.clone(), service, sender.clone(), &rules);
    let side = MessageSide::new(
        Slow(store),
        InProcessLauncher::new(Arc::new(worker)),
        clock::system(),
    );
    let spec = rules.forward_specs()[0].clone();
    let started = tokio::time::Instant::now();
    let outcome = side.handle(&text("oUser", "9003", "hi"), &spec).await;
    assert_eq!(outcome.code(), "store_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_service_that_keeps_timing_out_is_given_a_pause_and_users_the_fallback() {
    let service = ScriptedService::start().await;
    let sender = RecordingLateSender::new();
    let store = EmbeddedStore::in_memory();
    let rules = Rules::from_toml(&format!(
        "[default]\ntype = \"forward\"\nurl = \"{}\"\ntimeout_ms = 0\n",
        service.url
    ))
    .unwrap();
    // The worker waits 300 ms for the service, which takes 2 s: every call times out.
    service.answer(2_000, 200, r#"{"type":"text","content":"too late"}"#);
    let forwarder =
        HttpForwarder::new(secret(), Duration::from_millis(300), clock::system()).unwrap();
    let worker = Arc::new(Worker::new(
        store.clone(),
        forwarder,
        sender.clone(),
        &rules,
    ));
    let side = MessageSide::new(
        store.clone(),
        InProcessLauncher::new(worker),
        clock::system(),
    )
    .with_circuit_reply(Reply::text("busy, try again in a minute"));
    let spec = rules.forward_specs()[0].clone();
    for n in 0..account::forward::circuit::TRIP_AFTER {
        let msg = text("oUser", &format!("77{n}"), "hi");
        assert_eq!(side.handle(&msg, &spec).await, MessageOutcome::Late);
        let key = account::forward::dedup_key(&msg);
        for _ in 0..50 {
            if matches!(
                store.state(&key).await.unwrap(),
                Some(MsgState::Failed { .. })
            ) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let calls = service.calls();
    assert_eq!(calls, account::forward::circuit::TRIP_AFTER as usize);
    // Open: the next push (on a container that has not read the circuit yet; one that has
    // trusts its read for a few seconds) gets the fallback at once, and no worker calls the
    // service.
    let worker = Worker::new(store.clone(), NeverCalled, sender.clone(), &rules);
    let fresh = MessageSide::new(
        store.clone(),
        InProcessLauncher::new(Arc::new(worker)),
        clock::system(),
    )
    .with_circuit_reply(Reply::text("busy, try again in a minute"));
    let msg = text("oUser", "7799", "hi");
    assert_eq!(
        fresh.handle(&msg, &spec).await,
        MessageOutcome::CircuitOpen(Reply::text("busy, try again in a minute"))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(service.calls(), calls);
    assert!(sender.sent().is_empty());
}

#[tokio::test]
async fn a_message_sender_sees_typing_before_the_late_answer_and_an_event_sender_does_not() {
    let service = ScriptedService::start().await;
    service.answer(
        1_200,
        200,
        r#"{"type":"text","content":"after some thought"}"#,
    );
    let sender = RecordingLateSender::new();
    let handler = instance(&service, 100, &sender).await;
    let msg = fresh_text("think");
    assert_eq!(handler.reply(&msg).await, Reply::Success);
    assert_eq!(settled_state(&key(&msg)).await, Some(MsgState::Sent));
    let openid = msg.from_user_name.clone();
    assert_eq!(
        sender.calls(),
        [
            LateCall::Typing(openid.clone()),
            LateCall::Send(openid, Answer::Reply(Reply::text("after some thought"))),
        ]
    );

    // After a click WeChat shows no typing status: the answer alone.
    let sender = RecordingLateSender::new();
    let rules = format!(
        "[[rules]]\nevent = \"CLICK\"\nevent_key = \"THINK\"\n\
         reply = {{ type = \"forward\", url = \"{}\", timeout_ms = 100 }}\n",
        service.url
    );
    let handler = instance_with(&rules, &sender).await;
    let tap = click(&testkit::harness::unique("o"), "THINK", 0);
    assert_eq!(handler.reply(&tap).await, Reply::Success);
    assert_eq!(settled_state(&key(&tap)).await, Some(MsgState::Sent));
    assert!(
        matches!(sender.calls().as_slice(), [LateCall::Send(..)]),
        "{:?}",
        sender.calls()
    );
}

/// The worker's table with a fault: the first `start_sending` is applied, and then reported as
/// failed (a timeout after DynamoDB wrote it).
#[derive(Clone)]
struct AppliedButFailed {
    inner: EmbeddedStore,
    failures_left: Arc<std::sync::atomic::AtomicU32>,
}

impl CircuitLog for AppliedButFailed {
    async fn is_open(&self, url: &str, now_s: i64) -> Result<bool, table::StoreError> {
        self.inner.is_open(url, now_s).await
    }
    async fn timed_out(&self, url: &str, now_s: i64) -> Result<bool, table::StoreError> {
        self.inner.timed_out(url, now_s).await
    }
    async fn answered(&self, url: &str, now_s: i64) -> Result<(), table::StoreError> {
        self.inner.answered(url, now_s).await
    }
}

impl MessageLog for AppliedButFailed {
    async fn claim(&self, key: &str, claim: ClaimOf<'_>) -> Result<Claim, table::StoreError> {
        self.inner.claim(key, claim).await
    }
    async fn record(&self, key: &str) -> Result<Option<MsgRecord>, table::StoreError> {
        self.inner.record(key).await
    }
    async fn state(&self, key: &str) -> Result<Option<MsgState>, table::StoreError> {
        self.inner.state(key).await
    }
    async fn answer(&self, key: &str, answer: &Answer) -> Result<Transition, table::StoreError> {
        self.inner.answer(key, answer).await
    }
    async fn give_up_waiting(&self, key: &str) -> Result<Transition, table::StoreError> {
        self.inner.give_up_waiting(key).await
    }
    async fn start_sending(
        &self,
        key: &str,
        answer: &Answer,
    ) -> Result<Transition, table::StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let written = self.inner.start_sending(key, answer).await;
        if self.failures_left.load(SeqCst) > 0 {
            self.failures_left.fetch_sub(1, SeqCst);
            return Err(table::StoreError::Unavailable(
                "injected: timed out after the write".into(),
            ));
        }
        written
    }
    async fn sent(&self, key: &str) -> Result<Transition, table::StoreError> {
        self.inner.sent(key).await
    }
    async fn fail(&self, key: &str, reason: &str) -> Result<Transition, table::StoreError> {
        self.inner.fail(key, reason).await
    }
    async fn no_answer(&self, key: &str) -> Result<Transition, table::StoreError> {
        self.inner.no_answer(key).await
    }
}

#[tokio::test]
async fn a_store_fault_as_the_late_send_starts_does_not_drop_the_answer() {
    let service = ScriptedService::start().await;
    let sender = RecordingLateSender::new();
    let (_, store, job) = claimed_job(&service, &sender).await;
    let rules = Rules::from_toml(&format!(
        "[default]\ntype = \"forward\"\nurl = \"{}\"\ntimeout_ms = 0\n",
        service.url
    ))
    .unwrap();
    let table = AppliedButFailed {
        inner: store.clone(),
        failures_left: Arc::new(1.into()),
    };
    let forwarder = HttpForwarder::new(secret(), Duration::from_secs(5), clock::system()).unwrap();
    let worker = Worker::new(table, forwarder, sender.clone(), &rules);
    // The message side gave up waiting: the answer goes late.
    assert_eq!(
        store.give_up_waiting(&job.key).await.unwrap(),
        Transition::Applied
    );

    let outcome = worker.run(&job).await;
    assert_eq!(
        outcome,
        account::forward::WorkerOutcome::SentLate { parts: 1 }
    );
    assert_eq!(sender.sent().len(), 1, "sent once");
    assert_eq!(store.state(&job.key).await.unwrap(), Some(MsgState::Sent));
}

#[tokio::test(start_paused = true)]
async fn a_late_answer_wechat_cannot_take_is_recorded_with_why_the_worker_gave_up() {
    let store = EmbeddedStore::in_memory();
    let sender = RecordingLateSender::new();
    sender.answer_with(LateDelivery::Unavailable {
        reason: "not sent: WeChat stayed busy (errcode -1) through 3 attempts".into(),
    });
    let (side, spec) = faulty_side(
        Faulty::new(&store, 0, false),
        &store,
        &sender,
        clock::system(),
    );
    let msg = text("oUser", "9003", "hi");
    assert_eq!(side.handle(&msg, &spec).await, MessageOutcome::Late);
    // The worker's minute: it tries, pauses, tries again, and stops in time to record why.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let Some(MsgState::Failed { reason }) = store.state(&dedup_key(&msg)).await.unwrap() else {
        panic!("the item records the give-up");
    };
    assert!(reason.starts_with("out_of_time: "), "{reason}");
    assert!(
        reason.contains("last error: not sent: WeChat stayed busy"),
        "{reason}"
    );
    assert!(
        sender.sent().len() > 3,
        "sent again: {}",
        sender.sent().len()
    );
}

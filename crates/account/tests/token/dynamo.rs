//! The access_token service on DynamoDB (dynalite): the storage contract, real concurrency
//! (separate service instances, like separate Lambda containers, on a multi-thread runtime), the
//! dead lease holder, a virtual day, and the functions' token source that reads the table and
//! invokes the refresh function (against a fake Lambda Invoke endpoint on loopback); the same for
//! the jsapi_ticket.
//!
//! Run with `node scripts/with-dynalite.mjs cargo test -p shared --test token_dynamo`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use account::clock::SystemClock;
use account::jssdk::{Jssdk, JssdkConfig};
use account::token::TicketSource;
use account::token::store::{ConditionalWrite, TicketRecord, TokenStore};
use account::token::{
    Entry, LambdaError, LambdaTokenSource, RefreshFunction, RefreshOutcome,
    TICKET_FAILURE_MEMORY_MS, TokenClient, TokenConfig, TokenError, TokenService, TokenSource,
    handle_invocation_via,
};
use lambda_http::Request;
use table::dynamo::DynamoTable;
use testkit::fake_wechat::{FakeWeChat, Scripted, lock};
use testkit::harness::tokens::*;
use tokio::sync::Barrier;
use wechat_api::WeChatHttp;
use wechat_protocol::secret::Secret;

const REFRESHERS: usize = 50;

/// Settings for the concurrency tests: a lease far longer than a fetch, so only a dead holder
/// could ever let it run out.
fn concurrent_config(fake: &FakeWeChat) -> TokenConfig {
    config(
        fake,
        &[
            ("TOKEN_LEASE_MS", "10000"),
            ("TOKEN_LEASE_POLL_MS", "50"),
            // Fifty instances on a loaded machine: a fetch that times out would release the lease
            // without a token, which is another test's subject, not this one's.
            ("WECHAT_HTTP_TIMEOUT_MS", "5000"),
        ],
    )
}

/// Run `call` at once on `REFRESHERS` service instances over `table` (one per task: containers
/// sharing nothing but the table), on the multi-thread runtime, and collect what they return.
async fn on_many_instances<T, F, Fut>(fake: &FakeWeChat, table: &DynamoTable, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(TokenService<DynamoTable>) -> Fut,
    Fut: std::future::Future<Output = Result<T, TokenError>> + Send + 'static,
{
    let start = Arc::new(Barrier::new(REFRESHERS));
    let mut tasks = Vec::new();
    for _ in 0..REFRESHERS {
        let work = call(service(concurrent_config(fake), table.clone(), SystemClock));
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            work.await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }
    results
}

// The token store's contract on both adapters (the contracts are in `testkit::harness::tokens`).
testkit::on_both_adapters!(older_token_write_is_rejected {
    dynamodb: an_older_refresh_write_is_rejected_by_dynamodb("wx"),
    embedded: an_older_refresh_write_is_rejected_by_the_embedded_store("wx-embedded"),
});

testkit::on_both_adapters!(lease_is_exclusive_until_it_runs_out {
    dynamodb: the_dynamodb_lease_is_exclusive_until_it_runs_out("wx"),
    embedded: the_embedded_lease_is_exclusive_until_it_runs_out("wx-embedded"),
});

testkit::on_both_adapters!(quota_writes_are_compare_and_swap {
    dynamodb: dynamodb_quota_writes_are_compare_and_swap("wx"),
    embedded: embedded_quota_writes_are_compare_and_swap("wx-embedded"),
});

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_refreshers_on_an_empty_table_make_one_call_and_agree_on_the_token() {
    let table = testkit::harness::dynalite_table().await;
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    let reports = on_many_instances(&fake, &table, |service| async move {
        service.on_schedule().await
    })
    .await;
    assert_eq!(fake.calls(STABLE), 1);
    let token = reports[0].token.clone().expect("a token");
    assert!(reports.iter().all(|r| r.token.as_ref() == Some(&token)));
    let fresh = reports
        .iter()
        .filter(|r| r.outcome == RefreshOutcome::Fresh)
        .count();
    assert_eq!(fresh, 1);
    assert!(reports.iter().all(|r| matches!(
        r.outcome,
        RefreshOutcome::Fresh | RefreshOutcome::LostRaceUsedWinner | RefreshOutcome::AlreadyValid
    )));
    assert!(accepted(&fake, &token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_reports_of_the_same_stale_token_cause_one_fetch() {
    let table = testkit::harness::dynalite_table().await;
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    let stale = service(concurrent_config(&fake), table.clone(), SystemClock)
        .get()
        .await
        .unwrap();
    let reports = on_many_instances(&fake, &table, |service| {
        let stale = stale.value.expose().clone();
        async move { service.refresh_stale(&stale).await }
    })
    .await;
    assert_eq!(
        fake.calls(STABLE),
        2,
        "the first fetch and one forced refresh"
    );
    let fresh = reports[0].token.clone().expect("a token");
    assert_ne!(fresh.value, stale.value);
    assert!(reports.iter().all(|r| r.token.as_ref() == Some(&fresh)));
    let refreshed = reports
        .iter()
        .filter(|r| r.outcome == RefreshOutcome::Refreshed)
        .count();
    assert_eq!(refreshed, 1);
    assert!(reports.iter().all(|r| matches!(
        r.outcome,
        RefreshOutcome::Refreshed
            | RefreshOutcome::LostRaceUsedWinner
            | RefreshOutcome::AlreadyReplaced
    )));
    assert!(!accepted(&fake, &stale) && accepted(&fake, &fresh));
}

#[tokio::test]
async fn a_dead_lease_holder_in_dynamodb_is_taken_over_after_its_lease_and_never_before() {
    let table = testkit::harness::dynalite_table().await;
    let clock = manual_clock();
    let fake = fake_for(&testkit::harness::unique_app_id(), &clock).await;
    let service = service(
        config(&fake, &[("TOKEN_LEASE_MS", "300")]),
        table,
        clock.clone(),
    );
    dead_lease_holder_is_taken_over_only_after_its_lease(&service, &clock, &fake).await;
}

#[tokio::test]
async fn a_virtual_day_on_the_schedule_over_dynamodb_never_serves_an_expired_token() {
    let table = testkit::harness::dynalite_table().await;
    let clock = manual_clock();
    let fake = fake_for(&testkit::harness::unique_app_id(), &clock).await;
    let service = service(config(&fake, &[]), table, clock.clone());
    simulate_a_day_on_the_schedule(&service, &clock, &fake, STABLE).await;
}

/// A fake Lambda Invoke endpoint (`POST /2015-03-31/functions/{name}/invocations`, the name
/// possibly with a `:qualifier`) that runs the refresh function's handler, as Lambda would,
/// through the entry the qualifier names, and counts invocations.
async fn fake_lambda(
    service: Arc<TokenService<DynamoTable>>,
    function_name: &str,
) -> (String, Arc<AtomicU64>) {
    let invocations = Arc::new(AtomicU64::new(0));
    let counted = invocations.clone();
    let prefix = format!("/2015-03-31/functions/{function_name}");
    let (url, _server) = testkit::local_server::spawn_on_loopback(move |req: Request| {
        let service = service.clone();
        let path = req.uri().path();
        let named = path.strip_prefix(&prefix).is_some_and(|rest| {
            rest == "/invocations" || rest.starts_with("%3A") || rest.starts_with(':')
        });
        let entry = Entry::of_invoke_request(path, req.uri().query())
            .filter(|_| named && req.method() == "POST");
        if entry.is_some() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        async move {
            let Some(entry) = entry else {
                return account::http::text(
                    lambda_http::http::StatusCode::NOT_FOUND,
                    "no such function",
                );
            };
            answer_invoke_request(&service, entry, &req).await
        }
    })
    .await;
    (url, invocations)
}

/// Lambda's answer to an invocation: the function's JSON, or its error with
/// `X-Amz-Function-Error` (the local server's emulation does the same, in the `wx` crate).
async fn answer_invoke_request(
    service: &TokenService<DynamoTable>,
    entry: Entry,
    req: &Request,
) -> lambda_http::Response<lambda_http::Body> {
    let event = serde_json::from_slice(req.body().as_ref()).unwrap_or_default();
    match handle_invocation_via(service, entry, event).await {
        Ok(answer) => account::http::json(lambda_http::http::StatusCode::OK, &answer),
        Err(e) => {
            let mut response =
                account::http::json(lambda_http::http::StatusCode::OK, &LambdaError::from(&e));
            response.headers_mut().insert(
                "x-amz-function-error",
                lambda_http::http::HeaderValue::from_static("Unhandled"),
            );
            response
        }
    }
}

/// A fresh table and fake WeChat API, the refresh function (configured with `extra`) behind a
/// fake Lambda Invoke endpoint, the functions' token source over the table invoking it, and the
/// invocation counter.
async fn behind_a_fake_lambda(
    extra: &[(&str, &str)],
) -> (FakeWeChat, LambdaTokenSource<DynamoTable>, Arc<AtomicU64>) {
    let table = testkit::harness::dynalite_table().await;
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    let app_id = fake.state().app_id.clone();
    let service = Arc::new(service(config(&fake, extra), table.clone(), SystemClock));
    let (endpoint, invocations) = fake_lambda(service, "wechat-refresh").await;
    let source = lambda_source(&table, &endpoint, app_id).await;
    (fake, source, invocations)
}

/// The functions' token source over `table`, invoking the refresh function at `endpoint`.
async fn lambda_source(
    table: &DynamoTable,
    endpoint: &str,
    app_id: String,
) -> LambdaTokenSource<DynamoTable> {
    lambda_source_of(
        table,
        endpoint,
        "wechat-refresh",
        app_id,
        account::clock::system(),
    )
    .await
}

/// [`lambda_source`] invoking `function` (a name with or without a qualifier), on `clock`.
async fn lambda_source_of(
    table: &DynamoTable,
    endpoint: &str,
    function: &str,
    app_id: String,
    clock: account::clock::SharedClock,
) -> LambdaTokenSource<DynamoTable> {
    let aws = account::aws::sdk_config().await;
    LambdaTokenSource::new(
        table.clone(),
        account::aws::lambda_client(&aws, Some(endpoint)),
        function,
        app_id,
        clock,
    )
}

#[tokio::test]
async fn the_functions_token_source_reads_the_table_and_invokes_the_refresh_function_only_when_needed()
 {
    let (fake, source, invocations) = behind_a_fake_lambda(&[]).await;

    // Nothing stored yet: the source asks the refresh function, which fetches.
    let first = source.current().await.unwrap();
    assert_eq!(invocations.load(Ordering::SeqCst), 1);
    assert!(accepted(&fake, &first));
    // Stored now: read straight from the table.
    assert_eq!(source.current().await.unwrap().value, first.value);
    assert_eq!(invocations.load(Ordering::SeqCst), 1);

    // A client whose call is rejected reports through the function and retries once.
    let client = TokenClient::new(source);
    lock(&fake.state().token).revoke_all();
    let http = WeChatHttp::new(fake.base_url(), std::time::Duration::from_secs(2)).unwrap();
    let answer: serde_json::Value = client
        .call_with_token(|token| {
            let http = http.clone();
            async move {
                http.get(
                    "/cgi-bin/get_api_domain_ip",
                    &[("access_token", token.expose().as_str())],
                )
                .await
            }
        })
        .await
        .unwrap();
    assert!(answer["ip_list"].is_array());
    assert_eq!(invocations.load(Ordering::SeqCst), 2);
    assert_eq!(fake.calls(STABLE), 2);
    assert_ne!(client.current().await.unwrap().value, first.value);
}

#[tokio::test]
async fn a_failing_refresh_function_is_reported_as_its_error_without_secrets() {
    let (_fake, source, invocations) =
        behind_a_fake_lambda(&[("WECHAT_APP_SECRET", "wrong-secret-value")]).await;
    let err = source.current().await.unwrap_err();
    assert_eq!(invocations.load(Ordering::SeqCst), 1);
    let text = err.to_string();
    assert!(matches!(err, TokenError::Remote(_)), "{err:?}");
    assert!(
        text.contains("NoUsableToken") && text.contains("40125"),
        "{text}"
    );
    assert!(!text.contains("wrong-secret-value"));
}

#[tokio::test]
async fn an_older_ticket_write_is_rejected_by_dynamodb() {
    let table = testkit::harness::dynalite_table().await;
    let app_id = testkit::harness::unique_app_id();
    let record = |ticket: &str, version| TicketRecord {
        jsapi_ticket: Secret::new(ticket.into()),
        expires_at_ms: T0_MS + 7_200_000,
        fetched_at_ms: T0_MS,
        version,
    };
    assert_eq!(table.read_ticket(&app_id).await.unwrap(), None);
    let write = |r, replacing| {
        let table = table.clone();
        let app_id = app_id.clone();
        async move { table.write_ticket(&app_id, &r, replacing).await.unwrap() }
    };
    assert_eq!(
        write(record("first", 1), None).await,
        ConditionalWrite::Written
    );
    assert_eq!(
        write(record("second", 2), Some(1)).await,
        ConditionalWrite::Written
    );
    // An older refresh that also read version 1 arrives late: rejected.
    assert_eq!(
        write(record("late", 2), Some(1)).await,
        ConditionalWrite::Superseded
    );
    assert_eq!(
        write(record("late", 1), None).await,
        ConditionalWrite::Superseded
    );
    let stored = table.read_ticket(&app_id).await.unwrap().unwrap();
    assert_eq!(stored.jsapi_ticket.expose(), "second");
    // The token item is another item.
    assert_eq!(table.read_token(&app_id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_first_ticket_requests_on_fifty_instances_make_one_ticket_and_one_token_fetch()
 {
    let table = testkit::harness::dynalite_table().await;
    let fake = fake_on_wall_clock(&testkit::harness::unique_app_id()).await;
    let tickets = on_many_instances(&fake, &table, |service| async move {
        service.jsapi_ticket().await
    })
    .await;
    assert_eq!(fake.calls(GETTICKET), 1);
    assert_eq!(fake.calls(STABLE), 1);
    assert!(tickets.iter().all(|t| t == &tickets[0]));
    assert!(fake.state().is_valid_ticket(tickets[0].value.expose()));
}

#[tokio::test]
async fn the_functions_ticket_source_reads_the_table_and_invokes_the_refresh_function_only_when_needed()
 {
    let (fake, source, invocations) = behind_a_fake_lambda(&[]).await;

    // Nothing stored yet: the source asks the refresh function, which fetches token and ticket.
    let first = source.jsapi_ticket().await.unwrap();
    assert_eq!(invocations.load(Ordering::SeqCst), 1);
    assert!(fake.state().is_valid_ticket(first.value.expose()));
    assert_eq!((fake.calls(STABLE), fake.calls(GETTICKET)), (1, 1));
    // Stored now: read straight from the table.
    // (The answer carried the expiry in seconds; the table has the milliseconds.)
    assert_eq!(source.jsapi_ticket().await.unwrap().value, first.value);
    assert_eq!(invocations.load(Ordering::SeqCst), 1);
    // A warm container's client reads nothing at all after its first call.
    let client = TokenClient::new(source);
    assert_eq!(client.jsapi_ticket().await.unwrap().value, first.value);
    assert_eq!(client.jsapi_ticket().await.unwrap().value, first.value);
    assert_eq!(invocations.load(Ordering::SeqCst), 1);
    assert_eq!(fake.calls(GETTICKET), 1);
}

/// The oauth function's whole path to a ticket, on a virtual clock: `/jssdk/config` through a
/// container's `TokenClient`, the table, and the refresh function's `ticket` alias (a fake Lambda
/// Invoke endpoint running the handler) on DynamoDB, while getticket fails.
struct TicketChain {
    fake: FakeWeChat,
    clock: account::clock::ManualClock,
    table: DynamoTable,
    endpoint: String,
    invocations: Arc<AtomicU64>,
}

impl TicketChain {
    async fn start() -> Self {
        let table = testkit::harness::dynalite_table().await;
        let clock = manual_clock();
        let fake = fake_for(&testkit::harness::unique_app_id(), &clock).await;
        let service = Arc::new(service(config(&fake, &[]), table.clone(), clock.clone()));
        let (endpoint, invocations) = fake_lambda(service, "wechat-refresh").await;
        Self {
            fake,
            clock,
            table,
            endpoint,
            invocations,
        }
    }

    /// The source of one container, invoking `function`.
    async fn source(&self, function: &str) -> LambdaTokenSource<DynamoTable> {
        let app_id = self.fake.state().app_id.clone();
        let clock: account::clock::SharedClock = Arc::new(self.clock.clone());
        lambda_source_of(&self.table, &self.endpoint, function, app_id, clock).await
    }

    /// The refresh function as invoked by `function` (a name with or without a qualifier).
    async fn function(&self, function: &str) -> RefreshFunction {
        let aws = account::aws::sdk_config().await;
        RefreshFunction::new(
            account::aws::lambda_client(&aws, Some(&self.endpoint)),
            function,
        )
    }

    /// One container's `/jssdk/config`, as the oauth function builds it.
    async fn container(&self) -> Jssdk<TokenClient<LambdaTokenSource<DynamoTable>>> {
        let source = self.source("wechat-refresh:ticket").await;
        let clock: account::clock::SharedClock = Arc::new(self.clock.clone());
        let config =
            JssdkConfig::from_env(&[("JSSDK_ALLOWED_ORIGINS", "https://shop.example")]).unwrap();
        let app_id = self.fake.state().app_id.clone();
        let client = TokenClient::with_clock(source, clock.clone());
        Jssdk::new(config, app_id, "", Some(client), clock)
    }

    fn invocations(&self) -> u64 {
        self.invocations.load(Ordering::SeqCst)
    }
}

async fn sign(jssdk: &Jssdk<TokenClient<LambdaTokenSource<DynamoTable>>>) -> u16 {
    let request = lambda_http::http::Request::builder()
        .uri("/jssdk/config?url=https%3A%2F%2Fshop.example%2F")
        .body(lambda_http::Body::Empty)
        .unwrap();
    jssdk.handle(&request).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn anonymous_jssdk_requests_while_getticket_fails_make_one_wechat_call_per_memory_window() {
    let chain = TicketChain::start().await;
    for _ in 0..2 {
        chain.fake.script(GETTICKET, Scripted::HttpStatus(502));
    }
    let first = chain.container().await;
    for _ in 0..10 {
        assert_eq!(sign(&first).await, 503);
    }
    assert_eq!(
        chain.invocations(),
        1,
        "the container remembers the failure"
    );
    assert_eq!(chain.fake.calls(GETTICKET), 1);

    // Other containers each ask the refresh function once, which answers from its memory.
    for _ in 0..3 {
        let other = chain.container().await;
        for _ in 0..3 {
            assert_eq!(sign(&other).await, 503);
        }
    }
    assert_eq!(chain.invocations(), 4);
    assert_eq!(chain.fake.calls(GETTICKET), 1, "no WeChat call for them");

    // Once the memory lapses: one new attempt (failing again), then a ticket.
    chain.clock.advance_ms(TICKET_FAILURE_MEMORY_MS);
    for _ in 0..10 {
        assert_eq!(sign(&first).await, 503);
    }
    assert_eq!((chain.invocations(), chain.fake.calls(GETTICKET)), (5, 2));
    chain.clock.advance_ms(TICKET_FAILURE_MEMORY_MS);
    for _ in 0..10 {
        assert_eq!(sign(&first).await, 200);
    }
    assert_eq!((chain.invocations(), chain.fake.calls(GETTICKET)), (6, 3));
}

#[tokio::test]
async fn the_ticket_alias_hands_out_tickets_but_never_the_token() {
    let chain = TicketChain::start().await;
    let ticket_only = chain.function("wechat-refresh:ticket").await;
    let ticket = ticket_only.invoke_for_ticket().await.unwrap();
    assert!(chain.fake.state().is_valid_ticket(ticket.value.expose()));
    // The token it was fetched with is stored, but this entry does not hand it out.
    let token = chain
        .table
        .read_token(&chain.fake.state().app_id)
        .await
        .unwrap()
        .unwrap();
    for refused in [
        ticket_only.current().await.unwrap_err(),
        ticket_only.report_stale("any").await.unwrap_err(),
    ] {
        let text = refused.to_string();
        assert!(matches!(refused, TokenError::Remote(_)), "{refused:?}");
        assert!(text.contains("NotOnThisEntry"), "{text}");
        assert!(!text.contains(token.access_token.expose().as_str()));
    }
    assert_eq!(chain.invocations(), 3);
    // The function itself still answers the token.
    let full = chain.function("wechat-refresh").await;
    assert_eq!(full.current().await.unwrap().value, token.access_token);
}

//! Composition roots: what each deployment shape is built from, once per container (or per
//! `wx serve`), so that the functions' mains are wiring only and the local server assembles the
//! same parts.
//!
//! - [`cold_start`]: the one path every main takes: the log subscriber, then the build, and one
//!   `cold start failed` line naming the variable when it fails.
//! - One builder per Lambda function ([`verify`], [`message`], [`web`], [`worker`], [`refresh`],
//!   [`api`]),
//!   each reading its configuration from the process environment and the stack's secret.
//! - [`Web`]: the `oauth` function's routes (JS-SDK first, then web authorization), over any table
//!   and ticket source, so `wx serve` routes through the same type.

use std::future::Future;
use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use table::Table;
use table::dynamo::DynamoTable;
use wechat_api::ClientBuildError;

use crate::api::{Api, ApiConfig};
use crate::aws::{self, SecretsEnv};
use crate::clock;
use crate::config::vars::{
    SESSION_SECRET, TABLE_NAME, TEMPLATE_RECEIPTS, WECHAT_APP_SECRET, WECHAT_ENCODING_AES_KEY,
    WECHAT_FORWARD_SECRET, WECHAT_TOKEN,
};
use crate::config::{
    ConfigError, Env, ProcessEnv, WeChatApiConfig, flag_or, required, required_app_id,
};
use crate::customer_service::CustomerService;
use crate::forward;
use crate::forward::client::BuildError;
use crate::forward::{
    ForwardConfig, ForwardingRules, HttpForwarder, LambdaLauncher, MessageSide, Worker,
};
use crate::jssdk::{Jssdk, JssdkConfig};
use crate::notify::ReceiptRecorder;
use crate::oauth::{OAuth, OAuthConfig};
use crate::qrcode::{QrStatsConfig, SceneCounter};
use crate::rules::Rules;
use crate::token::{LambdaTokenSource, TicketSource, TokenClient, TokenConfig, TokenService};
use crate::webhook::{
    NoReplies, PREVIOUS_KEYS, PREVIOUS_TOKEN_KEYS, SecretKeys, Webhook, WebhookConfig,
};

/// Why a container could not start. Each is a configuration or client problem that a retry of
/// the cold start would meet again, so the main fails and Lambda reports it.
#[derive(Debug, thiserror::Error)]
pub enum ColdStartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the WeChat API client could not be built: {0}")]
    WeChatClient(#[from] ClientBuildError),
    #[error("the forward client could not be built: {0}")]
    ForwardClient(#[from] BuildError),
}

impl ColdStartError {
    /// The variable to fix, when the problem is one variable's value.
    pub fn variable(&self) -> Option<&'static str> {
        match self {
            Self::Config(err) => Some(err.variable),
            _ => None,
        }
    }
}

/// Every main's start: the log subscriber (JSON when `AWS_LAMBDA_LOG_FORMAT` says so), then
/// `build`; a failure is logged once, naming the variable, and returned for the runtime to report.
pub async fn cold_start<T>(
    build: impl Future<Output = Result<T, ColdStartError>>,
) -> Result<T, ColdStartError> {
    crate::telemetry::init();
    build.await.inspect_err(|err| match err.variable() {
        Some(variable) => tracing::error!(variable, error = %err, "cold start failed"),
        None => tracing::error!(error = %err, "cold start failed"),
    })
}

/// The `verify` function: the server-URL check needs the token (and the key for its mode),
/// never the reply rules or a client. From the stack's secret, the keys are read again to
/// follow a rotation.
pub async fn verify() -> Result<Webhook<NoReplies>, ColdStartError> {
    let env =
        SecretsEnv::load_with_optional(ProcessEnv, &[WECHAT_TOKEN], PREVIOUS_TOKEN_KEYS).await?;
    Ok(Webhook::new(WebhookConfig::from_env(&env)?, NoReplies)
        .with_key_source(SecretKeys::of(&env)))
}

/// The `message` function's replies: the rules, and with a forward rule the message side of the
/// flow (DynamoDB for the `msg#` item, Lambda for the worker); with `TEMPLATE_RECEIPTS=true`,
/// template-message receipts recorded first; with `QR_STATS`, scene events counted around them.
pub type MessageHandler = SceneCounter<
    ReceiptRecorder<ForwardingRules<DynamoTable, LambdaLauncher>, DynamoTable>,
    DynamoTable,
>;

/// The `message` function. Static rules make no AWS call; a forward rule builds the DynamoDB and
/// Lambda clients, and only then.
pub async fn message() -> Result<Webhook<MessageHandler>, ColdStartError> {
    let env = SecretsEnv::load_with_optional(
        ProcessEnv,
        &[WECHAT_TOKEN, WECHAT_ENCODING_AES_KEY],
        PREVIOUS_KEYS,
    )
    .await?;
    let config = WebhookConfig::from_env(&env)?;
    let rules = Rules::from_env(&env)?;
    let receipts = flag_or(&env, TEMPLATE_RECEIPTS, false)?;
    let qr_stats = QrStatsConfig::from_env(&env)?;
    // One SDK configuration and one DynamoDB client for whatever uses the table (forwarding,
    // receipts, QR counts), built once; none at all for static rules, whose cold start makes no
    // AWS call beyond the secret.
    let aws = match rules.has_forward() || receipts || qr_stats.is_some() {
        false => None,
        true => {
            let sdk = aws::sdk_config().await;
            let table = DynamoTable::new(aws::dynamodb_client(&sdk), required(&env, TABLE_NAME)?);
            Some((sdk, table))
        }
    };
    let forwarding = match (&aws, rules.has_forward()) {
        (Some((sdk, table)), true) => {
            forward::check_pushes_are_encrypted(&config)?;
            let launcher = LambdaLauncher::from_env(&env, aws::event_lambda_client(sdk))?;
            let side = MessageSide::new(table.clone(), launcher, clock::system())
                .with_replay_window(config.max_clock_skew_secs)
                .with_circuit_reply(forward::circuit_reply(&env)?);
            Some(side)
        }
        _ => None,
    };
    let handler = ForwardingRules::new(rules, forwarding);
    // Off, the recorder never touches the table.
    let handler = match (&aws, receipts) {
        (Some((_, table)), true) => {
            let app_id = required_app_id(&env)?;
            ReceiptRecorder::recording(handler, table.clone(), app_id, clock::system())
        }
        _ => ReceiptRecorder::off(handler),
    };
    let handler = match (aws, qr_stats) {
        (Some((_, table)), Some(stats)) => SceneCounter::on(handler, table, stats, clock::system()),
        _ => SceneCounter::off(handler),
    };
    Ok(Webhook::new(config, handler).with_key_source(SecretKeys::of(&env)))
}

/// The `oauth` function's routes: `/jssdk/config` and `/demo` first, web authorization for the
/// rest.
pub struct Web<T, S> {
    pub oauth: OAuth<T>,
    pub jssdk: Jssdk<S>,
}

impl<T: Table + Clone, S: TicketSource> Web<T, S> {
    /// Both over `table`, sharing one WeChat client and clock; `tickets` is used only when
    /// JS-SDK signing is on.
    pub fn new(
        config: OAuthConfig,
        jssdk: JssdkConfig,
        table: T,
        tickets: Option<S>,
        clock: clock::SharedClock,
    ) -> Result<Self, ColdStartError> {
        let http = config.wechat.client()?;
        let jssdk = Jssdk::new(
            jssdk,
            config.wechat.app_id.clone(),
            config.path_prefix.clone(),
            tickets,
            clock.clone(),
        );
        Ok(Self {
            oauth: OAuth::new(config, table, http, clock),
            jssdk,
        })
    }

    pub async fn handle(&self, req: &Request) -> Response<Body> {
        match self.jssdk.handle(req).await {
            Some(response) => response,
            None => self.oauth.handle(req).await,
        }
    }
}

/// Where the deployed `oauth` function gets jsapi_tickets: the table, and the refresh function
/// when none is stored; cached per container.
pub type LambdaTickets = TokenClient<LambdaTokenSource<DynamoTable>>;

/// The `oauth` function. The Lambda client is built only when `JSSDK_ALLOWED_ORIGINS` turns
/// signing on.
pub async fn web() -> Result<Web<DynamoTable, LambdaTickets>, ColdStartError> {
    let env = SecretsEnv::load(ProcessEnv, &[WECHAT_APP_SECRET, SESSION_SECRET]).await?;
    let (config, jssdk) = (OAuthConfig::from_env(&env)?, JssdkConfig::from_env(&env)?);
    let clock = clock::system();
    let sdk = aws::sdk_config().await;
    let table = DynamoTable::new(aws::dynamodb_client(&sdk), config.table_name.clone());
    let tickets = match jssdk.signing_enabled() {
        true => {
            let lambda = aws::lambda_client(&sdk, None);
            let source = LambdaTokenSource::from_env(&env, table.clone(), lambda, clock.clone())?;
            // A warm container asks nobody while its ticket is usable.
            Some(TokenClient::with_clock(source, clock.clone()))
        }
        false => None,
    };
    Web::new(config, jssdk, table, tickets, clock)
}

/// The deployed worker: DynamoDB for the `msg#` item, the signed HTTP client to the account's
/// service, and the customer-service API with tokens from the central service.
pub type LambdaWorker =
    Worker<DynamoTable, HttpForwarder, CustomerService<LambdaTokenSource<DynamoTable>>>;

/// The `worker` function.
pub async fn worker() -> Result<LambdaWorker, ColdStartError> {
    let env = SecretsEnv::load(ProcessEnv, &[WECHAT_FORWARD_SECRET]).await?;
    let forward = ForwardConfig::from_env(&env)?;
    // The message function's rules: their forward actions are the only services it calls.
    let rules = Rules::from_env(&env)?;
    let api = WeChatApiConfig::from_env(&env)?;
    let clock = clock::system();
    let (table, source) = central_tokens(&env, &clock).await?;
    let tokens = Arc::new(TokenClient::with_clock(source, clock.clone()));
    let late_channel = CustomerService::new(api.client()?, tokens);
    let forwarder = HttpForwarder::new(forward.secret, forward.late_timeout, clock)?;
    Ok(Worker::new(table, forwarder, late_channel, &rules))
}

/// The stack's table and the token from the central service over it, for the functions that call
/// WeChat without being the token service (worker, api): read from the table, refreshed by
/// invoking the refresh function.
async fn central_tokens(
    env: &impl Env,
    clock: &clock::SharedClock,
) -> Result<(DynamoTable, LambdaTokenSource<DynamoTable>), ColdStartError> {
    let sdk = aws::sdk_config().await;
    let table = DynamoTable::new(aws::dynamodb_client(&sdk), required(env, TABLE_NAME)?);
    let source = LambdaTokenSource::from_env(
        env,
        table.clone(),
        aws::lambda_client(&sdk, None),
        clock.clone(),
    )?;
    Ok((table, source))
}

/// The `refresh` function: the central token service on DynamoDB.
pub async fn refresh() -> Result<TokenService<DynamoTable>, ColdStartError> {
    let env = SecretsEnv::load(ProcessEnv, &[WECHAT_APP_SECRET]).await?;
    let config = TokenConfig::from_env(&env)?;
    let http = config.wechat.client()?;
    let sdk = aws::sdk_config().await;
    let table = DynamoTable::new(aws::dynamodb_client(&sdk), required(&env, TABLE_NAME)?);
    Ok(TokenService::new(config, table, http, clock::system()))
}

/// The deployed `api` function: tokens from the central service (the table, then the refresh
/// function), receipts in the same table.
pub type LambdaApi = Api<DynamoTable, LambdaTokenSource<DynamoTable>>;

/// The `api` function. It holds no secret: it reads plain variables only, with no Secrets
/// Manager call at cold start.
pub async fn api() -> Result<LambdaApi, ColdStartError> {
    let env = ProcessEnv;
    let config = ApiConfig::from_env(&env)?;
    let wechat = WeChatApiConfig::from_env(&env)?;
    let clock = clock::system();
    let (table, source) = central_tokens(&env, &clock).await?;
    // A warm container asks nobody for the token while it is usable.
    let tokens = TokenClient::with_clock(source, clock.clone());
    Ok(Api::new(config, table, wechat.client()?, tokens, clock))
}

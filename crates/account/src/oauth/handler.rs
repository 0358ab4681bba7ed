//! `OAuth<S>`: the HTTP side of web authorization, over `lambda_http::Request` so that Lambda,
//! the local server and tests run the same code.
//!
//! Routes (below the path of `PUBLIC_BASE_URL`):
//! - `GET /oauth/authorize?scope=&return_to=` → 302 to WeChat's consent page.
//! - `GET /oauth/callback?code=&state=` → 302 to `return_to` with a session cookie, or a page.
//! - `GET /oauth/me` → the signed-in user as JSON, or 401 JSON.
//! - `POST /oauth/logout` → 204, session and binding cookies cleared.
//! - `POST /oauth/logout?everywhere=1` → 204 after bumping the user's session epoch, which
//!   revokes every session of that user in every browser; same-origin requests only (CSRF).
//!
//! Callback order of operations: the state is read and its browser binding checked (nothing is
//! written for a foreign, forged or expired state); then it is consumed with a conditional write,
//! so exactly one callback exchanges the code. If WeChat fails before the code could be used
//! (timeout, HTTP error, `-1`, malformed answer) the state is released again, so reloading the
//! callback retries. Once the code is used the state stays consumed; the user item is written
//! only when everything it holds is known (tokens, and for `snsapi_userinfo` the profile), and
//! then the state is marked completed with the openid so a replayed callback from the same browser
//! re-issues the session instead of failing — for [`COMPLETED_REPLAY_GRACE_S`] only (WeChat's
//! browser sometimes calls twice); after that the completed state reads as gone and the callback
//! shows the "link expired" page, so Back to an old callback URL on a shared device signs no one in.
//!
//! Sessions carry the user's session epoch; `/oauth/me` and [`OAuth::session`] accept a session
//! only while it matches the stored epoch.

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;
use table::StoreError;
use wechat_api::{ApiError, WeChatHttp};
use wechat_protocol::origin::Origin;
use wechat_protocol::random::RandomUnavailable;
use wechat_protocol::secret::fingerprint;

use crate::clock::SharedClock;
use crate::http::{cookie, json, query, redirect, text};
use crate::oauth::binding::{
    binding_hash, binding_matches, is_well_formed_state, new_binding, new_state,
};
use crate::oauth::pages::Page;
use crate::oauth::return_to::{ReturnTo, ReturnToError};
use crate::oauth::session::{CookieSpec, Session, SessionCodec};
use crate::oauth::sns::{SnsClient, is_code_rejected};
use crate::oauth::state::{AuthState, StateStatus};
use crate::oauth::store::{OAuthStateStore, StateInsert, UserStore};
use crate::oauth::user::User;
use crate::oauth::users::{ProfileStatus, SignInError, UserDirectory};
use crate::oauth::{OAuthConfig, Scope};
use table::Transition;

/// How long a sign-in may take from the authorize redirect to the callback.
pub const STATE_TTL_S: i64 = 600;
/// How long a completed state may re-issue its session: the double-callback case, not a replay.
pub const COMPLETED_REPLAY_GRACE_S: i64 = 5;
/// A flow restarts by itself at most once after WeChat rejects its code.
const MAX_ATTEMPT: u8 = 2;

/// RFC 3986 unreserved characters stay; everything else in a query value is escaped.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Why a request to `/oauth/*` did not get the response it asked for. `status` is the one place
/// these map to HTTP; the route decides whether the body is a page, plain text or JSON.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("scope must be snsapi_base or snsapi_userinfo")]
    InvalidScope,
    #[error(transparent)]
    InvalidReturnTo(#[from] ReturnToError),
    #[error("state parameter is missing or malformed")]
    MalformedState,
    #[error("state is unknown or expired")]
    UnknownState,
    #[error("state was issued to another browser")]
    OtherBrowser,
    #[error("WeChat rejected the code after the automatic restart: {0}")]
    CodeRejected(ApiError),
    #[error("WeChat call failed: {0}")]
    WeChat(ApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
    #[error("a freshly generated state already exists")]
    StateCollision,
    #[error("not signed in: {0}")]
    NotSignedIn(&'static str),
    #[error("cross-origin request refused")]
    CrossOrigin,
}

impl From<SignInError> for OAuthError {
    fn from(err: SignInError) -> Self {
        match err {
            SignInError::WeChat(e) => OAuthError::WeChat(e),
            SignInError::Store(e) => OAuthError::Store(e),
        }
    }
}

impl OAuthError {
    pub fn status(&self) -> StatusCode {
        match self {
            OAuthError::InvalidScope
            | OAuthError::InvalidReturnTo(_)
            | OAuthError::MalformedState
            | OAuthError::UnknownState
            | OAuthError::CodeRejected(_) => StatusCode::BAD_REQUEST,
            OAuthError::OtherBrowser | OAuthError::CrossOrigin => StatusCode::FORBIDDEN,
            OAuthError::NotSignedIn(_) => StatusCode::UNAUTHORIZED,
            OAuthError::WeChat(ApiError::Timeout | ApiError::Transport(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            OAuthError::WeChat(_) => StatusCode::BAD_GATEWAY,
            OAuthError::Store(_) | OAuthError::Random(_) | OAuthError::StateCollision => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    fn page(&self) -> Page {
        match self {
            OAuthError::MalformedState | OAuthError::UnknownState => Page::LinkExpired,
            OAuthError::OtherBrowser => Page::OtherBrowser,
            OAuthError::CodeRejected(_) => Page::SignInFailed,
            _ => Page::TryAgainLater,
        }
    }

    /// A stable machine-readable name for JSON answers.
    fn code(&self) -> &'static str {
        match self {
            OAuthError::NotSignedIn(_) => "not_signed_in",
            OAuthError::CrossOrigin => "cross_origin",
            OAuthError::Store(_) => "unavailable",
            _ => "error",
        }
    }

    fn log(&self) {
        let status = self.status().as_u16();
        match self {
            OAuthError::Store(_) | OAuthError::Random(_) | OAuthError::StateCollision => {
                tracing::error!(status, error = %self, "oauth request failed")
            }
            OAuthError::WeChat(_) => {
                tracing::warn!(status, error = %self, "oauth request failed: WeChat")
            }
            _ => tracing::info!(status, error = %self, "oauth request refused"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Authorize,
    Callback,
    Me,
    Logout,
}

impl Route {
    fn allowed_method(self) -> Method {
        match self {
            Route::Logout => Method::POST,
            _ => Method::GET,
        }
    }

    fn allow_header(self) -> HeaderValue {
        match self {
            Route::Logout => HeaderValue::from_static("POST"),
            _ => HeaderValue::from_static("GET"),
        }
    }
}

/// The web-authorization handler. Build it once per container; `handle` serves every `/oauth/*` request.
pub struct OAuth<S> {
    config: OAuthConfig,
    store: S,
    users: UserDirectory<S>,
    sns: SnsClient,
    sessions: SessionCodec,
    clock: SharedClock,
    session_cookie: CookieSpec,
    binding_cookie: CookieSpec,
}

impl<S> OAuth<S>
where
    S: OAuthStateStore + UserStore + Clone,
{
    /// `http` (WeChat's API) and `clock` are built once in `main`, like the store.
    pub fn new(config: OAuthConfig, store: S, http: WeChatHttp, clock: SharedClock) -> Self {
        let sns = SnsClient::new(&config.wechat, http);
        let users = UserDirectory::new(
            store.clone(),
            sns.clone(),
            clock.clone(),
            config.profile_max_age_s,
        );
        let sessions = SessionCodec::new(config.session_secret.clone(), config.session_ttl_s);
        let session_cookie = CookieSpec::session(config.secure_cookies);
        let binding_cookie = CookieSpec::binding(&config.path_prefix, config.secure_cookies);
        Self {
            config,
            store,
            users,
            sns,
            sessions,
            clock,
            session_cookie,
            binding_cookie,
        }
    }

    /// The user directory, for features that need the signed-in user's profile.
    pub fn users(&self) -> &UserDirectory<S> {
        &self.users
    }

    /// The request's valid session, if any: signed, unexpired, and of the user's current
    /// session epoch (one store read). Anything that trusts a session asks here.
    pub async fn session(&self, req: &Request) -> Option<Session> {
        self.live_session(req, self.clock.now_s()).await
    }

    /// The session cookie, decoded and checked against the stored epoch.
    async fn live_session(&self, req: &Request, now_s: i64) -> Option<Session> {
        let token = cookie(req, self.session_cookie.name)?;
        let session = self.sessions.decode(token, now_s).ok()?;
        match self.users.get(&session.openid).await {
            Ok(Some(user)) if user.session_epoch == session.epoch => Some(session),
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(error = %err, "could not check the session epoch");
                None
            }
        }
    }

    /// Serve one request to `/oauth/*`: other paths are 404, other methods 405.
    pub async fn handle(&self, req: &Request) -> Response<Body> {
        let Some(route) = self.route(req.uri().path()) else {
            return text(StatusCode::NOT_FOUND, "not found");
        };
        if req.method() != route.allowed_method() {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            response
                .headers_mut()
                .insert(header::ALLOW, route.allow_header());
            return response;
        }
        match route {
            Route::Authorize => self.authorize(req).await,
            Route::Callback => self.callback(req).await,
            Route::Me => self.me(req).await,
            Route::Logout => self.logout(req).await,
        }
    }

    fn route(&self, path: &str) -> Option<Route> {
        // API Gateway strips the stage; a custom domain or the local server may not.
        let path = match path.strip_prefix(self.config.path_prefix.as_str()) {
            Some(rest) if !self.config.path_prefix.is_empty() && rest.starts_with('/') => rest,
            _ => path,
        };
        match path {
            "/oauth/authorize" => Some(Route::Authorize),
            "/oauth/callback" => Some(Route::Callback),
            "/oauth/me" => Some(Route::Me),
            "/oauth/logout" => Some(Route::Logout),
            _ => None,
        }
    }

    // ---- GET /oauth/authorize ----

    async fn authorize(&self, req: &Request) -> Response<Body> {
        let query = query(req);
        let parsed = parse_scope(query.get("scope").map(String::as_str)).and_then(|scope| {
            let return_to = match query.get("return_to").map(String::as_str) {
                None | Some("") => ReturnTo::root(),
                Some(raw) => ReturnTo::parse(raw, &self.config.allowed_origins)?,
            };
            Ok((scope, return_to))
        });
        let (scope, return_to) = match parsed {
            Ok(parsed) => parsed,
            Err(err) => {
                err.log();
                return text(err.status(), err.to_string());
            }
        };
        // Only the callback's automatic restart asks for attempt 2.
        let attempt = match query.get("attempt").map(String::as_str) {
            Some("2") => 2,
            _ => 1,
        };
        match self.start(scope, return_to.as_str(), attempt).await {
            Ok(response) => response,
            Err(err) => self.error_page(&err, &self.authorize_path(scope, return_to.as_str(), 1)),
        }
    }

    async fn start(
        &self,
        scope: Scope,
        return_to: &str,
        attempt: u8,
    ) -> Result<Response<Body>, OAuthError> {
        // Always fresh: adopting a binding already in the browser would let whoever planted it
        // finish this sign-in (binding fixation). Only the latest flow per browser can finish.
        let binding = new_binding()?;
        let now_s = self.clock.now_s();
        let state = AuthState {
            state: new_state()?,
            browser_hash: binding_hash(&binding),
            scope,
            return_to: return_to.to_string(),
            attempt,
            created_at_s: now_s,
            expires_at_s: now_s + STATE_TTL_S,
            status: StateStatus::Pending,
        };
        if self.store.insert_state(&state).await? == StateInsert::Collision {
            return Err(OAuthError::StateCollision);
        }
        tracing::info!(scope = %scope, attempt, "authorize: redirecting to WeChat");
        let mut response = redirect(&self.wechat_authorize_url(scope, &state.state));
        self.set_cookie(
            &mut response,
            &self.binding_cookie.set(&binding, STATE_TTL_S),
        );
        Ok(response)
    }

    /// WeChat's consent URL; the parameters in the order WeChat documents, which it insists on.
    fn wechat_authorize_url(&self, scope: Scope, state: &str) -> String {
        let callback = format!("{}/oauth/callback", self.config.public_base_url);
        format!(
            "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={}&state={}#wechat_redirect",
            self.config.wechat.open_base,
            utf8_percent_encode(&self.config.wechat.app_id, QUERY_VALUE),
            utf8_percent_encode(&callback, QUERY_VALUE),
            scope.as_str(),
            state,
        )
    }

    /// `/oauth/authorize` on this server, for restarts and "try again" links.
    fn authorize_path(&self, scope: Scope, return_to: &str, attempt: u8) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("scope", scope.as_str());
        query.append_pair("return_to", return_to);
        if attempt > 1 {
            query.append_pair("attempt", &attempt.to_string());
        }
        format!(
            "{}/oauth/authorize?{}",
            self.config.path_prefix,
            query.finish()
        )
    }

    // ---- GET /oauth/callback ----

    async fn callback(&self, req: &Request) -> Response<Body> {
        let query = query(req);
        let now_s = self.clock.now_s();
        let code = query
            .get("code")
            .map(String::as_str)
            .filter(|c| !c.is_empty());
        let fresh_start = self.authorize_path(Scope::Base, "/", 1);

        let Some(state_id) = query
            .get("state")
            .map(String::as_str)
            .filter(|s| is_well_formed_state(s))
        else {
            // WeChat's callbacks carry the state it was given (a declined consent too): without
            // one this is a bookmark or a damaged link, not a decline.
            return self.error_page(&OAuthError::MalformedState, &fresh_start);
        };
        let record = match self.store.get_state(state_id, now_s).await {
            Ok(Some(record)) => record,
            Ok(None) if code.is_none() => return self.declined(&fresh_start),
            Ok(None) => return self.error_page(&OAuthError::UnknownState, &fresh_start),
            Err(err) => return self.error_page(&err.into(), &fresh_start),
        };
        let restart = self.authorize_path(record.scope, &record.return_to, 1);
        if !binding_matches(cookie(req, self.binding_cookie.name), &record.browser_hash) {
            return self.error_page(&OAuthError::OtherBrowser, &restart);
        }
        match self.finish(req, &record, code, now_s).await {
            Ok(response) => response,
            Err(err) => self.error_page(&err, &restart),
        }
    }

    async fn finish(
        &self,
        req: &Request,
        record: &AuthState,
        code: Option<&str>,
        now_s: i64,
    ) -> Result<Response<Body>, OAuthError> {
        match &record.status {
            StateStatus::Completed { openid } => {
                tracing::info!(user = %fingerprint(openid), "callback replayed after success: re-issuing the session");
                let user = self
                    .users
                    .get(openid)
                    .await?
                    .ok_or(OAuthError::UnknownState)?;
                return Ok(self.signed_in(&user, record.scope, &record.return_to, now_s));
            }
            StateStatus::Consumed => return Ok(self.already_used(req, record, now_s).await),
            StateStatus::Pending => {}
        }
        let Some(code) = code else {
            // Declined: the state has served its purpose; burning it is best-effort.
            if let Err(err) = self.store.consume_state(&record.state, now_s).await {
                tracing::warn!(error = %err, "could not consume a declined state");
            }
            return Ok(self.declined(&self.authorize_path(record.scope, &record.return_to, 1)));
        };
        if self.store.consume_state(&record.state, now_s).await? == Transition::Lost {
            // A concurrent callback (WeChat's browser sometimes sends two) took it first.
            return Ok(self.already_used(req, record, now_s).await);
        }
        let authorization = match self.sns.exchange_code(code, now_s).await {
            Ok(authorization) => authorization,
            Err(err) if is_code_rejected(&err) => {
                return self.code_rejected(req, record, err, now_s).await;
            }
            Err(err) => {
                // The code was probably not used: give the state back so reloading retries.
                match self.store.release_state(&record.state, now_s).await {
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not release the state"),
                }
                return Err(OAuthError::WeChat(err));
            }
        };
        let scope = record.scope;
        let user: User = self.users.sign_in(authorization).await?;
        let replayable_until_s = self.clock.now_s() + COMPLETED_REPLAY_GRACE_S;
        match self
            .store
            .complete_state(&record.state, &user.openid, replayable_until_s)
            .await
        {
            Ok(Transition::Applied) => {}
            Ok(Transition::Lost) => tracing::warn!("state changed while signing in"),
            Err(err) => tracing::warn!(error = %err, "could not mark the state completed"),
        }
        tracing::info!(user = %fingerprint(&user.openid), scope = %scope, "signed in");
        Ok(self.signed_in(&user, scope, &record.return_to, now_s))
    }

    /// The state was used by an earlier or concurrent callback that did not (yet) sign in.
    async fn already_used(&self, req: &Request, record: &AuthState, now_s: i64) -> Response<Body> {
        if self.live_session(req, now_s).await.is_some() {
            tracing::info!("callback with a used state: already signed in");
            return redirect(&landing(&record.return_to));
        }
        tracing::info!("callback with a used state: restarting the flow");
        redirect(&self.authorize_path(record.scope, &record.return_to, record.attempt))
    }

    /// WeChat says the code is invalid, used or expired: restart the flow once.
    async fn code_rejected(
        &self,
        req: &Request,
        record: &AuthState,
        err: ApiError,
        now_s: i64,
    ) -> Result<Response<Body>, OAuthError> {
        if self.live_session(req, now_s).await.is_some() {
            tracing::info!(error = %err, "code rejected, but the browser is signed in");
            return Ok(redirect(&landing(&record.return_to)));
        }
        if record.attempt < MAX_ATTEMPT {
            tracing::info!(error = %err, "code rejected: restarting the flow once");
            return Ok(redirect(&self.authorize_path(
                record.scope,
                &record.return_to,
                record.attempt + 1,
            )));
        }
        Err(OAuthError::CodeRejected(err))
    }

    fn signed_in(&self, user: &User, scope: Scope, return_to: &str, now_s: i64) -> Response<Body> {
        let session = self
            .sessions
            .issue(&user.openid, scope, now_s)
            .in_epoch(user.session_epoch);
        let mut response = redirect(&landing(return_to));
        self.set_cookie(
            &mut response,
            &self
                .session_cookie
                .set(&self.sessions.encode(&session), self.sessions.ttl_s()),
        );
        response
    }

    fn declined(&self, restart: &str) -> Response<Body> {
        tracing::info!("callback without code: the user declined");
        Page::Declined.render(StatusCode::OK, restart)
    }

    // ---- GET /oauth/me, POST /oauth/logout ----

    async fn me(&self, req: &Request) -> Response<Body> {
        let now_s = self.clock.now_s();
        let token = cookie(req, self.session_cookie.name);
        let session = match token.map(|t| self.sessions.decode(t, now_s)) {
            Some(Ok(session)) => session,
            Some(Err(err)) => {
                tracing::info!(error = %err, "me: session cookie refused");
                let mut response = self.error_json(&OAuthError::NotSignedIn("invalid session"));
                self.set_cookie(&mut response, &self.session_cookie.clear());
                return response;
            }
            None => return self.error_json(&OAuthError::NotSignedIn("no session")),
        };
        let current = self
            .users
            .current_for_session(&session.openid, session.epoch)
            .await;
        match current {
            Ok(Some((user, status))) => no_store(json(StatusCode::OK, &me_json(&user, status))),
            Ok(None) => {
                // Unknown user, or a session revoked by logout-everywhere.
                let mut response = self.error_json(&OAuthError::NotSignedIn("session revoked"));
                self.set_cookie(&mut response, &self.session_cookie.clear());
                response
            }
            Err(err) => self.error_json(&err.into()),
        }
    }

    /// Ends the sign-in in this browser (session and binding cookies); with `everywhere=1`
    /// also revokes every session of the user (a new session epoch).
    async fn logout(&self, req: &Request) -> Response<Body> {
        let everywhere = matches!(
            query(req).get("everywhere").map(String::as_str),
            Some("1" | "true")
        );
        if everywhere && let Err(err) = self.logout_everywhere(req).await {
            let mut response = self.error_json(&err);
            if matches!(err, OAuthError::NotSignedIn(_)) {
                self.clear_sign_in(&mut response);
            }
            return response;
        }
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NO_CONTENT;
        self.clear_sign_in(&mut response);
        no_store(response)
    }

    async fn logout_everywhere(&self, req: &Request) -> Result<(), OAuthError> {
        // The session cookie is SameSite=Lax, but a sibling subdomain is same-site: only pages
        // of this deployment's origins may sign a user out everywhere.
        if !self.same_origin(req) {
            return Err(OAuthError::CrossOrigin);
        }
        let token =
            cookie(req, self.session_cookie.name).ok_or(OAuthError::NotSignedIn("no session"))?;
        let session = self
            .sessions
            .decode(token, self.clock.now_s())
            .map_err(|_| OAuthError::NotSignedIn("invalid session"))?;
        // A store failure is a 503, never a 401 that would look like a done logout.
        match self.users.get(&session.openid).await? {
            Some(user) if user.session_epoch == session.epoch => {}
            _ => return Err(OAuthError::NotSignedIn("session revoked")),
        }
        match self.users.revoke_sessions(&session.openid).await? {
            Some(_) => Ok(()),
            None => Err(OAuthError::NotSignedIn("unknown user")),
        }
    }

    /// `Origin` names `PUBLIC_BASE_URL`'s origin or one in `OAUTH_ALLOWED_ORIGINS`; without
    /// `Origin`, `Sec-Fetch-Site: same-origin`. Anything else (no header, `null`) is refused.
    fn same_origin(&self, req: &Request) -> bool {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        match header("origin") {
            Some(origin) => Origin::parse(origin)
                .is_ok_and(|origin| self.config.allowed_origins.contains(&origin)),
            None => header("sec-fetch-site") == Some("same-origin"),
        }
    }

    fn clear_sign_in(&self, response: &mut Response<Body>) {
        self.set_cookie(response, &self.session_cookie.clear());
        self.set_cookie(response, &self.binding_cookie.clear());
    }

    // ---- responses ----

    fn error_page(&self, err: &OAuthError, restart: &str) -> Response<Body> {
        err.log();
        err.page().render(err.status(), restart)
    }

    fn error_json(&self, err: &OAuthError) -> Response<Body> {
        err.log();
        no_store(json(err.status(), &json!({ "error": err.code() })))
    }

    fn set_cookie(&self, response: &mut Response<Body>, value: &str) {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// Where a finished sign-in sends the browser: `return_to` with a fragment of its own (empty if
/// it has none). A browser keeps the URL's fragment across a redirect whose `Location` has none
/// (RFC 9110 §10.2.2), so WeChat's `#wechat_redirect` would otherwise reach the app's page.
fn landing(return_to: &str) -> String {
    if return_to.contains('#') {
        return_to.to_string()
    } else {
        format!("{return_to}#")
    }
}

fn parse_scope(raw: Option<&str>) -> Result<Scope, OAuthError> {
    match raw {
        None | Some("") => Ok(Scope::Base),
        Some(raw) => Scope::parse(raw).ok_or(OAuthError::InvalidScope),
    }
}

/// What `/oauth/me` shows: identity and profile, never tokens. Fields in alphabetical order, as
/// the answer had before it was typed.
#[derive(serde::Serialize)]
struct Me<'a> {
    avatar: Option<&'a str>,
    nickname: Option<&'a str>,
    openid: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    profile_stale: bool,
    scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    unionid: Option<&'a str>,
    updated_at: i64,
}

fn me_json(user: &User, status: ProfileStatus) -> Me<'_> {
    let profile = user.profile.as_ref();
    Me {
        avatar: profile
            .map(|p| p.headimgurl.as_str())
            .filter(|a| !a.is_empty()),
        nickname: profile.map(|p| p.nickname.as_str()),
        openid: &user.openid,
        profile_stale: matches!(
            status,
            ProfileStatus::NeedsConsent | ProfileStatus::StaleUnavailable
        ),
        scope: user.scope.as_str(),
        unionid: user.unionid.as_deref(),
        updated_at: user.updated_at_s,
    }
}

fn no_store(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

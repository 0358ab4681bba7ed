//! `OAuth<S>`: the HTTP side of web authorization, over `lambda_http::Request` so that Lambda,
//! the local server and tests run the same code. This module owns the routing and the routes
//! other than the callback; the callback's flow is [`crate::oauth::callback`].
//!
//! Routes (below the path of `PUBLIC_BASE_URL`):
//! - `GET /oauth/authorize?scope=&return_to=` → 302 to WeChat's consent page.
//! - `GET /oauth/callback?code=&state=` → 302 to `return_to` with a session cookie, or a page.
//! - `GET /oauth/me` → the signed-in user as JSON, or 401 JSON.
//! - `POST /oauth/logout` → 204, session and binding cookies cleared.
//! - `POST /oauth/logout?everywhere=1` → 204 after bumping the user's session epoch, which
//!   revokes every session of that user in every browser; same-origin requests only (CSRF).
//! - `GET /MP_verify_<code>.txt` (the name `WECHAT_MP_VERIFY_FILE` sets) → 200 `text/plain`, the
//!   code: the domain verification file WeChat fetches (see [`crate::oauth::verify_file`]).
//!
//! Sessions carry the user's session epoch; `/oauth/me` and [`OAuth::session`] accept a session
//! only while it matches the stored epoch.

use std::sync::Arc;

use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use wechat_api::WeChatHttp;
use wechat_protocol::origin::Origin;

use crate::clock::SharedClock;
use crate::http::{json, query, redirect, text};
use crate::oauth::Scope;
use crate::oauth::binding::{binding_hash, new_binding, new_state};
use crate::oauth::callback::Callback;
use crate::oauth::config::OAuthConfig;
use crate::oauth::cookies::SignInCookies;
use crate::oauth::error::OAuthError;
use crate::oauth::links::Links;
use crate::oauth::pages::Page;
use crate::oauth::return_to::ReturnTo;
use crate::oauth::session::Session;
use crate::oauth::sns::SnsClient;
use crate::oauth::state::{AuthState, StateStatus};
use crate::oauth::store::{OAuthStateStore, StateInsert, UserStore};
use crate::oauth::user::User;
use crate::oauth::users::{ProfileStatus, UserDirectory};

// Callers found the grace here before the callback had a module of its own.
pub use crate::oauth::callback::COMPLETED_REPLAY_GRACE_S;

/// How long a sign-in may take from the authorize redirect to the callback.
pub const STATE_TTL_S: i64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Authorize,
    Callback,
    Me,
    Logout,
    /// `GET /MP_verify_<code>.txt` when `WECHAT_MP_VERIFY_FILE` names that file.
    VerifyFile,
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
    users: Arc<UserDirectory<S>>,
    cookies: SignInCookies,
    links: Links,
    callback: Callback<S>,
    clock: SharedClock,
}

impl<S> OAuth<S>
where
    S: OAuthStateStore + UserStore + Clone,
{
    /// `http` (WeChat's API) and `clock` are built once in `main`, like the store.
    pub fn new(config: OAuthConfig, store: S, http: WeChatHttp, clock: SharedClock) -> Self {
        let sns = SnsClient::new(&config.wechat, http);
        let users = Arc::new(UserDirectory::new(
            store.clone(),
            sns.clone(),
            clock.clone(),
            config.profile_max_age_s,
        ));
        let cookies = SignInCookies::new(&config);
        let links = Links::new(&config);
        let callback = Callback::new(
            store.clone(),
            users.clone(),
            sns,
            cookies.clone(),
            links.clone(),
            clock.clone(),
        );
        Self {
            config,
            store,
            users,
            cookies,
            links,
            callback,
            clock,
        }
    }

    /// The user directory, for features that need the signed-in user's profile.
    pub fn users(&self) -> &UserDirectory<S> {
        &self.users
    }

    /// The request's valid session, if any: signed, unexpired, and of the user's current
    /// session epoch (one store read). Anything that trusts a session asks here.
    pub async fn session(&self, req: &Request) -> Option<Session> {
        self.cookies
            .live_session(req, &self.users, self.clock.now_s())
            .await
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
            Route::Callback => self.callback.handle(req).await,
            Route::Me => self.me(req).await,
            Route::Logout => self.logout(req).await,
            Route::VerifyFile => match &self.config.verify_file {
                Some(file) => text(StatusCode::OK, file.code()),
                None => text(StatusCode::NOT_FOUND, "not found"),
            },
        }
    }

    /// Whether `path` is one of this handler's routes (the local server routes by it).
    pub fn serves(&self, path: &str) -> bool {
        self.route(path).is_some()
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
            _ if self
                .config
                .verify_file
                .as_ref()
                .is_some_and(|file| file.is_path(path)) =>
            {
                Some(Route::VerifyFile)
            }
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
            // Starting fails only for want of randomness or of the table: trying again is the
            // remedy.
            Err(err) => {
                err.log();
                let again = self.links.authorize(scope, return_to.as_str(), 1);
                Page::TryAgainLater.render(err.status(), &again)
            }
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
        let mut response = redirect(&self.links.wechat_consent(scope, &state.state));
        self.cookies
            .set_binding(&mut response, &binding, STATE_TTL_S);
        Ok(response)
    }

    // ---- GET /oauth/me, POST /oauth/logout ----

    async fn me(&self, req: &Request) -> Response<Body> {
        let now_s = self.clock.now_s();
        let session = match self.cookies.session(req, now_s) {
            Some(Ok(session)) => session,
            Some(Err(err)) => {
                tracing::info!(error = %err, "me: session cookie refused");
                let mut response = error_json(&OAuthError::NotSignedIn("invalid session"));
                self.cookies.clear_session(&mut response);
                return response;
            }
            None => return error_json(&OAuthError::NotSignedIn("no session")),
        };
        let current = self
            .users
            .current_for_session(&session.openid, session.epoch)
            .await;
        match current {
            Ok(Some((user, status))) => no_store(json(StatusCode::OK, &me_json(&user, status))),
            Ok(None) => {
                // Unknown user, or a session revoked by logout-everywhere.
                let mut response = error_json(&OAuthError::NotSignedIn("session revoked"));
                self.cookies.clear_session(&mut response);
                response
            }
            Err(err) => error_json(&err.into()),
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
            let mut response = error_json(&err);
            if matches!(err, OAuthError::NotSignedIn(_)) {
                self.cookies.clear_sign_in(&mut response);
            }
            return response;
        }
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NO_CONTENT;
        self.cookies.clear_sign_in(&mut response);
        no_store(response)
    }

    async fn logout_everywhere(&self, req: &Request) -> Result<(), OAuthError> {
        // The session cookie is SameSite=Lax, but a sibling subdomain is same-site: only pages
        // of this deployment's origins may sign a user out everywhere.
        if !self.same_origin(req) {
            return Err(OAuthError::CrossOrigin);
        }
        let session = self
            .cookies
            .session(req, self.clock.now_s())
            .ok_or(OAuthError::NotSignedIn("no session"))?
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
}

fn parse_scope(raw: Option<&str>) -> Result<Scope, OAuthError> {
    match raw {
        None | Some("") => Ok(Scope::Base),
        Some(raw) => Scope::parse(raw).ok_or(OAuthError::InvalidScope),
    }
}

/// The JSON answer of `/oauth/me` and `/oauth/logout` for `err`, logged.
fn error_json(err: &OAuthError) -> Response<Body> {
    err.log();
    no_store(json(err.status(), &json!({ "error": err.code() })))
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

//! The two cookies of a sign-in, the session and the browser binding: reading them from a
//! request (a session counts only while its epoch is the user's stored one) and setting or
//! clearing them on a response. Their names and attributes are `session::CookieSpec`'s.

use lambda_http::http::{HeaderValue, header};
use lambda_http::{Body, Request, Response};

use crate::http::cookie;
use crate::oauth::Scope;
use crate::oauth::config::OAuthConfig;
use crate::oauth::session::{CookieSpec, Session, SessionCodec, SessionError};
use crate::oauth::store::UserStore;
use crate::oauth::user::User;
use crate::oauth::users::UserDirectory;

/// The deployment's session and binding cookies, and the key that signs sessions.
#[derive(Debug, Clone)]
pub struct SignInCookies {
    session: CookieSpec,
    binding: CookieSpec,
    sessions: SessionCodec,
}

impl SignInCookies {
    pub fn new(config: &OAuthConfig) -> Self {
        Self {
            session: CookieSpec::session(config.secure_cookies),
            binding: CookieSpec::binding(&config.path_prefix, config.secure_cookies),
            sessions: SessionCodec::new(config.session_secret.clone(), config.session_ttl_s),
        }
    }

    /// The binding cookie's value, if the browser sent one.
    pub fn binding<'r>(&self, req: &'r Request) -> Option<&'r str> {
        cookie(req, self.binding.name)
    }

    /// The session cookie, decoded: `None` without one, an error when it is forged, malformed or
    /// expired. The epoch is not checked here (see [`Self::live_session`]).
    pub fn session(&self, req: &Request, now_s: i64) -> Option<Result<Session, SessionError>> {
        cookie(req, self.session.name).map(|token| self.sessions.decode(token, now_s))
    }

    /// The request's valid session, if any: signed, unexpired, and of the user's current session
    /// epoch (one store read). A store failure counts as no session.
    pub async fn live_session<S: UserStore>(
        &self,
        req: &Request,
        users: &UserDirectory<S>,
        now_s: i64,
    ) -> Option<Session> {
        let session = self.session(req, now_s)?.ok()?;
        match users.get(&session.openid).await {
            Ok(Some(user)) if user.session_epoch == session.epoch => Some(session),
            Ok(_) => None,
            Err(err) => {
                tracing::warn!(error = %err, "could not check the session epoch");
                None
            }
        }
    }

    /// Signs `user` in on `response`: a new session with `scope`, in the user's current epoch.
    pub fn set_session(
        &self,
        response: &mut Response<Body>,
        user: &User,
        scope: Scope,
        now_s: i64,
    ) {
        let session = self
            .sessions
            .issue(&user.openid, scope, now_s)
            .in_epoch(user.session_epoch);
        let value = self
            .session
            .set(&self.sessions.encode(&session), self.sessions.ttl_s());
        append(response, &value);
    }

    /// Binds a starting sign-in to this browser for `max_age_s` seconds.
    pub fn set_binding(&self, response: &mut Response<Body>, binding: &str, max_age_s: i64) {
        append(response, &self.binding.set(binding, max_age_s));
    }

    pub fn clear_session(&self, response: &mut Response<Body>) {
        append(response, &self.session.clear());
    }

    /// Ends the sign-in in this browser: the session, and any binding of an unfinished one.
    pub fn clear_sign_in(&self, response: &mut Response<Body>) {
        self.clear_session(response);
        append(response, &self.binding.clear());
    }
}

/// Appends a `Set-Cookie`: a response may set several cookies.
fn append(response: &mut Response<Body>, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

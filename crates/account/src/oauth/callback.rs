//! `GET /oauth/callback?code=&state=`, where WeChat sends the browser back: the flow
//! ([`Callback`]) that turns a `code` into a signed-in browser. Every path ends in a named
//! [`CallbackOutcome`], which alone decides the answer (a redirect, with or without a new
//! session cookie, or a page) and the callback's one log line.
//!
//! Order of operations: the state is read and its browser binding checked (nothing is written
//! for a foreign, forged or expired state); then it is consumed with a conditional write, so
//! exactly one callback exchanges the code. If WeChat fails before the code could be used
//! (timeout, HTTP error, `-1`, malformed answer) the state is released again, so reloading the
//! callback retries. Once the code is used the state stays consumed; a snapshot-page virtual
//! account (快照页模式, `is_snapshotuser: 1`) ends there, with a page and nothing written; the
//! user item is written only when everything it holds is known (tokens, and for `snsapi_userinfo` the profile), and
//! then the state is marked completed with the openid so a replayed callback from the same browser
//! re-issues the session instead of failing — for [`COMPLETED_REPLAY_GRACE_S`] only (WeChat's
//! browser sometimes calls twice); after that the completed state reads as gone and the callback
//! shows the "link expired" page, so Back to an old callback URL on a shared device signs no one in.

use std::sync::Arc;
use std::time::Instant;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use table::{StoreError, Transition};
use wechat_api::ApiError;
use wechat_protocol::secret::fingerprint;

use crate::clock::SharedClock;
use crate::http::{query, redirect};
use crate::oauth::Scope;
use crate::oauth::binding::{binding_matches, is_well_formed_state};
use crate::oauth::cookies::SignInCookies;
use crate::oauth::links::{Links, landing};
use crate::oauth::pages::Page;
use crate::oauth::sns::{SnsClient, is_code_rejected};
use crate::oauth::state::{AuthState, StateStatus};
use crate::oauth::store::{OAuthStateStore, UserStore};
use crate::oauth::user::User;
use crate::oauth::users::{SignInError, UserDirectory};

/// How long a completed state may re-issue its session: the double-callback case, not a replay.
pub const COMPLETED_REPLAY_GRACE_S: i64 = 5;
/// A flow restarts by itself at most once after WeChat rejects its code.
const MAX_ATTEMPT: u8 = 2;

/// How one callback ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// WeChat's code named this user: the user is stored, the state completed, a session issued.
    SignedIn(User),
    /// The same browser called again within the grace after a success (WeChat's double
    /// callback): the session is issued again.
    ReplayedAfterSuccess(User),
    /// The state was used by an earlier or concurrent callback, and the browser is signed in.
    StateUsedAlreadySignedIn,
    /// The state was used by an earlier or concurrent callback that did not (yet) sign in: the
    /// flow starts again, as the same attempt.
    StateUsedRestarted,
    /// WeChat rejected the code (invalid, used, expired), but the browser is signed in.
    CodeRejectedAlreadySignedIn(ApiError),
    /// WeChat rejected the code: the flow restarts by itself, once.
    CodeRejectedRestarted(ApiError),
    /// WeChat rejected the code of the restarted flow too.
    CodeRejected(ApiError),
    /// No code: the user declined on WeChat's consent page.
    Declined,
    /// No state, or a malformed one: a bookmark or a damaged link.
    StateMalformed,
    /// A code with a state that is forged, unknown, expired (a completed one past its grace), or
    /// completed for a user that is no longer stored.
    StateUnknown,
    /// The state was issued to another browser (the binding cookie is missing or different).
    BindingMismatch,
    /// WeChat failed before the code could be used: the state is released, reloading retries.
    WeChatUnavailable(ApiError),
    /// WeChat failed reading the profile of a `snsapi_userinfo` sign-in: nothing is written, and
    /// the state stays consumed (the code is used).
    ProfileUnavailable(ApiError),
    /// WeChat answered with a snapshot-page (快照页模式) virtual account (`is_snapshotuser: 1`):
    /// the page was opened as a preview, whose openid and profile are not the user's. Nothing is
    /// written, no session is issued, and the page tells the user to open the full page (使用完整
    /// 服务) and sign in there; the state stays consumed (the code is used).
    SnapshotUser,
    /// The table could not be read or written.
    StoreUnavailable(StoreError),
}

impl CallbackOutcome {
    /// A stable snake_case name for log fields.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SignedIn(_) => "signed_in",
            Self::ReplayedAfterSuccess(_) => "replayed_after_success",
            Self::StateUsedAlreadySignedIn => "state_used_already_signed_in",
            Self::StateUsedRestarted => "state_used_restarted",
            Self::CodeRejectedAlreadySignedIn(_) => "code_rejected_already_signed_in",
            Self::CodeRejectedRestarted(_) => "code_rejected_restarted",
            Self::CodeRejected(_) => "code_rejected",
            Self::Declined => "declined",
            Self::StateMalformed => "state_malformed",
            Self::StateUnknown => "state_unknown",
            Self::BindingMismatch => "binding_mismatch",
            Self::WeChatUnavailable(_) => "wechat_unavailable",
            Self::ProfileUnavailable(_) => "profile_unavailable",
            Self::SnapshotUser => "snapshot_user",
            Self::StoreUnavailable(_) => "store_unavailable",
        }
    }

    /// The answer's status: 302 for every redirect, else the page's.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SignedIn(_)
            | Self::ReplayedAfterSuccess(_)
            | Self::StateUsedAlreadySignedIn
            | Self::StateUsedRestarted
            | Self::CodeRejectedAlreadySignedIn(_)
            | Self::CodeRejectedRestarted(_) => StatusCode::FOUND,
            // Nobody did anything wrong: a page that says how to go on, like the decline's.
            Self::Declined | Self::SnapshotUser => StatusCode::OK,
            Self::StateMalformed | Self::StateUnknown | Self::CodeRejected(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::BindingMismatch => StatusCode::FORBIDDEN,
            // WeChat not answering is ours to retry; WeChat answering nonsense is a bad gateway.
            Self::WeChatUnavailable(ApiError::Timeout | ApiError::Transport(_))
            | Self::ProfileUnavailable(ApiError::Timeout | ApiError::Transport(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::WeChatUnavailable(_) | Self::ProfileUnavailable(_) => StatusCode::BAD_GATEWAY,
            Self::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The sign-in a callback belongs to, which every answer links back to: its state's scope,
/// `return_to` and attempt, or a fresh `snsapi_base` sign-in to `/` when no state was found.
struct Flow {
    scope: Scope,
    return_to: String,
    attempt: u8,
}

impl Flow {
    fn fresh() -> Self {
        Self {
            scope: Scope::Base,
            return_to: "/".into(),
            attempt: 1,
        }
    }

    fn of(record: &AuthState) -> Self {
        Self {
            scope: record.scope,
            return_to: record.return_to.clone(),
            attempt: record.attempt,
        }
    }
}

/// The callback flow, one per container.
pub struct Callback<S> {
    store: S,
    users: Arc<UserDirectory<S>>,
    sns: SnsClient,
    cookies: SignInCookies,
    links: Links,
    clock: SharedClock,
}

impl<S> Callback<S>
where
    S: OAuthStateStore + UserStore,
{
    pub fn new(
        store: S,
        users: Arc<UserDirectory<S>>,
        sns: SnsClient,
        cookies: SignInCookies,
        links: Links,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            users,
            sns,
            cookies,
            links,
            clock,
        }
    }

    /// Serves one callback: runs it to its outcome, logs that once and answers with it.
    pub async fn handle(&self, req: &Request) -> Response<Body> {
        let started = Instant::now();
        let now_s = self.clock.now_s();
        let query = query(req);
        let code = query
            .get("code")
            .map(String::as_str)
            .filter(|c| !c.is_empty());
        let state = query.get("state").map(String::as_str);
        let (flow, outcome) = match self.lookup(state, code.is_some(), now_s).await {
            Ok(record) => (
                Flow::of(&record),
                self.finish(req, &record, code, now_s).await,
            ),
            Err(outcome) => (Flow::fresh(), outcome),
        };
        log(&flow, &outcome, started.elapsed().as_millis() as u64);
        self.respond(&flow, &outcome, now_s)
    }

    /// The callback's state, as stored and unexpired. Reads only: nothing may be written before
    /// the binding is checked.
    async fn lookup(
        &self,
        state: Option<&str>,
        has_code: bool,
        now_s: i64,
    ) -> Result<AuthState, CallbackOutcome> {
        // WeChat's callbacks carry the state it was given (a declined consent too): without
        // one this is a bookmark or a damaged link, not a decline.
        let Some(state) = state.filter(|s| is_well_formed_state(s)) else {
            return Err(CallbackOutcome::StateMalformed);
        };
        match self.store.get_state(state, now_s).await {
            Ok(Some(record)) => Ok(record),
            // A decline (no code) whose state has gone: still the decline page, nothing to sign in.
            Ok(None) if !has_code => Err(CallbackOutcome::Declined),
            Ok(None) => Err(CallbackOutcome::StateUnknown),
            Err(error) => Err(CallbackOutcome::StoreUnavailable(error)),
        }
    }

    async fn finish(
        &self,
        req: &Request,
        record: &AuthState,
        code: Option<&str>,
        now_s: i64,
    ) -> CallbackOutcome {
        if !binding_matches(self.cookies.binding(req), &record.browser_hash) {
            return CallbackOutcome::BindingMismatch;
        }
        match &record.status {
            StateStatus::Completed { openid } => return self.replayed(openid).await,
            StateStatus::Consumed => return self.already_used(req, now_s).await,
            StateStatus::Pending => {}
        }
        let Some(code) = code else {
            // Declined: the state has served its purpose; burning it is best-effort.
            if let Err(err) = self.store.consume_state(&record.state, now_s).await {
                tracing::warn!(error = %err, "could not consume a declined state");
            }
            return CallbackOutcome::Declined;
        };
        match self.store.consume_state(&record.state, now_s).await {
            Ok(Transition::Applied) => {}
            // A concurrent callback (WeChat's browser sometimes sends two) took it first.
            Ok(Transition::Lost) => return self.already_used(req, now_s).await,
            Err(error) => return CallbackOutcome::StoreUnavailable(error),
        }
        let authorization = match self.sns.exchange_code(code, now_s).await {
            Ok(authorization) => authorization,
            Err(error) if is_code_rejected(&error) => {
                return self.code_rejected(req, record, error, now_s).await;
            }
            Err(error) => {
                // The code was probably not used: give the state back so reloading retries.
                if let Err(e) = self.store.release_state(&record.state, now_s).await {
                    tracing::warn!(error = %e, "could not release the state");
                }
                return CallbackOutcome::WeChatUnavailable(error);
            }
        };
        if authorization.snapshot_user {
            // A virtual account: not the user, so neither stored nor signed in (and its profile
            // is not even read).
            return CallbackOutcome::SnapshotUser;
        }
        let user = match self.users.sign_in(authorization).await {
            Ok(user) => user,
            Err(SignInError::SnapshotUser) => return CallbackOutcome::SnapshotUser,
            Err(SignInError::WeChat(error)) => return CallbackOutcome::ProfileUnavailable(error),
            Err(SignInError::Store(error)) => return CallbackOutcome::StoreUnavailable(error),
        };
        let replayable_until_s = self.clock.now_s() + COMPLETED_REPLAY_GRACE_S;
        // The user is signed in either way; a state left consumed only cannot re-issue the session.
        match self
            .store
            .complete_state(&record.state, &user.openid, replayable_until_s)
            .await
        {
            Ok(Transition::Applied) => {}
            Ok(Transition::Lost) => tracing::warn!("state changed while signing in"),
            Err(err) => tracing::warn!(error = %err, "could not mark the state completed"),
        }
        CallbackOutcome::SignedIn(user)
    }

    /// A completed state within its grace: the user it signed in, as stored now (the session
    /// must carry the current epoch).
    async fn replayed(&self, openid: &str) -> CallbackOutcome {
        match self.users.get(openid).await {
            Ok(Some(user)) => CallbackOutcome::ReplayedAfterSuccess(user),
            // Users are never deleted, so only a hand-edited table gets here: nobody to re-issue.
            Ok(None) => CallbackOutcome::StateUnknown,
            Err(error) => CallbackOutcome::StoreUnavailable(error),
        }
    }

    /// The state was used by an earlier or concurrent callback that did not (yet) sign in.
    async fn already_used(&self, req: &Request, now_s: i64) -> CallbackOutcome {
        match self.cookies.live_session(req, &self.users, now_s).await {
            Some(_) => CallbackOutcome::StateUsedAlreadySignedIn,
            None => CallbackOutcome::StateUsedRestarted,
        }
    }

    /// WeChat says the code is invalid, used or expired: restart the flow once.
    async fn code_rejected(
        &self,
        req: &Request,
        record: &AuthState,
        error: ApiError,
        now_s: i64,
    ) -> CallbackOutcome {
        if self
            .cookies
            .live_session(req, &self.users, now_s)
            .await
            .is_some()
        {
            CallbackOutcome::CodeRejectedAlreadySignedIn(error)
        } else if record.attempt < MAX_ATTEMPT {
            CallbackOutcome::CodeRejectedRestarted(error)
        } else {
            CallbackOutcome::CodeRejected(error)
        }
    }

    /// The one mapping of an outcome to the answer. Every page links to a new sign-in of `flow`.
    fn respond(&self, flow: &Flow, outcome: &CallbackOutcome, now_s: i64) -> Response<Body> {
        let page = |page: Page| {
            page.render(
                outcome.status(),
                &self.links.authorize(flow.scope, &flow.return_to, 1),
            )
        };
        match outcome {
            CallbackOutcome::SignedIn(user) | CallbackOutcome::ReplayedAfterSuccess(user) => {
                let mut response = redirect(&landing(&flow.return_to));
                self.cookies
                    .set_session(&mut response, user, flow.scope, now_s);
                response
            }
            CallbackOutcome::StateUsedAlreadySignedIn
            | CallbackOutcome::CodeRejectedAlreadySignedIn(_) => {
                redirect(&landing(&flow.return_to))
            }
            CallbackOutcome::StateUsedRestarted => redirect(&self.links.authorize(
                flow.scope,
                &flow.return_to,
                flow.attempt,
            )),
            CallbackOutcome::CodeRejectedRestarted(_) => redirect(&self.links.authorize(
                flow.scope,
                &flow.return_to,
                flow.attempt + 1,
            )),
            CallbackOutcome::Declined => page(Page::Declined),
            CallbackOutcome::SnapshotUser => page(Page::SnapshotUser),
            CallbackOutcome::StateMalformed | CallbackOutcome::StateUnknown => {
                page(Page::LinkExpired)
            }
            CallbackOutcome::BindingMismatch => page(Page::OtherBrowser),
            CallbackOutcome::CodeRejected(_) => page(Page::SignInFailed),
            CallbackOutcome::WeChatUnavailable(_)
            | CallbackOutcome::ProfileUnavailable(_)
            | CallbackOutcome::StoreUnavailable(_) => page(Page::TryAgainLater),
        }
    }
}

/// The callback's one log line. Users appear by fingerprint only.
fn log(flow: &Flow, outcome: &CallbackOutcome, elapsed_ms: u64) {
    let code = outcome.code();
    let status = outcome.status().as_u16();
    match outcome {
        CallbackOutcome::SignedIn(user) => tracing::info!(
            outcome = code,
            status,
            elapsed_ms,
            user = %fingerprint(&user.openid),
            scope = %flow.scope,
            "signed in"
        ),
        CallbackOutcome::ReplayedAfterSuccess(user) => tracing::info!(
            outcome = code,
            status,
            elapsed_ms,
            user = %fingerprint(&user.openid),
            "callback replayed after success: re-issuing the session"
        ),
        CallbackOutcome::StateUsedAlreadySignedIn => tracing::info!(
            outcome = code,
            status,
            elapsed_ms,
            "callback with a used state: already signed in"
        ),
        CallbackOutcome::StateUsedRestarted => tracing::info!(
            outcome = code,
            status,
            elapsed_ms,
            "callback with a used state: restarting the flow"
        ),
        CallbackOutcome::CodeRejectedAlreadySignedIn(error) => tracing::info!(
            outcome = code,
            status,
            elapsed_ms,
            %error,
            "code rejected, but the browser is signed in"
        ),
        CallbackOutcome::CodeRejectedRestarted(error) => tracing::info!(
            outcome = code,
            status,
            elapsed_ms,
            %error,
            "code rejected: restarting the flow once"
        ),
        CallbackOutcome::Declined => tracing::info!(
            outcome = code,
            status,
            elapsed_ms,
            "callback without code: the user declined"
        ),
        // The virtual openid is nobody's: not logged, not even as a fingerprint.
        CallbackOutcome::SnapshotUser => tracing::info!(
            outcome = code,
            status,
            elapsed_ms,
            scope = %flow.scope,
            "snapshot-page virtual account (is_snapshotuser=1): not signed in, nothing stored"
        ),
        // The refusals keep the words every other `/oauth/*` refusal logs.
        CallbackOutcome::CodeRejected(_)
        | CallbackOutcome::StateMalformed
        | CallbackOutcome::StateUnknown
        | CallbackOutcome::BindingMismatch => tracing::info!(
            outcome = code,
            status,
            elapsed_ms,
            error = %refusal(outcome),
            "oauth request refused"
        ),
        CallbackOutcome::WeChatUnavailable(error) | CallbackOutcome::ProfileUnavailable(error) => {
            tracing::warn!(
                outcome = code,
                status,
                elapsed_ms,
                error = %format_args!("WeChat call failed: {error}"),
                "oauth request failed: WeChat"
            )
        }
        CallbackOutcome::StoreUnavailable(error) => tracing::error!(
            outcome = code,
            status,
            elapsed_ms,
            %error,
            "oauth request failed"
        ),
    }
}

/// Why the callback refused the request, for its log line.
fn refusal(outcome: &CallbackOutcome) -> String {
    match outcome {
        CallbackOutcome::CodeRejected(error) => {
            format!("WeChat rejected the code after the automatic restart: {error}")
        }
        CallbackOutcome::StateMalformed => "state parameter is missing or malformed".into(),
        CallbackOutcome::StateUnknown => "state is unknown or expired".into(),
        CallbackOutcome::BindingMismatch => "state was issued to another browser".into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wechat_not_answering_is_unavailable_and_a_bad_answer_a_bad_gateway() {
        for outcome in [
            CallbackOutcome::WeChatUnavailable(ApiError::Timeout),
            CallbackOutcome::ProfileUnavailable(ApiError::Transport("refused".into())),
        ] {
            assert_eq!(outcome.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        for outcome in [
            CallbackOutcome::WeChatUnavailable(ApiError::HttpStatus(500)),
            CallbackOutcome::ProfileUnavailable(ApiError::WeChat {
                errcode: -1,
                errmsg: "system busy".into(),
            }),
        ] {
            assert_eq!(outcome.status(), StatusCode::BAD_GATEWAY);
        }
    }

    #[test]
    fn refusals_are_client_errors_and_restarts_redirects() {
        let rejected = || ApiError::WeChat {
            errcode: 40029,
            errmsg: "invalid code".into(),
        };
        assert_eq!(CallbackOutcome::Declined.status(), StatusCode::OK);
        assert_eq!(CallbackOutcome::SnapshotUser.status(), StatusCode::OK);
        assert_eq!(
            CallbackOutcome::StateUnknown.status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            CallbackOutcome::CodeRejected(rejected()).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            CallbackOutcome::BindingMismatch.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            CallbackOutcome::CodeRejectedRestarted(rejected()).status(),
            StatusCode::FOUND
        );
        assert_eq!(
            CallbackOutcome::StoreUnavailable(StoreError::Corrupt("x".into())).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}

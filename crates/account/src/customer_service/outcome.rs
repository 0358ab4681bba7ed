//! How a send ended: [`SendOutcome`], its stable codes, how WeChat's final answer sorts into one
//! ([`SendOutcome::of`]), and the one log line each outcome gets ([`log`]).

use std::fmt;

use wechat_api::errcode::{self, Context, ErrClass};
use wechat_api::{Ack, ApiError};
use wechat_protocol::secret::fingerprint;

use super::message::CustomMessage;
use crate::token::CallError;

/// The outcome codes of WeChat that have an outcome of their own.
const WINDOW_CLOSED: i64 = 45015;
const TOO_MANY_MESSAGES: i64 = 45047;
const INVALID_OPENID: i64 = 40003;

/// How a send ended. Every path of `CustomerService::send` ends in one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// WeChat accepted the message.
    Sent,
    /// 45015: the user has not interacted with the account in the last 48 hours (or unfollowed):
    /// WeChat no longer accepts messages to them until they do.
    WindowClosed,
    /// 45047: the messages allowed since the user's last interaction are used up.
    TooManyMessages,
    /// 40003: the openid is not a follower of this account.
    InvalidOpenid,
    /// WeChat stayed busy (-1 or 45011) through every allowed attempt.
    WeChatBusy { errcode: i64, attempts: u32 },
    /// No access_token could be had; nothing was sent.
    TokenUnavailable { kind: &'static str, reason: String },
    /// WeChat refused the message for another reason (a bad media_id, a token rejected again
    /// after the refresh, ...).
    Rejected { errcode: i64, errmsg: String },
    /// WeChat timed out, answered an HTTP error or something that is not JSON. Not retried: the
    /// message may have been delivered.
    WeChatUnavailable(ApiError),
}

impl SendOutcome {
    /// A stable snake_case name for log fields and stored records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::WindowClosed => "window_closed",
            Self::TooManyMessages => "too_many_messages",
            Self::InvalidOpenid => "invalid_openid",
            Self::WeChatBusy { .. } => "wechat_busy",
            Self::TokenUnavailable { .. } => "token_unavailable",
            Self::Rejected { .. } => "rejected",
            Self::WeChatUnavailable(_) => "wechat_unavailable",
        }
    }

    /// Whether the message did not reach the user.
    pub fn is_failure(&self) -> bool {
        !matches!(self, Self::Sent)
    }

    /// The outcome of a call's final result.
    pub(super) fn of(result: Result<Ack, CallError>, busy_attempts: u32) -> Self {
        let error = match result {
            Ok(Ack {}) => return Self::Sent,
            Err(CallError::Token(e)) => {
                return Self::TokenUnavailable {
                    kind: e.kind(),
                    reason: e.to_string(),
                };
            }
            Err(CallError::Api(e)) => e,
        };
        match error {
            ApiError::WeChat { errcode, .. } if errcode::class(errcode) == ErrClass::Busy => {
                Self::WeChatBusy {
                    errcode,
                    attempts: busy_attempts,
                }
            }
            ApiError::WeChat {
                errcode: WINDOW_CLOSED,
                ..
            } => Self::WindowClosed,
            ApiError::WeChat {
                errcode: TOO_MANY_MESSAGES,
                ..
            } => Self::TooManyMessages,
            ApiError::WeChat {
                errcode: INVALID_OPENID,
                ..
            } => Self::InvalidOpenid,
            ApiError::WeChat { errcode, errmsg } => Self::Rejected { errcode, errmsg },
            other => Self::WeChatUnavailable(other),
        }
    }
}

impl fmt::Display for SendOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sent => f.write_str("sent"),
            Self::WindowClosed => f.write_str(
                "not sent: the user has not interacted with the account in the last 48 hours (45015)",
            ),
            Self::TooManyMessages => f.write_str(
                "not sent: too many messages to this user since their last interaction (45047)",
            ),
            Self::InvalidOpenid => {
                f.write_str("not sent: the openid is not a follower of this account (40003)")
            }
            Self::WeChatBusy { errcode, attempts } => write!(
                f,
                "not sent: WeChat stayed busy (errcode {errcode}) through {attempts} attempts"
            ),
            Self::TokenUnavailable { reason, .. } => write!(f, "not sent: {reason}"),
            Self::Rejected { errcode, errmsg } => {
                // A send is made with the access_token: 40001 is a replaced token here, not a
                // wrong AppSecret (what it means answered to the token fetch).
                let meaning = errcode::meaning(*errcode, Context::WithToken).unwrap_or(errmsg);
                write!(f, "not sent: WeChat refused it with {errcode} ({meaning})")
            }
            Self::WeChatUnavailable(e) => write!(f, "not known to be sent: {e}"),
        }
    }
}

/// One line per outcome: info when sent, warn when WeChat refused for the user's sake, error
/// when the account or WeChat is at fault.
pub(super) fn log(message: &CustomMessage, outcome: &SendOutcome) {
    log_call(&message.touser, message.msgtype(), outcome);
}

/// [`log`] for a call that is not a message: `msgtype` names it (`typing`).
pub(super) fn log_call(touser: &str, msgtype: &'static str, outcome: &SendOutcome) {
    let openid = fingerprint(touser);
    let code = outcome.code();
    match outcome {
        SendOutcome::Sent if msgtype == "typing" => {
            tracing::info!(outcome = code, %openid, msgtype, "typing status sent");
        }
        SendOutcome::Sent => {
            tracing::info!(outcome = code, %openid, msgtype, "customer-service message sent");
        }
        SendOutcome::WindowClosed | SendOutcome::TooManyMessages | SendOutcome::InvalidOpenid => {
            tracing::warn!(outcome = code, %openid, msgtype, "{outcome}");
        }
        SendOutcome::Rejected { errcode, .. } => {
            tracing::error!(outcome = code, %openid, msgtype, errcode, "{outcome}");
        }
        SendOutcome::WeChatBusy { .. }
        | SendOutcome::TokenUnavailable { .. }
        | SendOutcome::WeChatUnavailable(_) => {
            tracing::error!(outcome = code, %openid, msgtype, "{outcome}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_codes_are_distinct_and_only_sent_is_no_failure() {
        let outcomes = [
            SendOutcome::Sent,
            SendOutcome::WindowClosed,
            SendOutcome::TooManyMessages,
            SendOutcome::InvalidOpenid,
            SendOutcome::WeChatBusy {
                errcode: -1,
                attempts: 3,
            },
            SendOutcome::TokenUnavailable {
                kind: "NoUsableToken",
                reason: "r".into(),
            },
            SendOutcome::Rejected {
                errcode: 40007,
                errmsg: "invalid media_id".into(),
            },
            SendOutcome::WeChatUnavailable(ApiError::Timeout),
        ];
        let mut codes: Vec<_> = outcomes.iter().map(SendOutcome::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), outcomes.len());
        assert_eq!(
            outcomes.iter().filter(|o| !o.is_failure()).count(),
            1,
            "only sent is a success"
        );
        assert!(!SendOutcome::Sent.is_failure());
    }

    #[test]
    fn wechat_answers_sort_into_outcomes() {
        let api = |errcode: i64| {
            Err(CallError::Api(ApiError::WeChat {
                errcode,
                errmsg: "m".into(),
            }))
        };
        assert_eq!(SendOutcome::of(Ok(Ack {}), 1), SendOutcome::Sent);
        assert_eq!(SendOutcome::of(api(45015), 1), SendOutcome::WindowClosed);
        assert_eq!(SendOutcome::of(api(45047), 1), SendOutcome::TooManyMessages);
        assert_eq!(SendOutcome::of(api(40003), 1), SendOutcome::InvalidOpenid);
        assert_eq!(
            SendOutcome::of(api(-1), 3),
            SendOutcome::WeChatBusy {
                errcode: -1,
                attempts: 3
            }
        );
        assert_eq!(
            SendOutcome::of(api(40001), 1),
            SendOutcome::Rejected {
                errcode: 40001,
                errmsg: "m".into()
            }
        );
        assert_eq!(
            SendOutcome::of(Err(CallError::Api(ApiError::HttpStatus(502))), 1),
            SendOutcome::WeChatUnavailable(ApiError::HttpStatus(502))
        );
    }

    #[test]
    fn a_token_rejected_after_the_refresh_is_not_blamed_on_the_appsecret() {
        let text = SendOutcome::Rejected {
            errcode: 40001,
            errmsg: "invalid credential, access_token is invalid or not latest".into(),
        }
        .to_string();
        assert_eq!(
            text,
            "not sent: WeChat refused it with 40001 (the access_token is invalid or was replaced by a newer fetch elsewhere (another server or tool using the AppSecret))"
        );
    }
}

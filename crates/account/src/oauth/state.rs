//! A pending sign-in `state` ([`AuthState`]) and the item it is stored as.
//!
//! State item `oauth_state#<state>`: `browser_hash` (hex SHA-256 of the browser binding cookie),
//! `scope`, `return_to`, `attempt`, `created_at_s`, `expires_at_s`, `ttl` (= `expires_at_s`),
//! `status` (`pending` → `consumed` → `completed`), `consumed_at_s` (while consumed), `openid`
//! (once completed). Completing a state also cuts `expires_at_s` (and `ttl`) to a few seconds
//! ahead, the double-callback grace. All times are epoch seconds.

use serde::{Deserialize, Serialize};
use table::StoreError;
use table::{Item, key};

use crate::oauth::Scope;

/// Where a sign-in `state` is in its single use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateStatus {
    /// Issued by `/oauth/authorize`, waiting for its callback.
    Pending,
    /// A callback took it and is exchanging (or has failed to use) the code.
    Consumed,
    /// The callback signed this user in; a replay from the same browser may re-issue the session
    /// until the state expires, a few seconds after completion.
    Completed { openid: String },
}

/// A sign-in `state` and what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthState {
    pub state: String,
    /// Hex SHA-256 of the browser binding cookie; the cookie itself is never stored.
    pub browser_hash: String,
    pub scope: Scope,
    pub return_to: String,
    /// 1 for a flow the user started, 2 for the one automatic restart after a rejected code.
    pub attempt: u8,
    pub created_at_s: i64,
    pub expires_at_s: i64,
    pub status: StateStatus,
}

/// The stored `status` attribute: a string, `pending`, `consumed` or `completed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Status {
    Pending,
    Consumed,
    Completed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Consumed => "consumed",
            Status::Completed => "completed",
        }
    }
}

impl From<Status> for &'static str {
    fn from(status: Status) -> Self {
        status.as_str()
    }
}

impl From<Status> for serde_json::Value {
    fn from(status: Status) -> Self {
        status.as_str().into()
    }
}

impl TryFrom<String> for Status {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        [Status::Pending, Status::Consumed, Status::Completed]
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| format!("unknown status {raw:?}"))
    }
}

/// The state item as stored (the key and `ttl` are added by the table kernel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateItem {
    pub browser_hash: String,
    pub scope: Scope,
    pub return_to: String,
    pub attempt: u8,
    pub created_at_s: i64,
    pub expires_at_s: i64,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed_at_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub openid: Option<String>,
}

impl StateItem {
    pub const STATUS: &'static str = "status";
    pub const EXPIRES_AT_S: &'static str = "expires_at_s";
    pub const CONSUMED_AT_S: &'static str = "consumed_at_s";
    pub const OPENID: &'static str = "openid";

    pub fn from_state(state: &AuthState) -> Self {
        let (status, openid) = match &state.status {
            StateStatus::Pending => (Status::Pending, None),
            StateStatus::Consumed => (Status::Consumed, None),
            StateStatus::Completed { openid } => (Status::Completed, Some(openid.clone())),
        };
        Self {
            browser_hash: state.browser_hash.clone(),
            scope: state.scope,
            return_to: state.return_to.clone(),
            attempt: state.attempt,
            created_at_s: state.created_at_s,
            expires_at_s: state.expires_at_s,
            status,
            consumed_at_s: None,
            openid,
        }
    }

    /// The state `id`, or `None` when expired at `now_s` (TTL deletion is lazy).
    pub fn into_state(self, id: &str, now_s: i64) -> Result<Option<AuthState>, StoreError> {
        if self.expires_at_s <= now_s {
            return Ok(None);
        }
        let status = match (self.status, self.openid) {
            (Status::Pending, _) => StateStatus::Pending,
            (Status::Consumed, _) => StateStatus::Consumed,
            (Status::Completed, Some(openid)) => StateStatus::Completed { openid },
            (Status::Completed, None) => {
                return Err(StoreError::Corrupt(format!(
                    "{}: completed without an openid",
                    key::<Self>(id)
                )));
            }
        };
        Ok(Some(AuthState {
            state: id.to_string(),
            browser_hash: self.browser_hash,
            scope: self.scope,
            return_to: self.return_to,
            attempt: self.attempt,
            created_at_s: self.created_at_s,
            expires_at_s: self.expires_at_s,
            status,
        }))
    }
}

impl Item for StateItem {
    const PREFIX: &'static str = "oauth_state#";
    fn ttl(&self) -> Option<i64> {
        Some(self.expires_at_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use table::stored_form;

    fn completed() -> AuthState {
        AuthState {
            state: "ab".into(),
            browser_hash: "h".into(),
            scope: Scope::Base,
            return_to: "/".into(),
            attempt: 1,
            created_at_s: 0,
            expires_at_s: 600,
            status: StateStatus::Completed {
                openid: "o1".into(),
            },
        }
    }

    #[test]
    fn an_expired_state_reads_as_absent() {
        let state = completed();
        let item = StateItem::from_state(&state);
        assert_eq!(key::<StateItem>(&state.state), "oauth_state#ab");
        assert_eq!(item.clone().into_state("ab", 599).unwrap(), Some(state));
        assert_eq!(item.into_state("ab", 600).unwrap(), None);
    }

    #[test]
    fn the_status_is_stored_as_its_name_and_unknown_names_are_refused() {
        let stored = serde_json::Value::Object(
            stored_form("ab", &StateItem::from_state(&completed())).unwrap(),
        );
        assert_eq!(stored["status"], "completed");
        assert_eq!(stored["openid"], "o1");
        assert_eq!(stored["scope"], "snsapi_base");
        assert_eq!(stored["ttl"], stored["expires_at_s"]);
        for status in [Status::Pending, Status::Consumed, Status::Completed] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
            assert_eq!(serde_json::Value::from(status), status.as_str());
        }
        let mut bad = stored;
        bad["status"] = "done".into();
        assert!(serde_json::from_value::<StateItem>(bad).is_err());
    }

    #[test]
    fn a_completed_state_without_openid_is_corrupt() {
        let mut item = StateItem::from_state(&completed());
        item.openid = None;
        assert!(matches!(
            item.into_state("ab", 0),
            Err(StoreError::Corrupt(_))
        ));
    }
}

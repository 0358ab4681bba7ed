//! The token service's stored items: the token, the jsapi_ticket, the refresh leases and the quota
//! bookkeeping, each one item of the table keyed by the app id (see `table` for how
//! items are stored).
//!
//! Item layout (all times in epoch milliseconds, `ttl` in epoch seconds as DynamoDB wants):
//! - `token#<app_id>`: `access_token` S, `expires_at_ms` N, `fetched_at_ms` N, `version` N, `ttl` N
//! - `ticket#<app_id>`: `jsapi_ticket` S, `expires_at_ms` N, `fetched_at_ms` N, `version` N, `ttl` N
//! - `lease#<app_id>` (the token's) and `lease#ticket#<app_id>` (the ticket's): `owner` S,
//!   `lease_until_ms` N, `ttl` N
//! - `quota#<app_id>` (the token endpoints') and `quota#ticket#<app_id>` (getticket's): `version` N,
//!   `force_day` N (days since epoch in China time, UTC+8), `force_count` N, `last_force_at_ms` N
//!   (0: never), `blocked_until_ms` N (0: not blocked), `ttl` N; getticket's also `failure` S and
//!   `failed_until_ms` N while a failed fetch is remembered

use serde::{Deserialize, Serialize};
use table::Item;
use wechat_protocol::secret::Secret;
use wechat_protocol::secret::plain_string;

/// How long expired items are kept before DynamoDB's TTL may delete them, in seconds.
pub const TTL_GRACE_S: i64 = 24 * 3600;

/// The stored access_token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    #[serde(with = "plain_string")]
    pub access_token: Secret<String>,
    pub expires_at_ms: i64,
    pub fetched_at_ms: i64,
    /// Starts at 1 and grows by one with every write.
    pub version: u64,
}

impl TokenRecord {
    /// The item's `ttl` (epoch seconds): a day after the token expires.
    pub fn ttl_s(&self) -> i64 {
        self.expires_at_ms.div_euclid(1000) + TTL_GRACE_S
    }
}

impl Item for TokenRecord {
    const PREFIX: &'static str = "token#";
    fn ttl(&self) -> Option<i64> {
        Some(self.ttl_s())
    }
}

/// The stored jsapi_ticket: the same bookkeeping as [`TokenRecord`], under its own key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRecord {
    #[serde(with = "plain_string")]
    pub jsapi_ticket: Secret<String>,
    pub expires_at_ms: i64,
    pub fetched_at_ms: i64,
    /// Starts at 1 and grows by one with every write.
    pub version: u64,
}

impl Item for TicketRecord {
    const PREFIX: &'static str = "ticket#";
    fn ttl(&self) -> Option<i64> {
        Some(self.expires_at_ms.div_euclid(1000) + TTL_GRACE_S)
    }
}

/// Who holds the refresh lease, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    #[serde(rename = "lease_until_ms")]
    pub until_ms: i64,
}

impl Lease {
    /// The attribute `until_ms` is stored as (conditions name it).
    pub const UNTIL_ATTRIBUTE: &'static str = "lease_until_ms";
    /// The attribute `owner` is stored as.
    pub const OWNER_ATTRIBUTE: &'static str = "owner";

    /// A lease whose time has run out is free, even if its item still exists.
    pub fn is_held_at(&self, now_ms: i64) -> bool {
        self.until_ms > now_ms
    }

    pub fn ttl_s(until_ms: i64) -> i64 {
        until_ms.div_euclid(1000) + 60
    }
}

impl Item for Lease {
    const PREFIX: &'static str = "lease#";
    fn ttl(&self) -> Option<i64> {
        Some(Self::ttl_s(self.until_ms))
    }
}

/// Quota bookkeeping shared by every instance: forced stable-token refreshes per day, the
/// daily-quota block after WeChat answered 45009, and (for the jsapi_ticket) a failed fetch
/// remembered for a short time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRecord {
    /// 0 for a record never written.
    pub version: u64,
    /// The China-time day (days since 1970-01-01 in UTC+8) that `force_count` counts.
    pub force_day: i64,
    pub force_count: u32,
    /// 0 when no forced refresh was ever made.
    pub last_force_at_ms: i64,
    /// 0 when not blocked.
    pub blocked_until_ms: i64,
    /// (getticket's item only) The outcome code of a fetch that failed, remembered until
    /// `failed_until_ms`: until then a page's request is answered with it instead of calling
    /// WeChat again. Empty (and not stored) when none is remembered.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure: String,
    /// 0 (and not stored) when no failure is remembered.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed_until_ms: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl QuotaRecord {
    /// The item's `ttl` (epoch seconds): a day after everything it records has lapsed.
    pub fn ttl_s(&self) -> i64 {
        let force_day_end_ms = (self.force_day + 1) * 86_400_000 - 8 * 3_600_000;
        force_day_end_ms
            .max(self.blocked_until_ms)
            .max(self.failed_until_ms)
            .div_euclid(1000)
            + TTL_GRACE_S
    }
}

impl Item for QuotaRecord {
    const PREFIX: &'static str = "quota#";
    fn ttl(&self) -> Option<i64> {
        Some(self.ttl_s())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use table::stored_form;

    #[test]
    fn token_items_keep_their_attribute_names() {
        let token = TokenRecord {
            access_token: Secret::new("t".into()),
            expires_at_ms: 7_200_000,
            fetched_at_ms: 0,
            version: 1,
        };
        assert_eq!(
            serde_json::Value::Object(stored_form("wx1", &token).unwrap()),
            json!({"pk": "token#wx1", "access_token": "t", "expires_at_ms": 7_200_000,
                   "fetched_at_ms": 0, "version": 1, "ttl": 7_200 + TTL_GRACE_S})
        );
        let lease = Lease {
            owner: "me".into(),
            until_ms: 10_000,
        };
        assert_eq!(
            serde_json::Value::Object(stored_form("wx1", &lease).unwrap()),
            json!({"pk": "lease#wx1", "owner": "me", "lease_until_ms": 10_000, "ttl": 70})
        );
        let ticket = TicketRecord {
            jsapi_ticket: Secret::new("j".into()),
            expires_at_ms: 7_200_000,
            fetched_at_ms: 0,
            version: 1,
        };
        assert_eq!(
            serde_json::Value::Object(stored_form("wx1", &ticket).unwrap()),
            json!({"pk": "ticket#wx1", "jsapi_ticket": "j", "expires_at_ms": 7_200_000,
                   "fetched_at_ms": 0, "version": 1, "ttl": 7_200 + TTL_GRACE_S})
        );
        let quota = stored_form("wx1", &QuotaRecord::default()).unwrap();
        let mut names: Vec<_> = quota.keys().cloned().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "blocked_until_ms",
                "force_count",
                "force_day",
                "last_force_at_ms",
                "pk",
                "ttl",
                "version"
            ]
        );
    }

    #[test]
    fn a_remembered_failure_is_stored_only_while_there_is_one_and_old_items_still_read() {
        let remembering = QuotaRecord {
            version: 2,
            failure: "wechat_unavailable".into(),
            failed_until_ms: 30_000,
            ..QuotaRecord::default()
        };
        let stored = serde_json::Value::Object(stored_form("x", &remembering).unwrap());
        assert_eq!(stored["failure"], "wechat_unavailable");
        assert_eq!(stored["failed_until_ms"], 30_000);
        let old: QuotaRecord = serde_json::from_value(json!({
            "version": 1, "force_day": 0, "force_count": 0, "last_force_at_ms": 0,
            "blocked_until_ms": 0
        }))
        .unwrap();
        assert_eq!(old.failure, "");
        assert_eq!(old.failed_until_ms, 0);
    }
}
